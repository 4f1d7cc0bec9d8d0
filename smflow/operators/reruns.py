"""Re-running the daily runs of given days from a task (``reconcile_archive``).

Airflow 3.3 keeps one run per DAG and logical date, so ``TriggerDagRunOperator`` for a day that
already has a run conflicts; with ``reset_dag_run`` it then clears the run *of the run id it was
given*, and a run made by the scheduler (``scheduled__<date>``), a backfill (``backfill__<date>``) or
a manual trigger (``manual__<time of the trigger>``) has another one, so the clear fails with
"Dag run ... not found". :func:`rerun_requests` therefore looks up the id of the day's existing
run (through the task SDK's own "previous Dag run" request, the one ``get_previous_dagrun`` uses)
and asks the operator to trigger under that id, which it then clears and runs again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from smflow.dates import as_date


def existing_run_id(dag_id: str, day) -> str | None:
    """The run id of ``dag_id``'s run whose logical date is UTC ``day`` 00:00, or None (inside a task)."""
    from airflow.sdk.execution_time.comms import GetPreviousDagRun
    from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

    start = datetime.combine(as_date(day), datetime.min.time(), tzinfo=timezone.utc)
    # the latest run strictly before start + 1 s: the day's run if there is one
    reply = SUPERVISOR_COMMS.send(msg=GetPreviousDagRun(dag_id=dag_id, logical_date=start + timedelta(seconds=1)))
    run = getattr(reply, "dag_run", None)
    if run is None or run.logical_date is None or run.logical_date != start:
        return None
    return run.run_id


def rerun_requests(dag_id: str, days: Iterable) -> list[dict[str, str]]:
    """``TriggerDagRunOperator`` kwargs (``logical_date``, ``trigger_run_id``) re-running each of ``days``.

    A day without a run gets a new ``manual__<date>`` run; a day with one has that run cleared
    and run again (``reset_dag_run=True`` on the operator).
    """
    out = []
    for day in sorted({as_date(d) for d in days}):
        logical_date = f"{day.isoformat()}T00:00:00+00:00"
        out.append({"logical_date": logical_date,
                    "trigger_run_id": existing_run_id(dag_id, day) or f"manual__{logical_date}"})
    return out
