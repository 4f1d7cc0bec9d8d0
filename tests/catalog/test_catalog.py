"""The product catalogue: one entry per product, the registries derived from it, one name per
product, pipeline sets from config/daily_pipelines.json, and SMOS L3 added by one entry."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from smflow import catalog
from smflow.archive.reconcile import ARCHIVE_SOURCES, provider_granules
from smflow.catalog.load import PRODUCTS_DIR, CatalogError, load_entries
from smflow.config import Settings
from smflow.products import MERGED_TRIPLET, PRODUCTS, get_product
from smflow.quality.native import NATIVE_FIELD_THRESHOLDS, native_thresholds
from smflow.quality.suites import GRANULE_THRESHOLDS, INPUT_PRODUCTS, MERGED_SOURCES
from smflow.readers.native import NATIVE_PRODUCTS, get_native_product, product_for_path
from smflow.regrid import REGRID_METHODS, regrid_default

REPO = Path(__file__).resolve().parents[2]


def _shared() -> Path:
    shared = Settings.load().shared_data_dir
    if shared is None or not (shared / "hawaii_timeseries" / "SMOS_L3_v339_ASC").is_dir():
        pytest.skip("../shared/data/real/hawaii_timeseries/SMOS_L3_v339_ASC is not available")
    return shared


# -- one entry per product, every registry a view of it ------------------------------------------
def test_one_yaml_file_per_entry_named_after_it():
    files = sorted(p.stem for p in PRODUCTS_DIR.glob("*.yaml"))
    assert files == sorted(catalog.entries())
    for name, e in catalog.entries().items():
        assert e.source_file.endswith(f"/{name}.yaml")


def test_registries_are_views_of_the_entries():
    entries = catalog.entries()
    assert set(PRODUCTS) == {n for n, e in entries.items() if e.timeseries is not None}
    assert set(NATIVE_PRODUCTS) == {n for n, e in entries.items() if e.native is not None}
    for name, e in entries.items():
        if e.timeseries is not None:
            assert PRODUCTS[name] is e.timeseries
        if e.native is not None:
            assert NATIVE_PRODUCTS[name] is e.native
        if e.regrid is not None:
            assert REGRID_METHODS[name] is e.regrid
        if e.granule_qc is not None:
            assert GRANULE_THRESHOLDS[name] is e.granule_qc
        if e.native_qc_family is not None:
            assert native_thresholds(name).family == e.native_qc_family
        for source in e.archive:
            assert ARCHIVE_SOURCES[source.order] == (source.client, source.collection)
    assert set(REGRID_METHODS) == {n for n, e in entries.items() if e.regrid is not None}
    assert {p for f in NATIVE_FIELD_THRESHOLDS for p in f.products} == {
        n for n, e in entries.items() if e.native_qc_family is not None}


def test_time_series_and_native_paths_read_the_same_entry():
    for name in ("smap", "gldas", "smos_l3"):
        native = get_native_product(name)
        assert native.cells is not None and native.cells.timeseries_product is get_product(name)
        assert native.name == native.cells.name == name
    # a product with only cell files is read by the cell-file handler, under its own name
    assert get_native_product("era5_land").timeseries_product is get_product("era5_land")


def test_licence_class_decides_redistribution_and_the_bundle():
    for e in catalog.entries().values():
        assert e.redistributable == (e.licence_class == "open")
        for record in (e.timeseries, e.native):
            if record is not None:
                assert record.redistributable == e.redistributable, e.name
    # only open products are bundled in data/sample
    bundled = {p.name for p in (REPO / "data" / "sample" / "hawaii").iterdir() if p.is_dir()}
    for name, p in PRODUCTS.items():
        if p.folder in bundled:
            assert p.redistributable, f"{name} is bundled but its licence class is internal"
    for name in ("ascat_h119", "ascat_h113", "smos_l3", "ismn_stm", "esa_cci_sm",
                 "wflow_staticmaps", "hsaf_h101"):
        assert catalog.entry(name).licence_class == "internal", name


# -- one name per product ------------------------------------------------------------------------
@pytest.mark.parametrize("old, new", [("smap_spl3smp", "smap"), ("smap_cells", "smap"),
                                      ("smap_spl2smp", "smap_l2"), ("gldas_noah21", "gldas"),
                                      ("smos_l3_catds", "smos_l3"), ("ascat_h101", "hsaf_h101"),
                                      ("modis_lst", "modis_mod11a1")])
def test_former_names_are_deprecated_aliases(old, new):
    with pytest.warns(DeprecationWarning, match=f"{old!r} is deprecated; use {new!r}"):
        assert catalog.entry(old) is catalog.entry(new)
    assert old not in NATIVE_PRODUCTS and old not in PRODUCTS and old not in ARCHIVE_SOURCES
    assert old not in REGRID_METHODS


def test_smap_has_one_name_on_every_path():
    shared = Settings.load().shared_data_dir
    assert get_product("smap").name == "smap"
    assert regrid_default("smap").method == "bilinear"
    assert ARCHIVE_SOURCES["smap"] == ("cmr", "smap")
    assert product_for_path("x/SMAP_L3_SM_P_20170101_R18290_001.h5").name == "smap"
    cells = product_for_path("hawaii_timeseries/SMAP_L3_V9_AM_PM/0165.nc")
    assert cells.name == "smap" and cells.handler == "CellFileHandler"
    with pytest.warns(DeprecationWarning):  # the former cell-file name gives the cell reader
        assert get_native_product("smap_cells") is cells
    if shared is not None and (shared / "hawaii_timeseries").is_dir():
        from smflow.readers.native import open_native

        ds = open_native(shared / "hawaii_timeseries" / "SMAP_L3_V9_AM_PM" / "0165.nc", chunks=None)
        assert ds.attrs["native_product"] == ds.attrs["product"] == "smap"


def test_no_module_writes_the_merged_triplet_out():
    parents = catalog.pipeline("daily_soil_moisture").parents
    assert parents == ("smap", "era5_land", "gldas")
    assert MERGED_TRIPLET == MERGED_SOURCES == parents
    assert INPUT_PRODUCTS == catalog.pipeline("daily_soil_moisture").inputs


# -- pipelines -----------------------------------------------------------------------------------
def test_pipeline_by_key_or_dag_id():
    main = catalog.pipeline("daily_soil_moisture")
    assert catalog.pipeline("big_island") is main
    assert main.inputs == ("smap", "era5_land", "gldas", "c3s")
    assert main.reference == "c3s" and main.reference not in main.parents
    ebro = catalog.pipeline("daily_soil_moisture_ebro_pyrenees")
    assert ebro.inputs == ("cgls_ssm_1km", "cgls_swi_1km") and ebro.parents == ()
    with pytest.raises(KeyError, match="known: .*big_island"):
        catalog.pipeline("no_such_pipeline")
    for p in catalog.pipelines().values():  # every input is a catalogue product
        for name in p.inputs:
            assert name in catalog.entries(), name


def test_pipeline_parents_must_be_inputs(tmp_path):
    bad = tmp_path / "pipelines.json"
    bad.write_text('{"pipelines": {"x": {"dag_id": "x", "domain": "big_island", '
                   '"inputs": ["smap"], "parents": ["smap", "gldas"], "reference": "c3s"}}}')
    with pytest.raises(ValueError, match=r"\['gldas', 'c3s'\].*add them to 'inputs'"):
        catalog.pipeline("x", path=bad)


# -- the loader is strict ------------------------------------------------------------------------
def _entry_dir(tmp_path: Path, name: str, edit=None) -> Path:
    data = yaml.safe_load((PRODUCTS_DIR / "smos_l3.yaml").read_text())
    data["name"] = name
    data["aliases"] = []
    if edit:
        edit(data)
    folder = tmp_path / "products"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


def test_a_typo_in_an_entry_is_an_error_naming_the_file(tmp_path):
    def typo(d):
        d["timeseries"]["valid_rnage"] = [0, 1]
    folder = _entry_dir(tmp_path, "demo", typo)
    with pytest.raises(CatalogError, match=r"demo\.yaml: timeseries: unknown key\(s\) \['valid_rnage'\]"):
        load_entries(folder)


def test_a_missing_fact_or_a_bad_value_is_an_error(tmp_path):
    folder = _entry_dir(tmp_path, "demo", lambda d: d.pop("licence_class"))
    with pytest.raises(CatalogError, match=r"missing key\(s\) \['licence_class'\]"):
        load_entries(folder)
    folder = _entry_dir(tmp_path, "demo", lambda d: d["regrid"].update(method="cubic"))
    with pytest.raises(CatalogError, match="regrid.method 'cubic'"):
        load_entries(folder)


def test_a_name_used_twice_is_an_error(tmp_path):
    _entry_dir(tmp_path, "demo_a")
    folder = _entry_dir(tmp_path, "demo_b", lambda d: d.update(aliases=["demo_a"]))
    with pytest.raises(CatalogError, match="'demo_a' is already used by demo_a.yaml"):
        load_entries(folder)
    (folder / "demo_b.yaml").unlink()
    shutil.copy(folder / "demo_a.yaml", folder / "other.yaml")
    with pytest.raises(CatalogError, match="must be named after its entry"):
        load_entries(folder)


# -- SMOS L3: a new product is one catalogue entry -----------------------------------------------
def test_smos_l3_gridded_over_the_big_island():
    from smflow.domain import load_domain
    from smflow.ingest import grid_granule, gridded_series
    from smflow.readers.decode import read_product

    _shared()
    grid = load_domain("big_island")
    series = gridded_series("smos_l3", "2017-06-01", "2017-06-30", grid)
    assert series.shape == (30, *grid.shape)
    values = series.values
    land = grid.land_mask
    assert np.isnan(values[:, ~land]).all()  # never over sea
    finite = np.isfinite(values)
    # a 25 km EASE-2 point within 18.75 km of the cell centre (0.75 x spacing) is found for
    # two thirds of the 84 land cells (measured: 56); the coastal rest has none that close
    assert finite.any(axis=0)[land].sum() >= 50
    assert 0.0 <= np.nanmin(values) and np.nanmax(values) <= 1.0
    assert 0.05 < np.nanmedian(values) < 0.6  # volumetric, not percent or raw counts
    assert series.attrs["product"] == "smos_l3" and series.attrs["units"] == "m3 m-3"
    assert series.attrs["regridding"].startswith("nearest neighbour within 18750 m")
    # the daily path gives the same numbers as the bulk path
    decoded = read_product("smos_l3", "2017-06-01", "2017-06-30")
    day = int(np.argmax(finite.sum(axis=(1, 2))))
    one = grid_granule("smos_l3", decoded, series["time"].values[day], grid)
    np.testing.assert_array_equal(one.values, values[day])


def test_smos_l3_native_daily_file_and_cells_share_the_name():
    from smflow.readers.native import open_native

    shared = _shared()
    cells = open_native(shared / "hawaii_timeseries" / "SMOS_L3_v339_ASC" / "0165.nc", chunks=None)
    assert cells.attrs["native_product"] == cells.attrs["product"] == "smos_l3"
    daily = shared / "smos_l3_catds" / "SM_OPER_MIR_CLF31A_20150506T000000_20150506T235959_300_002_7.DBL.nc"
    if daily.is_file():
        ds = open_native(daily, chunks=None)
        assert ds.attrs["native_product"] == "smos_l3"
        assert ds.attrs["reader"].endswith("SmosL3Handler")


def test_provider_archive_of_smos_l3_and_aliases():
    assert ARCHIVE_SOURCES["smos_l3"] == ("catds", "MIR_CLF31A")
    assert ARCHIVE_SOURCES["ascat_somo12"] == ("eumetsat", "ascat_somo12")
    assert ARCHIVE_SOURCES["c3s"] == ("cds", "satellite-soil-moisture")
    assert ARCHIVE_SOURCES["era5_land"] == ("cds", "reanalysis-era5-land")
    with pytest.raises(ValueError, match="add an 'archive' section to smflow/catalog/products/cgls_ssm_1km.yaml"):
        provider_granules("cgls_ssm_1km", None)  # type: ignore[arg-type]
