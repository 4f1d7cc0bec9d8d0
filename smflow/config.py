"""Runtime settings of the system: one place that says where the services and data are.

Values come from the environment (``SMFLOW_*``), falling back to ``$SMFLOW_HOME/stack.env``
(written by ``infra/stack.py start``), falling back to the local-stack defaults. Nothing here
imports heavy libraries, so DAG files may import it at parse time.
"""

from __future__ import annotations

import dataclasses
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


#: S3 roles a process may hold keys for (``SMFLOW_S3_<ROLE>_ACCESS_KEY`` / ``_SECRET_KEY``):
#: ``admin`` (the stack itself: buckets, health probe; operators and tests), ``pipelines`` (the
#: DAG tasks: read the landing zone, read/write the store and the products), ``landing`` (only
#: the code that lands granules: write the landing zone). See docs/security.md.
S3_ROLES = ("admin", "pipelines", "landing")


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
        S3 credentials of the default identity (``SMFLOW_S3_ACCESS_KEY`` /
        ``SMFLOW_S3_SECRET_KEY``; in the local stack the ``pipelines`` identity); never logged.
    s3_role_keys : dict of str to (str, str)
        ``role -> (access key, secret key)`` of the :data:`S3_ROLES` whose keys are set
        (``SMFLOW_S3_<ROLE>_ACCESS_KEY`` / ``_SECRET_KEY``); see :meth:`s3_keys`. Never logged.
    landing_bucket, store_bucket, products_bucket, mlflow_bucket : str
        Buckets of the landing zone (the "archive" the daily DAG fetches from), the internal
        time-series store (+ quarantine, staging), the public products and MLflow artifacts.
    mlflow_tracking_uri : str
        MLflow tracking server (``SMFLOW_MLFLOW_TRACKING_URI``).
    mlflow_username, mlflow_password : str or None
        Basic-auth user of the tracking server (``MLFLOW_TRACKING_USERNAME`` /
        ``MLFLOW_TRACKING_PASSWORD``, the variables the MLflow client reads); None when unset.
    shared_data_dir : Path or None
        ``../shared/data/real`` (internal-only data: ISMN gauges, ...), if present
        (``SMFLOW_SHARED_DATA``).
    sample_data_dir : Path
        The bundled, redistributable sample data (``data/sample``).
    public_base_url : str or None
        URL under which anonymous users read the products bucket's keys (``SMFLOW_PUBLIC_BASE_URL``,
        e.g. ``https://data.example.org/sm-products`` behind a proxy or CDN); None: the S3 gateway
        itself, ``<s3_endpoint_url>/<products_bucket>`` (see :meth:`products_url`).
    store_backend : {"zarr", "netcdf"}
        Layout of the time-series store (``SMFLOW_STORE_BACKEND``): ``"zarr"`` (default), one
        chunked Zarr v3 array per product in an Icechunk repository
        (:class:`smflow.store.chunked.ChunkedTimeSeriesStore`); ``"netcdf"``, one netCDF object per
        product and day (:class:`smflow.store.daily_objects.DailyObjectStore`, the layout before
        issue 16; ``python -m smflow.store migrate`` copies it into the chunked one). See docs/store.md.
    store_retention_days : float
        History kept in the chunked store (``SMFLOW_STORE_RETENTION_DAYS``, default 30 days):
        ``python -m smflow.store expire`` and the ``store_maintenance`` DAG expire the Icechunk
        snapshots older than this and garbage-collect what only they referenced (docs/store.md).
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
    s3_role_keys: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)
    mlflow_username: str | None = None
    mlflow_password: str | None = field(default=None, repr=False)
    public_base_url: str | None = None
    store_backend: str = "zarr"
    store_retention_days: float = 30.0

    def products_url(self, key: str = "") -> str:
        """Public HTTP(S) URL of ``key`` in the products bucket (anonymous read, docs/security.md).

        ``SMFLOW_PUBLIC_BASE_URL`` when set, else the S3 gateway's path-style URL of the bucket:
        ``products_url("stac/catalog.json")`` -> ``http://127.0.0.1:8333/sm-products/stac/catalog.json``.
        """
        base = (self.public_base_url or f"{self.s3_endpoint_url.rstrip('/')}/{self.products_bucket}").rstrip("/")
        return f"{base}/{key.lstrip('/')}"

    def s3_keys(self, role: str | None = None) -> tuple[str, str]:
        """``(access key, secret key)`` of S3 identity ``role``.

        Parameters
        ----------
        role : str or None
            One of :data:`S3_ROLES`; None for the default identity.

        Returns
        -------
        tuple of str
            The role's keys when they are set, else the default keys (a deployment with one
            identity keeps working).

        Raises
        ------
        ValueError
            When ``role`` is not one of :data:`S3_ROLES`.
        """
        if role is None:
            return self.s3_access_key, self.s3_secret_key
        if role not in S3_ROLES:
            raise ValueError(f"unknown S3 role {role!r}; choose from {', '.join(S3_ROLES)} (smflow.config.S3_ROLES)")
        return self.s3_role_keys.get(role, (self.s3_access_key, self.s3_secret_key))

    def as_s3_role(self, role: str) -> "Settings":
        """These settings with ``role``'s keys as the default S3 identity (see :meth:`s3_keys`)."""
        access, secret = self.s3_keys(role)
        return dataclasses.replace(self, s3_access_key=access, s3_secret_key=secret)

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
            s3_role_keys={
                role: (env[f"SMFLOW_S3_{role.upper()}_ACCESS_KEY"], env[f"SMFLOW_S3_{role.upper()}_SECRET_KEY"])
                for role in S3_ROLES
                if env.get(f"SMFLOW_S3_{role.upper()}_ACCESS_KEY") and env.get(f"SMFLOW_S3_{role.upper()}_SECRET_KEY")
            },
            mlflow_username=env.get("MLFLOW_TRACKING_USERNAME") or None,
            mlflow_password=env.get("MLFLOW_TRACKING_PASSWORD") or None,
            public_base_url=env.get("SMFLOW_PUBLIC_BASE_URL") or None,
            store_backend=env.get("SMFLOW_STORE_BACKEND") or "zarr",
            store_retention_days=float(env.get("SMFLOW_STORE_RETENTION_DAYS") or 30.0),
        )
