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


def default_args(*, retries: int, retry_delay_seconds: int) -> dict[str, Any]:
    """``default_args`` every smflow DAG uses: owner, retries and :func:`on_task_failure`.

    Light on purpose: DAG files import it at parse time.
    """
    from datetime import timedelta

    return {
        "owner": "smflow",
        "retries": retries,
        "retry_delay": timedelta(seconds=retry_delay_seconds),
        "on_failure_callback": on_task_failure,
    }
