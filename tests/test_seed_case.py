"""The README's story: [1, 5] through the seed layer, in both modes, through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, SEED, SEED_VALUES

G, B, M, V = (SEED_VALUES[k] for k in ("gamma", "beta", "moving_mean", "moving_variance"))


@pytest.fixture(scope="module")
def seed_json() -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bntui", str(SEED), "--layer", "bn", "--input", "1, 5", "--json"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout)


def test_inference_float64_matches_the_formula(seed_json: dict) -> None:
    output = np.array(seed_json["inference"]["output"]).ravel()
    assert output == pytest.approx([0.7109690546, 2.0949485119], abs=5e-11)
    expected = G * (np.array([1.0, 5.0]) - M) / np.sqrt(V + 0.001) + B
    np.testing.assert_allclose(output, expected, rtol=1e-15)


def test_inference_float32_is_what_tensorflow_prints(seed_json: dict) -> None:
    output32 = np.array(seed_json["inference"]["output_float32"], dtype=np.float32).ravel()
    assert output32.tolist() == [np.float32(0.71096909), np.float32(2.09494853)]
    assert 0 <= seed_json["inference"]["max_ulp"] < 1


def test_training_mode_uses_batch_statistics(seed_json: dict) -> None:
    training = seed_json["training"]
    assert training["batch_mean"] == [3.0]
    assert training["batch_variance"] == [4.0]
    expected = np.array([-2.0, 2.0]) / np.sqrt(4.0 + 0.001) * G + B
    np.testing.assert_allclose(np.array(training["output"]).ravel(), expected, rtol=1e-15)
    assert any("biased" in note for note in training["notes"])


def test_steps_walk_through_the_formula(seed_json: dict) -> None:
    steps = seed_json["inference"]["steps"]["0"]
    by_name = {step["name"]: step["values"] for step in steps}
    assert [s["name"] for s in steps] == [
        "x", "x - moving_mean", "moving_variance + epsilon", "sqrt(moving_variance + epsilon)",
        "x_hat", "gamma * x_hat", "y",
    ]
    assert by_name["x"] == [1.0, 5.0]
    assert by_name["moving_variance + epsilon"] == [pytest.approx(V + 0.001, rel=1e-15)]
    assert by_name["x_hat"][1] == pytest.approx((5 - M) / np.sqrt(V + 0.001), rel=1e-15)
    assert by_name["y"] == seed_json["inference"]["output"][0] + seed_json["inference"]["output"][1]


def test_layer_json_contract(seed_json: dict) -> None:
    layer = seed_json["layer"]
    for key in ("name", "path", "channels", "axis", "epsilon", "momentum", "center", "scale",
                "gamma", "beta", "moving_mean", "moving_variance", "assumed", "warnings"):
        assert key in layer
    assert layer["gamma"] == [G] and layer["moving_variance"] == [V]
    assert layer["assumed"] == []
