"""Transfer of calibrated SM2RAIN parameters to cells without a rain gauge.

Inverse-distance weighting of (ln Z, ln a, b) and of the filter time constants
(:func:`regionalise`), and the frozen soil-water-index bounds of each target cell from its own
soil-moisture series (:func:`freeze_swi_bounds`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from smflow.science.sm2rain.filters import exponential_filter
from smflow.science.sm2rain.model import SM2RAINParameters, _check_saturation, saturation_bounds

__all__ = ["freeze_swi_bounds", "regionalise"]

_EARTH_RADIUS_KM = 6371.0088


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
