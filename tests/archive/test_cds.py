"""CDS client (cdsapi) against the local server speaking the CDS protocol, serving real ERA5 GRIB."""

from __future__ import annotations

import hashlib
import logging
from datetime import date

import pytest

from smflow.archive.cds import CdsClient, era5_land_request
from smflow.archive.credentials import Credentials
from infra.providers.local_server import ERA5_GRIB, ArchiveServer


@pytest.fixture(scope="module")
def archive():
    with ArchiveServer(cds_key="4242:abcd-secret", cds_polls=0) as server:
        yield server


def test_era5_land_request_names_the_cds_variables_and_area_order():
    r = era5_land_request(date(2017, 6, 1), variables=("swvl1", "tp"), hours=(6,), area=(-160, 18, -154, 23))
    assert r["variable"] == ["volumetric_soil_water_layer_1", "total_precipitation"]
    assert r["time"] == ["06:00"] and r["area"] == [23, -160, 18, -154]
    with pytest.raises(ValueError, match="swvl1"):
        era5_land_request(date(2017, 6, 1), variables=("sm",))


def test_retrieve_submits_polls_and_downloads_the_real_grib(archive, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    client = CdsClient(archive.cds_url, credentials=Credentials(username="4242", password="abcd-secret"))
    path = client.retrieve_era5_land_day(date(2017, 6, 1), tmp_path, hours=(6,))
    assert path.name == "era5_land_20170601.grib" and not list(tmp_path.glob("*.part"))
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(ERA5_GRIB.read_bytes()).digest()
    assert any(r.startswith("POST /api/resources/reanalysis-era5-land") for r in archive.requests)
    assert any(r.startswith("GET /api/tasks/") for r in archive.requests)
    assert "abcd-secret" not in caplog.text
    import eccodes

    with open(path, "rb") as f:
        gid = eccodes.codes_grib_new_from_file(f)
        assert eccodes.codes_get(gid, "edition") in (1, 2)
        eccodes.codes_release(gid)


def test_wrong_key_fails_with_the_servers_message_and_leaves_nothing(archive, tmp_path, monkeypatch):
    monkeypatch.setenv("CDSAPI_KEY", "4242:wrong")
    with pytest.raises(Exception, match="Authentication failed"):
        CdsClient(archive.cds_url).retrieve_era5_land_day(date(2017, 6, 1), tmp_path)
    assert not list(tmp_path.iterdir())


# -- the new CDS protocol: a personal access token without a colon ---------------------------
TOKEN = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


@pytest.fixture(scope="module")
def new_cds():
    with ArchiveServer(cds_token=TOKEN, cds_polls=1) as server:
        yield server


def test_a_key_without_a_colon_speaks_the_new_protocol_through_ecmwf_datastores(new_cds, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    client = CdsClient(new_cds.cds_url, credentials=Credentials(token=TOKEN))
    assert type(client.client()).__module__ == "ecmwf.datastores.legacy_client"
    path = client.retrieve_era5_land_day(date(2017, 6, 1), tmp_path, hours=(6,))
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(ERA5_GRIB.read_bytes()).digest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["era5_land_20170601.grib"]
    seen = " ".join(new_cds.requests)
    assert "POST /api/retrieve/v1/processes/reanalysis-era5-land/execution" in seen
    assert "/results" in seen and "GET /api/tasks/" not in seen
    assert TOKEN not in caplog.text


def test_new_protocol_wrong_token_and_short_download_are_archive_errors(new_cds, tmp_path, monkeypatch, caplog):
    from smflow.archive.base import ArchiveError

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CDSAPI_KEY", "not-the-token")
    with pytest.raises(ArchiveError, match="Authentication failed") as err:
        CdsClient(new_cds.cds_url).retrieve_era5_land_day(date(2017, 6, 1), tmp_path)
    assert "reanalysis-era5-land" in str(err.value) and "not-the-token" not in str(err.value) + caplog.text
    assert not list(tmp_path.iterdir())
    new_cds.cds_short = True
    try:
        with pytest.raises(ArchiveError, match="byte"):
            CdsClient(new_cds.cds_url, credentials=Credentials(token=TOKEN)).retrieve_era5_land_day(
                date(2017, 6, 1), tmp_path)
    finally:
        new_cds.cds_short = False
    assert not list(tmp_path.iterdir())
