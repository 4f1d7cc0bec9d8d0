"""The model card builder every register path uses (``smflow.ml.cards``): every field, every family."""

from __future__ import annotations

import pytest

from smflow.ml.cards import FIELDS, METHODS, ModelCard, missing_fields

#: The method key of every registry model's versions (the register paths' ``ModelCard.method``).
FAMILIES = {"tc_merging": ["tc"], "soil_moisture_merging": ["tc", "rf", "lstm", "cnn", "bma"],
            "sm2rain": ["sm2rain", "sm2rain_filtered"], "smap_reconstruction": ["reconstruction"],
            "downscaling_nn": ["nn"], "downscaling_lstm_kriging": ["lstm_kriging"]}


@pytest.mark.parametrize("model,method", [(m, k) for m, keys in FAMILIES.items() for k in keys])
def test_every_family_has_a_card_with_every_field(model, method):
    card = ModelCard(model, method, "2017-01-01..2017-12-31", "big_island (0.1 deg)", ["smap", "era5_land"],
                     "0123456789abcdef", {"median_r": 0.5812, "n": 8}, "R 0.58 >= 0.53: passed",
                     evaluated_on="vs C3S on 2018", notes="a note")
    text = card.markdown()
    assert missing_fields(text) == []
    what, paper, equation = METHODS[method]
    assert what in text and paper in text and equation in text and "Eq" in equation
    assert "`0123456789abcdef`" in text and "median_r: 0.5812" in text and "passed" in text
    assert text.index("**Method") < text.index("**Paper") < text.index("**Metrics") < text.index("**Gate")


def test_missing_fields_names_what_a_description_lacks():
    assert missing_fields(None) == list(FIELDS)
    assert missing_fields("free text without fields") == list(FIELDS)
    text = ModelCard("sm2rain", "sm2rain", "p", "d", [], "f", {}, "g").markdown()
    assert missing_fields(text) == [] and "none logged" in text and "**Features:** none" in text
