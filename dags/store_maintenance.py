"""Store maintenance: expire the chunked store's old Icechunk snapshots and garbage-collect.

Every stored day is a commit, so each domain's repository (``s3://sm-store/timeseries-zarr/{domain}/``)
gains a snapshot, and keeps the chunks that commit replaced, every day. Once a day this drops the
snapshots older than the retention (run param ``retention_days``; empty: ``SMFLOW_STORE_RETENTION_DAYS``,
30 days) from the history of ``main`` and deletes the objects only they referenced, on the domain of
every daily pipeline (``config/daily_pipelines.json``). The latest data is never touched; a domain
without a repository is left alone. The same as ``python -m smflow.store expire`` (docs/store.md).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from smflow.operators.callbacks import default_args
from smflow.operators.queues import assign_queues


@dag(
    dag_id="store_maintenance",
    description="expire the chunked time-series store's snapshots older than the retention and garbage-collect their objects",
    schedule="30 4 * * *",  # before the daily products' morning runs (drift_watch is at 07:00)
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["smflow", "store", "maintenance"],
    doc_md=__doc__,
    params={
        "retention_days": Param("", type="string",
                                description="history to keep [days] (empty: SMFLOW_STORE_RETENTION_DAYS, 30)"),
        "domains": Param("", type="string",
                         description="comma-separated domains (empty: every daily pipeline's domain)"),
    },
)
def store_maintenance():
    @task
    def expire_store_snapshots(params: dict | None = None) -> list[dict]:
        from datetime import timedelta

        from smflow.store.maintenance import expire_store

        days = str(params.get("retention_days") or "").strip()
        retention = timedelta(days=float(days)) if days else None
        domains = [d.strip() for d in str(params.get("domains") or "").split(",") if d.strip()] or None
        return [r.as_dict() for r in expire_store(domains=domains, retention=retention)]

    expire_store_snapshots()


assign_queues(store_maintenance())
