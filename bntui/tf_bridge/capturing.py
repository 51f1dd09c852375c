"""Run the whole model (Keras safe mode) and record what really reaches one BN layer.

Generated model inputs are written ``zeros``, ``ones``, ``uniform[:SEED]``, ``normal[:SEED]``
or ``random[:SEED]`` (the same as normal), optionally followed by the whole input shape,
batch first: ``normal:0:1x15000x4``, ``zeros:1x15000x4``. Without a shape every ``None``
dimension of the model's input becomes 1 (the batch: ``default_batch``), which a model that
needs a long sequence cannot run on: the error then names the model's input shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bntui.core.errors import InputValueError
from bntui.core.numbers import to_json_value
from bntui.core.steps import Computation
from bntui.tf_bridge.keras_loader import CaptureUnavailable, load_whole_model, one_line, quiet

GENERATED_KINDS = ("zeros", "ones", "uniform", "normal", "random")
SEEDED_KINDS = ("uniform", "normal", "random")


@dataclass(frozen=True, eq=False)
class Capture:
    """What really reached a BN layer, and what the real layer gave back."""

    model_input: np.ndarray
    layer_input: np.ndarray
    layer_output: np.ndarray


@dataclass(frozen=True)
class GeneratedSpec:
    """A parsed ``KIND[:SEED][:SHAPE]`` spec (shape batch first, None when not given)."""

    kind: str
    seed: int
    shape: tuple[int, ...] | None

    def generator(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """``shape`` values of this kind, float32, drawn from ``rng`` (successive calls continue
        the same stream, so data can be made batch by batch)."""
        if self.kind == "zeros":
            return np.zeros(shape, dtype=np.float32)
        if self.kind == "ones":
            return np.ones(shape, dtype=np.float32)
        if self.kind == "uniform":
            return rng.uniform(-1.0, 1.0, shape).astype(np.float32)
        return rng.standard_normal(shape, dtype=np.float32)


def parse_generated(spec: str) -> GeneratedSpec | None:
    """``normal:0:1x15000x4`` -> GeneratedSpec; None when ``spec`` is not a generated kind
    (then it is a path). Raises :class:`InputValueError` for a malformed seed or shape."""
    parts = spec.split(":")
    kind = parts[0]
    if kind not in GENERATED_KINDS:
        return None
    rest = parts[1:]
    seed = 0
    if kind in SEEDED_KINDS and rest:
        seed_text = rest.pop(0)
        if seed_text:
            if not seed_text.isdigit():
                raise InputValueError(f"{spec!r}: the seed after '{kind}:' must be a whole number, as in {kind}:0")
            seed = int(seed_text)
    shape = None
    if rest:
        shape = _parse_shape(spec, rest.pop(0))
    if rest:
        form = f"{kind}:SEED:SHAPE" if kind in SEEDED_KINDS else f"{kind}:SHAPE"
        raise InputValueError(f"{spec!r}: too many ':' parts; write {form}, as in {form.replace('SEED', '0').replace('SHAPE', '1x32x4')}")
    return GeneratedSpec(kind=kind, seed=seed, shape=shape)


def _parse_shape(spec: str, text: str) -> tuple[int, ...]:
    dims = text.lower().split("x")
    if not all(dim.isdigit() and int(dim) > 0 for dim in dims):
        raise InputValueError(f"{spec!r}: the shape must be positive whole numbers joined by 'x', as in 1x15000x4")
    return tuple(int(dim) for dim in dims)


def model_input_shape(model: Any) -> tuple[int | None, ...]:
    """The shape of the model's only input (None where any size goes); Keras 3 and tf_keras."""
    inputs = getattr(model, "inputs", None)
    if not inputs or len(inputs) != 1:
        raise CaptureUnavailable("running the model needs a model with exactly one input; this one has "
                                 f"{len(inputs) if inputs else 'no known'} inputs")
    return tuple(None if dim is None else int(dim) for dim in inputs[0].shape)


def model_input_dtype(model: Any) -> str:
    """The float dtype the model's input takes (float32 unless it says another float)."""
    dtype = getattr(model.inputs[0], "dtype", "float32")
    name = str(getattr(dtype, "name", dtype))
    return name if "float" in name else "float32"


def shape_text(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("None" if dim is None else str(dim) for dim in shape) + ")"


def resolve_shape(model_shape: tuple[int | None, ...], given: tuple[int, ...] | None,
                  default_batch: int = 1) -> tuple[int, ...]:
    """The full input shape: ``given`` checked against the model's fixed dimensions, or the
    model's shape with the batch as ``default_batch`` and every other None as 1. A single
    number given for a model whose only None is the batch is the sample count
    (``normal:0:512`` is 512 samples): no whole shape of one dimension could fit it."""
    if given is None:
        return tuple((default_batch if index == 0 else 1) if dim is None else dim
                     for index, dim in enumerate(model_shape))
    fixed = model_shape[1:]
    if len(given) == 1 and fixed and all(dim is not None for dim in fixed):
        return (given[0], *(int(dim) for dim in fixed if dim is not None))
    wanted = "x".join(str(dim) for dim in given)
    if len(given) != len(model_shape) or any(dim is not None and dim != size for dim, size in zip(model_shape, given)):
        raise InputValueError(f"shape {wanted} does not fit the model's input shape {shape_text(model_shape)}")
    return given


def make_model_input(model: Any, spec: str, default_batch: int = 1) -> np.ndarray:
    """A whole model input from a generated spec (see the module docstring) or a ``.npy`` path."""
    from bntui.core.input_parse import load_npy

    generated = parse_generated(spec)
    if generated is None:
        return load_npy(spec)
    shape = resolve_shape(model_input_shape(model), generated.shape, default_batch)
    return generated.draw(generated.generator(), shape).astype(np.float64)


def load_for_capture(model_path: str | Path, *, unsafe: bool = False) -> Any:
    """Load the whole model (see :func:`bntui.tf_bridge.keras_loader.load_whole_model`)."""
    return load_whole_model(model_path, unsafe=unsafe)


def _find(model: Any, path: str) -> Any:
    layer = model
    for part in path.split("/"):
        try:
            layer = layer.get_layer(part)
        except (ValueError, AttributeError):
            raise CaptureUnavailable(f"capture unavailable: Keras' model has no layer {path!r}") from None
    return layer


def run_failure(err: BaseException, model: Any) -> CaptureUnavailable:
    """The one-line error for a model that did not run on the given input."""
    try:
        shape = shape_text(model_input_shape(model))
    except CaptureUnavailable:
        shape = "unknown"
    return CaptureUnavailable(
        f"capture failed: the model (input shape {shape}) did not run on this input ({one_line(err, 200)}); "
        "give a whole shape where it has None, as in normal:0:1x15000x4")


def run_recording(model: Any, x: np.ndarray, layer: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """Run ``model`` on ``x`` in inference mode and return (input, output) of every call of
    ``layer`` on the way. The layer's ``call`` is wrapped for the run and restored after: its
    own method if it had one, else the class's shows through again (the model may be reused)."""
    calls: list[tuple[np.ndarray, np.ndarray]] = []
    original = layer.call
    own = "call" in vars(layer)

    def recording_call(inputs, *args, **kwargs):  # type: ignore[no-untyped-def]
        outputs = original(inputs, *args, **kwargs)
        calls.append((np.asarray(inputs), np.asarray(outputs)))
        return outputs

    layer.call = recording_call
    try:
        with quiet():
            model(x.astype(model_input_dtype(model)), training=False)
    except CaptureUnavailable:
        raise
    except Exception as err:  # noqa: BLE001 - whatever the model raises, the user needs one line
        raise run_failure(err, model) from None
    finally:
        if own:
            layer.call = original
        else:
            del layer.call
    return calls


def capture(model_path: str | Path, layer_path: str, spec: str, *, unsafe: bool = False) -> Capture:
    """Run the model on a generated or loaded input and record the BN layer's real input."""
    generated = parse_generated(spec)  # a malformed spec is refused before Keras loads
    model = load_for_capture(model_path, unsafe=unsafe)
    target = _find(model, layer_path)
    if generated is not None:
        resolve_shape(model_input_shape(model), generated.shape)
    x = make_model_input(model, spec)
    calls = run_recording(model, x, target)
    if not calls:
        raise CaptureUnavailable(f"capture failed: layer {layer_path!r} was not reached by this input")
    layer_input, layer_output = calls[0]
    return Capture(model_input=x, layer_input=layer_input.astype(np.float64), layer_output=layer_output)


def capture_dict(result: Capture, computation: Computation, spec: str) -> dict[str, object]:
    """The ``capture`` JSON object: where the input came from and how the real layer compares."""
    real = result.layer_output
    ours = computation.output_float32 if real.dtype == np.float32 else computation.inference.output
    with np.errstate(invalid="ignore"):
        diff = np.abs(real.astype(np.float64) - ours.astype(np.float64))
    return {
        "model_input": spec,
        "model_input_shape": list(result.model_input.shape),
        "layer_input_shape": list(result.layer_input.shape),
        "layer_output": to_json_value(real),
        "max_abs_diff": float(np.nanmax(diff)) if diff.size else 0.0,
    }
