"""The explainer on the seed layer (a Keras-written file) and on real questions' numbers.

Every "got" value here is produced the way the mistake itself would produce it, by a formula
written out in this file (never by bntui), and the explainer must name that mistake first.
TensorFlow-made values (training mode, float16, other layers, Keras 2 files) are in
test_explain_keras.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest
from conftest import ROOT, SEED
from hypothesis import given, settings
from hypothesis import strategies as st

from bntui.core.analysis.explain import compare_values, explain
from bntui.core.analysis.explain_catalogue import CODES
from bntui.core.analysis.explain_moving import explain_moving_update
from bntui.core.input_parse import parse_for_layer
from bntui.core.model import BNLayer
from bntui.core.reader import open_model
from bntui.core.tolerance import exact, typed

X = np.array([1.0, 5.0])


@pytest.fixture(scope="module")
def seed() -> BNLayer:
    return open_model(SEED).find("bn")


def bn(x: np.ndarray, mean: float, var: float, gamma: float, beta: float, eps: float) -> np.ndarray:
    """The textbook formula, written out independently of bntui."""
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def _params(layer: BNLayer) -> tuple[float, float, float, float, float]:
    return (float(layer.moving_mean[0]), float(layer.moving_variance[0]), float(layer.gamma[0]),  # type: ignore[index]
            float(layer.beta[0]), float(layer.epsilon))  # type: ignore[index]


#: code -> how the mistake computes [1, 5] through a one-channel layer (m, v, g, b, eps).
MISTAKES: dict[str, Callable[[float, float, float, float, float], np.ndarray]] = {
    "correct": lambda m, v, g, b, e: bn(X, m, v, g, b, e),
    "batch_statistics": lambda m, v, g, b, e: bn(X, X.mean(), X.var(), g, b, e),
    "batch_statistics_unbiased": lambda m, v, g, b, e: bn(X, X.mean(), X.var(ddof=1), g, b, e),
    "batch_standardisation": lambda m, v, g, b, e: (X - X.mean()) / np.sqrt(X.var() + e),
    "epsilon_value": lambda m, v, g, b, e: bn(X, m, v, g, b, 1e-5),
    "epsilon_outside_sqrt": lambda m, v, g, b, e: g * (X - m) / (np.sqrt(v) + e) + b,
    "variance_not_square_rooted": lambda m, v, g, b, e: g * (X - m) / (v + e) + b,
    "variance_is_std": lambda m, v, g, b, e: g * (X - m) / np.sqrt(np.sqrt(v) + e) + b,
    "inverse_std_as_variance": lambda m, v, g, b, e: bn(X, m, 1 / np.sqrt(v + e), g, b, e),
    "mean_variance_swapped": lambda m, v, g, b, e: bn(X, v, m, g, b, e),
    "gamma_beta_swapped": lambda m, v, g, b, e: bn(X, m, v, b, g, e),
    "gamma_ignored": lambda m, v, g, b, e: bn(X, m, v, 1.0, b, e),
    "beta_ignored": lambda m, v, g, b, e: bn(X, m, v, g, 0.0, e),
    "float16": lambda m, v, g, b, e: (np.float16(g) * (X.astype(np.float16) - np.float16(m))
                                      / np.sqrt(np.float16(v) + np.float16(e)) + np.float16(b)).astype(np.float64),
}


def _x(layer: BNLayer) -> np.ndarray:
    return parse_for_layer("1, 5", layer.channels, layer.axis)


@pytest.mark.parametrize("code", list(MISTAKES))
def test_each_mistake_ranks_first_on_the_seed_layer(seed: BNLayer, code: str) -> None:
    got = MISTAKES[code](*_params(seed))
    result = explain(seed, _x(seed), exact(got))
    first = result.explanations[0]
    assert (first.code, first.reproduces) == (code, True), result.to_text()
    assert first.max_abs_diff < 1e-6


@pytest.mark.parametrize("code", [c for c in MISTAKES if c != "float16"])
def test_values_printed_with_three_digits_still_match(seed: BNLayer, code: str) -> None:
    got = MISTAKES[code](*_params(seed))
    text = ", ".join(f"{value:.3g}" for value in got)
    result = explain(seed, _x(seed), typed(text))
    reproducing = [entry.code for entry in result.explanations if entry.reproduces]
    assert code in reproducing, (text, result.to_text())


def test_expected_minus_one_one_is_plain_standardisation(seed: BNLayer) -> None:
    result = explain(seed, _x(seed), typed("-1, 1"), kind="expected")
    assert result.explanations[0].code == "batch_standardisation"
    assert result.explanations[0].reproduces
    assert "cannot tell them apart" in result.explanations[0].explanation


def test_training_mode_says_why_the_mode_was_on(seed: BNLayer) -> None:
    _m, _v, g, b, e = _params(seed)
    result = explain(seed, _x(seed), exact(bn(X, 3.0, 4.0, g, b, e)))
    assert "training=True" in result.explanations[0].explanation


def test_a_solved_epsilon_is_reported(seed: BNLayer) -> None:
    m, v, g, b, _e = _params(seed)
    result = explain(seed, _x(seed), exact(bn(X, m, v, g, b, 3e-4)))
    first = result.explanations[0]
    assert first.code == "epsilon_value" and first.reproduces
    # Least squares on two exact values recovers epsilon to float64 precision of 1/k^2 - v.
    assert first.parameters["epsilon"] == pytest.approx(3e-4, rel=1e-6)


def test_the_cudnn_epsilon_clamp_is_named(seed: BNLayer) -> None:
    """A layer with epsilon 1e-6 run by TF 1.x's fused kernel computed with 1.001e-5. A small
    variance makes 1e-5 and 1.001e-5 give visibly different numbers."""
    from dataclasses import replace

    layer = replace(seed, epsilon=1e-6, moving_variance=np.array([1e-4], dtype=seed.moving_variance.dtype))
    m, v, g, b, _e = _params(layer)
    result = explain(layer, _x(layer), exact(bn(X, m, v, g, b, 1.001e-5)))
    first = result.explanations[0]
    assert (first.code, first.reproduces, first.parameters["epsilon"]) == ("epsilon_value", True, 1.001e-5)
    assert "cuDNN silently raise" in first.explanation


def test_two_mistakes_together_rank_after_single_ones(seed: BNLayer) -> None:
    _m, _v, g, b, _e = _params(seed)
    got = bn(X, X.mean(), X.var(ddof=1), g, b, 1e-5)  # a PyTorch port: eps 1e-5 and torch.var
    result = explain(seed, _x(seed), exact(got))
    assert result.explanations[0].code == "batch_statistics_unbiased+epsilon_value"
    assert result.explanations[0].reproduces


def test_random_values_are_unexplained(seed: BNLayer) -> None:
    rng = np.random.default_rng(12)
    for _ in range(20):
        got = rng.uniform(-10, 10, 2)
        result = explain(seed, _x(seed), exact(got))
        assert result.explanations[0].code == "unexplained"
        assert not any(entry.reproduces for entry in result.explanations)
        assert len(result.explanations) > 1  # the closest candidates are still listed


@settings(max_examples=60, deadline=None)
@given(digits=st.integers(2, 5), units=st.integers(3, 1000), sign=st.sampled_from([-1, 1]), which=st.integers(0, 1))
def test_correct_is_never_claimed_beyond_the_tolerance(seed: BNLayer, digits: int, units: int, sign: int,
                                                       which: int) -> None:
    m, v, g, b, e = _params(seed)
    right = bn(X, m, v, g, b, e)
    decimals = [digits - 1 - int(np.floor(np.log10(abs(value)))) for value in right]
    printed = [round(float(value), d) for value, d in zip(right, decimals)]
    printed[which] += sign * units * 10.0 ** -decimals[which]  # 3+ units off: beyond rounding and truncation
    text = ", ".join(f"{value:.{max(d, 0)}f}" for value, d in zip(printed, decimals))
    result = explain(seed, _x(seed), typed(text))
    correct = [entry for entry in result.explanations if entry.code == "correct"]
    assert not correct or not correct[0].reproduces, text


@settings(max_examples=40, deadline=None)
@given(relative=st.floats(1e-5, 1e-1), sign=st.sampled_from([-1.0, 1.0]))
def test_correct_is_never_claimed_for_exact_values_off_by_more_than_float32(seed: BNLayer, relative: float,
                                                                          sign: float) -> None:
    m, v, g, b, e = _params(seed)
    got = bn(X, m, v, g, b, e) * (1 + sign * relative)  # 1e-5 relative is ~80 float32 ulps
    result = explain(seed, _x(seed), exact(got))
    correct = [entry for entry in result.explanations if entry.code == "correct"]
    assert not correct or not correct[0].reproduces


def test_codes_in_json_are_the_contract(seed: BNLayer) -> None:
    result = explain(seed, _x(seed), typed("0.711, 2.09"))
    data = result.to_dict()
    for entry in data["explanations"]:
        assert set(entry) >= {"code", "title", "explanation", "reproduces", "max_abs_diff", "parameters", "channels"}
        assert entry["code"].split("+")[0] in CODES
    json.dumps(data)


def test_large_inputs_are_screened_without_losing_a_single_value() -> None:
    """Above 4,096 values candidates are tried on a sample first: one wrong value that the
    sample does not contain must still stop `correct` from reproducing."""
    model = open_model(ROOT / "sample_models" / "convnet_trained.keras")
    layer = model.find("bn2")
    x = np.random.default_rng(3).normal(0.5, 2.0, size=(4, 10, 10, layer.channels))  # 6,400 values
    m, v, g, b = (np.asarray(a, dtype=np.float64) for a in (layer.moving_mean, layer.moving_variance,
                                                              layer.gamma_or_one, layer.beta_or_zero))
    right = g * (x - m) / np.sqrt(v + layer.epsilon) + b
    assert explain(layer, x, exact(right), model=model).explanations[0].code == "correct"
    sampled = set(np.linspace(0, x.size - 1, 4096).astype(np.int64).tolist())
    hidden = next(i for i in range(x.size) if i not in sampled)
    wrong = right.copy()
    wrong.flat[hidden] += 1e-3
    result = explain(layer, x, exact(wrong), model=model)
    assert result.explanations[0].code == "unexplained"
    correct = next(e for e in result.explanations if e.code == "correct")
    bad_channel = hidden % layer.channels  # channels last
    assert not correct.reproduces and correct.channels == [c for c in range(layer.channels) if c != bad_channel]
    training = g * (x - x.mean(axis=(0, 1, 2))) / np.sqrt(x.var(axis=(0, 1, 2)) + layer.epsilon) + b
    assert explain(layer, x, exact(training), model=model).explanations[0].code == "batch_statistics"


# --- numbers posted in real questions ------------------------------------------------------------


def _layer(mean: list[float], var: list[float], gamma: list[float] | None, beta: list[float] | None, eps: float,
           axis: int = -1) -> BNLayer:
    f32 = lambda a: np.array(a, dtype=np.float32)
    return BNLayer("bn", "bn", axis, eps, 0.99, beta is not None, gamma is not None, f32(mean), f32(var),
                   None if gamma is None else f32(gamma), None if beta is None else f32(beta))


def test_stackoverflow_46443196_got_is_what_keras_computes() -> None:
    """https://stackoverflow.com/questions/46443196 ("BatchNormalization layer in Keras gives
    unexpected output values"): center=False, [1, 5] gave [0.79519051, 4.17485714]."""
    layer = _layer([0.05885344], [0.91000736], [0.80644524], None, 0.001)
    result = explain(layer, parse_for_layer("1, 5", 1, -1), typed("0.79519051, 4.17485714"))
    assert (result.explanations[0].code, result.explanations[0].reproduces) == ("correct", True)


def test_stackoverflow_46443196_expected_is_plain_standardisation() -> None:
    """Same question: "should yield something like [-1, 1]"."""
    layer = _layer([0.05885344], [0.91000736], [0.80644524], None, 0.001)
    result = explain(layer, parse_for_layer("1, 5", 1, -1), typed("-1, 1"), kind="expected")
    assert (result.explanations[0].code, result.explanations[0].reproduces) == ("batch_standardisation", True)


def test_stackoverflow_47567655_got_is_what_keras_computes() -> None:
    """https://stackoverflow.com/questions/47567655 ("How BatchNormalization in keras works?"):
    an untrained layer on axis 1, [[0, 1], [2, 3]] gave [[0, 0.99950039], [1.99900079, 2.9985013]]."""
    layer = _layer([0, 0], [1, 1], [1, 1], [0, 0], 0.001, axis=1)
    x = parse_for_layer("[[0, 1], [2, 3]]", 2, 1)
    result = explain(layer, x, typed("[[0., 0.99950039], [1.99900079, 2.9985013]]"))
    assert (result.explanations[0].code, result.explanations[0].reproduces) == ("correct", True)


def test_stackoverflow_47567655_expected_is_plain_standardisation() -> None:
    """Same question: "the results are [-1, -1] and [1, 1]"."""
    layer = _layer([0, 0], [1, 1], [1, 1], [0, 0], 0.001, axis=1)
    x = parse_for_layer("[[0, 1], [2, 3]]", 2, 1)
    result = explain(layer, x, typed("[[-1, -1], [1, 1]]"), kind="expected")
    # gamma 1 and beta 0: standardising and training mode are the same computation here.
    reproducing = {entry.code for entry in result.explanations if entry.reproduces}
    assert result.explanations[0].code in ("batch_standardisation", "batch_statistics")
    assert {"batch_standardisation", "batch_statistics"} <= reproducing


def test_caffe_4885_torch_output_is_epsilon_1e5_against_keras_layer() -> None:
    """https://github.com/BVLC/caffe/issues/4885: Torch's SpatialBatchNormalization (eps 1e-5)
    with mean = var = 0.5 and gamma = beta = 1 turned 13, 19, 28 into 18.6775, 27.1627,
    39.8905. Loaded into a Keras layer (eps 1e-3), the explainer names the epsilon."""
    layer = _layer([0.5] * 3, [0.5] * 3, [1.0] * 3, [1.0] * 3, 0.001, axis=1)
    plane = [[13, 19, 19, 13], [19, 28, 28, 19], [19, 28, 28, 19], [13, 19, 19, 13]]
    x = parse_for_layer(json.dumps([[plane] * 3]), 3, 1)
    out = {13: "18.6775", 19: "27.1627", 28: "39.8905"}
    got = json.dumps([[[[out[v] for v in row] for row in plane]] * 3]).replace('"', "")
    result = explain(layer, x, typed(got))
    first = result.explanations[0]
    assert (first.code, first.reproduces) == ("epsilon_value", True), result.to_text()
    assert first.parameters["epsilon"] in (1e-5, 1.001e-5)


def test_timodenk_blog_tf_layers_inference() -> None:
    """https://timodenk.com/blog/tensorflow-batch-normalization/ ("Using TensorFlow's Batch
    Normalization Correctly"): a fresh tf.layers.batch_normalization turned [-10, 0, 10] into
    [-9.995004, 0, 9.995004] without training=True."""
    layer = _layer([0.0], [1.0], [1.0], [0.0], 0.001)
    result = explain(layer, parse_for_layer("-10, 0, 10", 1, -1), typed("-9.995004, 0, 9.995004"))
    assert (result.explanations[0].code, result.explanations[0].reproduces) == ("correct", True)


def test_timodenk_blog_tf_layers_training() -> None:
    """Same post: with training=True, [-1.2247357, 0, 1.2247357] (gamma 1 and beta 0, so the
    batch's statistics and plain standardisation are the same computation)."""
    layer = _layer([0.0], [1.0], [1.0], [0.0], 0.001)
    result = explain(layer, parse_for_layer("-10, 0, 10", 1, -1), typed("-1.2247357, 0, 1.2247357"))
    assert result.explanations[0].code in ("batch_statistics", "batch_standardisation")
    assert result.explanations[0].reproduces


def test_timodenk_blog_batch_of_one_collapses_to_beta() -> None:
    """Same post: training=True on the batch [-10] gave [[0.]], which is beta."""
    layer = _layer([0.0], [1.0], [1.0], [0.0], 0.001)
    result = explain(layer, parse_for_layer("-10", 1, -1), typed("0."))
    first = result.explanations[0]
    assert first.code in ("batch_statistics", "batch_standardisation") and first.reproduces
    assert "collapses to beta" in next(e.explanation for e in result.explanations if e.code == "batch_statistics")


# --- NaN and infinities in the values compared ----------------------------------------------------

#: An input with a NaN: Keras' output is NaN there, whatever the weights.
X_NAN = np.array([2.0, 3.0, np.nan])


def _typed8(values: np.ndarray) -> str:
    """As a person pastes them: 8 significant digits, ``nan`` as numpy prints it."""
    return ", ".join(f"{v:.8g}" for v in values)


def test_compare_values_keeps_nan_and_infinities_apart() -> None:
    # Worked by hand: pairs 0 and 3 are numbers (|1 - 1.5| = 0.5, |2 - 2.25| = 0.25); NaN-NaN and
    # inf-inf agree; NaN vs 3, 7 vs NaN, inf vs 4 and -inf vs inf are the four mismatches.
    candidate = np.array([1.0, np.nan, np.inf, 2.0, np.nan, 7.0, np.inf, -np.inf])
    given = np.array([1.5, np.nan, np.inf, 2.25, 3.0, np.nan, 4.0, np.inf])
    found = compare_values(candidate, given)
    assert found.max_abs_diff == 0.5
    assert found.mismatches == 4 and not found.only_nan
    assert found.note == ("1 NaN where you have a number, 1 infinity where you have a number, "
                          "1 number where you have NaN, 1 other non-finite mismatch")
    assert found.describe(3) == f"max |diff| 0.5; {found.note}"
    assert found.short(4) == "0.5 +4 non-finite"
    agreeing = compare_values(np.array([np.nan, np.inf, 1.0]), np.array([np.nan, np.inf, 1.0]))
    assert (agreeing.max_abs_diff, agreeing.mismatches, agreeing.note) == (0.0, 0, "")
    nothing_to_compare = compare_values(np.array([np.nan, np.nan]), np.array([1.0, 2.0]))
    assert np.isnan(nothing_to_compare.max_abs_diff) and nothing_to_compare.mismatches == 2
    assert nothing_to_compare.short(4) == "- +2 NaN"


def test_nan_where_keras_gives_nan_reproduces_with_a_finite_difference(seed: BNLayer) -> None:
    """The user's report: a NaN fed in comes out NaN, and they pasted that NaN."""
    m, v, g, b, e = _params(seed)
    with np.errstate(invalid="ignore"):
        keras = bn(X_NAN, m, v, g, b, e)
    text = _typed8(keras)
    assert text.endswith("nan")
    result = explain(seed, X_NAN.reshape(3, 1), typed(text))
    first = result.explanations[0]
    assert (first.code, first.reproduces) == ("correct", True), result.to_text()
    pasted = np.array([float(t) for t in text.split(", ")[:2]])
    assert first.max_abs_diff == pytest.approx(np.max(np.abs(keras[:2] - pasted)), abs=1e-12)
    assert np.isfinite(first.max_abs_diff) and first.difference.mismatches == 0
    assert "max |diff| inf" not in result.to_text()
    listed = [entry for entry in result.explanations if entry.code != "correct"]
    assert listed and all(np.isfinite(entry.max_abs_diff) for entry in listed)


def test_nan_on_one_side_only_never_reproduces(seed: BNLayer) -> None:
    m, v, g, b, e = _params(seed)
    with np.errstate(invalid="ignore"):
        keras = bn(X_NAN, m, v, g, b, e)
    # The user has a number where Keras gives NaN.
    pasted = np.array([keras[0], keras[1], 3.0])
    result = explain(seed, X_NAN.reshape(3, 1), typed(_typed8(pasted)))
    assert not result.explained, result.to_text()
    correct = next(entry for entry in result.explanations if entry.code == "correct")
    assert not correct.reproduces and correct.difference.mismatches == 1
    assert correct.difference.note == "1 NaN where you have a number"
    assert correct.max_abs_diff == pytest.approx(np.max(np.abs(keras[:2] - [float(f"{k:.8g}") for k in keras[:2]])),
                                                 abs=1e-12)
    # One mismatch beats three (the batch's statistics are NaN everywhere): correct is the closest.
    assert result.explanations[1].code == "correct"
    assert "1 NaN where you have a number" in result.explanations[0].explanation
    # And the other way round: the user has NaN where Keras gives a number.
    x = np.array([2.0, 3.0, 4.0])
    y = bn(x, m, v, g, b, e)
    result = explain(seed, x.reshape(3, 1), typed(f"{y[0]:.8g}, {y[1]:.8g}, nan"))
    assert not result.explained, result.to_text()
    correct = next(entry for entry in result.explanations if entry.code == "correct")
    assert (correct.reproduces, correct.difference.note) == (False, "1 number where you have NaN")


def test_moving_statistics_compare_nan_as_a_value(seed: BNLayer) -> None:
    batch = np.array([[1.0], [np.nan]])  # a NaN in the batch makes every moving statistic NaN
    result = explain_moving_update(seed, batch, None, typed("nan"))
    first = result.explanations[0]
    assert first.reproduces and (first.max_abs_diff, first.difference.mismatches) == (0.0, 0)
    result = explain_moving_update(seed, batch, None, typed("0.5"))
    assert not result.explained
    assert all(entry.difference.note == "1 NaN where you have a number" for entry in result.explanations)


def test_cli_reports_nan_mismatches_instead_of_an_infinite_difference() -> None:
    layer = open_model(SEED).find("bn")
    m, v, g, b, e = _params(layer)
    y = bn(np.array([2.0, 3.0]), m, v, g, b, e)
    agree = _bntui(str(SEED), "--layer", "bn", "--input", "2 3 nan", "--got", f"{y[0]:.8g}, {y[1]:.8g}, nan")
    assert agree.returncode == 0, agree.stderr
    assert "1. correct: what Keras computes (reproduces; max |diff| " in agree.stdout
    assert "inf" not in agree.stdout.split("1. correct")[1].splitlines()[0]
    out = _bntui(str(SEED), "--layer", "bn", "--input", "2 3 nan", "--got", f"{y[0]:.8g}, {y[1]:.8g}, 3", "--json")
    assert out.returncode == 0, out.stderr
    entries = json.loads(out.stdout)["explanations"]
    assert entries[0]["code"] == "unexplained" and not entries[0]["reproduces"]
    correct = next(entry for entry in entries if entry["code"] == "correct")
    assert isinstance(correct["max_abs_diff"], float) and correct["max_abs_diff"] < 1e-6
    assert (correct["non_finite_mismatches"], correct["non_finite_note"]) == (1, "1 NaN where you have a number")


# --- the command line -------------------------------------------------------------------------------


def _bntui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bntui", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def test_cli_expected_on_the_demo_ranks_batch_standardisation_first() -> None:
    out = _bntui("--layer", "bn", "--input", "1, 5", "--expected", "-1, 1", "--json")
    assert out.returncode == 0, out.stderr
    first = json.loads(out.stdout)["explanations"][0]
    assert (first["code"], first["reproduces"]) == ("batch_standardisation", True)


def test_cli_got_file_and_csv(tmp_path) -> None:  # type: ignore[no-untyped-def]
    layer = open_model(SEED).find("bn")
    m, v, g, b, _e = _params(layer)
    np.save(tmp_path / "y.npy", bn(X, m, v, g, b, 0.0))
    out = _bntui(str(SEED), "--layer", "bn", "--input", "1, 5", "--got-file", str(tmp_path / "y.npy"), "--csv")
    assert out.returncode == 0, out.stderr
    rows = out.stdout.splitlines()
    assert rows[0].startswith("rank,code,") and rows[1].startswith("1,epsilon_value,")


def test_cli_moving_variance_after_one_step(tmp_path) -> None:  # type: ignore[no-untyped-def]
    layer = open_model(SEED).find("bn")
    batch = np.array([[1.0], [5.0], [2.0], [0.0]])
    np.save(tmp_path / "x.npy", batch)
    # PyTorch's running_var update: momentum 1 - 0.99 = 0.01 and the unbiased batch variance.
    after = 0.99 * float(layer.moving_variance[0]) + 0.01 * batch.var(ddof=1)
    out = _bntui(str(SEED), "--layer", "bn", "--batch", str(tmp_path / "x.npy"),
                 "--got-moving-variance", f"{after:.6f}", "--json")
    assert out.returncode == 0, out.stderr
    first = json.loads(out.stdout)["explanations"][0]
    assert (first["code"], first["reproduces"]) == ("moving_update_unbiased", True)


@pytest.mark.parametrize("args, code, message", [
    (("--layer", "bn", "--got", "1, 2"), 2, "needs the input"),
    (("--input", "1, 5", "--got", "1, 2"), 2, "needs --layer"),
    (("--layer", "bn", "--input", "1, 5", "--got", "1", "--expected", "1"), 2, "only one of"),
    (("--layer", "bn", "--input", "1, 5", "--got", "1, x"), 1, "not a number"),
    (("--layer", "bn", "--input", "1, 5", "--got", "1, 2, 3"), 1, "3 values given"),
    (("--layer", "bn", "--input", "1, 5", "--got-file", "missing.npy"), 1, "no such file"),
    (("--layer", "bn", "--batch", "x.npy"), 2, "--got-moving-mean or --got-moving-variance"),
    (("--layer", "bn", "--input", "1, 5", "--got", "1, 2", "--got-moving-mean", "1"), 2, "give one"),
    (("--layer", "bn", "--input", "1, 5", "--got-moving-mean", "1, 2"), 1, "2 moving mean values given"),
])
def test_cli_bad_arguments_give_one_line(args: tuple[str, ...], code: int, message: str) -> None:
    out = _bntui(*args)
    assert out.returncode == code
    assert message in out.stderr and "Traceback" not in out.stderr
