"""Daily soil-moisture products: fetch the day's granules, QC, merge, SM2RAIN, TC diagnostics, publish.

Thin DAGs: what runs when. One DAG per pipeline of ``config/daily_pipelines.json`` (the main one,
``daily_soil_moisture``, on the Big Island; others on their configured domains). Per input, a
deferrable ``GranuleSensor`` waits for the day's granule: for a pipeline with ``"fetch":
"provider"`` it polls the provider's search API (NASA CMR, Copernicus CDS; outages and rate limits
waited out with backoff) and ``fetch_granule`` downloads it with verification and lands it with
its provenance; otherwise it watches the landing zone. A granule that does not come in time, is
refused (another day or collection) or cannot be fetched intact becomes a "missing" record with
the reason: the day is made without it and says so. Ingest is mapped over the granule references. The work is in ``smflow.operators.daily`` (merged products) and
``smflow.operators.native`` (regridded, QC'd native inputs) and ``smflow.operators.downscaling``
(the 0.01 deg product of pipelines with ``downscaled`` products, after the day is published), imported inside the tasks so that parsing
imports nothing heavy. XCom carries S3 keys and small dicts only.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, task

from smflow.operators.callbacks import default_args
from smflow.operators.queues import assign_queues
from smflow.operators.sensors import GranuleSensor
from smflow.operators.ui import MAP_LABEL, label_map_index

PIPELINES = Path(__file__).resolve().parents[1] / "config" / "daily_pipelines.json"

MERGED_SM = Asset(name="smflow_merged_soil_moisture", uri="s3://sm-products/daily/merged-sm")
SM2RAIN_PRECIP = Asset(name="smflow_sm2rain_precipitation", uri="s3://sm-products/daily/sm2rain-precip")
TC_DIAGNOSTICS = Asset(name="smflow_tc_diagnostics", uri="s3://sm-products/daily/tc-diagnostics")
SOIL_MOISTURE_1KM = Asset(name="smflow_soil_moisture_1km", uri="s3://sm-products/daily-1km")


def _merged_assets(domain: str) -> list:
    """The Assets a merged pipeline's publish task updates: the main domain's, or the domain's own
    (published to its own bucket, ``smflow.operators.daily.products_settings``)."""
    from smflow.catalog.pipelines import domain_products_bucket

    bucket = domain_products_bucket("sm-products", domain)
    if bucket == "sm-products":
        return [MERGED_SM, SM2RAIN_PRECIP, TC_DIAGNOSTICS]
    return [Asset(name=f"{a.name}_{domain}", uri=a.uri.replace("s3://sm-products/", f"s3://{bucket}/"))
            for a in (MERGED_SM, SM2RAIN_PRECIP, TC_DIAGNOSTICS)]


def _product_day(context) -> str:
    # A scheduled/backfilled run has logical date D = start of its interval [D, D+1) and starts once
    # the day is complete; a manual ``airflow dags test ... D`` also means day D.
    return context["logical_date"].date().isoformat()


def _wait_for_granules(inputs: list[str], wait_hours: float, source: str):
    """One deferrable sensor per input (mapped), each returning the granule (provider record or
    landing reference) or "missing"; the wait and the polling interval come from the run's params."""
    return GranuleSensor.partial(
        task_id="wait_for_granule",
        day="{{ logical_date.strftime('%Y-%m-%d') }}",
        wait_timeout=timedelta(hours=wait_hours),
        poke_interval=300,
        wait_hours="{{ params.granule_wait_hours }}",
        poke_seconds="{{ params.granule_poke_seconds }}",
        source=source,
        max_active_tis_per_dagrun=4,
        map_index_template="{{ task.product }}",  # the UI names each mapped sensor by its input
    ).expand(product=inputs)


def _check_providers(name: str, spec: dict) -> None:
    """A pipeline fetching from the providers needs a provider archive for every input (parse-time check)."""
    from smflow.archive.fetch import provider_source

    lacking = [p for p in spec["inputs"] if provider_source(p) is None]
    if lacking:
        raise ValueError(f"{PIPELINES}: pipeline {name!r} fetches from the providers, but {lacking} have no "
                         "provider archive the fetch speaks (catalogue 'archive' section with client cmr or cds).")


def _deadline(spec: dict):
    """Airflow 3 deadline alert when the pipeline sets ``deadline_hours``: a day's run not done that
    long after it was queued alerts the operators (smflow.operators.alerts). Off unless configured:
    in Airflow 3.3 ``airflow dags test`` of a DAG with a deadline fails when the run ends
    (``DagRun.update_state`` looks the alerts up by id, ``dag.test`` hands it the objects)."""
    from airflow.sdk.definitions.deadline import AsyncCallback, DeadlineAlert, DeadlineReference

    if spec.get("deadline_hours") is None:
        return None
    hours = float(spec["deadline_hours"])
    return DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT, interval=timedelta(hours=hours),
                         callback=AsyncCallback("smflow.operators.alerts.deadline_missed",
                                                kwargs={"dag_id": spec["dag_id"], "hours": hours}))


def _description(name: str, spec: dict) -> str:
    """One line for the DAG list of the UI: what the pipeline makes, where, from what."""
    what = {"merged": "merged soil moisture, SM2RAIN rainfall, TC diagnostics",
            "inputs": "regridded, checked native inputs",
            "downscaled": f"0.01 deg soil moisture ({(spec.get('downscaling') or {}).get('method')})"}
    made = " + ".join(what[p] for p in spec["products"] if p in what)
    origin = "fetched from the providers' archives" if spec.get("fetch") == "provider" else "from the landing zone"
    return f"{made} on {spec['domain']} from {', '.join(spec['inputs'])} ({origin})"


def build_daily_dag(name: str, spec: dict):
    domain = spec["domain"]
    products = spec["products"]
    source = spec.get("fetch", "landing")
    if source == "provider":
        _check_providers(name, spec)

    @dag(
        dag_id=spec["dag_id"],
        description=_description(name, spec),
        schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
        start_date=pendulum.parse(spec["start_date"], tz="UTC"),
        catchup=False,
        max_active_runs=3,
        default_args=default_args(),
        deadline=_deadline(spec),
        tags=["smflow", "daily", "products", domain],
        doc_md=__doc__,
        params={
            "granule_wait_hours": Param(float(spec.get("granule_wait_hours", 6)), type="number", minimum=0,
                                        description="how long to wait for a granule before the day is made without it"),
            "granule_poke_seconds": Param(300, type="number", minimum=1,
                                          description="seconds between two searches while a granule is not published"),
            "tc_window_days": Param(int(spec.get("tc_window_days", 180)), type="integer", minimum=2,
                                    description="trailing window of the TC diagnostics and the SM2RAIN rainfall [days]; "
                                                "the product records it (tc_window_days)"),
        },
    )
    def daily():
        granules = _wait_for_granules(spec["inputs"], spec.get("granule_wait_hours", 6), source)
        if source == "provider":
            @task(map_index_template=MAP_LABEL, max_active_tis_per_dagrun=4, retry_delay=timedelta(minutes=1),
                  max_retry_delay=timedelta(minutes=10))
            def fetch_granule(found: dict) -> dict:
                from airflow.sdk.exceptions import AirflowFailException

                label_map_index(found.get("product", "?"))

                from smflow.archive.base import CredentialsError
                from smflow.operators.daily import fetch_granule as run

                try:
                    return run(found)
                except CredentialsError as exc:  # retrying cannot fix a missing or refused token
                    raise AirflowFailException(str(exc)) from None

            granules = fetch_granule.expand(found=granules.output)
        else:
            granules = granules.output

        if "merged" in products:
            @task(max_active_tis_per_dagrun=2, map_index_template=MAP_LABEL)
            def ingest_granule(ref: dict, **context) -> dict:
                from smflow.operators.daily import ingest_granule as run

                label_map_index(ref.get("product", "?"))
                result = run(ref, pipeline_name=name)
                if result.get("status") == "quarantined":
                    from smflow.operators.alerts import send_alert

                    send_alert("granule_quarantined", f"{result['product']} {result['day']}: {result.get('reason', '')} "
                               f"(kept at {result.get('quarantine_key', '?')})", context)
                return result

            # SM2RAIN for day D needs the merged soil moisture of D-1, i.e. D-1's granules in the
            # store: runs may overlap (backfill), but each day's products wait for the previous day's.
            @task(depends_on_past=True)
            def compute_products(ingested: list[dict], **context) -> dict:
                from airflow.sdk.exceptions import AirflowSkipException

                from smflow.operators.daily import compute_products as run

                result = run(_product_day(context), list(ingested), pipeline_name=name,
                             window_days=int(context["params"].get("tc_window_days") or spec.get("tc_window_days", 180)))
                if result.get("status") == "no_product":  # recorded; validate and publish are skipped
                    raise AirflowSkipException(f"{result['reason']}: {result['missing']} "
                                               f"(recorded at {result['record_key']})")
                return result

            @task
            def validate_products(staged: dict) -> dict:
                from airflow.sdk.exceptions import AirflowFailException

                from smflow.operators.daily import ProductQualityError
                from smflow.operators.daily import validate_products as run

                try:
                    return run(staged)
                except ProductQualityError as exc:  # quarantined; a retry would fail the same way
                    raise AirflowFailException(str(exc)) from None

            outlets = _merged_assets(domain)

            @task(outlets=outlets)
            def publish_products(staged: dict, **context) -> dict:
                from smflow.operators.daily import publish_products as run

                result = run(staged)
                # The run summary travels with the asset events (Assets view of the UI, REST API).
                for asset in outlets:
                    context["outlet_events"][asset].extra = result["summary"]
                return result

            published = publish_products(validate_products(compute_products(ingest_granule.expand(ref=granules))))

            if "downscaled" in products:
                @task(outlets=[SOIL_MOISTURE_1KM])
                def downscale_products(published: dict, **context) -> dict:
                    import os

                    from airflow.sdk.exceptions import AirflowSkipException

                    from smflow.operators.downscaling import downscale_day

                    if os.environ.get("SMFLOW_DOWNSCALING", "on").lower() == "off":  # load shedding (backfills)
                        raise AirflowSkipException("the 0.01 deg product is switched off (SMFLOW_DOWNSCALING=off)")
                    result = downscale_day(_product_day(context), name)
                    context["outlet_events"][SOIL_MOISTURE_1KM].extra = {
                        k: result.get(k) for k in ("day", "status", "method", "keys")}
                    return result

                downscale_products(published)

        if "inputs" in products:
            @task(max_active_tis_per_dagrun=2, map_index_template=MAP_LABEL)
            def ingest_native_granule(ref: dict) -> dict:
                from smflow.operators.native import ingest_native_granule as run

                label_map_index(ref.get("product", "?"))
                return run(ref, domain)

            @task(outlets=[Asset(name=f"smflow_inputs_{domain}", uri=f"s3://sm-products/inputs/{domain}")])
            def publish_inputs(ingested: list[dict], **context) -> dict:
                from smflow.operators.native import publish_inputs as run

                return run(list(ingested), _product_day(context), domain)

            publish_inputs(ingest_native_granule.expand(ref=granules))

    return daily()


for _name, _spec in json.loads(PIPELINES.read_text())["pipelines"].items():
    globals()[_spec["dag_id"]] = assign_queues(build_daily_dag(_name, _spec))
