"""Write docs/step-view.svg, the README's screenshot: the seed layer with [1, 5] (run from the repo root)."""
import asyncio
from bntui.tui.app import make_app
async def main():
    app = make_app("sample_models/seed.h5")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(); await app.workers.wait_for_complete(); await pilot.pause()
        await pilot.press("i", *"1, 5", "enter")
        await app.workers.wait_for_complete(); await pilot.pause()
        app.save_screenshot("docs/step-view.svg")
if __name__ == "__main__":
    asyncio.run(main())
