"""Drift watch: is the champion still as good on the days it published as on its own evaluation?

Every day (DAG ``drift_watch``) and for each model of the ``drift`` section of
``config/model_gates.json``:

1. the window: the last ``window_days`` days up to ``end``; of those, the *published* days whose
   lineage (the day's STAC item, ``smflow:<lineage key>``) names the current champion version;
2. the skill of those published products against the first reference of the model's ``checks``
   that is available here and for which the champion logged its own evaluation metric: the in-situ
   stations (``../shared``) where present, C3S SM COMBINED otherwise; the rain gauges for SM2RAIN
   (:func:`smflow.skill.skill_table`, the table users see);
3. the comparison with the champion's own evaluation (a metric of its training run, e.g. tc_merging's
   ``median_r_merged_vs_c3s``, SM2RAIN's ``median_r_validation``): when the window is worse by
   more than the model's ``margin``, the champion version gets the tag ``retrain`` = ``requested``
   (with ``retrain.reason``, ``retrain.window``, ``retrain.requested_at``, ``retrain.check_run``).
   MLflow's ``model_version_tag.set`` webhook makes the receiver (:mod:`smflow.operators.webhooks`)
   start ``train_models``: the same path as a scientist's request.

Every check is an MLflow run of experiment :data:`EXPERIMENT` (params: model, version, window,
reference, metrics; metrics ``window_<metric>``, ``champion_<metric>``, ``degradation``,
``days_scored``, ``sites``; tags ``decision`` and ``reason``), whatever its outcome. A request is
never made twice for the same champion while one is pending (its ``retrain`` tag is still
``requested``; a newly promoted champion starts without the tag, and an operator clears a request by
setting ``retrain`` to another value, e.g. ``done``).

Command line::

    python -m smflow.ml.drift [--end YYYY-MM-DD] [--window-days 30] [--model NAME]
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

from smflow.config import REPO_ROOT, Settings

log = logging.getLogger(__name__)

GATES = REPO_ROOT / "config" / "model_gates.json"
#: MLflow experiment of the drift checks.
EXPERIMENT = "drift_watch"
#: The tag and value the webhook receiver turns into a ``train_models`` run
#: (:data:`smflow.operators.webhooks.RETRAIN_TAG` / ``RETRAIN_VALUE``; ml may not import operators).
RETRAIN_TAG, RETRAIN_VALUE = "retrain", "requested"
DEFAULT_WINDOW_DAYS = 30

#: How the skill table names each reference and product (:func:`smflow.skill.skill_table`).
_REFERENCE_ROWS = {"insitu": "ISMN in-situ", "c3s": "C3S", "gauges": "SCAN rain gauges"}
_PRODUCT_ROWS = {"merged": "merged (", "rain": "SM2RAIN rainfall"}


@dataclass(frozen=True)
class DriftCheck:
    """One way of scoring a model's published product, in the rule's order of preference.

    Attributes
    ----------
    reference : {"insitu", "c3s", "gauges"}
        What the published product is scored against.
    metric : {"r", "ubrmse", "bias"}
        The window's metric (median over sites, as in the skill table).
    champion_metric : str
        The metric of the champion's training run it is compared with; ``{method}`` is replaced
        by the version's ``method`` tag (``soil_moisture_merging``: ``period_{method}_ubrmse``).
    direction : {"higher", "lower"}
        Which way is better.
    margin : float
        How much worse than the champion's evaluation the window may be before a retraining is
        requested [units of the metric].
    """

    reference: Literal["insitu", "c3s", "gauges"]
    metric: Literal["r", "ubrmse", "bias"]
    champion_metric: str
    direction: Literal["higher", "lower"]
    margin: float

    def degradation(self, window: float, champion: float) -> float:
        """How much worse the window is than the champion's evaluation (positive: worse)."""
        return champion - window if self.direction == "higher" else window - champion


@dataclass(frozen=True)
class DriftRule:
    """What to watch for one registered model.

    Attributes
    ----------
    model : str
    product : {"merged", "rain"}
        The published product the model makes.
    lineage : str
        Provenance key naming the version that made a day (``tc_merging_model``, ``merging_model``,
        ``sm2rain_model``).
    checks : tuple of DriftCheck
        In order of preference; the first available one is used.
    min_days : int
        Fewer published days of the champion in the window: no decision (recorded as skipped).
    """

    model: str
    product: Literal["merged", "rain"]
    lineage: str
    checks: tuple[DriftCheck, ...]
    min_days: int = 10


def load_rules(path: Path = GATES) -> tuple[dict[str, DriftRule], int]:
    """(model -> rule, default window days) from the ``drift`` section of ``config/model_gates.json``.

    Raises
    ------
    KeyError
        The file has no ``drift`` section: add one (``window_days``, ``min_days``, ``models``).
    """
    doc = json.loads(Path(path).read_text())
    if "drift" not in doc:
        raise KeyError(f"{path} has no 'drift' section: add window_days, min_days and models "
                       "(product, lineage, checks: reference, metric, champion_metric, direction, margin)")
    section = doc["drift"]
    rules = {}
    for model, e in section["models"].items():
        checks = []
        for c in e["checks"]:
            if c["direction"] not in ("higher", "lower"):
                raise ValueError(f"{path}: drift.{model} check direction is {c['direction']!r}; use 'higher' or 'lower'")
            checks.append(DriftCheck(c["reference"], c["metric"], c["champion_metric"], c["direction"], float(c["margin"])))
        rules[model] = DriftRule(model, e["product"], e["lineage"], tuple(checks),
                                 int(e.get("min_days", section.get("min_days", 10))))
    return rules, int(section.get("window_days", DEFAULT_WINDOW_DAYS))


@dataclass(frozen=True)
class DriftResult:
    """Outcome of one check (small: goes through XCom as :meth:`to_dict`).

    ``decision``: ``retrain requested``, ``healthy``, ``drifted, request pending`` (a request for
    this champion is still open) or ``skipped`` (no champion, too few days, no reference).
    """

    model: str
    version: str | None
    window: tuple[str, str]
    decision: str
    reason: str
    check_run: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def requested(self) -> bool:
        return self.decision == "retrain requested"

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "window": list(self.window), "decision": self.decision,
                "reason": self.reason, "check_run": self.check_run, "metrics": self.metrics}


def published_lineage(s3: Any, bucket: str, days: list[date]) -> dict[date, dict[str, tuple[str, str]]]:
    """Per published day: provenance key -> (model name, version) of the versions that made it (from
    the day's STAC item, the commit point of a published day)."""
    from botocore.exceptions import ClientError

    from smflow.publish.publisher import item_key, model_cards

    out = {}
    for d in days:
        try:
            item = json.loads(s3.get_object(Bucket=bucket, Key=item_key(d))["Body"].read())
        except ClientError as error:  # not published (or nothing published yet: no bucket)
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "NoSuchBucket", "404"):
                continue
            raise
        lineage = {k.removeprefix("smflow:"): v for k, v in item["properties"].items() if k.startswith("smflow:")}
        out[d] = {role: (card["name"], card["version"]) for role, card in model_cards(lineage).items()}
    return out


def _log_check(rule: DriftRule, version: str | None, window: tuple[date, date], decision: str, reason: str,
               params: dict[str, Any], metrics: dict[str, float]) -> str:
    import mlflow

    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name=f"{rule.model} v{version or '-'} {window[0]}..{window[1]}") as run:
        mlflow.log_params({"model": rule.model, "version": version or "none", "window_start": str(window[0]),
                           "window_end": str(window[1]), "product": rule.product, **params})
        mlflow.log_metrics({k: v for k, v in metrics.items() if math.isfinite(v)})
        mlflow.set_tags({"decision": decision, "reason": reason[:5000], "model": rule.model,
                         "version": version or "none"})
        return run.info.run_id


def check(model: str, *, end: date, window_days: int | None = None, rule: DriftRule | None = None,
          settings: Settings | None = None, s3: Any = None) -> DriftResult:
    """Score the champion of ``model`` on its published days of the window ending ``end``, record the
    check, and request retraining when it drifted by more than the margin (once per champion).

    Parameters
    ----------
    model : str
        Registered model name.
    end : date
        Last day of the window (inclusive).
    window_days : int, optional
        Window length [days]; default: ``drift.window_days`` of ``config/model_gates.json``.
    rule : DriftRule, optional
        Default: the model's entry in the ``drift`` section.

    Returns
    -------
    DriftResult
    """
    from mlflow import MlflowClient

    from smflow import s3 as s3mod
    from smflow.ml.registry import champion_ref, configure
    from smflow.skill import skill_table

    settings = configure(settings)
    rules, default_window = load_rules()
    rule = rule or rules[model]
    window_days = int(window_days or default_window)
    window = (end - timedelta(days=window_days - 1), end)
    days = [window[0] + timedelta(days=k) for k in range(window_days)]
    client = MlflowClient()
    try:
        champion = champion_ref(model)
    except LookupError as exc:
        reason = f"no champion: {exc}"
        return DriftResult(model, None, tuple(map(str, window)), "skipped", reason,
                           _log_check(rule, None, window, "skipped", reason, {}, {}))
    version = client.get_model_version(model, champion.version)
    pending = version.tags.get(RETRAIN_TAG, "").strip().lower() == RETRAIN_VALUE
    s3 = s3 or s3mod.client(settings)
    lineage = published_lineage(s3, settings.products_bucket, days)
    made = sorted(d for d, roles in lineage.items() if roles.get(rule.lineage) == (model, champion.version))
    base = {"published_days": float(len(lineage)), "days_scored": float(len(made))}
    if len(made) < rule.min_days:
        reason = (f"{len(made)} published days of {model} v{champion.version} in {window[0]}..{window[1]} "
                  f"(of {len(lineage)} published) < {rule.min_days}: no decision")
        return DriftResult(model, champion.version, tuple(map(str, window)), "skipped", reason,
                           _log_check(rule, champion.version, window, "skipped", reason, {}, base), base)

    rows = skill_table(made[0], made[-1], days=made, settings=settings, s3=s3, min_samples=min(10, len(made)))
    logged = client.get_run(champion.run_id).data.metrics
    method = version.tags.get("method", "tc")
    chosen = None
    for c in rule.checks:
        row = next((r for r in rows if r.product.startswith(_PRODUCT_ROWS[rule.product])
                    and r.reference.startswith(_REFERENCE_ROWS[c.reference])), None)
        key = c.champion_metric.format(method=method)
        if row is not None and key in logged and math.isfinite(getattr(row, c.metric)):
            chosen = (c, row, key, float(logged[key]))
            break
    if chosen is None:
        reason = (f"no reference of {[c.reference for c in rule.checks]} available here with a metric logged by "
                  f"v{champion.version}'s run: no decision")
        return DriftResult(model, champion.version, tuple(map(str, window)), "skipped", reason,
                           _log_check(rule, champion.version, window, "skipped", reason, {}, base), base)
    c, row, key, champion_value = chosen
    window_value = float(getattr(row, c.metric))
    worse = c.degradation(window_value, champion_value)
    drifted = worse > c.margin
    metrics = {**base, f"window_{c.metric}": window_value, f"champion_{c.metric}": champion_value,
               "degradation": worse, "margin": c.margin, "sites": float(row.n_sites)}
    text = (f"{rule.product} product of {model} v{champion.version} on {len(made)} published days "
            f"{made[0]}..{made[-1]} vs {row.reference}: median {c.metric} {window_value:.4f} vs the champion's "
            f"evaluation {key} {champion_value:.4f} ({c.direction} is better): "
            f"{'worse' if worse > 0 else 'better'} by {abs(worse):.4f}, margin {c.margin:g}")
    if not drifted:
        decision, reason = "healthy", text + ": healthy"
    elif pending:
        decision = "drifted, request pending"
        reason = (text + f": drifted; retraining already requested for v{champion.version} "
                  f"({version.tags.get('retrain.requested_at', 'earlier')}): not requested again")
    else:
        decision, reason = "retrain requested", text + ": drifted, retraining requested"
    params = {"reference": c.reference, "metric": c.metric, "champion_metric": key, "direction": c.direction,
              "champion_run": champion.run_id, "days": ",".join(d.isoformat() for d in made)[:6000]}
    run_id = _log_check(rule, champion.version, window, decision, reason, params, metrics)
    if decision == "retrain requested":
        # the reason first: the ``retrain`` tag is what MLflow's webhook turns into a train_models run
        for k, v in {"retrain.reason": reason[:5000], "retrain.window": f"{window[0]}..{window[1]}",
                     "retrain.requested_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                     "retrain.check_run": run_id, RETRAIN_TAG: RETRAIN_VALUE}.items():
            client.set_model_version_tag(model, champion.version, k, v)
    log.info("%s v%s: %s", model, champion.version, reason)
    return DriftResult(model, champion.version, tuple(map(str, window)), decision, reason, run_id, metrics)


def check_all(end: date, window_days: int | None = None, *, models: list[str] | None = None,
              settings: Settings | None = None) -> list[DriftResult]:
    """:func:`check` of every model of the ``drift`` section (or ``models``)."""
    rules, _ = load_rules()
    return [check(m, end=end, window_days=window_days, rule=rules[m], settings=settings) for m in (models or rules)]


def format_results(results: list[DriftResult]) -> str:
    """One line per check, for a terminal."""
    lines = [f"{'model':<24} {'version':>7}  {'window':<22}  {'decision':<26} reason"]
    for r in results:
        lines.append(f"{r.model:<24} {('v' + r.version) if r.version else '-':>7}  {r.window[0]}..{r.window[1]}  "
                     f"{r.decision:<26} {r.reason}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m smflow.ml.drift", description=__doc__.split("\n\n")[0])
    parser.add_argument("--end", type=date.fromisoformat, default=dt.datetime.now(dt.timezone.utc).date(),
                        help="last day of the window (default: today, UTC)")
    parser.add_argument("--window-days", type=int, default=None, help="window length (default: config)")
    parser.add_argument("--model", action="append", help="only this model (repeatable; default: every drift rule)")
    args = parser.parse_args(argv)
    print(format_results(check_all(args.end, args.window_days, models=args.model)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


#: Value of the ``retrain`` tag once the ``train_models`` run it started has finished.
RETRAIN_DONE = "done"


def close_retrain_request(requested_for: str | None, *, run_id: str, outcome: dict[str, Any] | None = None,
                          settings: Settings | None = None) -> str | None:
    """Mark the retraining request that started a ``train_models`` run as done.

    ``train_models`` started by the webhook receiver carries ``requested_for`` = ``"<model> v<N>"``
    in its conf (:func:`smflow.operators.webhooks.route`). When the run's training tasks have
    succeeded, that version's ``retrain`` tag becomes :data:`RETRAIN_DONE` (which starts nothing:
    the receiver only acts on ``requested``), with ``retrain.done_at``, ``retrain.train_run`` and a
    summary of the versions registered (``retrain.outcome``). The drift watch can then request
    again if the new champion drifts too. A failed run leaves the request ``requested``, visible
    in the MLflow UI and in the drift watch (``drifted, request pending``).

    Parameters
    ----------
    requested_for : str or None
        ``"<model> v<N>"`` from the run's conf; None or empty: the run was not requested from
        MLflow, nothing to close.
    run_id : str
        The ``train_models`` run id (recorded on the version).
    outcome : dict, optional
        The training tasks' results (model -> version / promoted), summarised in ``retrain.outcome``.

    Returns
    -------
    str or None
        ``"<model> v<N>"`` when a pending request was closed; None when there was nothing to close
        (no request, or the tag is no longer ``requested``).

    Raises
    ------
    ValueError
        ``requested_for`` is not ``"<model> v<N>"``.
    """
    import re

    from mlflow import MlflowClient

    from smflow.ml.registry import configure

    if not requested_for:
        return None
    match = re.fullmatch(r"\s*(\S+)\s+v(\d+)\s*", requested_for)
    if match is None:
        raise ValueError(f"requested_for {requested_for!r} in the train_models conf is not '<model> v<N>'")
    model, version = match.groups()
    configure(settings)
    client = MlflowClient()
    tags = client.get_model_version(model, version).tags
    if tags.get(RETRAIN_TAG, "").strip().lower() != RETRAIN_VALUE:
        log.info("%s v%s: retrain tag is %r, not %r: nothing to close", model, version, tags.get(RETRAIN_TAG),
                 RETRAIN_VALUE)
        return None
    summary = "; ".join(
        f"{name} v{r.get('version')} {'promoted' if r.get('promoted') else 'registered (challenger)'}"
        for name, r in sorted((outcome or {}).items()) if isinstance(r, dict) and r.get("version"))
    for key, value in {"retrain.done_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                       "retrain.train_run": run_id, "retrain.outcome": (summary or "no version registered")[:5000],
                       RETRAIN_TAG: RETRAIN_DONE}.items():
        client.set_model_version_tag(model, version, key, value)
    log.info("%s v%s: retraining request closed by train_models run %s (%s)", model, version, run_id, summary)
    return f"{model} v{version}"
