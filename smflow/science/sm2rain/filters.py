"""Preprocessing of the SM2RAIN inputs: soil water index filters, frozen-soil masks, block sums.

The exponential (Albergel et al. 2008) and wetness-dependent (Brocca et al. 2019, SM2RAIN-ASCAT)
filters, the frozen-soil / snow mask, and NaN-aware sums over blocks of steps (e.g. daily sums of
hourly rain).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "DEFAULT_T_BOUNDS",
    "DEFAULT_T_BOUNDS_TPOT",
    "DEFAULT_T_POT_BOUNDS",
    "SWIFilter",
    "aggregate_sums",
    "exponential_filter",
    "frozen_soil_mask",
    "mask_frozen_soil",
]

#: Bounds of the filter time constant T [days] of the IRPI reference (``calib_sm2rain_T``).
DEFAULT_T_BOUNDS: tuple[float, float] = (0.0001, 8.0)
#: Bounds of T [days] and of the wetness exponent Tpot [-] of the reference ``calib_sm2rain_Tpot``.
DEFAULT_T_BOUNDS_TPOT: tuple[float, float] = (0.05, 3.0)
DEFAULT_T_POT_BOUNDS: tuple[float, float] = (0.05, 0.75)

SWIFilter = Literal["none", "exponential", "wetness"]


def exponential_filter(
    s: ArrayLike,
    T: ArrayLike,
    *,
    dt: float = 1.0,
    T_pot: ArrayLike | None = None,
    iterations: int = 3,
) -> NDArray[np.float64]:
    """Soil water index: recursive exponential filter of a soil-moisture series, per cell.

    Parameters
    ----------
    s : array_like, shape (cells, time) or (time,)
        Relative saturation [-] (or soil moisture) at regular steps, NaN where missing.
    T : float or array_like, shape (cells,)
        Characteristic time [time unit of `dt`, days with the default ``dt=1`` for daily data];
        positive.
    dt : float, default 1.0
        Length of one step in the unit of `T`.
    T_pot : float, array_like, shape (cells,), or None
        Wetness exponent [-] of the SM2RAIN-ASCAT variant: the time constant becomes
        :math:`T\\,\\mathrm{SWI}^{-T_{pot}}` (longer memory when dry). None = constant T.
    iterations : int, default 3
        Fixed-point iterations per step of the wetness-dependent time constant (3, as the IRPI
        reference).

    Returns
    -------
    swi : numpy.ndarray, shape of `s`
        Filtered series [unit of `s`]; NaN where `s` is missing and before a cell's first value.

    Raises
    ------
    ValueError
        If `T` is not positive or the shapes do not match.

    Notes
    -----
    Recursive form of the exponential filter (Albergel et al. 2008) over the available values
    :math:`n` (gaps are skipped, the decay follows the elapsed time):

    .. math::

        \\mathrm{SWI}_n = \\mathrm{SWI}_{n-1} + K_n\\,(s_n - \\mathrm{SWI}_{n-1}),\\qquad
        K_n = \\frac{K_{n-1}}{K_{n-1} + e^{-(t_n - t_{n-1})/T}},\\qquad K_0 = 1

    which equals the exponentially weighted mean
    :math:`\\sum_{i\\le n} s_i e^{-(t_n-t_i)/T} / \\sum_{i\\le n} e^{-(t_n-t_i)/T}`; for a constant
    T common to all cells both sums are computed as first-order recursive filters along time for
    all cells at once. With `T_pot`, :math:`T_n = T\\,\\mathrm{SWI}_n^{-T_{pot}}` is iterated with
    :math:`K_n` and :math:`\\mathrm{SWI}_n` (Brocca et al. 2019; IRPI ``swi_pot_nan``).

    A run over a trailing window reproduces the full-series value to a relative weight of
    :math:`e^{-W/T}` for a window of length W: a 10 T window is exact for daily operation.

    References
    ----------
    Albergel, C. et al. (2008). From near-surface to root-zone soil moisture using an exponential
    filter. Hydrol. Earth Syst. Sci. 12, 1323-1337.
    Brocca, L. et al. (2019). SM2RAIN-ASCAT (2007-2018): global daily satellite rainfall data from
    ASCAT soil moisture observations. Earth Syst. Sci. Data 11, 1583-1601.
    """
    data = np.asarray(s, dtype=float)
    if data.ndim not in (1, 2):
        raise ValueError(f"`s` must be shaped (cells, time) or (time,), got {data.shape}.")
    one = data.ndim == 1
    if one:
        data = data[None]
    cells = data.shape[0]
    if not dt > 0:
        raise ValueError(f"`dt` must be a positive time step, got {dt!r}.")
    t = np.asarray(T, dtype=float)
    try:
        t = np.broadcast_to(t, (cells,))
    except ValueError:
        raise ValueError(f"`T` with shape {np.shape(T)} does not match the {cells} cells of `s`; pass one value "
                         "per cell or a scalar.") from None
    if np.any(np.isfinite(t) & (t <= 0)):
        raise ValueError(f"`T` must be positive, got {t[np.isfinite(t) & (t <= 0)][:3].tolist()}.")
    pot = None if T_pot is None else np.broadcast_to(np.asarray(T_pot, dtype=float), (cells,))
    if pot is None and np.ndim(T) == 0:
        out = _exponential_filter_common(data, float(t[0]), dt)
    else:
        out = _exponential_filter_loop(data, t, dt, pot, iterations)
    return out[0] if one else out


def _exponential_filter_common(data: NDArray[np.float64], T: float, dt: float) -> NDArray[np.float64]:
    from scipy.signal import lfilter

    finite = np.isfinite(data)
    decay = np.exp(-dt / T)
    numerator = lfilter([1.0], [1.0, -decay], np.where(finite, data, 0.0), axis=-1)
    denominator = lfilter([1.0], [1.0, -decay], finite.astype(float), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(finite & (denominator > 0), numerator / denominator, np.nan)


def _exponential_filter_loop(
    data: NDArray[np.float64], T: NDArray[np.float64], dt: float, T_pot: NDArray[np.float64] | None, iterations: int
) -> NDArray[np.float64]:
    """Per-cell T (and Tpot): the recursion of each row in a compiled loop."""
    from smflow.science import _kernels

    rows = np.ascontiguousarray(data, dtype=np.float64)
    T = np.ascontiguousarray(T, dtype=np.float64)
    wetness = T_pot is not None
    pot = np.ascontiguousarray(T_pot if wetness else np.zeros_like(T), dtype=np.float64)
    out = np.empty_like(rows)

    def kernel(start: int, stop: int) -> None:
        _kernels.exponential_filter_rows(rows, T, pot, wetness, float(dt), int(iterations), start, stop, out)

    _kernels.run_in_threads(kernel, rows.shape[0])
    return out


def frozen_soil_mask(
    *,
    soil_temperature: ArrayLike | None = None,
    temperature_threshold: float = 273.15,
    snow_water_equivalent: ArrayLike | None = None,
    snow_threshold: float = 1.0,
    flags: ArrayLike | None = None,
    frozen_flag_values: ArrayLike | None = None,
    frozen_flag_bits: int | None = None,
    buffer_steps: int = 0,
) -> NDArray[np.bool_]:
    """Where soil moisture cannot be inverted into rain: frozen soil or snow cover, per cell and step.

    Parameters
    ----------
    soil_temperature : array_like, shape (cells, time), optional
        Top-layer soil temperature [K] (e.g. ERA5-Land ``stl1``, GLDAS ``SoilTMP0_10cm_inst``).
        Frozen where it is at or below `temperature_threshold`.
    temperature_threshold : float, default 273.15
        Freezing threshold [K].
    snow_water_equivalent : array_like, shape (cells, time), optional
        Snow water equivalent [kg m-2] (e.g. GLDAS ``SWE_inst``); snow where it exceeds
        `snow_threshold`.
    snow_threshold : float, default 1.0
        Snow threshold [kg m-2].
    flags : array_like of int, shape (cells, time), optional
        Product flags, e.g. ASCAT ``ssf`` (2 frozen, 4 ice: ``frozen_flag_values=[2, 4]``) or the
        C3S / ESA CCI bit flag (bit value 1 = snow/frozen: ``frozen_flag_bits=1``).
    frozen_flag_values : array_like of int, optional
        Flag values that mean frozen or snow.
    frozen_flag_bits : int, optional
        Bit mask: frozen where ``flags & frozen_flag_bits`` is non-zero.
    buffer_steps : int, default 0
        Also mask this many steps after each frozen step (melt water keeps raising soil moisture
        after the thaw without rain).

    Returns
    -------
    frozen : numpy.ndarray of bool, shape (cells, time)
        True where frozen or snow-covered. Missing inputs (NaN) do not mask.

    Raises
    ------
    ValueError
        If no input is given, the shapes differ, or `flags` are given without
        `frozen_flag_values` / `frozen_flag_bits`.

    Notes
    -----
    SM2RAIN attributes every increase of soil moisture to rain. Over frozen soil the sensors see
    the dielectric drop of ice (soil moisture falls) and at the thaw the rise back, and snowmelt
    wets the soil without rain; neither reference implementation masks these periods. Pass the
    mask to :func:`sm2rain` / :func:`calibrate_sm2rain` (``frozen=``) or apply it with
    :func:`mask_frozen_soil`: the increments that touch a masked step become missing.

    References
    ----------
    Brocca, L. et al. (2019). Earth Syst. Sci. Data 11, 1583-1601 (SM2RAIN-ASCAT; frozen soil
    and snow are named as a limitation).
    """
    parts: list[NDArray[np.bool_]] = []
    with np.errstate(invalid="ignore"):
        if soil_temperature is not None:
            parts.append(np.asarray(soil_temperature, dtype=float) <= temperature_threshold)
        if snow_water_equivalent is not None:
            parts.append(np.asarray(snow_water_equivalent, dtype=float) > snow_threshold)
    if flags is not None:
        if frozen_flag_values is None and frozen_flag_bits is None:
            raise ValueError("`flags` needs `frozen_flag_values` (e.g. [2, 4] for ASCAT ssf) or "
                             "`frozen_flag_bits` (e.g. 1 for the C3S/ESA CCI snow/frozen bit).")
        raw = np.asarray(flags)
        hit = np.zeros(raw.shape, dtype=bool)
        if frozen_flag_values is not None:
            hit |= np.isin(raw, np.asarray(frozen_flag_values))
        if frozen_flag_bits is not None:
            hit |= (np.nan_to_num(raw).astype(np.int64) & int(frozen_flag_bits)) != 0
        parts.append(hit)
    if not parts:
        raise ValueError("Pass at least one of `soil_temperature`, `snow_water_equivalent` or `flags`.")
    shapes = {p.shape for p in parts}
    if len(shapes) != 1:
        raise ValueError(f"The inputs of frozen_soil_mask have different shapes {sorted(shapes)}; put them on "
                         "the same (cells, time) axis as the soil moisture.")
    frozen = np.logical_or.reduce(parts)
    if buffer_steps:
        if buffer_steps < 0:
            raise ValueError(f"`buffer_steps` must be >= 0, got {buffer_steps!r}.")
        spread = frozen.copy()
        for k in range(1, int(buffer_steps) + 1):
            spread[..., k:] |= frozen[..., :-k]
        frozen = spread
    return frozen


def mask_frozen_soil(s: ArrayLike, frozen: ArrayLike | None) -> NDArray[np.float64]:
    """``s`` with NaN where `frozen` is True (see :func:`frozen_soil_mask`); `s` itself if None.

    Raises
    ------
    ValueError
        If `frozen` does not broadcast against `s`.
    """
    data = np.asarray(s, dtype=float)
    if frozen is None:
        return data
    mask = np.asarray(frozen, dtype=bool)
    try:
        mask = np.broadcast_to(mask, data.shape)
    except ValueError:
        raise ValueError(f"`frozen` with shape {mask.shape} does not match `s` {data.shape}; build it on the "
                         "same (cells, time) axis with frozen_soil_mask().") from None
    return np.where(mask, np.nan, data)


def aggregate_sums(values: ArrayLike, steps: int, *, min_valid: int | None = None) -> NDArray[np.float64]:
    """NaN-aware sums over consecutive blocks of `steps` along the last (time) axis.

    Parameters
    ----------
    values : array_like, shape (..., time)
        E.g. hourly rainfall [mm per step]; NaN where missing.
    steps : int
        Block length (24 for daily sums of hourly data). A trailing incomplete block is dropped.
    min_valid : int, optional
        Minimum number of finite values for a block sum; blocks with fewer are NaN. Default:
        `steps` (complete blocks only). Sums of incomplete blocks are scaled by
        ``steps / n_valid`` so that they stay unbiased.

    Returns
    -------
    sums : numpy.ndarray, shape (..., time // steps)
        Block sums [unit of `values` times block].

    Raises
    ------
    ValueError
        If `steps` or `min_valid` is not a positive integer <= steps.
    """
    data = np.asarray(values, dtype=float)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"`steps` must be a positive integer, got {steps!r}.")
    need = steps if min_valid is None else min_valid
    if isinstance(need, bool) or not isinstance(need, (int, np.integer)) or not 1 <= need <= steps:
        raise ValueError(f"`min_valid` must be an integer in [1, steps={steps}], got {min_valid!r}.")
    blocks = data.shape[-1] // steps
    shaped = data[..., : blocks * steps].reshape(*data.shape[:-1], blocks, steps)
    finite = np.isfinite(shaped)
    count = finite.sum(axis=-1)
    total = np.where(finite, shaped, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = total * steps / count
    return np.where(count >= need, scaled, np.nan)
