"""Glue between the ``daily_soil_moisture`` DAG and the library.

Each function is one task: it takes and returns small JSON-able dicts (S3 keys, dates, statuses),
never arrays, so XCom stays light. Everything here is importable without Airflow.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from smflow.catalog import pipeline
from smflow.config import Settings
from smflow.dates import as_date
from smflow.daily import TC_WINDOW_DAYS  # noqa: F401 - the main job seeds this much history
from smflow.domain import DEFAULT_DOMAIN

log = logging.getLogger(__name__)

#: Inputs fetched every day. ``c3s`` is the independent reference used for skill, not merged.
INPUT_PRODUCTS: tuple[str, ...] = tuple(pipeline("daily_soil_moisture").inputs)

#: Days of history before the TC window that the sequence models (LSTM, CNN) need.
ML_HISTORY_DAYS = 29

STAGING_PREFIX = "products-staging"
#: Where a granule that could not be fetched intact is recorded (store bucket), one JSON per product-day.
FETCH_FAILURES_PREFIX = "fetch-failures"


def fetch_failure_key(product: str, day: str) -> str:
    """``fetch-failures/{product}/{YYYYMMDD}.json`` in the store bucket."""
    return f"{FETCH_FAILURES_PREFIX}/{product}/{as_date(day):%Y%m%d}.json"


def fetch_granule(found: dict[str, Any], *, settings: Settings | None = None) -> dict[str, Any]:
    """Fetch the provider granule a sensor found and land it with its provenance.

    ``found`` is a :class:`~smflow.operators.sensors.GranuleSensor` XCom: with ``"granule"`` (a
    provider record) it is downloaded, verified and landed (:func:`smflow.archive.fetch.fetch_to_landing`)
    and the landing reference is returned with ``status`` ``landed``/``unchanged`` and the
    ``provenance``; anything else (a landing-zone reference, a missing or refused input) passes
    through unchanged. A granule that stays truncated or corrupt after the retries, or holds
    another day, is not landed: the failure is recorded at :func:`fetch_failure_key` and the
    result says ``status`` ``failed`` with the reason, so the day is made without it.

    :raises smflow.archive.base.CredentialsError: credentials missing or refused (the task fails;
        the message names the connection).
    """
    from smflow.archive.fetch import FetchFailed, ProviderGranule, UnexpectedGranule, fetch_to_landing
    from smflow.landing import LandingZone
    from smflow import s3 as s3mod

    if "granule" not in found:
        return found
    settings = settings or Settings.load()
    granule = ProviderGranule.from_dict(found["granule"])
    client = s3mod.client(settings)
    try:
        return fetch_to_landing(granule, zone=LandingZone.for_landing(settings))  # the one landing writer
    except (FetchFailed, UnexpectedGranule) as exc:
        reason = str(exc)
        record = {"product": granule.product, "day": granule.day.isoformat(), "reason": reason,
                  "granule": granule.provenance()}
        key = fetch_failure_key(granule.product, granule.day.isoformat())
        s3mod.ensure_bucket(client, settings.store_bucket)
        client.put_object(Bucket=settings.store_bucket, Key=key, ContentType="application/json",
                          Body=json.dumps(record, indent=2, sort_keys=True).encode())
        log.error("%s %s not landed: %s (recorded at s3://%s/%s)", granule.product, granule.day, reason,
                  settings.store_bucket, key)
        return {"product": granule.product, "day": granule.day.isoformat(), "bucket": None, "key": None,
                "status": "failed", "reason": reason, "failure_key": key, "provenance": granule.provenance()}


def discover_granules(day: str, *, settings: Settings | None = None) -> list[dict[str, Any]]:
    """The day's granule in the landing zone for every input product (``key`` None when absent)."""
    from smflow.landing import LandingZone

    settings = settings or Settings.load()
    d = as_date(day)
    found = {ref.product: ref for ref in LandingZone(settings).list_granules(d)}
    refs = []
    for product in INPUT_PRODUCTS:
        ref = found.get(product)
        refs.append(
            {
                "product": product,
                "day": d.isoformat(),
                "bucket": ref.bucket if ref else None,
                "key": ref.key if ref else None,
            }
        )
    log.info("landing zone for %s: %s", d, {r["product"]: r["key"] for r in refs})
    return refs


def ingest_granule(ref: dict[str, Any], *, pipeline_name: str | None = None,
                   settings: Settings | None = None) -> dict[str, Any]:
    """Fetch, read, validate (GX) and grid one granule into the time-series store.

    A granule that cannot be read or fails its suite (wrong units included: the checks see the
    values as read) is quarantined with the reason and is not stored; a granule with no valid
    value on the domain grid is not stored either (status ``empty``). The run goes on and the
    product records the input as missing.

    An input of ``pipeline_name`` that arrives as native provider files (the global pipeline's
    ESA CCI and GLDAS granules) goes through :func:`ingest_native_parent` instead.
    """
    from smflow.landing import LandingZone

    if pipeline_name is not None and LandingZone.is_native(ref["product"]):
        return ingest_native_parent(ref, pipeline_name, settings=settings)
    from smflow.quality.quarantine import quarantine_failure
    from smflow.quality.validate import store_validation_result, validate_granule
    from smflow import s3 as s3mod
    from smflow.domain import load_domain
    from smflow.ingest import AUXILIARY_FIELDS, auxiliary_field, grid_granule
    from smflow.landing import GranuleRef, LandingZone
    from smflow.readers.granule import GranuleError, read_granule
    from smflow.store import TimeSeriesStore

    settings = settings or Settings.load()
    product, d = ref["product"], as_date(ref["day"])
    result: dict[str, Any] = {"product": product, "day": d.isoformat(), "source": None}
    if not ref.get("key"):
        status = ref.get("status") if ref.get("status") in ("missing", "refused", "failed") else "missing"
        return {**result, "status": status, "reason": ref.get("reason") or "no granule in the landing zone"}
    source = f"s3://{ref['bucket']}/{ref['key']}"
    result["source"] = source
    if ref.get("provenance"):
        # Where the granule came from (provider, granule id, URL, checksum): the products' lineage.
        result["provenance"] = ref["provenance"]
    client = s3mod.client(settings)
    grid = load_domain()
    granule = GranuleRef(product=product, day=d, bucket=ref["bucket"], key=ref["key"])
    with tempfile.TemporaryDirectory() as tmp:
        path = LandingZone(settings, s3=client).fetch(granule, Path(tmp))
        where = {"product": product, "day": d, "source_bucket": ref["bucket"], "source_key": ref["key"]}
        try:
            decoded = read_granule(product, path)
        except GranuleError as exc:
            # Name the landing object, not this worker's temporary copy: the reason goes into the
            # product's lineage, whose bytes must not change when the day is re-run.
            problem = str(exc.problem).replace(str(path), source).replace(str(Path(tmp)), "")
            error = GranuleError(f"{ref['bucket']}/{ref['key']}", problem)
            return {**result, **quarantine_failure(client, settings, outcome_or_error=error, **where)}
        outcome = validate_granule(product, decoded, d, domain_bounds=grid.bounds)
        vkey = store_validation_result(client, settings, "granule", product, d, outcome)
        if not outcome.success:
            return {**result, **quarantine_failure(client, settings, outcome_or_error=outcome, **where),
                    "validation_key": vkey}
        field = grid_granule(product, decoded, d, grid)
        auxiliary = {auxiliary_field(product, name): grid_granule(product, decoded, d, grid, variable=name)
                     for name in AUXILIARY_FIELDS.get(product, ()) if name in decoded}
    n_valid = int(np.isfinite(field.values).sum())
    if n_valid == 0:
        # Nothing on the domain grid (no overpass, everything flagged): never store an empty field
        # over whatever the store holds for the day; the product lists the input as missing.
        return {**result, "status": "empty", "reason": "no valid value on the domain grid", "valid_cells": 0,
                "validation_key": vkey}
    store = TimeSeriesStore(settings, s3=client)
    for name, aux in auxiliary.items():
        store.put(name, d, aux)
    store_key = store.put(product, d, field)
    return {**result, "status": "stored", "store_key": store_key, "valid_cells": n_valid, "validation_key": vkey,
            "auxiliary_keys": sorted(store.key(name, d) for name in auxiliary)}


def ingest_native_parent(ref: dict[str, Any], pipeline_name: str, *,
                         settings: Settings | None = None) -> dict[str, Any]:
    """Ingest the day's native files of a merged input (:func:`smflow.operators.native.ingest_native_granule`:
    read, regrid to the pipeline's domain, Great Expectations suite, quarantine or store).

    A degree of saturation (ESA CCI ACTIVE, percent) is stored as a fraction [1], the scale the
    merging models take. A real field that replaces a synthetic one is taken off the domain's
    synthetic manifest (:mod:`smflow.synthetic`). Returns the ``ingest_granule`` record
    (``status``, ``reason``, ``source``, ``sources``, ``store_key``, ``valid_cells``).
    """
    from smflow import s3 as s3mod
    from smflow.operators.native import ingest_native_granule
    from smflow.store import TimeSeriesStore
    from smflow.domain import load_domain

    settings = settings or Settings.load()
    pipe = pipeline(pipeline_name)
    got = ingest_native_granule(ref, pipe.domain, settings=settings, as_fraction=True)
    result = {"product": got["product"], "day": got["day"], "status": got["status"],
              "reason": got.get("reason", ""), "sources": got.get("sources", []),
              "source": (got.get("sources") or [None])[0]}
    if got["status"] != "stored":
        return result
    client = s3mod.client(settings)
    d = as_date(got["day"])
    if pipe.synthetic_history:
        from smflow.synthetic import unmark

        unmark(client, settings, pipe.domain, got["product"], d)
    store = TimeSeriesStore(settings, s3=client, grid=load_domain(pipe.domain))
    return {**result, "store_key": store.key(got["product"], d), "valid_cells": got["valid_cells"],
            "validation_key": got.get("validation_key", "")}


def _staging_key(d: date, domain: str | None = None) -> str:
    where = STAGING_PREFIX if domain in (None, DEFAULT_DOMAIN) else f"{STAGING_PREFIX}/{domain}"
    return f"{where}/{d:%Y%m%d}/smflow_daily_{d:%Y%m%d}.nc"


#: Where a day without a product says why (store bucket), one JSON per day.
OUTCOMES_PREFIX = "outcomes/daily"
#: Staged products older than this are left by a run that died between compute and publish.
STALE_STAGING = timedelta(days=1)


def outcome_key(d: date, domain: str | None = None) -> str:
    """``outcomes/daily/{YYYYMMDD}.json`` in the store bucket (``outcomes/daily/{domain}/...`` for
    another domain than the main one)."""
    where = OUTCOMES_PREFIX if domain in (None, DEFAULT_DOMAIN) else f"{OUTCOMES_PREFIX}/{domain}"
    return f"{where}/{d:%Y%m%d}.json"


def no_product(d: date, missing: dict[str, str], client, settings: Settings, domain: str | None = None) -> dict[str, Any]:
    """Record that ``d`` has no product because none of the merged inputs arrived; the run does not fail."""
    reason = "no product: all inputs missing"
    record = {"day": d.isoformat(), "outcome": reason, "inputs": dict(sorted(missing.items()))}
    key = outcome_key(d, domain)
    client.put_object(Bucket=settings.store_bucket, Key=key, ContentType="application/json",
                      Body=json.dumps(record, indent=2, sort_keys=True).encode())
    log.warning("%s: %s (%s); recorded at s3://%s/%s", d, reason, record["inputs"], settings.store_bucket, key)
    return {"day": d.isoformat(), "status": "no_product", "reason": reason, "record_key": key,
            "missing": record["inputs"]}


def sweep_stale_staging(client, settings: Settings, *, older_than: timedelta = STALE_STAGING) -> list[str]:
    """Delete staged products left by runs that died between compute and publish; returns the keys."""
    from smflow.s3 import delete_older_than

    stale = delete_older_than(client, settings.store_bucket, f"{STAGING_PREFIX}/", older_than)
    if stale:
        log.warning("removed %d stale staged products: %s", len(stale), stale)
    return stale


def compute_products(day: str, ingested: list[dict[str, Any]], *, pipeline_name: str = "daily_soil_moisture",
                     window_days: int | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """Build the day's product dataset (:func:`smflow.daily.compute_daily_product`) and stage it.

    The main pipeline loads ``models:/soil_moisture_merging@champion`` (TC least squares or an ML
    ensemble), ``models:/sm2rain@champion``, ``models:/tc_merging@champion`` (whose triplet the TC
    diagnostics describe) and ``models:/smap_reconstruction@champion`` (seamless SMAP). A pipeline
    with its own ``models`` (``config/daily_pipelines.json``, e.g. the global one) loads its TC
    merging and SM2RAIN champions by those names, on its domain, with its parents. Writes the
    dataset to the store's staging prefix and returns its key with the provenance the published
    files carry. When none of the merged inputs (the pipeline's parents) was stored for the day,
    nothing is computed: the outcome "no product: all inputs missing" is recorded
    (:func:`no_product`) and returned with ``status`` ``no_product``.

    A pipeline with ``synthetic_history`` reads its domain's synthetic manifest
    (:mod:`smflow.synthetic`): a parent without a real granule for the day whose store holds a
    synthetic field for it is merged from that field (not recorded as missing), and the lineage
    gets ``smflow_synthetic`` (the generator's label, how many days of the window are synthetic per
    parent and what the day's own fields are), which the publisher writes into every file and the
    STAC item.
    """
    from smflow import s3 as s3mod
    from smflow.daily import compute_daily_product
    from smflow.domain import load_domain
    from smflow.ml.registry import champion_ref, configure, load_champion, load_merging
    from smflow.ml.reconstruction import load_reconstruction_champion
    from smflow.ml.registry import load_merging_champion
    from smflow.store import TimeSeriesStore

    settings = configure(settings)
    pipe = pipeline(pipeline_name)
    grid = load_domain(pipe.domain)
    window = int(window_days or pipe.tc_window_days)
    d = as_date(day)
    client = s3mod.client(settings)
    status = {r["product"]: r for r in ingested}
    missing = {p: f"{r['status']} ({r.get('reason', '')})" for p, r in status.items() if r["status"] != "stored"}
    sweep_stale_staging(client, settings)
    extra: dict[str, Any] = {}
    if pipe.synthetic_history:
        extra = _synthetic_lineage(pipe, d, window, status, missing, client, settings)
    if not any(status.get(p, {}).get("status") == "stored" for p in pipe.parents) and not extra.get("_today"):
        return no_product(d, missing, client, settings, grid.name)
    extra.pop("_today", None)
    if pipe.models:
        merging = load_merging(champion_ref(pipe.model("merging")))
        rain_model, rain_ref = load_champion(pipe.model("sm2rain"))
        tc_ref, reconstruction = merging.ref, None
    else:
        merging = load_merging_champion()
        rain_model, rain_ref = load_champion("sm2rain")
        _, tc_ref = load_champion("tc_merging")
        reconstruction = load_reconstruction_champion()
    stored = [r for r in ingested if r["status"] == "stored"]
    ds, provenance = compute_daily_product(
        d, store=TimeSeriesStore(settings, s3=client, grid=grid), grid=grid, merging=merging,
        rain_model=rain_model, rain_ref=rain_ref, tc_ref=tc_ref, missing=missing,
        input_granules=[g for r in stored for g in ([r.get("provenance", {}).get("url") or r["source"]]
                                                   if not r.get("sources") else r["sources"]) if g],
        input_provenance=[{**r["provenance"], "landed": r["source"]} for r in stored if r.get("provenance")],
        reconstruction=reconstruction, parents=pipe.parents, window_days=window, pipeline_name=pipe.dag_id)
    if grid.name != DEFAULT_DOMAIN:
        from smflow.catalog import entry

        ds.attrs["domain"] = grid.name
        provenance["merged_parents"] = ", ".join(entry(p).title for p in pipe.parents)
    provenance.update(extra)
    ds.attrs["provenance_json"] = json.dumps(provenance, sort_keys=True)
    key = _staging_key(d, grid.name)
    client.put_object(Bucket=settings.store_bucket, Key=key, Body=bytes(ds.to_netcdf(engine="h5netcdf")))
    return {"day": d.isoformat(), "bucket": settings.store_bucket, "key": key, "provenance": provenance,
            "domain": grid.name, "pipeline": pipe.name}


def _synthetic_lineage(pipe, d: date, window: int, status: dict[str, dict], missing: dict[str, str],
                       client, settings: Settings) -> dict[str, Any]:
    """The ``smflow_synthetic`` lineage of a day of a pipeline with a generated history; takes the
    parents whose synthetic field of the day is used out of ``missing`` (in place)."""
    from smflow.synthetic import SYNTHETIC_ATTR, read_manifest, synthetic_days

    manifest = read_manifest(client, settings, pipe.domain)
    days = [d - timedelta(days=k) for k in range(window)]
    counts = {p: len(synthetic_days(manifest, p, days)) for p in pipe.parents}
    if not any(counts.values()):
        return {}
    today = {}
    for p in pipe.parents:
        if status.get(p, {}).get("status") == "stored":
            today[p] = "real granule"
        elif synthetic_days(manifest, p, [d]):
            today[p] = f"synthetic (no real granule: {missing.pop(p, 'not ingested')})"
        else:
            today[p] = f"missing ({missing.get(p, 'not ingested')})"
    text = (f"{manifest.get('label', 'SYNTHETIC history')} Synthetic days in the {window}-day window: "
            + ", ".join(f"{p} {n}" for p, n in counts.items())
            + f". Fields of {d}: " + "; ".join(f"{p}: {why}" for p, why in today.items()) + ".")
    return {SYNTHETIC_ATTR: text, "_today": any(v.startswith("synthetic") for v in today.values())}


def _load_staged(staged: dict[str, Any], client) -> "xr.Dataset":
    import xarray as xr

    body = client.get_object(Bucket=staged["bucket"], Key=staged["key"])["Body"].read()
    return xr.load_dataset(io.BytesIO(body), engine="h5netcdf")


class ProductQualityError(ValueError):
    """The day's product failed its quality suite (it was quarantined; re-running gives the same result)."""


def validate_products(staged: dict[str, Any], *, settings: Settings | None = None) -> dict[str, Any]:
    """Run the output-product suite; a failing product is quarantined (not left staged) and
    :class:`ProductQualityError` is raised."""
    from smflow.quality.quarantine import quarantine_failure
    from smflow.quality.validate import store_validation_result, validate_product
    from smflow import s3 as s3mod

    settings = settings or Settings.load()
    client = s3mod.client(settings)
    d = as_date(staged["day"])
    ds = _load_staged(staged, client)
    outcome = validate_product(ds, d, **_product_checks(staged))
    vkey = store_validation_result(client, settings, "product", "daily", d, outcome)
    stats = outcome.statistics or {}
    log.info("product suite for %s: %s (%s of %s expectations passed; result s3://%s/%s)", d,
             "PASSED" if outcome.success else f"FAILED: {outcome.reason}", stats.get("successful_expectations", "?"),
             stats.get("evaluated_expectations", "?"), settings.store_bucket, vkey)
    if not outcome.success:
        qkey = quarantine_failure(client, settings, outcome_or_error=outcome, product="daily_product", day=d,
                                  source_bucket=staged["bucket"], source_key=staged["key"])["quarantine_key"]
        client.delete_object(Bucket=staged["bucket"], Key=staged["key"])  # kept in quarantine; no staging left
        raise ProductQualityError(f"daily product for {d} failed its quality suite (kept at s3://{settings.store_bucket}/{qkey}): {outcome.reason}")
    return {**staged, "validation_key": vkey}


def _product_checks(staged: dict[str, Any]) -> dict[str, Any]:
    """Land mask and thresholds of the product suite for a day of another domain than the main one
    (its grid size, its parents); none (the suite's defaults) for the main domain."""
    if staged.get("domain") in (None, DEFAULT_DOMAIN):
        return {}
    import dataclasses

    from smflow.domain import load_domain
    from smflow.quality.suites import PRODUCT_THRESHOLDS

    grid = load_domain(staged["domain"])
    pipe = pipeline(staged["pipeline"])
    # A parent may be a degree of saturation (ESA CCI ACTIVE, a fraction): [0, 1] for every source.
    thresholds = dataclasses.replace(PRODUCT_THRESHOLDS, sources=tuple(pipe.parents), grid_lat_size=grid.shape[0],
                                     grid_lon_size=grid.shape[1], soil_moisture_range=(0.0, 1.0))
    return {"land_mask": grid.land_mask, "thresholds": thresholds}


def publish_products(staged: dict[str, Any], *, settings: Settings | None = None) -> dict[str, Any]:
    """Publish the validated product atomically and idempotently (CF netCDF, quicklooks, STAC)."""
    from smflow import s3 as s3mod
    from smflow.publish.publisher import Publisher

    settings = settings or Settings.load()
    client = s3mod.client(settings)
    d = as_date(staged["day"])
    ds = _load_staged(staged, client)
    ds.attrs.pop("provenance_json", None)
    target = products_settings(settings, staged.get("domain"))
    published = Publisher(target, s3=client).publish_day(ds, d, staged["provenance"])
    sweep_day_publish_staging(client, target, (*published.keys, published.stac_key))
    client.delete_object(Bucket=staged["bucket"], Key=staged["key"])
    return {"day": d.isoformat(), "keys": list(published.keys), "stac_key": published.stac_key,
            "bucket": target.products_bucket, "unchanged": published.unchanged,
            "summary": run_summary(staged, published.written)}


def products_settings(settings: Settings, domain: str | None) -> Settings:
    """Where a domain's daily products are published: the products bucket for the main domain,
    ``{products_bucket}-{domain}`` (underscores as dashes) for any other, so that each domain has
    its own keys, STAC collection and catalog (``s3://sm-products-global-025/...``)."""
    import dataclasses

    from smflow.catalog.pipelines import domain_products_bucket

    if domain in (None, DEFAULT_DOMAIN):
        return settings
    # public_base_url names the main bucket's public address: the domain's own bucket is served
    # at the S3 endpoint.
    return dataclasses.replace(settings, products_bucket=domain_products_bucket(settings.products_bucket, domain,
                                                                                 DEFAULT_DOMAIN),
                               public_base_url=None)


def run_summary(staged: dict[str, Any], written: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """What an operator wants to see of a published day, in one small dict (the Asset event's
    ``extra`` of the run and the publish task's return value): inputs used / missing (with the
    reason: quarantined, refused, failed, missing), the model versions, the QC outcome and whether
    anything changed.
    """
    provenance = staged.get("provenance", {})
    missing = list(provenance.get("missing_inputs", []))
    missing_names = {entry.split(":", 1)[0] for entry in missing}
    inputs = sorted({*missing_names, *(r["product"] for r in json.loads(provenance.get("input_granule_provenance") or "[]"))})
    return {
        "day": staged["day"],
        "inputs_used": [p for p in inputs if p not in missing_names],
        "inputs_missing": missing,
        "models": {k: provenance[k] for k in ("merging_model", "tc_merging_model", "sm2rain_model") if k in provenance},
        "qc": "passed" if staged.get("validation_key") else "not validated",
        "validation_key": staged.get("validation_key", ""),
        "objects_written": len(written),
    }


def sweep_day_publish_staging(client, settings: Settings, final_keys) -> list[str]:
    """Delete the publisher's staging objects of ``final_keys`` left by earlier attempts; the keys.

    An attempt that S3 failed half-way could not delete its ``staging/{uuid}/{final key}`` object
    (the publisher's cleanup needs S3 too); once a later attempt has published the day, those
    orphans go at once rather than an hour later with the publisher's stale sweep. Only one run
    publishes a day at a time (one run per logical date), so no live upload is among them.
    """
    from smflow.publish.publisher import STAGING_PREFIX as PUBLISH_STAGING
    from smflow.s3 import list_keys

    finals = set(final_keys)
    orphans = [key for key in list_keys(client, settings.products_bucket, PUBLISH_STAGING)
               if key.removeprefix(PUBLISH_STAGING).partition("/")[2] in finals]
    for key in orphans:
        client.delete_object(Bucket=settings.products_bucket, Key=key)
    if orphans:
        log.warning("removed %d staging objects of earlier publish attempts: %s", len(orphans), orphans)
    return orphans


def previous_day(day: str) -> str:
    return (as_date(day) - timedelta(days=1)).isoformat()
