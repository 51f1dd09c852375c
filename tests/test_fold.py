"""Fold preview on real Keras models: the folded layers against Keras running the original.

One Functional model holds every case as its own branch (Conv2D with and without bias,
DepthwiseConv2D, Dense, Conv1D, a conv with ReLU, a BN after Add, a conv whose output is also
a model output, a BN on the wrong axis), saved as ``.keras`` and as ``.h5`` so both weight
layouts are read. BN statistics are random, so every fold changes the numbers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bntui.cli.main import main
from bntui.core.analysis.fold import fold_layers
from bntui.core.feeding_layers import open_with_feeding
from bntui.core.numerics import term_scaled_ulp

pytestmark = pytest.mark.tensorflow

FOLDABLE = {
    "bn_conv_bias": ("conv_bias", "Conv2D", "img"),
    "bn_conv_nobias": ("conv_nobias", "Conv2D", "img"),
    "bn_dw": ("dw", "DepthwiseConv2D", "img"),
    "bn_dense": ("dense", "Dense", "vec"),
    "bn_conv1d": ("conv1d", "Conv1D", "seq"),
    "bn_tconv": ("tconv", "Conv2DTranspose", "img"),
    "bn_sep": ("sep", "SeparableConv2D", "img"),
}

#: Keras' creation order of each class's weights, as ``set_weights`` takes them.
ROLE_ORDER = ("kernel", "depthwise_kernel", "pointwise_kernel", "bias")

#: Folded against unfolded, both float32, in ulps at the sum of |terms| (|x|·|W'| + |b'|).
#: Each path rounds the window's products and partial sums (at most K = 27 terms here; the
#: blocked sums of oneDNN and Eigen err by a few half-ulps of that sum, not K of them), and
#: the unfolded path adds BN's x·s and + offset (two more half-ulps). 16 ulps leaves room
#: for that; observed: 1 to 5. A wrong fold (say without the mean) is off by millions.
FOLD_ULP = 16.0


def _keras() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    return keras


def _randomise_bn(layer: Any, rng: np.random.Generator, channels: int) -> None:
    gamma = rng.uniform(0.5, 2.0, channels) * rng.choice([-1.0, 1.0], channels)
    layer.set_weights([gamma, rng.normal(0, 0.5, channels), rng.normal(0, 0.5, channels),
                       rng.uniform(0.05, 2.0, channels)])


def _build(folder: Path) -> dict[str, Path]:
    keras = _keras()
    layers = keras.layers
    img, seq, vec = keras.Input((7, 7, 3), name="img"), keras.Input((9, 3), name="seq"), keras.Input((5,), name="vec")
    bn = {name: layers.BatchNormalization(name=name) for name in
          (*FOLDABLE, "bn_relu", "bn_add", "bn_shared", "bn_two_readers")}
    a = bn["bn_conv_bias"](layers.Conv2D(4, 3, name="conv_bias")(img))
    b = bn["bn_conv_nobias"](layers.Conv2D(4, 3, use_bias=False, name="conv_nobias")(img))
    c = bn["bn_dw"](layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(img))
    d = bn["bn_dense"](layers.Dense(6, name="dense")(vec))
    e = bn["bn_conv1d"](layers.Conv1D(5, 3, name="conv1d")(seq))
    f = bn["bn_relu"](layers.Conv2D(4, 3, activation="relu", name="conv_relu")(img))
    g = bn["bn_add"](layers.Add(name="add")([a, b]))
    t = bn["bn_tconv"](layers.Conv2DTranspose(3, 3, strides=2, name="tconv")(img))
    sep = bn["bn_sep"](layers.SeparableConv2D(5, 3, depth_multiplier=2, name="sep")(img))
    shared = layers.Conv2D(4, 3, name="conv_shared")(img)
    h = bn["bn_shared"](shared)
    two = layers.Conv2D(4, 3, name="conv_two")(img)
    read_twice = [bn["bn_two_readers"](two), layers.ReLU(name="relu_reader")(two)]
    axis = layers.BatchNormalization(axis=1, name="bn_axis")(layers.Conv2D(5, 3, name="conv_axis")(img))
    model = keras.Model([img, seq, vec], [c, d, e, f, g, h, shared, axis, t, sep, *read_twice])
    rng = np.random.default_rng(7)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            _randomise_bn(layer, rng, layer.get_weights()[0].shape[0])
        elif layer.get_weights():
            layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])
    paths = {"keras": folder / "fold.keras", "h5": folder / "fold.h5"}
    model.save(paths["keras"])
    model.save(paths["h5"])
    return paths


@pytest.fixture(scope="module")
def fold_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _build(tmp_path_factory.mktemp("fold"))


@pytest.fixture(scope="module")
def original(fold_files: dict[str, Path]) -> Any:
    return _keras().saving.load_model(fold_files["keras"])


def _inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"img": rng.normal(0, 1, (3, 7, 7, 3)).astype(np.float32),
            "seq": rng.normal(0, 1, (3, 9, 3)).astype(np.float32),
            "vec": rng.normal(0, 1, (3, 5)).astype(np.float32)}


@pytest.mark.parametrize("kind", ["keras", "h5"])
def test_feeding_kernels_are_the_models_own(fold_files: dict[str, Path], original: Any, kind: str) -> None:
    _, _, feeding = open_with_feeding(fold_files[kind])
    for bn_name, (conv_name, class_name, _) in FOLDABLE.items():
        found = feeding[bn_name]
        assert (found.name, found.class_name) == (conv_name, class_name)
        keras_weights = original.get_layer(conv_name).get_weights()
        assert len(found.weights) == len(keras_weights)
        for role, keras_value in zip([r for r in ROLE_ORDER if r in found.weights], keras_weights):
            np.testing.assert_array_equal(found.weights[role], keras_value)


@pytest.mark.parametrize("kind", ["keras", "h5"])
def test_folded_layers_match_keras_running_the_original(fold_files: dict[str, Path], original: Any, kind: str) -> None:
    keras = _keras()
    model, layers, feeding = open_with_feeding(fold_files[kind])
    report = {fold.path: fold for fold in fold_layers(model.path, layers, feeding).layers}
    inputs = _inputs(np.random.default_rng(3))
    for bn_name, (conv_name, class_name, input_name) in FOLDABLE.items():
        fold = report[bn_name]
        assert fold.foldable, fold.reason
        expected = np.asarray(keras.Model(original.inputs, original.get_layer(bn_name).output)(inputs, training=False))
        source = original.get_layer(conv_name)
        config = {**source.get_config(), "use_bias": True, "name": f"{conv_name}_folded"}
        folded_layer = type(source).from_config(config)
        x = inputs[input_name]
        folded_layer.build(x.shape)
        assert fold.folded is not None
        roles = [r for r in ROLE_ORDER if r in fold.folded]
        folded_layer.set_weights([fold.folded[r] for r in roles])
        got = np.asarray(folded_layer(x))
        abs_layer = type(source).from_config({**config, "name": f"{conv_name}_terms", "dtype": "float64"})
        abs_layer.build(x.shape)
        abs_layer.set_weights([np.abs(fold.folded[r]).astype(np.float64) for r in roles])
        terms = np.asarray(abs_layer(np.abs(x).astype(np.float64)))
        ulps = term_scaled_ulp(got, expected, terms)
        assert ulps.max() <= FOLD_ULP, (bn_name, ulps.max())


def test_refusals_say_why(fold_files: dict[str, Path]) -> None:
    model, layers, feeding = open_with_feeding(fold_files["keras"])
    reasons = {fold.path: fold.reason for fold in fold_layers(model.path, layers, feeding).layers if not fold.foldable}
    assert set(reasons) == {"bn_relu", "bn_add", "bn_shared", "bn_axis", "bn_two_readers"}
    assert "also feeds relu_reader" in str(reasons["bn_two_readers"])
    assert "relu activation" in str(reasons["bn_relu"])
    assert "follows Add" in str(reasons["bn_add"]) and "pre-activation" in str(reasons["bn_add"])
    assert "also a model output" in str(reasons["bn_shared"])
    assert "axis 1" in str(reasons["bn_axis"])


def test_tensorflow_check_counts_few_ulps_at_the_terms(fold_files: dict[str, Path]) -> None:
    from bntui.tf_bridge.fold_check import check_fold, make_input

    model, layers, feeding = open_with_feeding(fold_files["h5"])
    report = fold_layers(model.path, layers, feeding)
    for layer, fold in zip(layers, report.layers):
        if fold.foldable:
            check = check_fold(layer, feeding[layer.path], fold, make_input(feeding[layer.path], "random:1"))
            assert 0 < check.max_abs_diff and check.max_ulp <= FOLD_ULP, (layer.path, check)


def test_tiny_variance_channel_dominates_per_tensor_int8(tmp_path: Path) -> None:
    keras = _keras()
    img = keras.Input((6, 6, 2))
    conv = keras.layers.Conv2D(4, 3, name="conv")
    bn = keras.layers.BatchNormalization(name="bn")
    model = keras.Model(img, bn(conv(img)))
    rng = np.random.default_rng(5)
    conv.set_weights([rng.uniform(-1, 1, (3, 3, 2, 4)), np.zeros(4)])
    variance = np.array([1.0, 0.5, 2.0, 1e-6])
    bn.set_weights([np.ones(4), np.zeros(4), np.zeros(4), variance])
    path = tmp_path / "tiny.keras"
    model.save(path)
    m, layers, feeding = open_with_feeding(path)
    q = fold_layers(m.path, layers, feeding).layers[0].quantization
    assert q is not None
    # Independent figures: s = 1/sqrt(var + eps) with Keras' eps 1e-3; a channel's int8 range
    # is max |W·s| over its 18 weights; with one per-tensor scale it loses log2(top / own) bits.
    kernel = conv.get_weights()[0].astype(np.float64).reshape(-1, 4)
    ranges = np.abs(kernel / np.sqrt(variance + 1e-3)).max(axis=0)
    np.testing.assert_allclose(q.channel_ranges, ranges, rtol=1e-6)  # float32 kernel × float64 s
    np.testing.assert_allclose(q.bits_lost, np.log2(ranges.max() / ranges), atol=1e-5)
    assert q.worst_channels == (3,)
    assert q.median_bits_lost > 4  # s is ~31 for channel 3, ~1 for the others: about 5 bits
    assert q.per_channel_fixes
    assert np.median(q.bits_lost_before_fold) < 2


def test_cli_fold_json_and_export(fold_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "folded.npz"
    assert main([str(fold_files["keras"]), "--fold", "--json", "--fold-export", str(out)]) == 0
    data = json.loads(capsys.readouterr().out)
    by_path = {layer["path"]: layer for layer in data["layers"]}
    assert by_path["bn_dw"]["feeding_class"] == "DepthwiseConv2D" and by_path["bn_dw"]["foldable"]
    assert by_path["bn_dw"]["max_ulp"] is None  # no --fold-check: TensorFlow did not run
    assert set(by_path["bn_dense"]["quantization"]) >= {"per_tensor_range", "worst_channels", "bits_lost", "per_channel_fixes"}
    assert not by_path["bn_relu"]["foldable"] and by_path["bn_relu"]["reason"]
    with np.load(out) as saved:
        assert {"conv_bias/kernel", "conv_bias/bias", "conv_nobias/bias", "dw/depthwise_kernel"} <= set(saved.files)
        assert saved["conv_nobias/bias"].shape == (4,)


def test_cli_fold_usage_errors(fold_files: dict[str, Path], tmp_path: Path) -> None:
    for argv in (["--fold", "--fold-export", str(tmp_path / "x.txt")], ["--fold-check"],
                 ["--fold", "--fold-check", "gauss:1"], ["--fold", "--input", "1"]):
        with pytest.raises(SystemExit) as exc:
            main([str(fold_files["keras"]), *argv])
        assert exc.value.code == 2


def test_keras2_layout_folds_as_tf_keras_runs_it() -> None:
    """``conv/kernel:0`` names and ``axis: [3]``, in a file written by tf_keras itself."""
    tf_keras = pytest.importorskip("tf_keras", reason="tf-keras is installed by the README's test command")
    from conftest import SAMPLES

    path = SAMPLES / "keras2_convnet.h5"
    original = tf_keras.models.load_model(path, compile=False)
    model, layers, feeding = open_with_feeding(path)
    folds = fold_layers(model.path, layers, feeding).layers
    assert [fold.foldable for fold in folds] == [True, True]
    for fold in folds:
        conv, bn = original.get_layer(str(fold.feeding_layer)), original.get_layer(fold.path)
        for stored, keras_value in zip(feeding[fold.path].weights.values(), conv.get_weights()):
            np.testing.assert_array_equal(stored, keras_value)
        x = np.random.default_rng(9).normal(0, 1, (2, *original.input_shape[1:])).astype(np.float32)
        conv_input, expected = tf_keras.Model(original.input, [conv.input, bn.output])(x, training=False)
        folded_conv = type(conv).from_config({**conv.get_config(), "use_bias": True, "name": "folded"})
        folded_conv.build(conv_input.shape)
        assert fold.folded is not None
        folded_conv.set_weights([fold.folded["kernel"], fold.folded["bias"]])
        got = np.asarray(folded_conv(conv_input))
        terms_conv = type(conv).from_config({**conv.get_config(), "use_bias": True, "name": "terms", "dtype": "float64"})
        terms_conv.build(conv_input.shape)
        terms_conv.set_weights([np.abs(fold.folded["kernel"]).astype(np.float64), np.abs(fold.folded["bias"]).astype(np.float64)])
        terms = np.asarray(terms_conv(np.abs(np.asarray(conv_input, dtype=np.float64))))
        assert term_scaled_ulp(got, np.asarray(expected), terms).max() <= FOLD_ULP


def test_core_fold_and_port_modules_import_neither_tensorflow_nor_exporters() -> None:
    """The analyses and the feeding-layer reader stay numpy + h5py; onnx and safetensors load
    only when an export is written."""
    import subprocess
    import sys

    from conftest import ROOT

    code = ("import bntui.core.feeding_layers, bntui.core.analysis.fold, bntui.core.analysis.port, "
            "bntui.core.export_torch, bntui.core.export_onnx, bntui.cli.fold, bntui.cli.port, sys\n"
            "print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))")
    loaded = set(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.split())
    assert "h5py" in loaded and not loaded & {"tensorflow", "keras", "tf_keras", "textual", "onnx", "safetensors", "torch"}


def test_cli_fold_check_and_safetensors_export(fold_files: dict[str, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from safetensors.numpy import load_file

    out = tmp_path / "folded.safetensors"
    argv = [str(fold_files["h5"]), "--fold", "--layer", "bn_sep", "--fold-check", "random:4", "--fold-export", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "bn_sep: foldable into SeparableConv2D 'sep'" in text and "folding changes the output by at most" in text
    model, layers, feeding = open_with_feeding(fold_files["h5"], "bn_sep")
    folded = fold_layers(model.path, layers, feeding).layers[0].folded
    saved = load_file(str(out))
    assert folded is not None and set(saved) == {f"sep/{role}" for role in folded}
    for role, array in folded.items():
        np.testing.assert_array_equal(saved[f"sep/{role}"], array)


@pytest.mark.parametrize("name", ["nested.keras", "nested.h5"])
def test_nested_models_fold_with_their_own_kernels(name: str) -> None:
    """Sub-models: ``layers/sequential/layers/dense/vars`` in a .keras, ``encoder/enc_dense/kernel`` in an .h5."""
    from conftest import SAMPLES

    original = _keras().saving.load_model(SAMPLES / name, compile=False)
    model, layers, feeding = open_with_feeding(SAMPLES / name)
    folds = {fold.path: fold for fold in fold_layers(model.path, layers, feeding).layers}
    assert {path for path, fold in folds.items() if fold.foldable} == {"encoder/bn_1", "decoder/bn_1", "decoder/head/bn_head"}
    assert "Sequential 'decoder'" in str(folds["top_bn"].reason)
    for path in ("encoder/bn_1", "decoder/bn_1", "decoder/head/bn_head"):
        *containers, _ = str(folds[path].feeding_layer).split("/")
        layer = original
        for part in str(folds[path].feeding_layer).split("/"):
            layer = layer.get_layer(part)
        assert containers and list(feeding[path].weights) == ["kernel", "bias"]
        for stored, keras_value in zip(feeding[path].weights.values(), layer.get_weights()):
            np.testing.assert_array_equal(stored, keras_value)


def test_damaged_kernel_gives_one_line(fold_files: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """BN weights intact, a listed kernel missing: only the feeding-layer read can notice."""
    import shutil

    import h5py

    damaged = tmp_path / "damaged.h5"
    shutil.copy(fold_files["h5"], damaged)
    with h5py.File(damaged, "r+") as h5:
        group = h5["model_weights/conv_bias"]
        kernel = next(name for name in group.attrs["weight_names"] if "kernel" in str(name))
        del group[kernel.decode() if isinstance(kernel, bytes) else kernel]
    assert main([str(damaged), "--fold"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bntui: ") and err.count("\n") == 1 and "conv_bias/kernel" in err
