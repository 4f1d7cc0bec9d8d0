"""Apply a merging model (TC least squares or an ML ensemble) to gridded parents.

The one place the training (SM2RAIN is calibrated on the champion's merge) and the daily product
(:mod:`smflow.daily`) turn parents into merged soil moisture, so both see the same field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import xarray as xr

from smflow.ml.models import PARENTS


def gridded_parents(start: date, end: date, grid, parents: tuple[str, ...] = PARENTS) -> xr.Dataset:
    """Each parent's gridded daily series ``start..end`` (inclusive), ``(time, lat, lon)``.

    Soil moisture in m3 m-3; a degree of saturation (ASCAT, units ``percent`` in the catalogue) as a
    fraction in [0, 1] (a saturation feature, not a volumetric content).

    Raises
    ------
    KeyError
        A parent unknown to the catalogue.
    """
    from smflow.ingest import gridded_series
    from smflow.products import get_product

    fields = {}
    for p in parents:
        series = gridded_series(p, start, end, grid)
        fields[p] = series / 100.0 if get_product(p).units == "percent" else series
    return xr.Dataset(fields)


@dataclass(frozen=True)
class MergedWindow:
    """Merged soil moisture of a window of days, whatever the method.

    Attributes
    ----------
    soil_moisture, error_variance : numpy.ndarray, shape (cells, time)
        [m3 m-3] and [(m3 m-3)^2] (TC propagated error variance, or BMA predictive variance).
    method : numpy.ndarray of int8, shape (cells, time)
        ``merge_method`` flag (:data:`smflow.science.merging.MERGE_METHOD_FLAG_VALUES`).
    members : dict of str to numpy.ndarray, shape (cells, time)
        The ensemble members' soil moisture (empty for TC).
    """

    soil_moisture: np.ndarray
    error_variance: np.ndarray
    method: np.ndarray
    members: dict[str, np.ndarray]


def merge_window(merging, parents: xr.Dataset, static: xr.Dataset | None) -> MergedWindow:
    """Apply a merging champion to gridded parents.

    Parameters
    ----------
    merging : smflow.ml.registry.LoadedMerging
        Resolved version of ``soil_moisture_merging`` (method ``tc`` or an ML ensemble).
    parents : xr.Dataset
        One variable per parent, ``(time, lat, lon)`` [m3 m-3]. For an ML ensemble the first
        ``window - 1`` days are history only: the result covers the remaining days.
    static : xr.Dataset or None
        Static covariates ``(lat, lon)`` (ML ensembles trained with them).

    Raises
    ------
    ValueError
        The parents or covariates do not match the model's features: the message names the model
        version, the expected and the received columns.
    """
    from smflow.ml.models import merging_parameters
    from smflow.science.merging import (
        METHOD_MACHINE_LEARNING, METHOD_MACHINE_LEARNING_PARTIAL, METHOD_NO_DATA, apply_tc_merging,
    )

    if merging.method == "tc":
        # In the dataset's order, which is the model's parent order (the ``source`` dimension).
        stack = np.stack([parents[p].values for p in parents.data_vars])  # (3, time, lat, lon)
        cells = np.moveaxis(stack.reshape(3, stack.shape[1], -1), -1, -2)
        res = apply_tc_merging(merging_parameters(merging.parameters), cells)
        return MergedWindow(res.soil_moisture, res.error_variance, np.asarray(res.method, dtype=np.int8), {})

    from smflow.ml.features import feature_cube
    from smflow.ml.merging import merge_grid

    spec = merging.ensemble.spec
    received = sorted(parents.data_vars) + sorted(static.data_vars if static is not None else [])
    absent = [p for p in spec.parents if p not in parents] + [s for s in spec.static if static is None or s not in static]
    if absent:
        raise ValueError(f"{merging.ref.label()} expects features {spec.columns} from parents {list(spec.parents)} "
                         f"and covariates {list(spec.static)}; received {received} (missing {absent}): nothing published")
    flat = xr.Dataset({p: parents[p].stack(cell=("lat", "lon")).transpose("time", "cell") for p in spec.parents})
    static_flat = None if static is None else xr.Dataset(
        {k: static[k].stack(cell=("lat", "lon")) for k in spec.static})
    cube = feature_cube(flat.drop_vars(["cell", "lat", "lon"], errors="ignore"),
                        None if static_flat is None else static_flat.drop_vars(["cell", "lat", "lon"], errors="ignore"),
                        spec)
    got = merge_grid(merging.ensemble, cube.values)
    present = np.stack([np.isfinite(flat[p].values[spec.window - 1:]) for p in spec.parents])
    method = np.where(present.all(axis=0), METHOD_MACHINE_LEARNING, METHOD_MACHINE_LEARNING_PARTIAL)
    method = np.where(got.no_parent, METHOD_NO_DATA, method).astype(np.int8)
    return MergedWindow(got.soil_moisture.T, got.variance.T, method.T, {k: v.T for k, v in got.members.items()})


def champion_merged_series(start: date, end: date, grid, model: str | None = None) -> tuple[np.ndarray, Any]:
    """The merging champion applied to the gridded parents of ``start..end``: (time, lat, lon) [m3 m-3].

    What SM2RAIN is calibrated on (the same merged product the daily task makes). The sequence
    models read ``window - 1`` days of history before ``start``. ``model``: the registered merging
    model whose champion is applied (default ``soil_moisture_merging``).
    """
    from smflow.ml.features import load_static_covariates
    from smflow.ml.registry import champion_ref, load_merging, load_merging_champion

    merging = load_merging_champion() if model is None else load_merging(champion_ref(model))
    history = 0 if merging.method == "tc" else merging.ensemble.spec.window - 1
    parents = gridded_parents(start - timedelta(days=history), end, grid)
    static = load_static_covariates(grid) if merging.method != "tc" and merging.ensemble.spec.static else None
    merged = merge_window(merging, parents, static).soil_moisture  # (cells, time)
    return np.moveaxis(merged, -1, 0).reshape(-1, *grid.shape), merging.ref


