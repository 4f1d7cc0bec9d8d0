"""Quarantine of failing granules, and the stored validation results.

Layout (docs/DESIGN.md), all in ``settings.store_bucket``:

* ``quarantine/{product}/{YYYYMMDD}/{filename}``: a copy of the raw landing object that failed;
* ``quarantine/{product}/{YYYYMMDD}/{filename}.validation.json``: why (reason, suite, statistics,
  GX result, source URI, UTC time);
* ``validation/{kind}/{name}/{YYYYMMDD}.json``: every validation outcome, passed or failed
  (``kind`` = ``granule`` or ``product``), written by
  :func:`smflow.quality.validate.store_validation_result` (re-exported here).

The landing original is never deleted or modified; quarantining again writes the same keys.
Nothing here imports Great Expectations.
"""

from __future__ import annotations

import logging
import posixpath
from typing import Any

from smflow.config import Settings
from smflow.dates import as_date
from smflow.s3 import ensure_bucket, is_missing, list_keys

from smflow.quality.validate import (  # noqa: F401 - stored results are re-exported here too
    ValidationOutcome,
    load_validation_result,
    store_validation_result,
    validation_key,
)
from smflow.quality.validate import _check_name, _put_json, _read_json, _utc_now

log = logging.getLogger(__name__)

QUARANTINE_PREFIX = "quarantine"
SIDECAR_SUFFIX = ".validation.json"


def quarantine_key(product: str, day: Any, filename: str) -> str:
    """``quarantine/{product}/{YYYYMMDD}/{filename}`` (key in the store bucket)."""
    return f"{QUARANTINE_PREFIX}/{_check_name('product', product)}/{as_date(day):%Y%m%d}/{filename}"


def _outcome_document(outcome_or_error: ValidationOutcome | BaseException | dict) -> dict[str, Any]:
    if isinstance(outcome_or_error, ValidationOutcome):
        return outcome_or_error.to_dict()
    if isinstance(outcome_or_error, BaseException):
        return {
            "success": False,
            "reason": str(outcome_or_error) or type(outcome_or_error).__name__,
            "error_type": type(outcome_or_error).__name__,
            "suite_name": None,
            "failed_checks": ["unreadable"],
            "schema_problems": [],
            "statistics": {},
            "result": {},
        }
    if isinstance(outcome_or_error, dict) and "reason" in outcome_or_error:
        return ValidationOutcome.from_dict(outcome_or_error).to_dict()
    raise TypeError(
        f"outcome_or_error must be a ValidationOutcome, an exception or ValidationOutcome.to_dict(); "
        f"got {type(outcome_or_error).__name__}"
    )


def quarantine_granule(
    s3,
    settings: Settings,
    *,
    product: str,
    day: Any,
    source_bucket: str,
    source_key: str,
    outcome_or_error: ValidationOutcome | BaseException | dict,
) -> str:
    """Copy a failing landing object to the quarantine prefix and write why beside it.

    :param s3: boto3 S3 client (``smflow.s3.client(settings)``).
    :param settings: deployment settings; the quarantine lives in ``settings.store_bucket``.
    :param product: input product name (``smap``, ``era5_land``, ``gldas``, ``c3s``), or
        ``daily_product`` for a failing output product.
    :param day: the UTC day the granule was fetched for (date, datetime or ``YYYY-MM-DD``).
    :param source_bucket: bucket of the raw object (normally ``settings.landing_bucket``).
    :param source_key: key of the raw object; its base name becomes the quarantine file name.
    :param outcome_or_error: the failed :class:`~smflow.quality.validate.ValidationOutcome` (or its
        ``to_dict()``), or the exception raised while reading the file (e.g.
        ``smflow.readers.GranuleError``): its message becomes the reason.
    :return: key of the quarantined copy in ``settings.store_bucket``; the sidecar is that key
        + ``.validation.json``.
    :raises FileNotFoundError: when the source object does not exist (a missing input is recorded
        in the product's ``missing_inputs``, not quarantined).

    The source object is never deleted. A re-run writes the same two keys (the sidecar keeps
    ``first_quarantined_at`` of the first run).
    """
    from botocore.exceptions import ClientError

    filename = posixpath.basename(source_key)
    if not filename:
        raise ValueError(f"source_key {source_key!r} names no file")
    key = quarantine_key(product, day, filename)
    source_uri = f"s3://{source_bucket}/{source_key}"
    try:
        head = s3.head_object(Bucket=source_bucket, Key=source_key)
    except ClientError as exc:
        if is_missing(exc):
            raise FileNotFoundError(
                f"{source_uri} does not exist: there is nothing to quarantine; record the product "
                "as a missing input instead"
            ) from exc
        raise
    bucket = settings.store_bucket
    ensure_bucket(s3, bucket)
    s3.copy_object(
        Bucket=bucket,
        Key=key,
        CopySource={"Bucket": source_bucket, "Key": source_key},
        MetadataDirective="REPLACE",
        Metadata={"source-uri": source_uri, "product": product, "day": as_date(day).isoformat()},
        ContentType=head.get("ContentType") or "application/octet-stream",
    )
    sidecar_key = key + SIDECAR_SUFFIX
    now = _utc_now()
    previous = _read_json(s3, bucket, sidecar_key)
    document = {
        "product": product,
        "day": as_date(day).isoformat(),
        "source_uri": source_uri,
        "source_etag": str(head.get("ETag", "")).strip('"'),
        "source_size": int(head.get("ContentLength", 0)),
        "quarantine_uri": f"s3://{bucket}/{key}",
        "quarantined_at": now,
        "first_quarantined_at": (previous or {}).get("first_quarantined_at", now),
        **_outcome_document(outcome_or_error),
    }
    _put_json(s3, bucket, sidecar_key, document)
    return key


def _reason(outcome_or_error: ValidationOutcome | BaseException | dict) -> str:
    return _outcome_document(outcome_or_error)["reason"]


def quarantine_failure(
    s3, settings: Settings, *, outcome_or_error: ValidationOutcome | BaseException | dict, **source: Any
) -> dict[str, str]:
    """Quarantine a landing object that could not be read or failed its suite, log it, and say so
    in the task's result record.

    The one quarantine step of every ingest and validation task: :func:`quarantine_granule`, then
    one warning naming the object and the reason.

    :param s3, settings, outcome_or_error: as :func:`quarantine_granule`.
    :param source: the keyword arguments ``product``, ``day``, ``source_bucket`` and ``source_key``
        of :func:`quarantine_granule`.
    :return: ``{"status": "quarantined", "reason": ..., "quarantine_key": ...}``, to merge into
        the task's result (``{**result, **quarantine_failure(...)}``). The reason is the
        exception's message or the outcome's ``reason``.
    :raises FileNotFoundError: when the source object does not exist (see :func:`quarantine_granule`).
    """
    key = quarantine_granule(s3, settings, outcome_or_error=outcome_or_error, **source)
    reason = _reason(outcome_or_error)
    log.warning("quarantined s3://%s/%s as s3://%s/%s: %s", source["source_bucket"], source["source_key"],
                settings.store_bucket, key, reason)
    return {"status": "quarantined", "reason": reason, "quarantine_key": key}


def list_quarantine(s3, settings: Settings, day: Any = None, *, product: str | None = None) -> list[dict[str, Any]]:
    """Quarantined granules, optionally of one day and/or product, sorted by key.

    :return: one dict per quarantined object: ``product``, ``day`` (ISO), ``filename``, ``key``,
        ``uri``, ``validation_key``, and from the sidecar ``reason``, ``failed_checks``,
        ``source_uri``, ``quarantined_at`` (None when the sidecar is missing).
    """
    bucket = settings.store_bucket
    prefix = f"{QUARANTINE_PREFIX}/" + (f"{_check_name('product', product)}/" if product else "")
    if product and day is not None:
        prefix += f"{as_date(day):%Y%m%d}/"
    keys = list_keys(s3, bucket, prefix, empty_if_no_bucket=True)
    wanted_day = f"{as_date(day):%Y%m%d}" if day is not None else None
    entries: list[dict[str, Any]] = []
    for key in keys:
        if key.endswith(SIDECAR_SUFFIX):
            continue
        parts = key.split("/")
        if len(parts) != 4:
            continue
        _, key_product, key_day, filename = parts
        if wanted_day and key_day != wanted_day:
            continue
        sidecar = _read_json(s3, bucket, key + SIDECAR_SUFFIX) or {}
        entries.append(
            {
                "product": key_product,
                "day": f"{key_day[:4]}-{key_day[4:6]}-{key_day[6:]}",
                "filename": filename,
                "key": key,
                "uri": f"s3://{bucket}/{key}",
                "validation_key": key + SIDECAR_SUFFIX,
                "reason": sidecar.get("reason"),
                "failed_checks": sidecar.get("failed_checks"),
                "source_uri": sidecar.get("source_uri"),
                "quarantined_at": sidecar.get("quarantined_at"),
            }
        )
    return entries


__all__ = [
    "list_quarantine",
    "load_validation_result",
    "quarantine_failure",
    "quarantine_granule",
    "quarantine_key",
    "store_validation_result",
    "validation_key",
]
