"""Command line: parse, build, run, return an exit code.

Headless flags (``--list``, ``--layer``) print and exit without importing Textual;
otherwise the TUI starts through :func:`bntui.tui.app.make_app`. Expected failures
(:class:`BntuiError`) become one line on stderr and exit code 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bntui import __version__
from bntui.core.errors import BntuiError
from bntui.core.guarded_open import PendingRead

if TYPE_CHECKING:
    from bntui.core.model import BNLayer, ModelInfo
    from bntui.core.steps import Computation

DEMO_MODEL = Path(__file__).parent.parent / "demo" / "seed.h5"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (its own function so the README and tests can show its help)."""
    parser = argparse.ArgumentParser(
        prog="bntui",
        description="Inspect the BatchNormalization layers of a saved Keras model, step by step.",
    )
    parser.add_argument("model", nargs="?",
                        help="a .keras, .h5 or .weights.h5 file, a SavedModel or TF.js folder (or its saved_model.pb / "
                             "model.json), or a TF checkpoint prefix (default: the bundled demo)")
    parser.add_argument("second", nargs="?", metavar="B",
                        help="a second model file: open the TUI's compare view of MODEL and B (bntui A B)")
    parser.add_argument("--list", action="store_true", help="print the BN layers and exit")
    parser.add_argument("--layer", metavar="NAME_OR_PATH", help="a BN layer, by name or path such as encoder/bn_1")
    parser.add_argument("--input", metavar="VALUES", help='input values, e.g. "1, 5" or "[[1], [5]]"')
    parser.add_argument("--input-file", metavar="X.npy", help="input values from a .npy file")
    parser.add_argument("--channel", type=int, metavar="K", help="show only channel K (default: all)")
    parser.add_argument("--mode", choices=("inference", "training", "both"), default="both")
    parser.add_argument("--verify", action="store_true", help="check the results against TensorFlow (slow to start)")
    parser.add_argument(
        "--model-input", metavar="SPEC",
        help="run the whole model on x.npy, zeros, ones, uniform:SEED, normal:SEED or random:SEED and use "
             "what really reaches --layer as its input (needs TensorFlow)",
    )
    parser.add_argument("--unsafe", action="store_true",
                        help="let Keras run Lambda code stored in the model (for --model-input and --drift); "
                             "it cannot supply a custom layer class whose code is not installed")
    parser.add_argument("--full", action="store_true",
                        help="write whole tensors and every element into JSON, however large the input")
    parser.add_argument("--output", metavar="FILE.npz",
                        help="also save the whole input and output tensors as arrays (never overwrites a file)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON (full precision)")
    output.add_argument("--csv", action="store_true", help="print CSV (full precision)")
    parser.add_argument("--version", action="version", version=f"bntui {__version__}")
    from bntui.cli import paths

    for module in paths.load():
        module.add_arguments(parser)
    return parser


#: Options whose values are numbers the user types, which may start with a minus sign.
NUMBER_OPTIONS = ("--input", "--got", "--expected")
_NEGATIVE = re.compile(r"-\s*(\d|\.\d|inf|nan)", re.IGNORECASE)


def joined_negative_values(argv: list[str]) -> list[str]:
    """``--input "-1, 5"`` as ``--input=-1, 5``: argparse takes a value starting with ``-`` for an
    option unless it is one plain number, so a list of numbers beginning with a negative one
    was refused ("expected one argument")."""
    joined: list[str] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        if token in NUMBER_OPTIONS and index + 1 < len(argv) and _NEGATIVE.match(argv[index + 1]):
            joined.append(f"{token}={argv[index + 1]}")
            index += 2
            continue
        joined.append(token)
        index += 1
    return joined


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bntui`` command."""
    parser = build_parser()
    args = parser.parse_args(joined_negative_values(sys.argv[1:] if argv is None else argv))
    if args.second is not None:
        given = [name for name, value in vars(args).items()
                 if name not in ("model", "second") and value != parser.get_default(name)]
        if given:
            parser.error(f"bntui A B opens the compare view and takes no other options (got --"
                         f"{', --'.join(name.replace('_', '-') for name in given)}); for the command line use "
                         "bntui A --compare B")
    from bntui.cli import paths

    try:
        for module in paths.load():
            code = module.run(args, parser)
            if code is not None:
                return code
    except BntuiError as err:
        print(f"bntui: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    if (args.input or args.input_file or args.model_input or args.channel is not None or args.verify) and not args.layer:
        parser.error("--input, --input-file, --model-input, --channel and --verify need --layer")
    if sum(bool(v) for v in (args.input, args.input_file, args.model_input)) > 1:
        parser.error("give only one of --input, --input-file and --model-input")
    if args.verify and not (args.input or args.input_file or args.model_input):
        parser.error("--verify needs an input (--input, --input-file or --model-input)")
    if (args.json or args.csv) and not (args.list or args.layer):
        parser.error("--json and --csv need --list or --layer (or an analysis such as --compare)")
    if (args.full or args.output) and not (args.layer and (args.input or args.input_file or args.model_input)):
        parser.error("--full and --output need --layer and an input")
    if args.unsafe:
        print("bntui: warning: --unsafe lets Keras run code stored in the model file", file=sys.stderr)
    model_path = args.model or str(DEMO_MODEL)
    try:
        if args.list or args.layer:
            text = _headless(model_path, args)
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
            return 0
    except BntuiError as err:
        print(f"bntui: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    # A path that is not there needs no screen to say so (a damaged file does: finding out takes a read).
    missing = [path for path in (model_path, args.second) if path is not None and not Path(path).exists()]
    if missing:
        print(f"bntui: {missing[0]}: no such file", file=sys.stderr)
        return 1
    # Start reading now, in a forked child, so the file is read while Textual imports.
    pending = PendingRead(model_path)
    # bntui A B: the second file is read at the same time, in its own forked child.
    compare_pending = PendingRead(args.second) if args.second is not None else None
    from bntui.tui.app import DEMO_INPUT, make_app

    # The demo opens with the seed question already answered: [1, 5] through the seed layer.
    return make_app(model_path, pending=pending, initial_input=None if args.model else DEMO_INPUT,
                    compare_path=args.second, compare_pending=compare_pending).run() or 0


def _headless(model_path: str, args: argparse.Namespace) -> str:
    """The text to print for ``--list`` or ``--layer``.

    ``--list`` asks the forked reading child for the model as plain data (its summary), so
    this process never imports numpy or h5py and starts within a tenth of a second of the
    read. ``--layer`` computes here: numpy is imported while the child reads.
    """
    if not args.layer:
        return _list_output(PendingRead(model_path, summary=True).result(), args)
    pending = PendingRead(model_path)
    import bntui.core.report  # noqa: F401 - numpy and the core, in parallel with the read

    return _layer_output(pending.result(), args)


def _json(data: object) -> str:
    """Indented for a person at a terminal, compact in a pipe."""
    from bntui.core.output import to_json

    return to_json(data, indent=sys.stdout.isatty())


def _list_output(data: dict[str, Any], args: argparse.Namespace) -> str:
    """``--list`` from the model's summary (:func:`bntui.core.report.model_dict`): plain data,
    formatted without numpy."""
    from bntui.core.output import to_csv

    if args.json:
        return _json(data)
    layers: list[dict[str, Any]] = data["layers"]
    if args.csv:
        csv_rows: list[list[object]] = [["path", "channels", "axis", "epsilon", "momentum", "center", "scale",
                                         "trainable", "dtype_policy", "assumed", "warnings"]]
        for layer in layers:
            csv_rows.append([layer["path"], layer["channels"], layer["axis"], layer["epsilon"], layer["momentum"],
                             layer["center"], layer["scale"], layer["trainable"], layer["dtype_policy"] or "",
                             " ".join(layer["assumed"]), " ".join(w["code"] for w in layer["warnings"])])
        return to_csv(csv_rows)
    count = len(layers)
    lines = [(f"{data['file']}: {data['format']}, Keras {data['keras_version'] or 'unknown'}, "
              f"{count} BatchNormalization layer{'s' if count != 1 else ''}")]
    lines.extend(f"note: {note}" for note in data["notes"])
    if not layers:
        lines.append("no BatchNormalization layers in this model")
        return "\n".join(lines)
    rows = [["path", "channels", "axis", "epsilon", "center", "scale", "trainable", "policy", "warnings"]]
    for layer in layers:
        assumed = " (assumed)" if layer["assumed"] else ""
        ghost = layer["virtual_batch_size"]
        variant = " renorm" if layer["renorm"] else (f" ghost {ghost}" if ghost else "")
        rows.append([layer["path"], str(layer["channels"]), f"{layer['axis']}{assumed}", f"{layer['epsilon']:.8g}",
                     str(layer["center"]), str(layer["scale"]) + variant, str(layer["trainable"]),
                     layer["dtype_policy"] or "-", " ".join(w["code"] for w in layer["warnings"]) or "-"])
    lines.extend(_table(rows))
    if data["findings"]:
        lines.append("\nfindings:")
        lines.extend(f"  {group['summary']}\n    {group['explanation']}" for group in data["findings"])
    return "\n".join(lines)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]


def _layer_output(model: ModelInfo, args: argparse.Namespace) -> str:
    from bntui.core.input_parse import load_npy, parse_for_layer, shape_for_layer
    from bntui.core.output import to_csv
    from bntui.core.report import MODES, computation_dict, layer_dict, parameter_rows, step_rows
    from bntui.core.steps import compute

    layer = model.find(args.layer)
    if args.channel is not None and not 0 <= args.channel < layer.channels:
        raise BntuiError(f"channel {args.channel} does not exist; {layer.path!r} has channels 0 to {layer.channels - 1}")
    if args.input is None and args.input_file is None and args.model_input is None:
        if args.json:
            return _json(layer_dict(layer))
        return to_csv(parameter_rows(layer)) if args.csv else _parameters_text(layer)
    captured = None
    if args.model_input:
        from bntui import tf_bridge

        captured = tf_bridge.capture(model.path, layer.path, args.model_input, unsafe=args.unsafe)
        x = shape_for_layer(captured.layer_input, layer.channels, layer.axis, typed_flat=False)
    elif args.input_file:
        x = shape_for_layer(load_npy(args.input_file), layer.channels, layer.axis, typed_flat=False)
    else:
        x = parse_for_layer(args.input, layer.channels, layer.axis)
    computation = compute(layer, x)
    verification = None
    if args.verify:
        from bntui import tf_bridge

        verification = tf_bridge.verify(computation)
    channels = [args.channel] if args.channel is not None else list(range(layer.channels))
    modes = MODES if args.mode == "both" else (args.mode,)
    if args.output:
        _save_arrays(args.output, computation)
    if args.json:
        data = computation_dict(computation, channels, modes, full=True if args.full else None)
        if verification is not None or captured is not None:
            from bntui import tf_bridge

            if verification is not None:
                data["verification"] = tf_bridge.verification_dict(verification)
            if captured is not None:
                data["capture"] = tf_bridge.capture_dict(captured, computation, args.model_input)
        return _json(data)
    if args.csv:
        return to_csv(step_rows(computation, channels, modes))
    text = _steps_text(computation, channels, modes)
    if args.input is not None:
        from bntui.core.input_parse import value_notes

        text += "".join(f"\nnote: {note}" for note in value_notes(args.input))
    if captured is not None:
        text += f"\ninput captured at {layer.path} from model input {args.model_input}, shape {computation.x.shape}"
    if verification is not None:
        text += "\n" + verification.summary()
    return text


def _save_arrays(target: str, computation: Computation) -> None:
    """``--output``: the whole tensors as a new .npz file (refuses to overwrite one)."""
    import numpy as np

    from bntui.core.report import computation_arrays

    path = Path(target)
    if path.suffix != ".npz":
        raise BntuiError(f"--output {target}: the file name must end in .npz")
    try:
        with open(path, "xb") as handle:
            arrays: dict[str, Any] = computation_arrays(computation)  # Any: numpy's stub types **kwds as bool
            np.savez(handle, **arrays)
    except FileExistsError:
        raise BntuiError(f"--output {target}: the file exists; bntui never overwrites a file") from None
    except OSError as err:
        raise BntuiError(f"--output {target}: {err.strerror or err}") from None


def _parameters_text(layer: BNLayer) -> str:
    from bntui.core.diagnostics import diagnose
    from bntui.core.numbers import fmt
    from bntui.core.report import parameter_rows

    lines = [(f"{layer.path}: {layer.channels} channel{'s' if layer.channels != 1 else ''}, axis {layer.axis}, "
              f"epsilon {fmt(layer.epsilon)}, center {layer.center}, scale {layer.scale}")]
    if layer.assumed:
        lines.append(f"assumed Keras defaults: {', '.join(layer.assumed)}")
    lines.extend(_table([[str(cell) for cell in row] for row in parameter_rows(layer, readable=True)]))
    for finding in diagnose(layer):
        lines.append(f"warning ({finding.channel_text()}): {finding.message}: {finding.explanation}")
    return "\n".join(lines)


def _steps_text(computation: Computation, channels: list[int], modes: tuple[str, ...]) -> str:
    from bntui.core.numbers import fmt, fmt_list

    layer = computation.layer
    policy = f", dtype policy {layer.dtype_policy}" if layer.dtype_policy and layer.dtype_policy != "float32" else ""
    frozen = ", frozen (trainable: false)" if not layer.trainable else ""
    lines = [(f"{layer.path}: input shape {computation.x.shape}, axis {layer.axis}, epsilon {fmt(layer.epsilon)}"
              f"{policy}{frozen}")]
    for channel in channels:
        for mode in modes:
            result = computation.result(mode)
            lines.append(f"\nchannel {channel}, {mode} mode ({result.uses.replace('_', ' ')})")
            sections = [("", computation.steps(channel, mode))]
            if mode == "inference":
                sections[0] = ("", sections[0][1] + computation.float32_steps(channel))
            if result.unfrozen is not None:
                unfrozen = computation.channel_steps(channel, mode, unfrozen=True)
                sections.append(("if it were not frozen (batch statistics):", list(unfrozen.steps)))
            for title, steps in sections:
                if title:
                    lines.append(f"  {title}")
                width = max(len(step.name) for step in steps)
                for step in steps:
                    digits = 8 if step.precision == "float64" else 9
                    lines.append(f"  {step.name.ljust(width)}  {fmt_list(step.values, digits)}   = {step.formula}")
    if "training" in modes:
        if computation.training.reason:
            lines.append(f"training mode: {computation.training.reason}")
        lines.extend(f"note: {note}" for note in computation.notes())
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
