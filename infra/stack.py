#!/usr/bin/env python3
"""The local stack of smflow: an S3 server, the provider archives' stand-ins, MLflow and Airflow 3.

One entry point that starts, stops and checks the services, idempotently::

    .venv/bin/python infra/stack.py start [--only s3,providers,mlflow,airflow]
    .venv/bin/python infra/stack.py stop [--only ...]
    .venv/bin/python infra/stack.py status [--only ...]    # exit 1 if a requested service is down
    .venv/bin/python infra/stack.py env                    # print $SMFLOW_HOME/stack.env
    .venv/bin/python infra/stack.py prepare-airflow        # airflow.cfg + `airflow db migrate` only

Everything lives under one state directory, ``$SMFLOW_HOME`` (default ``<repo>/.smflow``)::

    s3/        SeaweedFS data, its S3 identities (generated keys: credentials.json is the admin,
               identities.json the services'), s3.json and security.toml (derived), local sockets
    providers/ the stand-in archives' tokens (credentials.json) and their cut granules (cache/)
    mlflow/    SQLite backend store when no PostgreSQL is used, the basic-auth config
               (basic_auth.ini, derived) and its secrets (secrets.json: admin password, ...)
    airflow/   AIRFLOW_HOME: airflow.cfg (derived, rewritten at each start), secrets, task logs
    webhooks/  the MLflow webhook secret and MLflow's key for stored webhook secrets (secrets.json),
               the delivery ids the receiver handled (deliveries.sqlite)
    logs/      one log per daemon: s3.log, providers.log, mlflow.log, airflow-<component>.log
    run/       pid files, the lock that serialises start/stop, the DB the Airflow daemons run on
    stack.env  KEY=VALUE lines for clients: endpoints, keys, database URLs in use, and the
               Airflow connections of the archives (AIRFLOW_CONN_SMFLOW_EARTHDATA, ..._CDS)

The service ``providers`` is ``python -m infra.providers serve``: development stand-ins of the
NASA CMR / Earthdata and Copernicus CDS archives (:mod:`infra.providers.hawaii`) that speak their
real protocols and serve the daily inputs cut from the bundled Hawaii sample, so that the DAGs
fetch their granules as from the providers. Granules are cut on first request and cached.

The service ``webhooks`` is ``python -m smflow.operators.webhooks serve``: the receiver of MLflow's
registry webhooks (HMAC-verified, replays ignored), which starts Airflow DAG runs through the REST
API. Its start also registers the MLflow webhook ``smflow-airflow`` (created, or updated in place)
with the secret generated into ``webhooks/secrets.json`` (0600); the MLflow server is started with
the settings webhooks to a loopback receiver need (:func:`mlflow_webhook_env`).

Each daemon runs in its own session (``start_new_session=True``); ``stop`` sends SIGTERM to its
process group, waits, then SIGKILLs whatever is left of the session (Airflow moves task
processes into their own process groups, but they stay in the session). Airflow stops
gracefully: the scheduler alone gets SIGTERM, and its executor lets the running tasks finish and
report their result through the api-server (stopped last) for up to ``SMFLOW_AIRFLOW_STOP_GRACE``
seconds (180); only then are the tasks terminated (and retried at the next start).

Settings come from the environment, then from an existing ``stack.env`` (so a port or a backend
chosen once sticks), then from the defaults. Ports: ``SMFLOW_S3_PORT`` (8333),
``SMFLOW_S3_MASTER_PORT`` (9333), ``SMFLOW_S3_VOLUME_PORT`` (8081, not 8080, which is Airflow's),
``SMFLOW_S3_FILER_PORT`` (8888), ``SMFLOW_PROVIDERS_PORT`` (8765), ``SMFLOW_MLFLOW_PORT`` (5000),
``SMFLOW_AIRFLOW_PORT`` (8080), ``SMFLOW_WEBHOOKS_PORT`` (8790), ``SMFLOW_S3_METRICS_PORT``
(SeaweedFS's Prometheus metrics, ``/metrics``: the S3 gateway's own request counters; default
``SMFLOW_S3_PORT`` + 1, 8334, so that stacks on other S3 ports never share it).
``SMFLOW_AIRFLOW_DAGS_FOLDER`` (``<repo>/dags``).
Executor: ``SMFLOW_AIRFLOW_EXECUTOR`` = ``local`` (default: the preloading LocalExecutor),
``celery`` or an executor class path. With ``celery`` the stack also runs one Celery worker per
queue (``airflow-worker-light``, ``airflow-worker-heavy``; concurrency
``SMFLOW_CELERY_LIGHT_CONCURRENCY`` 2, ``SMFLOW_CELERY_HEAVY_CONCURRENCY`` 1), started, watched
and stopped with the other Airflow daemons, on the broker ``SMFLOW_CELERY_BROKER_URL`` (default
Redis on 127.0.0.1:6379, a database and a key prefix of the state directory's own), with Celery's
results in the Airflow metadata database (:func:`celery_cfg_sections`).
Databases: ``SMFLOW_POSTGRES_URL`` (a server URL, or ``off`` for SQLite); when unset, a
PostgreSQL server on 127.0.0.1:5432 is used if one answers, else SQLite files. Airflow 3 also
opens an async engine, so its metadata DB goes to PostgreSQL only when ``asyncpg`` (or psycopg 3)
is installed; otherwise it stays on SQLite and ``start`` says so.
``SMFLOW_AIRFLOW_DB`` / ``SMFLOW_MLFLOW_DB`` name the databases (default ``smflow_airflow_<tag>``, ``smflow_mlflow_<tag>``, the tag a hash of the state directory: one pair per checkout).

Only the standard library and packages of the project's venv are used; nothing from ``smflow``
is imported, so this script works before the package is importable.
"""

from __future__ import annotations

import argparse
import base64
import configparser
import contextlib
import dataclasses
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HOME = REPO_ROOT / ".smflow"
#: The venv's bin (not resolved: resolving would leave the venv for the base interpreter).
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"

SERVICES = ("s3", "providers", "mlflow", "airflow", "webhooks")  # dependency order
#: Key prefix of the MLflow artifacts in the MLflow bucket (``--artifacts-destination``).
MLFLOW_ARTIFACT_PREFIX = "artifacts"
#: The MLflow basic-auth user the stack's clients use (the server's admin).
MLFLOW_ADMIN_USER = "admin"
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
#: ``SMFLOW_AIRFLOW_EXECUTOR`` short names; any other value is an executor class path.
EXECUTORS = {
    # Workers import the science stack once; tasks fork from them (smflow/operators/executor.py).
    "local": "smflow.operators.executor.PreloadingLocalExecutor",
    "celery": "CeleryExecutor",
}
#: Celery queues (smflow.operators.queues: light = sensors, fetching, publishing; heavy = science,
#: ML) and the default concurrency of the one worker that consumes each (2 cores in all).
CELERY_QUEUES = {"light": 2, "heavy": 1}
#: Celery settings the workers and the scheduler share (``[celery] celery_config_options``).
CELERY_CONFIG_OPTIONS = "smflow.operators.celery_config.CELERY_CONFIG"
DEFAULT_REDIS = f"redis://{HOST}:6379"
#: Databases of a Redis server (``databases 16``): a stack takes one by its tag, plus a key prefix.
REDIS_DATABASES = 16
BUCKET_KEYS = {
    "SMFLOW_LANDING_BUCKET": "sm-landing",
    "SMFLOW_STORE_BUCKET": "sm-store",
    "SMFLOW_PRODUCTS_BUCKET": "sm-products",
    "SMFLOW_MLFLOW_BUCKET": "sm-mlflow",
}
AUTODETECT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432"
SQLITE_WORDS = {"off", "none", "no", "false", "0", "sqlite"}

#: Seconds to wait for a service to become healthy / for a process session to exit.
HEALTH_TIMEOUT = {"s3": 60.0, "providers": 60.0, "mlflow": 120.0, "airflow": 120.0, "webhooks": 30.0}
STOP_TIMEOUT = {"s3": 30.0, "providers": 10.0, "mlflow": 20.0, "airflow": 45.0, "webhooks": 10.0}
#: Seconds the running Airflow tasks get to finish when Airflow stops (``SMFLOW_AIRFLOW_STOP_GRACE``),
#: then seconds a terminated task gets to report its failure before it is killed.
AIRFLOW_STOP_GRACE = 180.0
AIRFLOW_TASK_KILL_TIMEOUT = 30.0


class StackError(RuntimeError):
    """A service could not be started, stopped or configured; the message says what to do."""


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of ``path`` (same rules as ``smflow.config``), ``{}`` if missing."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


@dataclass(frozen=True)
class Database:
    """Which backend the stateful services use.

    ``backend`` is the server choice ("postgresql" when a server is used, else "sqlite");
    ``airflow_backend`` may still be "sqlite" when Airflow lacks an async PostgreSQL driver.
    """

    backend: str
    server_url: str | None  # postgresql://user@host:port, no database
    mlflow_uri: str
    airflow_backend: str
    airflow_conn: str
    airflow_conn_async: str | None = None  # None: Airflow derives it (sqlite -> aiosqlite)
    airflow_db: str | None = None
    mlflow_db: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    home: Path
    s3_port: int
    s3_master_port: int
    s3_volume_port: int
    s3_filer_port: int
    s3_metrics_port: int
    providers_port: int
    mlflow_port: int
    airflow_port: int
    webhooks_port: int
    executor: str  # SMFLOW_AIRFLOW_EXECUTOR: local | celery | an executor class path
    celery_broker_url: str
    celery_concurrency: dict[str, int]
    mlflow_workers: int
    airflow_api_workers: int
    buckets: dict[str, str]
    airflow_db_name: str
    mlflow_db_name: str
    dags_folder: Path
    recorded: dict[str, str]  # the existing stack.env

    @classmethod
    def load(cls) -> "Config":
        home = Path(os.environ.get("SMFLOW_HOME") or DEFAULT_HOME).absolute()
        recorded = read_env_file(home / "stack.env")

        def get(key: str, default: str) -> str:
            return os.environ.get(key) or recorded.get(key) or default

        def port(key: str, default: int) -> int:
            value = get(key, str(default))
            try:
                return int(value)
            except ValueError:
                raise StackError(f"{key}={value!r} is not a port number; set it to an integer") from None

        return cls(
            home=home,
            s3_port=port("SMFLOW_S3_PORT", 8333),
            s3_master_port=port("SMFLOW_S3_MASTER_PORT", 9333),
            s3_volume_port=port("SMFLOW_S3_VOLUME_PORT", 8081),
            s3_filer_port=port("SMFLOW_S3_FILER_PORT", 8888),
            s3_metrics_port=port("SMFLOW_S3_METRICS_PORT", port("SMFLOW_S3_PORT", 8333) + 1),
            providers_port=port("SMFLOW_PROVIDERS_PORT", 8765),
            mlflow_port=port("SMFLOW_MLFLOW_PORT", 5000),
            airflow_port=port("SMFLOW_AIRFLOW_PORT", 8080),
            webhooks_port=port("SMFLOW_WEBHOOKS_PORT", 8790),
            executor=get("SMFLOW_AIRFLOW_EXECUTOR", "local"),
            # One Redis database per state directory by default, and always a key prefix of the
            # stack's own (celery_key_prefix): parallel stacks never share a queue.
            celery_broker_url=get("SMFLOW_CELERY_BROKER_URL",
                                  f"{DEFAULT_REDIS}/{int(_home_tag(home), 16) % REDIS_DATABASES}"),
            celery_concurrency={queue: port(f"SMFLOW_CELERY_{queue.upper()}_CONCURRENCY", default)
                                for queue, default in CELERY_QUEUES.items()},
            # 2 cores: one worker each is enough for a single-user stack (uvicorn is async).
            mlflow_workers=port("SMFLOW_MLFLOW_WORKERS", 1),
            airflow_api_workers=port("SMFLOW_AIRFLOW_API_WORKERS", 1),
            buckets={key: get(key, default) for key, default in BUCKET_KEYS.items()},
            # One pair of databases per state directory: a fresh clone never meets another
            # checkout's runs, models or artifacts (see ensure_pg_database).
            airflow_db_name=get("SMFLOW_AIRFLOW_DB", f"smflow_airflow_{_home_tag(home)}"),
            mlflow_db_name=get("SMFLOW_MLFLOW_DB", f"smflow_mlflow_{_home_tag(home)}"),
            dags_folder=Path(get("SMFLOW_AIRFLOW_DAGS_FOLDER", str(REPO_ROOT / "dags"))).absolute(),
            recorded=recorded,
        )

    # paths -----------------------------------------------------------------------------------
    @property
    def s3_dir(self) -> Path:
        return self.home / "s3"

    @property
    def providers_dir(self) -> Path:
        return self.home / "providers"

    @property
    def mlflow_dir(self) -> Path:
        return self.home / "mlflow"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def webhooks_dir(self) -> Path:
        return self.home / "webhooks"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def stack_env_path(self) -> Path:
        return self.home / "stack.env"

    @property
    def password_file(self) -> Path:
        return self.airflow_home / "simple_auth_manager_passwords.json.generated"

    # urls ------------------------------------------------------------------------------------
    @property
    def s3_url(self) -> str:
        return f"http://{HOST}:{self.s3_port}"

    @property
    def s3_metrics_url(self) -> str:
        """SeaweedFS's Prometheus endpoint (``SMFLOW_S3_METRICS_PORT``)."""
        return f"http://{HOST}:{self.s3_metrics_port}/metrics"

    @property
    def providers_url(self) -> str:
        return f"http://{HOST}:{self.providers_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://{HOST}:{self.mlflow_port}"

    @property
    def airflow_url(self) -> str:
        return f"http://{HOST}:{self.airflow_port}"

    @property
    def webhooks_url(self) -> str:
        return f"http://{HOST}:{self.webhooks_port}"

    # executor --------------------------------------------------------------------------------
    @property
    def executor_class(self) -> str:
        """``[core] executor`` of airflow.cfg: the class :data:`EXECUTORS` names, or the value itself."""
        return EXECUTORS.get(self.executor.strip().lower(), self.executor.strip())

    @property
    def celery(self) -> bool:
        return self.executor_class.rsplit(".", 1)[-1] == "CeleryExecutor"

    @property
    def celery_key_prefix(self) -> str:
        """Prefix of every Redis key of this stack's Celery broker (queues, bindings, unacked)."""
        return f"smflow-{_home_tag(self.home)}:"

    @property
    def airflow_components(self) -> tuple[str, ...]:
        """The Airflow daemons of this stack: with Celery, one worker per queue (``worker-light``, ...)."""
        workers = tuple(f"worker-{queue}" for queue in CELERY_QUEUES) if self.celery else ()
        return AIRFLOW_COMPONENTS + workers

    def ensure_dirs(self) -> None:
        """Create the state directories; the state home is private (0700): it holds keys, tokens,
        the Airflow admin password and logs that may quote them."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o700)
        for path in (self.s3_dir / "data", self.providers_dir, self.mlflow_dir, self.airflow_home, self.logs_dir,
                     self.run_dir, self.webhooks_dir):
            path.mkdir(parents=True, exist_ok=True)
        private_files(self)


#: Files of the state home that hold secrets, made 0600 whoever created them. Every one is
#: written 0600 by this script; the check repairs files of older versions.
SECRET_FILES = ("airflow/simple_auth_manager_passwords.json.generated", "stack.env", "s3/credentials.json",
                "s3/identities.json", "s3/s3.json", "s3/jwt-keys.json", "s3/security.toml",
                "providers/credentials.json", "airflow/secrets.json", "airflow/airflow.cfg",
                "mlflow/secrets.json", "mlflow/basic_auth.ini", "webhooks/secrets.json")


def private_files(cfg: "Config") -> list[Path]:
    """chmod 0600 every existing :data:`SECRET_FILES` and every daemon log; returns the files changed."""
    changed = []
    candidates = [cfg.home / name for name in SECRET_FILES]
    candidates += sorted(cfg.logs_dir.glob("*.log")) if cfg.logs_dir.is_dir() else []
    for path in candidates:
        if path.is_file() and path.stat().st_mode & 0o077:
            path.chmod(0o600)
            changed.append(path)
    return changed


def executable(name: str) -> str:
    """Path of a console script of the venv (``weed``, ``mlflow``, ``airflow``)."""
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise StackError(
            f"`{name}` not found in {VENV_BIN} nor on PATH; run this script with the project's venv "
            f"(.venv/bin/python infra/stack.py) after `pip install -e .`"
        )
    return found


# --------------------------------------------------------------------------------------------
# Generated secrets (kept in the state directory, mode 0600)
# --------------------------------------------------------------------------------------------


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, the file created 0600 (never readable by others)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(text)
    tmp.replace(path)


def _load_or_create_json(path: Path, create: Callable[[], dict]) -> dict:
    if path.is_file():
        return json.loads(path.read_text())
    values = create()
    write_private(path, json.dumps(values, indent=1))
    return values


def _new_s3_keys(prefix: str = "SMFLOW") -> dict[str, str]:
    return {"access_key": prefix + secrets.token_hex(7).upper(), "secret_key": secrets.token_urlsafe(30)}


def s3_credentials(cfg: Config) -> dict[str, str]:
    """The ``admin`` S3 identity of the stack (buckets, health probe), generated at first use."""
    return _load_or_create_json(cfg.s3_dir / "credentials.json", _new_s3_keys)


#: The S3 identities of the services besides ``admin`` (docs/security.md): ``pipelines`` (the
#: Airflow tasks' default), ``landing`` (only the code that lands granules), ``mlflow`` (only the
#: MLflow server: its artifact prefix).
S3_SERVICE_ROLES = ("pipelines", "landing", "mlflow")


#: SeaweedFS's name for the identity of unsigned requests: read-only on the products bucket.
ANONYMOUS_IDENTITY = "anonymous"


def s3_identities(cfg: Config) -> dict[str, dict[str, str]]:
    """``role -> {"access_key", "secret_key"}`` of every S3 identity, generated at first use.

    ``admin`` is ``s3/credentials.json`` (the one identity of earlier versions: its keys stay);
    the service roles are kept in ``s3/identities.json`` (0600); a missing role is added.
    """
    path = cfg.s3_dir / "identities.json"
    roles = _load_or_create_json(path, dict)
    missing = [role for role in S3_SERVICE_ROLES if role not in roles]
    if missing:
        roles.update({role: _new_s3_keys("SMFLOW" + role[:2].upper()) for role in missing})
        write_private(path, json.dumps(roles, indent=1))
    return {"admin": s3_credentials(cfg), **{role: roles[role] for role in S3_SERVICE_ROLES}}


def s3_identity_config(cfg: Config, identities: dict[str, dict[str, str]]) -> dict:
    """SeaweedFS ``-s3.config`` of the stack: one identity per role, least privilege.

    SeaweedFS 4.48's static identities take the actions ``Read``, ``List``, ``Write``,
    ``Tagging`` and ``Admin``, each optionally scoped to ``:bucket`` or ``:bucket/prefix*``.
    ``Write`` includes delete (no separate delete action), so the landing zone's writer is an
    identity of its own and the pipelines only read it. Every authenticated identity may list
    the bucket names.

    The identity named ``anonymous`` (no credentials) is what SeaweedFS applies to unsigned
    requests: it may read and list the products bucket only (the public catalogue), nothing else.
    """
    b = cfg.buckets
    landing, store, products, mlflow_bucket = (b["SMFLOW_LANDING_BUCKET"], b["SMFLOW_STORE_BUCKET"],
                                               b["SMFLOW_PRODUCTS_BUCKET"], b["SMFLOW_MLFLOW_BUCKET"])
    published = [products, *domain_product_buckets(products)]
    actions = {
        "admin": ["Admin", "Read", "List", "Tagging", "Write"],
        "pipelines": [f"Read:{landing}", f"List:{landing}",
                      *(f"{action}:{bucket}" for bucket in (store, *published) for action in ("Read", "List", "Write"))],
        "landing": [f"Read:{landing}", f"List:{landing}", f"Write:{landing}"],
        "mlflow": [f"Read:{mlflow_bucket}", f"List:{mlflow_bucket}", f"Write:{mlflow_bucket}/{MLFLOW_ARTIFACT_PREFIX}/*"],
    }
    return {"identities": [
        *({"name": role, "credentials": [{"accessKey": keys["access_key"], "secretKey": keys["secret_key"]}],
           "actions": actions[role]}
          for role, keys in identities.items()),
        # the other domains' products buckets stay private (their files carry synthetic history)
        {"name": ANONYMOUS_IDENTITY, "actions": [f"Read:{products}", f"List:{products}"]},
    ]}


def domain_product_buckets(products: str) -> list[str]:
    """Products buckets of the merged pipelines on other domains than the main one
    (``{products}-{domain}``, ``smflow.operators.daily.products_settings``), from
    ``config/daily_pipelines.json``."""
    spec = json.loads((REPO_ROOT / "config" / "daily_pipelines.json").read_text())["pipelines"]
    return sorted({f"{products}-{p['domain'].replace('_', '-')}" for p in spec.values()
                   if "merged" in p.get("products", ()) and p["domain"] != "big_island"})


def s3_security_toml(cfg: Config) -> str:
    """SeaweedFS ``security.toml``: JWT signing of filer and volume reads and writes.

    Without it the filer HTTP port serves (and accepts) every bucket's objects anonymously, and
    the volume port every object by file id; with it both answer 401 to a request without a
    token signed with these keys, which only the stack's own SeaweedFS processes hold. The keys
    are generated once (``s3/jwt-keys.json``, 0600; not ``security.json``: SeaweedFS would read a
    ``security.*`` of another format before the ``.toml``).
    """
    keys = _load_or_create_json(cfg.s3_dir / "jwt-keys.json",
                                lambda: {name: secrets.token_hex(32) for name in
                                         ("volume_write", "volume_read", "filer_write", "filer_read")})
    sections = {"jwt.signing": "volume_write", "jwt.signing.read": "volume_read",
                "jwt.filer_signing": "filer_write", "jwt.filer_signing.read": "filer_read"}
    lines = ["# Generated by infra/stack.py at each S3 start (keys in jwt-keys.json). Secret."]
    for section, key in sections.items():
        lines += [f"[{section}]", f'key = "{keys[key]}"', "expires_after_seconds = 60", ""]
    lines += ["[access]", "ui = false", ""]
    return "\n".join(lines)


def mlflow_secrets(cfg: Config) -> dict[str, str]:
    """The MLflow server's basic-auth admin password and Flask secret key, generated at first use."""
    return _load_or_create_json(
        cfg.mlflow_dir / "secrets.json",
        lambda: {"admin_password": secrets.token_urlsafe(24), "flask_secret_key": secrets.token_urlsafe(32)},
    )


def webhook_secrets(cfg: Config) -> dict[str, str]:
    """The MLflow webhook's HMAC secret (``secret``, shared by MLflow and the receiver) and the
    Fernet key MLflow encrypts stored webhook secrets with (``mlflow_encryption_key``; MLflow makes a
    new one at every start without it, and could then no longer read the stored secret)."""
    return _load_or_create_json(
        cfg.webhooks_dir / "secrets.json",
        lambda: {"secret": secrets.token_urlsafe(32),
                 "mlflow_encryption_key": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()},
    )


def providers_credentials(cfg: Config) -> dict[str, str]:
    """The stand-in archives' tokens, generated at first use; the file is their token file.

    ``token``: the Earthdata bearer token (data files, and the stand-in's control routes);
    ``cds_token``: a CDS personal access token (colon-less: the current CDS protocol);
    ``cds_key``: ``uid:key`` of the legacy CDS protocol.
    """
    return _load_or_create_json(
        cfg.providers_dir / "credentials.json",
        lambda: {
            "token": secrets.token_urlsafe(32),
            "cds_token": secrets.token_urlsafe(24),
            "cds_key": f"{secrets.randbelow(900000) + 100000}:{secrets.token_urlsafe(24)}",
        },
    )


def airflow_secrets(cfg: Config) -> dict[str, str]:
    """Stable secrets of the Airflow deployment (api secret key, JWT secret, Fernet key)."""
    return _load_or_create_json(
        cfg.airflow_home / "secrets.json",
        lambda: {
            "secret_key": secrets.token_urlsafe(32),
            "jwt_secret": secrets.token_urlsafe(48),
            "fernet_key": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        },
    )


# --------------------------------------------------------------------------------------------
# Database backend
# --------------------------------------------------------------------------------------------


def _with_database(server_url: str, database: str, scheme: str) -> str:
    parts = urllib.parse.urlsplit(server_url)
    return urllib.parse.urlunsplit((scheme, parts.netloc, "/" + database, parts.query, ""))


def _normalise_server_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        raise StackError(f"SMFLOW_POSTGRES_URL={url!r} is not a postgresql:// URL (or `off` for SQLite)")
    return urllib.parse.urlunsplit(("postgresql", parts.netloc, "", parts.query, ""))


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


def _pg_connect(server_url: str, database: str = "postgres", timeout: int = 2):
    import psycopg2

    return psycopg2.connect(_with_database(server_url, database, "postgresql"), connect_timeout=timeout)


def _pg_reachable(server_url: str) -> bool:
    try:
        _pg_connect(server_url).close()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not usable"
        return False


def _airflow_pg_drivers() -> tuple[str, str] | None:
    """(sync, async) SQLAlchemy drivers for Airflow on PostgreSQL, or None if none is installed.

    Airflow 3 opens an async engine next to the sync one; psycopg2 cannot serve it.
    """
    from importlib.util import find_spec

    if find_spec("asyncpg") is not None and find_spec("psycopg2") is not None:
        return "postgresql+psycopg2", "postgresql+asyncpg"
    if find_spec("psycopg") is not None:
        return "postgresql+psycopg", "postgresql+psycopg"
    return None


def resolve_database(cfg: Config) -> Database:
    """Backend in use: explicit ``SMFLOW_POSTGRES_URL``, else the one recorded in stack.env
    (so data never silently moves between backends), else auto-detect 127.0.0.1:5432."""
    explicit = os.environ.get("SMFLOW_POSTGRES_URL", "").strip()
    recorded_backend = cfg.recorded.get("SMFLOW_DB_BACKEND")
    if explicit.lower() in SQLITE_WORDS:
        server = None
    elif explicit:
        server = _normalise_server_url(explicit)
        if not _pg_reachable(server):
            raise StackError(
                f"PostgreSQL at {_redact(server)} (SMFLOW_POSTGRES_URL) does not answer; "
                f"start it or set SMFLOW_POSTGRES_URL=off for SQLite"
            )
    elif recorded_backend == "postgresql" and cfg.recorded.get("SMFLOW_POSTGRES_URL"):
        server = _normalise_server_url(cfg.recorded["SMFLOW_POSTGRES_URL"])
        if not _pg_reachable(server):
            raise StackError(
                f"PostgreSQL at {_redact(server)} (recorded in {cfg.stack_env_path}) does not answer. Start it, "
                f"or switch explicitly with SMFLOW_POSTGRES_URL=off (the services then start on empty SQLite stores)"
            )
    elif recorded_backend == "sqlite":
        server = None
    else:
        server = AUTODETECT_POSTGRES_URL if _pg_reachable(AUTODETECT_POSTGRES_URL) else None

    airflow_sqlite = f"sqlite:///{cfg.airflow_home / 'airflow.db'}"
    if server is None:
        return Database(
            backend="sqlite",
            server_url=None,
            mlflow_uri=f"sqlite:///{cfg.mlflow_dir / 'mlflow.db'}",
            airflow_backend="sqlite",
            airflow_conn=airflow_sqlite,
        )
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3: always name the driver.
    mlflow_uri = _with_database(server, cfg.mlflow_db_name, "postgresql+psycopg2")
    drivers = _airflow_pg_drivers()
    if drivers is None:
        return Database(
            backend="postgresql",
            server_url=server,
            mlflow_uri=mlflow_uri,
            mlflow_db=cfg.mlflow_db_name,
            airflow_backend="sqlite",
            airflow_conn=airflow_sqlite,
            notes=(
                "Airflow on PostgreSQL needs an async driver (asyncpg or psycopg 3) and neither is "
                "installed: its metadata DB is SQLite for now. Add `asyncpg` to the project's "
                "dependencies to move it to PostgreSQL.",
            ),
        )
    return Database(
        backend="postgresql",
        server_url=server,
        mlflow_uri=mlflow_uri,
        mlflow_db=cfg.mlflow_db_name,
        airflow_backend="postgresql",
        airflow_conn=_with_database(server, cfg.airflow_db_name, drivers[0]),
        airflow_conn_async=_with_database(server, cfg.airflow_db_name, drivers[1]),
        airflow_db=cfg.airflow_db_name,
    )


def _home_tag(home: Path) -> str:
    """Short stable tag of a state directory's absolute path (names its PostgreSQL databases)."""
    import hashlib

    return hashlib.sha256(str(Path(home).absolute()).encode()).hexdigest()[:10]


def ensure_pg_database(db: Database, name: str | None, marker: Path | None = None) -> None:
    """``CREATE DATABASE name`` unless it exists (a no-op for SQLite).

    ``marker`` is a file in the state directory saying the database is this directory's. A
    database of that name without the marker was left by an earlier state directory at the same
    path (a deleted checkout, a previous CI clone): its S3 data is gone with that directory, so it
    is dropped and created empty, rather than serving runs and models whose artifacts no longer exist.
    """
    if db.backend != "postgresql" or not name:
        return
    import psycopg2
    from psycopg2 import errors, sql

    conn = _pg_connect(db.server_url, timeout=5)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            exists = cur.fetchone() is not None
            if exists and marker is not None and not marker.is_file():
                cur.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
                print(f"database: dropped {name}, left by an earlier state directory at this path")
                exists = False
            if not exists:
                with contextlib.suppress(errors.DuplicateDatabase):
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                print(f"database: created PostgreSQL database {name}")
        if marker is not None:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(name + "\n")
    except psycopg2.Error as exc:
        raise StackError(f"cannot create database {name} on {_redact(db.server_url)}: {exc}".strip()) from exc
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# stack.env
# --------------------------------------------------------------------------------------------


def stack_env(cfg: Config, db: Database) -> dict[str, str]:
    """What clients (smflow.config.Settings, shell scripts, MLflow clients) need.

    S3: the default keys (``SMFLOW_S3_ACCESS_KEY``, ``AWS_ACCESS_KEY_ID``) are the ``pipelines``
    identity's; ``SMFLOW_S3_<ROLE>_*`` name the ``admin``, ``pipelines`` and ``landing`` ones
    (:data:`smflow.config.S3_ROLES`). The ``mlflow`` identity is not here: only the MLflow
    server holds it. MLflow: the basic-auth user (``MLFLOW_TRACKING_USERNAME`` / ``_PASSWORD``).
    """
    identities = s3_identities(cfg)
    creds = identities["pipelines"]
    archive = providers_credentials(cfg)
    values = {
        "SMFLOW_HOME": str(cfg.home),
        "SMFLOW_S3_ENDPOINT_URL": cfg.s3_url,
        "SMFLOW_S3_ACCESS_KEY": creds["access_key"],
        "SMFLOW_S3_SECRET_KEY": creds["secret_key"],
        **{f"SMFLOW_S3_{role.upper()}_{part.upper()}": identities[role][part]
           for role in ("admin", "pipelines", "landing") for part in ("access_key", "secret_key")},
        **cfg.buckets,
        "SMFLOW_PROVIDERS_URL": cfg.providers_url,
        # The Airflow connections the DAGs fetch with: here both name the stand-ins (the CMR
        # root serves search and data files; the CDS API root). Production defines its own.
        "AIRFLOW_CONN_SMFLOW_EARTHDATA": json.dumps(
            {"conn_type": "http", "host": cfg.providers_url, "password": archive["token"]}),
        "AIRFLOW_CONN_SMFLOW_CDS": json.dumps(
            {"conn_type": "http", "host": f"{cfg.providers_url}/api", "password": archive["cds_token"]}),
        "SMFLOW_MLFLOW_TRACKING_URI": cfg.mlflow_url,
        "MLFLOW_TRACKING_USERNAME": MLFLOW_ADMIN_USER,
        "MLFLOW_TRACKING_PASSWORD": mlflow_secrets(cfg)["admin_password"],
        "SMFLOW_AIRFLOW_URL": cfg.airflow_url,
        "SMFLOW_AIRFLOW_PASSWORD_FILE": str(cfg.password_file),
        "SMFLOW_AIRFLOW_DAGS_FOLDER": str(cfg.dags_folder),
        "SMFLOW_S3_PORT": str(cfg.s3_port),
        "SMFLOW_S3_MASTER_PORT": str(cfg.s3_master_port),
        "SMFLOW_S3_VOLUME_PORT": str(cfg.s3_volume_port),
        "SMFLOW_S3_FILER_PORT": str(cfg.s3_filer_port),
        "SMFLOW_S3_METRICS_PORT": str(cfg.s3_metrics_port),
        "SMFLOW_S3_METRICS_URL": cfg.s3_metrics_url,
        "SMFLOW_PROVIDERS_PORT": str(cfg.providers_port),
        "SMFLOW_MLFLOW_PORT": str(cfg.mlflow_port),
        "SMFLOW_AIRFLOW_PORT": str(cfg.airflow_port),
        "SMFLOW_WEBHOOKS_PORT": str(cfg.webhooks_port),
        "SMFLOW_WEBHOOKS_URL": cfg.webhooks_url,
        "SMFLOW_AIRFLOW_EXECUTOR": cfg.executor,
        "SMFLOW_DB_BACKEND": db.backend,
        "SMFLOW_MLFLOW_DB": cfg.mlflow_db_name,
        "SMFLOW_AIRFLOW_DB": cfg.airflow_db_name,
        "SMFLOW_AIRFLOW_DB_BACKEND": db.airflow_backend,
        "SMFLOW_MLFLOW_BACKEND_STORE_URI": db.mlflow_uri,
        "SMFLOW_AIRFLOW_DB_URL": db.airflow_conn,
        "AIRFLOW_HOME": str(cfg.airflow_home),
        "MLFLOW_TRACKING_URI": cfg.mlflow_url,
        "MLFLOW_S3_ENDPOINT_URL": cfg.s3_url,
        "AWS_ACCESS_KEY_ID": creds["access_key"],
        "AWS_SECRET_ACCESS_KEY": creds["secret_key"],
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    if db.backend == "postgresql":
        values["SMFLOW_POSTGRES_URL"] = db.server_url
    if cfg.celery:
        values["SMFLOW_CELERY_BROKER_URL"] = cfg.celery_broker_url
    return values


def write_stack_env(cfg: Config, values: dict[str, str]) -> None:
    lines = [
        "# Written by infra/stack.py (derived state: rewritten at each start). Contains secrets.",
        "# Shell: set -a; source " + str(cfg.stack_env_path) + "; set +a",
    ]
    for key, value in values.items():
        # Shell-safe when the value needs it (JSON connections too); smflow.config strips the
        # quotes again. A single quote cannot be written inside single quotes.
        if "'" in value or "\n" in value:
            raise StackError(f"{key}: a value with a single quote or a newline cannot go into {cfg.stack_env_path}")
        lines.append(f"{key}={value}" if _shell_safe(value) else f"{key}='{value}'")
    tmp = cfg.stack_env_path.with_suffix(".tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    tmp.replace(cfg.stack_env_path)


def _shell_safe(value: str) -> bool:
    return all(ch.isalnum() or ch in "@%+=:,./-_" for ch in value)


def service_env(cfg: Config, values: dict[str, str]) -> dict[str, str]:
    """Environment of the daemons: ours + stack.env, the venv's bin first on PATH."""
    env = {**os.environ, **values}
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state, ppid, pgrp, session, ...)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw.rsplit(")", 1)[1].split()


def _alive(pid: int) -> bool:
    stat = _proc_stat(pid)
    if stat is None:
        # Not Linux /proc (or gone): fall back to signal 0.
        if not Path("/proc/self/stat").exists():
            try:
                os.kill(pid, 0)
                return True
            except (ProcessLookupError, PermissionError):
                return False
        return False
    return stat[0] not in ("Z", "X")  # a zombie has exited; only its parent has not reaped it yet


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def session_members(sid: int) -> list[int]:
    """Live processes of session ``sid`` (each daemon was started as a session leader)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _proc_stat(int(entry.name))
        if stat is not None and stat[0] not in ("Z", "X") and int(stat[3]) == sid:
            members.append(int(entry.name))
    return members


def _pid_file(cfg: Config, name: str) -> Path:
    return cfg.run_dir / f"{name}.pid"


def running_pid(cfg: Config, name: str, marker: str) -> int | None:
    """Pid of the daemon ``name`` if its pid file points at a live process running ``marker``;
    a stale pid file is removed."""
    path = _pid_file(cfg, name)
    try:
        pid = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if _alive(pid) and marker in _cmdline(pid):
        return pid
    path.unlink(missing_ok=True)
    return None


def healthy_pid(cfg: Config, name: str, marker: str, healthy: Callable[[Config], bool]) -> int | None:
    """Pid of the one-process service ``name`` when it runs and is healthy (to be reused); one
    that runs but is not healthy is stopped, so that it can be started anew (None)."""
    pid = running_pid(cfg, name, marker)
    if pid is not None and healthy(cfg):
        return pid
    if pid is not None:
        print(f"{name}: pid {pid} is running but not healthy; restarting it", file=sys.stderr)
        stop_session(name, pid, STOP_TIMEOUT[name])
        _pid_file(cfg, name).unlink(missing_ok=True)
    return None


def spawn(cfg: Config, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    """Start ``argv`` as a session leader, logging to logs/<name>.log; write run/<name>.pid."""
    log_path = cfg.logs_dir / f"{name}.log"
    with open(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
        log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}: {' '.join(argv[:3])} ...\n".encode())
        log.flush()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            umask=0o077,  # what the daemons write (task logs, the generated admin password) is private
        )
    _pid_file(cfg, name).write_text(f"{proc.pid}\n")
    return proc


def stop_session(name: str, pid: int, timeout: float, *, terminate: bool = True) -> None:
    """SIGTERM the process group of ``pid`` (unless ``terminate`` is False: already sent), wait
    up to ``timeout`` s for every process of its session to exit, then SIGKILL what is left
    (Airflow task processes live in their own process groups, but in the same session)."""
    if not session_members(pid):
        return
    if terminate:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not session_members(pid):
            return
        time.sleep(0.2)
    left = session_members(pid)
    print(f"{name}: still running after {timeout:.0f} s, sending SIGKILL to {len(left)} process(es)", file=sys.stderr)
    for member in left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(member, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while session_members(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if session_members(pid):
        raise StackError(f"{name}: processes {session_members(pid)} survived SIGKILL")


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def require_free_ports(service: str, ports: dict[str, int]) -> None:
    busy = {key: port for key, port in ports.items() if port_in_use(port)}
    if busy:
        what = ", ".join(f"{port} ({key})" for key, port in busy.items())
        raise StackError(
            f"{service}: port {what} is already in use by a process this stack did not start "
            f"(see `ss -ltnp`). Stop it, or choose other ports with the environment variable(s) named."
        )


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in text[-lines:])


def wait_healthy(
    cfg: Config, service: str, check: Callable[[], bool], procs: dict[str, subprocess.Popen], timeout: float
) -> None:
    """Poll ``check`` until it passes. On failure (one of ``procs`` exits, or the timeout) the
    just-started ``procs`` are stopped again, so a failed start leaves no half-started daemon."""
    deadline = time.monotonic() + timeout
    problem = None
    while problem is None:
        if check():
            return
        for name, proc in procs.items():
            if proc.poll() is not None:
                log = cfg.logs_dir / f"{name}.log"
                problem = f"{name} exited with code {proc.returncode} while starting; see {log}:\n{_tail(log)}"
                break
        else:
            if time.monotonic() > deadline:
                logs = ", ".join(str(cfg.logs_dir / f"{name}.log") for name in procs) or str(cfg.logs_dir)
                problem = f"{service} not healthy after {timeout:.0f} s; see {logs}"
            else:
                time.sleep(0.5)
    for name, proc in procs.items():
        stop_session(name, proc.pid, STOP_TIMEOUT[service])
        proc.poll()
        _pid_file(cfg, name).unlink(missing_ok=True)
    raise StackError(problem)


@contextlib.contextmanager
def stack_lock(cfg: Config) -> Iterator[None]:
    """Serialise start/stop/prepare of one state directory (test sessions may race)."""
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    with open(cfg.run_dir / "stack.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------
# S3 (SeaweedFS)
# --------------------------------------------------------------------------------------------


def _s3_client(cfg: Config, creds: dict[str, str] | None = None):
    import boto3
    from botocore.config import Config as BotoConfig

    creds = creds or s3_credentials(cfg)
    return boto3.client(
        "s3",
        endpoint_url=cfg.s3_url,
        aws_access_key_id=creds["access_key"],
        aws_secret_access_key=creds["secret_key"],
        region_name="us-east-1",
        config=BotoConfig(
            s3={"addressing_style": "path"}, connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}
        ),
    )


#: The object the S3 health check writes and reads back (a bucket listing answers seconds before
#: the volume servers serve objects).
HEALTH_BUCKET, HEALTH_KEY = "sm-health", "probe"


def filer_closed(cfg: Config) -> bool:
    """The filer HTTP port refuses an anonymous read (401: JWT signing of :func:`s3_security_toml`
    is in force). False while it does not answer, or when it serves anonymously (a SeaweedFS
    started without the stack's ``security.toml``)."""
    status, _ = http_get(f"http://{HOST}:{cfg.s3_filer_port}/buckets/")
    return status == 401


def products_public(cfg: Config) -> bool:
    """An unsigned listing of the products bucket is not refused (200, or 404 before the bucket
    exists): the server runs the ``anonymous`` identity of :func:`s3_identity_config`. False for
    a server started by an older stack without it (``start`` then restarts it)."""
    status, _ = http_get(f"{cfg.s3_url}/{cfg.buckets['SMFLOW_PRODUCTS_BUCKET']}?list-type=2&max-keys=1")
    return status in (200, 404)


def s3_metrics_served(cfg: Config) -> bool:
    """SeaweedFS's Prometheus endpoint (``SMFLOW_S3_METRICS_PORT``) answers (the S3 gateway's request
    counters, ``SeaweedFS_s3_request_total``, appear there with the first request)."""
    status, body = http_get(cfg.s3_metrics_url)
    return status == 200 and b"SeaweedFS_" in body


def s3_healthy(cfg: Config) -> bool:
    """An authenticated ``ListBuckets`` succeeds (admin and pipelines identities), a small object
    is written and read back, the filer port is closed to anonymous reads (:func:`filer_closed`)
    and the products bucket is open to them (:func:`products_public`), and the server's metrics
    answer (:func:`s3_metrics_served`: a server started before ``SMFLOW_S3_METRICS_PORT`` is restarted)."""
    if not (cfg.s3_dir / "identities.json").is_file() or not port_in_use(cfg.s3_port):
        return False
    if not filer_closed(cfg) or not products_public(cfg) or not s3_metrics_served(cfg):
        return False
    try:
        client = _s3_client(cfg)
        client.list_buckets()
        _s3_client(cfg, s3_identities(cfg)["pipelines"]).list_buckets()  # the running server knows the roles
        try:
            client.head_bucket(Bucket=HEALTH_BUCKET)
        except Exception:  # noqa: BLE001 - absent: create it
            client.create_bucket(Bucket=HEALTH_BUCKET)
        body = f"{time.time():.3f}".encode()
        client.put_object(Bucket=HEALTH_BUCKET, Key=HEALTH_KEY, Body=body)
        return client.get_object(Bucket=HEALTH_BUCKET, Key=HEALTH_KEY)["Body"].read() == body
    except Exception:  # noqa: BLE001 - connection refused, 5xx, auth errors, volume not ready: "not ready"
        return False


def start_s3(cfg: Config, env: dict[str, str]) -> str:
    pid = healthy_pid(cfg, "s3", "weed", s3_healthy)
    if pid is not None:
        create_buckets(cfg)
        return f"already running (pid {pid})"
    ports = {
        "SMFLOW_S3_PORT": cfg.s3_port,
        "SMFLOW_S3_MASTER_PORT": cfg.s3_master_port,
        "SMFLOW_S3_VOLUME_PORT": cfg.s3_volume_port,
        "SMFLOW_S3_FILER_PORT": cfg.s3_filer_port,
    }
    # SeaweedFS also listens on each port + 10000 (gRPC).
    ports.update({f"{key} + 10000 (gRPC)": port + 10000 for key, port in list(ports.items())})
    ports["SMFLOW_S3_METRICS_PORT"] = cfg.s3_metrics_port
    require_free_ports("s3", ports)

    s3_config = cfg.s3_dir / "s3.json"
    write_private(s3_config, json.dumps(s3_identity_config(cfg, s3_identities(cfg))))
    # Read by every `weed` process from its working directory (cwd=s3_dir below).
    write_private(cfg.s3_dir / "security.toml", s3_security_toml(cfg))
    argv = [
        executable("weed"),
        "server",
        f"-dir={cfg.s3_dir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={cfg.s3_master_port}",
        # A single master still waits a whole election timeout (10 s) before it leads after a restart.
        "-master.electionTimeout=2s",
        "-master.volumeSizeLimitMB=512",  # with the default 30 GB volumes a 2nd bucket finds "No writable volumes"
        f"-volume.port={cfg.s3_volume_port}",  # default 8080 is Airflow's
        "-volume.max=100",
        "-volume.preStopSeconds=1",  # default 10 s grace before exit: nobody to drain to on one node
        f"-filer.port={cfg.s3_filer_port}",
        f"-filer.localSocket={cfg.s3_dir / 'filer.sock'}",
        "-s3",
        f"-s3.port={cfg.s3_port}",
        f"-s3.config={s3_config}",
        f"-s3.localSocket={cfg.s3_dir / 's3.sock'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        # Prometheus metrics of every component of this process, the S3 gateway's request
        # counters (SeaweedFS_s3_request_total) included: requests counted by the server, whatever
        # the client (boto3, Icechunk's Rust client); benchmarks/bench_run_overhead.py reads them.
        f"-metricsPort={cfg.s3_metrics_port}",
        "-metricsIp=127.0.0.1",
    ]
    # `weed` turns AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY of its environment into an extra *admin*
    # identity: the server gets no S3 keys but those of s3.json.
    weed_env = {key: value for key, value in env.items() if not key.startswith(("AWS_", "SMFLOW_S3_"))}
    proc = spawn(cfg, "s3", argv, weed_env, cwd=cfg.s3_dir)
    wait_healthy(cfg, "s3", lambda: s3_healthy(cfg), {"s3": proc}, HEALTH_TIMEOUT["s3"])
    create_buckets(cfg)
    return f"started (pid {proc.pid})"


def create_buckets(cfg: Config) -> None:
    from botocore.exceptions import ClientError

    s3 = _s3_client(cfg)
    existing = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
    for bucket in [*cfg.buckets.values(), *domain_product_buckets(cfg.buckets["SMFLOW_PRODUCTS_BUCKET"])]:
        if bucket in existing:
            continue
        for attempt in range(10):  # a fresh SeaweedFS may need a moment to grow volumes
            try:
                s3.create_bucket(Bucket=bucket)
                break
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    break
                if attempt == 9:
                    raise StackError(f"s3: cannot create bucket {bucket}: {exc}") from exc
                time.sleep(1)


# --------------------------------------------------------------------------------------------
# The provider archives' stand-ins (infra/providers)
# --------------------------------------------------------------------------------------------


def providers_healthy(cfg: Config) -> bool:
    """A CMR granule search answers 200."""
    status, _ = http_get(cfg.providers_url + "/search/granules.umm_json?short_name=SPL3SMP&page_size=1", timeout=10)
    return status == 200


def start_providers(cfg: Config, env: dict[str, str]) -> str:
    pid = healthy_pid(cfg, "providers", "infra.providers", providers_healthy)
    if pid is not None:
        return f"already running (pid {pid})"
    require_free_ports("providers", {"SMFLOW_PROVIDERS_PORT": cfg.providers_port})
    providers_credentials(cfg)
    argv = [
        executable("python"),
        "-m",
        "infra.providers",  # importable through PYTHONPATH=<repo> (service_env)
        "serve",
        "--port",
        str(cfg.providers_port),
        "--cache-dir",
        str(cfg.providers_dir / "cache"),
        "--token-file",
        str(cfg.providers_dir / "credentials.json"),
    ]
    proc = spawn(cfg, "providers", argv, env, cwd=cfg.providers_dir)
    wait_healthy(cfg, "providers", lambda: providers_healthy(cfg), {"providers": proc}, HEALTH_TIMEOUT["providers"])
    return f"started (pid {proc.pid})"


# --------------------------------------------------------------------------------------------
# MLflow
# --------------------------------------------------------------------------------------------


def http_get(url: str, timeout: float = 3.0, auth: tuple[str, str] | None = None) -> tuple[int, bytes]:
    """``(status, body)`` of a GET (``auth``: basic-auth user and password); ``(0, b"")`` when
    nothing answers."""
    request = urllib.request.Request(url)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


#: An MLflow REST call that needs a user: refused (401) without credentials when auth is on.
MLFLOW_PROBE_PATH = "/api/2.0/mlflow/experiments/search?max_results=1"


def mlflow_healthy(cfg: Config) -> bool:
    """``/health`` answers (unauthenticated by design) and the REST API refuses an anonymous
    call (401: the basic-auth app is on; a server of an older start without it is "not healthy")."""
    status, _ = http_get(cfg.mlflow_url + "/health")
    if status != 200:
        return False
    status, _ = http_get(cfg.mlflow_url + MLFLOW_PROBE_PATH)
    return status == 401


#: Seconds a verified MLflow credential is cached by the server (``auth_cache_ttl_seconds``).
MLFLOW_AUTH_CACHE_TTL = 60


def mlflow_auth_config(cfg: Config, db: Database) -> Path:
    """Write the basic-auth config (``mlflow/basic_auth.ini``, 0600) and return its path.

    Users live in their own database: ``<SMFLOW_MLFLOW_DB>_auth`` on PostgreSQL, else
    ``mlflow/basic_auth.db``. ``default_permission = NO_PERMISSIONS``: a user sees only what it
    was granted (an anonymous caller gets 401 whatever this says). The admin is created with the
    generated password (``mlflow/secrets.json``) when the user store is empty.
    """
    if db.backend == "postgresql":
        name = f"{cfg.mlflow_db_name}_auth"
        ensure_pg_database(db, name, cfg.mlflow_dir / "pg-auth-database")
        auth_uri = _with_database(db.server_url, name, "postgresql+psycopg2")
    else:
        auth_uri = f"sqlite:///{cfg.mlflow_dir / 'basic_auth.db'}"
    options = {
        "default_permission": "NO_PERMISSIONS",
        "database_uri": auth_uri,
        "admin_username": MLFLOW_ADMIN_USER,
        "admin_password": mlflow_secrets(cfg)["admin_password"],  # token_urlsafe: no `%` to escape
        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
        # A verified (user, password) is remembered for a minute in the server process (MLflow's
        # own cache, keyed by an HMAC of the password): without it every REST call re-derives the
        # password hash (~0.3 s of CPU per call). A password change through the API takes effect
        # at once; one made directly in the user database after at most this TTL.
        "auth_cache_ttl_seconds": str(MLFLOW_AUTH_CACHE_TTL),
    }
    path = cfg.mlflow_dir / "basic_auth.ini"
    lines = ["# Generated by infra/stack.py at each MLflow start (secrets in secrets.json). Secret.", "[mlflow]"]
    lines += [f"{key} = {value}" for key, value in options.items()]
    write_private(path, "\n".join(lines) + "\n")
    return path


def mlflow_webhook_env(cfg: Config) -> dict[str, str]:
    """Environment of the MLflow server for registry webhooks to the stack's receiver.

    MLflow posts only to public https addresses unless told otherwise; the receiver is on the
    loopback, so plain http and private addresses are allowed (docs/security.md: only MLflow's
    admin may create webhooks). The stored secrets are encrypted with a stable key, and the list of
    webhooks is cached 5 s (default 60 s) so a webhook registered at start is used at once.
    """
    return {"MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https", "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": webhook_secrets(cfg)["mlflow_encryption_key"],
            "MLFLOW_WEBHOOK_CACHE_TTL": "5"}


def _mlflow_settings_stamp(cfg: Config) -> str:
    """What a running MLflow server must have been started with (its webhook settings and the auth
    cache): a server of an older start without them is restarted once."""
    import hashlib

    settings = {**mlflow_webhook_env(cfg), "auth_cache_ttl_seconds": MLFLOW_AUTH_CACHE_TTL}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def start_mlflow(cfg: Config, env: dict[str, str], db: Database) -> str:
    stamp_file = cfg.run_dir / "mlflow.settings"
    stamp = _mlflow_settings_stamp(cfg)
    pid = running_pid(cfg, "mlflow", "mlflow")
    if pid is not None and (not stamp_file.is_file() or stamp_file.read_text().strip() != stamp):
        print("mlflow: running without the webhook settings of this version; restarting it", file=sys.stderr)
        stop_session("mlflow", pid, STOP_TIMEOUT["mlflow"])
        _pid_file(cfg, "mlflow").unlink(missing_ok=True)
    pid = healthy_pid(cfg, "mlflow", "mlflow", mlflow_healthy)
    if pid is not None:
        return f"already running (pid {pid})"
    require_free_ports("mlflow", {"SMFLOW_MLFLOW_PORT": cfg.mlflow_port})
    if not s3_healthy(cfg):
        print("mlflow: warning: S3 is not healthy, artifact uploads will fail until it is started", file=sys.stderr)
    ensure_pg_database(db, db.mlflow_db, cfg.mlflow_dir / "pg-database")
    auth_config = mlflow_auth_config(cfg, db)
    argv = [
        executable("mlflow"),
        "server",
        "--app-name",
        "basic-auth",
        "--backend-store-uri",
        db.mlflow_uri,
        "--artifacts-destination",
        f"s3://{cfg.buckets['SMFLOW_MLFLOW_BUCKET']}/{MLFLOW_ARTIFACT_PREFIX}",
        "--host",
        HOST,
        "--port",
        str(cfg.mlflow_port),
        "--workers",
        str(cfg.mlflow_workers),
    ]
    artifacts = s3_identities(cfg)["mlflow"]
    mlflow_env = {
        **{key: value for key, value in env.items() if not key.startswith(("SMFLOW_S3_", "MLFLOW_TRACKING_"))},
        # Without this the server forks a job runner + huey consumers (~10 processes, 2.5 GB).
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_AUTH_CONFIG_PATH": str(auth_config),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": mlflow_secrets(cfg)["flask_secret_key"],
        **mlflow_webhook_env(cfg),
        # The artifact proxy writes with the `mlflow` identity: its prefix of the MLflow bucket only.
        "AWS_ACCESS_KEY_ID": artifacts["access_key"],
        "AWS_SECRET_ACCESS_KEY": artifacts["secret_key"],
    }
    proc = spawn(cfg, "mlflow", argv, mlflow_env, cwd=cfg.mlflow_dir)
    stamp_file.write_text(stamp + "\n")
    wait_healthy(cfg, "mlflow", lambda: mlflow_healthy(cfg), {"mlflow": proc}, HEALTH_TIMEOUT["mlflow"])
    status, body = http_get(cfg.mlflow_url + MLFLOW_PROBE_PATH, timeout=10,
                            auth=(MLFLOW_ADMIN_USER, mlflow_secrets(cfg)["admin_password"]))
    if status != 200:
        stop_session("mlflow", proc.pid, STOP_TIMEOUT["mlflow"])
        _pid_file(cfg, "mlflow").unlink(missing_ok=True)
        raise StackError(
            f"mlflow: the server refuses the admin password of {cfg.mlflow_dir / 'secrets.json'} (HTTP {status}: "
            f"{body[:200]!r}); its user store ({auth_config}, database_uri) was made with another one. Restore "
            f"that file, or empty the user store so that the admin is created again."
        )
    return f"started (pid {proc.pid})"


# --------------------------------------------------------------------------------------------
# Webhook receiver (smflow.operators.webhooks): MLflow registry events -> Airflow DAG runs
# --------------------------------------------------------------------------------------------


def webhooks_healthy(cfg: Config) -> bool:
    """``/health`` answers and an unsigned delivery is refused (401)."""
    status, _ = http_get(cfg.webhooks_url + "/health")
    if status != 200:
        return False
    request = urllib.request.Request(cfg.webhooks_url + "/mlflow", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=3):
            return False
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    except (urllib.error.URLError, OSError):
        return False


def register_mlflow_webhook(cfg: Config) -> str:
    """Create, or update in place, MLflow's webhook to the receiver, signed with the stack's secret
    (idempotent): ``python -m smflow.operators.webhooks register`` as MLflow's admin."""
    if not mlflow_healthy(cfg):
        return "MLflow is not running: webhook not registered (start mlflow, then webhooks again)"
    env = {**os.environ, "MLFLOW_TRACKING_USERNAME": MLFLOW_ADMIN_USER,
           "MLFLOW_TRACKING_PASSWORD": mlflow_secrets(cfg)["admin_password"]}
    webhook_secrets(cfg)
    out = subprocess.run([executable("python"), "-m", "smflow.operators.webhooks", "register",
                          "--receiver-url", cfg.webhooks_url + "/mlflow", "--tracking-uri", cfg.mlflow_url,
                          "--secret-file", str(cfg.webhooks_dir / "secrets.json")],
                         env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    if out.returncode != 0:
        raise StackError(f"registering the MLflow webhook failed: {(out.stderr or out.stdout)[-800:]}")
    return out.stdout.strip().splitlines()[-1]


def start_webhooks(cfg: Config, env: dict[str, str]) -> str:
    pid = healthy_pid(cfg, "webhooks", "smflow.operators.webhooks", webhooks_healthy)
    if pid is not None:
        message = f"already running (pid {pid})"
    else:
        require_free_ports("webhooks", {"SMFLOW_WEBHOOKS_PORT": cfg.webhooks_port})
        webhook_secrets(cfg)
        argv = [executable("python"), "-m", "smflow.operators.webhooks", "serve", "--port", str(cfg.webhooks_port),
                "--state-dir", str(cfg.webhooks_dir), "--secret-file", str(cfg.webhooks_dir / "secrets.json"),
                "--airflow-url", cfg.airflow_url, "--airflow-password-file", str(cfg.password_file)]
        # The receiver needs no S3 key nor MLflow password: only the Airflow login (password file).
        receiver_env = {key: value for key, value in env.items()
                        if not key.startswith(("SMFLOW_S3_", "AWS_", "MLFLOW_TRACKING_"))}
        proc = spawn(cfg, "webhooks", argv, receiver_env, cwd=cfg.webhooks_dir)
        wait_healthy(cfg, "webhooks", lambda: webhooks_healthy(cfg), {"webhooks": proc}, HEALTH_TIMEOUT["webhooks"])
        message = f"started (pid {proc.pid})"
    return f"{message}; {register_mlflow_webhook(cfg)}"


# --------------------------------------------------------------------------------------------
# Airflow
# --------------------------------------------------------------------------------------------


def airflow_cfg_text(cfg: Config, db: Database) -> str:
    """airflow.cfg of the stack (derived state: rewritten at each start / prepare)."""
    keys = airflow_secrets(cfg)
    sections: dict[str, dict[str, str]] = {
        "core": {
            "dags_folder": str(cfg.dags_folder),
            "plugins_folder": str(cfg.airflow_home / "plugins"),
            "executor": cfg.executor_class,  # SMFLOW_AIRFLOW_EXECUTOR (EXECUTORS)
            # 2 cores: the default 32 would fork 32 LocalExecutor workers.
            "parallelism": "4",
            "max_active_tasks_per_dag": "4",
            "max_active_runs_per_dag": "4",
            "dags_are_paused_at_creation": "False",
            "load_examples": "False",
            "fernet_key": keys["fernet_key"],
            "execution_api_server_url": f"{cfg.airflow_url}/execution/",
            "auth_manager": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            # username:role; SimpleAuthManager generates the password into the file below.
            "simple_auth_manager_users": "admin:admin",
            "simple_auth_manager_all_admins": "False",
            "simple_auth_manager_passwords_file": str(cfg.password_file),
            "dagbag_import_timeout": "60",
        },
        "database": {
            "sql_alchemy_conn": db.airflow_conn,
            **({"sql_alchemy_conn_async": db.airflow_conn_async} if db.airflow_conn_async else {}),
        },
        "api": {
            "host": HOST,
            "port": str(cfg.airflow_port),
            "base_url": cfg.airflow_url,
            "workers": str(cfg.airflow_api_workers),
            "secret_key": keys["secret_key"],
            "expose_config": "False",
        },
        "api_auth": {
            "jwt_secret": keys["jwt_secret"],
        },
        "logging": {
            "base_log_folder": str(cfg.airflow_home / "logs"),
        },
        "dag_processor": {
            # Pick up new DAG files within seconds; one parser process is plenty on 2 cores.
            "refresh_interval": "10",
            "min_file_process_interval": "30",
            "parsing_processes": "1",
            "dag_file_processor_timeout": "120",
        },
        "scheduler": {
            "enable_health_check": "False",
            # How long an idle scheduler loop sleeps (default 1 s): a task that ends during the
            # sleep waits for it before its downstream task is queued, at each of the daily DAG's
            # ~7 levels (benchmarks/README.md "Overhead per run").
            "scheduler_idle_sleep_time": "0.5",
        },
    }
    if cfg.celery:
        sections.update(celery_cfg_sections(cfg, db))
    lines = ["# Generated by infra/stack.py at each start: edit the script, not this file."]
    for section, options in sections.items():
        lines.append(f"\n[{section}]")
        # configparser interpolation: a literal % must be written %%.
        lines.extend(f"{key} = {value.replace('%', '%%')}" for key, value in options.items())
    return "\n".join(lines) + "\n"


def celery_result_backend(cfg: Config, db: Database) -> str:
    """Celery's result backend: the stack's PostgreSQL (the Airflow metadata database, tables
    ``celery_taskmeta`` / ``celery_tasksetmeta``), or a SQLite file beside it without PostgreSQL."""
    if db.airflow_backend == "postgresql":
        return "db+" + db.airflow_conn
    return f"db+sqlite:///{cfg.airflow_home / 'celery-results.db'}"


def celery_cfg_sections(cfg: Config, db: Database) -> dict[str, dict[str, str]]:
    """The airflow.cfg sections of the CeleryExecutor: broker, result backend, queues.

    The broker is ``SMFLOW_CELERY_BROKER_URL`` (default: Redis on 127.0.0.1:6379, the database
    chosen by the state directory's tag); on Redis every key carries the prefix
    :attr:`Config.celery_key_prefix` (kombu's ``global_keyprefix``), so two stacks on one Redis
    never share a queue. A RabbitMQ broker (``amqp://``) is separated by its virtual host: give
    each stack its own. Tasks without a queue go to ``heavy`` (``[operators] default_queue``).
    """
    sections = {
        "celery": {
            "broker_url": cfg.celery_broker_url,
            "result_backend": celery_result_backend(cfg, db),
            "celery_config_options": CELERY_CONFIG_OPTIONS,
            "worker_concurrency": str(max(cfg.celery_concurrency.values())),  # each worker overrides it
            # One task at a time per free slot: a heavy task never waits behind a prefetched one.
            "worker_prefetch_multiplier": "1",
            # The scheduler's pool that reads the task states back: 1 process on 2 cores.
            "sync_parallelism": "1",
        },
        "operators": {"default_queue": "heavy"},
    }
    if cfg.celery_broker_url.startswith(("redis://", "rediss://")):
        sections["celery_broker_transport_options"] = {"global_keyprefix": cfg.celery_key_prefix}
    return sections


def _broker_address(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    default = {"redis": 6379, "rediss": 6379, "amqp": 5672, "amqps": 5671, "pyamqp": 5672}.get(parts.scheme)
    if default is None:
        raise StackError(f"SMFLOW_CELERY_BROKER_URL={_redact(url)!r}: use a redis://HOST:PORT/DB or an "
                         "amqp://USER:PASSWORD@HOST:PORT/VHOST URL")
    return parts.hostname or HOST, parts.port or default


def require_broker(cfg: Config) -> None:
    """The Celery broker answers on its port; else a :class:`StackError` saying what to do."""
    host, port = _broker_address(cfg.celery_broker_url)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        if sock.connect_ex((host, port)) != 0:
            raise StackError(
                f"airflow: the Celery broker {_redact(cfg.celery_broker_url)} (SMFLOW_CELERY_BROKER_URL) does not "
                f"answer on {host}:{port}. Start Redis (or RabbitMQ), point SMFLOW_CELERY_BROKER_URL at one, or "
                "use the LocalExecutor (SMFLOW_AIRFLOW_EXECUTOR=local)."
            )


def _db_revision(db: Database) -> str | None:
    """Alembic revision of the Airflow metadata DB (cheap: no Airflow import), or None."""
    try:
        if db.airflow_backend == "sqlite":
            import sqlite3

            path = db.airflow_conn.removeprefix("sqlite:///")
            if not Path(path).is_file():
                return None
            with contextlib.closing(sqlite3.connect(path)) as conn:
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        else:
            conn = _pg_connect(db.server_url, db.airflow_db or "postgres")
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT version_num FROM alembic_version")
                    row = cur.fetchone()
            finally:
                conn.close()
        return row[0] if row else None
    except Exception:  # noqa: BLE001 - missing table / database: needs a migration
        return None


def _airflow_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("apache-airflow-core")
    except Exception:  # noqa: BLE001
        return None


def prepare_airflow(cfg: Config, db: Database, env: dict[str, str]) -> None:
    """Write airflow.cfg and migrate the metadata DB (skipped when already at the revision the
    last migrate of this Airflow version reached)."""
    ensure_pg_database(db, db.airflow_db, cfg.airflow_home / "pg-database")
    (cfg.airflow_home / "plugins").mkdir(exist_ok=True)
    cfg_path = cfg.airflow_home / "airflow.cfg"
    tmp = cfg_path.with_suffix(".tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(airflow_cfg_text(cfg, db))
    tmp.replace(cfg_path)

    stamp_path = cfg.airflow_home / "migrated.json"
    stamp = {"airflow": _airflow_version(), "conn": _redact(db.airflow_conn)}
    recorded = json.loads(stamp_path.read_text()) if stamp_path.is_file() else {}
    revision = _db_revision(db)
    if stamp["airflow"] and revision and recorded == {**stamp, "revision": revision}:
        return
    log_path = cfg.logs_dir / "airflow-db-migrate.log"
    print(f"airflow: migrating the metadata database ({db.airflow_backend}), log {log_path}")
    with open(log_path, "ab") as log:
        log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} airflow db migrate\n".encode())
        log.flush()
        result = subprocess.run(
            [executable("airflow"), "db", "migrate"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cfg.airflow_home,
            timeout=900,
        )
    if result.returncode != 0:
        raise StackError(f"`airflow db migrate` failed (exit {result.returncode}); see {log_path}:\n{_tail(log_path)}")
    revision = _db_revision(db)
    if revision:
        stamp_path.write_text(json.dumps({**stamp, "revision": revision}) + "\n")


def airflow_health(cfg: Config) -> dict | None:
    status, body = http_get(cfg.airflow_url + "/api/v2/monitor/health")
    if status != 200:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def airflow_healthy(cfg: Config) -> bool:
    health = airflow_health(cfg)
    if health is None:
        return False
    return all(
        (health.get(part) or {}).get("status") == "healthy"
        for part in ("metadatabase", "scheduler", "dag_processor", "triggerer")
    )


def _component_argv(cfg: Config, component: str) -> list[str]:
    if component.startswith("worker-"):
        # One Celery worker per queue, named by queue and stack (`celery inspect` tells them apart).
        queue = component.removeprefix("worker-")
        argv = [executable("airflow"), "celery", "worker", "--queues", queue,
                "--concurrency", str(cfg.celery_concurrency[queue]),
                "--celery-hostname", f"{queue}-{_home_tag(cfg.home)}@%h", "--skip-serve-logs"]
    else:
        argv = [executable("airflow"), component]
    if component in ("scheduler", "triggerer"):
        # Task logs are local files the api-server reads directly; the log server would bind 0.0.0.0
        # (on one port per machine, 8793: parallel stacks would collide). Celery workers: the same.
        argv.append("--skip-serve-logs")
    # Airflow's daemons exit when the metadata DB goes away (by design: a supervisor restarts
    # them); infra/keepalive.py is that supervisor here. Signals reach the daemon through it.
    return [sys.executable, str(REPO_ROOT / "infra" / "keepalive.py"), "--", *argv]


#: What a Celery worker logs once it consumes its queue ("celery@<hostname> ready.").
CELERY_READY = b" ready."
#: Seconds a Celery worker gets, beyond the other daemons' start, to preload the science stack.
CELERY_PRELOAD_TIMEOUT = 240.0


def _log_size(cfg: Config, name: str) -> int:
    path = cfg.logs_dir / f"{name}.log"
    return path.stat().st_size if path.is_file() else 0


def celery_workers_ready(cfg: Config, since: dict[str, int] | None = None) -> bool:
    """Every Celery worker of the stack runs and has said it is ready (in its log after byte
    ``since[name]``: the log of this start). True when the stack has no Celery workers."""
    for component in cfg.airflow_components:
        if not component.startswith("worker-"):
            continue
        name = f"airflow-{component}"
        if running_pid(cfg, name, "airflow") is None:
            return False
        path = cfg.logs_dir / f"{name}.log"
        with open(path, "rb") as log:
            log.seek((since or {}).get(name, 0))
            if CELERY_READY not in log.read():
                return False
    return True


def _airflow_record(cfg: Config) -> dict:
    path = cfg.run_dir / "airflow-database.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def start_airflow(cfg: Config, env: dict[str, str], db: Database) -> str:
    started_with = _airflow_record(cfg).get("executor")
    live = {name: pid for name, pid in _service_pids(cfg, "airflow").items() if pid is not None}
    if live and started_with and started_with != cfg.executor_class:
        # The executor is read once by the scheduler; its workers belong to it: restart them all.
        print(f"airflow: running with {started_with}, asked for {cfg.executor_class}; restarting Airflow")
        _stop_airflow(cfg, live)
    running = {c: running_pid(cfg, f"airflow-{c}", "airflow") for c in cfg.airflow_components}
    if all(running.values()) and airflow_healthy(cfg) and celery_workers_ready(cfg):
        return f"already running (pids {', '.join(str(p) for p in running.values())})"
    missing = [c for c, pid in running.items() if pid is None]
    if running["api-server"] is None:
        require_free_ports("airflow", {"SMFLOW_AIRFLOW_PORT": cfg.airflow_port})
    if cfg.celery:
        require_broker(cfg)
    # The tasks sign S3 requests as `pipelines` (stack.env's default) and `landing`; not as admin.
    airflow_env = {**{key: value for key, value in env.items() if not key.startswith("SMFLOW_S3_ADMIN_")},
                   "AIRFLOW_HOME": str(cfg.airflow_home)}
    prepare_airflow(cfg, db, airflow_env)
    airflow_password(cfg)  # before the api-server starts: it then has nothing to generate, nothing to print
    record = {"conn": db.airflow_conn, "conn_async": db.airflow_conn_async, "executor": cfg.executor_class}
    (cfg.run_dir / "airflow-database.json").write_text(json.dumps(record) + "\n")
    procs = {}
    logs_before = {f"airflow-{c}": _log_size(cfg, f"airflow-{c}") for c in missing}
    for component in missing:
        procs[f"airflow-{component}"] = spawn(
            cfg, f"airflow-{component}", _component_argv(cfg, component), airflow_env, cwd=cfg.airflow_home
        )
    # A Celery worker is ready once it has imported the science stack (worker_init), which takes
    # minutes on 2 busy cores the first time (numba compiles its kernels into the cache).
    timeout = HEALTH_TIMEOUT["airflow"] + (CELERY_PRELOAD_TIMEOUT if cfg.celery else 0)
    wait_healthy(cfg, "airflow", lambda: airflow_healthy(cfg) and celery_workers_ready(cfg, logs_before), procs,
                 timeout)
    private_files(cfg)  # the admin password file written by a running api-server of an older start
    pids = ", ".join(f"{c} {running[c] or procs[f'airflow-{c}'].pid}" for c in cfg.airflow_components)
    return f"started ({pids})"


def airflow_password(cfg: Config) -> str:
    """The Airflow UI/API ``admin`` password, generated by this script at first use into the
    SimpleAuthManager's passwords file (0600). SimpleAuthManager generates (and prints into its
    log) a password only for a user missing from that file: with it written first, it prints none.

    A password found in a daemon log (printed by an earlier version) is replaced by a new one;
    SimpleAuthManager reads the file at each login, so a running api-server takes it at once.
    """
    password = _load_or_create_json(cfg.password_file, lambda: {"admin": secrets.token_urlsafe(18)}).get("admin")
    leaked = [log for log in sorted(cfg.logs_dir.glob("*.log")) if password and password.encode() in log.read_bytes()]
    if password and not leaked:
        return password
    password = secrets.token_urlsafe(18)
    write_private(cfg.password_file, json.dumps({"admin": password}))
    if leaked:
        print(f"airflow: the admin password was in {', '.join(map(str, leaked))}: replaced by a new one")
    return password


def login_message(cfg: Config) -> str:
    """Where the Airflow admin password is (never the password: the output may go to shared logs)."""
    return f"Airflow UI: {cfg.airflow_url}  user: admin  password in {cfg.password_file} (mode 0600)"


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


def _services(only: str | None) -> list[str]:
    if not only:
        return list(SERVICES)
    wanted = [name.strip() for name in only.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(SERVICES))
    if unknown:
        raise StackError(f"unknown service(s) {', '.join(unknown)}; choose from {', '.join(SERVICES)}")
    return [name for name in SERVICES if name in wanted]  # dependency order


def _describe(db: Database) -> str:
    where = f" {_redact(db.server_url)}" if db.server_url else ""
    if db.airflow_backend == db.backend:
        return f"{db.backend}{where}"
    return f"{db.backend}{where} (mlflow), {db.airflow_backend} (airflow)"


def _running_airflow_database(cfg: Config, db: Database) -> Database | None:
    """``db`` with the metadata DB of the running Airflow daemons, if they use another one
    (e.g. SQLite from before asyncpg was installed); None when none runs or it is the same."""
    if not any(_service_pids(cfg, "airflow").values()):
        return None
    # airflow.cfg is rewritten by every prepare, the daemons read it once: trust the record
    # written when they were spawned.
    record = cfg.run_dir / "airflow-database.json"
    if record.is_file():
        spawned = json.loads(record.read_text())
        conn, conn_async = spawned.get("conn"), spawned.get("conn_async")
    else:
        parser = configparser.ConfigParser()
        parser.read(cfg.airflow_home / "airflow.cfg")
        conn = parser.get("database", "sql_alchemy_conn", fallback=None)
        conn_async = parser.get("database", "sql_alchemy_conn_async", fallback=None)
    if not conn or conn == db.airflow_conn:
        return None
    sqlite = conn.startswith("sqlite")
    return dataclasses.replace(
        db,
        airflow_backend="sqlite" if sqlite else "postgresql",
        airflow_conn=conn,
        airflow_conn_async=conn_async,
        airflow_db=None if sqlite else urllib.parse.urlsplit(conn).path.lstrip("/"),
        notes=(
            f"Airflow keeps running on {_redact(conn)}; `stack.py start --only airflow` (or stop + start) "
            f"moves it to {_redact(db.airflow_conn)}.",
        ),
    )


def _prepare(cfg: Config, *, restart_airflow: bool = False) -> tuple[Database, dict[str, str], dict[str, str]]:
    """Resolve the databases and write stack.env. Running Airflow daemons never silently lose
    their metadata DB: with ``restart_airflow`` they are stopped to move to the new one,
    otherwise the one they use stays in force."""
    cfg.ensure_dirs()
    db = resolve_database(cfg)
    running = _running_airflow_database(cfg, db)
    if running is not None and restart_airflow:
        print(f"airflow: metadata DB changes from {_redact(running.airflow_conn)} to {_redact(db.airflow_conn)}; restarting Airflow")
        _stop_service(cfg, "airflow")
    elif running is not None:
        db = running
    values = stack_env(cfg, db)
    write_stack_env(cfg, values)
    return db, values, service_env(cfg, values)


def cmd_start(cfg: Config, services: list[str]) -> int:
    with stack_lock(cfg):
        db, _, env = _prepare(cfg, restart_airflow="airflow" in services)
        print(f"state: {cfg.home}  database: {_describe(db)}")
        for note in db.notes:
            print(f"note: {note}")
        for service in services:
            t0 = time.monotonic()
            if service == "s3":
                message = start_s3(cfg, env)
                url = cfg.s3_url
            elif service == "providers":
                message = start_providers(cfg, env)
                url = cfg.providers_url
            elif service == "mlflow":
                message = start_mlflow(cfg, env, db)
                url = cfg.mlflow_url
            elif service == "webhooks":
                message = start_webhooks(cfg, env)
                url = cfg.webhooks_url
            else:
                message = start_airflow(cfg, env, db)
                url = cfg.airflow_url
            print(f"{service}: {url} {message} [{time.monotonic() - t0:.1f} s]")
            if service == "airflow":
                print(login_message(cfg))
                if cfg.celery:
                    queues = ", ".join(f"{q} ({n})" for q, n in cfg.celery_concurrency.items())
                    print(f"executor: CeleryExecutor, broker {_redact(cfg.celery_broker_url)} (keys {cfg.celery_key_prefix}*), "
                          f"workers per queue (concurrency): {queues}; logs {cfg.logs_dir}/airflow-worker-*.log")
            if service == "s3":
                print(f"catalogue: {cfg.s3_url}/{cfg.buckets['SMFLOW_PRODUCTS_BUCKET']}/index.html  (no login, "
                      "read-only; the page is placed with the first published day)")
    print(f"stack.env: {cfg.stack_env_path}")
    return 0


def _service_pids(cfg: Config, service: str) -> dict[str, int | None]:
    if service == "s3":
        return {"s3": running_pid(cfg, "s3", "weed")}
    if service == "providers":
        return {"providers": running_pid(cfg, "providers", "infra.providers")}
    if service == "mlflow":
        return {"mlflow": running_pid(cfg, "mlflow", "mlflow")}
    if service == "webhooks":
        return {"webhooks": running_pid(cfg, "webhooks", "smflow.operators.webhooks")}
    pids = {f"airflow-{c}": running_pid(cfg, f"airflow-{c}", "airflow") for c in cfg.airflow_components}
    # Celery workers of an earlier start are stopped with the rest, whatever the executor is now.
    for queue in CELERY_QUEUES:
        name = f"airflow-worker-{queue}"
        if name not in pids and (pid := running_pid(cfg, name, "airflow")) is not None:
            pids[name] = pid
    return pids


def _signal_session(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to every live process of the session led by ``pid``."""
    for member in session_members(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(member, sig)


def _tasks_may_run(scheduler: int) -> bool:
    """Whether the scheduler's session may still run a task: the scheduler (its keeper, the
    session leader) is alive, or a member is not an idle LocalExecutor worker. Idle workers left
    once the scheduler has exited are orphans of a scheduler that died (their queue has no
    writer any more): nothing of theirs is worth waiting for."""
    if _alive(scheduler):
        return True
    return any("LocalExecutor: <idle>" not in _cmdline(member) for member in session_members(scheduler))


def _stop_airflow(cfg: Config, pids: dict[str, int | None]) -> None:
    """Stop Airflow without losing the result of a running task.

    SIGTERM to the scheduler's keeper (:mod:`infra.keepalive`, which forwards it to the scheduler
    and does not restart it), not to their process group, where the LocalExecutor's
    workers live: each forwards a SIGTERM to its task, which would then fail and run again):
    the scheduler leaves its loop and ``LocalExecutor.end()`` lets the workers finish their
    tasks, whose supervisors report the result through the api-server, so the api-server stops
    last. After ``SMFLOW_AIRFLOW_STOP_GRACE`` s the tasks left are terminated (SIGTERM to the
    whole session: Airflow records them failed, up for retry) and SIGKILLed after
    :data:`AIRFLOW_TASK_KILL_TIMEOUT` s.

    Celery workers are stopped the same way, after the scheduler: SIGTERM to their keeper only
    (Celery's warm shutdown: the worker takes no new task and lets its running tasks finish and
    report), within the same grace period.
    """
    grace = float(os.environ.get("SMFLOW_AIRFLOW_STOP_GRACE") or AIRFLOW_STOP_GRACE)
    scheduler = pids.get("airflow-scheduler")
    api_server = pids.get("airflow-api-server")
    workers = {name: pid for name, pid in pids.items() if pid is not None and name.startswith("airflow-worker-")}
    others = {name: pid for name, pid in pids.items()
              if pid is not None and pid not in (scheduler, api_server) and name not in workers}
    for pid in others.values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    if scheduler is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(scheduler, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while _tasks_may_run(scheduler) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _tasks_may_run(scheduler):
            print(f"airflow: tasks still running after the {grace:.0f} s grace period "
                  "(SMFLOW_AIRFLOW_STOP_GRACE); terminating them (they are retried at the next start)", file=sys.stderr)
        # What is left: tasks past the grace period, or idle workers orphaned by a dead scheduler.
        _signal_session(scheduler, signal.SIGTERM)
        stop_session("airflow-scheduler", scheduler, AIRFLOW_TASK_KILL_TIMEOUT, terminate=False)
        _pid_file(cfg, "airflow-scheduler").unlink(missing_ok=True)
    if workers:
        for pid in workers.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while any(_alive(pid) for pid in workers.values()) and time.monotonic() < deadline:
            time.sleep(0.2)
        for name, pid in workers.items():
            if _alive(pid):
                print(f"airflow: {name} still runs tasks after the {grace:.0f} s grace period "
                      "(SMFLOW_AIRFLOW_STOP_GRACE); terminating them (they are retried at the next start)",
                      file=sys.stderr)
            _signal_session(pid, signal.SIGTERM)
            stop_session(name, pid, AIRFLOW_TASK_KILL_TIMEOUT, terminate=False)
            _pid_file(cfg, name).unlink(missing_ok=True)
    for name, pid in others.items():
        stop_session(name, pid, STOP_TIMEOUT["airflow"], terminate=False)
        _pid_file(cfg, name).unlink(missing_ok=True)
    if api_server is not None:
        stop_session("airflow-api-server", api_server, STOP_TIMEOUT["airflow"])
        _pid_file(cfg, "airflow-api-server").unlink(missing_ok=True)


def _stop_service(cfg: Config, service: str) -> None:
    pids = _service_pids(cfg, service)
    if not any(pids.values()):
        print(f"{service}: not running")
        return
    t0 = time.monotonic()
    if service == "airflow":
        _stop_airflow(cfg, pids)
    else:
        for name, pid in pids.items():
            if pid is not None:
                stop_session(name, pid, STOP_TIMEOUT[service])
                _pid_file(cfg, name).unlink(missing_ok=True)
    print(f"{service}: stopped [{time.monotonic() - t0:.1f} s]")


def cmd_stop(cfg: Config, services: list[str]) -> int:
    with stack_lock(cfg):
        for service in reversed(services):  # Airflow first, S3 last
            _stop_service(cfg, service)
    return 0


def cmd_status(cfg: Config, services: list[str], as_json: bool = False) -> int:
    checks = {"s3": s3_healthy, "providers": providers_healthy, "mlflow": mlflow_healthy,
              "airflow": lambda c: airflow_healthy(c) and celery_workers_ready(c), "webhooks": webhooks_healthy}
    urls = {"s3": cfg.s3_url, "providers": cfg.providers_url, "mlflow": cfg.mlflow_url, "airflow": cfg.airflow_url,
            "webhooks": cfg.webhooks_url}
    report = {}
    for service in services:
        pids = _service_pids(cfg, service)
        report[service] = {"healthy": checks[service](cfg), "url": urls[service], "pids": pids}
    down = [service for service, state in report.items() if not state["healthy"]]
    if as_json:
        print(json.dumps(report))
        return 1 if down else 0
    for service, state in report.items():
        pids = state["pids"]
        detail = ", ".join(f"{name} {pid or '-'}" for name, pid in pids.items())
        if state["healthy"] and not all(pids.values()):
            detail += " (answering, but not started from this state directory)"
        print(f"{service:9s} {'healthy' if state['healthy'] else 'down':8s} {state['url']}  pids: {detail}")
        if service == "airflow" and not state["healthy"] and (health := airflow_health(cfg)):
            parts = {key: (value or {}).get("status") for key, value in health.items()}
            print(f"         components: {parts}; logs in {cfg.logs_dir}")
    if "SMFLOW_DB_BACKEND" in cfg.recorded:
        print(f"database mlflow: {_redact(cfg.recorded.get('SMFLOW_MLFLOW_BACKEND_STORE_URI', '?'))}")
        print(f"         airflow: {_redact(cfg.recorded.get('SMFLOW_AIRFLOW_DB_URL', '?'))}")
    else:
        print("database unknown (never started)")
    print(f"state    {cfg.home}")
    return 1 if down else 0


def cmd_env(cfg: Config) -> int:
    if not cfg.stack_env_path.is_file():
        print(f"{cfg.stack_env_path} does not exist yet; run `infra/stack.py start`", file=sys.stderr)
        return 1
    sys.stdout.write(cfg.stack_env_path.read_text())
    return 0


def cmd_prepare_airflow(cfg: Config) -> int:
    with stack_lock(cfg):
        db, _, env = _prepare(cfg)
        env = {**env, "AIRFLOW_HOME": str(cfg.airflow_home)}
        t0 = time.monotonic()
        prepare_airflow(cfg, db, env)
    for note in db.notes:
        print(f"note: {note}")
    print(f"airflow: AIRFLOW_HOME={cfg.airflow_home} prepared ({db.airflow_backend}) [{time.monotonic() - t0:.1f} s]")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stack.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("start", "start services (idempotent; healthy ones are reused)"),
        ("stop", "stop services (whole process sessions)"),
        ("status", "print each service healthy/down; exit 1 if one is down"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("--only", help="comma-separated subset of " + ",".join(SERVICES))
        if name == "status":
            command.add_argument("--json", action="store_true", help="one JSON object: healthy, url, pids per service")
    sub.add_parser("env", help="print $SMFLOW_HOME/stack.env")
    sub.add_parser("prepare-airflow", help="write airflow.cfg and migrate the DB; start no daemon")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `stack.py status | head` ends quietly
    try:
        cfg = Config.load()
        if args.command == "start":
            return cmd_start(cfg, _services(args.only))
        if args.command == "stop":
            return cmd_stop(cfg, _services(args.only))
        if args.command == "status":
            return cmd_status(cfg, _services(args.only), as_json=args.json)
        if args.command == "env":
            return cmd_env(cfg)
        return cmd_prepare_airflow(cfg)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
