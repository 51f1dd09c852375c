"""What the comparison says about the selected pair: how it was matched, each finding with what
it usually means, the settings that differ, and how far the inference output moves."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from bntui.core.analysis.compare import NORMAL_SAMPLES, LayerPair
from bntui.core.numbers import fmt
from bntui.tui.widgets.pair_list import Entry


class PairDetails(Static):
    """Set ``entry`` (a pair or an unmatched layer) to redraw."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"pair-details--code", "pair-details--meaning"}

    entry: reactive[Entry | None] = reactive(None, layout=True)

    def render(self) -> Group | Text:
        entry = self.entry
        if entry is None:
            return Text("")
        code_style = self.get_component_rich_style("pair-details--code")
        meaning_style = self.get_component_rich_style("pair-details--meaning")
        if not isinstance(entry, LayerPair):
            layer = entry.layer
            return Group(Text.assemble((layer.path, "bold"), f"  {layer.channels} channels"),
                         Text.assemble((entry.finding.code, code_style), f": {entry.finding.message}"),
                         Text(entry.finding.meaning, style=meaning_style))
        title = Text.assemble((entry.first.path, "bold"))
        if entry.second.path != entry.first.path:
            title.append(" ~ ").append(entry.second.path, style="bold")
        title.append(f"  matched by {entry.matched_by}, {entry.first.channels} channels")
        lines = [title]
        for finding in entry.findings:
            lines.append(Text.assemble((finding.code, code_style), f": {finding.message}"))
            lines.append(Text(f"  {finding.meaning}", style=meaning_style))
        lines += [Text(f"note: {change.text()}", style=meaning_style) for change in entry.config_diff if change.note]
        if entry.output_effect:
            zeros, normal = entry.output_effect["zeros"], entry.output_effect["normal"]
            lines.append(Text(f"output moves by up to {fmt(normal.max_abs_diff)} ({fmt(normal.max_ulp, 3)} float32 "
                              f"ulps) at channel {normal.channel} on unit-normal input ({NORMAL_SAMPLES} samples), "
                              f"{fmt(zeros.max_abs_diff)} on zeros"))
        return Group(*lines)
