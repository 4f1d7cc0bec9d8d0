"""Science core of smflow: pure numpy, vectorised over a leading cell axis, NaN-aware.

- :mod:`smflow.science.tc` -- triple collocation error variances, correlation with the truth, SNR
  (Ming et al. 2022, Eqs. 5-10).
- :mod:`smflow.science.merging` -- least-squares merging weighted by TC error variances
  (Ming et al. 2022, Eqs. 11-17).
- :mod:`smflow.science.sm2rain` -- SM2RAIN rainfall from soil moisture, calibration and
  regionalisation (Zhang et al. 2022, Eqs. 1-2).
- :mod:`smflow.science.metrics` -- R, RMSE, ubRMSE, bias, KGE, NSE (Zhang et al. 2022, Eqs. 11-13).
- :mod:`smflow.science.bootstrap` -- moving-block bootstrap confidence intervals of TC.

Nothing here does I/O or knows about Airflow, S3 or MLflow.
"""

from __future__ import annotations

from smflow.science.merging import (
    MERGE_METHOD_FLAG_MEANINGS,
    MERGE_METHOD_FLAG_VALUES,
    METHOD_ARITHMETIC_MEAN,
    METHOD_NO_DATA,
    METHOD_PARTIAL,
    METHOD_TC_LEAST_SQUARES,
    MergedResult,
    MergingParameters,
    apply_tc_merging,
    fit_tc_merging,
    least_squares_weights,
)
from smflow.science.bootstrap import TCBootstrapResult, TCInterval, triple_collocation_ci
from smflow.science.metrics import bias, kge, nse, pearson_r, rmse, ubrmse
from smflow.science.sm2rain import (
    SM2RAINParameters,
    aggregate_sums,
    apply_sm2rain,
    calibrate_sm2rain,
    exponential_filter,
    freeze_swi_bounds,
    frozen_soil_mask,
    mask_frozen_soil,
    regionalise,
    relative_saturation,
    saturation_bounds,
    sm2rain,
)
from smflow.science.tc import TCResult, tc_from_moments, triple_collocation

__all__ = [
    "MERGE_METHOD_FLAG_MEANINGS",
    "MERGE_METHOD_FLAG_VALUES",
    "METHOD_ARITHMETIC_MEAN",
    "METHOD_NO_DATA",
    "METHOD_PARTIAL",
    "METHOD_TC_LEAST_SQUARES",
    "MergedResult",
    "MergingParameters",
    "SM2RAINParameters",
    "TCBootstrapResult",
    "TCInterval",
    "TCResult",
    "aggregate_sums",
    "apply_sm2rain",
    "apply_tc_merging",
    "bias",
    "calibrate_sm2rain",
    "exponential_filter",
    "freeze_swi_bounds",
    "frozen_soil_mask",
    "fit_tc_merging",
    "kge",
    "least_squares_weights",
    "mask_frozen_soil",
    "nse",
    "pearson_r",
    "regionalise",
    "relative_saturation",
    "rmse",
    "saturation_bounds",
    "sm2rain",
    "tc_from_moments",
    "triple_collocation",
    "triple_collocation_ci",
    "ubrmse",
]
