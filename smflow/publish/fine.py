"""The published 0.01 deg product read back (the files of :mod:`smflow.downscaling.daily`).

Kept in the publish layer so that readers of published products (:mod:`smflow.skill`) need not
import the downscaling methods.
"""

from __future__ import annotations

import datetime as dt
import tempfile

import numpy as np
import xarray as xr

__all__ = ["item_key_1km", "open_published_1km"]


def item_key_1km(day: dt.date) -> str:
    """``stac/items/smflow-daily-1km-YYYYMMDD.json``: the commit point of a published 1 km day."""
    return f"stac/items/smflow-daily-1km-{day:%Y%m%d}.json"


def open_published_1km(s3, bucket: str, days, lats, lons) -> np.ndarray:
    """The published 0.01 deg soil moisture at points, read through each day's STAC item.

    Parameters
    ----------
    days : sequence of date
    lats, lons : array_like, shape (points,)
        Point coordinates [degrees north / east]; each takes the value of the fine pixel that
        contains it.

    Returns
    -------
    ndarray, shape (points, days)
        [m3 m-3]; NaN for a day with no published 1 km item and where the pixel has no value.
    """
    import rioxarray  # noqa: F401  (registers the engine)

    from smflow.publish.publisher import published_assets

    lats, lons = np.asarray(lats, dtype=float), np.asarray(lons, dtype=float)
    out = np.full((lats.size, len(days)), np.nan)
    for t, day in enumerate(days):
        try:
            key = published_assets(s3, bucket, day, key=item_key_1km(day))["data"]
        except (FileNotFoundError, KeyError):
            continue
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        with tempfile.NamedTemporaryFile(suffix=".tif") as tmp:
            tmp.write(body)
            tmp.flush()
            cog = xr.open_dataarray(tmp.name, engine="rasterio").squeeze("band", drop=True).load()
        x = xr.DataArray(lons, dims="point")
        y = xr.DataArray(lats, dims="point")
        picked = cog.sel(x=x, y=y, method="nearest").values.astype(float)
        inside = ((lons >= float(cog.x.min()) - 0.005) & (lons <= float(cog.x.max()) + 0.005)
                  & (lats >= float(cog.y.min()) - 0.005) & (lats <= float(cog.y.max()) + 0.005))
        nodata = cog.attrs.get("_FillValue", cog.rio.nodata)
        if nodata is not None and np.isfinite(nodata):
            picked[picked == nodata] = np.nan
        out[:, t] = np.where(inside, picked, np.nan)
    return out
