"""Downscaling (smflow.downscaling): known answers on synthetic fields, bad input, real CGLS 1 km."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from smflow.domain import DomainGrid
from smflow.downscaling.covariates import CovariateError, CovariateSpec, build_stack, check_grid
from smflow.downscaling.grid import block_mean, factor_of, fine_grid, replicate
from smflow.downscaling.methods import (
    bilinear, fill_gaps, fit_nn, predict_fine, residual_kriging,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def _coarse(n: int = 12) -> DomainGrid:
    return DomainGrid(name="synthetic", crs="EPSG:4326", resolution=0.1, lat_first=40.05,
                      lat_last=round(40.05 + 0.1 * (n - 1), 6), lon_first=0.05,
                      lon_last=round(0.05 + 0.1 * (n - 1), 6),
                      land=tuple(tuple(True for _ in range(n)) for _ in range(n)))


def _synthetic(fine: DomainGrid, day: int):
    """Covariates with fine-scale structure and a fine field that is a known function of them."""
    lat, lon = np.meshgrid(fine.lat, fine.lon, indexing="ij")
    c1 = np.sin(lat * 60.0) * np.cos(lon * 45.0) + 0.3 * day                # sub-coarse-cell ripple
    c2 = (lat - 40.6) * 2.0 + 0.5 * np.sin(lon * 25.0 + day)
    truth = 0.25 + 0.06 * c1 + 0.03 * np.tanh(c2)
    return np.stack([c1, c2]), truth


def _days(domain, fine, n_days=3):
    factor = factor_of(domain, fine)
    out = []
    for day in range(n_days):
        cov, truth = _synthetic(fine, day)
        out.append((cov, block_mean(cov, factor), truth, block_mean(truth, factor)))
    return out


def test_fine_grid_is_nested_and_block_mean_inverts_replicate():
    domain = _coarse()
    fine = fine_grid(domain, shared_dir=None)
    assert fine.shape == (120, 120) and fine.resolution == 0.01
    assert factor_of(domain, fine) == 10
    assert np.allclose(fine.bounds, domain.bounds)
    assert "replicated" in fine.description
    x = np.random.default_rng(0).normal(size=domain.shape)
    assert np.allclose(block_mean(replicate(x, 10), 10), x)


def test_nn_and_kriging_beat_bilinear_and_kriging_conserves_mass():
    domain = _coarse()
    fine = fine_grid(domain, shared_dir=None)
    days = _days(domain, fine)
    X = np.concatenate([c.reshape(2, -1).T for _, c, _, _ in days])
    y = np.concatenate([t.ravel() for _, _, _, t in days])
    model = fit_nn(X, y, feature_names=["c1", "c2"], seed=3)
    assert len(model.info["restart_validation_mse"]) == 4
    assert model.info["restart_seeds"] == [3, 4, 5, 6]
    cov, cov_c, truth, coarse = days[1]
    base = bilinear(coarse, domain, fine)
    nn = fill_gaps(predict_fine(model, cov), base, fine)
    rmse = lambda a: float(np.sqrt(np.nanmean((a - truth) ** 2)))  # noqa: E731
    assert rmse(nn) < 0.75 * rmse(base), (rmse(nn), rmse(base))
    result = residual_kriging(coarse, predict_fine(model, cov_c), predict_fine(model, cov),
                              domain, fine, tile=4, halo=3, fallback_fine=base)
    assert rmse(result.field) < 0.75 * rmse(base), (rmse(result.field), rmse(base))
    # Exact mass conservation: the fine field averages back to the coarse field.
    assert np.nanmax(np.abs(block_mean(result.field, 10) - coarse)) < 1e-12
    assert result.max_abs_aggregation_error < 1e-12
    assert result.variogram["model"] in ("Exponential", "none")


def test_tiled_kriging_agrees_with_one_tile_and_has_no_seams():
    domain = _coarse(16)
    fine = fine_grid(domain, shared_dir=None)
    lat, lon = np.meshgrid(domain.lat, domain.lon, indexing="ij")
    coarse = 0.2 + 0.05 * np.sin(lat * 9) * np.cos(lon * 7)
    pred_c = np.full(domain.shape, 0.2)
    pred_f = np.full(fine.shape, 0.2)
    one = residual_kriging(coarse, pred_c, pred_f, domain, fine, tile=16, halo=0)
    tiled = residual_kriging(coarse, pred_c, pred_f, domain, fine, tile=4, halo=6)
    assert one.variogram == tiled.variogram
    assert np.nanmax(np.abs(one.residual_fine - tiled.residual_fine)) < 2e-3
    # Seams: the jump between neighbouring fine columns at a tile edge (column 40) is no
    # larger than the largest jump anywhere else in the untiled field.
    jump = np.abs(np.diff(tiled.residual_fine, axis=1))
    assert jump[:, 39].max() <= np.abs(np.diff(one.residual_fine, axis=1)).max() + 1e-6
    assert tiled.max_abs_aggregation_error < 1e-12


def test_nn_tiled_prediction_equals_untiled():
    domain = _coarse()
    fine = fine_grid(domain, shared_dir=None)
    (cov, cov_c, truth, coarse), = _days(domain, fine, 1)
    model = fit_nn(cov_c.reshape(2, -1).T, coarse.ravel(), feature_names=["c1", "c2"], seed=1,
                   restarts=1)
    assert np.array_equal(predict_fine(model, cov, tile_rows=7), predict_fine(model, cov,
                                                                               tile_rows=1000))


def test_lstm_kriging_recovers_better_than_bilinear():
    from smflow.downscaling.methods import fit_lstm_downscaler

    domain = _coarse()
    fine = fine_grid(domain, shared_dir=None)
    days = _days(domain, fine)
    X = np.concatenate([c.reshape(2, -1).T for _, c, _, _ in days])
    y = np.concatenate([t.ravel() for _, _, _, t in days])
    model = fit_lstm_downscaler(X, y, feature_names=["c1", "c2"], seed=5, epochs=150)
    cov, cov_c, truth, coarse = days[1]
    base = bilinear(coarse, domain, fine)
    result = residual_kriging(coarse, predict_fine(model, cov_c), predict_fine(model, cov),
                              domain, fine, fallback_fine=base)
    rmse = lambda a: float(np.sqrt(np.nanmean((a - truth) ** 2)))  # noqa: E731
    assert rmse(result.field) < rmse(base), (rmse(result.field), rmse(base))
    assert result.max_abs_aggregation_error < 1e-12


def test_covariate_on_another_grid_or_missing_is_a_clear_error(tmp_path):
    import xarray as xr

    spec = CovariateSpec("elevation", "dem.nc", "elevation", 1 / 30, "m", "elevation")
    other = xr.Dataset(coords={"lat": np.arange(0, 1, 0.1), "lon": np.arange(0, 1, 0.1)})
    with pytest.raises(CovariateError, match=r"'elevation'.*dem.nc.*0\.1 deg pixel.*0\.0333"):
        check_grid(other, spec, Path("dem.nc"))
    projected = xr.Dataset(coords={"lat": (("y", "x"), np.zeros((2, 2))),
                                   "lon": (("y", "x"), np.zeros((2, 2)))})
    with pytest.raises(CovariateError, match="another CRS"):
        check_grid(projected, spec, Path("dem.nc"))
    from smflow.domain import load_domain

    domain = load_domain("ebro_pyrenees")
    with pytest.raises(CovariateError, match=r"'swi_005'.*c_gls_SWI1km_20170601.*missing"):
        build_stack(domain, fine_grid(domain, shared_dir=None), date(2017, 6, 1), tmp_path,
                    names=["swi_005"])


@pytest.mark.skipif(not (SHARED / "cgls_1km").is_dir(),
                    reason=f"real CGLS 1 km files absent ({SHARED / 'cgls_1km'})")
def test_upscale_recover_on_real_cgls_reduced():
    from smflow.downscaling.validate import format_table, load_experiment, run

    exp = load_experiment(SHARED, names=["swi_005", "elevation"])
    assert [str(d.day) for d in exp.days] == ["2017-06-01", "2017-06-03"]
    assert exp.missing_days and "2017-06-02" in exp.missing_days[0]
    assert any("lst" in m for m in exp.missing_covariates)
    rows = run(exp, methods=("bilinear", "nn_kriging"), modes=("sameday",))
    table = format_table(rows, exp)
    by = {r["method"]: r for r in rows}
    assert by["bilinear"]["n_pixels"] == by["nn_kriging"]["n_pixels"] > 20_000
    assert by["nn_kriging"]["max_aggregation_error"] < 1e-9
    assert 0.5 < by["bilinear"]["r"] < 1.0 and np.isfinite(by["nn_kriging"]["ubrmse"])
    assert "missing day: 2017-06-02" in table
