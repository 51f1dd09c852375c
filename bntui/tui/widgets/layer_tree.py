"""The model's BN layers as a tree: nested models are branches, BN layers are leaves."""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from bntui.core.diagnostics import diagnose
from bntui.core.model import ModelInfo


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
        self._leaves: dict[str, TreeNode[str]] = {}

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
            label = Text(parts[-1])
            label.append(f"  {layer.channels} ch", style="dim")
            if diagnose(layer):
                label.append("  ⚠", style=self.get_component_rich_style("layer-tree--warning"))
            self._leaves[layer.path] = parent.add_leaf(label, data=layer.path)
        if model.layers:
            self.select_path(model.layers[0].path)

    def select_path(self, path: str) -> None:
        """Move the cursor to a layer's leaf (used for jumps from diagnostics or commands)."""
        node = self._leaves.get(path)
        if node is not None:
            # The node's line is known only once the tree has laid out its new nodes.
            self.call_after_refresh(self.move_cursor, node)
            self.post_message(self.LayerSelected(path))

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        event.stop()
        if event.node.data is not None:
            self.post_message(self.LayerSelected(event.node.data))

    def on_tree_node_selected(self, event: Tree.NodeSelected[str]) -> None:
        event.stop()
