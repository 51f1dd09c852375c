"""Comparing two model files against listing both: the issue's goal is at most 1.3 times.

Usage (from the repository root):

    python benchmarks/compare.py            # ResNet50.h5 against ResNet50.keras, 5 runs each
    python benchmarks/compare.py --quick    # MobileNetV2, once (what CI runs)

The two files are built by ``build_models.py`` with different random statistics, so every one
of the 53 layer pairs differs and gets its full analysis (parameter differences, findings,
output effect): the slowest case. Each command runs in a fresh process (see ``run.measure``);
"listing both" is the sum of ``bntui A --list --json`` and ``bntui B --list --json``, and the
ratio is the median over rounds that run every command once.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from statistics import median

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from build_models import DEFAULT_CACHE, build
from run import measure

#: The issue's budget: comparing costs at most this many times listing both files.
GOAL = 1.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="MobileNetV2 once (for CI)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "bntui")], check=True,
                   stdout=subprocess.DEVNULL)
    name = "MobileNetV2" if args.quick else "ResNet50"
    models = build(args.cache, (name,), extras=False)
    first, second = str(models[f"{name}.h5"]), str(models[f"{name}.keras"])
    bntui = [sys.executable, "-m", "bntui"]
    commands = {
        "list_first": [*bntui, first, "--list", "--json"],
        "list_second": [*bntui, second, "--list", "--json"],
        **{kind: [*bntui, first, "--compare", second, f"--{kind}"] for kind in ("json", "csv")},
        "text": [*bntui, first, "--compare", second],
    }
    # Rounds interleave the commands, and each round's ratio compares runs made under the same
    # machine load: on a shared machine the load drifts more between loops than within a round.
    seconds: dict[str, list[float]] = {command: [] for command in commands}
    memory: dict[str, list[float]] = {command: [] for command in commands}
    for _ in range(runs):
        for command, argv in commands.items():
            elapsed, rss, _ = measure(argv, 1)
            seconds[command].append(elapsed)
            memory[command].append(rss)
    both = [a + b for a, b in zip(seconds["list_first"], seconds["list_second"])]
    print(f"list {name_of(first)} and {name_of(second)} --json: {median(both):.3f} s together "
          f"({median(seconds['list_first']):.3f} + {median(seconds['list_second']):.3f}), "
          f"{median(memory['list_first']):.0f} MB", flush=True)
    for kind in ("json", "csv", "text"):
        ratio = median([t / b for t, b in zip(seconds[kind], both)])
        verdict = "within" if ratio <= GOAL else "OVER"
        flag = f"--{kind}" if kind != "text" else "(text)"
        print(f"compare {name_of(first)} with {name_of(second)} {flag}: {median(seconds[kind]):.3f} s "
              f"{median(memory[kind]):.0f} MB, x{ratio:.2f} listing both ({verdict} the x{GOAL} goal; "
              f"median of {runs} rounds)", flush=True)


def name_of(path: str) -> str:
    """The file name, as the output shows it."""
    return Path(path).name


if __name__ == "__main__":
    main()
