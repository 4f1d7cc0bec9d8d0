"""DAG integrity: every DAG imports, is acyclic, and carries owner, tags, retries and a failure callback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXPECTED = {"daily_soil_moisture", "daily_soil_moisture_ebro_pyrenees", "train_models", "seed_timeseries_store",
            "rollback_model", "evaluate_challenger", "drift_watch",
            "reconcile_archive", "store_maintenance", "train_domain_models"}


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_all_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert EXPECTED <= set(dagbag.dag_ids)


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_dag_has_owner_tags_retries_and_failure_callback(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.tags, f"{dag_id} has no tags"
    for t in dag.tasks:
        assert t.owner == "smflow", f"{dag_id}.{t.task_id} owner {t.owner!r}"
        assert t.retries >= 1, f"{dag_id}.{t.task_id} has no retries"
        assert t.on_failure_callback, f"{dag_id}.{t.task_id} has no on_failure_callback"
    # topological sort raises on a cycle
    assert len(dag.topological_sort()) == len(dag.tasks)


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_every_task_rides_out_a_five_minute_outage_with_exponential_backoff(dagbag, dag_id):
    """Retries sized for minutes-long S3 / PostgreSQL outages (issue 11): doubling delays, capped."""
    from smflow.operators.callbacks import min_retry_delays

    for t in dagbag.dags[dag_id].tasks:
        name = f"{dag_id}.{t.task_id}"
        # Airflow 3 reads True as a multiplier of 1 (constant delay): a float > 1 is needed
        assert not isinstance(t.retry_exponential_backoff, bool) and t.retry_exponential_backoff >= 2, name
        assert t.max_retry_delay is not None and t.max_retry_delay.total_seconds() <= 600, name
        delays = min_retry_delays(t.retries, t.retry_delay.total_seconds(), t.retry_exponential_backoff,
                                  t.max_retry_delay.total_seconds())
        assert sum(delays) >= 5 * 60, f"{name}: retries span only {sum(delays):.0f} s: {delays}"
        assert delays[0] <= 60, f"{name}: first retry after {delays[0]:.0f} s"


def test_min_retry_delays_match_airflow_next_retry_datetime():
    """The policy's arithmetic is Airflow's own: each retry lands in [min, 2 min) of our figures."""
    from datetime import datetime, timedelta, timezone
    from types import SimpleNamespace

    from airflow.models.taskinstance import TaskInstance

    from smflow.operators.callbacks import MAX_RETRY_DELAY_SECONDS, default_args, min_retry_delays

    args = default_args()
    task = SimpleNamespace(retry_delay=args["retry_delay"], retry_exponential_backoff=args["retry_exponential_backoff"],
                           max_retry_delay=args["max_retry_delay"])
    end = datetime(2018, 6, 2, tzinfo=timezone.utc)
    for try_number, low in enumerate(min_retry_delays(), start=1):
        ti = SimpleNamespace(task=task, retry_delay_override=None, end_date=end, try_number=try_number,
                             dag_id="daily_soil_moisture", task_id="compute_products", logical_date=end,
                             log=None)
        delay = (TaskInstance.next_retry_datetime(ti) - end).total_seconds()
        assert low <= delay <= min(2 * low, MAX_RETRY_DELAY_SECONDS), (try_number, low, delay)


def test_daily_dag_shape_maps_over_products_and_publishes_assets(dagbag):
    dag = dagbag.dags["daily_soil_moisture"]
    ingest = dag.get_task("ingest_granule")
    assert ingest.__class__.__name__.endswith("MappedOperator"), "ingest must map over the day's granules"
    publish = dag.get_task("publish_products")
    assert {a.name for a in publish.outlets} == {
        "smflow_merged_soil_moisture", "smflow_sm2rain_precipitation", "smflow_tc_diagnostics"}
    assert dag.get_task("compute_products").upstream_task_ids == {"ingest_granule"}
    assert dag.get_task("publish_products").upstream_task_ids == {"validate_products"}
    # one deferrable sensor per input, mapped, polling the provider; the fetch mapped over its
    # findings feeds the mapped ingest
    wait = dag.get_task("wait_for_granule")
    assert wait.__class__.__name__.endswith("MappedOperator") and wait.operator_class.__name__ == "GranuleSensor"
    assert wait.partial_kwargs["source"] == "provider"
    fetch = dag.get_task("fetch_granule")
    assert fetch.__class__.__name__.endswith("MappedOperator") and fetch.upstream_task_ids == {"wait_for_granule"}
    assert ingest.upstream_task_ids == {"fetch_granule"}
    assert dag.params["granule_wait_hours"] == 6 and dag.params["granule_poke_seconds"] == 300
    # a landing-zone pipeline has no fetch step
    native = dagbag.dags["daily_soil_moisture_ebro_pyrenees"]
    assert "fetch_granule" not in native.task_ids
    assert native.get_task("ingest_native_granule").upstream_task_ids == {"wait_for_granule"}


def test_every_configured_pipeline_is_a_dag_on_its_domain(dagbag):
    import json

    from smflow.domain import load_domain

    pipelines = json.loads((REPO / "config" / "daily_pipelines.json").read_text())["pipelines"]
    for spec in pipelines.values():
        dag = dagbag.dags[spec["dag_id"]]
        load_domain(spec["domain"])  # the domain grid exists
        assert spec["domain"] in dag.tags
        assert ("ingest_native_granule" in dag.task_ids) == ("inputs" in spec["products"])
        assert ("compute_products" in dag.task_ids) == ("merged" in spec["products"])
        assert ("downscale_products" in dag.task_ids) == ("downscaled" in spec["products"])
        if "downscaled" in spec["products"]:  # after the coarse day is published
            assert dag.get_task("downscale_products").upstream_task_ids == {"publish_products"}


def test_a_downscaled_product_needs_a_known_method_and_the_merged_one(tmp_path):
    import json

    from smflow.catalog.pipelines import pipeline

    base = {"dag_id": "d", "domain": "big_island", "inputs": ["smap"], "products": ["merged", "downscaled"]}
    cases = {"no_method": base, "unknown": {**base, "downscaling": {"method": "kriging_only"}},
             "no_merged": {**base, "products": ["inputs", "downscaled"], "downscaling": {"method": "bilinear"}}}
    for name, spec in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"pipelines": {"p": spec}}))
        with pytest.raises(ValueError, match="'downscaled' products"):
            pipeline("p", path)
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"pipelines": {"p": {**base, "downscaling": {"method": "nn_kriging"}}}}))
    assert pipeline("p", ok).downscaling_method == "nn_kriging"


def test_dag_files_import_nothing_heavy_at_parse_time(tmp_path):
    code = (
        "import runpy, sys\n"
        f"for f in {sorted(str(p) for p in (REPO / 'dags').glob('*.py'))!r}:\n"
        "    runpy.run_path(f)\n"
        "heavy = [m for m in ('xarray', 'great_expectations', 'mlflow', 'tensorflow', 'netCDF4', 'pandas') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("HEAVY="))
    heavy = [m for m in line.removeprefix("HEAVY=").split(",") if m]
    # pandas comes with airflow itself in some versions; the science stack must not.
    assert not set(heavy) - {"pandas"}, f"DAG files import heavy modules at parse time: {heavy}"


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_dag_says_what_it_does_in_the_ui(dagbag, dag_id):
    """The DAG list shows a description; mapped tasks are named by their input, not 0..3."""
    dag = dagbag.dags[dag_id]
    assert dag.description and len(dag.description) > 30, dag_id
    for t in dag.tasks:
        if t.__class__.__name__.endswith("MappedOperator"):
            template = t.partial_kwargs.get("map_index_template") or getattr(t, "map_index_template", None)
            assert template, f"{dag_id}.{t.task_id} is mapped without a map_index_template"


#: The science and ML tasks: they must run on the heavy Celery queue (smflow.operators.queues).
HEAVY_TASKS = {"ingest_granule", "ingest_native_granule", "compute_products", "validate_products",
               "downscale_products", "train_tc_merging", "train_merging_candidates", "train_sm2rain",
               "train_smap_reconstruction", "train_downscaling", "seed", "evaluate", "watch",
               "train_domain_models", "expire_store_snapshots"}
#: Sensors, fetching and publishing: the light queue.
LIGHT_TASKS = {"wait_for_granule", "fetch_granule", "publish_products", "publish_inputs", "rerun_daily", "roll_back"}


def test_every_task_is_on_the_light_or_the_heavy_queue_as_the_scheduler_sees_it(dagbag):
    """Queues survive the DAG's serialization (what the scheduler and the CeleryExecutor read)."""
    from airflow.serialization.serialized_objects import DagSerialization

    seen: dict[str, set[str]] = {"light": set(), "heavy": set()}
    for dag_id in sorted(dagbag.dag_ids):
        served = DagSerialization.from_dict(DagSerialization.to_dict(dagbag.dags[dag_id]))
        for t in served.tasks:
            assert t.queue in seen, f"{dag_id}.{t.task_id} is on queue {t.queue!r}, neither light nor heavy"
            seen[t.queue].add(t.task_id)
            if t.task_id in HEAVY_TASKS:
                assert t.queue == "heavy", f"{dag_id}.{t.task_id} (science / ML) is on {t.queue!r}"
    assert HEAVY_TASKS <= seen["heavy"], HEAVY_TASKS - seen["heavy"]
    assert LIGHT_TASKS <= seen["light"], LIGHT_TASKS - seen["light"]
    assert not seen["light"] & seen["heavy"]
