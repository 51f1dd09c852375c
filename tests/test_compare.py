"""Comparing two model files: pairs built with real Keras, each changed as its real-world cause would.

One base model (four BN layers with trained-looking statistics) is saved as ``.keras``, ``.h5``
and ``.weights.h5``; every scenario changes a copy the way the cause named in the issue does
(fit with a layer frozen, a forward pass in training mode, a reset, load_weights into a shifted
model or by names that match nothing, a converter's swap or fold, a rebuilt config) and is
saved in both formats. Each scenario is compared against the base in the *other* format, and
the complete set of findings must be exactly the expected one: every code fires where it
should and nowhere else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ROOT

from bntui.core.analysis.compare import CODES, MEANINGS, ModelComparison, compare_models
from bntui.core.output import render
from bntui.core.reader import open_model

pytestmark = pytest.mark.tensorflow

NAMES = ("bn_a", "bn_b", "bn_c", "bn_d")
WIDTH = 8
EPSILON = 1e-3  # Keras' default, the base model's


def _build(keras: Any, names: tuple[str, ...] = NAMES, widths: tuple[int, ...] | None = None,
           settings: dict[str, dict[str, Any]] | None = None) -> Any:
    """Dense -> BN, four times; ``settings`` gives a BN layer's constructor arguments."""
    widths = widths or (WIDTH,) * len(names)
    settings = settings or {}
    inputs = keras.Input((WIDTH,))
    x = inputs
    for name, width in zip(names, widths):
        x = keras.layers.Dense(width, name=f"dense_{name}")(x)
        x = keras.layers.BatchNormalization(name=name, **settings.get(name, {}))(x)
    return keras.Model(inputs, x, name="net")


def _trained_statistics(model: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for name in NAMES:
        layer = model.get_layer(name)
        width = layer.get_weights()[0].shape[0]
        layer.set_weights([rng.normal(1.0, 0.2, width), rng.normal(0.0, 0.3, width),
                           rng.normal(0.0, 1.0, width), rng.uniform(0.1, 3.0, width)])


def _bn_weights(model: Any) -> dict[str, list[np.ndarray]]:
    return {name: [w.copy() for w in model.get_layer(name).get_weights()] for name in NAMES
            if name in [layer.name for layer in model.layers]}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every scenario's files, and the Keras weights before and after where a test needs them."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    folder = tmp_path_factory.mktemp("compare")
    files: dict[str, dict[str, Path]] = {}

    def save(model: Any, name: str) -> None:
        files[name] = {ext: folder / f"{name}{ext}" for ext in (".keras", ".h5")}
        for path in files[name].values():
            model.save(path)

    base = _build(keras)
    _trained_statistics(base, seed=1)
    save(base, "base")
    base.save_weights(folder / "base.weights.h5")
    weights = {"base": _bn_weights(base)}
    rng = np.random.default_rng(2)

    # Fine-tuning with bn_a frozen (saved frozen): bn_a keeps every value, the others train.
    tuned = keras.models.load_model(files["base"][".keras"])
    tuned.get_layer("bn_a").trainable = False
    tuned.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    tuned.fit(rng.normal(size=(64, WIDTH)), rng.normal(size=(64, WIDTH)), batch_size=16, epochs=1, verbose=0)
    save(tuned, "frozen_fit")
    weights["frozen_fit"] = _bn_weights(tuned)

    # A forward pass with training=True: statistics move, gamma and beta cannot.
    forward = keras.models.load_model(files["base"][".keras"])
    for _ in range(3):
        forward(rng.normal(2.0, 3.0, size=(32, WIDTH)).astype("float32"), training=True)
    save(forward, "training_pass")

    # bn_b's statistics reset by hand, as people do to re-estimate them.
    reset = keras.models.load_model(files["base"][".keras"])
    reset.get_layer("bn_b").moving_mean.assign(np.zeros(WIDTH, "float32"))
    reset.get_layer("bn_b").moving_variance.assign(np.ones(WIDTH, "float32"))
    save(reset, "reset")

    # load_weights(by_name=True) into a model whose names all differ: nothing is loaded, silently.
    renamed_names = ("x_1", "x_2", "x_3", "x_4")
    unloaded = _build(keras, renamed_names)
    unloaded.load_weights(files["base"][".h5"], by_name=True)
    save(unloaded, "not_loaded")

    # The same network re-imported under other names (as from another framework), weights copied.
    reimported = _build(keras, ("p_1", "p_2", "p_3", "p_4"))
    reimported.set_weights(base.get_weights())
    save(reimported, "reimported")

    # load_weights by position into a model without bn_a: every BN gets its predecessor's weights.
    shifted = _build(keras, NAMES[1:])
    shifted.load_weights(folder / "base.weights.h5")
    save(shifted, "shifted")

    # A converter's bugs: bn_b's mean and variance swapped, bn_c's gamma and beta swapped.
    swapped = keras.models.load_model(files["base"][".keras"])
    gamma, beta, mean, variance = weights["base"]["bn_b"]
    swapped.get_layer("bn_b").set_weights([gamma, beta, variance, mean])
    gamma, beta, mean, variance = weights["base"]["bn_c"]
    swapped.get_layer("bn_c").set_weights([beta, gamma, mean, variance])
    save(swapped, "swapped")

    # A converter folding every layer, in float32: gamma = scale, beta = offset, var + eps = 1.
    folded = keras.models.load_model(files["base"][".keras"])
    eps = np.float32(EPSILON)
    for name in NAMES:
        gamma, beta, mean, variance = weights["base"][name]
        scale = gamma / np.sqrt(variance + eps)
        folded.get_layer(name).set_weights([scale, beta - mean * scale, np.zeros_like(mean),
                                            np.full_like(variance, np.float32(1) - eps)])
    save(folded, "folded")

    # Rebuilt from code with other settings, weights copied: a port's epsilon and momentum, an
    # explicit axis 1 (the same as -1 for this rank-2 input), scale=False.
    rebuilt = _build(keras, settings={"bn_a": {"epsilon": 1e-5}, "bn_b": {"momentum": 0.9},
                                      "bn_c": {"axis": 1}, "bn_d": {"scale": False}})
    for name in NAMES:
        gamma, beta, mean, variance = weights["base"][name]
        rebuilt.get_layer(name).set_weights([beta, mean, variance] if name == "bn_d" else [gamma, beta, mean, variance])
    save(rebuilt, "rebuilt")

    # Rebuilt with bn_a in float64 (same values) and bn_b twice as wide.
    widened = _build(keras, widths=(WIDTH, 2 * WIDTH, WIDTH, WIDTH), settings={"bn_a": {"dtype": "float64"}})
    for name in ("bn_a", "bn_c", "bn_d"):
        widened.get_layer(name).set_weights(weights["base"][name])
    save(widened, "widened")

    # The base wrapped as the backbone of a new model: every path gains a prefix, names stay.
    inputs = keras.Input((WIDTH,))
    save(keras.Model(inputs, keras.models.load_model(files["base"][".keras"])(inputs), name="wrapper"), "wrapped")

    # Training that diverged in bn_a's statistics: a NaN variance, an infinite mean.
    diverged = keras.models.load_model(files["base"][".keras"])
    gamma, beta, mean, variance = weights["base"]["bn_a"]
    diverged.get_layer("bn_a").set_weights([gamma, beta, np.where(np.arange(WIDTH) == 1, np.inf, mean),
                                            np.where(np.arange(WIDTH) == 0, np.nan, variance)])
    save(diverged, "diverged")

    # An unrelated convolutional model: 5 and 7 channels, other names.
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.BatchNormalization(name="conv_bn")(keras.layers.Conv2D(5, 3, name="conv")(inputs))
    x = keras.layers.BatchNormalization(name="conv_bn_2")(keras.layers.Conv2D(7, 3, name="conv_2")(x))
    save(keras.Model(inputs, x), "unrelated")
    return {"files": files, "weights": weights, "folder": folder}


#: scenario -> (findings per pair label, unmatched codes per path, how pairs are matched)
EXPECTED: dict[str, tuple[dict[str, set[str]], dict[str, str], str]] = {
    "base": ({name: {"unchanged"} for name in NAMES}, {}, "path"),
    "frozen_fit": ({"bn_a": {"config_changed"}, "bn_b": {"gamma_beta_changed"}, "bn_c": {"gamma_beta_changed"},
                    "bn_d": {"gamma_beta_changed"}}, {}, "path"),
    "training_pass": ({name: {"moving_statistics_changed"} for name in NAMES}, {}, "path"),
    "reset": ({"bn_a": {"unchanged"}, "bn_b": {"statistics_reset"}, "bn_c": {"unchanged"}, "bn_d": {"unchanged"}},
              {}, "path"),
    "not_loaded": ({f"{name} ~ x_{k}": {"not_loaded"} for k, name in enumerate(NAMES, 1)}, {}, "order"),
    "reimported": ({f"{name} ~ p_{k}": {"unchanged"} for k, name in enumerate(NAMES, 1)}, {}, "order"),
    "shifted": ({"bn_b": {"weights_from_other_layer"}, "bn_c": {"weights_from_other_layer"},
                 "bn_d": {"weights_from_other_layer"}}, {"bn_a": "only_in_first"}, "path"),
    "swapped": ({"bn_a": {"unchanged"}, "bn_b": {"mean_variance_swapped"}, "bn_c": {"gamma_beta_swapped"},
                 "bn_d": {"unchanged"}}, {}, "path"),
    "folded": ({name: {"folded"} for name in NAMES}, {}, "path"),
    "rebuilt": ({"bn_a": {"epsilon_changed"}, "bn_b": {"momentum_changed"}, "bn_c": {"unchanged"},
                 "bn_d": {"config_changed", "gamma_beta_changed"}}, {}, "path"),
    "widened": ({"bn_a": {"dtype_changed"}, "bn_b": {"channels_changed"}, "bn_c": {"unchanged"},
                 "bn_d": {"unchanged"}}, {}, "path"),
    "wrapped": ({f"{name} ~ net/{name}": {"unchanged"} for name in NAMES}, {}, "name"),
    "diverged": ({"bn_a": {"moving_statistics_changed"}, "bn_b": {"unchanged"}, "bn_c": {"unchanged"},
                  "bn_d": {"unchanged"}}, {}, "path"),
    "unrelated": ({}, {**{name: "only_in_first" for name in NAMES}, "conv_bn": "only_in_second",
                       "conv_bn_2": "only_in_second"}, "path"),
}


def _compare(built: dict[str, Any], scenario: str, ext: str) -> ModelComparison:
    """The scenario's file in ``ext`` against the base in the other format."""
    base_ext = ".h5" if ext == ".keras" else ".keras"
    return compare_models(open_model(built["files"]["base"][base_ext]), open_model(built["files"][scenario][ext]))


@pytest.mark.parametrize("ext", [".keras", ".h5"])
@pytest.mark.parametrize("scenario", list(EXPECTED))
def test_each_finding_fires_where_it_should_and_nowhere_else(built: dict[str, Any], scenario: str, ext: str) -> None:
    result = _compare(built, scenario, ext)
    pairs, unmatched, matched_by = EXPECTED[scenario]
    assert {pair.label: set(pair.codes) for pair in result.pairs} == pairs
    assert {item.layer.path: item.finding.code for item in result.unmatched} == unmatched
    assert all(pair.matched_by == matched_by for pair in result.pairs)


def test_every_code_of_the_vocabulary_is_exercised() -> None:
    seen = {code for pairs, unmatched, _ in EXPECTED.values() for codes in pairs.values() for code in codes}
    seen |= {code for _, unmatched, _ in EXPECTED.values() for code in unmatched.values()}
    assert seen == set(CODES)


def test_weights_only_file_matches_its_model(built: dict[str, Any]) -> None:
    """A weights-only file has no epsilon or momentum: they are not compared, so nothing differs."""
    result = compare_models(open_model(built["files"]["base"][".keras"]), open_model(built["folder"] / "base.weights.h5"))
    assert {pair.label: pair.codes for pair in result.pairs} == {name: ("unchanged",) for name in NAMES}


def test_shifted_weights_name_the_layer_they_came_from(built: dict[str, Any]) -> None:
    result = _compare(built, "shifted", ".keras")
    came_from = {pair.second.path: pair.findings[0].other_layer for pair in result.pairs}
    assert came_from == {"bn_b": "bn_a", "bn_c": "bn_b", "bn_d": "bn_c"}


def test_parameter_differences_are_keras_own_weights_differences(built: dict[str, Any]) -> None:
    """The fitted model's weights, read back by Keras itself before saving: float32 values widen
    exactly to float64, so the differences match to the last bit."""
    result = _compare(built, "frozen_fit", ".keras")
    before, after = built["weights"]["base"], built["weights"]["frozen_fit"]
    for pair in result.pairs:
        assert pair.parameters is not None
        for index, name in enumerate(("gamma", "beta", "moving_mean", "moving_variance")):
            x = before[pair.first.path][index].astype(np.float64)
            y = after[pair.first.path][index].astype(np.float64)
            diff = pair.parameters[name]
            assert diff.max_abs_diff == np.max(np.abs(y - x))
            assert diff.channels_changed == tuple(np.flatnonzero(x != y))
            np.testing.assert_array_equal(diff.rel_diff, np.abs(y - x) / np.maximum(np.abs(x), np.abs(y)) * (x != y))
    assert result.pairs[0].output_effect is None  # the frozen layer's output did not move


def _keras_formula(weights: list[np.ndarray], x: np.ndarray, eps: float) -> np.ndarray:
    """Keras' inference formula, written out in float64."""
    gamma, beta, mean, variance = (w.astype(np.float64) for w in weights)
    return gamma * (x - mean) / np.sqrt(variance + eps) + beta


def test_output_effect_on_zeros_follows_the_formula(built: dict[str, Any]) -> None:
    """On zeros the output is beta - gamma * mean / sqrt(var + eps). bntui folds it differently
    (x * s + (beta - mean * s)); both are float64 sums of terms of size about 10, so they agree to
    well within 1e-13."""
    result = _compare(built, "rebuilt", ".keras")
    effect = result.pairs[0].output_effect  # bn_a: epsilon 1e-3 -> 1e-5, same weights
    assert effect is not None
    weights = built["weights"]["base"]["bn_a"]
    zeros = np.zeros(WIDTH)
    expected = np.abs(_keras_formula(weights, zeros, 1e-5) - _keras_formula(weights, zeros, 1e-3))
    assert effect["zeros"].max_abs_diff == pytest.approx(expected.max(), abs=1e-13)
    assert effect["zeros"].channel == int(np.argmax(expected))
    assert result.pairs[1].output_effect is None  # momentum does not change inference


def test_output_effect_on_unit_normal_input_follows_the_formula(built: dict[str, Any]) -> None:
    """The unit-normal input is documented as 64 samples per channel from default_rng(0)."""
    result = _compare(built, "reset", ".keras")
    effect = result.pairs[1].output_effect
    assert effect is not None
    gamma, beta, mean, variance = built["weights"]["base"]["bn_b"]
    x = np.random.default_rng(0).standard_normal((64, WIDTH))
    before = _keras_formula([gamma, beta, mean, variance], x, EPSILON)
    after = _keras_formula([gamma, beta, np.zeros(WIDTH), np.ones(WIDTH)], x, EPSILON)
    assert effect["normal"].max_abs_diff == pytest.approx(np.abs(after - before).max(), abs=1e-13)
    # In float32 ulps the move is large: at least the move over the ulp of the largest output.
    assert effect["normal"].max_ulp >= np.abs(after - before).max() / np.spacing(np.float32(np.abs(before).max()))
    assert [pair.label for pair in result.largest_effects()] == ["bn_b"]


def test_folded_layers_give_the_same_outputs_within_float32_rounding(built: dict[str, Any]) -> None:
    """The fold was done in float32: gamma and beta carry a few ulps of rounding (rsqrt, one
    product, one difference) and var + eps = 1 is off by at most half an ulp; each output term
    is then off by a few ulps of its size, so the output moves by well under 16 term-scaled ulps."""
    result = _compare(built, "folded", ".h5")
    for pair in result.pairs:
        assert pair.output_effect is not None
        assert pair.output_effect["normal"].max_ulp <= 16
        assert pair.output_effect["zeros"].max_ulp <= 16


def test_an_axis_of_the_other_sign_is_noted_not_reported(built: dict[str, Any]) -> None:
    result = _compare(built, "rebuilt", ".keras")
    (change,) = result.pairs[2].config_diff
    assert (change.setting, change.first, change.second) == ("axis", -1, 1)
    assert "rank 2" in change.note


def test_channels_changed_compares_no_weights(built: dict[str, Any]) -> None:
    pair = _compare(built, "widened", ".keras").pairs[1]
    assert pair.parameters is None and pair.output_effect is None
    assert [(c.setting, c.first, c.second) for c in pair.config_diff] == [("channels", WIDTH, 2 * WIDTH)]


def test_json_contract(built: dict[str, Any]) -> None:
    result = _compare(built, "reset", ".h5")
    data = json.loads(render(result, "json"))
    assert data["first"]["file"].endswith("base.keras") and data["second"]["format"]
    assert set(data["summary"]["counts"]) == set(CODES)
    assert data["summary"]["counts"]["statistics_reset"] == 1 and data["summary"]["counts"]["unchanged"] == 3
    assert data["summary"]["largest_output_effect"][0]["first_path"] == "bn_b"
    pair = data["pairs"][1]
    assert set(pair) == {"first_path", "second_path", "matched_by", "findings", "config_diff", "parameters",
                         "output_effect"}
    assert pair["findings"] == [{"code": "statistics_reset", "message": pair["findings"][0]["message"],
                                 "meaning": MEANINGS["statistics_reset"]}]
    assert set(pair["parameters"]["moving_mean"]) >= {"max_abs_diff", "max_rel_diff", "channels_changed"}
    assert pair["parameters"]["gamma"]["channels_changed"] == []
    assert set(pair["output_effect"]) == {"zeros", "normal"}
    assert data["unmatched"] == {"first": [], "second": []}


def test_csv_and_text(built: dict[str, Any]) -> None:
    result = _compare(built, "shifted", ".keras")
    rows = render(result, "csv").splitlines()
    assert rows[0].startswith("first_path,second_path,matched_by,findings")
    assert len(rows) == 1 + 3 + 1  # header, three pairs, bn_a unmatched
    text = render(result, "text")
    assert "weights_from_other_layer 3" in text and "only_in_first 1" in text
    assert "'bn_a'" in text and MEANINGS["weights_from_other_layer"] in text


def _bntui(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "bntui", *args]
    return subprocess.run(argv, check=False, capture_output=True, text=True, cwd=ROOT, env=env)


def test_cli_compare_json_and_text(built: dict[str, Any]) -> None:
    files = built["files"]
    result = _bntui(str(files["base"][".keras"]), "--compare", str(files["swapped"][".h5"]), "--json")
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)["summary"]["counts"]
    assert (counts["mean_variance_swapped"], counts["gamma_beta_swapped"], counts["unchanged"]) == (1, 1, 2)
    text = _bntui(str(files["base"][".h5"]), "--compare", str(files["unrelated"][".keras"]))
    assert text.returncode == 0, text.stderr
    assert "0 pairs matched, 6 unmatched" in text.stdout


def test_cli_damaged_second_file_is_one_line(built: dict[str, Any], tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(built["files"]["base"][".h5"].read_bytes()[:3000])
    result = _bntui(str(built["files"]["base"][".keras"]), "--compare", str(damaged))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "damaged.h5" in result.stderr


def test_non_finite_statistics_are_reported_not_hidden(built: dict[str, Any]) -> None:
    """Channel 0's variance is NaN and channel 1's mean infinite in the second file: their outputs
    are NaN, so the largest move is NaN (no finite maximum may hide it), written as "nan" in JSON;
    numpy warnings would fail this test (pytest turns RuntimeWarning into errors)."""
    result = _compare(built, "diverged", ".keras")
    pair = result.pairs[0]
    assert pair.parameters is not None and pair.output_effect is not None
    assert pair.parameters["moving_variance"].channels_changed == (0,)
    assert pair.parameters["moving_mean"].channels_changed == (1,)
    assert np.isnan(pair.output_effect["normal"].max_abs_diff)
    assert result.largest_effects()[0] is pair
    data = json.loads(render(result, "json"))
    assert data["pairs"][0]["output_effect"]["normal"]["max_abs_diff"] == "nan"
    assert data["pairs"][0]["parameters"]["moving_mean"]["max_abs_diff"] == "inf"
