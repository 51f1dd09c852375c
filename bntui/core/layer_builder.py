"""Turning a set of weight datasets plus settings into a validated :class:`BNLayer`.

Every reader ends here, so every format gets the same checks and the same messages.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from bntui.core.errors import ModelFileError
from bntui.core.model import BNLayer

ROLES = ("gamma", "beta", "moving_mean", "moving_variance")


def read_vector(dataset: Any, where: str) -> np.ndarray:
    """Read one per-channel weight, insisting on a 1-D array of real numbers."""
    if not isinstance(dataset, h5py.Dataset):
        raise ModelFileError(f"{where} is not a dataset")
    try:
        array = np.asarray(dataset[()])
    except (OSError, ValueError, TypeError) as err:
        raise ModelFileError(f"cannot read {where}: {err}") from None
    if array.dtype.kind not in "fiu":
        raise ModelFileError(f"{where} holds {array.dtype}, not numbers")
    if array.ndim != 1:
        raise ModelFileError(f"{where} has shape {array.shape}; a BN weight is one value per channel")
    return array


def build_layer(
    *,
    name: str,
    path: str,
    settings: dict[str, Any],
    sources: dict[str, str],
    datasets: dict[str, Any],
    dtype: str | None = None,
    inbound: str | None = None,
    notes: tuple[str, ...] = (),
) -> BNLayer:
    """Read the datasets named by role and check they agree with each other and the settings."""
    missing = [role for role in ("moving_mean", "moving_variance") if role not in datasets]
    if settings["scale"] and "gamma" not in datasets:
        missing.insert(0, "gamma")
    if settings["center"] and "beta" not in datasets:
        missing.insert(0 if "gamma" not in missing else 1, "beta")
    if missing:
        raise ModelFileError(f"BN layer {path!r} is missing its {', '.join(missing)} weight")
    arrays = {role: read_vector(datasets[role], f"{path}/{role}") for role in ROLES if role in datasets}
    channels = arrays["moving_mean"].shape[0]
    for role, array in arrays.items():
        if array.shape[0] != channels:
            raise ModelFileError(
                f"BN layer {path!r}: {role} has {array.shape[0]} values but moving_mean has {channels}"
            )
    return BNLayer(
        name=name,
        path=path,
        axis=settings["axis"],
        epsilon=settings["epsilon"],
        momentum=settings["momentum"],
        center=settings["center"],
        scale=settings["scale"],
        moving_mean=arrays["moving_mean"],
        moving_variance=arrays["moving_variance"],
        gamma=arrays.get("gamma") if settings["scale"] else None,
        beta=arrays.get("beta") if settings["center"] else None,
        dtype=dtype or str(arrays["moving_mean"].dtype),
        sources=sources,
        inbound=inbound,
        notes=notes,
    )
