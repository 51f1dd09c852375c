"""The compare view (``bntui A B``, issue 14) as Pilot flows on a pair written by real Keras.

A base model with three BN layers is saved as ``.keras``; a copy is changed the way its causes
would change it (bn_b's statistics reset by hand, bn_c's gamma fine-tuned in one channel, a new
bn_extra layer added at the end) and saved as ``.h5``. Expected values come from the Keras
weights the test set, with differences and outputs written here from the formula.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SAMPLES, SEED
from legacy_writer import bn_config, bn_weights, write_legacy
from tui_helpers import settle

from bntui.cli.main import build_parser, main
from bntui.core.numbers import fmt
from bntui.tui.app import BntuiApp, make_app
from bntui.tui.screens.compare_screen import CompareScreen
from bntui.tui.screens.error_screen import ErrorScreen
from bntui.tui.widgets.channel_diff_table import ChannelDiffTable
from bntui.tui.widgets.input_bar import InputBar
from bntui.tui.widgets.pair_list import PairList, entry_label
from bntui.tui.widgets.side_by_side_steps import SideBySideSteps

WIDTH = 6
NARROW = 4
NAMES = ("bn_a", "bn_b", "bn_c")
#: In both files, WIDTH channels in A and NARROW in B: a pair whose channel counts differ.
RESIZED = "bn_d"
EPSILON = 1e-3  # Keras' default
TUNED_CHANNEL = 2
SIZE = (120, 40)


def _build(keras: Any, names: tuple[str, ...], narrow: str | None = None) -> Any:
    """Dense -> BN per name, WIDTH wide except the ``narrow`` layer (NARROW channels)."""
    inputs = keras.Input((WIDTH,))
    x = inputs
    for name in names:
        x = keras.layers.Dense(NARROW if name == narrow else WIDTH, name=f"dense_{name}")(x)
        x = keras.layers.BatchNormalization(name=name)(x)
    return keras.Model(inputs, x, name="net")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """base.keras and changed.h5, and each BN layer's weights as Keras holds them."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    folder = tmp_path_factory.mktemp("compare_tui")
    rng = np.random.default_rng(7)
    base = _build(keras, (*NAMES, RESIZED))
    for name in NAMES:
        base.get_layer(name).set_weights([rng.normal(1.0, 0.2, WIDTH), rng.normal(0.0, 0.3, WIDTH),
                                          rng.normal(0.0, 1.0, WIDTH), rng.uniform(0.1, 3.0, WIDTH)])
    base.save(folder / "base.keras")
    changed = _build(keras, (*NAMES, RESIZED, "bn_extra"), narrow=RESIZED)
    for layer in base.layers:
        if layer.weights and RESIZED not in layer.name:
            changed.get_layer(layer.name).set_weights(layer.get_weights())
    changed.get_layer("bn_b").moving_mean.assign(np.zeros(WIDTH, "float32"))
    changed.get_layer("bn_b").moving_variance.assign(np.ones(WIDTH, "float32"))
    gamma = changed.get_layer("bn_c").gamma.numpy()
    gamma[TUNED_CHANNEL] *= 1.5
    changed.get_layer("bn_c").gamma.assign(gamma)
    changed.save(folder / "changed.h5")
    weights = {side: {name: [np.array(w, np.float64) for w in model.get_layer(name).get_weights()]
                      for name in NAMES} for side, model in (("A", base), ("B", changed))}
    return {"A": folder / "base.keras", "B": folder / "changed.h5", "weights": weights}


def compare_of(app: BntuiApp) -> CompareScreen:
    assert isinstance(app.screen, CompareScreen)
    return app.screen


async def open_entry(app: BntuiApp, pilot: Any, label: str) -> CompareScreen:
    """Move down the list to the entry labelled ``label``, as a user would."""
    screen = compare_of(app)
    labels = [entry_label(entry) for entry in screen.query_one(PairList).entries]
    screen.action_focus_list()
    await pilot.press("home", *["down"] * labels.index(label))
    await settle(app, pilot)
    assert screen.entry is not None and entry_label(screen.entry) == label
    return screen


def table_rows(table: ChannelDiffTable) -> list[list[str]]:
    return [table.row_cells(position) for position in range(table.row_count)]


@pytest.mark.tensorflow
async def test_pairs_have_badges_and_unmatched_layers_are_listed(pair: dict[str, Any]) -> None:
    app = make_app(str(pair["A"]), verify=False, compare_path=str(pair["B"]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        pair_list = compare_of(app).query_one(PairList)
        prompts = [str(pair_list.get_option_at_index(i).prompt) for i in range(pair_list.option_count)
                   if pair_list.get_option_at_index(i) is not None]
        # bn_a untouched, bn_b reset, bn_c tuned in one channel, bn_d narrowed, bn_extra only in B
        # (under its heading)
        assert prompts == ["bn_a  same ", "bn_b  reset ", "bn_c  trained ", "bn_d  channels ",
                           "only in changed.h5", "bn_extra  only B "]
        files = str(app.screen.query_one("#compare-files").render())
        assert "A base.keras" in files and "B changed.h5" in files and "4 matched, 1 unmatched" in files
        await pilot.press("u")  # the whole comparison, as the command line prints it
        summary = str(app.screen.query_one("#compare-summary").render())
        findings = next(line for line in summary.splitlines() if line.startswith("findings: "))
        assert set(findings.removeprefix("findings: ").split(", ")) == {
            "unchanged 1", "statistics_reset 1", "gamma_beta_changed 1", "channels_changed 1", "only_in_second 1"}
        await open_entry(app, pilot, "bn_extra")
        assert "No partner in the other file" in str(app.screen.query_one("#diff-message").render())
        assert compare_of(app).query_one(ChannelDiffTable).row_count == 0


@pytest.mark.tensorflow
async def test_channel_table_shows_both_values_and_sorts_by_difference(pair: dict[str, Any]) -> None:
    a, b = pair["weights"]["A"]["bn_c"], pair["weights"]["B"]["bn_c"]
    app = make_app(str(pair["A"]), verify=False, compare_path=str(pair["B"]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = await open_entry(app, pilot, "bn_c")
        await pilot.press("c")
        table = screen.query_one(ChannelDiffTable)
        # gamma: both files' values, and |B - A| computed here (float32 values widen exactly to float64,
        # so the difference is exact and its 8-digit text must be identical)
        expected = [[str(k), fmt(a[0][k]), fmt(b[0][k]), fmt(abs(b[0][k] - a[0][k])),
                     fmt(abs(b[0][k] - a[0][k]) / max(abs(a[0][k]), abs(b[0][k])))] for k in range(WIDTH)]
        assert table_rows(table) == expected
        assert table_rows(table)[TUNED_CHANNEL][3] != "0" and table_rows(table)[0][3] == "0"
        spark = screen.query_one("#diff-spark-gamma")
        assert spark.data == pytest.approx(np.abs(b[0] - a[0]).tolist(), abs=0)
        await pilot.press("4", "4")  # |Δ|, then reversed: the tuned channel first
        assert table.order[0] == TUNED_CHANNEL and table.sorted_by == (3, True)
        await pilot.press("enter")
        await settle(app, pilot)
        assert screen.channel == TUNED_CHANNEL
        assert app.screen.query_one("#compare-tabs").active == "steps"
        await pilot.press("c", "t")  # beta: untouched, every difference 0
        assert screen.parameter == "beta"
        assert table.sorted_by == (3, True)  # the order chosen is kept for the next parameter
        assert [row[3] for row in table_rows(table)] == ["0"] * WIDTH
        assert "identical" in str(screen.query_one("#diff-range-beta").render())


@pytest.mark.tensorflow
async def test_one_input_through_both_layers_side_by_side(pair: dict[str, Any]) -> None:
    app = make_app(str(pair["A"]), verify=False, compare_path=str(pair["B"]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = await open_entry(app, pilot, "bn_b")
        await pilot.press("i", "2", "enter")  # one number: the same value in every channel
        await settle(app, pilot)
        assert app.screen.query_one("#compare-tabs").active == "steps"
        for side, key in (("first", "A"), ("second", "B")):
            gamma, beta, mean, variance = pair["weights"][key]["bn_b"]
            computation = screen.computations[side]
            assert computation is not None
            expected = gamma * (2.0 - mean) / np.sqrt(variance + EPSILON) + beta
            # both float64, the same four operations in another order: a few float64 ulps apart
            np.testing.assert_allclose(computation.inference.output.ravel(), expected, rtol=1e-13, atol=1e-15)
        gamma, beta, _, _ = pair["weights"]["B"]["bn_b"]
        assert np.all(screen.computations["second"].layer.moving_mean == 0)  # type: ignore[union-attr]
        await pilot.press("n")
        steps = screen.query_one(SideBySideSteps)
        assert steps.table("first").channel == steps.table("second").channel == 1
        # the reset layer's output for channel 1, as drawn: gamma * 2 / sqrt(1 + eps) + beta
        drawn = steps.table("second").render()
        from rich.console import Console

        console = Console(width=60, record=True)
        console.print(drawn)
        assert fmt(gamma[1] * 2.0 / np.sqrt(1.0 + EPSILON) + beta[1]) in console.export_text()
        await pilot.press("i", "ctrl+u", "1", ",", "5", "enter")  # 2 values for 6 channels: refused
        await settle(app, pilot)
        assert "expected 1 value" in screen.query_one(InputBar).error
        assert screen.computations == {"first": None, "second": None}


@pytest.mark.tensorflow
async def test_a_pair_of_other_widths_is_not_compared_per_channel_and_each_side_takes_its_input(
        pair: dict[str, Any]) -> None:
    app = make_app(str(pair["A"]), verify=False, compare_path=str(pair["B"]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = await open_entry(app, pilot, RESIZED)
        message = str(screen.query_one("#diff-message").render())
        assert f"{WIDTH} channels against {NARROW}" in message
        assert screen.query_one(ChannelDiffTable).row_count == 0
        await pilot.press("i", *", ".join(str(v) for v in range(WIDTH)), "enter")  # one value per channel of A
        await settle(app, pilot)
        assert screen.computations["first"] is not None and screen.computations["second"] is None
        status = str(screen.query_one("#steps-status-second").render())
        assert f"expected 1 value, {NARROW} values" in status
        assert screen.query_one(InputBar).error == ""  # one side computed: nothing to correct


async def test_unreadable_second_file_shows_the_error_screen_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "broken.h5"
    bad.write_bytes(SEED.read_bytes()[:2000])
    app = make_app(str(SEED), verify=False, compare_path=str(bad))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, ErrorScreen)
        assert "broken.h5" in app.screen.message
        await pilot.press("q")
    assert app.return_code == 1


#: The large pair: one BN layer of WIDE channels in each file, gamma and beta changed in every
#: channel by a different amount, one channel's gamma NaN in B, one channel changed most.
WIDE = 4096
NAN_CHANNEL = 1234
MOST_CHANGED = 3001


@pytest.fixture(scope="module")
def wide_pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two Keras 2-era files (written with h5py) and each side's gamma and beta."""
    folder = tmp_path_factory.mktemp("compare_wide")
    config = {"class_name": "Sequential", "config": {"name": "wide", "layers": [bn_config("bn_wide")]}}
    first = bn_weights("bn_wide", WIDE, seed=1)
    second = [(name, value.copy()) for name, value in first]
    rng = np.random.default_rng(2)
    for index in (0, 1):  # gamma and beta: every channel moves, each by its own amount
        second[index][1][:] += rng.permutation(WIDE).astype(np.float32) * np.float32(1e-4)
    second[0][1][MOST_CHANGED] += np.float32(5.0)
    second[0][1][NAN_CHANNEL] = np.nan
    paths = {side: write_legacy(folder / f"{side}.h5", [("bn_wide", weights)], config=config, version="2.3.1")
             for side, weights in (("A", first), ("B", second))}
    values = {side: {name.split("/")[1].removesuffix(":0"): value.astype(np.float64) for name, value in weights}
              for side, weights in (("A", first), ("B", second))}
    return {**paths, "values": values}


def by_difference(values: dict[str, dict[str, np.ndarray]], name: str) -> list[int]:
    """Channels by |B - A| of ``name``, largest first, NaN left out; computed here, not by bntui."""
    diff = np.abs(values["B"][name] - values["A"][name])
    return sorted(np.flatnonzero(~np.isnan(diff)).tolist(), key=lambda channel: -diff[channel])


def visible_lines(table: ChannelDiffTable) -> list[str]:
    return [table.render_line(y).text for y in range(table.scrollable_content_region.height)]


async def test_a_wide_pair_sorts_by_difference_with_nan_last_and_enter_chooses_the_row_under_the_cursor(
        wide_pair: dict[str, Any]) -> None:
    values = wide_pair["values"]
    app = make_app(str(wide_pair["A"]), verify=False, compare_path=str(wide_pair["B"]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = await open_entry(app, pilot, "bn_wide")
        await pilot.press("c")
        table = screen.query_one(ChannelDiffTable)
        assert table.row_count == WIDE and table.order == list(range(WIDE))
        await pilot.click(ChannelDiffTable, offset=(45, 0))  # the "|Δ|" header: ascending
        assert table.sorted_by == (3, False)
        assert table.order[-1] == NAN_CHANNEL and table.order[-2] == MOST_CHANGED
        await pilot.press("4")  # again: largest first, NaN still last
        largest = by_difference(values, "gamma")
        assert table.sorted_by == (3, True)
        assert table.order[:50] == largest[:50] and table.order[0] == MOST_CHANGED
        assert table.order[-1] == NAN_CHANNEL
        header, first_row = visible_lines(table)[:2]
        assert "|Δ| ▼" in header and first_row.split()[0] == str(MOST_CHANGED)
        await pilot.press("down", "down", "down")  # each move tells the screen
        assert screen.channel == largest[3]
        await pilot.press("enter")
        await settle(app, pilot)
        assert screen.channel == largest[3] and app.screen.query_one("#compare-tabs").active == "steps"
        await pilot.press("c", "end")  # the last line: drawn although thousands of lines down
        assert screen.channel == NAN_CHANNEL
        shown = [line.split() for line in visible_lines(table)[1:] if line.strip()]
        assert shown[-1][0] == str(NAN_CHANNEL) and shown[-1][2] == "nan" and shown[-1][3] == "nan"
        assert shown[-2][0] == str(largest[-1])


async def test_a_wide_pair_keeps_its_order_and_channel_for_the_next_parameter(wide_pair: dict[str, Any]) -> None:
    values = wide_pair["values"]
    app = make_app(str(wide_pair["A"]), verify=False, compare_path=str(wide_pair["B"]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = await open_entry(app, pilot, "bn_wide")
        table = screen.query_one(ChannelDiffTable)
        await pilot.press("c", "end", "t")  # beta in channel order: the last channel's line stays in view
        await pilot.pause()
        assert screen.parameter == "beta" and screen.channel == WIDE - 1
        assert [line.split()[0] for line in visible_lines(table) if line.strip()][-1] == str(WIDE - 1)
        await pilot.press("t", "t", "t", "home", "4", "4", "down", "down")  # gamma, largest |Δ| first
        chosen = by_difference(values, "gamma")[2]
        assert screen.parameter == "gamma" and screen.channel == chosen
        await pilot.press("t")  # beta, sorted the same way: its own largest differences first
        await pilot.pause()
        assert screen.parameter == "beta" and table.sorted_by == (3, True)
        assert table.order[:50] == by_difference(values, "beta")[:50]
        assert table.channel_at(table.cursor) == chosen  # the same channel, where beta puts it
        row = next(line.split() for line in visible_lines(table)[1:] if line.split()[:1] == [str(chosen)])
        a, b = values["A"]["beta"][chosen], values["B"]["beta"][chosen]
        assert row[1:4] == [fmt(a), fmt(b), fmt(abs(b - a))]


def test_cli_takes_a_second_file_and_refuses_it_with_other_options() -> None:
    args = build_parser().parse_args(["a.h5", "b.keras"])
    assert (args.model, args.second) == ("a.h5", "b.keras")
    with pytest.raises(SystemExit) as exit_info:
        main([str(SEED), str(SEED), "--list"])
    assert exit_info.value.code == 2


def test_compare_view(snap_compare: Any) -> None:
    """A Keras 3 model against its Keras 2 twin: changed pairs, an axis note, layers only in A."""
    async def loaded(pilot: Any) -> None:
        await settle(pilot.app, pilot)

    app = make_app(str(SAMPLES / "nested.h5"), verify=False, compare_path=str(SAMPLES / "keras2_nested.h5"))
    assert snap_compare(app, terminal_size=SIZE, run_before=loaded)


async def test_f1_opens_help_with_the_compare_keys() -> None:
    from bntui.tui.screens.help_screen import HELP, HelpScreen

    app = make_app(str(SAMPLES / "nested.h5"), verify=False, compare_path=str(SAMPLES / "nested.keras"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert "Compare view (`bntui A B`)" in HELP
