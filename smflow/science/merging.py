"""Least-squares merging of three soil-moisture products weighted by their TC error variances.

Ming et al. 2022, Eqs. 11-17: the parents are rescaled into the space of a reference parent with
the TC scaling, then averaged with weights inversely proportional to their error variances. Cells
where TC is unresolved fall back to the arithmetic mean of the (unscaled) parents, as in the paper.

``fit_tc_merging`` estimates :class:`MergingParameters` from a training period; ``apply_tc_merging``
applies them to any time step, renormalising the weights when a parent is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from smflow.science.tc import triple_collocation

__all__ = [
    "MERGE_METHOD_FLAG_MEANINGS",
    "MERGE_METHOD_FLAG_VALUES",
    "METHOD_ARITHMETIC_MEAN",
    "METHOD_MACHINE_LEARNING",
    "METHOD_MACHINE_LEARNING_PARTIAL",
    "METHOD_NO_DATA",
    "METHOD_PARTIAL",
    "METHOD_TC_LEAST_SQUARES",
    "MergedResult",
    "MergingParameters",
    "apply_tc_merging",
    "fit_tc_merging",
    "least_squares_weights",
]

#: All three parents, TC least-squares weights (Ming et al. 2022, Eqs. 15-17).
METHOD_TC_LEAST_SQUARES = np.int8(0)
#: TC unresolved in this cell: arithmetic mean of the available parents.
METHOD_ARITHMETIC_MEAN = np.int8(1)
#: TC resolved but fewer than three parents available: weights renormalised over those present.
METHOD_PARTIAL = np.int8(2)
#: No parent available.
METHOD_NO_DATA = np.int8(3)

#: Machine-learning merging (RF / LSTM / CNN / BMA, Zhang et al. 2022), every parent present.
METHOD_MACHINE_LEARNING = np.int8(4)
#: Machine-learning merging from the parents present (the missing ones masked in the features).
METHOD_MACHINE_LEARNING_PARTIAL = np.int8(5)

#: CF ``flag_values`` of the ``merge_method`` variable.
MERGE_METHOD_FLAG_VALUES = np.array([0, 1, 2, 3, 4, 5], dtype=np.int8)
#: CF ``flag_meanings`` of the ``merge_method`` variable (same order as the values).
MERGE_METHOD_FLAG_MEANINGS = ("tc_least_squares arithmetic_mean partial no_data machine_learning "
                              "machine_learning_partial")

_N_PARENTS = 3


def least_squares_weights(error_variance: ArrayLike) -> NDArray[np.float64]:
    """Least-squares merging weights from the error variances of the parents.

    Parameters
    ----------
    error_variance : array_like, shape (3, ...) -- typically (3, cells)
        Error variances of the three parents *in a common space* [(m3 m-3)^2].

    Returns
    -------
    weights : numpy.ndarray, shape (3, ...)
        Weights [-] summing to 1 along the first axis; NaN (all three) where any error variance is
        not finite and positive.

    Raises
    ------
    ValueError
        If the first axis does not hold exactly three parents.

    Notes
    -----
    Minimising :math:`\\sigma_m^2 = \\sum_i w_i^2\\sigma_i^2` (Eq. 13) subject to
    :math:`\\sum_i w_i = 1` (Eq. 12) gives (Eqs. 15-17)

    .. math::

        w_1 = \\frac{\\sigma_2^2\\sigma_3^2}{\\sigma_1^2\\sigma_2^2 + \\sigma_1^2\\sigma_3^2
              + \\sigma_2^2\\sigma_3^2}

    and cyclically for :math:`w_2, w_3`: each weight is proportional to the product of the *other*
    two error variances, i.e. to :math:`1/\\sigma_i^2`. The minimum is
    :math:`\\sigma_m^2 = 1/\\sum_i \\sigma_i^{-2}`.

    References
    ----------
    Ming, W. et al. 2022, Remote Sens. 14, 1744, Eqs. 12-17.
    """
    var = np.asarray(error_variance, dtype=float)
    if var.ndim == 0 or var.shape[0] != _N_PARENTS:
        raise ValueError(
            f"`error_variance` must hold the 3 parents on its first axis, got shape {var.shape}; "
            "least-squares merging needs exactly three error variances per cell."
        )
    valid = np.all(np.isfinite(var) & (var > 0), axis=0)
    s1, s2, s3 = np.where(valid, var, 1.0)
    products = np.stack([s2 * s3, s1 * s3, s1 * s2])
    weights = products / products.sum(axis=0)
    return np.where(valid, weights, np.nan)


@dataclass(frozen=True)
class MergingParameters:
    """Fitted TC least-squares merging of three parents, per cell.

    A parent value ``x_i`` is rescaled into the reference parent's space as
    ``offset_i + gain_i * x_i`` and the rescaled parents are averaged with ``weights``.
    Every array ends with the cell axis, so the set can be reshaped onto a grid and stored as an
    ``.npz`` (``numpy.savez(path, **params.to_dict())``).

    Attributes
    ----------
    weights : numpy.ndarray, shape (3, cells)
        Merging weights [-], summing to 1 (1/3 each where unresolved).
    gain : numpy.ndarray, shape (3, cells)
        Multiplicative rescaling into the reference space :math:`\\beta_{ref}/\\beta_i` [-]
        (1 where unresolved).
    offset : numpy.ndarray, shape (3, cells)
        Additive rescaling :math:`\\bar x_{ref} - gain_i \\bar x_i` [m3 m-3] (0 where unresolved).
    reference_error_variance : numpy.ndarray, shape (3, cells)
        TC error variance of each parent after rescaling into the reference parent's space
        [(m3 m-3)^2] (the TC result's ``error_variance`` is in each parent's own space:
        ``reference_error_variance = error_variance * gain**2``); NaN where unresolved.
    merged_error_variance : numpy.ndarray, shape (cells,)
        Error variance of the merged value when all three parents are present [(m3 m-3)^2];
        NaN where unresolved.
    resolved : numpy.ndarray of bool, shape (cells,)
        Whether TC was resolved in the cell (otherwise the arithmetic-mean fallback applies).
    sample_size : numpy.ndarray of int, shape (cells,)
        Number of common samples of the three parents in the fit.
    """

    weights: NDArray[np.float64]
    gain: NDArray[np.float64]
    offset: NDArray[np.float64]
    reference_error_variance: NDArray[np.float64]
    merged_error_variance: NDArray[np.float64]
    resolved: NDArray[np.bool_]
    sample_size: NDArray[np.int64]

    def __post_init__(self) -> None:
        coerced: dict[str, NDArray[Any]] = {}
        for f in fields(self):
            value = np.asarray(getattr(self, f.name))
            if f.name == "resolved":
                if value.dtype != bool:
                    value = np.where(np.isfinite(value.astype(float)), value, 0).astype(bool)
            elif f.name == "sample_size":
                value = np.where(np.isfinite(value.astype(float)), value, 0).astype(np.int64)
            else:
                value = value.astype(np.float64)
            coerced[f.name] = value
        cells = coerced["resolved"].shape
        for name in ("merged_error_variance", "sample_size"):
            if coerced[name].shape != cells:
                raise ValueError(
                    f"MergingParameters.{name} has shape {coerced[name].shape} but `resolved` has {cells}; "
                    "all per-cell arrays must share the cell shape."
                )
        for name in ("weights", "gain", "offset", "reference_error_variance"):
            if coerced[name].shape != (_N_PARENTS, *cells):
                raise ValueError(
                    f"MergingParameters.{name} must be shaped (3, *cells) = {(_N_PARENTS, *cells)}, got "
                    f"{coerced[name].shape}."
                )
        for name, value in coerced.items():
            object.__setattr__(self, name, value)

    @property
    def n_cells(self) -> int:
        """Number of cells."""
        return int(self.resolved.size)

    def to_dict(self) -> dict[str, NDArray[Any]]:
        """Plain mapping of field name to array (every array ends with the cell axis).

        Returns
        -------
        dict of str to numpy.ndarray
            Suitable for ``numpy.savez`` or JSON after ``.tolist()``.
        """
        return {f.name: np.array(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, ArrayLike]) -> MergingParameters:
        """Rebuild from :meth:`to_dict` output, an ``NpzFile`` or nested lists.

        Parameters
        ----------
        data : mapping of str to array_like
            Must contain every field; unknown keys are ignored.

        Returns
        -------
        MergingParameters

        Raises
        ------
        ValueError
            If a field is missing or the shapes are inconsistent.
        """
        names = [f.name for f in fields(cls)]
        if "reference_error_variance" not in data and "error_variance" in data:
            # models registered before the rename stored the reference-space variances as "error_variance"
            data = {**data, "reference_error_variance": data["error_variance"]}
        missing = [name for name in names if name not in data]
        if missing:
            raise ValueError(
                f"MergingParameters.from_dict: missing {missing}; pass the mapping written by "
                "MergingParameters.to_dict()."
            )
        return cls(**{name: np.asarray(data[name]) for name in names})


@dataclass(frozen=True)
class MergedResult:
    """Merged soil moisture with its error variance and the method used for each value.

    Attributes
    ----------
    soil_moisture : numpy.ndarray, shape (cells,) or (cells, time)
        Merged soil moisture in the reference parent's space [m3 m-3]; NaN where no parent.
    error_variance : numpy.ndarray, same shape
        Error variance of the merged value [(m3 m-3)^2]; NaN for the arithmetic-mean fallback and
        where no parent is available.
    method : numpy.ndarray of int8, same shape
        :data:`METHOD_TC_LEAST_SQUARES` (0), :data:`METHOD_ARITHMETIC_MEAN` (1),
        :data:`METHOD_PARTIAL` (2) or :data:`METHOD_NO_DATA` (3); see
        :data:`MERGE_METHOD_FLAG_VALUES` / :data:`MERGE_METHOD_FLAG_MEANINGS`.
    """

    soil_moisture: NDArray[np.float64]
    error_variance: NDArray[np.float64]
    method: NDArray[np.int8]


def _check_parents(parents: ArrayLike, allowed_ndim: tuple[int, ...], hint: str) -> NDArray[np.float64]:
    data = np.asarray(parents, dtype=float)
    if data.ndim not in allowed_ndim or data.shape[0] != _N_PARENTS:
        raise ValueError(
            f"`parents` must be shaped {hint} with the 3 parents on the first axis, got shape "
            f"{data.shape}; stack them with numpy.stack([smap, era5_land, gldas])."
        )
    return data


def fit_tc_merging(
    parents: ArrayLike,
    *,
    reference: int = 0,
    min_samples: int = 30,
    min_pair_correlation: float = 0.2,
) -> MergingParameters:
    """Fit TC least-squares merging parameters of three parents, per cell.

    Parameters
    ----------
    parents : array_like, shape (3, cells, time)
        Collocated soil moisture of the three parents [m3 m-3], NaN where missing. For one cell
        use ``parents[:, None, :]``.
    reference : {0, 1, 2}, default 0
        Index of the parent whose space (mean and dynamic range) the merged product takes.
    min_samples : int, default 30
        Minimum number of common samples for TC to be resolved in a cell.
    min_pair_correlation : float, default 0.2
        Minimum pairwise Pearson correlation for TC to be resolved in a cell.

    Returns
    -------
    MergingParameters
        Weights, gains, offsets, error variances (reference space), merged error variance,
        resolved flag and sample size per cell.

    Raises
    ------
    ValueError
        If `parents` is not shaped (3, cells, time), `reference` is not 0, 1 or 2, or the TC
        thresholds are invalid (see :func:`~smflow.science.tc.triple_collocation`).

    Notes
    -----
    With the TC scaling :math:`\\beta_i` (relative to the first parent) and the common-sample means
    :math:`\\bar x_i`, each parent is rescaled into the reference space (Ming et al. 2022, Eq. 5
    with :math:`T` eliminated):

    .. math::

        x_i' = \\bar x_{ref} + \\frac{\\beta_{ref}}{\\beta_i}(x_i - \\bar x_i),\\qquad
        \\sigma_i'^2 = \\left(\\frac{\\beta_{ref}}{\\beta_i}\\right)^2 \\sigma_{\\varepsilon_i}^2

    and the weights follow Eqs. 15-17 from :math:`\\sigma_i'^2`; the merged error variance is
    Eq. 13 at the optimum,

    .. math:: \\sigma_m^2 = \\sum_i w_i^2 \\sigma_i'^2 = \\Big(\\sum_i \\sigma_i'^{-2}\\Big)^{-1}.

    Where TC is unresolved the parameters fall back to the arithmetic mean (weights 1/3, gain 1,
    offset 0, error variances NaN), as Ming et al. 2022 do for unresolved pixels.

    References
    ----------
    Ming, W. et al. 2022, Remote Sens. 14, 1744, Eqs. 5-17.
    Yilmaz, M. T., Crow, W. T., Anderson, M. C. & Hain, C. (2012). An objective methodology for
    merging satellite- and model-based soil moisture products. Water Resour. Res. 48, W11502.
    """
    data = _check_parents(parents, (3,), "(3, cells, time)")
    if isinstance(reference, bool) or reference not in (0, 1, 2):
        raise ValueError(f"`reference` must be the index 0, 1 or 2 of a parent, got {reference!r}.")
    tc = triple_collocation(
        data[0], data[1], data[2], min_samples=min_samples, min_pair_correlation=min_pair_correlation
    )
    resolved = tc.resolved
    with np.errstate(invalid="ignore", divide="ignore"):
        gain = tc.scaling[reference] / tc.scaling
        offset = tc.mean[reference] - gain * tc.mean
        error_variance = tc.error_variance * gain**2
        weights = least_squares_weights(error_variance)
        merged_error_variance = 1.0 / np.sum(1.0 / error_variance, axis=0)
    return MergingParameters(
        weights=np.where(resolved, weights, 1.0 / _N_PARENTS),
        gain=np.where(resolved, gain, 1.0),
        offset=np.where(resolved, offset, 0.0),
        reference_error_variance=np.where(resolved, error_variance, np.nan),
        merged_error_variance=np.where(resolved, merged_error_variance, np.nan),
        resolved=resolved,
        sample_size=tc.sample_size,
    )


def apply_tc_merging(params: MergingParameters, parents: ArrayLike, *, chunk_cells: int | None = None) -> MergedResult:
    """Merge three parents with fitted TC least-squares parameters.

    Parameters
    ----------
    params : MergingParameters
        Output of :func:`fit_tc_merging` for the same cells.
    parents : array_like, shape (3, cells) or (3, cells, time)
        Soil moisture of the three parents [m3 m-3], NaN where missing, in the order of the fit.
    chunk_cells : int, optional
        Cells merged at a time. The temporaries are shaped (3, chunk_cells[, time]), so the memory
        used beyond the inputs and the outputs is bounded (default: ~2^20 values per parent, a few
        tens of MiB). The result does not depend on it.

    Returns
    -------
    MergedResult
        Merged soil moisture [m3 m-3], its error variance [(m3 m-3)^2] and the method flag, each
        shaped like one parent, ``(cells,)`` or ``(cells, time)``.

    Raises
    ------
    ValueError
        If `parents` is not shaped (3, cells[, time]), its cell count differs from `params`, or
        `chunk_cells` is not a positive integer.

    Notes
    -----
    With :math:`A` the parents available at a time step, the merged value and its error variance
    are

    .. math::

        x_m = \\frac{\\sum_{i \\in A} w_i (o_i + g_i x_i)}{\\sum_{i \\in A} w_i},\\qquad
        \\sigma_m^2 = \\Big(\\sum_{i \\in A} \\sigma_i'^{-2}\\Big)^{-1}

    Because :math:`w_i \\propto \\sigma_i'^{-2}` (Ming et al. 2022, Eqs. 15-17), renormalising over
    :math:`A` gives the least-squares weights of the available subset. With all three parents this
    is Eq. 11 with Eq. 13. Unresolved cells take the arithmetic mean of the available parents
    (error variance unknown: NaN).

    References
    ----------
    Ming, W. et al. 2022, Remote Sens. 14, 1744, Eqs. 11-17.
    """
    data = _check_parents(parents, (2, 3), "(3, cells) or (3, cells, time)")
    cell_shape = params.resolved.shape
    if data.shape[1:2] != cell_shape:
        raise ValueError(
            f"`parents` has {data.shape[1]} cells but the merging parameters have {cell_shape}; "
            "apply the parameters fitted on the same cells (same grid and land mask)."
        )
    if chunk_cells is None:
        # ~2^20 values per parent and temporary (~8 MiB): the (3, chunk, time) temporaries below
        # stay a few tens of MiB whatever the domain (issue 16: 10.3 GiB at 400,000 x 180 before)
        steps = int(np.prod(data.shape[2:], dtype=np.int64))
        chunk_cells = max(1, 2**20 // max(1, steps))
    if isinstance(chunk_cells, bool) or not isinstance(chunk_cells, (int, np.integer)) or chunk_cells < 1:
        raise ValueError(f"`chunk_cells` must be a positive integer (or None for automatic), got {chunk_cells!r}.")
    merged = np.empty(data.shape[1:], dtype=np.float64)
    error_variance = np.empty(data.shape[1:], dtype=np.float64)
    method = np.empty(data.shape[1:], dtype=np.int8)
    for start in range(0, data.shape[1], int(chunk_cells)):
        cells = slice(start, start + int(chunk_cells))
        _merge_cells(params, cells, data[:, cells], merged[cells], error_variance[cells], method[cells])
    return MergedResult(soil_moisture=merged, error_variance=error_variance, method=method)


def _merge_cells(params: MergingParameters, cells: slice, data: NDArray[np.float64], merged_out: NDArray[np.float64],
                 error_variance_out: NDArray[np.float64], method_out: NDArray[np.int8]) -> None:
    """:func:`apply_tc_merging` on the cells ``cells`` (``data`` shaped (3, chunk[, time])), into the outputs.

    Element-wise, with the three parents reduced in the order 0, 1, 2 whatever the chunk: the result
    of a cell does not depend on the chunking (the same bits as one call over all cells).
    """
    expand = (slice(None), slice(None)) + (None,) * (data.ndim - 2)
    cell_expand = expand[1:]
    rescaled = params.offset[:, cells][expand] + params.gain[:, cells][expand] * data
    available = np.isfinite(rescaled)
    n_available = available.sum(axis=0)
    resolved = np.broadcast_to(params.resolved[cells][cell_expand], n_available.shape)

    weights = np.where(available, params.weights[:, cells][expand], 0.0)
    total = weights.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        merged = np.where(available, weights * rescaled, 0.0).sum(axis=0) / total
        precision = np.where(available, 1.0 / params.reference_error_variance[:, cells][expand], 0.0).sum(axis=0)
        error_variance = np.where(resolved, 1.0 / precision, np.nan)
    no_data = n_available == 0
    merged_out[...] = np.where(no_data, np.nan, merged)
    error_variance_out[...] = np.where(no_data, np.nan, error_variance)

    method = np.full(n_available.shape, METHOD_TC_LEAST_SQUARES, dtype=np.int8)
    method[resolved & (n_available < _N_PARENTS)] = METHOD_PARTIAL
    method[~resolved] = METHOD_ARITHMETIC_MEAN
    method[no_data] = METHOD_NO_DATA
    method_out[...] = method
