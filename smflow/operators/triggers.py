"""Triggers (run in Airflow's triggerer, asyncio): wait for a product-day granule to arrive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class GranuleAvailableTrigger(BaseTrigger):
    """Fire when the ``day`` granule of ``product`` is in the landing zone, or at ``deadline``.

    The deadline is an absolute UTC time in the serialized kwargs, so a triggerer restart does
    not restart the wait. Reaching it is not an error: the event says ``"status": "timeout"``
    and the sensor lets the run go on with the input recorded as missing.

    :param product: smflow product name (``smap``, ``era5_land``, ...).
    :param day: UTC day, ISO ``YYYY-MM-DD``.
    :param deadline: ISO 8601 UTC time after which the trigger gives up.
    :param poke_interval: seconds between two looks at the landing zone.
    :param landing_bucket: landing bucket (default: the deployment's ``SMFLOW_LANDING_BUCKET``).
    """

    def __init__(
        self,
        *,
        product: str,
        day: str,
        deadline: str,
        poke_interval: float = 300.0,
        landing_bucket: str | None = None,
    ) -> None:
        super().__init__()
        self.product = product
        self.day = day
        self.deadline = deadline
        self.poke_interval = poke_interval
        self.landing_bucket = landing_bucket

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"product": self.product, "day": self.day, "deadline": self.deadline,
             "poke_interval": self.poke_interval, "landing_bucket": self.landing_bucket},
        )

    def _zone(self):
        import dataclasses

        from smflow.config import Settings
        from smflow.landing import LandingZone

        settings = Settings.load()
        if self.landing_bucket:
            settings = dataclasses.replace(settings, landing_bucket=self.landing_bucket)
        return LandingZone(settings)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = datetime.fromisoformat(self.deadline)
        zone = await asyncio.to_thread(self._zone)
        started = datetime.now(timezone.utc)
        while True:
            # boto3 is blocking: keep it off the triggerer's event loop.
            ref = await asyncio.to_thread(zone.find, self.product, self.day)
            if ref is not None:
                yield TriggerEvent({"status": "found", **ref.to_dict()})
                return
            now = datetime.now(timezone.utc)
            if now >= deadline:
                yield TriggerEvent({"status": "timeout", "product": self.product, "day": self.day,
                                    "bucket": zone.bucket, "expected": zone.expected(self.product, self.day),
                                    "waited_seconds": (now - started).total_seconds()})
                return
            await asyncio.sleep(min(self.poke_interval, (deadline - now).total_seconds()))


def deadline_after(seconds: float) -> str:
    """ISO UTC time ``seconds`` from now (for :class:`GranuleAvailableTrigger`)."""
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat()
