"""Glue of the daily 0.01 deg product (pipelines with ``downscaled`` among their ``products``).

One task per day, after the day's coarse products are published: downscale the published
``merged-sm`` soil moisture with the pipeline's configured method
(:func:`smflow.downscaling.daily.run_day`: COG + quicklook + STAC item, mass conservation checked)
and return a small record for XCom. Importable without Airflow.
"""

from __future__ import annotations

import logging
from typing import Any

from smflow.dates import as_date

log = logging.getLogger(__name__)


def downscale_day(day: Any, pipeline_name: str, *, settings=None) -> dict[str, Any]:
    """Downscale and publish the merged soil moisture of ``day`` for pipeline ``pipeline_name``.

    Parameters
    ----------
    day : date or str
        Product day (ISO string from Airflow).
    pipeline_name : str
        Pipeline key or DAG id of ``config/daily_pipelines.json``; its ``downscaling.method``
        is the method used.

    Returns
    -------
    dict
        ``day``, ``status`` (``ok`` or ``missing`` when the coarse field is all NaN: nothing
        published), ``method``, ``keys`` (COG, quicklook, STAC item), ``written`` (objects whose
        bytes changed: empty on an idempotent re-run) and ``mass_conservation``.

    Raises
    ------
    FileNotFoundError
        The day's coarse product is not published (no STAC item).
    RuntimeError
        A kriging variant's fine field does not average back to the coarse field (raised by
        :func:`smflow.downscaling.daily.downscale_field` before anything is published).
    """
    from smflow.catalog import pipeline
    from smflow.downscaling.daily import run_day

    pipe = pipeline(pipeline_name)
    out = run_day(as_date(day), domain_name=pipe.domain, method=pipe.downscaling_method, settings=settings)
    log.info("1 km product %s %s: %s (%s written)", pipe.domain, day, out.get("status"),
             len(out.get("written", [])))
    return {k: out.get(k) for k in ("day", "status", "method", "keys", "written", "mass_conservation", "reason")
            if k in out}
