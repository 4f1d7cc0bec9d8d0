"""SM2RAIN: rainfall from soil-moisture increments (inverted soil-water balance), vectorised over cells.

Zhang et al. 2022, Eqs. 1-2, in the discrete form of Brocca et al. (2013/2014) with the loss term
averaged over the step. Calibration (:func:`calibrate_sm2rain`) is exact in (Z, a) for each value of
b -- the model is linear in (Z, a) once the steps with positive rain are known -- and searches b on
a log-spaced grid refined by golden-section search, for all cells at once.

Units: ``s`` is the relative saturation [-] in [0, 1]; ``Z`` the soil water capacity [mm]; ``a``
the loss rate at saturation [mm per unit of time of ``dt``] (mm/day with the default ``dt=1`` day);
``b`` the loss exponent [-]; rainfall is a depth per time step [mm] (= kg m-2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "SM2RAINParameters",
    "calibrate_sm2rain",
    "regionalise",
    "relative_saturation",
    "saturation_bounds",
    "sm2rain",
]

Objective = Literal["rmse", "kge"]

#: Parameter bounds of the SM2RAIN reference implementation (IRPI) for daily time steps:
#: Z [mm], a [mm/day], b [-].
DEFAULT_Z_BOUNDS: tuple[float, float] = (1.0, 800.0)
DEFAULT_A_BOUNDS: tuple[float, float] = (0.0, 200.0)
DEFAULT_B_BOUNDS: tuple[float, float] = (0.01, 50.0)

_EARTH_RADIUS_KM = 6371.0088


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
    """

    Z: NDArray[np.float64]
    a: NDArray[np.float64]
    b: NDArray[np.float64]
    rmse: NDArray[np.float64]
    r: NDArray[np.float64]
    n: NDArray[np.int64]

    def __post_init__(self) -> None:
        shape = np.shape(self.Z)
        for f in fields(self):
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

    def to_dict(self) -> dict[str, NDArray[Any]]:
        """Plain mapping of field name to array (``numpy.savez`` friendly)."""
        return {f.name: np.array(getattr(self, f.name)) for f in fields(self)}

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
    finite = data[np.isfinite(data)]
    if finite.size and (finite.min() < 0.0 or finite.max() > 1.0):
        raise ValueError(
            f"`s` must be a relative saturation in [0, 1], got values in [{finite.min():.4g}, "
            f"{finite.max():.4g}]; convert soil moisture with relative_saturation(theta, lower, upper)."
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
    data = _check_saturation(s)
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
) -> SM2RAINParameters:
    """Calibrate SM2RAIN parameters (Z, a, b) per cell against observed rainfall.

    Parameters
    ----------
    s : array_like, shape (cells, time) or (time,)
        Relative saturation [-] in [0, 1], NaN where missing.
    p_obs : array_like, same shape as `s`
        Observed rainfall during the step ending at each time [mm per step], NaN where missing
        (``p_obs[..., t]`` is compared with ``sm2rain(s, ...)[..., t]``).
    dt : float, default 1.0
        Step length in the time unit of `a` (see :func:`sm2rain`).
    aggregation : int, default 1
        Number of consecutive steps summed before comparing (24 for daily sums of hourly data).
        Blocks start at the second step (the first has no previous saturation); only complete
        blocks where every step is finite count.
    delta_s_threshold : float or None, default None
        As in :func:`sm2rain`; calibrate with the threshold you will apply.
    objective : {"rmse", "kge"}, default "rmse"
        Minimise the RMSE of the aggregated rainfall (as Zhang et al. 2022 and the IRPI code,
        whose 1 - NSE has the same minimiser) or maximise the KGE (Gupta et al. 2009).
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
        Refine b per cell by golden-section search (on log b) between the neighbours of the best
        grid value.
    min_samples : int, default 30
        Minimum number of aggregated samples; cells with fewer get NaN parameters.
    max_active_set_iterations : int, default 8
        Without a threshold, the clipping ``max(0, .)`` makes the model piecewise linear; (Z, a) are
        re-solved on the steps with positive rain until that set stops changing.

    Returns
    -------
    SM2RAINParameters
        Z [mm], a, b [-], and the calibration RMSE [mm per aggregated step], R [-] and sample size
        per cell (cell axis dropped for 1-D input).

    Raises
    ------
    ValueError
        If the shapes differ, `s` is outside [0, 1], the bounds, `aggregation`, `dt`, `objective`
        or `min_samples` are invalid.

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
    and the best clipped fit is kept. :math:`b` is searched on a grid and refined, and each cell
    keeps its best (Z, a, b). For ``objective="kge"``, the least-squares (Z, a) are rescaled by
    the factor that maximises KGE (exact, since the clipped rainfall is proportional to a common
    scale of Z and a). All cells are solved at once; only the values of b are looped over.

    References
    ----------
    Zhang, Hou & Huang 2022, Remote Sens. 14, 5355, Eqs. 1-2 and Sect. 3.3 (RMSE calibration).
    Brocca, L. et al. (2013). Geophys. Res. Lett. 40, 853-858 (IRPI reference code and bounds).
    Gupta, H. V. et al. (2009). J. Hydrol. 377, 80-91 (KGE).
    """
    data = _check_saturation(s)
    obs = np.asarray(p_obs, dtype=float)
    if obs.shape != data.shape:
        raise ValueError(
            f"`p_obs` shape {obs.shape} differs from `s` shape {data.shape}; put the observed rain of "
            "the step ending at each time on the same (cells, time) axis, NaN where missing."
        )
    if objective not in ("rmse", "kge"):
        raise ValueError(f"`objective` must be 'rmse' or 'kge', got {objective!r}.")
    if isinstance(aggregation, bool) or not isinstance(aggregation, (int, np.integer)) or aggregation < 1:
        raise ValueError(f"`aggregation` must be a positive number of steps, got {aggregation!r}.")
    if not dt > 0:
        raise ValueError(f"`dt` must be a positive time step, got {dt!r}.")
    if isinstance(min_samples, bool) or not isinstance(min_samples, (int, np.integer)) or min_samples < 3:
        raise ValueError(f"`min_samples` must be an integer >= 3, got {min_samples!r}.")
    if delta_s_threshold is not None and not np.isfinite(delta_s_threshold):
        raise ValueError(f"`delta_s_threshold` must be a finite number or None, got {delta_s_threshold!r}.")
    z_bounds = _check_bounds("z_bounds", z_bounds, minimum=0.0, strict=True)
    a_bounds = _check_bounds("a_bounds", a_bounds, minimum=0.0, strict=False)
    b_bounds = _check_bounds("b_bounds", b_bounds, minimum=0.0, strict=True)
    if b_grid is None:
        grid = np.geomspace(b_bounds[0], b_bounds[1], 48)
    else:
        grid = np.unique(np.asarray(b_grid, dtype=float).ravel())
        if grid.size == 0 or not np.all(np.isfinite(grid)) or grid[0] < b_bounds[0] or grid[-1] > b_bounds[1]:
            raise ValueError(f"`b_grid` must hold finite values inside b_bounds {b_bounds}, got {b_grid!r}.")

    one_cell = data.ndim == 1
    if one_cell:
        data, obs = data[None], obs[None]
    cells = data.shape[0]
    if data.shape[1] < aggregation + 1:
        raise ValueError(
            f"`s` has {data.shape[1]} time steps, fewer than aggregation + 1 = {aggregation + 1}; "
            "pass a longer calibration period."
        )

    problem = _CalibrationProblem(
        data, obs, dt=dt, aggregation=aggregation, delta_s_threshold=delta_s_threshold,
        z_bounds=z_bounds, a_bounds=a_bounds, objective=objective,
        max_active_set_iterations=max_active_set_iterations,
    )

    best = _BestFit(cells)

    def evaluate(b: NDArray[np.float64]) -> NDArray[np.float64]:
        value, z, a = problem.solve(b)
        best.offer(value, z, a, b)
        return value

    scores = np.stack([evaluate(np.full(cells, b_value)) for b_value in grid])

    if refine and grid.size > 1:
        # Golden-section search on log b, per cell, inside the bracket of the best grid value.
        log_grid = np.log(grid)
        index = np.argmin(scores, axis=0)
        lo = log_grid[np.maximum(index - 1, 0)]
        hi = log_grid[np.minimum(index + 1, grid.size - 1)]
        golden = (np.sqrt(5.0) - 1.0) / 2.0
        c, d = hi - golden * (hi - lo), lo + golden * (hi - lo)
        fc, fd = evaluate(np.exp(c)), evaluate(np.exp(d))
        for _ in range(40):
            left = fc < fd  # minimum in [lo, d]: d <- c and a new c; else [c, hi]: c <- d, new d
            lo, hi = np.where(left, lo, c), np.where(left, d, hi)
            new = np.where(left, hi - golden * (hi - lo), lo + golden * (hi - lo))
            f_new = evaluate(np.exp(new))
            c, d = np.where(left, new, d), np.where(left, c, new)
            fc, fd = np.where(left, f_new, fd), np.where(left, fc, f_new)
            if np.all(hi - lo < 1e-6):
                break

    z, a, b = best.z, best.a, best.b
    enough = (problem.n >= min_samples) & np.isfinite(z)
    z, a, b = (np.where(enough, v, np.nan) for v in (z, a, b))
    sim, _ = problem.simulate(np.nan_to_num(z), np.nan_to_num(a), problem.loss_term(np.nan_to_num(b, nan=1.0)))
    n = np.maximum(problem.n, 1)
    residual = np.where(problem.valid, sim - problem.y, 0.0)
    rmse = np.sqrt((residual**2).sum(1) / n)
    sim_mean = np.where(problem.valid, sim, 0.0).sum(1) / n
    d_sim = np.where(problem.valid, sim - sim_mean[:, None], 0.0)
    d_obs = np.where(problem.valid, problem.y - problem.obs_mean[:, None], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (d_sim * d_obs).sum(1) / np.sqrt((d_sim**2).sum(1) * (d_obs**2).sum(1))
    result = SM2RAINParameters(
        Z=z, a=a, b=b,
        rmse=np.where(enough, rmse, np.nan),
        r=np.where(enough, r, np.nan),
        n=problem.n,
    )
    if one_cell:
        result = SM2RAINParameters(**{k: v[0] for k, v in result.to_dict().items()})
    return result


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
    return SM2RAINParameters(
        Z=np.exp(interpolated[:, 0]),
        a=a_out,
        b=interpolated[:, 2],
        rmse=np.full(targets, np.nan),
        r=np.full(targets, np.nan),
        n=np.zeros(targets, dtype=np.int64),
    )
