"""Time-series products: the ``timeseries`` part of the catalogue entries, by name.

Every fact lives in the product's catalogue entry (``smflow/catalog/products/<name>.yaml``,
see :mod:`smflow.catalog` and ``docs/catalog.md``); this module is the view the time-series path
reads (readers, landing zone, ingest, granule checks): one frozen :class:`Product` per product
with cell files, and :func:`get_product`. The values were checked against the real files in
``../shared/data/real/hawaii_timeseries`` (MANIFEST section 3) and the product documentation
cited in each entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from smflow.catalog import canonical_name, merged_parents, timeseries_products
from smflow.catalog.model import FlagRule, FlagTest, Layout, Product

#: Source repository of every hawaii_timeseries cell file (MANIFEST section 3).
QA4SM_TESTDATA = "awst-austria/qa4sm-testdata @ 4b4799e58fce"

#: Every time-series product, by name (a read-only view of the catalogue).
PRODUCTS: Mapping[str, Product] = MappingProxyType(timeseries_products())

#: Products merged into the daily product, in ``source`` order (``config/daily_pipelines.json``,
#: pipeline ``daily_soil_moisture``, key ``parents``).
MERGED_TRIPLET: tuple[str, str, str] = merged_parents("daily_soil_moisture")  # type: ignore[assignment]


def get_product(product: str | Product) -> Product:
    """The :class:`Product` called ``product`` (a Product is returned as is).

    Former names (catalogue ``aliases``) are accepted with a :class:`DeprecationWarning`.

    Raises
    ------
    KeyError
        Not a time-series product; the message lists the known ones.
    """
    if isinstance(product, Product):
        return product
    name = canonical_name(product)
    try:
        return PRODUCTS[name]
    except KeyError:
        raise KeyError(
            f"Unknown product {product!r}; known time-series products are {sorted(PRODUCTS)} "
            "(a new one is a catalogue entry with a 'timeseries' section: docs/catalog.md)."
        ) from None


__all__ = ["FlagRule", "FlagTest", "Layout", "MERGED_TRIPLET", "PRODUCTS", "Product",
           "QA4SM_TESTDATA", "get_product"]
