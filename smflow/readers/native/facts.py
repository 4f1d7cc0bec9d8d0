"""Native-format products: the ``native`` part of the catalogue entries, by name.

Every fact (file-name patterns, variables with scale factors and fills, valid and plausible
ranges, flag rules, reader options, licence) lives in the product's catalogue entry
(``smflow/catalog/products/<name>.yaml``, see ``docs/catalog.md``); the handlers read nothing
about a product from anywhere else. The values come from the product documentation cited in
each entry and were checked against the real files described in
``../shared/data/real/MANIFEST.md``.

A product with cell files and a native format (SMAP, GLDAS, SMOS L3) has one record whose
:meth:`~smflow.catalog.model.NativeProduct.for_path` gives the cell-file reader for a cell file;
a product with only cell files (ERA5-Land, C3S, ASCAT H119, ...) is read by the cell-file
handler directly. Either way the file's ``native_product`` attribute is the product's one name.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from smflow.catalog import canonical_name, native_products
from smflow.catalog.model import FlagRule, NativeProduct, VariableFacts

#: Every native product, by name, in the order :func:`product_for_path` tries their patterns.
NATIVE_PRODUCTS: Mapping[str, NativeProduct] = MappingProxyType(native_products())


def get_native_product(product: str | NativeProduct) -> NativeProduct:
    """The :class:`NativeProduct` called ``product`` (a NativeProduct is returned as is).

    Former names (``smap_spl3smp``, ``smap_cells``, ``gldas_noah21``, ...) are accepted with a
    :class:`DeprecationWarning`; a former cell-file name (``<product>_cells``) gives the cell-file
    record.

    Raises
    ------
    KeyError
        Unknown product; the message lists the known ones.
    """
    if isinstance(product, NativeProduct):
        return product
    name = canonical_name(product)
    try:
        facts = NATIVE_PRODUCTS[name]
    except KeyError:
        raise KeyError(f"Unknown native product {product!r}; known: {sorted(NATIVE_PRODUCTS)}. "
                       "Add smflow/catalog/products/<name>.yaml (docs/catalog.md).") from None
    if product.endswith("_cells") and facts.cells is not None:
        return facts.cells
    return facts


def product_for_path(path: str | Path) -> NativeProduct | None:
    """The native record that reads ``path`` (by file-name pattern), None if none matches."""
    for p in NATIVE_PRODUCTS.values():
        if p.matches(path):
            return p.for_path(path)
    return None


__all__ = ["NATIVE_PRODUCTS", "FlagRule", "NativeProduct", "VariableFacts",
           "get_native_product", "product_for_path"]
