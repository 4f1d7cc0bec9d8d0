"""SM2RAIN forward model: relative saturation, the inverted soil-water balance, its parameters.

Zhang et al. 2022, Eqs. 1-2, in the discrete form of Brocca et al. (2013/2014) with the loss term
averaged over the step.

Units: ``s`` is the relative saturation [-] in [0, 1]; ``Z`` the soil water capacity [mm]; ``a``
the loss rate at saturation [mm per unit of time of ``dt``] (mm/day with the default ``dt=1`` day);
``b`` the loss exponent [-]; rainfall is a depth per time step [mm] (= kg m-2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from smflow.science.sm2rain.filters import exponential_filter, mask_frozen_soil

__all__ = [
    "SM2RAINParameters",
    "apply_sm2rain",
    "relative_saturation",
    "saturation_bounds",
    "sm2rain",
]

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


#: ``precipitation_status`` flags: why a land cell has or has no SM2RAIN rainfall on the day.
PRECIPITATION_STATUS_FLAGS: dict[int, str] = {
    0: "computed",
    1: "no_soil_moisture",
    2: "no_soil_moisture_on_previous_day",
    3: "frozen_soil_or_snow",
    4: "no_sm2rain_parameters",
}


def precipitation_status(soil_moisture: np.ndarray, frozen: np.ndarray, params, saturation_lower: np.ndarray,
                         saturation_upper: np.ndarray) -> np.ndarray:
    """Why each cell has (0) or has no (1-4) SM2RAIN rainfall on the last day of the window.

    Decided from the *inputs* of the inversion, never from the rainfall itself, so the product
    suite's "no precipitation where the status says computed" check still catches a rainfall that
    went missing for another reason. SM2RAIN's rain of day D needs the soil moisture of D and D-1
    (the water balance ``Z ds/dt``; Brocca et al. 2013, Eq. 2; Zhang et al. 2022, Eqs. 1-2): a day
    after a day without soil moisture (e.g. a "no product" day) has no rainfall, and says so.

    Parameters
    ----------
    soil_moisture : ndarray, shape (cells, time)
        Merged soil moisture of the window [m3 m-3], NaN where missing; the last column is the day.
    frozen : ndarray of bool, shape (cells, time)
        Frozen-soil / snow mask of the same window.
    params : smflow.science.sm2rain.SM2RAINParameters
        Per-cell parameters (``Z``, ``a``, ``b`` of shape (cells,)).
    saturation_lower, saturation_upper : ndarray, shape (cells,)
        The model's relative-saturation bounds [m3 m-3].

    Returns
    -------
    ndarray of int8, shape (cells,)
        Codes of :data:`PRECIPITATION_STATUS_FLAGS`, the first reason that applies (1: no soil
        moisture on the day, 2: none on the day before, 3: frozen on either day, 4: no parameters).

    Raises
    ------
    ValueError
        The window has fewer than 2 days.
    """
    sm = np.asarray(soil_moisture, dtype="float64")
    if sm.ndim != 2 or sm.shape[1] < 2:
        raise ValueError(f"precipitation_status needs a (cells, time >= 2) window, got shape {sm.shape}")
    ice = np.asarray(frozen, dtype=bool)
    cells = sm.shape[0]
    fitted = np.ones(cells, dtype=bool)
    for values in (params.Z, params.a, params.b, saturation_lower, saturation_upper):
        fitted &= np.isfinite(np.broadcast_to(np.asarray(values, dtype="float64"), (cells,)))
    status = np.zeros(cells, dtype=np.int8)
    status[~fitted] = 4
    status[ice[:, -1] | ice[:, -2]] = 3
    status[~np.isfinite(sm[:, -2])] = 2
    status[~np.isfinite(sm[:, -1])] = 1
    return status
