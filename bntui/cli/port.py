"""``--port``: a BN layer's PyTorch, ONNX and TFLite equivalents, and the exports to them.

    bntui MODEL --port [--layer L] [--json | --csv]
    bntui MODEL [--layer L] --export-torch out.safetensors --export-onnx out.onnx
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: Flags of other paths that make no sense with --port.
_STEP_FLAGS = ("input", "input_file", "model_input", "verify", "channel")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("porting (PyTorch, ONNX, TFLite)")
    group.add_argument("--port", action="store_true",
                       help="show each BN layer as PyTorch, ONNX and TFLite see it (all layers, or --layer)")
    group.add_argument("--export-torch", metavar="OUT.safetensors",
                       help="write the layers' PyTorch state_dict (and OUT.safetensors.json with eps, momentum, affine)")
    group.add_argument("--export-onnx", metavar="OUT.onnx", help="write one ONNX BatchNormalization node per layer")


def check_new_file(parser: argparse.ArgumentParser, flag: str, value: str, suffixes: tuple[str, ...]) -> None:
    """Usage errors of an output path, found before any reading: wrong suffix, missing folder,
    an existing file (exports never overwrite)."""
    path = Path(value)
    if path.suffix.lower() not in suffixes:
        parser.error(f"{flag} needs a file name ending in {' or '.join(suffixes)}")
    if not path.parent.is_dir():
        parser.error(f"{flag}: folder {path.parent} does not exist")
    if path.exists():
        parser.error(f"{flag}: {path} exists; bntui never overwrites a file")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int | None:
    if not (args.port or args.export_torch or args.export_onnx):
        return None
    given = [f"--{flag.replace('_', '-')}" for flag in _STEP_FLAGS if getattr(args, flag, None) not in (None, False)]
    if given:
        parser.error(f"--port and the exports take no {', '.join(given)}")
    if getattr(args, "fold", False):
        parser.error("give --port (with its exports) or --fold, not both")
    if args.export_torch:
        check_new_file(parser, "--export-torch", args.export_torch, (".safetensors",))
        check_new_file(parser, "--export-torch", args.export_torch + ".json", (".json",))
    if args.export_onnx:
        check_new_file(parser, "--export-onnx", args.export_onnx, (".onnx",))

    from bntui.cli.main import DEMO_MODEL
    from bntui.core.analysis.port import port_layers
    from bntui.core.feeding_layers import open_with_feeding
    from bntui.core.output import Kind, render

    model, layers, feeding = open_with_feeding(args.model or str(DEMO_MODEL), args.layer, with_weights=False)
    report = port_layers(model.path, layers, {path: found.bn_input_rank for path, found in feeding.items()})
    written: list[Path] = []
    if args.export_torch:
        from bntui.core.export_torch import export_torch

        written += export_torch(list(report.layers), args.export_torch, model.path)
    if args.export_onnx:
        from bntui.core.export_onnx import export_onnx

        written.append(export_onnx(list(report.layers), args.export_onnx))
    wrote = f"wrote {', '.join(str(path) for path in written)}" if written else ""
    if args.port:
        kind: Kind = "json" if args.json else "csv" if args.csv else "text"
        text = render(report, kind, indent=sys.stdout.isatty())
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        if wrote:
            print(f"bntui: {wrote}", file=sys.stderr)
    else:
        print(wrote)
    return 0
