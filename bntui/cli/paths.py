"""The analysis paths of the command line, one module each.

A path module (``bntui.cli.compare``, ``bntui.cli.port``...) has two functions:

- ``add_arguments(parser: argparse.ArgumentParser) -> None`` adds its flags (keep the module
  light to import: argparse only at module level, numpy and the core inside ``run``);
- ``run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int | None`` returns
  None when its flags were not given (the next path is asked), or an exit code after doing
  the work. It checks every argument before any slow work (``parser.error`` for usage), and
  lets :class:`bntui.core.errors.BntuiError` propagate: :func:`bntui.cli.main.main` turns
  it into one line on stderr and exit code 1.

Paths are asked in this order, before listing, stepping and the TUI.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: Module names under ``bntui.cli``; add one line per analysis.
PATHS: tuple[str, ...] = (
    "compare",
    "explain",
    "port",
    "fold",
    "drift",
)


def load() -> list[ModuleType]:
    """The registered path modules, imported."""
    return [importlib.import_module(f"bntui.cli.{name}") for name in PATHS]
