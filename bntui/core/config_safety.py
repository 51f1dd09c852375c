"""Is a model config safe to hand to a Keras that has no safe mode? A pure JSON check.

Keras 3 loads with ``safe_mode=True`` and refuses Lambda bytecode itself. tf_keras (needed for
tf.keras 2.x ``.h5`` files that Keras 3 rejects) ignores ``safe_mode``: it would unmarshal and
run a Lambda's bytecode, or call a TensorFlow function a ``TFOpLambda`` names (file writes
included). So before tf_keras may load a file, its config is read as JSON and every object
in it that names a class is checked against Keras' own built-in classes: layers, models,
initializers, regularizers, constraints and dtype policies. Anything else, and every Lambda
or TF-op layer, is reported; the caller refuses the load unless the user said ``--unsafe``.

Nothing is imported or run here: class names are compared as strings, so a class the file
names can never be a custom class that happens to be registered in this process.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

#: Layers whose config carries code (marshalled bytecode, or the name of a TensorFlow function
#: to call): never loaded without ``--unsafe``, although Keras ships them.
CODE_CARRYING = frozenset({"Lambda", "__lambda__", "TFOpLambda", "SlicingOpLambda", "TensorFlowOpLayer"})

#: Top-level parts of a stored config that loading with ``compile=False`` never deserialises.
IGNORED_TOP_LEVEL = frozenset({"compile_config", "training_config"})

#: The classes Keras 3 and tf_keras ship under layers, initializers, regularizers, constraints,
#: models and dtype policies (collected from both packages' public namespaces), plus the
#: markers their serialisers write for tuples and tensors.
BUILT_IN_CLASSES = frozenset({
    "Activation", "ActivityRegularization", "AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D",
    "AdaptiveAveragePooling3D", "AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D", "AdaptiveMaxPooling3D", "Add",
    "AdditiveAttention", "AlphaDropout", "Attention", "AugMix", "AutoContrast", "Average", "AveragePooling1D",
    "AveragePooling2D", "AveragePooling3D", "AvgPool1D", "AvgPool2D", "AvgPool3D", "BatchNormalization",
    "BatchNormalizationV1", "BatchNormalizationV2", "Bidirectional", "CategoryEncoding", "CenterCrop",
    "Concatenate", "Constant", "ContrastLimitedAdaptiveHistogramEqualization", "Conv1D", "Conv1DTranspose",
    "Conv2D", "Conv2DTranspose", "Conv3D", "Conv3DTranspose", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D",
    "Convolution1D", "Convolution1DTranspose", "Convolution2D", "Convolution2DTranspose", "Convolution3D",
    "Convolution3DTranspose", "Cropping1D", "Cropping2D", "Cropping3D", "CutMix", "DTypePolicy", "Dense",
    "DenseFeatures", "DepthwiseConv1D", "DepthwiseConv2D", "Discretization", "Dot", "Dropout", "ELU",
    "EinsumDense", "Embedding", "Equalization", "Flatten", "FloatDTypePolicy", "Functional", "GRU", "GRUCell",
    "GRUCellV2", "GRUV2", "GaussianDropout", "GaussianNoise", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalAveragePooling3D", "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D", "GlobalMaxPool1D",
    "GlobalMaxPool2D", "GlobalMaxPool3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "GlorotNormal", "GlorotUniform", "GroupNormalization", "GroupQueryAttention", "GroupedQueryAttention",
    "HashedCrossing", "Hashing", "HeNormal", "HeUniform", "Identity", "IdentityInitializer", "InputLayer",
    "IntegerLookup", "L1", "L1L2", "L2", "LSTM", "LSTMCell", "LSTMCellV2", "LSTMV2", "LayerNormalization",
    "LeakyReLU", "LecunNormal", "LecunUniform", "LocallyConnected1D", "LocallyConnected2D", "Masking", "MaxNorm",
    "MaxNumBoundingBoxes", "MaxPool1D", "MaxPool2D", "MaxPool3D", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
    "Maximum", "MelSpectrogram", "MinMaxNorm", "Minimum", "MixUp", "Model", "MultiHeadAttention", "Multiply",
    "NonNeg", "Normalization", "Ones", "Orthogonal", "OrthogonalInitializer", "OrthogonalRegularizer", "PReLU",
    "Permute", "Pipeline", "Policy", "RMSNormalization", "RNN", "RadialConstraint", "RandAugment",
    "RandomBrightness", "RandomColorDegeneration", "RandomColorJitter", "RandomContrast", "RandomCrop",
    "RandomElasticTransform", "RandomErasing", "RandomFlip", "RandomGaussianBlur", "RandomGrayscale",
    "RandomHeight", "RandomHue", "RandomInvert", "RandomNormal", "RandomPerspective", "RandomPosterization",
    "RandomRotation", "RandomSaturation", "RandomSharpness", "RandomShear", "RandomTranslation", "RandomUniform",
    "RandomWidth", "RandomZoom", "ReLU", "RepeatVector", "Rescaling", "Reshape", "Resizing",
    "ReversibleEmbedding", "STFT", "STFTInitializer", "STFTSpectrogram", "SeparableConv1D", "SeparableConv2D",
    "SeparableConvolution1D", "SeparableConvolution2D", "Sequential", "SimpleRNN", "SimpleRNNCell", "Softmax",
    "Solarization", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "SpectralNormalization",
    "StackedRNNCells", "StringLookup", "Subtract", "SyncBatchNormalization", "TextVectorization",
    "ThresholdedReLU", "TimeDistributed", "TruncatedNormal", "UnitNorm", "UnitNormalization", "UpSampling1D",
    "UpSampling2D", "UpSampling3D", "VarianceScaling", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D",
    "Zeros", "__tuple__", "__keras_tensor__", "__numpy__", "__tensor__", "__bytes__", "__typespec__",
})


def config_objects(config: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object of a parsed model config, depth first in file order, skipping the
    ``compile_config``-like top-level keys nobody loads (:data:`IGNORED_TOP_LEVEL`). Iterative,
    so a deeply nested config cannot exhaust the stack."""
    if isinstance(config, dict):
        config = {key: value for key, value in config.items() if key not in IGNORED_TOP_LEVEL}
    stack: list[Any] = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(reversed(node))
        elif isinstance(node, dict):
            yield node
            stack.extend(reversed(list(node.values())))


def unsafe_objects(config: Any) -> tuple[str, ...]:
    """What in a parsed model config a Keras without safe mode could run: one phrase each.

    Every JSON object with a ``class_name`` is checked: a code-carrying layer, a class Keras
    does not ship, a Keras 3 ``module`` outside ``keras``, or a ``registered_name`` of a
    custom registration (``package>Class``) is reported (the optimizer and losses of
    ``compile_config`` are skipped: loading with ``compile=False`` never reads them). An empty
    tuple means safe (the walk is :func:`config_objects`).
    """
    found: list[str] = []
    for node in config_objects(config):
        problem = _problem(node)
        if problem and problem not in found:
            found.append(problem)
    return tuple(found)


def custom_classes(config: Any) -> tuple[str, ...]:
    """The custom classes a parsed model config uses, by their own name (``LearnedScale`` for
    ``bntui_samples>LearnedScale``): every class :func:`_not_keras` finds. Lambda and TF-op
    layers are Keras' own (their code is the risk, not a missing class) and are not listed."""
    found: list[str] = []
    for node in config_objects(config):
        class_name = node.get("class_name")
        if not isinstance(class_name, str) or class_name in CODE_CARRYING or _not_keras(node, class_name) is None:
            continue
        name = class_name.rsplit(">", 1)[-1] or class_name
        if name not in found:
            found.append(name)
    return tuple(found)


def _problem(node: dict[str, Any]) -> str | None:
    """The reason one JSON object is unsafe, or None."""
    if node.get("function_type") == "lambda":
        return "a function stored as bytecode"
    class_name = node.get("class_name")
    if not isinstance(class_name, str):
        return None
    if class_name in CODE_CARRYING:
        name = _layer_name(node)
        kind = "Lambda layer" if class_name in ("Lambda", "__lambda__") else "TF-op layer"
        return f"{kind} {name!r}" if name else kind
    return _not_keras(node, class_name)


def _not_keras(node: dict[str, Any], class_name: str) -> str | None:
    """Why the object's class is not one Keras ships (not built in, from a module outside Keras,
    or a custom registration under a built-in name), or None for Keras' own."""
    if class_name not in BUILT_IN_CLASSES:
        return f"class {class_name!r}, not a built-in Keras class"
    module = node.get("module")
    if isinstance(module, str) and module != "keras" and not module.startswith("keras."):
        return f"class {class_name!r} from module {module!r}, not Keras"
    registered = node.get("registered_name")
    if isinstance(registered, str) and registered != class_name:
        return f"class {class_name!r} registered as {registered!r}, not a built-in Keras class"
    return None


def _layer_name(node: dict[str, Any]) -> str | None:
    config = node.get("config")
    name = node.get("name") or (config.get("name") if isinstance(config, dict) else None)
    return name if isinstance(name, str) else None
