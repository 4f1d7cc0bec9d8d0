"""Data quality: Great Expectations suites per input product and for the daily product,
xarray schema checks, quarantine of failing granules and stored validation results.

Importing this package is cheap (no Great Expectations, no pandas): the names below load their
module on first use, so DAG files may import it at parse time.

- :func:`validate_granule`, :func:`validate_product`, :class:`ValidationOutcome`,
  :func:`store_validation_result`, :func:`load_validation_result` (``quality.validate``)
- :func:`quarantine_granule`, :func:`list_quarantine` (``quality.quarantine``)
- :func:`check_granule_schema`, :func:`check_product_schema` (``quality.schema``)
- thresholds and suites: ``quality.suites``
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

# GX logs one INFO line per internal function at import ("Skipping registering function ..."):
# hundreds of lines in every task log that uses it.
logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)

_EXPORTS = {
    "ValidationOutcome": "quality.validate",
    "granule_table": "quality.validate",
    "product_table": "quality.validate",
    "validate_granule": "quality.validate",
    "validate_product": "quality.validate",
    "warm_up": "quality.validate",
    "quarantine_granule": "quality.quarantine",
    "list_quarantine": "quality.quarantine",
    "store_validation_result": "quality.validate",
    "load_validation_result": "quality.validate",
    "check_granule_schema": "quality.schema",
    "check_product_schema": "quality.schema",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'quality' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
