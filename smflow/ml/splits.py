"""Splitting of samples into training, validation and test folds: one function, used everywhere.

A model never sees its test fold. Folds hold out whole stations (leave-one-station-out, the
spatial test) or whole periods (the temporal test), never random days: daily soil moisture is
autocorrelated over weeks, and a random split would score interpolation between neighbouring days
of the same station instead of prediction. The validation part a model tunes on (early stopping,
hyper-parameters, BMA weights) is the last time block of its training fold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Iterator, Literal

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Fold:
    """One evaluation fold: boolean masks over the samples.

    Attributes
    ----------
    name : str
        ``"loso:<station>"`` or ``"period:<start>..<end>"``.
    kind : {"loso", "period"}
    fit, validation, test : numpy.ndarray of bool, shape (n,)
        Disjoint: the model fits on ``fit``, tunes on ``validation`` and is scored on ``test``.
        In a LOSO fold neither ``fit`` nor ``validation`` holds a sample of the test station; in a
        period fold neither holds a day of the test period.
    """

    name: str
    kind: Literal["loso", "period"]
    fit: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    def __post_init__(self) -> None:
        if (self.fit & self.test).any() or (self.validation & self.test).any() or (self.fit & self.validation).any():
            raise ValueError(f"fold {self.name}: fit, validation and test samples overlap")


def _last_block(time: np.ndarray, mask: np.ndarray, fraction: float) -> np.ndarray:
    """The last ``fraction`` of the days (by date, not by sample) among ``mask``."""
    days = np.unique(time[mask])
    if days.size < 2:
        return np.zeros_like(mask)
    cut = days[int(np.floor((1 - fraction) * days.size))]
    return mask & (time >= cut)


def period_fold(time: np.ndarray, train: tuple[date, date], test: tuple[date, date], *,
                validation_fraction: float = 0.2) -> Fold:
    """Train on ``train`` (its last ``validation_fraction`` of days for validation), test on ``test``.

    Parameters
    ----------
    time : numpy.ndarray of datetime64, shape (n,)
        Day of each sample.
    train, test : tuple of date
        Inclusive periods; they must not overlap.
    """
    t = pd.DatetimeIndex(time)
    if not (train[1] < test[0] or test[1] < train[0]):
        raise ValueError(f"training period {train} and test period {test} overlap")
    in_train = np.asarray((t >= pd.Timestamp(train[0])) & (t <= pd.Timestamp(train[1])))
    in_test = np.asarray((t >= pd.Timestamp(test[0])) & (t <= pd.Timestamp(test[1])))
    val = _last_block(np.asarray(time), in_train, validation_fraction)
    return Fold(f"period:{test[0]}..{test[1]}", "period", in_train & ~val, val, in_test)


def loso_folds(station: np.ndarray, time: np.ndarray, *, validation_fraction: float = 0.2,
               min_test_samples: int = 30) -> Iterator[Fold]:
    """Leave-one-station-out folds: each station in turn is the test; the others fit and validate.

    Stations with fewer than ``min_test_samples`` samples are not a test fold of their own (their
    scores would be noise) but stay in the training folds of the others.
    """
    station = np.asarray(station)
    time = np.asarray(time)
    for s in sorted(set(station.tolist())):
        test = station == s
        if test.sum() < min_test_samples:
            continue
        rest = ~test
        val = _last_block(time, rest, validation_fraction)
        yield Fold(f"loso:{s}", "loso", rest & ~val, val, test)
