"""boto3 client for the configured S3 server, and the few object operations everything shares."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from smflow.config import Settings

if TYPE_CHECKING:
    from botocore.exceptions import ClientError
    from mypy_boto3_s3 import S3Client  # noqa: F401

#: S3 error codes of an object that is not there (``head_object`` answers a bare ``404``).
MISSING_OBJECT_CODES = ("404", "NoSuchKey", "NotFound")


def client(settings: Settings | None = None, *, role: str | None = None):
    """A boto3 S3 client for ``settings`` (path-style addressing, as SeaweedFS/MinIO want).

    :param role: the S3 identity to sign with (:data:`smflow.config.S3_ROLES`, e.g. ``"landing"``
        for the code that lands granules); None for the default identity. See
        :meth:`smflow.config.Settings.s3_keys`.
    """
    import boto3
    from botocore.config import Config

    settings = settings or Settings.load()
    access_key, secret_key = settings.s3_keys(role)
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"}),
    )


def ensure_bucket(s3, bucket: str) -> None:
    """Create ``bucket`` if it does not exist (idempotent)."""
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        try:
            s3.create_bucket(Bucket=bucket)
        except ClientError as exc:  # another thread or process created it meanwhile
            if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data`` (the ``sha256`` metadata of every object smflow writes)."""
    return hashlib.sha256(data).hexdigest()


def is_missing(exc: ClientError, *, bucket_too: bool = False) -> bool:
    """True when ``exc`` says the object (or, with ``bucket_too``, its bucket) does not exist."""
    code = exc.response.get("Error", {}).get("Code")
    return code in MISSING_OBJECT_CODES or (bucket_too and code == "NoSuchBucket")


def list_keys(s3, bucket: str, prefix: str = "", *, empty_if_no_bucket: bool = False) -> list[str]:
    """All keys under ``prefix`` (paginated), sorted.

    :param empty_if_no_bucket: answer ``[]`` for a bucket that does not exist (yet) instead of
        raising ``NoSuchBucket``.
    """
    from botocore.exceptions import ClientError

    return sorted(obj["Key"] for obj in _list_objects(s3, bucket, prefix, empty_if_no_bucket=empty_if_no_bucket))


def _list_objects(s3, bucket: str, prefix: str, *, empty_if_no_bucket: bool) -> list[dict]:
    from botocore.exceptions import ClientError

    objects: list[dict] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            objects.extend(page.get("Contents", []))
    except ClientError as exc:
        if empty_if_no_bucket and exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return []
        raise
    return objects


def delete_older_than(s3, bucket: str, prefix: str, older_than) -> list[str]:
    """Delete the objects under ``prefix`` last modified more than ``older_than`` ago (one listing).

    For orphans of work that died half-way (staging objects): young objects may belong to work
    in flight and are kept.

    :param older_than: a ``datetime.timedelta``.
    :returns: the deleted keys, sorted; ``[]`` when the bucket does not exist.
    """
    from datetime import datetime, timezone

    cutoff = datetime.now(timezone.utc) - older_than
    stale = sorted(obj["Key"] for obj in _list_objects(s3, bucket, prefix, empty_if_no_bucket=True)
                   if obj["LastModified"] < cutoff)
    for key in stale:
        s3.delete_object(Bucket=bucket, Key=key)
    return stale


class BucketClient:
    """Base of the classes that work in one bucket of the configured S3 server.

    Holds the settings, creates the boto3 client on first use and the bucket on the first write.
    Subclasses name their bucket with the :attr:`bucket` property, and the S3 identity of their
    default client with :attr:`s3_role` (None: the default identity).

    :param settings: deployment settings (bucket names, S3 endpoint); default :meth:`Settings.load`.
    :param s3: a boto3 S3 client (default: :func:`client` for ``settings``, made on first use).
    """

    #: S3 role of the client made on first use (:func:`client`'s ``role``).
    s3_role: str | None = None

    def __init__(self, settings: Settings | None = None, s3=None) -> None:
        self.settings = settings or Settings.load()
        self._s3 = s3
        self._bucket_ready = False

    @property
    def s3(self):
        """The boto3 S3 client."""
        if self._s3 is None:
            self._s3 = client(self.settings, role=self.s3_role)
        return self._s3

    @property
    def bucket(self) -> str:
        raise NotImplementedError(f"{type(self).__name__} must name its bucket (a `bucket` property)")

    def ensure_bucket(self) -> None:
        """Create :attr:`bucket` if needed (asked once per instance)."""
        if not self._bucket_ready:
            ensure_bucket(self.s3, self.bucket)
            self._bucket_ready = True

    def head(self, key: str, *, bucket: str | None = None) -> dict | None:
        """``head_object`` of ``key`` in ``bucket`` (default :attr:`bucket`), None when absent
        (also when the bucket is); other S3 errors raise."""
        from botocore.exceptions import ClientError

        try:
            return self.s3.head_object(Bucket=bucket or self.bucket, Key=key)
        except ClientError as exc:
            if is_missing(exc, bucket_too=True):
                return None
            raise

    def has_object(self, key: str, *, bucket: str | None = None) -> bool:
        """True if ``key`` is in ``bucket`` (default :attr:`bucket`); other S3 errors raise."""
        return self.head(key, bucket=bucket) is not None
