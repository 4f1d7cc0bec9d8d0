"""Pipeline product sets, read from ``config/daily_pipelines.json``: the one place that says which
inputs a daily pipeline waits for, which products are merged and which is the reference."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

#: Methods of the ``downscaled`` product (:mod:`smflow.downscaling.daily`).
DOWNSCALING_METHODS = ("bilinear", "lstm_kriging", "nn_kriging")

#: The pipelines file of the repository.
PIPELINES_FILE = Path(__file__).resolve().parents[2] / "config" / "daily_pipelines.json"


def domain_products_bucket(products_bucket: str, domain: str | None, default_domain: str = "big_island") -> str:
    """The bucket a domain's daily products are published to: ``products_bucket`` for the main
    domain, ``{products_bucket}-{domain}`` (underscores as dashes) for any other
    (``sm-products-global-025``). One rule for the publisher and the DAGs' Assets
    (``infra/stack.py`` creates the same names without importing smflow).
    """
    if domain in (None, default_domain):
        return products_bucket
    return f"{products_bucket}-{domain.replace('_', '-')}"


@dataclass(frozen=True)
class Pipeline:
    """The products of one daily pipeline (one entry of ``config/daily_pipelines.json``).

    Attributes
    ----------
    name : str
        Key in the file (``big_island``).
    dag_id : str
        Airflow DAG id (``daily_soil_moisture``).
    domain : str
        Domain grid name.
    inputs : tuple of str
        Products awaited in the landing zone each day (and kept in the time-series store).
    parents : tuple of str
        Products merged by triple collocation, in the order of the ``source`` dimension (empty
        for a pipeline that does not merge).
    reference : str or None
        Product the merged product and the champions are evaluated against (not merged).
    products : tuple of str
        What is made (``merged``, ``inputs``, ``downscaled``: the day's merged soil moisture
        downscaled to 0.01 deg, :mod:`smflow.downscaling.daily`).
    fetch : {"provider", "landing"}
        Where the daily granules are awaited: at the providers' archives (searched, fetched,
        verified and landed by the DAG: ``smflow.archive.fetch``) or in the landing zone (filled
        by someone else).
    granule_wait_hours : float
        How long a day's run waits for a granule before it is made without it.
    experimental : {"flag", "withhold"}
        What happens to a product whose champion does not beat its no-skill baseline (e.g. SM2RAIN
        rainfall vs the gauges' climatology): published and flagged ``experimental`` in the file,
        the STAC item and the quicklook title, or not published at all.
    downscaling_method : str or None
        Method of the ``downscaled`` product (``bilinear``, ``nn_kriging``, ``lstm_kriging``:
        :data:`DOWNSCALING_METHODS`); None without that product.
    models : tuple of (str, str)
        Registered models of a merged pipeline on another domain than the main one, as
        ``(role, registered name)`` pairs with roles ``merging`` (a TC merging grid model) and
        ``sm2rain``; empty for the main pipeline, which uses ``soil_moisture_merging``,
        ``tc_merging``, ``sm2rain`` and ``smap_reconstruction``.
    tc_window_days : int
        Trailing window of the TC diagnostics and of the SM2RAIN rainfall [days] (default 180).
    synthetic_history : bool
        The store's history of this pipeline's parents is (partly) made by
        :mod:`smflow.synthetic` (real days too few for the window): the products say so
        (``smflow_synthetic``).
    """

    name: str
    dag_id: str
    domain: str
    inputs: tuple[str, ...]
    parents: tuple[str, ...] = ()
    reference: str | None = None
    products: tuple[str, ...] = ()
    fetch: str = "landing"
    granule_wait_hours: float = 6.0
    experimental: str = "flag"
    downscaling_method: str | None = None
    models: tuple[tuple[str, str], ...] = ()
    tc_window_days: int = 180
    synthetic_history: bool = False

    def model(self, role: str) -> str | None:
        """Registered model name of ``role`` (``merging``, ``sm2rain``), None when not configured."""
        return dict(self.models).get(role)


@functools.lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Pipeline]:
    from smflow.catalog import canonical_name

    try:
        spec = json.loads(Path(path).read_text())["pipelines"]
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing: the daily pipelines (and their product "
                                "sets) are defined there.") from None
    out = {}
    for name, p in spec.items():
        pipe = Pipeline(
            name=name, dag_id=p["dag_id"], domain=p["domain"],
            inputs=tuple(canonical_name(x) for x in p["inputs"]),
            parents=tuple(canonical_name(x) for x in p.get("parents", ())),
            reference=canonical_name(p["reference"]) if p.get("reference") else None,
            products=tuple(p.get("products", ())), fetch=p.get("fetch", "landing"),
            granule_wait_hours=float(p.get("granule_wait_hours", 6.0)),
            experimental=p.get("experimental", "flag"),
            downscaling_method=(p.get("downscaling") or {}).get("method"),
            models=tuple(sorted((p.get("models") or {}).items())),
            tc_window_days=int(p.get("tc_window_days", 180)),
            synthetic_history=bool(p.get("synthetic_history", False)))
        unknown_roles = sorted(set(dict(pipe.models)) - {"merging", "sm2rain"})
        if unknown_roles:
            raise ValueError(f"{path}: pipeline {name!r} has models {unknown_roles}; the roles are 'merging' and 'sm2rain'.")
        if pipe.models and "merged" in pipe.products and set(dict(pipe.models)) != {"merging", "sm2rain"}:
            raise ValueError(f"{path}: pipeline {name!r} makes 'merged' products with its own models: "
                             "'models' needs both 'merging' and 'sm2rain' (registered model names).")
        if pipe.experimental not in ("flag", "withhold"):
            raise ValueError(f"{path}: pipeline {name!r} has experimental {pipe.experimental!r}; use 'flag' or 'withhold'.")
        if pipe.fetch not in ("provider", "landing"):
            raise ValueError(f"{path}: pipeline {name!r} has fetch {pipe.fetch!r}; use 'provider' or 'landing'.")
        if "downscaled" in pipe.products:
            if "merged" not in pipe.products or pipe.downscaling_method not in DOWNSCALING_METHODS:
                raise ValueError(f"{path}: pipeline {name!r} makes 'downscaled' products: it needs "
                                 f"'merged' among its products and 'downscaling': {{'method': one of "
                                 f"{list(DOWNSCALING_METHODS)}}}, got {pipe.downscaling_method!r}.")
        stray = [x for x in (*pipe.parents, *([pipe.reference] if pipe.reference else ()))
                 if x not in pipe.inputs]
        if stray:
            raise ValueError(f"{path}: pipeline {name!r} merges or references {stray}, which are "
                             f"not among its inputs {list(pipe.inputs)}; add them to 'inputs'.")
        out[name] = pipe
    return out


def pipelines(path: str | Path = PIPELINES_FILE) -> dict[str, Pipeline]:
    """Every pipeline of ``config/daily_pipelines.json``, by key."""
    return dict(_load(str(path)))


def pipeline(name: str, path: str | Path = PIPELINES_FILE) -> Pipeline:
    """The pipeline called ``name``: its key (``big_island``) or its DAG id
    (``daily_soil_moisture``).

    Raises
    ------
    KeyError
        No such pipeline; the message lists the known keys and DAG ids.
    """
    known = _load(str(path))
    if name in known:
        return known[name]
    for p in known.values():
        if p.dag_id == name:
            return p
    raise KeyError(f"No pipeline {name!r} in {path}; known: "
                   f"{sorted(known)} (DAG ids {sorted(p.dag_id for p in known.values())}).")
