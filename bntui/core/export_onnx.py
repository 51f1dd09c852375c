"""Writing BN layers as ONNX ``BatchNormalization`` nodes, one per layer, in one model file.

Each layer gets its own graph input ``<prefix>.X`` (channels on axis 1, as ONNX wants), its
output ``<prefix>.Y``, and its four constants as initializers. Opset 15 names them
``scale``, ``B``, ``input_mean``, ``input_var`` (opset 14 renamed ``mean``/``var``);
``training_mode`` is 0, so the node computes the inference formula with the stored
statistics. ONNX's ``epsilon`` attribute is a float32, as TensorFlow's is.

The ``onnx`` package is imported only when writing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bntui.core.errors import BntuiError
from bntui.core.export_torch import import_writer, write_new

if TYPE_CHECKING:
    from bntui.core.analysis.port import LayerPort

#: The opset written: BatchNormalization's latest version (15) and its input names.
OPSET = 15
#: IR version 8 is the oldest that carries opset 15: readable by any runtime from 2021 on.
IR_VERSION = 8


def _input_shape(port: LayerPort) -> list[Any] | None:
    """``[N, C, <spatial>...]`` with symbolic batch and spatial sizes; None when the rank is unknown."""
    rank = port.input_rank
    if rank is None:
        return None
    return ["N", port.layer.channels, *(f"{port.prefix}.d{i}" for i in range(2, rank))]


def build_model(ports: list[LayerPort]) -> Any:
    """The ONNX ModelProto with one BatchNormalization node per layer."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, inputs, outputs, initializers = [], [], [], []
    for port in ports:
        layer, name = port.layer, port.prefix
        constants = {
            "scale": layer.gamma_or_one,
            "B": layer.beta_or_zero,
            "input_mean": layer.moving_mean,
            "input_var": layer.moving_variance,
        }
        for role, array in constants.items():
            initializers.append(numpy_helper.from_array(np.asarray(array, dtype=np.float32), f"{name}.{role}"))
        shape = _input_shape(port)
        inputs.append(helper.make_tensor_value_info(f"{name}.X", TensorProto.FLOAT, shape))
        outputs.append(helper.make_tensor_value_info(f"{name}.Y", TensorProto.FLOAT, shape))
        nodes.append(helper.make_node(
            "BatchNormalization",
            [f"{name}.X", *(f"{name}.{role}" for role in constants)],
            [f"{name}.Y"],
            name=name,
            epsilon=float(layer.epsilon),
            momentum=float(layer.momentum),
            training_mode=0,
        ))
    graph = helper.make_graph(nodes, "bntui_batch_normalization", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="bntui")
    model.ir_version = IR_VERSION
    return model


def export_onnx(ports: list[LayerPort], path: str | Path) -> Path:
    """Check and write the ONNX file; return its path."""
    onnx = import_writer("onnx", "onnx")
    model = build_model(ports)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as err:
        raise BntuiError(f"the ONNX model does not validate: {str(err).splitlines()[0]}") from None
    target = Path(path)
    write_new(target, model.SerializeToString())
    return target
