"""Training, honest evaluation and registration of the soil-moisture merging candidates.

Every candidate — each parent, TC least squares (Ming et al. 2022), RF, LSTM, CNN and their BMA
(Zhang et al. 2022, Eq. 17) — is scored on the same folds with the same code
(:mod:`smflow.ml.evaluation`): leave-one-station-out (spatial) and a held-out period (temporal).
The registered versions of ``soil_moisture_merging`` are those fitted on the training period only,
so the held-out period (and every product day in it) is out of sample for them. The ``champion``
alias goes to the candidate with the best held-out-period median ubRMSE, if it also beats the best
parent on both fold sets and the current champion on the same test samples; otherwise it stays.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from smflow.config import REPO_ROOT, Settings
from smflow.ml.features import (
    FeatureSpec, StationSamples, feature_cube, fingerprint, load_static_covariates, sequence_windows, station_samples,
)
from smflow.ml.apply import gridded_parents
from smflow.ml.models import PARENTS
from smflow.ml.registry import MERGING_MODEL, LoadedMerging, load_merging  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

#: Candidates that can become the merging champion (parents are baselines only).
CANDIDATES: tuple[str, ...] = ("tc", "rf", "lstm", "cnn", "bma")
WINDOW_DAYS = 30
STATIC = ("elevation",)
SEED = 20170101


@dataclass
class MergingInputs:
    """Parents, features and station samples of one period (cells flattened: cell = lat * n_lon + lon)."""

    parents: xr.Dataset          # per parent (time, cell) [m3 m-3]
    static: xr.Dataset | None    # (cell,)
    spec: FeatureSpec
    cube: xr.DataArray           # (time, cell, feature)
    samples: StationSamples
    tc_merged: np.ndarray | None  # (time, cell) TC least-squares merged [m3 m-3]; None without TC


def _flat(da: xr.DataArray) -> xr.DataArray:
    return da.stack(cell=("lat", "lon")).drop_vars(["cell", "lat", "lon"], errors="ignore").transpose("time", "cell")


def static_flat(grid) -> xr.Dataset | None:
    try:
        static = load_static_covariates(grid)
    except FileNotFoundError:
        return None
    return xr.Dataset({k: (("cell",), static[k].values.ravel()) for k in STATIC if k in static})


def build_inputs(train: tuple[date, date], end: date, grid, shared_dir: Path, tc_params, *,
                 parents: tuple[str, ...] = PARENTS) -> MergingInputs:
    """Features of ``train[0] - (window - 1) .. end`` and the in-situ samples (ISMN, flag G, daily means).

    Parameters
    ----------
    train : tuple of date
        Training period: the feature standardisation is fitted on it (gridded parents only; the
        target standardisation of each fold is fitted on its own training samples,
        :func:`smflow.ml.merging.fit_ensemble`).
    end : date
        Last day of features and samples.
    grid : DomainGrid
    shared_dir : Path
        ``ismn_hawaii`` folder of the stations (internal data).
    tc_params : GridParameters or None
        TC merging model of the three :data:`PARENTS` for the ``tc`` baseline; None for another
        parent set (no TC row).
    parents : tuple of str
        Parent products (catalogue names); the default is the daily product's triplet.

    Raises
    ------
    FileNotFoundError
        No ISMN soil-moisture file below ``shared_dir``.
    """
    from smflow.insitu import load_insitu_soil_moisture
    from smflow.ml.train import merge_series

    start = train[0] - timedelta(days=WINDOW_DAYS - 1)
    gridded = gridded_parents(start, end, grid, parents)
    flat = xr.Dataset({p: _flat(gridded[p]) for p in parents})
    static = static_flat(grid)
    insitu = load_insitu_soil_moisture(shared_dir, start, end)
    iy, ix = grid.cell_index(insitu["lat"].values, insitu["lon"].values)
    cells = np.asarray(iy) * grid.shape[1] + np.asarray(ix)
    in_train = (flat["time"] >= np.datetime64(train[0])) & (flat["time"] <= np.datetime64(train[1]))
    spec = FeatureSpec(parents, tuple(k for k in STATIC if static is not None and k in static), WINDOW_DAYS)
    spec = spec.fit(flat.sel(time=in_train), static, insitu["soil_moisture"].values)
    cube = feature_cube(flat, static, spec)
    samples = station_samples(cube, insitu, cells, WINDOW_DAYS)
    tc_merged = None
    if tc_params is not None:
        merged, _ = merge_series(tc_params, np.stack([gridded[p].values for p in PARENTS]))
        tc_merged = merged.reshape(merged.shape[0], -1)
    return MergingInputs(flat, static, spec, cube, samples, tc_merged)


def baseline_predictions(inputs: MergingInputs) -> dict[str, np.ndarray]:
    """Each parent and the TC least-squares merge at the samples' cells and days (no training)."""
    times = inputs.parents["time"].values
    t_idx = np.searchsorted(times, inputs.samples.time)
    out = {p: inputs.parents[p].values[t_idx, inputs.samples.cell] for p in inputs.spec.parents}
    if inputs.tc_merged is not None:
        out["tc"] = inputs.tc_merged[t_idx, inputs.samples.cell]
    return out


def evaluate_candidates(inputs: MergingInputs, train: tuple[date, date], evaluate: tuple[date, date], *,
                        loso: bool = True, hyper: dict | None = None, seed: int = SEED):
    """Fit and score every candidate on the period fold and (optionally) the LOSO folds.

    Returns
    -------
    tuple
        (scores: list of CandidateScores, period ensemble: MergingEnsemble fitted on ``train``,
        predictions: dict fold set -> method -> (n,) array, test masks: dict fold set -> (n,) bool)
    """
    from smflow.ml.evaluation import score_candidates
    from smflow.ml.merging import fit_ensemble
    from smflow.ml.splits import loso_folds, period_fold

    s = inputs.samples
    base = baseline_predictions(inputs)
    fold_sets = {"period": [period_fold(s.time, train, evaluate)]}
    if loso:
        fold_sets["loso"] = list(loso_folds(s.station, s.time))
    scores, predictions, tested = [], {}, {}
    period_ensemble = None
    for label, folds in fold_sets.items():
        pred = {m: np.full(len(s), np.nan) for m in (*PARENTS, *CANDIDATES)}
        test_any = np.zeros(len(s), dtype=bool)
        for fold in folds:
            ens = fit_ensemble(s.subset(fold.fit), s.subset(fold.validation), inputs.spec, seed=seed, hyper=hyper)
            test = s.subset(fold.test)
            mean, _, members = ens.predict(test.windows)
            for k, v in members.items():
                pred[k][fold.test] = v
            pred["bma"][fold.test] = mean
            for m in (*PARENTS, "tc"):
                pred[m][fold.test] = base[m][fold.test]
            test_any |= fold.test
            log.info("fold %s: %d fit, %d validation, %d test samples", fold.name, fold.fit.sum(),
                     fold.validation.sum(), fold.test.sum())
            if label == "period":
                period_ensemble = ens
        sub = {m: v[test_any] for m, v in pred.items()}
        scores += score_candidates(sub, s.target[test_any], s.station[test_any], s.time[test_any], folds=label, seed=seed)
        predictions[label], tested[label] = pred, test_any
    return scores, period_ensemble, predictions, tested


def choose_champion(scores, current: dict[str, float] | None = None) -> tuple[str | None, str]:
    """The candidate to promote, and the gate's verdict in words.

    Gate (issue 9): best median ubRMSE on the held-out period among :data:`CANDIDATES`, lower than
    the best parent's on the held-out period *and* on the LOSO folds (when run), and lower than the
    current champion's on the same test samples (``current``: method -> period ubRMSE).
    """
    by = {(c.method, c.folds): c for c in scores}
    period = {m: by[(m, "period")].ubrmse.median for m in (*PARENTS, *CANDIDATES) if (m, "period") in by}
    best_parent = min(PARENTS, key=lambda p: period.get(p, np.inf))
    ranked = sorted((m for m in CANDIDATES if np.isfinite(period.get(m, np.nan))), key=lambda m: period[m])
    if not ranked:
        return None, "no candidate could be scored: FAILED"
    winner = ranked[0]
    words = [f"{winner} has the best held-out-period median ubRMSE {period[winner]:.4f}"]
    ok = period[winner] < period[best_parent]
    words.append(f"{'<' if ok else '>='} best parent {best_parent} {period[best_parent]:.4f}")
    if any(f == "loso" for _, f in by):
        loso = {m: by[(m, "loso")].ubrmse.median for m in (*PARENTS, winner)}
        best_loso = min(loso[p] for p in PARENTS)
        ok_loso = loso[winner] < best_loso
        words.append(f"LOSO {loso[winner]:.4f} {'<' if ok_loso else '>='} best parent {best_loso:.4f}")
        ok = ok and ok_loso
    if current:
        (cur_method, cur_value), = current.items()
        better = period[winner] < cur_value - 1e-6
        words.append(f"{'<' if better else '>='} current champion ({cur_method}) {cur_value:.4f} on the same samples")
        ok = ok and better
    return (winner if ok else None), "; ".join(words) + (": passed" if ok else ": not promoted")


def _current_champion_score(inputs: MergingInputs, train, evaluate, seed: int) -> tuple[Any, dict[str, float] | None]:
    """Re-score the current champion on this run's held-out-period samples (same code, same samples)."""
    from smflow.ml.registry import champion_ref

    try:
        ref = champion_ref(MERGING_MODEL)
    except LookupError:
        return None, None
    return ref, score_on_period(load_merging(ref), inputs, train, evaluate, seed)


def score_on_period(model: LoadedMerging, inputs: MergingInputs, train, evaluate, seed: int, *,
                    full: bool = False):
    """Median ubRMSE of a merging version on the held-out-period samples of ``inputs``.

    Runs the version with its own feature standardisation and window on the same cells and days
    as the candidates; a version on other inputs is compared by its logged score (None if absent).
    With ``full`` the version's :class:`smflow.ml.evaluation.CandidateScores` is returned instead
    (None for a version that cannot be re-run on these inputs).
    """
    from smflow.ml.evaluation import score_candidates
    from smflow.ml.splits import period_fold

    ref = model.ref
    s = inputs.samples
    fold = period_fold(s.time, train, evaluate)
    if model.method == "tc":
        pred = baseline_predictions(inputs)["tc"][fold.test]  # TC of the same training period
    else:
        spec = model.ensemble.spec
        if set(spec.parents) - set(inputs.parents.data_vars) or (spec.static and inputs.static is None):
            # A champion on other inputs cannot be re-run here: compare with its logged score.
            from mlflow import MlflowClient

            logged = MlflowClient().get_run(ref.run_id).data.metrics.get(f"period_{model.method}_ubrmse")
            return None if logged is None or full else {model.method: float(logged)}
        # The champion's own standardisation and window, on the same test samples (cells and days).
        cube = feature_cube(inputs.parents, inputs.static, spec).values
        windows = sequence_windows(cube, spec.window)
        t_idx = np.searchsorted(inputs.parents["time"].values, s.time[fold.test])
        ok = t_idx >= spec.window - 1
        pred = np.full(int(fold.test.sum()), np.nan)
        pred[ok] = model.ensemble.predict(np.ascontiguousarray(windows[t_idx[ok] - (spec.window - 1), s.cell[fold.test][ok]]))[0]
    (score,) = score_candidates({model.method: pred}, s.target[fold.test], s.station[fold.test], s.time[fold.test],
                                folds="period", seed=seed)
    return score if full else {model.method: score.ubrmse.median}


def _pyfunc_class():
    from mlflow.pyfunc import PythonModel

    class MergingEnsembleModel(PythonModel):
        """pyfunc of an ML merging version: input (n, window, feature) float32 windows of
        :func:`smflow.ml.features.feature_cube`; output BMA mean, variance and member columns."""

        def load_context(self, context):
            from smflow.ml.merging import MergingEnsemble

            self.ensemble = MergingEnsemble.load(dict(context.artifacts))

        def predict(self, context, model_input, params=None):
            import pandas as pd

            windows = np.asarray(model_input, dtype=np.float32)
            if windows.ndim != 3 or windows.shape[-1] != len(self.ensemble.spec.columns):
                raise ValueError(f"input has shape {windows.shape}; expected (n, {self.ensemble.spec.window}, "
                                 f"{len(self.ensemble.spec.columns)}) with features {self.ensemble.spec.columns}")
            mean, var, members = self.ensemble.predict(windows)
            return pd.DataFrame({"soil_moisture": mean, "soil_moisture_variance": var,
                                 **{f"member_{k}": v for k, v in members.items()}})

    return MergingEnsembleModel


def _register_ensemble(ensemble, method: str, card, tags: dict[str, str]):
    """Log ``ensemble`` as a pyfunc, register a version of the merging model with the model card
    ``card`` (:class:`smflow.ml.cards.ModelCard`) as its description and ``tags``; it becomes challenger."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    from smflow.ml.registry import ModelRef, mark_challenger

    run = mlflow.active_run()
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = ensemble.save(Path(tmp) / method)
        model_cls = _pyfunc_class()
        example = np.zeros((2, ensemble.spec.window, len(ensemble.spec.columns)), dtype=np.float32)
        m = model_cls()
        m.ensemble = ensemble
        signature = infer_signature(example, m.predict(None, example))
        info = mlflow.pyfunc.log_model(name=f"model_{method}", python_model=m, artifacts=artifacts,
                                       signature=signature, input_example=example,
                                       registered_model_name=MERGING_MODEL,
                                       pip_requirements=["numpy", "pandas", "scikit-learn", "tensorflow-cpu", "mlflow"])
    ref = ModelRef(MERGING_MODEL, str(info.registered_model_version), run.info.run_id)
    from smflow.ml.cards import write_card

    client = MlflowClient()
    write_card(MERGING_MODEL, ref.version, card)
    for k, v in {**tags, "method": method}.items():
        client.set_model_version_tag(MERGING_MODEL, ref.version, k, v)
    return mark_challenger(ref)


def train_merging(train: tuple[date, date], evaluate: tuple[date, date], *, settings: Settings | None = None,
                  domain: str = "big_island", loso: bool = True, hyper: dict | None = None, seed: int = SEED):
    """Fit, evaluate (LOSO + held-out period), log, register every candidate and promote by the gate.

    Needs the in-situ stations (``../shared``); without them :func:`register_shipped_merging` is used.
    Returns a :class:`smflow.ml.train.TrainingResult` (``metrics`` holds the candidate table rows).
    """
    import mlflow
    from mlflow import MlflowClient

    from smflow.domain import load_domain
    from smflow.ml.cards import ModelCard, write_card
    from smflow.ml.evaluation import format_candidates
    from smflow.ml.gates import promote_after_training
    from smflow.ml.registry import configure, load_champion, log_grid_model, promote
    from smflow.ml.train import TrainingResult
    from smflow.ml.models import TCMergingModel

    settings = configure(settings)
    shared = settings.shared_data_dir
    if shared is None or not (shared / "ismn_hawaii").is_dir():
        return register_shipped_merging(settings=settings)
    grid = load_domain(domain)
    tc_params, tc_ref = load_champion("tc_merging")
    inputs = build_inputs(train, evaluate[1], grid, shared / "ismn_hawaii", tc_params)
    scores, ensemble, _, _ = evaluate_candidates(inputs, train, evaluate, loso=loso, hyper=hyper, seed=seed)
    current_ref, current = _current_champion_score(inputs, train, evaluate, seed)
    winner, gate = choose_champion(scores, current)
    table = format_candidates(scores)
    log.info("merging candidates:\n%s\n%s", table, gate)
    rows = [c.row() for c in scores]
    data_fp = fingerprint(inputs.samples.table, inputs.samples.target, inputs.samples.station)
    mlflow.set_experiment(MERGING_MODEL)
    refs = {}
    with mlflow.start_run(run_name=f"merging candidates {train[0]}..{train[1]}") as run:
        mlflow.log_params({"domain": domain, "train_start": str(train[0]), "train_end": str(train[1]),
                           "evaluate_start": str(evaluate[0]), "evaluate_end": str(evaluate[1]),
                           "parents": ",".join(PARENTS), "features": ",".join(inputs.spec.columns),
                           "window_days": WINDOW_DAYS, "seed": seed, "loso": loso,
                           "training_data_fingerprint": data_fp, "tc_merging_model": tc_ref.label(),
                           "hyper": json.dumps(ensemble.hyper, sort_keys=True)})
        mlflow.log_metrics({f"{r['folds']}_{r['method']}_{m}": float(r[m]) for r in rows
                            for m in ("r", "ubrmse", "bias", "kge") if np.isfinite(r[m])})
        mlflow.log_text(table + "\n" + gate + "\n", "candidates.txt")
        mlflow.log_dict({"candidates": [c.to_dict() for c in scores], "gate": gate}, "candidates.json")
        mlflow.set_tag("evaluation_gate", gate)
        common = {"training_data_fingerprint": data_fp, "seed": str(seed), "features": ",".join(inputs.spec.columns),
                  "train_period": f"{train[0]}..{train[1]}"}
        period = {c.method: c for c in scores if c.folds == "period"}
        for method in CANDIDATES:
            score = period.get(method)
            loso_score = next((c for c in scores if c.method == method and c.folds == "loso"), None)
            card_metrics = {} if score is None else {
                "held-out median ubRMSE [m3 m-3]": score.ubrmse.median, "held-out median R": score.r.median,
                "held-out median bias [m3 m-3]": score.bias.median, "held-out median KGE": score.kge.median,
                "stations": score.n_stations}
            if loso_score is not None:
                card_metrics["LOSO median ubRMSE [m3 m-3]"] = loso_score.ubrmse.median
            desc = ModelCard(MERGING_MODEL, method, f"{train[0]}..{train[1]}", f"{domain} ({grid.resolution:g} deg)",
                             inputs.spec.columns if method != "tc" else list(PARENTS), data_fp, card_metrics,
                             gate + (" (this candidate is the winner)" if method == winner else ""),
                             evaluated_on=f"vs {score.n_stations if score else '?'} ISMN stations on "
                                          f"{evaluate[0]}..{evaluate[1]}",
                             notes=(f"TC parameters of {tc_ref.label()}." if method == "tc" else ""))
            if method == "tc":
                ref = log_grid_model(TCMergingModel(), tc_params, registered_name=MERGING_MODEL)
                write_card(MERGING_MODEL, ref.version, desc)
                for k, v in {**common, "method": "tc", "tc_merging_model": tc_ref.label()}.items():
                    MlflowClient().set_model_version_tag(MERGING_MODEL, ref.version, k, v)
            elif method == "bma":
                ref = _register_ensemble(ensemble, "bma", desc, {**common, "members": ",".join(ensemble.members)})
            else:
                from smflow.ml.merging import MergingEnsemble

                single = MergingEnsemble(ensemble.spec, {method: ensemble.members[method]}, None, ensemble.seed,
                                         {method: ensemble.hyper.get(method, {})})
                ref = _register_ensemble(single, method, desc, common)
            refs[method] = ref
        bma_ref = refs["bma"]
        MlflowClient().set_model_version_tag(
            MERGING_MODEL, bma_ref.version, "member_versions",
            ",".join(f"{k}=v{refs[k].version}" for k in ensemble.members))
    passed = winner is not None
    if passed:  # first champion, or left to evaluate_challenger when one exists (issue 14)
        chosen, promoted, gate = promote_after_training(refs[winner], True, gate)
    elif current_ref is None:  # first training: the system needs a champion; TC is the documented fallback
        gate += "; no champion yet: tc (the baseline method) is champion"
        chosen, promoted = promote(refs["tc"], reason=gate), True
    else:
        chosen, promoted = current_ref, False
    metrics = {f"{r['folds']}_{r['method']}_ubrmse": float(r["ubrmse"]) for r in rows}
    return TrainingResult(MERGING_MODEL, chosen.version, chosen.run_id, promoted, gate,
                          metrics, passed)


#: The merging ensemble the project trained itself on the Hawaii stations (derived model, with its
#: provenance and candidate table; no observation inside), registered on machines without ../shared.
SHIPPED_MERGING = REPO_ROOT / "data" / "derived" / "merging_big_island"


def export_shipped_merging(ensemble, scores, winner: str | None, gate: str, provenance: dict[str, Any]) -> Path:
    """Write the period-fold ensemble, its candidate table, gate verdict (``winner``: the candidate
    that passed, or None) and provenance to :data:`SHIPPED_MERGING`."""
    import shutil

    from smflow.ml.evaluation import format_candidates

    if SHIPPED_MERGING.exists():
        shutil.rmtree(SHIPPED_MERGING)
    ensemble.save(SHIPPED_MERGING)
    doc = {"provenance": provenance, "winner": winner, "gate": gate, "candidates": [c.row() for c in scores],
           "table": format_candidates(scores)}
    (SHIPPED_MERGING / "provenance.json").write_text(json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n")
    return SHIPPED_MERGING


def register_shipped_merging(*, settings: Settings | None = None):
    """Without in-situ targets: register the shipped ensemble (and TC), promote by the shipped evaluation.

    The candidates cannot be scored on this machine; the shipped ensemble carries the table of the
    run that trained it (:func:`export_shipped_merging`), and the same gate decides: if the shipped
    ensemble did not pass it, TC least squares is the merging champion. Every version says so.
    """
    import mlflow
    from mlflow import MlflowClient

    from smflow.ml.cards import ModelCard, write_card
    from smflow.ml.merging import MergingEnsemble
    from smflow.ml.models import TCMergingModel
    from smflow.ml.gates import promote_after_training
    from smflow.ml.registry import champion_ref, configure, load_champion, log_grid_model, promote
    from smflow.ml.train import TrainingResult

    configure(settings)
    client = MlflowClient()
    tc_params, tc_ref = load_champion("tc_merging")
    mlflow.set_experiment(MERGING_MODEL)
    run_params = client.get_run(tc_ref.run_id).data.params
    doc = json.loads((SHIPPED_MERGING / "provenance.json").read_text())
    artifacts = {p.stem: str(p) for p in SHIPPED_MERGING.iterdir() if p.name != "provenance.json"}
    ensemble = MergingEnsemble.load(artifacts)
    note = ("no in-situ stations on this machine (../shared/data/real/ismn_hawaii): the candidates were not "
            f"retrained; the shipped ensemble {SHIPPED_MERGING.relative_to(REPO_ROOT)} is registered with the "
            f"evaluation of the run that trained it ({doc['gate']})")
    with mlflow.start_run(run_name="merging without in-situ targets (shipped ensemble)"):
        mlflow.log_params({k: run_params[k] for k in ("train_start", "train_end", "evaluate_start", "evaluate_end")
                           if k in run_params})
        mlflow.log_text(doc["table"] + "\n" + doc["gate"] + "\n", "candidates.txt")
        mlflow.set_tag("evaluation_gate", note)
        tc = log_grid_model(TCMergingModel(), tc_params, registered_name=MERGING_MODEL)
        client.set_model_version_tag(MERGING_MODEL, tc.version, "method", "tc")
        period = f"{run_params.get('train_start', '?')}..{run_params.get('train_end', '?')}"
        tc_metrics = {k: v for k, v in client.get_run(tc_ref.run_id).data.metrics.items() if "merged" in k}
        write_card(MERGING_MODEL, tc.version, ModelCard(
            MERGING_MODEL, "tc", f"{period} (the parameters of {tc_ref.label()})", str(tc_params.metadata.get("domain", "big_island")),
            list(PARENTS), fingerprint(*(tc_params.arrays[k] for k in sorted(tc_params.arrays))), tc_metrics,
            note, evaluated_on="of the tc_merging version, vs C3S", notes=f"TC least squares ({tc_ref.label()})."))
        prov = doc["provenance"]
        shipped = {r["method"]: r for r in doc["candidates"] if r.get("method") == "bma"}
        bma_metrics = {f"{r['folds']} median {m}": r[m] for r in doc["candidates"] if r.get("method") == "bma"
                       for m in ("ubrmse", "r", "bias", "kge") if m in r}
        bma = _register_ensemble(ensemble, "bma", ModelCard(
            MERGING_MODEL, "bma", f"not fitted here: {prov.get('source', 'shipped ensemble')}", "big_island",
            list(prov.get("features") or ensemble.spec.columns), str(prov.get("training_data_fingerprint", "unknown")),
            bma_metrics, doc["gate"], evaluated_on="of the run that trained it, vs the ISMN stations" if shipped else "",
            notes=f"shipped BMA ensemble; {note}"),
                                 {"source": "shipped", "provenance": json.dumps(doc["provenance"], sort_keys=True)[:5000]})
        client.set_model_version_tag(MERGING_MODEL, bma.version, "member_versions",
                                     ",".join(f"{k}=shipped" for k in ensemble.members))
    winner = doc["winner"]
    try:
        current = champion_ref(MERGING_MODEL)
    except LookupError:
        current = None
    chosen = {"bma": bma, "tc": tc}.get(winner or "", None)
    if chosen is not None:  # first champion, or left to evaluate_challenger when one exists (issue 14)
        chosen, promoted, note = promote_after_training(chosen, True, note)
    elif current is None:
        chosen, promoted = promote(tc), True
    else:
        chosen, promoted = current, False
    return TrainingResult(MERGING_MODEL, chosen.version, chosen.run_id, promoted, note, {}, True)


def main(argv: list[str] | None = None) -> None:
    """Print the candidate table of the README (no MLflow: TC fitted on the training period in-process)."""
    import argparse

    from smflow.domain import load_domain
    from smflow.ml.evaluation import format_candidates
    from smflow.ml.train import _parents_series, fit_merging_parameters

    parser = argparse.ArgumentParser(description="score the merging candidates on the Hawaii stations")
    parser.add_argument("--train", nargs=2, default=["2017-01-01", "2017-12-31"])
    parser.add_argument("--evaluate", nargs=2, default=["2018-01-01", "2018-12-31"])
    parser.add_argument("--no-loso", action="store_true", help="skip the leave-one-station-out folds")
    parser.add_argument("--epochs", type=int, default=60, help="maximum epochs of the LSTM / CNN (early stopping)")
    parser.add_argument("--export-shipped", action="store_true",
                        help=f"write the period-fold ensemble and its evaluation to {SHIPPED_MERGING.relative_to(REPO_ROOT)}")
    args = parser.parse_args(argv)
    train = (date.fromisoformat(args.train[0]), date.fromisoformat(args.train[1]))
    evaluate = (date.fromisoformat(args.evaluate[0]), date.fromisoformat(args.evaluate[1]))
    settings = Settings.load()
    if settings.shared_data_dir is None:
        raise SystemExit("the in-situ stations (../shared/data/real/ismn_hawaii) are needed to score the candidates")
    grid = load_domain()
    tc = fit_merging_parameters(_parents_series(*train, grid), grid)
    inputs = build_inputs(train, evaluate[1], grid, settings.shared_data_dir / "ismn_hawaii", tc)
    scores, ensemble, _, _ = evaluate_candidates(inputs, train, evaluate, loso=not args.no_loso,
                                                 hyper={"lstm": {"epochs": args.epochs}, "cnn": {"epochs": args.epochs}})
    winner, gate = choose_champion(scores)
    print(format_candidates(scores))
    print(gate)
    print("BMA weights:", dict(zip(ensemble.bma.names, np.round(ensemble.bma.weights, 3).tolist())))
    if args.export_shipped:
        import subprocess

        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True).stdout.strip()
        provenance = {
            "source": f"trained by smflow (commit {commit}) against the daily means of the ISMN stations of the "
                      f"Big Island (internal use; no observation value is stored) on {train[0]}..{train[1]}, "
                      f"evaluated on {evaluate[0]}..{evaluate[1]} and leave-one-station-out",
            "method": "RF / LSTM / multi-head 1-D CNN combined by BMA (Zhang et al. 2022, Sect. 3.4, Eq. 17; "
                      "Raftery et al. 2005)",
            "features": inputs.spec.columns, "seed": SEED,
            "training_data_fingerprint": fingerprint(inputs.samples.table, inputs.samples.target, inputs.samples.station),
        }
        print(export_shipped_merging(ensemble, scores, winner, gate, provenance))


if __name__ == "__main__":
    main()
