"""The tabs of the model screen, in the order they appear: one module per panel."""

from __future__ import annotations

from bntui.tui.panels.data import DataPanel
from bntui.tui.panels.diagnostics import DiagnosticsPanel
from bntui.tui.panels.fold import FoldPanel
from bntui.tui.panels.panel import Panel, PanelCommand, PanelContext
from bntui.tui.panels.parameters import ParametersPanel
from bntui.tui.panels.port import PortPanel
from bntui.tui.panels.steps import StepsPanel
from bntui.tui.panels.why import WhyPanel

#: Registering a panel is adding it here.
PANELS: tuple[type[Panel], ...] = (StepsPanel, ParametersPanel, DiagnosticsPanel, WhyPanel, PortPanel, FoldPanel, DataPanel)

__all__ = ["PANELS", "DataPanel", "DiagnosticsPanel", "Panel", "PanelCommand", "PanelContext", "ParametersPanel", "StepsPanel"]
