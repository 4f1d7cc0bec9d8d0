"""Downscaling methods: bilinear baseline, NN (Lv et al. 2021), LSTM + simple kriging (Ming et al. 2022).

All methods map a coarse field ``(n_lat, n_lon)`` on the domain grid to the nested fine grid
``(factor * n_lat, factor * n_lon)`` (:mod:`smflow.downscaling.grid`); units are those of the
coarse field (m3 m-3 for the merged product, percent of saturation for CGLS SSM).

* :func:`bilinear` -- the honest baseline: bilinear interpolation of the coarse field
  (:func:`smflow.regrid.native_to_domain`, ``bilinear``); where a corner is missing (the outer
  half-cell ring, cells next to missing coarse cells) the parent's value is replicated.
* :func:`fit_nn` -- Lv, Zhang & Zhu 2021, Sect. 2.2: a feed-forward network trained at the coarse
  scale on the coarse covariates against the coarse soil moisture, then applied to the fine
  covariates. The paper trains with Levenberg-Marquardt and repeats the training four times from
  random initial weights, keeping the best; here scikit-learn's ``MLPRegressor`` (L-BFGS, a
  quasi-Newton method like LM) with seeds ``seed .. seed + restarts - 1`` and the best on a
  held-out validation fraction of the coarse samples.
* :func:`fit_lstm_downscaler` -- Ming et al. 2022, Eq. 1: ``SM_o = f_LSTM(covariates) + eps``,
  the LSTM of :func:`smflow.ml.modelzoo.lstm.fit_lstm` on trailing windows of the coarse
  covariates.
* :func:`residual_kriging` -- Ming et al. 2022, Eqs. 2-4: ``eps = SM_o - SM_LSTM_L`` at the coarse
  cells, simple kriging (gstools, mean 0, exponential variogram with nugget fitted to ``eps``)
  to the fine cells (``eps_k``), ``SM_final = SM_LSTM_H + eps_k``; tile by tile (a tile of coarse
  cells conditioned on the residuals of the tile and a halo around it) so memory is bounded.
  Simple kriging of point residuals does not make the block means equal the coarse field, so a
  last step adds to every fine cell the difference between its coarse cell and the block mean
  of ``SM_final`` -- the product then aggregates back to the coarse field exactly (to rounding);
  the size of that correction is returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from smflow.domain import DomainGrid
from smflow.downscaling.grid import block_mean, factor_of, replicate

#: Kilometres per degree of latitude (sphere of radius 6 371 007 m).
KM_PER_DEG = 111.195


# -- baseline ------------------------------------------------------------------------------
def bilinear(coarse: np.ndarray, domain: DomainGrid, fine: DomainGrid) -> np.ndarray:
    """Bilinear interpolation of ``coarse (n_lat, n_lon)`` to ``fine``; parent value where a corner is missing.

    Returns
    -------
    ndarray, shape ``fine.shape``
        NaN off fine land and under missing coarse cells.
    """
    import xarray as xr

    from smflow.regrid import native_to_domain

    factor = factor_of(domain, fine)
    values = np.asarray(coarse, dtype=np.float64)
    ds = xr.Dataset({"field": (("lat", "lon"), values)},
                    coords={"lat": domain.lat, "lon": domain.lon})
    out = native_to_domain(ds, fine, method="bilinear", variables=["field"])["field"].values
    parent = replicate(values, factor)
    out = np.where(np.isfinite(out), out, parent)
    out[~fine.land_mask | ~np.isfinite(parent)] = np.nan
    return out


# -- the coarse-scale regressions ----------------------------------------------------------
@dataclass
class FittedRegressor:
    """A regression of soil moisture on covariates fitted at the coarse scale.

    Attributes
    ----------
    method : {"nn", "lstm"}
    model : object
        sklearn Pipeline (nn) or keras.Model (lstm).
    feature_names : list of str
    window : int
        Days per input window (lstm; 1 for nn).
    seed : int
    info : dict
        Restarts and their validation MSE, sample counts, hyper-parameters.
    """

    method: str
    model: Any
    feature_names: list[str]
    window: int = 1
    seed: int = 0
    info: dict = field(default_factory=dict)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Soil moisture of ``X`` (n, p) [nn] or (n, window, p) [lstm]; NaN where X has a NaN."""
        X = np.asarray(X, dtype=np.float64)
        if self.method == "nn" and X.ndim == 3:
            X = X[:, -1, :]
        if self.method == "lstm" and X.ndim == 2:
            X = X[:, None, :]
        ok = np.isfinite(X.reshape(len(X), -1)).all(axis=1)
        out = np.full(len(X), np.nan)
        if ok.any():
            if self.method == "nn":
                out[ok] = self.model.predict(X[ok])
            else:
                from smflow.ml.modelzoo.lstm import predict_lstm

                out[ok] = predict_lstm(self.model, X[ok].astype(np.float32),
                                       feature_names=self.feature_names)
        return out


def _validation_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_val = max(1, int(round(fraction * n))) if n >= 5 else 0
    return order[n_val:], order[:n_val]


def fit_nn(X: np.ndarray, y: np.ndarray, *, feature_names: list[str], seed: int = 13,
           restarts: int = 4, hidden: tuple[int, ...] = (16,), alpha: float = 1e-3,
           validation_fraction: float = 0.2, max_iter: int = 1000) -> FittedRegressor:
    """Lv et al. 2021 NN: coarse covariates ``X (n, p)`` -> coarse soil moisture ``y (n,)``.

    Parameters
    ----------
    X, y : ndarray
        Finite coarse samples (cells x days) and their soil moisture.
    feature_names : list of str
    seed : int
        The restarts use seeds ``seed + k``; the validation split uses ``seed``.
    restarts : int
        Random initialisations (4 in the paper); the best on the validation samples is kept.
    hidden, alpha, max_iter
        Hidden layer sizes, L2 penalty, L-BFGS iterations.
    validation_fraction : float
        Share of the samples held out to choose among the restarts.

    Raises
    ------
    ValueError
        Fewer than 10 samples, or non-finite samples.
    """
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(X) < 10 or not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise ValueError(f"fit_nn needs >= 10 finite coarse samples; got {len(X)} "
                         f"({int((~np.isfinite(X)).any(axis=1).sum()) if X.ndim == 2 else '?'} "
                         "with NaN features)")
    train, val = _validation_split(len(X), validation_fraction, seed)
    best, scores = None, []
    for k in range(restarts):
        model = make_pipeline(StandardScaler(), MLPRegressor(
            hidden_layer_sizes=hidden, activation="tanh", solver="lbfgs", alpha=alpha,
            max_iter=max_iter, random_state=seed + k))
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X[train], y[train])
        mse = float(np.mean((model.predict(X[val]) - y[val]) ** 2))
        scores.append(mse)
        if best is None or mse < min(scores[:-1]):
            best = model
    return FittedRegressor("nn", best, list(feature_names), 1, seed, {
        "restart_seeds": [seed + k for k in range(restarts)], "restart_validation_mse": scores,
        "chosen_restart": int(np.argmin(scores)), "n_train": int(train.size),
        "n_validation": int(val.size), "hidden": list(hidden), "alpha": alpha,
        "solver": "lbfgs"})


def fit_lstm_downscaler(X: np.ndarray, y: np.ndarray, *, feature_names: list[str], seed: int = 13,
                        units: int = 16, epochs: int = 200, validation_fraction: float = 0.2,
                        learning_rate: float = 1e-2, patience: int = 20) -> FittedRegressor:
    """Ming et al. 2022 Eq. 1: LSTM on trailing windows ``X (n, window, p)`` of coarse covariates.

    Uses :func:`smflow.ml.modelzoo.lstm.fit_lstm` (normalisation inside the model, seeds and
    deterministic TensorFlow ops), early stopping on ``validation_fraction`` of the samples.
    """
    from smflow.ml.modelzoo.lstm import fit_lstm

    X = np.asarray(X, dtype=np.float32)
    if X.ndim == 2:
        X = X[:, None, :]
    y = np.asarray(y, dtype=np.float32)
    if len(X) < 10:
        raise ValueError(f"fit_lstm_downscaler needs >= 10 coarse samples; got {len(X)}")
    train, val = _validation_split(len(X), validation_fraction, seed)
    model = fit_lstm(X[train], y[train], feature_names=list(feature_names), seed=seed, units=units,
                     dropout=0.0, epochs=epochs, batch_size=32, learning_rate=learning_rate,
                     validation=(X[val], y[val]) if val.size else None, patience=patience)
    history = getattr(model, "history", None)
    epochs_run = len(history.history.get("loss", [])) if history is not None else epochs
    return FittedRegressor("lstm", model, list(feature_names), int(X.shape[1]), seed, {
        "units": units, "epochs_run": epochs_run, "n_train": int(train.size),
        "n_validation": int(val.size), "learning_rate": learning_rate})


def predict_fine(model: FittedRegressor, features: np.ndarray, *, tile_rows: int = 200
                 ) -> np.ndarray:
    """Apply ``model`` to fine covariates ``(p, ny, nx)`` or ``(window, p, ny, nx)`` by row tiles.

    Pixel-wise: tiled and untiled predictions are identical; memory is bounded by ``tile_rows``.
    Returns ``(ny, nx)``, NaN where a covariate is NaN.
    """
    f = np.asarray(features, dtype=np.float64)
    if f.ndim == 3:
        f = f[None]
    w, p, ny, nx = f.shape
    out = np.full((ny, nx), np.nan)
    for r0 in range(0, ny, tile_rows):
        block = f[:, :, r0:r0 + tile_rows, :]
        rows = block.shape[2]
        X = block.reshape(w, p, -1).transpose(2, 0, 1)
        out[r0:r0 + rows] = model.predict(X).reshape(rows, nx)
    return out


# -- residual kriging ----------------------------------------------------------------------
@dataclass
class KrigingResult:
    """Output of :func:`residual_kriging`.

    Attributes
    ----------
    field : ndarray (ny_fine, nx_fine)
        ``SM_final`` after the block-mean correction (aggregates to the coarse field exactly).
    residual_fine : ndarray (ny_fine, nx_fine)
        Kriged residual ``eps_k`` (Ming et al. 2022, Eq. 3).
    variogram : dict
        Fitted model: ``model``, ``sill`` [unit^2], ``len_scale_km``, ``nugget`` [unit^2],
        ``n_residuals``, ``r2`` of the fit (or ``model = "none"`` and why).
    correction_abs_mean : float
        Mean |block-mean correction| over the fine cells [unit].
    max_abs_aggregation_error : float
        max |block_mean(field) - coarse| over the coarse cells [unit].
    """

    field: np.ndarray
    residual_fine: np.ndarray
    variogram: dict
    correction_abs_mean: float
    max_abs_aggregation_error: float


def _km(lat: np.ndarray, lon: np.ndarray, lat0: float) -> tuple[np.ndarray, np.ndarray]:
    return (np.asarray(lon) * KM_PER_DEG * np.cos(np.radians(lat0)),
            np.asarray(lat) * KM_PER_DEG)


def fit_variogram(x: np.ndarray, y: np.ndarray, values: np.ndarray, *, max_lag_km: float
                  ) -> tuple[Any, dict]:
    """Exponential variogram with nugget fitted to ``values`` at ``(x, y)`` [km] (gstools).

    Returns ``(model or None, description)``; None when fewer than 10 values or no variance.
    """
    import gstools as gs

    values = np.asarray(values, dtype=np.float64)
    if values.size < 10 or not np.nanvar(values) > 0:
        return None, {"model": "none", "reason": f"{values.size} residuals, variance "
                      f"{float(np.nanvar(values)) if values.size else float('nan'):.3g}",
                      "n_residuals": int(values.size)}
    edges = np.linspace(0.0, max_lag_km, 16)
    centres, gamma = gs.vario_estimate((x, y), values, edges)
    ok = np.isfinite(gamma)
    model = gs.Exponential(dim=2)
    try:
        _, _, r2 = model.fit_variogram(centres[ok], gamma[ok], nugget=True, return_r2=True,
                                       max_eval=5000)
    except RuntimeError as err:  # scipy curve_fit did not converge: no kriging, say why
        return None, {"model": "none", "reason": f"variogram fit failed: {err}",
                      "n_residuals": int(values.size)}
    return model, {"model": "Exponential", "sill": float(model.var + model.nugget),
                   "partial_sill": float(model.var), "len_scale_km": float(model.len_scale),
                   "nugget": float(model.nugget), "n_residuals": int(values.size),
                   "r2": float(r2), "bin_edges_km": [float(e) for e in edges]}


def residual_kriging(coarse: np.ndarray, pred_coarse: np.ndarray, pred_fine: np.ndarray,
                     domain: DomainGrid, fine: DomainGrid, *, tile: int = 4, halo: int = 3,
                     fallback_fine: np.ndarray | None = None) -> KrigingResult:
    """Ming et al. 2022 Eqs. 2-4 with tiles, then the exact block-mean correction.

    Parameters
    ----------
    coarse : ndarray (n_lat, n_lon)
        ``SM_o``, the coarse field (NaN = no value).
    pred_coarse : ndarray (n_lat, n_lon)
        ``SM_LSTM_L``, the regression applied to the coarse covariates.
    pred_fine : ndarray (ny_fine, nx_fine)
        ``SM_LSTM_H``, the regression applied to the fine covariates (NaN where a covariate is
        missing: ``fallback_fine`` is used there, else the coarse value).
    domain, fine : DomainGrid
        Coarse grid and the fine grid nested in it.
    tile, halo : int
        Tile side and halo width in coarse cells: the fine cells of a tile are kriged from the
        residuals of the tile and of ``halo`` coarse cells around it (memory per tile bounded
        by ``((tile + 2 halo)^2)^2`` kriging matrix entries and ``(tile * factor)^2`` targets).

    Returns
    -------
    KrigingResult
    """
    import gstools as gs

    factor = factor_of(domain, fine)
    coarse = np.asarray(coarse, dtype=np.float64)
    eps = coarse - np.asarray(pred_coarse, dtype=np.float64)          # Eq. 2
    lat0 = float(np.mean(domain.lat))
    clat, clon = np.meshgrid(domain.lat, domain.lon, indexing="ij")
    cx, cy = _km(clat, clon, lat0)
    ok = np.isfinite(eps)
    max_lag = 0.5 * float(np.hypot(np.ptp(cx), np.ptp(cy)))
    model, variogram = fit_variogram(cx[ok], cy[ok], eps[ok], max_lag_km=max_lag)
    ny, nx = domain.shape
    eps_k = np.zeros(fine.shape)
    if model is not None:
        flat, flon = fine.lat, fine.lon
        for r0 in range(0, ny, tile):
            for c0 in range(0, nx, tile):
                rs = slice(max(0, r0 - halo), min(ny, r0 + tile + halo))
                cs = slice(max(0, c0 - halo), min(nx, c0 + tile + halo))
                sel = ok[rs, cs]
                if not sel.any():
                    continue
                krige = gs.krige.Simple(model, cond_pos=(cx[rs, cs][sel], cy[rs, cs][sel]),
                                        cond_val=eps[rs, cs][sel], mean=0.0)
                fr = slice(r0 * factor, min(ny, r0 + tile) * factor)
                fc = slice(c0 * factor, min(nx, c0 + tile) * factor)
                glat, glon = np.meshgrid(flat[fr], flon[fc], indexing="ij")
                gx, gy = _km(glat, glon, lat0)
                values = krige((gx.ravel(), gy.ravel()), return_var=False, store=False)
                eps_k[fr, fc] = np.asarray(values).reshape(gx.shape)          # Eq. 3
    parent = replicate(coarse, factor)
    base = np.asarray(pred_fine, dtype=np.float64)
    fill = parent if fallback_fine is None else np.where(np.isfinite(fallback_fine),
                                                         fallback_fine, parent)
    final = np.where(np.isfinite(base), base + eps_k, fill)                    # Eq. 4
    final[~fine.land_mask | ~np.isfinite(parent)] = np.nan
    correction = replicate(coarse - block_mean(final, factor), factor)
    final = final + np.where(np.isfinite(final), correction, 0.0)
    agg_error = np.abs(block_mean(final, factor) - coarse)
    finite_corr = correction[np.isfinite(final)]
    return KrigingResult(final, np.where(fine.land_mask, eps_k, np.nan), variogram,
                         float(np.mean(np.abs(finite_corr))) if finite_corr.size else 0.0,
                         float(np.nanmax(agg_error)) if np.isfinite(agg_error).any() else 0.0)


def fill_gaps(pred_fine: np.ndarray, fallback: np.ndarray, fine: DomainGrid) -> np.ndarray:
    """``pred_fine`` where finite, else ``fallback`` (bilinear); NaN off land / without fallback."""
    out = np.where(np.isfinite(pred_fine), pred_fine, fallback)
    out[~fine.land_mask | ~np.isfinite(fallback)] = np.nan
    return out
