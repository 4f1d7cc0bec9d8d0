"""infra/providers/hawaii.py: the stand-in archives of the daily inputs, through the real clients.

The server runs in a thread (steered in-process), as ``python -m infra.providers serve`` (a
subprocess on a free port) and as the stack's service ``providers`` (a private stack that starts
only it). A few days are cut; each test starts from a reset publication state.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
from datetime import date
from pathlib import Path

import pytest
import requests
import xarray as xr

from infra.archive_stand_in import ArchiveStandIn
from infra.providers.hawaii import HawaiiArchive, control
from smflow.archive.base import ArchiveError
from smflow.archive.cds import CdsClient, era5_land_request
from smflow.archive.cmr import COLLECTIONS, CmrClient
from smflow.archive.credentials import Credentials

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN = "bearer-7f3c"
CDS_TOKEN = "0a1b2c3d4e5f6a7b8c9d"
DAY = date(2018, 6, 1)
NEXT = date(2018, 6, 2)
SPL3SMP, SPL3SMP_VERSION = COLLECTIONS["smap"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    with HawaiiArchive(token=TOKEN, cds_token=CDS_TOKEN, cds_key="4242:legacy-key",
                       cache_dir=tmp_path_factory.mktemp("cache")) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh(archive):
    archive.reset()
    yield


def cmr(archive) -> CmrClient:
    return CmrClient(archive.url, credentials=Credentials(token=TOKEN))


def cds(archive) -> CdsClient:
    return CdsClient(archive.cds_url, credentials=Credentials(token=CDS_TOKEN), sleep_max=1)


def smap_day(archive, day: date = DAY) -> list:
    return cmr(archive).search(SPL3SMP, version=SPL3SMP_VERSION, temporal=(day, day))


def umm_items(archive, day: date = DAY) -> list[dict]:
    r = requests.get(f"{archive.url}/search/granules.umm_json", timeout=10, params={
        "short_name": SPL3SMP, "temporal": f"{day}T00:00:00Z,{day}T23:59:59Z"})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# -- CMR ------------------------------------------------------------------------------------------
def test_cmr_finds_the_days_granule_and_the_download_verifies(archive, tmp_path):
    (granule,) = smap_day(archive)
    assert granule.name == "SPL3SMP.009:smap_20180601.nc" and granule.filename == "smap_20180601.nc"
    assert granule.checksum_algorithm == "SHA-256" and granule.size > 0
    path = cmr(archive).download(granule, tmp_path)
    assert sha256(path) == granule.checksum and path.stat().st_size == granule.size
    with xr.open_dataset(path) as ds:
        days = {str(t)[:10] for t in ds["time"].values}
        assert ds.attrs["smflow_day"] == "2018-06-01"
    assert days == {"2018-06-01"}
    (gldas,) = cmr(archive).search(COLLECTIONS["gldas"][0], temporal=(DAY, DAY))
    assert gldas.filename == "gldas_20180601.nc"


def test_umm_record_as_cmr_writes_it(archive):
    (item,) = umm_items(archive)
    meta, umm = item["meta"], item["umm"]
    assert meta["provider-id"] == "LOCAL" and meta["revision-id"] == 1 and meta["native-id"] == "smap_20180601.nc"
    assert umm["CollectionReference"] == {"ShortName": "SPL3SMP", "Version": "009"}
    assert umm["TemporalExtent"]["RangeDateTime"] == {"BeginningDateTime": "2018-06-01T00:00:00.000Z",
                                                      "EndingDateTime": "2018-06-01T23:59:59.000Z"}
    (url,) = [u["URL"] for u in umm["RelatedUrls"] if u["Type"] == "GET DATA"]
    assert url == f"{archive.url}/data/SPL3SMP/smap_20180601.nc"
    r = requests.get(f"{archive.url}/search/granules.umm_json", timeout=10,
                     params={"short_name": "SPL3SMP", "temporal": "2018-06-01T00:00:00Z,2018-06-03T23:59:59Z",
                             "page_size": 2})
    assert r.headers["CMR-Hits"] == "3" and len(r.json()["items"]) == 2
    assert smap_day(archive, date(2030, 1, 1)) == []  # outside the coverage
    anonymous = requests.get(url, timeout=10)
    assert anonymous.status_code == 401 and "WWW-Authenticate" in anonymous.headers


def test_a_withheld_granule_is_not_found_until_released(archive):
    archive.withhold("smap", DAY)
    assert smap_day(archive) == []
    url = f"{archive.url}/data/SPL3SMP/smap_20180601.nc"
    assert requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).status_code == 404
    assert len(smap_day(archive, NEXT)) == 1  # other days are unaffected
    archive.release("smap", DAY)
    assert len(smap_day(archive)) == 1


def test_publish_until_hides_the_later_days_everywhere(archive, tmp_path):
    archive.publish_until(DAY)
    assert len(smap_day(archive)) == 1 and smap_day(archive, NEXT) == []
    collection = requests.get(f"{archive.url}/api/catalogue/v1/collections/reanalysis-era5-land", timeout=10).json()
    assert collection["type"] == "Collection" and collection["id"] == "reanalysis-era5-land"
    assert collection["extent"]["temporal"]["interval"][0][1] == "2018-06-01T23:00:00Z"
    with pytest.raises(ArchiveError, match="valid combination"):
        cds(archive).retrieve("reanalysis-era5-land", era5_land_request(NEXT), tmp_path / "x.nc")
    assert not list(tmp_path.iterdir())
    archive.publish_until(NEXT, product="smap")  # a product's own limit wins over the global one
    assert len(smap_day(archive, NEXT)) == 1
    assert archive.published_until("era5_land") == DAY


def test_reprocessing_changes_bytes_checksum_and_revision(archive, tmp_path):
    (before,) = smap_day(archive)
    archive.reprocess("smap", DAY)
    (after,) = smap_day(archive)
    assert after.checksum != before.checksum
    assert umm_items(archive)[0]["meta"]["revision-id"] == 2
    path = cmr(archive).download(after, tmp_path)
    with xr.open_dataset(path) as ds:
        assert ds.attrs["product_version"] == "R2" and "reprocessed as R2" in ds.attrs["history"]
    # Deterministic: the same version cut anew elsewhere has the same bytes.
    again = ArchiveStandIn().write_granule("smap", DAY, tmp_path / "again.nc", product_version="R2")
    assert sha256(again) == after.checksum


@pytest.mark.parametrize("mode", ["checksum", "truncate"])
def test_a_corrupt_download_is_an_archive_error_and_leaves_no_file(archive, tmp_path, mode):
    archive.corrupt("smap", DAY, mode)
    (granule,) = smap_day(archive)
    with pytest.raises(ArchiveError):
        cmr(archive).download(granule, tmp_path)
    assert not list(tmp_path.iterdir())
    archive.heal("smap", DAY)
    assert sha256(cmr(archive).download(granule, tmp_path)) == granule.checksum


def test_wrong_date_serves_the_next_days_granule_under_this_days_name(archive, tmp_path):
    archive.corrupt("smap", DAY, "wrong_date")
    (item,) = umm_items(archive)
    assert item["umm"]["TemporalExtent"]["RangeDateTime"]["BeginningDateTime"] == "2018-06-02T00:00:00.000Z"
    assert item["meta"]["native-id"] == "smap_20180601.nc"
    archive.corrupt("era5_land", DAY, "wrong_date")
    path = cds(archive).retrieve("reanalysis-era5-land", era5_land_request(DAY), tmp_path / "e.nc")
    assert path.read_bytes() == archive.granule_path("era5_land", NEXT).read_bytes()


def test_rate_limit_and_outage_answer_then_recover(archive):
    search = f"{archive.url}/search/granules.umm_json?short_name=SPL3SMP&page_size=1"
    archive.rate_limit(1, retry_after=7)
    limited = requests.get(search, timeout=10)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert requests.get(search, timeout=10).status_code == 200
    archive.outage(2)
    data = f"{archive.url}/data/SPL3SMP/smap_20180601.nc"
    answers = [requests.get(url, timeout=10) for url in (search, data, search)]
    assert [a.status_code for a in answers] == [503, 503, 200]
    assert "Retry-After" not in answers[0].headers
    archive.outage(1)
    with pytest.raises(ArchiveError, match="503"):
        smap_day(archive)


# -- CDS ------------------------------------------------------------------------------------------
def test_cds_new_protocol_delivers_the_days_cut(archive, tmp_path):
    path = cds(archive).retrieve("reanalysis-era5-land", era5_land_request(DAY), tmp_path / "era5.nc")
    assert path.read_bytes() == archive.granule_path("era5_land", DAY).read_bytes()
    with xr.open_dataset(path) as ds:
        assert {str(t)[:10] for t in ds["time"].values} == {"2018-06-01"}
    seen = " ".join(archive.requests)
    assert "POST /api/retrieve/v1/processes/reanalysis-era5-land/execution" in seen
    request = {"year": "2018", "month": ["06"], "day": "02", "variable": ["volumetric_surface_soil_moisture"]}
    c3s = cds(archive).retrieve("satellite-soil-moisture", request, tmp_path / "c3s.nc")
    assert c3s.read_bytes() == archive.granule_path("c3s", NEXT).read_bytes()


def test_cds_legacy_protocol_delivers_the_cut_too(archive, tmp_path):
    client = CdsClient(archive.cds_url, credentials=Credentials(username="4242", password="legacy-key"), sleep_max=1)
    path = client.retrieve("reanalysis-era5-land", era5_land_request(DAY), tmp_path / "era5.nc")
    assert path.read_bytes() == archive.granule_path("era5_land", DAY).read_bytes()


def test_cds_refuses_several_days_and_unknown_datasets(archive):
    headers = {"PRIVATE-TOKEN": CDS_TOKEN}
    execution = f"{archive.url}/api/retrieve/v1/processes/%s/execution"
    several = {"inputs": {"year": ["2018"], "month": ["06"], "day": ["01", "02"]}}
    r = requests.post(execution % "reanalysis-era5-land", json=several, headers=headers, timeout=10)
    assert r.status_code == 400 and {"title", "detail"} <= set(r.json()) and "one UTC day" in r.json()["detail"]
    unknown = requests.post(execution % "reanalysis-era5", json={"inputs": {}}, headers=headers, timeout=10)
    assert unknown.status_code == 404 and unknown.json()["title"] == "process not found"
    assert requests.get(f"{archive.url}/api/catalogue/v1/collections/nope", timeout=10).status_code == 404


# -- control, cache, CLI, stack ------------------------------------------------------------------
def test_control_over_http_needs_the_token(archive):
    state = control(archive.url, TOKEN, "withhold", product="smap", day=DAY)
    assert state["withheld"] == [["smap", "2018-06-01"]] and not archive.is_published("smap", DAY)
    assert control(archive.url, TOKEN, "state")["withheld"] == [["smap", "2018-06-01"]]
    with pytest.raises(urllib.error.HTTPError) as refused:
        control(archive.url, "not-the-token", "reset")
    assert refused.value.code == 401
    with pytest.raises(urllib.error.HTTPError) as bad:
        control(archive.url, TOKEN, "corrupt", product="smap", day=DAY, mode="melted")
    assert bad.value.code == 400 and "mode" in json.loads(bad.value.read())["error"]


def test_prepared_and_on_demand_cuts_are_the_same_bytes(archive, tmp_path):
    days = (date(2018, 5, 31), DAY)  # 05-31: no SMAP overpass, an empty granule
    prepared = HawaiiArchive(cache_dir=tmp_path, products=("smap", "era5_land"))
    prepared.prepare(*days)
    for product in ("smap", "era5_land"):
        for day in days:
            assert prepared._cached(product, day, 1).is_file()  # cut by prepare, not on demand
            assert sha256(prepared.granule_path(product, day)) == sha256(archive.granule_path(product, day))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ok(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else proc.returncode
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer 200 within {timeout} s")


def test_cli_serves_the_same_bytes_from_another_process(archive, tmp_path):
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"token": "cli-token", "cds_token": "cli-cds"}))
    tokens.chmod(0o644)
    argv = [sys.executable, "-m", "infra.providers", "serve", "--port", str(_free_port()),
            "--cache-dir", str(tmp_path / "cache"), "--token-file", str(tokens)]
    refused = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "chmod 600" in refused.stderr
    tokens.chmod(0o600)
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{argv[5]}"
        _wait_ok(f"{url}/search/granules.umm_json?short_name=SPL3SMP&page_size=1", proc)
        (granule,) = CmrClient(url, credentials=Credentials(token="cli-token")).search(
            SPL3SMP, temporal=(DAY, DAY))
        (local,) = smap_day(archive)
        assert granule.checksum == local.checksum  # same day, same bytes, across processes
        assert control(url, "cli-token", "withhold", product="smap", day=DAY)["withheld"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "stopped" in out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_stack_starts_the_providers_with_their_connections(tmp_path):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMFLOW_", "AIRFLOW", "MLFLOW_", "AWS_"))}
    env.update(SMFLOW_HOME=str(home), SMFLOW_POSTGRES_URL="off", SMFLOW_PROVIDERS_PORT=str(_free_port()))
    stack = [sys.executable, str(REPO_ROOT / "infra" / "stack.py")]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*stack, *args, "--only", "providers"], env=env, capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)

    started = run("start")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert run("status").returncode == 0
        from smflow.config import _read_env_file

        values = _read_env_file(home / "stack.env")
        url = values["SMFLOW_PROVIDERS_URL"]
        assert url == f"http://127.0.0.1:{env['SMFLOW_PROVIDERS_PORT']}"
        earthdata = json.loads(values["AIRFLOW_CONN_SMFLOW_EARTHDATA"])
        cds_conn = json.loads(values["AIRFLOW_CONN_SMFLOW_CDS"])
        assert earthdata["conn_type"] == cds_conn["conn_type"] == "http"
        assert earthdata["host"] == url and cds_conn["host"] == f"{url}/api" and ":" not in cds_conn["password"]
        assert (home / "providers" / "credentials.json").stat().st_mode & 0o077 == 0
        (granule,) = CmrClient(earthdata["host"], credentials=Credentials(token=earthdata["password"])).search(
            SPL3SMP, temporal=(DAY, DAY))
        assert CmrClient(url, credentials=Credentials(token=earthdata["password"])).download(granule, tmp_path)
        again = run("start")
        assert "already running" in again.stdout, again.stdout + again.stderr
    finally:
        pid = int((home / "run" / "providers.pid").read_text()) if (home / "run" / "providers.pid").is_file() else None
        stopped = run("stop")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert pid is not None and not _alive(pid)
    assert run("status").returncode == 1
