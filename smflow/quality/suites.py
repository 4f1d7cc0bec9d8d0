"""Great Expectations suites for the input granules and the daily product.

The thresholds are data (the frozen dataclasses in :data:`GRANULE_THRESHOLDS` and
:data:`PRODUCT_THRESHOLDS`, each with its rationale); the functions here only turn them into
``gx.ExpectationSuite`` objects over the tables built in :mod:`smflow.quality.validate`.

GX is tabular, so every suite runs on a per-granule (or per-product) table:

* granule table: one row per ``(location, time)`` observation of the decoded granule, columns
  :data:`GRANULE_COLUMNS`;
* product table: one row per grid cell of the day, per-source variables spread into
  ``{variable}__{source}`` columns (see :func:`source_column`).

Each expectation carries ``meta`` with the ``check`` it belongs to (``physical_range``,
``fill_fraction``, ``flag_consistency``, ``domain_coverage``, ``timestamps``, ...), a ``what``
phrase for the human-readable failure reason and the ``unit`` of its bounds.

``great_expectations`` is imported inside the functions only (``import great_expectations`` costs
~4-6 s, and DAG files must stay light).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from smflow.catalog import entries as catalog_entries
from smflow.catalog import pipeline
from smflow.catalog.model import GranuleThresholds

if TYPE_CHECKING:  # pragma: no cover
    import great_expectations as gx

#: Inputs of the main daily pipeline (``config/daily_pipelines.json``), each with a granule suite.
INPUT_PRODUCTS: tuple[str, ...] = pipeline("daily_soil_moisture").inputs

#: Sources of the merged product, in the order of the ``source`` dimension.
MERGED_SOURCES: tuple[str, ...] = pipeline("daily_soil_moisture").parents

#: Checks (``meta["check"]`` of the expectations) in the order they are reported.
#: Share of a granule's values as read that must lie in the valid range; below it the granule is in
#: other units (percent, kg m-2, a scale factor not applied). Measured on the real 2017-2018 Hawaii
#: granules of SMAP, ERA5-Land, GLDAS and C3S: no day has any value as read outside its range.
UNITS_MIN_INSIDE_FRACTION = 0.5

#: Largest distance [cells] of a granule's location from its product's native grid (float32
#: coordinates of the real granules are within 1e-4 cells of it); a granule on another grid or
#: with shifted coordinates is tenths of a cell off.
MAX_GRID_OFFSET_CELLS = 0.05

CHECKS: tuple[str, ...] = (
    "schema",
    "units",
    "physical_range",
    "fill_fraction",
    "flag_consistency",
    "domain_coverage",
    "grid",
    "timestamps",
    "error_variance",
    "snr",
    "confidence_interval",
    "precipitation",
    "land_coverage",
)

#: Columns of the per-granule table (:func:`smflow.quality.validate.granule_table`).
GRANULE_COLUMNS: tuple[str, ...] = (
    "location_id",
    "lat",
    "lon",
    "time",
    "hours_from_day_start",
    "soil_moisture",
    "value_as_read",
    "quality_ok",
    "flags_pass",
    "in_domain",
    "grid_offset",
)


@dataclass(frozen=True)
class DomainBounds:
    """Latitude/longitude box of a domain, in degrees (cell edges, not centres).

    Parameters
    ----------
    lat_min, lat_max : float
        Southern and northern edge [degrees_north].
    lon_min, lon_max : float
        Western and eastern edge [degrees_east].
    """

    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float

    def expanded(self, margin: float) -> "DomainBounds":
        """The box grown by ``margin`` degrees on every side."""
        return DomainBounds(
            self.lat_min - margin, self.lat_max + margin, self.lon_min - margin, self.lon_max + margin
        )

    def contains(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Boolean mask of the points inside the box (edges included); NaN coordinates are outside."""
        lat = np.asarray(lat, dtype="float64")
        lon = np.asarray(lon, dtype="float64")
        return (lat >= self.lat_min) & (lat <= self.lat_max) & (lon >= self.lon_min) & (lon <= self.lon_max)

    @classmethod
    def coerce(cls, value: Any) -> "DomainBounds":
        """A :class:`DomainBounds` from itself, a ``smflow.domain.DomainGrid`` or its ``bounds``
        tuple ``(lon_min, lat_min, lon_max, lat_max)`` (the pyresample / ``DomainGrid.bounds`` order)."""
        if isinstance(value, cls):
            return value
        if hasattr(value, "bounds") and not isinstance(value, (tuple, list)):
            value = value.bounds
        try:
            lon_min, lat_min, lon_max, lat_max = (float(v) for v in value)
        except (TypeError, ValueError):
            raise TypeError(
                f"domain_bounds must be a DomainBounds, a DomainGrid or (lon_min, lat_min, lon_max, lat_max); got {value!r}"
            ) from None
        if not (lat_min < lat_max and lon_min < lon_max):
            raise ValueError(
                f"domain_bounds {tuple(value)} are not (lon_min, lat_min, lon_max, lat_max) with min < max"
            )
        return cls(lat_min=lat_min, lat_max=lat_max, lon_min=lon_min, lon_max=lon_max)

    def as_dict(self) -> dict[str, float]:
        return {
            "lat_min": float(self.lat_min),
            "lat_max": float(self.lat_max),
            "lon_min": float(self.lon_min),
            "lon_max": float(self.lon_max),
        }


#: Big-Island domain of DESIGN.md: 0.1 deg cells with centres lat 19.0..20.2, lon -156.0..-155.1,
#: so edges half a cell further out. Used when the caller passes no ``domain_bounds`` and
#: ``smflow.domain`` offers no grid (see :func:`default_domain_bounds`).
BIG_ISLAND_BOUNDS = DomainBounds(lat_min=18.95, lat_max=20.25, lon_min=-156.05, lon_max=-155.05)

def default_domain_bounds() -> DomainBounds:
    """Cell-edge bounds of the operational domain.

    From :func:`smflow.domain.load_domain` (the single domain-grid object); falls back to
    :data:`BIG_ISLAND_BOUNDS` when that module is not importable.
    """
    try:
        from smflow.domain import load_domain
    except ImportError:  # pragma: no cover - the domain module ships with smflow
        return BIG_ISLAND_BOUNDS
    lon_min, lat_min, lon_max, lat_max = load_domain().bounds
    return DomainBounds(lat_min=lat_min, lat_max=lat_max, lon_min=lon_min, lon_max=lon_max)


def _granule_thresholds() -> dict[str, GranuleThresholds]:
    out = {name: e.granule_qc for name, e in catalog_entries().items() if e.granule_qc is not None}
    missing = [p for p in INPUT_PRODUCTS if p not in out]
    if missing:
        raise ValueError(f"Pipeline inputs {missing} have no granule thresholds: add a "
                         "'qc: granule:' section to smflow/catalog/products/<name>.yaml.")
    return out


#: Per input product thresholds: a view of the catalogue (``qc.granule`` of each entry in
#: ``smflow/catalog/products/<name>.yaml``; edit those, not the suite code).
GRANULE_THRESHOLDS: Mapping[str, GranuleThresholds] = MappingProxyType(_granule_thresholds())


@dataclass(frozen=True)
class ProductThresholds:
    """What the daily product must satisfy.

    Parameters
    ----------
    soil_moisture_range : tuple of float
        Range of merged ``soil_moisture`` [m3 m-3].
    precipitation_range : tuple of float
        Range of the daily ``precipitation_amount`` [kg m-2].
    snr_db_range : tuple of float
        Range of a resolved ``snr_db`` [dB]; it also rejects +-inf.
    min_land_coverage : float
        Fraction of land cells that must carry a merged ``soil_moisture`` [1].
    sources : tuple of str
        Expected values of the ``source`` coordinate.
    grid_lat_size, grid_lon_size : int
        Expected ``lat``/``lon`` sizes of the product grid.
    rationale : str
        Where the numbers come from.
    """

    soil_moisture_range: tuple[float, float] = (0.0, 0.7)
    precipitation_range: tuple[float, float] = (0.0, 500.0)
    snr_db_range: tuple[float, float] = (-60.0, 60.0)
    min_land_coverage: float = 0.5
    sources: tuple[str, ...] = MERGED_SOURCES
    grid_lat_size: int = 13
    grid_lon_size: int = 10
    rationale: str = (
        "0.7 m3 m-3 is above any mineral soil porosity; SM2RAIN inverts the water balance of a "
        "few-cm soil layer and cannot reach 500 kg m-2 in a day, so larger sums mean a units or "
        "parameter error; an SNR beyond +-60 dB means a degenerate TC solution; ERA5-Land and "
        "GLDAS alone cover all land, so less than half the land merged means inputs went missing."
    )


PRODUCT_THRESHOLDS = ProductThresholds()

#: Variables of the daily product that are spread per source into ``{name}__{source}`` columns.
PER_SOURCE_VARIABLES: tuple[str, ...] = (
    "error_variance",
    "correlation_with_truth",
    "snr_db",
    "source_soil_moisture",
    "error_variance_lower",
    "error_variance_upper",
    "correlation_with_truth_lower",
    "correlation_with_truth_upper",
    "snr_db_lower",
    "snr_db_upper",
)

#: Cell variables of the daily product copied into the product table.
CELL_VARIABLES: tuple[str, ...] = (
    "soil_moisture",
    "soil_moisture_error_variance",
    "merge_method",
    "precipitation_amount",
    "precipitation_status",
    "tc_resolved",
    "tc_sample_size",
)


_CONTEXT_LOCK = threading.Lock()
_CONTEXT: list = []


def ephemeral_context(**config: Any):
    """A new ephemeral GX context, analytics and progress bars off (``config``: further
    ``DataContextConfig`` fields, e.g. ``data_docs_sites``). GX's own info-level chatter (metric
    registrations, context set-up) is silenced: task logs show our one-line results instead."""
    import logging

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    project_config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        **config,
    )
    return gx.get_context(mode="ephemeral", project_config=project_config)


def gx_context():
    """The process's ephemeral GX context (created on first use: imports great_expectations).

    Analytics and progress bars are off: task workers make no network calls and their logs stay
    readable. Suites and dataframe assets are cheap; the context and the import are not, so they
    are made once per process.
    """
    with _CONTEXT_LOCK:
        if not _CONTEXT:
            _CONTEXT.append(ephemeral_context())
        return _CONTEXT[0]


def source_column(variable: str, source: str) -> str:
    """Column name of a per-source variable in the product table, e.g. ``snr_db__smap``."""
    return f"{variable}__{source}"


def granule_suite_name(product: str) -> str:
    return f"granule_{product}"


PRODUCT_SUITE_NAME = "daily_product"


def _fmt(value: float) -> str:
    return f"{value:g}"


def granule_suite(product: str, domain_bounds: Any = None) -> "gx.ExpectationSuite":
    """The expectation suite of one input product's per-granule table.

    Parameters
    ----------
    product : str
        One of :data:`INPUT_PRODUCTS`.
    domain_bounds : DomainBounds, DomainGrid or (lon_min, lat_min, lon_max, lat_max), optional
        Domain box the ``in_domain`` column was computed against (only named in the messages);
        default :func:`default_domain_bounds`.

    Returns
    -------
    gx.ExpectationSuite
        Not registered with any context (validated directly with ``batch.validate(suite)``).
    """
    if product not in GRANULE_THRESHOLDS:
        raise ValueError(
            f"No granule suite for product {product!r}; known products: {sorted(GRANULE_THRESHOLDS)}. "
            f"Add a 'qc: granule:' section to smflow/catalog/products/{product}.yaml."
        )
    bounds = DomainBounds.coerce(domain_bounds) if domain_bounds is not None else default_domain_bounds()
    return _granule_suite_cached(product, bounds)


@functools.lru_cache(maxsize=32)
def _granule_suite_cached(product: str, bounds: DomainBounds) -> "gx.ExpectationSuite":
    gx_context()  # a suite needs an active context
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    E = gx.expectations
    th = GRANULE_THRESHOLDS[product]
    lo, hi = th.soil_moisture_range
    box = bounds.expanded(th.domain_margin_deg)
    box_text = (
        f"lat [{box.lat_min:.2f}, {box.lat_max:.2f}], lon [{box.lon_min:.2f}, {box.lon_max:.2f}]"
    )
    suite = gx.ExpectationSuite(name=granule_suite_name(product), meta={"thresholds": _thresholds_meta(th)})
    add = suite.add_expectation

    # On the values as read (before the reader's range and flag masks turn them into NaN): a
    # granule mostly outside the valid range is in other units, not a few bad retrievals.
    add(E.ExpectColumnValuesToBeBetween(
        column="value_as_read", min_value=lo, max_value=hi, mostly=UNITS_MIN_INSIDE_FRACTION,
        meta={"check": "units",
              "what": f"values as read outside the valid range [{_fmt(lo)}, {_fmt(hi)}] m3 m-3 (wrong units?)"},
    ))
    add(E.ExpectColumnValuesToBeBetween(
        column="soil_moisture", min_value=lo, max_value=hi,
        meta={"check": "physical_range", "what": f"values outside [{_fmt(lo)}, {_fmt(hi)}] m3 m-3"},
    ))
    add(E.ExpectColumnValuesToNotBeNull(
        column="soil_moisture", mostly=max(0.0, 1.0 - th.max_fill_fraction),
        meta={
            "check": "fill_fraction",
            "what": f"values missing (allowed fill fraction {_fmt(th.max_fill_fraction)})",
        },
    ))
    add(E.ExpectColumnValuesToBeInSet(
        column="quality_ok", value_set=[True], row_condition=Column("soil_moisture").is_not_null(),
        meta={"check": "flag_consistency", "what": "non-null values have quality_ok false (flags not applied)"},
    ))
    add(E.ExpectColumnValuesToBeNull(
        column="soil_moisture", row_condition=Column("quality_ok") == False,  # noqa: E712
        meta={"check": "flag_consistency", "what": "values rejected by the quality flags are not null"},
    ))
    add(E.ExpectColumnValuesToBeInSet(
        column="flags_pass", value_set=[True], row_condition=Column("quality_ok") == True,  # noqa: E712
        meta={
            "check": "flag_consistency",
            "what": "observations marked quality_ok whose raw flags fail the product's flag rules",
        },
    ))
    add(E.ExpectColumnValuesToBeBetween(
        column="lat", min_value=-90.0, max_value=90.0,
        meta={"check": "domain_coverage", "what": "latitudes outside [-90, 90] degrees_north"},
    ))
    add(E.ExpectColumnValuesToBeBetween(
        column="lon", min_value=-180.0, max_value=180.0,
        meta={"check": "domain_coverage", "what": "longitudes outside [-180, 180] degrees_east"},
    ))
    add(E.ExpectColumnValuesToBeInSet(
        column="in_domain", value_set=[True], mostly=th.min_in_domain_fraction,
        meta={"check": "domain_coverage", "what": f"observations outside the domain {box_text}"},
    ))
    if th.min_locations_in_domain > 0:
        add(E.ExpectColumnUniqueValueCountToBeBetween(
            column="location_id", min_value=th.min_locations_in_domain,
            row_condition=Column("in_domain") == True,  # noqa: E712
            meta={
                "check": "domain_coverage",
                "what": f"locations inside the domain {box_text} (need at least {th.min_locations_in_domain})",
            },
        ))
    if th.native_grid is not None:
        add(E.ExpectColumnValuesToBeBetween(
            column="grid_offset", min_value=0.0, max_value=MAX_GRID_OFFSET_CELLS,
            meta={"check": "grid",
                  "what": f"observations off the product's {th.native_grid.name} grid by more than "
                          f"{MAX_GRID_OFFSET_CELLS:.0%} of a cell (wrong grid or shifted coordinates?)"},
        ))
    add(E.ExpectColumnValuesToBeBetween(
        column="hours_from_day_start", min_value=0.0, max_value=24.0, strict_max=True,
        meta={"check": "timestamps", "what": "timestamps outside the day [00:00, 24:00) UTC"},
    ))
    add(E.ExpectColumnValuesToNotBeNull(
        column="hours_from_day_start", meta={"check": "timestamps", "what": "observations without a time (NaT)"},
    ))
    return suite


def product_suite(thresholds: ProductThresholds | None = None, *, day: str) -> "gx.ExpectationSuite":
    """The expectation suite of the daily product table.

    Parameters
    ----------
    thresholds : ProductThresholds, optional
        Default :data:`PRODUCT_THRESHOLDS`.
    day : str
        ISO date (``YYYY-MM-DD``) the product's ``time`` must fall on.
    """
    return _product_suite_cached(thresholds or PRODUCT_THRESHOLDS, day)


@functools.lru_cache(maxsize=8)
def _product_suite_cached(th: ProductThresholds, day: str) -> "gx.ExpectationSuite":
    gx_context()  # a suite needs an active context
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    E = gx.expectations
    suite = gx.ExpectationSuite(name=PRODUCT_SUITE_NAME, meta={"thresholds": _thresholds_meta(th)})
    add = suite.add_expectation
    sm_lo, sm_hi = th.soil_moisture_range
    pr_lo, pr_hi = th.precipitation_range
    snr_lo, snr_hi = th.snr_db_range
    land = Column("land") == True  # noqa: E712
    resolved = Column("tc_resolved") == True  # noqa: E712

    add(E.ExpectColumnValuesToBeBetween(
        column="soil_moisture", min_value=sm_lo, max_value=sm_hi,
        meta={"check": "physical_range", "what": f"values outside [{_fmt(sm_lo)}, {_fmt(sm_hi)}] m3 m-3"},
    ))
    for source in th.sources:
        add(E.ExpectColumnValuesToBeBetween(
            column=source_column("source_soil_moisture", source), min_value=sm_lo, max_value=sm_hi,
            meta={"check": "physical_range", "what": f"values outside [{_fmt(sm_lo)}, {_fmt(sm_hi)}] m3 m-3"},
        ))
    add(E.ExpectColumnValuesToBeBetween(
        column="soil_moisture_error_variance", min_value=0.0,
        meta={"check": "error_variance", "what": "negative error variances (m6 m-6)"},
    ))
    for source in th.sources:
        add(E.ExpectColumnValuesToBeBetween(
            column=source_column("error_variance", source), min_value=0.0,
            meta={"check": "error_variance", "what": "negative error variances (m6 m-6)"},
        ))
        add(E.ExpectColumnValuesToNotBeNull(
            column=source_column("snr_db", source), row_condition=resolved,
            meta={"check": "snr", "what": "TC-resolved cells without an SNR"},
        ))
        add(E.ExpectColumnValuesToBeBetween(
            column=source_column("snr_db", source), min_value=snr_lo, max_value=snr_hi, row_condition=resolved,
            meta={"check": "snr", "what": f"TC-resolved SNRs not finite within [{_fmt(snr_lo)}, {_fmt(snr_hi)}] dB"},
        ))
        add(E.ExpectColumnValuesToBeBetween(
            column=source_column("error_variance_lower", source), min_value=0.0,
            meta={"check": "confidence_interval", "what": "negative lower bounds of error variances (m6 m-6)"},
        ))
        for bound in ("lower", "upper"):
            add(E.ExpectColumnValuesToBeBetween(
                column=source_column(f"correlation_with_truth_{bound}", source), min_value=-1.0, max_value=1.0,
                meta={"check": "confidence_interval", "what": f"{bound} bounds of R outside [-1, 1]"},
            ))
        for metric in ("error_variance", "correlation_with_truth", "snr_db"):
            add(E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=source_column(f"{metric}_upper", source), column_B=source_column(f"{metric}_lower", source),
                or_equal=True, ignore_row_if="either_value_is_missing",
                meta={"check": "confidence_interval", "what": f"{metric} intervals with upper < lower"},
            ))
    add(E.ExpectColumnValuesToBeBetween(
        column="tc_sample_size", min_value=0,
        meta={"check": "snr", "what": "negative TC sample sizes"},
    ))
    add(E.ExpectColumnValuesToBeBetween(
        column="precipitation_amount", min_value=pr_lo, max_value=pr_hi,
        meta={"check": "precipitation", "what": f"values outside [{_fmt(pr_lo)}, {_fmt(pr_hi)}] kg m-2"},
    ))
    # SM2RAIN needs soil moisture on the day and the day before, unfrozen soil and parameters: the
    # status says which is missing (decided from the inputs, not from the rainfall).
    computed = Column("precipitation_status") == 0
    add(E.ExpectColumnValuesToNotBeNull(
        column="precipitation_amount", row_condition=land & computed,
        meta={"check": "precipitation", "what": "land cells whose precipitation_status is 'computed' but have no precipitation"},
    ))
    add(E.ExpectColumnValuesToBeNull(
        column="precipitation_amount", row_condition=land & (Column("precipitation_status") != 0),
        meta={"check": "precipitation", "what": "land cells with precipitation although precipitation_status says it cannot be computed"},
    ))
    add(E.ExpectColumnValuesToNotBeNull(
        column="precipitation_status", row_condition=land,
        meta={"check": "precipitation", "what": "land cells without a precipitation_status"},
    ))
    add(E.ExpectColumnValuesToNotBeNull(
        column="soil_moisture", mostly=th.min_land_coverage, row_condition=land,
        meta={
            "check": "land_coverage",
            "what": f"land cells without soil moisture (need coverage >= {_fmt(th.min_land_coverage)})",
        },
    ))
    add(E.ExpectColumnValuesToBeInSet(
        column="product_date", value_set=[day],
        meta={"check": "timestamps", "what": f"cells whose time is not the day {day}"},
    ))
    return suite


def _thresholds_meta(th: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in th.__dataclass_fields__:
        value = getattr(th, name)
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        elif hasattr(value, "__dataclass_fields__"):  # e.g. the native grid
            value = _thresholds_meta(value)
        out[name] = value
    return out
