"""The Data tab (issue 13's TUI): run data through the model, the layers ranked by drift, the
per-channel plots, the progress bar and Esc, and a layer's own input from the same data.

The model is written by Keras at test time with moving statistics set far from what the data
gives. Every expected number comes from Keras itself: a second model whose outputs are the two
BN layers' inputs, run on the same samples, and numpy's moments of those activations.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLES
from textual.widgets import Input, ProgressBar, Static, TabbedContent
from tui_helpers import screen_of, settle

from bntui.core.analysis.drift import CallStatistics, DriftResult, Moments, analyse
from bntui.core.numbers import fmt
from bntui.core.reader import open_model
from bntui.tui.app import make_app
from bntui.tui.panels.data import DataPanel, worst_channel
from bntui.tui.tensorflow_process import DRIFT_INPUT_SAMPLES
from bntui.tui.widgets.data_spec_bar import parse_scale
from bntui.tui.widgets.drift_plot import ChannelDriftPlot
from bntui.tui.widgets.drift_table import DriftTable

SAMPLES_IN_DATA = 100
SCALE_TEXT, SCALE = "1/2", 0.5
EPSILON = 1e-3
#: Moving statistics per layer: bn_a's means sit 5 stored deviations off the data, bn_b's
#: variances are 100 times the data's: both drift, bn_a most (|z| about 5 against about 0.1).
MOVING = {"bn_a": (np.array([5.0, -5.0, 0.0]), np.array([1.0, 1.0, 1.0])),
          "bn_b": (np.zeros(2), np.full(2, 100.0))}


@pytest.fixture(scope="module")
def drift_case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A Keras 3 model (4 -> dense 3 -> bn_a -> dense 2 -> bn_b), its data as a .npy file, and
    Keras' own activations at each BN input for the scaled data."""
    from bntui.tf_bridge.keras_loader import import_keras

    keras = import_keras()
    folder = tmp_path_factory.mktemp("data_view")
    inputs = keras.Input((4,))
    dense_a = keras.layers.Dense(3, name="dense_a")(inputs)
    bn_a = keras.layers.BatchNormalization(name="bn_a", epsilon=EPSILON)(dense_a)
    dense_b = keras.layers.Dense(2, name="dense_b")(bn_a)
    outputs = keras.layers.BatchNormalization(name="bn_b", epsilon=EPSILON)(dense_b)
    model = keras.Model(inputs, outputs, name="drifting")
    for name, (mean, variance) in MOVING.items():
        layer = model.get_layer(name)
        gamma, beta = np.ones(mean.size), np.zeros(mean.size)
        layer.set_weights([gamma, beta, mean, variance])
    path = folder / "drifting.keras"
    model.save(path)
    x = np.random.default_rng(3).normal(2.0, 3.0, (SAMPLES_IN_DATA, 4)).astype(np.float32)
    data = folder / "x.npy"
    np.save(data, x)
    probe = keras.Model(inputs, [dense_a, dense_b])
    activations = [np.asarray(a, dtype=np.float64)
                   for a in probe.predict(x * np.float32(SCALE), batch_size=32, verbose=0)]
    return {"model": path, "data": data, "activations": dict(zip(("bn_a", "bn_b"), activations))}


def status(panel: DataPanel) -> str:
    return str(panel.query_one("#data-status", Static).render())


@pytest.mark.tensorflow
@pytest.mark.slow
async def test_run_rank_plot_and_steps_with_the_layers_own_input(drift_case: dict[str, object]) -> None:
    """Typed data runs once; the table ranks the layers by |z| with Keras' numbers; the plots
    follow the cursor; Enter opens the layer's Steps with what reached it on the first samples."""
    activations: dict[str, np.ndarray] = drift_case["activations"]  # type: ignore[assignment]
    app = make_app(str(drift_case["model"]), verify=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = screen_of(app)
        await pilot.press("r")
        panel = screen.query_one(DataPanel)
        assert screen.query_one(TabbedContent).active == "data"
        spec = panel.query_one("#data-spec", Input)
        assert screen.focused is spec  # no result yet: the keyboard is in the data box
        spec.value = str(drift_case["data"])
        panel.query_one("#data-scale", Input).value = SCALE_TEXT
        await pilot.press("enter")
        assert panel.running
        await settle(app, pilot)
        result = panel.result
        assert result is not None and not panel.running
        assert (result.samples, result.batches) == (SAMPLES_IN_DATA, 4)  # 100 samples, batches of 32
        bar = panel.query_one(ProgressBar)
        assert (bar.progress, bar.total) == (SAMPLES_IN_DATA, SAMPLES_IN_DATA)

        # Keras' activations and numpy's moments: the float32 activations of two batchings may
        # differ in their last bits (about 1e-7 relative), and the statistics are float64
        # sums of 100 of them, so 1e-6 relative bounds every difference with room to spare.
        expected_z = {}
        for entry in result.layers:
            mean, variance = MOVING[entry.path]
            act = activations[entry.path]
            np.testing.assert_allclose(entry.moments.mean, act.mean(axis=0), rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(entry.moments.variance, act.var(axis=0), rtol=1e-6)
            expected_z[entry.path] = (act.mean(axis=0) - mean) / np.sqrt(variance + EPSILON)
            np.testing.assert_allclose(entry.z, expected_z[entry.path], rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(entry.variance_ratio, act.var(axis=0) / variance, rtol=1e-6)
        ranked = sorted(expected_z, key=lambda path: -np.abs(expected_z[path]).max())
        table = panel.query_one(DriftTable)
        assert [entry.path for entry in result.layers] == ranked == ["bn_a", "bn_b"]
        assert table.row_count == 2
        first_row = [str(cell) for cell in table.get_row_at(0)]
        assert first_row[1] == "bn_a" and first_row[3] == fmt(result.layers[0].max_abs_z)
        assert "2 BN layer calls" in status(panel)

        # The keyboard left the data box for the table; the cursor sits on the layer shown in
        # the tree (bn_a, the first), and the plots show that layer.
        assert screen.focused is table
        z_plot, ratio_plot = panel.query(ChannelDriftPlot)
        assert z_plot.entry is result.layers[0] and ratio_plot.entry is result.layers[0]
        assert "bn_a" in str(z_plot.render())
        await pilot.press("down")
        await pilot.pause()
        assert z_plot.entry is result.layers[1] and ratio_plot.entry is result.layers[1]
        np.testing.assert_array_equal(ratio_plot.values(), result.layers[1].variance_ratio)

        # Enter: bn_b's Steps, at its worst channel, with the input Keras gives it on the
        # first samples of the same (scaled) data (and the values box, typed in before, emptied).
        screen.query_one("#values", Input).value = "1, 2"
        await pilot.press("enter")
        await settle(app, pilot)
        selection = screen.selection
        assert selection.layer is not None and selection.layer.path == "bn_b"
        assert selection.channel == worst_channel(result.layers[1])
        source = selection.input
        assert source is not None and source.kind == "captured" and source.captured_at == "bn_b"
        assert source.values is not None
        np.testing.assert_allclose(source.values, activations["bn_b"][:DRIFT_INPUT_SAMPLES], rtol=1e-6, atol=1e-6)
        assert screen.query_one(TabbedContent).active == "steps"
        assert screen.computation is not None and screen.computation.layer.path == "bn_b"
        assert screen.query_one("#values", Input).value == ""  # no old typed values beside the captured input

        # The captured input belongs to bn_b: at bn_a the Steps panel says so instead of using it.
        screen.jump_to("bn_a")
        await settle(app, pilot)
        assert screen.computation is None
        assert "belongs to that layer" in str(screen.steps.query_one("#input-line", Static).render())

        # Back in the Data tab the cursor follows the tree to bn_a; Enter takes bn_a's own input
        # (the TensorFlow process reuses the model it loaded, its layers unwrapped again).
        await pilot.press("r")
        assert screen.focused is table and table.current is result.layers[0]
        await pilot.press("enter")
        await settle(app, pilot)
        source = screen.selection.input
        assert source is not None and source.captured_at == "bn_a" and source.values is not None
        np.testing.assert_allclose(source.values, activations["bn_a"][:DRIFT_INPUT_SAMPLES], rtol=1e-6, atol=1e-6)
        assert screen.computation is not None and screen.computation.layer.path == "bn_a"


@pytest.mark.tensorflow
@pytest.mark.slow
async def test_esc_stops_a_run_and_the_next_one_works(drift_case: dict[str, object]) -> None:
    """A long run shows progress, Esc stops it between batches with nothing measured; a bad
    spec is one line; the TensorFlow process still serves the next run."""
    app = make_app(str(drift_case["model"]), verify=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = screen_of(app)
        await pilot.press("r")
        panel = screen.query_one(DataPanel)
        spec = panel.query_one("#data-spec", Input)
        spec.value = "normal:0:5000000x4"  # minutes of batches: it can only end by Esc
        await pilot.press("enter")
        bar = panel.query_one(ProgressBar)
        for _ in range(600):  # TensorFlow's import and the model's load come first
            await pilot.pause(0.1)
            if bar.progress:
                break
        assert 0 < bar.progress < 5_000_000 and bar.total == 5_000_000
        assert "Esc stops" in status(panel)
        await pilot.press("escape")
        await settle(app, pilot)
        assert not panel.running and panel.result is None
        assert status(panel).startswith("Stopped normal:0:5000000x4")

        spec.value = "no_such_data.npy"
        await pilot.press("enter")
        await settle(app, pilot)
        assert panel.result is None and "no_such_data.npy: no such file" in status(panel)
        assert status(panel).count("no_such_data.npy") == 1  # named once, not prefixed again

        # Nothing runs: Esc has nothing to cancel. A cancel that reaches the TensorFlow process
        # after its run ended (here: one for the stopped run, sent again) never stops the next.
        assert not app.tensorflow.cancel_drift()
        stopped_request = 0
        app.tensorflow._connection.send(("cancel", (stopped_request,)))  # type: ignore[union-attr]
        spec.value = "zeros:64x4"
        await pilot.press("enter")
        await settle(app, pilot)
        assert panel.result is not None and panel.result.samples == 64


async def test_a_bad_scale_is_refused_before_tensorflow() -> None:
    app = make_app(str(SAMPLES / "nested.keras"), verify=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = screen_of(app)
        await pilot.press("r")
        panel = screen.query_one(DataPanel)
        panel.query_one("#data-spec", Input).value = "zeros"
        panel.query_one("#data-scale", Input).value = "1/0"
        await pilot.press("enter")
        await settle(app, pilot)
        assert not panel.running and not app.tensorflow.started
        assert "scale '1/0'" in status(panel)
        panel.query_one("#data-spec", Input).value = ""
        await pilot.press("enter")
        assert "type the data to run" in status(panel)


async def test_escape_leaves_the_data_box_before_any_run_and_q_then_quits() -> None:
    """Before a first result (or after a refused run) Esc must still take the keyboard out of the
    box: otherwise q is typed into it and the app cannot be left with the keys the footer shows."""
    app = make_app(str(SAMPLES / "nested.keras"), verify=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = screen_of(app)
        await pilot.press("r")
        spec = screen.query_one(DataPanel).query_one("#data-spec", Input)
        assert app.focused is spec
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.focused, Input)
        await pilot.press("q")
        await pilot.pause()
        assert spec.value == "" and not app.is_running


def test_scale_is_a_number_or_a_quotient_never_code() -> None:
    assert parse_scale("1/255") == pytest.approx(1 / 255, rel=1e-15)
    assert parse_scale(" 0.5 ") == 0.5 and parse_scale("2e-3") == 0.002 and parse_scale("") == 1.0
    for bad in ("1/0", "__import__('os')", "2*3", "nan/"):
        assert parse_scale(bad) is None


def snapshot_result() -> DriftResult:
    """A drift of the committed nested model's two layers, from numpy activations (no TensorFlow):
    top_bn's channel 1 sees a shifted mean, encoder/bn_1 a wider spread."""
    model = open_model(SAMPLES / "keras2_nested.h5")
    rng = np.random.default_rng(7)
    calls = []
    for layer in model.layers:
        std = np.sqrt(layer.moving_variance.astype(np.float64))
        x = layer.moving_mean + std * rng.standard_normal((256, layer.channels))
        if layer.path == "top_bn":
            x[:, 1] += 5 * std[1]
        else:
            x *= 3.0
        calls.append(CallStatistics(layer=layer, moments=Moments.of(x, -1)))
    return analyse(calls, samples=256, batches=8, notes=("data: numpy draws for this snapshot",))


def test_data_view_snapshot(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """The Data tab with a result: ranked table, z and variance ratio of the first layer."""

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot.app, pilot)
        await pilot.press("r")
        panel = pilot.app.screen.query_one(DataPanel)
        panel.query_one("#data-spec", Input).value = "normal:0:256x4"
        panel.result = snapshot_result()
        await pilot.pause()
        panel.query_one(DriftTable).focus()
        await pilot.pause()

    app = make_app(str(SAMPLES / "keras2_nested.h5"), verify=False)
    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


async def test_export_writes_the_drift_as_csv(tmp_path: Path) -> None:
    """``e`` on the Data tab writes every layer and channel at full precision, never overwriting."""
    app = make_app(str(SAMPLES / "keras2_nested.h5"), verify=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        panel = screen_of(app).query_one(DataPanel)
        panel.result = snapshot_result()
        await pilot.pause()
        first, second = panel.export("csv", tmp_path) + panel.export("csv", tmp_path)
    assert (first.name, second.name) == ("bn-drift.csv", "bn-drift-1.csv")
    lines = first.read_text().splitlines()
    assert lines[0].startswith("path,call,channel,data_mean") and len(lines) == 1 + 3 + 3


async def test_plots_label_whole_channels_and_the_z_limits() -> None:
    """64 channels: five whole-number channel ticks (plotext's own fell between channels, at
    -0.5, 15.5, ...), and the z plot labels -3, 0 and 3 where the limit lines are drawn."""
    from dataclasses import replace

    from textual.app import App, ComposeResult

    from bntui.core.model import BNLayer

    rng = np.random.default_rng(3)
    layer = BNLayer(name="wide", path="wide", axis=-1, epsilon=1e-3, momentum=0.99, center=True, scale=True,
                    moving_mean=np.zeros(64, np.float32), moving_variance=np.ones(64, np.float32),
                    gamma=np.ones(64, np.float32), beta=np.zeros(64, np.float32))
    x = rng.standard_normal((500, 64)) + np.linspace(-4.4, 6.2, 64)
    entry = analyse([CallStatistics(layer=layer, moments=Moments.of(x, -1))], samples=500, batches=1).layers[0]

    class Plots(App[None]):
        def compose(self) -> ComposeResult:
            yield ChannelDriftPlot("z", id="z")

    app = Plots()
    async with app.run_test(size=(100, 30)) as pilot:
        plot = app.query_one(ChannelDriftPlot)
        plot.entry = replace(entry)
        await pilot.pause()
        plot.render()  # what the widget draws: plotext's canvas, as text without its colours
        text = re.sub(r"\x1b\[[0-9;]*m", "", plot.plt.build())
    labels = text.splitlines()[-2]  # the channel tick labels, above the axis title
    assert labels.split() == ["0", "16", "32", "47", "63"]
    y_labels = {found.group(1) for line in text.splitlines() if (found := re.match(r"\s*(-?\d+)[┤├]", line))}
    assert {"-3", "0", "3"} <= y_labels and "-5" in y_labels and "7" in y_labels
