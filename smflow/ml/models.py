"""MLflow pyfunc wrappers of the models the daily DAG loads from the registry.

Both models are per-cell parameter sets on the domain grid, stored as one ``.npz`` artifact, so
the registry (``models:/tc_merging@champion``, ``models:/sm2rain@champion``) is the single place
the daily products take their parameters from, and every product names the version it used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

try:  # mlflow is imported lazily by callers; the class must still be importable without it
    from mlflow.pyfunc import PythonModel
except ImportError:  # pragma: no cover - mlflow is a hard dependency of the project
    PythonModel = object  # type: ignore[misc,assignment]

#: Order of the merged parents, everywhere (Ming et al. 2022 triplet A: SMAP, ERA5-Land, GLDAS).
PARENTS: tuple[str, str, str] = __import__("smflow.catalog").catalog.merged_parents()  # config/daily_pipelines.json


def save_npz(path: Path, arrays: dict[str, Any], metadata: dict[str, Any]) -> Path:
    """Write ``arrays`` plus a JSON ``metadata`` record to ``path`` (uncompressed, deterministic)."""
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    payload["__metadata__"] = np.asarray(json.dumps(metadata, sort_keys=True))
    with open(path, "wb") as fh:
        np.savez(fh, **payload)
    return path


def load_npz(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Inverse of :func:`save_npz`."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != "__metadata__"}
        metadata = json.loads(str(data["__metadata__"])) if "__metadata__" in data.files else {}
    return arrays, metadata


@dataclass(frozen=True)
class GridParameters:
    """Per-cell parameters on the domain grid.

    Attributes
    ----------
    arrays : dict of str to ndarray
        Each array has the grid shape ``(lat, lon)`` as trailing dimensions (e.g. merging weights
        ``(3, lat, lon)``, SM2RAIN ``Z`` ``(lat, lon)``).
    metadata : dict
        Domain name, training period, provenance, parent order, ...
    """

    arrays: dict[str, np.ndarray]
    metadata: dict[str, Any]


class GridParameterModel(PythonModel):
    """A pyfunc model whose state is a :class:`GridParameters` artifact named ``parameters``.

    ``predict`` returns the parameters of the requested cells as a table, so the registered model
    is usable from any MLflow client; the pipeline itself uses :attr:`parameters` directly.
    """

    parameters: GridParameters | None = None

    def load_context(self, context) -> None:  # noqa: D401 - mlflow hook
        arrays, metadata = load_npz(context.artifacts["parameters"])
        self.parameters = GridParameters(arrays=arrays, metadata=metadata)

    def predict(self, context, model_input, params=None):  # noqa: D401 - mlflow hook
        import pandas as pd

        if self.parameters is None:
            raise RuntimeError("model parameters are not loaded; load the model with mlflow.pyfunc.load_model")
        frame = pd.DataFrame(model_input)
        missing = {"lat_index", "lon_index"} - set(frame.columns)
        if missing:
            raise ValueError(f"model input needs columns lat_index, lon_index; missing {sorted(missing)}")
        i = frame["lat_index"].to_numpy(int)
        j = frame["lon_index"].to_numpy(int)
        out: dict[str, np.ndarray] = {}
        for name, arr in self.parameters.arrays.items():
            if arr.ndim == 2:
                out[name] = arr[i, j]
            elif arr.ndim == 3:
                for k in range(arr.shape[0]):
                    out[f"{name}_{k}"] = arr[k, i, j]
        return pd.DataFrame(out)


class TCMergingModel(GridParameterModel):
    """TC least-squares merging weights, gains, offsets and error variances (Ming et al. 2022, Eqs. 11–17)."""


class SM2RAINModel(GridParameterModel):
    """SM2RAIN parameters Z, a, b and the frozen saturation bounds per cell (Brocca et al. 2013; Zhang et al. 2022, Eqs. 1–2)."""


_MERGING_FIELDS = ("weights", "gain", "offset", "reference_error_variance", "error_variance", "merged_error_variance",
                   "resolved", "sample_size")  # "error_variance": the name in models registered before the rename


def merging_parameters(params: GridParameters):
    """The :class:`smflow.science.merging.MergingParameters` of a grid model, cells flattened (lat*lon)."""
    from smflow.science.merging import MergingParameters

    return MergingParameters.from_dict(
        {k: v.reshape(*v.shape[:-2], -1) for k, v in params.arrays.items() if k in _MERGING_FIELDS}
    )


#: SM2RAIN fields of a grid model besides Z, a, b: the SM2RAIN-ASCAT filter and its frozen bounds.
SM2RAIN_FILTER_FIELDS = ("T", "T_pot", "swi_lower", "swi_upper")


def sm2rain_parameters(params: GridParameters):
    """The :class:`smflow.science.sm2rain.SM2RAINParameters` of a grid model, cells flattened (lat*lon).

    Models trained before the filtered variants carry only ``Z``, ``a``, ``b``: they run as the
    3-parameter model (``T`` NaN).
    """
    from smflow.science.sm2rain import SM2RAINParameters

    names = ("Z", "a", "b", *SM2RAIN_FILTER_FIELDS)
    return SM2RAINParameters.from_dict({k: v.reshape(-1) for k, v in params.arrays.items() if k in names})
