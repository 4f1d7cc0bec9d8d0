"""SM2RAIN: rainfall from soil-moisture increments (inverted soil-water balance), vectorised over cells.

Zhang et al. 2022, Eqs. 1-2, in the discrete form of Brocca et al. (2013/2014) with the loss term
averaged over the step. The package is split along the seams of the method:

* :mod:`~smflow.science.sm2rain.model` -- the forward model (:func:`sm2rain`,
  :func:`apply_sm2rain`), :class:`SM2RAINParameters`, relative saturation and its bounds;
* :mod:`~smflow.science.sm2rain.filters` -- the soil water index filters of SM2RAIN-ASCAT, the
  frozen-soil mask, block sums;
* :mod:`~smflow.science.sm2rain.calibration` -- :func:`calibrate_sm2rain` (options, filter search),
  with the (Z, a, b) solvers in :mod:`~smflow.science.sm2rain.solvers` and the dask path in
  :mod:`~smflow.science.sm2rain.distributed`;
* :mod:`~smflow.science.sm2rain.regionalisation` -- :func:`regionalise`, :func:`freeze_swi_bounds`.

The per-cell loops are compiled kernels in :mod:`smflow.science._kernels` (numba).

Units: ``s`` is the relative saturation [-] in [0, 1]; ``Z`` the soil water capacity [mm]; ``a``
the loss rate at saturation [mm per unit of time of ``dt``] (mm/day with the default ``dt=1`` day);
``b`` the loss exponent [-]; rainfall is a depth per time step [mm] (= kg m-2).
"""

from __future__ import annotations

from smflow.science.sm2rain.calibration import (
    DEFAULT_A_BOUNDS,
    DEFAULT_B_BOUNDS,
    DEFAULT_Z_BOUNDS,
    Method,
    Objective,
    calibrate_sm2rain,
)
from smflow.science.sm2rain.filters import (
    DEFAULT_T_BOUNDS,
    DEFAULT_T_BOUNDS_TPOT,
    DEFAULT_T_POT_BOUNDS,
    SWIFilter,
    aggregate_sums,
    exponential_filter,
    frozen_soil_mask,
    mask_frozen_soil,
)
from smflow.science.sm2rain.model import (
    PRECIPITATION_STATUS_FLAGS,
    SM2RAINParameters,
    apply_sm2rain,
    precipitation_status,
    relative_saturation,
    saturation_bounds,
    sm2rain,
)
from smflow.science.sm2rain.regionalisation import freeze_swi_bounds, regionalise

__all__ = [
    "DEFAULT_A_BOUNDS",
    "DEFAULT_B_BOUNDS",
    "DEFAULT_T_BOUNDS",
    "DEFAULT_T_BOUNDS_TPOT",
    "DEFAULT_T_POT_BOUNDS",
    "DEFAULT_Z_BOUNDS",
    "Method",
    "Objective",
    "PRECIPITATION_STATUS_FLAGS",
    "SM2RAINParameters",
    "SWIFilter",
    "aggregate_sums",
    "apply_sm2rain",
    "calibrate_sm2rain",
    "exponential_filter",
    "freeze_swi_bounds",
    "frozen_soil_mask",
    "mask_frozen_soil",
    "precipitation_status",
    "regionalise",
    "relative_saturation",
    "saturation_bounds",
    "sm2rain",
]
