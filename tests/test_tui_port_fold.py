"""The Port and Fold tabs (issue 15's TUI) on a model Keras 3 writes at test time.

``conv`` -> ``bn_fold``: a Conv2D feeding a BN whose channel 2 has a tiny moving variance, so
its scale s is about 25 times the others' (it dominates a per-tensor int8 scale) and it moves
most when PyTorch's epsilon replaces Keras'. ``conv_relu`` -> ``bn_relu``: a ReLU inside the
conv, so that BN cannot be folded. Every expected number is computed here with numpy from the
weights Keras holds; the ONNX export runs in onnxruntime against Keras' own output.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SAMPLES
from tui_helpers import screen_of, settle, shown_text

from bntui.tui.app import make_app
from bntui.tui.panels.fold import FoldPanel
from bntui.tui.panels.port import PortPanel
from bntui.tui.widgets.channel_rows_table import ChannelRowsTable
from bntui.tui.widgets.fold_summary import FoldSummary
from bntui.tui.widgets.port_summary import PortSummary

GAMMA = np.array([1.0, 1.5, 0.8, 1.2])
BETA = np.array([0.1, -0.2, 0.3, 0.0])
MEAN = np.array([0.5, -0.25, 0.05, 1.0])
VARIANCE = np.array([1.0, 0.5, 1e-6, 2.0])
EPSILON = 1e-3  # Keras' default
#: float32 relative rounding: 2^-24 per operation; the folded constants take two or three
#: roundings and are shown with 8 significant digits (5e-9 relative): 1e-6 covers both.
FLOAT32_RTOL = 1e-6


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    rng = np.random.default_rng(7)
    image = keras.Input((6, 6, 3), name="image")
    conv = keras.layers.Conv2D(4, 3, name="conv")
    bn_fold = keras.layers.BatchNormalization(name="bn_fold")
    conv_relu = keras.layers.Conv2D(4, 3, activation="relu", name="conv_relu")
    bn_relu = keras.layers.BatchNormalization(name="bn_relu")
    net = keras.Model(image, [bn_fold(conv(image)), bn_relu(conv_relu(image))])
    conv.set_weights([rng.normal(0, 0.3, (3, 3, 3, 4)), rng.normal(0, 0.1, 4)])
    bn_fold.set_weights([GAMMA, BETA, MEAN, VARIANCE])
    path = tmp_path_factory.mktemp("portfold") / "deploy.keras"
    net.save(path)
    x = rng.normal(0, 1, (2, 4, 4, 4)).astype(np.float32)  # bn_fold's input shape: (N, 4, 4, C)
    kernel, bias = (np.asarray(w, dtype=np.float64) for w in conv.get_weights())
    return {"path": path, "kernel": kernel, "bias": bias, "x": x,
            "bn_output": np.asarray(bn_fold(x, training=False), dtype=np.float64),
            "bn_weights": [np.asarray(w) for w in bn_fold.get_weights()]}


def table_rows(table: ChannelRowsTable) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(index)] for index in range(table.row_count)]


def scale() -> np.ndarray:
    return GAMMA / np.sqrt(VARIANCE + EPSILON)


@pytest.mark.tensorflow
async def test_port_tab_and_exports(model: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # exports go to the current folder
    app = make_app(str(model["path"]), verify=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen_of(app).jump_to("bn_fold")
        await pilot.press("t")
        await settle(app, pilot)
        panel = screen_of(app).query_one(PortPanel)
        summary = shown_text(panel.query_one(PortSummary))
        # A 4-D input (the conv's output) is BatchNorm2d; PyTorch's momentum is 1 - Keras' 0.99.
        assert "nn.BatchNorm2d(4, eps=0.001, momentum=0.01, affine=True" in summary
        assert "bn_fold.running_var" in summary and "moving_variance" in summary
        assert "x.permute(0, 3, 1, 2)" in summary
        assert "input_mean" in summary and "input_var" in summary

        # The epsilon shift at x = mean ± 3·sqrt(var), as the issue defines it.
        shift = 3 * GAMMA * np.sqrt(VARIANCE) * np.abs(1 / np.sqrt(VARIANCE + EPSILON) - 1 / np.sqrt(VARIANCE + 1e-5))
        rows = table_rows(panel.query_one(ChannelRowsTable))
        assert [int(row[0]) for row in rows] == list(np.argsort(-shift))
        assert int(rows[0][0]) == 2
        s = scale()
        for row in rows:
            c = int(row[0])
            np.testing.assert_allclose(float(row[1]), shift[c], rtol=5e-4)  # shown with 4 digits
            np.testing.assert_allclose([float(row[2]), float(row[3])], [s[c], BETA[c] - MEAN[c] * s[c]],
                                       rtol=FLOAT32_RTOL, atol=FLOAT32_RTOL * abs(MEAN[c] * s[c]))
        assert f"worst channels: 2 ({shift[2]:.3g})" in summary

        for title in ("Port: export this layer as PyTorch safetensors", "Port: export this layer as ONNX",
                      "Port: export this layer as PyTorch safetensors"):
            next(command for command in panel.commands() if command.title == title).run()
            await settle(app, pilot)
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == ["bn_fold-1.safetensors", "bn_fold-1.safetensors.json", "bn_fold.onnx",
                       "bn_fold.safetensors", "bn_fold.safetensors.json"]

    from safetensors.numpy import load_file

    tensors = load_file(tmp_path / "bn_fold.safetensors")
    gamma, beta, mean, variance = model["bn_weights"]
    assert sorted(tensors) == ["bn_fold.bias", "bn_fold.num_batches_tracked", "bn_fold.running_mean",
                               "bn_fold.running_var", "bn_fold.weight"]
    for key, expected in (("weight", gamma), ("bias", beta), ("running_mean", mean), ("running_var", variance)):
        np.testing.assert_array_equal(tensors[f"bn_fold.{key}"], expected)

    import onnxruntime

    session = onnxruntime.InferenceSession(str(tmp_path / "bn_fold.onnx"), providers=["CPUExecutionProvider"])
    x = model["x"]
    (out,) = session.run(None, {"bn_fold.X": np.ascontiguousarray(np.moveaxis(x, -1, 1))})
    # Both sides compute x * s + offset (in some order) in float32: a few roundings, each at most
    # half an ulp of the largest term summed, |x * s|, |mean * s| or |beta|. 8 ulps of that bound them.
    terms = np.maximum(np.abs(x) * np.abs(scale()), np.abs(MEAN * scale()) + np.abs(BETA))
    tolerance = 8 * 2.0**-24 * terms
    assert np.all(np.abs(np.moveaxis(out, 1, -1) - model["bn_output"]) <= tolerance)


@pytest.mark.tensorflow
async def test_fold_tab(model: dict[str, Any], tmp_path: Path) -> None:
    app = make_app(str(model["path"]), verify=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen_of(app).jump_to("bn_fold")
        await settle(app, pilot)
        panel = screen_of(app).query_one(FoldPanel)
        table = panel.query_one(ChannelRowsTable)
        assert table.row_count == 0  # hidden: the kernel is not read until the tab is shown
        await pilot.press("f")
        await settle(app, pilot)
        summary = shown_text(panel.query_one(FoldSummary))
        assert "bn_fold: foldable into Conv2D 'conv'" in summary
        assert "kernel: shape (3, 3, 3, 4), float32 (scaled by s)" in summary
        assert "TensorFlow check of the fold: off" in summary

        s = scale()
        folded = model["kernel"] * s  # W' = W · s per output channel
        ranges = np.abs(folded).reshape(-1, 4).max(axis=0)
        bits_lost = np.log2(ranges.max() / ranges)
        before = np.abs(model["kernel"]).reshape(-1, 4).max(axis=0)
        folded_bias = (model["bias"] - MEAN) * s + BETA
        rows = table_rows(table)
        assert [int(row[0]) for row in rows] == list(np.argsort(-ranges))
        assert int(rows[0][0]) == 2  # the tiny variance channel sets the per-tensor scale
        for row in rows:
            c = int(row[0])
            # The panel folds into the float32 kernel: ranges and biases carry float32 rounding.
            np.testing.assert_allclose(float(row[1]), ranges[c], rtol=FLOAT32_RTOL)
            # Bits are shown with 3 significant digits (half a unit: 0.5 % relative, or 5e-4 near 0).
            np.testing.assert_allclose(float(row[2]), bits_lost[c], rtol=5e-3, atol=5e-4)
            np.testing.assert_allclose(float(row[3]), np.log2(before.max() / before[c]), rtol=5e-3, atol=5e-4)
            np.testing.assert_allclose(float(row[5]), folded_bias[c], rtol=FLOAT32_RTOL,
                                       atol=FLOAT32_RTOL * (abs(MEAN[c] * s[c]) + abs(BETA[c])))
        assert "channels dominating the per-tensor scale: 2" in summary
        assert "per-channel quantization removes this loss" in summary

        first = panel.export_folded(tmp_path)
        again = panel.export_folded(tmp_path)
        assert (first.name, again.name) == ("bn_fold-folded.npz", "bn_fold-folded-1.npz")  # type: ignore[union-attr]
        with np.load(first) as saved:  # type: ignore[arg-type]
            assert sorted(saved.files) == ["conv/bias", "conv/kernel"]
            np.testing.assert_allclose(saved["conv/kernel"], folded, rtol=FLOAT32_RTOL)
            np.testing.assert_allclose(saved["conv/bias"], folded_bias, rtol=FLOAT32_RTOL,
                                       atol=FLOAT32_RTOL * float(np.max(np.abs(MEAN * s) + np.abs(BETA))))

        screen_of(app).jump_to("bn_relu")
        await settle(app, pilot)
        summary = shown_text(panel.query_one(FoldSummary))
        assert "bn_relu: NOT foldable (fed by Conv2D 'conv_relu')" in summary
        assert "relu activation before the BN" in summary
        assert table.row_count == 0

        # Both layers are read by now: a quick switch shows each from the cache, the last one stays.
        screen_of(app).jump_to("bn_fold")
        screen_of(app).jump_to("bn_relu")
        await settle(app, pilot)
        assert "bn_relu: NOT foldable" in shown_text(panel.query_one(FoldSummary))


@pytest.mark.tensorflow
@pytest.mark.slow
async def test_fold_tab_runs_tensorflows_check(model: dict[str, Any]) -> None:
    """With TensorFlow on, the tab runs Keras' conv + BN against the folded conv: the line says
    by how many term-scaled ulps folding changes the output (a few, for a correct fold)."""
    app = make_app(str(model["path"]), verify=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen_of(app).jump_to("bn_fold")
        await pilot.press("f")
        await settle(app, pilot)
        await settle(app, pilot)  # the check's worker posts when TensorFlow has answered
        summary = shown_text(screen_of(app).query_one(FoldPanel).query_one(FoldSummary))
        assert "TensorFlow: folding changes this output by at most" in summary, summary
        ulps = float(summary.split("at most ")[1].split(" ulps")[0])
        assert 0 <= ulps <= 16  # the fold tests' bound: a few float32 roundings of the summed terms


def test_fold_snapshot(snap_compare: Any) -> None:
    """The Fold tab of the sample conv net (written by Keras 3): bn1 folds into conv1."""

    async def run_before(pilot: Any) -> None:
        await settle(pilot.app, pilot)
        await pilot.press("f")
        await settle(pilot.app, pilot)

    app = make_app(str(SAMPLES / "convnet_trained.keras"), verify=False)
    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)
