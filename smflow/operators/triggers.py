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
    and the sensor lets the run go on with the input recorded as missing. S3 being down (connection
    errors, HTTP 5xx) is waited out with exponential backoff up to ``max_backoff`` seconds; the
    timeout event then says so in its ``reason``.

    :param product: smflow product name (``smap``, ``era5_land``, ...).
    :param day: UTC day, ISO ``YYYY-MM-DD``.
    :param deadline: ISO 8601 UTC time after which the trigger gives up.
    :param poke_interval: seconds between two looks at the landing zone.
    :param landing_bucket: landing bucket (default: the deployment's ``SMFLOW_LANDING_BUCKET``).
    :param max_backoff: longest pause between two looks while S3 is unavailable [s].
    """

    def __init__(
        self,
        *,
        product: str,
        day: str,
        deadline: str,
        poke_interval: float = 300.0,
        landing_bucket: str | None = None,
        max_backoff: float = 3600.0,
    ) -> None:
        super().__init__()
        self.product = product
        self.day = day
        self.deadline = deadline
        self.poke_interval = poke_interval
        self.landing_bucket = landing_bucket
        self.max_backoff = max_backoff

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"product": self.product, "day": self.day, "deadline": self.deadline,
             "poke_interval": self.poke_interval, "landing_bucket": self.landing_bucket,
             "max_backoff": self.max_backoff},
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
        from botocore.exceptions import BotoCoreError, ClientError

        deadline = datetime.fromisoformat(self.deadline)
        zone = await asyncio.to_thread(self._zone)
        started = datetime.now(timezone.utc)
        failures, last = 0, None
        while True:
            wait = self.poke_interval
            try:
                # boto3 is blocking: keep it off the triggerer's event loop.
                ref = await asyncio.to_thread(zone.find, self.product, self.day)
            except (BotoCoreError, ClientError) as exc:
                # S3 down or answering 5xx: not the granule's fault; ask again later, with backoff,
                # instead of crashing the trigger (which costs a task retry and restarts the wait).
                if isinstance(exc, ClientError) and not _transient(exc):
                    raise
                failures += 1
                last = f"S3 unavailable ({exc.__class__.__name__})"
                wait = min(self.max_backoff, self.poke_interval * 2 ** (failures - 1))
                self.log.warning("%s %s: %s; looking again in %.0f s", self.product, self.day, last, wait)
            else:
                failures = 0
                if ref is not None:
                    yield TriggerEvent({"status": "found", **ref.to_dict()})
                    return
            now = datetime.now(timezone.utc)
            if now >= deadline:
                waited = (now - started).total_seconds()
                event = {"status": "timeout", "product": self.product, "day": self.day, "bucket": zone.bucket,
                         "expected": zone.expected(self.product, self.day), "waited_seconds": waited}
                if last and failures:
                    event["reason"] = f"not in the landing zone after {waited / 60:.0f} min ({last})"
                yield TriggerEvent(event)
                return
            await asyncio.sleep(max(0.0, min(wait, (deadline - now).total_seconds())))


def _transient(exc) -> bool:
    """A ``ClientError`` worth retrying: HTTP 5xx, throttling, or a volume not (yet) reachable."""
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return status >= 500 or error.get("Code") in ("SlowDown", "Throttling", "RequestTimeout", "ServiceUnavailable",
                                                  "InternalError")


def deadline_after(seconds: float) -> str:
    """ISO UTC time ``seconds`` from now (for :class:`GranuleAvailableTrigger`)."""
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat()


class ProviderGranuleTrigger(BaseTrigger):
    """Fire when the provider publishes the ``day`` granule of ``product``, or at ``deadline``.

    Polls the provider's search API (:func:`smflow.archive.fetch.find_granule`: CMR granule
    search, CDS catalogue extent) every ``poke_interval`` seconds. A provider that is down or
    answers 5xx is asked again with exponential backoff (``poke_interval`` doubling up to
    ``max_backoff``); an HTTP 429 is asked again after its ``Retry-After``. Neither is an error:
    the wait goes on until the deadline (absolute, so a triggerer restart does not restart it).

    Events: ``{"status": "found", "granule": {...}}``; ``{"status": "timeout", "reason"}`` at the
    deadline; ``{"status": "refused", "reason"}`` when the provider answers with a granule of
    another day or collection; ``{"status": "error", "reason"}`` when the credentials are missing
    (the sensor fails with the reason, which names the connection).

    :param product: smflow product name.
    :param day: UTC day, ISO ``YYYY-MM-DD``.
    :param deadline: ISO 8601 UTC time after which the trigger gives up.
    :param poke_interval: seconds between two searches while the granule is not published.
    :param max_backoff: longest pause after provider errors [s].
    """

    def __init__(self, *, product: str, day: str, deadline: str, poke_interval: float = 300.0,
                 max_backoff: float = 3600.0) -> None:
        super().__init__()
        self.product = product
        self.day = day
        self.deadline = deadline
        self.poke_interval = poke_interval
        self.max_backoff = max_backoff

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"product": self.product, "day": self.day, "deadline": self.deadline,
             "poke_interval": self.poke_interval, "max_backoff": self.max_backoff},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from smflow.archive.base import CredentialsError, ProviderUnavailable, UnexpectedGranule
        from smflow.archive.fetch import find_granule

        deadline = datetime.fromisoformat(self.deadline)
        started = datetime.now(timezone.utc)
        failures, last = 0, "not yet published"
        while True:
            wait = self.poke_interval
            try:
                # requests is blocking: keep it off the triggerer's event loop.
                granule = await asyncio.to_thread(find_granule, self.product, self.day)
            except ProviderUnavailable as exc:
                failures += 1
                last = str(exc)
                wait = exc.retry_after if exc.retry_after is not None else min(
                    self.max_backoff, self.poke_interval * 2 ** (failures - 1))
                self.log.warning("%s %s: %s; asking again in %.0f s", self.product, self.day, exc, wait)
            except UnexpectedGranule as exc:
                yield TriggerEvent({"status": "refused", "product": self.product, "day": self.day,
                                    "reason": str(exc)})
                return
            except CredentialsError as exc:
                yield TriggerEvent({"status": "error", "product": self.product, "day": self.day,
                                    "reason": str(exc)})
                return
            else:
                failures = 0
                if granule is not None:
                    yield TriggerEvent({"status": "found", "granule": granule.to_dict()})
                    return
                last = "not yet published"
            now = datetime.now(timezone.utc)
            if now >= deadline:
                yield TriggerEvent({"status": "timeout", "product": self.product, "day": self.day,
                                    "waited_seconds": (now - started).total_seconds(),
                                    "reason": f"not fetched from the provider after "
                                              f"{(now - started).total_seconds() / 60:.0f} min ({last})"})
                return
            await asyncio.sleep(max(0.0, min(wait, (deadline - now).total_seconds())))
