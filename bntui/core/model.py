"""What the readers produce: plain, immutable descriptions of a model and its BN layers.

Every reader (legacy HDF5, Keras 3 zip, weights-only) builds these same objects, so the
computation, diagnostics, CLI and TUI never need to know which file format a layer came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Keras' own defaults for BatchNormalization, used where a file carries no config.
KERAS_DEFAULTS: dict[str, object] = {
    "axis": -1,
    "epsilon": 1e-3,
    "momentum": 0.99,
    "center": True,
    "scale": True,
    "trainable": True,
}

SETTING_NAMES = ("axis", "epsilon", "momentum", "center", "scale", "trainable")

#: Dtype policies whose compute dtype is 16-bit: Keras casts the input to it, computes BN in
#: float32 and casts the output back (``layer.dtype_policy`` holds the policy's name).
HALF_POLICIES = {"mixed_float16": "float16", "float16": "float16", "mixed_bfloat16": "bfloat16", "bfloat16": "bfloat16"}


@dataclass(frozen=True, eq=False)
class BNLayer:
    """One BatchNormalization layer: its settings, its weights and where each came from.

    ``gamma`` is None when ``scale=False`` and ``beta`` when ``center=False``: the formula
    then uses 1 and 0, and the UI says so instead of inventing numbers.
    """

    name: str
    path: str
    axis: int
    epsilon: float
    momentum: float
    center: bool
    scale: bool
    moving_mean: np.ndarray
    moving_variance: np.ndarray
    gamma: np.ndarray | None = None
    beta: np.ndarray | None = None
    dtype: str = "float32"
    #: Setting name -> "config" or "default" (taken from Keras' defaults).
    sources: dict[str, str] = field(default_factory=dict)
    #: The layer that feeds this one, where the config says.
    inbound: str | None = None
    #: Notes from reading (for example how an ambiguous weight set was interpreted).
    notes: tuple[str, ...] = ()
    #: ``trainable: false`` freezes the layer: since TF 2.0 and in Keras 3 it then runs with its
    #: moving statistics even when called with ``training=True``.
    trainable: bool = True
    #: The dtype policy's name (``float32``, ``mixed_float16``, ``bfloat16``...), None if unknown.
    dtype_policy: str | None = None
    #: Batch renormalisation (``renorm=True``): its extra statistics and settings.
    renorm: bool = False
    renorm_clipping: dict[str, float] | None = None
    renorm_momentum: float = 0.99
    moving_stddev: np.ndarray | None = None
    renorm_mean: np.ndarray | None = None
    renorm_stddev: np.ndarray | None = None
    #: tf_keras' ghost batches: training statistics are taken over groups of this many samples.
    virtual_batch_size: int | None = None
    #: The Keras version that wrote the file (frozen layers behaved otherwise before tf.keras).
    keras_version: str | None = None
    #: A ``training`` argument hard-coded where the model calls this layer (from the config).
    call_training: bool | None = None

    @property
    def channels(self) -> int:
        """Number of channels, the length of every per-channel weight."""
        return int(self.moving_mean.shape[0])

    @property
    def assumed(self) -> list[str]:
        """Names of settings not found in the file and taken as Keras defaults."""
        return [name for name in SETTING_NAMES if self.sources.get(name) != "config"]

    @property
    def compute_dtype(self) -> str:
        """The dtype Keras rounds the input and output to: float16 or bfloat16 under a 16-bit
        policy, float64 under ``float64``, else float32."""
        policy = self.dtype_policy or "float32"
        if policy in HALF_POLICIES:
            return HALF_POLICIES[policy]
        return "float64" if policy == "float64" else "float32"

    @property
    def standalone_keras_frozen_semantics(self) -> bool:
        """True for files from standalone Keras 2.0 to 2.3 (no ``-tf`` in the version), whose
        frozen layers still used batch statistics in training mode."""
        version = self.keras_version or ""
        return version.startswith("2.") and "tf" not in version and _version_tuple(version) < (2, 4)

    @property
    def gamma_or_one(self) -> np.ndarray:
        """gamma, or ones when ``scale=False`` (the value Keras uses in its place)."""
        if self.gamma is None:
            return np.ones_like(self.moving_mean)
        return self.gamma

    @property
    def beta_or_zero(self) -> np.ndarray:
        """beta, or zeros when ``center=False`` (the value Keras uses in its place)."""
        if self.beta is None:
            return np.zeros_like(self.moving_mean)
        return self.beta


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


@dataclass(frozen=True, eq=False)
class ModelInfo:
    """A model file as bntui sees it: its format, its Keras version and its BN layers."""

    path: str
    format: str
    keras_version: str | None
    layers: tuple[BNLayer, ...]
    model_name: str | None = None
    notes: tuple[str, ...] = ()

    def find(self, name_or_path: str) -> BNLayer:
        """Return the layer with this exact path, else the only layer with this name."""
        from bntui.core.errors import LayerNotFoundError

        for layer in self.layers:
            if layer.path == name_or_path:
                return layer
        named = [layer for layer in self.layers if layer.name == name_or_path]
        if len(named) == 1:
            return named[0]
        if named:
            paths = ", ".join(layer.path for layer in named)
            raise LayerNotFoundError(
                f"layer name {name_or_path!r} is ambiguous; use one of these paths: {paths}"
            )
        known = ", ".join(layer.path for layer in self.layers) or "none"
        raise LayerNotFoundError(
            f"no BatchNormalization layer named {name_or_path!r}; layers: {known}"
        )


@dataclass(frozen=True, eq=False)
class FeedingLayer:
    """What feeds one BN layer, as the file says.

    ``class_name`` is None when the BN's input comes from outside its model (the first layer
    of a Sequential, a model input), and ``weights`` is empty for layers without a kernel.
    """

    bn_path: str
    name: str | None
    path: str | None
    class_name: str | None
    config: dict[str, Any] = field(default_factory=dict)
    #: Names of the layers that read this layer's output (the BN among them).
    consumers: tuple[str, ...] = ()
    #: How many times the layer is called (more than one: a shared layer).
    calls: int = 1
    is_model_output: bool = False
    #: Role (``kernel``, ``bias``...) -> array, exactly as stored.
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    #: Why the feeding layer could not be found, where it could not.
    problem: str | None = None
    #: The rank of the BN's input where the config tells (Keras 3's ``build_config``, or the
    #: feeding conv's spatial rank + 2): PyTorch's BatchNorm1d/2d/3d depends on it.
    bn_input_rank: int | None = None
