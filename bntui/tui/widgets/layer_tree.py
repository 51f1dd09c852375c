"""The model's BN layers as a tree: nested models are branches, BN layers are leaves.

Every leaf shows its channel count and a ⚠ where diagnostics found something, and those are
never cut: when the sidebar is narrower than a name, the name loses characters in its middle
(``conv2_bl…1_1_bn``), where Keras' long names repeat themselves, so the distinguishing
ends (``batch_normalization_13``) stay readable. Labels are refitted whenever the width changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from bntui.core.diagnostics import diagnose
from bntui.core.model import ModelInfo

#: A name is never shown shorter than this, even in a very narrow sidebar.
MIN_NAME = 6
#: Cells a branch's expand icon takes before its label.
ICON_WIDTH = 2


def elide_middle(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, shortened in the middle with an ellipsis."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = width // 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


@dataclass(frozen=True)
class _Leaf:
    """What a leaf shows: the layer's own name, its channel count, whether it has findings."""

    path: str
    name: str
    channels: int
    warned: bool
    depth: int

    @property
    def suffix(self) -> str:
        return f" {self.channels} ch" + (" ⚠" if self.warned else "")


class LayerTree(Tree[str]):
    """Shows every BN layer by its path; highlighting one announces it to the screen."""

    COMPONENT_CLASSES = Tree.COMPONENT_CLASSES | {"layer-tree--warning"}

    class LayerSelected(Message):
        """The user moved to a BN layer (by key, mouse or a jump from elsewhere)."""

        def __init__(self, path: str) -> None:
            super().__init__()
            self.path = path

    def __init__(self, **kwargs: object) -> None:
        super().__init__("model", **kwargs)  # type: ignore[arg-type]
        self.show_root = False
        self.guide_depth = 2
        self._leaves: dict[str, tuple[TreeNode[str], _Leaf]] = {}
        self._fitted_width = -1

    def show_model(self, model: ModelInfo) -> None:
        """Rebuild the tree for ``model``; the first layer is highlighted."""
        self.clear()
        self._leaves.clear()
        self.root.label = Text(model.model_name or "model")
        branches: dict[str, TreeNode[str]] = {"": self.root}
        for layer in model.layers:
            parts = layer.path.split("/")
            parent = self.root
            for depth in range(1, len(parts)):
                key = "/".join(parts[:depth])
                if key not in branches:
                    branches[key] = parent.add(Text(parts[depth - 1], style="bold"), expand=True)
                parent = branches[key]
            leaf = _Leaf(layer.path, parts[-1], layer.channels, bool(diagnose(layer)), len(parts) - 1)
            self._leaves[layer.path] = (parent.add_leaf(self._label(leaf, None), data=layer.path), leaf)
        self._fitted_width = -1
        self._fit_labels()
        if model.layers:
            self.select_path(model.layers[0].path)

    def wanted_width(self) -> int:
        """Cells the widest leaf needs unshortened (guides, name, count and mark)."""
        return max((leaf.depth * self.guide_depth + len(leaf.name) + len(leaf.suffix)
                    for _node, leaf in self._leaves.values()), default=0)

    def _label(self, leaf: _Leaf, width: int | None) -> Text:
        room = None if width is None else max(MIN_NAME, width - leaf.depth * self.guide_depth - len(leaf.suffix))
        label = Text(leaf.name if room is None else elide_middle(leaf.name, room))
        label.append(f" {leaf.channels} ch", style="dim")
        if leaf.warned:
            label.append(" ⚠", style=self.get_component_rich_style("layer-tree--warning"))
        return label

    def _fit_labels(self) -> None:
        width = self.scrollable_content_region.width
        if width <= 0 or width == self._fitted_width:
            return
        self._fitted_width = width
        for node, leaf in self._leaves.values():
            node.set_label(self._label(leaf, width))

    def on_resize(self, _event: events.Resize) -> None:
        self._fit_labels()

    def select_path(self, path: str) -> None:
        """Move the cursor to a layer's leaf (used for jumps from diagnostics or commands)."""
        entry = self._leaves.get(path)
        if entry is not None:
            # The node's line is known only once the tree has laid out its new nodes.
            self.call_after_refresh(self.move_cursor, entry[0])
            self.post_message(self.LayerSelected(path))

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        event.stop()
        if event.node.data is not None:
            self.post_message(self.LayerSelected(event.node.data))

    def on_tree_node_selected(self, event: Tree.NodeSelected[str]) -> None:
        event.stop()
