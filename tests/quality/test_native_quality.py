"""GX suites of regridded native granules (real files) and their Data Docs on the real S3 server."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import numpy as np
import pytest

from smflow.config import Settings
from smflow.domain import DomainGrid, domain_from_dict, load_domain
from smflow.quality.native import (
    DATA_DOCS_INDEX_KEY,
    DATA_DOCS_SUMMARY_KEY,
    NATIVE_THRESHOLDS_BY_PRODUCT,
    publish_data_docs,
    validate_native_field,
)

SHARED = Settings.load().shared_data_dir
pytestmark = pytest.mark.skipif(SHARED is None, reason="../shared/data/real is not available on this machine")

CGLS = "cgls_1km/CGLS_SSM1km_V1.1_img/c_gls_SSM1km_2017060{d}0000_CEURO_S1CSAR_V1.1.1.nc"
SWI = "cgls_1km/CGLS_SWI1km_V1.0_img/c_gls_SWI1km_2017060{d}1200_CEURO_SCATSAR_V1.0.1.nc"
ASCAT = ("ascat_eumetsat_l2/nc_25km/W_XX-EUMETSAT-Darmstadt,SURFACE+SATELLITE,METOPA+ASCAT_C_EUMP_"
         "20170220041500_53652_eps_o_250_ssm_l2.nc")
CCI = "esa_cci_sm_v05.2/{kind}/ESACCI-SOILMOISTURE-L3S-SSM{v}-{KIND}-{day}000000-fv05.2.nc"


def _grid(name: str, lat, lon, res) -> DomainGrid:
    """A domain made from the real GLOBE land mask the way infra/make_domain.py makes them."""
    import importlib.util

    from smflow.config import REPO_ROOT

    spec = importlib.util.spec_from_file_location("make_domain", REPO_ROOT / "infra" / "make_domain.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return domain_from_dict(module.domain_config(
        name, lat=lat, lon=lon, resolution=res, description="test",
        mask_path=SHARED / "land_masks" / "globe_combined_mask_compressed.npz"))


@pytest.fixture(scope="module")
def grids() -> dict[str, DomainGrid]:
    return {"ebro": load_domain("ebro_pyrenees"),
            "ganges": _grid("ganges", (22.125, 25.875), (84.125, 87.875), 0.25),
            "yukon": _grid("yukon", (62.125, 65.875), (-139.875, -132.125), 0.25)}


#: (file, domain, day) of every real native file checked; each has data in its domain.
REAL_CASES = [
    (CGLS.format(d=1), "ebro", "2017-06-01"),
    (CGLS.format(d=3), "ebro", "2017-06-03"),
    *[(SWI.format(d=d), "ebro", f"2017-06-0{d}") for d in (1, 2, 3)],
    ("gldas_noah21/GLDAS_NOAH025_3H.A20160101.0300.021.nc4", "ebro", "2016-01-01"),
    ("gldas_noah21/GLDAS_NOAH025_3H.A20160101.2100.021.nc4", "ebro", "2016-01-01"),
    (CCI.format(kind="combined", v="V", KIND="COMBINED", day="20160607"), "ebro", "2016-06-07"),
    (CCI.format(kind="passive", v="V", KIND="PASSIVE", day="20160606"), "ebro", "2016-06-06"),
    (CCI.format(kind="active", v="S", KIND="ACTIVE", day="20160606"), "ebro", "2016-06-06"),
    ("dem_etopo/FR+IT.nc", "ebro", "2017-06-01"),
    (ASCAT, "ganges", "2017-02-20"),
    ("smap_l2/SMAP_L2_SM_P_02801_A_20150811T013002_R18290_001.h5", "yukon", "2015-08-11"),
]


def regridded(rel: str, grid: DomainGrid):
    from smflow.readers.native import open_native
    from smflow.regrid import native_to_domain, terrain_covariates

    path = SHARED / rel
    if not path.is_file():
        pytest.skip(f"{rel} is not in ../shared/data/real")
    source = open_native(path)
    field = terrain_covariates(source, grid) if "elevation" in source else native_to_domain(source, grid)
    return source, field


@pytest.fixture(scope="module")
def cgls_day1(grids):
    return regridded(CGLS.format(d=1), grids["ebro"])


@pytest.mark.parametrize("rel,domain,day", REAL_CASES, ids=[c[0].rsplit("/", 1)[-1][:44] for c in REAL_CASES])
def test_real_native_file_passes_its_suite(grids, rel, domain, day):
    source, field = regridded(rel, grids[domain])
    product = source.attrs["native_product"]
    outcome = validate_native_field(product, field, dt.date.fromisoformat(day), grids[domain], source=source)
    assert outcome.success, outcome.reason
    assert outcome.suite_name == f"native_{product}"
    stats = outcome.statistics
    assert stats["n_valid_land"] >= 1 and stats["evaluated_expectations"] == stats["successful_expectations"] >= 9
    assert stats["land_coverage"] >= 1.0 - NATIVE_THRESHOLDS_BY_PRODUCT[product].max_missing_fraction


def test_all_fill_cgls_granule_fails_with_a_clear_reason(grids):
    source, field = regridded(CGLS.format(d=2), grids["ebro"])
    outcome = validate_native_field("cgls_ssm_1km", field, dt.date(2017, 6, 2), grids["ebro"], source=source)
    assert not outcome.success
    assert outcome.failed_checks == ("fill_fraction",)
    assert outcome.reason.startswith("native product cgls_ssm_1km on 2017-06-02 (domain ebro_pyrenees")
    assert "there is no valid pixel over the domain ebro_pyrenees" in outcome.reason
    assert outcome.statistics["n_valid_land"] == 0


def test_field_on_the_wrong_grid_or_crs_fails_the_grid_expectation(grids, cgls_day1):
    source, field = cgls_day1
    grid = grids["ebro"]
    shifted = field.assign_coords(lat=field["lat"] + 0.05)
    outcome = validate_native_field("cgls_ssm_1km", shifted, dt.date(2017, 6, 1), grid, source=source)
    assert not outcome.success and "grid" in outcome.failed_checks
    assert "lat_error: 1600 of 1600 lat values that are not centres of grid ebro_pyrenees" in outcome.reason

    wrong_crs = field.assign_attrs(crs="EPSG:3035")
    outcome = validate_native_field("cgls_ssm_1km", wrong_crs, dt.date(2017, 6, 1), grid, source=source)
    assert outcome.failed_checks == ("grid",)
    assert "crs attribute is not EPSG:4326" in outcome.reason

    other = validate_native_field("cgls_ssm_1km", field, dt.date(2017, 6, 1), grids["ganges"], source=source)
    assert "grid" in other.failed_checks and not other.success


def test_out_of_range_values_fail_the_range_expectation(grids, cgls_day1):
    source, field = cgls_day1
    bad = field.copy()
    bad["degree_of_saturation"] = field["degree_of_saturation"] / 100 * 3  # a fraction x 3, not percent
    bad["degree_of_saturation"] = bad["degree_of_saturation"].where(
        field["degree_of_saturation"].isnull() | (field["degree_of_saturation"] < 40), 150.0)
    bad["degree_of_saturation"].attrs = field["degree_of_saturation"].attrs
    bad["degree_of_saturation"].encoding = field["degree_of_saturation"].encoding
    outcome = validate_native_field("cgls_ssm_1km", bad, dt.date(2017, 6, 1), grids["ebro"], source=source)
    assert outcome.failed_checks == ("physical_range",)
    assert "values outside [0, 100] percent [physical_range]" in outcome.reason


def test_flags_not_applied_and_times_off_the_day_fail(grids, cgls_day1):
    source, field = cgls_day1
    leaked = field.copy()
    sm = leaked["degree_of_saturation"].values.copy()
    sm[(leaked["quality_fraction"].values == 0) & grids["ebro"].land_mask] = 50.0
    leaked["degree_of_saturation"].values = sm
    outcome = validate_native_field("cgls_ssm_1km", leaked, dt.date(2017, 6, 1), grids["ebro"], source=source)
    assert "flag_consistency" in outcome.failed_checks

    late = validate_native_field("cgls_ssm_1km", field, dt.date(2017, 5, 31), grids["ebro"], source=source)
    assert late.failed_checks == ("timestamps",)
    assert "observation times outside the UTC day" in late.reason


def test_schema_problems_fail(grids, cgls_day1):
    source, field = cgls_day1
    broken = field.copy()
    broken["degree_of_saturation"].attrs = {}
    broken["degree_of_saturation"].encoding = {}
    outcome = validate_native_field("cgls_ssm_1km", broken, dt.date(2017, 6, 1), grids["ebro"], source=source)
    assert outcome.failed_checks == ("schema",)
    assert "degree_of_saturation: missing CF attribute units" in outcome.reason
    assert "without _FillValue" in outcome.reason


def test_publish_data_docs_uploads_index_html(stack, s3_client, grids, cgls_day1):
    from smflow.quality.validate import store_validation_result
    from smflow.s3 import ensure_bucket, list_keys

    tag = uuid.uuid4().hex[:8]
    settings = dataclasses.replace(stack, store_bucket=f"qnative-store-{tag}",
                                   products_bucket=f"qnative-products-{tag}")
    for bucket in (settings.store_bucket, settings.products_bucket):
        ensure_bucket(s3_client, bucket)
    try:
        source, field = cgls_day1
        good = validate_native_field("cgls_ssm_1km", field, dt.date(2017, 6, 1), grids["ebro"], source=source)
        src2, empty = regridded(CGLS.format(d=2), grids["ebro"])
        bad = validate_native_field("cgls_ssm_1km", empty, dt.date(2017, 6, 2), grids["ebro"], source=src2)
        store_validation_result(s3_client, settings, "native", "cgls_ssm_1km", "2017-06-01", good)
        store_validation_result(s3_client, settings, "native", "cgls_ssm_1km", "2017-06-02", bad)

        key = publish_data_docs(s3_client, settings)
        assert key == DATA_DOCS_INDEX_KEY == "quality/data-docs/index.html"
        index = s3_client.get_object(Bucket=settings.products_bucket, Key=key)
        assert index["ContentType"].startswith("text/html")
        page = index["Body"].read().decode()
        assert "native_cgls_ssm_1km" in page
        keys = list_keys(s3_client, settings.products_bucket, "quality/data-docs/")
        pages = [k for k in keys if k.startswith("quality/data-docs/validations/native_cgls_ssm_1km/")]
        assert len(pages) == 2 and all(k.endswith(".html") for k in pages)
        failed = s3_client.get_object(Bucket=settings.products_bucket, Key=[p for p in pages if "20170602" in p][0])
        assert "valid_land_cells" in failed["Body"].read().decode()
        css = [k for k in keys if k.endswith(".css")]
        assert css and s3_client.head_object(Bucket=settings.products_bucket, Key=css[0])["ContentType"].startswith("text/css")
        summary = s3_client.get_object(Bucket=settings.products_bucket, Key=DATA_DOCS_SUMMARY_KEY)["Body"].read().decode()
        assert "no valid pixel over the domain ebro_pyrenees" in summary

        assert publish_data_docs(s3_client, settings) == key  # idempotent, same stable key
    finally:
        for bucket in (settings.store_bucket, settings.products_bucket):
            for k in list_keys(s3_client, bucket):
                s3_client.delete_object(Bucket=bucket, Key=k)
            s3_client.delete_bucket(Bucket=bucket)
