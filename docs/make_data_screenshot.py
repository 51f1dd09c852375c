"""Write docs/data-view.svg, the README's Data tab screenshot: a real drift run through the
tf.keras 2 sample (run from the repo root; TensorFlow runs in the TUI's own process)."""
import asyncio

from textual.widgets import Input

from bntui.tui.app import make_app
from bntui.tui.panels.data import DataPanel


async def main() -> None:
    app = make_app("sample_models/keras2_nested.h5")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.press("r")
        panel = app.screen.query_one(DataPanel)
        panel.query_one("#data-scale", Input).value = "3"
        panel.query_one("#data-spec", Input).value = "uniform:1:500x4"
        panel.query_one("#data-spec", Input).focus()
        await pilot.press("enter")
        while panel.result is None:
            await pilot.pause(0.2)
        await pilot.pause(0.5)
        app.save_screenshot("docs/data-view.svg")


if __name__ == "__main__":
    asyncio.run(main())
