"""Triple collocation (TC) of three collocated data sets, vectorised over cells.

Covariance-based TC (Ming et al. 2022, Eqs. 5-8) with the extended-TC correlation against the
unknown truth (McColl et al. 2014; Ming et al. 2022, Eqs. 9-10). The point estimates equal those of
pytesmo's ``tcol_metrics(x, y, z, ref_ind=0)`` (covariances with ``ddof=1``) on the common finite
samples of each cell; only the *scaling* is reported the other way round (see
:class:`TCResult`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["TCResult", "collocated_moments", "tc_from_moments", "triple_collocation"]

#: Order of the pairs in :attr:`TCResult.pair_correlation`.
PAIRS: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2))


@dataclass(frozen=True)
class TCResult:
    """Per-cell triple collocation estimates of three data sets ``(x, y, z)``.

    Shapes are given for inputs shaped ``(cells, time)``; for 1-D inputs the cell axis is dropped.
    Metrics of cells that are not :attr:`resolved` are NaN; :attr:`sample_size`,
    :attr:`pair_correlation` and :attr:`mean` are kept for every cell.

    Attributes
    ----------
    error_variance : numpy.ndarray, shape (3, cells)
        Random error variance :math:`\\sigma_{\\varepsilon_i}^2` of x, y, z, each in its own
        space [(unit of the data set)^2, e.g. (m3 m-3)^2] (Ming et al. 2022, Eq. 8, squared).
    correlation_with_truth : numpy.ndarray, shape (3, cells)
        Correlation :math:`R_{T,i}` with the unknown truth [-] (Ming et al. 2022, Eq. 10): x takes
        the positive root, y the sign of :math:`C_{13}C_{23}`, z the sign of :math:`C_{12}C_{23}`.
    snr_db : numpy.ndarray, shape (3, cells)
        Signal-to-noise ratio :math:`10\\log_{10}(\\theta_i^2/\\sigma_{\\varepsilon_i}^2)`, signal
        variance over error variance [dB].
    scaling : numpy.ndarray, shape (3, cells)
        :math:`\\beta_i/\\beta_x`, the sensitivity of each data set to the truth relative to x [-]
        (1 for x, :math:`C_{23}/C_{13}` for y, :math:`C_{23}/C_{12}` for z). Dividing the anomalies
        of data set i by it rescales them into the space of x; pytesmo's ``beta`` is its inverse.
    pair_correlation : numpy.ndarray, shape (3, cells)
        Pearson correlation of the pairs (x, y), (x, z), (y, z) on the common samples [-].
    mean : numpy.ndarray, shape (3, cells)
        Means of x, y, z on the common samples [unit of each data set].
    sample_size : numpy.ndarray of int, shape (cells,)
        Number of time steps where x, y and z are all finite.
    resolved : numpy.ndarray of bool, shape (cells,)
        True where ``sample_size >= min_samples``, every pair correlation is at least
        ``min_pair_correlation``, every error variance is positive and every
        :math:`R_{T,i}^2` lies in (0, 1].
    """

    error_variance: NDArray[np.float64]
    correlation_with_truth: NDArray[np.float64]
    snr_db: NDArray[np.float64]
    scaling: NDArray[np.float64]
    pair_correlation: NDArray[np.float64]
    mean: NDArray[np.float64]
    sample_size: NDArray[np.int64]
    resolved: NDArray[np.bool_]


def collocated_moments(
    stack: ArrayLike,
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """Sample size, means and covariance matrix on the common finite samples of each cell.

    Parameters
    ----------
    stack : array_like, shape (k, cells, time)
        ``k`` collocated data sets.

    Returns
    -------
    sample_size : numpy.ndarray of int, shape (cells,)
        Number of time steps where all ``k`` data sets are finite.
    mean : numpy.ndarray, shape (k, cells)
        Means on those samples [unit of each data set]; NaN where ``sample_size`` is 0.
    covariance : numpy.ndarray, shape (k, k, cells)
        Sample covariances (``ddof=1``, as :func:`numpy.cov`) [product of the units]; NaN where
        ``sample_size`` < 2.

    Raises
    ------
    ValueError
        If `stack` is not 3-D.

    Notes
    -----
    Cross-products about a provisional mean (from a subsample of the common samples) with the exact
    correction for the remaining offset, :math:`\\sum (x - \\bar x)(y - \\bar y) = S_{xy} - S_x S_y / n`:
    one pass over the data that agrees with :func:`numpy.cov` on the masked samples to rounding
    precision whatever the offset of the data. Cells are processed in cache-sized blocks.
    """
    data = np.asarray(stack, dtype=float)
    if data.ndim != 3:
        raise ValueError(f"`stack` must be shaped (datasets, cells, time), got shape {data.shape}.")
    return _moments(list(data))


def _moments(data: list[NDArray[np.float64]]) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """:func:`collocated_moments` of ``k`` arrays shaped (cells, time), without stacking them."""
    k = len(data)
    cells = data[0].shape[0]
    n = np.empty(cells, dtype=np.int64)
    mean = np.empty((k, cells))
    covariance = np.empty((k, k, cells))
    if k == 3:
        # Triple collocation: one compiled pass per cell.
        from smflow.science import _kernels

        x, y, z = (np.ascontiguousarray(d, dtype=np.float64) for d in data)

        def kernel(start: int, stop: int) -> None:
            _kernels.tc_moments(x, y, z, start, stop, n, mean, covariance)

        _kernels.run_in_threads(kernel, cells, min_cells=512)
        return n, mean, covariance
    # Any other number of data sets: blocks of cells small enough for the CPU caches.
    for start in range(0, cells, _BLOCK_CELLS):
        rows = slice(start, start + _BLOCK_CELLS)
        block = [d[rows] for d in data]
        mask = block[0] == block[0]
        for i in range(1, k):
            mask &= block[i] == block[i]
        count = np.count_nonzero(mask, axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            # Sums about a provisional mean (from every 16th common sample), then the exact
            # correction: sum (x - m)(y - m') = S_xy - S_x S_y / n with S about the provisional mean.
            # The shift keeps the cancellation small whatever the offset of the data.
            thin = mask[:, ::16]
            shifted, sums = [], []
            for i in range(k):
                provisional = np.where(thin, block[i][:, ::16], 0.0).sum(axis=-1) / np.maximum(thin.sum(axis=-1), 1)
                values = np.where(mask, block[i] - provisional[:, None], 0.0)
                total = values.sum(axis=-1)
                mean[i, rows] = provisional + total / count
                shifted.append(values)
                sums.append(total)
            scale = np.where(count > 1, count - 1, np.nan)
            for i in range(k):
                for j in range(i, k):
                    cross = np.einsum("ct,ct->c", shifted[i], shifted[j])
                    value = (cross - sums[i] * sums[j] / count) / scale
                    covariance[i, j, rows] = value
                    covariance[j, i, rows] = value
        n[rows] = count
    return n, mean, covariance


#: Cells per block of :func:`collocated_moments`.
_BLOCK_CELLS = 128


def triple_collocation(
    x: ArrayLike,
    y: ArrayLike,
    z: ArrayLike,
    *,
    min_samples: int = 30,
    min_pair_correlation: float = 0.2,
    chunk_cells: int | None = None,
) -> TCResult:
    """Covariance-based triple collocation of three collocated data sets, per cell.

    Parameters
    ----------
    x, y, z : array_like, shape (cells, time) or (time,)
        Three collocated estimates of the same variable with mutually independent errors, e.g.
        soil moisture [m3 m-3] from a satellite, a reanalysis and a land-surface model. NaN marks
        missing values; only time steps where all three are finite are used (per cell). A 1-D input
        is one cell and gives results without the cell axis.
    min_samples : int, default 30
        Minimum number of common samples for a cell to be resolved (at least 3).
    min_pair_correlation : float, default 0.2
        Minimum Pearson correlation of every pair for a cell to be resolved (Lv et al. 2021 mask
        cells where any pairwise R < 0.2).
    chunk_cells : int, optional
        Process this many cells at a time (bounded memory for whole grids); default all at once.

    Returns
    -------
    TCResult
        Error variances, correlations with the truth, SNR, scaling, pair correlations, means,
        sample sizes and the resolved flag; see :class:`TCResult` for shapes and units.

    Raises
    ------
    ValueError
        If x, y, z differ in shape or are not 1-D/2-D, if `min_samples` < 3, or if
        `min_pair_correlation` is outside [-1, 1].

    Notes
    -----
    Error model :math:`x_i = \\alpha_i + \\beta_i T + \\varepsilon_i` (Ming et al. 2022, Eq. 5) with
    zero-mean errors uncorrelated with each other and with :math:`T`, so that
    :math:`C_{ij} = \\theta_i\\theta_j` for :math:`i \\ne j` and
    :math:`C_{ii} = \\theta_i^2 + \\sigma_{\\varepsilon_i}^2` with :math:`\\theta_i = \\beta_i\\sigma_T`
    (Eqs. 6-7). With :math:`(i, j, k)` a cyclic permutation of (1, 2, 3):

    .. math::

        \\theta_i^2 = \\frac{C_{ij} C_{ik}}{C_{jk}},\\qquad
        \\sigma_{\\varepsilon_i}^2 = C_{ii} - \\frac{C_{ij} C_{ik}}{C_{jk}} \\quad\\text{(Eq. 8)}

    .. math::

        R_{T,i}^2 = \\frac{C_{ij} C_{ik}}{C_{ii} C_{jk}} \\quad\\text{(Eq. 10)},\\qquad
        \\mathrm{SNR}_i = 10\\log_{10}\\frac{\\theta_i^2}{\\sigma_{\\varepsilon_i}^2}\\ \\mathrm{dB}

    .. math::

        \\frac{\\beta_y}{\\beta_x} = \\frac{C_{23}}{C_{13}},\\qquad
        \\frac{\\beta_z}{\\beta_x} = \\frac{C_{23}}{C_{12}}

    The Heihe paper's version of Eq. 8 (Zhang et al. 2022, Eq. 15, third row) repeats
    :math:`C_{12}` in the denominator; the correct :math:`C_{33} - C_{13}C_{23}/C_{12}` is used.
    Covariances are sample covariances (``ddof=1``) about the common-sample means. Estimates are
    computed for every cell and then masked, so no loop over cells is needed.

    References
    ----------
    Ming, W. et al. 2022, Remote Sens. 14, 1744, Eqs. 5-10.
    McColl, K. A. et al. (2014). Extended triple collocation: estimating errors and correlation
    coefficients with respect to an unknown target. Geophys. Res. Lett. 41, 6229-6236.
    Gruber, A. et al. (2016). Recent advances in (soil moisture) triple collocation analysis.
    Int. J. Appl. Earth Obs. Geoinf. 45, 200-211 (pytesmo ``tcol_metrics``).
    """
    arrays = [np.asarray(a, dtype=float) for a in (x, y, z)]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(
            f"x, y and z must have the same shape, got {[a.shape for a in arrays]}; collocate them on "
            "a common (cells, time) grid first (missing values as NaN)."
        )
    ndim = arrays[0].ndim
    if ndim not in (1, 2):
        raise ValueError(f"x, y and z must be shaped (cells, time) or (time,), got {arrays[0].shape}.")
    if isinstance(min_samples, bool) or not isinstance(min_samples, (int, np.integer)) or min_samples < 3:
        raise ValueError(f"`min_samples` must be an integer >= 3 (TC needs 3 covariances), got {min_samples!r}.")
    if not -1.0 <= float(min_pair_correlation) <= 1.0:
        raise ValueError(f"`min_pair_correlation` must lie in [-1, 1], got {min_pair_correlation!r}.")

    if ndim == 1:
        arrays = [a[None, :] for a in arrays]
    if chunk_cells is not None and (isinstance(chunk_cells, bool) or not isinstance(chunk_cells, (int, np.integer))
                                    or chunk_cells < 1):
        raise ValueError(f"`chunk_cells` must be a positive integer, got {chunk_cells!r}.")
    cells = arrays[0].shape[0]
    step = cells if chunk_cells is None else int(chunk_cells)
    parts = []
    for start in range(0, cells, max(step, 1)):
        parts.append(_moments([a[start : start + step] for a in arrays]))
    if len(parts) == 1:
        n, mean, c = parts[0]
    else:
        n = np.concatenate([p[0] for p in parts])
        mean = np.concatenate([p[1] for p in parts], axis=-1)
        c = np.concatenate([p[2] for p in parts], axis=-1)
    result = tc_from_moments(n, mean, c, min_samples=min_samples, min_pair_correlation=min_pair_correlation)
    if ndim == 1:
        result = TCResult(**{name: value[..., 0] for name, value in vars(result).items()})
    return result


def tc_from_moments(
    sample_size: ArrayLike,
    mean: ArrayLike,
    covariance: ArrayLike,
    *,
    min_samples: int = 30,
    min_pair_correlation: float = 0.2,
) -> TCResult:
    """Triple collocation metrics from precomputed sample moments (any trailing shape).

    Parameters
    ----------
    sample_size : array_like of int, shape (...)
        Number of common samples, e.g. (cells,) or (cells, resamples).
    mean : array_like, shape (3, ...)
        Means of x, y, z on the common samples [unit of each data set].
    covariance : array_like, shape (3, 3, ...)
        Sample covariances (``ddof=1``) [product of the units].
    min_samples, min_pair_correlation
        Resolution rules, as :func:`triple_collocation`.

    Returns
    -------
    TCResult
        Fields shaped (3, ...) and (...); see :func:`triple_collocation` for the formulas
        (Ming et al. 2022, Eqs. 5-10; McColl et al. 2014). Used by :func:`triple_collocation` and
        by the bootstrap of :mod:`smflow.science.bootstrap`, so both apply the same rules.
    """
    n = np.asarray(sample_size)
    c = np.asarray(covariance, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        pair_correlation = np.stack([c[i, j] / np.sqrt(c[i, i] * c[j, j]) for i, j in PAIRS])
        cyclic = ((0, 1, 2), (1, 0, 2), (2, 0, 1))
        signal = np.stack([c[i, j] * c[i, k] / c[j, k] for i, j, k in cyclic])  # theta_i^2
        diagonal = np.stack([c[0, 0], c[1, 1], c[2, 2]])
        error_variance = diagonal - signal
        rho2 = signal / diagonal
        sign = np.stack([np.ones_like(c[0, 0]), np.sign(c[0, 2] * c[1, 2]), np.sign(c[0, 1] * c[1, 2])])
        correlation_with_truth = sign * np.sqrt(rho2)
        snr_db = 10.0 * np.log10(signal / error_variance)
        scaling = np.stack([np.ones_like(c[0, 0]), c[1, 2] / c[0, 2], c[1, 2] / c[0, 1]])

        resolved = (
            (n >= min_samples)
            & np.all(pair_correlation >= min_pair_correlation, axis=0)
            & np.all(error_variance > 0, axis=0)
            & np.all((rho2 > 0) & (rho2 <= 1), axis=0)
        )

    def masked(a: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.where(resolved, a, np.nan)

    return TCResult(
        error_variance=masked(error_variance),
        correlation_with_truth=masked(correlation_with_truth),
        snr_db=masked(snr_db),
        scaling=masked(scaling),
        pair_correlation=pair_correlation,
        mean=np.asarray(mean, dtype=float),
        sample_size=n,
        resolved=resolved,
    )
