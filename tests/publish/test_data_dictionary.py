"""docs/data-dictionary.md is what smflow.publish.dictionary writes for the files the current code
publishes (a TC-merging day; an ML champion adds member_soil_moisture / soil_moisture_uncertainty).

Regenerate after changing a variable: ``SMFLOW_REGENERATE_DOCS=1 bash infra/test.sh tests/publish/test_data_dictionary.py``.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

import synthetic
from smflow.publish.cf import PRODUCT_NAMES, build_product_datasets, resolve_provenance, to_netcdf_bytes
from smflow.publish.dictionary import data_dictionary

DOC = Path(__file__).resolve().parents[2] / "docs" / "data-dictionary.md"


def test_the_data_dictionary_is_current(tmp_path):
    day = dt.date(2018, 6, 2)
    product = synthetic.daily_product(day)
    datasets = build_product_datasets(product, day, provenance=resolve_provenance(product, synthetic.provenance(day)))
    paths = []
    for name in PRODUCT_NAMES:
        paths.append(tmp_path / f"smflow_{name}_{day:%Y%m%d}.nc")
        paths[-1].write_bytes(to_netcdf_bytes(datasets[name]))
    text = data_dictionary(paths)
    for name, ds in datasets.items():  # every variable of every file is in it, with its units
        for var in ds.variables:
            assert f"| `{var}` |" in text
            if "units" in ds[var].attrs:
                assert f"| {ds[var].attrs['units']} |" in text
    if os.environ.get("SMFLOW_REGENERATE_DOCS"):
        DOC.write_text(text)
    assert DOC.read_text() == text, f"{DOC} is stale: regenerate it (see this module's docstring)"


def test_not_a_product_is_refused(tmp_path):
    import xarray as xr

    path = tmp_path / "other.nc"
    xr.Dataset({"x": ("t", [1.0])}).to_netcdf(path, engine="h5netcdf")
    with pytest.raises(ValueError, match="not a product"):
        data_dictionary([path])
    with pytest.raises(FileNotFoundError, match="no such product file"):
        data_dictionary([tmp_path / "missing.nc"])
