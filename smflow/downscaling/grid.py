"""The fine grid of a domain, nested in its coarse grid, and the exact maps between the two.

The fine grid divides every coarse cell into ``factor x factor`` cells (0.1 deg / 10 = 0.01 deg),
so a coarse cell is exactly the block of its fine cells: :func:`block_mean` (aggregate) and
:func:`replicate` (the "replication expansion" of Lv et al. 2021, Sect. 2.2) are exact array
reshapes, and a downscaled field conserves the coarse field when ``block_mean(fine) == coarse``.

Land mask of the fine grid: GLOBE 30" land fraction >= 0.5 (NOAA GLOBE, ``land_masks/`` of
``../shared/data/real``, read with :func:`smflow.readers.native.open_native` and aggregated with
:func:`smflow.regrid.native_to_domain` ``mean``), restricted to the land cells of the coarse grid
(a fine cell downscales its parent's value). Without the GLOBE file the parent's land flag is
replicated and the grid's description says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from smflow.domain import DomainGrid

#: Fine cells per coarse cell and axis (0.1 deg -> 0.01 deg).
DEFAULT_FACTOR = 10
#: GLOBE 30" land/water mask, relative to ``../shared/data/real``.
GLOBE_MASK = Path("land_masks") / "globe_combined_mask_compressed.npz"


def _grid(name: str, coarse: DomainGrid, factor: int, land: np.ndarray, description: str
          ) -> DomainGrid:
    step = round(coarse.resolution / factor, 9)
    half_c, half_f = coarse.resolution / 2, step / 2
    return DomainGrid(
        name=name, crs=coarse.crs, resolution=step,
        lat_first=round(coarse.lat_first - half_c + half_f, 6),
        lat_last=round(coarse.lat_last + half_c - half_f, 6),
        lon_first=round(coarse.lon_first - half_c + half_f, 6),
        lon_last=round(coarse.lon_last + half_c - half_f, 6),
        land=tuple(tuple(bool(v) for v in row) for row in land),
        description=description)


def fine_grid(coarse: DomainGrid, *, factor: int = DEFAULT_FACTOR,
              shared_dir: Path | None = None, land_threshold: float = 0.5) -> DomainGrid:
    """The fine grid nested in ``coarse``: ``factor`` x ``factor`` cells per coarse cell.

    Parameters
    ----------
    coarse : DomainGrid
        The domain's grid (e.g. ``load_domain("ebro_pyrenees")``, 0.1 deg).
    factor : int
        Fine cells per coarse cell along each axis (10: 0.1 deg -> 0.01 deg).
    shared_dir : Path, optional
        ``../shared/data/real``; its GLOBE 30" mask gives the land mask. None or a missing
        file: the coarse land mask, replicated (said so in ``description``).
    land_threshold : float
        Minimum GLOBE land-pixel fraction of a land cell [1].

    Returns
    -------
    DomainGrid
        Named ``<coarse>_fine``, shape ``(factor * n_lat, factor * n_lon)``, the same bounds as
        ``coarse``; land = GLOBE land and parent coarse cell land.
    """
    parent = replicate(coarse.land_mask.astype(np.float64), factor) > 0.5
    name = f"{coarse.name}_fine"
    provisional = _grid(name, coarse, factor, parent, "provisional")
    path = Path(shared_dir) / GLOBE_MASK if shared_dir is not None else None
    if path is None or not path.is_file():
        return _grid(name, coarse, factor, parent,
                     f"{coarse.resolution / factor:g} deg grid nested in {coarse.name}; land = "
                     f"the coarse land mask replicated (GLOBE mask {path or GLOBE_MASK} absent)")
    from smflow.readers.native import open_native
    from smflow.regrid import native_to_domain

    lon_min, lat_min, lon_max, lat_max = provisional.bounds
    mask = open_native(path, chunks=None, bbox=(lon_min - 0.01, lat_min - 0.01,
                                                 lon_max + 0.01, lat_max + 0.01))
    mask["land_fraction"] = mask["land_mask"].astype(np.float64)
    fraction = native_to_domain(mask, provisional, method="mean", variables=["land_fraction"])
    land = np.nan_to_num(fraction["land_fraction"].values, nan=0.0) >= land_threshold
    return _grid(name, coarse, factor, land & parent,
                 f"{provisional.resolution:g} deg grid nested in {coarse.name}; land = GLOBE 30\" "
                 f"land fraction >= {land_threshold} ({path.name}, NOAA GLOBE) within the coarse "
                 "land cells")


def factor_of(coarse: DomainGrid, fine: DomainGrid) -> int:
    """Fine cells per coarse cell and axis; ``ValueError`` if ``fine`` is not nested in ``coarse``."""
    factor = int(round(coarse.resolution / fine.resolution))
    if (factor < 1 or fine.shape != (coarse.shape[0] * factor, coarse.shape[1] * factor)
            or not np.allclose(fine.bounds, coarse.bounds, atol=1e-6)):
        raise ValueError(f"grid {fine.name!r} ({fine.resolution} deg, {fine.shape}) is not nested "
                         f"in {coarse.name!r} ({coarse.resolution} deg, {coarse.shape}).")
    return factor


def block_mean(fine: np.ndarray, factor: int, *, min_fraction: float = 0.0) -> np.ndarray:
    """Mean of the finite fine cells of every coarse cell.

    Parameters
    ----------
    fine : ndarray, shape (..., factor * n_lat, factor * n_lon)
        Fine field (NaN = no value).
    factor : int
        Fine cells per coarse cell and axis.
    min_fraction : float
        Coarse cells with fewer than ``min_fraction * factor**2`` finite fine cells are NaN.

    Returns
    -------
    ndarray, shape (..., n_lat, n_lon)
    """
    a = np.asarray(fine, dtype=np.float64)
    *lead, ny, nx = a.shape
    if ny % factor or nx % factor:
        raise ValueError(f"fine shape {a.shape[-2:]} is not a multiple of the factor {factor}.")
    blocks = a.reshape(*lead, ny // factor, factor, nx // factor, factor)
    finite = np.isfinite(blocks)
    count = finite.sum(axis=(-3, -1))
    total = np.where(finite, blocks, 0.0).sum(axis=(-3, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    return np.where((count > 0) & (count >= min_fraction * factor * factor), mean, np.nan)


def replicate(coarse: np.ndarray, factor: int) -> np.ndarray:
    """Each coarse value copied to its ``factor x factor`` fine cells, shape ``(..., f*ny, f*nx)``."""
    a = np.asarray(coarse)
    return np.repeat(np.repeat(a, factor, axis=-2), factor, axis=-1)
