"""The compare view's layer list: every matched pair with a badge per finding, then the layers
that have no partner, under a heading naming the file they are in.

A badge is a short word for a finding code of :mod:`bntui.core.analysis.compare`, coloured by
how much it usually matters: identical, a change worth a look, a broken load or conversion, or
only information. The full message and meaning are in the pair's details; the badge is there to
let the eye run down a 53-layer list and stop at the ``reset`` or ``not loaded`` one.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from bntui.core.analysis.compare import LayerPair, ModelComparison, Unmatched

Entry = LayerPair | Unmatched

#: Each finding code's badge and its kind ("same", "changed", "broken", "info").
BADGES: dict[str, tuple[str, str]] = {
    "unchanged": ("same", "same"),
    "moving_statistics_changed": ("stats", "changed"),
    "gamma_beta_changed": ("trained", "changed"),
    "statistics_reset": ("reset", "broken"),
    "not_loaded": ("not loaded", "broken"),
    "mean_variance_swapped": ("mean⇄var", "broken"),
    "gamma_beta_swapped": ("γ⇄β", "broken"),
    "folded": ("folded", "info"),
    "epsilon_changed": ("eps", "changed"),
    "momentum_changed": ("momentum", "info"),
    "config_changed": ("config", "changed"),
    "channels_changed": ("channels", "broken"),
    "dtype_changed": ("dtype", "info"),
    "weights_from_other_layer": ("other layer", "broken"),
    "only_in_first": ("only A", "broken"),
    "only_in_second": ("only B", "broken"),
}


def entry_codes(entry: Entry) -> tuple[str, ...]:
    """The finding codes of a pair, or the one of an unmatched layer."""
    return entry.codes if isinstance(entry, LayerPair) else (entry.finding.code,)


def entry_label(entry: Entry) -> str:
    """A pair's label (both paths where they differ), or an unmatched layer's path."""
    return entry.label if isinstance(entry, LayerPair) else entry.layer.path


class PairList(OptionList):
    """Set the comparison with :meth:`show`; moving to an entry posts :class:`EntryHighlighted`."""

    COMPONENT_CLASSES: ClassVar[set[str]] = OptionList.COMPONENT_CLASSES | {
        "pair-list--same", "pair-list--changed", "pair-list--broken", "pair-list--info"}

    class EntryHighlighted(Message):
        """The user moved to a pair or an unmatched layer (``index`` into :attr:`PairList.entries`)."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.entries: list[Entry] = []

    def show(self, comparison: ModelComparison, first_name: str, second_name: str) -> None:
        """List the pairs, then each file's layers without a partner; the first entry is highlighted."""
        self.clear_options()
        self.entries = [*comparison.pairs, *comparison.unmatched]
        options: list[Option | None] = [Option(self.label(pair), id=str(i)) for i, pair in enumerate(comparison.pairs)]
        offset = len(comparison.pairs)
        for side, name in (("first", first_name), ("second", second_name)):
            items = [(i, item) for i, item in enumerate(comparison.unmatched, offset)
                     if item.finding.code == f"only_in_{side}"]
            if items:
                options += [None, Option(Text(f"only in {name}", style="bold"), disabled=True)]
                options += [Option(self.label(item), id=str(i)) for i, item in items]
        self.add_options(options)
        if self.entries:
            self.highlighted = 0

    def label(self, entry: Entry) -> Text:
        """The entry's path, then its badges."""
        text = Text(entry_label(entry))
        for code in entry_codes(entry):
            word, kind = BADGES[code]
            text.append(" ")
            text.append(f" {word} ", style=self.get_component_rich_style(f"pair-list--{kind}"))
        return text

    def wanted_width(self) -> int:
        """Cells the widest entry needs unwrapped."""
        return max((self.label(entry).cell_len for entry in self.entries), default=0)

    def select_index(self, index: int) -> None:
        """Highlight the entry ``index`` (a palette jump)."""
        for position in range(self.option_count):
            if self.get_option_at_index(position).id == str(index):
                self.highlighted = position
                return

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.EntryHighlighted(int(event.option.id)))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
