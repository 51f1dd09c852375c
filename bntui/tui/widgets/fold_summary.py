"""Whether a BN layer folds into the layer feeding it, or why not; the folded kernel and bias;
the int8 risk of the folded kernel; and TensorFlow's check of the fold, in ulps. Read from
:class:`bntui.core.analysis.fold.LayerFold`."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from rich.console import Group, RenderableType
from rich.text import Text
from textual.widgets import Static

from bntui.core.analysis.fold import LayerFold, scaled_role
from bntui.core.numbers import fmt


def _median(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else float("nan")


class FoldSummary(Static):
    """Call :meth:`show` with the fold (None and a status line while it is read)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"fold-summary--title", "fold-summary--yes", "fold-summary--no",
                                            "fold-summary--warning"}

    def show(self, fold: LayerFold | None, status: str = "", check: str = "") -> None:
        if fold is None:
            self.update(status)
            return
        self.update(self._render_fold(fold, check))

    def _render_fold(self, fold: LayerFold, check: str) -> RenderableType:
        title = self.get_component_rich_style("fold-summary--title")
        warning = self.get_component_rich_style("fold-summary--warning")
        if not fold.foldable:
            feeding = f" (fed by {fold.feeding_class} {fold.feeding_layer!r})" if fold.feeding_layer else ""
            return Group(Text(f"{fold.path}: NOT foldable{feeding}", style=self.get_component_rich_style("fold-summary--no")),
                         Text(str(fold.reason)))
        lines: list[RenderableType] = [
            Text(f"{fold.path}: foldable into {fold.feeding_class} {fold.feeding_layer!r}",
                 style=self.get_component_rich_style("fold-summary--yes")),
            Text("W' = W · s per output channel, b' = (b − mean) · s + beta, s = gamma / sqrt(var + eps)"),
        ]
        folded = fold.folded or {}
        role = scaled_role(str(fold.feeding_class))
        for name, array in folded.items():
            what = "scaled by s" if name == role else "bias, folded" if name == "bias" else "unchanged"
            lines.append(Text(f"  {name}: shape {tuple(array.shape)}, {array.dtype} ({what})"))
        lines.append(Text(check))
        q = fold.quantization
        if q is not None:
            lines.append(Text("int8 quantization of the folded kernel", style=title))
            lines.append(Text(f"per-tensor range ±{fmt(q.per_tensor_range)}; the median channel loses "
                              f"{fmt(q.median_bits_lost, 3)} of its 8 bits (before folding: "
                              f"{fmt(_median(q.bits_lost_before_fold), 3)})"))
            if q.worst_channels:
                shown = ", ".join(map(str, q.worst_channels[:8])) + (" …" if len(q.worst_channels) > 8 else "")
                lines.append(Text(f"channels dominating the per-tensor scale: {shown}", style=warning))
            lines.append(Text("per-channel quantization removes this loss" if q.per_channel_fixes
                              else "per-tensor int8 is fine here"))
        lines += [Text(f"· {note}", style=warning) for note in fold.notes]
        return Group(*lines)
