"""SM2RAIN training at the Hawaii gauges: 3-parameter and SM2RAIN-ASCAT filtered variants, frozen soil.

Real case: merged soil moisture of SMAP, ERA5-Land and GLDAS (TC weights fitted on 2017) at the
five SCAN rain gauges (ISMN, internal data), calibrated on 2017 and validated on 2018.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from smflow.config import Settings

SHARED = Settings.load().shared_data_dir
pytestmark = pytest.mark.skipif(SHARED is None or not (SHARED / "ismn_hawaii").is_dir(),
                                reason="the ISMN gauges (../shared/data/real/ismn_hawaii) are internal data")

TRAIN = (date(2017, 1, 1), date(2017, 12, 31))
VALIDATE = (date(2018, 1, 1), date(2018, 12, 31))


@pytest.fixture(scope="module")
def case():
    from smflow.ml.train import _parents_series, fit_merging_parameters, merge_series
    from smflow.domain import load_domain
    from smflow.ingest import gridded_series

    grid = load_domain()
    parents = _parents_series(TRAIN[0], VALIDATE[1], grid)
    merging = fit_merging_parameters(parents[:, :365], grid)
    merged, _ = merge_series(merging, parents)
    temperature = gridded_series("gldas", TRAIN[0], VALIDATE[1], grid, variable="soil_temperature").values
    times = pd.date_range(TRAIN[0], VALIDATE[1], freq="D").values
    return grid, merged, times, temperature


def _calibrate(case, **kw):
    from smflow.ml.train import calibrate_sm2rain_at_gauges

    grid, merged, times, temperature = case
    kw.setdefault("soil_temperature", temperature)
    return calibrate_sm2rain_at_gauges(merged, times, TRAIN, VALIDATE, grid, SHARED / "ismn_hawaii", **kw)


def test_three_parameter_model_stores_no_filter(case):
    from smflow.ml.train import sm2rain_parameters

    params, metrics, stations = _calibrate(case)
    assert set(params.arrays) == {"Z", "a", "b", "saturation_lower", "saturation_upper"}
    assert len(stations) == 5 and all(s["T_days"] is None for s in stations)
    assert np.isnan(sm2rain_parameters(params).T).all()
    assert 0.0 < metrics["median_r_validation"] < 1.0


def test_exponential_filter_stores_t_and_frozen_bounds_that_the_daily_path_uses(case):
    from smflow.ml.train import SM2RAIN_FILTER_FIELDS, sm2rain_parameters
    from smflow.daily import sm2rain_variant
    from smflow.science.sm2rain import apply_sm2rain, relative_saturation

    grid, merged, times, _ = case
    params, metrics, stations = _calibrate(case, swi_filter="exponential")
    assert set(SM2RAIN_FILTER_FIELDS) <= set(params.arrays)
    land = grid.land_mask
    T = params.arrays["T"]
    assert np.isfinite(T[land]).all() and (T[land] > 0).all()
    assert np.isnan(params.arrays["T_pot"]).all()  # exponential: constant T
    lower, upper = params.arrays["swi_lower"], params.arrays["swi_upper"]
    assert np.all(lower[land] < upper[land])
    assert all(s["T_days"] is not None and s["T_days"] > 0 for s in stations)
    assert np.isfinite(metrics["median_r_validation"])

    # the daily task's path: relative saturation with the frozen bounds, then the champion's filter
    p = sm2rain_parameters(params)
    assert sm2rain_variant(p).startswith("T filter")
    cells = np.moveaxis(merged.reshape(merged.shape[0], -1), 0, -1)
    s = relative_saturation(cells, params.arrays["saturation_lower"].reshape(-1)[:, None],
                            params.arrays["saturation_upper"].reshape(-1)[:, None])
    rain = apply_sm2rain(s, p)
    on_land = rain[land.reshape(-1)]
    assert np.nanmin(on_land) >= 0.0
    assert np.isfinite(on_land[:, 365:]).mean() > 0.5


def test_frozen_soil_gives_no_rain_and_no_validation_skill(case):
    grid, merged, times, temperature = case
    frozen = temperature.copy()
    frozen[365:] = 268.0  # the whole validation year frozen
    _, metrics, stations = _calibrate(case, soil_temperature=frozen)
    assert all(np.isnan(s["r_validation"]) for s in stations)
    assert np.isnan(metrics["median_r_validation"])
    assert all(np.isfinite(s["r_calibration"]) for s in stations)  # 2017 untouched


def test_real_hawaii_skill_is_rated_against_the_gauges_climatology(case):
    """The gate on the real case: SM2RAIN 2018 vs the gauges' 2017 monthly climatology, same days."""
    from smflow.ml.train import sm2rain_skill

    _, metrics, stations = _calibrate(case)
    assert np.isfinite(metrics["median_kge_climatology_validation"])
    assert all(np.isfinite(s["kge_climatology_validation"]) for s in stations)
    # a monthly climatology has almost no day-to-day variance: far from KGE 1
    assert metrics["median_kge_climatology_validation"] < 0.2
    status, why = sm2rain_skill(metrics)
    expected = "operational" if metrics["median_kge_validation"] > max(
        metrics["median_kge_climatology_validation"], 1 - np.sqrt(2)) else "experimental"
    assert status == expected, why
    print(f"SM2RAIN 2018 median KGE {metrics['median_kge_validation']:.3f}, climatology "
          f"{metrics['median_kge_climatology_validation']:.3f}: {status}")
