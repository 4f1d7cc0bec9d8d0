"""Glue for the ``train_models``, ``train_domain_models`` and ``seed_timeseries_store`` DAGs (small dicts in, small dicts out)."""

from __future__ import annotations

import logging
from typing import Any

from smflow.catalog import pipeline
from smflow.config import Settings
from smflow.dates import as_date

log = logging.getLogger(__name__)

STORE_PRODUCTS: tuple[str, ...] = tuple(pipeline("daily_soil_moisture").inputs)


def seed_store(start: str, end: str, *, settings: Settings | None = None,
               products: tuple[str, ...] = STORE_PRODUCTS) -> dict[str, Any]:
    """Bulk-ingest a historical period into the time-series store (same readers, flags and regridding
    as the daily path, vectorised over time). Used to give the rolling TC window its history."""
    from smflow import s3 as s3mod
    from smflow.domain import load_domain
    from smflow.ingest import AUXILIARY_FIELDS, auxiliary_field, gridded_series
    from smflow.store import TimeSeriesStore

    settings = settings or Settings.load()
    grid = load_domain()
    store = TimeSeriesStore(settings, s3=s3mod.client(settings))
    counts: dict[str, int] = {}
    # the soil moisture and, as the daily ingest does, the auxiliary fields (GLDAS soil temperature)
    fields = [(p, None) for p in products] + [
        (p, v) for p in products for v in AUXILIARY_FIELDS.get(p, ())]
    for product, variable in fields:
        name = product if variable is None else auxiliary_field(product, variable)
        series = gridded_series(product, as_date(start), as_date(end), grid, variable=variable)
        days = [as_date(t) for t in series["time"].values]
        # the per-day layout writes the objects in parallel, the chunked one in one commit
        counts[name] = len(store.put_many(name, days, series))
        log.info("seeded %s: %d days %s..%s", name, counts[name], start, end)
    return {"start": start, "end": end, "days_per_product": counts}


def train(model: str, train_start: str, train_end: str, eval_start: str, eval_end: str,
          *, settings: Settings | None = None, swi_filter: str = "none", loso: bool = True,
          hyper: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Train one registry model and return its :class:`smflow.ml.train.TrainingResult` as a dict.

    `swi_filter` (SM2RAIN only): ``"none"`` (3-parameter), ``"exponential"`` or ``"wetness"``.
    `loso`, `hyper` (``soil_moisture_merging`` only): run the leave-one-station-out folds; member
    hyper-parameters (e.g. ``{"lstm": {"epochs": 5}}`` for a quick run).
    """
    from smflow.ml.reconstruction import RECONSTRUCTION_MODEL, train_reconstruction
    from smflow.ml.train import train_sm2rain, train_tc_merging
    from smflow.ml.train_merging import MERGING_MODEL, train_merging

    period = (as_date(train_start), as_date(train_end)), (as_date(eval_start), as_date(eval_end))
    if model == "sm2rain":
        result = train_sm2rain(*period, settings=settings, swi_filter=swi_filter)
    elif model == "tc_merging":
        result = train_tc_merging(*period, settings=settings)
    elif model == MERGING_MODEL:
        result = train_merging(*period, settings=settings, loso=loso, hyper=hyper)
    elif model == RECONSTRUCTION_MODEL:
        result = train_reconstruction(*period, settings=settings)
    else:
        raise ValueError(f"unknown model {model!r}: 'tc_merging', '{MERGING_MODEL}', 'sm2rain' or "
                         f"'{RECONSTRUCTION_MODEL}'")
    if not result.promoted:
        log.warning("%s v%s not promoted: %s", model, result.version, result.gate)
    return result.to_dict()


def train_downscaling(*, settings: Settings | None = None) -> dict[str, Any]:
    """Fit, validate (upscale-recover), register ``downscaling_nn`` / ``downscaling_lstm_kriging``
    and make each the first champion only if it beats bilinear (:mod:`smflow.downscaling.registry`;
    a later version is left to ``evaluate_challenger``); without the CGLS 1 km files returns
    ``{"skipped": reason}``."""
    from smflow.downscaling.registry import train_downscaling as run

    return {k: v for k, v in run(settings=settings).items() if k != "table"}


def train_domain(pipeline_name: str, train_start: str, train_end: str, *,
                 settings: Settings | None = None) -> dict[str, Any]:
    """Train the models of a pipeline with its own ``models`` (the global 0.25 deg one) on its store,
    or skip plainly when the store holds no day of its parents over the period.

    Parameters
    ----------
    pipeline_name : str
        Pipeline key or DAG id of ``config/daily_pipelines.json`` (e.g. ``global_025``).
    train_start, train_end : str
        The training period (``YYYY-MM-DD``, inclusive).
    settings : Settings, optional

    Returns
    -------
    dict
        ``pipeline``, ``train_start``, ``train_end``, ``days_held`` (parent -> stored days in the
        period) and either ``models`` (one :meth:`TrainingResult.to_dict` per model: promotion by
        :func:`smflow.ml.gates.promote_after_training`) or ``skipped`` (the reason, also logged).

    Raises
    ------
    ValueError
        The pipeline has no own ``models`` (the Big Island's are trained by ``train_models``), or
        ``train_end`` is before ``train_start``.
    """
    from smflow import s3 as s3mod
    from smflow.domain import load_domain
    from smflow.ml.train import train_domain_models
    from smflow.store import TimeSeriesStore

    settings = settings or Settings.load()
    pipe = pipeline(pipeline_name)
    if not pipe.models:
        raise ValueError(f"pipeline {pipe.name!r} has no own 'models' in config/daily_pipelines.json: "
                         "its models are trained by the train_models DAG")
    start, end = as_date(train_start), as_date(train_end)
    if end < start:
        raise ValueError(f"train_end {end} is before train_start {start}")
    store = TimeSeriesStore(settings, s3=s3mod.client(settings), grid=load_domain(pipe.domain))
    held = {p: len(store.days(p, start, end)) for p in pipe.parents}
    out: dict[str, Any] = {"pipeline": pipe.name, "train_start": start.isoformat(), "train_end": end.isoformat(),
                           "days_held": held}
    if not any(held.values()):
        out["skipped"] = (f"the {pipe.domain} store holds no day of {', '.join(pipe.parents)} in {start}..{end}: "
                          "nothing to train on (ingest or seed the domain's history first)")
        log.warning("train_domain %s: skipped: %s", pipe.name, out["skipped"])
        return out
    out["models"] = [r.to_dict() for r in train_domain_models(pipe.name, (start, end), settings=settings)]
    return out
