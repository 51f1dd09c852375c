"""Snapshots of the key screens (accepted after reading the SVG report by eye)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bntui.tui.app import make_app
from conftest import SAMPLES, SEED
from legacy_writer import bn_config, write_legacy


async def _loaded(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def _typed(text: str):  # type: ignore[no-untyped-def]
    async def run(pilot) -> None:  # type: ignore[no-untyped-def]
        await _loaded(pilot)
        await pilot.press("i", *text, "enter")
        await _loaded(pilot)
    return run


def test_seed_steps(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app(str(SEED)), terminal_size=(120, 40), run_before=_typed("1, 5"))


def test_seed_steps_small_terminal(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app(str(SEED), verify=False), terminal_size=(80, 24), run_before=_typed("1, 5"))


def test_nested_parameters(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def run(pilot) -> None:  # type: ignore[no-untyped-def]
        await _loaded(pilot)
        await pilot.press("down", "down", "a")
        await _loaded(pilot)
    assert snap_compare(make_app(str(SAMPLES / "nested.keras"), verify=False), terminal_size=(120, 40), run_before=run)


def test_diagnostics(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    weights = [
        ("bad_bn/gamma:0", np.array([1.0, 1e-6, 1.0, np.nan], np.float32)),
        ("bad_bn/beta:0", np.array([0.0, 2.0, 0.0, 0.0], np.float32)),
        ("bad_bn/moving_mean:0", np.array([0.1, 0.2, 0.3, 0.4], np.float32)),
        ("bad_bn/moving_variance:0", np.array([-0.5, 1.0, 0.0, 1.0], np.float32)),
    ]
    config = {"class_name": "Sequential", "config": {"name": "suspicious", "layers": [bn_config("bad_bn", epsilon=1e-5)]}}
    path = write_legacy(tmp_path / "suspicious.h5", [("bad_bn", weights)], config=config, version="2.3.1")

    async def run(pilot) -> None:  # type: ignore[no-untyped-def]
        await _loaded(pilot)
        await pilot.press("d")
        await _loaded(pilot)
    assert snap_compare(make_app(str(path), verify=False), terminal_size=(120, 40), run_before=run)


def test_help(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def run(pilot) -> None:  # type: ignore[no-untyped-def]
        await _loaded(pilot)
        await pilot.press("f1")
        await pilot.pause()
    assert snap_compare(make_app(str(SEED), verify=False), terminal_size=(120, 40), run_before=run)
