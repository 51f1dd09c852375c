"""bntui against the Keras way, measured in fresh processes, side by side in one run.

Usage (from the repository root, with the test extras installed):

    python benchmarks/run.py            # everything, 5 runs each, writes benchmarks/RESULTS.md
    python benchmarks/run.py --quick    # the smallest case once (what CI runs), no RESULTS.md

Each measurement starts a new Python process and reports the median over the runs of wall
time and peak RSS (the largest resident set of the process tree, from the kernel's rusage).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from build_models import APPLICATIONS, DEFAULT_CACHE, build  # noqa: E402

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(HERE.parent)}

BASELINE = """
import sys, keras
m = keras.models.load_model(sys.argv[1], compile=False)
out = []
def walk(model, prefix):
    for layer in model.layers:
        path = prefix + layer.name
        if type(layer).__name__ == "BatchNormalization":
            out.append({"path": path, **{w.name.split("/")[-1].split(":")[0]: v.tolist()
                        for w, v in zip(layer.weights, layer.get_weights())}})
        elif hasattr(layer, "layers"):
            walk(layer, path + "/")
walk(m, "")
import json; print(json.dumps({"layers": out}))
"""

FLOOR = "import h5py, numpy"

FIRST_SCREEN = """
import sys, time, asyncio
start = time.perf_counter()
from bntui.core.guarded_open import PendingRead
pending = PendingRead(sys.argv[1])
from bntui.tui.app import make_app
async def main():
    app = make_app(sys.argv[1], verify=False, pending=pending)
    async with app.run_test(size=(120, 40)) as pilot:
        while app.screen.model is None or not app.screen.query_one("#layers").display:
            await pilot.pause(0.005)
        await pilot.pause()
        print(len(app.screen.model.layers), flush=True)
if __name__ == "__main__":
    asyncio.run(main())
"""

COMPUTE = """
import time, statistics, numpy as np
from bntui.core import open_model
from bntui.core.steps import compute
model = open_model(__import__("sys").argv[1])
layer = model.find("conv1_bn")
x = np.random.default_rng(0).normal(size=(1, 112, 112, 64))
times = []
for _ in range(7):
    t = time.perf_counter(); c = compute(layer, x); steps = [c.steps(k, "training") for k in range(64)]
    times.append(time.perf_counter() - t)
print(statistics.median(times))
"""

WIDE_LAYER = """
import dataclasses, sys, time, asyncio
from bntui.tui.app import make_app
async def main():
    app = make_app(sys.argv[1], verify=False)
    async with app.run_test(size=(120, 40)) as pilot:
        while app.screen.model is None:
            await pilot.pause(0.005)
        await pilot.press("a")
        await pilot.pause()
        selection = app.screen.selection
        app.screen.selection = dataclasses.replace(selection, layer=None)
        await pilot.pause()
        t = time.perf_counter()
        app.screen.selection = selection     # what selecting the layer in the tree does
        await pilot.pause()                  # painted
        await pilot.press("end")             # and scrolled to the last channel
        assert app.screen.query_one("#parameter-table").row_count == 4096
        print(time.perf_counter() - t)
if __name__ == "__main__":
    asyncio.run(main())
"""


def measure(argv: list[str], runs: int) -> tuple[float, float, str]:
    """Median wall seconds and median peak RSS (MB) of ``argv`` in fresh processes."""
    times, rss, out = [], [], ""
    for _ in range(runs):
        code = (
            "import resource, subprocess, sys, time\n"
            "t = time.perf_counter()\n"
            "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
            "elapsed = time.perf_counter() - t\n"
            "sys.stderr.write(p.stderr)\n"
            "print(elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode)\n"
            "sys.stdout.write(p.stdout[-200:])\n"
        )
        result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=ENV)
        first, _, rest = result.stdout.partition("\n")
        elapsed, maxrss, code_ = first.split()
        if code_ != "0":
            raise SystemExit(f"failed: {' '.join(argv)}\n{result.stderr[-2000:]}")
        times.append(float(elapsed))
        rss.append(int(maxrss) / 1024)
        out = rest
    return statistics.median(times), statistics.median(rss), out


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = []
    for name in ("numpy", "h5py", "textual", "keras", "tensorflow"):
        try:
            from importlib.metadata import version

            versions.append(f"{name} {version(name if name != 'tensorflow' else 'tensorflow-cpu')}")
        except Exception:  # noqa: BLE001
            pass
    return (f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, "
            f"Python {platform.python_version()}; " + ", ".join(versions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smallest case once, no RESULTS.md (for CI)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    # An installed package has its bytecode compiled; a checkout may not (PYTHONDONTWRITEBYTECODE).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "bntui")], check=True,
                   stdout=subprocess.DEVNULL)
    names = ("MobileNetV2",) if args.quick else APPLICATIONS
    models = build(args.cache, names, extras=not args.quick)
    bntui = [sys.executable, "-m", "bntui"]
    rows = []
    floor_t, floor_rss, _ = measure([sys.executable, "-c", FLOOR], runs)
    print(f"floor (python -c '{FLOOR}'): {floor_t:.3f} s, {floor_rss:.0f} MB", flush=True)
    for file, path in models.items():
        if file == "ResNet50.h5":
            text_t, text_rss, _ = measure([*bntui, str(path), "--list"], runs)
            print(f"{file:22} bntui --list (text table): {text_t:.3f} s {text_rss:.0f} MB", flush=True)
        ours_t, ours_rss, _ = measure([*bntui, str(path), "--list", "--json"], runs)
        base_t, base_rss, _ = measure([sys.executable, "-c", BASELINE, str(path)], runs) if file.split(".")[0] in APPLICATIONS or args.quick else (float("nan"), float("nan"), "")
        size = path.stat().st_size / 1e6
        rows.append((file, size, ours_t, ours_rss, base_t, base_rss))
        print(f"{file:22} {size:7.1f} MB  bntui {ours_t:.3f} s {ours_rss:5.0f} MB   keras {base_t:.3f} s "
              f"{base_rss:5.0f} MB   x{base_t / ours_t:.1f} time, x{base_rss / ours_rss:.1f} memory", flush=True)
    screens = []
    for file in (["MobileNetV2.h5"] if args.quick else ["ResNet50.h5", "ResNet50.keras", "bn500.h5"]):
        t, rss, out = measure([sys.executable, "-c", FIRST_SCREEN, str(models[file])], runs)
        screens.append((file, t, rss))
        print(f"first TUI screen with the list filled, {file}: {t:.3f} s, {rss:.0f} MB", flush=True)
    if args.quick:
        return
    compute_times = [float(measure([sys.executable, "-c", COMPUTE, str(models["ResNet50.h5"])], 1)[2].strip())
                     for _ in range(runs)]
    compute_t = statistics.median(compute_times)
    print(f"(1, 112, 112, 64) through conv1_bn, both modes + 64 channels of steps: {compute_t * 1000:.1f} ms", flush=True)
    wide_times = [float(measure([sys.executable, "-c", WIDE_LAYER, str(models["wide4096.h5"])], 1)[2].strip())
                  for _ in range(runs)]
    wide_t = statistics.median(wide_times)
    print(f"4096-channel layer selected, its parameter table painted and scrolled to the end: {wide_t * 1000:.0f} ms",
          flush=True)
    write_results(machine(), runs, (floor_t, floor_rss), rows, screens, compute_t, wide_t)


def write_results(machine_text: str, runs: int, floor: tuple[float, float], rows: list, screens: list,
                  compute_t: float, wide_t: float) -> None:
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {machine_text}.",
        f"Each number is the median of {runs} fresh processes, measured by `python benchmarks/run.py` "
        f"on {time.strftime('%Y-%m-%d')}. Peak RSS is the largest resident set in the process tree.",
        "",
        f"Floor (`python -c \"{FLOOR}\"`): {floor[0]:.3f} s, {floor[1]:.0f} MB.",
        "",
        "## `bntui MODEL --list --json` against `keras.models.load_model` + `get_weights`",
        "",
        "| file | size | bntui time | bntui peak RSS | Keras time | Keras peak RSS | time ratio | memory ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for file, size, ours_t, ours_rss, base_t, base_rss in rows:
        ratio_t = f"{base_t / ours_t:.1f}x" if base_t == base_t else "-"
        ratio_m = f"{base_rss / ours_rss:.1f}x" if base_rss == base_rss else "-"
        base_t_text = f"{base_t:.2f} s" if base_t == base_t else "-"
        base_m_text = f"{base_rss:.0f} MB" if base_rss == base_rss else "-"
        lines.append(f"| {file} | {size:.1f} MB | {ours_t:.3f} s | {ours_rss:.0f} MB | {base_t_text} | "
                     f"{base_m_text} | {ratio_t} | {ratio_m} |")
    lines += ["", "## First TUI screen with the layer list filled (headless, from process start)", "",
              "| file | time | peak RSS |", "|---|---:|---:|"]
    lines += [f"| {file} | {t:.3f} s | {rss:.0f} MB |" for file, t, rss in screens]
    resnet = next(row for row in rows if row[0] == "ResNet50.h5")
    ratio = resnet[4] / resnet[2]
    worst_rss = max(row[3] for row in rows)
    first = next(t for file, t, _ in screens if file == "ResNet50.h5")
    lines += ["", "## Goals", "", "| goal | result | met |", "|---|---|---|",
              f"| `--list --json` at least 20x faster than Keras on ResNet50 `.h5` | {ratio:.1f}x "
              f"({resnet[2]:.3f} s against {resnet[4]:.2f} s) | {'yes' if ratio >= 20 else 'no'} |",
              f"| ... which means within about 0.1 s of the floor | floor + {resnet[2] - floor[0]:.3f} s | "
              f"{'yes' if resnet[2] - floor[0] <= 0.1 else 'no'} |",
              f"| peak RSS of `--list --json` under 80 MB, not growing with file size | at most {worst_rss:.0f} MB; "
              f"ResNet50 (103 MB) {resnet[3]:.0f} MB, EfficientNetB0 (22 MB) "
              f"{next(r[3] for r in rows if r[0] == 'EfficientNetB0.h5'):.0f} MB | {'yes' if worst_rss < 80 else 'no'} |",
              f"| first TUI screen with the list filled under 0.8 s for ResNet50 | {first:.2f} s | "
              f"{'yes' if first < 0.8 else 'no'} |",
              f"| (1, 112, 112, 64) computation, both modes, under 100 ms | {compute_t * 1000:.0f} ms | "
              f"{'yes' if compute_t < 0.1 else 'no'} |"]
    lines += ["", "## Computation", "",
              f"- A (1, 112, 112, 64) activation through ResNet50's `conv1_bn`, inference and training mode, "
              f"plus the training steps of all 64 channels: {compute_t * 1000:.1f} ms (median of {runs}).",
              f"- Selecting a 4096-channel layer in the TUI until its parameter table is painted and "
              f"scrolled to the last channel: "
              f"{wide_t * 1000:.0f} ms.", ""]
    lines += ["", (HERE / "profiling.md").read_text()]
    (HERE / "RESULTS.md").write_text("\n".join(lines))
    print(f"wrote {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
