"""Writing exports next to the user's work without ever overwriting a file.

If ``bn-steps.csv`` exists, the next export is ``bn-steps-1.csv``, and the caller is told
the name it got, so the UI can say where the file went.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bntui.core.model import BNLayer, ModelInfo
from bntui.core.output import to_csv, to_json
from bntui.core.report import computation_dict, layer_dict, parameter_rows, step_rows
from bntui.core.steps import Computation


def free_path(directory: Path, stem: str, suffix: str) -> Path:
    """``directory/stem.suffix``, or the first ``stem-N.suffix`` that does not exist yet."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "bntui"
    candidate = directory / f"{safe}{suffix}"
    number = 1
    while candidate.exists():
        candidate = directory / f"{safe}-{number}{suffix}"
        number += 1
    return candidate


def _write_new(directory: Path, stem: str, suffix: str, text: str) -> Path:
    """Write ``text`` to a file that did not exist ("x" mode: fail rather than overwrite)."""
    while True:
        path = free_path(directory, stem, suffix)
        try:
            with open(path, "x", encoding="utf-8") as handle:
                handle.write(text)
        except FileExistsError:  # taken between the check and the open: try the next name
            continue
        return path


def _stem(layer: BNLayer) -> str:
    return layer.path.replace("/", "_")


def export_parameters(layer: BNLayer, directory: Path, kind: str = "csv") -> Path:
    """The layer's per-channel parameter table (CSV) or everything known about it (JSON)."""
    if kind == "json":
        return _write_new(directory, f"{_stem(layer)}-parameters", ".json", to_json(layer_dict(layer), indent=True))
    return _write_new(directory, f"{_stem(layer)}-parameters", ".csv", to_csv(parameter_rows(layer)))


def export_steps(computation: Computation, directory: Path, kind: str = "csv") -> Path:
    """Every step of every channel of a computation, at full precision."""
    layer = computation.layer
    channels = list(range(layer.channels))
    if kind == "json":
        text = to_json(computation_dict(computation, channels), indent=True)
        return _write_new(directory, f"{_stem(layer)}-steps", ".json", text)
    return _write_new(directory, f"{_stem(layer)}-steps", ".csv", to_csv(step_rows(computation, channels)))


def all_parameter_rows(model: ModelInfo) -> list[list[Any]]:
    """Every layer's parameter rows in one table, a ``layer`` column first."""
    rows: list[list[Any]] = []
    for layer in model.layers:
        header, *body = parameter_rows(layer)
        if not rows:
            rows.append(["layer", *header])
        rows.extend([layer.path, *row] for row in body)
    return rows


def export_all_layers(model: ModelInfo, directory: Path) -> Path:
    """One CSV with the parameter rows of every BN layer of the model."""
    stem = f"{Path(model.path).stem}-all-layers-parameters"
    return _write_new(directory, stem, ".csv", to_csv(all_parameter_rows(model)))


def export_layer(
    layer: BNLayer, computation: Computation | None, directory: Path, kind: str = "csv"
) -> list[Path]:
    """CSV: the parameter table and, with a computation, the step table. JSON: the
    computation if there is one, else the layer."""
    if kind == "json":
        if computation is not None:
            return [export_steps(computation, directory, "json")]
        return [export_parameters(layer, directory, "json")]
    written = [export_parameters(layer, directory)]
    if computation is not None:
        written.append(export_steps(computation, directory))
    return written
