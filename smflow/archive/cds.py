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
Both protocols are spoken by the local ``ArchiveServer`` of ``tests/archive/servers/local_server.py``.

Credentials come from an Airflow connection (``login`` = UID and ``password`` = API key, or only
``password`` = a colon-less key; ``host`` = API URL) or the environment (``CDSAPI_URL``,
``CDSAPI_KEY``), never from code. Both clients write the key into debug-level log records, so
the client here is always built with ``debug=False`` and a debug callback that drops them; info
and above go to our logger. Failures raise :class:`~smflow.archive.base.ArchiveError`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from smflow.archive.base import ArchiveError
from smflow.archive.credentials import Credentials, connection_host, from_airflow_connection

log = logging.getLogger(__name__)

CDS_URL = "https://cds.climate.copernicus.eu/api"
ERA5_LAND = "reanalysis-era5-land"

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


class CdsClient:
    """Retrieve from the CDS with ``cdsapi``.

    :param url: API root (default: the connection's host, env ``CDSAPI_URL``, or :data:`CDS_URL`).
    :param credentials: ``username`` = UID, ``password`` = API key.
    :param conn_id: Airflow connection with UID (login) and API key (password).
    :param timeout: HTTP timeout [s].
    :param sleep_max: longest pause between status polls [s].
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        credentials: Credentials | None = None,
        conn_id: str | None = None,
        timeout: float = 60.0,
        sleep_max: float = 60.0,
    ) -> None:
        host = None
        if credentials is None and conn_id:
            credentials = from_airflow_connection(conn_id)
            host = connection_host(conn_id)
        self.url = (url or host or os.environ.get("CDSAPI_URL") or CDS_URL).rstrip("/")
        self._credentials = credentials
        self.timeout = timeout
        self.sleep_max = sleep_max

    def _key(self) -> str:
        """``UID:KEY`` (legacy protocol) or a colon-less personal access token (new protocol)."""
        c = self._credentials
        if c is not None and c.username and c.password:
            return f"{c.username}:{c.password}"
        if c is not None and c.token:
            return c.token
        key = os.environ.get("CDSAPI_KEY")
        if not key:
            raise ArchiveError(
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
