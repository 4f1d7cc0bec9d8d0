"""Regenerate the bundled Hawaii sample (data/sample/hawaii/) from ../shared/data/real.

Only redistributable products are bundled (NASA SMAP and GLDAS, Copernicus ERA5-Land and C3S; see
ATTRIBUTION.md). Each cell file is cut to the big_island domain plus one grid step of the product
and to 2017-01-01 .. 2018-12-31, keeping its layout, variable names, attributes, flags, raw values
and compression (smflow.readers.timeseries.subset_files). Run from the repository root:

    .venv/bin/python data/sample/make_bundle.py [--shared ../shared/data/real]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from smflow.config import Settings  # noqa: E402
from smflow.domain import load_domain  # noqa: E402
from smflow.products import QA4SM_TESTDATA, get_product  # noqa: E402
from smflow.readers.timeseries import subset_files  # noqa: E402

START, END = "2017-01-01", "2018-12-31"
BUNDLED = ("smap", "era5_land", "gldas", "c3s")
METRES_PER_DEGREE = 111_320.0


def bundle_bbox(product_name: str, domain_name: str = "big_island") -> tuple[float, float, float, float]:
    """Domain cell centres widened by one sample spacing of the product (+1 % slack)."""
    grid = load_domain(domain_name)
    p = get_product(product_name)
    dlat = 1.01 * p.native_resolution_m / METRES_PER_DEGREE
    mid_lat = math.radians((grid.lat_first + grid.lat_last) / 2)
    dlon = 1.01 * p.native_resolution_m / (METRES_PER_DEGREE * math.cos(mid_lat))
    return (grid.lon_first - dlon, grid.lat_first - dlat, grid.lon_last + dlon, grid.lat_last + dlat)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Settings.load().shared_data_dir,
                        help="../shared/data/real (default: from smflow Settings)")
    parser.add_argument("--out", type=Path, default=HERE / "hawaii")
    args = parser.parse_args(argv)
    if args.shared is None or not (args.shared / "hawaii_timeseries").is_dir():
        parser.error("../shared/data/real/hawaii_timeseries not found; pass --shared")
    total = 0
    for name in BUNDLED:
        p = get_product(name)
        assert p.redistributable, f"{name} must not be bundled"
        bbox = bundle_bbox(name)
        for cell in p.cells:
            src = args.shared / "hawaii_timeseries" / p.folder / f"{cell}.nc"
            dest = args.out / p.folder / f"{cell}.nc"
            note = (
                f"smflow data/sample/make_bundle.py: subset of {QA4SM_TESTDATA} "
                f"{p.folder}/{cell}.nc to lon {bbox[0]:.3f}..{bbox[2]:.3f}, lat {bbox[1]:.3f}.."
                f"{bbox[3]:.3f} and {START}..{END}; variables {', '.join(p.keep_variables)}; "
                "values, names, attributes and encoding unchanged"
            )
            subset_files(src, dest, start=START, end=END, bbox=bbox,
                         variables=p.keep_variables, history=note)
            size = dest.stat().st_size
            total += size
            print(f"{dest}: {size / 1e3:.0f} kB")
    print(f"total {total / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
