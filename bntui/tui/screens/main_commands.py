"""The model screen's command palette: jump to any BN layer, and every command of the screen
and its panels (:meth:`MainScreen.commands`).

Layer paths are matched with their separators (``_``, ``/``, ``-``, ``.``) read as spaces, so
``conv4 block3 2`` finds ``conv4_block3_2_bn``: Textual's fuzzy matcher otherwise looks for the
typed spaces themselves and finds nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content

if TYPE_CHECKING:
    from bntui.tui.panels.panel import PanelCommand

_SEPARATORS = re.compile(r"[_/\-.]")


def spaced(text: str) -> str:
    """``text`` with path and name separators as spaces (same length, so highlights line up)."""
    return _SEPARATORS.sub(" ", text)


class LayerCommands(Provider):
    """One command per BN layer of the open model."""

    def _layers(self) -> list[str]:
        model = getattr(self.screen, "model", None)
        return [layer.path for layer in model.layers] if model is not None else []

    def _jump(self, path: str) -> None:
        self.screen.jump_to(path)  # type: ignore[attr-defined]

    async def discover(self) -> Hits:
        for path in self._layers():
            yield DiscoveryHit(f"Layer: {path}", partial(self._jump, path), help="Show this BN layer")

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(spaced(query))
        for path in self._layers():
            command = f"Layer: {path}"
            score = matcher.match(spaced(command))
            if score > 0:
                # the real path, with the highlights of the spaced match (same length)
                highlighted = Content(command, list(matcher.highlight(spaced(command)).spans))
                yield Hit(score, highlighted, partial(self._jump, path), help="Show this BN layer")


class ScreenCommands(Provider):
    """The screen's and its panels' commands (export, modes, capture, go to channel...)."""

    def _commands(self) -> Iterator[PanelCommand]:
        commands = getattr(self.screen, "commands", None)
        return iter(commands()) if commands is not None else iter(())

    async def discover(self) -> Hits:
        for command in self._commands():
            yield DiscoveryHit(command.title, command.run, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._commands():
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(score, matcher.highlight(command.title), command.run, help=command.help)
