"""Registry access: log a grid-parameter model, register it, promote it by alias, load the champion."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smflow.config import Settings

from smflow.ml.models import GridParameterModel, GridParameters, save_npz

CHAMPION = "champion"
#: Alias of the newest registered version of a model, until ``evaluate_challenger`` has compared it
#: with the champion (:mod:`smflow.ml.challenger`). Every register path sets it (:func:`mark_challenger`).
CHALLENGER = "challenger"


@dataclass(frozen=True)
class ModelRef:
    """A registered model version: what every product records as its lineage."""

    name: str
    version: str
    run_id: str
    alias: str | None = None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def label(self) -> str:
        """``name@alias (version N, run R)`` — the string written into product metadata."""
        alias = f"@{self.alias}" if self.alias else ""
        return f"{self.name}{alias} v{self.version} (run {self.run_id})"


def configure(settings: Settings | None = None) -> Settings:
    """Point the mlflow client at the configured tracking server, with its basic-auth user.

    The MLflow client reads the user from ``MLFLOW_TRACKING_USERNAME`` /
    ``MLFLOW_TRACKING_PASSWORD`` only: when ``settings`` has them (e.g. from ``stack.env``) they
    are put into this process's environment.
    """
    import mlflow

    settings = settings or Settings.load()
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    if settings.mlflow_username and settings.mlflow_password:
        os.environ["MLFLOW_TRACKING_USERNAME"] = settings.mlflow_username
        os.environ["MLFLOW_TRACKING_PASSWORD"] = settings.mlflow_password
    return settings


def log_grid_model(
    model: GridParameterModel,
    parameters: GridParameters,
    *,
    registered_name: str,
    example=None,
) -> ModelRef:
    """Log ``parameters`` as a pyfunc model in the active run and register a new version.

    Must be called inside ``mlflow.start_run()``. ``example`` (a :class:`pandas.DataFrame`, default
    one row of ``lat_index``, ``lon_index``) is the input example the signature is inferred from.
    Returns the new (not yet promoted) version, which holds the ``challenger`` alias
    (:func:`mark_challenger`).
    """
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_grid_model must run inside mlflow.start_run()")
    with tempfile.TemporaryDirectory() as tmp:
        path = save_npz(Path(tmp) / "parameters.npz", parameters.arrays, parameters.metadata)
        if example is None:
            example = pd.DataFrame({"lat_index": [0], "lon_index": [0]})
        model.load_context(type("Ctx", (), {"artifacts": {"parameters": str(path)}})())
        signature = infer_signature(example, model.predict(None, example))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=model,
            artifacts={"parameters": str(path)},
            signature=signature,
            input_example=example,
            pip_requirements=["numpy", "pandas", "mlflow"],
            registered_model_name=registered_name,
        )
    version = str(info.registered_model_version)
    return mark_challenger(ModelRef(name=registered_name, version=version, run_id=run.info.run_id))


def _move_alias(ref: ModelRef, alias: str) -> str | None:
    """Point ``alias`` of ``ref.name`` at ``ref.version``; returns the version it held before (None: new)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        previous = client.get_model_version_by_alias(ref.name, alias).version
    except MlflowException:
        previous = None
    client.set_registered_model_alias(ref.name, alias, ref.version)
    return previous


def mark_challenger(ref: ModelRef) -> ModelRef:
    """Point ``challenger`` at the newly registered version ``ref`` and record the move in the alias
    history (kind ``registration``). Called by every register path of the project; the
    ``evaluate_challenger`` DAG (started by MLflow's ``model_version.created`` webhook) then
    compares it with the champion. Returns ``ref`` unchanged (its label stays ``name vN``)."""
    from smflow.ml.alias_log import record_alias_move

    previous = _move_alias(ref, CHALLENGER)
    record_alias_move(ref.name, CHALLENGER, previous, ref.version, kind="registration", evaluation_run=ref.run_id,
                      reason=f"registered v{ref.version} (run {ref.run_id}); awaits evaluate_challenger")
    return ref


def promote(ref: ModelRef, alias: str = CHAMPION, *, reason: str | None = None,
            evaluation_run: str | None = None) -> ModelRef:
    """Point ``alias`` at ``ref`` (the evaluation gate decides whether to call this) and record the
    move in the alias history (:mod:`smflow.ml.lifecycle`: version tags + the S3 log), with
    ``reason`` (default: the ``evaluation_gate`` tag of the version's run) and the run that holds
    the evaluation (default: the version's own run)."""
    from mlflow import MlflowClient

    from smflow.ml.alias_log import record_alias_move

    previous = _move_alias(ref, alias)
    if reason is None:
        reason = MlflowClient().get_run(ref.run_id).data.tags.get("evaluation_gate", "promoted (no gate recorded)")
    record_alias_move(ref.name, alias, previous, ref.version, reason=reason, evaluation_run=evaluation_run or ref.run_id)
    return ModelRef(ref.name, ref.version, ref.run_id, alias)


def champion_ref(name: str, alias: str = CHAMPION) -> ModelRef:
    """The version ``alias`` points at; raises a clear error when no model was promoted yet."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        mv = MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        raise LookupError(
            f"no version of model {name!r} has alias {alias!r}: run the train_models DAG "
            f"(it registers {name} and promotes versions that pass the evaluation gate)"
        ) from exc
    return ModelRef(name=name, version=str(mv.version), run_id=mv.run_id, alias=alias)


def _cache_path(ref: ModelRef) -> Path:
    return Settings.load().home / "cache" / "models" / ref.name / f"v{ref.version}-{ref.run_id}" / "parameters.npz"


def load_champion(name: str, alias: str = CHAMPION) -> tuple[GridParameters, ModelRef]:
    """Load ``models:/{name}@{alias}`` and return its parameters with the version it resolved to.

    The alias is resolved on every call (one registry request); the parameters of a resolved
    version are immutable, so they are cached locally by name, version and run id after the first
    ``mlflow.pyfunc.load_model`` (which costs seconds per daily task otherwise).
    """
    ref = champion_ref(name, alias)
    return load_parameters(ref), ref


def load_parameters(ref: ModelRef) -> GridParameters:
    """The parameters of the grid-parameter version ``ref`` (cached locally by name, version and
    run id: a registered version never changes)."""
    from smflow.ml.models import load_npz

    cache = _cache_path(ref)
    if cache.is_file():
        arrays, metadata = load_npz(cache)
        return GridParameters(arrays=arrays, metadata=metadata)
    import mlflow

    # Load by version, not alias, so the parameters are exactly those of the recorded version
    # even if the alias moves while we load.
    model = mlflow.pyfunc.load_model(ref.uri)
    params = model.unwrap_python_model().parameters
    if params is None:
        raise RuntimeError(f"{ref.label()} has no parameters artifact")
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    save_npz(tmp, params.arrays, params.metadata)
    os.replace(tmp, cache)  # atomic: concurrent tasks never read a half-written cache file
    return params


def metadata_of(ref: ModelRef) -> dict[str, Any]:
    return {"name": ref.name, "version": ref.version, "run_id": ref.run_id, "alias": ref.alias}


#: Registered model of the daily merged soil moisture, whatever its method (TC or an ML ensemble).
MERGING_MODEL = "soil_moisture_merging"


@dataclass(frozen=True)
class LoadedMerging:
    """A resolved ``soil_moisture_merging`` version: its method and what applies it."""

    ref: Any
    method: str
    ensemble: Any = None     # MergingEnsemble for rf / lstm / cnn / bma
    parameters: Any = None   # GridParameters for tc
    member_versions: str = ""


def load_merging_champion(alias: str = "champion") -> LoadedMerging:
    """``models:/soil_moisture_merging@champion``, resolved on every call, loaded from the local cache."""
    return load_merging(champion_ref(MERGING_MODEL, alias))


def load_merging(ref) -> LoadedMerging:
    """Load a ``soil_moisture_merging`` version (artifacts cached locally by name, version and run id)."""
    import shutil

    from mlflow import MlflowClient
    import mlflow

    from smflow.ml.merging import MergingEnsemble
    from smflow.ml.models import load_npz

    version = MlflowClient().get_model_version(ref.name, ref.version)
    method = version.tags.get("method", "tc")
    cache = Settings.load().home / "cache" / "models" / ref.name / f"v{ref.version}-{ref.run_id}"
    if not (cache / ".complete").is_file():
        # Download beside the cache and rename: concurrent tasks never see a half-written version.
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{cache.name}-", dir=cache.parent))
        mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{ref.name}/{ref.version}", dst_path=str(tmp))
        (tmp / ".complete").write_text("ok")
        try:
            tmp.rename(cache)
        except OSError:  # another task cached the same version first
            shutil.rmtree(tmp, ignore_errors=True)
    artifacts = {p.stem if p.suffix != ".json" else "ensemble": str(p) for p in (cache / "artifacts").iterdir()}
    members = version.tags.get("member_versions", f"{method}=v{ref.version}")
    if method == "tc":
        arrays, metadata = load_npz(artifacts["parameters"])
        return LoadedMerging(ref, method, parameters=GridParameters(arrays, metadata), member_versions=members)
    return LoadedMerging(ref, method, ensemble=MergingEnsemble.load(artifacts), member_versions=members)


