"""CMR client against the local archive server serving the real SMAP / GLDAS / MODIS files."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timezone

import pytest
import requests

from smflow.archive.cmr import ArchiveError, CmrClient
from smflow.archive.credentials import Credentials
from infra.providers.local_server import ArchiveServer, real_catalog


@pytest.fixture(scope="module")
def archive():
    with ArchiveServer(token="s3cr3t-token", username="alice", password="pw") as server:
        yield server


def test_search_by_short_name_and_day_finds_the_real_smap_half_orbits(archive):
    client = CmrClient(archive.url, credentials=Credentials(token="s3cr3t-token"))
    granules = client.search("SPL2SMP", temporal=(date(2015, 8, 11), date(2015, 8, 11)))
    assert [g.filename for g in granules] == [
        "SMAP_L2_SM_P_02801_A_20150811T013002_R18290_001.h5",
        "SMAP_L2_SM_P_02802_A_20150811T030828_R18290_001.h5",
    ]
    assert granules[0].start == datetime(2015, 8, 11, 1, 30, 2, tzinfo=timezone.utc)
    assert client.search("SPL2SMP", temporal=(date(2015, 8, 12), date(2015, 8, 12))) == []


def test_temporal_and_bbox_narrow_the_search_and_paging_walks_all_hits(archive):
    client = CmrClient(archive.url)
    t = (datetime(2016, 1, 1, 5, tzinfo=timezone.utc), datetime(2016, 1, 1, 13, tzinfo=timezone.utc))
    gldas = client.search("GLDAS_NOAH025_3H", temporal=t, page_size=1)
    assert [g.start.hour for g in gldas] == [6, 9, 12]
    # 7 files, 3 per page: three requests, all hits
    n_before = len(archive.requests)
    assert len(client.search("GLDAS_NOAH025_3H", page_size=3)) == 7
    assert len(archive.requests) - n_before == 3
    assert client.search("MOD11A1", bounding_box=(-60.0, -20.0, -35.0, -5.0))
    assert client.search("MOD11A1", bounding_box=(10.0, 40.0, 20.0, 50.0)) == []  # Europe


def test_search_speaks_granules_json_too_with_cmr_hits(archive):
    r = requests.get(f"{archive.url}/search/granules.json",
                     params={"short_name": "GLDAS_NOAH025_3H", "page_size": 2}, timeout=10)
    assert r.status_code == 200 and r.headers["CMR-Hits"] == "7"
    entries = r.json()["feed"]["entry"]
    assert len(entries) == 2 and entries[0]["links"][0]["href"].endswith(".nc4")
    bad = requests.get(f"{archive.url}/search/granules.json", params={"page_size": 5000}, timeout=10)
    assert bad.status_code == 400 and bad.json()["errors"]


def test_download_checks_size_and_sha256_and_leaves_no_part_file(archive, tmp_path):
    client = CmrClient(archive.url, credentials=Credentials(token="s3cr3t-token"))
    (granule,) = client.search("MOD11A1")
    path = client.download(granule, tmp_path)
    real = next(f.path for f in real_catalog() if f.short_name == "MOD11A1")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(real.read_bytes()).hexdigest()
    assert granule.checksum_algorithm == "SHA-256" and not list(tmp_path.glob("*.part"))
    from pyhdf.SD import SD

    assert "LST_Day_1km" in SD(str(path)).datasets()  # a real, readable MODIS HDF4 granule


def test_download_with_basic_auth_from_the_environment(archive, tmp_path, monkeypatch):
    monkeypatch.delenv("EARTHDATA_TOKEN", raising=False)
    monkeypatch.setenv("EARTHDATA_USERNAME", "alice")
    monkeypatch.setenv("EARTHDATA_PASSWORD", "pw")
    client = CmrClient(archive.url)
    granule = client.search("GLDAS_NOAH025_3H", max_granules=1)[0]
    assert client.download(granule, tmp_path).stat().st_size == granule.size


def test_download_without_credentials_is_refused_and_the_secret_never_shows(archive, tmp_path, caplog):
    granule = CmrClient(archive.url).search("GLDAS_NOAH025_3H", max_granules=1)[0]
    client = CmrClient(archive.url, credentials=Credentials(token="wrong-token"))
    with pytest.raises(ArchiveError, match="EARTHDATA_TOKEN") as err:
        client.download(granule, tmp_path)
    assert "wrong-token" not in str(err.value) + caplog.text + repr(client.credentials)
    assert not list(tmp_path.iterdir())


def test_credentials_from_an_airflow_connection(archive, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_EARTHDATA_TEST", '{"conn_type": "http", "password": "s3cr3t-token"}')
    client = CmrClient(archive.url, conn_id="earthdata_test")
    granule = client.search("GLDAS_NOAH025_3H", max_granules=1)[0]
    assert client.download(granule, tmp_path).exists()
    assert client.credentials.source == "conn:earthdata_test"
