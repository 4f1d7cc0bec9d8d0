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

The same history holds every registration (a new version takes the ``challenger`` alias, kind
``registration``) and every challenger the ``evaluate_challenger`` DAG did not promote (kind
``refused``, with the reason; tag ``champion.refused`` on the version): :mod:`smflow.ml.challenger`.

Command line::

    python -m smflow.ml.lifecycle history NAME           # every move of NAME's aliases
    python -m smflow.ml.lifecycle rollback NAME [--alias champion] [--reason TEXT]

The Airflow DAG ``rollback_model`` runs the same rollback from the UI. The daily DAG resolves
``models:/<name>@champion`` at every run, so a rollback takes effect at its next run.
"""

from __future__ import annotations

import sys

from smflow.config import Settings
from smflow.ml.alias_log import HISTORY_PREFIX, AliasMove, format_history, history, record_alias_move

__all__ = ["HISTORY_PREFIX", "AliasMove", "format_history", "history", "record_alias_move", "rollback"]


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
