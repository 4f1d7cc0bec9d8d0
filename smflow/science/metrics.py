"""Agreement metrics between an estimate and a reference, over the last (time) axis.

All functions take ``estimate`` and ``reference`` arrays that broadcast against each other, shaped
``(..., time)`` -- typically ``(cells, time)`` -- and reduce the last axis. Missing values are
handled pairwise: only the time steps where *both* inputs are finite count, per cell. Where fewer
than ``min_samples`` pairs remain (or the metric is undefined, e.g. a constant reference for
Pearson's R) the result is NaN. A 1-D input gives a 0-d result (a numpy scalar).

The conventions follow the papers the system implements: bias is ``estimate - reference``
(Zhang et al. 2022, Eq. 12), RMSE is the root mean square difference (Zhang et al. 2022, Eq. 13,
per cell), R is Pearson's product-moment correlation (Zhang et al. 2022, Eq. 11).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["bias", "kge", "nse", "pearson_r", "rmse", "ubrmse"]


class _Pairs:
    """Estimate/reference pairs with a common finite mask, zero-filled where masked."""

    __slots__ = ("estimate", "reference", "mask", "n", "enough")

    def __init__(self, estimate: ArrayLike, reference: ArrayLike, min_samples: int) -> None:
        if isinstance(min_samples, bool) or not isinstance(min_samples, (int, np.integer)) or min_samples < 1:
            raise ValueError(f"`min_samples` must be a positive integer, got {min_samples!r}.")
        e = np.asarray(estimate, dtype=float)
        r = np.asarray(reference, dtype=float)
        try:
            e, r = np.broadcast_arrays(e, r)
        except ValueError:
            raise ValueError(
                f"`estimate` with shape {e.shape} and `reference` with shape {r.shape} do not broadcast; "
                "pass arrays shaped (cells, time) or (time,) with the same time length on the last axis."
            ) from None
        if e.ndim == 0:
            raise ValueError("`estimate` and `reference` need a time axis (the last axis); got scalars.")
        self.mask = np.isfinite(e) & np.isfinite(r)
        self.estimate = np.where(self.mask, e, 0.0)
        self.reference = np.where(self.mask, r, 0.0)
        self.n = self.mask.sum(axis=-1)
        self.enough = self.n >= min_samples

    def mean(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        with np.errstate(invalid="ignore", divide="ignore"):
            return values.sum(axis=-1) / self.n

    def anomaly(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.where(self.mask, values - self.mean(values)[..., None], 0.0)

    def correlation(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Pearson's R and the sums of squared anomalies of the estimate and of the reference."""
        de, dr = self.anomaly(self.estimate), self.anomaly(self.reference)
        see, srr = (de * de).sum(-1), (dr * dr).sum(-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.clip((de * dr).sum(-1) / np.sqrt(see * srr), -1.0, 1.0)
        return r, see, srr

    def finish(self, result: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.where(self.enough, result, np.nan)[()]


#: The Parameters, Returns and Raises sections every metric shares (filled in by
#: :func:`_documented`, so the six docstrings say the same thing in the same words).
_SECTIONS = """Parameters
    ----------
    estimate : array_like, shape (..., time)
        {estimate}
    reference : array_like, shape (..., time)
        {reference}, broadcastable against `estimate`.
    min_samples : int, default 2
        Minimum number of pairs where both inputs are finite; fewer pairs give NaN.

    Returns
    -------
    {result} : numpy.ndarray, shape (...)
        {result_description}

    Raises
    ------
    ValueError
        If the inputs do not broadcast, are scalars, or `min_samples` is not a positive integer."""

_Metric = TypeVar("_Metric", bound=Callable[..., NDArray[np.float64]])


def _documented(
    estimate: str, reference: str = "Reference values in the same unit", *, returns: tuple[str, str]
) -> Callable[[_Metric], _Metric]:
    """Put the shared sections, with these descriptions, at ``{sections}`` in a metric's docstring.

    ``returns`` is the name of the result and its description (with its unit).
    """

    def fill(metric: _Metric) -> _Metric:
        if metric.__doc__:  # None under python -OO
            sections = _SECTIONS.format(estimate=estimate, reference=reference, result=returns[0],
                                        result_description=returns[1])
            metric.__doc__ = metric.__doc__.replace("{sections}", sections)
        return metric

    return fill


@_documented("Estimated values (any unit).", "Reference values",
             returns=("r", "Correlation coefficient [-]; NaN where too few pairs or a constant series."))
def pearson_r(estimate: ArrayLike, reference: ArrayLike, *, min_samples: int = 2) -> NDArray[np.float64]:
    """Pearson correlation coefficient over the last axis, on pairwise-finite samples.

    {sections}

    Notes
    -----
    .. math::

        R = \\frac{\\sum_t (e_t - \\bar e)(r_t - \\bar r)}
                 {\\sqrt{\\sum_t (e_t - \\bar e)^2}\\sqrt{\\sum_t (r_t - \\bar r)^2}}

    References
    ----------
    Zhang, Hou & Huang 2022, Remote Sens. 14, 5355, Eq. 11.
    """
    p = _Pairs(estimate, reference, min_samples)
    return p.finish(p.correlation()[0])


@_documented("Estimated values, e.g. soil moisture [m3 m-3] or rainfall [mm].",
             returns=("bias", "Mean difference [unit of the inputs]; positive = estimate too high."))
def bias(estimate: ArrayLike, reference: ArrayLike, *, min_samples: int = 2) -> NDArray[np.float64]:
    """Mean difference ``estimate - reference`` over the last axis.

    {sections}

    Notes
    -----
    .. math:: \\mathrm{bias} = \\frac{1}{M}\\sum_{t=1}^{M} (e_t - r_t)

    References
    ----------
    Zhang, Hou & Huang 2022, Remote Sens. 14, 5355, Eq. 12.
    """
    p = _Pairs(estimate, reference, min_samples)
    return p.finish(p.mean(p.estimate - p.reference))


@_documented("Estimated values, e.g. soil moisture [m3 m-3] or rainfall [mm].",
             returns=("rmse", "Root mean square difference [unit of the inputs]."))
def rmse(estimate: ArrayLike, reference: ArrayLike, *, min_samples: int = 2) -> NDArray[np.float64]:
    """Root mean square difference over the last axis.

    {sections}

    Notes
    -----
    .. math:: \\mathrm{RMSE} = \\sqrt{\\frac{1}{M}\\sum_{t=1}^{M} (e_t - r_t)^2}

    The paper also averages over grid cells (its :math:`N`); here every cell keeps its own value.

    References
    ----------
    Zhang, Hou & Huang 2022, Remote Sens. 14, 5355, Eq. 13 (per cell).
    """
    p = _Pairs(estimate, reference, min_samples)
    d = p.estimate - p.reference
    return p.finish(np.sqrt(p.mean(d * d)))


@_documented("Estimated values, e.g. soil moisture [m3 m-3].",
             returns=("ubrmse", "Unbiased root mean square difference [unit of the inputs]."))
def ubrmse(estimate: ArrayLike, reference: ArrayLike, *, min_samples: int = 2) -> NDArray[np.float64]:
    """Unbiased RMSE (standard deviation of the difference) over the last axis.

    {sections}

    Notes
    -----
    Computed from the centred difference (not as :math:`\\sqrt{\\mathrm{RMSE}^2 - \\mathrm{bias}^2}`,
    which loses precision when the bias dominates):

    .. math::

        \\mathrm{ubRMSE} = \\sqrt{\\frac{1}{M}\\sum_{t=1}^{M}
            \\left[(e_t - \\bar e) - (r_t - \\bar r)\\right]^2}
            = \\sqrt{\\mathrm{RMSE}^2 - \\mathrm{bias}^2}

    References
    ----------
    Entekhabi, D., Reichle, R. H., Koster, R. D. & Crow, W. T. (2010). Performance metrics for
    soil moisture retrievals and application requirements. J. Hydrometeorol. 11, 832-840.
    Used as a validation metric in Ming et al. 2022.
    """
    p = _Pairs(estimate, reference, min_samples)
    d = p.anomaly(p.estimate - p.reference)
    return p.finish(np.sqrt(p.mean(d * d)))


@_documented("Simulated values, e.g. rainfall [mm].", "Observed values in the same unit",
             returns=("nse", "Efficiency [-], 1 = perfect, 0 = as good as the reference mean; NaN for a constant reference."))
def nse(estimate: ArrayLike, reference: ArrayLike, *, min_samples: int = 2) -> NDArray[np.float64]:
    """Nash-Sutcliffe efficiency over the last axis.

    {sections}

    Notes
    -----
    .. math::

        \\mathrm{NSE} = 1 - \\frac{\\sum_t (e_t - r_t)^2}{\\sum_t (r_t - \\bar r)^2}

    References
    ----------
    Nash, J. E. & Sutcliffe, J. V. (1970). River flow forecasting through conceptual models
    part I. J. Hydrol. 10, 282-290. The SM2RAIN reference code calibrates on 1 - NSE.
    """
    p = _Pairs(estimate, reference, min_samples)
    d = p.estimate - p.reference
    dr = p.anomaly(p.reference)
    with np.errstate(invalid="ignore", divide="ignore"):
        denominator = (dr * dr).sum(-1)
        value = 1.0 - (d * d).sum(-1) / np.where(denominator > 0, denominator, np.nan)
    return p.finish(value)


@_documented("Simulated values, e.g. rainfall [mm].", "Observed values in the same unit",
             returns=("kge", "Efficiency [-], 1 = perfect; NaN where the reference is constant or has zero mean."))
def kge(estimate: ArrayLike, reference: ArrayLike, *, min_samples: int = 2) -> NDArray[np.float64]:
    """Kling-Gupta efficiency (Gupta et al. 2009) over the last axis.

    {sections}

    Notes
    -----
    .. math::

        \\mathrm{KGE} = 1 - \\sqrt{(R - 1)^2 + (\\alpha - 1)^2 + (\\beta - 1)^2},\\quad
        \\alpha = \\frac{\\sigma_e}{\\sigma_r},\\quad \\beta = \\frac{\\mu_e}{\\mu_r}

    with :math:`R` Pearson's correlation and population standard deviations.

    References
    ----------
    Gupta, H. V., Kling, H., Yilmaz, K. K. & Martinez, G. F. (2009). Decomposition of the mean
    squared error and NSE performance criteria. J. Hydrol. 377, 80-91, Eq. 9. Suggested as the
    SM2RAIN calibration objective by Zhang et al. 2022, Sect. 3.3.
    """
    p = _Pairs(estimate, reference, min_samples)
    r, see, srr = p.correlation()
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = np.sqrt(see / srr)
        beta = p.mean(p.estimate) / p.mean(p.reference)
        value = 1.0 - np.sqrt((r - 1.0) ** 2 + (alpha - 1.0) ** 2 + (beta - 1.0) ** 2)
    return p.finish(np.where(np.isfinite(value), value, np.nan))
