"""The daily product dataset: merged soil moisture, SM2RAIN rainfall and TC diagnostics of one day.

A library function, not Airflow glue: :func:`compute_daily_product` reads the trailing windows from
the time-series store, applies the merging champion whatever its method (TC least squares, Ming et
al. 2022; or an RF / LSTM / CNN / BMA ensemble, Zhang et al. 2022), runs SM2RAIN over the merged
window and triple collocation over the parents, and returns the dataset with its lineage. The
operator (:mod:`smflow.operators.daily`) only loads the champions and stages the result.
"""

from __future__ import annotations

import dataclasses
import json
import uuid

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np
import xarray as xr

#: Trailing window of the per-cell triple collocation diagnostics [days]. The SM2RAIN rainfall of
#: the day is computed over the same window of merged soil moisture, which the filtered variants
#: (SM2RAIN-ASCAT T / Tpot) need as spin-up (about 10 T).
TC_WINDOW_DAYS = 180
TC_MIN_SAMPLES = 30
#: Moving-block bootstrap of the TC diagnostics: resamples and nominal coverage of the intervals.
TC_RESAMPLES = 500
TC_CONFIDENCE = 0.95
#: Store field of the soil temperature [K] that gives SM2RAIN's frozen-soil mask.
SOIL_TEMPERATURE_FIELD = "gldas_soil_temperature"
#: Cells per dask task of the daily science (a band of whole grid rows of about this many cells):
#: ~26 MiB of windows per task (3 parents x 209 days and the temperature), ~0.1 GiB of temporaries
#: (benchmarks/README.md, "Daily science at scale").
CHUNK_CELLS = 4_096


def compute_daily_product(day: date, *, store, grid, merging, rain_model, rain_ref, tc_ref,
                          missing: dict[str, str], input_granules: list[str],
                          input_provenance: list[dict[str, Any]] | None = None,
                          reconstruction=None, parents: tuple[str, ...] | None = None,
                          window_days: int = TC_WINDOW_DAYS,
                          pipeline_name: str = "daily_soil_moisture") -> tuple[xr.Dataset, dict[str, Any]]:
    """Merged soil moisture, its uncertainty, SM2RAIN rainfall and rolling TC diagnostics for ``day``.

    Parameters
    ----------
    day : date
    store : smflow.store.TimeSeriesStore
    grid : DomainGrid
    merging : smflow.ml.registry.LoadedMerging
        ``models:/soil_moisture_merging@champion``.
    rain_model : GridParameters
        ``models:/sm2rain@champion`` (its saturation bounds were frozen on the same merged product).
    rain_ref, tc_ref : ModelRef
        Versions of the SM2RAIN champion and of the TC model whose diagnostics are published.
    missing : dict of str to str
        Inputs this run rejected or did not receive (product -> reason): their store object of the
        day is never used, and the product names them.
    input_granules : list of str
        URIs of the granules ingested for the day (lineage): the provider's URL of a fetched
        granule, else its landing-zone URI.
    input_provenance : list of dict, optional
        Per fetched granule: provider, collection, version, granule id, revision, URL, checksum
        and the landing URI (``smflow.archive.fetch.ProviderGranule.provenance``); published as
        the ``input_granule_provenance`` lineage (JSON) and on the STAC ``derived_from`` links.
    reconstruction : tuple, optional
        ``(GridParameters, ModelRef)`` of ``models:/smap_reconstruction@champion``: adds the
        seamless SMAP (:func:`smflow.ml.reconstruction.add_to_product`); ``(None, reason)``
        records why there is none.
    parents : tuple of str, optional
        Store products merged, in the order of the ``source`` dimension (default: the main
        pipeline's, :data:`smflow.ml.models.PARENTS`).
    window_days : int, default :data:`TC_WINDOW_DAYS`
        Trailing window of the TC diagnostics and the SM2RAIN rainfall [days] (the pipeline's
        ``tc_window_days``).
    pipeline_name : str
        Pipeline whose ``experimental`` policy the product carries.

    Returns
    -------
    (xr.Dataset, dict)
        The product dataset (dims ``time`` = 1, ``source``, ``member``, ``lat``, ``lon``; see
        docs/DESIGN.md) and its provenance (lineage attributes of the published files).

    Raises
    ------
    ValueError
        The store's parents or covariates do not match the merging champion's features (the
        message names the model version, expected and received columns); nothing is staged.

    Notes
    -----
    * TC diagnostics: :func:`smflow.science.bootstrap.triple_collocation_ci` over the window
      (Ming et al. 2022, Eqs. 5-10; McColl et al. 2014), moving-block bootstrap intervals seeded
      with the day, so a re-run gives the same bytes.
    * Rainfall: the window's merged soil moisture as relative saturation (bounds frozen in
      training) through :func:`smflow.science.sm2rain.apply_sm2rain`, masked where the GLDAS
      top-layer soil temperature says frozen.
    """
    from smflow.catalog import pipeline
    from smflow.ml.apply import merge_window
    from smflow.ml.features import load_static_covariates
    from smflow.ml.models import PARENTS, merging_parameters, sm2rain_parameters

    sources = tuple(parents or PARENTS)
    history = merging.ensemble.spec.window - 1 if merging.method != "tc" else 0
    n_read = window_days + history
    # TC: lazy windows (the chunked store hands dask arrays over its chunks; the per-day layout
    # reads in memory), read block by block by the science; the ML ensembles need them in memory
    lazy = merging.method == "tc"
    windows = {p: store.window(p, day, n_read, lazy=lazy) for p in sources}
    temperature = store.window(SOIL_TEMPERATURE_FIELD, day, window_days, lazy=lazy)
    merged = None
    if merging.method != "tc":
        # The ML ensembles merge the whole domain in this process (Keras models are not shipped to
        # dask workers); the TC merging, the TC diagnostics and SM2RAIN stream by chunks below.
        static = load_static_covariates(grid) if merging.ensemble.spec.static else None
        masked = {p: _without_last_day(w) if p in missing else w for p, w in windows.items()}
        merged = merge_window(merging, xr.Dataset(masked), static)  # (cells, window_days)
    science = daily_science(
        {p: windows[p].data for p in sources}, temperature.data,
        merging=merging_parameters(merging.parameters) if merging.method == "tc" else merged,
        rain_model=rain_model, seed=day.toordinal(), missing_last_day=tuple(p in missing for p in sources),
        history=history)
    del windows, temperature  # the ML path's in-memory windows: no longer needed
    rain_params = sm2rain_parameters(rain_model)
    ny, nx = grid.shape
    land = grid.land_mask

    def g(a: np.ndarray | str) -> np.ndarray:  # (..., cells) -> (..., lat, lon), off-land NaN
        # a name: the science's field, dropped once on the grid (the day's results exist once)
        a = science.pop(a) if isinstance(a, str) else a
        out = np.asarray(a, dtype="float64").reshape(*np.shape(a)[:-1], ny, nx)
        return np.where(land, out, np.nan)

    def cell_field(name: str, fill, dtype) -> np.ndarray:
        return np.where(land, np.asarray(science.pop(name)).reshape(ny, nx), fill).astype(dtype)[None]

    grid3 = ("time", "lat", "lon")
    source_grid = ("time", "source", "lat", "lon")
    variance = science.pop("soil_moisture_error_variance")
    variables = {
        "soil_moisture": (grid3, g("soil_moisture")[None]),
        "soil_moisture_error_variance": (grid3, g(variance)[None]),
        "merge_method": (grid3, cell_field("merge_method", np.int8(3), "int8")),
        "precipitation_amount": (grid3, g("precipitation_amount")[None]),
        "frozen_soil": (grid3, cell_field("frozen_soil", False, "int8")),
        # off land there is no soil moisture: status 1 (the rainfall is missing there too)
        "precipitation_status": (grid3, cell_field("precipitation_status", np.int8(1), "int8")),
        "error_variance": (source_grid, g("error_variance")[None]),
        "correlation_with_truth": (source_grid, g("correlation_with_truth")[None]),
        "snr_db": (source_grid, g("snr_db")[None]),
        "tc_resolved": (grid3, cell_field("tc_resolved", False, "int8")),
        "tc_sample_size": (grid3, cell_field("tc_sample_size", 0, "int32")),
        "tc_block_length": (grid3, cell_field("tc_block_length", 0, "int32")),
        "source_soil_moisture": (source_grid, g("source_soil_moisture")[None]),
    }
    for name in ("error_variance", "correlation_with_truth", "snr_db"):
        variables[f"{name}_lower"] = (source_grid, g(f"{name}_lower")[None])
        variables[f"{name}_upper"] = (source_grid, g(f"{name}_upper")[None])
    coords: dict[str, Any] = {"time": np.array([np.datetime64(day.isoformat(), "ns")]), "source": list(sources),
                              "lat": grid.lat, "lon": grid.lon}
    if merging.method != "tc":
        with np.errstate(invalid="ignore"):
            variables["soil_moisture_uncertainty"] = (grid3, g(np.sqrt(variance))[None])
        names = sorted(merged.members)
        variables["member_soil_moisture"] = (("time", "member", "lat", "lon"),
                                             np.stack([g(f"member_{k}") for k in names])[None])
        coords["member"] = names
    ds = xr.Dataset(variables, coords=coords)
    ds.attrs.update(tc_confidence_level=TC_CONFIDENCE, tc_bootstrap_resamples=TC_RESAMPLES,
                    tc_window_days=window_days)
    provenance = {
        "merging_model": merging.ref.label(),
        "merging_method": merging.method,
        "tc_merging_model": tc_ref.label(),
        "sm2rain_model": rain_ref.label(),
        "input_granules": sorted(input_granules),
        "input_granule_provenance": json.dumps(sorted(input_provenance or [], key=lambda r: (r["product"], r["url"])),
                                               sort_keys=True),
        "missing_inputs": [f"{p}: {reason}" for p, reason in sorted(missing.items())],
        "sm2rain_parameters_source": str(rain_model.metadata.get("source", "")),
        # operational / experimental: does the champion beat the no-skill baseline (train.sm2rain_skill)?
        "sm2rain_skill_status": str(rain_model.metadata.get("skill_status") or "experimental"),
        "sm2rain_skill": str(rain_model.metadata.get("skill") or "not rated against a no-skill baseline"),
        # what the publisher does with an experimental product (config/daily_pipelines.json)
        "experimental_policy": pipeline(pipeline_name).experimental,
        "sm2rain_variant": sm2rain_variant(rain_params),
        "tc_window_days": window_days,
        "tc_bootstrap": f"moving-block bootstrap, {TC_RESAMPLES} resamples, {TC_CONFIDENCE:.0%} percentile intervals",
    }
    if merging.method != "tc":
        provenance["member_models"] = merging.member_versions
        provenance["merging_features"] = ",".join(merging.ensemble.spec.columns)
    if reconstruction is not None:
        from smflow.ml.reconstruction import add_to_product

        model, recon_ref = reconstruction
        provenance.update(add_to_product(ds, day, store=store, grid=grid, model=model, ref=recon_ref, missing=missing)
                          if model is not None else {"smap_reconstruction_model": f"none: {recon_ref}"})
    return ds, provenance


def _without_last_day(window: xr.DataArray) -> xr.DataArray:
    """``window`` with its last day NaN (an input this run rejected: its stale store object is never used)."""
    out = window.copy()
    out.values[-1] = np.nan
    return out


def _blocks(shape: tuple[int, int], chunk_cells: int, row_chunks: Sequence[int] | None = None,
            col_chunks: Sequence[int] | None = None) -> list[tuple[slice, slice]]:
    """Blocks ``(rows, cols)`` of about `chunk_cells` cells that never cross a window chunk.

    Each chunk of the windows (``row_chunks`` x ``col_chunks`` cells; default: the whole grid,
    numpy windows) is cut into bands of whole rows of the chunk, so a block reads one chunk of each
    window (a dask window's chunk is read once and shared by its blocks, never re-read per block).
    """
    ny, nx = shape
    out = []
    r0 = 0
    for height in row_chunks or (ny,):
        c0 = 0
        for width in col_chunks or (nx,):
            rows = max(1, int(chunk_cells) // max(1, width))
            out.extend((slice(r, min(r + rows, r0 + height)), slice(c0, c0 + width))
                       for r in range(r0, r0 + height, rows))
            c0 += width
        r0 += height
    return out


def _chunk_parts(chunks: tuple[tuple[int, ...], ...] | None):
    """``parts(arrays, (rows, cols))`` -> (inputs, local) of a block's task.

    For a dask array chunked like ``chunks`` (the first parent's), the input is the whole chunk
    that holds the block (one ``dask.delayed`` per chunk, :meth:`dask.array.Array.to_delayed`,
    shared by all the chunk's blocks: read once) and ``local`` the block's slice of it, taken in
    the task. A slice ``array[:, rows, cols]`` (or ``array.blocks[...]``) is fused by dask's array
    optimisation into the read itself, so every block would read and decode its whole store chunk
    again (16 times on the 256 x 256 tiles). Numpy arrays, and dask arrays chunked otherwise, are
    sliced here (``local`` None).
    """
    edges = None if chunks is None else [np.cumsum((0, *c)) for c in chunks[1:]]
    tiles: dict[int, Any] = {}  # id(array) -> its chunks as delayed objects (kept with the array)

    def parts(arrays, region: tuple[slice, slice]):
        inputs, local = [], []
        for a in arrays:
            if edges is not None and getattr(a, "chunks", None) is not None and tuple(a.chunks[1:]) == tuple(chunks[1:]):
                i, j = (int(np.searchsorted(e, r.start, side="right")) - 1 for e, r in zip(edges, region))
                if id(a) not in tiles:
                    tiles[id(a)] = (a, a.to_delayed())
                inputs.append(tiles[id(a)][1][0, i, j])
                local.append((slice(None), *(slice(r.start - int(e[k]), r.stop - int(e[k]))
                                             for e, r, k in zip(edges, region, (i, j)))))
            else:
                inputs.append(a[:, region[0], region[1]])
                local.append(None)
        return inputs, tuple(local)

    return parts


def _block_cells(values: np.ndarray, shape: tuple[int, int], block: tuple[slice, slice], *, axis: int) -> np.ndarray:
    """The cells of ``block`` from ``values`` whose ``axis`` holds the grid's cells flattened
    (``lat*lon``), flattened again (row-major within the block)."""
    values = np.moveaxis(np.asarray(values), axis, -1)
    lead = values.shape[:-1]
    part = values.reshape(*lead, *shape)[..., block[0], block[1]].reshape(*lead, -1)
    return np.ascontiguousarray(np.moveaxis(part, -1, axis))


def _band_cells(parents: Sequence[np.ndarray], missing_last_day: Sequence[bool]) -> np.ndarray:
    """The parents' windows of a band, ``(3, cells, time)`` float64 (a copy: the band is owned by
    the task), the last day NaN for the rejected inputs."""
    stack = np.stack([np.asarray(w, dtype=np.float64) for w in parents])  # (3, time, rows, lon)
    for k, gone in enumerate(missing_last_day):
        if gone:
            stack[k, -1] = np.nan
    return np.moveaxis(stack.reshape(3, stack.shape[1], -1), -1, -2)


def _band_block_lengths(smap: np.ndarray, era5: np.ndarray, gldas: np.ndarray, *,
                        missing_last_day: Sequence[bool], history: int,
                        local: Sequence[tuple[slice, ...] | None] = (None, None, None)) -> np.ndarray:
    """Dask task: moving-block lengths of the TC bootstrap of a band's cells, ``(cells,)`` [days].

    ``local``: per input, the band's part of a whole window chunk handed over (None: the input is
    the band's part already)."""
    from smflow.science import _kernels
    from smflow.science.bootstrap import resample_block_lengths

    smap, era5, gldas = (x if part is None else x[part] for x, part in zip((smap, era5, gldas), local))
    cells = _band_cells((smap, era5, gldas), missing_last_day)[:, :, history:]
    with _kernels.single_threaded():  # dask runs the bands in parallel
        return resample_block_lengths(cells[0], cells[1], cells[2])


def _cells_science(smap: np.ndarray, era5: np.ndarray, gldas: np.ndarray, temperature: np.ndarray, *,
                   missing_last_day: Sequence[bool], history: int, merging: Mapping[str, np.ndarray] | None,
                   merged: Mapping[str, np.ndarray] | None, rain: Mapping[str, np.ndarray],
                   block: np.ndarray, draws: Mapping[int, np.ndarray]) -> dict[str, np.ndarray]:
    """The day's science on a block of cells (see :func:`daily_science`); arrays ``(..., cells)``."""
    from smflow.ml.models import SM2RAIN_FILTER_FIELDS
    from smflow.science import _kernels
    from smflow.science.bootstrap import triple_collocation_ci
    from smflow.science.merging import MergingParameters, apply_tc_merging
    from smflow.science.sm2rain import (
        SM2RAINParameters, apply_sm2rain, frozen_soil_mask, precipitation_status, relative_saturation,
    )

    cells = _band_cells((smap, era5, gldas), missing_last_day)  # (3, cells, history + window)
    out: dict[str, np.ndarray] = {}
    with _kernels.single_threaded():  # dask runs the bands in parallel
        if merging is not None:
            result = apply_tc_merging(MergingParameters.from_dict(merging), cells)
            soil_moisture, variance, method = result.soil_moisture, result.error_variance, result.method
        else:
            soil_moisture, variance, method = merged["soil_moisture"], merged["error_variance"], merged["method"]
            out.update({k: v[:, -1] for k, v in merged.items() if k.startswith("member_")})
        tc_cells = cells[:, :, history:]
        ci = triple_collocation_ci(tc_cells[0], tc_cells[1], tc_cells[2], min_samples=TC_MIN_SAMPLES,
                                   n_resamples=TC_RESAMPLES, confidence=TC_CONFIDENCE, block=block, draws=draws)
        params = SM2RAINParameters.from_dict({k: v for k, v in rain.items() if k in ("Z", "a", "b", *SM2RAIN_FILTER_FIELDS)})
        lower, upper = rain["saturation_lower"], rain["saturation_upper"]
        s = relative_saturation(soil_moisture, lower[:, None], upper[:, None])
        kelvin = np.asarray(temperature, dtype=np.float64)
        frozen = frozen_soil_mask(soil_temperature=np.moveaxis(kelvin.reshape(kelvin.shape[0], -1), -1, 0))
        out["precipitation_amount"] = apply_sm2rain(s, params, frozen=frozen)[:, -1]
        out["precipitation_status"] = precipitation_status(soil_moisture, frozen, params, lower, upper)
    tc = ci.point
    out.update({
        "soil_moisture": soil_moisture[:, -1], "soil_moisture_error_variance": variance[:, -1],
        "merge_method": np.asarray(method[:, -1], dtype=np.int8), "frozen_soil": frozen[:, -1],
        "error_variance": tc.error_variance, "correlation_with_truth": tc.correlation_with_truth,
        "snr_db": tc.snr_db, "tc_resolved": tc.resolved, "tc_sample_size": tc.sample_size,
        "tc_block_length": ci.block_length, "source_soil_moisture": tc_cells[:, :, -1],
    })
    for name in ("error_variance", "correlation_with_truth", "snr_db"):
        out[f"{name}_lower"] = getattr(ci, name).lower
        out[f"{name}_upper"] = getattr(ci, name).upper
    # copies: a column of a (cells, time) window is a view that would keep the whole window of the
    # band alive until the end of the run (memory growing with the domain)
    return {k: np.array(v, copy=True) for k, v in out.items()}


def _band_science(smap: np.ndarray, era5: np.ndarray, gldas: np.ndarray, temperature: np.ndarray,
                  shared: Mapping[str, Any], *, region: tuple[slice, slice], shape: tuple[int, int],
                  missing_last_day: Sequence[bool], history: int,
                  local: Sequence[tuple[slice, ...] | None] = (None, None, None, None)) -> dict[str, np.ndarray]:
    """Dask task: :func:`_cells_science` on the block ``region`` ``(rows, cols)`` of the grid, its
    parameters sliced here from the domain's (``shared``: ``merging``, ``merged``, ``rain``,
    ``block`` lengths, ``draws``), and its windows from the chunks handed over (``local``, as in
    :func:`_band_block_lengths`)."""
    smap, era5, gldas, temperature = (x if part is None else x[part]
                                      for x, part in zip((smap, era5, gldas, temperature), local))

    def cells(values: Mapping[str, np.ndarray] | None, axis: int) -> dict[str, np.ndarray] | None:
        return None if values is None else {k: _block_cells(v, shape, region, axis=axis) for k, v in values.items()}

    return _cells_science(smap, era5, gldas, temperature, missing_last_day=missing_last_day, history=history,
                          merging=cells(shared["merging"], -1), merged=cells(shared["merged"], 0),
                          rain=cells(shared["rain"], 0), block=_block_cells(shared["block"], shape, region, axis=0),
                          draws=shared["draws"])


def daily_science(parents: Mapping[str, Any], soil_temperature: Any, *, merging, rain_model, seed: int,
                  missing_last_day: Sequence[bool] = (False, False, False), history: int = 0,
                  chunk_cells: int = CHUNK_CELLS, scheduler_address: str | None = None) -> dict[str, np.ndarray]:
    """The day's merging, TC diagnostics and SM2RAIN rainfall, streamed by spatial chunks with dask.

    The domain is cut into blocks of about `chunk_cells` cells that never cross a chunk of the
    windows (:func:`_blocks`): bands of whole grid rows for numpy windows, bands of whole rows of
    one spatial chunk for dask windows (the chunked store's tiles, ``store.window(..., lazy=True)``),
    so each chunk is read once. Each block is one dask task that merges its cells' windows, runs the
    TC bootstrap and SM2RAIN, and returns only the day's per-cell results. Peak memory is that of
    the tasks and chunks in flight (plus the windows, when they are handed over in memory), not of
    the domain's temporaries. The tasks run where
    :func:`smflow.cluster.dask_cluster` says (``SMFLOW_DASK_SCHEDULER``, else dask's threads).

    Parameters
    ----------
    parents : mapping of str to array, shape (history + window, lat, lon)
        The three parents' windows, in the order of the product's ``source`` dimension (the main
        pipeline's :data:`smflow.ml.models.PARENTS`, or the pipeline's ``parents``) [m3 m-3], NaN where
        missing; numpy or dask arrays (a dask array is read block by block, never whole; the blocks
        follow the spatial chunks of the first parent).
    soil_temperature : array, shape (window, lat, lon)
        GLDAS top-layer soil temperature [K] (SM2RAIN's frozen-soil mask); numpy or dask.
    merging : MergingParameters or MergedWindow
        TC merging parameters with the cells flattened (``lat*lon``;
        :func:`smflow.ml.models.merging_parameters`): merged band by band; or the ML ensemble's
        merged window (:class:`smflow.ml.apply.MergedWindow`, arrays (cells, TC_WINDOW_DAYS)).
    rain_model : GridParameters
        ``models:/sm2rain@champion`` (SM2RAIN fields and ``saturation_lower`` / ``saturation_upper``
        on the grid).
    seed : int
        Seed of the bootstrap resamples (the day's ordinal: a re-run gives the same bytes).
    missing_last_day : sequence of 3 bool
        Parents whose last day this run rejected (their stale store object is never used).
    history : int
        Days before the TC window in `parents` (history of the sequence models; 0 for TC).
    chunk_cells : int
        Cells per task (rounded to whole rows of the grid, or of a spatial chunk of dask windows).
    scheduler_address : str, optional
        Dask scheduler; default ``SMFLOW_DASK_SCHEDULER`` (see :func:`smflow.cluster.dask_cluster`).

    Returns
    -------
    dict of str to numpy.ndarray
        Per cell (cells flattened ``lat*lon``): ``soil_moisture`` [m3 m-3],
        ``soil_moisture_error_variance`` [(m3 m-3)^2], ``merge_method`` (int8),
        ``precipitation_amount`` [mm], ``frozen_soil`` (bool), ``precipitation_status`` (int8),
        ``tc_resolved``, ``tc_sample_size``, ``tc_block_length`` [days], ``member_<name>`` (ML);
        shaped (3, cells) in parent order: ``error_variance`` [(m3 m-3)^2],
        ``correlation_with_truth`` [-], ``snr_db`` [dB], their ``_lower`` / ``_upper`` bounds and
        ``source_soil_moisture`` (the parents on the day).

    Raises
    ------
    ValueError
        The windows, the temperature and the parameters are not on the same grid (the message
        names the shapes).

    Notes
    -----
    Every result is per cell, so any chunking gives the bits of one call over the whole domain,
    including the bootstrap intervals: the block lengths of the whole domain are computed first
    (one cheap pass over the windows) and every band receives the resamples that a whole-domain
    :func:`smflow.science.bootstrap.triple_collocation_ci` call with `seed` draws
    (:func:`smflow.science.bootstrap.bootstrap_draws`).
    """
    import dask
    from dask import is_dask_collection

    from smflow.cluster import dask_cluster
    from smflow.science.bootstrap import bootstrap_draws

    windows = list(parents.values())
    if len(windows) != 3:
        raise ValueError(f"daily_science: three parents are merged and collocated, got {list(parents)}")
    n_read, ny, nx = windows[0].shape
    steps = n_read - history
    if any(tuple(w.shape) != (n_read, ny, nx) for w in windows) or tuple(soil_temperature.shape) != (steps, ny, nx):
        raise ValueError(f"daily_science: parents {[tuple(w.shape) for w in windows]} and soil temperature "
                         f"{tuple(soil_temperature.shape)} must be (time, lat, lon) windows of the same grid, "
                         f"the temperature {history} days shorter (the history of the merging model)")
    cells = ny * nx
    from smflow.ml.models import SM2RAIN_FILTER_FIELDS

    names = ("Z", "a", "b", *SM2RAIN_FILTER_FIELDS, "saturation_lower", "saturation_upper")
    rain = {k: np.asarray(v).reshape(-1) for k, v in rain_model.arrays.items() if k in names}
    if any(v.size != cells for v in rain.values()):
        raise ValueError(f"daily_science: the SM2RAIN model's arrays {({k: v.size for k, v in rain.items()})} do "
                         f"not have the grid's {ny} x {nx} = {cells} cells")
    if hasattr(merging, "to_dict"):  # MergingParameters: its arrays, without the copies of to_dict()
        tc_params, merged = {f.name: getattr(merging, f.name) for f in dataclasses.fields(merging)}, None
    else:
        tc_params = None
        merged = {"soil_moisture": merging.soil_moisture, "error_variance": merging.error_variance,
                  "method": merging.method, **{f"member_{k}": v for k, v in merging.members.items()}}
    sizes = {k: v.shape[-1] if merged is None else v.shape[0] for k, v in (tc_params or merged).items()}
    if any(n != cells for n in sizes.values()):
        raise ValueError(f"daily_science: the merging has {sizes} cells, the grid {ny} x {nx} = {cells}")
    flags = tuple(bool(m) for m in missing_last_day)
    lazy = all(is_dask_collection(a) for a in (*windows, soil_temperature))
    chunks = windows[0].chunks if lazy else None
    blocks = _blocks((ny, nx), chunk_cells, *(chunks[1:] if chunks else ()))
    parts_of = _chunk_parts(windows[0].chunks if lazy else None)
    with dask_cluster(cells, address=scheduler_address):
        lengths = dask.compute(*[
            dask.delayed(_band_block_lengths)(*inputs, missing_last_day=flags, history=history, local=local)
            for inputs, local in (parts_of(windows, b) for b in blocks)])
        block_length = np.empty((ny, nx), dtype=np.int64)
        for (rows, cols), part in zip(blocks, lengths):
            block_length[rows, cols] = part.reshape(rows.stop - rows.start, cols.stop - cols.start)
        del lengths
        block_length = block_length.reshape(-1)
        draws = bootstrap_draws(block_length, steps, TC_RESAMPLES, seed)
        # The domain's parameters are one node of the graph that every block slices in its task:
        # nothing per block is made up front (threads share it; a cluster ships it once per worker).
        shared = dask.delayed({"merging": tc_params, "merged": merged, "rain": rain, "block": block_length,
                               "draws": draws}, traverse=False, name=f"daily-science-parameters-{uuid.uuid4().hex}")
        tasks = [dask.delayed(_band_science)(*inputs, shared, region=b, shape=(ny, nx), missing_last_day=flags,
                                             history=history, local=local)
                 for b, (inputs, local) in ((b, parts_of([*windows, soil_temperature], b)) for b in blocks)]
        parts = list(dask.compute(*tasks))
    # one field at a time into its grid, each block's piece dropped once placed: the day's results
    # (~270 bytes a cell) exist once, not twice
    out: dict[str, np.ndarray] = {}
    for k in list(parts[0]):
        first = parts[0][k]
        field = np.empty((*first.shape[:-1], ny, nx), dtype=first.dtype)
        for (rows, cols), part in zip(blocks, parts):
            piece = part.pop(k)
            field[..., rows, cols] = piece.reshape(*piece.shape[:-1], rows.stop - rows.start, cols.stop - cols.start)
        out[k] = field.reshape(*first.shape[:-1], cells)
    return out


def sm2rain_variant(params) -> str:
    """Which SM2RAIN model a parameter set runs: 3-parameter, or the SM2RAIN-ASCAT T / Tpot filter."""
    T = np.asarray(params.T, dtype=float)
    if not np.isfinite(T).any():
        return "3-parameter (Brocca et al. 2013)"
    if np.isfinite(np.asarray(params.T_pot, dtype=float)).any():
        return "Tpot filter (SM2RAIN-ASCAT, T SWI^-Tpot), bounds frozen from calibration"
    return "T filter (SM2RAIN-ASCAT exponential filter), bounds frozen from calibration"
