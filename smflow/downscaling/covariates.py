"""Covariate stack of a domain and day on the fine and the coarse grid.

Every covariate is read with :func:`smflow.readers.native.open_native` and put on each grid with
:func:`smflow.regrid.native_to_domain`: ``mean`` when the source is finer than the grid
(aggregation), ``bilinear`` when it is coarser (refinement). Each variable carries ``source``
(file), ``source_product``, ``date`` (``static`` for time-invariant fields) and ``regridding``.

What each domain has is declared in :data:`COVARIATES`; what the papers use and the domain lacks is
declared in :data:`MISSING` and returned in :attr:`CovariateStack.missing` -- never filled with
made-up values. A covariate whose file is absent, or whose file is on another CRS or resolution
than declared, raises :class:`CovariateError` naming the covariate, the file and the expected grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import xarray as xr

from smflow.domain import DomainGrid


class CovariateError(ValueError):
    """A covariate file is missing or not on the declared grid (the message names both)."""


@dataclass(frozen=True)
class CovariateSpec:
    """One covariate of a domain.

    Attributes
    ----------
    name : str
        Name in the stack (``swi_005``, ``elevation``).
    path : str
        File relative to ``../shared/data/real``; ``{date:%Y%m%d}`` is filled for daily files.
    variable : str
        Variable of the native dataset.
    step_deg : float
        Declared pixel size of the file [degree]; another size is an error.
    select : dict
        ``isel``/``sel`` of non-spatial dims (``{"characteristic_time": 5}``).
    open_options : dict
        Options of ``open_native`` (the GLOBE ``bbox`` is added automatically).
    units, long_name : str
        Of the covariate.
    """

    name: str
    path: str
    variable: str
    step_deg: float
    units: str
    long_name: str
    select: dict = field(default_factory=dict)

    @property
    def daily(self) -> bool:
        return "{date" in self.path

    def file(self, shared_dir: Path, day: date | None) -> Path:
        if self.daily and day is None:
            raise ValueError(f"covariate {self.name!r} is daily ({self.path}); pass the day.")
        return Path(shared_dir) / self.path.format(date=day)


_SWI = "cgls_1km/CGLS_SWI1km_V1.0_img/c_gls_SWI1km_{date:%Y%m%d}1200_CEURO_SCATSAR_V1.0.1.nc"
_GLOBE = "land_masks/globe_combined_mask_compressed.npz"

#: Covariates available per domain (Copernicus CGLS SWI 1 km: ASCAT + Sentinel-1 soil water index,
#: the fine-scale microwave signal standing in for the ASCAT BTI of Lv et al. 2021; ETOPO2 / ETOPO5
#: elevation and the slope computed from it; GLOBE 30" land fraction).
COVARIATES: dict[str, tuple[CovariateSpec, ...]] = {
    "ebro_pyrenees": (
        CovariateSpec("swi_005", _SWI, "soil_water_index", 1 / 112, "percent",
                      "CGLS soil water index, T = 5 days", {"characteristic_time": 5}),
        CovariateSpec("swi_040", _SWI, "soil_water_index", 1 / 112, "percent",
                      "CGLS soil water index, T = 40 days", {"characteristic_time": 40}),
        CovariateSpec("elevation", "dem_etopo/FR+IT.nc", "elevation", 1 / 30, "m",
                      "ETOPO2 surface elevation"),
        CovariateSpec("slope", "dem_etopo/FR+IT.nc", "slope", 1 / 30, "degree",
                      "terrain slope from ETOPO2"),
        CovariateSpec("land_fraction", _GLOBE, "land_mask", 1 / 120, "1",
                      "GLOBE 30\" land fraction"),
    ),
    "big_island": (
        CovariateSpec("elevation", "dem_hawaii/HI_topo_04.nc", "elevation", 1 / 12, "m",
                      "ETOPO5 surface elevation"),
        CovariateSpec("slope", "dem_hawaii/HI_topo_04.nc", "slope", 1 / 12, "degree",
                      "terrain slope from ETOPO5"),
        CovariateSpec("land_fraction", _GLOBE, "land_mask", 1 / 120, "1",
                      "GLOBE 30\" land fraction"),
    ),
}

_PAPERS = "Lv et al. 2021 / Ming et al. 2022"
#: Covariates of the papers the domain does not have (listed in every stack, never faked).
MISSING: dict[str, tuple[str, ...]] = {
    "ebro_pyrenees": (
        f"lst ({_PAPERS}): the only MODIS LST sample (MOD11A1) is tile h14v09, Brazil",
        f"ndvi ({_PAPERS}): the MOD13A1 NDVI sample is not over the domain",
        "albedo, soil_texture (Ming et al. 2022): no file in ../shared/data/real",
        "smap_tbv, amsr2_tbh, mpdi, ascat_bti, nsdsi (Lv et al. 2021): no sample over the domain "
        "for June 2017",
    ),
    "big_island": (
        f"lst, ndvi ({_PAPERS}): no MODIS sample over Hawaii",
        "albedo, soil_texture (Ming et al. 2022): no file in ../shared/data/real",
        "smap_tbv, amsr2_tbh, mpdi, ascat_bti, nsdsi (Lv et al. 2021): brightness temperatures / "
        "sigma40 series not available on the grid",
        "kilauea_dem_30m (dem_hawaii/Kilauea.utm.nc): covers the Kilauea summit only; a model "
        "input must cover the whole domain",
    ),
}


@dataclass
class CovariateStack:
    """Covariates of one domain and day on the fine and the coarse grid.

    Attributes
    ----------
    fine, coarse : xr.Dataset
        One ``(lat, lon)`` variable per covariate (NaN off land and where the source has none).
    names : list of str
        Covariate names, the model's feature order.
    missing : list of str
        Covariates of the papers that the domain lacks, with why.
    sources : dict of str to str
        Covariate -> file.
    """

    fine: xr.Dataset
    coarse: xr.Dataset
    names: list[str]
    missing: list[str]
    sources: dict[str, str]

    def fine_array(self) -> np.ndarray:
        """``(n_features, n_lat_fine, n_lon_fine)`` float64 in :attr:`names` order."""
        return np.stack([self.fine[n].values for n in self.names]).astype(np.float64)

    def coarse_array(self) -> np.ndarray:
        """``(n_features, n_lat, n_lon)`` float64 in :attr:`names` order."""
        return np.stack([self.coarse[n].values for n in self.names]).astype(np.float64)


def _step(ds: xr.Dataset) -> float:
    steps = [float(np.nanmedian(np.abs(np.diff(np.asarray(ds[a].values, dtype=float)))))
             for a in ("lat", "lon") if ds[a].size > 1]
    return max(steps) if steps else float("nan")


def check_grid(ds: xr.Dataset, spec: CovariateSpec, path: Path) -> None:
    """Raise :class:`CovariateError` unless ``ds`` is on a lat/lon grid of ``spec.step_deg``."""
    expected = f"a regular latitude/longitude grid (EPSG:4326) of {spec.step_deg:.6g} deg"
    if ds["lat"].dims != ("lat",) or ds["lon"].dims != ("lon",):
        raise CovariateError(
            f"covariate {spec.name!r}: {path} is not on {expected} (lat{ds['lat'].dims}, "
            f"lon{ds['lon'].dims}: another CRS / a projected grid); reproject it first.")
    step = _step(ds)
    if not np.isfinite(step) or abs(step - spec.step_deg) > 0.01 * spec.step_deg:
        raise CovariateError(
            f"covariate {spec.name!r}: {path} has a {step:.6g} deg pixel; expected {expected}.")


def _open(spec: CovariateSpec, path: Path, grid: DomainGrid) -> xr.Dataset:
    from smflow.readers.native import open_native

    if not path.is_file():
        raise CovariateError(f"covariate {spec.name!r}: file {path} is missing (expected "
                             f"{spec.path} on a {spec.step_deg:.6g} deg lat/lon grid).")
    options = {}
    if path.name.endswith(".npz"):
        lon_min, lat_min, lon_max, lat_max = grid.bounds
        options["bbox"] = (lon_min - 0.02, lat_min - 0.02, lon_max + 0.02, lat_max + 0.02)
    ds = open_native(path, chunks=None, **options)
    if spec.variable not in ds:
        raise CovariateError(f"covariate {spec.name!r}: {path} has no variable "
                             f"{spec.variable!r} (it has {sorted(map(str, ds.data_vars))}).")
    check_grid(ds, spec, path)
    da = ds[spec.variable]
    if spec.select:
        da = da.sel(spec.select)
    if da.dtype == bool:
        da = da.astype(np.float64)
    out = xr.Dataset({spec.name: da.drop_vars([c for c in da.coords if c not in ("lat", "lon")])},
                     attrs=ds.attrs)
    return out


def regrid_covariate(spec: CovariateSpec, source: xr.Dataset, grid: DomainGrid) -> xr.DataArray:
    """``source[spec.name]`` on ``grid``: ``mean`` if the source is finer, else ``bilinear``."""
    from smflow.regrid import native_to_domain

    method = "mean" if spec.step_deg <= grid.resolution * 1.0001 else "bilinear"
    out = native_to_domain(source, grid, method=method, variables=[spec.name])
    return out[spec.name].assign_attrs(regridding=out.attrs["regridding"], regrid_method=method)


def build_stack(domain: DomainGrid, fine: DomainGrid, day: date | None, shared_dir: Path,
                *, names: list[str] | None = None) -> CovariateStack:
    """The covariates of ``domain`` for ``day`` on ``fine`` and on ``domain`` (coarse).

    Parameters
    ----------
    domain, fine : DomainGrid
        The coarse grid and the fine grid nested in it (:func:`smflow.downscaling.grid.fine_grid`).
    day : date or None
        Day of the daily covariates (None: static covariates only are allowed).
    shared_dir : Path
        ``../shared/data/real``.
    names : list of str, optional
        Subset (and order) of :data:`COVARIATES` [domain] to read (default: all).

    Returns
    -------
    CovariateStack

    Raises
    ------
    CovariateError
        A covariate file is missing, lacks its variable, or is on another CRS / resolution.
    KeyError
        The domain has no covariate declaration.
    """
    if domain.name not in COVARIATES:
        raise KeyError(f"no covariates declared for domain {domain.name!r}; known: "
                       f"{sorted(COVARIATES)} (smflow/downscaling/covariates.py).")
    specs = {s.name: s for s in COVARIATES[domain.name]}
    unknown = [n for n in names or [] if n not in specs]
    if unknown:
        raise KeyError(f"covariates {unknown} are not declared for {domain.name!r}: {list(specs)}")
    chosen = [specs[n] for n in (names or list(specs))]
    fine_vars, coarse_vars, sources = {}, {}, {}
    opened: dict[tuple[Path, str], xr.Dataset] = {}
    for spec in chosen:
        path = spec.file(shared_dir, day)
        key = (path, spec.name)
        if key not in opened:
            opened[key] = _open(spec, path, domain)
        source = opened[key]
        stamp = {"source": str(path), "source_product": source.attrs.get("native_product", ""),
                 "date": day.isoformat() if spec.daily and day is not None else "static",
                 "units": spec.units, "long_name": spec.long_name}
        for grid, into in ((fine, fine_vars), (domain, coarse_vars)):
            da = regrid_covariate(spec, source, grid)
            into[spec.name] = da.assign_attrs(stamp)
        sources[spec.name] = str(path)
    names_out = [s.name for s in chosen]
    return CovariateStack(xr.Dataset(fine_vars), xr.Dataset(coarse_vars), names_out,
                          list(MISSING.get(domain.name, ())), sources)
