"""Sensors: wait for late granules without holding a worker slot."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout

from smflow.operators.triggers import GranuleAvailableTrigger, deadline_after

log = logging.getLogger(__name__)


def missing_granule(product: str, day: str, wait_seconds: float) -> dict[str, Any]:
    """The XCom a :class:`GranuleSensor` returns when the granule did not come in time."""
    return {
        "product": product,
        "day": day,
        "bucket": None,
        "key": None,
        "status": "missing",
        "reason": f"not in archive after {wait_seconds / 60:g} min",
    }


class GranuleSensor(BaseSensorOperator):
    """Wait for the ``day`` granule of ``product`` in the landing zone.

    Returns (XCom) the granule reference ``{"product", "day", "bucket", "key"}``; if it has not
    arrived after ``wait_timeout`` it does **not** fail but returns :func:`missing_granule`
    (``key`` None, ``status`` ``"missing"``), so the day's products are made without it and
    record the missing input.

    :param product: smflow product name. (templated)
    :param day: UTC day ``YYYY-MM-DD``, e.g. ``"{{ ds }}"``. (templated)
    :param wait_timeout: how long to wait for the granule [s or timedelta].
    :param poke_interval: seconds between two looks.
    :param landing_bucket: landing bucket (default: the deployment's). (templated)
    :param deferrable: wait in the triggerer (default) instead of a worker slot.
    """

    template_fields: Sequence[str] = ("product", "day", "landing_bucket")
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
        **kwargs: Any,
    ) -> None:
        wait = wait_timeout.total_seconds() if isinstance(wait_timeout, timedelta) else float(wait_timeout)
        super().__init__(poke_interval=poke_interval, timeout=wait, **kwargs)
        self.product = product
        self.day = day
        self.wait_seconds = wait
        self.landing_bucket = landing_bucket
        self.deferrable = deferrable

    def _zone(self):
        from smflow.config import Settings
        from smflow.landing import LandingZone

        settings = Settings.load()
        if self.landing_bucket:
            settings = dataclasses.replace(settings, landing_bucket=self.landing_bucket)
        return LandingZone(settings)

    def poke(self, context) -> PokeReturnValue | bool:
        zone = self._zone()
        day = str(self.day)[:10]
        ref = zone.find(self.product, day)
        if ref is not None:
            return PokeReturnValue(is_done=True, xcom_value=ref.to_dict())
        log.info("waiting for %s", zone.expected(self.product, day))
        return False

    def execute(self, context) -> dict[str, Any]:
        if not self.deferrable:
            try:
                return super().execute(context)
            except AirflowSensorTimeout:
                return self._missing()
        found = self.poke(context)  # already there: no need to defer
        if found:
            return found.xcom_value
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
        if status == "found":
            return {k: event[k] for k in ("product", "day", "bucket", "key")}
        if status == "timeout":
            log.warning("%s %s not in the landing zone after %.0f s: going on without it",
                        self.product, self.day, self.wait_seconds)
            return self._missing()
        raise AirflowException(f"GranuleAvailableTrigger sent an unexpected event {event!r}.")

    def _missing(self) -> dict[str, Any]:
        return missing_granule(self.product, str(self.day)[:10], self.wait_seconds)
