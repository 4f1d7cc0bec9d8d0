"""Receiver of MLflow's registry webhooks: verify, de-duplicate, and start the right Airflow DAG run.

MLflow 3 (SQL backend) posts registry events to ``POST /mlflow`` of this small HTTP server, signed
as MLflow's ``mlflow.webhooks.delivery`` signs them (Standard-Webhooks style)::

    X-MLflow-Delivery-Id: <uuid>          X-MLflow-Timestamp: <unix seconds>
    X-MLflow-Signature: v1,<base64 HMAC-SHA256(secret, "<delivery id>.<timestamp>.<raw body>")>

- A request without the three headers, with a signature that does not match, or with a timestamp
  more than :data:`TOLERANCE_SECONDS` away from now is refused (401) and logged (the secret is
  never logged).
- A delivery id already handled is a replay: answered 200 ``ignored`` (so a sender stops), logged,
  nothing triggered. Handled ids are kept in ``<state dir>/deliveries.sqlite`` (survives restarts;
  ids older than twice the tolerance are pruned: their timestamps are refused anyway).
- A valid event is routed (:func:`route`) to an Airflow DAG run through Airflow's REST API (JWT from
  ``/auth/token``), with the event in the run's ``conf``; the run id is derived from the delivery id,
  so a retried delivery never starts a second run. Events: ``model_version.created`` ->
  ``evaluate_challenger`` (conf ``model``, ``version``, ``event``); ``model_version_tag.set`` with
  tag ``retrain`` = ``requested`` -> ``train_models`` (conf ``event``, ``requested_for``), or
  ``train_domain_models`` (conf also ``pipeline``) for a model a pipeline declares as its own
  (``models`` in ``config/daily_pipelines.json``: the global 0.25 deg pipeline's). Other
  events (alias moves, other tags) are acknowledged and logged, nothing runs.
- When Airflow cannot be reached the delivery is answered 503 and forgotten, so MLflow's retry
  (same delivery id) is handled, not taken for a replay.

Started, stopped and health-checked by ``infra/stack.py`` (service ``webhooks``, port
``SMFLOW_WEBHOOKS_PORT``), which also generates the shared secret (0600) and registers the webhook
in MLflow (:func:`register_webhook`). Only the standard library and ``requests`` (MLflow only in
``register``): no Airflow import.

    python -m smflow.operators.webhooks serve --port 8790 --state-dir DIR --secret-file FILE
    python -m smflow.operators.webhooks register --receiver-url URL --secret-file FILE   # MLflow admin
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger("smflow.webhooks")

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_HEADER = "X-MLflow-Delivery-Id"
SIGNATURE_VERSION = "v1"
#: Seconds a delivery's timestamp may differ from the receiver's clock (Standard Webhooks: 5 min).
TOLERANCE_SECONDS = 300
#: The path MLflow posts to.
PATH = "/mlflow"
MAX_BODY_BYTES = 1 << 20
#: Tag a scientist sets on a model version to ask for retraining (value :data:`RETRAIN_VALUE`).
RETRAIN_TAG, RETRAIN_VALUE = "retrain", "requested"
#: Name of the MLflow registry webhook (one per MLflow server; updated in place).
WEBHOOK_NAME = "smflow-airflow"
#: Registry events MLflow posts to the receiver (:func:`route` acts on the first two).
WEBHOOK_EVENTS = ("model_version.created", "model_version_tag.set", "model_version_alias.created",
                  "model_version_alias.deleted")


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """``X-MLflow-Signature`` of ``body`` as MLflow computes it: ``v1,`` + base64 of
    HMAC-SHA256(secret, ``delivery_id.timestamp.body``)."""
    content = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def verify(secret: str, headers: Any, body: bytes, *, now: float | None = None,
           tolerance: float = TOLERANCE_SECONDS) -> str | None:
    """None when ``body`` is signed with ``secret`` and fresh, else the reason it is refused."""
    delivery, stamp, signature = (headers.get(h) for h in (DELIVERY_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER))
    if not signature:
        return "unsigned (no X-MLflow-Signature)"
    if not delivery or not stamp:
        return "no X-MLflow-Delivery-Id / X-MLflow-Timestamp"
    try:
        age = (time.time() if now is None else now) - int(stamp)
    except ValueError:
        return f"timestamp {stamp[:20]!r} is not unix seconds"
    expected = sign(secret, delivery, stamp, body)
    # several space-separated signatures are allowed (secret rotation); one match is enough
    if not any(hmac.compare_digest(expected, candidate) for candidate in signature.split()):
        return "signature does not match (forged, altered, or signed with another secret)"
    if abs(age) > tolerance:
        return f"timestamp {age:+.0f} s away from now (more than {tolerance:.0f} s: stale or replayed)"
    return None


class DeliveryLog:
    """Delivery ids handled, in SQLite (one row per id; the primary key makes a claim atomic)."""

    def __init__(self, path: Path, *, keep_seconds: float = 2 * TOLERANCE_SECONDS) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.keep_seconds = keep_seconds
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS delivery (id TEXT PRIMARY KEY, received REAL NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10, isolation_level=None)

    def claim(self, delivery_id: str) -> bool:
        """True the first time ``delivery_id`` is claimed; False for a replay."""
        now = time.time()
        with self._lock, self._connect() as db:
            db.execute("DELETE FROM delivery WHERE received < ?", (now - self.keep_seconds,))
            return db.execute("INSERT OR IGNORE INTO delivery VALUES (?, ?)", (delivery_id, now)).rowcount == 1

    def release(self, delivery_id: str) -> None:
        """Forget ``delivery_id`` (it could not be handled: the sender's retry must get through)."""
        with self._lock, self._connect() as db:
            db.execute("DELETE FROM delivery WHERE id = ?", (delivery_id,))


@dataclass(frozen=True)
class Route:
    """The DAG run an event asks for."""

    dag_id: str
    conf: dict[str, Any]


def route(event: dict[str, Any]) -> Route | None:
    """The DAG run of an MLflow webhook payload (``entity``, ``action``, ``timestamp``, ``data``),
    or None when the event asks for nothing."""
    kind = f"{event.get('entity')}.{event.get('action')}"
    data = event.get("data") or {}
    if kind == "model_version.created" and data.get("name") and data.get("version"):
        return Route("evaluate_challenger", {"model": str(data["name"]), "version": str(data["version"]), "event": event})
    if (kind == "model_version_tag.set" and data.get("key") == RETRAIN_TAG
            and str(data.get("value", "")).strip().lower() == RETRAIN_VALUE):
        conf = {"requested_for": f"{data.get('name')} v{data.get('version')}", "event": event}
        owner = _domain_pipeline_of(str(data.get("name")))
        if owner is not None:
            return Route("train_domain_models", {**conf, "pipeline": owner})
        return Route("train_models", conf)
    return None


def _domain_pipeline_of(model: str) -> str | None:
    """The key of the pipeline that declares ``model`` among its own ``models``, or None."""
    from smflow.catalog.pipelines import pipelines

    return next((key for key, p in pipelines().items() if model in dict(p.models).values()), None)


class AirflowTrigger:
    """Starts DAG runs through the Airflow REST API (:class:`smflow.operators.airflow_api.AirflowClient`,
    logged in at the first delivery)."""

    def __init__(self, base_url: str, password_file: Path, username: str = "admin") -> None:
        from smflow.operators.airflow_api import AirflowClient

        self.client = AirflowClient(base_url, password_file=password_file, username=username, connect=False)

    def __call__(self, dag_id: str, run_id: str, conf: dict[str, Any]) -> str:
        """Start ``dag_id`` with ``run_id`` and ``conf``; returns the run id (also when it already
        exists: the same delivery was handled before)."""
        return self.client.trigger(dag_id, conf, run_id=run_id)


def run_id_of(delivery_id: str) -> str:
    """The DAG run id of a delivery: one run per delivery, whatever the retries."""
    return f"mlflow_webhook__{delivery_id}"


def handle(secret: str, deliveries: DeliveryLog, trigger: Callable[[str, str, dict], str], headers: Any,
           body: bytes, client: str = "?") -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON answer) of one delivery; every refusal and replay is logged."""
    refused = verify(secret, headers, body)
    if refused:
        log.warning("refused delivery from %s: %s", client, refused)
        return 401, {"status": "refused", "reason": refused}
    delivery = headers.get(DELIVERY_HEADER)
    try:
        event = json.loads(body)
    except ValueError:
        log.warning("refused delivery %s from %s: body is not JSON", delivery, client)
        return 400, {"status": "refused", "reason": "body is not JSON"}
    if not deliveries.claim(delivery):
        log.warning("ignored replayed delivery %s (%s.%s) from %s", delivery, event.get("entity"),
                    event.get("action"), client)
        return 200, {"status": "ignored", "reason": "replay: delivery already handled"}
    target = route(event)
    if target is None:
        log.info("delivery %s: %s.%s, nothing to run", delivery, event.get("entity"), event.get("action"))
        return 200, {"status": "no action"}
    conf = {**target.conf, "event": {**target.conf["event"], "delivery_id": delivery}}
    try:
        run_id = trigger(target.dag_id, run_id_of(delivery), conf)
    except Exception as exc:  # noqa: BLE001 - Airflow down, auth, network: let MLflow retry
        deliveries.release(delivery)
        log.error("delivery %s: could not start %s: %s", delivery, target.dag_id, exc)
        return 503, {"status": "error", "reason": f"could not start {target.dag_id}: {exc}"[:500]}
    log.info("delivery %s: %s.%s -> %s run %s", delivery, event.get("entity"), event.get("action"), target.dag_id, run_id)
    return 200, {"status": "triggered", "dag_id": target.dag_id, "dag_run_id": run_id}


def make_server(host: str, port: int, secret: str, deliveries: DeliveryLog,
                trigger: Callable[[str, str, dict], str]) -> ThreadingHTTPServer:
    """The HTTP server (not started): ``GET /health``, ``POST /mlflow``."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "smflow-webhooks"

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path == "/health":
                self._answer(200, {"status": "ok"})
            else:
                self._answer(404, {"status": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path != PATH:
                self._answer(404, {"status": "not found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._answer(413, {"status": "refused", "reason": "body too large"})
                return
            body = self.rfile.read(length)
            self._answer(*handle(secret, deliveries, trigger, self.headers, body, self.client_address[0]))

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            log.debug("%s " + format, self.client_address[0], *args)

    return ThreadingHTTPServer((host, port), Handler)


def register_webhook(receiver_url: str, secret: str, *, tracking_uri: str | None = None) -> str:
    """Create, or update in place, the MLflow webhook :data:`WEBHOOK_NAME` that posts
    :data:`WEBHOOK_EVENTS` to ``receiver_url`` signed with ``secret`` (idempotent; extra copies are
    deleted). Needs MLflow's admin (``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``);
    used by ``infra/stack.py`` and by the compose service ``webhooks``.

    Returns
    -------
    str
        What was done, e.g. ``"MLflow webhook smflow-airflow -> http://.../mlflow created"``.
    """
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    wanted = {"url": receiver_url, "events": list(WEBHOOK_EVENTS), "secret": secret,
              "description": "smflow: registry events -> Airflow (smflow.operators.webhooks)"}
    existing, token = [], None
    while True:
        page = client.list_webhooks(max_results=100, page_token=token)
        existing += [w for w in page if w.name == WEBHOOK_NAME]
        token = page.token
        if not token:
            break
    if existing:
        client.update_webhook(existing[0].webhook_id, status="ACTIVE", **wanted)
        for extra in existing[1:]:
            client.delete_webhook(extra.webhook_id)
        return f"MLflow webhook {WEBHOOK_NAME} -> {receiver_url} updated"
    client.create_webhook(WEBHOOK_NAME, status="ACTIVE", **wanted)
    return f"MLflow webhook {WEBHOOK_NAME} -> {receiver_url} created"


def main(argv: list[str] | None = None) -> int:
    import os

    parser = argparse.ArgumentParser(prog="python -m smflow.operators.webhooks", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the receiver")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=int(os.environ.get("SMFLOW_WEBHOOKS_PORT") or 8790))
    serve.add_argument("--state-dir", type=Path, required=True, help="where the handled delivery ids are kept")
    serve.add_argument("--secret-file", type=Path, required=True, help="JSON file with the shared 'secret' (0600)")
    serve.add_argument("--airflow-url", default=os.environ.get("SMFLOW_AIRFLOW_URL", "http://127.0.0.1:8080"))
    serve.add_argument("--airflow-password-file", type=Path, default=os.environ.get("SMFLOW_AIRFLOW_PASSWORD_FILE"))
    register = sub.add_parser("register", help="create or update MLflow's webhook to this receiver (MLflow admin)")
    register.add_argument("--receiver-url", required=True, help="where MLflow posts, e.g. http://webhooks:8790/mlflow")
    register.add_argument("--secret-file", type=Path, required=True, help="JSON file with the shared 'secret' (0600)")
    register.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    secret = json.loads(args.secret_file.read_text())["secret"]
    if args.command == "register":
        print(register_webhook(args.receiver_url, secret, tracking_uri=args.tracking_uri))
        return 0
    server = make_server(args.host, args.port, secret, DeliveryLog(args.state_dir / "deliveries.sqlite"),
                         AirflowTrigger(args.airflow_url, args.airflow_password_file))
    log.info("receiving MLflow webhooks on http://%s:%d%s; DAG runs at %s", args.host, args.port, PATH, args.airflow_url)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
