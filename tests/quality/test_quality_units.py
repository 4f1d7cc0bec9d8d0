"""A granule in the wrong units is quarantined with a reason that says so (issue 11, item 2).

Real granules of each input product are cut from the Hawaii time series (the landing-zone format),
their soil-moisture variable multiplied by 100 (percent instead of a fraction), read by the
production reader and validated: the reader's range mask must not hide the fault.
"""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pytest

from quality_fixtures import REAL_TIMESERIES
from smflow.quality.suites import INPUT_PRODUCTS

DAY = "2017-06-01"
pytestmark = pytest.mark.skipif(not REAL_TIMESERIES.is_dir(), reason="../shared (Hawaii time series) absent")


def _granule(product: str, tmp_path: Path, factor: float | None = None) -> Path:
    from infra.archive_stand_in import ArchiveStandIn
    from smflow.config import Settings
    from smflow.products import get_product

    path = ArchiveStandIn(Settings.load()).write_granule(product, DAY, tmp_path / f"{product}_{DAY}.nc")
    if factor is not None:
        variable = get_product(product).variable
        with netCDF4.Dataset(path, "r+") as nc:
            var = nc[variable]
            var.set_auto_maskandscale(True)
            values = var[:]
            var[:] = values * factor
    return path


@pytest.mark.parametrize("product", INPUT_PRODUCTS)
def test_a_granule_in_percent_fails_its_units_check(product: str, tmp_path: Path) -> None:
    from smflow.quality.validate import validate_granule
    from smflow.readers.granule import read_granule

    good = validate_granule(product, read_granule(product, _granule(product, tmp_path)), DAY)
    assert good.success, good.reason
    decoded = read_granule(product, _granule(product, tmp_path, factor=100.0))
    assert np.isfinite(decoded["soil_moisture_as_read"].values).any()
    outcome = validate_granule(product, decoded, DAY)
    assert not outcome.success
    assert outcome.failed_checks[0] == "units", outcome.failed_checks
    assert "wrong units?" in outcome.reason and "expected" in outcome.reason, outcome.reason
    assert outcome.statistics["value_as_read_min"] > 0.5  # the statistics keep what the file held
