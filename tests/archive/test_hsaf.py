"""H SAF FTP client against a real local FTP server serving the real H SAF BUFR and GRIB files."""

from __future__ import annotations

import hashlib
import logging
from datetime import date, datetime, timezone

import pytest

from smflow.archive.base import ArchiveClient, ArchiveError
from smflow.archive.credentials import Credentials
from smflow.archive.hsaf import HsafClient, sensing_time
from infra.providers import SHARED, needs_real

pytestmark = needs_real("hsaf_ascat_nrt_bufr", "the real H SAF files")
SECRET = "s3cr3t-hsaf-pw"
H102 = "h102_20170220_104500_METOPA_53656_EUM.buf"
H103 = "h103_20170220_103000_METOPB_22969_EUM.buf"


@pytest.fixture(scope="module")
def ftp():
    from infra.providers.local_ftp import HsafFtpServer

    with HsafFtpServer(SHARED, username="alice", password=SECRET,
                       damaged={H102: "short", H103: "corrupt"}) as server:
        yield server


def client(ftp, password=SECRET) -> HsafClient:
    return HsafClient(ftp.host, credentials=Credentials(username="alice", password=password))


def test_sensing_time_from_the_file_names():
    assert sensing_time("h101_20170220_104500_METOPA_53656_EUM.buf") == datetime(
        2017, 2, 20, 10, 45, tzinfo=timezone.utc)
    assert sensing_time("H14_2014051500.grib") == datetime(2014, 5, 15, tzinfo=timezone.utc)
    assert sensing_time("README.txt") is None


def test_list_a_product_directory_and_select_the_day(ftp):
    c = client(ftp)
    assert isinstance(c, ArchiveClient)
    assert c.list_files("h101") == {"h101_20170220_104500_METOPA_53656_EUM.buf": 82377}
    (g,) = c.granules("h16", date(2017, 2, 20))
    assert g.name == "h16_20170220_111500_METOPB_22969_EUM.buf" and g.size == 83972
    assert g.url.startswith("ftp://127.0.0.1:") and g.url.endswith("/products/h16/" + g.name)
    assert c.granules("h16", date(2017, 2, 21)) == []
    assert [g.name for g in c.granules("h14", date(2014, 5, 15))] == ["H14_2014051500.grib"]
    with pytest.raises(ArchiveError, match="no such product directory"):
        c.granules("h999", date(2017, 2, 20))


def test_download_is_complete_and_byte_identical(ftp, tmp_path):
    c = client(ftp)
    (g,) = c.granules("h14", date(2014, 5, 15))
    path = c.download(g, tmp_path)
    real = SHARED / "hsaf_h14_rzsm_grib" / "H14_2014051500.grib"
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(real.read_bytes()).digest()
    assert sorted(p.name for p in tmp_path.iterdir()) == [g.name]


@pytest.mark.parametrize("product, problem", [("h102", "cut short"), ("h103", "not a .buf file")])
def test_a_short_or_corrupted_transfer_is_rejected_and_leaves_no_file(ftp, tmp_path, product, problem):
    c = client(ftp)
    (g,) = c.granules(product, date(2017, 2, 20))
    with pytest.raises(ArchiveError, match=problem) as err:
        c.download(g, tmp_path)
    assert g.name in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_wrong_password_is_a_clear_error_and_no_secret_is_logged(ftp, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ArchiveError, match="refused the login.*HSAF_USERNAME") as err:
        client(ftp, password="wrong-" + SECRET).granules("h101", date(2017, 2, 20))
    client(ftp).granules("h101", date(2017, 2, 20))
    assert SECRET not in caplog.text + str(err.value)


def test_credentials_from_the_environment_and_from_an_airflow_connection(ftp, tmp_path, monkeypatch):
    monkeypatch.setenv("HSAF_USERNAME", "alice")
    monkeypatch.setenv("HSAF_PASSWORD", SECRET)
    assert HsafClient(ftp.host).granules("h101", date(2017, 2, 20))
    monkeypatch.delenv("HSAF_PASSWORD")
    with pytest.raises(ArchiveError, match="no H SAF credentials"):
        HsafClient(ftp.host).granules("h101", date(2017, 2, 20))
    monkeypatch.setenv("AIRFLOW_CONN_HSAF_TEST",
                       f'{{"conn_type": "ftp", "host": "{ftp.host}", "login": "alice", "password": "{SECRET}"}}')
    c = HsafClient(conn_id="hsaf_test")
    assert c.download(c.granules("h101", date(2017, 2, 20))[0], tmp_path).stat().st_size == 82377
    assert c.credentials.source == "conn:hsaf_test" and SECRET not in repr(c.credentials)


def test_reconcile_asks_the_provider_archive_through_the_uniform_interface(ftp, monkeypatch):
    from smflow.archive.reconcile import archive_client, provider_granules

    (g,) = provider_granules("ascat_h103", date(2017, 2, 20), client=client(ftp))
    assert g.name == H103
    monkeypatch.setenv("HSAF_USERNAME", "alice")
    monkeypatch.setenv("HSAF_PASSWORD", SECRET)
    assert [g.name for g in provider_granules("hsaf_h14", date(2014, 5, 15), host=ftp.host)] == [
        "H14_2014051500.grib"]
    assert isinstance(archive_client("catds"), ArchiveClient)
    with pytest.raises(ValueError, match="ARCHIVE_SOURCES"):
        provider_granules("no_such_product", date(2017, 2, 20))
