"""End to end: ``airflow dags test daily_soil_moisture`` against PostgreSQL (when available), the S3
server and the MLflow server, on real Hawaii data fetched through the providers' protocols.

Setup goes through the same paths as production: the day's granules are searched for and fetched
by the DAG from the provider archives' stand-in (``infra.providers.hawaii``: NASA CMR + Earthdata
and Copernicus CDS, serving the bundled Hawaii sample, run here in a thread), the store seeded by
the bulk path, the models trained, registered and promoted by the ``train_models`` DAG.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
DAY = date(2018, 6, 2)
BAD_DAY = date(2018, 6, 3)
LATE_DAY = date(2018, 6, 4)
TOKEN = "edl-" + uuid.uuid4().hex
CDS_TOKEN = uuid.uuid4().hex
#: stdout + stderr of every Airflow command of this module (checked for secrets at the end).
OUTPUTS: list[str] = []


def _airflow(env: dict, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(Path(sys.executable).parent / "airflow"), *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    OUTPUTS.append(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise AssertionError(f"airflow {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def _published(s3, settings, day: date, name: str):
    """The day's ``name`` netCDF as published: resolved through the day's STAC item (the commit point)."""
    import xarray as xr

    from smflow.publish.publisher import published_assets

    key = published_assets(s3, settings.products_bucket, day)[name]
    return xr.load_dataset(io.BytesIO(s3.get_object(Bucket=settings.products_bucket, Key=key)["Body"].read()),
                           engine="h5netcdf")


def _metadata(env: dict, day: date) -> dict:
    """What the Airflow UI shows of the day's daily_soil_moisture run, read from the metadata DB:
    the rendered names of the mapped task instances and the extra of the asset events it made."""
    code = f"""
import json
from sqlalchemy import select
from airflow.models.asset import AssetEvent
from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session
with create_session() as s:
    run = s.scalars(select(DagRun).where(DagRun.dag_id == "daily_soil_moisture")
                    .order_by(DagRun.id.desc())).all()
    run = next(r for r in run if r.logical_date.date().isoformat() == "{day.isoformat()}")
    tis = s.scalars(select(TaskInstance).where(TaskInstance.run_id == run.run_id,
                                               TaskInstance.dag_id == "daily_soil_moisture")).all()
    names = {{}}
    for ti in tis:
        if ti.map_index >= 0:
            names.setdefault(ti.task_id, []).append(ti.rendered_map_index)
    events = s.scalars(select(AssetEvent).where(AssetEvent.source_run_id == run.run_id)).all()
    print("RESULT" + json.dumps({{"names": {{k: sorted(v) for k, v in names.items()}},
                                  "extras": [e.extra for e in events]}}))
"""
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT")), None)
    assert line, out.stdout[-2000:] + out.stderr[-2000:]
    return json.loads(line[len("RESULT"):])


def _objects(s3, bucket: str, prefix: str) -> dict[str, str]:
    """key -> sha256 metadata (or ETag) of every object under prefix."""
    from smflow.s3 import list_keys

    out = {}
    for key in list_keys(s3, bucket, prefix):
        head = s3.head_object(Bucket=bucket, Key=key)
        out[key] = head.get("Metadata", {}).get("sha256") or head["ETag"]
    return out


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """The provider archives' stand-in (CMR + CDS) in a thread, with this module's tokens."""
    from infra.providers.hawaii import HawaiiArchive

    with HawaiiArchive(token=TOKEN, cds_token=CDS_TOKEN, cache_dir=tmp_path_factory.mktemp("cuts")) as server:
        server.prepare(DAY - timedelta(days=1), LATE_DAY)
        yield server


@pytest.fixture(scope="module")
def fetch_env(airflow_env, archive):
    """``airflow`` CLI environment whose archive connections point at the stand-in."""
    return {**airflow_env,
            "AIRFLOW_CONN_SMFLOW_EARTHDATA": json.dumps({"conn_type": "http", "host": archive.url, "password": TOKEN}),
            "AIRFLOW_CONN_SMFLOW_CDS": json.dumps({"conn_type": "http", "host": f"{archive.url}/api",
                                                   "password": CDS_TOKEN}),
            # the 0.01 deg task (a ~30 s LSTM fit per day) runs in the first test only
            "SMFLOW_DOWNSCALING": "off"}


@pytest.fixture(scope="module")
def prepared(stack, s3_client, fetch_env):
    """Seeded store and champion models (via the train_models DAG); the granules come from the stand-in."""
    from smflow.operators.daily import ML_HISTORY_DAYS, TC_WINDOW_DAYS
    from smflow.operators.training import seed_store

    settings = stack
    seed_store((DAY - timedelta(days=TC_WINDOW_DAYS + ML_HISTORY_DAYS)).isoformat(), (DAY - timedelta(days=1)).isoformat(),
               settings=settings)
    # The merging candidates with few epochs and without the LOSO folds: the DAG's wiring is tested
    # here; tests/ml/test_train_merging.py scores them leave-one-station-out.
    _airflow(fetch_env, "dags", "test", "train_models",
             "-c", '{"train_start": "2017-01-01", "train_end": "2017-12-31", "evaluate_start": "2018-01-01", '
                   '"evaluate_end": "2018-12-31", "merging_loso": false, "merging_epochs": 4, '
                   '"downscaling": false}', timeout=1200)
    from smflow.ml.registry import champion_ref, configure

    configure(settings)
    for name in ("tc_merging", "soil_moisture_merging", "sm2rain"):
        champion_ref(name)  # LookupError with the reason if the evaluation gate did not promote it
    return settings


def test_daily_dag_publishes_products_with_right_variables_units_and_ranges(prepared, archive, s3_client, fetch_env):
    import xarray as xr

    settings = prepared
    _airflow({**fetch_env, "SMFLOW_DOWNSCALING": "on"}, "dags", "test", "daily_soil_moisture", DAY.isoformat())
    prefix = f"daily/{DAY:%Y/%m/%d}/"
    objs = _objects(s3_client, settings.products_bucket, prefix)
    names = {k.rsplit("/", 1)[-1] for k in objs}
    for name in ("merged-sm", "sm2rain-precip", "tc-diagnostics"):
        assert f"smflow_{name}_{DAY:%Y%m%d}.nc" in names
    assert sum(n.endswith(".png") for n in names) >= 3

    def open_nc(name):
        return _published(s3_client, settings, DAY, name)

    # What operators see: mapped task instances named by their input; the run summary on the
    # asset events (inputs used / missing, models, QC)
    ui = _metadata(fetch_env, DAY)
    inputs = ["c3s", "era5_land", "gldas", "smap"]
    for task_id in ("wait_for_granule", "fetch_granule", "ingest_granule"):
        assert ui["names"][task_id] == inputs, (task_id, ui["names"])
    assert len(ui["extras"]) == 4  # 3 coarse products + the 0.01 deg one
    summary = next(e for e in ui["extras"] if "qc" in e)
    fine = next(e for e in ui["extras"] if "method" in e)
    from smflow.catalog import pipeline

    assert fine["status"] == "ok" and fine["method"] == pipeline("daily_soil_moisture").downscaling_method
    item = json.loads(s3_client.get_object(Bucket=settings.products_bucket, Key=fine["keys"][-1])["Body"].read())
    coarse_links = [l["href"] for l in item["links"] if l["rel"] == "derived_from" and "merged-sm" in l["href"]]
    assert len(coarse_links) == 1 and f"{DAY:%Y/%m/%d}" in coarse_links[0]  # the published coarse day
    assert item["properties"]["smflow:mass_conservation"]["passed"]
    assert summary["day"] == DAY.isoformat() and summary["qc"] == "passed"
    assert set(summary["inputs_used"]) | {m.split(":")[0] for m in summary["inputs_missing"]} >= {"era5_land", "gldas"}
    assert "champion" in summary["models"]["sm2rain_model"] and "champion" in summary["models"]["tc_merging_model"]

    sm = open_nc("merged-sm")
    assert sm.attrs["Conventions"].startswith("CF-1.8")
    assert sm["soil_moisture"].attrs["units"] == "m3 m-3"
    v = sm["soil_moisture"].values
    assert np.isfinite(v).sum() >= 40, "merged soil moisture should cover most of the 84 land cells"
    assert np.nanmin(v) >= 0.0 and np.nanmax(v) <= 0.7
    assert "tc_merging" in sm.attrs["tc_merging_model"] and "champion" in sm.attrs["tc_merging_model"]
    rain = open_nc("sm2rain-precip")["precipitation_amount"]
    assert rain.attrs["units"] == "kg m-2" and rain.attrs["standard_name"] == "precipitation_amount"
    assert np.nanmin(rain.values) >= 0 and np.nanmax(rain.values) < 500 and np.isfinite(rain.values).sum() >= 40
    tc = open_nc("tc-diagnostics")
    ev = tc["error_variance"].values
    assert np.nanmin(ev) > 0 and np.nanmax(ev) < 0.05
    assert set(tc["source"].values) == {"smap", "era5_land", "gldas"}
    r = tc["correlation_with_truth"].values
    assert np.nanmin(r) >= -1 and np.nanmax(r) <= 1
    # moving-block bootstrap intervals around the point estimates, where TC is resolved
    resolved = tc["tc_resolved"].values[0] == 1
    assert resolved.sum() >= 20
    for name in ("error_variance", "correlation_with_truth", "snr_db"):
        assert tc[name].attrs["ancillary_variables"] == f"{name}_lower {name}_upper"
        point = tc[name].values[0][:, resolved]
        lower, upper = tc[f"{name}_lower"].values[0][:, resolved], tc[f"{name}_upper"].values[0][:, resolved]
        both = np.isfinite(lower) & np.isfinite(upper)
        # NaN where too few resamples resolve TC: cells on the edge of the resolution rules
        assert both.mean() > 0.8, f"{name}: intervals missing in {1 - both.mean():.0%} of resolved cells"
        assert np.all(upper[both] > lower[both]), f"{name}: empty or inverted intervals"
        inside = (point[both] >= lower[both]) & (point[both] <= upper[both])
        assert inside.mean() > 0.9, f"{name}: point estimate outside its interval in {1 - inside.mean():.0%} of cells"
    assert np.all(tc["tc_block_length"].values[0][resolved] >= 1)
    assert "95%" in tc["error_variance_lower"].attrs["long_name"]
    # GLDAS top-layer soil temperature on the Big Island stays above 284 K: nothing is masked
    frozen = open_nc("sm2rain-precip")["frozen_soil"]
    assert frozen.attrs["flag_meanings"] == "not_frozen frozen_soil_or_snow"
    assert int(np.nansum(frozen.values == 1)) == 0

    stac_keys = [k for k in _objects(s3_client, settings.products_bucket, "stac/items/") if DAY.strftime("%Y%m%d") in k]
    assert sorted(stac_keys) == [f"stac/items/smflow-daily-1km-{DAY:%Y%m%d}.json", f"stac/items/smflow-daily-{DAY:%Y%m%d}.json"]
    stac_keys = [k for k in stac_keys if "-1km-" not in k]

    # Fetched from the providers: landed with their provenance, named in the lineage and the STAC links.
    from smflow.landing import LandingZone

    zone = LandingZone(settings, s3=s3_client)
    for product, provider in (("smap", "cmr"), ("gldas", "cmr"), ("era5_land", "cds"), ("c3s", "cds")):
        meta = zone.head(zone.granule_key(product, DAY))["Metadata"]
        assert meta["provider"] == provider and meta["granule-id"], (product, meta)
        assert meta["source-url"].startswith(archive.url)
    assert zone.head(zone.granule_key("gldas", DAY))["Metadata"]["source-checksum"] == \
        zone.head(zone.granule_key("gldas", DAY))["Metadata"]["sha256"]
    provenance = json.loads(sm.attrs["input_granule_provenance"])
    stored = {r["product"] for r in provenance}
    assert {"gldas", "era5_land"} <= stored, stored  # SMAP has no overpass on 2018-06-02 (empty granule)
    granules = sm.attrs["input_granules"].splitlines()
    assert sorted(granules) == sorted(r["url"] for r in provenance) and all(g.startswith(archive.url) for g in granules)
    item = json.loads(s3_client.get_object(Bucket=settings.products_bucket, Key=stac_keys[0])["Body"].read())
    derived = {link["href"]: link for link in item["links"] if link["rel"] == "derived_from"}
    assert set(derived) == set(granules)
    gldas = next(link for link in derived.values() if link.get("smflow:product") == "gldas")
    assert gldas["smflow:provider"] == "cmr" and gldas["smflow:collection"] == "GLDAS_NOAH025_3H"
    assert gldas["file:checksum"].startswith("1220")  # SHA-256 multihash of the provider's checksum


def test_same_date_twice_changes_no_object_or_checksum(prepared, s3_client, fetch_env):
    settings = prepared
    _airflow(fetch_env, "dags", "test", "daily_soil_moisture", DAY.isoformat())
    before = _objects(s3_client, settings.products_bucket, "")
    _airflow(fetch_env, "dags", "test", "daily_soil_moisture", DAY.isoformat())
    after = _objects(s3_client, settings.products_bucket, "")
    assert after == before
    assert not [k for k in after if k.startswith("staging/")]


def test_a_corrupt_and_a_wrong_date_granule_are_not_landed_and_the_run_goes_on(prepared, archive, s3_client, fetch_env):
    """The provider sends SMAP bytes that do not match its SHA-256, and GLDAS of the next day."""
    import xarray as xr

    from smflow.landing import LandingZone

    settings = prepared
    zone = LandingZone(settings, s3=s3_client)

    def landed(product):  # ETag of the landed granule (None when absent)
        head = zone.head(zone.granule_key(product, BAD_DAY))
        return head and head["ETag"]

    before = {p: landed(p) for p in ("smap", "gldas")}  # a good granule may be there from an earlier run
    archive.corrupt("smap", BAD_DAY, "checksum")
    archive.corrupt("gldas", BAD_DAY, "wrong_date")
    try:
        _airflow(fetch_env, "dags", "test", "daily_soil_moisture", BAD_DAY.isoformat())
        # never landed (whatever was landed stays as it was); the failed fetch is recorded with its reason
        assert {p: landed(p) for p in ("smap", "gldas")} == before
        failure = json.loads(s3_client.get_object(Bucket=settings.store_bucket,
                                                  Key=f"fetch-failures/smap/{BAD_DAY:%Y%m%d}.json")["Body"].read())
        assert "checksum mismatch" in failure["reason"] and "3 download attempts" in failure["reason"]
        assert failure["granule"]["provider"] == "cmr" and failure["granule"]["checksum"]
        attrs = _published(s3_client, settings, BAD_DAY, "merged-sm").attrs
        missing = str(attrs["missing_inputs"])
        assert "smap: failed" in missing and "checksum mismatch" in missing, missing
        assert "gldas: refused" in missing and "2018-06-04" in missing, missing
        assert "/tmp" not in missing
        # a re-run of the day with the same faults gives the same bytes
        before = _objects(s3_client, settings.products_bucket, f"daily/{BAD_DAY:%Y/%m/%d}/")
        _airflow(fetch_env, "dags", "test", "daily_soil_moisture", BAD_DAY.isoformat())
        assert _objects(s3_client, settings.products_bucket, f"daily/{BAD_DAY:%Y/%m/%d}/") == before
    finally:
        archive.heal("smap", BAD_DAY)
        archive.heal("gldas", BAD_DAY)


def test_a_day_without_any_merged_input_ends_as_a_recorded_no_product(prepared, archive, s3_client, fetch_env):
    """SMAP, ERA5-Land and GLDAS never come: the run succeeds, says why, and leaves nothing staged."""
    settings = prepared
    day = date(2018, 6, 6)
    for product in ("smap", "era5_land", "gldas"):
        archive.withhold(product, day)
    try:
        _airflow(fetch_env, "dags", "test", "daily_soil_moisture", day.isoformat(), "-c",
                 json.dumps({"granule_wait_hours": 0.002, "granule_poke_seconds": 2}))  # not a failed run
        record = json.loads(s3_client.get_object(Bucket=settings.store_bucket,
                                                 Key=f"outcomes/daily/{day:%Y%m%d}.json")["Body"].read())
        assert record["outcome"] == "no product: all inputs missing"
        assert {"smap", "era5_land", "gldas"} <= set(record["inputs"])
        # CMR has no granule yet: missing at the deadline; the CDS extent covers the day but the
        # retrieval has no data: failed after the retries
        assert record["inputs"]["smap"].startswith("missing (") and "not yet published" in record["inputs"]["smap"]
        assert record["inputs"]["era5_land"].startswith("failed (") and "No data" in record["inputs"]["era5_land"]
        assert not _objects(s3_client, settings.products_bucket, f"daily/{day:%Y/%m/%d}/")
        assert not _objects(s3_client, settings.store_bucket, f"products-staging/{day:%Y%m%d}/")
    finally:
        for product in ("smap", "era5_land", "gldas"):
            archive.release(product, day)

    # The next day is made normally (depends_on_past is satisfied) and publishes its soil moisture;
    # SM2RAIN's rain needs the soil moisture of the day before, so it has none and says why.
    import xarray as xr

    nxt = day + timedelta(days=1)
    _airflow(fetch_env, "dags", "test", "daily_soil_moisture", nxt.isoformat())
    land = np.isfinite(_published(s3_client, settings, nxt, "merged-sm")["soil_moisture"].values)
    assert land.sum() >= 50
    with _published(s3_client, settings, nxt, "sm2rain-precip") as rain:
        status = rain["precipitation_status"]
        meanings = dict(zip(status.attrs["flag_values"].tolist(), status.attrs["flag_meanings"].split()))
        assert {meanings[int(v)] for v in status.values[land]} == {"no_soil_moisture_on_previous_day"}
        assert not np.isfinite(rain["precipitation_amount"].values).any()
        assert "precipitation_status" in rain["precipitation_amount"].attrs["ancillary_variables"]


def test_staged_products_left_by_a_dead_run_are_swept(prepared, s3_client):
    from datetime import timedelta as td

    from smflow.operators.daily import STAGING_PREFIX, sweep_stale_staging

    settings = prepared
    key = f"{STAGING_PREFIX}/20180101/smflow_daily_20180101.nc"
    s3_client.put_object(Bucket=settings.store_bucket, Key=key, Body=b"left by a run killed before publishing")
    assert key not in sweep_stale_staging(s3_client, settings)  # young: may belong to a run in flight
    assert key in sweep_stale_staging(s3_client, settings, older_than=td(0))
    assert not _objects(s3_client, settings.store_bucket, key)


def _daily_runs(env: dict) -> set[tuple[str, str, str]]:
    """(run_id, logical day, state) of every daily_soil_moisture run in the metadata DB."""
    out = _airflow(env, "dags", "list-runs", "daily_soil_moisture", "-o", "json").stdout
    # the JSON is the one line that is a list (log lines go to stdout too)
    runs = next((json.loads(line) for line in out.splitlines() if line.startswith("[{") or line == "[]"), [])
    return {(r["run_id"], str(r["logical_date"])[:10], r["state"]) for r in runs}


def _reconcile(env: dict, start: date, end: date) -> set[str]:
    """Run reconcile_archive for smap over start..end; the days whose daily run it (re)queued."""
    before = _daily_runs(env)
    _airflow(env, "dags", "test", "reconcile_archive", "2018-07-01", "-c",
             json.dumps({"start": start.isoformat(), "end": end.isoformat(), "products": ["smap"]}))
    return {day for (run_id, day, state) in _daily_runs(env) - before}


def test_a_late_and_a_reprocessed_granule_are_picked_up_by_reconcile_and_only_their_days_rerun(
        prepared, archive, s3_client, fetch_env, monkeypatch):
    import xarray as xr

    from smflow.archive.fetch import fetch_to_landing, find_granule
    from smflow.landing import LandingZone
    from smflow.operators.daily import ingest_granule
    from smflow.store import TimeSeriesStore

    settings = prepared
    zone = LandingZone(settings, s3=s3_client)
    for name in ("AIRFLOW_CONN_SMFLOW_EARTHDATA", "AIRFLOW_CONN_SMFLOW_CDS"):
        monkeypatch.setenv(name, fetch_env[name])
    first = LATE_DAY - timedelta(days=3)
    store = TimeSeriesStore(settings, s3=s3_client)
    # a clean slate for the late day (the stack's buckets outlive a test session)
    s3_client.delete_object(Bucket=zone.bucket, Key=zone.granule_key("smap", LATE_DAY))
    store.delete("smap", LATE_DAY)
    day = first
    while day < LATE_DAY:  # the days before were fetched and ingested on time (as their daily runs do)
        ingest_granule(fetch_to_landing(find_granule("smap", day), zone=zone, backoff=0.1), settings=settings)
        day += timedelta(days=1)

    # The day's run waits for SMAP (briefly here), then makes the day without it and says why.
    archive.withhold("smap", LATE_DAY)
    _airflow(fetch_env, "dags", "test", "daily_soil_moisture", LATE_DAY.isoformat(), "-c",
             json.dumps({"granule_wait_hours": 0.003, "granule_poke_seconds": 2}))
    attrs = _published(s3_client, settings, LATE_DAY, "merged-sm").attrs
    assert "smap: missing" in str(attrs["missing_inputs"]) and "not yet published" in str(attrs["missing_inputs"])
    assert zone.head(zone.granule_key("smap", LATE_DAY)) is None

    # Published late: reconcile fetches it, stores it and re-runs that day only.
    archive.release("smap", LATE_DAY)
    assert _reconcile(fetch_env, first, LATE_DAY) == {LATE_DAY.isoformat()}
    assert zone.head(zone.granule_key("smap", LATE_DAY))["Metadata"]["granule-id"]
    assert store.days("smap", LATE_DAY, LATE_DAY) == [LATE_DAY]
    # The re-run (queued by reconcile; executed here as the scheduler would) makes the day with SMAP.
    _airflow(fetch_env, "dags", "test", "daily_soil_moisture", LATE_DAY.isoformat())
    attrs = _published(s3_client, settings, LATE_DAY, "merged-sm").attrs
    assert "smap" not in str(attrs["missing_inputs"]) and "/data/SPL3SMP/" in attrs["input_granules"]

    # Reprocessed by the provider (new revision, new checksum): re-fetched, and only its day re-run.
    old = zone.head(zone.granule_key("smap", first))["Metadata"]
    archive.reprocess("smap", first)
    assert _reconcile(fetch_env, first, LATE_DAY) == {first.isoformat()}
    new = zone.head(zone.granule_key("smap", first))["Metadata"]
    assert int(new["revision"]) == int(old["revision"]) + 1 and new["sha256"] != old["sha256"]
    # (the queued re-run executed: a queued run would hold back the next day's depends_on_past)
    _airflow(fetch_env, "dags", "test", "daily_soil_moisture", first.isoformat())

    # Nothing changed since: nothing to do.
    assert _reconcile(fetch_env, first, LATE_DAY) == set()


def test_daily_dag_applies_an_ml_champion_and_a_challenger_promoted_by_evaluate_challenger(prepared, s3_client, fetch_env):
    """A scientist promotes the BMA ensemble by hand; a better TC-merging challenger is promoted by the
    ``evaluate_challenger`` DAG (what MLflow's webhook starts): the next daily run applies both."""
    import xarray as xr
    from mlflow import MlflowClient

    from smflow.ml.lifecycle import history
    from smflow.ml.registry import champion_ref, load_champion, promote
    from tests.ml.test_challenger import _register, dominant_weights

    settings = prepared
    client = MlflowClient()
    previous = champion_ref("soil_moisture_merging")
    previous_tc = champion_ref("tc_merging")
    bma = max((v for v in client.search_model_versions("name='soil_moisture_merging'") if v.tags.get("method") == "bma"),
              key=lambda v: int(v.version))
    client.set_registered_model_alias("soil_moisture_merging", "champion", bma.version)
    # The TC-merging champion becomes a worse (GLDAS-dominant, 2018 median R 0.52 vs C3S) version; a
    # new version with the 2017 least-squares fit (0.585) is registered: the DAG must promote it.
    fit, _ = load_champion("tc_merging")
    promote(_register("tc_merging", dominant_weights(fit, 2), "gldas-dominant"), reason="test: a worse champion")
    better = _register("tc_merging", fit, "least-squares fit 2017 (again)")
    try:
        _airflow(fetch_env, "dags", "test", "evaluate_challenger", "-c",
                 json.dumps({"model": "tc_merging", "version": better.version}))
        assert champion_ref("tc_merging").version == better.version
        (record,) = [m for m in history("tc_merging") if m.kind == "promotion" and m.to_version == better.version]
        assert "evaluate_challenger" in record.actor and "promoted" in record.reason
        _airflow(fetch_env, "dags", "test", "daily_soil_moisture", DAY.isoformat())
        sm = _published(s3_client, settings, DAY, "merged-sm")
        assert f"tc_merging@champion v{better.version} " in sm.attrs["tc_merging_model"]
        assert sm.attrs["merging_method"] == "bma"
        assert f"soil_moisture_merging@champion v{bma.version}" in sm.attrs["merging_model"]
        assert set(sm["member"].values) == {"rf", "lstm", "cnn"}
        assert all(f"{k}=v" in sm.attrs["member_models"] for k in ("rf", "lstm", "cnn"))
        v, u = sm["soil_moisture"].values[0], sm["soil_moisture_uncertainty"].values[0]
        land = np.isfinite(sm["source_soil_moisture"].values[0]).any(axis=0)
        assert np.isfinite(v[land]).mean() > 0.95 and np.nanmin(v) > 0 and np.nanmax(v) < 0.7
        assert np.all(u[np.isfinite(v)] > 0) and np.nanmax(u) < 0.2
        np.testing.assert_allclose(u ** 2, sm["soil_moisture_error_variance"].values[0], rtol=1e-4)
        methods = set(np.unique(sm["merge_method"].values[0][land]).tolist())
        assert methods <= {4, 5} and methods, methods  # machine_learning (partial where SMAP is missing)
        members = sm["member_soil_moisture"].values[0]
        assert np.isfinite(members[:, land]).all()
    finally:
        client.set_registered_model_alias("soil_moisture_merging", "champion", previous.version)
        client.set_registered_model_alias("tc_merging", "champion", previous_tc.version)


def test_no_credential_appears_in_any_log_of_the_run(prepared, fetch_env):
    """The archive tokens went through the connections of every run above; no log holds them."""
    logs = Path(fetch_env["AIRFLOW_HOME"]) / "logs"
    texts = list(OUTPUTS) + [p.read_text(errors="ignore") for p in logs.rglob("*") if p.is_file()]
    assert len(OUTPUTS) >= 3
    leaked = [t[:200] for t in texts if TOKEN in t or CDS_TOKEN in t]
    assert not leaked, leaked


def test_daily_dag_publishes_the_seamless_smap_with_its_source_flag(prepared, s3_client, fetch_env):
    """train_models registered smap_reconstruction (Wang & Xu 2021 ANN); the daily run applies the champion:
    SMAP where it has a retrieval, the reconstruction with its uncertainty elsewhere, the source in a CF flag."""
    from smflow.ml.reconstruction import SOURCE_FLAGS
    from smflow.ml.registry import champion_ref

    settings = prepared
    ref = champion_ref("smap_reconstruction")  # promoted: it beat ERA5-Land rescaled to SMAP on withheld days
    day = date(2018, 6, 1)  # SMAP covers most of the island; the rest is reconstructed
    _airflow(fetch_env, "dags", "test", "daily_soil_moisture", day.isoformat())
    sm = _published(s3_client, settings, day, "merged-sm")  # through the day's STAC item
    assert f"smap_reconstruction@champion v{ref.version}" in sm.attrs["smap_reconstruction_model"]
    predictors = "era5_land gldas gldas_soil_temperature doy_sin doy_cos"
    assert sm.attrs["smap_reconstruction_predictors"] == predictors
    value, unc = sm["smap_reconstructed"], sm["smap_reconstructed_uncertainty"]
    assert value.attrs["units"] == "m3 m-3" and unc.attrs["units"] == "m3 m-3"
    assert value.attrs["predictors"] == predictors
    flag = sm["smap_source"]
    assert flag.attrs["flag_meanings"].split() == [SOURCE_FLAGS[k] for k in sorted(SOURCE_FLAGS)]
    assert flag.attrs["flag_values"].tolist() == sorted(SOURCE_FLAGS)
    f, v, u = flag.values[0], value.values[0], unc.values[0]
    smap = sm["source_soil_moisture"].sel(source="smap").values[0]
    observed, rebuilt = f == 0, np.isin(f, (1, 2))
    assert observed.sum() >= 40 and rebuilt.sum() >= 1, np.unique(f, return_counts=True)
    np.testing.assert_allclose(v[observed], smap[observed], rtol=1e-6)  # retrievals are kept as they are
    assert np.isnan(smap[rebuilt]).all() and np.isfinite(v[rebuilt]).all()
    assert np.all((u[rebuilt] > 0) & (u[rebuilt] < 0.2)) and np.isnan(u[observed]).all()
    assert np.nanmin(v) > 0 and np.nanmax(v) < 0.7
    assert np.isnan(v[np.isin(f, (3, 4))]).all()  # "none" carries no value
