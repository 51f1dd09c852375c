"""Analyses: pure functions from layers (and inputs) to frozen results.

Each module returns a result that satisfies :class:`bntui.core.output.Result` (``to_dict``,
``rows``, ``to_text``), so the CLI and the TUI print and export it through one printer.
Analyses never import a reader: they receive :class:`bntui.core.model.BNLayer` objects.
"""
