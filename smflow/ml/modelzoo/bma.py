"""Bayesian model averaging of the merging members (Raftery et al. 2005; Zhang, Hou & Huang 2022, Eq. 17).

The Heihe paper combines its three machine-learning soil-moisture estimates (RF-SM, LSTM-SM,
CNN-SM) as :math:`SM_m = \\sum_i w_i SM_i` (Eq. 17) with weights it describes as "the error of
:math:`SM_i` divided by the sum of all the errors". Taken literally that gives the *worst* member
the *largest* weight. This module implements what BMA means instead (Raftery et al. 2005): the
predictive density of the truth is a mixture of one Gaussian per bias-corrected member,

.. math::

    p(y \\mid f_1, \\dots, f_K) = \\sum_{k=1}^{K} w_k\\, g\\left(y \\mid a_k + b_k f_k,\\; \\sigma_k^2\\right),

whose weights :math:`w_k` (posterior probabilities that member *k* is the best one) and variances
:math:`\\sigma_k^2` maximise the likelihood of the training targets, found by
expectation–maximisation. The BMA mean is Eq. 17 with those weights applied to the bias-corrected
members; the BMA predictive variance is the mixture variance (between-model spread plus
within-model variance).

Pure numpy: no I/O, no MLflow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["BMAParameters", "fit_bma", "predict_bma"]

#: Floor of the member variances [(m3 m-3)^2]: keeps EM away from the degenerate solution in which
#: one member's Gaussian collapses onto the few targets it matches exactly (sd 1e-4 m3 m-3 is far
#: below any soil-moisture retrieval or probe error).
VARIANCE_FLOOR: float = 1e-8


@dataclass(frozen=True)
class BMAParameters:
    """Fitted BMA mixture (Raftery et al. 2005, Eqs. 2-7), JSON-serialisable via :meth:`to_dict`.

    Attributes
    ----------
    names : tuple of str, shape (K,)
        Member names, in the column order of the member-prediction matrices.
    weights : numpy.ndarray, shape (K,)
        BMA weights :math:`w_k` [1], non-negative, summing to 1.
    variances : numpy.ndarray, shape (K,)
        Member variances :math:`\\sigma_k^2` [(m3 m-3)^2] of the truth around each bias-corrected member.
    intercepts, slopes : numpy.ndarray, shape (K,)
        Linear bias correction :math:`f'_k = a_k + b_k f_k` (``a_k`` in m3 m-3, ``b_k`` in 1);
        0 and 1 when fitted without bias correction.
    log_likelihood : float
        Log-likelihood of the training targets under the fitted mixture [nats].
    n_iter : int
        EM iterations run.
    converged : bool
        True when the relative change of the log-likelihood fell below ``tol`` within ``max_iter``.
    n_samples : int
        Complete rows (no NaN member, no NaN target) the parameters were fitted on.
    """

    names: tuple[str, ...]
    weights: np.ndarray
    variances: np.ndarray
    intercepts: np.ndarray
    slopes: np.ndarray
    log_likelihood: float
    n_iter: int
    converged: bool
    n_samples: int

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (lists of floats); inverse of :meth:`from_dict`."""
        out = asdict(self)
        for key in ("weights", "variances", "intercepts", "slopes"):
            out[key] = [float(v) for v in np.asarray(out[key])]
        out["names"] = list(self.names)
        out["log_likelihood"] = float(self.log_likelihood)
        out["n_iter"] = int(self.n_iter)
        out["converged"] = bool(self.converged)
        out["n_samples"] = int(self.n_samples)
        return out

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> BMAParameters:
        """Rebuild parameters from :meth:`to_dict` output.

        Raises
        ------
        ValueError
            If the per-member arrays do not all have one entry per member name.
        """
        names = tuple(str(n) for n in record["names"])
        arrays = {k: np.asarray(record[k], dtype=np.float64)
                  for k in ("weights", "variances", "intercepts", "slopes")}
        for key, arr in arrays.items():
            if arr.shape != (len(names),):
                raise ValueError(f"BMA parameters: '{key}' has shape {arr.shape}, expected ({len(names)},) "
                                 f"for members {list(names)}; the record is corrupt or from another model")
        return cls(names=names, log_likelihood=float(record["log_likelihood"]), n_iter=int(record["n_iter"]),
                   converged=bool(record["converged"]), n_samples=int(record["n_samples"]), **arrays)

    def corrected(self, member_predictions: np.ndarray) -> np.ndarray:
        """Bias-corrected members :math:`f'_k = a_k + b_k f_k`, shape (n, K) [m3 m-3]."""
        return self.intercepts + self.slopes * np.asarray(member_predictions, dtype=np.float64)


def _check_members(member_predictions: np.ndarray, n_members: int, what: str) -> np.ndarray:
    f = np.asarray(member_predictions, dtype=np.float64)
    if f.ndim != 2 or f.shape[1] != n_members:
        raise ValueError(f"{what}: member_predictions must have shape (n, {n_members}) (one column per member), "
                         f"got {f.shape}")
    return f


def _log_components(y: np.ndarray, f: np.ndarray, weights: np.ndarray, variances: np.ndarray) -> np.ndarray:
    """log(w_k g(y_t | f_tk, sigma_k^2)), shape (n, K)."""
    return (np.log(weights) - 0.5 * np.log(2.0 * np.pi * variances)
            - 0.5 * (y[:, None] - f) ** 2 / variances)


def _logsumexp(a: np.ndarray) -> np.ndarray:
    peak = a.max(axis=1, keepdims=True)
    return (peak + np.log(np.exp(a - peak).sum(axis=1, keepdims=True)))[:, 0]


def fit_bma(member_predictions: np.ndarray, y: np.ndarray, *, member_names: list[str],
            bias_correct: bool = True, max_iter: int = 500, tol: float = 1e-8) -> BMAParameters:
    """Fit BMA weights and member variances by expectation–maximisation (Raftery et al. 2005).

    Parameters
    ----------
    member_predictions : numpy.ndarray, shape (n, K)
        Each member's soil-moisture estimate [m3 m-3] for the n training samples (cell-days), e.g.
        out-of-fold predictions of RF, LSTM and CNN. Rows with any NaN member are left out.
    y : numpy.ndarray, shape (n,)
        Target soil moisture [m3 m-3] (in-situ). Rows with NaN are left out.
    member_names : list of str, length K
        Names of the members, in column order (stored in the parameters, checked nowhere else).
    bias_correct : bool, default True
        Fit the linear bias correction :math:`f'_k = a_k + b_k f_k` of each member by ordinary least
        squares against ``y`` before EM (Raftery et al. 2005, Eq. 4). Otherwise ``a_k = 0, b_k = 1``.
    max_iter : int, default 500
        Maximum EM iterations.
    tol : float, default 1e-8
        Convergence threshold on the relative change of the log-likelihood between iterations.

    Returns
    -------
    BMAParameters
        Weights (K,) summing to 1, variances (K,) [(m3 m-3)^2], bias corrections, log-likelihood.

    Raises
    ------
    ValueError
        If the shapes disagree, ``member_names`` does not have K entries, or fewer than ``K + 2``
        complete rows remain after leaving out the NaN rows (too few to fit anything: check that
        the members were predicted on the target rows).

    Notes
    -----
    With :math:`f'_{tk}` the bias-corrected member k at sample t and
    :math:`g(\\cdot \\mid \\mu, \\sigma^2)` the normal density, EM alternates (Raftery et al. 2005,
    Eqs. 5-7, with one variance per member as in their Sect. 3 extension):

    .. math::

        z_{tk} = \\frac{w_k\\, g(y_t \\mid f'_{tk}, \\sigma_k^2)}{\\sum_l w_l\\, g(y_t \\mid f'_{tl}, \\sigma_l^2)},
        \\qquad
        w_k = \\frac{1}{n} \\sum_t z_{tk},
        \\qquad
        \\sigma_k^2 = \\frac{\\sum_t z_{tk} (y_t - f'_{tk})^2}{\\sum_t z_{tk}},

    started from equal weights and each member's residual variance, until the log-likelihood
    :math:`\\ell = \\sum_t \\log \\sum_k w_k g(y_t \\mid f'_{tk}, \\sigma_k^2)` changes by less than
    ``tol`` (relative). Each step cannot decrease :math:`\\ell`. Variances are floored at
    :data:`VARIANCE_FLOOR`.

    This replaces the weight rule stated with Zhang, Hou & Huang (2022) Eq. 17 ("error divided by
    the sum of errors"), which ranks members backwards; the combination itself (a weighted sum of
    the members) is Eq. 17.

    References
    ----------
    .. [1] Raftery, A. E., Gneiting, T., Balabdaoui, F. & Polakowski, M. (2005). Using Bayesian
       model averaging to calibrate forecast ensembles. Mon. Wea. Rev. 133, 1155-1174.
    .. [2] Zhang, Y., Hou, J. & Huang, C. (2022). Integration of satellite-derived and ground-based
       soil moisture observations for a precipitation product over the Upper Heihe River Basin,
       China. Remote Sens. 14, 5355, Eq. 17.
    """
    names = [str(n) for n in member_names]
    f_all = _check_members(member_predictions, len(names), "fit_bma")
    y_all = np.asarray(y, dtype=np.float64)
    if y_all.shape != (f_all.shape[0],):
        raise ValueError(f"fit_bma: y must have shape ({f_all.shape[0]},) like the rows of member_predictions, "
                         f"got {y_all.shape}")
    n_members = len(names)
    complete = np.isfinite(y_all) & np.isfinite(f_all).all(axis=1)
    f, y_fit = f_all[complete], y_all[complete]
    n = y_fit.size
    if n < n_members + 2:
        raise ValueError(f"fit_bma: only {n} complete rows (no NaN in any of {names} nor in y) out of "
                         f"{y_all.size}; need at least {n_members + 2}. Predict every member on the target rows.")

    intercepts = np.zeros(n_members)
    slopes = np.ones(n_members)
    if bias_correct:
        for k in range(n_members):
            fk = f[:, k]
            spread = fk - fk.mean()
            denom = float(spread @ spread)
            # A constant member carries no information on y beyond its mean: slope 0, intercept mean(y).
            slopes[k] = float(spread @ (y_fit - y_fit.mean())) / denom if denom > 0 else 0.0
            intercepts[k] = y_fit.mean() - slopes[k] * fk.mean()
    fc = intercepts + slopes * f

    weights = np.full(n_members, 1.0 / n_members)
    variances = np.maximum(((y_fit[:, None] - fc) ** 2).mean(axis=0), VARIANCE_FLOOR)
    log_lik = float(_logsumexp(_log_components(y_fit, fc, weights, variances)).sum())
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        log_comp = _log_components(y_fit, fc, weights, variances)
        z = np.exp(log_comp - _logsumexp(log_comp)[:, None])          # E step, (n, K)
        z_sum = z.sum(axis=0)
        weights = z_sum / n                                            # M step
        # A member that no sample supports keeps its variance (its weight is ~0 anyway).
        safe = z_sum > 0
        new_var = variances.copy()
        new_var[safe] = (z[:, safe] * (y_fit[:, None] - fc[:, safe]) ** 2).sum(axis=0) / z_sum[safe]
        variances = np.maximum(new_var, VARIANCE_FLOOR)
        weights = np.maximum(weights, np.finfo(np.float64).tiny)
        weights = weights / weights.sum()
        new_log_lik = float(_logsumexp(_log_components(y_fit, fc, weights, variances)).sum())
        change = abs(new_log_lik - log_lik) / max(abs(log_lik), 1.0)
        log_lik = new_log_lik
        if change < tol:
            converged = True
            break

    return BMAParameters(names=tuple(names), weights=weights, variances=variances, intercepts=intercepts,
                         slopes=slopes, log_likelihood=log_lik, n_iter=n_iter, converged=converged, n_samples=n)


def predict_bma(params: BMAParameters, member_predictions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BMA mean (Zhang, Hou & Huang 2022, Eq. 17) and predictive variance (Raftery et al. 2005, Eqs. 8-9).

    Parameters
    ----------
    params : BMAParameters
        Output of :func:`fit_bma`.
    member_predictions : numpy.ndarray, shape (n, K)
        Member soil moisture [m3 m-3], columns in the order of ``params.names``.

    Returns
    -------
    mean : numpy.ndarray, shape (n,)
        :math:`\\sum_k w_k f'_k` [m3 m-3].
    variance : numpy.ndarray, shape (n,)
        Predictive variance [(m3 m-3)^2] :math:`\\sum_k w_k (f'_k - \\text{mean})^2 + \\sum_k w_k \\sigma_k^2`
        (between-model spread + within-model variance); its square root is the product's
        ``soil_moisture_uncertainty``.
        Both outputs are NaN on rows where any member is NaN (the mixture is only defined with all
        members; the caller decides how to fall back).

    Raises
    ------
    ValueError
        If ``member_predictions`` does not have one column per member of ``params``.

    References
    ----------
    .. [1] Raftery, A. E. et al. (2005). Mon. Wea. Rev. 133, 1155-1174.
    .. [2] Zhang, Y., Hou, J. & Huang, C. (2022). Remote Sens. 14, 5355, Eq. 17.
    """
    f = _check_members(member_predictions, len(params.names), f"predict_bma (members {list(params.names)})")
    fc = params.corrected(f)
    mean = fc @ params.weights
    spread = ((fc - mean[:, None]) ** 2) @ params.weights
    variance = spread + float(params.weights @ params.variances)
    incomplete = ~np.isfinite(f).all(axis=1)
    mean[incomplete] = np.nan
    variance[incomplete] = np.nan
    return mean, variance
