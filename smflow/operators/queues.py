"""Which Celery queue each smflow task runs on: ``light`` or ``heavy``.

With the CeleryExecutor (``SMFLOW_AIRFLOW_EXECUTOR=celery``, docs/operations.md) one worker
consumes each queue with its own concurrency: ``light`` tasks wait, fetch, publish, trigger and
alert (I/O and bookkeeping, small memory); ``heavy`` tasks decode and regrid granules, run the
science and train or score models (CPU and memory). The LocalExecutor ignores queues.

The rule lives here, in one place: every DAG file passes its DAG through :func:`assign_queues`
(no task names its queue by hand). A task the rule does not know goes to ``heavy``: a new
science task never lands on the small worker by mistake, and Airflow's ``[operators]
default_queue`` of the stack is ``heavy`` too.
"""

from __future__ import annotations

from typing import Any, Literal

Queue = Literal["light", "heavy"]

LIGHT: Queue = "light"
HEAVY: Queue = "heavy"
QUEUES: tuple[Queue, ...] = (LIGHT, HEAVY)

#: Task ids whose work is waiting, fetching, publishing, triggering or moving an alias: the light queue.
LIGHT_TASKS: frozenset[str] = frozenset({
    "wait_for_granule",  # sensors (deferrable: the wait itself is in the triggerer)
    "fetch_granule",  # download + checksum + landing
    "fetch_late_granules",
    "find_gaps",  # provider searches, landing-zone listings
    "days_to_rerun",
    "rerun_daily",  # TriggerDagRunOperator
    "publish_products",  # copies staged products, STAC items, the catalogue page
    "publish_inputs",
    "roll_back",  # moves a registry alias
})


def queue_for(task: Any) -> Queue:
    """The queue of ``task`` (an Airflow operator, mapped or not).

    :param task: the task; sensors and DAG-run triggers are light whatever their id, the ids of
        :data:`LIGHT_TASKS` are light, every other task is heavy.
    :return: ``"light"`` or ``"heavy"``.
    """
    from airflow.sdk import BaseSensorOperator

    operator_class = getattr(task, "operator_class", None) or type(task)  # a MappedOperator names its class
    if isinstance(operator_class, type) and issubclass(operator_class, BaseSensorOperator):
        return LIGHT
    if getattr(operator_class, "__name__", "") == "TriggerDagRunOperator":
        return LIGHT
    return LIGHT if task.task_id in LIGHT_TASKS else HEAVY


def assign_queues(dag: Any) -> Any:
    """Set the queue of every task of ``dag`` by :func:`queue_for`; returns ``dag`` (parse time, light).

    :param dag: an Airflow DAG (``airflow.sdk.DAG``).
    :return: the same DAG.
    """
    for task in dag.tasks:
        task.queue = queue_for(task)
    return dag
