"""The ``bntui`` command: :func:`main` parses, builds, runs and returns an exit code.

Each analysis beyond listing and stepping (compare, port, fold, explain, drift...) is one
small module in this package, registered in :mod:`bntui.cli.paths`.
"""

from bntui.cli.main import DEMO_MODEL, build_parser, main

__all__ = ["DEMO_MODEL", "build_parser", "main"]
