"""Drift on real Keras-written models: every number against Keras itself and numpy moments.

The reference for what reaches each BN layer is Keras: a multi-output model over the same
data whose outputs are the tensors feeding the BN calls (the inner layer of a custom block or
of a nested model applied by Keras where the outer graph has no tensor for it). Its outputs'
moments are taken by numpy in float64.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ROOT

from bntui.core import open_model
from bntui.core.analysis.drift import DriftResult, LayerDrift

pytestmark = pytest.mark.tensorflow

keras = pytest.importorskip("keras")


@keras.saving.register_keras_serializable(package="bntui_drift_test")
class Block(keras.layers.Layer):
    """A custom layer holding its own BN (``self.bn``), as users write residual blocks."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(4, name="block_dense")
        self.bn = keras.layers.BatchNormalization(name="block_bn")

    def call(self, x: Any) -> Any:
        return self.bn(self.dense(x))


def _randomise_bn(model: Any, rng: np.random.Generator) -> None:
    """Stored statistics unlike the data's, so every measure is far from trivial."""
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.moving_mean.shape[0]
            layer.set_weights([rng.uniform(0.5, 2.0, c), rng.normal(0, 1, c), rng.normal(0, 2, c),
                               rng.uniform(0.1, 3.0, c)])


@pytest.fixture(scope="module")
def keras3_case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A Keras 3 model with a nested Sequential's BN, a custom block's BN and a BN shared by two
    calls; saved as .keras; with the data and Keras' own tensors feeding each BN call."""
    folder = tmp_path_factory.mktemp("drift_k3")
    rng = np.random.default_rng(0)
    inputs = keras.Input((6,), name="x")
    h = keras.layers.Dense(4, name="d0")(inputs)
    sub = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="sd"),
                            keras.layers.BatchNormalization(name="bn_inner")], name="sub")
    h1 = sub(h)
    block = Block(name="block")
    h2 = block(h1)
    shared = keras.layers.BatchNormalization(name="shared_bn")
    h3 = keras.layers.Dense(4, name="d1")(shared(h2))
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(shared(h3)))
    _randomise_bn(model, rng)
    path = folder / "nested_custom_shared.keras"
    model.save(path)
    data = rng.normal(1.5, 2.0, (300, 6)).astype(np.float32)
    np.save(folder / "data.npy", data)
    reference = keras.Model(inputs, [h, h1, h2, h3])  # the outer graph's tensors, by Keras
    outer_h, outer_h1, outer_h2, outer_h3 = (np.asarray(t) for t in reference.predict(data, verbose=0))
    feeds = {
        ("sub/bn_inner", 0): np.asarray(sub.get_layer("sd")(outer_h)),
        ("block/bn", 0): np.asarray(block.dense(outer_h1)),
        ("shared_bn", 0): outer_h2,
        ("shared_bn", 1): outer_h3,
    }
    weights = {"sub/bn_inner": sub.get_layer("bn_inner").get_weights(), "block/bn": block.bn.get_weights(),
               "shared_bn": shared.get_weights()}
    return {"path": path, "data": folder / "data.npy", "feeds": feeds, "weights": weights, "folder": folder}


def _check_against_reference(entry: LayerDrift, x: np.ndarray, weights: list[np.ndarray]) -> None:
    gamma, beta, mean, variance = (np.asarray(w, np.float64) for w in weights)
    data = x.astype(np.float64)
    data_mean, data_var = data.mean(axis=0), data.var(axis=0)
    # The same float32 activations, but computed inside a tf.function here and by predict
    # there: kernels may sum in another order, a few float32 ulps per activation (2**-23
    # relative each). Means and variances of 300 such values then agree to ~1e-6 of the
    # values' size; 1e-5 leaves room and still catches any wrong tensor or a wrong axis.
    size = np.abs(data).max(axis=0)
    np.testing.assert_allclose(entry.moments.mean, data_mean, rtol=0, atol=1e-5 * size.max())
    np.testing.assert_allclose(entry.moments.variance, data_var, rtol=1e-5, atol=1e-5 * size.max() ** 2)
    np.testing.assert_array_equal(entry.moments.count, data.shape[0])
    # The range each channel saw (the output shift's ends); min and max are exact in any order,
    # so only the activations' own few-ulp differences remain.
    np.testing.assert_allclose(entry.moments.minimum, data.min(axis=0), rtol=0, atol=1e-5 * size.max())
    np.testing.assert_allclose(entry.moments.maximum, data.max(axis=0), rtol=0, atol=1e-5 * size.max())
    # Stored statistics: the layer must be paired with exactly the weights Keras holds.
    np.testing.assert_array_equal(entry.layer.moving_mean.astype(np.float64), mean)
    np.testing.assert_array_equal(entry.layer.gamma.astype(np.float64), gamma)
    eps = entry.layer.epsilon
    z = (data_mean - mean) / np.sqrt(variance + eps)
    np.testing.assert_allclose(entry.z, z, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(entry.variance_ratio, data_var / variance, rtol=1e-4)
    # Output shift: largest |BN with data stats - BN with moving stats| over the seen range,
    # by brute force with Keras' own formula at the range's ends and a grid between them.
    grid = np.linspace(data.min(axis=0), data.max(axis=0), 501)
    shift = np.abs(gamma * (grid - data_mean) / np.sqrt(data_var + eps) + beta
                   - (gamma * (grid - mean) / np.sqrt(variance + eps) + beta)).max(axis=0)
    np.testing.assert_allclose(entry.output_shift, shift, rtol=1e-4, atol=1e-4)


def test_every_call_of_nested_custom_and_shared_layers_matches_keras(keras3_case: dict[str, Any]) -> None:
    from bntui.tf_bridge.drift import measure_drift

    info = open_model(keras3_case["path"])
    result = measure_drift(info, str(keras3_case["data"]), batch_size=64)
    assert result.samples == 300 and result.batches == 5
    found = {(entry.path, entry.call): entry for entry in result.layers}
    assert set(found) == set(keras3_case["feeds"])
    assert {entry.calls for entry in result.layers if entry.path == "shared_bn"} == {2}
    for key, x in keras3_case["feeds"].items():
        _check_against_reference(found[key], x, keras3_case["weights"][key[0]])
    assert not any("not listed" in note for note in result.notes)


def test_batch_size_does_not_change_the_statistics(keras3_case: dict[str, Any]) -> None:
    from bntui.tf_bridge.drift import measure_drift

    info = open_model(keras3_case["path"])
    one = measure_drift(info, str(keras3_case["data"]), batch_size=300)
    many = measure_drift(info, str(keras3_case["data"]), batch_size=7)
    assert many.batches == 43
    for a, b in zip(sorted(one.layers, key=_key), sorted(many.layers, key=_key)):
        # Dense layers: each sample's values leave the graph as they are and float64 does the
        # rest, so only float64 rounding separates one batch from 43.
        np.testing.assert_allclose(a.moments.mean, b.moments.mean, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(a.moments.variance, b.moments.variance, rtol=1e-9)


def test_progress_is_reported_and_a_stop_request_ends_the_pass(keras3_case: dict[str, Any]) -> None:
    from bntui.tf_bridge.drift import DriftCancelled, measure_drift

    info = open_model(keras3_case["path"])
    seen: list[tuple[int, int]] = []
    measure_drift(info, str(keras3_case["data"]), batch_size=128, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(128, 300), (256, 300), (300, 300)]
    with pytest.raises(DriftCancelled, match="after 128 of 300 samples"):
        measure_drift(info, str(keras3_case["data"]), batch_size=128, stop=lambda: len(seen) > 3,
                      progress=lambda done, total: seen.append((done, total)))
    # After a pass, finished or stopped, every BN layer calls its class's own method again.
    from bntui.tf_bridge.drift import GeneratedSource, bn_instances, run_pass

    model = keras.models.load_model(keras3_case["path"])
    source = GeneratedSource("normal:0:10x6", (None, 6))
    for stop in (None, lambda: True):
        with pytest.raises(DriftCancelled) if stop else nullcontext():
            run_pass(model, source, stop=stop)
        assert all("call" not in vars(layer) for layer, _ in bn_instances(model))


def _key(entry: LayerDrift) -> tuple[str, int]:
    return entry.path, entry.call


@pytest.fixture(scope="module")
def conv_case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Rank-4 and rank-3 inputs, where the per-sample pooling path runs: a conv BN (channels
    last), a channels-first BN (axis 1, after a Permute), and a sequence BN of any length."""
    folder = tmp_path_factory.mktemp("drift_conv")
    rng = np.random.default_rng(5)
    image = keras.Input((9, 9, 3))
    conv = keras.layers.Conv2D(5, 3, name="conv")(image)
    first = keras.layers.Permute((3, 1, 2))(conv)
    last_bn = keras.layers.BatchNormalization(name="bn_last")(conv)
    first_bn = keras.layers.BatchNormalization(axis=1, name="bn_first")(first)
    images = keras.Model(image, [last_bn, first_bn])
    sequence = keras.Input((None, 4))
    seq_conv = keras.layers.Conv1D(6, 3, name="seq_conv")(sequence)
    sequences = keras.Model(sequence, keras.layers.BatchNormalization(name="bn_seq")(seq_conv))
    for model in (images, sequences):
        _randomise_bn(model, rng)
    images.save(folder / "images.keras")
    sequences.save(folder / "sequences.keras")
    x_images = rng.normal(2.0, 3.0, (70, 9, 9, 3)).astype(np.float32)
    x_sequences = rng.normal(-1.0, 0.5, (40, 25, 4)).astype(np.float32)
    np.save(folder / "images.npy", x_images)
    np.save(folder / "sequences.npy", x_sequences)
    conv_out, first_out = keras.Model(image, [conv, first]).predict(x_images, verbose=0)
    seq_out = keras.Model(sequence, seq_conv).predict(x_sequences, verbose=0)
    return {
        "images": (folder / "images.keras", folder / "images.npy"),
        "sequences": (folder / "sequences.keras", folder / "sequences.npy"),
        # Per channel, all values the layer saw, as (values, channels).
        "feeds": {"bn_last": conv_out.reshape(-1, 5), "bn_first": np.moveaxis(first_out, 1, -1).reshape(-1, 5),
                  "bn_seq": seq_out.reshape(-1, 6)},
        "weights": {"bn_last": last_bn, "bn_first": first_bn},
        "models": (images, sequences),
    }


def test_conv_channels_first_and_any_length_sequences_match_keras(conv_case: dict[str, Any]) -> None:
    from bntui.tf_bridge.drift import measure_drift

    images, sequences = conv_case["models"]
    weights = {"bn_last": images.get_layer("bn_last").get_weights(),
               "bn_first": images.get_layer("bn_first").get_weights(),
               "bn_seq": sequences.get_layer("bn_seq").get_weights()}
    found: dict[str, LayerDrift] = {}
    for key in ("images", "sequences"):
        path, data = conv_case[key]
        result = measure_drift(open_model(path), str(data), batch_size=16)
        found |= {entry.path: entry for entry in result.layers}
    assert set(found) == {"bn_last", "bn_first", "bn_seq"}
    for name, x in conv_case["feeds"].items():
        _check_against_reference(found[name], x, weights[name])


@pytest.fixture(scope="module")
def tf_keras_case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tf.keras 2 nested .h5 (a Sequential inside a Functional) that Keras 3 cannot load."""
    tf_keras = pytest.importorskip("tf_keras")
    folder = tmp_path_factory.mktemp("drift_tfk")
    rng = np.random.default_rng(1)
    inputs = tf_keras.Input((5,), name="features")
    encoder = tf_keras.Sequential([tf_keras.layers.Dense(3, name="dense_a", input_shape=(5,)),
                                   tf_keras.layers.BatchNormalization(name="bn_1")], name="encoder")
    top = tf_keras.layers.BatchNormalization(name="top_bn")
    model = tf_keras.Model(inputs, top(encoder(inputs)), name="tfk_nested")
    for bn in (encoder.get_layer("bn_1"), top):
        bn.set_weights([rng.uniform(0.5, 2, 3), rng.normal(0, 1, 3), rng.normal(0, 2, 3), rng.uniform(0.1, 3, 3)])
    path = folder / "tfk_nested.h5"
    model.save(path)
    data = rng.uniform(-3, 3, (120, 5)).astype(np.float32)
    np.save(folder / "data.npy", data)
    reference = tf_keras.Model(inputs, [encoder.get_layer("dense_a")(inputs), encoder(inputs)])
    dense_out, encoder_out = reference.predict(data, verbose=0)
    return {"path": path, "data": folder / "data.npy",
            "feeds": {("encoder/bn_1", 0): dense_out, ("top_bn", 0): encoder_out},
            "weights": {"encoder/bn_1": encoder.get_layer("bn_1").get_weights(), "top_bn": top.get_weights()}}


def test_tf_keras_only_file_runs_through_the_checked_fallback(tf_keras_case: dict[str, Any]) -> None:
    from bntui.tf_bridge.drift import measure_drift

    with pytest.raises(Exception):  # noqa: B017 - the premise: Keras 3 itself rejects this file
        keras.models.load_model(tf_keras_case["path"], compile=False)
    result = measure_drift(open_model(tf_keras_case["path"]), str(tf_keras_case["data"]), batch_size=50)
    found = {(entry.path, entry.call): entry for entry in result.layers}
    assert set(found) == set(tf_keras_case["feeds"])
    for key, x in tf_keras_case["feeds"].items():
        _check_against_reference(found[key], x, tf_keras_case["weights"][key[0]])


# -- flags on models made to show them -----------------------------------------------------


@pytest.fixture(scope="module")
def flag_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Never trained; half-updated; trained on N(0, 1) data; a channel fed a constant."""
    folder = tmp_path_factory.mktemp("drift_flags")
    rng = np.random.default_rng(2)

    def plain(name: str, momentum: float = 0.99) -> Any:
        inputs = keras.Input((3,))
        return keras.Model(inputs, keras.layers.BatchNormalization(name="bn", momentum=momentum)(inputs), name=name)

    paths = {}
    fresh = plain("fresh")
    fresh.save(folder / "fresh.keras")
    paths["fresh"] = folder / "fresh.keras"
    half = plain("half")
    half.get_layer("bn").set_weights([np.ones(3), np.zeros(3), np.array([4.0, 5.0, 6.0]), np.ones(3)])
    half.save(folder / "half.keras")
    paths["half"] = folder / "half.keras"
    trained = plain("trained", momentum=0.5)
    trained.compile(optimizer="sgd", loss="mse")
    x_train = rng.normal(0.0, 1.0, (512, 3)).astype(np.float32)
    trained.fit(x_train, x_train, batch_size=64, epochs=3, verbose=0)
    trained.save(folder / "trained.keras")
    paths["trained"] = folder / "trained.keras"
    np.save(folder / "like_training.npy", rng.normal(0.0, 1.0, (256, 3)).astype(np.float32))
    np.save(folder / "shifted.npy", rng.normal(5.0, 3.0, (256, 3)).astype(np.float32))
    constant = rng.normal(0.0, 1.0, (64, 3)).astype(np.float32)
    constant[:, 1] = 0.25
    np.save(folder / "constant_channel.npy", constant)
    return {**paths, "folder": folder}


def _drift(path: Path, data: Path | str) -> DriftResult:
    from bntui.tf_bridge.drift import measure_drift

    return measure_drift(open_model(path), str(data), batch_size=64)


def test_flags_on_models_made_to_show_them(flag_models: dict[str, Any]) -> None:
    folder = flag_models["folder"]
    never = _drift(flag_models["fresh"], folder / "shifted.npy").layers[0]
    assert [flag.code for flag in never.flags] == ["initial_statistics"] and never.drifted_channels == 3
    half = _drift(flag_models["half"], folder / "like_training.npy").layers[0]
    assert [flag.code for flag in half.flags] == ["half_updated"]
    # Trained (momentum 0.5, 24 updates: the start weighs 0.5**24) on N(0, 1): that data fits,
    # the shifted data does not, on every channel (mean 5 is |z| ~ 5, variance 9 is ratio ~ 9).
    fits = _drift(flag_models["trained"], folder / "like_training.npy").layers[0]
    assert fits.drifted_channels == 0 and fits.flags == () and fits.max_abs_z < 0.5
    drifted = _drift(flag_models["trained"], folder / "shifted.npy").layers[0]
    assert drifted.drifted_channels == 3 and drifted.max_abs_z > 3
    assert drifted.forget_steps == 7 and all(steps is not None and steps > 0 for steps in drifted.steps_to_fit)
    dead = _drift(flag_models["trained"], folder / "constant_channel.npy").layers[0]
    assert [(flag.code, flag.channels) for flag in dead.flags] == [("dead_channels", (1,))]


def test_generated_data_with_a_shape_and_an_image_folder(flag_models: dict[str, Any],
                                                         tmp_path: Path) -> None:
    import tensorflow as tf

    generated = _drift(flag_models["fresh"], "normal:3:500x3")
    assert generated.samples == 500 and generated.batches == 8
    counted = _drift(flag_models["fresh"], "normal:3:500")  # only the sample count: the same data
    assert counted.samples == 500
    np.testing.assert_array_equal(counted.layers[0].moments.mean, generated.layers[0].moments.mean)
    # standard normal data: means within 5 standard errors (5 / sqrt(500) ~ 0.22) of 0.
    assert np.abs(generated.layers[0].moments.mean).max() < 0.23
    # Images: Keras-free reference by TensorFlow's own decode and resize, then numpy.
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.BatchNormalization(name="bn")(inputs))
    model.save(tmp_path / "image_bn.keras")
    rng = np.random.default_rng(7)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((8, 8), (16, 12), (5, 9))]
    folder = tmp_path / "images"
    folder.mkdir()
    for index, image in enumerate(images):
        (folder / f"img{index}.png").write_bytes(tf.io.encode_png(image).numpy())
    (folder / "notes.txt").write_text("not an image")
    from bntui.tf_bridge.drift import measure_drift

    result = measure_drift(open_model(tmp_path / "image_bn.keras"), str(folder), batch_size=2, scale=1 / 255)
    expected = np.stack([tf.image.resize(tf.cast(image, tf.float32), (8, 8)).numpy() for image in images]) / 255
    pixels = expected.reshape(-1, 3).astype(np.float64)
    entry = result.layers[0]
    assert result.samples == 3 and entry.moments.count == 3 * 64
    # float32 pixel values scaled in float32 here and in float64 there: ulp-level, 1e-6.
    np.testing.assert_allclose(entry.moments.mean, pixels.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(entry.moments.variance, pixels.var(axis=0), rtol=1e-5)
    assert any("pixels are used as they are" in note for note in result.notes)
    assert any("1/255" in note or "0.00392157" in note for note in result.notes)


# -- the command line ----------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bntui", *args], capture_output=True, text=True, cwd=ROOT, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The CLI in this process (TensorFlow is already loaded here, so it takes a second)."""
    from bntui.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _digest(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def test_cli_json_and_export_never_overwrite_and_never_touch_the_model(
        flag_models: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, data = flag_models["trained"], flag_models["folder"] / "shifted.npy"
    before = _digest(model)
    target = tmp_path / "stats.npz"
    code, out, err = _main(capsys, str(model), "--drift", str(data), "--json", "--drift-export", str(target))
    assert code == 0, err
    report = json.loads(out)
    assert report["samples"] == 256 and report["batches"] == 8
    layer = report["layers"][0]
    assert layer["path"] == "bn" and layer["drifted_channels"] == 3
    assert err.strip() == f"bntui: re-estimated statistics (AdaBN) written to {target}"
    code, out, err = _main(capsys, str(model), "--drift", str(data), "--drift-export", str(target))
    assert code == 0 and "max |z|" in out
    assert err.strip().endswith("stats-1.npz")  # the second export did not overwrite the first
    assert _digest(model) == before
    with np.load(target, allow_pickle=False) as stats:
        x = np.load(data).astype(np.float64)
        np.testing.assert_allclose(stats["bn/moving_mean"], x.mean(axis=0), rtol=1e-9)
        np.testing.assert_allclose(stats["bn/moving_variance"], x.var(axis=0), rtol=1e-9)
        assert json.loads(str(stats["summary"]))["layers"][0]["path"] == "bn"
    code, out, _ = _main(capsys, str(model), "--drift", str(data), "--csv")
    assert code == 0 and out.splitlines()[0].startswith("path,call,channel,data_mean")


def test_cli_wrong_shape_names_the_models_input_shape(flag_models: dict[str, Any],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _main(capsys, str(flag_models["fresh"]), "--drift", "normal:0:10x4")
    assert code == 1 and err.count("\n") == 1 and out == ""
    assert "(None, 3)" in err and "\x1b" not in err


def test_cli_refuses_bad_arguments_in_one_line_before_loading() -> None:
    bad_spec = _cli("--drift", "normal:x")
    assert bad_spec.returncode == 1 and bad_spec.stderr.count("\n") == 1
    assert "seed" in bad_spec.stderr
    missing = _cli("--drift", "no_such_data.npy")
    assert missing.returncode == 1 and "no such file or folder" in missing.stderr
    for args in (["--drift", "zeros", "--scale", "import os"], ["--drift", "zeros", "--batch-size", "0"],
                 ["--scale", "2"], ["--drift", "zeros", "--layer", "bn"]):
        usage = _cli(*args)
        assert usage.returncode == 2, args


def test_progress_bar_on_a_terminal_and_ctrl_c_stops_cleanly(flag_models: dict[str, Any]) -> None:
    """stderr is a pseudo-terminal: the progress bar shows; SIGINT once it moves ends the run
    with exit code 130 and one line, no traceback."""
    import pty
    import re
    import select

    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "bntui", str(flag_models["fresh"]), "--drift", "normal:0:2000000x3",
         "--batch-size", "1"], cwd=ROOT, stdout=subprocess.PIPE, stderr=terminal, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"})
    os.close(terminal)
    seen = b""
    deadline = time.monotonic() + 120
    while b"samples" not in seen and time.monotonic() < deadline and process.poll() is None:
        if select.select([controller], [], [], 0.5)[0]:
            seen += os.read(controller, 65536)
    assert b"samples" in seen, seen[-500:]
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    while select.select([controller], [], [], 0.5)[0]:
        try:
            chunk = os.read(controller, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(controller)
    text = re.sub(r"\x1b\[[0-?]*[ -/]*[@-~]", "", seen.decode(errors="replace"))
    assert process.returncode == 130 and out == ""
    messages = [line for line in text.replace("\r", "\n").splitlines() if line.startswith("bntui:")]
    assert len(messages) == 1 and messages[0].startswith("bntui: drift interrupted after "), text[-500:]
    assert "Traceback" not in text
