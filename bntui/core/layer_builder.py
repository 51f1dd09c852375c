"""Turning a set of weight arrays plus settings into a validated :class:`BNLayer`.

Every reader ends here (HDF5 datasets and numpy arrays alike), so every format gets the same
checks and the same messages, and a layer recognised by its weights alone is built one way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bntui.core.errors import ModelFileError
from bntui.core.model import KERAS_DEFAULTS, BNLayer

ROLES = ("gamma", "beta", "moving_mean", "moving_variance")
#: The three extra variables of batch renormalisation, in the order Keras creates them.
RENORM_ROLES = ("moving_stddev", "renorm_mean", "renorm_stddev")
ALL_ROLES = ROLES + RENORM_ROLES

UNCONFIGURED_NOTE = "no config for this layer: axis, epsilon, momentum and trainable are Keras defaults"


def _bfloat16_to_float32(raw: np.ndarray) -> np.ndarray:
    """bfloat16 is the top half of a float32: HDF5 stores it as an opaque 2-byte type."""
    bits = np.ascontiguousarray(raw).view(np.uint16).astype(np.uint32) << 16
    return bits.view(np.float32)


def read_vector(dataset: Any, where: str, *, squeeze: bool = False) -> np.ndarray:
    """Read one per-channel weight (an h5py dataset or an array), insisting on a 1-D array of
    real numbers. ``squeeze`` accepts tf_keras' ghost-batch shape ``(1, 1, C)``."""
    try:
        array = np.asarray(dataset[()] if not isinstance(dataset, np.ndarray) else dataset)
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise ModelFileError(f"cannot read {where}: {err}") from None
    except AttributeError:
        raise ModelFileError(f"{where} is not a dataset") from None
    if array.dtype.kind == "V" and array.dtype.itemsize == 2:
        array = _bfloat16_to_float32(array)
    if array.dtype.kind not in "fiu":
        raise ModelFileError(f"{where} holds {array.dtype}, not numbers")
    if squeeze and array.ndim > 1 and sum(size != 1 for size in array.shape) <= 1:
        array = array.reshape(-1)
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
    inbound: str | None = None,
    notes: tuple[str, ...] = (),
    keras_version: str | None = None,
    call_training: bool | None = None,
) -> BNLayer:
    """Read the weights named by role and check they agree with each other and the settings.

    ``settings`` holds the five core settings and may hold ``trainable``, ``renorm``,
    ``renorm_clipping``, ``renorm_momentum``, ``virtual_batch_size`` and ``dtype_policy``
    (see :func:`bntui.core.keras_config.bn_settings`)."""
    missing = [role for role in ("moving_mean", "moving_variance") if role not in datasets]
    if settings["scale"] and "gamma" not in datasets:
        missing.insert(0, "gamma")
    if settings["center"] and "beta" not in datasets:
        missing.insert(0 if "gamma" not in missing else 1, "beta")
    renorm = bool(settings.get("renorm", False))
    if renorm:
        missing += [role for role in RENORM_ROLES if role not in datasets]
    if missing:
        raise ModelFileError(f"BN layer {path!r} is missing its {', '.join(missing)} weight")
    squeeze = settings.get("virtual_batch_size") is not None
    arrays = {role: read_vector(datasets[role], f"{path}/{role}", squeeze=squeeze) for role in ALL_ROLES if role in datasets}
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
        dtype=str(arrays["moving_mean"].dtype),
        sources=sources,
        inbound=inbound,
        notes=notes,
        trainable=bool(settings.get("trainable", True)),
        dtype_policy=settings.get("dtype_policy"),
        renorm=renorm,
        renorm_clipping=settings.get("renorm_clipping") if renorm else None,
        renorm_momentum=float(settings.get("renorm_momentum", 0.99)),
        moving_stddev=arrays.get("moving_stddev"),
        renorm_mean=arrays.get("renorm_mean"),
        renorm_stddev=arrays.get("renorm_stddev"),
        virtual_batch_size=settings.get("virtual_batch_size"),
        keras_version=keras_version,
        call_training=call_training,
    )


def build_unconfigured(path: str, datasets: dict[str, Any], notes: tuple[str, ...] = ()) -> BNLayer:
    """A BN recognised by its weights alone (weights-only file, a layer inside a custom block,
    a format without config): the weights present decide ``center`` and ``scale``; the rest
    are Keras' defaults, marked as assumed."""
    settings = dict(KERAS_DEFAULTS)
    settings["scale"] = "gamma" in datasets
    settings["center"] = "beta" in datasets
    settings["renorm"] = all(role in datasets for role in RENORM_ROLES)
    sources = {name: "default" for name in KERAS_DEFAULTS}
    sources.update(center="weights", scale="weights")
    return build_layer(
        name=path.rsplit("/", 1)[-1],
        path=path,
        settings=settings,
        sources=sources,
        datasets=datasets,
        notes=(UNCONFIGURED_NOTE, *notes),
    )
