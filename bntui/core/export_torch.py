"""Writing BN layers as a PyTorch ``state_dict`` in a ``.safetensors`` file, with a JSON sidecar.

safetensors holds named tensors and nothing executable, so PyTorch reads it with
``safetensors.torch.load_file`` and ``module.load_state_dict`` without bntui, and without
the pickle risks of a ``.pt`` file. Keys are ``<layer path with dots>.<state_dict key>``
(``encoder.bn_1.running_var``), as a PyTorch model with the same nesting names them. The
sidecar (``<file>.json``) holds what a tensor file cannot: eps, momentum (PyTorch's
direction), affine, the module class, and a sha256 of every tensor's bytes.

The ``safetensors`` package is imported only when writing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bntui.core.errors import BntuiError

if TYPE_CHECKING:
    from bntui.core.analysis.port import LayerPort


def torch_state_dict(ports: list[LayerPort]) -> dict[str, np.ndarray]:
    """Every layer's ``state_dict`` arrays under their prefixed PyTorch names."""
    tensors: dict[str, np.ndarray] = {}
    for port in ports:
        for key, array in port.torch_tensors().items():
            tensors[f"{port.prefix}.{key}"] = np.ascontiguousarray(array)
    return tensors


def tensor_sha256(array: np.ndarray) -> str:
    """sha256 of the tensor's bytes as safetensors stores them (C order, little-endian)."""
    data = np.ascontiguousarray(array)
    return hashlib.sha256(data.astype(data.dtype.newbyteorder("<"), copy=False).tobytes()).hexdigest()


def sidecar(ports: list[LayerPort], tensors: dict[str, np.ndarray], source: str) -> dict[str, Any]:
    """The settings a tensor file cannot carry, and a checksum of each tensor."""
    return {
        "source": source,
        "layers": {
            port.prefix: {
                "keras_path": port.layer.path,
                "module": port.torch_module,
                "num_features": port.layer.channels,
                "eps": port.layer.epsilon,
                "momentum": port.torch_momentum,
                "affine": port.affine,
                "track_running_stats": True,
                "state_dict": port.state_dict_sources(),
            }
            for port in ports
        },
        "sha256": {key: tensor_sha256(array) for key, array in tensors.items()},
    }


def import_writer(module: str, package: str) -> Any:
    """An optional export package, or a one-line message saying how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise BntuiError(f"this export needs the {package} package: pip install {package} "
                         "(or pip install 'bntui[port]' for every export)") from None


def write_new(path: Path, data: bytes) -> None:
    """Write a file that must not exist yet: exports never overwrite."""
    try:
        with open(path, "xb") as handle:
            handle.write(data)
    except FileExistsError:
        raise BntuiError(f"{path} exists; bntui never overwrites a file, choose another name") from None
    except OSError as err:
        raise BntuiError(f"cannot write {path}: {err.strerror or err}") from None


def sidecar_path(path: Path) -> Path:
    """``out.safetensors`` -> ``out.safetensors.json``."""
    return path.with_name(path.name + ".json")


def export_torch(ports: list[LayerPort], path: str | Path, source: str) -> list[Path]:
    """Write the safetensors file and its sidecar; return both paths."""
    save = import_writer("safetensors.numpy", "safetensors").save
    target = Path(path)
    extra = sidecar_path(target)
    for existing in (target, extra):
        if existing.exists():
            raise BntuiError(f"{existing} exists; bntui never overwrites a file, choose another name")
    tensors = torch_state_dict(ports)
    write_new(target, save(tensors, metadata={"format": "pt", "producer": "bntui"}))
    write_new(extra, (json.dumps(sidecar(ports, tensors, source), indent=2) + "\n").encode())
    return [target, extra]
