"""Evaluation that every merging candidate and every baseline goes through, on the same folds.

Scores are per station (R, ubRMSE, bias, KGE of the station's daily series against its in-situ
series; Zhang et al. 2022, Eqs. 11-13; Ming et al. 2022 for ubRMSE; Gupta et al. 2009 for KGE),
summarised by the median over stations, with 95 % moving-block bootstrap intervals: days are
resampled in blocks of ``block_days`` consecutive samples per station (soil-moisture errors are
autocorrelated; i.i.d. resampling would make the intervals too narrow), the per-station scores
recomputed and their median taken, ``n_resamples`` times.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping

import numpy as np

METRICS: tuple[str, ...] = ("r", "ubrmse", "bias", "kge")


@dataclass(frozen=True)
class Score:
    """Median over stations of one metric, with its bootstrap interval."""

    median: float
    lower: float
    upper: float

    def __str__(self) -> str:
        return f"{self.median:.3f} [{self.lower:.3f}, {self.upper:.3f}]"


@dataclass(frozen=True)
class CandidateScores:
    """Scores of one method on one fold set.

    Attributes
    ----------
    method : str
    folds : str
        ``"loso"`` or ``"period"``.
    r, ubrmse, bias, kge : Score
        Median over stations (bias and ubRMSE in m3 m-3) with the 95 % bootstrap interval.
    n_stations, n_samples : int
    per_station : dict of str to dict
        Each station's four scores and sample count.
    """

    method: str
    folds: str
    r: Score
    ubrmse: Score
    bias: Score
    kge: Score
    n_stations: int
    n_samples: int
    per_station: dict

    def to_dict(self) -> dict:
        return asdict(self)

    def row(self) -> dict:
        """Flat record for tables and MLflow metrics."""
        out = {"method": self.method, "folds": self.folds, "n_stations": self.n_stations, "n_samples": self.n_samples}
        for m in METRICS:
            s: Score = getattr(self, m)
            out.update({m: s.median, f"{m}_lower": s.lower, f"{m}_upper": s.upper})
        return out


def _scores(estimate: np.ndarray, reference: np.ndarray) -> dict[str, np.ndarray]:
    from smflow.science.metrics import bias, kge, pearson_r, ubrmse

    return {"r": pearson_r(estimate, reference, min_samples=10), "ubrmse": ubrmse(estimate, reference, min_samples=10),
            "bias": bias(estimate, reference, min_samples=10), "kge": kge(estimate, reference, min_samples=10)}


def _block_indices(n: int, block: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_resamples, n) indices of a moving-block bootstrap of a series of ``n`` samples."""
    block = max(1, min(block, n))
    n_blocks = -(-n // block)
    starts = rng.integers(0, n - block + 1, size=(n_resamples, n_blocks))
    idx = (starts[..., None] + np.arange(block)).reshape(n_resamples, -1)
    return idx[:, :n]


def score_candidates(
    predictions: Mapping[str, np.ndarray],
    target: np.ndarray,
    station: np.ndarray,
    time: np.ndarray,
    *,
    folds: str,
    n_resamples: int = 300,
    block_days: int = 30,
    seed: int = 0,
) -> list[CandidateScores]:
    """Score every candidate on the same test samples.

    Parameters
    ----------
    predictions : mapping of str to numpy.ndarray, shape (n,)
        Each candidate's prediction of the test samples [m3 m-3] (NaN where it has none).
    target : numpy.ndarray, shape (n,)
        In-situ soil moisture [m3 m-3].
    station, time : numpy.ndarray, shape (n,)
        Station and day of each sample.
    folds : str
        Label of the fold set (``"loso"`` or ``"period"``).
    n_resamples, block_days, seed : int
        Moving-block bootstrap of the median scores (the same resampled days for every candidate).

    Returns
    -------
    list of CandidateScores
        In the order of ``predictions``.
    """
    rng = np.random.default_rng(seed)
    stations = sorted(set(np.asarray(station).tolist()))
    per_station_idx = []
    for s in stations:
        idx = np.flatnonzero(np.asarray(station) == s)
        per_station_idx.append(idx[np.argsort(np.asarray(time)[idx], kind="stable")])
    boot = [idx[_block_indices(idx.size, block_days, n_resamples, rng)] for idx in per_station_idx]
    out = []
    for method, pred in predictions.items():
        pred = np.asarray(pred, dtype=float)
        point = {m: np.full(len(stations), np.nan) for m in METRICS}
        resampled = {m: np.full((n_resamples, len(stations)), np.nan) for m in METRICS}
        per_station = {}
        for k, (s, idx, b) in enumerate(zip(stations, per_station_idx, boot)):
            sc = _scores(pred[idx], target[idx])
            bs = _scores(pred[b], target[b])
            for m in METRICS:
                point[m][k] = sc[m]
                resampled[m][:, k] = bs[m]
            per_station[s] = {**{m: float(point[m][k]) for m in METRICS},
                              "n": int(np.isfinite(pred[idx]).sum())}
        scores = {}
        for m in METRICS:
            with np.errstate(all="ignore"):
                med = np.nanmedian(resampled[m], axis=1) if np.isfinite(resampled[m]).any() else np.full(n_resamples, np.nan)
            lo, hi = (np.nanpercentile(med, [2.5, 97.5]) if np.isfinite(med).any() else (np.nan, np.nan))
            center = float(np.nanmedian(point[m])) if np.isfinite(point[m]).any() else float("nan")
            scores[m] = Score(center, float(lo), float(hi))
        out.append(CandidateScores(method, folds, scores["r"], scores["ubrmse"], scores["bias"], scores["kge"],
                                   int(np.isfinite(point["r"]).sum()), int(np.isfinite(pred).sum()), per_station))
    return out


def format_candidates(scores: list[CandidateScores]) -> str:
    """Plain-text candidate table (what the main command prints and the README quotes)."""
    head = (f"{'method':<26} {'folds':<7} {'R':>22} {'ubRMSE':>22} {'bias':>24} {'KGE':>22} {'sta':>4} {'n':>6}")
    lines = [head, "-" * len(head)]
    for s in scores:
        lines.append(f"{s.method:<26} {s.folds:<7} {str(s.r):>22} {str(s.ubrmse):>22} {str(s.bias):>24} "
                     f"{str(s.kge):>22} {s.n_stations:>4} {s.n_samples:>6}")
    lines.append("medians over stations [95 % moving-block bootstrap interval]; ubRMSE and bias in m3 m-3; "
                 "loso = leave-one-station-out, period = held-out period")
    return "\n".join(lines)
