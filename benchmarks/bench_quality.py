"""Great Expectations validation cost per granule and per daily product after warm-up.

Target (formerly a timed test, which belongs here): < 1 s per validation once the suites are
built. Run: ``.venv/bin/python benchmarks/bench_quality.py`` (needs ../shared for the real granules).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "quality"))
sys.path.insert(0, str(REPO / "tests"))


def main() -> None:
    from quality_fixtures import GOOD_DAY, decode_day, make_product

    from smflow.quality.suites import INPUT_PRODUCTS
    from smflow.quality.validate import validate_granule, validate_product, warm_up

    warm_up()
    decoded = {p: decode_day(p, GOOD_DAY) for p in INPUT_PRODUCTS}
    ds = make_product()
    for p in INPUT_PRODUCTS:  # first run per suite builds it
        validate_granule(p, decoded[p], GOOD_DAY)
    validate_product(ds, GOOD_DAY)
    timings = {}
    for p in INPUT_PRODUCTS:
        start = time.perf_counter()
        validate_granule(p, decoded[p], GOOD_DAY)
        timings[p] = time.perf_counter() - start
    start = time.perf_counter()
    validate_product(ds, GOOD_DAY)
    timings["product"] = time.perf_counter() - start
    worst = max(timings.values())
    print("seconds per validation:", {k: round(v, 3) for k, v in timings.items()})
    print(f"target < 1 s per validation: {'met' if worst < 1.0 else 'MISSED'} (worst {worst:.3f} s)")


if __name__ == "__main__":
    main()
