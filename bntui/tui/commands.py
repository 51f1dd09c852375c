"""Command palette: jump to any BN layer by a fuzzy match on its path."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class LayerCommands(Provider):
    """One command per BN layer of the open model."""

    def _layers(self) -> list[str]:
        model = getattr(self.screen, "model", None)
        return [layer.path for layer in model.layers] if model is not None else []

    async def discover(self) -> Hits:
        for path in self._layers():
            yield DiscoveryHit(f"Layer: {path}", partial(self.screen.jump_to, path), help="Show this BN layer")

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for path in self._layers():
            command = f"Layer: {path}"
            score = matcher.match(command)
            if score > 0:
                yield Hit(score, matcher.highlight(command), partial(self.screen.jump_to, path), help="Show this BN layer")
