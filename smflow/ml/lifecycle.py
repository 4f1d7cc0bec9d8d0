"""The history of the registry's aliases (who moved ``champion`` from which version to which, and
why), and the rollback of an alias to the version it held before.

MLflow keeps no history of alias moves (mlflow/mlflow#2169), so every move made through
:func:`smflow.ml.registry.promote` or :func:`rollback` is recorded twice:

- as tags on the model versions: ``<alias>.promoted`` on the version that got the alias and
  ``<alias>.replaced`` on the one that lost it (JSON: time, from, to, reason, evaluation run,
  actor), readable in the MLflow UI;
- in an append-only log in S3: one immutable object per move,
  ``s3://{store_bucket}/registry-history/<model>/<UTC time>-<alias>-v<from>-v<to>.json``
  (never rewritten; listing the prefix in order gives the history).

Command line::

    python -m smflow.ml.lifecycle history NAME           # every move of NAME's aliases
    python -m smflow.ml.lifecycle rollback NAME [--alias champion] [--reason TEXT]

The Airflow DAG ``rollback_model`` runs the same rollback from the UI. The daily DAG resolves
``models:/<name>@champion`` at every run, so a rollback takes effect at its next run.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import sys
from dataclasses import asdict, dataclass
from typing import Any

from smflow.config import Settings

HISTORY_PREFIX = "registry-history"


@dataclass(frozen=True)
class AliasMove:
    """One move of an alias: ``alias`` of ``model`` went from version ``from_version`` (None: the
    alias was new) to ``to_version``."""

    model: str
    alias: str
    from_version: str | None
    to_version: str
    reason: str
    evaluation_run: str
    actor: str
    kind: str  # "promotion" or "rollback"
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

    from smflow import s3 as s3mod

    move = AliasMove(model=model, alias=alias, from_version=None if from_version is None else str(from_version),
                     to_version=str(to_version), reason=reason, evaluation_run=evaluation_run, actor=_actor(),
                     kind=kind, at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"))
    record = json.dumps(asdict(move), sort_keys=True)
    client = MlflowClient()
    client.set_model_version_tag(model, move.to_version, f"{alias}.promoted", record)
    if move.from_version is not None:
        client.set_model_version_tag(model, move.from_version, f"{alias}.replaced", record)
    settings = settings or Settings.load()
    s3 = s3 or s3mod.client(settings)
    stamp = move.at.replace(":", "").replace("-", "").replace("+0000", "Z").replace("+00:00", "Z")
    key = f"{HISTORY_PREFIX}/{model}/{stamp}-{alias}-v{move.from_version or 'none'}-v{move.to_version}.json"
    s3mod.ensure_bucket(s3, settings.store_bucket)
    s3.put_object(Bucket=settings.store_bucket, Key=key, Body=record.encode(), ContentType="application/json",
                  IfNoneMatch="*")  # append-only: never overwrite a record
    return move


def history(model: str, *, settings: Settings | None = None, s3: Any = None) -> list[AliasMove]:
    """Every recorded move of ``model``'s aliases, oldest first (from the S3 log)."""
    from smflow import s3 as s3mod

    settings = settings or Settings.load()
    s3 = s3 or s3mod.client(settings)
    keys = s3mod.list_keys(s3, settings.store_bucket, f"{HISTORY_PREFIX}/{model}/", empty_if_no_bucket=True)
    moves = [AliasMove(**json.loads(s3.get_object(Bucket=settings.store_bucket, Key=k)["Body"].read())) for k in keys]
    return sorted(moves, key=lambda m: m.at)


def rollback(model: str, alias: str = "champion", *, reason: str = "rollback requested",
             settings: Settings | None = None, s3: Any = None):
    """Point ``alias`` back at the version it held before the promotion of its current version.

    Returns the :class:`smflow.ml.registry.ModelRef` the alias now points at.

    Raises
    ------
    LookupError
        No earlier version to return to (the alias never moved, or was new at its only move).
    """
    from mlflow import MlflowClient

    from smflow.ml.registry import ModelRef, champion_ref

    current = champion_ref(model, alias)
    # the promotion that brought the current version in (a rollback is not undone by another one)
    moves = [m for m in history(model, settings=settings, s3=s3)
             if m.alias == alias and m.to_version == current.version and m.kind == "promotion"]
    if not moves or moves[-1].from_version is None:
        raise LookupError(f"{model}@{alias} (v{current.version}): no earlier version recorded to roll back to; "
                          f"see `python -m smflow.ml.lifecycle history {model}`")
    target = moves[-1].from_version
    client = MlflowClient()
    client.set_registered_model_alias(model, alias, target)
    run_id = client.get_model_version(model, target).run_id
    record_alias_move(model, alias, current.version, target, reason=reason, evaluation_run=run_id, kind="rollback",
                      settings=settings, s3=s3)
    return ModelRef(model, target, run_id, alias)


def format_history(moves: list[AliasMove]) -> str:
    """A table of moves for a terminal."""
    if not moves:
        return "no recorded alias moves"
    lines = [f"{'when (UTC)':<29} {'alias':<10} {'kind':<9} {'from':>5} -> {'to':<5} {'by':<40} reason"]
    for m in moves:
        lines.append(f"{m.at:<29} {m.alias:<10} {m.kind:<9} {('v' + m.from_version) if m.from_version else '-':>5} -> "
                     f"{'v' + m.to_version:<5} {m.actor[:40]:<40} {m.reason} (evaluation run {m.evaluation_run})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from smflow.ml.registry import configure

    parser = argparse.ArgumentParser(prog="python -m smflow.ml.lifecycle", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    h = sub.add_parser("history", help="every recorded move of a model's aliases")
    h.add_argument("model")
    r = sub.add_parser("rollback", help="point the alias back at its previous version")
    r.add_argument("model")
    r.add_argument("--alias", default="champion")
    r.add_argument("--reason", default="rollback requested from the command line")
    args = parser.parse_args(argv)
    configure()
    if args.command == "history":
        print(format_history(history(args.model)))
        return 0
    try:
        ref = rollback(args.model, args.alias, reason=args.reason)
    except LookupError as exc:
        print(f"rollback refused: {exc}", file=sys.stderr)
        return 1
    print(f"{args.model}@{args.alias} -> v{ref.version} (run {ref.run_id})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
