"""Alerts to operators through Airflow notifiers: e-mail (SMTP) and a generic webhook.

Channels are Airflow connections, so a deployment configures them like any other connection
(UI, environment ``AIRFLOW_CONN_*``, a secrets backend); a channel whose connection is not defined
is skipped, and an alert that cannot be delivered never hides the failure it reports.

- ``smflow_alert_smtp`` (conn type ``smtp``): host, port, login / password; ``extra`` holds
  ``to`` (list of addresses), ``from_email`` and the SMTP provider's options (``disable_tls``...).
  Sent with the SMTP provider's :class:`~airflow.providers.smtp.notifications.smtp.SmtpNotifier`.
- ``smflow_alert_webhook`` (conn type ``http``): ``host`` is the URL the alert is POSTed to as
  JSON; a ``password``, if set, signs the body (header ``X-Smflow-Signature: sha256=<HMAC>``) so
  the receiver can refuse forged alerts. Sent by :class:`WebhookNotifier`, a ``BaseNotifier``.

Events: ``task_failed`` (every DAG's failure callback, :mod:`smflow.operators.callbacks`),
``granule_quarantined`` (the daily DAG's ingest), ``deadline_missed`` (the daily DAG's Airflow 3
deadline alert: a day not done in time, :func:`deadline_missed`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

log = logging.getLogger("smflow.alerts")

SMTP_CONN_ID = "smflow_alert_smtp"
WEBHOOK_CONN_ID = "smflow_alert_webhook"
SIGNATURE_HEADER = "X-Smflow-Signature"


def _connection(conn_id: str):
    """The Airflow connection ``conn_id``, or None when it is not defined."""
    from airflow.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - AirflowNotFoundException (and its SDK variants): not configured
        return None


def _payload(event: str, message: str, context: dict[str, Any] | None) -> dict[str, Any]:
    ti = (context or {}).get("task_instance") or (context or {}).get("ti")
    run = (context or {}).get("dag_run")
    return {
        "event": event,
        "message": message,
        "dag_id": getattr(ti, "dag_id", None) or getattr(run, "dag_id", None) or (context or {}).get("dag_id"),
        "run_id": getattr(ti, "run_id", None) or getattr(run, "run_id", None) or (context or {}).get("run_id"),
        "task_id": getattr(ti, "task_id", None),
        "map_index": getattr(ti, "map_index", None),
        "logical_date": str((context or {}).get("logical_date")) if (context or {}).get("logical_date") else None,
    }


def signature(key: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of body>`` with ``key``: the value of :data:`SIGNATURE_HEADER`."""
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def _base_notifier():
    from airflow.sdk import BaseNotifier

    return BaseNotifier


class WebhookNotifier(_base_notifier()):
    """POST an alert as JSON to the URL of an HTTP connection, signed when it has a password.

    Parameters
    ----------
    event : str
        What happened (``task_failed``, ``granule_quarantined``, ``deadline_missed``).
    message : str
        Human-readable text (templated).
    conn_id : str
        HTTP connection whose ``host`` is the full URL.

    Raises
    ------
    requests.HTTPError
        The receiver answered with an error status (``notify``); :func:`send_alert` logs it.
    """

    template_fields = ("message",)

    def __init__(self, *, event: str, message: str, conn_id: str = WEBHOOK_CONN_ID) -> None:
        super().__init__()
        self.event, self.message, self.conn_id = event, message, conn_id

    def notify(self, context) -> None:
        import requests

        conn = _connection(self.conn_id)
        if conn is None:
            raise LookupError(f"webhook connection {self.conn_id!r} is not defined")
        url = conn.host if "://" in (conn.host or "") else f"{conn.schema or 'http'}://{conn.host}:{conn.port}"
        body = json.dumps(_payload(self.event, self.message, context), sort_keys=True, default=str).encode()
        headers = {"Content-Type": "application/json"}
        if conn.password:
            headers[SIGNATURE_HEADER] = signature(conn.password, body)
        requests.post(url, data=body, headers=headers, timeout=10).raise_for_status()


def send_alert(event: str, message: str, context: dict[str, Any] | None = None) -> list[str]:
    """Send an alert through every configured channel; returns the channels that delivered it.

    Never raises: a channel that fails is logged and skipped.
    """
    delivered = []
    smtp = _connection(SMTP_CONN_ID)
    if smtp is not None:
        try:
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            extra = smtp.extra_dejson
            payload = _payload(event, message, context)
            SmtpNotifier(
                to=extra.get("to") or [],
                from_email=extra.get("from_email"),
                subject=f"[smflow] {event}: {payload['dag_id'] or ''} {payload['task_id'] or ''}".strip(),
                html_content="<pre>" + json.dumps(payload, indent=1, default=str).replace("<", "&lt;") + "</pre>",
                smtp_conn_id=SMTP_CONN_ID,
            ).notify(context or {})
            delivered.append("smtp")
        except Exception:  # noqa: BLE001 - see docstring
            log.exception("alert %s: e-mail through %s failed", event, SMTP_CONN_ID)
    if _connection(WEBHOOK_CONN_ID) is not None:
        try:
            WebhookNotifier(event=event, message=message).notify(context or {})
            delivered.append("webhook")
        except Exception:  # noqa: BLE001 - see docstring
            log.exception("alert %s: webhook %s failed", event, WEBHOOK_CONN_ID)
    log.info("alert %s sent through %s", event, delivered or "no configured channel")
    return delivered


async def deadline_missed(dag_id: str = "", hours: float = 0.0, **kwargs: Any) -> None:
    """Callback of the daily DAG's deadline alert (run by Airflow's triggerer): the day's run was
    not done ``hours`` after it was queued."""
    import asyncio

    context = kwargs.get("context") or {}
    run_id = (context.get("dag_run") or {}).get("run_id") if isinstance(context.get("dag_run"), dict) else None
    await asyncio.to_thread(
        send_alert, "deadline_missed",
        f"{dag_id}: a run was not done {hours:g} h after it was queued (run {run_id or 'see the Airflow UI'})",
        {"dag_id": dag_id, "run_id": run_id},
    )
