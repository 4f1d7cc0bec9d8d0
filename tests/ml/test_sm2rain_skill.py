"""The SM2RAIN skill gate against a no-skill baseline (the gauges' monthly climatology)."""

import numpy as np
import pandas as pd

from smflow.ml.train import monthly_climatology, sm2rain_skill


def test_monthly_climatology_is_the_mean_of_the_fitted_days_per_month():
    times = pd.date_range("2017-01-01", "2018-12-31", freq="D")
    rain = np.zeros((2, times.size))
    rain[0, times.month == 1] = 4.0
    rain[0, (times.month == 2) & (times.year == 2017)] = 2.0
    rain[0, (times.month == 2) & (times.year == 2018)] = 100.0  # not fitted: must not leak in
    rain[1, :] = np.nan  # a gauge without data
    fitted = np.asarray(times.year == 2017)
    clim = monthly_climatology(rain, times, fitted)
    feb_2018 = (times.month == 2) & (times.year == 2018)
    assert np.all(clim[0, times.month == 1] == 4.0)
    assert np.all(clim[0, feb_2018] == 2.0)
    assert np.all(clim[0, times.month == 3] == 0.0)
    assert np.isnan(clim[1]).all()


def test_skill_status_compares_with_the_baseline_and_the_mean_benchmark():
    status, why = sm2rain_skill({"median_kge_validation": -0.02, "median_kge_climatology_validation": -0.30})
    assert status == "operational" and "beats it" in why
    status, why = sm2rain_skill({"median_kge_validation": -0.35, "median_kge_climatology_validation": -0.30})
    assert status == "experimental" and "does NOT beat it" in why
    # a baseline worse than the mean-flow benchmark (1 - sqrt 2) does not lower the bar
    status, _ = sm2rain_skill({"median_kge_validation": -0.45, "median_kge_climatology_validation": -0.9})
    assert status == "experimental"
    status, why = sm2rain_skill({"median_kge_validation": 0.2})
    assert status == "experimental" and "no climatology baseline" in why
