"""End to end: ``airflow dags test daily_soil_moisture`` against PostgreSQL (when available), the S3
server and the MLflow server, on real Hawaii data.

Setup goes through the same paths as production: granules presented in the landing zone, the store
seeded by the bulk path, the models trained, registered and promoted by the ``train_models`` DAG.
"""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
DAY = date(2018, 6, 2)
BAD_DAY = date(2018, 6, 3)


def _airflow(env: dict, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(Path(sys.executable).parent / "airflow"), *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"airflow {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def _objects(s3, bucket: str, prefix: str) -> dict[str, str]:
    """key -> sha256 metadata (or ETag) of every object under prefix."""
    from smflow.s3 import list_keys

    out = {}
    for key in list_keys(s3, bucket, prefix):
        head = s3.head_object(Bucket=bucket, Key=key)
        out[key] = head.get("Metadata", {}).get("sha256") or head["ETag"]
    return out


@pytest.fixture(scope="module")
def prepared(stack, s3_client, airflow_env):
    """Landing zone granules, seeded store and champion models (via the train_models DAG)."""
    from smflow.operators.daily import INPUT_PRODUCTS, ML_HISTORY_DAYS, TC_WINDOW_DAYS
    from smflow.operators.training import seed_store
    from infra.archive_stand_in import ArchiveStandIn

    settings = stack
    ArchiveStandIn(settings, s3=s3_client).publish_range(INPUT_PRODUCTS, DAY - timedelta(days=1), BAD_DAY)
    seed_store((DAY - timedelta(days=TC_WINDOW_DAYS + ML_HISTORY_DAYS)).isoformat(), (DAY - timedelta(days=1)).isoformat(),
               settings=settings)
    # The merging candidates with few epochs and without the LOSO folds: the DAG's wiring is tested
    # here; tests/ml/test_train_merging.py scores them leave-one-station-out.
    _airflow(airflow_env, "dags", "test", "train_models",
             "-c", '{"train_start": "2017-01-01", "train_end": "2017-12-31", "evaluate_start": "2018-01-01", '
                   '"evaluate_end": "2018-12-31", "merging_loso": false, "merging_epochs": 4}', timeout=1200)
    from smflow.ml.registry import champion_ref, configure

    configure(settings)
    for name in ("tc_merging", "soil_moisture_merging", "sm2rain"):
        champion_ref(name)  # LookupError with the reason if the evaluation gate did not promote it
    return settings


def test_daily_dag_publishes_products_with_right_variables_units_and_ranges(prepared, s3_client, airflow_env):
    import xarray as xr

    settings = prepared
    _airflow(airflow_env, "dags", "test", "daily_soil_moisture", DAY.isoformat())
    prefix = f"daily/{DAY:%Y/%m/%d}/"
    objs = _objects(s3_client, settings.products_bucket, prefix)
    names = {k.rsplit("/", 1)[-1] for k in objs}
    for name in ("merged-sm", "sm2rain-precip", "tc-diagnostics"):
        assert f"smflow_{name}_{DAY:%Y%m%d}.nc" in names
    assert sum(n.endswith(".png") for n in names) >= 3

    def open_nc(name):
        body = s3_client.get_object(Bucket=settings.products_bucket, Key=f"{prefix}smflow_{name}_{DAY:%Y%m%d}.nc")["Body"].read()
        return xr.load_dataset(io.BytesIO(body), engine="h5netcdf")

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
    assert len(stac_keys) == 1


def test_same_date_twice_changes_no_object_or_checksum(prepared, s3_client, airflow_env):
    settings = prepared
    _airflow(airflow_env, "dags", "test", "daily_soil_moisture", DAY.isoformat())
    before = _objects(s3_client, settings.products_bucket, "")
    _airflow(airflow_env, "dags", "test", "daily_soil_moisture", DAY.isoformat())
    after = _objects(s3_client, settings.products_bucket, "")
    assert after == before
    assert not [k for k in after if k.startswith("staging/")]


def test_corrupted_granule_is_quarantined_and_the_run_goes_on(prepared, s3_client, airflow_env):
    import json

    import xarray as xr

    settings = prepared
    from smflow.landing import LandingZone

    lz = LandingZone(settings, s3=s3_client)
    key = lz.granule_key("smap", BAD_DAY)
    good = s3_client.get_object(Bucket=settings.landing_bucket, Key=key)["Body"].read()
    s3_client.put_object(Bucket=settings.landing_bucket, Key=key, Body=good[: len(good) // 3])  # truncated
    try:
        _airflow(airflow_env, "dags", "test", "daily_soil_moisture", BAD_DAY.isoformat())
        q = _objects(s3_client, settings.store_bucket, f"quarantine/smap/{BAD_DAY:%Y%m%d}/")
        assert any(k.endswith(".nc") for k in q), q
        report_key = next(k for k in q if k.endswith(".validation.json"))
        report = json.loads(s3_client.get_object(Bucket=settings.store_bucket, Key=report_key)["Body"].read())
        assert key.rsplit("/", 1)[-1] in json.dumps(report)
        # the landing original is kept, and the product says which input was missing
        assert s3_client.head_object(Bucket=settings.landing_bucket, Key=key)["ContentLength"] == len(good) // 3
        body = s3_client.get_object(Bucket=settings.products_bucket,
                                    Key=f"daily/{BAD_DAY:%Y/%m/%d}/smflow_merged-sm_{BAD_DAY:%Y%m%d}.nc")["Body"].read()
        attrs = xr.load_dataset(io.BytesIO(body), engine="h5netcdf").attrs
        assert "smap" in str(attrs["missing_inputs"])
        assert "/tmp" not in str(attrs["missing_inputs"]) and key in str(attrs["missing_inputs"])
        # a re-run of the day with the same bad granule gives the same bytes (no temporary path in them)
        before = _objects(s3_client, settings.products_bucket, f"daily/{BAD_DAY:%Y/%m/%d}/")
        _airflow(airflow_env, "dags", "test", "daily_soil_moisture", BAD_DAY.isoformat())
        assert _objects(s3_client, settings.products_bucket, f"daily/{BAD_DAY:%Y/%m/%d}/") == before
    finally:
        s3_client.put_object(Bucket=settings.landing_bucket, Key=key, Body=good)


def test_daily_dag_applies_an_ml_champion(prepared, s3_client, airflow_env):
    """A scientist promotes the BMA ensemble: the next run applies it, with its members and uncertainty."""
    import xarray as xr
    from mlflow import MlflowClient

    from smflow.ml.registry import champion_ref

    settings = prepared
    client = MlflowClient()
    previous = champion_ref("soil_moisture_merging")
    bma = max((v for v in client.search_model_versions("name='soil_moisture_merging'") if v.tags.get("method") == "bma"),
              key=lambda v: int(v.version))
    client.set_registered_model_alias("soil_moisture_merging", "champion", bma.version)
    try:
        _airflow(airflow_env, "dags", "test", "daily_soil_moisture", DAY.isoformat())
        body = s3_client.get_object(Bucket=settings.products_bucket,
                                    Key=f"daily/{DAY:%Y/%m/%d}/smflow_merged-sm_{DAY:%Y%m%d}.nc")["Body"].read()
        sm = xr.load_dataset(io.BytesIO(body), engine="h5netcdf")
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
