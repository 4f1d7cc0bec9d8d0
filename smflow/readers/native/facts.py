"""Facts about the native-format products: names, scale factors, fills, valid ranges, flags, units.

One frozen :class:`NativeProduct` per product (and file family); the handlers read nothing about
a product from anywhere else. The values come from the product documentation cited per entry
and were checked against the real files described in ``../shared/data/real/MANIFEST.md``
(section numbers given as "MANIFEST §n").

The time-series cell products reuse the :class:`smflow.products.Product` records of
:mod:`smflow.products` (``smap``, ``era5_land``, ``gldas``, ``c3s``, ``ascat_h119``); the cell
products not used by the pipeline (ERA5, SMOS L3, SMOS-IC, ASCAT H113) get their records here, so
the product registry of the pipeline stays as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from smflow.products import ASCAT_H119, C3S, ERA5_LAND, GLDAS, SMAP, FlagRule, Product


@dataclass(frozen=True)
class VariableFacts:
    """How one file variable becomes one output variable.

    ``output = raw * scale + offset``; NaN where ``raw`` is one of ``fills`` or outside
    ``valid_raw`` (inclusive, in raw units).
    """

    source: str
    name: str
    units: str
    scale: float = 1.0
    offset: float = 0.0
    fills: tuple[float, ...] = ()
    valid_raw: tuple[float, float] | None = None
    standard_name: str | None = None
    long_name: str = ""

    def attrs(self, **extra: Any) -> dict[str, Any]:
        """CF attributes of the output variable."""
        attrs: dict[str, Any] = {"units": self.units, "long_name": self.long_name or self.name,
                                 "source_variable": self.source}
        if self.standard_name:
            attrs["standard_name"] = self.standard_name
        if self.valid_raw is not None:
            attrs["valid_min"] = self.valid_raw[0] * self.scale + self.offset
            attrs["valid_max"] = self.valid_raw[1] * self.scale + self.offset
        attrs.update(extra)
        return attrs


@dataclass(frozen=True)
class NativeProduct:
    """Facts about one native-format product.

    Attributes
    ----------
    name : str
        Product key (``open_native(path, product=name)``).
    title : str
        Product name and version as the provider calls it.
    handler : str
        Name of the :class:`~smflow.readers.native.base.FileHandler` class that reads it.
    patterns : tuple of str
        Regular expressions searched in the file's POSIX path (the file name, or the last
        folders and the name for the cell files whose name alone says nothing).
    file_format : str
        Container format in words.
    variables : tuple of VariableFacts
        Variables decoded (the first is the main variable).
    flag_rules : tuple of FlagRule
        Tests an observation must pass (all of them) to be True in ``quality_mask``.
    plausible : mapping of str to (float, float)
        Physically possible range of output variables; a value outside means a damaged file.
    options : mapping
        Product-specific constants (layer depths, frequencies, grid sizes, ...).
    timeseries_product : Product or None
        For time-series cell files: the :mod:`smflow.products` record decoding them.
    licence, attribution : str
        Licence in one line and the attribution the provider asks for.
    redistributable : bool
        May files of this product be copied into the repository or published (never for
        ISMN, EUMETSAT/H SAF, ESA CCI and MERIT-derived data).
    """

    name: str
    title: str
    handler: str
    patterns: tuple[str, ...]
    file_format: str
    variables: tuple[VariableFacts, ...] = ()
    flag_rules: tuple[FlagRule, ...] = ()
    plausible: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: MappingProxyType({}))
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    timeseries_product: Product | None = None
    licence: str = ""
    attribution: str = ""
    redistributable: bool = False

    def matches(self, path: str | Path) -> bool:
        """True if one of :attr:`patterns` is found in ``path`` (POSIX form)."""
        text = Path(path).as_posix()
        return any(re.search(p, text) for p in self.patterns)

    def var(self, name: str) -> VariableFacts:
        """The :class:`VariableFacts` whose output name is ``name``."""
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(f"{self.name} has no variable {name!r}; known: "
                       f"{[v.name for v in self.variables]}")


def _mp(d: Mapping) -> Mapping:
    return MappingProxyType(dict(d))


NASA_OPEN = "NASA EOSDIS data policy: open, no restriction on use or redistribution"
EUMETSAT = "EUMETSAT / H SAF data policy: free, attribution 'Copyright EUMETSAT'; internal use " \
    "here, do not redistribute raw files"
COPERNICUS = "Copernicus licence (free use and redistribution with attribution)"

SM_M3M3 = "volume_fraction_of_condensed_water_in_soil"
SM_PLAUSIBLE = (0.0, 1.0)          # m3 m-3: a volume fraction
DOS_PLAUSIBLE = (0.0, 100.0)       # percent of saturation
TB_PLAUSIBLE = (0.0, 400.0)        # K, microwave brightness temperature of the Earth
ELEV_PLAUSIBLE = (-11_100.0, 8_900.0)  # m, Challenger Deep .. Everest with margin

# -- SMAP (MANIFEST §4; SPL3SMP/SPL2SMP product specifications, O'Neill et al. 2023) -----------
#: retrieval_qual_flag bit 0 "retrieval recommended": 0 = yes (a SET bit means "not").
SMAP_RECOMMENDED = FlagRule("retrieval_qual_flag", "bits_clear", value=0b1,
                            meaning="bit 0 clear: retrieval has recommended quality")
_SMAP_VARS = (
    VariableFacts("soil_moisture", "soil_moisture", "m3 m-3", fills=(-9999.0,),
                  standard_name=SM_M3M3, long_name="SMAP radiometer (DCA) soil moisture, 0-5 cm"),
    VariableFacts("surface_temperature", "surface_temperature", "K", fills=(-9999.0,),
                  standard_name="surface_temperature", long_name="GEOS-5 surface temperature"),
    VariableFacts("vegetation_water_content", "vegetation_water_content", "kg m-2",
                  fills=(-9999.0,), long_name="vegetation water content"),
    VariableFacts("vegetation_opacity", "vegetation_opacity", "1", fills=(-9999.0,),
                  long_name="vegetation opacity"),
    VariableFacts("tb_h_corrected", "brightness_temperature_h", "K", fills=(-9999.0,),
                  standard_name="brightness_temperature",
                  long_name="L-band brightness temperature, H polarisation, corrected"),
    VariableFacts("tb_v_corrected", "brightness_temperature_v", "K", fills=(-9999.0,),
                  standard_name="brightness_temperature",
                  long_name="L-band brightness temperature, V polarisation, corrected"),
)
_SMAP_OPTIONS = {
    "valid_range": (0.02, 0.5),  # m3 m-3, valid_min/valid_max of soil_moisture
    "flag_fill": 65534,
    "time_epoch": "2000-01-01T12:00:00",  # tb_time_seconds: J2000
    "ease2_m36_shape": (406, 964),
}
SMAP_SPL3SMP = NativeProduct(
    name="smap_spl3smp",
    title="NASA SMAP L3 Radiometer Global Daily 36 km EASE-Grid Soil Moisture (SPL3SMP), AM+PM",
    handler="SmapHandler",
    patterns=(r"SMAP_L3_SM_P_\d{8}_R\d{5}_\d{3}\.h5$",),
    file_format="HDF5 (groups Soil_Moisture_Retrieval_Data_AM / _PM, 406 x 964 EASE-2 M36)",
    variables=_SMAP_VARS,
    flag_rules=(SMAP_RECOMMENDED,),
    plausible=_mp({"soil_moisture": SM_PLAUSIBLE, "brightness_temperature_h": TB_PLAUSIBLE,
                   "brightness_temperature_v": TB_PLAUSIBLE}),
    options=_mp({**_SMAP_OPTIONS, "groups": {"AM": ("Soil_Moisture_Retrieval_Data_AM", ""),
                                             "PM": ("Soil_Moisture_Retrieval_Data_PM", "_pm")}}),
    licence=NASA_OPEN,
    attribution=SMAP.attribution,
    redistributable=True,
)
SMAP_SPL2SMP = NativeProduct(
    name="smap_spl2smp",
    title="NASA SMAP L2 Radiometer Half-Orbit 36 km EASE-Grid Soil Moisture (SPL2SMP)",
    handler="SmapHandler",
    patterns=(r"SMAP_L2_SM_P_\d{5}_[AD]_\d{8}T\d{6}_R\d{5}_\d{3}\.h5$",),
    file_format="HDF5 (group Soil_Moisture_Retrieval_Data, 1-D swath cells)",
    variables=_SMAP_VARS,
    flag_rules=(SMAP_RECOMMENDED,),
    plausible=_mp({"soil_moisture": SM_PLAUSIBLE, "brightness_temperature_h": TB_PLAUSIBLE,
                   "brightness_temperature_v": TB_PLAUSIBLE}),
    options=_mp({**_SMAP_OPTIONS, "groups": {"": ("Soil_Moisture_Retrieval_Data", "")}}),
    licence=NASA_OPEN,
    attribution="O'Neill, P. E., et al. (2021). SMAP L2 Radiometer Half-Orbit 36 km EASE-Grid "
    "Soil Moisture, Version 8. NASA NSIDC DAAC. https://doi.org/10.5067/LPJ8F0TAK6E0",
    redistributable=True,
)

# -- SMOS L3 CATDS (MANIFEST §5; CATDS L3 SM product description) --------------------------------
SMOS_L3_CATDS = NativeProduct(
    name="smos_l3_catds",
    title="CATDS SMOS L3 soil moisture, daily, 25 km EASE-2 (MIR_CLF31A/D)",
    handler="SmosL3Handler",
    patterns=(r"SM_\w{4}_MIR_CLF3[1-3][AD]_\d{8}T\d{6}_\d{8}T\d{6}_\d{3}_\d{3}_\d\.DBL\.nc$",),
    file_format="netCDF (Soil_Moisture int16 x 1/32767, fill -32768)",
    variables=(
        # scale_factor and fill are read from the file's attributes; these are the documented
        # values, used when the attributes are missing and checked against them otherwise.
        VariableFacts("Soil_Moisture", "soil_moisture", "m3 m-3", scale=1.0 / 32767.0,
                      fills=(-32768,), valid_raw=(0, 32767), standard_name=SM_M3M3,
                      long_name="SMOS retrieved soil moisture"),
    ),
    plausible=_mp({"soil_moisture": SM_PLAUSIBLE}),
    options=_mp({"time_epoch": "2000-01-01T00:00:00", "time_fill": -2147483647,
                 "days": "Mean_Acq_Time_Days", "seconds": "Mean_Acq_Time_Seconds",
                 "flag_variables": ("Science_Flags", "Soil_Moisture_Dqx")}),
    licence="ESA SMOS / CATDS (CNES-IFREMER): free with attribution",
    attribution="CATDS (2016). CATDS-PDC L3SM Aggregated - 3-day, 10-day and monthly global map "
    "of soil moisture values from SMOS satellite. CATDS (CNES, IFREMER, LOCEAN, ACRI). "
    "https://doi.org/10.12770/d529ae0f-a3e4-4d2c-a0d3-94e5b1d2b3b4",
)

# -- ASCAT (MANIFEST §8, §9; EUMETSAT ASCAT L2 SSM product guide, H SAF PUM H101-H103/H16) -----
ASCAT_QUALITY = (
    FlagRule("processing_flag", "equals", value=0,
             meaning="processing flag 0: enough neighbours, sensitive, no noise or slope issue"),
    FlagRule("correction_flag", "bits_clear", value=0b11,
             meaning="soil moisture not clipped to 0 % or 100 %"),
)
#: Surface state thresholds (percent); a project choice: degree of saturation over frozen or
#: snow-covered soil is not soil moisture.
ASCAT_STATE_MAX = _mp({"frozen_soil_probability": 50, "snow_cover_probability": 50})
_ASCAT_NC_VARS = (
    # netCDF: unsigned ints with signed valid_max and no _FillValue (MANIFEST §8 gotcha); raw
    # 65535 is the fill, the valid raw range 0..10000 (0..100 %) is applied by hand.
    VariableFacts("soil_moisture", "degree_of_saturation", "percent", scale=0.01,
                  fills=(65535,), valid_raw=(0, 10000),
                  long_name="ASCAT surface soil moisture, degree of saturation"),
    VariableFacts("soil_moisture_error", "degree_of_saturation_error", "percent", scale=0.01,
                  fills=(65535,), valid_raw=(0, 10000), long_name="estimated error"),
    VariableFacts("mean_soil_moisture", "mean_degree_of_saturation", "percent", scale=0.01,
                  fills=(65535,), valid_raw=(0, 10000), long_name="mean surface soil moisture"),
    VariableFacts("proc_flag1", "processing_flag", "1", fills=(255,)),
    VariableFacts("corr_flags", "correction_flag", "1", fills=(255,)),
    VariableFacts("frozen_soil_probability", "frozen_soil_probability", "percent",
                  fills=(255,), valid_raw=(0, 100)),
    VariableFacts("snow_cover_probability", "snow_cover_probability", "percent",
                  fills=(255,), valid_raw=(0, 100)),
    VariableFacts("wetland_flag", "wetland_fraction", "percent", fills=(255,), valid_raw=(0, 100)),
    VariableFacts("topography_flag", "topographic_complexity", "percent", fills=(255,),
                  valid_raw=(0, 100)),
)
_ASCAT_BUFR_VARS = (
    VariableFacts("surfaceSoilMoisture", "degree_of_saturation", "percent", valid_raw=(0, 100),
                  long_name="ASCAT surface soil moisture, degree of saturation"),
    VariableFacts("estimatedErrorInSurfaceSoilMoisture", "degree_of_saturation_error", "percent",
                  valid_raw=(0, 100), long_name="estimated error"),
    VariableFacts("meanSurfaceSoilMoisture", "mean_degree_of_saturation", "percent",
                  valid_raw=(0, 100), long_name="mean surface soil moisture"),
    VariableFacts("soilMoistureProcessingFlag", "processing_flag", "1"),
    VariableFacts("soilMoistureCorrectionFlag", "correction_flag", "1"),
    VariableFacts("frozenLandSurfaceFraction", "frozen_soil_probability", "percent",
                  valid_raw=(0, 100)),
    VariableFacts("snowCover", "snow_cover_probability", "percent", valid_raw=(0, 100)),
    VariableFacts("inundationAndWetlandFraction", "wetland_fraction", "percent",
                  valid_raw=(0, 100)),
    VariableFacts("topographicComplexity", "topographic_complexity", "percent",
                  valid_raw=(0, 100)),
)
_PROC_FLAG_MEANINGS = ("not_enough_valid_parameter_neighbours", "low_soil_moisture_sensitivity",
                       "high_azimuthal_noise", "fore_aft_backscatter_difference_out_of_range",
                       "mid_fore_backscatter_slope_out_of_range")
_CORR_FLAG_MEANINGS = ("soil_moisture_set_to_0", "soil_moisture_set_to_100",
                       "wet_reference_corrected", "dry_reference_corrected",
                       "volume_scattering_in_sand_corrected")
_ASCAT_OPTIONS = {"proc_flag_meanings": _PROC_FLAG_MEANINGS,
                  "corr_flag_meanings": _CORR_FLAG_MEANINGS,
                  "state_max": ASCAT_STATE_MAX,
                  "satellite_ids": {3: "Metop-B", 4: "Metop-A", 5: "Metop-C"}}


def _ascat_bufr(name: str, title: str, patterns: tuple[str, ...], resolution_m: float
                ) -> NativeProduct:
    return NativeProduct(
        name=name, title=title, handler="AscatBufrHandler", patterns=patterns,
        file_format="BUFR edition 4 (eccodes), WMO bulletin header allowed",
        variables=_ASCAT_BUFR_VARS, flag_rules=ASCAT_QUALITY,
        plausible=_mp({"degree_of_saturation": DOS_PLAUSIBLE}),
        options=_mp({**_ASCAT_OPTIONS, "resolution_m": resolution_m}),
        licence=EUMETSAT, attribution="Copyright EUMETSAT (ASCAT soil moisture, " + title + ")",
    )


ASCAT_L2_NETCDF = NativeProduct(
    name="ascat_l2_ssm_nc",
    title="EUMETSAT Metop ASCAT Level 2 Surface Soil Moisture (12.5 / 25 km swath), netCDF",
    handler="AscatL2NetcdfHandler",
    patterns=(r"W_XX-EUMETSAT-Darmstadt,SURFACE\+SATELLITE,METOP[ABC]\+ASCAT_C_EUMP_\d{14}_\d+"
              r"_eps_o_(125|250)_ssm_l2\.nc$",),
    file_format="netCDF-4 (numRows x numCells swath)",
    variables=_ASCAT_NC_VARS,
    flag_rules=ASCAT_QUALITY,
    plausible=_mp({"degree_of_saturation": DOS_PLAUSIBLE}),
    options=_mp({**_ASCAT_OPTIONS, "latlon_scale": 1e-6, "latlon_fill": -2147483648,
                 "time_epoch": "2000-01-01T00:00:00"}),
    licence=EUMETSAT,
    attribution="Copyright EUMETSAT (ASCAT L2 SSM)",
)
ASCAT_L2_BUFR = _ascat_bufr(
    "ascat_l2_ssm_bufr",
    "EUMETSAT Metop ASCAT Level 2 Surface Soil Moisture 25 km, BUFR (full orbit or EUMETCast PDU)",
    (r"M0[123]-ASCA-ASCSMO\d\d-NA-[\d.]+-\d{14}\.\d+Z-\d{14}-\d+\.bfr$",
     r"W_XX-EUMETSAT-Darmstadt,SOUNDING\+SATELLITE,METOP[ABC]\+ASCAT_C_EUMC_\d{14}_\d+"
     r"_eps_o_(125|250)_ssm_l2\.bin$"),
    25_000.0,
)
HSAF_H101 = _ascat_bufr("hsaf_h101", "H SAF H101 Metop-A ASCAT NRT SSM 12.5 km",
                        (r"(^|/)h101_\d{8}_\d{6}_METOP[ABC]_\d+_EUM\.buf$",), 12_500.0)
HSAF_H102 = _ascat_bufr("hsaf_h102", "H SAF H102 Metop-A ASCAT NRT SSM 25 km",
                        (r"(^|/)h102_\d{8}_\d{6}_METOP[ABC]_\d+_EUM\.buf$",), 25_000.0)
HSAF_H103 = _ascat_bufr("hsaf_h103", "H SAF H103 Metop-B ASCAT NRT SSM 25 km",
                        (r"(^|/)h103_\d{8}_\d{6}_METOP[ABC]_\d+_EUM\.buf$",), 25_000.0)
HSAF_H16 = _ascat_bufr("hsaf_h16", "H SAF H16 Metop-B ASCAT NRT SSM 12.5 km",
                       (r"(^|/)h16_\d{8}_\d{6}_METOP[ABC]_\d+_EUM\.buf$",), 12_500.0)

# -- AMSR2 L3 brightness temperature (JAXA) -----------------------------------------------------
AMSR2_L3_TB = NativeProduct(
    name="amsr2_l3_tb",
    title="JAXA GCOM-W1 AMSR2 Level 3 daily/monthly brightness temperature (L3SGT), "
    "equirectangular",
    handler="Amsr2L3Handler",
    patterns=(r"GW1AM2_\d{8}_01[DM]_EQM[AD]_L3SGT(06|07|10|18|23|36|89)[HL]A\d{7}\.h5$",),
    file_format="HDF5 (datasets 'Brightness Temperature (H)' / '(V)', uint16)",
    variables=(
        # JAXA AMSR2 Higher Level Product Format Specification (L3 part): uint16 counts, the
        # scale is the dataset attribute "SCALE FACTOR" (0.01 K); 65534/65535 = missing/error.
        VariableFacts("Brightness Temperature (H)", "brightness_temperature", "K", scale=0.01,
                      fills=(65534, 65535), standard_name="brightness_temperature"),
        VariableFacts("Brightness Temperature (V)", "brightness_temperature", "K", scale=0.01,
                      fills=(65534, 65535), standard_name="brightness_temperature"),
    ),
    plausible=_mp({"brightness_temperature": TB_PLAUSIBLE}),
    options=_mp({
        "frequency_ghz": {"06": 6.925, "07": 7.3, "10": 10.65, "18": 18.7, "23": 23.8,
                          "36": 36.5, "89": 89.0},
        "grid": {"H": (1800, 3600, 0.1), "L": (720, 1440, 0.25)},  # rows, cols, degrees
        "pass": {"A": "ascending", "D": "descending"},
        "scale_attribute": "SCALE FACTOR",
    }),
    licence="JAXA G-Portal terms of use: free for research with attribution",
    attribution="Data provided by the Japan Aerospace Exploration Agency (JAXA), GCOM-W1 AMSR2",
)

# -- ECMWF GRIB / netCDF (MANIFEST §10, §20) -----------------------------------------------------
_ECMWF_VARS = (
    VariableFacts("swvl1", "soil_moisture", "m3 m-3", standard_name=SM_M3M3,
                  long_name="volumetric soil water, layer 1 (0-7 cm)"),
    VariableFacts("stl1", "soil_temperature", "K", standard_name="soil_temperature",
                  long_name="soil temperature, layer 1 (0-7 cm)"),
    # tp is accumulated in metres of water since the forecast start: x 1000 -> kg m-2.
    VariableFacts("tp", "precipitation_amount", "kg m-2", scale=1000.0,
                  standard_name="precipitation_amount",
                  long_name="total precipitation accumulated since forecast start"),
    VariableFacts("t2m", "air_temperature", "K", standard_name="air_temperature",
                  long_name="2 m temperature"),
    VariableFacts("slt", "soil_type", "1", long_name="soil type (0 = water)"),
    VariableFacts("lsm", "land_area_fraction", "1", standard_name="land_area_fraction"),
)
_ECMWF_LAYERS = {1: (0.0, 0.07), 2: (0.07, 0.28), 3: (0.28, 1.0), 4: (1.0, 2.89)}  # m
ECMWF_GRIB = NativeProduct(
    name="ecmwf_grib",
    title="ECMWF ERA5 / ERA5-Land / IFS fields in GRIB (swvl1..4, stl1..4, tp, 2t, slt, lsm)",
    handler="EcmwfGribHandler",
    patterns=(r"(?i)(era5|ecmwf|ifs)[^/]*\.(grib|grb|grib1|grib2)$",
              r"ecmwf_grib/[^/]+\.(grib|grb)$",
              r"(soil-surface-level-mix|tp_on_different_grid_resolutions|"
              r"era5-single-level-scalar-time)\.grib$"),
    file_format="GRIB edition 1/2 (cfgrib + eccodes)",
    variables=_ECMWF_VARS,
    plausible=_mp({"soil_moisture": SM_PLAUSIBLE, "soil_temperature": (150.0, 360.0),
                   "air_temperature": (150.0, 360.0), "precipitation_amount": (0.0, 2000.0)}),
    options=_mp({"layers_m": _ECMWF_LAYERS, "sea_soil_type": 0}),
    licence=COPERNICUS,
    attribution="Contains modified Copernicus Climate Change Service information 2026 "
    "(ERA5 / ERA5-Land, Hersbach et al. 2020; Munoz Sabater 2019); ECMWF IFS",
    redistributable=True,
)
ERA5_NETCDF = NativeProduct(
    name="era5_netcdf",
    title="ECMWF ERA5 / ERA5-Land single levels from the Climate Data Store, netCDF",
    handler="Era5NetcdfHandler",
    patterns=(r"(?i)era5(-|_)?(land)?[^/]*\.nc$",),
    file_format="netCDF (CDS: int16 packed with scale_factor/add_offset, or float32 'valid_time')",
    variables=_ECMWF_VARS,
    plausible=ECMWF_GRIB.plausible,
    options=ECMWF_GRIB.options,
    licence=COPERNICUS,
    attribution=ECMWF_GRIB.attribution,
    redistributable=True,
)
HSAF_H14 = NativeProduct(
    name="hsaf_h14",
    title="H SAF H14 (SM-DAS-2) root-zone soil wetness index, ECMWF GRIB1, reduced Gaussian",
    handler="EcmwfGribHandler",
    patterns=(r"(?i)(^|/)h14_\d{10}\.grib$",),
    file_format="GRIB edition 1, reduced Gaussian grid",
    variables=tuple(
        VariableFacts(f"swi{k}", "soil_wetness_index", "1",
                      long_name=f"soil wetness index in layer {k}") for k in (1, 2, 3, 4)),
    plausible=_mp({"soil_wetness_index": (0.0, 1.0)}),
    options=_mp({"layers_m": _ECMWF_LAYERS}),
    licence=EUMETSAT,
    attribution="Copyright EUMETSAT (H SAF H14 SM-DAS-2, produced by ECMWF)",
)

# -- GLDAS (MANIFEST §6; GLDAS-2.1 README) -------------------------------------------------------
GLDAS_NOAH21 = NativeProduct(
    name="gldas_noah21",
    title=GLDAS.title,
    handler="GldasHandler",
    patterns=(r"GLDAS_NOAH025_3H(_EP)?\.A\d{8}\.\d{4}\.02[01]\.nc4$",),
    file_format="netCDF-4 (time, lat, lon), kg m-2 per soil layer",
    variables=(
        # kg m-2 of water in a layer = mm of water; / layer thickness in mm -> m3 m-3.
        VariableFacts("SoilMoi0_10cm_inst", "soil_moisture", "m3 m-3", scale=1 / 100.0,
                      fills=(-9999.0,), standard_name=SM_M3M3,
                      long_name="GLDAS Noah volumetric soil moisture, 0-10 cm"),
        VariableFacts("SoilMoi10_40cm_inst", "soil_moisture_10_40cm", "m3 m-3", scale=1 / 300.0,
                      fills=(-9999.0,), standard_name=SM_M3M3, long_name="10-40 cm"),
        VariableFacts("SoilMoi40_100cm_inst", "soil_moisture_40_100cm", "m3 m-3",
                      scale=1 / 600.0, fills=(-9999.0,), standard_name=SM_M3M3,
                      long_name="40-100 cm"),
        VariableFacts("SoilMoi100_200cm_inst", "soil_moisture_100_200cm", "m3 m-3",
                      scale=1 / 1000.0, fills=(-9999.0,), standard_name=SM_M3M3,
                      long_name="100-200 cm"),
        VariableFacts("SoilTMP0_10cm_inst", "soil_temperature", "K", fills=(-9999.0,),
                      standard_name="soil_temperature", long_name="soil temperature, 0-10 cm"),
    ),
    plausible=_mp({"soil_moisture": SM_PLAUSIBLE, "soil_moisture_10_40cm": SM_PLAUSIBLE,
                   "soil_moisture_40_100cm": SM_PLAUSIBLE,
                   "soil_moisture_100_200cm": SM_PLAUSIBLE, "soil_temperature": (150.0, 360.0)}),
    licence=NASA_OPEN,
    attribution=GLDAS.attribution,
    redistributable=True,
)

# -- ESA CCI SM / C3S SM daily images (MANIFEST §7) -------------------------------------------
CCI_FLAG_MEANINGS = ("snow_coverage_or_temperature_below_zero", "dense_vegetation",
                     "others_no_convergence_in_the_model", "soil_moisture_value_exceeds_physical_"
                     "boundary", "weight_of_measurement_below_threshold",
                     "all_datasets_deemed_unreliable", "barren_ground_advisory_flag",
                     "not_used", "no_retrieval_possible")
ESA_CCI_SM = NativeProduct(
    name="esa_cci_sm",
    title="ESA CCI / C3S Soil Moisture L3S daily image (ACTIVE, PASSIVE or COMBINED)",
    handler="CciHandler",
    patterns=(r"ESACCI-SOILMOISTURE-L3S-SSM[VS]-(ACTIVE|PASSIVE|COMBINED)-\d{14}-fv\d+\.\d+\.nc$",
              r"C3S-SOILMOISTURE-L3S-SSM[VS]-(ACTIVE|PASSIVE|COMBINED)-DAILY-\d{14}-[A-Z]+-"
              r"v\d+(\.\d+)*\.nc$"),
    file_format="netCDF-4 classic (time=1, lat, lon)",
    variables=(
        VariableFacts("sm", "soil_moisture", "m3 m-3", fills=(-9999.0,), standard_name=SM_M3M3,
                      long_name="volumetric soil moisture"),
        VariableFacts("sm_uncertainty", "soil_moisture_uncertainty", "m3 m-3",
                      fills=(-9999.0,)),
    ),
    # Same rule as the C3S cell product: the flag is a bit sum; a value is usable where it is 0.
    flag_rules=C3S.flag_rules,
    plausible=_mp({"soil_moisture": SM_PLAUSIBLE, "degree_of_saturation": DOS_PLAUSIBLE}),
    options=_mp({"flag_fill": 127, "flag_masks": (1, 2, 4, 8, 16, 32, 64, 128, 256),
                 "flag_meanings": CCI_FLAG_MEANINGS,
                 "percent_units": ("percent", "%", "percent of saturation")}),
    licence="ESA CCI Open Data Portal: any use with acknowledgement and citation; internal "
    "tests here, do not redistribute the raw files",
    attribution="Dorigo et al. (2017) RSE 203; Gruber et al. (2019) ESSD 11; ESA CCI Soil "
    "Moisture v05.2",
)

# -- Copernicus Global Land 1 km (MANIFEST §11) -----------------------------------------------
_CGLS_FLAGS = {241: "ExceedingMin", 242: "ExceedingMax", 251: "WaterMask",
               252: "SensitivityMask", 253: "SlopeMask", 254: "LowQFLAG"}
CGLS_SSM_1KM = NativeProduct(
    name="cgls_ssm_1km",
    title="Copernicus Global Land Service Surface Soil Moisture 1 km (Sentinel-1 C-SAR)",
    handler="CglsHandler",
    patterns=(r"c_gls_SSM1km_\d{12}_\w+_S1CSAR_V\d+\.\d+\.\d+\.nc$",),
    file_format="netCDF-4 (time=1, lat, lon), uint8 x 0.5 %",
    variables=(
        VariableFacts("ssm", "degree_of_saturation", "percent", scale=0.5, fills=(255,),
                      valid_raw=(0, 200), long_name="surface soil moisture, degree of saturation"),
        VariableFacts("ssm_noise", "degree_of_saturation_noise", "percent", scale=0.5,
                      fills=(255,), valid_raw=(0, 200)),
    ),
    plausible=_mp({"degree_of_saturation": DOS_PLAUSIBLE}),
    options=_mp({"flag_codes": _CGLS_FLAGS}),
    licence="Copernicus Global Land Service: free and open, attribution",
    attribution="Copernicus Service information 2019 (CGLS SSM 1 km)",
    redistributable=True,
)
CGLS_SWI_1KM = NativeProduct(
    name="cgls_swi_1km",
    title="Copernicus Global Land Service Soil Water Index 1 km (ASCAT + Sentinel-1 SCATSAR)",
    handler="CglsHandler",
    patterns=(r"c_gls_SWI1km_\d{12}_\w+_SCATSAR_V\d+\.\d+\.\d+\.nc$",),
    file_format="netCDF-4 (time=1, lat, lon), uint8 x 0.5 %",
    variables=tuple(
        VariableFacts(f"SWI_{t}", "soil_water_index", "percent", scale=0.5, fills=(255,),
                      valid_raw=(0, 200), long_name=f"soil water index, T = {int(t)} days")
        for t in ("002", "005", "010", "015", "020", "040", "060", "100")),
    plausible=_mp({"soil_water_index": DOS_PLAUSIBLE}),
    options=_mp({"flag_codes": _CGLS_FLAGS, "qflag": "QFLAG_{t}", "ssf": "SSF",
                 "ssf_ok": (0, 1)}),
    licence=CGLS_SSM_1KM.licence,
    attribution="Copernicus Service information 2019 (CGLS SWI 1 km)",
    redistributable=True,
)

# -- MODIS (MANIFEST §12, §16) ------------------------------------------------------------------
MODIS_SINUSOIDAL = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"
MOD11A1 = NativeProduct(
    name="modis_mod11a1",
    title="MODIS Terra/Aqua Land Surface Temperature daily L3 1 km (MOD11A1/MYD11A1) C6",
    handler="ModisLstHandler",
    patterns=(r"M[OY]D11A1(\.A\d{7}\.h\d\dv\d\d\.\d{3}\.\d{13})?\.hdf$",),
    file_format="HDF4-EOS grid (sinusoidal)",
    variables=(
        VariableFacts("LST_Day_1km", "land_surface_temperature_day", "K", scale=0.02,
                      fills=(0,), valid_raw=(7500, 65535), standard_name="surface_temperature",
                      long_name="daytime land surface temperature"),
        VariableFacts("LST_Night_1km", "land_surface_temperature_night", "K", scale=0.02,
                      fills=(0,), valid_raw=(7500, 65535), standard_name="surface_temperature",
                      long_name="night-time land surface temperature"),
        VariableFacts("Day_view_time", "view_time_day", "h", scale=0.1, fills=(255,),
                      valid_raw=(0, 240), long_name="local solar time of daytime observation"),
        VariableFacts("Night_view_time", "view_time_night", "h", scale=0.1, fills=(255,),
                      valid_raw=(0, 240), long_name="local solar time of night observation"),
    ),
    # MOD11 user guide, QC bits 0-1: 00 good, 01 other quality, 10 cloud, 11 not produced;
    # bits 6-7 LST error: 00 <= 1 K, 01 <= 2 K. Rule: produced and error <= 2 K.
    flag_rules=(FlagRule("QC", "in_set", values=tuple(
        q for q in range(256) if (q & 0b11) in (0, 1) and ((q >> 6) & 0b11) in (0, 1)),
        meaning="QC bits 0-1 in {good, other quality} and bits 6-7 LST error <= 2 K"),),
    plausible=_mp({"land_surface_temperature_day": (150.0, 400.0),
                   "land_surface_temperature_night": (150.0, 400.0)}),
    options=_mp({"qc": {"day": "QC_Day", "night": "QC_Night"}, "crs": MODIS_SINUSOIDAL}),
    licence=NASA_OPEN,
    attribution="Wan, Z., Hook, S., Hulley, G. (2015). MOD11A1 MODIS/Terra Land Surface "
    "Temperature/Emissivity Daily L3 Global 1km SIN Grid V006. NASA EOSDIS LP DAAC. "
    "https://doi.org/10.5067/MODIS/MOD11A1.006",
    redistributable=True,
)
MOD13_NDVI_TIF = NativeProduct(
    name="modis_mod13_ndvi_tif",
    title="MODIS MOD13 16-day NDVI extracted to GeoTIFF (MODIStsp), sinusoidal",
    handler="NdviGeoTiffHandler",
    patterns=(r"M[OY]D13[AQ][1234]_NDVI_\d{4}_\d{3}\.tif$",),
    file_format="GeoTIFF (int16 x 1e-4, or float32 already scaled; nodata 32767)",
    variables=(VariableFacts("band1", "ndvi", "1", fills=(32767,),
                             long_name="normalized difference vegetation index"),),
    plausible=_mp({"ndvi": (-1.0, 1.0)}),
    options=_mp({"int_scale": 1e-4, "valid_raw_int": (-2000, 10000), "valid_float": (-0.2, 1.0),
                 "dtypes": "if", "projection": "Sinusoidal"}),
    licence=NASA_OPEN,
    attribution="Didan, K. (2015). MOD13A1 MODIS/Terra Vegetation Indices 16-Day L3 Global 500m "
    "SIN Grid V006. NASA EOSDIS LP DAAC. https://doi.org/10.5067/MODIS/MOD13A1.006",
    redistributable=True,
)
MOD09A1 = NativeProduct(
    name="modis_mod09a1",
    title="MODIS Terra Surface Reflectance 8-day L3 500 m (MOD09A1) -> NDVI, NSDSI",
    handler="ModisReflectanceHandler",
    patterns=(r"M[OY]D09A1\.A\d{7}\.h\d\dv\d\d\.\d{3}\.\d{13}\.hdf$",),
    file_format="HDF4-EOS grid (sinusoidal)",
    variables=tuple(
        VariableFacts(f"sur_refl_b0{b}", f"reflectance_b{b}", "1", scale=1e-4, fills=(-28672,),
                      valid_raw=(-100, 16000), standard_name="surface_bidirectional_reflectance",
                      long_name=f"surface reflectance, MODIS band {b}") for b in range(1, 8)),
    # MOD09 user guide: sur_refl_qc_500m bits 0-1 MODLAND QA (00 ideal quality);
    # sur_refl_state_500m bits 0-1 cloud state (00 clear), bit 2 cloud shadow.
    flag_rules=(
        FlagRule("sur_refl_qc_500m", "bits_clear", value=0b11,
                 meaning="MODLAND QA bits 0-1 = 00: corrected product at ideal quality"),
        FlagRule("sur_refl_state_500m", "bits_clear", value=0b111,
                 meaning="state bits 0-1 = 00 clear, bit 2 = 0 no cloud shadow"),
    ),
    plausible=_mp({"ndvi": (-1.0, 1.0)}),
    options=_mp({"crs": MODIS_SINUSOIDAL, "ndvi_bands": (1, 2), "nsdsi_bands": (6, 7)}),
    licence=NASA_OPEN,
    attribution="Vermote, E. (2015). MOD09A1 MODIS/Terra Surface Reflectance 8-Day L3 Global "
    "500m SIN Grid V006. NASA EOSDIS LP DAAC. https://doi.org/10.5067/MODIS/MOD09A1.006",
    redistributable=True,
)

# -- Terrain (MANIFEST §13, §14, §15) ------------------------------------------------------------
SRTM_HGT = NativeProduct(
    name="srtm_hgt",
    title="NASA/USGS SRTM 1 or 3 arc-second tile (.hgt, optionally in the LP DAAC zip)",
    handler="SrtmHandler",
    patterns=(r"(^|/)[NS]\d\d[EW]\d{3}(\.SRTMGL[13])?\.hgt(\.zip)?$",),
    file_format="raw big-endian int16, square (1201 or 3601), void -32768",
    variables=(VariableFacts("hgt", "elevation", "m", fills=(-32768,), standard_name="height_above"
                             "_mean_sea_level", long_name="surface elevation"),),
    plausible=_mp({"elevation": ELEV_PLAUSIBLE}),
    options=_mp({"sizes": {1201: 3.0, 3601: 1.0}}),  # samples per side -> arc-seconds
    licence="NASA/USGS SRTM: public domain",
    attribution="NASA JPL (2013). NASA Shuttle Radar Topography Mission Global 3 arc second. "
    "https://doi.org/10.5067/MEaSUREs/SRTM/SRTMGL3.003",
    redistributable=True,
)
GTOPO30_TIF = NativeProduct(
    name="gtopo30_tif",
    title="USGS GTOPO30 30 arc-second DEM, GeoTIFF (no CRS tag: WGS84 lat/lon implied)",
    handler="GeoTiffDemHandler",
    patterns=(r"(?i)(gtopo|gt30)[^/]*\.tif$",),
    file_format="GeoTIFF int16 metres",
    variables=(VariableFacts("band1", "elevation", "m", fills=(-9999,),
                             standard_name="height_above_mean_sea_level"),),
    plausible=_mp({"elevation": ELEV_PLAUSIBLE}),
    options=_mp({"default_crs": "EPSG:4326", "dtypes": "i", "projection": "geographic"}),
    licence="USGS GTOPO30: public domain",
    attribution="U.S. Geological Survey EROS Center, GTOPO30 (1996)",
    redistributable=True,
)
ETOPO20_TEXT = NativeProduct(
    name="etopo20_text",
    title="ETOPO 20 arc-minute global relief (matplotlib basemap text files, from NOAA ETOPO5)",
    handler="EtopoTextHandler",
    patterns=(r"(^|/)etopo20(data|lats|lons)\.gz$",),
    file_format="gzip text: etopo20data (lat x lon), etopo20lats, etopo20lons",
    variables=(VariableFacts("etopo20data", "elevation", "m",
                             standard_name="height_above_mean_sea_level"),),
    plausible=_mp({"elevation": ELEV_PLAUSIBLE}),
    options=_mp({"siblings": ("etopo20data.gz", "etopo20lats.gz", "etopo20lons.gz")}),
    licence="NOAA ETOPO5 derived: public domain",
    attribution="NOAA NGDC ETOPO5 (1988), via matplotlib basemap",
    redistributable=True,
)
GMT_DEM_GRID = NativeProduct(
    name="gmt_dem_grid",
    title="GMT netCDF DEM grid (ETOPO5/ETOPO2 geographic or projected 30 m)",
    handler="GmtGridHandler",
    patterns=(r"(^|/)HI_topo_04\.nc$", r"(^|/)FR\+IT\.nc$", r"(^|/)Kilauea\.utm\.nc$",
              r"(?i)(^|/)etopo\d+m?[^/]*\.(nc|grd)$"),
    file_format="netCDF z(lat, lon) or z(y, x) with grid_mapping",
    variables=(VariableFacts("z", "elevation", "m", fills=(-32768,),
                             standard_name="height_above_mean_sea_level"),),
    plausible=_mp({"elevation": ELEV_PLAUSIBLE}),
    options=_mp({"unit_factors": {"km": 1000.0, "m": 1.0, "meters": 1.0, "metres": 1.0}}),
    licence="NOAA ETOPO (public domain); GMT cache files (LGPL-3 repository)",
    attribution="NOAA NGDC ETOPO5/ETOPO2; Wessel et al. (2019) GMT 6",
    redistributable=True,
)

# -- Land masks, land cover, model static maps (MANIFEST §21, §22, §23) -----------------------
ECMWF_LANDMASK = NativeProduct(
    name="ecmwf_landmask",
    title="ERA5 (0.25 deg) / ERA5-Land (0.1 deg) land definition (TU Wien ecmwf_models)",
    handler="LandMaskHandler",
    patterns=(r"(^|/)landmask_0\.(1|25)_0\.(1|25)\.nc$",),
    file_format="netCDF-4 land(latitude, longitude) 0/1, NaN south of -60",
    variables=(VariableFacts("land", "land_mask", "1", standard_name="land_binary_mask"),),
    licence=COPERNICUS,
    attribution="Contains modified Copernicus Climate Change Service information; TU Wien "
    "ecmwf_models",
    redistributable=True,
)
GLOBE_LAND_MASK = NativeProduct(
    name="globe_land_mask",
    title="NOAA GLOBE 30 arc-second land/water mask (global-land-mask 1.0.0)",
    handler="LandMaskHandler",
    patterns=(r"(^|/)globe_combined_mask_compressed\.npz$",),
    file_format="numpy .npz: mask (True = water), lat, lon",
    variables=(VariableFacts("mask", "land_mask", "1", standard_name="land_binary_mask"),),
    licence="NOAA GLOBE: public domain; global-land-mask: MIT",
    attribution="GLOBE Task Team (1999), NOAA NGDC; T. Karin, global-land-mask",
    redistributable=True,
)
GLCNMO = NativeProduct(
    name="glcnmo",
    title="Global Land Cover by National Mapping Organizations (GLCNMO, 15 arc-seconds)",
    handler="LandCoverHandler",
    patterns=(r"(?i)(^|/)glcnmo[^/]*\.tif$",),
    file_format="GeoTIFF uint8 class codes, nodata 241",
    variables=(VariableFacts("band1", "land_cover", "1", fills=(241, 255),
                             standard_name="area_type", long_name="GLCNMO land cover class"),),
    options=_mp({"dtypes": "u", "projection": "geographic", "classes": {
        1: "broadleaf_evergreen_forest", 2: "broadleaf_deciduous_forest",
        3: "needleleaf_evergreen_forest", 4: "needleleaf_deciduous_forest", 5: "mixed_forest",
        6: "tree_open", 7: "shrub", 8: "herbaceous", 9: "herbaceous_with_sparse_tree_shrub",
        10: "sparse_vegetation", 11: "cropland", 12: "paddy_field",
        13: "cropland_other_vegetation_mosaic", 14: "mangrove", 15: "wetland",
        16: "bare_area_consolidated", 17: "bare_area_unconsolidated", 18: "urban",
        19: "snow_ice", 20: "water_bodies"}}),
    licence="GLCNMO (ISCGM / GSI Japan): free use with source attribution",
    attribution="Global Map - Global Land Cover (GLCNMO), Geospatial Information Authority of "
    "Japan, Chiba University and collaborating organizations",
)
WFLOW_STATICMAPS = NativeProduct(
    name="wflow_staticmaps",
    title="Deltares wflow_sbm static maps built by HydroMT (LAI, land use, soil, DEM)",
    handler="StaticMapsHandler",
    patterns=(r"(^|/)staticmaps\.nc$",),
    file_format="netCDF-4 (latitude, longitude[, time=12, layer])",
    variables=(
        VariableFacts("land_elevation", "elevation", "m", fills=(-9999.0,),
                      standard_name="height_above_mean_sea_level"),
        VariableFacts("land_slope", "slope", "m m-1", fills=(-9999.0,), long_name="terrain "
                      "slope (rise over run)"),
        VariableFacts("vegetation_leaf_area_index", "leaf_area_index", "1",
                      standard_name="leaf_area_index", long_name="monthly LAI climatology"),
        VariableFacts("meta_landuse", "land_cover", "1", fills=(230,),
                      long_name="GlobCover 2009 land cover class"),
        VariableFacts("soil_theta_s", "soil_porosity", "m3 m-3", fills=(-9999.0,),
                      long_name="saturated water content (porosity)"),
        VariableFacts("meta_soil_texture", "soil_texture", "1", long_name="USDA texture class"),
    ),
    plausible=_mp({"elevation": ELEV_PLAUSIBLE, "soil_porosity": (0.0, 1.0),
                   "leaf_area_index": (0.0, 15.0)}),
    licence="Derived from MERIT Hydro (CC BY-NC 4.0 / ODbL), GlobCover 2009, MODIS, SoilGrids: "
    "internal tests only, never in the repository or a published artefact",
    attribution="Deltares HydroMT/wflow; Yamazaki et al. (2019) MERIT Hydro; ESA GlobCover 2009; "
    "MODIS MCD15A3H; Hengl et al. (2017) SoilGrids",
)

# -- Precipitation grids (MANIFEST §17, §18, §19) -----------------------------------------------
CHIRPS_TIF = NativeProduct(
    name="chirps_daily",
    title="CHIRPS v2.0 daily precipitation, 0.05 deg GeoTIFF",
    handler="PrecipitationGridHandler",
    patterns=(r"(^|/)chirps-v2\.0\.\d{4}\.\d\d\.\d\d\.tif$",),
    file_format="GeoTIFF float32 mm/day (nodata -9999 when tagged)",
    variables=(VariableFacts("band1", "precipitation_amount", "kg m-2", fills=(-9999.0,),
                             standard_name="precipitation_amount",
                             long_name="daily precipitation"),),
    plausible=_mp({"precipitation_amount": (0.0, 2000.0)}),
    options=_mp({"dtypes": "f", "projection": "geographic"}),
    licence="CHIRPS: public domain (CC0-style waiver)",
    attribution="Funk et al. (2015) CHIRPS, https://doi.org/10.1038/sdata.2015.66",
    redistributable=True,
)
RADOLAN_RW = NativeProduct(
    name="radolan_rw",
    title="DWD RADOLAN RW hourly radar-gauge precipitation, ESRI ASCII grids (daily tarball)",
    handler="RadolanHandler",
    patterns=(r"(^|/)RW-\d{8}\.tar(\.gz)?$", r"(^|/)RW_\d{8}-\d{4}\.asc$"),
    file_format="tar.gz of ESRI ASCII grids (0.1 mm, nodata -1), polar stereographic 900 x 900",
    variables=(VariableFacts("asc", "precipitation_amount", "kg m-2", scale=0.1, fills=(-1,),
                             standard_name="precipitation_amount",
                             long_name="hourly precipitation ending at HH:50 UTC"),),
    plausible=_mp({"precipitation_amount": (0.0, 500.0)}),
    options=_mp({"crs": "+proj=stere +lat_0=90 +lat_ts=60 +lon_0=10 +a=6370040 +b=6370040 "
                        "+units=m +no_defs"}),
    licence="DWD Open Data (GeoNutzV / CC BY 4.0)",
    attribution="Datenbasis: Deutscher Wetterdienst, RADOLAN RW",
    redistributable=True,
)
NWS_QPE = NativeProduct(
    name="nws_qpe_conus",
    title="US NWS RFC 24-hour multisensor precipitation analysis (CONUS), HRAP grid",
    handler="NwsQpeHandler",
    patterns=(r"(^|/)nws_precip_(conus_)?\d{8}\.nc$",),
    file_format="netCDF-3 amountofprecip(hrapy, hrapx) int16, 1/100 mm, -1 missing",
    variables=(VariableFacts("amountofprecip", "precipitation_amount", "kg m-2", scale=0.01,
                             fills=(-1,), valid_raw=(0, 32767),
                             standard_name="precipitation_amount",
                             long_name="24-hour precipitation ending at 12 UTC"),),
    plausible=_mp({"precipitation_amount": (0.0, 2000.0)}),
    options=_mp({"hrap_mesh_m": 4762.5, "hrap_pole": (401.0, 1601.0), "earth_radius": 6371200.0,
                 "true_lat": 60.0}),
    licence="US Government work, public domain",
    attribution="NOAA National Weather Service River Forecast Centers",
    redistributable=True,
)

# -- In-situ and reference text files (MANIFEST §1, §2) ---------------------------------------
ISMN_STM = NativeProduct(
    name="ismn_stm",
    title="ISMN station observations, CEOP-formatted .stm (variables in separate files)",
    handler="IsmnHandler",
    patterns=(r"_(sm|p|ts|ta|su|sweq|tsf)_-?\d+\.\d+_-?\d+\.\d+_.+_\d{8}_\d{8}\.stm$",),
    file_format="whitespace text, 15 fields per line",
    variables=(
        VariableFacts("sm", "soil_moisture", "m3 m-3", standard_name=SM_M3M3),
        VariableFacts("p", "precipitation_amount", "kg m-2",
                      standard_name="precipitation_amount", long_name="hourly precipitation"),
    ),
    flag_rules=(FlagRule("ismn_flag", "equals", value=0, meaning="ISMN flag G (good)"),),
    plausible=_mp({"soil_moisture": SM_PLAUSIBLE, "precipitation_amount": (0.0, 500.0)}),
    licence="ISMN terms: scientific use only, no onward distribution of the original files",
    attribution="Dorigo et al. (2011, 2021) International Soil Moisture Network; USDA-NRCS SCAN; "
    "COSMOS",
)
ISMN_STATIC = NativeProduct(
    name="ismn_static_variables",
    title="ISMN station static variables (HWSD soil, land cover, climate class)",
    handler="IsmnHandler",
    patterns=(r"_static_variables\.csv$",),
    file_format="';'-separated text with header",
    licence=ISMN_STM.licence,
    attribution=ISMN_STM.attribution,
)
ISMN_FLAGS = NativeProduct(
    name="ismn_flag_table",
    title="ISMN quality flag definitions",
    handler="IsmnHandler",
    patterns=(r"(^|/)ISMN_qualityflags_description\.txt$",),
    file_format="text preamble + ';'-separated table",
    licence=ISMN_STM.licence,
    attribution="Dorigo et al. (2013) Vadose Zone J. 12(3), doi:10.2136/vzj2012.0097",
)
ISMN_METADATA = NativeProduct(
    name="ismn_metadata",
    title="ISMN download metadata (ISO 19115 XML: extent)",
    handler="IsmnHandler",
    patterns=(r"ISMN[^/]*/Metadata\.xml$",),
    file_format="ISO 19115 XML",
    licence=ISMN_STM.licence,
    attribution=ISMN_STM.attribution,
)
SM2RAIN_SERIES = NativeProduct(
    name="sm2rain_insitu",
    title="SM2RAIN reference station series (Brocca et al. 2013): relative SM + rain, hourly",
    handler="Sm2rainTextHandler",
    patterns=(r"(^|/)[A-Z0-9]+_1hour_\d{4}\.txt$",),
    file_format="whitespace text: MATLAB datenum, relative soil moisture (0-1), rain mm/h",
    variables=(
        VariableFacts("col2", "degree_of_saturation", "percent", scale=100.0,
                      long_name="relative soil moisture (degree of saturation)"),
        VariableFacts("col3", "precipitation_amount", "kg m-2",
                      standard_name="precipitation_amount", long_name="hourly rain (gauge)"),
    ),
    plausible=_mp({"degree_of_saturation": DOS_PLAUSIBLE, "precipitation_amount": (0.0, 500.0)}),
    options=_mp({"datenum_unix_epoch": 719529.0}),
    licence="MIT (IRPIhydrology/sm2rain)",
    attribution="Brocca, L. et al. (2013) GRL 40, 853-858, doi:10.1002/grl.50173",
    redistributable=True,
)
SM2RAIN_PARAMETERS = NativeProduct(
    name="sm2rain_parameters",
    title="SM2RAIN calibrated parameters Z [mm], a [mm/h], b [-] (Brocca et al. 2013)",
    handler="Sm2rainTextHandler",
    patterns=(r"(^|/)PAR_[A-Z0-9]+_1hour_\d{4}\.dat$",),
    file_format="text: three numbers, one per line",
    licence=SM2RAIN_SERIES.licence,
    attribution=SM2RAIN_SERIES.attribution,
    redistributable=True,
)

# -- Time-series cell files (MANIFEST §3), decoded by smflow.readers.timeseries ---------------
#: Cell products of the hawaii_timeseries folders that the pipeline registry does not carry.
ERA5_CELLS = Product(
    name="era5", title="ECMWF ERA5 (0.25 deg), swvl1 sampled daily at 06:00 UTC (QA4SM)",
    folder="ERA5_20190613", cells=("0165", "0166"), layout="orthogonal", variable="swvl1",
    output_name="soil_moisture", source_units="m**3 m**-3", units="m3 m-3",
    conversion_factor=1.0, valid_range=(0.0, 1.0), fill_value=None, flag_rules=(),
    auxiliary=MappingProxyType({"stl1": "soil_temperature"}), nominal_time="06:00 UTC",
    native_resolution_m=27_830.0, licence=COPERNICUS,
    attribution="Contains modified Copernicus Climate Change Service information 2026 (ERA5)",
    redistributable=True, long_name="ERA5 volumetric soil water, layer 1 (0-7 cm)")
SMOS_L3_CELLS = Product(
    name="smos_l3", title="CATDS SMOS L3 SM v339 ascending, EASE-2 25 km (QA4SM cells)",
    folder="SMOS_L3_v339_ASC", cells=("0165",), layout="orthogonal", variable="Soil_Moisture",
    output_name="soil_moisture", source_units="m3 m-3", units="m3 m-3", conversion_factor=1.0,
    valid_range=(0.0, 1.0), fill_value=None, flag_rules=(),
    nominal_time="06:00 local solar time (ascending)", native_resolution_m=25_000.0,
    licence=SMOS_L3_CATDS.licence, attribution=SMOS_L3_CATDS.attribution,
    long_name="SMOS L3 volumetric soil moisture")
SMOS_IC_CELLS = Product(
    name="smos_ic", title="SMOS-IC v105 (INRAE/CESBIO) ascending, EASE-2 25 km (QA4SM cells)",
    folder="SMOS_IC_105_ASC", cells=("0165", "0166"), layout="orthogonal",
    variable="Soil_Moisture", output_name="soil_moisture", source_units="m3 m-3",
    units="m3 m-3", conversion_factor=1.0, valid_range=(0.0, 1.0), fill_value=None,
    # SMOS-IC Quality_Flag: 0 good, 1 "RMSE above threshold" (still usable), 2 not recommended.
    flag_rules=(FlagRule("Quality_Flag", "in_set", values=(0, 1),
                         meaning="Quality_Flag 0 (good) or 1 (high RMSE)"),),
    nominal_time="06:00 local solar time (ascending)", native_resolution_m=25_000.0,
    licence="SMOS-IC (INRAE/CESBIO): free for research with attribution",
    attribution="Wigneron et al. (2021) SMOS-IC data record of soil moisture and L-VOD, "
    "RSE 254",
    long_name="SMOS-IC volumetric soil moisture")
ASCAT_H113_CELLS = Product(
    name="ascat_h113", title="H SAF Metop ASCAT Surface Soil Moisture CDR (H113)",
    folder="ASCAT_H113/data", cells=("0165", "0166"), layout="contiguous_ragged",
    variable="sm", output_name="degree_of_saturation", source_units="percentage",
    units="percent", conversion_factor=1.0, valid_range=(0.0, 100.0), fill_value=127.0,
    flag_rules=ASCAT_H119.flag_rules, nominal_time=ASCAT_H119.nominal_time,
    native_resolution_m=12_500.0, licence=ASCAT_H119.licence,
    attribution="Copyright EUMETSAT (H SAF), ASCAT SSM CDR H113", redistributable=False,
    standard_name=None, long_name="ASCAT surface soil moisture, degree of saturation")


def _cells(product: Product, folder_regex: str) -> NativeProduct:
    return NativeProduct(
        name=f"{product.name}_cells", title=f"{product.title}, time-series cell file",
        handler="CellFileHandler", patterns=(folder_regex + r"/\d{4}\.nc$",),
        file_format=f"netCDF-4 CF timeSeries, {product.layout} layout",
        timeseries_product=product, licence=product.licence, attribution=product.attribution,
        redistributable=product.redistributable,
    )


CELL_PRODUCTS = (
    _cells(SMAP, r"(^|/)SMAP_L3_V9_AM_PM"),
    _cells(ERA5_LAND, r"(^|/)ERA5_LAND_V\d{8}"),
    _cells(GLDAS, r"(^|/)GLDAS_NOAH025_3H_2_1"),
    _cells(C3S, r"(^|/)C3S_SM_COMBINED_V\d{6}"),
    _cells(ASCAT_H119, r"(^|/)ASCAT_H119/data"),
    _cells(ERA5_CELLS, r"(^|/)ERA5_\d{8}"),
    _cells(SMOS_L3_CELLS, r"(^|/)SMOS_L3_v\d+_ASC"),
    _cells(SMOS_IC_CELLS, r"(^|/)SMOS_IC_\d+_ASC"),
    _cells(ASCAT_H113_CELLS, r"(^|/)ASCAT_H113/data"),
)
GRID_POINTS = NativeProduct(
    name="grid_points",
    title="Grid point list of a reshuffled product (gpi, lat, lon, cell), incl. TU Wien WARP5 DGG",
    handler="GridFileHandler",
    patterns=(r"(^|/)grid\.nc$", r"(^|/)TUW_WARP5_grid_info_\d_\d\.nc$"),
    file_format="netCDF: gpi, lat, lon, cell along one dimension",
    licence="per product (see the cell files)",
    attribution="TU Wien (WARP5 DGG), awst-austria/qa4sm-testdata",
)

#: Every native product, in the order :func:`~smflow.readers.native.open_native` tries their
#: patterns (more specific patterns first).
NATIVE_PRODUCTS: Mapping[str, NativeProduct] = MappingProxyType({p.name: p for p in (
    SMAP_SPL3SMP, SMAP_SPL2SMP, SMOS_L3_CATDS,
    ASCAT_L2_NETCDF, ASCAT_L2_BUFR, HSAF_H101, HSAF_H102, HSAF_H103, HSAF_H16,
    AMSR2_L3_TB, HSAF_H14, ECMWF_GRIB, ERA5_NETCDF, GLDAS_NOAH21, ESA_CCI_SM,
    CGLS_SSM_1KM, CGLS_SWI_1KM, MOD11A1, MOD13_NDVI_TIF, MOD09A1,
    SRTM_HGT, GTOPO30_TIF, ETOPO20_TEXT, GMT_DEM_GRID,
    ECMWF_LANDMASK, GLOBE_LAND_MASK, GLCNMO, WFLOW_STATICMAPS,
    CHIRPS_TIF, RADOLAN_RW, NWS_QPE,
    ISMN_STM, ISMN_STATIC, ISMN_FLAGS, ISMN_METADATA, SM2RAIN_SERIES, SM2RAIN_PARAMETERS,
    *CELL_PRODUCTS, GRID_POINTS,
)})


def get_native_product(product: str | NativeProduct) -> NativeProduct:
    """The :class:`NativeProduct` called ``product`` (a NativeProduct is returned as is)."""
    if isinstance(product, NativeProduct):
        return product
    try:
        return NATIVE_PRODUCTS[product]
    except KeyError:
        raise KeyError(f"Unknown native product {product!r}; known: {sorted(NATIVE_PRODUCTS)}."
                       ) from None


def product_for_path(path: str | Path) -> NativeProduct | None:
    """The first native product whose file-name pattern matches ``path`` (None if none)."""
    for p in NATIVE_PRODUCTS.values():
        if p.matches(path):
            return p
    return None
