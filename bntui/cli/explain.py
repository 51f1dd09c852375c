"""``--got`` / ``--expected`` / ``--got-file``: which known computation gives these numbers?

    bntui MODEL --layer L --input "1, 5" --got "0.795, 4.175"
    bntui MODEL --layer L --input "1, 5" --expected "-1, 1"
    bntui MODEL --layer L --input-file x.npy --got-file y.npy [--channel K] [--json | --csv]
    bntui MODEL --layer L --batch x.npy --got-moving-variance "..." [--got-moving-mean "..."]

Every value is read and checked here, before the model file is; the file is then read in the
guarded child, which also computes and formats the answer (see :mod:`bntui.core.guarded_open`).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bntui.core.model import ModelInfo
    from bntui.core.tolerance import Given


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The explainer's flags (``--layer``, ``--input``, ``--input-file``, ``--channel``,
    ``--json`` and ``--csv`` are main.py's)."""
    group = parser.add_argument_group("why did I get this? (with --layer and --input or --input-file)")
    group.add_argument("--got", metavar="VALUES", help='the output you got, e.g. "0.795, 4.175" (as printed)')
    group.add_argument("--expected", metavar="VALUES", help='the output you expected, e.g. "-1, 1"')
    group.add_argument("--got-file", metavar="Y.npy", help="the output you got, from a .npy file")
    group.add_argument("--batch", metavar="X.npy", help="the batch of one training step (with --got-moving-*)")
    group.add_argument("--got-moving-mean", metavar="VALUES", help="the moving mean seen after one training step")
    group.add_argument("--got-moving-variance", metavar="VALUES", help="the moving variance seen after one training step")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int | None:
    """Explain the given values; None when none of this path's flags were given."""
    outputs = {"--got": args.got, "--expected": args.expected, "--got-file": args.got_file}
    moving = {"--got-moving-mean": args.got_moving_mean, "--got-moving-variance": args.got_moving_variance}
    if all(v is None for v in (*outputs.values(), *moving.values(), args.batch)):
        return None
    _check(args, parser, outputs, moving)
    from bntui.cli.main import DEMO_MODEL
    from bntui.core.guarded_open import PendingRead
    from bntui.core.input_parse import load_npy, parse_values
    from bntui.core.tolerance import exact, typed

    if any(v is not None for v in outputs.values()):
        given = exact(load_npy(args.got_file)) if args.got_file else typed(args.got if args.got is not None else args.expected)
        kind = "expected" if args.expected is not None else "got"
        values = parse_values(args.input) if args.input is not None else load_npy(args.input_file)
        text = _explain_output(PendingRead(args.model or str(DEMO_MODEL)).result(), args, values, given, kind)
    else:
        batch = load_npy(args.batch) if args.batch else (parse_values(args.input) if args.input is not None else load_npy(args.input_file))
        mean = typed(args.got_moving_mean) if args.got_moving_mean is not None else None
        variance = typed(args.got_moving_variance) if args.got_moving_variance is not None else None
        text = _moving_output(PendingRead(args.model or str(DEMO_MODEL)).result(), args, batch, mean, variance)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _check(args: argparse.Namespace, parser: argparse.ArgumentParser, outputs: dict[str, str | None],
           moving: dict[str, str | None]) -> None:
    """Usage errors, all found before the model file is read."""
    given_outputs = [flag for flag, value in outputs.items() if value is not None]
    given_moving = [flag for flag, value in moving.items() if value is not None]
    if len(given_outputs) > 1:
        parser.error("give only one of --got, --expected and --got-file")
    if given_outputs and (given_moving or args.batch):
        parser.error(f"{given_outputs[0]} explains an output; --batch and --got-moving-* explain moving statistics: give one")
    if not args.layer:
        parser.error(f"{(given_outputs or given_moving or ['--batch'])[0]} needs --layer")
    if args.model_input or args.verify:
        parser.error("--model-input and --verify do not combine with --got, --expected, --got-file or --batch")
    if args.input is not None and args.input_file is not None:
        parser.error("give only one of --input and --input-file")
    if given_outputs and args.input is None and args.input_file is None:
        parser.error(f"{given_outputs[0]} needs the input that gave it: --input or --input-file")
    if not given_outputs:
        if not given_moving:
            parser.error("--batch needs --got-moving-mean or --got-moving-variance")
        if args.batch and (args.input is not None or args.input_file is not None):
            parser.error("give the training batch once: --batch, --input or --input-file")
        if not args.batch and args.input is None and args.input_file is None:
            parser.error("--got-moving-* needs the training batch: --batch X.npy (or --input / --input-file)")
        if args.channel is not None:
            parser.error("--channel applies to --got, --expected and --got-file")


def _render(result: object, args: argparse.Namespace) -> str:
    from bntui.core.output import render

    kind = "json" if args.json else "csv" if args.csv else "text"
    return render(result, kind, indent=sys.stdout.isatty())  # type: ignore[arg-type]


def _explain_output(model: ModelInfo, args: argparse.Namespace, values: object, given: Given, kind: str) -> str:
    from bntui.core.analysis.explain import explain
    from bntui.core.input_parse import shape_for_layer

    layer = model.find(args.layer)
    typed_flat = args.input is not None and not args.input.lstrip().startswith("[")
    x = shape_for_layer(values, layer.channels, layer.axis, typed_flat=typed_flat)  # type: ignore[arg-type]
    return _render(explain(layer, x, given, kind=kind, channel=args.channel, model=model), args)


def _moving_output(model: ModelInfo, args: argparse.Namespace, batch: object, mean: Given | None,
                   variance: Given | None) -> str:
    from bntui.core.analysis.explain_moving import explain_moving_update
    from bntui.core.input_parse import shape_for_layer

    layer = model.find(args.layer)
    typed_flat = args.input is not None and not args.input.lstrip().startswith("[")
    x = shape_for_layer(batch, layer.channels, layer.axis, typed_flat=typed_flat)  # type: ignore[arg-type]
    return _render(explain_moving_update(layer, x, mean, variance), args)
