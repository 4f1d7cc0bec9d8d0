"""Runtime settings of the system: one place that says where the services and data are.

Values come from the environment (``SMFLOW_*``), falling back to ``$SMFLOW_HOME/stack.env``
(written by ``infra/stack.py start``), falling back to the local-stack defaults. Nothing here
imports heavy libraries, so DAG files may import it at parse time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Default state directory of the local stack (S3 data, databases, logs, Airflow home).
DEFAULT_HOME = REPO_ROOT / ".smflow"


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.removeprefix("export ").strip()
        values[key] = value.strip().strip("'\"")
    return values


def _shared_data_default() -> Path | None:
    """``../shared/data/real`` beside the checkout, if this machine has it."""
    candidate = REPO_ROOT.parent / "shared" / "data" / "real"
    return candidate if candidate.is_dir() else None


@dataclass(frozen=True)
class Settings:
    """Where the services and data of one deployment are.

    Attributes
    ----------
    home : Path
        State directory of the local stack (``SMFLOW_HOME``).
    s3_endpoint_url : str
        S3 endpoint (``SMFLOW_S3_ENDPOINT_URL``).
    s3_access_key, s3_secret_key : str
        S3 credentials (``SMFLOW_S3_ACCESS_KEY`` / ``SMFLOW_S3_SECRET_KEY``); never logged.
    landing_bucket, store_bucket, products_bucket, mlflow_bucket : str
        Buckets of the landing zone (the "archive" the daily DAG fetches from), the internal
        time-series store (+ quarantine, staging), the public products and MLflow artifacts.
    mlflow_tracking_uri : str
        MLflow tracking server (``SMFLOW_MLFLOW_TRACKING_URI``).
    shared_data_dir : Path or None
        ``../shared/data/real`` (internal-only data: ISMN gauges, ...), if present
        (``SMFLOW_SHARED_DATA``).
    sample_data_dir : Path
        The bundled, redistributable sample data (``data/sample``).
    """

    home: Path
    s3_endpoint_url: str
    s3_access_key: str = field(repr=False)
    s3_secret_key: str = field(repr=False)
    landing_bucket: str
    store_bucket: str
    products_bucket: str
    mlflow_bucket: str
    mlflow_tracking_uri: str
    shared_data_dir: Path | None
    sample_data_dir: Path

    @classmethod
    def load(cls) -> "Settings":
        home = Path(os.environ.get("SMFLOW_HOME", DEFAULT_HOME))
        env = {**_read_env_file(home / "stack.env"), **os.environ}
        shared = env.get("SMFLOW_SHARED_DATA")
        shared_dir = Path(shared) if shared else _shared_data_default()
        if shared_dir is not None and not shared_dir.is_dir():
            shared_dir = None
        return cls(
            home=home,
            s3_endpoint_url=env.get("SMFLOW_S3_ENDPOINT_URL", "http://127.0.0.1:8333"),
            s3_access_key=env.get("SMFLOW_S3_ACCESS_KEY", "smflow"),
            s3_secret_key=env.get("SMFLOW_S3_SECRET_KEY", "smflow-local"),
            landing_bucket=env.get("SMFLOW_LANDING_BUCKET", "sm-landing"),
            store_bucket=env.get("SMFLOW_STORE_BUCKET", "sm-store"),
            products_bucket=env.get("SMFLOW_PRODUCTS_BUCKET", "sm-products"),
            mlflow_bucket=env.get("SMFLOW_MLFLOW_BUCKET", "sm-mlflow"),
            mlflow_tracking_uri=env.get("SMFLOW_MLFLOW_TRACKING_URI", "http://127.0.0.1:5000"),
            shared_data_dir=shared_dir,
            sample_data_dir=Path(env.get("SMFLOW_SAMPLE_DATA", REPO_ROOT / "data" / "sample")),
        )
