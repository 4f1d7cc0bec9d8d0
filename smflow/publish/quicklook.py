"""Quicklook PNG maps of one day's product: one small map per variable, reproducible to the byte.

A quicklook is for a forecaster's glance (is the island wet, where did it rain, where is a parent
product noisy), not for analysis: the netCDF files carry the numbers. Each map draws the grid cells
as they are (no smoothing) under the domain's coastline (GLOBE 30" land mask, offline: the domain
file's ``outline``), dark grey where a land cell has no value and hatched off land, with
lat/lon axes, a colour bar labelled with the units, and the domain name and the date in the title.
Colour scales are fixed where days must compare (soil moisture, SNR); the rainfall scale adapts to
the day (a fixed 0-50 mm washes most days out) and the map says so, with the scale it used.

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

__all__ = ["QUICKLOOKS", "QuicklookSpec", "adaptive_vmax", "render_day_quicklooks", "render_quicklook"]

_NO_VALUE_ON_LAND: Final = "#7a7a7a"
_OFF_LAND_HATCH: Final = "#b0b0b0"
_COAST: Final = "#202020"
_DPI: Final = 100
_FIGSIZE: Final = (5.4, 5.6)


@dataclass(frozen=True)
class QuicklookSpec:
    """How one quicklook is drawn: which variable (and parent source), colours and range.

    Fixed ranges (not per-day min/max) keep colours comparable from one day to the next; an
    ``adaptive`` spec uses ``[vmin, nice(98th percentile of the day)]`` instead, at least
    ``min_span`` wide and at most ``vmax`` (where one day's numbers matter more than comparisons:
    rainfall).
    """

    variable: str
    title: str
    units: str
    cmap: str
    vmin: float
    vmax: float
    source: str | None = None
    adaptive: bool = False
    min_span: float = 0.0

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
                  0.0, 200.0, adaptive=True, min_span=2.0),
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
    land: np.ndarray | None = None,
    outline: tuple = (),
    place: str = "",
    adaptive: bool = False,
    min_span: float = 0.0,
) -> bytes:
    """Draw a (lat, lon) field as a PNG map.

    Parameters
    ----------
    da2d : xr.DataArray
        Two-dimensional field with ``lat`` and ``lon`` coordinates (cell centres, degrees). A
        size-1 ``time`` dimension is squeezed away.
    title : str
        First title line (``place`` and the date are added when known).
    units : str
        Label of the colour bar.
    cmap : str
        Matplotlib colour-map name.
    vmin, vmax : float
        Colour range (fixed), or the lower end and the cap of an adaptive one; values outside it
        get the colour bar's extension colours.
    land : ndarray of bool, shape (lat, lon), optional
        Land mask: NaN on land is drawn dark grey ("no value"), off land hatched ("off land").
        Without it every NaN is "no value".
    outline : sequence of sequences of (lon, lat), optional
        Coastline polylines drawn over the cells.
    place : str, optional
        Domain name for the title.
    adaptive : bool
        Scale ``[vmin, min(vmax, nice(98th percentile))]`` at least ``min_span`` wide, printed
        under the colour bar.
    min_span : float
        Smallest adaptive range [units of the field].

    Returns
    -------
    bytes
        The PNG file, identical for identical input.

    Raises
    ------
    ValueError
        ``da2d`` has several time steps, or ``land`` does not have its shape.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    field = da2d
    if "time" in field.dims:
        if field.sizes["time"] != 1:
            raise ValueError(f"render_quicklook draws one time step; got {field.sizes['time']}")
        field = field.isel(time=0)  # keeps the date as a scalar coordinate
    field = field.transpose("lat", "lon")
    date = _date_of(field)
    lat = field["lat"].values.astype("f8")
    lon = field["lon"].values.astype("f8")
    raw = field.values.astype("f8")
    values = np.ma.masked_invalid(raw)
    if land is None:
        land = np.ones(raw.shape, dtype=bool)
    land = np.asarray(land, dtype=bool)
    if land.shape != raw.shape:
        raise ValueError(f"render_quicklook: land mask {land.shape} but the field is {raw.shape}")
    scale_note = None
    if adaptive:
        vmax = adaptive_vmax(raw[land], vmin, vmax, min_span)
        scale_note = f"scale of the day:\n{vmin:g}-{vmax:g}"

    # A Figure with its own Agg canvas, not pyplot: no global state, safe in threads/tasks.
    # Fixed axes boxes instead of tight/constrained layout: one draw per image, not three.
    figure = Figure(figsize=_FIGSIZE, dpi=_DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.14, 0.11, 0.62, 0.78))
    colour_axes = figure.add_axes((0.79, 0.17, 0.035, 0.64))
    lon_edges, lat_edges = _edges(lon), _edges(lat)
    # Off land: white with grey hatching, a pattern no colour map uses.
    axes.add_patch(Rectangle((0, 0), 1, 1, transform=axes.transAxes, facecolor="white", hatch="////",
                             edgecolor=_OFF_LAND_HATCH, linewidth=0, zorder=-1))
    no_value = np.ma.masked_where(~(land & ~np.isfinite(raw)), np.ones(raw.shape))
    axes.pcolormesh(lon_edges, lat_edges, no_value, cmap=ListedColormap([_NO_VALUE_ON_LAND]), shading="flat")
    mesh = axes.pcolormesh(lon_edges, lat_edges, values, cmap=matplotlib.colormaps[cmap], vmin=vmin, vmax=vmax,
                           shading="flat")
    for line in outline:
        xy = np.asarray(line, dtype="f8")
        axes.plot(xy[:, 0], xy[:, 1], color=_COAST, linewidth=0.7)
    axes.set_xlim(lon_edges[0], lon_edges[-1])
    axes.set_ylim(lat_edges[0], lat_edges[-1])
    # Degrees of longitude are shorter than degrees of latitude by cos(latitude).
    axes.set_aspect(1.0 / np.cos(np.deg2rad(float(np.mean(lat)))))
    axes.set_xlabel("longitude [degrees_east]")
    axes.set_ylabel("latitude [degrees_north]")
    heading = f"{title}, {place}" if place else title
    axes.set_title(heading if date is None else f"{heading}\n{date.isoformat()}", fontsize=10)
    axes.grid(color="white", linewidth=0.4, alpha=0.6)
    colour_bar = figure.colorbar(mesh, cax=colour_axes, extend=_extend(values, vmin, vmax))
    colour_bar.set_label(units)
    # Small ranges (error variances ~1e-3) as "0 .. 4" with a "1e-3" offset: narrow tick labels.
    colour_bar.formatter.set_powerlimits((-2, 4))
    colour_bar.update_ticks()
    if scale_note:
        figure.text(0.775, 0.06, scale_note, fontsize=7, color="0.2", va="bottom", ha="left")
    figure.text(0.02, 0.01, "dark grey: no value on land; hatched: off land", fontsize=7, color="0.15",
                va="bottom", ha="left")

    buffer = io.BytesIO()
    # No Software (matplotlib version) or Creation Time chunks: same input, same bytes.
    figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


def adaptive_vmax(values: np.ndarray, vmin: float, cap: float, min_span: float) -> float:
    """Upper end of an adaptive colour scale: the 98th percentile of the finite ``values`` rounded
    up to 1, 2 or 5 x 10^k, at least ``vmin + min_span`` and at most ``cap``."""
    finite = np.asarray(values, dtype="f8")
    finite = finite[np.isfinite(finite)]
    top = float(np.percentile(finite, 98)) if finite.size else vmin
    top = max(top, vmin + min_span)
    if top > 0:
        exponent = np.floor(np.log10(top))
        for step in (1.0, 2.0, 5.0, 10.0):
            nice = step * 10.0**exponent
            if nice >= top * (1 - 1e-9):
                top = float(nice)
                break
    return float(min(top, cap))


def render_day_quicklooks(
    product: xr.Dataset, specs: tuple[QuicklookSpec, ...] = QUICKLOOKS, *, domain=None,
    experimental: frozenset[str] | set[str] = frozenset(),
) -> dict[str, bytes]:
    """PNG bytes of every quicklook in ``specs`` for a daily product dataset, by spec name.

    ``domain`` (a :class:`smflow.domain.DomainGrid` on the product's grid) gives the land mask,
    the coastline and the place name; without it, or on another grid, the maps have none. The
    maps of the variables in ``experimental`` say "EXPERIMENTAL" in their title (a champion that
    does not beat its no-skill baseline).
    """
    land = outline = None
    place = ""
    if domain is not None and domain.is_on_grid(product):
        land, outline, place = domain.land_mask, domain.outline, domain.title or domain.name
    images: dict[str, bytes] = {}
    for spec in specs:
        if spec.variable not in product:
            raise ValueError(f"quicklook {spec.name!r} needs variable {spec.variable!r}")
        field = product[spec.variable]
        if spec.source is not None:
            if spec.source not in [str(v) for v in product["source"].values]:
                continue  # a per-parent map of the main triplet; another domain merges other parents
            field = field.sel(source=spec.source)
        title = f"{spec.title} (EXPERIMENTAL)" if spec.variable in experimental else spec.title
        images[spec.name] = render_quicklook(
            field, title=title, units=spec.units, cmap=spec.cmap, vmin=spec.vmin,
            vmax=spec.vmax, land=land, outline=outline or (), place=place, adaptive=spec.adaptive,
            min_span=spec.min_span,
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

