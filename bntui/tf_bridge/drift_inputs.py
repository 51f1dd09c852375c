"""A BN layer's real input on the first samples of the data a drift pass ran on.

The drift pass (:mod:`bntui.tf_bridge.drift`) keeps only per-channel moments, never the
activations. The TUI's Data view still lets the user open the Steps of a drifted layer with
the input that really reached it: this module feeds the first samples of the same data, made
by the same source in the same order with the same scale, through the same safely loaded
model, and records what reaches that layer (at the same call, for a shared layer). Inference
is deterministic, so these are the values the pass measured for those samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bntui.tf_bridge.capturing import model_input_shape, run_recording
from bntui.tf_bridge.drift import bn_instances, open_source
from bntui.tf_bridge.keras_loader import CaptureUnavailable


def live_layer(model: Any, layer_path: str, layer_name: str) -> Any:
    """The loaded model's BN layer that bntui's reading calls ``layer_path``: by its candidate
    paths, else by a unique name (the drift pass pairs layers the same way)."""
    instances = bn_instances(model)
    for layer, paths in instances:
        if layer_path in paths:
            return layer
    named = [layer for layer, _ in instances if layer.name == layer_name]
    if len(named) == 1:
        return named[0]
    raise CaptureUnavailable(f"capture unavailable: Keras' model has no BN layer {layer_path!r}")


def layer_input_from_data(model: Any, layer_path: str, layer_name: str, data: str, *, call: int = 0,
                          scale: float = 1.0, samples: int = 8) -> np.ndarray:
    """What reaches the layer (its ``call``-th call) when the model runs, in inference mode, on
    the first ``samples`` samples of ``data``; float64."""
    layer = live_layer(model, layer_path, layer_name)
    source = open_source(data, model_input_shape(model))
    batch = next(iter(source.batches(samples)))
    if scale != 1.0:
        batch = batch * np.float32(scale)
    seen = [layer_input for layer_input, _ in run_recording(model, batch, layer)]
    if len(seen) <= call:
        raise CaptureUnavailable(f"capture failed: layer {layer_path!r} was called {len(seen)} time(s), not {call + 1}")
    return seen[call].astype(np.float64)
