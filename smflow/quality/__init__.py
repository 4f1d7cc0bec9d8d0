"""Data quality: Great Expectations suites per input product and for the daily product,
xarray schema checks, quarantine of failing granules and stored validation results.

Importing this package is cheap (no Great Expectations, no pandas): the names below load their
module on first use, so DAG files may import it at parse time.

- :func:`validate_granule`, :func:`validate_product`, :class:`ValidationOutcome`,
  :func:`store_validation_result`, :func:`load_validation_result` (``smflow.quality.validate``)
- :func:`quarantine_failure` (quarantine + log + the task's result record), :func:`quarantine_granule`,
  :func:`list_quarantine` (``smflow.quality.quarantine``)
- :func:`check_granule_schema`, :func:`check_product_schema` (``smflow.quality.schema``)
- thresholds and suites: ``smflow.quality.suites``
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

# GX logs one INFO line per internal function at import ("Skipping registering function ..."):
# hundreds of lines in every task log that uses it.
logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)

_EXPORTS = {
    "ValidationOutcome": "smflow.quality.validate",
    "granule_table": "smflow.quality.validate",
    "product_table": "smflow.quality.validate",
    "validate_granule": "smflow.quality.validate",
    "validate_product": "smflow.quality.validate",
    "warm_up": "smflow.quality.validate",
    "quarantine_failure": "smflow.quality.quarantine",
    "quarantine_granule": "smflow.quality.quarantine",
    "list_quarantine": "smflow.quality.quarantine",
    "store_validation_result": "smflow.quality.validate",
    "load_validation_result": "smflow.quality.validate",
    "check_granule_schema": "smflow.quality.schema",
    "check_product_schema": "smflow.quality.schema",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'quality' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
