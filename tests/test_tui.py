"""Pilot flows on real sample files: what a user does, and what reaches the screen."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLES, SEED
from rich.console import Console
from textual.widgets import Input, TabbedContent
from tui_helpers import settle

from bntui.tui.app import BntuiApp, make_app
from bntui.tui.screens.error_screen import ErrorScreen
from bntui.tui.screens.help_screen import HelpScreen
from bntui.tui.screens.main_screen import MainScreen
from bntui.tui.widgets.input_bar import InputBar
from bntui.tui.widgets.layer_tree import LayerTree
from bntui.tui.widgets.parameter_table import ParameterTable
from bntui.tui.widgets.step_table import StepTable

SIZE = (120, 40)


def step_text(app: BntuiApp) -> str:
    """What the step table shows, as plain text."""
    table = app.screen.query_one(StepTable)
    console = Console(width=table.size.width or 100, record=True, file=io.StringIO())
    console.print(table.render())
    return console.export_text()


async def type_values(app: BntuiApp, pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    if not isinstance(app.screen.focused, Input):  # there, "i" would be typed
        await pilot.press("i")
    await pilot.press(*text)
    await pilot.press("enter")
    await settle(app, pilot)


async def test_seed_values_reach_the_screen() -> None:
    app = make_app(str(SEED))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, MainScreen) and screen.bn_layer is not None
        await type_values(app, pilot, "1, 5")
        text = step_text(app)
        for number in ("0.71096909", "2.09494853", "0.71096905", "2.0949485", "7.1866315"):
            assert number in text
        assert "(5 - 0.36868709" not in text and "5 - 0.36868709 = 4.6313129" in text
        # training side: batch mean 3, variance 4
        assert "4 + 0.001 = 4.001" in text
        assert screen.computation is not None
        np.testing.assert_allclose(screen.computation.training.mean, [3.0])
        # TensorFlow's own check, computed in its process, reaches the line under the steps
        assert str(screen.query_one("#verification").status).startswith("TensorFlow agrees")


async def test_pick_a_nested_layer_and_move_between_channels() -> None:
    app = make_app(str(SAMPLES / "nested.keras"), verify=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        tree = screen.query_one(LayerTree)
        tree.focus()
        await pilot.press("down", "down")
        await settle(app, pilot)
        assert screen.bn_layer.path == "decoder/bn_1"
        await type_values(app, pilot, "1, 2, 3")
        assert screen.channel == 0
        await pilot.press("n")
        await pilot.press("n")
        assert screen.channel == 2
        await pilot.press("n")
        assert screen.channel == 0
        await pilot.press("p")
        assert screen.channel == 2
        await pilot.pause()
        assert screen.query_one(StepTable).channel == 2
        expected = screen.computation.steps(2, "inference")[-1].values[0]
        assert f"{expected:.8g}" in step_text(app)


async def test_switch_modes() -> None:
    app = make_app(str(SEED), verify=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await type_values(app, pilot, "1, 5")
        assert "TRAINING" in step_text(app) and "INFERENCE" in step_text(app)
        await pilot.press("m")
        await pilot.pause()
        assert app.screen.mode == "inference" and "TRAINING" not in step_text(app)
        await pilot.press("m")
        await pilot.pause()
        text = step_text(app)
        assert app.screen.mode == "training" and "INFERENCE" not in text
        assert "0.26959489" in text  # gamma * (-2 / sqrt(4.001)) + beta


async def test_bad_input_shows_inline_message_and_keeps_running() -> None:
    app = make_app(str(SAMPLES / "nested.h5"), verify=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await type_values(app, pilot, "1, two")
        bar = app.screen.query_one(InputBar)
        assert "'two' is not a number" in bar.error
        assert bar.has_class("-has-error")
        assert app.screen.focused is bar.input  # back in the box, to correct it
        bar.input.value = ""
        await type_values(app, pilot, "[[1, 2]]")
        assert "has 2 entries on axis -1; the layer has 3 channels" in bar.error
        bar.input.value = ""
        await type_values(app, pilot, "0.5")
        assert bar.error == "" and app.screen.computation is not None


async def test_export_writes_new_files_and_never_overwrites(tmp_path: Path) -> None:
    app = make_app(str(SEED), verify=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await type_values(app, pilot, "1, 5")
        first = app.screen.action_export("csv", tmp_path)
        second = app.screen.action_export("csv", tmp_path)
        json_files = app.screen.action_export("json", tmp_path)
        await pilot.pause()
    assert [p.name for p in first] == ["bn-steps.csv", "bn-parameters.csv"]
    assert [p.name for p in second] == ["bn-steps-1.csv", "bn-parameters-1.csv"]
    assert "0.7109690546" in first[0].read_text()
    data = json.loads(json_files[0].read_text())
    assert data["inference"]["output"][0][0] == pytest.approx(0.7109690546, abs=5e-11)


async def test_export_key_notifies_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(str(SEED), verify=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.screen.query_one(LayerTree).focus()
        await pilot.press("e")
        await pilot.pause()
        assert (tmp_path / "bn-parameters.csv").exists()
        assert any(str(tmp_path) in str(n.message) for n in app._notifications)


async def test_help_screen_opens_and_closes() -> None:
    app = make_app(str(SEED), verify=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)


async def test_parameters_sort_and_diagnostics_jump() -> None:
    app = make_app(str(SAMPLES / "convnet_trained.keras"), verify=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        await pilot.press("a")
        await pilot.pause()
        assert screen.query_one(TabbedContent).active == "parameters"
        table = screen.query_one(ParameterTable)
        assert table.row_count == screen.bn_layer.channels
        await pilot.click(ParameterTable, offset=(10, 0))  # the "gamma" header
        column = [float(table.row_cells(i)[1]) for i in range(table.row_count)]
        assert column == sorted(column) and table.sorted_by == (1, False)
        await pilot.press("4", "4")  # moving mean, then reversed
        column = [float(table.row_cells(i)[3]) for i in range(table.row_count)]
        assert column == sorted(column, reverse=True)
        screen.jump_to("bn2", 5)
        await pilot.pause()
        assert screen.bn_layer.path == "bn2" and screen.channel == 5
        table.show_channel(11)
        assert table.row_cells(table.cursor)[0] == "11"
        table.focus()
        await pilot.press("right", "right")
        assert table.scroll_x > 0  # the warnings column is reachable from the keyboard


async def test_unreadable_file_shows_error_screen(tmp_path: Path) -> None:
    bad = tmp_path / "broken.h5"
    bad.write_bytes(SEED.read_bytes()[:2000])
    app = make_app(str(bad), verify=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, ErrorScreen)
        assert "damaged or truncated" in app.screen.message


async def test_model_without_bn_layers_says_so(tmp_path: Path) -> None:
    from legacy_writer import write_legacy

    path = write_legacy(tmp_path / "plain.h5", [("dense", [])],
                        config={"class_name": "Sequential", "config": {"name": "s", "layers": [
                            {"class_name": "Dense", "config": {"name": "dense", "units": 2}}]}})
    app = make_app(str(path), verify=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "no BatchNormalization layers" in str(app.screen.query_one("#channel-bar").render())
        await type_values(app, pilot, "1")
        assert "no BatchNormalization layer" in app.screen.query_one(InputBar).error
