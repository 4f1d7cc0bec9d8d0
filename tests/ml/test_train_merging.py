"""ML merging on the real Hawaii case: features, folds, leave-one-station-out scores, bad input.

The in-situ stations (ISMN) are internal-only data read from ../shared; the tests skip without them.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from smflow.ml.features import FeatureSpec, feature_cube, sequence_windows
from smflow.ml.splits import loso_folds, period_fold

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
TRAIN = (date(2017, 1, 1), date(2017, 12, 31))
EVALUATE = (date(2018, 1, 1), date(2018, 12, 31))
needs_shared = pytest.mark.skipif(not (SHARED / "ismn_hawaii").is_dir(), reason="../shared (ISMN stations) absent")


def _parents(n_time: int = 40, n_cell: int = 6, seed: int = 1) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    time = np.arange("2018-01-01", n_time, dtype="datetime64[D]").astype("datetime64[ns]")
    ds = xr.Dataset({p: (("time", "cell"), 0.2 + 0.05 * rng.standard_normal((n_time, n_cell)))
                     for p in ("smap", "era5_land", "gldas")}, coords={"time": time})
    return ds


def test_feature_masks_mark_missing_parents_and_never_leave_nan() -> None:
    ds = _parents()
    ds["smap"][5:9, 2] = np.nan
    spec = FeatureSpec(("smap", "era5_land", "gldas"), (), 10).fit(ds, None, np.array([0.1, 0.3]))
    cube = feature_cube(ds, None, spec)
    assert list(cube["feature"].values) == spec.columns
    assert np.isfinite(cube.values).all()
    present = cube.sel(feature="smap_present").values
    assert present[5:9, 2].sum() == 0 and present[:5, 2].all() and present[9:, :].all()
    # missing value -> the training mean (0 once standardised), not a stale or invented value
    assert np.all(cube.sel(feature="smap").values[5:9, 2] == 0)
    # the 7-day trailing mean uses the days the parent has
    z = (ds["smap"].values[:, 2] - spec.center["smap"]) / spec.scale["smap"]
    np.testing.assert_allclose(cube.sel(feature="smap_mean7").values[10, 2], np.nanmean(z[4:11]), rtol=1e-5)
    windows = sequence_windows(cube.values, spec.window)
    assert windows.shape == (40 - 9, 6, 10, len(spec.columns))
    np.testing.assert_array_equal(windows[0, :, -1], cube.values[9])


def test_missing_parent_or_covariate_raises_with_names() -> None:
    ds = _parents()
    spec = FeatureSpec(("smap", "era5_land", "gldas"), (), 10).fit(ds, None, np.array([0.1, 0.3]))
    with pytest.raises(KeyError, match="smap"):
        feature_cube(ds.drop_vars("smap"), None, spec)
    with pytest.raises(KeyError, match="elevation"):
        FeatureSpec(("smap",), ("elevation",), 10).fit(ds, None, np.array([0.1, 0.3]))


def test_folds_never_share_samples_with_their_test() -> None:
    rng = np.random.default_rng(0)
    time = np.repeat(np.arange("2017-01-01", "2019-01-01", dtype="datetime64[D]"), 3)
    station = np.tile(np.array(["a", "b", "c"]), time.size // 3)
    keep = rng.random(time.size) > 0.3
    time, station = time[keep], station[keep]
    fold = period_fold(time, TRAIN, EVALUATE)
    assert not (fold.fit & fold.test).any() and not (fold.validation & fold.test).any()
    assert time[fold.validation].min() > time[fold.fit].max()  # validation is the last block, not random days
    assert (time[fold.test] >= np.datetime64("2018-01-01")).all()
    folds = list(loso_folds(station, time))
    assert [f.name for f in folds] == ["loso:a", "loso:b", "loso:c"]
    for f in folds:
        held = station[f.test][0]
        assert (station[f.test] == held).all() and held not in set(station[f.fit | f.validation])
    with pytest.raises(ValueError, match="overlap"):
        period_fold(time, TRAIN, (date(2017, 6, 1), date(2018, 1, 1)))


@pytest.fixture(scope="module")
def hawaii():
    from smflow.domain import load_domain
    from smflow.ml.train import _parents_series, fit_merging_parameters
    from smflow.ml.train_merging import build_inputs

    grid = load_domain()
    tc = fit_merging_parameters(_parents_series(*TRAIN, grid), grid)
    return build_inputs(TRAIN, EVALUATE[1], grid, SHARED / "ismn_hawaii", tc)


@needs_shared
def test_real_hawaii_candidates_leave_one_station_out(hawaii) -> None:
    """Every candidate and baseline on the same LOSO and period folds (few epochs: wiring and honesty)."""
    from smflow.ml.train_merging import CANDIDATES, choose_champion, evaluate_candidates

    assert len(hawaii.samples) > 3000 and len(set(hawaii.samples.station)) >= 7
    scores, ensemble, predictions, tested = evaluate_candidates(
        hawaii, TRAIN, EVALUATE, loso=True, hyper={"lstm": {"epochs": 3}, "cnn": {"epochs": 3}, "rf": {"n_estimators": 60}})
    by = {(s.method, s.folds): s for s in scores}
    for folds in ("loso", "period"):
        for method in ("smap", "era5_land", "gldas", *CANDIDATES):
            s = by[(method, folds)]
            assert s.n_stations >= 6, (method, folds)
            assert s.r.lower <= s.r.median <= s.r.upper
            assert s.ubrmse.lower <= s.ubrmse.median <= s.ubrmse.upper and s.ubrmse.median > 0
    # every LOSO prediction of a station comes from a fold that did not see it: all stations tested once
    assert tested["loso"].sum() == len(hawaii.samples) or tested["loso"].mean() > 0.95
    # the ML members learn the in-situ level: their bias is far smaller than the parents' (ERA5-Land +0.09)
    assert abs(by[("rf", "period")].bias.median) < abs(by[("era5_land", "period")].bias.median)
    # BMA weights are a distribution over the three members
    assert ensemble.bma is not None and np.isclose(ensemble.bma.weights.sum(), 1)
    # a champion is re-scored by the same code on the same samples: the gate compares like with like
    from smflow.ml.registry import LoadedMerging, ModelRef
    from smflow.ml.train_merging import score_on_period

    again = score_on_period(LoadedMerging(ModelRef("soil_moisture_merging", "1", "r"), "bma", ensemble=ensemble),
                            hawaii, TRAIN, EVALUATE, seed=20170101)
    assert again == {"bma": pytest.approx(by[("bma", "period")].ubrmse.median, rel=1e-6)}
    winner, gate = choose_champion(scores)
    assert ("passed" in gate) == (winner is not None)


@needs_shared
def test_features_that_do_not_match_the_champion_are_refused(hawaii) -> None:
    """Bad input: a champion trained on other parents -> clear error naming the version and the columns."""
    from smflow.ml.apply import merge_window
    from smflow.ml.merging import fit_ensemble
    from smflow.ml.registry import ModelRef
    from smflow.ml.splits import period_fold
    from smflow.ml.registry import LoadedMerging

    s = hawaii.samples
    fold = period_fold(s.time, TRAIN, EVALUATE)
    ens = fit_ensemble(s.subset(fold.fit), s.subset(fold.validation), hawaii.spec, kinds=("rf",),
                       hyper={"rf": {"n_estimators": 20}})
    loaded = LoadedMerging(ModelRef("soil_moisture_merging", "7", "abc", "champion"), "rf", ensemble=ens)
    t = np.arange("2018-01-01", 40, dtype="datetime64[D]").astype("datetime64[ns]")
    grid = xr.Dataset({p: (("time", "lat", "lon"), np.full((40, 2, 2), 0.2)) for p in ("era5_land", "gldas")},
                      coords={"time": t})
    with pytest.raises(ValueError, match=r"soil_moisture_merging@champion v7.*smap"):
        merge_window(loaded, grid, None)
    # all parents missing in a cell -> NaN flagged no_data, never an invented value
    from smflow.ml.features import load_static_covariates
    from smflow.domain import load_domain

    full = grid.assign(smap=(("time", "lat", "lon"), np.full((40, 2, 2), 0.2)))
    for p in full.data_vars:
        full[p][:, 0, 0] = np.nan
    full = full.assign_coords(lat=[19.0, 19.1], lon=[-155.5, -155.4])
    static = load_static_covariates(load_domain()).isel(lat=[5, 6], lon=[5, 6]).assign_coords(lat=[19.0, 19.1], lon=[-155.5, -155.4])
    merged = merge_window(loaded, full, static)
    assert np.isnan(merged.soil_moisture[0]).all() and (merged.method[0] == 3).all()
    assert np.isfinite(merged.soil_moisture[1:]).all() and (merged.method[1:] == 4).all()
