"""The append-only history of the registry's alias moves (see :mod:`smflow.ml.lifecycle`): MLflow
version tags ``<alias>.promoted`` / ``<alias>.replaced`` and one immutable S3 object per move under
``s3://{store_bucket}/registry-history/<model>/``. A challenger that is evaluated and *not* promoted
is recorded the same way (kind ``refused``: the alias stays, the reason is kept; tag
``<alias>.refused`` on the challenger). Imported by :func:`smflow.ml.registry.promote`; imports
nothing of the registry."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
from dataclasses import asdict, dataclass
from typing import Any

from smflow.config import Settings

HISTORY_PREFIX = "registry-history"


@dataclass(frozen=True)
class AliasMove:
    """One move of an alias: ``alias`` of ``model`` went from version ``from_version`` (None: the
    alias was new) to ``to_version``.

    ``kind``: ``promotion`` (a gate passed), ``rollback``, ``registration`` (a new version became
    ``challenger``) or ``refused`` (the alias did *not* move: ``to_version`` lost against
    ``from_version``, the version holding the alias, for ``reason``).
    """

    model: str
    alias: str
    from_version: str | None
    to_version: str
    reason: str
    evaluation_run: str
    actor: str
    kind: str  # "promotion", "rollback", "registration" or "refused"
    at: str  # UTC, ISO 8601


def _actor() -> str:
    """Who moved the alias: the Airflow task (``dag.task run``) when inside one, else the user."""
    dag, task, run = (os.environ.get(k) for k in ("AIRFLOW_CTX_DAG_ID", "AIRFLOW_CTX_TASK_ID", "AIRFLOW_CTX_DAG_RUN_ID"))
    if dag and task:
        return f"airflow {dag}.{task} ({run})"
    try:
        return f"user {getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "unknown"


def record_alias_move(model: str, alias: str, from_version: str | None, to_version: str, *, reason: str,
                      evaluation_run: str, kind: str = "promotion", settings: Settings | None = None,
                      s3: Any = None) -> AliasMove | None:
    """Record a move of ``alias`` (MLflow version tags + one immutable S3 object); None when the
    alias did not move (same version).

    Raises
    ------
    botocore.exceptions.ClientError
        The S3 log could not be written (the tags are already set; a retry records it again).
    """
    if from_version is not None and str(from_version) == str(to_version):
        return None
    from mlflow import MlflowClient

    move = AliasMove(model=model, alias=alias, from_version=None if from_version is None else str(from_version),
                     to_version=str(to_version), reason=reason, evaluation_run=evaluation_run, actor=_actor(),
                     kind=kind, at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"))
    record = json.dumps(asdict(move), sort_keys=True)
    client = MlflowClient()
    client.set_model_version_tag(model, move.to_version, f"{alias}.promoted", record)
    if move.from_version is not None:
        client.set_model_version_tag(model, move.from_version, f"{alias}.replaced", record)
    _append(move, record, settings=settings, s3=s3)
    return move


def record_refusal(model: str, alias: str, holder: str | None, challenger: str, *, reason: str,
                   evaluation_run: str, settings: Settings | None = None, s3: Any = None) -> AliasMove:
    """Record that ``challenger`` was evaluated against ``holder`` (the version holding ``alias``) and
    not promoted: tag ``<alias>.refused`` on the challenger + one immutable S3 object. Nothing is
    deleted or moved; the challenger keeps its version, its run and this evaluation."""
    from mlflow import MlflowClient

    move = AliasMove(model=model, alias=alias, from_version=None if holder is None else str(holder),
                     to_version=str(challenger), reason=reason, evaluation_run=evaluation_run, actor=_actor(),
                     kind="refused", at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"))
    record = json.dumps(asdict(move), sort_keys=True)
    MlflowClient().set_model_version_tag(model, move.to_version, f"{alias}.refused", record)
    _append(move, record, settings=settings, s3=s3)
    return move


def _append(move: AliasMove, record: str, *, settings: Settings | None, s3: Any) -> str:
    """Write ``record`` as a new immutable object of the model's history; returns its key."""
    from smflow import s3 as s3mod

    settings = settings or Settings.load()
    s3 = s3 or s3mod.client(settings)
    stamp = move.at.replace(":", "").replace("-", "").replace("+0000", "Z").replace("+00:00", "Z")
    what = "refused" if move.kind == "refused" else f"v{move.from_version or 'none'}"
    key = f"{HISTORY_PREFIX}/{move.model}/{stamp}-{move.alias}-{what}-v{move.to_version}.json"
    s3mod.ensure_bucket(s3, settings.store_bucket)
    s3.put_object(Bucket=settings.store_bucket, Key=key, Body=record.encode(), ContentType="application/json",
                  IfNoneMatch="*")  # append-only: never overwrite a record
    return key


def history(model: str, *, settings: Settings | None = None, s3: Any = None) -> list[AliasMove]:
    """Every recorded move of ``model``'s aliases, oldest first (from the S3 log)."""
    from smflow import s3 as s3mod

    settings = settings or Settings.load()
    s3 = s3 or s3mod.client(settings)
    keys = s3mod.list_keys(s3, settings.store_bucket, f"{HISTORY_PREFIX}/{model}/", empty_if_no_bucket=True)
    moves = [AliasMove(**json.loads(s3.get_object(Bucket=settings.store_bucket, Key=k)["Body"].read())) for k in keys]
    return sorted(moves, key=lambda m: m.at)


def format_history(moves: list[AliasMove]) -> str:
    """A table of moves for a terminal."""
    if not moves:
        return "no recorded alias moves"
    lines = [f"{'when (UTC)':<29} {'alias':<10} {'kind':<12} {'from':>5} -> {'to':<5} {'by':<40} reason"]
    for m in moves:
        # a refusal: the alias stayed on from_version; to_version is the challenger that lost
        arrow = "kept, refused" if m.kind == "refused" else "->"
        lines.append(f"{m.at:<29} {m.alias:<10} {m.kind:<12} {('v' + m.from_version) if m.from_version else '-':>5} "
                     f"{arrow} {'v' + m.to_version:<5} {m.actor[:40]:<40} {m.reason} "
                     f"(evaluation run {m.evaluation_run})")
    return "\n".join(lines)
