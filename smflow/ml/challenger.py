"""Challenger against champion: score both versions of a registry model with the same code on the
same held-out data, log the comparison, and move ``champion`` only when the challenger wins by the
model's gate (``config/model_gates.json``: metric, direction, margin, held-out period).

Every newly registered version holds the ``challenger`` alias (:func:`smflow.ml.registry.mark_challenger`);
MLflow's ``model_version.created`` webhook starts the ``evaluate_challenger`` DAG
(:mod:`smflow.operators.webhooks`), which calls :func:`evaluate`. The outcome is recorded in the
alias history (:mod:`smflow.ml.lifecycle`) either way: a promotion (``champion.promoted`` tag and an
S3 record) or a refusal (``champion.refused`` tag on the challenger and an S3 record, with the
reason). Nothing is deleted: the loser keeps its version, its training run and this evaluation run
(experiment ``challenger_evaluations``: ``comparison.csv``, ``comparison.md``, ``comparison.png``).

Evaluators (one per model family; each scores every version it is given on one data set):

- ``tc_merging``: the training gate's evaluation (:func:`smflow.ml.train.train_tc_merging`): each
  version's TC merge of the gridded parents against C3S SM COMBINED on the held-out period; metric
  median over cells of Pearson R (ubRMSE too).
- ``soil_moisture_merging``: the candidates' held-out-period evaluation
  (:func:`smflow.ml.train_merging.score_on_period`) against the in-situ stations; median over
  stations of ubRMSE. Needs ``../shared`` (the stations).
- ``sm2rain``: each version's rainfall from the same merged soil moisture (the merging champion's)
  at the rain-gauge cells, against the gauges' daily sums on the held-out period; median over gauges
  of Pearson R (the training gate's metric). Needs ``../shared`` (the gauges).
- ``smap_reconstruction``: each version's seamless SMAP (SMAP where retrieved, else the version's
  ANN value) against the ISMN stations on the configured period, on the station-days common to
  both; median over stations of ubRMSE (:func:`score_smap_reconstruction`: why the stations and not
  withheld SMAP). Needs ``../shared`` (the stations).
- ``smflow.downscaling.challenger:score_upscale_recover`` (``downscaling_nn``,
  ``downscaling_lstm_kriging``): upscale-recover on the CGLS 1 km days neither version was trained
  on; pooled ubRMSE [percent of saturation]. Lives in the downscaling layer, which ``smflow.ml`` may
  not import: named by its dotted path and imported at first use (:func:`resolve_evaluator`).

A model without an evaluator (``"evaluator": null``) is never promoted by this path: its
challenger is refused with that reason.

Deliveries MLflow could not make (receiver or Airflow down) are caught up by the hourly
scheduled run of ``evaluate_challenger``, which evaluates every challenger without a decision
(:func:`sweep`).

Command line::

    python -m smflow.ml.challenger MODEL [--version N]
    python -m smflow.ml.challenger sweep
"""

from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from smflow.config import Settings
from smflow.ml.gates import GATES, Gate, load_gate

log = logging.getLogger(__name__)

#: MLflow experiment of the comparison runs.
EXPERIMENT = "challenger_evaluations"


@dataclass(frozen=True)
class VersionScores:
    """Scores of one version on the evaluator's data.

    Attributes
    ----------
    metrics : dict of str to float
        Summary metrics (the gate's metric among them).
    per_unit : numpy.ndarray, shape (units,)
        The gate metric per scoring unit (cell, station, gauge), in the same unit order for every
        version of one evaluation (for the plot).
    unit : str
        What a unit is ("cell", "station", "gauge").
    data : str
        What was scored, for the verdict, when it is not the gate's held-out period (e.g. the
        held-out CGLS days); empty: the period.
    """

    metrics: dict[str, float]
    per_unit: np.ndarray
    unit: str
    data: str = ""


class EvaluationRefused(Exception):
    """The evaluator cannot score on this machine or these versions; the message is the reason."""


@dataclass(frozen=True)
class Evaluation:
    """Outcome of one challenger evaluation (small: goes through XCom as :meth:`to_dict`)."""

    model: str
    challenger: str
    champion: str | None
    promoted: bool
    reason: str
    evaluation_run: str | None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "challenger": self.challenger, "champion": self.champion,
                "promoted": self.promoted, "reason": self.reason, "evaluation_run": self.evaluation_run,
                "metrics": self.metrics}


# ---------------------------------------------------------------------------------------------
# Evaluators: one data set, every version scored by the same code
# ---------------------------------------------------------------------------------------------


def _median(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=float)
    return float(np.nanmedian(x)) if np.isfinite(x).any() else float("nan")


def _domain_of(params) -> str:
    return str(params.metadata.get("domain", "big_island"))


def score_tc_merging(refs: dict[str, Any], gate: Gate) -> dict[str, VersionScores]:
    """Each version's TC merge of the gridded parents against C3S on ``gate.evaluate``, per cell:
    Pearson R and ubRMSE [m3 m-3] (the evaluation of :func:`smflow.ml.train.train_tc_merging`)."""
    from smflow.domain import load_domain
    from smflow.ingest import gridded_series
    from smflow.ml.registry import load_parameters
    from smflow.ml.train import _cells, _parents_series, merge_series
    from smflow.science.metrics import pearson_r, ubrmse

    params = {role: load_parameters(ref) for role, ref in refs.items()}
    domains = {_domain_of(p) for p in params.values()}
    if len(domains) != 1:
        raise EvaluationRefused(f"the versions are on different domains ({sorted(domains)}): not comparable")
    grid = load_domain(domains.pop())
    parents = _parents_series(*gate.evaluate, grid)
    reference = _cells(gridded_series("c3s", *gate.evaluate, grid).values[None])[0]
    land = grid.land_mask.ravel()
    out = {}
    for role, p in params.items():
        merged, _ = merge_series(p, parents)
        merged = _cells(merged[None])[0]
        r, ub = pearson_r(merged, reference)[land], ubrmse(merged, reference)[land]
        out[role] = VersionScores({"median_r_vs_c3s": _median(r), "median_ubrmse_vs_c3s": _median(ub),
                                   "cells_scored": float(np.isfinite(r).sum())}, r, "cell")
    return out


def score_sm2rain(refs: dict[str, Any], gate: Gate) -> dict[str, VersionScores]:
    """Each version's rainfall at the gauge cells from the same merged soil moisture (the merging
    champion's; ``gate.options["soil_moisture_from"]`` names another merging model), against the gauges' daily sums on ``gate.evaluate``: median over gauges of Pearson
    R, RMSE [mm/day] and KGE (the validation of :func:`smflow.ml.train.calibrate_sm2rain_at_gauges`).
    The filters get 90 days of spin-up before the period."""
    import pandas as pd

    from smflow.domain import load_domain
    from smflow.ingest import gridded_series
    from smflow.insitu import load_gauges
    from smflow.ml.apply import champion_merged_series
    from smflow.ml.models import SM2RAIN_FILTER_FIELDS
    from smflow.ml.registry import configure, load_parameters
    from smflow.science.metrics import kge, pearson_r, rmse
    from smflow.science.sm2rain import SM2RAINParameters, apply_sm2rain, frozen_soil_mask, relative_saturation

    settings = configure()
    shared = settings.shared_data_dir
    if shared is None or not (shared / "ismn_hawaii").is_dir():
        raise EvaluationRefused("no rain gauges on this machine (../shared/data/real/ismn_hawaii): SM2RAIN "
                                "versions cannot be scored against them; evaluate where the gauges are")
    params = {role: load_parameters(ref) for role, ref in refs.items()}
    grid = load_domain(_domain_of(next(iter(params.values()))))
    start, end = gate.evaluate[0] - timedelta(days=90), gate.evaluate[1]
    merged, merging_ref = champion_merged_series(start, end, grid, gate.options.get("soil_moisture_from"))
    times = pd.date_range(start, end, freq="D")
    temperature = gridded_series("gldas", start, end, grid, variable="soil_temperature").values
    gauges = load_gauges(shared / "ismn_hawaii", gate.evaluate[0], gate.evaluate[1])
    rain = gauges["precipitation_amount"].reindex(time=times).values  # (gauge, time)
    iy, ix = grid.cell_index(gauges["lat"].values, gauges["lon"].values)
    frozen = frozen_soil_mask(soil_temperature=temperature[:, iy, ix].T)
    scored = np.asarray((times >= pd.Timestamp(gate.evaluate[0])) & (times <= pd.Timestamp(gate.evaluate[1])))
    obs = np.where(scored[None], rain, np.nan)
    out = {}
    names = ("Z", "a", "b", *SM2RAIN_FILTER_FIELDS)
    for role, p in params.items():
        a = p.arrays
        s = relative_saturation(merged[:, iy, ix].T, a["saturation_lower"][iy, ix][:, None],
                                a["saturation_upper"][iy, ix][:, None])
        cell_params = SM2RAINParameters.from_dict({k: np.asarray(v)[iy, ix] for k, v in a.items() if k in names})
        sim = np.where(scored[None], apply_sm2rain(s, cell_params, frozen=frozen), np.nan)
        r = pearson_r(sim, obs)
        out[role] = VersionScores({"median_r_vs_gauges": _median(r), "median_rmse_vs_gauges_mm": _median(rmse(sim, obs)),
                                   "median_kge_vs_gauges": _median(kge(sim, obs)), "gauges_scored": float(np.isfinite(r).sum())},
                                  r, f"gauge (soil moisture of {merging_ref.label()})")
    return out


def score_soil_moisture_merging(refs: dict[str, Any], gate: Gate) -> dict[str, VersionScores]:
    """Each version (TC or an ML ensemble) on the same held-out-period station samples, by
    :func:`smflow.ml.train_merging.score_on_period` (what the candidates' gate uses): median over
    stations of ubRMSE [m3 m-3] against the in-situ soil moisture. A TC version is applied with its
    own parameters."""
    import dataclasses

    from smflow.domain import load_domain
    from smflow.ml.registry import configure, load_merging
    from smflow.ml.train import merge_series
    from smflow.ml.train_merging import SEED, build_inputs, score_on_period

    settings = configure()
    shared = settings.shared_data_dir
    if shared is None or not (shared / "ismn_hawaii").is_dir():
        raise EvaluationRefused("no in-situ stations on this machine (../shared/data/real/ismn_hawaii): merging "
                                "versions cannot be scored against them; evaluate where the stations are")
    grid = load_domain("big_island")
    # The nominal training year before the period only fits the inputs' own standardisation (unused
    # by the versions, which carry theirs) and separates the period fold; nothing is fitted on it.
    train = (gate.evaluate[0] - timedelta(days=365), gate.evaluate[0] - timedelta(days=1))
    inputs = build_inputs(train, gate.evaluate[1], grid, shared / "ismn_hawaii", None)
    stacked = np.stack([inputs.parents[p].values.reshape(len(inputs.parents["time"]), *grid.shape)
                        for p in inputs.spec.parents])
    out = {}
    for role, ref in refs.items():
        model = load_merging(ref)
        version_inputs = inputs
        if model.method == "tc":
            merged, _ = merge_series(model.parameters, stacked)
            version_inputs = dataclasses.replace(inputs, tc_merged=merged.reshape(merged.shape[0], -1))
        score = score_on_period(model, version_inputs, train, gate.evaluate, SEED, full=True)
        if score is None:
            raise EvaluationRefused(f"{ref.name} v{ref.version} ({model.method}) cannot be re-run on these inputs "
                                    "and logged no score to compare")
        per_station = np.array([v["ubrmse"] for _, v in sorted(score.per_station.items())])
        out[role] = VersionScores({"median_ubrmse_vs_insitu": score.ubrmse.median, "median_r_vs_insitu": score.r.median,
                                   "median_bias_vs_insitu": score.bias.median, "median_kge_vs_insitu": score.kge.median,
                                   "stations_scored": float(score.n_stations)}, per_station, f"station ({model.method})")
    return out


def reconstruction_insitu_scores(params: dict[str, Any], period: tuple[date, date], ismn_dir: Path,
                                 grid) -> dict[str, VersionScores]:
    """Each reconstruction's seamless SMAP against the ISMN stations on ``period``, on common station-days.

    The seamless series is what the daily product publishes (:func:`smflow.ml.reconstruction.reconstruct_day`):
    SMAP L3 where it was retrieved, else the version's ANN value (Wang & Xu 2021, Sect. 3.1). Every
    version is scored on the same station-days: those with an in-situ daily mean and a value in
    every version's series (a version that leaves more cell-days empty is not rewarded for it; its
    coverage is reported).

    Parameters
    ----------
    params : dict of str to GridParameters
        ``role -> `` the version's parameters (:meth:`smflow.ml.reconstruction.Reconstruction.to_grid`).
    period : tuple of date
        First and last day (inclusive).
    ismn_dir : Path
        The ISMN folder (``../shared/data/real/ismn_hawaii``, internal).
    grid : DomainGrid
        The versions' domain.

    Returns
    -------
    dict of str to VersionScores
        Per role: ``median_ubrmse_vs_insitu`` [m3 m-3] (the gate's), ``median_r_vs_insitu`` [1],
        ``median_ubrmse_reconstructed_days`` [m3 m-3] (only the days SMAP was missing, i.e. the
        values the version itself made), ``coverage`` [1] (fraction of the stations' days with a
        value in the version's series), ``stations_scored``, ``station_days``; ``per_unit``:
        ubRMSE per station, in station order.

    Raises
    ------
    EvaluationRefused
        A version's grid shape differs from ``grid``'s, or it needs a predictor the catalogue has no
        series of, or no station-day is common to every version.
    """
    import pandas as pd

    from smflow.ingest import gridded_series
    from smflow.insitu import load_insitu_soil_moisture
    from smflow.ml.reconstruction import PREDICTORS, SEASONAL, TARGET, Reconstruction, gridded_predictors
    from smflow.science.metrics import pearson_r, ubrmse

    recs = {}
    for role, p in params.items():
        if tuple(p.arrays["status"].shape) != tuple(grid.shape):
            raise EvaluationRefused(f"the {role}'s grid {tuple(p.arrays['status'].shape)} is not the {grid.name} grid "
                                    f"{tuple(grid.shape)}: not comparable")
        recs[role] = Reconstruction.from_grid(p)
        unknown = set(recs[role].predictors) - set(PREDICTORS) - set(SEASONAL)
        if unknown:
            raise EvaluationRefused(f"the {role} needs predictors {sorted(unknown)} this catalogue has no series of")
    target = _cells_of(gridded_series(TARGET, *period, grid).values)  # (cells, time) [m3 m-3]
    insitu = load_insitu_soil_moisture(ismn_dir, *period)
    times = pd.date_range(*period, freq="D").values
    obs = insitu["soil_moisture"].transpose("station", "time").reindex(time=times).values  # (station, time)
    iy, ix = grid.cell_index(insitu["lat"].values, insitu["lon"].values)
    cells = np.asarray(iy) * grid.shape[1] + np.asarray(ix)
    smap = target[cells]
    series = {}
    for role, rec in recs.items():
        fields = tuple(p for p in rec.predictors if p not in SEASONAL)
        x, _ = gridded_predictors(*period, grid, fields)
        value = rec.take(cells).predict(x[cells])[0]  # only the station cells: (station, time)
        series[role] = np.where(np.isfinite(smap), smap, value)
    common = np.isfinite(obs) & np.logical_and.reduce([np.isfinite(s) for s in series.values()])
    if not common.any():
        raise EvaluationRefused(f"no station-day of {period[0]}..{period[1]} has an in-situ value and a value of "
                                "every version: nothing to compare")
    reconstructed = common & ~np.isfinite(smap)
    names = insitu["station"].values.astype(str)
    order = np.argsort(names)
    out = {}
    for role, s in series.items():
        est, ref = np.where(common, s, np.nan), np.where(common, obs, np.nan)
        ub, r = ubrmse(est, ref, min_samples=10), pearson_r(est, ref, min_samples=10)
        ub_rec = ubrmse(np.where(reconstructed, s, np.nan), np.where(reconstructed, obs, np.nan), min_samples=10)
        coverage = float((np.isfinite(s) & np.isfinite(obs)).sum() / max(int(np.isfinite(obs).sum()), 1))
        out[role] = VersionScores({"median_ubrmse_vs_insitu": _median(ub), "median_r_vs_insitu": _median(r),
                                   "median_ubrmse_reconstructed_days": _median(ub_rec), "coverage": coverage,
                                   "stations_scored": float(np.isfinite(ub).sum()),
                                   "station_days": float(common.sum())}, ub[order], "station (seamless SMAP)",
                                  f"the {int(np.isfinite(ub).sum())} ISMN stations, {period[0]}..{period[1]}")
    return out


def _cells_of(a: np.ndarray) -> np.ndarray:
    """(time, lat, lon) -> (cells, time)."""
    a = np.asarray(a, dtype=float)
    return a.reshape(a.shape[0], -1).T


def score_smap_reconstruction(refs: dict[str, Any], gate: Gate) -> dict[str, VersionScores]:
    """Each ``smap_reconstruction`` version's seamless SMAP against the ISMN stations on ``gate.evaluate``:
    median over stations of ubRMSE [m3 m-3] (:func:`reconstruction_insitu_scores`).

    Why the stations and not withheld SMAP: a reconstruction (Wang & Xu 2021, Sect. 3.1-3.2) is
    fitted on the training blocks of its whole period (:func:`smflow.ml.reconstruction.train_reconstruction`),
    so the SMAP days of the period are not clean for a version fitted on another block split or
    period, and only the test blocks both versions held out would be (none when their periods
    differ). The in-situ soil moisture is never a training input (the gauges' *rain* only drops
    heavy-rain days from the fit), so the stations are held out from every version, whatever its
    period: this evaluator checks its own held-out data (``held_out = "insitu"``) and the
    training-period check of :func:`evaluate` does not apply. Needs ``../shared`` (the stations).

    Raises
    ------
    EvaluationRefused
        No stations on this machine, the versions are on different domains or grids, or no
        station-day can be scored.
    """
    from smflow.domain import load_domain
    from smflow.ml.registry import configure, load_parameters

    settings = configure()
    shared = settings.shared_data_dir
    if shared is None or not (shared / "ismn_hawaii").is_dir():
        raise EvaluationRefused("no in-situ stations on this machine (../shared/data/real/ismn_hawaii): "
                                "reconstruction versions cannot be scored against them; evaluate where the stations are")
    if gate.evaluate is None:
        raise EvaluationRefused(f"no 'evaluate' period for {gate.model} in config/model_gates.json: set the period "
                                "the stations are scored on")
    params = {role: load_parameters(ref) for role, ref in refs.items()}
    domains = {_domain_of(p) for p in params.values()}
    if len(domains) != 1:
        raise EvaluationRefused(f"the versions are on different domains ({sorted(domains)}): not comparable")
    return reconstruction_insitu_scores(params, gate.evaluate, shared / "ismn_hawaii", load_domain(domains.pop()))


score_smap_reconstruction.held_out = "insitu"  # type: ignore[attr-defined]

#: Scoring function of every evaluator named in ``config/model_gates.json``: ``(refs, gate) -> scores``.
#: A gate may also name ``"package.module:function"`` (:func:`resolve_evaluator`): how a layer above
#: ``smflow.ml`` (the downscaling evaluator, :mod:`smflow.downscaling.challenger`) provides one
#: without ``smflow.ml`` importing it. A function with a ``held_out`` attribute other than
#: ``"period"`` checks what its versions were trained on itself (no training-period check).
Evaluator = Callable[[dict[str, Any], Gate], dict[str, VersionScores]]
EVALUATORS: dict[str, Evaluator] = {
    "tc_merging": score_tc_merging,
    "sm2rain": score_sm2rain,
    "soil_moisture_merging": score_soil_moisture_merging,
    "smap_reconstruction": score_smap_reconstruction,
}


def resolve_evaluator(name: str) -> Evaluator:
    """The scoring function of evaluator ``name``: a key of :data:`EVALUATORS`, or a dotted
    ``"smflow.<module>:<function>"`` path imported at first use (then kept in :data:`EVALUATORS`).

    Raises
    ------
    KeyError
        Neither: name a key of ``EVALUATORS`` or an importable ``smflow.<module>:<function>`` in
        config/model_gates.json.
    """
    import importlib

    if name in EVALUATORS:
        return EVALUATORS[name]
    module, _, attr = name.partition(":")
    if not (attr and module.startswith("smflow.")):
        raise KeyError(f"unknown evaluator {name!r}: use one of {sorted(EVALUATORS)} or 'smflow.<module>:<function>'")
    try:
        score = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise KeyError(f"evaluator {name!r} cannot be imported ({exc}): fix the path in config/model_gates.json") from exc
    EVALUATORS[name] = score
    return score


# ---------------------------------------------------------------------------------------------
# The comparison: table, plot, decision, history
# ---------------------------------------------------------------------------------------------


def _evaluator_or_none(name: str) -> Evaluator | None:
    try:
        return resolve_evaluator(name)
    except KeyError as exc:
        log.warning("%s", exc)
        return None


def _training_period(run_id: str) -> tuple[date, date] | None:
    from mlflow import MlflowClient

    params = MlflowClient().get_run(run_id).data.params
    try:
        return date.fromisoformat(params["train_start"]), date.fromisoformat(params["train_end"])
    except (KeyError, ValueError):
        return None


def comparison_table(gate: Gate, refs: dict[str, Any], scores: dict[str, VersionScores]) -> tuple[str, str]:
    """(CSV, markdown) of every metric of every version, the gate's metric first."""
    names = [gate.metric] + sorted({k for s in scores.values() for k in s.metrics} - {gate.metric})
    header = ["role", "version", "run_id", *names]
    rows = [[role, refs[role].version, refs[role].run_id, *(f"{scores[role].metrics.get(n, float('nan')):.6g}" for n in names)]
            for role in ("champion", "challenger") if role in scores]
    csv = "\n".join(",".join(map(str, r)) for r in [header, *rows]) + "\n"
    md = "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                   + ["| " + " | ".join(map(str, r)) + " |" for r in rows]) + "\n"
    return csv, md


def comparison_plot(gate: Gate, refs: dict[str, Any], scores: dict[str, VersionScores]) -> bytes:
    """PNG: the gate metric of both versions (with the margin the challenger must clear) and the
    per-unit metric of the challenger against the champion's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    champ, chall = scores["champion"], scores["challenger"]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4.2))
    values = [champ.metrics[gate.metric], chall.metrics[gate.metric]]
    ax0.bar([f"champion v{refs['champion'].version}", f"challenger v{refs['challenger'].version}"], values,
            color=["#4c72b0", "#dd8452"])
    needed = values[0] + (gate.margin if gate.direction == "higher" else -gate.margin)
    ax0.axhline(needed, color="k", ls="--", lw=1, label=f"to win: {'>' if gate.direction == 'higher' else '<'} {needed:.4g}")
    ax0.set_ylabel(f"{gate.metric} [{gate.units}]")
    ax0.set_title(f"{gate.model}: {gate.direction} is better, margin {gate.margin:g}")
    ax0.legend(loc="lower right")
    x, y = np.asarray(champ.per_unit, float), np.asarray(chall.per_unit, float)
    if x.shape == y.shape and np.isfinite(x + y).any():
        ok = np.isfinite(x + y)
        ax1.scatter(x[ok], y[ok], s=12, alpha=0.7)
        lo, hi = float(np.min([x[ok].min(), y[ok].min()])), float(np.max([x[ok].max(), y[ok].max()]))
        ax1.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    ax1.set_xlabel(f"champion v{refs['champion'].version}, per {champ.unit.split(' ')[0]}")
    ax1.set_ylabel(f"challenger v{refs['challenger'].version}")
    ax1.set_title(f"{gate.metric.split('_vs_')[0].removeprefix('median_')} per {champ.unit.split(' ')[0]}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _verdict(gate: Gate, refs: dict[str, Any], scores: dict[str, VersionScores]) -> tuple[bool, str]:
    c, p = scores["challenger"].metrics[gate.metric], scores["champion"].metrics[gate.metric]
    won = gate.wins(c, p)
    period = scores["challenger"].data or (f"{gate.evaluate[0]}..{gate.evaluate[1]}" if gate.evaluate
                                           else "the evaluator's data")
    text = (f"challenger v{refs['challenger'].version} {gate.metric} {c:.4f} vs champion v{refs['champion'].version} "
            f"{p:.4f} on {period} ({gate.direction} is better, margin {gate.margin:g}): "
            + (f"wins by {gate.improvement(c, p):.4f}: promoted" if won else
               ("not scored (NaN): not promoted" if not (math.isfinite(c) and math.isfinite(p)) else
                f"improvement {gate.improvement(c, p):+.4f} <= margin: not promoted")))
    return won, text


def _log_run(gate: Gate, refs: dict[str, Any], scores: dict[str, VersionScores] | None, decision: str,
             reason: str) -> str:
    """An MLflow run of experiment :data:`EXPERIMENT` holding the comparison; returns its id."""
    import mlflow

    mlflow.set_experiment(EXPERIMENT)
    challenger = refs["challenger"]
    champion = refs.get("champion")
    name = f"{gate.model} v{challenger.version} vs " + (f"v{champion.version}" if champion else "no champion")
    with mlflow.start_run(run_name=name) as run:
        mlflow.log_params({"model": gate.model, "challenger_version": challenger.version,
                           "challenger_run": challenger.run_id,
                           "champion_version": champion.version if champion else "none",
                           "champion_run": champion.run_id if champion else "none",
                           "evaluator": gate.evaluator or "none", "metric": gate.metric, "direction": gate.direction,
                           "margin": gate.margin,
                           "evaluate_start": str(gate.evaluate[0]) if gate.evaluate else "none",
                           "evaluate_end": str(gate.evaluate[1]) if gate.evaluate else "none"})
        mlflow.set_tags({"decision": decision, "reason": reason[:5000], "model": gate.model,
                         "challenger_version": challenger.version})
        if scores:
            mlflow.log_metrics({f"{role}_{k}": v for role, s in scores.items() for k, v in s.metrics.items()
                                if math.isfinite(v)})
            csv, md = comparison_table(gate, refs, scores)
            mlflow.log_text(csv, "comparison.csv")
            mlflow.log_text(f"# {name}\n\n{md}\n{reason}\n", "comparison.md")
            if "champion" in scores:
                import tempfile

                with tempfile.TemporaryDirectory() as tmp:
                    png = Path(tmp) / "comparison.png"
                    png.write_bytes(comparison_plot(gate, refs, scores))
                    mlflow.log_artifact(str(png))
        else:
            mlflow.log_text(f"# {name}\n\nnot scored: {reason}\n", "comparison.md")
        return run.info.run_id


def evaluate(model: str, version: str | int | None = None, *, gate: Gate | None = None,
             settings: Settings | None = None) -> Evaluation:
    """Compare a challenger of ``model`` with its champion and promote it only if it wins.

    Parameters
    ----------
    model : str
        Registered model name.
    version : str or int, optional
        The challenger; default: the version holding the ``challenger`` alias.
    gate : Gate, optional
        Default: :func:`load_gate` of ``model``.

    Returns
    -------
    Evaluation
        ``promoted`` and the ``reason`` (also in the alias history and the MLflow run
        ``evaluation_run``). When the challenger already is the champion (e.g. promoted by its
        training gate) nothing is evaluated or recorded.

    Raises
    ------
    LookupError
        No such version, or no version holds ``challenger``.
    """
    from mlflow import MlflowClient

    from smflow.ml.alias_log import record_refusal
    from smflow.ml.registry import CHALLENGER, CHAMPION, ModelRef, champion_ref, configure, promote

    configure(settings)
    no_gate = None
    if gate is None:
        try:
            gate = load_gate(model)
        except KeyError as exc:  # a model nobody configured is never promoted by this path
            no_gate = str(exc).strip("'\"")
            gate = Gate(model, None, "none", "higher", 0.0, None)
    if version in (None, ""):
        challenger = champion_ref(model, CHALLENGER)
    else:
        mv = MlflowClient().get_model_version(model, str(version))
        challenger = ModelRef(model, str(mv.version), mv.run_id)
    try:
        champion = champion_ref(model, CHAMPION)
    except LookupError:
        champion = None
    if champion is not None and champion.version == challenger.version:
        reason = f"v{challenger.version} already is the champion: nothing to compare"
        log.info("%s: %s", model, reason)
        return Evaluation(model, challenger.version, champion.version, False, reason, None)
    refs = {"challenger": challenger, **({"champion": champion} if champion else {})}

    scores = None
    won = False
    if champion is None:
        reason = (f"no champion of {model} to compare with: not promoted (the first champion comes from the "
                  f"training gate, train_models, or an operator's promotion)")
    elif no_gate:
        reason = f"{no_gate}: challenger v{challenger.version} not promoted"
    elif gate.evaluator is None:
        reason = (f"no evaluator for {model} yet (config/model_gates.json): challenger v{challenger.version} is not "
                  f"promoted automatically; an operator may promote it after review")
    elif (score := _evaluator_or_none(gate.evaluator)) is None:
        reason = f"unknown evaluator {gate.evaluator!r} for {model} in config/model_gates.json: not promoted"
    else:
        by_period = gate.evaluate is not None and getattr(score, "held_out", "period") == "period"
        seen = [f"v{ref.version} trained on {p[0]}..{p[1]}" for ref in refs.values() if by_period
                and (p := _training_period(ref.run_id)) and not (p[1] < gate.evaluate[0] or gate.evaluate[1] < p[0])]
        if seen:
            reason = (f"held-out period {gate.evaluate[0]}..{gate.evaluate[1]} is not held out for "
                      f"{', '.join(seen)}: not comparable, not promoted (change 'evaluate' in config/model_gates.json)")
        else:
            try:
                scores = score(refs, gate)
                won, reason = _verdict(gate, refs, scores)
            except EvaluationRefused as exc:
                reason = f"{exc}: not promoted"
    decision = "promoted" if won else "refused"
    run_id = _log_run(gate, refs, scores, decision, reason)
    if won:
        promote(challenger, CHAMPION, reason=reason, evaluation_run=run_id)
    else:
        record_refusal(model, CHAMPION, champion.version if champion else None, challenger.version, reason=reason,
                       evaluation_run=run_id, settings=settings)
    # the challenger's model card says how its evaluation ended (the UI shows it beside the training gate)
    from smflow.ml.cards import append_outcome

    append_outcome(model, challenger.version, f"**Challenger evaluation** (run {run_id}): {decision}: {reason}")
    log.info("%s v%s: %s", model, challenger.version, reason)
    metrics = {role: s.metrics for role, s in scores.items()} if scores else {}
    return Evaluation(model, challenger.version, champion.version if champion else None, won, reason, run_id, metrics)


def undecided_challengers(models: list[str] | None = None, *, path: Path = GATES,
                          settings: Settings | None = None) -> list[tuple[str, str]]:
    """The challengers no evaluation has decided yet: ``(model, version)`` pairs.

    A delivery MLflow could not make (the receiver or Airflow down: MLflow retries three times,
    then drops it) leaves a version holding ``challenger`` with neither ``champion.promoted`` nor
    ``champion.refused``; the scheduled ``evaluate_challenger`` run finds it here.

    Parameters
    ----------
    models : list of str, optional
        Default: every model of ``config/model_gates.json`` with an evaluator.
    """
    from mlflow import MlflowClient

    from smflow.ml.registry import CHALLENGER, CHAMPION, champion_ref, configure

    configure(settings)
    if models is None:
        entries = json.loads(Path(path).read_text())["models"]
        models = [name for name, e in entries.items() if e.get("evaluator")]
    client = MlflowClient()
    found = []
    for model in models:
        try:
            challenger = champion_ref(model, CHALLENGER)
        except LookupError:
            continue  # no such model, or nothing registered since the alias was set
        try:
            if champion_ref(model, CHAMPION).version == challenger.version:
                continue
        except LookupError:
            pass
        tags = client.get_model_version(model, challenger.version).tags
        if not {f"{CHAMPION}.promoted", f"{CHAMPION}.refused"} & set(tags):
            found.append((model, challenger.version))
    return found


def sweep(models: list[str] | None = None, *, path: Path = GATES, settings: Settings | None = None) -> list[Evaluation]:
    """Evaluate every undecided challenger (:func:`undecided_challengers`), in the gates file's order.

    Returns
    -------
    list of Evaluation
        One per challenger evaluated (empty when every challenger has its decision).
    """
    pending = undecided_challengers(models, path=path, settings=settings)
    if pending:
        log.info("undecided challengers: %s", ", ".join(f"{m} v{v}" for m, v in pending))
    return [evaluate(model, version, settings=settings) for model, version in pending]


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m smflow.ml.challenger", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="registered model name, or 'sweep': every challenger without a decision")
    parser.add_argument("--version", help="the challenger (default: the version holding the challenger alias)")
    args = parser.parse_args(argv)
    results = sweep() if args.model == "sweep" else [evaluate(args.model, args.version)]
    print(json.dumps([r.to_dict() for r in results], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
