"""Out-of-core SM2RAIN calibration: dask arrays calibrated chunk by chunk of cells.

The time axis is rechunked whole (a calibration needs every step of a cell); each chunk of cells
is calibrated in one dask task with the numba kernels single-threaded (dask runs the chunks in
parallel), and only the per-cell parameter table comes back: memory stays bounded by the chunks
in flight.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from smflow.science.sm2rain.filters import mask_frozen_soil
from smflow.science.sm2rain.model import SM2RAINParameters, _check_saturation

#: Column order of the per-cell results of a dask block.
_COLUMNS = ("Z", "a", "b", "rmse", "r", "n", "T", "T_pot", "swi_lower", "swi_upper")

#: Calibration of one numpy block of cells: (saturation, observed rain), both (cells, time).
BlockCalibration = Callable[[NDArray[np.float64], NDArray[np.float64]], SM2RAINParameters]


def is_dask(x: Any) -> bool:
    """True for a dask collection (checked by module, without importing dask)."""
    return type(x).__module__.startswith("dask")


def calibrate_dask(
    s: Any,
    p_obs: Any,
    calibrate_block: BlockCalibration,
    *,
    frozen: Any,
    chunk_cells: int,
    scheduler: str | None,
) -> SM2RAINParameters:
    """Run `calibrate_block` over chunks of `chunk_cells` cells of dask arrays.

    Parameters
    ----------
    s, p_obs : dask.array.Array, shape (cells, time)
        Relative saturation [-] in [0, 1] and observed rain [mm per step], NaN where missing.
    calibrate_block : callable
        ``(s_block, p_obs_block) -> SM2RAINParameters`` for numpy blocks shaped (cells, time).
    frozen : dask.array.Array or array_like of bool, shape (cells, time), or None
        Frozen-soil / snow mask; masked steps of `s` become missing.
    chunk_cells : int
        Cells per dask task.
    scheduler : str or None
        Dask scheduler ("threads", "processes", "synchronous"); None = dask's default.

    Returns
    -------
    SM2RAINParameters, shape (cells,)

    Raises
    ------
    ValueError
        If `s` and `p_obs` are not 2-D arrays of the same shape, or a block of `s` is outside
        [0, 1].
    """
    import dask
    import dask.array as da

    from smflow.science import _kernels

    s, p_obs = da.asarray(s), da.asarray(p_obs)
    if s.shape != p_obs.shape or s.ndim != 2:
        raise ValueError(f"`s` {s.shape} and `p_obs` {p_obs.shape} must be dask arrays of the same (cells, time) shape.")
    s = s.rechunk({0: chunk_cells, 1: -1})
    p_obs = p_obs.rechunk(s.chunks)
    args = [s, p_obs]
    if frozen is not None:
        args.append(da.asarray(frozen).rechunk(s.chunks))

    def block(sb: NDArray[np.float64], pb: NDArray[np.float64], fb: NDArray[np.bool_] | None = None) -> NDArray[np.float64]:
        data = _check_saturation(np.asarray(sb, dtype=float))
        data = mask_frozen_soil(data, fb)
        with _kernels.single_threaded():  # dask runs the chunks in parallel
            result = calibrate_block(data, np.asarray(pb, dtype=float)).to_dict(all_fields=True)
        return np.stack([np.asarray(result[c], dtype=float) for c in _COLUMNS], axis=1)

    table = da.map_blocks(block, *args, dtype=float, chunks=(s.chunks[0], (len(_COLUMNS),)))
    with dask.config.set(scheduler=scheduler) if scheduler else contextlib.nullcontext():
        values = table.compute()
    return SM2RAINParameters(**{c: values[:, k] for k, c in enumerate(_COLUMNS)})
