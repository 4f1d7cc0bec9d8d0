"""Solvers of the SM2RAIN calibration for a block of cells: the (Z, a, b) fit behind
:func:`smflow.science.sm2rain.calibrate_sm2rain`.

For a fixed b, and a known set of steps with positive rain, the model is linear in (Z, a): the
box-constrained least squares follow from 2 x 2 normal equations (:func:`_box_least_squares`).
Two solvers search b around that:

* :func:`_calibrate_exact` (any aggregation): every b of a log-spaced grid on the full series,
  for all cells at once, then a golden-section search per cell;
* :func:`_calibrate_daily` (daily comparison): a compiled per-cell kernel
  (:func:`smflow.science._kernels.sm2rain_daily`) that finds the basins of b by an exact scan of
  the clipped objective and refines the best ones by line searches of exact passes over the series.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray


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
        objective: str,
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


#: Saturation nodes of the histogram stage of the daily calibration.
_DAILY_BINS = 512
#: Fits of (Z, a) per value of b in the exact scan of the daily calibration, and how many of the
#: scan's local minima are refined at most.
_SCAN_ITERATIONS = 2
_SCAN_CHAINS = 2


def _scan_values(b_bounds: tuple[float, float]) -> NDArray[np.float64]:
    """Values of b of the exact scan: ``b_lo 2^k`` up to ``b_hi`` (and ``b_hi``), so that each
    power ``s^b`` is the square of the previous one."""
    lo, hi = b_bounds
    doublings = int(np.floor(np.log2(hi / lo) + 1e-12))
    values = lo * 2.0 ** np.arange(doublings + 1)
    if hi > values[-1] * (1 + 1e-9):
        values = np.append(values, hi)
    return values


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
    scan_iterations: int = _SCAN_ITERATIONS,
    chains: int = _SCAN_CHAINS,
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
    objective for a whole grid of b -- but the objective of the model without clipping on a fixed
    ``A``, which is not the clipped RMSE: far from the b that gave ``A`` it can rank the basins of b
    wrongly (real daily series have two basins, e.g. b near 0 and b near 3, within a few tenths of a
    percent of each other). So the basins are found on the clipped objective itself:

    1. an exact scan of the clipped objective at ``b = b_lo 2^k`` (k = 0, 1, ... up to ``b_hi``:
       14 values for the default bounds; each power of s is the square of the previous one, no
       ``exp``): (Z, a) fitted on the rising or raining steps (on the rising ones alone, a can stay
       locked at 0 for large b), then again on the steps where that fit rains (`scan_iterations`
       fits), and the clipped model scored on the series;
    2. for each of the best `chains` local minima of the scan (the second one only if within
       ``_kernels.SCAN_MARGIN`` of the best), a line search in log b between its neighbouring scan
       points, from the vertex of the parabola through the three: at most `passes` exact passes,
       each fitting (Z, a) under the box bounds on the active set of the best fit so far (and
       once more on its own active set), scoring the clipped model and its slope in log b, and
       stepping by the secant of the slopes, else Gauss-Newton (a Z or a held on its bound left
       out), else bisection, inside the bracket that the slopes and values shrink.

    The best clipped fit over all passes is returned. ``log s`` is taken once per cell; each pass
    costs one ``exp`` per time step. With ``refine=False``: one histogram search over the whole
    grid on the rising steps and one exact pass.

    The histogram objective alone (the method before issue 8) stopped 0.1-7 % above the global
    optimum on some real daily station-years; ``tests/science/test_sm2rain_optimum.py`` holds the
    default path within 0.1 % of scipy's ``differential_evolution`` on them.

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
    scan_b = _scan_values(b_bounds)

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
                                   threshold, code, bounds, grid, power, log_nodes, scan_b, int(scan_iterations),
                                   int(chains), bool(refine), int(passes), out[rows])

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


def _calibrate_exact(
    data: NDArray[np.float64],
    obs: NDArray[np.float64],
    *,
    dt: float,
    aggregation: int,
    delta_s_threshold: float | None,
    objective: str,
    z_bounds: tuple[float, float],
    a_bounds: tuple[float, float],
    grid: NDArray[np.float64],
    refine: bool,
    max_active_set_iterations: int,
) -> tuple[_Fit, NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """Exact calibration of a block of cells (any aggregation): the b grid on the full series for
    all cells at once, then a golden-section search in log b per cell.

    Returns the best fit, the sample size, and the sums of the observations and of their squares
    on the valid blocks (for R).
    """
    cells = data.shape[0]
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
