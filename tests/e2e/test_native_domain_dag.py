"""End to end on a configured domain fed by native granules: ``daily_soil_moisture_ebro_pyrenees``.

The real Copernicus Global Land 1 km SSM and SWI files of 2017-06-01..03 (NE Spain / S France) are
landed as a provider delivers them; ``airflow dags test`` then waits for them (sensors), reads
them natively, regrids them to the 0.1 degree ``ebro_pyrenees`` grid, runs their GX suites and
publishes the regridded, QC'd inputs. 2017-06-02 is a real empty day of the SSM product (no
Sentinel-1 overpass, every pixel fill): it must be quarantined with the reason, and the day
published with SSM recorded as missing. A corrupted copy of a real file of every native reader
goes through the same ingest task and is quarantined, never stored.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from smflow.config import Settings

REPO = Path(__file__).resolve().parents[2]
SHARED = Settings.load().shared_data_dir
pytestmark = pytest.mark.skipif(SHARED is None, reason="../shared/data/real is not available")

DOMAIN = "ebro_pyrenees"
DAG_ID = "daily_soil_moisture_ebro_pyrenees"
CGLS = {
    "cgls_ssm_1km": "cgls_1km/CGLS_SSM1km_V1.1_img/c_gls_SSM1km_201706{:02d}0000_CEURO_S1CSAR_V1.1.1.nc",
    "cgls_swi_1km": "cgls_1km/CGLS_SWI1km_V1.0_img/c_gls_SWI1km_201706{:02d}1200_CEURO_SCATSAR_V1.0.1.nc",
}


def _airflow(env: dict, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(Path(sys.executable).parent / "airflow"), *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"airflow {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="module")
def landed(stack, s3_client):
    from infra.archive_stand_in import ArchiveStandIn

    zone = ArchiveStandIn(stack, s3=s3_client)
    for product, pattern in CGLS.items():
        for dd in (1, 2, 3):
            zone.put_native(product, date(2017, 6, dd), SHARED / pattern.format(dd))
    return stack


def _get(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_native_inputs_are_regridded_checked_and_published(landed, s3_client, airflow_env):
    import xarray as xr

    from smflow.domain import load_domain
    from smflow.publish.inputs import input_item_key, input_key

    settings = landed
    grid = load_domain(DOMAIN)
    _airflow(airflow_env, "dags", "test", DAG_ID, "2017-06-01")
    day = date(2017, 6, 1)
    item = json.loads(_get(s3_client, settings.products_bucket, input_item_key(DOMAIN, day)))
    assert item["properties"]["smflow:missing_inputs"] == []
    assert {"cgls_ssm_1km-data", "cgls_swi_1km-data", "cgls_ssm_1km-quicklook"} <= set(item["assets"])
    ssm = xr.load_dataset(io.BytesIO(_get(s3_client, settings.products_bucket,
                                          input_key(DOMAIN, "cgls_ssm_1km", day, "nc"))), engine="h5netcdf")
    assert ssm.attrs["Conventions"] == "CF-1.8" and ssm.attrs["domain"] == DOMAIN
    assert "c_gls_SSM1km_201706010000" in ssm.attrs["input_granules"]
    np.testing.assert_allclose(ssm["lat"].values, grid.lat, atol=1e-9)
    np.testing.assert_allclose(ssm["lon"].values, grid.lon, atol=1e-9)
    name = next(v for v in ssm.data_vars if ssm[v].dims[-2:] == ("lat", "lon") and ssm[v].dtype.kind == "f"
                and not str(v).endswith(("_count", "_fraction")))
    values = ssm[name].values
    assert np.isfinite(values).sum() > 50  # 27,563 valid 1 km pixels fall into the box
    assert np.nanmin(values) >= 0 and np.nanmax(values) <= 100  # degree of saturation [%]
    # the store holds the day on the domain's own grid
    from smflow.store import TimeSeriesStore

    stored = TimeSeriesStore(settings, s3=s3_client, grid=grid).get("cgls_ssm_1km", day)
    assert stored is not None and stored.shape == grid.shape

    # a re-run writes nothing new
    before = {k["Key"]: k["ETag"] for k in s3_client.list_objects_v2(Bucket=settings.products_bucket,
                                                                     Prefix=f"inputs/{DOMAIN}/2017/06/01/")["Contents"]}
    _airflow(airflow_env, "dags", "test", DAG_ID, "2017-06-01")
    after = {k["Key"]: k["ETag"] for k in s3_client.list_objects_v2(Bucket=settings.products_bucket,
                                                                    Prefix=f"inputs/{DOMAIN}/2017/06/01/")["Contents"]}
    assert before == after


def test_the_real_empty_day_is_quarantined_and_recorded_missing(landed, s3_client, airflow_env):
    from smflow.publish.inputs import input_item_key, input_key

    settings = landed
    day = date(2017, 6, 2)
    _airflow(airflow_env, "dags", "test", DAG_ID, day.isoformat())
    item = json.loads(_get(s3_client, settings.products_bucket, input_item_key(DOMAIN, day)))
    missing = item["properties"]["smflow:missing_inputs"]
    assert len(missing) == 1 and missing[0].startswith("cgls_ssm_1km: quarantined")
    assert "cgls_swi_1km-data" in item["assets"] and "cgls_ssm_1km-data" not in item["assets"]
    from smflow.quality.quarantine import list_quarantine

    quarantined = list_quarantine(s3_client, settings, day, product="cgls_ssm_1km")
    assert quarantined, "the all-fill granule is not in quarantine"
    # the landed file is kept
    key = f"native/cgls_ssm_1km/2017/06/02/{Path(CGLS['cgls_ssm_1km'].format(2)).name}"
    s3_client.head_object(Bucket=settings.landing_bucket, Key=key)
    with pytest.raises(Exception):
        s3_client.head_object(Bucket=settings.products_bucket, Key=input_key(DOMAIN, "cgls_ssm_1km", day, "nc"))


#: one real file per native reader (relative to ../shared/data/real)
READER_FILES = {
    "smap_l2": "smap_l2/SMAP_L2_SM_P_02801_A_20150811T013002_R18290_001.h5",
    "smos_l3": "smos_l3_catds/SM_OPER_MIR_CLF31A_20150506T000000_20150506T235959_300_002_7.DBL.nc",
    "ascat_l2_ssm_nc": "ascat_eumetsat_l2/nc_25km/W_XX-EUMETSAT-Darmstadt,SURFACE+SATELLITE,"
                       "METOPA+ASCAT_C_EUMP_20170220041500_53652_eps_o_250_ssm_l2.nc",
    "hsaf_h101": "hsaf_ascat_nrt_bufr/h101_20170220_104500_METOPA_53656_EUM.buf",
    "hsaf_h14": "hsaf_h14_rzsm_grib/H14_2014051500.grib",
    "gldas": "gldas_noah21/GLDAS_NOAH025_3H.A20160101.0300.021.nc4",
    "cgls_ssm_1km": "cgls_1km/CGLS_SSM1km_V1.1_img/c_gls_SSM1km_201706010000_CEURO_S1CSAR_V1.1.1.nc",
    "cgls_swi_1km": "cgls_1km/CGLS_SWI1km_V1.0_img/c_gls_SWI1km_201706011200_CEURO_SCATSAR_V1.0.1.nc",
    "modis_mod11a1": "modis_lst/MOD11A1.hdf",
    "gmt_dem_grid": "dem_etopo/FR+IT.nc",
    "ascat_l2_ssm_bufr": "ascat_eumetsat_l2/bufr_pdu_25km/W_XX-EUMETSAT-Darmstadt,SOUNDING+"
                         "SATELLITE,METOPA+ASCAT_C_EUMC_20170220041500_53652_eps_o_250_ssm_l2.bin",
    "ecmwf_grib": "ecmwf_grib/soil-surface-level-mix.grib",
    "esa_cci_sm": "esa_cci_sm_v05.2/combined/ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-20160607000000-fv05.2.nc",
    "modis_mod09a1": "modis_ndvi/MOD09A1.A2017193.h18v04.006.2017202035302.hdf",
    "modis_mod13_ndvi_tif": "modis_ndvi/VI_16Days_500m_v6/NDVI/MOD13A1_NDVI_2016_001.tif",
    "srtm_hgt": "dem_srtm_gtopo/N38W028.SRTMGL3.hgt.zip",
    "gtopo30_tif": "dem_srtm_gtopo/bonn_gtopo.tif",
    "etopo20_text": "dem_etopo/etopo20data.gz",
    "ecmwf_landmask": "land_masks/landmask_0.25_0.25.nc",
    "globe_land_mask": "land_masks/globe_combined_mask_compressed.npz",
    "glcnmo": "landcover_glcnmo/glcnmo.tif",
    "wflow_staticmaps": "wflow_piave_staticmaps/staticmaps.nc",
    "chirps_daily": "precip_chirps/chirps-v2.0.2017.05.03.tif",
    "radolan_rw": "precip_radolan/RW-20221018.tar.gz",
    "nws_qpe_conus": "precip_nws_conus/nws_precip_conus_20061222.nc",
}


@pytest.mark.parametrize("product", sorted(READER_FILES))
def test_a_truncated_copy_of_each_reader_is_quarantined_by_the_ingest_task(product, stack, s3_client, tmp_path):
    from smflow.operators.native import field_key, ingest_native_granule
    from infra.archive_stand_in import ArchiveStandIn

    settings = stack
    source = SHARED / READER_FILES[product]
    if not source.is_file():
        pytest.skip(f"{source} missing")
    damaged = tmp_path / source.name
    shutil.copyfile(source, damaged)
    with open(damaged, "r+b") as f:
        f.truncate(max(64, source.stat().st_size // 3))
    day = date(2030, 1, 1)  # a day no real pipeline uses
    ref = ArchiveStandIn(settings, s3=s3_client).put_native(product, day, damaged)
    result = ingest_native_granule(ref.to_dict(), DOMAIN, settings=settings)
    assert result["status"] == "quarantined", result
    assert source.name in result["reason"], result["reason"]  # names the file
    assert result["quarantine_keys"]
    sidecar = json.loads(_get(s3_client, settings.store_bucket, result["quarantine_keys"][0] + ".validation.json"))
    assert source.name in json.dumps(sidecar)
    s3_client.head_object(Bucket=settings.landing_bucket, Key=ref.key)  # the landed file is kept
    with pytest.raises(Exception):
        s3_client.head_object(Bucket=settings.store_bucket, Key=field_key(DOMAIN, product, day))
