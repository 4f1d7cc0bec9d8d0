"""Readers of the input products: CF time-series layouts, product handlers, granules.

``read_product`` (a product's decoded series from its cell files), ``read_granule`` (one landing
granule, decoded), ``daily_mean`` and :class:`GranuleError` are the entry points; the layout
readers ``read_orthogonal``, ``read_contiguous_ragged``, ``read_indexed_ragged`` and the native
subset writer ``subset_files`` sit below them.
"""

from smflow.readers.granule import GranuleError, daily_mean, daily_means, read_granule
from smflow.readers.decode import decode_product, read_product
from smflow.readers.timeseries import (
    CellFile,
    cell_files,
    default_source_dir,
    read_contiguous_ragged,
    read_indexed_ragged,
    read_layout,
    read_orthogonal,
    subset_files,
)

__all__ = [
    "CellFile",
    "GranuleError",
    "cell_files",
    "daily_mean",
    "daily_means",
    "decode_product",
    "default_source_dir",
    "read_contiguous_ragged",
    "read_granule",
    "read_indexed_ragged",
    "read_layout",
    "read_orthogonal",
    "read_product",
    "subset_files",
]
