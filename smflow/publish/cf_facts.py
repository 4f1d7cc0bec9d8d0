"""Facts of the three CF-1.8 files of one day's product: what they contain and say, as data.

Read by the writer :mod:`smflow.publish.cf`, which only assembles them: the product names and
parent sources, the fill values, the units of the contract, the per-variable attributes
(standard names, long names, units, valid ranges, cell methods, comments), the flag tables,
titles, summaries, references, licence and the CRS.

To change what a file says about a variable, edit :data:`VARIABLE_ATTRS` (or
:data:`ML_COMMENTS` for the machine-learning merge); the writer adds ``grid_mapping``, flag
values and the ancillary-variable links that depend on which variables a product holds.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

CONVENTIONS: Final = "CF-1.8, ACDD-1.3"

#: Parent products of the merge, in the order used everywhere (docs/DESIGN.md).
SOURCES: Final = ("smap", "era5_land", "gldas")

#: The three files of one day, in publishing order.
PRODUCT_NAMES: Final = ("merged-sm", "sm2rain-precip", "tc-diagnostics")

#: Stored in place of NaN in every float variable (float32); outside every valid range.
FILL_VALUE: Final = np.float32(-9999.0)
INT8_FILL: Final = np.int8(-1)
INT32_FILL: Final = np.int32(-1)

TC_RESOLVED_FLAGS: Final[dict[int, str]] = {0: "tc_not_resolved", 1: "tc_resolved"}

REFERENCES: Final = (
    "Ming et al. (2022): hybrid triple collocation (TC) and LSTM merging and downscaling of "
    "SMAP, GLDAS-Noah and ERA5-Land soil moisture (Yunnan, China), Remote Sensing 14, 1744.",
    "Zhang, Y., Hou, J. and Huang, C. (2022): Integration of satellite-derived and ground-based "
    "soil moisture observations for a precipitation product over the Upper Heihe River Basin, "
    "China, Remote Sensing 14, 5355, doi:10.3390/rs14215355.",
    "Brocca, L. et al. (2013): A new method for rainfall estimation through soil moisture "
    "observations, Geophysical Research Letters 40, 853-858, doi:10.1002/grl.50173.",
)

INSTITUTION: Final = "smflow operational soil-moisture system"

#: ACDD-1.3 discovery attributes common to every product file (the per-file ones are written by
#: ``smflow.publish.cf``). ``date_created`` is deliberately absent: the bytes of a product depend
#: only on its inputs and models, so a re-run gives the same file (STAC ``published`` is not set
#: either); the inputs and model versions in the lineage attributes say which version this is.
ACDD_ATTRS: Final[dict[str, str]] = {
    "keywords_vocabulary": "GCMD Science Keywords",
    "standard_name_vocabulary": "CF Standard Name Table v84",
    "naming_authority": "smflow",
    "project": "smflow: daily merged soil moisture, SM2RAIN rainfall and triple-collocation diagnostics",
    "processing_level": "L4 (merged and model-derived fields on a fixed grid)",
    "creator_name": "smflow operational soil-moisture system",
    "creator_type": "institution",
    "creator_url": "https://github.com/smflow/smflow",
    "creator_email": "smflow-operations@example.org",
    "publisher_name": "smflow operations",
    "publisher_type": "institution",
    "publisher_url": "https://github.com/smflow/smflow",
    "publisher_email": "smflow-operations@example.org",
    "acknowledgement": "NASA SMAP and GLDAS (NASA EOSDIS), Copernicus Climate Change Service ERA5-Land; "
    "methods of Ming et al. (2022), Zhang, Hou & Huang (2022), Brocca et al. (2013).",
    "geospatial_bounds_crs": "EPSG:4326",
    "time_coverage_duration": "P1D",
}
#: GCMD Science Keywords per product file.
KEYWORDS: Final[dict[str, str]] = {
    "merged-sm": "EARTH SCIENCE > LAND SURFACE > SOILS > SOIL MOISTURE/WATER CONTENT, "
    "EARTH SCIENCE > BIOSPHERE > ECOSYSTEMS > TERRESTRIAL ECOSYSTEMS, soil moisture, merging, triple collocation",
    "sm2rain-precip": "EARTH SCIENCE > ATMOSPHERE > PRECIPITATION > PRECIPITATION AMOUNT, "
    "EARTH SCIENCE > LAND SURFACE > SOILS > SOIL MOISTURE/WATER CONTENT, SM2RAIN, rainfall",
    "tc-diagnostics": "EARTH SCIENCE > LAND SURFACE > SOILS > SOIL MOISTURE/WATER CONTENT, "
    "triple collocation, error variance, signal-to-noise ratio",
}
#: ACDD ``coverage_content_type`` of the data variables: flags are quality information, the
#: parents' fields are model results like the rest (physicalMeasurement would overstate them).
QUALITY_VARIABLES: Final = frozenset({
    "merge_method", "tc_resolved", "frozen_soil", "precipitation_status", "tc_sample_size", "tc_block_length",
    "soil_moisture_error_variance", "soil_moisture_uncertainty", "error_variance", "correlation_with_truth",
    "snr_db", "error_variance_lower", "error_variance_upper", "correlation_with_truth_lower",
    "correlation_with_truth_upper", "snr_db_lower", "snr_db_upper",
})
LICENSE: Final = (
    "CC-BY-4.0. Derived from NASA SMAP L3 and GLDAS (NASA EOSDIS, open data) and Copernicus "
    "ERA5-Land (Copernicus licence: 'Contains modified Copernicus Climate Change Service "
    "information'); cite the references."
)
PIPELINE: Final = "daily_soil_moisture"

# EPSG:4326 (WGS 84, geographic 2D), OGC WKT 2.
WGS84_WKT: Final = (
    'GEOGCRS["WGS 84",DATUM["World Geodetic System 1984",ELLIPSOID["WGS 84",6378137,'
    '298.257223563,LENGTHUNIT["metre",1]]],PRIMEM["Greenwich",0,ANGLEUNIT["degree",'
    '0.0174532925199433]],CS[ellipsoidal,2],AXIS["geodetic latitude (Lat)",north,ORDER[1],'
    'ANGLEUNIT["degree",0.0174532925199433]],AXIS["geodetic longitude (Lon)",east,ORDER[2],'
    'ANGLEUNIT["degree",0.0174532925199433]],ID["EPSG",4326]]'
)

REQUIRED_PROVENANCE: Final = (
    "tc_merging_model",
    "sm2rain_model",
    "input_granules",
    "missing_inputs",
    "sm2rain_parameters_source",
)

# Units of the contract (docs/DESIGN.md); a product in other units is refused, not converted.
CONTRACT_UNITS: Final = {
    "soil_moisture": "m3 m-3",
    "soil_moisture_error_variance": "m6 m-6",
    "precipitation_amount": "kg m-2",
    "error_variance": "m6 m-6",
    "source_soil_moisture": "m3 m-3",
    "correlation_with_truth": "1",
    "snr_db": "dB",
}
UNIT_SYNONYMS: Final = {
    "m3 m-3": {"m3 m-3", "m3/m3", "m^3 m^-3", "m3.m-3", "1"},
    "m6 m-6": {"m6 m-6", "(m3 m-3)^2", "(m3 m-3)2", "m^6 m^-6", "1"},
    "kg m-2": {"kg m-2", "mm", "kg/m2", "kg m^-2"},
    "1": {"1", "", "-"},
    "dB": {"dB", "db", "decibel"},
}

#: Attributes of the ``crs`` grid-mapping variable (EPSG:4326).
CRS_ATTRS: Final[dict[str, Any]] = {
    "grid_mapping_name": "latitude_longitude",
    "longitude_of_prime_meridian": 0.0,
    "semi_major_axis": 6378137.0,
    "inverse_flattening": 298.257223563,
    "crs_wkt": WGS84_WKT,
    "epsg_code": "EPSG:4326",
    "long_name": "WGS 84 geographic coordinates (EPSG:4326)",
}

SM_STANDARD_NAME: Final = "volume_fraction_of_condensed_water_in_soil"
#: Dimensions of the per-cell and the per-parent variables.
GRID: Final = ("time", "lat", "lon")
SOURCE_GRID: Final = ("time", "source", "lat", "lon")
MEMBER_GRID: Final = ("time", "member", "lat", "lon")

FROZEN_SOIL_FLAGS: Final[dict[int, str]] = {0: "not_frozen", 1: "frozen_soil_or_snow"}

#: ``smap_source`` of the seamless SMAP (ANN reconstruction, Wang & Xu 2021; smflow.ml.reconstruction).
SMAP_SOURCE_FLAGS: Final[dict[int, str]] = {
    0: "observed",
    1: "reconstructed",
    2: "reconstructed_extrapolated",
    3: "none_cell_not_reconstructed",
    4: "none_predictor_missing",
}
#: Attributes of the seamless-SMAP variables of ``merged-sm`` (``predictors`` and ``model`` come with the data).
SMAP_RECONSTRUCTION_ATTRS: Final[dict[str, dict[str, Any]]] = {
    "smap_reconstructed": {
        "standard_name": "volume_fraction_of_condensed_water_in_soil", "units": "m3 m-3",
        "long_name": "seamless SMAP soil moisture: SMAP L3 where observed, else the ANN reconstruction",
        "comment": "Wang & Xu 2021 (Remote Sens. 13, 5156), Sect. 3.1: per-cell one-hidden-layer network "
                   "trained on the days SMAP exists; see smap_source and smap_reconstructed_uncertainty",
        "ancillary_variables": "smap_source smap_reconstructed_uncertainty"},
    "smap_reconstructed_uncertainty": {
        "units": "m3 m-3",
        "long_name": "uncertainty of the reconstructed SMAP soil moisture (RMSE of the cell's network on its "
                     "validation blocks)",
        "comment": "NaN where SMAP is observed or nothing is reconstructed"},
    "smap_source": {
        "long_name": "source of smap_reconstructed",
        "comment": "reconstructed_extrapolated: a predictor outside the cell's training range (value not "
                   "clipped); none_cell_not_reconstructed: fewer than 50 matched training pairs in the cell; "
                   "none_predictor_missing: a predictor of the model is missing that day (see the "
                   "smap_reconstruction_missing_predictors attribute)"},
}

#: Comments of the merged variables when the merge is the machine-learning ensemble (the
#: ``comment`` of :data:`VARIABLE_ATTRS` describes the TC least-squares merge).
ML_COMMENT: Final = (
    "Machine-learning merge of SMAP, ERA5-Land and GLDAS: random forest, LSTM and multi-head 1-D CNN "
    "members trained against in-situ soil moisture (ISMN) and combined by Bayesian model averaging "
    "(Zhang, Hou & Huang 2022, Sect. 3.4, Eq. 17; Raftery et al. 2005); parents missing on a day are "
    "masked in the features (merge_method machine_learning_partial). NaN (_FillValue) off land and "
    "where no parent has a value."
)
ML_COMMENTS: Final[dict[str, str]] = {
    "soil_moisture": ML_COMMENT,
    "soil_moisture_error_variance": "(m3 m-3)^2. BMA predictive variance: spread between the bias-corrected "
    "members plus their weighted within-member variances (Raftery et al. 2005).",
}

#: CF attributes of every data variable, by name (``grid_mapping`` and flag values are added by
#: the writer; the order of the keys is the order in the files).
VARIABLE_ATTRS: Final[dict[str, dict[str, Any]]] = {
    # merged-sm
    "soil_moisture": {
        "standard_name": SM_STANDARD_NAME,
        "long_name": "merged surface soil moisture (volumetric water content)",
        "units": "m3 m-3",
        "valid_min": np.float32(0.0),
        "valid_max": np.float32(1.0),
        "cell_methods": "time: mean",
        "ancillary_variables": "soil_moisture_error_variance merge_method",
        "comment": "Least-squares merge of SMAP, ERA5-Land and GLDAS "
        "weighted by their triple-collocation error variances (Ming et al. 2022, Eqs. 11-17); "
        "arithmetic mean of the available parents where TC is unresolved (see merge_method). "
        "NaN (_FillValue) off land and where no parent has a value.",
    },
    "soil_moisture_error_variance": {
        "long_name": "error variance of the merged soil moisture",
        "units": "m6 m-6",
        "valid_min": np.float32(0.0),
        "comment": "(m3 m-3)^2. Propagated from the parents' triple-collocation error "
        "variances through the merging weights; its square root is the standard error "
        "of soil_moisture. Missing (_FillValue) where merge_method is "
        "arithmetic_mean, which has no TC error model.",
    },
    "merge_method": {"long_name": "method used to merge the parent soil moisture in this cell"},
    "source_soil_moisture": {
        "standard_name": SM_STANDARD_NAME,
        "long_name": "parent product soil moisture on the domain grid, as merged",
        "units": "m3 m-3",
        "valid_min": np.float32(0.0),
        "valid_max": np.float32(1.0),
        "cell_methods": "time: mean",
    },
    "soil_moisture_uncertainty": {
        "long_name": "uncertainty of the merged soil moisture (standard deviation)", "units": "m3 m-3",
        "valid_min": np.float32(0.0),
        "comment": "Square root of soil_moisture_error_variance: BMA predictive standard deviation.",
    },
    "member_soil_moisture": {
        "standard_name": SM_STANDARD_NAME, "units": "m3 m-3",
        "long_name": "soil moisture of each member model of the ensemble merge (before BMA)",
        "valid_min": np.float32(0.0), "valid_max": np.float32(1.0),
    },
    # sm2rain-precip
    "precipitation_amount": {
        "standard_name": "precipitation_amount",
        "long_name": "daily rainfall estimated from soil moisture (SM2RAIN)",
        "units": "kg m-2",
        "valid_min": np.float32(0.0),
        "cell_methods": "time: sum",
        "comment": "1 kg m-2 equals 1 mm of water. Rainfall inverted from the "
        "soil-water balance of the merged soil moisture (SM2RAIN; Brocca et al. 2013; "
        "Zhang et al. 2022, Eqs. 1-2), accumulated over time_bnds. Missing "
        "(_FillValue) where precipitation_status is not 'computed' (no soil moisture on the day or the "
        "day before, frozen soil or snow, no SM2RAIN parameters).",
    },
    "precipitation_status": {
        "long_name": "status of the SM2RAIN rainfall in this cell",
        "comment": "Why a land cell has (computed) or has no rainfall on this day, decided from the inputs "
        "of the inversion: SM2RAIN needs the merged soil moisture of the day and of the day before "
        "(Brocca et al. 2013, Eq. 2), soil that is not frozen on either day, and calibrated parameters. "
        "Off land: no_soil_moisture.",
    },
    "frozen_soil": {
        "long_name": "frozen soil or snow cover: no rainfall inverted from soil moisture",
        "comment": "Top-layer soil temperature (GLDAS Noah 0-10 cm, daily mean) at or below "
        "273.15 K on this day. The day's rainfall is also missing when the day before was "
        "frozen (SM2RAIN uses both days).",
    },
    # tc-diagnostics
    "error_variance": {
        "long_name": "triple-collocation error variance of the parent soil moisture",
        "units": "m6 m-6",
        "valid_min": np.float32(0.0),
        "comment": "(m3 m-3)^2, in each parent's own units (Ming et al. 2022, Eqs. 5-8).",
    },
    "correlation_with_truth": {
        "long_name": "correlation of the parent soil moisture with the unknown truth",
        "units": "1",
        "valid_min": np.float32(-1.0),
        "valid_max": np.float32(1.0),
        "comment": "Extended triple collocation (Ming et al. 2022, Eq. 10).",
    },
    "snr_db": {
        "long_name": "signal-to-noise ratio of the parent soil moisture, in decibels",
        "units": "1",
        "comment": "In decibels: SNR = 10 log10(signal variance / error variance) from triple "
        "collocation (Ming et al. 2022, Eq. 9). Units '1' because UDUNITS-2 (CF section 3.1) "
        "has no decibel; the values are dB, not ratios.",
    },
    "tc_resolved": {
        "long_name": "triple collocation resolved in this cell",
        "comment": "tc_not_resolved: too few collocated triplets or non-positive "
        "covariances; the merge then falls back to the arithmetic mean.",
    },
    "tc_sample_size": {
        "standard_name": f"{SM_STANDARD_NAME} number_of_observations",
        "long_name": "number of collocated triplets used by the triple collocation",
        "units": "1",
        "grid_mapping": "crs",
    },
    "tc_block_length": {"long_name": "block length of the moving-block bootstrap", "units": "day",
                        "grid_mapping": "crs"},
}

#: Attributes of the ``member`` coordinate of the ensemble merge.
MEMBER_ATTRS: Final[dict[str, str]] = {"long_name": "member model of the ensemble merge"}

#: TC metrics that carry bootstrap confidence intervals: what they are, their units.
CI_QUANTITIES: Final = {
    "error_variance": ("triple-collocation error variance", "m6 m-6"),
    "correlation_with_truth": ("correlation with the unknown truth", "1"),
    "snr_db": ("signal-to-noise ratio (decibels)", "1"),
}
#: ``long_name`` and ``comment`` of ``<metric>_lower`` / ``_upper`` (str.format templates).
CI_LONG_NAME: Final = "{side} bound of the {level:.0%} confidence interval of the {what}"
CI_COMMENT: Final = (
    "Moving-block bootstrap over the trailing window ({resamples} "
    "resamples, block length tc_block_length, percentile interval; Politis and "
    "Romano 1994). Missing where TC is not resolved."
)

# --------------------------------------------------------------------------- global attributes

TITLES: Final = {
    "merged-sm": "smflow daily merged surface soil moisture (SMAP, ERA5-Land, GLDAS), Big Island "
    "of Hawaii, 0.1 degree",
    "sm2rain-precip": "smflow daily SM2RAIN rainfall from merged soil moisture, Big Island of "
    "Hawaii, 0.1 degree",
    "tc-diagnostics": "smflow daily triple-collocation error diagnostics of SMAP, ERA5-Land and "
    "GLDAS soil moisture, Big Island of Hawaii, 0.1 degree",
}
SUMMARIES: Final = {
    "merged-sm": "Surface soil moisture merged from SMAP L3 v9 (AM+PM), ERA5-Land layer 1 and "
    "GLDAS Noah 2.1 0-10 cm with least-squares weights from triple collocation (TC) error "
    "variances, with its error variance, the merge method per cell and the parent values.",
    "sm2rain-precip": "Daily rainfall estimated bottom-up from the merged soil moisture with "
    "SM2RAIN: the soil-water balance inverted for the rainfall that explains the observed "
    "soil-moisture change.",
    "tc-diagnostics": "Triple-collocation error variance, correlation with the truth and "
    "signal-to-noise ratio of each parent soil-moisture product, whether TC was resolved and "
    "how many collocated triplets it used.",
}


#: Global ``comment`` of every file.
GLOBAL_COMMENT: Final = (
    "Daily product of the smflow system. NaN (_FillValue) marks cells off land "
    "or without a value. The lineage attributes list the input granules, the inputs that "
    "were missing on this day and the model versions that made this file."
)
