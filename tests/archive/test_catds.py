"""CATDS client against the local Apache-style listing server serving the real SMOS L3 files."""

from __future__ import annotations

import hashlib
import logging
from datetime import date, datetime, timezone

import pytest
import requests

from smflow.archive.base import ArchiveClient, ArchiveError
from smflow.archive.catds import CatdsClient, parse_index
from smflow.archive.credentials import Credentials
from infra.providers import SHARED, needs_real

pytestmark = needs_real("smos_l3_catds", "the real SMOS L3 files")
SECRET = "s3cr3t-catds-pw"
DAY6 = "SM_OPER_MIR_CLF31A_20150506T000000_20150506T235959_300_002_7.DBL.nc"
DAY7 = "SM_OPER_MIR_CLF31A_20150507T000000_20150507T235959_300_002_7.DBL.nc"
DAY8 = "SM_OPER_MIR_CLF31A_20150508T000000_20150508T235959_300_002_7.DBL.nc"


@pytest.fixture(scope="module")
def catds():
    from infra.providers.local_catds import CatdsServer

    with CatdsServer(SHARED, username="bob", password=SECRET,
                     damaged={DAY7: "short", DAY8: "corrupt"}) as server:
        yield server


def client(catds, password=SECRET) -> CatdsClient:
    return CatdsClient(catds.url, credentials=Credentials(username="bob", password=password))


def test_the_index_pages_look_like_apache_and_parse(catds):
    auth = ("bob", SECRET)
    page = requests.get(f"{catds.url}/MIR_CLF31A/2015/126/", auth=auth, timeout=10)
    assert page.status_code == 200 and "<title>Index of /MIR_CLF31A/2015/126</title>" in page.text
    assert "Parent Directory" in page.text and "152K" in page.text
    assert parse_index(page.text) == [DAY6]
    assert parse_index(requests.get(f"{catds.url}/MIR_CLF31A/2015/", auth=auth, timeout=10).text) == [
        "126/", "127/", "128/"]
    moved = requests.get(f"{catds.url}/MIR_CLF31A/2015", auth=auth, timeout=10, allow_redirects=False)
    assert moved.status_code == 301 and moved.headers["Location"] == "/MIR_CLF31A/2015/"


def test_list_the_day_folder_and_select_the_days_file(catds):
    c = client(catds)
    assert isinstance(c, ArchiveClient)
    (g,) = c.granules("MIR_CLF31A", date(2015, 5, 6))
    assert g.name == DAY6 and g.url == f"{catds.url}/MIR_CLF31A/2015/126/{DAY6}"
    assert g.start == datetime(2015, 5, 6, tzinfo=timezone.utc) and g.end.hour == 23
    assert c.granules("MIR_CLF31A", date(2015, 5, 9)) == []  # no folder for that day: 404
    assert c.granules("MIR_CLF31D", date(2015, 5, 6)) == []


def test_download_is_byte_identical_and_readable(catds, tmp_path):
    c = client(catds)
    path = c.download(c.granules("MIR_CLF31A", date(2015, 5, 6))[0], tmp_path)
    real = SHARED / "smos_l3_catds" / DAY6
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(real.read_bytes()).digest()
    assert [p.name for p in tmp_path.iterdir()] == [DAY6]
    import netCDF4

    with netCDF4.Dataset(path) as ds:
        assert "Soil_Moisture" in ds.variables


@pytest.mark.parametrize("day, problem", [(date(2015, 5, 7), "transfer failed"), (date(2015, 5, 8), "not a .nc file")])
def test_a_short_or_corrupted_download_is_rejected_and_leaves_no_file(catds, tmp_path, day, problem):
    c = client(catds)
    (g,) = c.granules("MIR_CLF31A", day)
    with pytest.raises(ArchiveError, match=problem) as err:
        c.download(g, tmp_path)
    assert g.name in str(err.value) and list(tmp_path.iterdir()) == []


def test_wrong_password_is_a_clear_error_and_no_secret_is_logged(catds, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ArchiveError, match="refused the credentials.*CATDS_USERNAME") as err:
        client(catds, password="wrong-" + SECRET).granules("MIR_CLF31A", date(2015, 5, 6))
    monkeypatch.setenv("CATDS_USERNAME", "bob")
    monkeypatch.setenv("CATDS_PASSWORD", SECRET)
    monkeypatch.setenv("CATDS_URL", catds.url)
    assert CatdsClient().granules("MIR_CLF31A", date(2015, 5, 6))
    assert SECRET not in caplog.text + str(err.value)
