"""Product samples -> the domain grid.

Two entry points: :func:`to_domain` / :func:`to_domain_series` put the time-series products'
locations on the grid by nearest neighbour; :func:`native_to_domain` puts a native granule (a
regular grid, curvilinear grid, swath or point list read by ``open_native``) on the grid by
nearest neighbour, bilinear interpolation or cell mean, with the product's default method from
:data:`REGRID_METHODS`; :func:`terrain_covariates` makes mean elevation and slope from a DEM.

Nearest neighbour (both entry points):

Each domain cell takes the value of the nearest product sample within ``radius_m`` (pyresample
kd-tree on the sphere); cells without a sample that close, and sea cells, are NaN. The
neighbour of each cell depends only on the sample positions, never on the values, so a whole
``(location, time)`` stack is regridded with one neighbour search (:func:`to_domain_series`),
and a cell whose nearest sample has no valid value on a day is NaN that day (it does not borrow
a farther sample). ERA5-Land points coincide with the domain's cell centres and map one to one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import numpy as np
import xarray as xr

from smflow.catalog import canonical_name
from smflow.catalog import entries as catalog_entries
from smflow.catalog.model import RegridMethod, RegridSpec
from smflow.domain import DomainGrid

Method = Literal["nearest"]


def neighbour_index(
    lat: np.ndarray, lon: np.ndarray, grid: DomainGrid, *, radius_m: float
) -> np.ndarray:
    """Index into the sample arrays of each cell's nearest sample, ``(lat, lon)``; -1 = none.

    Sea cells are -1 too. Rows follow ``grid.lat`` (ascending).
    """
    from pyresample import kd_tree
    from pyresample.geometry import SwathDefinition

    lat = np.asarray(lat, dtype=np.float64).ravel()
    lon = np.asarray(lon, dtype=np.float64).ravel()
    if lat.shape != lon.shape:
        raise ValueError(f"lat {lat.shape} and lon {lon.shape} must have the same shape.")
    index = np.full(grid.shape, -1, dtype=np.int64)
    if lat.size == 0:
        return index
    lon = np.where(lon > 180.0, lon - 360.0, lon)
    source = SwathDefinition(lons=lon, lats=lat)
    target = grid.area_definition()
    valid_in, valid_out, index_array, _distance = kd_tree.get_neighbour_info(
        source, target, radius_m, neighbours=1
    )
    # index_array indexes the *valid* inputs, for the valid outputs; misses equal the input count.
    inputs = np.flatnonzero(valid_in)
    out = np.full(valid_out.size, -1, dtype=np.int64)
    hits = index_array < inputs.size
    out_positions = np.flatnonzero(valid_out)
    out[out_positions[hits]] = inputs[index_array[hits]]
    # pyresample rows run north to south; the domain keeps latitude ascending.
    index = out.reshape(grid.shape)[::-1].copy()
    index[~grid.land_mask] = -1
    return index


def to_domain(
    values,
    lat,
    lon,
    grid: DomainGrid,
    *,
    radius_m: float,
    method: Method = "nearest",
    name: str | None = None,
) -> xr.DataArray:
    """Regrid one value per location onto the domain grid.

    Parameters
    ----------
    values : array-like (location,)
        Values at the product's sample locations (NaN = no valid value).
    lat, lon : array-like (location,)
        Sample positions [degree].
    grid : DomainGrid
        Target grid.
    radius_m : float
        Radius of influence [m] (e.g. ``Product.regrid_radius_m``).
    method : {"nearest"}
        Resampling method.
    name : str, optional
        Name of the result (default: ``values.name`` or ``soil_moisture``).

    Returns
    -------
    xr.DataArray
        ``(lat, lon)`` on ``grid``, NaN off land and where no sample lies within ``radius_m``.
    """
    if method != "nearest":
        raise ValueError(f"Unknown method {method!r}; only 'nearest' is implemented.")
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 1:
        raise ValueError(
            f"values must be 1-D (location,), got shape {data.shape}; use to_domain_series "
            "for (location, time) stacks."
        )
    index = neighbour_index(lat, lon, grid, radius_m=radius_m)
    field = np.where(index >= 0, data[np.clip(index, 0, None)] if data.size else np.nan, np.nan)
    attrs = dict(getattr(values, "attrs", {}) or {})
    out = grid.template(name or getattr(values, "name", None) or "soil_moisture",
                        attrs.pop("units", "m3 m-3"))
    out.values[...] = field
    out.attrs.update({k: v for k, v in attrs.items() if k not in ("grid_mapping_name",)})
    out.attrs["regridding"] = f"nearest neighbour within {radius_m:.0f} m (pyresample), land only"
    return out


def to_domain_series(
    values,
    lat,
    lon,
    grid: DomainGrid,
    *,
    radius_m: float,
    method: Method = "nearest",
    time=None,
    name: str | None = None,
) -> xr.DataArray:
    """Regrid a ``(location, time)`` stack onto the domain grid with one neighbour search.

    Parameters
    ----------
    values : array-like or DataArray (location, time)
        Values per location and time.
    lat, lon : array-like (location,)
        Sample positions [degree].
    grid : DomainGrid
        Target grid.
    radius_m : float
        Radius of influence [m].
    method : {"nearest"}
        Resampling method.
    time : array-like (time,), optional
        Time coordinate (default: ``values["time"]`` for a DataArray).
    name : str, optional
        Name of the result.

    Returns
    -------
    xr.DataArray
        ``(time, lat, lon)``; ``result.isel(time=k)`` equals ``to_domain(values[:, k], ...)``.
    """
    if method != "nearest":
        raise ValueError(f"Unknown method {method!r}; only 'nearest' is implemented.")
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"values must be 2-D (location, time), got shape {data.shape}.")
    if time is None:
        time = values["time"].values if isinstance(values, xr.DataArray) else np.arange(data.shape[1])
    index = neighbour_index(lat, lon, grid, radius_m=radius_m)
    stack = np.full((data.shape[1], *grid.shape), np.nan)
    rows, cols = np.nonzero(index >= 0)
    stack[:, rows, cols] = data[index[rows, cols], :].T
    attrs = dict(getattr(values, "attrs", {}) or {})
    units = attrs.pop("units", "m3 m-3")
    out = xr.DataArray(
        stack,
        dims=("time", "lat", "lon"),
        coords={"time": ("time", np.asarray(time)), "lat": grid.lat_coord(), "lon": grid.lon_coord()},
        name=name or getattr(values, "name", None) or "soil_moisture",
        attrs={**attrs, "units": units, "domain": grid.name,
               "regridding": f"nearest neighbour within {radius_m:.0f} m (pyresample), land only"},
    )
    return out


# ============================================================================================
# Native granules -> the domain grid
# ============================================================================================

#: Library named in the ``regridding`` attribute of each method.
_LIBRARY = {"nearest": "pyresample kd_tree", "bilinear": "scipy Delaunay + pyresample kd_tree",
            "mean": "numpy bincount"}


#: How a native product goes onto a domain grid when the caller does not say: the ``regrid``
#: section of its catalogue entry (:class:`smflow.catalog.RegridSpec`: ``method``, ``radius_m``
#: [m], ``rationale``). ``nearest`` for swath products sampled finer than their footprint
#: (ASCAT), ``bilinear`` for grids and swaths coarser than or close to the domain cell (SMAP,
#: AMSR2, models), ``mean`` for products much finer than the domain cell (1 km CGLS, MODIS, DEMs).
RegridDefault = RegridSpec

#: Default regridding per native product (``ds.attrs["native_product"]``), a view of the
#: catalogue (``smflow/catalog/products/<name>.yaml``, section ``regrid``).
REGRID_METHODS: Mapping[str, RegridDefault] = MappingProxyType(
    {name: e.regrid for name, e in catalog_entries().items() if e.regrid is not None})


def regrid_default(product: str) -> RegridDefault:
    """The :data:`REGRID_METHODS` entry of ``product`` (a native product name)."""
    try:
        return REGRID_METHODS[canonical_name(product)]
    except KeyError:
        raise KeyError(
            f"No default regridding method for native product {product!r}; pass "
            "method='nearest'|'bilinear'|'mean' (and radius_m) or add a 'regrid' section to "
            f"smflow/catalog/products/{product}.yaml."
        ) from None


@dataclass(frozen=True)
class _Geometry:
    """Source sample positions inside (or near) the domain, flattened to ``(n,)``.

    A regular grid is first cut to the box with ``isel`` (so a global dask-backed grid is never
    loaded whole); ``take`` then selects the samples from the (cut) array with its spatial dims
    flattened last. ``lat_axis``/``lon_axis`` keep the 1-D axes for grid-to-grid interpolation.
    """

    spatial_dims: tuple[str, ...]
    lat: np.ndarray
    lon: np.ndarray
    take: np.ndarray
    regular: bool
    isel: Mapping[str, np.ndarray] | None = None
    lat_axis: np.ndarray | None = None
    lon_axis: np.ndarray | None = None


def _wrap_lon(lon: np.ndarray, centre: float) -> np.ndarray:
    """Longitudes within +-180 of ``centre`` (0..360 and -180..180 sources alike)."""
    lon = np.asarray(lon, dtype=np.float64)
    return centre + ((lon - centre + 180.0) % 360.0) - 180.0


def _median_step(axis: np.ndarray) -> float | None:
    axis = np.asarray(axis, dtype=np.float64)
    return float(np.nanmedian(np.abs(np.diff(axis)))) if axis.size > 1 else None


def _source_geometry(ds: xr.Dataset, grid: DomainGrid, margin_deg: float) -> _Geometry:
    """Where the samples of ``ds`` are, restricted to the domain box grown by ``margin_deg``."""
    if "lat" not in ds.variables or "lon" not in ds.variables:
        raise ValueError(
            "The dataset has no 'lat'/'lon' coordinates; open it with "
            "smflow.readers.native.open_native (which names them so) before regridding."
        )
    lat_da, lon_da = ds["lat"], ds["lon"]
    lon_min, lat_min, lon_max, lat_max = grid.bounds
    centre = 0.5 * (lon_min + lon_max)
    # A degree of longitude shrinks with latitude: widen the east-west margin accordingly.
    cos_edge = max(np.cos(np.radians(min(89.0, max(abs(lat_min), abs(lat_max)) + margin_deg))),
                   0.05)
    lon_margin = margin_deg / cos_edge
    if lat_da.dims == ("lat",) and lon_da.dims == ("lon",):
        lat_ax = np.asarray(lat_da.values, dtype=np.float64)
        lon_ax = _wrap_lon(lon_da.values, centre)
        rows = np.flatnonzero((lat_ax >= lat_min - margin_deg) & (lat_ax <= lat_max + margin_deg))
        cols = np.flatnonzero((lon_ax >= lon_min - lon_margin) & (lon_ax <= lon_max + lon_margin))
        lat2, lon2 = np.meshgrid(lat_ax[rows], lon_ax[cols], indexing="ij")
        return _Geometry(("lat", "lon"), lat2.ravel(), lon2.ravel(), np.arange(lat2.size), True,
                         {"lat": rows, "lon": cols}, lat_ax[rows], lon_ax[cols])
    if lat_da.dims != lon_da.dims or lat_da.ndim not in (1, 2):
        raise ValueError(
            f"Unsupported geometry: lat{lat_da.dims} / lon{lon_da.dims}. Expected 1-D lat(lat) and "
            "lon(lon) axes, 2-D lat/lon on the same two dims (curvilinear grid or swath), or 1-D "
            "lat/lon on one observation dim (point list)."
        )
    lat_all = np.asarray(lat_da.values, dtype=np.float64).ravel()
    lon_all = _wrap_lon(lon_da.values, centre).ravel()
    with np.errstate(invalid="ignore"):
        inside = ((lat_all >= lat_min - margin_deg) & (lat_all <= lat_max + margin_deg)
                  & (lon_all >= lon_min - lon_margin) & (lon_all <= lon_max + lon_margin))
    take = np.flatnonzero(inside)
    return _Geometry(tuple(lat_da.dims), lat_all[take], lon_all[take], take, False)


def _spatial_last(da: xr.DataArray, spatial: tuple[str, ...], sizes: Mapping[str, int]
                  ) -> tuple[tuple[str, ...], np.ndarray]:
    """``(leading dims, values (k, n_spatial_flat))`` of ``da`` with its spatial dims last."""
    missing = [d for d in spatial if d not in da.dims]
    if missing:  # a variable on a subset of the spatial dims (ASCAT time(row)): broadcast
        da = da.expand_dims({d: sizes[d] for d in missing})
    lead = tuple(d for d in da.dims if d not in spatial)
    da = da.transpose(*lead, *spatial)
    values = np.asarray(da.values)
    k = int(np.prod(values.shape[:len(lead)], dtype=np.int64))
    return lead, values.reshape(k, -1)


def _cell_of(lat: np.ndarray, lon: np.ndarray, grid: DomainGrid) -> np.ndarray:
    """Flat cell index (row-major, latitude ascending) of each position; -1 outside the grid.

    A position on a cell edge belongs to the cell north / east of it.
    """
    lon_min, lat_min, _lon_max, _lat_max = grid.bounds
    n_lat, n_lon = grid.shape
    with np.errstate(invalid="ignore"):
        row = np.floor((lat - lat_min) / grid.resolution + 1e-9)
        col = np.floor((lon - lon_min) / grid.resolution + 1e-9)
        ok = (row >= 0) & (row < n_lat) & (col >= 0) & (col < n_lon)
    cell = np.full(lat.shape, -1, dtype=np.int64)
    cell[ok] = row[ok].astype(np.int64) * n_lon + col[ok].astype(np.int64)
    return cell


def _bin_mean(values: np.ndarray, cell: np.ndarray, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and count of the finite ``values (k, n)`` per target cell, vectorised over ``k``."""
    k = values.shape[0]
    inside = cell >= 0
    v = values[:, inside].astype(np.float64)
    c = np.broadcast_to(cell[inside], v.shape)
    offset = (np.arange(k, dtype=np.int64) * n_cells)[:, None]
    finite = np.isfinite(v)
    index = (c + offset)[finite]
    total = np.bincount(index, weights=v[finite], minlength=k * n_cells)
    count = np.bincount(index, minlength=k * n_cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return mean.reshape(k, n_cells), count.reshape(k, n_cells)


def _bilinear_regular(values: np.ndarray, geom: _Geometry, grid: DomainGrid) -> np.ndarray:
    """Linear interpolation in lat/lon of ``values (k, n)`` on a regular source grid (xarray)."""
    k = values.shape[0]
    lat_src, lon_src = geom.lat_axis, geom.lon_axis
    if lat_src.size < 2 or lon_src.size < 2:
        return np.full((k, grid.lat.size * grid.lon.size), np.nan)
    cube = xr.DataArray(values.reshape(k, lat_src.size, lon_src.size), dims=("k", "lat", "lon"),
                        coords={"lat": lat_src, "lon": lon_src})
    # Wrapped longitudes may repeat (a global grid listing 0 and 360); interpolation needs
    # strictly ascending axes.
    cube = cube.drop_duplicates("lat").drop_duplicates("lon").sortby("lat").sortby("lon")
    out = cube.interp(lat=grid.lat, lon=grid.lon, method="linear")
    return np.asarray(out.values).reshape(k, -1)


def _linear_swath(values: np.ndarray, geom: _Geometry, grid: DomainGrid, radius_m: float
                  ) -> np.ndarray:
    """Linear interpolation of ``values (k, n)`` from scattered / swath samples.

    Barycentric weights on the Delaunay triangulation of the samples (scipy) in a local
    equirectangular plane, computed once and applied to every leading slice; a cell is NaN
    when no sample lies within ``radius_m`` (pyresample kd-tree), so triangles bridging swath
    gaps are not used. pyresample 1.35's bilinear resampler was tried first: it misweights
    parallelogram neighbourhoods (up to 2 % error on a linear field sampled on a lat/lon lattice).
    """
    from scipy.spatial import Delaunay, QhullError

    k = values.shape[0]
    n_cells = grid.lat.size * grid.lon.size
    out = np.full((k, n_cells), np.nan)
    ok = np.isfinite(geom.lat) & np.isfinite(geom.lon)
    if ok.sum() < 3:
        return out
    lat0 = float(np.mean(grid.lat))
    lon0 = float(np.mean(grid.lon))
    scale = np.cos(np.radians(lat0))
    points = np.column_stack([(geom.lon[ok] - lon0) * scale, geom.lat[ok]])
    try:
        triangulation = Delaunay(points)
    except QhullError:  # all samples on a line: nothing to interpolate between
        return out
    glat, glon = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    targets = np.column_stack([(glon.ravel() - lon0) * scale, glat.ravel()])
    simplex = triangulation.find_simplex(targets)
    near = neighbour_index(geom.lat, geom.lon, all_land(grid), radius_m=radius_m).ravel() >= 0
    use = (simplex >= 0) & near
    transform = triangulation.transform[simplex[use]]
    bary = np.einsum("ijk,ik->ij", transform[:, :2], targets[use] - transform[:, 2])
    weights = np.column_stack([bary, 1.0 - bary.sum(axis=1)])
    vertices = np.flatnonzero(ok)[triangulation.simplices[simplex[use]]]
    out[:, use] = np.einsum("kij,ij->ki", values[:, vertices], weights)
    return out


def all_land(grid: DomainGrid) -> DomainGrid:
    """``grid`` with every cell land (for searches that must not stop at the coast)."""
    from dataclasses import replace

    return replace(grid, land=tuple(tuple(True for _ in grid.lon) for _ in grid.lat))


def _resample(values: np.ndarray, geom: _Geometry, grid: DomainGrid, method: RegridMethod,
              radius_m: float, prepared: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """``values (k, n)`` at the geometry's samples -> ``(k, n_cells)`` (+ counts for "mean")."""
    n_cells = grid.lat.size * grid.lon.size
    k = values.shape[0]
    if method == "mean":
        if "cell" not in prepared:
            prepared["cell"] = _cell_of(geom.lat, geom.lon, grid)
        return _bin_mean(values, prepared["cell"], n_cells)
    if method == "nearest":
        if "index" not in prepared:
            prepared["index"] = neighbour_index(geom.lat, geom.lon, grid, radius_m=radius_m).ravel()
        index = prepared["index"]
        out = np.full((k, n_cells), np.nan)
        hit = index >= 0
        if values.shape[1]:
            out[:, hit] = values[:, index[hit]]
        return out, None
    if geom.regular:
        return _bilinear_regular(values, geom, grid), None
    return _linear_swath(values, geom, grid, radius_m), None


def _is_flag(da: xr.DataArray) -> bool:
    return any(a in da.attrs for a in ("flag_values", "flag_masks", "flag_meanings"))


def _default_variables(ds: xr.Dataset, spatial: tuple[str, ...]) -> list[str]:
    """Float data variables over the spatial dims that are not flags."""
    return [name for name, da in ds.data_vars.items()
            if np.issubdtype(da.dtype, np.floating) and set(spatial) <= set(da.dims)
            and not _is_flag(da) and name != "quality_mask"]


def _time_variable(ds: xr.Dataset, spatial: tuple[str, ...]) -> str | None:
    """A datetime variable over (a subset of) the spatial dims: per-observation times."""
    for name in ("observation_time", "time"):
        if name in ds.variables and np.issubdtype(ds[name].dtype, np.datetime64) \
                and ds[name].dims and set(ds[name].dims) <= set(spatial):
            return name
    for name, da in ds.variables.items():
        if np.issubdtype(da.dtype, np.datetime64) and da.dims and set(da.dims) <= set(spatial):
            return str(name)
    return None


_DROP_ATTRS = ("coordinates", "grid_mapping", "_FillValue", "missing_value", "scale_factor",
               "add_offset")


def _describe_regridding(method: RegridMethod, radius_m: float | None, regular: bool) -> str:
    if method == "mean":
        return ("mean of the valid source pixels whose centres fall in the cell (bin mean, "
                "numpy bincount), land cells only")
    if method == "nearest":
        return f"nearest neighbour within {radius_m:.0f} m (pyresample kd_tree), land cells only"
    if regular:
        return "bilinear in latitude/longitude (xarray interp, linear), land cells only"
    return (f"linear interpolation between the surrounding samples (Delaunay triangles, scipy), "
            f"cells with a sample within {radius_m:.0f} m (pyresample kd_tree), land cells only")


def native_to_domain(
    ds: xr.Dataset,
    grid: DomainGrid,
    *,
    method: RegridMethod | None = None,
    variables: Sequence[str] | None = None,
    radius_m: float | None = None,
) -> xr.Dataset:
    """Put a native granule (from :func:`~smflow.readers.native.open_native`) on the domain grid.

    Parameters
    ----------
    ds : xr.Dataset
        A native dataset: a regular latitude/longitude grid (1-D ``lat``/``lon`` dims, ascending
        or descending, 0..360 or -180..180), a curvilinear grid or swath (2-D ``lat``/``lon`` on
        the same two dims) or a point list (1-D ``lat``/``lon`` on one observation dim), with
        any leading non-spatial dims (``time``, ``characteristic_time``, ...), which are kept.
    grid : DomainGrid
        The target grid.
    method : {"nearest", "bilinear", "mean"}, optional
        Default: :data:`REGRID_METHODS` of ``ds.attrs["native_product"]``.

        * ``nearest``: each cell takes the sample nearest to its centre within ``radius_m``
          (pyresample kd-tree on the sphere); a cell whose nearest sample has no valid value
          is NaN (it does not borrow a farther sample).
        * ``bilinear``: regular source grids are interpolated linearly in latitude and
          longitude (xarray ``interp``); swaths, curvilinear grids and point lists linearly
          between the three samples around the cell centre (Delaunay triangles), where a
          sample lies within ``radius_m``. A NaN corner gives NaN.
        * ``mean``: mean of all valid source samples whose centres fall in the cell (bin mean);
          adds ``<var>_count`` [1], the number of valid samples behind each cell. Cells without
          a source centre are NaN, so use it for sources finer than the grid.
    variables : sequence of str, optional
        Variables to regrid. Default: every float data variable over the spatial dims that is
        not a flag (integer flags given here are regridded by nearest neighbour).
    radius_m : float, optional
        Search radius [m] of ``nearest`` and swath ``bilinear``; default: the product's entry
        in :data:`REGRID_METHODS`, else 1.5 x the domain resolution.

    Returns
    -------
    xr.Dataset
        Each variable on ``(..., lat, lon)`` with ``grid.lat``/``grid.lon`` (ascending), its
        ``units``/``standard_name``/``long_name`` kept and ``_FillValue`` NaN in the encoding;
        ``quality_fraction`` [1] (fraction of the source samples behind the cell that pass the
        product's ``quality_mask``) when the source has a mask; ``observation_time`` when the
        source carries per-sample times (swath rows, SMAP/CCI/SMOS acquisition times). NaN off
        land. Attributes: the source's, plus ``regridding`` (text), ``regrid_method``,
        ``regrid_radius_m``, ``regrid_library``, ``domain`` (``grid.name``) and ``crs``
        (``grid.crs``). A granule without a sample in the domain gives all-NaN variables.

    Notes
    -----
    The mean is the unweighted mean of the sample values, which for a regular source grid
    finer than the cell is the area mean to within the cos(latitude) change of the pixel area
    across one cell (< 0.2 % for 0.1 deg cells below 60 deg latitude).
    """
    product = ds.attrs.get("native_product") or ds.attrs.get("product") or ""
    default = REGRID_METHODS.get(canonical_name(product)) if product else None
    if method is None:
        method = regrid_default(product).method
    if method not in ("nearest", "bilinear", "mean"):
        raise ValueError(f"Unknown method {method!r}; use 'nearest', 'bilinear' or 'mean'.")
    if radius_m is None:
        radius_m = (default.radius_m if default is not None and default.radius_m else
                    1.5 * grid.resolution * 111_195.0)
    # Samples up to the search radius outside the domain can still be a cell's neighbour.
    margin = 0.0 if method == "mean" else radius_m / 111_195.0 + grid.resolution
    geom = _source_geometry(ds, grid, margin)
    names = list(variables) if variables is not None else _default_variables(ds, geom.spatial_dims)
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise KeyError(f"Variables {missing} are not in the dataset; it has "
                       f"{sorted(map(str, ds.data_vars))}.")

    n_lat, n_lon = grid.shape
    land = grid.land_mask.ravel()
    prepared: dict = {}
    out = xr.Dataset(coords={"lat": grid.lat_coord(), "lon": grid.lon_coord()})

    def put(name: str, da: xr.DataArray, how: RegridMethod, *, kind: str = "value") -> None:
        sizes = dict(ds.sizes)
        if geom.isel is not None:
            da = da.isel({d: i for d, i in geom.isel.items() if d in da.dims})
            sizes.update({d: i.size for d, i in geom.isel.items()})
        lead, values = _spatial_last(da, geom.spatial_dims, sizes)
        values = values[:, geom.take]
        if kind == "time":
            ns = values.astype("datetime64[ns]").astype(np.int64).astype(np.float64)
            ns[np.isnat(values.astype("datetime64[ns]"))] = np.nan
            values = ns
        elif values.dtype.kind == "b":
            values = values.astype(np.float64)
        elif values.dtype.kind in "iu":
            values = values.astype(np.float64)
            how = "nearest"
        regridded, count = _resample(values, geom, grid, how, radius_m,
                                     prepared.setdefault(how, {}))
        regridded[:, ~land] = np.nan
        shape = tuple(da.sizes[d] for d in lead) + (n_lat, n_lon)
        dims = (*lead, "lat", "lon")
        attrs = {k: v for k, v in da.attrs.items() if k not in _DROP_ATTRS}
        if kind == "time":
            result = np.full(regridded.shape, np.datetime64("NaT", "ns"))
            ok = np.isfinite(regridded)
            result[ok] = np.round(regridded[ok]).astype(np.int64).astype("datetime64[ns]")
            out[name] = (dims, result.reshape(shape),
                         {"long_name": "observation time (UTC) of the source samples behind "
                                       "the cell" + (" (mean)" if how == "mean" else "")})
            return
        if kind == "fraction":
            attrs = {"units": "1", "long_name": "fraction of the source samples behind the cell "
                     "that pass the product's quality checks", "valid_min": 0.0, "valid_max": 1.0}
        if how == "mean":
            attrs["cell_methods"] = "area: mean"
        out[name] = (dims, regridded.reshape(shape), attrs)
        out[name].encoding["_FillValue"] = np.nan
        if count is not None and kind == "value":
            counts = np.where(land[None, :], count, 0).astype(np.int32)
            out[f"{name}_count"] = (dims, counts.reshape(shape), {
                "units": "1", "long_name": f"number of valid source samples averaged into {name}"})

    for name in names:
        put(name, ds[name], method)
    if "quality_mask" in ds.data_vars and set(geom.spatial_dims) <= set(ds["quality_mask"].dims):
        put("quality_fraction", ds["quality_mask"], method, kind="fraction")
    time_name = _time_variable(ds, geom.spatial_dims)
    if time_name is not None:
        put("observation_time", ds[time_name], method, kind="time")
    # Non-spatial coordinates (time, characteristic_time, ...) are kept as they are.
    for cname, coord in ds.coords.items():
        if cname in ("lat", "lon") or set(coord.dims) & set(geom.spatial_dims):
            continue
        if set(coord.dims) <= set(out.dims) or not coord.dims:
            out = out.assign_coords({cname: coord})

    out.attrs = {k: v for k, v in ds.attrs.items()}
    out.attrs.update({
        "regridding": _describe_regridding(method, radius_m, geom.regular),
        "regrid_method": method,
        "regrid_radius_m": float(radius_m) if method != "mean" and not (
            method == "bilinear" and geom.regular) else 0.0,
        "regrid_library": "xarray interp" if method == "bilinear" and geom.regular
        else _LIBRARY[method],
        "domain": grid.name,
        "crs": grid.crs,
    })
    return out


def terrain_covariates(dem: xr.Dataset, grid: DomainGrid) -> xr.Dataset:
    """Mean elevation and mean slope of a DEM on the domain grid.

    Parameters
    ----------
    dem : xr.Dataset
        A DEM from :func:`~smflow.readers.native.open_native` with ``elevation`` [m] on a
        regular latitude/longitude grid (ETOPO2 ``FR+IT.nc``, SRTM ``.hgt``, GTOPO30 GeoTIFF,
        ETOPO5 Hawaii, ETOPO 20') or on projected ``y``/``x`` axes [m] with 2-D ``lat``/``lon``.
    grid : DomainGrid
        The target grid.

    Returns
    -------
    xr.Dataset
        ``elevation`` [m] (``height_above_mean_sea_level``, mean over the cell), ``slope``
        [degree] (slope computed at the DEM's native resolution, then averaged over the cell)
        and ``elevation_count`` [1] on ``(lat, lon)``; NaN off land. Cells are averaged when
        the DEM is finer than the grid; a DEM coarser than the grid is interpolated bilinearly
        (a cell would otherwise often hold no DEM pixel centre).

    Notes
    -----
    Slope from centred differences of the elevation with the grid spacing in metres on a
    sphere of radius 6 371 007 m (:func:`smflow.readers.native.terrain.slope_degrees`):

    .. math:: \\theta = \\arctan \\sqrt{(\\partial z / \\partial x)^2 + (\\partial z / \\partial y)^2}

    Averaging slope, not differencing the averaged elevation, keeps the sub-cell relief that
    a coarse-cell gradient would flatten.
    """
    from smflow.readers.native.terrain import slope_degrees

    if "elevation" not in dem.data_vars:
        raise KeyError("The DEM dataset has no 'elevation' variable; open the DEM file with "
                       "smflow.readers.native.open_native.")
    elevation = dem["elevation"]
    regular = dem["lat"].dims == ("lat",) and dem["lon"].dims == ("lon",)
    if regular:
        # Slope needs the neighbours of the edge pixels: cut the DEM one cell beyond the domain.
        lon_min, lat_min, lon_max, lat_max = grid.bounds
        pad = 2 * grid.resolution
        centre = 0.5 * (lon_min + lon_max)
        lon_w = _wrap_lon(dem["lon"].values, centre)
        lat_v = dem["lat"].values
        rows = np.flatnonzero((lat_v >= lat_min - pad) & (lat_v <= lat_max + pad))
        cols = np.flatnonzero((lon_w >= lon_min - pad) & (lon_w <= lon_max + pad))
        cols = cols[np.argsort(lon_w[cols], kind="stable")]
        sub = elevation.isel(lat=rows, lon=cols).assign_coords(lon=("lon", lon_w[cols]))
        z = np.asarray(sub.transpose("lat", "lon").values, dtype=np.float64)
        slope = (slope_degrees(z, lat=sub["lat"].values, lon=sub["lon"].values)
                 if min(z.shape) > 1 else np.full(z.shape, np.nan))
        source = xr.Dataset({"elevation": (("lat", "lon"), z), "slope": (("lat", "lon"), slope)},
                            coords={"lat": sub["lat"].values, "lon": sub["lon"].values})
        step = max(_median_step(sub["lat"].values) or 0.0, _median_step(sub["lon"].values) or 0.0)
    elif "x" in dem.coords and "y" in dem.coords and elevation.dims == ("y", "x"):
        z = np.asarray(elevation.values, dtype=np.float64)
        slope = slope_degrees(z, x=dem["x"].values, y=dem["y"].values)
        source = xr.Dataset({"elevation": (("y", "x"), z), "slope": (("y", "x"), slope)},
                            coords={"lat": dem["lat"], "lon": dem["lon"]})
        step = (_median_step(dem["y"].values) or 0.0) / 111_195.0
    else:
        raise ValueError(f"terrain_covariates needs elevation(lat, lon) or elevation(y, x) with "
                         f"x/y axes; got elevation{elevation.dims}.")
    source.attrs = dict(dem.attrs)
    method: RegridMethod = "mean" if step <= grid.resolution else "bilinear"
    out = native_to_domain(source, grid, method=method, variables=["elevation", "slope"],
                           radius_m=max(step, grid.resolution) * 111_195.0 * 1.5)
    out = out.drop_vars([v for v in ("slope_count",) if v in out])
    out["elevation"].attrs = {
        "units": "m", "standard_name": "height_above_mean_sea_level",
        "long_name": "mean surface elevation in the cell",
        "cell_methods": "area: mean" if method == "mean" else "point: bilinear"}
    out["slope"].attrs = {
        "units": "degree", "long_name": "mean terrain slope in the cell (slope computed at the "
        "DEM's native resolution)", "cell_methods": "area: mean" if method == "mean" else
        "point: bilinear"}
    for name in ("elevation", "slope"):
        out[name].encoding["_FillValue"] = np.nan
    out.attrs["title"] = f"terrain covariates from {dem.attrs.get('source_file', 'a DEM')}"
    return out
