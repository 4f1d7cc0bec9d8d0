"""EUMETSAT Data Store client against the local Data Store serving the real ASCAT L2 SSM products."""

from __future__ import annotations

import hashlib
import logging
from datetime import date, datetime, timezone

import pytest
import requests

from smflow.archive.base import ArchiveClient, ArchiveError
from smflow.archive.credentials import Credentials
from smflow.archive.eumetsat import EumetsatClient
from infra.providers import SHARED, needs_real

pytestmark = needs_real("ascat_eumetsat_l2", "the real ASCAT L2 products")
KEY, SECRET = "my-consumer-key", "s3cr3t-consumer-secret"
A_53652 = "W_XX-EUMETSAT-Darmstadt,SURFACE+SATELLITE,METOPA+ASCAT_C_EUMP_20170220041500_53652_eps_o_250_ssm_l2"
A_53653 = "W_XX-EUMETSAT-Darmstadt,SURFACE+SATELLITE,METOPA+ASCAT_C_EUMP_20170220055700_53653_eps_o_250_ssm_l2"
B_22966 = "W_XX-EUMETSAT-Darmstadt,SURFACE+SATELLITE,METOPB+ASCAT_C_EUMP_20170220050900_22966_eps_o_250_ssm_l2"


@pytest.fixture(scope="module")
def store():
    from infra.providers.local_eumetsat import EumetsatServer

    with EumetsatServer(SHARED, consumer_key=KEY, consumer_secret=SECRET,
                        damaged={A_53653: "short", B_22966: "corrupt"}) as server:
        yield server


def client(store, secret=SECRET, **kwargs) -> EumetsatClient:
    return EumetsatClient(store.url, credentials=Credentials(username=KEY, password=secret), **kwargs)


def test_search_by_day_walks_the_pages_and_reads_the_features(store):
    c = client(store, page_size=2)
    assert isinstance(c, ArchiveClient)
    n_before = len(store.requests)
    granules = c.granules("ascat_somo25", date(2017, 2, 20))
    assert len(store.requests) - n_before == 2  # 4 products, 2 per page
    assert [g.start.strftime("%H%M") for g in granules] == ["0415", "0415", "0509", "0557"]
    bufr = next(g for g in granules if g.name.startswith("M02-ASCA"))
    assert bufr.end == datetime(2017, 2, 20, 5, 56, 50, tzinfo=timezone.utc)
    assert all(g.checksum_algorithm == "MD5" and len(g.checksum) == 32 for g in granules)
    assert "/collections/EO%3AEUM%3ADAT%3AMETOP%3ASOMO25/products/W_XX-EUMETSAT-Darmstadt%2C" in granules[1].url
    assert c.granules("EO:EUM:DAT:METOP:SOMO12", date(2017, 2, 20))[0].name.endswith("_125_ssm_l2")
    assert c.granules("ascat_somo25", date(2017, 2, 21)) == []


def test_search_json_shape_and_bad_queries(store):
    r = requests.get(f"{store.url}/data/search-products/1.0.0/os", timeout=10, params={
        "format": "json", "pi": "EO:EUM:DAT:METOP:SOMO25", "dtstart": "2017-02-20T05:00:00Z",
        "dtend": "2017-02-20T23:59:59Z", "bbox": "-10,30,40,70"})
    page = r.json()
    assert r.status_code == 200 and page["type"] == "FeatureCollection" and page["totalResults"] == 4
    props = page["features"][0]["properties"]
    assert "/" in props["date"] and props["links"]["data"][0]["href"] and props["links"]["sip-entries"]
    assert requests.get(f"{store.url}/data/search-products/1.0.0/os", params={"format": "json"},
                        timeout=10).status_code == 400


def test_download_checks_md5_and_extracts_the_real_netcdf(store, tmp_path):
    def tokens_issued() -> int:
        return sum(r.startswith("POST /token") for r in store.requests)

    c, n_tokens = client(store), tokens_issued()
    g = next(g for g in c.granules("ascat_somo25", date(2017, 2, 20)) if g.name == A_53652)
    path = c.download(g, tmp_path)
    real = SHARED / "ascat_eumetsat_l2" / "nc_25km" / (A_53652 + ".nc")
    assert path.name == real.name and sorted(p.name for p in tmp_path.iterdir()) == [real.name]
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(real.read_bytes()).digest()
    import netCDF4

    with netCDF4.Dataset(path) as ds:
        assert "soil_moisture" in ds.variables
    bufr = next(g for g in c.granules("ascat_somo25", date(2017, 2, 20)) if g.name.startswith("M02"))
    assert c.download(bufr, tmp_path).suffix == ".bfr"
    assert tokens_issued() == n_tokens + 1  # one token for both downloads


@pytest.mark.parametrize("product, problem", [(A_53653, "transfer failed"), (B_22966, "MD5 checksum mismatch")])
def test_a_short_or_corrupted_download_is_rejected_and_leaves_no_file(store, tmp_path, product, problem):
    c = client(store)
    g = next(g for g in c.granules("ascat_somo25", date(2017, 2, 20)) if g.name == product)
    with pytest.raises(ArchiveError, match=problem) as err:
        c.download(g, tmp_path)
    assert "products/W_XX-EUMETSAT" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_wrong_secret_is_a_clear_error_and_no_secret_or_token_is_logged(store, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    bad = client(store, secret="wrong-" + SECRET)
    g = bad.granules("ascat_somo25", date(2017, 2, 20))[0]  # search is anonymous
    with pytest.raises(ArchiveError, match="refused the consumer key.*EUMETSAT_CONSUMER_KEY") as err:
        bad.download(g, tmp_path)
    good = client(store)
    good.download(good.granules("ascat_somo12", date(2017, 2, 20))[0], tmp_path)
    assert SECRET not in caplog.text + str(err.value) and good.token() not in caplog.text
    assert SECRET not in repr(good.credentials)


def test_an_expired_token_is_renewed_and_credentials_come_from_a_connection(store, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_EUMETSAT_TEST", f'{{"conn_type": "http", "host": "{store.url}", '
                                                    f'"login": "{KEY}", "password": "{SECRET}"}}')
    c = EumetsatClient(conn_id="eumetsat_test")
    g = c.granules("ascat_somo12", date(2017, 2, 20))[0]
    first = c.token()
    store.tokens.discard(first)  # the server forgets it, as when it expires early
    assert c.download(g, tmp_path).exists() and c.token() != first
    assert c.credentials.source == "conn:eumetsat_test"
