"""Corrupted copies of real files raise GranuleError naming the file and the problem.

For each reader, a real file from ``../shared/data/real`` is copied to ``tmp_path`` (never into
the repository) and damaged three ways: truncated, bit-flipped where the format can detect it
(the container signature; a compressed payload, which carries a checksum; a value that becomes
physically impossible), and with the main variable missing (renamed, or a file of another
product given to the reader).
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import h5py
import netCDF4
import pytest

from smflow.config import Settings
from smflow.readers.native import GranuleError, open_native

SHARED = Settings.load().shared_data_dir
pytestmark = pytest.mark.skipif(SHARED is None, reason="../shared/data/real is not available "
                                "on this machine (licensed data are never in the repository)")

#: product -> representative real file (relative to ../shared/data/real)
FILES = {
    "smap_l2": "smap_l2/SMAP_L2_SM_P_02801_A_20150811T013002_R18290_001.h5",
    "smos_l3": "smos_l3_catds/SM_OPER_MIR_CLF31A_20150506T000000_20150506T235959"
                     "_300_002_7.DBL.nc",
    "ascat_l2_ssm_nc": "ascat_eumetsat_l2/nc_25km/W_XX-EUMETSAT-Darmstadt,SURFACE+SATELLITE,"
                       "METOPA+ASCAT_C_EUMP_20170220041500_53652_eps_o_250_ssm_l2.nc",
    "ascat_l2_ssm_bufr": "ascat_eumetsat_l2/bufr_pdu_25km/W_XX-EUMETSAT-Darmstadt,SOUNDING+"
                         "SATELLITE,METOPA+ASCAT_C_EUMC_20170220041500_53652_eps_o_250_ssm_l2.bin",
    "hsaf_h101": "hsaf_ascat_nrt_bufr/h101_20170220_104500_METOPA_53656_EUM.buf",
    "hsaf_h14": "hsaf_h14_rzsm_grib/H14_2014051500.grib",
    "ecmwf_grib": "ecmwf_grib/soil-surface-level-mix.grib",
    "gldas": "gldas_noah21/GLDAS_NOAH025_3H.A20160101.0300.021.nc4",
    "esa_cci_sm": "esa_cci_sm_v05.2/combined/ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-"
                  "20160607000000-fv05.2.nc",
    "cgls_ssm_1km": "cgls_1km/CGLS_SSM1km_V1.1_img/c_gls_SSM1km_201706010000_CEURO_S1CSAR"
                    "_V1.1.1.nc",
    "cgls_swi_1km": "cgls_1km/CGLS_SWI1km_V1.0_img/c_gls_SWI1km_201706011200_CEURO_SCATSAR"
                    "_V1.0.1.nc",
    "modis_mod11a1": "modis_lst/MOD11A1.hdf",
    "modis_mod09a1": "modis_ndvi/MOD09A1.A2017193.h18v04.006.2017202035302.hdf",
    "modis_mod13_ndvi_tif": "modis_ndvi/VI_16Days_500m_v6/NDVI/MOD13A1_NDVI_2016_001.tif",
    "srtm_hgt": "dem_srtm_gtopo/N38W028.SRTMGL3.hgt.zip",
    "gtopo30_tif": "dem_srtm_gtopo/bonn_gtopo.tif",
    "etopo20_text": "dem_etopo/etopo20data.gz",
    "gmt_dem_grid": "dem_hawaii/HI_topo_04.nc",
    "ecmwf_landmask": "land_masks/landmask_0.25_0.25.nc",
    "globe_land_mask": "land_masks/globe_combined_mask_compressed.npz",
    "glcnmo": "landcover_glcnmo/glcnmo.tif",
    "wflow_staticmaps": "wflow_piave_staticmaps/staticmaps.nc",
    "chirps_daily": "precip_chirps/chirps-v2.0.2017.05.03.tif",
    "radolan_rw": "precip_radolan/RW-20221018.tar.gz",
    "nws_qpe_conus": "precip_nws_conus/nws_precip_conus_20061222.nc",
    "ismn_stm": "ismn_hawaii/ISMN_TESTDATA_HAWAII/SCAN/Kainaliu/SCAN_SCAN_Kainaliu_sm_0.050800_"
                "0.050800_Hydraprobe-Analog-(2.5-Volt)-A_20170101_20181231.stm",
    "ismn_static_variables": "ismn_hawaii/ISMN_TESTDATA_HAWAII/SCAN/Kainaliu/SCAN_SCAN_"
                             "Kainaliu_static_variables.csv",
    "ismn_metadata": "ismn_hawaii/ISMN_TESTDATA_HAWAII/Metadata.xml",
    "sm2rain_insitu": "sm2rain_example/CER_1hour_2011.txt",
    "sm2rain_parameters": "sm2rain_example/PAR_CER_1hour_2011.dat",
    "smap": "hawaii_timeseries/SMAP_L3_V9_AM_PM/0165.nc",
    "ascat_h119": "hawaii_timeseries/ASCAT_H119/data/0165.nc",
    "grid_points": "hawaii_timeseries/SMAP_L3_V9_AM_PM/grid.nc",
}
OPTIONS = {"globe_land_mask": {"bbox": (-156.1, 18.8, -154.7, 20.4)}}


def _copy(product: str, tmp_path: Path) -> Path:
    src = SHARED / FILES[product]
    dst = tmp_path / src.name
    shutil.copyfile(src, dst)
    if product == "etopo20_text":
        for sibling in ("etopo20lats.gz", "etopo20lons.gz"):
            shutil.copyfile(src.parent / sibling, tmp_path / sibling)
    return dst


def _expect_error(path: Path, product: str, match: str = "") -> GranuleError:
    with pytest.raises(GranuleError) as info:
        open_native(path, product, chunks=None, **OPTIONS.get(product, {}))
    err = info.value
    assert err.path == path and str(path) in str(err)
    assert err.problem and (match.lower() in err.problem.lower())
    return err


def _flip(path: Path, offset: int, mask: int = 0x01) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))


# -- truncated ---------------------------------------------------------------------------------
@pytest.mark.parametrize("product", sorted(FILES))
def test_truncated_copy_raises(product, tmp_path):
    path = _copy(product, tmp_path)
    data = path.read_bytes()
    # not on a message or line boundary: cut a little after the middle
    path.write_bytes(data[: len(data) // 2 + 7])
    _expect_error(path, product)


@pytest.mark.parametrize("product", ["smap_l2", "ecmwf_grib", "sm2rain_insitu"])
def test_empty_and_missing_files_raise(product, tmp_path):
    path = _copy(product, tmp_path)
    path.write_bytes(b"")
    _expect_error(path, product, "empty")
    path.unlink()
    _expect_error(path, product, "does not exist")


# -- bit flips ---------------------------------------------------------------------------------
SIGNATURE_FLIP = [p for p in FILES if p not in (
    "ismn_stm", "ismn_static_variables", "sm2rain_insitu", "sm2rain_parameters")]


@pytest.mark.parametrize("product", sorted(SIGNATURE_FLIP))
def test_flipped_bit_in_the_format_signature_raises(product, tmp_path):
    path = _copy(product, tmp_path)
    data = path.read_bytes()
    # the magic of the container; for BUFR/GRIB behind a bulletin header: of the first message
    magic = {b"BUFR": data.find(b"BUFR"), b"GRIB": data.find(b"GRIB")}
    offset = next((o for o in magic.values() if 0 <= o < 512), 0) + 1
    if product == "ismn_metadata":
        offset = data.find(b"<gmd:MD_Metadata") + 1  # '<' -> '=': not XML any more
        _flip(path, offset, 0x01)
        _expect_error(path, product)
        return
    _flip(path, offset)
    _expect_error(path, product)


@pytest.mark.parametrize("product", ["gldas", "esa_cci_sm", "cgls_ssm_1km",
                                     "smap", "ecmwf_landmask"])
def test_flipped_bit_in_a_compressed_chunk_raises(product, tmp_path):
    """zlib chunks carry an Adler-32 checksum: a flipped bit in one is caught on read."""
    path = _copy(product, tmp_path)
    with h5py.File(path, "r") as h5:
        names = []
        h5.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset)
                      and o.compression == "gzip" and o.size > 1000 else None)
        dset = h5[names[0]]
        info = dset.id.get_chunk_info(0)
    _flip(path, info.byte_offset + info.size // 2, 0x10)
    _expect_error(path, product)


def test_flipped_bit_in_the_zipped_srtm_tile_fails_its_crc(tmp_path):
    path = _copy("srtm_hgt", tmp_path)
    with zipfile.ZipFile(path) as zf:
        member = zf.infolist()[0]
        start = member.header_offset + 30 + len(member.filename) + len(member.extra)
    _flip(path, start + member.compress_size // 2)
    _expect_error(path, "srtm_hgt")


def test_flipped_high_bit_in_a_raw_srtm_value_is_physically_impossible(tmp_path):
    """Uncompressed rasters have no checksum; a flipped high bit gives an impossible height."""
    src = _copy("srtm_hgt", tmp_path)
    with zipfile.ZipFile(src) as zf:
        payload = bytearray(zf.read(zf.namelist()[0]))
    hgt = tmp_path / "N38W028.hgt"
    payload[2 * (600 * 1201 + 600)] ^= 0x40  # big-endian high byte: +/- 16384 m
    hgt.write_bytes(bytes(payload))
    _expect_error(hgt, "srtm_hgt", "physically possible")


def test_flipped_bit_in_gzip_text_fails_its_crc(tmp_path):
    path = _copy("etopo20_text", tmp_path)
    _flip(path, path.stat().st_size // 2)
    _expect_error(path, "etopo20_text")


def test_flipped_bit_in_text_numbers_raises(tmp_path):
    for product, text_from, text_to in (
        ("sm2rain_insitu", b"e-01", b"e-0q"),  # 1 -> q: 0x31 ^ 0x40
        ("ismn_stm", b"0.05   0.", b"0.05   0n"),  # value column: '.' -> 'n'
        ("sm2rain_parameters", b"e+01", b"e+0q"),
    ):
        path = _copy(product, tmp_path)
        data = path.read_bytes()
        at = data.find(text_from, len(data) // 3)
        path.write_bytes(data[:at] + text_to + data[at + len(text_to):])
        _expect_error(path, product)


def test_flipped_bit_in_a_bufr_message_header_raises(tmp_path):
    """A damaged BUFR message is skipped by eccodes; the reader notices the gap."""
    path = _copy("hsaf_h101", tmp_path)
    data = path.read_bytes()
    second = data.find(b"BUFR", data.find(b"BUFR") + 4)
    _flip(path, second + 2)
    _expect_error(path, "hsaf_h101", "not BUFR")


def test_flipped_bit_in_a_grib_message_header_raises(tmp_path):
    path = _copy("hsaf_h14", tmp_path)
    data = path.read_bytes()
    second = data.find(b"GRIB", 4)
    _flip(path, second + 1)
    _expect_error(path, "hsaf_h14", "not GRIB")


# -- wrong variable ----------------------------------------------------------------------------
NETCDF_MAIN = {  # product -> main variable renamed in the copy
    "smos_l3": "Soil_Moisture", "ascat_l2_ssm_nc": "soil_moisture",
    "gldas": "SoilMoi0_10cm_inst", "esa_cci_sm": "sm", "cgls_ssm_1km": "ssm",
    "cgls_swi_1km": "SWI_005", "gmt_dem_grid": "z", "ecmwf_landmask": "land",
    "wflow_staticmaps": "land_elevation", "nws_qpe_conus": "amountofprecip",
    "smap": "soil_moisture", "ascat_h119": "sm", "grid_points": "gpi",
}


@pytest.mark.parametrize("product", sorted(NETCDF_MAIN))
def test_netcdf_without_the_main_variable_raises(product, tmp_path):
    path = _copy(product, tmp_path)
    name = NETCDF_MAIN[product]
    with netCDF4.Dataset(path, "a") as nc:
        if product == "cgls_swi_1km":
            for other in [v for v in nc.variables if v.startswith("SWI_")]:
                nc.renameVariable(other, other.lower() + "_renamed")
        else:
            nc.renameVariable(name, name + "_renamed")
    _expect_error(path, product, "has no")


def test_hdf5_without_the_soil_moisture_dataset_raises(tmp_path):
    path = _copy("smap_l2", tmp_path)
    with h5py.File(path, "a") as h5:
        h5.move("Soil_Moisture_Retrieval_Data/soil_moisture",
                "Soil_Moisture_Retrieval_Data/soil_moisture_renamed")
    _expect_error(path, "smap_l2", "soil_moisture")


@pytest.mark.parametrize("product, other", [
    ("modis_mod11a1", "modis_mod09a1"),  # HDF4: reflectance file read as LST
    ("modis_mod09a1", "modis_mod11a1"),
    ("hsaf_h14", "ecmwf_grib"),  # GRIB: ERA5 soil file has no swi1..4
    ("ecmwf_grib", "hsaf_h14"),
    ("modis_mod13_ndvi_tif", "chirps_daily"),  # GeoTIFF on the wrong grid / legend
    ("glcnmo", "chirps_daily"),
    ("chirps_daily", "modis_mod13_ndvi_tif"),
    ("gtopo30_tif", "glcnmo"),
    ("ismn_stm", "sm2rain_insitu"),
    ("sm2rain_insitu", "ismn_static_variables"),
    ("radolan_rw", "etopo20_text"),
    ("smap_l2", "ascat_l2_ssm_nc"),  # HDF5-based netCDF given to the SMAP reader
])
def test_file_of_another_product_raises(product, other, tmp_path):
    path = _copy(other, tmp_path)
    _expect_error(path, product)


def test_bufr_without_soil_moisture_raises(tmp_path):
    import eccodes

    path = tmp_path / "h101_20170220_104500_METOPA_53656_EUM.buf"
    handle = eccodes.codes_bufr_new_from_samples("BUFR4")
    try:
        with path.open("wb") as fh:
            eccodes.codes_write(handle, fh)
    finally:
        eccodes.codes_release(handle)
    _expect_error(path, "hsaf_h101", "surfaceSoilMoisture")


def test_unknown_file_name_raises_and_says_how_to_fix(tmp_path):
    path = tmp_path / "mystery.dat"
    path.write_bytes(b"x")
    err = _expect_error(path, None, "product=")
    assert "smap" in err.problem
