"""``bntui MODEL --drift DATA``: where the stored moving statistics don't fit real data.

DATA is a ``.npy`` file (samples on the first axis), ``zeros``/``ones``/``normal:SEED``/
``uniform:SEED`` with an optional whole shape (``normal:0:256x224x224x3``), or a folder of
images. ``--scale 1/255`` multiplies every input value (preprocessing is given as a number,
never as code). ``--drift-export stats.npz`` writes the statistics this data gives (AdaBN)
to a new file; the model file is never written.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bntui.core.analysis.drift import DriftResult

_FACTOR = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?:/\s*((?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?))?\s*$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("drift (needs TensorFlow)")
    group.add_argument("--drift", metavar="DATA",
                       help="run DATA through the model once and compare every BN layer's real input with its "
                            "moving statistics: x.npy, a folder of images, zeros, ones, normal:SEED or "
                            "uniform:SEED, optionally with a shape (normal:0:256x224x224x3) or a sample count (normal:0:256)")
    group.add_argument("--batch-size", type=int, metavar="B", help="samples per forward pass (default 32)")
    group.add_argument("--scale", metavar="FACTOR", help="multiply every input value, e.g. 1/255 (a number, never code)")
    group.add_argument("--drift-export", metavar="STATS.npz",
                       help="write the statistics this data gives (AdaBN re-estimate) per layer path, with a JSON "
                            "summary; never overwrites (a -1 suffix is added)")


def parse_factor(text: str) -> float | None:
    """``1/255``, ``0.5``, ``2e-3``: a number or a quotient of two, else None."""
    match = _FACTOR.match(text)
    if not match:
        return None
    numerator, denominator = float(match.group(1)), float(match.group(2) or 1.0)
    if denominator == 0:
        return None
    return numerator / denominator


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int | None:
    if args.drift is None:
        if args.batch_size is not None or args.scale is not None or args.drift_export is not None:
            parser.error("--batch-size, --scale and --drift-export need --drift")
        return None
    if args.layer or args.list or args.input or args.input_file or args.model_input or args.verify:
        parser.error("--drift measures every layer at once; it does not combine with --list, --layer, --input, "
                     "--input-file, --model-input or --verify")
    batch_size = 32 if args.batch_size is None else args.batch_size
    if batch_size < 1:
        parser.error("--batch-size must be at least 1")
    scale = 1.0 if args.scale is None else parse_factor(args.scale)
    if scale is None:
        parser.error(f"--scale {args.scale!r}: give a number or a quotient such as 1/255")
    export = _export_path(args.drift_export, parser) if args.drift_export else None
    _check_data(args.drift)
    if args.unsafe:
        print("bntui: warning: --unsafe lets Keras run code stored in the model file", file=sys.stderr)
    from bntui.cli.main import DEMO_MODEL
    from bntui.core.guarded_open import open_model_guarded

    info = open_model_guarded(args.model or str(DEMO_MODEL))
    counted = {"done": 0, "total": 0}

    def count(done: int, total: int) -> None:
        counted.update(done=done, total=total)

    import signal
    import threading

    from bntui.tf_bridge.drift import DriftCancelled

    # Ctrl-C asks the pass to stop between batches: a KeyboardInterrupt raised inside a
    # TensorFlow op can come out as another error. A second Ctrl-C interrupts at once.
    interrupted = threading.Event()

    def on_interrupt(signum: int, frame: object) -> None:
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        result = _measure(info, args.drift, batch_size, scale, args.unsafe, count, interrupted.is_set)
    except (KeyboardInterrupt, DriftCancelled):
        print(f"bntui: drift interrupted after {counted['done']} of {counted['total'] or '?'} samples; "
              "nothing was written", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
    from bntui.core.output import Kind, render

    kind: Kind = "json" if args.json else "csv" if args.csv else "text"
    text = render(result, kind, indent=sys.stdout.isatty())
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    if export is not None:
        written = _write_export(result, export)
        print(f"bntui: re-estimated statistics (AdaBN) written to {written}", file=sys.stderr)
    return 0


def _check_data(data: str) -> None:
    """Refuse a malformed spec or a missing path before TensorFlow loads."""
    from bntui.core.errors import InputValueError
    from bntui.tf_bridge.capturing import parse_generated

    if parse_generated(data) is None and not Path(data).exists():
        raise InputValueError(f"{data}: no such file or folder (give x.npy, a folder of images, zeros, ones, "
                              "normal:SEED or uniform:SEED)")


def _export_path(text: str, parser: argparse.ArgumentParser) -> Path:
    path = Path(text)
    if path.suffix != ".npz":
        parser.error("--drift-export needs a file name ending in .npz")
    if not path.parent.is_dir():
        parser.error(f"--drift-export: {path.parent} is not a folder")
    return path


def _measure(info: Any, data: str, batch_size: int, scale: float, unsafe: bool,
             count: Any, stop: Callable[[], bool]) -> DriftResult:
    """Run the pass, with a progress bar on stderr when it is a terminal."""
    from bntui.tf_bridge.drift import measure_drift

    if not sys.stderr.isatty():
        return measure_drift(info, data, batch_size=batch_size, scale=scale, unsafe=unsafe, progress=count, stop=stop)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("loading the model", total=None)

        def advance(done: int, total: int) -> None:
            count(done, total)
            bar.update(task, description="samples", completed=done, total=total)

        return measure_drift(info, data, batch_size=batch_size, scale=scale, unsafe=unsafe, progress=advance, stop=stop)


def _write_export(result: DriftResult, requested: Path) -> Path:
    """``<path>/moving_mean`` and ``<path>/moving_variance`` per layer, and ``summary`` (the JSON
    result as a string array: readable with ``allow_pickle=False``), in a file that did not exist."""
    import numpy as np

    from bntui.core.export import free_path
    from bntui.core.output import to_json

    arrays: dict[str, Any] = {}
    for path, (mean, variance) in result.reestimated().items():
        arrays[f"{path}/moving_mean"] = mean
        arrays[f"{path}/moving_variance"] = variance
    arrays["summary"] = np.array(to_json(result.to_dict(), indent=False))
    target = free_path(requested.parent, requested.stem, ".npz")
    with open(target, "xb") as handle:  # "x": never overwrite
        np.savez(handle, **arrays)
    return target
