"""The product catalogue: every fact about every product, one YAML entry per product.

``smflow/catalog/products/<name>.yaml`` says, for one product: its name (one name, former names
as deprecated ``aliases``), title, licence class, licence and attribution; how its time-series
cell files are decoded (``timeseries``: folder, layout, variable, units, conversion, valid range,
fill, flag rules); how its native files are read (``native``: reader class, file-name patterns,
variables with scale / offset / fills, flag rules, plausible ranges, options); its default
regridding (``regrid``); its quality thresholds (``qc``); and its provider archive
(``archive``). The entries are loaded once, as frozen dataclasses (:mod:`smflow.catalog.model`),
the way satpy keeps a reader's facts in its reader YAML.

The registries the rest of the code reads are views of it: :data:`smflow.products.PRODUCTS`
(time-series products), :data:`smflow.readers.native.facts.NATIVE_PRODUCTS`,
:data:`smflow.regrid.REGRID_METHODS`, :data:`smflow.quality.suites.GRANULE_THRESHOLDS`,
:data:`smflow.quality.native.NATIVE_FIELD_THRESHOLDS` and
:data:`smflow.archive.reconcile.ARCHIVE_SOURCES`. Pipeline product sets (inputs, merged parents,
reference) come from ``config/daily_pipelines.json`` through :func:`pipeline`.

Adding a product: ``docs/catalog.md``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping
from types import MappingProxyType

from smflow.catalog.load import CatalogError, load_entries
from smflow.catalog.model import (
    ArchiveSource, CatalogEntry, FlagRule, GranuleThresholds, NativeProduct, Product, RegridSpec,
    VariableFacts,
)
from smflow.catalog.pipelines import Pipeline, pipeline, pipelines


@functools.lru_cache(maxsize=1)
def _entries() -> Mapping[str, CatalogEntry]:
    return MappingProxyType(load_entries())


@functools.lru_cache(maxsize=1)
def _aliases() -> Mapping[str, str]:
    return MappingProxyType({a: e.name for e in _entries().values() for a in e.aliases})


def entries() -> Mapping[str, CatalogEntry]:
    """Every catalogue entry, by product name (read-only)."""
    return _entries()


def canonical_name(name: str) -> str:
    """The product's one name: ``name`` itself, or the entry a former name (alias) stands for.

    A former name gives a :class:`DeprecationWarning`; an unknown name is returned unchanged
    (the caller's lookup then says it is unknown).
    """
    if name in _entries():
        return name
    new = _aliases().get(name)
    if new is None:
        return name
    warnings.warn(f"Product name {name!r} is deprecated; use {new!r} (smflow/catalog/products/"
                  f"{new}.yaml).", DeprecationWarning, stacklevel=3)
    return new


def entry(name: str) -> CatalogEntry:
    """The catalogue entry of product ``name`` (former names accepted, with a warning).

    Raises
    ------
    KeyError
        Unknown product; the message lists the known ones and says how to add one.
    """
    try:
        return _entries()[canonical_name(name)]
    except KeyError:
        raise KeyError(f"Unknown product {name!r}; known products: {sorted(_entries())}. Add "
                       "smflow/catalog/products/<name>.yaml to define one (docs/catalog.md)."
                       ) from None


def timeseries_products() -> dict[str, Product]:
    """The time-series (cell-file) record of every product that has one, by name."""
    return {n: e.timeseries for n, e in _entries().items() if e.timeseries is not None}


def native_products() -> dict[str, NativeProduct]:
    """The native-file record of every product that has one, by name."""
    return {n: e.native for n, e in _entries().items() if e.native is not None}


def merged_parents(name: str = "daily_soil_moisture") -> tuple[str, ...]:
    """Products merged by pipeline ``name``, in ``source`` order (``("smap", "era5_land",
    "gldas")`` for the main pipeline)."""
    return pipeline(name).parents


__all__ = [
    "ArchiveSource", "CatalogEntry", "CatalogError", "FlagRule", "GranuleThresholds", "NativeProduct",
    "Pipeline", "Product", "RegridSpec", "VariableFacts", "canonical_name", "entries", "entry",
    "merged_parents", "native_products", "pipeline", "pipelines", "timeseries_products",
]
