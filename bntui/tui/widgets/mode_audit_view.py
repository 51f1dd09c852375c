"""What predict, fit, training=True and a plain call really do for a layer (the mode audit),
as a small table, with the file's own Keras beside today's where they differ, and the
audit's warnings (a training argument hard-coded at the call site) in the warning colour."""

from __future__ import annotations

from typing import ClassVar

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from bntui.core.analysis.explain_modes import CALLS, CallBehaviour, ModeAudit

CALL_NAMES = {"predict": "predict / evaluate", "fit": "fit", "call_training_true": "model(x, training=True)",
              "call": "model(x)"}


def describe(behaviour: CallBehaviour) -> str:
    """One call in words: its statistics and what it does to the moving ones."""
    uses = "batch statistics" if behaviour.statistics == "batch" else "moving statistics"
    if not behaviour.updates_moving_statistics:
        return f"{uses}, no update"
    return f"{uses}, updates them ({behaviour.variance_update or 'unknown'} variance)"


class ModeAuditView(Static):
    """Set :attr:`audit` (None before a layer is shown)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"mode-audit-view--warning", "mode-audit-view--title"}

    audit: reactive[ModeAudit | None] = reactive(None, layout=True)

    def watch_audit(self, audit: ModeAudit | None) -> None:
        self.update(self._render_audit(audit) if audit is not None else "")

    def _render_audit(self, audit: ModeAudit) -> RenderableType:
        title = self.get_component_rich_style("mode-audit-view--title")
        warning = self.get_component_rich_style("mode-audit-view--warning")
        frozen = "" if audit.trainable else ", frozen (trainable=False)"
        hard = "" if audit.call_training is None else f", training={audit.call_training} hard-coded at the call"
        table = Table(expand=True, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        table.add_column("call", no_wrap=True)
        table.add_column("Keras 3 today", overflow="fold")
        written = audit.behaviour_when_written
        if written is not None:
            table.add_column(f"{audit.written_by} (wrote the file)", overflow="fold")
        for call in CALLS:
            cells = [CALL_NAMES[call], describe(audit.behaviour[call])]
            if written is not None:
                cells.append(describe(written[call]))
            table.add_row(*cells)
        notes = [Text(note, style=warning if note.startswith("WARNING") else "") for note in audit.notes]
        return Group(Text(f"What each call does with this layer{frozen}{hard}", style=title), table, *notes)
