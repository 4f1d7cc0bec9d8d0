"""Model cards: the markdown description of every registered model version, shown by the MLflow UI
(*Models → name → Version N → Description*).

One builder for every register path (TC merging, the merging candidates, SM2RAIN, SMAP
reconstruction, downscaling), so every card has the same fields, in the same order:
method, paper and equation, training period, domain, features, training-data fingerprint,
metrics, gate outcome (:data:`FIELDS`). The outcome of a later challenger evaluation is appended
by :func:`append_outcome`. The papers are those of ``../shared/papers`` (README there).

Command line (prints the markdown of the champion, or of ``--version``)::

    python -m smflow.ml.cards NAME [--version N]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The labels every card carries, in order (``**Label:**`` lines of the markdown).
FIELDS: tuple[str, ...] = ("Method", "Paper", "Equation", "Training period", "Domain", "Features",
                           "Data fingerprint", "Metrics", "Gate")

#: Method key -> (method in words, paper, equation(s)). One place for the literature of every family.
METHODS: dict[str, tuple[str, str, str]] = {
    "tc": ("triple-collocation least-squares merging of three parents, per 0.1 deg cell (arithmetic mean "
           "where TC is unresolved)",
           "Ming et al. 2022, Remote Sens. 14, 1744",
           "TC error variances Eqs. 5-8; least-squares merging weights Eqs. 11-17"),
    "rf": ("random forest regression of in-situ soil moisture on 30-day windows of the parents",
           "Zhang, Hou & Huang 2022, Remote Sens. 14, 5355", "Sect. 3.1 (RF); scores Eqs. 11-13"),
    "lstm": ("LSTM regression of in-situ soil moisture on 30-day windows of the parents",
             "Zhang, Hou & Huang 2022, Remote Sens. 14, 5355", "Sect. 3.2 (LSTM); scores Eqs. 11-13"),
    "cnn": ("multi-head 1-D CNN regression of in-situ soil moisture on 30-day windows of the parents",
            "Zhang, Hou & Huang 2022, Remote Sens. 14, 5355", "Sect. 3.3 (CNN); scores Eqs. 11-13"),
    "bma": ("Bayesian model averaging of the RF, LSTM and CNN members (inverse-error / likelihood weights)",
            "Zhang, Hou & Huang 2022, Remote Sens. 14, 5355; Raftery et al. 2005", "Eq. 17 (BMA)"),
    "sm2rain": ("SM2RAIN: rainfall from the soil-water balance inverted on the merged soil moisture",
                "Zhang, Hou & Huang 2022, Remote Sens. 14, 5355; Brocca et al. 2013 (discrete form)",
                "Eqs. 1-2: p(t) = Z dS/dt + a S^b"),
    "sm2rain_filtered": ("SM2RAIN-ASCAT: SM2RAIN on a soil-water-index filtered saturation",
                         "Brocca et al. 2019; Zhang, Hou & Huang 2022, Remote Sens. 14, 5355",
                         "Eqs. 1-2 on SWI (exponential filter T, or T SWI^-Tpot)"),
    "reconstruction": ("ANN reconstruction of missing SMAP L3 retrievals, one network per 0.1 deg cell",
                       "Wang & Xu 2021, Remote Sens. 13, 5156",
                       "Sect. 3.1-3.2 (ANN: min-max normalised predictors, one hidden layer, 80/10/10 split; no "
                       "closed form); scores RMSE / R / bias Eqs. 1-3"),
    "nn": ("NN downscaling: fitted at 0.1 deg on the covariates, applied at 0.01 deg (4 restarts, best on "
           "validation)", "Lv, Zhang & Zhu 2021, Remote Sens. (Qinghai)",
           "NN of its Methods (input, one hidden, output layer; no closed form); MPDI covariate Eq. 1; TC "
           "error variance and R Eqs. 2-3"),
    "lstm_kriging": ("LSTM downscaling with simple kriging of the coarse residuals and exact block-mean "
                     "correction", "Ming et al. 2022, Remote Sens. 14, 1744", "Eqs. 1-4"),
}


def _value(v: Any) -> str:
    if isinstance(v, float):
        return "NaN" if not math.isfinite(v) else f"{v:.4g}"
    return str(v)


@dataclass(frozen=True)
class ModelCard:
    """What a registered version is, what it was trained on, how good it is, and its gate.

    Attributes
    ----------
    model : str
        Registered model name.
    method : str
        Key of :data:`METHODS`.
    training_period : str
        ``start..end`` (or the days) the version was fitted on; say so when it was not fitted here.
    domain : str
        Domain name (and grid).
    features : sequence of str
        Inputs in the order the model reads them.
    data_fingerprint : str
        :func:`smflow.ml.features.fingerprint` of the training data (or of the shipped file).
    metrics : mapping of str to float or str
        Evaluation metrics (name -> value, units in the name where they matter).
    gate : str
        The training gate's verdict in words (``...: passed`` / ``FAILED`` / ``not promoted``).
    notes : str
        Anything a reader must know (source of a shipped set, missing inputs, limits).
    """

    model: str
    method: str
    training_period: str
    domain: str
    features: Sequence[str]
    data_fingerprint: str
    metrics: Mapping[str, Any]
    gate: str
    notes: str = ""
    evaluated_on: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    def markdown(self) -> str:
        """The card as markdown (what the MLflow UI renders as the version's description)."""
        what, paper, equation = METHODS[self.method]
        lines = [f"### {self.model}: {self.method}", "",
                 f"- **Method:** {what}", f"- **Paper:** {paper}", f"- **Equation:** {equation}",
                 f"- **Training period:** {self.training_period}", f"- **Domain:** {self.domain}",
                 f"- **Features:** {', '.join(self.features) or 'none'}",
                 f"- **Data fingerprint:** `{self.data_fingerprint}`",
                 f"- **Metrics**{' (' + self.evaluated_on + ')' if self.evaluated_on else ''}:"]
        lines += [f"  - {k}: {_value(v)}" for k, v in self.metrics.items()] or ["  - none logged"]
        lines.append(f"- **Gate:** {self.gate}")
        lines += [f"- **{k}:** {v}" for k, v in self.extra.items()]
        if self.notes:
            lines += ["", self.notes]
        return "\n".join(lines) + "\n"


def missing_fields(description: str | None) -> list[str]:
    """The :data:`FIELDS` a version description lacks (empty: a complete card)."""
    text = description or ""
    return [f for f in FIELDS if f"**{f}" not in text]


def write_card(name: str, version: str, card: ModelCard) -> str:
    """Set ``card`` as the description of ``name`` version ``version``; returns the markdown."""
    from mlflow import MlflowClient

    text = card.markdown()
    MlflowClient().update_model_version(name, str(version), description=text)
    return text


def append_outcome(name: str, version: str, text: str) -> None:
    """Append a line (e.g. the challenger evaluation's verdict) to the version's card."""
    from mlflow import MlflowClient

    client = MlflowClient()
    current = client.get_model_version(name, str(version)).description or ""
    client.update_model_version(name, str(version), description=current.rstrip("\n") + f"\n- {text}\n")


def main(argv: list[str] | None = None) -> int:
    """``python -m smflow.ml.cards NAME [--version N]``: print a version's card (default: the champion's)."""
    import argparse

    from mlflow import MlflowClient

    from smflow.ml.registry import champion_ref, configure

    parser = argparse.ArgumentParser(prog="python -m smflow.ml.cards", description="print a model version's card")
    parser.add_argument("model")
    parser.add_argument("--version", help="default: the version holding the champion alias")
    args = parser.parse_args(argv)
    configure()
    version = args.version or champion_ref(args.model).version
    text = MlflowClient().get_model_version(args.model, version).description or ""
    print(text or f"{args.model} v{version} has no description")
    missing = missing_fields(text)
    if missing:
        print(f"\n(card incomplete: no {', '.join(missing)}; registered before model cards, or by hand)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
