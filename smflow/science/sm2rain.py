"""SM2RAIN: rainfall from soil-moisture increments (inverted soil-water balance), vectorised over cells.

Zhang et al. 2022, Eqs. 1-2, in the discrete form of Brocca et al. (2013/2014) with the loss term
averaged over the step. Calibration (:func:`calibrate_sm2rain`) is exact in (Z, a) for each value of
b -- the model is linear in (Z, a) once the steps with positive rain are known -- and searches b on
a log-spaced grid, refined per cell. The daily calibration and the per-cell SWI filter run as
compiled per-cell loops (:mod:`smflow.science._kernels`, numba), the rest is vectorised numpy.

Units: ``s`` is the relative saturation [-] in [0, 1]; ``Z`` the soil water capacity [mm]; ``a``
the loss rate at saturation [mm per unit of time of ``dt``] (mm/day with the default ``dt=1`` day);
``b`` the loss exponent [-]; rainfall is a depth per time step [mm] (= kg m-2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "SM2RAINParameters",
    "aggregate_sums",
    "apply_sm2rain",
    "calibrate_sm2rain",
    "exponential_filter",
    "freeze_swi_bounds",
    "frozen_soil_mask",
    "mask_frozen_soil",
    "regionalise",
    "relative_saturation",
    "saturation_bounds",
    "sm2rain",
]

Objective = Literal["rmse", "kge", "nse"]
Method = Literal["auto", "fast", "exact"]

#: Parameter bounds of the SM2RAIN reference implementation (IRPI) for daily time steps:
#: Z [mm], a [mm/day], b [-].
DEFAULT_Z_BOUNDS: tuple[float, float] = (1.0, 800.0)
DEFAULT_A_BOUNDS: tuple[float, float] = (0.0, 200.0)
DEFAULT_B_BOUNDS: tuple[float, float] = (0.01, 50.0)

_EARTH_RADIUS_KM = 6371.0088

#: Optional fields of :class:`SM2RAINParameters` (the SM2RAIN-ASCAT soil-water-index filter).
_FILTER_FIELDS = ("T", "T_pot", "swi_lower", "swi_upper")


@dataclass(frozen=True)
class SM2RAINParameters:
    """SM2RAIN parameters and calibration skill per cell.

    Attributes
    ----------
    Z : numpy.ndarray, shape (cells,)
        Soil water capacity (layer depth times porosity) [mm].
    a : numpy.ndarray, shape (cells,)
        Loss rate at saturation [mm per unit of time of the ``dt`` used in calibration; mm/day by
        default].
    b : numpy.ndarray, shape (cells,)
        Loss exponent [-].
    rmse : numpy.ndarray, shape (cells,)
        RMSE of the (aggregated) simulated rainfall against the observations of the calibration
        [mm per aggregated step]; NaN when not calibrated (e.g. regionalised).
    r : numpy.ndarray, shape (cells,)
        Pearson correlation of the same series [-]; NaN when not calibrated.
    n : numpy.ndarray of int, shape (cells,)
        Number of (aggregated) samples the calibration used; 0 when not calibrated.
    T : numpy.ndarray, shape (cells,), optional
        Time constant of the soil-water-index filter [time unit of ``dt``, days for daily data]
        of the SM2RAIN-ASCAT variants; NaN (the default) = no filter.
    T_pot : numpy.ndarray, shape (cells,), optional
        Wetness exponent of the filter time constant ``T SWI^-T_pot`` [-]; NaN = constant T.
    swi_lower, swi_upper : numpy.ndarray, shape (cells,), optional
        Min-max bounds of the filtered series frozen from the calibration period [unit of the
        input saturation]; NaN when there is no filter.
    """

    Z: NDArray[np.float64]
    a: NDArray[np.float64]
    b: NDArray[np.float64]
    rmse: NDArray[np.float64]
    r: NDArray[np.float64]
    n: NDArray[np.int64]
    T: NDArray[np.float64] | None = None
    T_pot: NDArray[np.float64] | None = None
    swi_lower: NDArray[np.float64] | None = None
    swi_upper: NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        shape = np.shape(self.Z)
        for f in fields(self):
            if getattr(self, f.name) is None:
                object.__setattr__(self, f.name, np.full(shape, np.nan))
            value = np.asarray(getattr(self, f.name))
            if f.name == "n":
                value = np.where(np.isfinite(value.astype(float)), value, 0).astype(np.int64)
            else:
                value = value.astype(np.float64)
            if value.shape != shape:
                raise ValueError(
                    f"SM2RAINParameters.{f.name} has shape {value.shape} but Z has {shape}; all fields "
                    "must share the cell shape."
                )
            object.__setattr__(self, f.name, value)

    def to_dict(self, *, all_fields: bool = False) -> dict[str, NDArray[Any]]:
        """Plain mapping of field name to array (``numpy.savez`` friendly).

        The filter fields (``T``, ``T_pot``, ``swi_lower``, ``swi_upper``) are included only where
        set (not all NaN) unless `all_fields` is True.
        """
        out = {}
        for f in fields(self):
            value = np.array(getattr(self, f.name))
            if all_fields or f.name not in _FILTER_FIELDS or np.isfinite(value).any():
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, ArrayLike]) -> SM2RAINParameters:
        """Rebuild from :meth:`to_dict` output, an ``NpzFile`` or lists.

        ``Z``, ``a`` and ``b`` are required; missing ``rmse``/``r`` become NaN and ``n`` 0 (e.g. a
        parameter set from elsewhere). Unknown keys are ignored.

        Raises
        ------
        ValueError
            If ``Z``, ``a`` or ``b`` is missing or the shapes differ.
        """
        missing = [name for name in ("Z", "a", "b") if name not in data]
        if missing:
            raise ValueError(
                f"SM2RAINParameters.from_dict: missing {missing}; pass the mapping written by "
                "SM2RAINParameters.to_dict()."
            )
        z = np.asarray(data["Z"], dtype=float)
        return cls(
            Z=z,
            a=np.asarray(data["a"]),
            b=np.asarray(data["b"]),
            rmse=np.asarray(data["rmse"]) if "rmse" in data else np.full(z.shape, np.nan),
            r=np.asarray(data["r"]) if "r" in data else np.full(z.shape, np.nan),
            n=np.asarray(data["n"]) if "n" in data else np.zeros(z.shape, dtype=np.int64),
            **{k: np.asarray(data[k], dtype=float) for k in _FILTER_FIELDS if k in data},
        )


def _bounds_like(bound: ArrayLike, theta: NDArray[np.float64]) -> NDArray[np.float64]:
    value = np.asarray(bound, dtype=float)
    # One value per cell for (cells, time) data: add the time axis.
    if theta.ndim >= 1 and value.ndim == theta.ndim - 1 and value.shape == theta.shape[:-1]:
        value = value[..., None]
    return value


def saturation_bounds(
    theta: ArrayLike, *, lower_quantile: float = 0.0, upper_quantile: float = 1.0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-cell lower and upper soil-moisture bounds over the last (time) axis.

    Parameters
    ----------
    theta : array_like, shape (cells, time)
        Soil moisture [m3 m-3], NaN where missing.
    lower_quantile, upper_quantile : float, default 0 and 1
        Quantiles taken as the bounds (0 and 1 = min-max; e.g. 0.01 and 0.99 resist outliers).

    Returns
    -------
    lower, upper : numpy.ndarray, shape (cells,)
        Bounds [m3 m-3]; NaN where a cell has no data. Freeze them from the calibration period and
        pass them to :func:`relative_saturation`.

    Raises
    ------
    ValueError
        If the quantiles are not ``0 <= lower_quantile < upper_quantile <= 1``.
    """
    if not 0.0 <= lower_quantile < upper_quantile <= 1.0:
        raise ValueError(
            f"Need 0 <= lower_quantile < upper_quantile <= 1, got {lower_quantile!r}, {upper_quantile!r}."
        )
    data = np.asarray(theta, dtype=float)
    finite = np.isfinite(data)
    if lower_quantile == 0.0 and upper_quantile == 1.0:
        # Min-max: the same order statistics without sorting.
        has = finite.any(axis=-1)
        lower = np.where(has, np.where(finite, data, np.inf).min(axis=-1), np.nan)
        upper = np.where(has, np.where(finite, data, -np.inf).max(axis=-1), np.nan)
        return lower, upper
    # Sort with NaN last, then pick the order statistics of the finite values (no warnings, no loop).
    ordered = np.sort(np.where(finite, data, np.inf), axis=-1)
    n = finite.sum(axis=-1)
    out = []
    for q in (lower_quantile, upper_quantile):
        position = q * np.maximum(n - 1, 0)
        below = np.floor(position).astype(int)
        above = np.minimum(below + 1, np.maximum(n - 1, 0))
        frac = position - below
        lo = np.take_along_axis(ordered, below[..., None], axis=-1)[..., 0]
        hi = np.take_along_axis(ordered, above[..., None], axis=-1)[..., 0]
        with np.errstate(invalid="ignore"):
            value = lo + frac * (hi - lo)
        out.append(np.where(n > 0, value, np.nan))
    return out[0], out[1]


def relative_saturation(theta: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> NDArray[np.float64]:
    """Relative saturation (degree of saturation) by min-max scaling with frozen bounds.

    Parameters
    ----------
    theta : array_like, shape (cells, time) or any shape
        Soil moisture [m3 m-3], NaN where missing.
    lower, upper : array_like
        Bounds [m3 m-3] (e.g. from :func:`saturation_bounds` on the calibration period). Shaped
        ``(cells,)`` for ``(cells, time)`` data (one pair per cell), or anything that broadcasts
        against `theta` (e.g. ``lower[:, None]``, ``lower[None]`` for ``(time, lat, lon)``).

    Returns
    -------
    s : numpy.ndarray, shape of `theta`
        Relative saturation [-], clipped to [0, 1]; NaN where `theta` or a bound is missing or the
        bounds are not increasing.

    Raises
    ------
    ValueError
        If the bounds do not broadcast against `theta`.

    Notes
    -----
    .. math:: s = \\min\\left(1, \\max\\left(0, \\frac{\\theta - \\theta_{low}}
              {\\theta_{up} - \\theta_{low}}\\right)\\right)

    SM2RAIN needs the saturation :math:`s` (Zhang et al. 2022, Eq. 2); scaling with bounds frozen at
    calibration keeps :math:`Z` and :math:`a` meaningful at application time.

    References
    ----------
    Zhang, Hou & Huang 2022, Remote Sens. 14, 5355, Sect. 3.2; Wang & Xu 2021 (min-max
    normalisation); Brocca et al. 2014, J. Geophys. Res. Atmos. 119, 5128-5141.
    """
    data = np.asarray(theta, dtype=float)
    lo = _bounds_like(lower, data)
    up = _bounds_like(upper, data)
    try:
        np.broadcast_shapes(data.shape, lo.shape, up.shape)
    except ValueError:
        raise ValueError(
            f"Bounds with shapes {np.shape(lower)} / {np.shape(upper)} do not broadcast against theta "
            f"{data.shape}; pass one bound per cell, shaped (cells,), for theta shaped (cells, time)."
        ) from None
    with np.errstate(invalid="ignore", divide="ignore"):
        span = np.where(up > lo, up - lo, np.nan)
        s = (data - lo) / span
    return np.clip(s, 0.0, 1.0)


def _parameter(value: ArrayLike, name: str, cells: tuple[int, ...], *, positive: bool) -> NDArray[np.float64]:
    p = np.asarray(value, dtype=float)
    try:
        p = np.broadcast_to(p, cells)
    except ValueError:
        raise ValueError(
            f"`{name}` with shape {p.shape} does not match the {cells} cells of `s`; pass one value per "
            "cell (or a scalar)."
        ) from None
    bad = np.isfinite(p) & ((p <= 0) if positive else (p < 0))
    if bad.any():
        rule = "positive" if positive else "non-negative"
        raise ValueError(f"`{name}` must be {rule}; got {p[bad].ravel()[:3].tolist()}.")
    return p


def _check_saturation(s: ArrayLike) -> NDArray[np.float64]:
    data = np.asarray(s, dtype=float)
    if data.ndim not in (1, 2):
        raise ValueError(f"`s` must be shaped (cells, time) or (time,), got {data.shape}.")
    from smflow.science import _kernels

    count, low, high = _kernels.finite_range(np.ascontiguousarray(data))
    if count and (low < 0.0 or high > 1.0):
        raise ValueError(
            f"`s` must be a relative saturation in [0, 1], got values in [{low:.4g}, "
            f"{high:.4g}]; convert soil moisture with relative_saturation(theta, lower, upper)."
        )
    return data


def sm2rain(
    s: ArrayLike,
    Z: ArrayLike,
    a: ArrayLike,
    b: ArrayLike,
    *,
    dt: float = 1.0,
    delta_s_threshold: float | None = None,
    frozen: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Rainfall from consecutive relative-saturation values (SM2RAIN forward model).

    Parameters
    ----------
    s : array_like, shape (cells, time) or (time,)
        Relative saturation [-] in [0, 1] at regular time steps, NaN where missing.
    Z : array_like, shape (cells,) or scalar
        Soil water capacity [mm]; positive. NaN gives NaN rainfall for the cell.
    a : array_like, shape (cells,) or scalar
        Loss rate at saturation [mm per unit of time of `dt`]; non-negative.
    b : array_like, shape (cells,) or scalar
        Loss exponent [-]; positive.
    dt : float, default 1.0
        Length of one time step in the time unit of `a` (1 for daily steps with `a` in mm/day,
        1/24 for hourly steps with `a` in mm/day).
    delta_s_threshold : float or None, default None
        If given, rainfall is set to 0 wherever :math:`s_t - s_{t-1}` does not exceed it (the IRPI
        reference code uses 0.005 on hourly data to suppress noise).
    frozen : array_like of bool, shape of `s`, optional
        Frozen-soil / snow mask (:func:`frozen_soil_mask`): rainfall is NaN for every step that
        starts or ends on a masked value.

    Returns
    -------
    precipitation : numpy.ndarray, shape of `s`
        Rainfall depth that fell during the step ending at each time [mm per step], >= 0; NaN for
        the first step and wherever :math:`s_t` or :math:`s_{t-1}` is missing.

    Raises
    ------
    ValueError
        If `s` is not 1-D/2-D or outside [0, 1], a parameter has the wrong shape or sign, or `dt`
        is not positive.

    Notes
    -----
    Discrete form of Zhang et al. 2022, Eq. 2 (Brocca et al. 2013, 2014), with the loss term
    :math:`a s^b` averaged over the step (trapezoidal rule):

    .. math::

        P_t = \\max\\left(0,\\; Z\\,(s_t - s_{t-1})
              + a\\,\\Delta t\\,\\frac{s_t^b + s_{t-1}^b}{2}\\right)

    Negative estimates are set to zero (Zhang et al. 2022, Sect. 3.2).

    References
    ----------
    Zhang, Hou & Huang 2022, Remote Sens. 14, 5355, Eqs. 1-2.
    Brocca, L. et al. (2013). A new method for rainfall estimation through soil moisture
    observations. Geophys. Res. Lett. 40, 853-858.
    """
    data = mask_frozen_soil(_check_saturation(s), frozen)
    if not dt > 0:
        raise ValueError(f"`dt` must be a positive time step, got {dt!r}.")
    if delta_s_threshold is not None and not np.isfinite(delta_s_threshold):
        raise ValueError(f"`delta_s_threshold` must be a finite number or None, got {delta_s_threshold!r}.")
    cells = data.shape[:-1]
    z = _parameter(Z, "Z", cells, positive=True)[..., None]
    loss_rate = _parameter(a, "a", cells, positive=False)[..., None]
    exponent = _parameter(b, "b", cells, positive=True)[..., None]
    now, previous = data[..., 1:], data[..., :-1]
    ds = now - previous
    with np.errstate(invalid="ignore", over="ignore"):
        rain = z * ds + loss_rate * dt * 0.5 * (now**exponent + previous**exponent)
        rain = np.maximum(rain, 0.0)  # NaN propagates
        if delta_s_threshold is not None:
            rain = np.where(ds > delta_s_threshold, rain, np.where(np.isnan(rain), np.nan, 0.0))
    out = np.full(data.shape, np.nan)
    out[..., 1:] = rain
    return out


# --------------------------------------------------------------------------------------------------
# Soil water index filters of SM2RAIN-ASCAT, frozen-soil masking, aggregation
# --------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------------


class _CalibrationProblem:
    """Aggregated design of the SM2RAIN calibration for all cells; evaluates one b per cell."""

    def __init__(
        self,
        s: NDArray[np.float64],
        p_obs: NDArray[np.float64],
        *,
        dt: float,
        aggregation: int,
        delta_s_threshold: float | None,
        z_bounds: tuple[float, float],
        a_bounds: tuple[float, float],
        objective: Objective,
        max_active_set_iterations: int,
    ) -> None:
        now, previous = s[:, 1:], s[:, :-1]
        obs = p_obs[:, 1:]
        steps = now.shape[1]
        self.blocks = steps // aggregation
        self.aggregation = aggregation
        used = self.blocks * aggregation
        now, previous, obs = now[:, :used], previous[:, :used], obs[:, :used]
        valid_step = np.isfinite(now) & np.isfinite(previous) & np.isfinite(obs)
        self.valid = self._block(valid_step.astype(float)) == aggregation  # whole blocks only
        self.n = self.valid.sum(axis=1)
        # s^b is computed once on the whole series (t = 0 .. used) and sliced into now/previous.
        self.saturation = np.nan_to_num(s[:, : used + 1], nan=0.0)
        self.ds = np.where(valid_step, now - previous, 0.0)
        if delta_s_threshold is None:
            self.event = valid_step
            self.fixed_active_set = False
        else:
            # With a non-negative threshold the rain is positive wherever it is allowed: exact LS.
            self.event = valid_step & (self.ds > delta_s_threshold)
            self.fixed_active_set = delta_s_threshold >= 0
        self.y = np.where(self.valid, self._block(np.where(valid_step, obs, 0.0)), 0.0)
        self.dt = dt
        self.z_bounds = z_bounds
        self.a_bounds = a_bounds
        self.objective = objective
        self.iterations = 1 if self.fixed_active_set else max_active_set_iterations
        n = np.maximum(self.n, 1)
        self.obs_mean = self.y.sum(1) / n
        self.obs_var = (np.where(self.valid, self.y - self.obs_mean[:, None], 0.0) ** 2).sum(1) / n

    def _block(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        return values.reshape(values.shape[0], self.blocks, self.aggregation).sum(axis=2)

    def loss_term(self, b: NDArray[np.float64]) -> NDArray[np.float64]:
        with np.errstate(over="ignore", under="ignore"):
            power = self.saturation ** b[:, None]
        return (0.5 * self.dt) * (power[:, 1:] + power[:, :-1])

    def simulate(
        self, z: NDArray[np.float64], a: NDArray[np.float64], g: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Aggregated clipped rainfall, and the unclipped rainfall of every step."""
        raw = z[:, None] * self.ds + a[:, None] * g
        step = np.where(self.event, np.maximum(raw, 0.0), 0.0)
        return self._block(step), raw

    def score(self, sim: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Objective to minimise (MSE or 1 - KGE) and the KGE-optimal scale of (Z, a)."""
        n = np.maximum(self.n, 1)
        residual = np.where(self.valid, sim - self.y, 0.0)
        mse = (residual**2).sum(1) / n
        if self.objective == "rmse":
            return mse, np.ones_like(mse)
        sim_mean = np.where(self.valid, sim, 0.0).sum(1) / n
        ds = np.where(self.valid, sim - sim_mean[:, None], 0.0)
        do = np.where(self.valid, self.y - self.obs_mean[:, None], 0.0)
        sim_var = (ds**2).sum(1) / n
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (ds * do).sum(1) / np.sqrt(sim_var * self.obs_var) / n
            alpha = np.sqrt(sim_var / self.obs_var)
            beta = sim_mean / self.obs_mean
            distance = np.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2)
            # Scaling (Z, a) by c > 0 scales the clipped rainfall by c: KGE's alpha and beta scale,
            # r does not, so the best c minimises (c alpha - 1)^2 + (c beta - 1)^2.
            scale = (alpha + beta) / (alpha**2 + beta**2)
        return np.where(np.isfinite(distance), distance, np.inf), np.where(np.isfinite(scale), scale, 1.0)

    def solve(self, b: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
        """Best (Z, a) for one b per cell; returns objective, Z, a."""
        g = self.loss_term(b)
        active = self.event & (self.ds > 0)
        if self.fixed_active_set:
            active = self.event
        best = np.full(b.shape, np.inf)
        best_z = np.full(b.shape, np.nan)
        best_a = np.full(b.shape, np.nan)
        for _ in range(self.iterations):
            x1 = np.where(self.valid, self._block(np.where(active, self.ds, 0.0)), 0.0)
            x2 = np.where(self.valid, self._block(np.where(active, g, 0.0)), 0.0)
            z, a = _box_least_squares(
                (x1 * x1).sum(1), (x1 * x2).sum(1), (x2 * x2).sum(1),
                (x1 * self.y).sum(1), (x2 * self.y).sum(1),
                self.z_bounds, self.a_bounds,
            )
            sim, raw = self.simulate(z, a, g)
            value, scale = self.score(sim)
            if self.objective == "kge":
                z = np.clip(z * scale, *self.z_bounds)
                a = np.clip(a * scale, *self.a_bounds)
                sim, raw = self.simulate(z, a, g)
                value, _ = self.score(sim)
            better = value < best
            best = np.where(better, value, best)
            best_z = np.where(better, z, best_z)
            best_a = np.where(better, a, best_a)
            new_active = self.event & (raw > 0)
            if np.array_equal(new_active, active):
                break
            active = new_active
        return best, best_z, best_a


def _box_least_squares(
    s11: NDArray[np.float64],
    s12: NDArray[np.float64],
    s22: NDArray[np.float64],
    t1: NDArray[np.float64],
    t2: NDArray[np.float64],
    z_bounds: tuple[float, float],
    a_bounds: tuple[float, float],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Minimise ``|X theta - y|^2`` over the box, per cell, from the normal-equation sums.

    The objective is a convex quadratic, so the minimum is the unconstrained solution if it is
    feasible, otherwise it lies on an edge, where it is the clipped 1-D minimiser. Evaluating these
    five candidates is exact (no iteration).
    """
    (z_lo, z_hi), (a_lo, a_hi) = z_bounds, a_bounds

    def objective(z: NDArray[np.float64], a: NDArray[np.float64]) -> NDArray[np.float64]:
        return s11 * z * z + 2 * s12 * z * a + s22 * a * a - 2 * (t1 * z + t2 * a)

    with np.errstate(invalid="ignore", divide="ignore"):
        det = s11 * s22 - s12 * s12
        z_free = (s22 * t1 - s12 * t2) / det
        a_free = (s11 * t2 - s12 * t1) / det
        interior = (det > 1e-12 * s11 * s22) & (z_free >= z_lo) & (z_free <= z_hi) & (a_free >= a_lo) & (a_free <= a_hi)
        candidates = [(np.where(interior, z_free, z_lo), np.where(interior, a_free, a_lo))]
        for z_fixed in (z_lo, z_hi):
            a_best = np.clip(np.where(s22 > 0, (t2 - s12 * z_fixed) / s22, a_lo), a_lo, a_hi)
            candidates.append((np.full_like(s11, z_fixed), a_best))
        for a_fixed in (a_lo, a_hi):
            z_best = np.clip(np.where(s11 > 0, (t1 - s12 * a_fixed) / s11, z_lo), z_lo, z_hi)
            candidates.append((z_best, np.full_like(s11, a_fixed)))
        values = np.stack([objective(z, a) for z, a in candidates])
    values = np.where(np.isfinite(values), values, np.inf)
    pick = np.argmin(values, axis=0)
    z = np.choose(pick, [c[0] for c in candidates])
    a = np.choose(pick, [c[1] for c in candidates])
    return z, a


class _BestFit:
    """Running per-cell best (objective, Z, a, b) over the values of b tried."""

    def __init__(self, cells: int) -> None:
        self.value = np.full(cells, np.inf)
        self.z = np.full(cells, np.nan)
        self.a = np.full(cells, np.nan)
        self.b = np.full(cells, np.nan)

    def offer(
        self, value: NDArray[np.float64], z: NDArray[np.float64], a: NDArray[np.float64], b: NDArray[np.float64]
    ) -> None:
        better = value < self.value
        self.value = np.where(better, value, self.value)
        self.z = np.where(better, z, self.z)
        self.a = np.where(better, a, self.a)
        self.b = np.where(better, b, self.b)


# --------------------------------------------------------------------------------------------------
# Fast daily calibration: histogram search of b, then Gauss-Newton passes under the clipping
# --------------------------------------------------------------------------------------------------

def _rowdot(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.einsum("ij,ij->i", x, y)


@dataclass
class _Fit:
    """Per-cell state of a fit: parameters, objective and the sums the skill scores need."""

    value: NDArray[np.float64]
    z: NDArray[np.float64]
    a: NDArray[np.float64]
    b: NDArray[np.float64]
    sum_sim: NDArray[np.float64]
    sum_sim2: NDArray[np.float64]
    sum_simy: NDArray[np.float64]

    @classmethod
    def empty(cls, cells: int) -> _Fit:
        nan = np.full(cells, np.nan)
        return cls(np.full(cells, np.inf), nan.copy(), nan.copy(), nan.copy(), nan.copy(), nan.copy(), nan.copy())

    def offer(self, other: _Fit) -> NDArray[np.bool_]:
        better = other.value < self.value
        for name in ("value", "z", "a", "b", "sum_sim", "sum_sim2", "sum_simy"):
            setattr(self, name, np.where(better, getattr(other, name), getattr(self, name)))
        return better


#: Saturation nodes of the histogram stage of the daily calibration.
_DAILY_BINS = 512


def _calibrate_daily(
    s: NDArray[np.float64],
    p_obs: NDArray[np.float64],
    *,
    dt: float,
    delta_s_threshold: float | None,
    objective: str,
    z_bounds: tuple[float, float],
    a_bounds: tuple[float, float],
    b_bounds: tuple[float, float],
    grid: NDArray[np.float64],
    refine: bool,
    passes: int,
    n_bins: int = _DAILY_BINS,
) -> tuple[_Fit, NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """SM2RAIN calibration without aggregation (one step = one comparison), cell by cell in a
    compiled kernel (:func:`smflow.science._kernels.sm2rain_daily`).

    For a fixed set ``A`` of steps with positive rain, the model is linear in (Z, a) and all the
    normal-equation sums are sums of powers of the saturation: with ``g_t = dt (s_t^b + s_{t-1}^b)/2``,

    ``sum_A ds g = dt/2 sum_tau W^ds_tau s_tau^b``,  ``sum_A g y = dt/2 sum_tau W^y_tau s_tau^b``,
    ``sum_A g^2 = dt^2/4 [sum_tau W^1_tau s_tau^(2b) + 2 sum_A (s_t s_{t-1})^b]``,

    where the weights ``W`` collect the steps in which ``s_tau`` is the new or the previous value.
    Binning ``s_tau`` (and ``s_t s_{t-1}``) on a fixed grid of nodes turns every sum, for every b,
    into a product of the cell's histogram with a node-by-b table: one pass over the data gives the
    objective for a whole grid of b. The best grid value is refined by a parabola in log b, then
    by exact passes over the series that fit (Z, a) under the box bounds, score the clipped model,
    update ``A`` (the clipping at zero; a first pass re-runs the histogram search on its ``A``) and
    take a Gauss-Newton step in b (doubled, up to 8x, while successive steps improve in the same
    direction: optima on a bound). ``log s`` is taken once per cell; each pass costs one ``exp``
    per time step.

    Returns the best fit, the sample size, and the sums of the observations and of their squares
    on the valid steps (for R).
    """
    from smflow.science import _kernels

    cells = s.shape[0]
    nodes = np.arange(n_bins + 1) / n_bins
    with np.errstate(divide="ignore"):
        log_nodes = np.maximum(np.log(nodes), _kernels.LOG_ZERO)
    grid = np.ascontiguousarray(grid, dtype=np.float64)
    power = np.exp(grid[:, None] * log_nodes[None, :])  # (b, nodes)
    bounds = np.array([*z_bounds, *a_bounds, *b_bounds], dtype=np.float64)
    code = _kernels.OBJECTIVE_KGE if objective == "kge" else _kernels.OBJECTIVE_RMSE
    data = np.ascontiguousarray(s, dtype=np.float64)
    obs = np.ascontiguousarray(p_obs, dtype=np.float64)
    out = np.empty((cells, 10))
    has_threshold = delta_s_threshold is not None
    threshold = float(delta_s_threshold) if has_threshold else 0.0

    def kernel(start: int, stop: int) -> None:
        # log s by numpy's vectorised log (libm's scalar log in the kernel cost ~15 us per cell), a
        # block of cells at a time into one reused buffer (fresh megabyte temporaries cost more
        # than the log: every page is mapped on first touch)
        buffer = np.empty((min(64, stop - start), data.shape[1]))
        for first in range(start, stop, 64):
            rows = slice(first, min(first + 64, stop))
            log_s = buffer[: rows.stop - first]
            np.fmax(data[rows], 0.0, out=log_s)
            with np.errstate(divide="ignore"):
                np.log(log_s, out=log_s)
            _kernels.sm2rain_daily(data[rows], log_s, obs[rows], 0, rows.stop - first, float(dt), has_threshold,
                                   threshold, code, bounds, grid, power, log_nodes, bool(refine), int(passes),
                                   out[rows])

    _kernels.run_in_threads(kernel, cells)
    fit = _Fit(*(np.ascontiguousarray(out[:, k]) for k in range(7)))
    return fit, out[:, 7].astype(np.int64), out[:, 8].copy(), out[:, 9].copy()


def _golden_section(
    f: Any, lo: NDArray[np.float64], hi: NDArray[np.float64], *, iterations: int
) -> NDArray[np.float64]:
    """Per-cell golden-section minimisation of ``f`` (vectorised over cells) on [lo, hi]."""
    golden = (np.sqrt(5.0) - 1.0) / 2.0
    c, d = hi - golden * (hi - lo), lo + golden * (hi - lo)
    fc, fd = f(c), f(d)
    best_x, best_f = np.where(fc < fd, c, d), np.minimum(fc, fd)
    for _ in range(iterations):
        left = fc < fd
        lo, hi = np.where(left, lo, c), np.where(left, d, hi)
        new = np.where(left, hi - golden * (hi - lo), lo + golden * (hi - lo))
        f_new = f(new)
        improved = f_new < best_f
        best_x, best_f = np.where(improved, new, best_x), np.where(improved, f_new, best_f)
        c, d = np.where(left, new, d), np.where(left, c, new)
        fc, fd = np.where(left, f_new, fd), np.where(left, fc, f_new)
        if np.all(hi - lo < 1e-7):
            break
    return best_x


def _check_bounds(name: str, bounds: tuple[float, float], *, minimum: float, strict: bool) -> tuple[float, float]:
    lo, hi = (float(v) for v in bounds)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi) or (lo <= minimum if strict else lo < minimum):
        rule = f"> {minimum}" if strict else f">= {minimum}"
        raise ValueError(f"`{name}` must be finite (low, high) with low < high and low {rule}, got {bounds!r}.")
    return lo, hi


def calibrate_sm2rain(
    s: ArrayLike,
    p_obs: ArrayLike,
    *,
    dt: float = 1.0,
    aggregation: int = 1,
    delta_s_threshold: float | None = None,
    objective: Objective = "rmse",
    z_bounds: tuple[float, float] = DEFAULT_Z_BOUNDS,
    a_bounds: tuple[float, float] = DEFAULT_A_BOUNDS,
    b_bounds: tuple[float, float] = DEFAULT_B_BOUNDS,
    b_grid: ArrayLike | None = None,
    refine: bool = True,
    min_samples: int = 30,
    max_active_set_iterations: int = 8,
    method: Method = "auto",
    newton_passes: int = 4,
    swi_filter: SWIFilter = "none",
    T_bounds: tuple[float, float] | None = None,
    T_grid: ArrayLike | None = None,
    T_pot_bounds: tuple[float, float] = DEFAULT_T_POT_BOUNDS,
    T_pot_grid: ArrayLike | None = None,
    frozen: ArrayLike | None = None,
    chunk_cells: int | None = None,
    scheduler: str | None = None,
) -> SM2RAINParameters:
    """Calibrate SM2RAIN parameters (Z, a, b, and optionally the filter T, Tpot) per cell.

    Parameters
    ----------
    s : array_like or dask array, shape (cells, time) or (time,)
        Relative saturation [-] in [0, 1], NaN where missing. A dask array is calibrated chunk by
        chunk of cells (the time axis is rechunked whole), with bounded memory.
    p_obs : array_like or dask array, same shape as `s`
        Observed rainfall during the step ending at each time [mm per step], NaN where missing
        (``p_obs[..., t]`` is compared with ``sm2rain(s, ...)[..., t]``).
    dt : float, default 1.0
        Step length in the time unit of `a` (see :func:`sm2rain`) and of `T`.
    aggregation : int, default 1
        Number of consecutive steps summed before comparing (24 for daily sums of hourly data).
        Blocks start at the second step (the first has no previous saturation); only complete
        blocks where every step is finite count.
    delta_s_threshold : float or None, default None
        As in :func:`sm2rain`; calibrate with the threshold you will apply.
    objective : {"rmse", "nse", "kge"}, default "rmse"
        Minimise the RMSE of the aggregated rainfall (as Zhang et al. 2022 and the IRPI code);
        "nse" maximises the Nash-Sutcliffe efficiency, which has the same optimum per cell; "kge"
        maximises the KGE (Gupta et al. 2009).
    z_bounds : (float, float), default (1, 800)
        Bounds of Z [mm].
    a_bounds : (float, float), default (0, 200)
        Bounds of a [mm per unit of time of `dt`].
    b_bounds : (float, float), default (0.01, 50)
        Bounds of b [-]. (The IRPI MATLAB reference for hourly data uses Z in [1, 200],
        a in [0, 1800] mm/h and b in [1, 150].)
    b_grid : array_like or None
        Values of b searched for every cell; default 48 log-spaced values spanning `b_bounds`.
    refine : bool, default True
        Refine b per cell beyond the grid (golden-section search, then Gauss-Newton passes).
    min_samples : int, default 30
        Minimum number of aggregated samples; cells with fewer get NaN parameters.
    max_active_set_iterations : int, default 8
        ``method="exact"``: re-solutions of (Z, a) on the steps with positive rain (the clipping
        ``max(0, .)`` makes the model piecewise linear) until that set stops changing.
    method : {"auto", "fast", "exact"}, default "auto"
        "fast" (daily comparison, ``aggregation=1`` only): one histogram pass gives the objective
        for the whole b grid, then `newton_passes` exact Gauss-Newton passes refine (Z, a, b) under
        the clipping. "exact": every b tried is evaluated on the full series (any aggregation).
        "auto" = "fast" for ``aggregation=1``, else "exact".
    newton_passes : int, default 4
        ``method="fast"``: exact passes over the series (each one fits (Z, a) at the current b,
        scores the clipped model and takes a Gauss-Newton step in b).
    swi_filter : {"none", "exponential", "wetness"}, default "none"
        SM2RAIN-ASCAT variants (Brocca et al. 2019): filter `s` with :func:`exponential_filter`
        (time constant T; "wetness": T SWI^-Tpot) and min-max scale the filtered series with bounds
        frozen from this calibration period (returned as ``swi_lower`` / ``swi_upper``) before the
        inversion. T (and Tpot) are searched on a grid, then on a finer grid around each cell's best.
    T_bounds : (float, float), optional
        Bounds of T [time unit of `dt`]; default (0.0001, 8) for "exponential" and (0.05, 3) for
        "wetness", as the IRPI reference.
    T_grid : array_like, optional
        Values of T tried first; default 12 ("exponential") or 8 ("wetness") log-spaced values.
    T_pot_bounds : (float, float), default (0.05, 0.75)
        Bounds of Tpot [-] ("wetness").
    T_pot_grid : array_like, optional
        Values of Tpot tried first; default 5 evenly spaced values.
    frozen : array_like of bool, optional
        Steps with frozen soil or snow (:func:`frozen_soil_mask`); treated as missing.
    chunk_cells : int, optional
        Calibrate this many cells at a time (bounded memory; default: all at once for numpy input,
        256 for dask input).
    scheduler : str, optional
        Dask scheduler for dask input ("threads", "processes", "synchronous"); default: dask's.

    Returns
    -------
    SM2RAINParameters
        Z [mm], a, b [-] (T, Tpot and the frozen SWI bounds for the filtered variants), and the
        calibration RMSE [mm per aggregated step], R [-] and sample size per cell (cell axis
        dropped for 1-D input).

    Raises
    ------
    ValueError
        If the shapes differ, `s` is outside [0, 1], the bounds, `aggregation`, `dt`, `objective`,
        `method`, `swi_filter` or `min_samples` are invalid.

    Notes
    -----
    For fixed :math:`b`, and with :math:`A` the set of steps with positive rain, the aggregated
    model of a block :math:`k` is linear in :math:`(Z, a)` (Zhang et al. 2022, Eq. 2):

    .. math::

        \\hat P_k = Z \\sum_{t \\in k \\cap A} (s_t - s_{t-1})
                  + a \\sum_{t \\in k \\cap A} \\Delta t\\,\\frac{s_t^b + s_{t-1}^b}{2}

    so the least-squares :math:`(Z, a)` follow from the 2 x 2 normal equations (sums over the
    valid blocks of every cell), constrained to the bounds exactly by checking the box edges.
    With a non-negative `delta_s_threshold`, :math:`A` is known in advance and the solution is
    exact; otherwise :math:`A` is updated from the solution (Gauss-Newton on the clipped model)
    and the best clipped fit is kept.

    Without aggregation every normal-equation sum is a weighted sum of powers
    :math:`s^b`, :math:`s^{2b}`, :math:`(s_t s_{t-1})^b`; binning the saturation once turns the
    sums for a whole grid of b into a matrix product (``method="fast"``), and Gauss-Newton passes
    on the exact series refine :math:`(Z, a, b)` under the clipping. For ``objective="kge"`` the
    least-squares (Z, a) are rescaled by the factor that maximises KGE (exact, since the clipped
    rainfall is proportional to a common scale of Z and a). ``method="fast"`` runs cell by cell in a
    compiled kernel (numba; cells split over numba's threads, one thread per dask task), the
    exact method for all cells at once over the values of b.

    References
    ----------
    Zhang, Hou & Huang 2022, Remote Sens. 14, 5355, Eqs. 1-2 and Sect. 3.3 (RMSE calibration).
    Brocca, L. et al. (2013). Geophys. Res. Lett. 40, 853-858 (IRPI reference code and bounds).
    Brocca, L. et al. (2019). Earth Syst. Sci. Data 11, 1583-1601 (SM2RAIN-ASCAT filters).
    Gupta, H. V. et al. (2009). J. Hydrol. 377, 80-91 (KGE).
    """
    options = _CalibrationOptions.build(
        dt=dt, aggregation=aggregation, delta_s_threshold=delta_s_threshold, objective=objective,
        z_bounds=z_bounds, a_bounds=a_bounds, b_bounds=b_bounds, b_grid=b_grid, refine=refine,
        min_samples=min_samples, max_active_set_iterations=max_active_set_iterations, method=method,
        newton_passes=newton_passes, swi_filter=swi_filter, T_bounds=T_bounds, T_grid=T_grid,
        T_pot_bounds=T_pot_bounds, T_pot_grid=T_pot_grid,
    )
    if _is_dask(s) or _is_dask(p_obs):
        return _calibrate_dask(s, p_obs, options, frozen=frozen, chunk_cells=chunk_cells or 256, scheduler=scheduler)

    data = _check_saturation(s)
    obs = np.asarray(p_obs, dtype=float)
    if obs.shape != data.shape:
        raise ValueError(
            f"`p_obs` shape {obs.shape} differs from `s` shape {data.shape}; put the observed rain of "
            "the step ending at each time on the same (cells, time) axis, NaN where missing."
        )
    data = mask_frozen_soil(data, frozen)
    one_cell = data.ndim == 1
    if one_cell:
        data, obs = data[None], obs[None]
    if data.shape[1] < options.aggregation + 1:
        raise ValueError(
            f"`s` has {data.shape[1]} time steps, fewer than aggregation + 1 = {options.aggregation + 1}; "
            "pass a longer calibration period."
        )
    if chunk_cells is not None and (isinstance(chunk_cells, bool) or not isinstance(chunk_cells, (int, np.integer))
                                    or chunk_cells < 1):
        raise ValueError(f"`chunk_cells` must be a positive integer, got {chunk_cells!r}.")
    step = data.shape[0] if chunk_cells is None else int(chunk_cells)
    parts = [_calibrate_block(data[i : i + step], obs[i : i + step], options) for i in range(0, data.shape[0], step)]
    result = _concatenate(parts)
    if one_cell:
        result = SM2RAINParameters(**{k: v[0] for k, v in result.to_dict(all_fields=True).items()})
    return result


@dataclass(frozen=True)
class _CalibrationOptions:
    dt: float
    aggregation: int
    delta_s_threshold: float | None
    objective: str
    z_bounds: tuple[float, float]
    a_bounds: tuple[float, float]
    b_bounds: tuple[float, float]
    grid: NDArray[np.float64]
    refine: bool
    min_samples: int
    max_active_set_iterations: int
    method: str
    newton_passes: int
    swi_filter: str
    T_bounds: tuple[float, float]
    T_grid: NDArray[np.float64]
    T_pot_bounds: tuple[float, float]
    T_pot_grid: NDArray[np.float64]

    @classmethod
    def build(cls, **kw: Any) -> _CalibrationOptions:
        objective, aggregation, dt = kw["objective"], kw["aggregation"], kw["dt"]
        if objective not in ("rmse", "kge", "nse"):
            raise ValueError(f"`objective` must be 'rmse', 'nse' or 'kge', got {objective!r}.")
        if isinstance(aggregation, bool) or not isinstance(aggregation, (int, np.integer)) or aggregation < 1:
            raise ValueError(f"`aggregation` must be a positive number of steps, got {aggregation!r}.")
        if not dt > 0:
            raise ValueError(f"`dt` must be a positive time step, got {dt!r}.")
        min_samples = kw["min_samples"]
        if isinstance(min_samples, bool) or not isinstance(min_samples, (int, np.integer)) or min_samples < 3:
            raise ValueError(f"`min_samples` must be an integer >= 3, got {min_samples!r}.")
        threshold = kw["delta_s_threshold"]
        if threshold is not None and not np.isfinite(threshold):
            raise ValueError(f"`delta_s_threshold` must be a finite number or None, got {threshold!r}.")
        method = kw["method"]
        if method not in ("auto", "fast", "exact"):
            raise ValueError(f"`method` must be 'auto', 'fast' or 'exact', got {method!r}.")
        if method == "fast" and aggregation != 1:
            raise ValueError("method='fast' compares every step (aggregation=1); use method='exact' (or 'auto') "
                             f"with aggregation={aggregation}.")
        if method == "auto":
            method = "fast" if aggregation == 1 else "exact"
        swi_filter = kw["swi_filter"]
        if swi_filter not in ("none", "exponential", "wetness"):
            raise ValueError(f"`swi_filter` must be 'none', 'exponential' or 'wetness', got {swi_filter!r}.")
        z_bounds = _check_bounds("z_bounds", kw["z_bounds"], minimum=0.0, strict=True)
        a_bounds = _check_bounds("a_bounds", kw["a_bounds"], minimum=0.0, strict=False)
        b_bounds = _check_bounds("b_bounds", kw["b_bounds"], minimum=0.0, strict=True)
        grid = _grid_inside("b_grid", kw["b_grid"], b_bounds, np.geomspace(b_bounds[0], b_bounds[1], 48))
        default_t = DEFAULT_T_BOUNDS_TPOT if swi_filter == "wetness" else DEFAULT_T_BOUNDS
        T_bounds = _check_bounds("T_bounds", kw["T_bounds"] or default_t, minimum=0.0, strict=True)
        T_grid = _grid_inside("T_grid", kw["T_grid"], T_bounds,
                              np.geomspace(T_bounds[0], T_bounds[1], 8 if swi_filter == "wetness" else 12))
        T_pot_bounds = _check_bounds("T_pot_bounds", kw["T_pot_bounds"], minimum=0.0, strict=False)
        T_pot_grid = _grid_inside("T_pot_grid", kw["T_pot_grid"], T_pot_bounds,
                                  np.linspace(T_pot_bounds[0], T_pot_bounds[1], 5))
        passes = kw["newton_passes"]
        if isinstance(passes, bool) or not isinstance(passes, (int, np.integer)) or passes < 1:
            raise ValueError(f"`newton_passes` must be a positive integer, got {passes!r}.")
        return cls(
            dt=float(dt), aggregation=int(aggregation), delta_s_threshold=threshold, objective=objective,
            z_bounds=z_bounds, a_bounds=a_bounds, b_bounds=b_bounds, grid=grid, refine=bool(kw["refine"]),
            min_samples=int(min_samples), max_active_set_iterations=int(kw["max_active_set_iterations"]),
            method=method, newton_passes=int(passes), swi_filter=swi_filter, T_bounds=T_bounds, T_grid=T_grid,
            T_pot_bounds=T_pot_bounds, T_pot_grid=T_pot_grid,
        )


def _grid_inside(name: str, values: ArrayLike | None, bounds: tuple[float, float],
                 default: NDArray[np.float64]) -> NDArray[np.float64]:
    if values is None:
        return default
    grid = np.unique(np.asarray(values, dtype=float).ravel())
    if grid.size == 0 or not np.all(np.isfinite(grid)) or grid[0] < bounds[0] or grid[-1] > bounds[1]:
        raise ValueError(f"`{name}` must hold finite values inside the bounds {bounds}, got {values!r}.")
    return grid


def _calibrate_block(data: NDArray[np.float64], obs: NDArray[np.float64], o: _CalibrationOptions) -> SM2RAINParameters:
    """Calibrate one block of cells (numpy, (cells, time)), with the filter search if asked."""
    if o.swi_filter == "none":
        return _calibrate_saturation(data, obs, o)
    return _calibrate_filtered(data, obs, o)


def _fit_saturation(data: NDArray[np.float64], obs: NDArray[np.float64], o: _CalibrationOptions
                    ) -> tuple[_Fit, NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """Best fit per cell; returns the fit, sample size, and the sums of y and y^2 (for R)."""
    objective = "rmse" if o.objective == "nse" else o.objective
    if o.method == "fast":
        return _calibrate_daily(
            data, obs, dt=o.dt, delta_s_threshold=o.delta_s_threshold, objective=objective,
            z_bounds=o.z_bounds, a_bounds=o.a_bounds, b_bounds=o.b_bounds, grid=o.grid, refine=o.refine,
            passes=o.newton_passes,
        )
    return _calibrate_exact(data, obs, o, objective)


def _calibrate_exact(data: NDArray[np.float64], obs: NDArray[np.float64], o: _CalibrationOptions, objective: str
                     ) -> tuple[_Fit, NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    cells = data.shape[0]
    problem = _CalibrationProblem(
        data, obs, dt=o.dt, aggregation=o.aggregation, delta_s_threshold=o.delta_s_threshold,
        z_bounds=o.z_bounds, a_bounds=o.a_bounds, objective=objective,  # type: ignore[arg-type]
        max_active_set_iterations=o.max_active_set_iterations,
    )
    best = _BestFit(cells)

    def evaluate(b: NDArray[np.float64]) -> NDArray[np.float64]:
        value, z, a = problem.solve(b)
        best.offer(value, z, a, b)
        return value

    grid = o.grid
    scores = np.stack([evaluate(np.full(cells, b_value)) for b_value in grid])
    if o.refine and grid.size > 1:
        log_grid = np.log(grid)
        index = np.argmin(scores, axis=0)
        lo = log_grid[np.maximum(index - 1, 0)]
        hi = log_grid[np.minimum(index + 1, grid.size - 1)]
        _golden_section(lambda x: evaluate(np.exp(x)), lo, hi, iterations=40)
    z, a, b = best.z, best.a, best.b
    ok = np.isfinite(z)
    sim, _ = problem.simulate(np.nan_to_num(z), np.nan_to_num(a), problem.loss_term(np.nan_to_num(b, nan=1.0)))
    sim = np.where(problem.valid, sim, 0.0)
    fit = _Fit(np.where(ok, best.value, np.inf), z, a, b, sim.sum(1), _rowdot(sim, sim), _rowdot(sim, problem.y))
    return fit, problem.n, problem.y.sum(1), _rowdot(problem.y, problem.y)


def _finish(fit: _Fit, n: NDArray[np.int64], sum_y: NDArray[np.float64], sum_y2: NDArray[np.float64],
            min_samples: int, **extra: NDArray[np.float64]) -> SM2RAINParameters:
    enough = (n >= min_samples) & np.isfinite(fit.z)
    nn = np.maximum(n, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mse = np.maximum(fit.sum_sim2 - 2 * fit.sum_simy + sum_y2, 0.0) / nn
        cov = fit.sum_simy - fit.sum_sim * sum_y / nn
        var_sim = fit.sum_sim2 - fit.sum_sim**2 / nn
        var_y = sum_y2 - sum_y**2 / nn
        r = np.clip(cov / np.sqrt(var_sim * var_y), -1.0, 1.0)
    masked = {k: np.where(enough, v, np.nan) for k, v in extra.items()}
    return SM2RAINParameters(
        Z=np.where(enough, fit.z, np.nan), a=np.where(enough, fit.a, np.nan), b=np.where(enough, fit.b, np.nan),
        rmse=np.where(enough, np.sqrt(mse), np.nan), r=np.where(enough, r, np.nan), n=n, **masked,
    )


def _calibrate_saturation(data: NDArray[np.float64], obs: NDArray[np.float64], o: _CalibrationOptions
                          ) -> SM2RAINParameters:
    fit, n, sum_y, sum_y2 = _fit_saturation(data, obs, o)
    return _finish(fit, n, sum_y, sum_y2, o.min_samples)


def _calibrate_filtered(data: NDArray[np.float64], obs: NDArray[np.float64], o: _CalibrationOptions
                        ) -> SM2RAINParameters:
    """Search T (and Tpot) for every cell: the coarse grid, then a finer grid around each best."""
    cells = data.shape[0]
    wetness = o.swi_filter == "wetness"
    pots = o.T_pot_grid if wetness else np.array([np.nan])
    state = {"value": np.full(cells, np.inf)}
    best: dict[str, Any] = {}

    # The search ranks (T, Tpot) with a short fit (one Gauss-Newton pass); the full fit is run once
    # at each cell's best filter.
    search = replace(o, newton_passes=min(o.newton_passes, 2)) if o.method == "fast" else o

    def consider(T: NDArray[np.float64], T_pot: NDArray[np.float64], options: _CalibrationOptions = search,
                 swi: NDArray[np.float64] | None = None) -> None:
        if swi is None:
            common = np.all(T == T[0]) and not wetness
            swi = exponential_filter(data, float(T[0]) if common else T, dt=o.dt, T_pot=T_pot if wetness else None)
        lower, upper = saturation_bounds(swi)
        s_f = relative_saturation(swi, lower, upper)
        fit, n, sum_y, sum_y2 = _fit_saturation(s_f, obs, options)
        better = fit.value < state["value"]
        state["value"] = np.where(better, fit.value, state["value"])
        candidate = {"fit": fit, "n": n, "sum_y": sum_y, "sum_y2": sum_y2, "T": T, "T_pot": T_pot,
                     "swi_lower": lower, "swi_upper": upper}
        if not best:
            best.update(candidate)
            return
        for key, value in candidate.items():
            if key == "fit":
                best["fit"].offer(_Fit(np.where(better, value.value, np.inf), value.z, value.a, value.b,
                                       value.sum_sim, value.sum_sim2, value.sum_simy))
            else:
                best[key] = np.where(better, value, best[key])

    if wetness:
        # The wetness filter has no closed form: run every (T, Tpot) of the grid in one recursion
        # over time (cells x combinations side by side), a block of cells at a time.
        combos = [(T, pot) for T in o.T_grid for pot in pots]
        block = max(1, 4096 // len(combos))
        swis = [np.empty_like(data) for _ in combos]
        for start in range(0, cells, block):
            rows = slice(start, start + block)
            size = data[rows].shape[0]
            tiled = np.tile(data[rows], (len(combos), 1))
            t_all = np.repeat([c[0] for c in combos], size)
            p_all = np.repeat([c[1] for c in combos], size)
            out = exponential_filter(tiled, t_all, dt=o.dt, T_pot=p_all)
            for k in range(len(combos)):
                swis[k][rows] = out[k * size : (k + 1) * size]
        for (T, pot), swi in zip(combos, swis):
            consider(np.full(cells, T), np.full(cells, pot), swi=swi)
        del swis
    else:
        for T in o.T_grid:
            consider(np.full(cells, T), np.full(cells, np.nan))
    if o.refine:
        # A finer grid around each cell's best (half the coarse spacing, in log T and in Tpot).
        log_step = np.log(o.T_grid[1] / o.T_grid[0]) / 2 if o.T_grid.size > 1 else 0.0
        pot_step = (pots[1] - pots[0]) / 2 if wetness and pots.size > 1 else 0.0
        center_t, center_p = best["T"].copy(), best["T_pot"].copy()
        for dl in (-1, 0, 1):
            for dp in ((-1, 0, 1) if wetness else (0,)):
                if dl == 0 and dp == 0:
                    continue
                T = np.clip(center_t * np.exp(dl * log_step), *o.T_bounds)
                pot = np.clip(center_p + dp * pot_step, *o.T_pot_bounds) if wetness else center_p
                consider(T, pot)
    if search is not o:
        # The full fit at each cell's best filter; its (better) value replaces the search value.
        state["value"] = np.full(cells, np.inf)
        best["fit"].value = np.full(cells, np.inf)
        consider(best["T"].copy(), best["T_pot"].copy(), o)
    return _finish(best["fit"], best["n"], best["sum_y"], best["sum_y2"], o.min_samples,
                   T=best["T"], T_pot=best["T_pot"] if wetness else np.full(cells, np.nan),
                   swi_lower=best["swi_lower"], swi_upper=best["swi_upper"])


def _concatenate(parts: list[SM2RAINParameters]) -> SM2RAINParameters:
    if len(parts) == 1:
        return parts[0]
    fields_ = [p.to_dict(all_fields=True) for p in parts]
    return SM2RAINParameters(**{k: np.concatenate([f[k] for f in fields_]) for k in fields_[0]})


def _is_dask(x: Any) -> bool:
    return type(x).__module__.startswith("dask")


#: Column order of the per-cell results of a dask block.
_COLUMNS = ("Z", "a", "b", "rmse", "r", "n", "T", "T_pot", "swi_lower", "swi_upper")


def _calibrate_dask(s: Any, p_obs: Any, o: _CalibrationOptions, *, frozen: Any, chunk_cells: int,
                    scheduler: str | None) -> SM2RAINParameters:
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
            result = _calibrate_block(data, np.asarray(pb, dtype=float), o).to_dict(all_fields=True)
        return np.stack([np.asarray(result[c], dtype=float) for c in _COLUMNS], axis=1)

    table = da.map_blocks(block, *args, dtype=float, chunks=(s.chunks[0], (len(_COLUMNS),)))
    with dask.config.set(scheduler=scheduler) if scheduler else _nullcontext():
        values = table.compute()
    return SM2RAINParameters(**{c: values[:, k] for k, c in enumerate(_COLUMNS)})


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def apply_sm2rain(
    s: ArrayLike,
    params: SM2RAINParameters,
    *,
    dt: float = 1.0,
    delta_s_threshold: float | None = None,
    frozen: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Rainfall from saturation with a calibrated parameter set, filter included.

    Parameters
    ----------
    s : array_like, shape (cells, time) or (time,)
        Relative saturation [-] in [0, 1], NaN where missing. For the filtered variants pass
        enough history for the filter (10 T; the first steps are the filter's spin-up).
    params : SM2RAINParameters
        From :func:`calibrate_sm2rain` (or :func:`regionalise`). Cells with a finite ``T`` are
        filtered (:func:`exponential_filter`, with ``T_pot`` where finite) and scaled with the
        frozen ``swi_lower`` / ``swi_upper`` before the inversion; the others use `s` as is.
    dt, delta_s_threshold : see :func:`sm2rain`.
    frozen : array_like of bool, optional
        Frozen-soil / snow mask (:func:`frozen_soil_mask`); rainfall is NaN where it touches a
        masked step.

    Returns
    -------
    precipitation : numpy.ndarray, shape of `s`
        Rainfall [mm per step] (see :func:`sm2rain`).

    Raises
    ------
    ValueError
        As :func:`sm2rain`.
    """
    data = mask_frozen_soil(_check_saturation(s), frozen)
    one = data.ndim == 1
    if one:
        data = data[None]
    cells = data.shape[0]
    T = np.broadcast_to(np.asarray(params.T, dtype=float), (cells,))
    filtered = np.isfinite(T)
    if filtered.any():
        pot = np.broadcast_to(np.asarray(params.T_pot, dtype=float), (cells,))
        rows = np.flatnonzero(filtered)
        wet = np.isfinite(pot[rows])
        swi = exponential_filter(data[rows], T[rows], dt=dt, T_pot=np.where(wet, pot[rows], 0.0))
        lower = np.broadcast_to(np.asarray(params.swi_lower, dtype=float), (cells,))[rows]
        upper = np.broadcast_to(np.asarray(params.swi_upper, dtype=float), (cells,))[rows]
        data = data.copy()
        data[rows] = relative_saturation(swi, lower, upper)
    rain = sm2rain(data, params.Z, params.a, params.b, dt=dt, delta_s_threshold=delta_s_threshold)
    return rain[0] if one else rain


# --------------------------------------------------------------------------------------------------
# Regionalisation
# --------------------------------------------------------------------------------------------------


def _great_circle_km(lat1: NDArray[np.float64], lon1: NDArray[np.float64],
                     lat2: NDArray[np.float64], lon2: NDArray[np.float64]) -> NDArray[np.float64]:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def regionalise(
    params: SM2RAINParameters,
    lat: ArrayLike,
    lon: ArrayLike,
    target_lat: ArrayLike,
    target_lon: ArrayLike,
    *,
    power: float = 2.0,
    max_distance_km: float | None = None,
    a_floor: float = 1e-3,
) -> SM2RAINParameters:
    """Transfer calibrated SM2RAIN parameters to other cells by inverse-distance weighting.

    Parameters
    ----------
    params : SM2RAINParameters
        Calibrated parameters at the source cells (e.g. gauge locations), shape (sources,).
        Sources with a non-finite Z, a or b are ignored.
    lat, lon : array_like, shape (sources,)
        Source coordinates [degrees_north, degrees_east].
    target_lat, target_lon : array_like, shape (targets,)
        Target coordinates [degrees_north, degrees_east].
    power : float, default 2
        Inverse-distance exponent (weights :math:`d^{-p}`, great-circle distance).
    max_distance_km : float or None
        Ignore sources farther than this [km]; targets with no source in reach get NaN.
    a_floor : float, default 1e-3
        Floor applied to ``a`` before taking its logarithm [unit of ``a``] (a calibrated ``a`` of
        0 is legal).

    Returns
    -------
    SM2RAINParameters, shape (targets,)
        Interpolated Z, a, b; ``rmse`` and ``r`` NaN and ``n`` 0 (not calibrated there). A target
        that coincides with a source takes that source's parameters.

    Raises
    ------
    ValueError
        If coordinate shapes do not match, `power` is negative or no source has finite parameters.

    Notes
    -----
    The parameters are interpolated as :math:`(\\ln Z, \\ln a, b)`:

    .. math::

        \\ln Z^* = \\frac{\\sum_j w_j \\ln Z_j}{\\sum_j w_j},\\quad
        \\ln a^* = \\frac{\\sum_j w_j \\ln a_j}{\\sum_j w_j},\\quad
        b^* = \\frac{\\sum_j w_j b_j}{\\sum_j w_j},\\quad w_j = d_j^{-p}

    Z (a capacity spanning orders of magnitude) is averaged geometrically so it stays positive.
    For the loss term, :math:`\\ln(a s^b) = \\ln a + b \\ln s` is linear in :math:`(\\ln a, b)`, so
    interpolating these two makes the regional loss curve the weighted geometric mean of the
    sources' loss curves at every saturation -- averaging a and b arithmetically would mix
    incompatible (a, b) pairs, which are strongly correlated in calibration.

    References
    ----------
    Shepard, D. (1968). A two-dimensional interpolation function for irregularly-spaced data.
    Proc. 23rd ACM National Conference, 517-524.
    """
    src_lat = np.asarray(lat, dtype=float).ravel()
    src_lon = np.asarray(lon, dtype=float).ravel()
    tgt_lat = np.asarray(target_lat, dtype=float).ravel()
    tgt_lon = np.asarray(target_lon, dtype=float).ravel()
    z, a, b = (np.asarray(v, dtype=float).ravel() for v in (params.Z, params.a, params.b))
    if not (src_lat.shape == src_lon.shape == z.shape):
        raise ValueError(
            f"`lat` {src_lat.shape}, `lon` {src_lon.shape} and the parameters {z.shape} must describe the "
            "same source cells."
        )
    if tgt_lat.shape != tgt_lon.shape:
        raise ValueError(f"`target_lat` {tgt_lat.shape} and `target_lon` {tgt_lon.shape} must have the same size.")
    if not power >= 0:
        raise ValueError(f"`power` must be >= 0, got {power!r}.")
    if not a_floor > 0:
        raise ValueError(f"`a_floor` must be positive, got {a_floor!r}.")
    usable = np.isfinite(z) & np.isfinite(a) & np.isfinite(b) & np.isfinite(src_lat) & np.isfinite(src_lon)
    if not usable.any():
        raise ValueError("No source cell has finite Z, a, b and coordinates; calibrate at least one cell first.")
    features = np.stack([np.log(z[usable]), np.log(np.maximum(a[usable], a_floor)), b[usable]])
    distance = _great_circle_km(tgt_lat[:, None], tgt_lon[:, None], src_lat[usable][None], src_lon[usable][None])
    in_reach = np.ones_like(distance, dtype=bool) if max_distance_km is None else distance <= max_distance_km
    exact = distance < 1e-6
    with np.errstate(divide="ignore"):
        weight = np.where(in_reach, distance ** (-float(power)), 0.0)
    has_exact = np.asarray(exact.any(axis=1))
    weight = np.where(has_exact[:, None], exact.astype(float), weight)
    total = weight.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        interpolated = (weight @ features.T) / total[:, None]
    interpolated[total == 0] = np.nan
    a_out = np.exp(interpolated[:, 1])
    targets = tgt_lat.shape

    def filter_field(values: NDArray[np.float64], log: bool) -> NDArray[np.float64]:
        # T (log, a time scale) and T_pot over the sources that have a filter, weights renormalised.
        v = np.asarray(values, dtype=float).ravel()[usable]
        has = np.isfinite(v)
        if not has.any():
            return np.full(targets, np.nan)
        w = weight * has[None]
        feature = np.log(np.where(has, v, 1.0)) if log else np.where(has, v, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (w @ feature) / w.sum(axis=1)
        return np.exp(out) if log else out

    return SM2RAINParameters(
        Z=np.exp(interpolated[:, 0]),
        a=a_out,
        b=interpolated[:, 2],
        rmse=np.full(targets, np.nan),
        r=np.full(targets, np.nan),
        n=np.zeros(targets, dtype=np.int64),
        T=filter_field(params.T, log=True),
        T_pot=filter_field(params.T_pot, log=False),
    )


def freeze_swi_bounds(
    params: SM2RAINParameters, s: ArrayLike, *, dt: float = 1.0, lower_quantile: float = 0.0,
    upper_quantile: float = 1.0,
) -> SM2RAINParameters:
    """Set the frozen min-max bounds of the filtered series from each cell's own calibration period.

    Regionalised parameters (:func:`regionalise`) carry T and Tpot but no bounds: those belong to
    the soil-moisture series of the target cell, which is available even where no rain gauge is.

    Parameters
    ----------
    params : SM2RAINParameters, shape (cells,)
        Parameters with ``T`` (and ``T_pot``) per cell.
    s : array_like, shape (cells, time)
        Relative saturation [-] of the calibration period, NaN where missing.
    dt : float, default 1.0
        Step length in the unit of T.
    lower_quantile, upper_quantile : float, default 0 and 1
        As :func:`saturation_bounds`.

    Returns
    -------
    SM2RAINParameters
        `params` with ``swi_lower`` / ``swi_upper`` of the cells that have a finite T.

    Raises
    ------
    ValueError
        If `s` does not have one row per cell of `params`.
    """
    data = _check_saturation(s)
    if data.ndim == 1:
        data = data[None]
    T = np.atleast_1d(np.asarray(params.T, dtype=float))
    if data.shape[0] != T.shape[0]:
        raise ValueError(f"`s` has {data.shape[0]} cells but the parameters have {T.shape[0]}; pass the "
                         "calibration-period saturation of the same cells.")
    lower = np.full(T.shape, np.nan)
    upper = np.full(T.shape, np.nan)
    rows = np.flatnonzero(np.isfinite(T))
    if rows.size:
        pot = np.atleast_1d(np.asarray(params.T_pot, dtype=float))[rows]
        swi = exponential_filter(data[rows], T[rows], dt=dt, T_pot=np.where(np.isfinite(pot), pot, 0.0))
        lower[rows], upper[rows] = saturation_bounds(swi, lower_quantile=lower_quantile, upper_quantile=upper_quantile)
    values = params.to_dict(all_fields=True)
    values.update(swi_lower=lower.reshape(np.shape(params.Z)), swi_upper=upper.reshape(np.shape(params.Z)))
    return SM2RAINParameters(**values)
