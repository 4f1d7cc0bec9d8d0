"""Failure callback shared by every DAG: one structured log line, alerts (e-mail / webhook, where
configured: :mod:`smflow.operators.alerts`) and an alert record in S3."""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger("smflow.alerts")


def on_task_failure(context: dict[str, Any]) -> None:
    """Record a failed task for operators (``s3://{store_bucket}/alerts/{dag}/{run}/{task}.json``).

    Never raises: an alerting problem must not hide the original failure.
    """
    ti = context.get("task_instance") or context.get("ti")
    record = {
        "dag_id": getattr(ti, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "map_index": getattr(ti, "map_index", None),
        "run_id": getattr(ti, "run_id", None),
        "try_number": getattr(ti, "try_number", None),
        "logical_date": str(context.get("logical_date")),
        "exception": repr(context.get("exception")),
    }
    log.error("task failed: %s", json.dumps(record))
    from smflow.operators.alerts import send_alert  # e-mail / webhook, where configured; never raises

    send_alert("task_failed", f"{record['dag_id']}.{record['task_id']} failed (try {record['try_number']}): "
               f"{record['exception']}", context)
    try:
        from smflow import s3 as s3mod
        from smflow.config import Settings

        settings = Settings.load()
        key = f"alerts/{record['dag_id']}/{record['run_id']}/{record['task_id']}_{record['map_index']}.json"
        s3mod.client(settings).put_object(
            Bucket=settings.store_bucket, Key=key, Body=json.dumps(record, indent=1).encode()
        )
    except Exception:  # noqa: BLE001 - see docstring
        log.exception("could not write the alert record")


#: Task retry policy of every smflow DAG, sized to ride out an S3 or PostgreSQL outage of a few
#: minutes: the n-th retry waits between ``base * 2**(n-1)`` and twice that (Airflow's
#: deterministic jitter), capped at :data:`MAX_RETRY_DELAY_SECONDS`. With the defaults the retries
#: start after >= 30, 60, 120, 240 and 300 s: the last attempt comes >= 750 s (12.5 min) after the
#: first failure. Failures no retry can fix raise ``AirflowFailException`` and fail at once.
RETRIES = 5
RETRY_DELAY_SECONDS = 30.0
RETRY_BACKOFF = 2.0
MAX_RETRY_DELAY_SECONDS = 300.0


def min_retry_delays(retries: int = RETRIES, retry_delay_seconds: float = RETRY_DELAY_SECONDS,
                     backoff: float = RETRY_BACKOFF,
                     max_retry_delay_seconds: float = MAX_RETRY_DELAY_SECONDS) -> list[float]:
    """Shortest wait [s] before each retry under Airflow's exponential backoff (jitter adds up to 1x).

    Mirrors ``airflow.models.taskinstance.TaskInstance.next_retry_datetime``: before retry ``n``
    (1-based) the delay is at least ``ceil(retry_delay_seconds * backoff**(n-1))``, capped.
    """
    import math

    return [min(float(math.ceil(retry_delay_seconds * backoff ** (n - 1))), max_retry_delay_seconds)
            for n in range(1, retries + 1)]


def default_args(*, retries: int = RETRIES, retry_delay_seconds: float = RETRY_DELAY_SECONDS,
                 max_retry_delay_seconds: float = MAX_RETRY_DELAY_SECONDS) -> dict[str, Any]:
    """``default_args`` every smflow DAG uses: owner, the outage retry policy and :func:`on_task_failure`.

    Retries back off exponentially (multiplier :data:`RETRY_BACKOFF`; note that Airflow 3 reads
    ``retry_exponential_backoff=True`` as a multiplier of 1, i.e. no backoff) up to
    ``max_retry_delay_seconds``. Light on purpose: DAG files import it at parse time.
    """
    from datetime import timedelta

    return {
        "owner": "smflow",
        "retries": retries,
        "retry_delay": timedelta(seconds=retry_delay_seconds),
        "retry_exponential_backoff": RETRY_BACKOFF,
        "max_retry_delay": timedelta(seconds=max_retry_delay_seconds),
        "on_failure_callback": on_task_failure,
    }
