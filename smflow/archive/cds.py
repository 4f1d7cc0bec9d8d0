"""Copernicus Climate Data Store (CDS): ERA5-Land retrievals through ``cdsapi``.

``cdsapi`` does the protocol: ``POST {url}/resources/{dataset}`` with the request as JSON
(HTTP basic auth ``UID:KEY``), poll ``GET {url}/tasks/{request_id}`` while the job is
``queued``/``running``, then download the ``location`` of the ``completed`` reply and check its
``content_length``. That is what ``cdsapi.Client`` speaks with a ``UID:KEY`` key.

The current CDS (since 2024) issues personal access tokens without a colon. For such a key
``cdsapi.Client.__new__`` (0.7.7) returns ``ecmwf.datastores.legacy_client.LegacyClient``
(package ``ecmwf-datastores-client``), which speaks the OGC API - Processes protocol with the
header ``PRIVATE-TOKEN: <key>``: ``GET {url}/catalogue/v1/messages``;
``GET {url}/retrieve/v1/processes/{dataset}``; ``POST .../processes/{dataset}/execution`` with
``{"inputs": request}`` → ``201`` and a ``monitor`` link; poll ``GET {url}/retrieve/v1/jobs/{id}``
while ``accepted``/``running``; on ``successful`` ``GET .../jobs/{id}/results`` gives
``asset.value`` ``href`` and ``file:size``; the file is fetched (no token) and its size checked.
Errors are JSON ``{"title", "detail"}`` (``401`` "Authentication failed" for a bad key).
Both protocols are spoken by the local ``ArchiveServer`` of ``infra/providers/local_server.py``.

Credentials come from an Airflow connection (``login`` = UID and ``password`` = API key, or only
``password`` = a colon-less key; ``host`` = API URL) or the environment (``CDSAPI_URL``,
``CDSAPI_KEY``), never from code. Both clients write the key into debug-level log records, so
the client here is always built with ``debug=False`` and a debug callback that drops them; info
and above go to our logger. Failures raise :class:`~smflow.archive.base.ArchiveError`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from datetime import date, datetime, timezone
from pathlib import Path

from smflow.archive.base import (ArchiveError, CredentialsError, ProviderUnavailable, RemoteFile,
                                 check_availability, day_bounds)
from smflow.archive.credentials import Credentials, connection_host, from_airflow_connection

log = logging.getLogger(__name__)

CDS_URL = "https://cds.climate.copernicus.eu/api"
ERA5_LAND = "reanalysis-era5-land"
C3S_SOIL_MOISTURE = "satellite-soil-moisture"

#: smflow short names → CDS variable names.
ERA5_LAND_VARIABLES: dict[str, str] = {
    "swvl1": "volumetric_soil_water_layer_1",
    "stl1": "soil_temperature_level_1",
    "tp": "total_precipitation",
}


def era5_land_request(
    day: date,
    *,
    variables: Sequence[str] = ("swvl1", "stl1", "tp"),
    hours: Sequence[int] = tuple(range(24)),
    area: tuple[float, float, float, float] | None = None,
    data_format: str = "grib",
) -> dict:
    """The CDS request for one UTC day of ERA5-Land.

    :param day: UTC day.
    :param variables: smflow short names (``swvl1`` [m3 m-3], ``stl1`` [K], ``tp`` [m]).
    :param hours: UTC hours.
    :param area: ``(lon_min, lat_min, lon_max, lat_max)`` [degrees]; sent in CDS order N/W/S/E.
    :param data_format: ``grib`` or ``netcdf``.
    """
    unknown = sorted(set(variables) - set(ERA5_LAND_VARIABLES))
    if unknown:
        raise ValueError(f"unknown ERA5-Land variables {unknown}; use some of {sorted(ERA5_LAND_VARIABLES)}.")
    request = {
        "product_type": ["reanalysis"],
        "variable": [ERA5_LAND_VARIABLES[v] for v in variables],
        "year": [f"{day:%Y}"],
        "month": [f"{day:%m}"],
        "day": [f"{day:%d}"],
        "time": [f"{h:02d}:00" for h in hours],
        "data_format": data_format,
        "download_format": "unarchived",
    }
    if area is not None:
        w, s, e, n = area
        request["area"] = [n, w, s, e]
    return request


def c3s_soil_moisture_request(
    day: date,
    *,
    sensor: str = "combined_passive_and_active",
    record: str = "cdr",
    version: str = "v202505",
    area: tuple[float, float, float, float] | None = None,
    data_format: str = "netcdf",
) -> dict:
    """The CDS request for one UTC day of C3S Soil Moisture (daily volumetric surface soil moisture).

    :param day: UTC day.
    :param sensor: ``combined_passive_and_active`` (COMBINED), ``passive``, ``active``.
    :param record: ``cdr`` (TCDR) or ``icdr`` (the interim record extending it).
    :param version: dataset version (``v202505`` is the one the catalogue entry ``c3s`` describes).
    :param area: not part of this dataset's form (it is global); accepted and ignored.
    :param data_format: kept for a uniform signature; the dataset is delivered as netCDF.
    """
    return {
        "variable": ["volumetric_surface_soil_moisture"],
        "type_of_sensor": [sensor],
        "time_aggregation": ["day_average"],
        "year": [f"{day:%Y}"],
        "month": [f"{day:%m}"],
        "day": [f"{day:%d}"],
        "type_of_record": [record],
        "version": [version],
    }


def _era5_land_daily(day: date, **kwargs) -> dict:
    # The daily pipeline samples swvl1 (and stl1, the frozen-soil check) at 06 UTC (catalogue era5_land).
    return era5_land_request(day, variables=("swvl1", "stl1"), hours=(6,), data_format="netcdf", **kwargs)


#: The request of one UTC day for each CDS dataset the daily pipelines fetch.
DAILY_REQUESTS: dict[str, Callable[..., dict]] = {
    ERA5_LAND: _era5_land_daily,
    C3S_SOIL_MOISTURE: c3s_soil_moisture_request,
}


class CdsClient:
    """Retrieve from the CDS with ``cdsapi``.

    :param url: API root (default: the connection's host, env ``CDSAPI_URL``, or :data:`CDS_URL`).
    :param credentials: ``username`` = UID, ``password`` = API key.
    :param conn_id: Airflow connection with UID (login) and API key (password).
    :param timeout: HTTP timeout [s].
    :param sleep_max: longest pause between status polls [s].
    :param area: ``(lon_min, lat_min, lon_max, lat_max)`` sent with the daily requests of
        :meth:`download` (datasets whose form has an area).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        credentials: Credentials | None = None,
        conn_id: str | None = None,
        timeout: float = 60.0,
        sleep_max: float = 60.0,
        area: tuple[float, float, float, float] | None = None,
    ) -> None:
        host = None
        if credentials is None and conn_id:
            credentials = from_airflow_connection(conn_id)
            host = connection_host(conn_id)
        self.url = (url or host or os.environ.get("CDSAPI_URL") or CDS_URL).rstrip("/")
        self._credentials = credentials
        self.conn_id = conn_id
        self.timeout = timeout
        self.sleep_max = sleep_max
        self.area = area

    def _key(self) -> str:
        """``UID:KEY`` (legacy protocol) or a colon-less personal access token (new protocol)."""
        c = self._credentials
        if c is not None and c.username and c.password:
            return f"{c.username}:{c.password}"
        if c is not None and c.token:
            return c.token
        key = os.environ.get("CDSAPI_KEY")
        if not key:
            raise CredentialsError(
                f"no CDS credentials for {self.url}: set CDSAPI_KEY (the API key of your CDS "
                "profile) or pass conn_id= of an Airflow connection holding it as password."
            )
        return key

    def client(self):
        import cdsapi

        return cdsapi.Client(
            url=self.url, key=self._key(), quiet=True, debug=False, progress=False,
            timeout=self.timeout, sleep_max=self.sleep_max, retry_max=5,
            info_callback=lambda *a, **k: log.info(*a),
            warning_callback=lambda *a, **k: log.warning(*a),
            error_callback=lambda *a, **k: log.error(*a),
            debug_callback=lambda *a, **k: None,  # cdsapi's debug records carry the key
        )

    def retrieve(self, dataset: str, request: dict, dest: str | Path) -> Path:
        """Submit ``request`` to ``dataset``, wait for it, download to ``dest`` (atomically)."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".part")
        try:
            self.client().retrieve(dataset, request, str(partial))
        except ArchiveError:
            partial.unlink(missing_ok=True)
            raise
        except Exception as exc:  # cdsapi / ecmwf-datastores raise requests / bare exceptions
            partial.unlink(missing_ok=True)
            text = str(exc)
            if "401" in text or "Authentication failed" in text or "authentication" in text.lower():
                where = (f"the Airflow connection {self.conn_id!r} (password: the CDS personal access "
                         "token)" if self.conn_id else "CDSAPI_KEY")
                raise CredentialsError(f"CDS retrieve of {dataset} from {self.url}: the credentials were refused "
                                       f"({text[:300]}); check {where}.") from None
            raise ArchiveError(f"CDS retrieve of {dataset} from {self.url} failed: {exc}") from exc
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(dest)
        return dest

    def retrieve_era5_land_day(self, day: date, dest_dir: str | Path, **kwargs) -> Path:
        """One UTC day of ERA5-Land (``swvl1``, ``stl1``, ``tp``) as ``era5_land_YYYYMMDD.grib``."""
        request = era5_land_request(day, **kwargs)
        suffix = "nc" if request["data_format"] == "netcdf" else "grib"
        return self.retrieve(ERA5_LAND, request, Path(dest_dir) / f"era5_land_{day:%Y%m%d}.{suffix}")

    # -- the ArchiveClient interface (smflow.archive.base) ---------------------------------------
    def published_until(self, dataset: str) -> date:
        """Last UTC day the CDS catalogue says ``dataset`` covers (``extent.temporal.interval``).

        ``GET {url}/catalogue/v1/collections/{dataset}`` (public, no key): the STAC collection of
        the dataset, whose temporal interval ends at the latest data published.

        :raises ProviderUnavailable: on a connection error, HTTP 429 or 5xx.
        :raises ArchiveError: when the dataset is unknown or the answer has no interval.
        """
        import requests

        url = f"{self.url}/catalogue/v1/collections/{dataset}"
        try:
            response = requests.get(url, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ProviderUnavailable(f"CDS catalogue {url} did not answer ({exc.__class__.__name__})") from exc
        check_availability(response, f"CDS catalogue {url}")
        if response.status_code != 200:
            raise ArchiveError(f"CDS catalogue {url} answered {response.status_code}: {response.text[:300]}")
        try:
            end = response.json()["extent"]["temporal"]["interval"][0][1]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ArchiveError(f"CDS catalogue {url}: no extent.temporal.interval in the answer") from exc
        if end is None:  # open interval: published up to now
            return datetime.now(timezone.utc).date()
        return datetime.fromisoformat(str(end).replace("Z", "+00:00")).astimezone(timezone.utc).date()

    def granules(self, dataset: str, day: date) -> list[RemoteFile]:
        """The one "granule" of ``dataset`` for UTC ``day`` (its daily request) if the day is published.

        The CDS has no granule search: a day is there once the catalogue's temporal extent
        covers it (:meth:`published_until`). The record names the request (no size or checksum:
        the CDS announces neither before the job has run).
        """
        if dataset not in DAILY_REQUESTS:
            raise ArchiveError(f"no daily request known for CDS dataset {dataset!r}; add one to "
                               f"smflow.archive.cds.DAILY_REQUESTS (known: {sorted(DAILY_REQUESTS)}).")
        if day > self.published_until(dataset):
            return []
        return [self.daily_file(dataset, day)]

    def daily_file(self, dataset: str, day: date) -> RemoteFile:
        """The record of the daily request of ``dataset`` for UTC ``day`` (no catalogue request)."""
        start, end = day_bounds(day)
        return RemoteFile(product=dataset, name=f"{dataset}_{day:%Y%m%d}.nc",
                          url=f"{self.url}/retrieve/v1/processes/{dataset}", start=start, end=end)

    def download(self, granule: RemoteFile, dest_dir: str | Path) -> Path:
        """Run the daily request of ``granule`` (from :meth:`granules`) and save the result."""
        request = DAILY_REQUESTS[granule.product](granule.start.date(), area=self.area)
        return self.retrieve(granule.product, request, Path(dest_dir) / granule.name)
