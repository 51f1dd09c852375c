"""The Parameters tab: every channel's weights and derived scale and offset, sortable, with a
sparkline per parameter so an outlier channel stands out; Enter on a row shows that channel."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual.app import ComposeResult
from textual.widget import Widget

from bntui.core.export import export_all_layers, export_parameters
from bntui.tui.panels.panel import Panel, PanelCommand
from bntui.tui.state import Selection
from bntui.tui.widgets.parameter_overview import ParameterOverview
from bntui.tui.widgets.parameter_table import ParameterTable


class ParametersPanel(Panel):
    """Follows the selected layer and channel; the table reports a chosen row to the screen."""

    TAB_TITLE = "Parameters"
    TAB_ID = "parameters"
    TAB_KEY = "a"

    def compose(self) -> ComposeResult:
        yield ParameterOverview(id="overview")
        yield ParameterTable(id="parameter-table")

    def focus_target(self) -> Widget:
        return self.query_one(ParameterTable)

    def watch_selection(self, old: Selection, new: Selection) -> None:
        table = self.query_one(ParameterTable)
        if new.layer is not old.layer:
            self.query_one(ParameterOverview).bn_layer = new.layer
            table.bn_layer = new.layer
        table.show_channel(new.channel)

    def export(self, kind: str, directory: Path) -> list[Path]:
        layer = self.selection.layer
        return [export_parameters(layer, directory, kind)] if layer is not None else []

    def export_all(self, directory: Path | None = None) -> Path | None:
        """Every layer's parameters in one CSV; the file written, or None without a model."""
        model = self.selection.model
        if model is None or not model.layers:
            self.notify("Nothing to export: the model has no BatchNormalization layers.", severity="warning")
            return None
        return self.write_file(lambda folder: export_all_layers(model, folder), directory)

    def commands(self) -> Iterable[PanelCommand]:
        yield PanelCommand("Export all layers", "Write every layer's parameters (with epsilon and warnings) to one CSV",
                           self.export_all)
