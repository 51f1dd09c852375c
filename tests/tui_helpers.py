"""What the Pilot tests share: wait until the app is idle, the model screen, a widget's text."""

from __future__ import annotations

from typing import Any

from textual.geometry import Region
from textual.widget import Widget

from bntui.tui.app import BntuiApp
from bntui.tui.screens.main_screen import MainScreen


async def settle(app: BntuiApp, pilot: Any) -> None:
    """Let messages land, every worker finish, and the screen repaint."""
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


def screen_of(app: BntuiApp) -> MainScreen:
    """The model screen (asserted: a test on another screen is a failure)."""
    assert isinstance(app.screen, MainScreen)
    return app.screen


def shown_text(widget: Widget) -> str:
    """What the widget draws, as plain lines."""
    size = widget.size
    return "\n".join(strip.text for strip in widget.render_lines(Region(0, 0, size.width, size.height)))
