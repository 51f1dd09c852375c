"""The Why tab: "I fed this input and got (or expected) these numbers: why?".

The user pastes the numbers into the box; a worker runs the core's explainer
(:func:`bntui.core.analysis.explain.explain`) on the selected layer and the input the Steps
tab shows, and the ranked explanations come back as a list. The highlighted one is shown in
full: its text, and its computation beside Keras' own, step by step, with the first step where
they part marked. Under it, the layer's mode audit says what predict, fit, training=True and a
plain call really do. A late result for a layer or input no longer shown is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import ClassVar

import numpy as np
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Static

from bntui.core.analysis.explain import ExplainResult, Explanation, explain
from bntui.core.analysis.explain_catalogue import CORRECT, DENOMINATORS, Context, Recipe
from bntui.core.analysis.explain_modes import audit_modes
from bntui.core.errors import BntuiError
from bntui.core.export import free_path
from bntui.core.input_parse import load_npy, parse_for_layer, shape_for_layer
from bntui.core.model import BNLayer, ModelInfo
from bntui.core.numbers import fmt, fmt_list
from bntui.core.output import render
from bntui.core.steps import Computation, compute
from bntui.core.tolerance import Given, exact, typed
from bntui.tui.panels.panel import Panel, PanelCommand, PanelContext
from bntui.tui.screens.npy_dialog import NpyDialog
from bntui.tui.state import InputSource, Selection
from bntui.tui.widgets.computation_comparison import ComparedStep, Comparison, ComputationComparison
from bntui.tui.widgets.explanation_list import ExplanationList
from bntui.tui.widgets.given_values_bar import GivenValuesBar
from bntui.tui.widgets.mode_audit_view import ModeAuditView


@dataclass(frozen=True, eq=False)
class WhyRequest:
    """Values to explain for one layer and input: typed ``text``, or an exact ``file``."""

    layer: BNLayer
    source: InputSource
    kind: str
    channel: int
    model: ModelInfo | None
    text: str = ""
    file: Path | None = None

    def given(self) -> Given:
        """The values with their tolerance (the digits typed, or exact from a file)."""
        return exact(load_npy(self.file)) if self.file is not None else typed(self.text)

    def describe(self) -> str:
        return f"values from {self.file}" if self.file is not None else self.text.strip()


@dataclass(frozen=True, eq=False)
class WhyAnswer:
    """The explainer's result and what the detail view compares against: Keras' own
    computation of the same input and its right recipe."""

    result: ExplainResult
    computation: Computation
    right: Recipe


def _shaped(layer: BNLayer, source: InputSource) -> np.ndarray:
    """The input as the Steps tab shapes it for the layer."""
    if source.kind == "typed":
        return parse_for_layer(source.text, layer.channels, layer.axis)
    assert source.values is not None
    return shape_for_layer(source.values, layer.channels, layer.axis, typed_flat=False)


def answer(request: WhyRequest) -> WhyAnswer:
    """Explain the request's values. All values of the input at once, or, when the user gave
    as many values as one channel has, those of the channel shown."""
    layer = request.layer
    x = _shaped(layer, request.source)
    given = request.given()
    channel = None if given.values.size == x.size or layer.channels == 1 else request.channel
    result = explain(layer, x, given, kind=request.kind, channel=channel, model=request.model)
    computation = compute(layer, result.x)
    return WhyAnswer(result, computation, Context(layer, computation, request.model).right_recipe())


def _same(a: float, b: float) -> bool:
    return bool(a == b or (np.isnan(a) and np.isnan(b)))


def comparison(found: WhyAnswer, entry: Explanation, channel: int) -> Comparison | None:
    """Keras' computation of ``channel`` beside the explanation's, step by step (None for the
    correct entry and for ``unexplained``, which have nothing to set beside Keras)."""
    variant = entry.variant
    if variant is None or entry.code == CORRECT:
        return None
    computation, right, result = found.computation, found.right, found.result
    keras = computation.inference.output_as_keras
    right_y = computation.channel_values(keras if keras is not None else computation.inference.output, channel)
    wrong_y = entry.values if result.channel is not None else computation.channel_values(
        entry.values.reshape(computation.x.shape), channel)
    title = f"{entry.code} computes"
    output = ComparedStep("y", fmt_list(right_y), fmt_list(wrong_y), not np.array_equal(right_y, wrong_y, equal_nan=True))
    wrong = variant.recipe
    if wrong is None:
        return Comparison("Keras computes", title,
                          (ComparedStep("formula", right.formula(channel)[4:], variant.formula, True), output))

    def number(name: str, a: float, b: float) -> ComparedStep:
        return ComparedStep(name, fmt(a), fmt(b), not _same(a, b))

    c = channel
    right_den = float(DENOMINATORS[right.denominator](right.variance, right.epsilon)[c])
    wrong_den = float(DENOMINATORS[wrong.denominator](wrong.variance, wrong.epsilon)[c])
    steps = (
        number("mean", right.mean[c], wrong.mean[c]),
        number("variance", right.variance[c], wrong.variance[c]),
        number("epsilon", right.epsilon[c], wrong.epsilon[c]),
        ComparedStep("denominator", f"{right.denominator} = {fmt(right_den)}", f"{wrong.denominator} = {fmt(wrong_den)}",
                     right.denominator != wrong.denominator or not _same(right_den, wrong_den)),
        number("gamma", right.gamma[c], wrong.gamma[c]),
        number("beta", right.beta[c], wrong.beta[c]),
        number("s = gamma / denominator", right.scale()[c], wrong.scale()[c]),
        number("offset = beta - mean * s", right.offset()[c], wrong.offset()[c]),
        output,
    )
    return Comparison("Keras computes", title, steps)


class WhyPanel(Panel):
    """Follows the selected layer, channel and input; the box takes the values to explain."""

    TAB_TITLE = "Why?"
    TAB_ID = "why"
    TAB_KEY = "w"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("v", "focus_values", "Values box")]

    class Explained(Message):
        """Worker: the explanations for ``request``."""

        def __init__(self, request: WhyRequest, found: WhyAnswer) -> None:
            super().__init__()
            self.request, self.found = request, found

    class Failed(Message):
        """Worker: ``request`` cannot be explained (values that do not fit, no input...)."""

        def __init__(self, request: WhyRequest, reason: str) -> None:
            super().__init__()
            self.request, self.reason = request, reason

    def __init__(self, context: PanelContext, *, id: str | None = None) -> None:
        super().__init__(context, id=id)
        self.request: WhyRequest | None = None
        self.found: WhyAnswer | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="why-input")
        yield GivenValuesBar(id="why-given")
        yield Static("", id="why-status")
        yield ExplanationList(id="why-list")
        with VerticalScroll(id="why-detail"):
            yield Static("", id="why-text")
            yield ComputationComparison(id="why-comparison")
            yield ModeAuditView(id="why-audit")

    def on_mount(self) -> None:
        self.query_one(ExplanationList).display = False
        self.query_one(ComputationComparison).display = False

    def focus_target(self) -> Widget:
        if self.found is None:
            return self.query_one(GivenValuesBar).input
        return self.query_one(ExplanationList)

    # -- the selection flowing down ---------------------------------------------------------

    def watch_selection(self, old: Selection, new: Selection) -> None:
        layer = new.layer
        if layer is not old.layer:
            self.query_one(ModeAuditView).audit = audit_modes(layer, layer.call_training) if layer is not None else None
        self._show_input(new)
        if layer is not old.layer or new.input is not old.input:
            if self.request is not None:
                self._explain(self.request.text, self.request.kind, self.request.file)
        elif new.channel != old.channel:
            self._show_detail()

    def _show_input(self, selection: Selection) -> None:
        layer, source = selection.layer, selection.input
        line = self.query_one("#why-input", Static)
        if layer is None:
            line.update("")
        elif source is None:
            line.update(f"{layer.path}: first type the input you fed the layer (press i), then paste here what you got.")
        elif not source.fits(layer):
            line.update(f"The input captured at {source.captured_at} belongs to that layer: capture or type one for "
                        f"{layer.path} (c or i).")
        else:
            line.update(f"{layer.path} · {source.describe()}")

    # -- explaining --------------------------------------------------------------------------

    def _explain(self, text: str, kind: str, file: Path | None = None) -> None:
        selection = self.selection
        layer, source = selection.layer, selection.input
        status = self.query_one("#why-status", Static)
        self.found = None
        self._show_result()
        if layer is None:
            return
        self.request = WhyRequest(layer, source or InputSource.typed(""), kind, selection.channel, selection.model,
                                  text=text, file=file)
        if source is None or not source.fits(layer):
            status.update("Nothing to explain against: this layer has no input yet (press i to type one).")
            return
        if file is None and not text.strip():
            status.update(f"Paste the numbers you {kind} in the box, then Enter.")
            return
        status.update(f"Explaining {self.request.describe()}…")
        self.run_explain(self.request)

    @work(thread=True, exclusive=True, group="why", name="why")
    def run_explain(self, request: WhyRequest) -> None:
        """Rank the catalogue for the values (large inputs take seconds)."""
        try:
            self.post_message(self.Explained(request, answer(request)))
        except BntuiError as err:
            self.post_message(self.Failed(request, str(err)))

    @on(Explained)
    def _explained(self, message: Explained) -> None:
        if message.request is not self.request:
            return
        self.found = message.found
        result = message.found.result
        first = result.explanations[0]
        verdict = (f"explained: {first.code} ({first.title})" if result.explained
                   else "unexplained: no known computation gives these values; the closest are listed")
        where = f" in channel {result.channel}" if result.channel is not None else ""
        self.query_one("#why-status", Static).update(
            f"you {result.kind} {fmt_list(result.given.values)}{where} · {verdict}\ntolerance: {result.given.describe(short=True)}")
        self._show_result()

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        if message.request is self.request:
            self.query_one("#why-status", Static).update(f"Cannot explain {message.request.describe()}: {message.reason}")

    def _show_result(self) -> None:
        table = self.query_one(ExplanationList)
        table.show(self.found.result if self.found is not None else None)
        table.display = self.found is not None
        self._show_detail()

    @on(DataTable.RowHighlighted, "#why-list")
    def _row_highlighted(self) -> None:
        self._show_detail()

    def _highlighted(self) -> Explanation | None:
        if self.found is None:
            return None
        explanations = self.found.result.explanations
        row = self.query_one(ExplanationList).cursor_row
        return explanations[row] if 0 <= row < len(explanations) else None

    def _show_detail(self) -> None:
        entry = self._highlighted()
        text = self.query_one("#why-text", Static)
        view = self.query_one(ComputationComparison)
        if entry is None or self.found is None:
            text.update("")
            view.comparison = None
            return
        result = self.found.result
        channel = result.channel if result.channel is not None else self.selection.channel
        layer = self.found.computation.layer
        if not 0 <= channel < layer.channels:
            channel = 0
        where = f"{', '.join(map(str, entry.channels))}" if entry.channels else ""
        lines = [f"{entry.code}: {entry.title}", entry.explanation]
        if entry.parameters:
            lines.append("parameters: " + ", ".join(f"{key} {value}" for key, value in entry.parameters.items()))
        if entry.difference.mismatches:
            lines.append(f"{entry.difference.describe(4)}: NaN or infinite on one side only, so it cannot reproduce")
        if where:
            lines.append(f"matches in channels {where}")
        if layer.channels > 1:
            lines.append(f"channel {channel} step by step (n/p for another):" if result.channel is None
                         else f"channel {channel} step by step:")
        text.update("\n".join(lines))
        view.comparison = comparison(self.found, entry, channel)

    # -- messages from the box ---------------------------------------------------------------

    @on(GivenValuesBar.ValuesSubmitted)
    def _values_submitted(self, event: GivenValuesBar.ValuesSubmitted) -> None:
        event.stop()
        self._explain(event.text, event.kind)

    @on(GivenValuesBar.Left)
    def _left(self, event: GivenValuesBar.Left) -> None:
        event.stop()
        self.screen.set_focus(self.query_one(ExplanationList))

    # -- actions, commands, export -----------------------------------------------------------

    def action_focus_values(self) -> None:
        self.screen.set_focus(self.query_one(GivenValuesBar).input)

    def explain_text(self, text: str, kind: str = "got") -> None:
        """Explain typed values (also what tests and the palette call)."""
        bar = self.query_one(GivenValuesBar)
        bar.kind = kind
        bar.input.value = text
        self._explain(text, kind)

    def ask(self, kind: str) -> None:
        """Put the keyboard in the box, set to ``kind``."""
        self.query_one(GivenValuesBar).kind = kind
        self.action_focus_values()

    def load_given(self) -> None:
        """Explain values loaded from a .npy file (taken as exact)."""
        def chosen(path: Path | None) -> None:
            if path is not None:
                self._explain("", self.query_one(GivenValuesBar).kind, path)

        self.app.push_screen(NpyDialog(), chosen)

    def commands(self) -> Iterable[PanelCommand]:
        yield PanelCommand("Why: explain the numbers I got", "Paste what your code printed for this input",
                           partial(self._palette_ask, "got"))
        yield PanelCommand("Why: explain the numbers I expected", "Paste what you expected for this input",
                           partial(self._palette_ask, "expected"))
        yield PanelCommand("Why: load the numbers I got from a .npy", "Explain an output saved with numpy (exact values)",
                           self.load_given)

    async def _palette_ask(self, kind: str) -> None:
        await self.app.run_action(f"show_tab({self.TAB_ID!r})", self.screen)
        self.ask(kind)

    def export(self, kind: str, directory: Path) -> list[Path]:
        """The explanations shown, as CSV (one row each) or JSON (the ``--got --json`` form)."""
        if self.found is None:
            return []
        result = self.found.result
        suffix = ".json" if kind == "json" else ".csv"
        text = render(result, "json" if kind == "json" else "csv", indent=True)
        while True:
            path = free_path(directory, f"{result.layer_path.replace('/', '_')}-why", suffix)
            try:
                with open(path, "x", encoding="utf-8") as handle:
                    handle.write(text if text.endswith("\n") else text + "\n")
            except FileExistsError:  # taken between the check and the open: try the next name
                continue
            return [path]
