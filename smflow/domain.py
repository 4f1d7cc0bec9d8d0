"""The domain grid: the single definition of where the system computes.

Every regridding, store object and published product uses one :class:`DomainGrid`, loaded from
``config/domains/<name>.json``. The JSON holds the land mask itself, so the grid works on a machine
without ``../shared``.

Orientation: ``lat`` ascending (south to north) and ``lon`` ascending (west to east); 2-D arrays are
``(lat, lon)``. Pyresample's :class:`~pyresample.geometry.AreaDefinition` is north-up, so
:meth:`DomainGrid.area_definition` rows run the other way (see :mod:`smflow.regrid`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import xarray as xr

from smflow.config import REPO_ROOT

DOMAINS_DIR = REPO_ROOT / "config" / "domains"
#: The domain of the main job and of the store keys without a domain part.
DEFAULT_DOMAIN = "big_island"


@dataclass(frozen=True)
class DomainGrid:
    """A regular latitude/longitude grid with a land mask.

    Attributes
    ----------
    name : str
        Domain name (``big_island``).
    crs : str
        Coordinate reference system of the centres (``EPSG:4326``).
    resolution : float
        Grid spacing [degree], the same in latitude and longitude.
    lat_first, lat_last, lon_first, lon_last : float
        Centres of the first and last rows / columns [degree_north / degree_east].
    land : tuple of tuple of bool
        Land mask, ``land[i][j]`` for row ``i`` (latitude ascending) and column ``j``.
    description : str
        What the domain is and where its land mask comes from.
    title : str
        Short name for maps and titles (``Island of Hawaiʻi``); the name when empty.
    outline : tuple of tuple of (float, float)
        Coastline polylines ``(lon, lat)`` [degree] drawn on the quicklooks (from the GLOBE 30"
        mask, ``infra/make_domain.py --outline``); empty when the domain has none.
    """

    name: str
    crs: str
    resolution: float
    lat_first: float
    lat_last: float
    lon_first: float
    lon_last: float
    land: tuple[tuple[bool, ...], ...] = field(repr=False)
    description: str = field(default="", repr=False)
    title: str = ""
    outline: tuple[tuple[tuple[float, float], ...], ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if self.land_mask.shape != self.shape:
            raise ValueError(
                f"Domain {self.name!r}: land mask is {self.land_mask.shape} but the centres give "
                f"{self.shape}; the mask needs one row per latitude and one column per longitude."
            )

    # -- coordinates -------------------------------------------------------------------------
    @staticmethod
    def _centres(first: float, last: float, step: float) -> np.ndarray:
        n = int(round((last - first) / step)) + 1
        # Rounded to 6 decimals so 19.0 + 3 * 0.1 is 19.3, not 19.300000000000001.
        return np.round(first + step * np.arange(n), 6)

    @property
    def lat(self) -> np.ndarray:
        """Latitude of the row centres, ascending [degree_north] (1-D)."""
        return self._centres(self.lat_first, self.lat_last, self.resolution)

    @property
    def lon(self) -> np.ndarray:
        """Longitude of the column centres, ascending [degree_east] (1-D)."""
        return self._centres(self.lon_first, self.lon_last, self.resolution)

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_lat, n_lon)``."""
        return (self.lat.size, self.lon.size)

    @property
    def land_mask(self) -> np.ndarray:
        """Land mask ``(lat, lon)``, True on land (a new array on every call)."""
        return np.array(self.land, dtype=bool)

    @property
    def n_land(self) -> int:
        """Number of land cells."""
        return int(self.land_mask.sum())

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """Outer cell edges ``(lon_min, lat_min, lon_max, lat_max)`` [degree]."""
        half = self.resolution / 2
        return (
            round(self.lon_first - half, 6),
            round(self.lat_first - half, 6),
            round(self.lon_last + half, 6),
            round(self.lat_last + half, 6),
        )

    # -- helpers -----------------------------------------------------------------------------
    def area_definition(self):
        """The grid as a pyresample :class:`~pyresample.geometry.AreaDefinition` (north-up rows)."""
        from pyresample.geometry import AreaDefinition

        n_lat, n_lon = self.shape
        return AreaDefinition(
            self.name,
            self.description or self.name,
            self.name,
            self.crs,
            n_lon,
            n_lat,
            self.bounds,
        )

    def template(self, name: str, units: str, **attrs: str) -> xr.DataArray:
        """An all-NaN ``(lat, lon)`` float64 DataArray on this grid with CF coordinates.

        Parameters
        ----------
        name : str
            Variable name (e.g. ``soil_moisture``).
        units : str
            Its units (e.g. ``m3 m-3``).
        **attrs
            Further attributes (``standard_name``, ``long_name``, ...).
        """
        data = np.full(self.shape, np.nan)
        return xr.DataArray(
            data,
            dims=("lat", "lon"),
            coords={"lat": self.lat_coord(), "lon": self.lon_coord()},
            name=name,
            attrs={"units": units, **attrs, "grid_mapping_name": "latitude_longitude",
                   "domain": self.name},
        )

    def lat_coord(self) -> xr.DataArray:
        return xr.DataArray(
            self.lat,
            dims="lat",
            attrs={"standard_name": "latitude", "long_name": "latitude of cell centre",
                   "units": "degrees_north", "axis": "Y"},
        )

    def lon_coord(self) -> xr.DataArray:
        return xr.DataArray(
            self.lon,
            dims="lon",
            attrs={"standard_name": "longitude", "long_name": "longitude of cell centre",
                   "units": "degrees_east", "axis": "X"},
        )

    def cell_index(self, lat, lon):
        """Row and column of the cell containing (nearest to) ``lat``, ``lon``.

        Scalars give a tuple of ints, arrays a tuple of int arrays. Longitudes in 0..360 are
        accepted. Points outside :attr:`bounds` raise ``ValueError``.
        """
        lat_a = np.asarray(lat, dtype=float)
        lon_a = np.asarray(lon, dtype=float)
        lon_a = np.where(lon_a > 180.0, lon_a - 360.0, lon_a)
        lon_min, lat_min, lon_max, lat_max = self.bounds
        outside = (lat_a < lat_min) | (lat_a > lat_max) | (lon_a < lon_min) | (lon_a > lon_max)
        if np.any(outside):
            raise ValueError(
                f"Point(s) lat={lat_a[outside] if lat_a.ndim else lat_a}, "
                f"lon={lon_a[outside] if lon_a.ndim else lon_a} lie outside domain {self.name!r} "
                f"(lon {lon_min}..{lon_max}, lat {lat_min}..{lat_max})."
            )
        n_lat, n_lon = self.shape
        row = np.clip(np.rint((lat_a - self.lat_first) / self.resolution), 0, n_lat - 1).astype(int)
        col = np.clip(np.rint((lon_a - self.lon_first) / self.resolution), 0, n_lon - 1).astype(int)
        if row.ndim == 0:
            return int(row), int(col)
        return row, col

    def is_on_grid(self, array: xr.DataArray) -> bool:
        """True if ``array`` has ``lat``/``lon`` coordinates equal to this grid's."""
        try:
            return bool(
                array["lat"].size == self.shape[0]
                and array["lon"].size == self.shape[1]
                and np.allclose(array["lat"].values, self.lat, atol=1e-6)
                and np.allclose(array["lon"].values, self.lon, atol=1e-6)
            )
        except (KeyError, ValueError):
            return False


def domain_from_dict(config: dict) -> DomainGrid:
    """Build a :class:`DomainGrid` from the JSON layout of ``config/domains/*.json``."""
    rows = config["land_mask"]["rows"]
    # The file lists rows north first (a readable map); the grid keeps latitude ascending.
    land = tuple(tuple(ch == "1" for ch in row) for row in reversed(rows))
    return DomainGrid(
        name=config["name"],
        crs=config["crs"],
        resolution=float(config["resolution"]),
        lat_first=float(config["lat_centres"]["first"]),
        lat_last=float(config["lat_centres"]["last"]),
        lon_first=float(config["lon_centres"]["first"]),
        lon_last=float(config["lon_centres"]["last"]),
        land=land,
        description=config.get("description", ""),
        title=config.get("title", ""),
        outline=tuple(tuple((float(x), float(y)) for x, y in line)
                      for line in config.get("outline", {}).get("polylines", [])),
    )


def load_domain(name: str = DEFAULT_DOMAIN, config_dir: Path | None = None) -> DomainGrid:
    """The domain called ``name`` from ``config/domains/<name>.json`` (cached: one object per name)."""
    return _load_domain(name, Path(config_dir) if config_dir is not None else DOMAINS_DIR)


@lru_cache(maxsize=8)
def _load_domain(name: str, config_dir: Path) -> DomainGrid:
    path = config_dir / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in config_dir.glob("*.json"))
        raise FileNotFoundError(f"No domain {name!r} ({path} missing); known domains: {known}.")
    return domain_from_dict(json.loads(path.read_text()))
