"""boto3 client for the configured S3 server, and the few object operations everything shares."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from smflow.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client  # noqa: F401


def client(settings: Settings | None = None):
    """A boto3 S3 client for ``settings`` (path-style addressing, as SeaweedFS/MinIO want)."""
    import boto3
    from botocore.config import Config

    settings = settings or Settings.load()
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"}),
    )


def ensure_bucket(s3, bucket: str) -> None:
    """Create ``bucket`` if it does not exist (idempotent)."""
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        s3.create_bucket(Bucket=bucket)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def list_keys(s3, bucket: str, prefix: str = "") -> list[str]:
    """All keys under ``prefix`` (paginated), sorted."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return sorted(keys)
