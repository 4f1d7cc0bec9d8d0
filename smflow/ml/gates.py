"""The per-model gates of the registry (``config/model_gates.json``) and who may move ``champion``
after a training (issue 14: one promotion path).

:class:`Gate` / :func:`load_gate` are what ``evaluate_challenger`` (:mod:`smflow.ml.challenger`)
compares a challenger with the champion by; :func:`promote_after_training` is what every training
gate calls after registering a version.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from smflow.config import REPO_ROOT

GATES = REPO_ROOT / "config" / "model_gates.json"


@dataclass(frozen=True)
class Gate:
    """How a challenger of ``model`` must beat the champion.

    Attributes
    ----------
    model : str
        Registered model name.
    evaluator : str or None
        Key of :data:`smflow.ml.challenger.EVALUATORS`, or ``"smflow.<module>:<function>"``
        (:func:`smflow.ml.challenger.resolve_evaluator`); None: no evaluator (every challenger is refused).
    metric : str
        The evaluator's summary metric compared.
    direction : {"higher", "lower"}
        Which way is better.
    margin : float
        The challenger must be better than the champion by more than this [units of the metric].
    evaluate : tuple of date or None
        Held-out period (inclusive) both versions are scored on.
    units : str
        Units of the metric (for the table).
    options : dict
        Evaluator settings (``sm2rain``: ``soil_moisture_from``, the merging model whose champion
        gives the soil moisture; default ``soil_moisture_merging``).
    """

    model: str
    evaluator: str | None
    metric: str
    direction: Literal["higher", "lower"]
    margin: float
    evaluate: tuple[date, date] | None
    units: str = ""
    options: dict = field(default_factory=dict)

    def improvement(self, challenger: float, champion: float) -> float:
        """How much better the challenger is (positive: better), in the metric's units."""
        return challenger - champion if self.direction == "higher" else champion - challenger

    def wins(self, challenger: float, champion: float) -> bool:
        """Whether ``challenger`` beats ``champion`` by more than :attr:`margin` (NaN never wins)."""
        if not (math.isfinite(challenger) and math.isfinite(champion)):
            return False
        return self.improvement(challenger, champion) > self.margin


def load_gate(model: str, path: Path = GATES) -> Gate:
    """The gate of ``model`` from ``config/model_gates.json``.

    Raises
    ------
    KeyError
        The model has no entry: add one (evaluator, metric, direction, margin, evaluate) to the file.
    """
    entries = json.loads(Path(path).read_text())["models"]
    if model not in entries:
        raise KeyError(f"model {model!r} has no gate in {path}: add an entry with evaluator, metric, direction "
                       f"('higher'/'lower'), margin and evaluate [start, end] (known: {', '.join(sorted(entries))})")
    e = entries[model]
    if e["direction"] not in ("higher", "lower"):
        raise ValueError(f"{path}: {model}.direction is {e['direction']!r}; use 'higher' or 'lower'")
    period = None if not e.get("evaluate") else (date.fromisoformat(e["evaluate"][0]), date.fromisoformat(e["evaluate"][1]))
    return Gate(model, e.get("evaluator"), e["metric"], e["direction"], float(e["margin"]), period, e.get("units", ""),
                dict(e.get("options") or {}))


def has_challenger_evaluator(name: str, gates: Path | None = None) -> bool:
    """Whether ``config/model_gates.json`` (or ``gates``) gives ``name`` an evaluator, i.e. whether
    ``evaluate_challenger`` (:mod:`smflow.ml.challenger`) decides its promotions."""
    try:
        return load_gate(name, gates or GATES).evaluator is not None
    except KeyError:
        return False


def promote_after_training(ref: Any, passed: bool, gate: str, *,
                           gates: Path | None = None) -> tuple[Any, bool, str]:
    """What a training gate may do with the version it just registered (issue 14: one promotion path).

    - The gate failed: nothing moves (the version keeps ``challenger``; its evaluation will refuse
      or promote it on its own merits).
    - No champion yet: the version becomes the first champion (bootstrap: the daily DAGs need one at
      once), recorded as such in the alias history.
    - A champion exists and the model has a challenger evaluator (``config/model_gates.json``):
      nothing moves here; ``evaluate_challenger`` (started by MLflow's ``model_version.created``
      webhook, or its scheduled sweep) compares the two with the same code on the same held-out data
      and promotes only on a win by the model's margin.
    - A champion exists and the model has no evaluator (none of the registry models since every
      one has one in ``config/model_gates.json``; a gates file without one): the training gate
      promotes.

    Parameters
    ----------
    ref : ModelRef
        The newly registered version.
    passed : bool
        Whether the training gate passed.
    gate : str
        The gate's verdict in words (the version run's ``evaluation_gate`` tag).
    gates : Path, optional
        The gates file (default ``config/model_gates.json``).

    Returns
    -------
    tuple of (ModelRef, bool, str)
        The version (with alias ``champion`` if it was promoted), whether it was promoted now, and
        ``gate`` with the decision appended.
    """
    from mlflow import MlflowClient

    from smflow.ml.registry import champion_ref, promote

    if not passed:
        return ref, False, gate
    try:
        current = champion_ref(ref.name)
    except LookupError:
        current = None
    if current is None:
        note = f"no champion of {ref.name} yet: v{ref.version} is the first champion (bootstrap by the training gate)"
        return promote(ref, reason=f"{gate}; {note}"), True, f"{gate}; {note}"
    if has_challenger_evaluator(ref.name, gates):
        note = (f"champion stays v{current.version}: evaluate_challenger decides (challenger against champion, "
                f"config/model_gates.json)")
        MlflowClient().set_model_version_tag(ref.name, ref.version, "training_gate", f"{gate}; {note}"[:5000])
        return ref, False, f"{gate}; {note}"
    return promote(ref), True, gate
