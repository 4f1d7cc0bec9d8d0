"""Sensors: wait for late granules without holding a worker slot."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout

from smflow.operators.triggers import GranuleAvailableTrigger, ProviderGranuleTrigger, deadline_after

log = logging.getLogger(__name__)


def missing_granule(product: str, day: str, wait_seconds: float, reason: str | None = None,
                    status: str = "missing") -> dict[str, Any]:
    """The XCom a :class:`GranuleSensor` returns when the granule did not come in time (or was refused)."""
    return {
        "product": product,
        "day": day,
        "bucket": None,
        "key": None,
        "status": status,
        "reason": reason or f"not in archive after {wait_seconds / 60:g} min",
    }


class GranuleSensor(BaseSensorOperator):
    """Wait for the ``day`` granule of ``product``: at its provider, or in the landing zone.

    With ``source="provider"`` the provider's search API is polled
    (:class:`~smflow.operators.triggers.ProviderGranuleTrigger`; provider outages and HTTP 429
    are waited out with backoff) and the XCom is ``{"product", "day", "status": "found",
    "granule": {...}}`` (a :class:`smflow.archive.fetch.ProviderGranule`) for the fetch task. With
    ``source="landing"`` the landing zone is watched and the XCom is the granule reference
    ``{"product", "day", "bucket", "key"}``.

    If the granule has not come after ``wait_timeout`` the sensor does **not** fail but returns
    :func:`missing_granule` (``key`` None, ``status`` ``"missing"``, the reason), so the day's
    products are made without it and record the missing input; a provider answering with a
    granule of another day or collection gives ``status`` ``"refused"`` with the reason. Missing
    credentials fail the task (the message names the connection).

    :param product: smflow product name. (templated)
    :param day: UTC day ``YYYY-MM-DD``, e.g. ``"{{ ds }}"``. (templated)
    :param wait_timeout: how long to wait for the granule [s or timedelta].
    :param poke_interval: seconds between two looks.
    :param landing_bucket: landing bucket (default: the deployment's). (templated)
    :param deferrable: wait in the triggerer (default) instead of a worker slot.
    :param source: ``"provider"`` or ``"landing"``.
    :param wait_hours, poke_seconds: override ``wait_timeout`` / ``poke_interval`` at run time,
        e.g. from the run's params (``"{{ params.granule_wait_hours }}"``). (templated)
    """

    template_fields: Sequence[str] = ("product", "day", "landing_bucket", "wait_hours", "poke_seconds")
    ui_color = "#c6e2ff"

    def __init__(
        self,
        *,
        product: str,
        day: str,
        wait_timeout: timedelta | float = timedelta(hours=6),
        poke_interval: float = 300.0,
        landing_bucket: str | None = None,
        deferrable: bool = True,
        source: str = "landing",
        wait_hours: str | float | None = None,
        poke_seconds: str | float | None = None,
        **kwargs: Any,
    ) -> None:
        if source not in ("provider", "landing"):
            raise ValueError(f"source must be 'provider' or 'landing', got {source!r}")
        wait = wait_timeout.total_seconds() if isinstance(wait_timeout, timedelta) else float(wait_timeout)
        super().__init__(poke_interval=poke_interval, timeout=wait, **kwargs)
        self.product = product
        self.day = day
        self.wait_seconds = wait
        self.landing_bucket = landing_bucket
        self.deferrable = deferrable
        self.source = source
        self.wait_hours = wait_hours
        self.poke_seconds = poke_seconds

    def _zone(self):
        from smflow.config import Settings
        from smflow.landing import LandingZone

        settings = Settings.load()
        if self.landing_bucket:
            settings = dataclasses.replace(settings, landing_bucket=self.landing_bucket)
        return LandingZone(settings)

    def _poke_provider(self) -> PokeReturnValue | bool:
        from smflow.archive.base import CredentialsError, ProviderUnavailable, UnexpectedGranule
        from smflow.archive.fetch import find_granule

        day = str(self.day)[:10]
        try:
            granule = find_granule(self.product, day)
        except CredentialsError as exc:  # no retry can fix it: fail now, naming the connection
            raise AirflowFailException(str(exc)) from None
        except ProviderUnavailable as exc:
            log.warning("%s %s: %s; waiting", self.product, day, exc)
            return False
        except UnexpectedGranule as exc:
            return PokeReturnValue(is_done=True, xcom_value=self._missing(str(exc), status="refused"))
        if granule is None:
            log.info("%s %s: not yet published by the provider", self.product, day)
            return False
        return PokeReturnValue(is_done=True, xcom_value={"product": self.product, "day": day, "status": "found",
                                                         "granule": granule.to_dict()})

    def poke(self, context) -> PokeReturnValue | bool:
        if self.source == "provider":
            return self._poke_provider()
        zone = self._zone()
        day = str(self.day)[:10]
        ref = zone.find(self.product, day)
        if ref is not None:
            return PokeReturnValue(is_done=True, xcom_value=ref.to_dict())
        log.info("waiting for %s", zone.expected(self.product, day))
        return False

    def _apply_overrides(self) -> None:
        if self.wait_hours not in (None, "", "None"):
            self.wait_seconds = float(self.wait_hours) * 3600.0
            self.timeout = self.wait_seconds
        if self.poke_seconds not in (None, "", "None"):
            self.poke_interval = float(self.poke_seconds)

    def execute(self, context) -> dict[str, Any]:
        self._apply_overrides()
        if not self.deferrable:
            try:
                return super().execute(context)
            except AirflowSensorTimeout:
                return self._missing()
        found = self.poke(context)  # already there: no need to defer
        if found:
            return found.xcom_value
        if self.source == "provider":
            self.defer(
                trigger=ProviderGranuleTrigger(
                    product=self.product, day=str(self.day)[:10],
                    deadline=deadline_after(self.wait_seconds), poke_interval=self.poke_interval,
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=self.wait_seconds + max(600.0, 2 * self.poke_interval)),
            )
        self.defer(
            trigger=GranuleAvailableTrigger(
                product=self.product, day=str(self.day)[:10],
                deadline=deadline_after(self.wait_seconds), poke_interval=self.poke_interval,
                landing_bucket=self.landing_bucket,
            ),
            method_name="execute_complete",
            # the trigger times out itself (and says so); this only guards a lost triggerer
            timeout=timedelta(seconds=self.wait_seconds + max(600.0, 2 * self.poke_interval)),
        )

    def execute_complete(self, context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume from :class:`GranuleAvailableTrigger`: the reference, or the missing record."""
        event = event or {}
        status = event.get("status")
        if status == "found" and "granule" in event:
            return {"product": self.product, "day": str(self.day)[:10], "status": "found",
                    "granule": event["granule"]}
        if status == "found":
            return {k: event[k] for k in ("product", "day", "bucket", "key")}
        if status == "timeout":
            log.warning("%s %s not available after %.0f s: going on without it (%s)",
                        self.product, self.day, self.wait_seconds, event.get("reason", ""))
            return self._missing(event.get("reason"))
        if status == "refused":
            log.warning("%s %s refused: %s", self.product, self.day, event.get("reason"))
            return self._missing(event.get("reason"), status="refused")
        if status == "error" and event.get("reason"):
            raise AirflowFailException(event["reason"])
        raise AirflowException(f"the granule trigger sent an unexpected event {event!r}.")

    def _missing(self, reason: str | None = None, status: str = "missing") -> dict[str, Any]:
        return missing_granule(self.product, str(self.day)[:10], self.wait_seconds, reason, status)
