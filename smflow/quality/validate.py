"""Validate decoded input granules and the daily product with Great Expectations.

Each validation builds a small table from the ``xr.Dataset`` (GX is tabular), runs the product's
suite from :mod:`smflow.quality.suites` on it in the process-wide ephemeral GX context, adds the xarray
schema check of :mod:`smflow.quality.schema`, and returns a :class:`ValidationOutcome` whose ``reason``
is one sentence per failed expectation, e.g.
``"soil_moisture: 31 of 84 values outside [0, 0.766] m3 m-3 [physical_range]"``.

``great_expectations`` is imported on the first validation only (3-6 s once per process); each
validation afterwards takes ~0.1 s for a granule and ~0.25 s for the daily product (GX's
per-expectation overhead, not the table size). Nothing here imports Airflow.
"""

from __future__ import annotations

import dataclasses

import datetime as dt
import json
import math
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from smflow.dates import as_date
from smflow.quality import schema as schema_mod
from smflow.quality.suites import (
    CELL_VARIABLES,
    CHECKS,
    GRANULE_THRESHOLDS,
    PER_SOURCE_VARIABLES,
    PRODUCT_SUITE_NAME,
    PRODUCT_THRESHOLDS,
    DomainBounds,
    ProductThresholds,
    default_domain_bounds,
    granule_suite,
    granule_suite_name,
    gx_context,
    product_suite,
    source_column,
)

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from smflow.config import Settings


@dataclass(frozen=True)
class ValidationOutcome:
    """Result of validating one granule or one product.

    Parameters
    ----------
    success : bool
        True when every expectation passed and the schema check found no error.
    reason : str
        Human-readable sentence: what was validated and each failed expectation / schema error.
    statistics : dict
        Counts, fractions, value ranges and timings (JSON-serialisable).
    result : dict
        The GX suite validation result (``to_json_dict()``, NaN/inf replaced by None); empty when
        the dataset was too malformed to tabulate.
    suite_name : str
        Name of the expectation suite that was run.
    failed_checks : tuple of str
        Checks that failed (``schema``, ``physical_range``, ``fill_fraction``,
        ``flag_consistency``, ``domain_coverage``, ``timestamps``, ``error_variance``, ``snr``,
        ``confidence_interval``, ``precipitation``, ``land_coverage``), in :data:`smflow.quality.suites.CHECKS` order.
    schema_problems : tuple of str
        Schema errors (warnings are in ``statistics["schema_warnings"]``).
    """

    success: bool
    reason: str
    statistics: dict[str, Any]
    result: dict[str, Any]
    suite_name: str
    failed_checks: tuple[str, ...] = ()
    schema_problems: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (used for quarantine sidecars and stored results)."""
        return {
            "success": bool(self.success),
            "reason": self.reason,
            "suite_name": self.suite_name,
            "failed_checks": list(self.failed_checks),
            "schema_problems": list(self.schema_problems),
            "statistics": _jsonable(self.statistics),
            "result": _jsonable(self.result),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ValidationOutcome":
        return cls(
            success=bool(data["success"]),
            reason=str(data["reason"]),
            statistics=dict(data.get("statistics", {})),
            result=dict(data.get("result", {})),
            suite_name=str(data.get("suite_name", "")),
            failed_checks=tuple(data.get("failed_checks", ())),
            schema_problems=tuple(data.get("schema_problems", ())),
        )


# --------------------------------------------------------------------------------------------
# One GX context per process
# --------------------------------------------------------------------------------------------

_DATASOURCE_NAME = "smflow_quality"
_ASSETS_LOCK = threading.Lock()
_BATCH_DEFINITIONS: dict[str, Any] = {}


def warm_up() -> float:
    """Import GX and create the process's ephemeral context; seconds it took (~0 when done before)."""
    start = time.perf_counter()
    gx_context()
    return time.perf_counter() - start


def _batch_definition(asset_name: str):
    """Whole-dataframe batch definition of a dataframe asset, created once per process."""
    context = gx_context()
    with _ASSETS_LOCK:
        if asset_name not in _BATCH_DEFINITIONS:
            try:
                datasource = context.data_sources.get(_DATASOURCE_NAME)
            except LookupError:  # KeyError: not made yet in this process
                datasource = context.data_sources.add_pandas(name=_DATASOURCE_NAME)
            asset = datasource.add_dataframe_asset(name=asset_name)
            _BATCH_DEFINITIONS[asset_name] = asset.add_batch_definition_whole_dataframe("whole_table")
        return _BATCH_DEFINITIONS[asset_name]


def _run_suite(table: pd.DataFrame, suite, asset_name: str) -> tuple[Any, float]:
    batch_definition = _batch_definition(asset_name)
    start = time.perf_counter()
    batch = batch_definition.get_batch(batch_parameters={"dataframe": table})
    # BASIC: counts + up to 20 unexpected values; SUMMARY adds index lists and costs ~40 % more.
    result = batch.validate(suite, result_format="BASIC")
    return result, time.perf_counter() - start


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _day_start(day: dt.date) -> np.datetime64:
    return np.datetime64(day.isoformat(), "ns")


def _jsonable(obj: Any) -> Any:
    """Recursively convert to JSON-safe builtins (NaN/inf -> None, numpy/pandas scalars, times)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, (pd.Timestamp, dt.datetime, dt.date)):
        return obj.isoformat()
    if isinstance(obj, np.datetime64):
        return None if np.isnat(obj) else str(obj)
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    return str(obj)


def _float_or_none(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _exception_message(info: Any) -> str | None:
    """First line of the exception an expectation raised, if any.

    GX puts ``{raised_exception, exception_message}`` directly in ``exception_info`` or, when a
    metric failed to resolve, one such dict per metric id.
    """
    if not isinstance(info, dict):
        return None
    candidates = [info] + [v for v in info.values() if isinstance(v, dict)]
    for candidate in candidates:
        if candidate.get("raised_exception"):
            message = str(candidate.get("exception_message") or "error").strip()
            return message.splitlines()[0] if message else "error"
    return None


def _describe(expectation_result) -> tuple[str, str]:
    """``(check, sentence)`` for one failed expectation result."""
    config = expectation_result.expectation_config
    meta = config.meta or {}
    kwargs = config.kwargs
    column = kwargs.get("column") or (
        f"{kwargs['column_A']} vs {kwargs['column_B']}" if "column_A" in kwargs else "<table>")
    check = meta.get("check", config.type)
    what = meta.get("what", config.type.replace("_", " "))
    message = _exception_message(expectation_result.exception_info)
    if message is not None:
        return check, f"{column}: could not be checked ({message}) [{check}]"
    result = expectation_result.result or {}
    if "unexpected_count" in result:
        count = int(result.get("unexpected_count") or 0)
        # Range / set expectations skip nulls (reported as missing_count): count among the rest.
        total = int(result.get("element_count") or 0) - int(result.get("missing_count") or 0)
        text = f"{column}: {count} of {total} {what}"
        if kwargs.get("mostly") is not None and total:
            text += f" ({100.0 * count / total:.1f} %)"
        return check, f"{text} [{check}]"
    if "observed_value" in result:
        return check, f"{column}: {result['observed_value']} {what} [{check}]"
    return check, f"{column}: {what} ({config.type}) [{check}]"


def _summarise(gx_result, schema_errors: list[schema_mod.SchemaProblem]) -> tuple[list[str], list[str]]:
    """Failed checks (CHECKS order, unique) and the sentences, schema errors first."""
    failures: list[tuple[str, str]] = [("schema", f"schema: {p}") for p in schema_errors]
    if gx_result is not None:
        failures += [_describe(r) for r in gx_result.results if not r.success]
    order = {name: i for i, name in enumerate(CHECKS)}
    failures.sort(key=lambda item: order.get(item[0], len(order)))
    checks = list(dict.fromkeys(check for check, _ in failures))
    return checks, list(dict.fromkeys(text for _, text in failures))


def _outcome(
    *,
    what: str,
    suite_name: str,
    gx_result,
    schema_problems: list[schema_mod.SchemaProblem],
    statistics: dict[str, Any],
) -> ValidationOutcome:
    schema_errors = schema_mod.errors(schema_problems)
    statistics["schema_warnings"] = [str(p) for p in schema_problems if p.severity == "warning"]
    checks, sentences = _summarise(gx_result, schema_errors)
    result_dict: dict[str, Any] = {}
    evaluated = 0
    if gx_result is not None:
        result_dict = _jsonable(gx_result.to_json_dict())
        evaluated = int(gx_result.statistics.get("evaluated_expectations", 0))
        statistics["evaluated_expectations"] = evaluated
        statistics["successful_expectations"] = int(gx_result.statistics.get("successful_expectations", 0))
    success = not sentences
    if success:
        reason = f"{what}: all {evaluated} expectations passed"
    else:
        failed = evaluated - int(statistics.get("successful_expectations", evaluated))
        parts = []
        if failed:
            parts.append(f"{failed} of {evaluated} expectations failed")
        if schema_errors:
            parts.append(f"{len(schema_errors)} schema error{'s' if len(schema_errors) > 1 else ''}")
        reason = f"{what}: {' and '.join(parts)}: " + "; ".join(sentences)
    return ValidationOutcome(
        success=success,
        reason=reason,
        statistics=_jsonable(statistics),
        result=result_dict,
        suite_name=suite_name,
        failed_checks=tuple(checks),
        schema_problems=tuple(str(p) for p in schema_errors),
    )


# --------------------------------------------------------------------------------------------
# Input granules
# --------------------------------------------------------------------------------------------


def _flag_rules(product: str) -> tuple:
    """The product's raw-flag rules from :mod:`smflow.products` (empty if it has none)."""
    try:
        from smflow.products import get_product
    except ImportError:  # pragma: no cover - products ship with smflow
        return ()
    try:
        return tuple(get_product(product).flag_rules)
    except KeyError:
        return ()


def _flags_pass(decoded: "xr.Dataset", product: str, shape: tuple[int, int]) -> tuple[np.ndarray, list[str]]:
    """True where the raw flag variables pass every rule of the product; names of absent flag variables.

    A raw flag that is NaN (no retrieval) fails every rule. Without rules the mask is all True.
    """
    passing = np.ones(shape, dtype=bool)
    missing: list[str] = []
    for rule in _flag_rules(product):
        if rule.variable not in decoded.variables or set(decoded[rule.variable].dims) != {"location", "time"}:
            missing.append(rule.variable)
            continue
        raw = np.asarray(decoded[rule.variable].transpose("location", "time").values, dtype="float64")
        finite = np.isfinite(raw)
        ok = np.zeros(shape, dtype=bool)
        ok[finite] = rule.passes(raw[finite].astype(np.int64))
        passing &= ok
    return passing, missing


def granule_table(
    decoded: "xr.Dataset",
    product: str,
    *,
    day: Any = None,
    domain_bounds: DomainBounds | tuple[float, float, float, float] | None = None,
) -> pd.DataFrame:
    """One row per ``(location, time)`` observation of a decoded granule.

    Parameters
    ----------
    decoded : xr.Dataset
        Decoded granule (DESIGN.md): dims ``(location, time)``, ``soil_moisture`` [m3 m-3] with
        flags applied, ``quality_mask`` (True = passes flags).
    product : str
        Input product name (sets the raw flag variable and the domain margin).
    day : date-like, optional
        UTC day the granule belongs to; default the day of its earliest timestamp.
    domain_bounds : DomainBounds or (lon_min, lat_min, lon_max, lat_max), optional
        Domain box (cell edges, e.g. ``DomainGrid.bounds``); default
        :func:`smflow.quality.suites.default_domain_bounds`.

    Returns
    -------
    pandas.DataFrame
        Columns ``location_id`` (int64), ``lat``, ``lon`` [degrees], ``time`` (datetime64[ns],
        UTC), ``hours_from_day_start`` [h] (NaN for NaT), ``soil_moisture`` [m3 m-3],
        ``quality_ok`` (bool), ``flags_pass`` (bool: the raw flag variables pass the product's
        rules in :mod:`smflow.products`; True when it has none or they are absent),
        ``in_domain`` (bool: inside the domain + the product's margin), ``grid_offset`` [cells]
        (distance from the product's native grid, NaN when the catalogue gives none).
        Location-major order.

    Raises
    ------
    ValueError
        When ``soil_moisture`` or the ``location``/``time`` dims are missing (see
        :func:`smflow.quality.schema.check_granule_schema` for the full list of problems).
    """
    if product not in GRANULE_THRESHOLDS:
        raise ValueError(f"Unknown product {product!r}; expected one of {sorted(GRANULE_THRESHOLDS)}")
    if "soil_moisture" not in decoded.variables:
        raise ValueError("decoded granule has no 'soil_moisture' variable; it cannot be tabulated")
    sm_da = decoded["soil_moisture"]
    if set(sm_da.dims) != {"location", "time"}:
        raise ValueError(f"soil_moisture has dims {sm_da.dims}; expected ('location', 'time')")
    sm = np.asarray(sm_da.transpose("location", "time").values, dtype="float64")
    n_loc, n_time = sm.shape
    as_read_name = "soil_moisture_as_read"
    if as_read_name in decoded.variables and set(decoded[as_read_name].dims) == {"location", "time"}:
        as_read = np.asarray(decoded[as_read_name].transpose("location", "time").values, dtype="float64")
    else:  # a reader without the unmasked values: the masked ones are all there is to check
        as_read = sm

    def per_location(name: str, dtype: str, fill: Any) -> np.ndarray:
        if name in decoded.variables and decoded[name].dims == ("location",):
            values = np.asarray(decoded[name].values)
        else:
            values = np.full(n_loc, fill)
        return np.repeat(values.astype(dtype, copy=False), n_time)

    if "time" in decoded.variables and np.issubdtype(decoded["time"].dtype, np.datetime64):
        times = np.asarray(decoded["time"].values).astype("datetime64[ns]")
    else:
        times = np.full(n_time, np.datetime64("NaT", "ns"))
    if "quality_mask" in decoded.variables and set(decoded["quality_mask"].dims) == {"location", "time"}:
        quality = np.asarray(decoded["quality_mask"].transpose("location", "time").values).astype(bool)
    else:  # schema check reports it; without a mask every value counts as accepted
        quality = np.isfinite(sm)
    flags_pass, _ = _flags_pass(decoded, product, sm.shape)

    if day is None:
        valid_times = times[~np.isnat(times)]
        day = pd.Timestamp(valid_times.min()).date() if valid_times.size else dt.date(1970, 1, 1)
    day0 = _day_start(as_date(day))
    time_col = np.tile(times, n_loc)
    hours = (time_col - day0) / np.timedelta64(1, "h")
    hours = np.where(np.isnat(time_col), np.nan, hours)
    lat = per_location("lat", "float64", np.nan)
    lon = per_location("lon", "float64", np.nan)
    bounds = DomainBounds.coerce(domain_bounds) if domain_bounds is not None else default_domain_bounds()
    bounds = bounds.expanded(GRANULE_THRESHOLDS[product].domain_margin_deg)
    grid = GRANULE_THRESHOLDS[product].native_grid
    location_id = per_location("location_id", "int64", -1) if "location_id" in decoded.variables else np.repeat(np.arange(n_loc, dtype="int64"), n_time)
    return pd.DataFrame(
        {
            "location_id": location_id,
            "lat": lat,
            "lon": lon,
            "time": time_col,
            "hours_from_day_start": hours.astype("float64"),
            "soil_moisture": sm.ravel(),
            "value_as_read": as_read.ravel(),
            "quality_ok": quality.ravel(),
            "flags_pass": flags_pass.ravel(),
            "in_domain": bounds.contains(lat, lon),
            "grid_offset": grid.offset_cells(lat, lon) if grid is not None else np.full(lat.shape, np.nan),
        }
    )


def validate_granule(
    product: str,
    decoded: "xr.Dataset",
    day: Any,
    *,
    domain_bounds: DomainBounds | tuple[float, float, float, float] | None = None,
) -> ValidationOutcome:
    """Validate one decoded input granule against its product's suite and the granule schema.

    Checks (thresholds in :data:`smflow.quality.suites.GRANULE_THRESHOLDS`): physical range of
    ``soil_moisture`` [m3 m-3]; fill fraction; flag consistency (non-null values pass the flags,
    flag-rejected values are null, ``quality_ok`` observations pass the raw-flag rules of
    :mod:`smflow.products`); domain coverage (valid coordinates,
    share of observations and number of locations inside the domain + margin); timestamps inside
    ``[day, day + 1)`` UTC; plus the xarray schema (dims, dtypes, CF attributes).

    Parameters
    ----------
    product : str
        ``smap``, ``era5_land``, ``gldas`` or ``c3s``.
    decoded : xr.Dataset
        Output of ``smflow.readers.read_granule(product, path)``.
    day : date-like
        The UTC day the granule was fetched for.
    domain_bounds : DomainBounds, DomainGrid or (lon_min, lat_min, lon_max, lat_max), optional
        Domain box (cell edges; ``smflow.domain.load_domain().bounds`` order for a tuple);
        default :func:`smflow.quality.suites.default_domain_bounds` (the same domain).

    Returns
    -------
    ValidationOutcome
        ``success`` False with a ``reason`` naming each failed expectation when the granule must
        be quarantined.
    """
    start = time.perf_counter()
    day = as_date(day)
    bounds = DomainBounds.coerce(domain_bounds) if domain_bounds is not None else default_domain_bounds()
    what = f"{product} granule {day.isoformat()}"
    if product not in GRANULE_THRESHOLDS:
        raise ValueError(
            f"No granule suite for product {product!r}; expected one of {sorted(GRANULE_THRESHOLDS)}"
        )
    problems = schema_mod.check_granule_schema(decoded, product)
    for rule in _flag_rules(product):
        if rule.variable not in decoded.variables:
            problems.append(schema_mod.SchemaProblem(
                rule.variable, "raw flag variable missing (DESIGN.md keeps it in decoded granules); "
                "flag consistency cannot be checked"))
    statistics: dict[str, Any] = {
        "kind": "granule",
        "product": product,
        "day": day.isoformat(),
        "source_file": decoded.attrs.get("source_file"),
        "domain_bounds": bounds.as_dict(),
        "domain_margin_deg": GRANULE_THRESHOLDS[product].domain_margin_deg,
    }
    try:
        table = granule_table(decoded, product, day=day, domain_bounds=bounds)
    except ValueError as exc:
        if not schema_mod.errors(problems):
            problems.append(schema_mod.SchemaProblem("<dataset>", str(exc)))
        statistics["total_seconds"] = time.perf_counter() - start
        return _outcome(what=what, suite_name=granule_suite_name(product), gx_result=None,
                        schema_problems=problems, statistics=statistics)
    table_seconds = time.perf_counter() - start
    suite = granule_suite(product, bounds)
    gx_result, validation_seconds = _run_suite(table, suite, asset_name=f"granule_{product}")

    sm = table["soil_moisture"].to_numpy()
    valid = np.isfinite(sm)
    n_obs = len(table)
    inside = table["in_domain"].to_numpy()
    statistics.update(
        {
            "n_observations": n_obs,
            "n_locations": int(decoded.sizes.get("location", 0)),
            "n_times": int(decoded.sizes.get("time", 0)),
            "n_valid": int(valid.sum()),
            "fill_fraction": float(1.0 - valid.mean()) if n_obs else 1.0,
            "n_quality_ok": int(table["quality_ok"].sum()),
            "soil_moisture_min": _float_or_none(sm[valid].min()) if valid.any() else None,
            "soil_moisture_max": _float_or_none(sm[valid].max()) if valid.any() else None,
            "soil_moisture_mean": _float_or_none(sm[valid].mean()) if valid.any() else None,
            "n_locations_in_domain": int(table.loc[inside, "location_id"].nunique()),
            "in_domain_fraction": float(inside.mean()) if n_obs else None,
            "time_min": _jsonable(table["time"].min()) if n_obs else None,
            "time_max": _jsonable(table["time"].max()) if n_obs else None,
            "table_seconds": table_seconds,
            "validation_seconds": validation_seconds,
            "total_seconds": time.perf_counter() - start,
        }
    )
    raw = table["value_as_read"].to_numpy()
    raw = raw[np.isfinite(raw)]
    if raw.size:
        statistics.update({"value_as_read_min": _float_or_none(raw.min()), "value_as_read_max": _float_or_none(raw.max())})
    outcome = _outcome(what=what, suite_name=suite.name, gx_result=gx_result,
                       schema_problems=problems, statistics=statistics)
    if "units" in outcome.failed_checks and raw.size:
        lo, hi = GRANULE_THRESHOLDS[product].soil_moisture_range
        hint = (f"values {raw.min():.3g}-{raw.max():.3g}, expected {lo:g}-{hi:g} m3 m-3 "
                f"(after the product's conversion from its source units): wrong units?")
        outcome = dataclasses.replace(outcome, reason=f"{outcome.reason}; {hint}")
    return outcome


# --------------------------------------------------------------------------------------------
# Daily product
# --------------------------------------------------------------------------------------------


def _land_mask(ds: "xr.Dataset", land_mask: Any) -> tuple[np.ndarray, str]:
    """Land mask ``(lat, lon)`` and where it came from.

    Order: the ``land_mask`` argument; a ``land_mask``/``land_binary_mask``/``land`` variable of
    the product; the domain grid's land mask when ``ds`` is on it; cells where any source had
    soil moisture (``source_soil_moisture``); all cells.
    """
    shape = (ds.sizes.get("lat", 0), ds.sizes.get("lon", 0))
    if land_mask is not None:
        values = land_mask.transpose("lat", "lon").values if hasattr(land_mask, "transpose") and hasattr(land_mask, "dims") else np.asarray(land_mask)
        values = np.asarray(values)
        if values.shape != shape:
            raise ValueError(f"land_mask has shape {values.shape}; the product grid is (lat, lon) = {shape}")
        return np.where(np.isnan(values.astype(float)), False, values.astype(bool)), "argument"
    for name in ("land_mask", "land_binary_mask", "land"):
        if name in ds.variables and set(ds[name].dims) == {"lat", "lon"}:
            values = np.asarray(ds[name].transpose("lat", "lon").values, dtype=float)
            return np.nan_to_num(values, nan=0.0) > 0, f"variable {name}"
    grid = _domain_grid()
    if grid is not None and "lat" in ds.variables and "lon" in ds.variables and grid.is_on_grid(ds):
        return grid.land_mask, f"domain {grid.name}"
    if "source_soil_moisture" in ds.variables and {"lat", "lon"} <= set(ds["source_soil_moisture"].dims):
        other = [d for d in ds["source_soil_moisture"].dims if d not in ("lat", "lon")]
        has_any = ds["source_soil_moisture"].notnull().any(dim=other) if other else ds["source_soil_moisture"].notnull()
        return np.asarray(has_any.transpose("lat", "lon").values, dtype=bool), "source_soil_moisture"
    return np.ones(shape, dtype=bool), "all cells"


def _domain_grid():
    try:
        from smflow.domain import load_domain

        return load_domain()
    except (ImportError, FileNotFoundError):  # pragma: no cover - the domain ships with smflow
        return None


def _cell_values(da: "xr.DataArray") -> np.ndarray:
    """``da`` on ``(lat, lon)`` (first time step), raveled."""
    if "time" in da.dims:
        da = da.isel(time=0)
    extra = [d for d in da.dims if d not in ("lat", "lon")]
    if extra:
        raise ValueError(f"{da.name}: unexpected dims {extra}")
    return np.asarray(da.transpose("lat", "lon").values).ravel()


def product_table(
    ds: "xr.Dataset",
    *,
    land_mask: Any = None,
    thresholds: ProductThresholds | None = None,
) -> pd.DataFrame:
    """One row per grid cell of a daily product.

    Columns: ``lat``, ``lon``, ``land`` (bool), ``product_date`` (``YYYY-MM-DD`` of the first
    ``time``), the cell variables of :data:`smflow.quality.suites.CELL_VARIABLES` (``tc_resolved`` as
    bool) and, per source, ``{variable}__{source}`` for
    :data:`smflow.quality.suites.PER_SOURCE_VARIABLES`. Variables absent from ``ds`` are absent from the
    table (their expectations then fail with "could not be checked").
    """
    th = thresholds or PRODUCT_THRESHOLDS
    if "lat" not in ds.dims or "lon" not in ds.dims:
        raise ValueError(f"product has dims {tuple(ds.dims)}; expected lat and lon dimensions")
    lat2d, lon2d = np.meshgrid(np.asarray(ds["lat"].values, dtype=float), np.asarray(ds["lon"].values, dtype=float), indexing="ij")
    land, _ = _land_mask(ds, land_mask)
    columns: dict[str, Any] = {"lat": lat2d.ravel(), "lon": lon2d.ravel(), "land": land.ravel()}
    date = None
    if "time" in ds.variables and ds["time"].size and np.issubdtype(ds["time"].dtype, np.datetime64):
        date = pd.Timestamp(np.asarray(ds["time"].values).ravel()[0]).date().isoformat()
    columns["product_date"] = np.full(lat2d.size, date, dtype=object)
    for name in CELL_VARIABLES:
        if name not in ds.variables:
            continue
        values = _cell_values(ds[name])
        if name == "tc_resolved":
            values = np.nan_to_num(values.astype(float), nan=0.0) > 0
        elif name != "merge_method":
            values = values.astype("float64")
        columns[name] = values
    sources = [str(s) for s in np.asarray(ds["source"].values).ravel()] if "source" in ds.variables else []
    for name in PER_SOURCE_VARIABLES:
        if name not in ds.variables or "source" not in ds[name].dims:
            continue
        for i, source in enumerate(sources):
            if source in th.sources:
                columns[source_column(name, source)] = _cell_values(ds[name].isel(source=i)).astype("float64")
    return pd.DataFrame(columns)


def validate_product(
    ds: "xr.Dataset",
    day: Any,
    *,
    land_mask: Any = None,
    thresholds: ProductThresholds | None = None,
    cf_required: bool = False,
) -> ValidationOutcome:
    """Validate one daily product against the product suite and the product schema.

    Checks (thresholds in :data:`smflow.quality.suites.PRODUCT_THRESHOLDS`): ``soil_moisture`` and
    ``source_soil_moisture`` in ``[0, 0.7]`` m3 m-3; error variances >= 0; ``snr_db`` present and
    finite where TC resolved; ``tc_sample_size`` >= 0; ``precipitation_amount`` in ``[0, 500]``
    kg m-2 and present on land cells with soil moisture; land coverage of ``soil_moisture``;
    ``time`` on ``day``; plus the CF schema (dims, dtypes, attributes, lineage attributes).

    Parameters
    ----------
    ds : xr.Dataset
        Daily product dataset (DESIGN.md), dims ``time=1, source=3, lat, lon``.
    day : date-like
        The product day.
    land_mask : array-like or xr.DataArray (lat, lon), optional
        Land cells of the product grid; default: a land variable of ``ds`` if any, else the land
        mask of ``smflow.domain.load_domain()`` when ``ds`` is on that grid, else the cells where
        any source has soil moisture (``statistics["land_mask_source"]`` tells which).
    thresholds : ProductThresholds, optional
        Default :data:`smflow.quality.suites.PRODUCT_THRESHOLDS`.
    cf_required : bool
        Missing CF metadata and lineage attributes fail the validation (for a dataset about to
        be published) instead of being recorded as warnings (the in-memory daily product).
    """
    start = time.perf_counter()
    th = thresholds or PRODUCT_THRESHOLDS
    day = as_date(day)
    what = f"daily product {day.isoformat()}"
    problems = schema_mod.check_product_schema(ds, th, cf_required=cf_required)
    lineage = schema_mod.product_lineage(ds)
    statistics: dict[str, Any] = {
        "kind": "product",
        "day": day.isoformat(),
        "missing_inputs": lineage.get("missing_inputs"),
        "input_granules": lineage.get("input_granules"),
        "tc_merging_model": lineage.get("tc_merging_model"),
        "sm2rain_model": lineage.get("sm2rain_model"),
    }
    try:
        table = product_table(ds, land_mask=land_mask, thresholds=th)
        _, land_source = _land_mask(ds, land_mask)
    except ValueError as exc:
        problems.append(schema_mod.SchemaProblem("<dataset>", str(exc)))
        statistics["total_seconds"] = time.perf_counter() - start
        return _outcome(what=what, suite_name=PRODUCT_SUITE_NAME, gx_result=None,
                        schema_problems=problems, statistics=statistics)
    table_seconds = time.perf_counter() - start
    suite = product_suite(th, day=day.isoformat())
    gx_result, validation_seconds = _run_suite(table, suite, asset_name="daily_product")

    land = table["land"].to_numpy()
    sm = table["soil_moisture"].to_numpy(dtype=float) if "soil_moisture" in table else np.full(len(table), np.nan)
    precip = table["precipitation_amount"].to_numpy(dtype=float) if "precipitation_amount" in table else np.full(len(table), np.nan)
    valid_sm = np.isfinite(sm)
    statistics.update(
        {
            "n_cells": len(table),
            "n_land_cells": int(land.sum()),
            "land_mask_source": land_source,
            "land_coverage": float(valid_sm[land].mean()) if land.any() else None,
            "n_soil_moisture": int(valid_sm.sum()),
            "soil_moisture_min": _float_or_none(sm[valid_sm].min()) if valid_sm.any() else None,
            "soil_moisture_max": _float_or_none(sm[valid_sm].max()) if valid_sm.any() else None,
            "precipitation_max": _float_or_none(np.nanmax(precip)) if np.isfinite(precip).any() else None,
            "n_tc_resolved": int(table["tc_resolved"].sum()) if "tc_resolved" in table else None,
            "table_seconds": table_seconds,
            "validation_seconds": validation_seconds,
            "total_seconds": time.perf_counter() - start,
        }
    )
    return _outcome(what=what, suite_name=suite.name, gx_result=gx_result,
                    schema_problems=problems, statistics=statistics)


# --------------------------------------------------------------------------------------------
# Stored results: s3://{store_bucket}/validation/{kind}/{name}/{YYYYMMDD}.json
# --------------------------------------------------------------------------------------------

VALIDATION_PREFIX = "validation"
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _check_name(what: str, value: str) -> str:
    if not _NAME.match(value or ""):
        raise ValueError(f"{what} {value!r} must be a plain name (letters, digits, '_', '-', '.') to be used in an S3 key")
    return value


def _read_json(s3, bucket: str, key: str) -> dict | None:
    from botocore.exceptions import ClientError

    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None
        raise
    return json.loads(body)


def _put_json(s3, bucket: str, key: str, document: dict) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(_jsonable(document), indent=1, allow_nan=False).encode("utf-8"),
        ContentType="application/json",
    )


def validation_key(kind: str, name: str, day: Any) -> str:
    """``validation/{kind}/{name}/{YYYYMMDD}.json`` (key in the store bucket)."""
    return f"{VALIDATION_PREFIX}/{_check_name('kind', kind)}/{_check_name('name', name)}/{as_date(day):%Y%m%d}.json"


def store_validation_result(
    s3,
    settings: "Settings",
    kind: str,
    name: str,
    day: Any,
    outcome: ValidationOutcome | dict,
) -> str:
    """Keep a validation outcome at ``s3://{store_bucket}/validation/{kind}/{name}/{YYYYMMDD}.json``.

    :param s3: boto3 S3 client (``smflow.s3.client(settings)``).
    :param settings: deployment settings (``store_bucket``).
    :param kind: ``granule`` or ``product``.
    :param name: input product name (``smap``, ...) or the output product's name (``daily``).
    :param day: the validated day.
    :param outcome: a :class:`ValidationOutcome` or its ``to_dict()``.
    :return: the key written; a re-run of the day replaces it.
    """
    from smflow.s3 import ensure_bucket

    if isinstance(outcome, ValidationOutcome):
        document = outcome.to_dict()
    elif isinstance(outcome, dict) and "reason" in outcome:
        document = ValidationOutcome.from_dict(outcome).to_dict()
    else:
        raise TypeError(f"outcome must be a ValidationOutcome or its to_dict(); got {type(outcome).__name__}")
    key = validation_key(kind, name, day)
    ensure_bucket(s3, settings.store_bucket)
    _put_json(s3, settings.store_bucket, key,
              {"kind": kind, "name": name, "day": as_date(day).isoformat(), "stored_at": _utc_now(), **document})
    return key


def load_validation_result(s3, settings: "Settings", kind: str, name: str, day: Any) -> dict[str, Any] | None:
    """The document :func:`store_validation_result` wrote, or None if there is none."""
    return _read_json(s3, settings.store_bucket, validation_key(kind, name, day))


__all__ = [
    "ValidationOutcome",
    "load_validation_result",
    "store_validation_result",
    "validation_key",
    "as_day",
    "granule_table",
    "product_table",
    "validate_granule",
    "validate_product",
    "warm_up",
]
