"""What a new user tripped over in the TUI (issue 10, items 1-10), each as a Pilot flow.

The model is written at test time in the Keras 2 HDF5 layout that ResNet50's ``.h5`` has:
three ResNet-named layers (128, 64 and 256 channels) and fourteen ``batch_normalization_K``
layers, every one with a zero moving variance in channel 1, so every layer has a finding.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import SEED
from legacy_writer import bn_config, bn_weights, write_legacy
from textual import events
from textual.widgets import Input, TabbedContent
from tui_helpers import screen_of, settle

from bntui.core.numbers import fmt
from bntui.tui.app import make_app
from bntui.tui.panels import StepsPanel
from bntui.tui.screens.channel_dialog import ChannelDialog
from bntui.tui.screens.error_screen import ErrorScreen
from bntui.tui.screens.help_screen import HelpScreen
from bntui.tui.screens.npy_dialog import NpyDialog
from bntui.tui.state import InputSource
from bntui.tui.widgets.channel_card import ChannelCard
from bntui.tui.widgets.diagnostics_list import DiagnosticsList
from bntui.tui.widgets.input_bar import InputBar
from bntui.tui.widgets.layer_tree import LayerTree, elide_middle
from bntui.tui.widgets.model_summary import ModelSummary
from bntui.tui.widgets.parameter_table import ParameterTable

RESNET = [("conv2_block1_1_bn", 128), ("conv2_block1_2_bn", 64), ("conv4_block3_2_bn", 256)]
PLAIN = [(f"batch_normalization_{k}" if k else "batch_normalization", 4) for k in range(14)]
LAYERS = RESNET + PLAIN


@pytest.fixture(scope="module")
def resnet_like(tmp_path_factory: pytest.TempPathFactory) -> Path:
    groups = []
    for seed, (name, channels) in enumerate(LAYERS):
        weights = bn_weights(name, channels, seed)
        weights[-1][1][1] = 0.0  # moving_variance of channel 1: a zero_variance finding in every layer
        groups.append((name, weights))
    config = {"class_name": "Sequential", "config": {"name": "resnet_like",
                                                     "layers": [bn_config(name) for name, _ in LAYERS]}}
    return write_legacy(tmp_path_factory.mktemp("tui") / "resnet_like.h5", groups, config=config, version="2.3.1")


def leaf_labels(tree: LayerTree) -> dict[str, str]:
    """Each BN layer's path and the label its leaf shows."""
    labels: dict[str, str] = {}
    nodes = list(tree.root.children)
    while nodes:
        node = nodes.pop()
        nodes.extend(node.children)
        if node.data is not None:
            labels[node.data] = str(node.label)
    return labels


def read_weights(path: Path, name: str) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as h5:
        group = h5["model_weights"][name][name]
        return {key.split(":")[0]: np.array(group[key], dtype=np.float64) for key in group}


# -- 1. the layer tree -------------------------------------------------------------------------


def test_elide_middle_keeps_both_ends() -> None:
    assert elide_middle("batch_normalization_13", 12) == "batch_…on_13"
    assert elide_middle("short", 12) == "short"
    assert len(elide_middle("conv2_block1_1_bn", 9)) == 9


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
async def test_tree_never_cuts_counts_and_marks_every_layer(resnet_like: Path, size: tuple[int, int]) -> None:
    app = make_app(str(resnet_like), verify=False)
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        tree = screen_of(app).query_one(LayerTree)
        labels = leaf_labels(tree)
        assert set(labels) == {name for name, _ in LAYERS}
        for name, channels in LAYERS:
            label = labels[name]
            assert label.endswith(f" {channels} ch ⚠"), label  # whole count, and the mark on all 17
            assert len(label) <= tree.scrollable_content_region.width
        names = [label.rsplit(" ", 3)[0] for label in labels.values()]
        assert len(set(names)) == len(names)  # batch_normalization_1 .. _13 stay apart
        if size[0] == 80:  # "[" narrows the list by hand
            await pilot.press("left_square_bracket", "left_square_bracket")
            await pilot.pause()
            labels = leaf_labels(tree)
        # now too narrow for the longest name: shortened in the middle, both ends kept
        assert labels["batch_normalization_13"].startswith("batch") and "…" in labels["batch_normalization_13"]
        assert labels["batch_normalization_13"].split(" ")[0].endswith("_13")
        for name, channels in LAYERS:
            assert labels[name].endswith(f" {channels} ch ⚠")


# -- 2. the Parameters tab ---------------------------------------------------------------------


def table_lines(table: ParameterTable) -> list[str]:
    return [table.render_line(y).text for y in range(table.scrollable_content_region.height)]


async def test_parameters_last_channel_visible_channel_column_fixed_enter_chooses(resnet_like: Path) -> None:
    app = make_app(str(resnet_like), verify=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        screen = screen_of(app)
        await pilot.press("a", "end")
        table = screen.query_one(ParameterTable)
        lines = table_lines(table)
        assert any(line.startswith("127 ") for line in lines), lines[-3:]  # above the scrollbar
        await pilot.press(*["right"] * 12)
        assert table.scroll_x > 0
        rows = [line for line in table_lines(table)[1:] if line.strip()]
        assert rows and all(line.split()[0].isdigit() for line in rows)  # the channel stays in view
        assert table_lines(table)[0].startswith("channel")
        await pilot.press("home", "down", "down", "down", "enter")
        await pilot.pause()
        assert screen.channel == 3
        assert screen.query_one(TabbedContent).active == "steps"


# -- 3. focus -----------------------------------------------------------------------------------


async def test_escape_leaves_the_input_and_l_returns_to_the_tree() -> None:
    app = make_app(str(SEED), verify=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = screen_of(app)
        await pilot.press("i", "q", "i")
        assert isinstance(screen.focused, Input) and screen.focused.value == "qi"  # typed, not quit
        footer = {binding.description for _key, (_node, binding, enabled, _tip) in screen.active_bindings.items()
                  if enabled and binding.show}
        assert "Leave input" in footer and "Quit" not in footer  # the way out is on screen
        await pilot.press("escape")
        assert isinstance(screen.focused, LayerTree)
        await pilot.press("i", "backspace", "backspace", *"1, 5", "enter")
        await settle(app, pilot)
        assert screen.computation is not None and not isinstance(screen.focused, (Input, LayerTree))
        await pilot.press("l")
        assert isinstance(screen.focused, LayerTree)


async def test_key_typed_right_after_i_reaches_the_input() -> None:
    app = make_app(str(SEED), verify=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        # Both keys queued before the app handles either, as a fast typist's keys arrive.
        app.post_message(events.Key("i", "i"))
        app.post_message(events.Key("7", "7"))
        await settle(app, pilot)
        assert screen_of(app).query_one(InputBar).input.value == "7"


# -- 4. the channel before any input -------------------------------------------------------------


async def test_channel_card_before_input_and_go_to_channel(resnet_like: Path) -> None:
    weights = read_weights(resnet_like, "conv2_block1_1_bn")
    app = make_app(str(resnet_like), verify=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = screen_of(app)
        await pilot.press("g")
        assert isinstance(app.screen, ChannelDialog)
        await pilot.press("9", "9", "9", "enter")
        assert isinstance(app.screen, ChannelDialog)  # out of range: said, not taken
        await pilot.press("backspace", "backspace", "backspace", "3", "0", "enter")
        await pilot.pause()
        assert screen.channel == 30
        card = str(screen.query_one(ChannelCard).render())
        k = 30
        var_eps = weights["moving_variance"][k] + 1e-3
        s = weights["gamma"][k] / np.sqrt(var_eps)  # float64, written out independently
        for value in (weights["gamma"][k], weights["beta"][k], weights["moving_mean"][k],
                      weights["moving_variance"][k], var_eps, s):
            assert fmt(value) in card
        assert "y = " in card and f"sqrt({fmt(var_eps)})" in card
        await pilot.press("g", "1", "enter")
        await pilot.pause()
        assert "⚠ moving variance is exactly 0" in str(screen.query_one(ChannelCard).render())  # channel 1's


async def test_demo_starts_with_the_seed_question_answered() -> None:
    app = make_app(str(SEED), verify=False, initial_input="1, 5")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        computation = screen_of(app).computation
        assert computation is not None
        # gamma * (x - mean) / sqrt(var + eps) + beta with the seed layer's float64 weights
        gamma, beta, mean, var = 0.22297101, 0.49253803, 0.36868709, 0.41429576
        expected = gamma * (np.array([1.0, 5.0]) - mean) / np.sqrt(var + 1e-3) + beta
        # the README's weights are the file's to 8 digits: 1e-7 relative covers that
        np.testing.assert_allclose(computation.inference.output.ravel(), expected, rtol=1e-7)


# -- 5. stale and hidden state --------------------------------------------------------------------


async def test_input_error_clears_the_steps_and_the_input_is_named(tmp_path: Path) -> None:
    app = make_app(str(SEED), verify=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = screen_of(app)
        line = screen.query_one("#input-line")
        await pilot.press("i", *"1, 5", "enter")
        await settle(app, pilot)
        assert screen.computation is not None and "input typed: 1, 5" in str(line.render())
        screen.query_one(InputBar).input.value = ""
        await pilot.press("i", *"1, x", "enter")
        await settle(app, pilot)
        assert screen.computation is None  # the old steps are gone, not shown as current
        assert "not computed" in str(line.render()) and screen.query_one(InputBar).error
        np.save(tmp_path / "x.npy", np.array([[2.0], [3.0]]))
        await pilot.press("escape", "o")
        assert isinstance(app.screen, NpyDialog)
        app.screen.query_one(Input).value = str(tmp_path / "x.npy")  # typing it key by key is slow
        await pilot.press("enter")
        await settle(app, pilot)
        assert screen.computation is not None and f"input from {tmp_path / 'x.npy'}" in str(line.render())


async def test_a_captured_input_stays_with_its_layer(resnet_like: Path) -> None:
    app = make_app(str(resnet_like), verify=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = screen_of(app)
        captured = np.arange(128.0).reshape(1, 128)
        # what the Steps panel hands the screen once TensorFlow has captured the input
        screen.post_message(StepsPanel.InputCaptured(InputSource.captured("conv2_block1_1_bn", "zeros", captured)))
        await settle(app, pilot)
        assert screen.computation is not None
        assert "captured at conv2_block1_1_bn" in str(screen.query_one("#input-line").render())
        screen.jump_to("batch_normalization_3")
        await settle(app, pilot)
        assert screen.computation is None
        assert "belongs to that layer" in str(screen.query_one("#input-line").render())
        screen.jump_to("conv2_block1_1_bn")
        await settle(app, pilot)
        assert screen.computation is not None
        np.testing.assert_array_equal(screen.computation.x, captured)


# -- 7. diagnostics -------------------------------------------------------------------------------


async def test_diagnostics_grouped_and_enter_after_d_jumps_to_steps(resnet_like: Path) -> None:
    app = make_app(str(resnet_like), verify=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = screen_of(app)
        listing = screen.query_one(DiagnosticsList)
        headings = [str(listing.get_option_at_index(i).prompt) for i in range(listing.option_count)
                    if str(listing.get_option_at_index(i).prompt).startswith("⚠")]
        zero = [heading for heading in headings if "exactly 0" in heading]
        assert len(zero) == 1 and "17 layers" in zero[0]  # one group, not 17 entries
        screen.jump_to("batch_normalization_5")
        await settle(app, pilot)
        await pilot.press("d", "enter")
        await settle(app, pilot)
        assert screen.query_one(TabbedContent).active == "steps"
        assert screen.bn_layer is not None and screen.bn_layer.path == LAYERS[0][0]
        assert screen.channel == 1


# -- 6 and 8. input -------------------------------------------------------------------------------------


async def test_doubled_comma_and_empty_npy_are_refused(tmp_path: Path) -> None:
    app = make_app(str(SEED), verify=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = screen_of(app)
        await pilot.press("i", *"1,,2", "enter")
        await settle(app, pilot)
        assert screen.computation is None and "comma" in screen.query_one(InputBar).error
        np.save(tmp_path / "empty.npy", np.zeros((0, 1)))
        await pilot.press("escape", "o")
        app.screen.query_one(Input).value = str(tmp_path / "empty.npy")
        await pilot.press("enter")
        await settle(app, pilot)
        assert "holds no values" in screen.query_one(InputBar).error
        screen.query_one(InputBar).input.value = ""
        assert not isinstance(screen.focused, Input)
        await pilot.press("i", *"1e-400", "enter")  # item 6: said, not silently 0
        await settle(app, pilot)
        assert screen.computation is not None
        assert "1e-400 is below float64's smallest number and was read as 0" in str(
            screen.query_one("#input-line").render())


# -- 9. 80x24 --------------------------------------------------------------------------------------


async def test_small_terminal_summary_help_and_parameters(resnet_like: Path) -> None:
    app = make_app(str(resnet_like), verify=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        screen = screen_of(app)
        summary = screen.query_one(ModelSummary)
        assert len(str(summary.render())) <= summary.size.width and "17" in str(summary.render())
        await pilot.press("a")
        table = screen.query_one(ParameterTable)
        assert table.digits == 5 and len(table.row_cells(0)[1].replace("-", "").replace(".", "")) <= 10
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        box = app.screen.query_one("#help-box").region
        assert box.right <= 80 and "Esc closes" in str(app.screen.query_one("#help-hint").render())


# -- 10. small things ------------------------------------------------------------------------------


async def test_palette_finds_a_query_with_spaces(resnet_like: Path) -> None:
    app = make_app(str(resnet_like), verify=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+p", *"conv4 block3 2")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await settle(app, pilot)
        assert screen_of(app).bn_layer.path == "conv4_block3_2_bn"


async def test_exports_carry_epsilon_and_warnings_and_all_layers(resnet_like: Path, tmp_path: Path) -> None:
    app = make_app(str(resnet_like), verify=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = screen_of(app)
        [parameters] = screen.action_export("csv", tmp_path)
        everything = screen.panel("parameters").export_all(tmp_path)
        await pilot.pause()
    rows = list(csv.DictReader(io.StringIO(parameters.read_text())))
    assert float(rows[1]["epsilon"]) == 1e-3 and "zero_variance" in rows[1]["warnings"]
    assert everything is not None
    table = list(csv.DictReader(io.StringIO(everything.read_text())))
    assert len(table) == sum(channels for _name, channels in LAYERS)
    assert {row["layer"] for row in table} == {name for name, _ in LAYERS}
    assert all("zero_variance" in row["warnings"] for row in table if row["channel"] == "1")


async def test_unreadable_file_exits_with_1(tmp_path: Path) -> None:
    bad = tmp_path / "broken.h5"
    bad.write_bytes(SEED.read_bytes()[:2000])
    app = make_app(str(bad), verify=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, ErrorScreen)
        await pilot.press("q")
    assert app.return_code == 1
