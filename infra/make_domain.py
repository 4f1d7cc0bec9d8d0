#!/usr/bin/env python3
"""Write a domain JSON (``config/domains/<name>.json``) from a real land-mask file.

The grid's land mask is computed, not drawn: each 0.1 deg (or ``--resolution``) cell is land
where the fraction of land pixels of the mask file whose centres fall in the cell is at least
``--threshold`` (default 0.5). The mask file is read with ``open_native`` and aggregated with
:func:`smflow.regrid.native_to_domain` (``method="mean"``), the same code that aggregates 1 km
products, so a domain and the fields regridded onto it agree on which pixels belong to a cell.

Usage (the ebro_pyrenees domain of the native-regridding tests)::

    .venv/bin/python infra/make_domain.py ebro_pyrenees \\
        --lat 41.05 44.95 --lon -0.95 2.95 --resolution 0.1 \\
        --mask ../shared/data/real/land_masks/globe_combined_mask_compressed.npz \\
        --description "Ebro basin, Pyrenees and SW France (box of the CGLS 1 km test granules)"

The global 0.25 deg domain of the global pipeline (the ESA CCI SM / GLDAS cell grid, whose cell
corners are the ERA5 0.25 deg grid points: a cell is land where at least half of its four corner
points are ERA5 land, ``--corners``; no coastline outline for a global map)::

    .venv/bin/python infra/make_domain.py global_025 --lat -59.875 89.875 --lon -179.875 179.875 \\
        --resolution 0.25 --corners --no-outline --title "Global land, 0.25 deg" \\
        --mask ../shared/data/real/land_masks/landmask_0.25_0.25.nc \\
        --description "Global land on the ESA CCI SM / GLDAS 0.25 degree grid; land from the ERA5 land-sea mask"

``--outline`` adds (or renews) only the coastline the quicklooks draw, from the GLOBE mask::

    .venv/bin/python infra/make_domain.py big_island --outline \\
        --lat 0 0 --lon 0 0 --mask ../shared/data/real/land_masks/globe_combined_mask_compressed.npz

Supported masks: the GLOBE 30" land/water mask (``globe_combined_mask_compressed.npz``, read
only over the box) and the ERA5 / ERA5-Land land definitions (``landmask_0.25_0.25.nc``,
``landmask_0.1_0.1.nc``); on a grid whose centres coincide with the mask's points the fraction
is that point's 0/1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smflow.domain import DOMAINS_DIR, DomainGrid, domain_from_dict  # noqa: E402

ENCODING = ("one string per latitude row, north ({north}) first, south ({south}) last; one "
            "character per longitude, west ({west}) first; 1 = land, 0 = sea")


def land_fraction(mask_path: Path, *, lat: tuple[float, float], lon: tuple[float, float],
                  resolution: float) -> np.ndarray:
    """Fraction of land pixels of ``mask_path`` per cell ``(lat, lon)``, latitude ascending [1].

    Parameters
    ----------
    mask_path : Path
        GLOBE npz or ECMWF ``landmask_*.nc`` (any file ``open_native`` reads to ``land_mask``).
    lat, lon : (float, float)
        First and last cell centres [degree].
    resolution : float
        Cell size [degree].
    """
    from smflow.readers.native import open_native
    from smflow.regrid import native_to_domain

    provisional = _grid("provisional", lat, lon, resolution, None)
    options = {}
    if "globe" in mask_path.name:
        lon_min, lat_min, lon_max, lat_max = provisional.bounds
        options["bbox"] = (lon_min - 0.01, lat_min - 0.01, lon_max + 0.01, lat_max + 0.01)
    mask = open_native(mask_path, chunks=None, **options)
    mask["land_fraction"] = mask["land_mask"].astype(np.float64)
    mask["land_fraction"].attrs = {"units": "1", "long_name": "land fraction"}
    coarser = _mask_step(mask) > resolution * 1.0001
    field = native_to_domain(mask, provisional, method="nearest" if coarser else "mean",
                             variables=["land_fraction"],
                             radius_m=0.75 * resolution * 111_195.0)
    return np.nan_to_num(field["land_fraction"].values, nan=0.0)


def corner_fraction(mask_path: Path, *, lat: tuple[float, float], lon: tuple[float, float],
                    resolution: float) -> np.ndarray:
    """Fraction of land among the four corner points of each cell, latitude ascending [1].

    For an ECMWF ``landmask_*.nc`` whose points are the corners of the domain's cells (ERA5 0.25
    deg points at multiples of 0.25 deg; ESA CCI / GLDAS cell centres at odd multiples of 0.125
    deg): the mean of the 0/1 land values at the four corners (NaN, south of -60 deg in the
    file, counts as sea). Longitudes wrap (the file runs 0 .. 359.75).

    Raises
    ------
    ValueError
        The file's points are not the corners of the cells (another resolution or offset).
    """
    import xarray as xr

    with xr.open_dataset(mask_path) as ds:
        var = next(v for v in ("land", "lsm", "land_mask") if v in ds)
        values = np.nan_to_num(ds[var].values.astype(float), nan=0.0)
        mlat = np.round(ds["latitude"].values.astype(float), 6)
        mlon = np.round(ds["longitude"].values.astype(float) % 360.0, 6)
    lats = np.round(np.arange(lat[0], lat[1] + resolution / 2, resolution), 6)
    lons = np.round(np.arange(lon[0], lon[1] + resolution / 2, resolution), 6)
    row = {v: i for i, v in enumerate(mlat)}
    col = {v: j for j, v in enumerate(mlon)}
    half = resolution / 2
    try:
        south = np.array([row[round(v - half, 6)] for v in lats])
        north = np.array([row[round(v + half, 6)] for v in lats])
        west = np.array([col[round((v - half) % 360.0, 6)] for v in lons])
        east = np.array([col[round((v + half) % 360.0, 6)] for v in lons])
    except KeyError as exc:
        raise ValueError(f"{mask_path}: no mask point at the cell corner {exc}; --corners needs a mask "
                         f"whose points are the corners of {resolution} deg cells") from None
    return (values[np.ix_(south, west)] + values[np.ix_(south, east)]
            + values[np.ix_(north, west)] + values[np.ix_(north, east)]) / 4.0


def outline(mask_path: Path, bounds: tuple[float, float, float, float], *,
            tolerance: float = 0.004) -> list[list[list[float]]]:
    """Coastline polylines of the land in ``bounds`` from a 30" land mask (the quicklooks' outline).

    The 0.5 contour of the land/water mask (contourpy, on pixel centres), simplified with
    Douglas-Peucker (shapely) to ``tolerance`` degrees (0.004 deg ~ 400 m, half a GLOBE pixel),
    rounded to 4 decimals. Returns ``[[[lon, lat], ...], ...]``, one list per polyline.
    """
    import contourpy
    import shapely

    from smflow.readers.native import open_native

    lon_min, lat_min, lon_max, lat_max = bounds
    margin = 0.05
    mask = open_native(Path(mask_path), chunks=None,
                       bbox=(lon_min - margin, lat_min - margin, lon_max + margin, lat_max + margin))
    lat = np.asarray(mask["lat"].values, dtype=float)
    lon = np.asarray(mask["lon"].values, dtype=float)
    land = np.asarray(mask["land_mask"].values, dtype=float)
    # pad with water so that every coast is a closed line
    land = np.pad(land, 1)
    dlat, dlon = np.diff(lat).mean(), np.diff(lon).mean()
    lat = np.concatenate([[lat[0] - dlat], lat, [lat[-1] + dlat]])
    lon = np.concatenate([[lon[0] - dlon], lon, [lon[-1] + dlon]])
    lines = contourpy.contour_generator(lon, lat, land).lines(0.5)
    out = []
    for line in lines:
        simple = shapely.simplify(shapely.LineString(line), tolerance)
        coords = np.round(np.asarray(simple.coords), 4)
        if len(coords) >= 4:  # drop single-pixel islets
            out.append(coords.tolist())
    return out


def add_outline(config: dict, mask_path: Path) -> dict:
    """``config`` with its ``outline`` (:func:`outline` of the domain's bounds) and its source."""
    grid = domain_from_dict(config)
    config["outline"] = {
        "source": (f"{Path(mask_path).name} (NOAA GLOBE 30 arc-second land/water mask, public domain; "
                   "land_masks/ of ../shared/data/real): 0.5 contour, simplified to 0.004 deg; made by "
                   "infra/make_domain.py --outline"),
        "polylines": outline(mask_path, grid.bounds),
    }
    domain_from_dict(config)
    return config


def _mask_step(mask) -> float:
    return float(np.nanmedian(np.abs(np.diff(np.asarray(mask["lat"].values, dtype=float)))))


def _grid(name: str, lat: tuple[float, float], lon: tuple[float, float], resolution: float,
          land: np.ndarray | None) -> DomainGrid:
    n_lat = int(round((lat[1] - lat[0]) / resolution)) + 1
    n_lon = int(round((lon[1] - lon[0]) / resolution)) + 1
    if land is None:
        land = np.ones((n_lat, n_lon), dtype=bool)
    return DomainGrid(name=name, crs="EPSG:4326", resolution=resolution, lat_first=lat[0],
                      lat_last=lat[1], lon_first=lon[0], lon_last=lon[1],
                      land=tuple(tuple(bool(v) for v in row) for row in land))


def domain_config(name: str, *, lat: tuple[float, float], lon: tuple[float, float],
                  resolution: float, mask_path: Path, description: str,
                  threshold: float = 0.5, corners: bool = False) -> dict:
    """The JSON document of a domain (layout of ``config/domains/big_island.json``)."""
    mask_path = Path(mask_path)
    how = corner_fraction if corners else land_fraction
    fraction = how(mask_path, lat=lat, lon=lon, resolution=resolution)
    land = fraction >= threshold
    rows = ["".join("1" if v else "0" for v in row) for row in land[::-1]]
    config = {
        "name": name,
        "description": description,
        "crs": "EPSG:4326",
        "resolution": resolution,
        "lat_centres": {"first": lat[0], "last": lat[1]},
        "lon_centres": {"first": lon[0], "last": lon[1]},
        "land_mask": {
            "source": (f"{mask_path.name} (land_masks/ of ../shared/data/real, see its MANIFEST); "
                       + (f"land = cells with at least {threshold:.0%} of their four corner points on land "
                          "(infra/make_domain.py --corners)" if corners else
                          f"land = cells whose land-pixel fraction is >= {threshold} (pixels counted "
                          "by centre, smflow.regrid.native_to_domain method 'mean'); made by "
                          "infra/make_domain.py")),
            "encoding": ENCODING.format(north=lat[1], south=lat[0], west=lon[0]),
            "rows": rows,
        },
    }
    domain_from_dict(config)  # the document loads (shape checks)
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name")
    parser.add_argument("--lat", nargs=2, type=float, required=True, metavar=("FIRST", "LAST"))
    parser.add_argument("--lon", nargs=2, type=float, required=True, metavar=("FIRST", "LAST"))
    parser.add_argument("--resolution", type=float, default=0.1)
    parser.add_argument("--mask", type=Path, required=True)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--description", default="")
    parser.add_argument("--title", default="", help="short name shown on the maps")
    parser.add_argument("--corners", action="store_true",
                        help="the mask's points are the cells' corners: land fraction of the four corners")
    parser.add_argument("--no-outline", action="store_true", help="no coastline outline (global domains)")
    parser.add_argument("--outline", action="store_true",
                        help="only add the coastline outline (from --mask) to the existing domain file")
    parser.add_argument("--out", type=Path, default=None,
                        help="output file (default config/domains/<name>.json)")
    args = parser.parse_args(argv)
    out = args.out or DOMAINS_DIR / f"{args.name}.json"
    if args.outline:
        config = add_outline(json.loads(out.read_text()), args.mask)
        out.write_text(json.dumps(config, indent=2) + "\n")
        print(f"{out}: outline of {len(config['outline']['polylines'])} polylines, "
              f"{sum(len(p) for p in config['outline']['polylines'])} vertices")
        return 0
    config = domain_config(args.name, lat=tuple(args.lat), lon=tuple(args.lon),
                           resolution=args.resolution, mask_path=args.mask,
                           description=args.description, threshold=args.threshold, corners=args.corners)
    if args.title:
        config["title"] = args.title
    if not args.no_outline:
        config = add_outline(config, args.mask)
    out.write_text(json.dumps(config, indent=2) + "\n")
    grid = domain_from_dict(config)
    print(f"{out}: {grid.shape[0]} x {grid.shape[1]} cells, {grid.n_land} land")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
