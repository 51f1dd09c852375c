"""``bntui A --compare B [--json | --csv]``: what changed in each BN layer between two files.

Both files are read at once, each in its own forked child (a damaged file cannot hang or crash
bntui), and the comparison runs here on the two models the children send back.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from bntui.core.errors import BntuiError

if TYPE_CHECKING:
    from bntui.core.guarded_open import PendingRead
    from bntui.core.model import ModelInfo
    from bntui.core.output import Kind

#: Flags of the other paths that make no sense with --compare.
_EXCLUSIVE = ("list", "layer", "input", "input_file", "model_input", "channel", "verify", "unsafe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--compare B``."""
    parser.add_argument(
        "--compare", metavar="B",
        help="compare MODEL's BN layers with those of model file B: matched layers, what changed and how far "
             "the outputs move (with --json or --csv for programs)",
    )


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int | None:
    """Compare and print; None when ``--compare`` was not given."""
    if args.compare is None:
        return None
    clashing = [f"--{name.replace('_', '-')}" for name in _EXCLUSIVE if getattr(args, name, None) not in (None, False)]
    if clashing:
        parser.error(f"--compare cannot be combined with {', '.join(clashing)}")
    if not args.model:
        parser.error("--compare needs a first model: bntui A --compare B")
    # Imported before forking, so both reading children inherit numpy and h5py instead of each
    # importing them again: on a busy two-core machine three imports cost more than the overlap saves.
    import bntui.core.reader  # noqa: F401
    from bntui.core.analysis.compare import compare_models
    from bntui.core.guarded_open import PendingRead
    from bntui.core.output import render

    first, second = _results((PendingRead(args.model), PendingRead(args.compare)))
    comparison = compare_models(first, second)
    kind: Kind = "json" if args.json else "csv" if args.csv else "text"
    text = render(comparison, kind, indent=sys.stdout.isatty())
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _results(pending: tuple[PendingRead, PendingRead]) -> tuple[ModelInfo, ModelInfo]:
    """Both models; every child is waited for before the first file's error is raised."""
    outcomes: list[ModelInfo | BntuiError] = []
    for read in pending:
        try:
            outcomes.append(read.result())
        except BntuiError as err:
            outcomes.append(err)
    for outcome in outcomes:
        if isinstance(outcome, BntuiError):
            raise outcome
    return outcomes[0], outcomes[1]  # type: ignore[return-value]
