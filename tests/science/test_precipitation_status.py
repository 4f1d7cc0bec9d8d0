"""precipitation_status: why a cell has or has no SM2RAIN rainfall, decided from the inputs."""

import numpy as np
import pytest

from smflow.science.sm2rain import PRECIPITATION_STATUS_FLAGS, SM2RAINParameters, apply_sm2rain, precipitation_status


def _params(cells: int) -> SM2RAINParameters:
    return SM2RAINParameters.from_dict({"Z": np.full(cells, 80.0), "a": np.full(cells, 10.0), "b": np.full(cells, 5.0)})


def test_each_reason_and_its_agreement_with_the_inversion():
    # 6 cells x 5 days of relative saturation
    s = np.tile(np.array([0.30, 0.35, 0.50, 0.45, 0.60]), (6, 1))
    s[1, -1] = np.nan  # no soil moisture on the day
    s[2, -2] = np.nan  # none the day before (e.g. a "no product" day)
    frozen = np.zeros_like(s, dtype=bool)
    frozen[3, -1] = True  # frozen on the day
    frozen[4, -2] = True  # frozen the day before
    params = _params(6)
    lower, upper = np.zeros(6), np.ones(6)
    upper[5] = np.nan  # a cell without calibrated saturation bounds
    status = precipitation_status(s, frozen, params, lower, upper)
    assert status.dtype == np.int8
    assert [PRECIPITATION_STATUS_FLAGS[int(v)] for v in status] == [
        "computed", "no_soil_moisture", "no_soil_moisture_on_previous_day",
        "frozen_soil_or_snow", "frozen_soil_or_snow", "no_sm2rain_parameters"]
    # the rainfall of the inversion exists exactly where the status says 'computed' (cells 0-4;
    # cell 5's missing bounds act before apply_sm2rain, in relative_saturation)
    rain = apply_sm2rain(s[:5], _params(5), frozen=frozen[:5])[:, -1]
    assert np.isfinite(rain).tolist() == (status[:5] == 0).tolist()


def test_first_reason_wins_and_short_windows_are_refused():
    s = np.array([[np.nan, np.nan]])
    status = precipitation_status(s, np.ones_like(s, dtype=bool), _params(1), np.zeros(1), np.full(1, np.nan))
    assert status.tolist() == [1]
    with pytest.raises(ValueError, match="time >= 2"):
        precipitation_status(np.zeros((3, 1)), np.zeros((3, 1), dtype=bool), _params(3), np.zeros(3), np.ones(3))
