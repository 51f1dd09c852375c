"""Writing exports next to the user's work without ever overwriting a file.

If ``bn-steps.csv`` exists, the next export is ``bn-steps-1.csv``, and the caller is told
the name it got, so the UI can say where the file went.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bntui.core.report import computation_dict, layer_dict, parameter_rows, step_rows, to_csv, to_json
from bntui.core.steps import Computation
from bntui.core.model import BNLayer


def free_path(directory: Path, stem: str, suffix: str) -> Path:
    """``directory/stem.suffix``, or the first ``stem-N.suffix`` that does not exist yet."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "bntui"
    candidate = directory / f"{safe}{suffix}"
    number = 1
    while candidate.exists():
        candidate = directory / f"{safe}-{number}{suffix}"
        number += 1
    return candidate


def _write_new(path: Path, text: str) -> None:
    with open(path, "x", encoding="utf-8") as handle:  # "x": fail rather than overwrite
        handle.write(text)


def export_layer(
    layer: BNLayer, computation: Computation | None, directory: Path, kind: str = "csv"
) -> list[Path]:
    """Write the layer's parameter table and, with a computation, its step table."""
    written: list[Path] = []
    stem = layer.path.replace("/", "_")
    if kind == "json":
        data: dict[str, Any] = layer_dict(layer)
        if computation is not None:
            data = computation_dict(computation, list(range(layer.channels)))
        path = free_path(directory, f"{stem}-{'steps' if computation else 'parameters'}", ".json")
        _write_new(path, to_json(data, indent=True))
        return [path]
    path = free_path(directory, f"{stem}-parameters", ".csv")
    _write_new(path, to_csv(parameter_rows(layer)))
    written.append(path)
    if computation is not None:
        path = free_path(directory, f"{stem}-steps", ".csv")
        _write_new(path, to_csv(step_rows(computation, list(range(layer.channels)))))
        written.append(path)
    return written
