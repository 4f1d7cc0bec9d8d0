"""Training of the registry models: fit, evaluate, log, register, promote by alias when the gate passes.

Called by the ``train_models`` DAG (one task per model) and usable from a shell::

    python -m smflow.ml.train tc_merging --train 2017-01-01 2017-12-31 --evaluate 2018-01-01 2018-05-31
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from smflow.config import REPO_ROOT, Settings

from smflow.ml.models import (  # noqa: F401 - the conversions are re-exported for callers of smflow.ml.train
    PARENTS, SM2RAIN_FILTER_FIELDS, GridParameters, SM2RAINModel, TCMergingModel, merging_parameters,
    sm2rain_parameters,
)

log = logging.getLogger(__name__)

#: Parameter set the project calibrated itself against the SCAN gauges (derived data, shipped so
#: the system produces rainfall on machines without the internal-only gauge files).
SHIPPED_SM2RAIN = REPO_ROOT / "data" / "derived" / "sm2rain_big_island.json"

#: Parent used as the reference space of the merged product (on the domain grid, complete).
REFERENCE_PARENT = "era5_land"


@dataclass(frozen=True)
class TrainingResult:
    """What a training task returns (small: goes through XCom)."""

    model: str
    version: str
    run_id: str
    promoted: bool
    gate: str
    metrics: dict[str, float] = field(default_factory=dict)
    #: Whether the training gate passed (None: as ``promoted``). A version that passed is not
    #: promoted by training when a champion exists and ``evaluate_challenger`` decides
    #: (:func:`smflow.ml.gates.promote_after_training`).
    passed: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "run_id": self.run_id,
            "promoted": self.promoted,
            "passed": self.promoted if self.passed is None else self.passed,
            "gate": self.gate,
            "metrics": self.metrics,
        }


def _parents_series(start: date, end: date, grid) -> np.ndarray:
    """Gridded daily parents, shape (3, time, lat, lon) in m3 m-3, order :data:`PARENTS`."""
    from smflow.ingest import gridded_series

    return np.stack([gridded_series(p, start, end, grid).values for p in PARENTS])


def _cells(a: np.ndarray) -> np.ndarray:
    """(..., time, lat, lon) -> (..., cells, time)."""
    lead = a.shape[:-3]
    t, ny, nx = a.shape[-3:]
    return np.moveaxis(a.reshape(*lead, t, ny * nx), -1, -2)


def _grid(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(..., cells) -> (..., lat, lon)."""
    return a.reshape(*a.shape[:-1], *shape)


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _median(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=float)
    return float(np.nanmedian(x)) if np.isfinite(x).any() else float("nan")


def merge_series(params: GridParameters, parents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply TC merging parameters to gridded parents (3, time, lat, lon) -> merged (time, lat, lon)
    and its error variance (time, lat, lon) [(m3 m-3)^2] (Ming et al. 2022, Eqs. 11-17)."""
    from smflow.science.merging import apply_tc_merging

    res = apply_tc_merging(merging_parameters(params), _cells(parents))
    shape = parents.shape[-2:]
    merged = _grid(np.moveaxis(res.soil_moisture, -1, 0), shape)
    err = _grid(np.moveaxis(res.error_variance, -1, 0), shape)
    return merged, err


def fit_merging_parameters(parents: np.ndarray, grid) -> GridParameters:
    """Fit TC least-squares merging on gridded parents (3, time, lat, lon) (Ming et al. 2022, Eqs. 5–17)."""
    from smflow.science.merging import fit_tc_merging

    mp = fit_tc_merging(_cells(parents), reference=PARENTS.index(REFERENCE_PARENT))
    arrays = {k: _grid(np.asarray(v), grid.shape) for k, v in mp.to_dict().items()}
    return GridParameters(arrays=arrays, metadata={"parents": list(PARENTS), "reference": REFERENCE_PARENT})


def train_tc_merging(
    train: tuple[date, date],
    evaluate: tuple[date, date],
    *,
    settings: Settings | None = None,
    domain: str = "big_island",
) -> TrainingResult:
    """Fit, evaluate against C3S on a period the fit did not see, log, register, gate, promote."""
    import mlflow

    from smflow.ml.cards import ModelCard, write_card
    from smflow.ml.features import fingerprint
    from smflow.ml.gates import promote_after_training
    from smflow.ml.registry import configure, log_grid_model
    from smflow.domain import load_domain
    from smflow.ingest import gridded_series
    from smflow.science.metrics import pearson_r, ubrmse

    settings = configure(settings)
    grid = load_domain(domain)
    parents_train = _parents_series(*train, grid)
    params = fit_merging_parameters(parents_train, grid)
    params.metadata.update({"domain": domain, "train_start": str(train[0]), "train_end": str(train[1])})

    parents_eval = _parents_series(*evaluate, grid)
    merged_eval, _ = merge_series(params, parents_eval)
    c3s = gridded_series("c3s", *evaluate, grid).values
    ref = _cells(c3s[None])[0]
    metrics: dict[str, float] = {
        "resolved_fraction": float(np.mean(params.arrays["resolved"][grid.land_mask])),
        "median_r_merged_vs_c3s": _median(pearson_r(_cells(merged_eval[None])[0], ref)),
        "median_ubrmse_merged_vs_c3s": _median(ubrmse(_cells(merged_eval[None])[0], ref)),
    }
    for k, name in enumerate(PARENTS):
        metrics[f"median_r_{name}_vs_c3s"] = _median(pearson_r(_cells(parents_eval[k][None])[0], ref))
    best_parent = max(metrics[f"median_r_{p}_vs_c3s"] for p in PARENTS)
    passed = (
        metrics["resolved_fraction"] >= 0.25
        and np.isfinite(metrics["median_r_merged_vs_c3s"])
        and metrics["median_r_merged_vs_c3s"] >= best_parent - 0.05
    )
    gate = (
        f"resolved_fraction {metrics['resolved_fraction']:.2f} >= 0.25 and median R(merged, C3S) "
        f"{metrics['median_r_merged_vs_c3s']:.3f} >= best parent {best_parent:.3f} - 0.05: "
        + ("passed" if passed else "FAILED")
    )
    mlflow.set_experiment("tc_merging")
    with mlflow.start_run(run_name=f"tc_merging {train[0]}..{train[1]}"):
        mlflow.log_params(
            {
                "domain": domain,
                "train_start": str(train[0]),
                "train_end": str(train[1]),
                "evaluate_start": str(evaluate[0]),
                "evaluate_end": str(evaluate[1]),
                "parents": ",".join(PARENTS),
                "reference": REFERENCE_PARENT,
            }
        )
        mlflow.log_metrics(metrics)
        mlflow.set_tag("evaluation_gate", gate)
        ref_model = log_grid_model(TCMergingModel(), params, registered_name="tc_merging")
        write_card("tc_merging", ref_model.version, ModelCard(
            "tc_merging", "tc", f"{train[0]}..{train[1]}", f"{domain} ({grid.resolution:g} deg)", list(PARENTS),
            fingerprint(parents_train), metrics, gate, evaluated_on=f"vs C3S SM COMBINED on {evaluate[0]}..{evaluate[1]}",
            extra={"Reference parent": REFERENCE_PARENT}))
    ref_model, promoted, gate = promote_after_training(ref_model, passed, gate)
    log.info("tc_merging v%s: %s", ref_model.version, gate)
    return TrainingResult("tc_merging", ref_model.version, ref_model.run_id, promoted, gate, metrics, passed)


def _saturation_bounds(merged: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell bounds (lat, lon) of the merged soil moisture, frozen from the calibration period."""
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lower = np.nanpercentile(merged, 1, axis=0)
            upper = np.nanpercentile(merged, 99, axis=0)
    return lower, upper


def calibrate_sm2rain_at_gauges(
    merged: np.ndarray,
    times: np.ndarray,
    train: tuple[date, date],
    validate: tuple[date, date],
    grid,
    shared_dir: Path,
    *,
    swi_filter: str = "none",
    soil_temperature: np.ndarray | None = None,
) -> tuple[GridParameters, dict[str, float], list[dict[str, Any]]]:
    """Calibrate SM2RAIN at the gauge cells on ``train``, score on ``validate``, regionalise.

    Parameters
    ----------
    merged : numpy.ndarray, shape (time, lat, lon)
        Merged soil moisture [m3 m-3] covering ``train`` and ``validate``.
    times : numpy.ndarray of datetime64, shape (time,)
        Its daily dates.
    train, validate : tuple of date
        Calibration and validation periods (inclusive).
    grid : DomainGrid
        The domain.
    shared_dir : Path
        ``ismn_hawaii`` folder of the gauges (internal data).
    swi_filter : {"none", "exponential", "wetness"}
        3-parameter SM2RAIN (Brocca et al. 2013) or the SM2RAIN-ASCAT filtered variants (T, or
        T SWI^-Tpot; Brocca et al. 2019). The filtered series' min-max bounds are frozen from the
        calibration period at every cell (:func:`smflow.science.sm2rain.freeze_swi_bounds`), so
        the product can run day by day.
    soil_temperature : numpy.ndarray, shape (time, lat, lon), optional
        Top-layer soil temperature [K]; frozen steps are left out of the calibration and give no
        rain (:func:`smflow.science.sm2rain.frozen_soil_mask`).

    Returns
    -------
    tuple
        The grid parameters (``Z``, ``a``, ``b``, ``saturation_lower``/``upper`` and, for the
        filtered variants, ``T``, ``T_pot``, ``swi_lower``, ``swi_upper``), summary metrics and
        per-station skill.
    """
    import pandas as pd

    from smflow.insitu import load_gauges
    from smflow.science.metrics import bias, kge, pearson_r, rmse
    from smflow.science.sm2rain import (
        apply_sm2rain, calibrate_sm2rain, freeze_swi_bounds, frozen_soil_mask, regionalise,
        relative_saturation,
    )

    t = pd.DatetimeIndex(times)
    in_train = (t >= pd.Timestamp(train[0])) & (t <= pd.Timestamp(train[1]))
    lower, upper = _saturation_bounds(merged[in_train])
    s = relative_saturation(merged, lower[None], upper[None])

    gauges = load_gauges(shared_dir, min(train[0], validate[0]), max(train[1], validate[1]))
    rain = gauges["precipitation_amount"].reindex(time=t).values  # (station, time)
    iy, ix = grid.cell_index(gauges["lat"].values, gauges["lon"].values)
    s_st = s[:, iy, ix].T  # (station, time)
    frozen_st = None  # (station, time)
    if soil_temperature is not None:
        frozen_st = frozen_soil_mask(soil_temperature=soil_temperature[:, iy, ix].T)
    # SM2RAIN estimates the rain that fell between t-1 and t: compare with the gauge sum of day t.
    # The filters run over the whole record (calibration steps only are scored), so that the
    # validation year starts from a spun-up filter, as the daily product does.
    tr = calibrate_sm2rain(np.where(in_train[None], s_st, np.nan), np.where(in_train[None], rain, np.nan),
                           swi_filter=swi_filter, frozen=None if frozen_st is None else frozen_st & in_train[None])
    in_val = (t >= pd.Timestamp(validate[0])) & (t <= pd.Timestamp(validate[1]))
    p_sim = apply_sm2rain(s_st, tr, frozen=frozen_st)
    sim_v = np.where(in_val[None], p_sim, np.nan)
    obs_v = np.where(in_val[None], rain, np.nan)
    stations: list[dict[str, Any]] = []
    r_v, rmse_v, bias_v, kge_v = pearson_r(sim_v, obs_v), rmse(sim_v, obs_v), bias(sim_v, obs_v), kge(sim_v, obs_v)
    r_c = pearson_r(np.where(in_train[None], p_sim, np.nan), np.where(in_train[None], rain, np.nan))
    # No-skill baseline on the same days: each gauge's monthly climatology of the calibration period.
    clim_v = np.where(in_val[None], monthly_climatology(rain, t, in_train), np.nan)
    kge_clim = kge(clim_v, obs_v)
    for k, name in enumerate(gauges["station"].values):
        stations.append(
            {
                "station": str(name),
                "Z_mm": float(tr.Z[k]),
                "a_mm_per_day": float(tr.a[k]),
                "b": float(tr.b[k]),
                "T_days": _finite_or_none(tr.T[k]),
                "T_pot": _finite_or_none(tr.T_pot[k]),
                "r_calibration": float(r_c[k]),
                "r_validation": float(r_v[k]),
                "rmse_validation_mm": float(rmse_v[k]),
                "bias_validation_mm": float(bias_v[k]),
                "kge_validation": float(kge_v[k]),
                "kge_climatology_validation": float(kge_clim[k]),
            }
        )
    lat2d, lon2d = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    reg = regionalise(tr, gauges["lat"].values, gauges["lon"].values, lat2d.ravel(), lon2d.ravel())
    if swi_filter != "none":  # each cell's own filtered-series bounds, from the calibration period
        reg = freeze_swi_bounds(reg, _cells(s[in_train][None])[0])
    arrays = {
        "Z": reg.Z.reshape(grid.shape),
        "a": reg.a.reshape(grid.shape),
        "b": reg.b.reshape(grid.shape),
        "saturation_lower": lower,
        "saturation_upper": upper,
    }
    if swi_filter != "none":
        arrays.update({k: np.asarray(getattr(reg, k)).reshape(grid.shape) for k in SM2RAIN_FILTER_FIELDS})
    metrics = {
        "median_r_validation": _median(r_v),
        "median_rmse_validation_mm": _median(rmse_v),
        "median_kge_validation": _median(kge_v),
        "median_kge_climatology_validation": _median(kge_clim),
        "median_r_calibration": _median(r_c),
        "n_gauges": float(len(stations)),
    }
    return GridParameters(arrays=arrays, metadata={}), metrics, stations


def monthly_climatology(rain: np.ndarray, times, fitted: np.ndarray) -> np.ndarray:
    """The no-skill rainfall baseline: per gauge, the mean daily rain of each calendar month over
    the days ``fitted``, repeated on every day of that month.

    Parameters
    ----------
    rain : ndarray, shape (station, time)
        Daily gauge sums [mm], NaN where missing.
    times : pandas.DatetimeIndex, length time
    fitted : ndarray of bool, shape (time,)
        Days the climatology is computed from (the calibration period).

    Returns
    -------
    ndarray, shape (station, time)
        The climatological rain of each day [mm]; NaN for a month the fitted days lack.
    """
    months = np.asarray(times.month)
    out = np.full(rain.shape, np.nan)
    for m in np.unique(months):
        in_month = months == m
        sample = rain[:, in_month & fitted]
        counts = np.isfinite(sample).sum(axis=1)
        mean = np.where(counts > 0, np.nansum(sample, axis=1) / np.maximum(counts, 1), np.nan)
        out[:, in_month] = mean[:, None]
    return out


def sm2rain_skill(metrics: dict[str, float]) -> tuple[str, str]:
    """Skill status of an SM2RAIN model against the no-skill baseline: ``("operational", why)`` when
    its median validation KGE beats the gauges' monthly climatology (and the mean-flow benchmark
    KGE = 1 - sqrt(2), Knoben et al. 2019), else ``("experimental", why)``."""
    model = metrics.get("median_kge_validation", np.nan)
    baseline = metrics.get("median_kge_climatology_validation", np.nan)
    if not (np.isfinite(model) and np.isfinite(baseline)):
        return "experimental", (f"median validation KGE {model:.3f}; no climatology baseline on the same days "
                                "to compare with")
    floor = max(baseline, 1.0 - np.sqrt(2.0))
    status = "operational" if model > floor else "experimental"
    return status, (f"median validation KGE {model:.3f} vs {floor:.3f} of the no-skill baseline (gauges' monthly "
                    f"climatology {baseline:.3f}, mean-flow benchmark {1.0 - np.sqrt(2.0):.3f}): "
                    + ("beats it" if status == "operational" else "does NOT beat it"))


def export_shipped_sm2rain(params: GridParameters, metrics: dict[str, float], stations: list[dict], provenance: dict) -> Path:
    """Write the project-calibrated SM2RAIN parameter set (derived data) with its provenance."""
    SHIPPED_SM2RAIN.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "description": (
            "SM2RAIN parameters (Z [mm], a [mm/day], b [-]) and frozen saturation bounds [m3 m-3] per "
            "0.1 deg cell of the big_island domain, calibrated by smflow against the daily sums of the "
            "SCAN rain gauges (ISMN) and regionalised by inverse-distance weighting. Derived data: "
            "no gauge value is contained."
        ),
        "provenance": provenance,
        "metrics": metrics,
        "stations": stations,
        "arrays": {k: [[None if not np.isfinite(x) else round(float(x), 6) for x in row] for row in np.asarray(v, float)]
                   for k, v in params.arrays.items()},
    }
    SHIPPED_SM2RAIN.write_text(json.dumps(doc, indent=1, sort_keys=True, allow_nan=False) + "\n")
    return SHIPPED_SM2RAIN


def load_shipped_sm2rain() -> tuple[GridParameters, dict[str, Any]]:
    if not SHIPPED_SM2RAIN.is_file():
        raise FileNotFoundError(
            f"{SHIPPED_SM2RAIN} is missing and no gauge data (../shared/data/real/ismn_hawaii) is available "
            "to calibrate SM2RAIN: restore the file from git"
        )
    doc = json.loads(SHIPPED_SM2RAIN.read_text())
    arrays = {k: np.asarray(v, dtype=float) for k, v in doc["arrays"].items()}
    return GridParameters(arrays=arrays, metadata={}), doc


def train_sm2rain(
    train: tuple[date, date],
    validate: tuple[date, date],
    *,
    settings: Settings | None = None,
    domain: str = "big_island",
    swi_filter: str = "none",
) -> TrainingResult:
    """Calibrate SM2RAIN on the merged soil moisture of the ``soil_moisture_merging`` champion.

    With the internal gauge data (``../shared``): calibrate at the gauge cells on ``train``
    (3-parameter, or the SM2RAIN-ASCAT filter `swi_filter`; frozen days from GLDAS soil
    temperature left out), report skill on ``validate`` (not seen by the calibration),
    regionalise. Without it: register the shipped 3-parameter set the project calibrated itself,
    and say so in the model's tags.
    """
    import mlflow

    from smflow.ml.cards import ModelCard, write_card
    from smflow.ml.features import fingerprint
    from smflow.ml.gates import promote_after_training
    from smflow.ml.registry import configure, load_champion, log_grid_model
    from smflow.domain import load_domain

    settings = configure(settings)
    grid = load_domain(domain)
    if settings.shared_data_dir is not None and (settings.shared_data_dir / "ismn_hawaii").is_dir():
        import pandas as pd

        from smflow.ingest import gridded_series
        from smflow.ml.apply import champion_merged_series

        start, end = min(train[0], validate[0]), max(train[1], validate[1])
        merged, merging_ref = champion_merged_series(start, end, grid)
        times = pd.date_range(start, end, freq="D").values
        temperature = gridded_series("gldas", start, end, grid, variable="soil_temperature").values
        params, metrics, stations = calibrate_sm2rain_at_gauges(
            merged, times, train, validate, grid, settings.shared_data_dir / "ismn_hawaii",
            swi_filter=swi_filter, soil_temperature=temperature,
        )
        data_fp = fingerprint(merged, temperature, np.array([st["station"] for st in stations], dtype=object))
        trained_on = f"{train[0]}..{train[1]} (validated on {validate[0]}..{validate[1]})"
        source = (
            f"calibrated ({'3-parameter' if swi_filter == 'none' else swi_filter + ' filter'}, frozen "
            f"days masked by GLDAS soil temperature) against SCAN rain gauges (ISMN, internal) on "
            f"{train[0]}..{train[1]}, validated on {validate[0]}..{validate[1]}, with {merging_ref.label()}"
        )
    else:
        from smflow.ml.registry import load_merging_champion

        merging_ref = load_merging_champion().ref
        params, doc = load_shipped_sm2rain()
        metrics, stations = doc["metrics"], doc["stations"]
        data_fp = fingerprint(SHIPPED_SM2RAIN.read_bytes())
        trained_on = f"not fitted here: shipped set ({doc['provenance'].get('source', 'see its provenance')})"
        swi_filter = "none"  # the shipped set is the 3-parameter model
        source = f"shipped parameter set {SHIPPED_SM2RAIN.relative_to(REPO_ROOT)} ({doc['provenance'].get('source', '')})"
    skill_status, skill = sm2rain_skill(metrics)
    params.metadata.update(
        {"domain": domain, "source": source, "merging_model": merging_ref.label(), "stations": stations,
         "skill_status": skill_status, "skill": skill}
    )
    # Usable (promoted) when the rain it inverts follows the gauges at all; operational (not
    # flagged experimental in the products) only when it also beats the no-skill baseline.
    passed = np.isfinite(metrics["median_r_validation"]) and metrics["median_r_validation"] >= 0.3
    gate = (f"median R(SM2RAIN, gauges) on validation {metrics['median_r_validation']:.3f} >= 0.30: "
            + ("passed" if passed else "FAILED") + f"; skill {skill_status}: {skill}")
    mlflow.set_experiment("sm2rain")
    with mlflow.start_run(run_name=f"sm2rain {train[0]}..{train[1]}"):
        mlflow.log_params(
            {
                "domain": domain,
                "train_start": str(train[0]),
                "train_end": str(train[1]),
                "validate_start": str(validate[0]),
                "validate_end": str(validate[1]),
                "merging_model": merging_ref.label(),
                "swi_filter": swi_filter,
            }
        )
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        mlflow.log_dict({"stations": stations}, "station_skill.json")
        mlflow.set_tag("parameter_source", source)
        mlflow.set_tag("evaluation_gate", gate)
        mlflow.set_tag("skill_status", skill_status)
        ref = log_grid_model(SM2RAINModel(), params, registered_name="sm2rain")
        write_card("sm2rain", ref.version, ModelCard(
            "sm2rain", "sm2rain" if swi_filter == "none" else "sm2rain_filtered", trained_on,
            f"{domain} ({grid.resolution:g} deg; calibrated at the gauge cells, inverse-distance regionalised)",
            [f"merged soil moisture of {merging_ref.label()}", "GLDAS soil temperature (frozen-soil mask)"],
            data_fp, {k: float(v) for k, v in metrics.items()}, gate, evaluated_on="vs SCAN rain gauges",
            notes=f"Parameter source: {source}. Skill status: {skill_status}."))
    ref, promoted, gate = promote_after_training(ref, passed, gate)
    return TrainingResult("sm2rain", ref.version, ref.run_id, promoted, gate, {k: float(v) for k, v in metrics.items()},
                          passed)


def export_from_gauges(train: tuple[date, date], validate: tuple[date, date], domain: str = "big_island") -> Path:
    """Recalibrate SM2RAIN at the gauges with the champion merging model and rewrite the shipped set."""
    import subprocess

    import pandas as pd

    from smflow.ml.registry import configure, load_champion
    from smflow.domain import load_domain

    settings = configure()
    if settings.shared_data_dir is None:
        raise FileNotFoundError("the gauge data (../shared/data/real/ismn_hawaii) is needed to calibrate SM2RAIN")
    grid = load_domain(domain)
    merging, merging_ref = load_champion("tc_merging")
    start, end = min(train[0], validate[0]), max(train[1], validate[1])
    merged, _ = merge_series(merging, _parents_series(start, end, grid))
    params, metrics, stations = calibrate_sm2rain_at_gauges(
        merged, pd.date_range(start, end, freq="D").values, train, validate, grid,
        settings.shared_data_dir / "ismn_hawaii")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                            text=True).stdout.strip()
    provenance = {
        "source": f"calibrated by smflow (commit {commit}) against the daily sums of 5 SCAN rain gauges "
                  f"(ISMN, internal use) on {train[0]}..{train[1]}, validated on {validate[0]}..{validate[1]}",
        "merged_soil_moisture": merging_ref.label(),
        "method": "SM2RAIN (Brocca et al. 2013 discrete form; Zhang et al. 2022 Eqs. 1-2), RMSE objective, "
                  "vectorised least squares in (Z, a) over a b grid; inverse-distance regionalisation",
        "domain": domain,
    }
    return export_shipped_sm2rain(params, metrics, stations, provenance)


def _land_cells(values: np.ndarray, land: np.ndarray) -> np.ndarray:
    """``(..., time, lat, lon)`` -> ``(..., land cells, time)``."""
    return np.moveaxis(values[..., land], -1, -2)


def _on_grid(cells: np.ndarray, land: np.ndarray, fill) -> np.ndarray:
    """``(..., land cells)`` -> ``(..., lat, lon)``, ``fill`` off land."""
    out = np.full((*cells.shape[:-1], *land.shape), fill, dtype=cells.dtype)
    out[..., land] = cells
    return out


def _row_percentiles(values: np.ndarray, q: tuple[float, ...]) -> tuple[np.ndarray, ...]:
    """NaN-aware percentiles along the last axis, linear interpolation (numpy's default method),
    vectorised over the rows (``np.nanpercentile`` loops over rows that hold NaN); NaN for a row
    without a value."""
    ordered = np.sort(values, axis=-1)  # NaN last
    n = np.isfinite(ordered).sum(axis=-1)
    out = []
    for pct in q:
        pos = np.clip((n - 1) * pct / 100.0, 0, None)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
        a = np.take_along_axis(ordered, lo[:, None], axis=-1)[:, 0]
        b = np.take_along_axis(ordered, hi[:, None], axis=-1)[:, 0]
        out.append(np.where(n > 0, a + (b - a) * (pos - lo), np.nan))
    return tuple(out)


def train_domain_models(pipeline_name: str, train: tuple[date, date], *,
                        settings: Settings | None = None) -> list[TrainingResult]:
    """Fit and register the TC merging and SM2RAIN models of a pipeline with its own ``models``
    (``config/daily_pipelines.json``; the global 0.25 deg pipeline) on ``train`` of its store.

    * TC merging (Ming et al. 2022, Eqs. 5-17: :func:`smflow.science.merging.fit_tc_merging`) on
      the land cells of the domain, in the space of the pipeline's last parent (GLDAS, m3 m-3). In a
      cell where TC does not resolve (too few common days, weak correlations) the parents are
      rescaled by the domain's median gain and offset of the resolved cells, bounded so that [0, 1]
      maps into [0, 1], so that the fallback mean (:func:`~smflow.science.merging.apply_tc_merging`)
      never mixes a degree of saturation with volumetric values; so is a cell whose TC merge of its
      training window leaves [0, 1] or whose gain is more than 3 times off the median (a noisy fit). Gate: TC resolved in at least 25 % of the land cells. There is no
      independent reference on this domain (no C3S / in-situ history here): the gate checks that
      TC can be estimated, not that the merge is better than its parents.
    * SM2RAIN (Brocca et al. 2013): no rain gauges on this domain, so ``Z``, ``a``, ``b`` are the
      medians of the Big Island set calibrated against the SCAN gauges
      (``data/derived/sm2rain_big_island.json``), the same in every cell, with the saturation
      bounds (1st / 99th percentiles) of the merged training window per cell. Registered with
      ``skill_status`` experimental: the rainfall is flagged so in every product.

    When the store's history is synthetic (:mod:`smflow.synthetic`), the models' tags say so
    (``smflow_synthetic``): their parameters then describe the generator, not the sensors.

    Returns
    -------
    list of TrainingResult
        The TC merging and the SM2RAIN versions; ``champion`` moves by
        :func:`smflow.ml.gates.promote_after_training` (the first version that passes its gate; a
        later one too while the model has no challenger evaluator in ``config/model_gates.json``).

    Raises
    ------
    ValueError
        The pipeline has no own ``models``, or the store holds no parent value over ``train``.
    """
    import mlflow

    from smflow import s3 as s3mod
    from smflow.catalog import pipeline
    from smflow.domain import load_domain
    from smflow.ml.features import fingerprint
    from smflow.ml.gates import promote_after_training
    from smflow.ml.registry import configure, log_grid_model
    from smflow.science.merging import MergingParameters, apply_tc_merging, fit_tc_merging
    from smflow.store import TimeSeriesStore
    from smflow.synthetic import SYNTHETIC_ATTR, read_manifest, synthetic_days

    settings = configure(settings)
    pipe = pipeline(pipeline_name)
    if not pipe.models:
        raise ValueError(f"pipeline {pipe.name!r} has no 'models' in config/daily_pipelines.json: its "
                         "models are trained by the train_models DAG (train_tc_merging, train_sm2rain)")
    grid = load_domain(pipe.domain)
    land = grid.land_mask
    n_days = (train[1] - train[0]).days + 1
    store = TimeSeriesStore(settings, grid=grid)
    parents = np.stack([_land_cells(store.window(p, train[1], n_days).values.astype(np.float32), land)
                        for p in pipe.parents])  # (3, land cells, time)
    if not np.isfinite(parents).any():
        raise ValueError(f"the {pipe.domain} store holds no value of {list(pipe.parents)} on {train[0]}..{train[1]}: "
                         "ingest granules or generate the history (python -m smflow.synthetic) first")
    days = [train[0] + timedelta(days=k) for k in range(n_days)]
    manifest = read_manifest(store.s3, settings, pipe.domain)
    synthetic = {p: len(synthetic_days(manifest, p, days)) for p in pipe.parents}
    synthetic_text = (f"{manifest.get('label', '')} Synthetic training days: "
                      + ", ".join(f"{p} {n} of {n_days}" for p, n in synthetic.items())) if any(synthetic.values()) else ""

    reference = len(pipe.parents) - 1
    mp = fit_tc_merging(parents.astype(np.float64), reference=reference)
    fitted = mp.to_dict()
    resolved = np.asarray(fitted["resolved"], dtype=bool)
    # Cells where the three parents ever meet: where TC could be estimated at all.
    collocated = np.isfinite(parents).all(axis=0).any(axis=-1)
    # A cell whose TC merge of its own training window leaves the physical range [0, 1], or whose
    # gain of a parent is more than 3 times off the domain's median (a noisy fit: a real day outside
    # the training range would be thrown far out), is not trusted: it falls back like an unresolved one.
    with np.errstate(all="ignore"):
        trial = apply_tc_merging(mp, parents.astype(np.float64)).soil_moisture
        implausible = resolved & ((trial < 0) | (trial > 1)).any(axis=-1)
        if resolved.any():
            ratio = fitted["gain"] / np.nanmedian(fitted["gain"][:, resolved], axis=1)[:, None]
            implausible |= resolved & ((ratio > 3) | (ratio < 1 / 3) | ~np.isfinite(ratio)).any(axis=0)
    del trial
    resolved &= ~implausible
    fitted["resolved"] = resolved
    fitted["weights"] = np.where(resolved[None], fitted["weights"], 1.0 / len(pipe.parents))
    if resolved.any():  # unresolved cells: the domain's median rescaling, equal weights
        # ... mapping [0, 1] into [0, 1] (offset >= 0, gain + offset <= 1), so that a parent's
        # physical range stays physical in GLDAS space
        offset = np.clip(np.nanmedian(fitted["offset"][:, resolved], axis=1), 0.0, 1.0)
        gain = np.minimum(np.nanmedian(fitted["gain"][:, resolved], axis=1), 1.0 - offset)
        fitted["gain"] = np.where(resolved[None], fitted["gain"], gain[:, None])
        fitted["offset"] = np.where(resolved[None], fitted["offset"], offset[:, None])
    mp = MergingParameters.from_dict(fitted)
    arrays = {}
    for name, values in fitted.items():
        values = np.asarray(values)
        fill = False if values.dtype == bool else (0 if values.dtype.kind in "iu" else np.nan)
        arrays[name] = _on_grid(values, land, fill)
    tc_params = GridParameters(arrays=arrays, metadata={
        "parents": list(pipe.parents), "reference": pipe.parents[reference], "domain": pipe.domain,
        "train_start": str(train[0]), "train_end": str(train[1]), SYNTHETIC_ATTR: synthetic_text})
    metrics = {"resolved_fraction": float(resolved[collocated].mean()) if collocated.any() else 0.0,
               "implausible_cells": float(implausible.sum()),
               "resolved_cells": float(resolved.sum()), "collocated_cells": float(collocated.sum()),
               "land_cells": float(land.sum())}
    with np.errstate(all="ignore"):
        for k, p in enumerate(pipe.parents):
            metrics[f"median_error_variance_{p}"] = float(np.nanmedian(np.where(resolved, fitted["reference_error_variance"][k], np.nan)))
    passed = metrics["resolved_fraction"] >= 0.25
    gate = (f"TC resolved in {metrics['resolved_fraction']:.1%} of the {int(collocated.sum())} land cells where "
            f"the three parents meet >= 25 %: "
            + ("passed" if passed else "FAILED") + " (no independent reference on this domain)")
    data_fp = fingerprint(parents)
    results = []
    name = pipe.model("merging")
    mlflow.set_experiment(name)
    with mlflow.start_run(run_name=f"{name} {train[0]}..{train[1]}"):
        mlflow.log_params({"domain": pipe.domain, "train_start": str(train[0]), "train_end": str(train[1]),
                           "parents": ",".join(pipe.parents), "reference": pipe.parents[reference]})
        mlflow.log_metrics(metrics)
        mlflow.set_tags({"evaluation_gate": gate, "method": "tc", "data_fingerprint": data_fp,
                         SYNTHETIC_ATTR: synthetic_text or "no"})
        ref = log_grid_model(TCMergingModel(), tc_params, registered_name=name)
    from mlflow import MlflowClient

    MlflowClient().set_model_version_tag(name, ref.version, "method", "tc")
    # the one promotion path (issue 14): first champion by its gate, later ones by the gate only
    # while the model has no challenger evaluator in config/model_gates.json
    ref, promoted, gate = promote_after_training(ref, passed, gate)
    results.append(TrainingResult(name, ref.version, ref.run_id, promoted, gate, metrics, passed=passed))

    # Saturation bounds where there is a merged value (other cells: NaN, no rainfall).
    observed = np.isfinite(parents).any(axis=(0, 2))
    sub = MergingParameters.from_dict({k: np.asarray(v)[..., observed] for k, v in fitted.items()})
    merged = apply_tc_merging(sub, parents[:, observed].astype(np.float64)).soil_moisture  # (cells, time)
    lower, upper = np.full(observed.size, np.nan), np.full(observed.size, np.nan)
    lower[observed], upper[observed] = _row_percentiles(merged, (1.0, 99.0))
    shipped, doc = load_shipped_sm2rain()
    ones = np.ones(grid.shape)
    rain_arrays = {k: float(np.nanmedian(shipped.arrays[k])) * ones for k in ("Z", "a", "b")}
    rain_arrays["saturation_lower"] = _on_grid(lower, land, np.nan)
    rain_arrays["saturation_upper"] = _on_grid(upper, land, np.nan)
    source = (f"not calibrated on {pipe.domain} (no rain gauges): Z, a, b = medians of the Big Island set "
              f"{SHIPPED_SM2RAIN.relative_to(REPO_ROOT)} ({doc['provenance'].get('source', '')}); saturation "
              f"bounds of the merged {train[0]}..{train[1]} window per cell")
    skill = "not rated: no rain gauges on this domain" + ("; trained on a SYNTHETIC history" if synthetic_text else "")
    rain_params = GridParameters(arrays=rain_arrays, metadata={
        "domain": pipe.domain, "source": source, "merging_model": ref.label(), "skill_status": "experimental",
        "skill": skill, SYNTHETIC_ATTR: synthetic_text})
    rain_name = pipe.model("sm2rain")
    mlflow.set_experiment(rain_name)
    rain_gate = "parameter transfer (no gauges): promoted as experimental"
    with mlflow.start_run(run_name=f"{rain_name} {train[0]}..{train[1]}"):
        mlflow.log_params({"domain": pipe.domain, "merging_model": ref.label(), "swi_filter": "none"})
        mlflow.set_tags({"parameter_source": source, "evaluation_gate": rain_gate, "skill_status": "experimental",
                         SYNTHETIC_ATTR: synthetic_text or "no"})
        rain_ref = log_grid_model(SM2RAINModel(), rain_params, registered_name=rain_name)
    rain_ref, rain_promoted, rain_gate = promote_after_training(rain_ref, True, rain_gate)
    results.append(TrainingResult(rain_name, rain_ref.version, rain_ref.run_id, rain_promoted, rain_gate, {},
                                  passed=True))
    log.info("%s: %s", pipe.name, [r.to_dict() for r in results])
    return results


def _period(values: list[str]) -> tuple[date, date]:
    return date.fromisoformat(values[0]), date.fromisoformat(values[1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=["tc_merging", "sm2rain", "domain"],
                        help="domain: the TC merging and SM2RAIN models of --pipeline (its own 'models')")
    parser.add_argument("--pipeline", default="global_025", help="domain only: pipeline key or DAG id")
    parser.add_argument("--train", nargs=2, default=["2017-01-01", "2017-12-31"])
    parser.add_argument("--evaluate", nargs=2, default=["2018-01-01", "2018-12-31"])
    parser.add_argument("--swi-filter", choices=["none", "exponential", "wetness"], default="none",
                        help="sm2rain only: 3-parameter model or an SM2RAIN-ASCAT filtered variant")
    parser.add_argument("--export-shipped", action="store_true",
                        help="sm2rain only: recalibrate against the gauges and rewrite the shipped parameter set "
                             f"({SHIPPED_SM2RAIN.relative_to(REPO_ROOT)}) instead of registering a model")
    args = parser.parse_args(argv)
    train, evaluate = _period(args.train), _period(args.evaluate)
    if args.export_shipped:
        print(export_from_gauges(train, evaluate))
        return
    if args.model == "domain":
        print(json.dumps([r.to_dict() for r in train_domain_models(args.pipeline, train)], indent=2))
        return
    if args.model == "tc_merging":
        result = train_tc_merging(train, evaluate)
    else:
        result = train_sm2rain(train, evaluate, swi_filter=args.swi_filter)
    print(json.dumps(result.to_dict(), indent=2))


if __name__ == "__main__":
    main()
