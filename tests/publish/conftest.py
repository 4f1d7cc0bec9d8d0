"""Fixtures of the publishing tests.

The S3 fixtures ``stack`` (Settings) and ``s3_client`` come from ``tests/conftest.py``. Only when
that file is absent (e.g. this folder copied alone) are stand-ins defined here: they use the S3
endpoint of ``Settings.load()`` if it answers, otherwise they start a SeaweedFS server of their own.
"""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the `synthetic` helper module

import synthetic  # noqa: E402


def _empty(s3, bucket: str) -> None:
    from smflow.s3 import list_keys

    for key in list_keys(s3, bucket):
        s3.delete_object(Bucket=bucket, Key=key)


@pytest.fixture(scope="session")
def _products_bucket(stack, s3_client):
    """One products bucket for this session's tests, deleted at the end.

    One, not one per test: on SeaweedFS every bucket takes volumes of its own (7 here), and a
    server started with ``-volume.max=100`` runs out of writable volumes if buckets pile up.
    """
    from botocore.exceptions import ClientError

    bucket = f"sm-products-test-{uuid.uuid4().hex[:10]}"
    yield bucket
    try:
        _empty(s3_client, bucket)
        s3_client.delete_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("NoSuchBucket", "404"):
            raise


@pytest.fixture
def products_settings(stack, s3_client, _products_bucket):
    """The stack's Settings with the test products bucket, empty at the start of each test."""
    from botocore.exceptions import ClientError

    try:
        _empty(s3_client, _products_bucket)
    except ClientError as error:  # not created yet: the publisher creates it
        if error.response.get("Error", {}).get("Code") not in ("NoSuchBucket", "404"):
            raise
    return dataclasses.replace(stack, products_bucket=_products_bucket)


@pytest.fixture
def day():
    import datetime as dt

    return dt.date(2024, 1, 2)


@pytest.fixture
def product(day):
    return synthetic.daily_product(day)


@pytest.fixture
def provenance(day):
    return synthetic.provenance(day)


def _answers(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 80), timeout=1):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if not (HERE.parent / "conftest.py").is_file():

    @pytest.fixture(scope="session")
    def stack(tmp_path_factory):
        from smflow.config import Settings

        settings = Settings.load()
        if _answers(settings.s3_endpoint_url):
            yield settings
            return
        weed = Path(sys.executable).parent / "weed"
        data = tmp_path_factory.mktemp("weed")
        s3_port, volume_port, master_port = _free_port(), _free_port(), _free_port()
        process = subprocess.Popen(
            [str(weed), "server", f"-dir={data}", "-s3", f"-s3.port={s3_port}",
             "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-volume.port={volume_port}",
             f"-master.port={master_port}", "-volume.max=100", "-master.volumeSizeLimitMB=512"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        endpoint = f"http://127.0.0.1:{s3_port}"
        try:
            deadline = time.monotonic() + 30
            while not _answers(endpoint):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("SeaweedFS did not start; is .venv/bin/weed installed?")
                time.sleep(0.3)
            yield dataclasses.replace(settings, s3_endpoint_url=endpoint)
        finally:
            process.terminate()
            process.wait(timeout=30)

    @pytest.fixture(scope="session")
    def s3_client(stack):
        from smflow import s3

        client = s3.client(stack)
        deadline = time.monotonic() + 30
        while True:  # the S3 gateway answers TCP a moment before it serves requests
            try:
                client.list_buckets()
                return client
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
