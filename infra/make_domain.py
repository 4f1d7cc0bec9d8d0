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
                  threshold: float = 0.5) -> dict:
    """The JSON document of a domain (layout of ``config/domains/big_island.json``)."""
    mask_path = Path(mask_path)
    fraction = land_fraction(mask_path, lat=lat, lon=lon, resolution=resolution)
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
                       f"land = cells whose land-pixel fraction is >= {threshold} (pixels counted "
                       "by centre, smflow.regrid.native_to_domain method 'mean'); made by "
                       "infra/make_domain.py"),
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
    parser.add_argument("--out", type=Path, default=None,
                        help="output file (default config/domains/<name>.json)")
    args = parser.parse_args(argv)
    config = domain_config(args.name, lat=tuple(args.lat), lon=tuple(args.lon),
                           resolution=args.resolution, mask_path=args.mask,
                           description=args.description, threshold=args.threshold)
    out = args.out or DOMAINS_DIR / f"{args.name}.json"
    out.write_text(json.dumps(config, indent=2) + "\n")
    grid = domain_from_dict(config)
    print(f"{out}: {grid.shape[0]} x {grid.shape[1]} cells, {grid.n_land} land")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
