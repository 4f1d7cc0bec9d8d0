"""Quicklook PNG maps of one day's product: one small map per variable, reproducible to the byte.

A quicklook is for a forecaster's glance (is the island wet, where did it rain, where is a parent
product noisy), not for analysis: the netCDF files carry the numbers. Each map draws the grid cells
as they are (no smoothing), grey where there is no value (off land or no retrieval), with lat/lon
axes, a colour bar labelled with the units, and the date in the title.

PNG bytes are deterministic: the Agg backend, fixed size and dpi, and no ``Software`` /
timestamp metadata, so a re-run of the same day gives the same checksum and is not re-uploaded.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import Final

import numpy as np
import xarray as xr

__all__ = ["QUICKLOOKS", "QuicklookSpec", "render_day_quicklooks", "render_quicklook"]

_NO_DATA_GREY: Final = "#bdbdbd"
_DPI: Final = 100
_FIGSIZE: Final = (5.4, 5.6)


@dataclass(frozen=True)
class QuicklookSpec:
    """How one quicklook is drawn: which variable (and parent source), colours and fixed range.

    Fixed ranges (not per-day min/max) keep colours comparable from one day to the next.
    """

    variable: str
    title: str
    units: str
    cmap: str
    vmin: float
    vmax: float
    source: str | None = None

    @property
    def name(self) -> str:
        """Name in the object key, e.g. ``soil_moisture`` or ``snr_db_smap``."""
        return f"{self.variable}_{self.source}" if self.source else self.variable


#: The quicklooks of one day: the three headline maps, then the TC signal-to-noise ratio of each
#: parent (where each parent is trustworthy, the question the merge weights answer).
QUICKLOOKS: Final[tuple[QuicklookSpec, ...]] = (
    QuicklookSpec("soil_moisture", "Merged soil moisture", "m3 m-3", "YlGnBu", 0.0, 0.5),
    QuicklookSpec(
        "soil_moisture_error_variance", "Merged soil moisture error variance", "m6 m-6",
        "magma_r", 0.0, 0.004,
    ),
    QuicklookSpec("precipitation_amount", "SM2RAIN rainfall (daily sum)", "kg m-2 (mm)", "Blues",
                  0.0, 50.0),
    QuicklookSpec("snr_db", "TC signal-to-noise ratio, SMAP", "dB", "RdYlBu", -6.0, 12.0, "smap"),
    QuicklookSpec("snr_db", "TC signal-to-noise ratio, ERA5-Land", "dB", "RdYlBu", -6.0, 12.0,
                  "era5_land"),
    QuicklookSpec("snr_db", "TC signal-to-noise ratio, GLDAS", "dB", "RdYlBu", -6.0, 12.0,
                  "gldas"),
)


def render_quicklook(
    da2d: xr.DataArray,
    *,
    title: str,
    units: str,
    cmap: str,
    vmin: float,
    vmax: float,
) -> bytes:
    """Draw a (lat, lon) field as a PNG map.

    Parameters
    ----------
    da2d : xr.DataArray
        Two-dimensional field with ``lat`` and ``lon`` coordinates (cell centres, degrees); NaN
        is drawn grey. A size-1 ``time`` dimension is squeezed away.
    title : str
        First title line; the date is added as the second line when ``da2d`` has a ``time``
        coordinate.
    units : str
        Label of the colour bar.
    cmap : str
        Matplotlib colour-map name.
    vmin, vmax : float
        Fixed colour range; values outside it get the colour bar's extension colours.

    Returns
    -------
    bytes
        The PNG file, identical for identical input.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    field = da2d
    if "time" in field.dims:
        if field.sizes["time"] != 1:
            raise ValueError(f"render_quicklook draws one time step; got {field.sizes['time']}")
        field = field.isel(time=0)  # keeps the date as a scalar coordinate
    field = field.transpose("lat", "lon")
    date = _date_of(field)
    lat = field["lat"].values.astype("f8")
    lon = field["lon"].values.astype("f8")
    values = np.ma.masked_invalid(field.values.astype("f8"))

    colours = matplotlib.colormaps[cmap].with_extremes(bad=_NO_DATA_GREY)

    # A Figure with its own Agg canvas, not pyplot: no global state, safe in threads/tasks.
    # Fixed axes boxes instead of tight/constrained layout: one draw per image, not three.
    figure = Figure(figsize=_FIGSIZE, dpi=_DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.14, 0.09, 0.62, 0.8))
    colour_axes = figure.add_axes((0.79, 0.17, 0.035, 0.64))
    mesh = axes.pcolormesh(
        _edges(lon), _edges(lat), values, cmap=colours, vmin=vmin, vmax=vmax, shading="flat"
    )
    axes.set_facecolor(_NO_DATA_GREY)
    # Degrees of longitude are shorter than degrees of latitude by cos(latitude).
    axes.set_aspect(1.0 / np.cos(np.deg2rad(float(np.mean(lat)))))
    axes.set_xlabel("longitude [degrees_east]")
    axes.set_ylabel("latitude [degrees_north]")
    axes.set_title(title if date is None else f"{title}\n{date.isoformat()}", fontsize=11)
    axes.grid(color="white", linewidth=0.4, alpha=0.6)
    colour_bar = figure.colorbar(mesh, cax=colour_axes, extend=_extend(values, vmin, vmax))
    colour_bar.set_label(units)
    # Small ranges (error variances ~1e-3) as "0 .. 4" with a "1e-3" offset: narrow tick labels.
    colour_bar.formatter.set_powerlimits((-2, 4))
    colour_bar.update_ticks()
    axes.text(
        0.01, 0.01, "grey: no value / off land", transform=axes.transAxes, fontsize=7,
        color="0.25", va="bottom", ha="left",
    )

    buffer = io.BytesIO()
    # No Software (matplotlib version) or Creation Time chunks: same input, same bytes.
    figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


def render_day_quicklooks(
    product: xr.Dataset, specs: tuple[QuicklookSpec, ...] = QUICKLOOKS
) -> dict[str, bytes]:
    """PNG bytes of every quicklook in ``specs`` for a daily product dataset, by spec name."""
    images: dict[str, bytes] = {}
    for spec in specs:
        if spec.variable not in product:
            raise ValueError(f"quicklook {spec.name!r} needs variable {spec.variable!r}")
        field = product[spec.variable]
        if spec.source is not None:
            field = field.sel(source=spec.source)
        images[spec.name] = render_quicklook(
            field, title=spec.title, units=spec.units, cmap=spec.cmap, vmin=spec.vmin,
            vmax=spec.vmax,
        )
    return images


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges of a regular axis of cell centres."""
    if centres.size == 1:
        return np.array([centres[0] - 0.05, centres[0] + 0.05])
    half = np.diff(centres) / 2.0
    return np.concatenate(
        [[centres[0] - half[0]], centres[:-1] + half, [centres[-1] + half[-1]]]
    )


def _extend(values: np.ma.MaskedArray, vmin: float, vmax: float) -> str:
    below = bool((values < vmin).any())
    above = bool((values > vmax).any())
    return {(False, False): "neither", (True, False): "min", (False, True): "max"}.get(
        (below, above), "both"
    )


def _date_of(field: xr.DataArray) -> dt.date | None:
    if "time" not in field.coords or field["time"].size != 1:
        return None
    import pandas as pd

    return pd.Timestamp(field["time"].values.reshape(-1)[0]).date()

