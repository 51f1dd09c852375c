"""A panel that needs the layer feeding the selected BN layer (Port and Fold).

Which layer feeds a BN, and its kernel, are read from the file with h5py: that read is
forked into a guarded child (:class:`bntui.core.guarded_open.PendingRead`), and forking is
safe only from the main thread. So the read starts in the main thread, when the layer is
shown, and a thread worker waits for it and prepares the panel's result off the UI thread.
Nothing is read while the tab is hidden (arrowing through a ResNet's layers forks nothing);
a layer already read is taken from a cache, since the file does not change under the TUI.
"""

from __future__ import annotations

import os
from typing import Generic, TypeVar

from textual import on, work
from textual.message import Message

from bntui.core.errors import BntuiError
from bntui.core.feeding_layers import read_feeding_layers
from bntui.core.guarded_open import PendingRead
from bntui.core.model import BNLayer, FeedingLayer
from bntui.tui.panels.panel import Panel, PanelContext
from bntui.tui.state import Selection

ResultT = TypeVar("ResultT")


class FeedingLayerRead(PendingRead):
    """The guarded read of what feeds one BN layer (with the feeding layer's weights or not)."""

    def __init__(self, path: str | os.PathLike[str], bn_path: str, with_weights: bool) -> None:
        self.bn_path, self.with_weights = bn_path, with_weights
        super().__init__(path)

    def _run(self) -> FeedingLayer:
        return read_feeding_layers(self.path, [self.bn_path], with_weights=self.with_weights)[self.bn_path]


class FeedingPanel(Panel, Generic[ResultT]):
    """Subclasses say whether they need the weights, prepare their result from the feeding
    layer in :meth:`prepare` (a worker thread), and draw it in :meth:`show_prepared`."""

    WITH_WEIGHTS = False

    class Ready(Message):
        """Worker: the panel's result for ``layer``, or why the feeding layer could not be read."""

        def __init__(self, layer: BNLayer, prepared: object | None, reason: str = "") -> None:
            super().__init__()
            self.layer, self.prepared, self.reason = layer, prepared, reason

    def __init__(self, context: PanelContext, *, id: str | None = None) -> None:
        super().__init__(context, id=id)
        self._cache: dict[str, ResultT] = {}
        self._asked: BNLayer | None = None

    def prepare(self, layer: BNLayer, feeding: FeedingLayer) -> ResultT:
        raise NotImplementedError

    def show_layer(self, layer: BNLayer | None) -> None:
        """Draw what is known before the feeding layer is read (the layer changed)."""

    def show_prepared(self, layer: BNLayer, prepared: ResultT | None, reason: str) -> None:
        """Draw the result for ``layer`` (None and ``reason``: the read failed)."""
        raise NotImplementedError

    def watch_selection(self, old: Selection, new: Selection) -> None:
        if new.layer is not old.layer:
            self.show_layer(new.layer)
            self._want(new)

    def on_show(self) -> None:
        self._want(self.selection)

    def _want(self, selection: Selection) -> None:
        layer, model = selection.layer, selection.model
        if layer is None or model is None or not self.is_on_screen:
            return
        if layer.path in self._cache:
            self.show_prepared(layer, self._cache[layer.path], "")
        elif self._asked is not layer:
            self._asked = layer
            self.wait_for_feeding(layer, FeedingLayerRead(model.path, layer.path, self.WITH_WEIGHTS))

    @work(thread=True, exclusive=True, group="feeding", name="feeding")
    def wait_for_feeding(self, layer: BNLayer, pending: FeedingLayerRead) -> None:
        try:
            self.post_message(self.Ready(layer, self.prepare(layer, pending.result())))
        except BntuiError as err:
            self.post_message(self.Ready(layer, None, str(err)))

    @on(Ready)
    def _prepared(self, message: FeedingPanel.Ready) -> None:
        layer = message.layer
        if self._asked is layer:
            self._asked = None
        if message.prepared is not None:
            self._cache[layer.path] = message.prepared  # type: ignore[assignment]
        if layer is self.selection.layer:
            self.show_prepared(layer, message.prepared, message.reason)  # type: ignore[arg-type]
