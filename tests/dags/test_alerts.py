"""Alerts reach a real SMTP server and a real webhook receiver (both local), from send_alert, from
the deadline callback and from a task that fails in a real ``airflow dags test`` run."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
KEY = "alert-signing-key"


class _Mailbox:
    """A local SMTP server (stdlib smtpd, in a thread) that keeps what it receives."""

    def __init__(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import asyncore
            import smtpd
        box = self
        self.messages: list[tuple[str, list[str], str]] = []

        class Server(smtpd.SMTPServer):
            def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
                box.messages.append((mailfrom, rcpttos, data.decode() if isinstance(data, bytes) else data))

        self.server = Server(("127.0.0.1", 0), None)
        self.port = self.server.socket.getsockname()[1]
        self._stop = False
        self.thread = threading.Thread(target=lambda: [asyncore.loop(timeout=0.1, count=1) for _ in iter(lambda: self._stop, True)],
                                       daemon=True)
        self.thread.start()

    def close(self):
        self._stop = True
        self.thread.join(timeout=5)
        self.server.close()


class _Hooks:
    """A local webhook receiver: keeps (headers, body) of every POST; answers ``status``."""

    def __init__(self):
        hooks = self
        self.received: list[tuple[dict, bytes]] = []
        self.status = 200

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hooks.received.append((dict(self.headers), body))
                self.send_response(hooks.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receivers(monkeypatch):
    mailbox, hooks = _Mailbox(), _Hooks()
    smtp = {"conn_type": "smtp", "host": "127.0.0.1", "port": mailbox.port,
            "extra": {"to": ["ops@example.org"], "from_email": "smflow@example.org", "disable_tls": True,
                      "disable_ssl": True}}
    webhook = {"conn_type": "http", "host": hooks.url, "password": KEY}
    env = {"AIRFLOW_CONN_SMFLOW_ALERT_SMTP": json.dumps(smtp), "AIRFLOW_CONN_SMFLOW_ALERT_WEBHOOK": json.dumps(webhook)}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    yield mailbox, hooks, env
    mailbox.close()
    hooks.close()


def _mail(text: str) -> tuple[str, str]:
    """(subject, decoded text of every part) of a received e-mail."""
    import email

    message = email.message_from_string(text)
    parts = [p.get_payload(decode=True) for p in message.walk() if not p.is_multipart()]
    return message["Subject"], "\n".join(p.decode() for p in parts if p)


def _wait(predicate, seconds=10.0):
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end and not predicate():
        time.sleep(0.1)
    return predicate()


def test_an_alert_reaches_mail_and_a_signed_webhook(receivers):
    from smflow.operators.alerts import SIGNATURE_HEADER, send_alert, signature

    mailbox, hooks, _ = receivers
    assert send_alert("granule_quarantined", "smap 2018-06-03: values 2.1-48.3, expected 0-0.6 m3 m-3: wrong units?",
                      {"dag_id": "daily_soil_moisture", "run_id": "r1"}) == ["smtp", "webhook"]
    assert _wait(lambda: mailbox.messages)
    sender, to, text = mailbox.messages[0]
    subject, body = _mail(text)
    assert to == ["ops@example.org"] and subject.startswith("[smflow] granule_quarantined") and "wrong units?" in body
    headers, body = hooks.received[0]
    assert headers[SIGNATURE_HEADER] == signature(KEY, body)  # the receiver can check who sent it
    payload = json.loads(body)
    assert payload["event"] == "granule_quarantined" and payload["dag_id"] == "daily_soil_moisture"


def test_unconfigured_or_failing_channels_never_raise(receivers, monkeypatch):
    from smflow.operators.alerts import send_alert

    mailbox, hooks, _ = receivers
    hooks.status = 500
    assert send_alert("task_failed", "x") == ["smtp"]  # the webhook refused: logged, not raised
    monkeypatch.delenv("AIRFLOW_CONN_SMFLOW_ALERT_SMTP")
    monkeypatch.delenv("AIRFLOW_CONN_SMFLOW_ALERT_WEBHOOK")
    assert send_alert("task_failed", "x") == []


def test_the_deadline_callback_alerts(receivers):
    from smflow.operators.alerts import deadline_missed

    _, hooks, _ = receivers
    asyncio.run(deadline_missed(dag_id="daily_soil_moisture", hours=8.0))
    payload = json.loads(hooks.received[-1][1])
    assert payload["event"] == "deadline_missed" and "not done 8 h after it was queued" in payload["message"]


def test_a_pipeline_with_deadline_hours_gets_a_deadline_alert():
    import importlib.util
    import json

    spec_path = HERE.parents[1] / "dags" / "daily_soil_moisture.py"
    module_spec = importlib.util.spec_from_file_location("daily_dag_module", spec_path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    pipelines = json.loads(module.PIPELINES.read_text())["pipelines"]
    spec = {**pipelines["big_island"], "dag_id": "daily_deadline_probe", "deadline_hours": 8}
    dag = module.build_daily_dag("big_island", spec)
    deadlines = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]
    assert deadlines[0].interval.total_seconds() == 8 * 3600
    assert deadlines[0].callback.path.endswith("smflow.operators.alerts.deadline_missed") or \
        "deadline_missed" in str(deadlines[0].callback)
    # not configured: no deadline (Airflow 3.3's dags test cannot finish a run of a DAG with one)
    assert not module.build_daily_dag("big_island", {**pipelines["big_island"], "dag_id": "daily_no_deadline"}).deadline


@pytest.mark.e2e
def test_a_failed_task_in_a_real_airflow_run_alerts(receivers, airflow_env):
    mailbox, hooks, env = receivers
    run_env = {**airflow_env, **env, "AIRFLOW__CORE__DAGS_FOLDER": str(HERE / "alert_dags")}
    out = subprocess.run([str(Path(sys.executable).parent / "airflow"), "dags", "test", "alert_probe", "2018-06-02"],
                         env=run_env, capture_output=True, text=True, timeout=300)
    assert "granule store unreachable" in out.stdout + out.stderr
    assert _wait(lambda: mailbox.messages and hooks.received), out.stdout[-3000:] + out.stderr[-3000:]
    payload = json.loads(hooks.received[-1][1])
    assert payload["event"] == "task_failed" and payload["task_id"] == "fail_on_purpose"
    assert "granule store unreachable" in payload["message"]
    assert _mail(mailbox.messages[-1][2])[0] == "[smflow] task_failed: alert_probe fail_on_purpose"
