"""Read ``smflow/catalog/products/*.yaml`` into :class:`~smflow.catalog.model.CatalogEntry` records.

The YAML is checked strictly (unknown or missing keys, a file name that is not the entry's name,
a name or alias used twice are errors naming the file and the fix), so a typo in a new entry
fails at import instead of silently dropping a fact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from smflow.catalog.model import (
    ArchiveSource, CatalogEntry, FlagRule, GranuleThresholds, NativeGrid, NativeProduct, Product, RegridSpec,
    VariableFacts,
)

#: Folder of the catalogue entries, one YAML file per product.
PRODUCTS_DIR = Path(__file__).resolve().parent / "products"

_ENTRY_KEYS = {"name", "title", "aliases", "licence_class", "licence", "attribution", "timeseries",
               "native", "regrid", "qc"}
_OPTIONAL_ENTRY_KEYS = {"aliases", "timeseries", "native", "regrid", "qc", "archive"}
_TIMESERIES_KEYS = {"folder", "cell_pattern", "cells", "layout", "variable", "output_name",
                    "source_units", "units", "conversion_factor", "valid_range", "fill_value",
                    "flags", "auxiliary", "keep_variables", "nominal_time", "native_resolution_m",
                    "standard_name", "long_name"}
_TIMESERIES_OPTIONAL = {"flags", "auxiliary", "keep_variables", "nominal_time", "standard_name",
                        "long_name", "fill_value", "valid_range", "conversion_factor"}
_NATIVE_KEYS = {"handler", "title", "patterns", "file_format", "variables", "flags", "plausible",
                "options"}
_NATIVE_OPTIONAL = {"title", "variables", "flags", "plausible", "options"}


class CatalogError(ValueError):
    """A catalogue entry is malformed; the message names the file and what to fix."""


def _freeze(value: Any) -> Any:
    """Lists -> tuples (recursively), so entries hold no mutable sequences."""
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return {k: _freeze(v) for k, v in value.items()}
    return value


def _check_keys(where: str, section: Mapping[str, Any], allowed: set[str], optional: set[str]
                ) -> None:
    if not isinstance(section, Mapping):
        raise CatalogError(f"{where}: expected a mapping, got {type(section).__name__}.")
    unknown = set(section) - allowed
    missing = allowed - optional - set(section)
    if unknown:
        raise CatalogError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)} "
                           "(see docs/catalog.md).")
    if missing:
        raise CatalogError(f"{where}: missing key(s) {sorted(missing)} (see docs/catalog.md).")


def _flags(where: str, items: Iterable[Mapping[str, Any]]) -> tuple[FlagRule, ...]:
    rules = []
    for k, item in enumerate(items or ()):
        _check_keys(f"{where}.flags[{k}]", item, {"variable", "test", "value", "values", "meaning"},
                    {"value", "values", "meaning"})
        if item["test"] not in ("bits_clear", "equals", "in_set"):
            raise CatalogError(f"{where}.flags[{k}]: test {item['test']!r} is not one of "
                               "bits_clear, equals, in_set.")
        rules.append(FlagRule(item["variable"], item["test"], value=int(item.get("value", 0)),
                              values=tuple(int(v) for v in item.get("values", ())),
                              meaning=item.get("meaning", "")))
    return tuple(rules)


def _variable(where: str, item: Mapping[str, Any]) -> VariableFacts:
    _check_keys(where, item, {"source", "name", "units", "scale", "offset", "fills", "valid_raw",
                              "standard_name", "long_name"},
                {"scale", "offset", "fills", "valid_raw", "standard_name", "long_name"})
    valid = item.get("valid_raw")
    return VariableFacts(
        source=item["source"], name=item["name"], units=str(item["units"]),
        scale=float(item.get("scale", 1.0)), offset=float(item.get("offset", 0.0)),
        fills=tuple(item.get("fills", ())), valid_raw=tuple(valid) if valid is not None else None,
        standard_name=item.get("standard_name"), long_name=item.get("long_name", ""))


def _timeseries(where: str, name: str, ts: Mapping[str, Any], common: dict[str, Any]) -> Product:
    _check_keys(where, ts, _TIMESERIES_KEYS, _TIMESERIES_OPTIONAL)
    valid = ts.get("valid_range")
    fill = ts.get("fill_value")
    return Product(
        name=name, folder=ts["folder"], cells=tuple(str(c) for c in ts["cells"]),
        layout=ts["layout"], variable=ts["variable"], output_name=ts["output_name"],
        source_units=ts["source_units"], units=ts["units"],
        conversion_factor=float(ts.get("conversion_factor", 1.0)),
        valid_range=tuple(float(v) for v in valid) if valid is not None else None,
        fill_value=float(fill) if fill is not None else None,
        flag_rules=_flags(where, ts.get("flags")),
        auxiliary=MappingProxyType(dict(ts.get("auxiliary") or {})),
        keep_variables=tuple(ts.get("keep_variables") or ()),
        nominal_time=ts.get("nominal_time", ""),
        native_resolution_m=float(ts["native_resolution_m"]),
        standard_name=ts.get("standard_name", "volume_fraction_of_condensed_water_in_soil"),
        long_name=ts.get("long_name", "volumetric soil moisture"),
        cell_pattern=ts["cell_pattern"],
        **common,
    )


def _cells(p: Product, common: dict[str, Any]) -> NativeProduct:
    """The native-reader record of a product's time-series cell files."""
    return NativeProduct(
        name=p.name, title=f"{p.title}, time-series cell file", handler="CellFileHandler",
        patterns=(p.cell_pattern,), file_format=f"netCDF-4 CF timeSeries, {p.layout} layout",
        timeseries_product=p, licence=common["licence"], attribution=common["attribution"],
        redistributable=common["redistributable"])


def _native(where: str, name: str, nat: Mapping[str, Any], title: str, common: dict[str, Any],
            cells: NativeProduct | None) -> NativeProduct:
    _check_keys(where, nat, _NATIVE_KEYS, _NATIVE_OPTIONAL)
    plausible = {k: tuple(float(x) for x in v) for k, v in (nat.get("plausible") or {}).items()}
    return NativeProduct(
        name=name, title=nat.get("title", title), handler=nat["handler"],
        patterns=tuple(nat["patterns"]), file_format=nat["file_format"],
        variables=tuple(_variable(f"{where}.variables[{k}]", v)
                        for k, v in enumerate(nat.get("variables") or ())),
        flag_rules=_flags(where, nat.get("flags")),
        plausible=MappingProxyType(plausible),
        options=MappingProxyType(_freeze(dict(nat.get("options") or {}))),
        cells=cells, licence=common["licence"], attribution=common["attribution"],
        redistributable=common["redistributable"])


def parse_entry(data: Mapping[str, Any], source_file: str = "<memory>") -> CatalogEntry:
    """One :class:`CatalogEntry` from the mapping of a YAML file.

    Raises
    ------
    CatalogError
        Unknown or missing keys, an unknown licence class, QC or regrid method.
    """
    where = source_file
    _check_keys(where, data, _ENTRY_KEYS | {"archive"}, _OPTIONAL_ENTRY_KEYS)
    name = data["name"]
    if data["licence_class"] not in ("open", "internal"):
        raise CatalogError(f"{where}: licence_class must be 'open' or 'internal', got "
                           f"{data['licence_class']!r}.")
    common = {"licence": data["licence"], "attribution": data["attribution"],
              "redistributable": data["licence_class"] == "open"}
    ts = None
    if data.get("timeseries") is not None:
        ts = _timeseries(f"{where}: timeseries", name, data["timeseries"],
                         {**common, "title": data["title"]})
    cells = _cells(ts, common) if ts is not None else None
    native = cells
    if data.get("native") is not None:
        native = _native(f"{where}: native", name, data["native"], data["title"], common, cells)
    regrid = None
    if data.get("regrid") is not None:
        r = data["regrid"]
        _check_keys(f"{where}: regrid", r, {"method", "radius_m", "rationale"},
                    {"radius_m", "rationale"})
        if r["method"] not in ("nearest", "bilinear", "mean"):
            raise CatalogError(f"{where}: regrid.method {r['method']!r} is not nearest, bilinear "
                               "or mean.")
        regrid = RegridSpec(r["method"], float(r["radius_m"]) if r.get("radius_m") else None,
                            r.get("rationale", ""))
    qc = data.get("qc") or {}
    _check_keys(f"{where}: qc", qc, {"granule", "native_family"}, {"granule", "native_family"})
    granule = None
    if qc.get("granule") is not None:
        g = qc["granule"]
        _check_keys(f"{where}: qc.granule", g,
                    set(GranuleThresholds.__dataclass_fields__) - {"product"},
                    {"min_in_domain_fraction", "native_grid", "rationale"})
        grid = None
        if g.get("native_grid") is not None:
            n = g["native_grid"]
            _check_keys(f"{where}: qc.granule.native_grid", n, set(NativeGrid.__dataclass_fields__), set())
            grid = NativeGrid(name=str(n["name"]), crs=str(n["crs"]), cell_size=tuple(map(float, n["cell_size"])),
                              first_centre=tuple(map(float, n["first_centre"])))
        granule = GranuleThresholds(product=name, **{
            **g, "soil_moisture_range": tuple(g["soil_moisture_range"]), "native_grid": grid})
    archive = []
    for k, a in enumerate(data.get("archive") or ()):
        _check_keys(f"{where}: archive[{k}]", a, {"client", "collection", "order"}, {"order"})
        archive.append(ArchiveSource(a["client"], str(a["collection"]), a.get("order", name)))
    return CatalogEntry(
        name=name, title=data["title"], licence_class=data["licence_class"],
        licence=data["licence"], attribution=data["attribution"],
        aliases=tuple(data.get("aliases") or ()), timeseries=ts, native=native, regrid=regrid,
        granule_qc=granule, native_qc_family=qc.get("native_family"), archive=tuple(archive),
        source_file=source_file)


def load_entries(directory: str | Path = PRODUCTS_DIR) -> dict[str, CatalogEntry]:
    """Every ``<name>.yaml`` of ``directory``, by name (in file-name order).

    Raises
    ------
    CatalogError
        A malformed entry, a file not named after its entry, or a name/alias used twice.
    """
    directory = Path(directory)
    entries: dict[str, CatalogEntry] = {}
    owner: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        with path.open(encoding="utf-8") as f:
            data = yaml.safe_load(f)
        entry = parse_entry(data, source_file=f"smflow/catalog/products/{path.name}")
        if path.stem != entry.name:
            raise CatalogError(f"{path}: the file must be named after its entry: "
                               f"{entry.name}.yaml.")
        for n in (entry.name, *entry.aliases):
            if n in owner:
                raise CatalogError(f"{path}: name {n!r} is already used by {owner[n]}; one name "
                                   "per product.")
            owner[n] = path.name
        entries[entry.name] = entry
    if not entries:
        raise CatalogError(f"No catalogue entries in {directory}; the package data is missing "
                           "(reinstall smflow).")
    return entries
