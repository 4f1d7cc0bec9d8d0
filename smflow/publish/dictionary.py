"""The data dictionary of the published products, written from the files themselves.

``python -m smflow.publish.dictionary FILE.nc [FILE.nc ...] > docs/data-dictionary.md`` lists, per
product file, every variable with its dimensions, units, CF standard name, long name, flag values
and meanings and comment, and the global attributes. Written from real files (any published day),
so the dictionary says what users get; ``tests/publish/test_data_dictionary.py`` checks that
``docs/data-dictionary.md`` is what this module writes for the current code.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["data_dictionary"]

#: Global attributes that change with the day, its inputs or the models (listed by name only).
_PER_DAY = {"id", "product_date", "history", "time_coverage_start", "time_coverage_end", "input_granules",
            "missing_inputs", "input_granule_provenance", "tc_merging_model", "sm2rain_model", "merging_model",
            "code_version", "geospatial_bounds", "sm2rain_parameters_source", "member_models", "source",
            "product_status", "product_status_reason", "sm2rain_skill_status", "sm2rain_skill",
            "experimental_policy", "merging_method", "merging_features", "tc_window_days", "tc_bootstrap",
            "sm2rain_variant"}


def _cell(value) -> str:
    text = " ".join(str(value).split())
    return text.replace("|", "\\|")


def data_dictionary(paths: Iterable[str | Path]) -> str:
    """Markdown data dictionary of the product files ``paths`` (one section per file type).

    Raises
    ------
    FileNotFoundError
        A path does not exist.
    ValueError
        A file is not a product of this system (no ``product_name`` attribute).
    """
    import xarray as xr

    lines = ["# Data dictionary of the daily products", "",
             "Written by `python -m smflow.publish.dictionary` from product files (see its docstring); "
             "do not edit by hand.", ""]
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such product file")
        with xr.open_dataset(path, engine="h5netcdf", decode_cf=False) as ds:
            name = ds.attrs.get("product_name")
            if not name:
                raise ValueError(f"{path}: not a product of this system (no product_name attribute)")
            lines += [f"## `smflow_{name}_YYYYMMDD.nc`: {_cell(ds.attrs.get('title', ''))}", "",
                      _cell(ds.attrs.get("summary", "")), "",
                      "| variable | dimensions | units | standard_name | long_name | flags | comment |",
                      "|---|---|---|---|---|---|---|"]
            for var_name in sorted(ds.variables, key=lambda v: (v not in ds.coords, str(v))):
                var = ds[var_name]
                attrs = var.attrs
                flags = ""
                if "flag_values" in attrs:
                    values = np.atleast_1d(attrs["flag_values"]).tolist()
                    flags = ", ".join(f"{v} = {m}" for v, m in zip(values, str(attrs["flag_meanings"]).split(), strict=True))
                lines.append("| " + " | ".join([
                    f"`{var_name}`", ", ".join(var.dims) or "scalar", _cell(attrs.get("units", "")),
                    _cell(attrs.get("standard_name", "")), _cell(attrs.get("long_name", "")), flags,
                    _cell(attrs.get("comment", "")),
                ]) + " |")
            fixed = [(k, v) for k, v in sorted(ds.attrs.items()) if k not in _PER_DAY]
            lines += ["", "Global attributes (the same every day): " + "; ".join(
                f"`{k}` = {_cell(v)}" for k, v in fixed if k not in ("summary", "title", "references", "comment")) + ".",
                "", "Per-day global attributes (lineage): " + ", ".join(
                    f"`{k}`" for k in sorted(ds.attrs) if k in _PER_DAY) + ".", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    sys.stdout.write(data_dictionary(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
