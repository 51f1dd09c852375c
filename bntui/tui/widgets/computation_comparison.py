"""The wrong computation beside the right one, step by step, with the first step where they
part marked: that is where a user's own code has to be looked at."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich import box
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static


@dataclass(frozen=True)
class ComparedStep:
    """One step as Keras computes it and as the explanation does; ``differs`` says whether the
    two disagree there."""

    name: str
    right: str
    wrong: str
    differs: bool


@dataclass(frozen=True)
class Comparison:
    """The steps of one channel, and the two column headings."""

    right_title: str
    wrong_title: str
    steps: tuple[ComparedStep, ...]


class ComputationComparison(Static):
    """Set :attr:`comparison` (None: nothing to compare, the widget is hidden)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"computation-comparison--parted", "computation-comparison--differs"}

    comparison: reactive[Comparison | None] = reactive(None, layout=True)

    def watch_comparison(self, comparison: Comparison | None) -> None:
        self.display = comparison is not None
        if comparison is None:
            self.update("")
            return
        parted = self.get_component_rich_style("computation-comparison--parted")
        differs = self.get_component_rich_style("computation-comparison--differs")
        table = Table(expand=True, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        table.add_column("step", no_wrap=True)
        table.add_column(comparison.right_title, overflow="fold")
        table.add_column(comparison.wrong_title, overflow="fold")
        table.add_column("", no_wrap=True)
        first = next((index for index, step in enumerate(comparison.steps) if step.differs), None)
        for index, step in enumerate(comparison.steps):
            mark = Text("◀ they part here", style=parted) if index == first else Text("")
            style = differs if step.differs else None
            table.add_row(step.name, step.right, Text(step.wrong, style=style or ""), mark)
        self.update(table)
