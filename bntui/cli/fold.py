"""``--fold``: fold each BN into the conv or dense before it, or say why it cannot be.

    bntui MODEL --fold [--layer L] [--fold-check [random:SEED | x.npy]] [--fold-export out.npz] [--json | --csv]

``--fold-check`` runs the feeding layer + BN against the folded layer in TensorFlow (slow to
start); without it ``max_ulp`` and ``max_abs_diff`` are null.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from bntui.cli.port import check_new_file

_STEP_FLAGS = ("input", "input_file", "model_input", "verify", "channel")
_RANDOM = re.compile(r"^random(:\d+)?$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("folding into the previous conv or dense")
    group.add_argument("--fold", action="store_true",
                       help="fold each BN layer (or --layer) into the layer feeding it: refusals, int8 risk")
    group.add_argument("--fold-check", nargs="?", const="random:0", metavar="random:SEED|X.npy",
                       help="run feeding layer + BN against the folded layer in TensorFlow on this input "
                            "of the feeding layer (default random:0)")
    group.add_argument("--fold-export", metavar="OUT.npz",
                       help="write the folded kernels and biases (.npz or .safetensors) under the feeding layers' paths")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int | None:
    if not (args.fold or args.fold_check or args.fold_export):
        return None
    if not args.fold:
        parser.error("--fold-check and --fold-export need --fold")
    given = [f"--{flag.replace('_', '-')}" for flag in _STEP_FLAGS if getattr(args, flag, None) not in (None, False)]
    if given:
        parser.error(f"--fold takes no {', '.join(given)}")
    if args.fold_check and not _RANDOM.match(args.fold_check):
        if not args.fold_check.endswith(".npy"):
            parser.error("--fold-check takes random:SEED or a .npy file")
        if not Path(args.fold_check).is_file():
            parser.error(f"--fold-check: {args.fold_check}: no such file")
    if args.fold_export:
        check_new_file(parser, "--fold-export", args.fold_export, (".npz", ".safetensors"))

    from bntui.cli.main import DEMO_MODEL
    from bntui.core.analysis.fold import fold_layers, folded_arrays, with_checks
    from bntui.core.feeding_layers import open_with_feeding
    from bntui.core.output import Kind, render

    model, layers, feeding = open_with_feeding(args.model or str(DEMO_MODEL), args.layer)
    report = fold_layers(model.path, layers, feeding)
    if args.fold_check:
        from bntui.tf_bridge.fold_check import check_fold, make_input

        checks = {}
        for layer, fold in zip(layers, report.layers):
            if fold.foldable:
                found = feeding[layer.path]
                result = check_fold(layer, found, fold, make_input(found, args.fold_check))
                checks[layer.path] = (result.max_ulp, result.max_abs_diff)
        report = with_checks(report, checks)
    kind: Kind = "json" if args.json else "csv" if args.csv else "text"
    text = render(report, kind, indent=sys.stdout.isatty())
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    if args.fold_export:
        arrays = folded_arrays(report)
        if not arrays:
            print("bntui: nothing to export: no layer is foldable", file=sys.stderr)
            return 1
        _write(Path(args.fold_export), arrays)
        print(f"bntui: wrote {args.fold_export}", file=sys.stderr)
    return 0


def _write(path: Path, arrays: dict[str, Any]) -> None:
    """``.npz`` with numpy, ``.safetensors`` with the safetensors package; never overwriting."""
    import io

    import numpy as np

    from bntui.core.export_torch import import_writer, write_new

    if path.suffix.lower() == ".safetensors":
        save = import_writer("safetensors.numpy", "safetensors").save
        write_new(path, save(arrays, metadata={"producer": "bntui fold"}))
        return
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_new(path, buffer.getvalue())
