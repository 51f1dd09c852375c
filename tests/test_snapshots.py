"""Snapshots of the key screens (accepted after reading each one by eye, at the size shown).

TensorFlow is off in all of them (``verify=False``): its check is covered by the Pilot tests,
and a snapshot must not depend on how long TensorFlow takes to load.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import SAMPLES, SEED
from legacy_writer import bn_config, write_legacy

from bntui.tui.app import DEMO_INPUT, make_app


async def _loaded(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def _pressing(*keys: str):  # type: ignore[no-untyped-def]
    async def run(pilot) -> None:  # type: ignore[no-untyped-def]
        await _loaded(pilot)
        if keys:
            await pilot.press(*keys)
            await _loaded(pilot)
    return run


def test_demo_first_screen(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """``bntui`` alone: the seed question answered on the first screen."""
    app = make_app(str(SEED), verify=False, initial_input=DEMO_INPUT)
    assert snap_compare(app, terminal_size=(120, 40), run_before=_pressing())


def test_channel_card_before_input(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """A nested model before any input: the tree, and the channel's numbers at once."""
    app = make_app(str(SAMPLES / "nested.keras"), verify=False)
    assert snap_compare(app, terminal_size=(120, 40), run_before=_pressing("down", "down", "n"))


def test_parameters_small_terminal(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """80x24: fewer digits so more columns fit, the channel column kept while scrolled right."""
    app = make_app(str(SAMPLES / "convnet_trained.keras"), verify=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_pressing("a", "right", "right"))


def test_diagnostics(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    weights = [
        ("bad_bn/gamma:0", np.array([1.0, 1e-6, 1.0, np.nan], np.float32)),
        ("bad_bn/beta:0", np.array([0.0, 2.0, 0.0, 0.0], np.float32)),
        ("bad_bn/moving_mean:0", np.array([0.1, 0.2, 0.3, 0.4], np.float32)),
        ("bad_bn/moving_variance:0", np.array([-0.5, 1.0, 0.0, 1.0], np.float32)),
    ]
    config = {"class_name": "Sequential", "config": {"name": "suspicious", "layers": [bn_config("bad_bn", epsilon=1e-5)]}}
    path = write_legacy(tmp_path / "suspicious.h5", [("bad_bn", weights)], config=config, version="2.3.1")
    assert snap_compare(make_app(str(path), verify=False), terminal_size=(120, 40), run_before=_pressing("d"))


def test_help_small_terminal(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """80x24: the whole box with its border, and how to close it."""
    assert snap_compare(make_app(str(SEED), verify=False), terminal_size=(80, 24), run_before=_pressing("f1"))
