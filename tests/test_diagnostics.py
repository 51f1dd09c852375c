"""Each diagnostic fires on the weights that mean it, names its channels, and explains itself."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SAMPLES

from bntui.core import open_model
from bntui.core.diagnostics import diagnose
from bntui.core.model import BNLayer


def layer(gamma=(1.0, 1.0), beta=(0.0, 0.0), mean=(0.3, -0.2), var=(0.5, 2.0), epsilon=1e-3,
          epsilon_source="config") -> BNLayer:  # type: ignore[no-untyped-def]
    arr = lambda v: np.array(v, dtype=np.float32)
    return BNLayer(name="bn", path="bn", axis=-1, epsilon=epsilon, momentum=0.99, center=True, scale=True,
                   gamma=arr(gamma), beta=arr(beta), moving_mean=arr(mean), moving_variance=arr(var),
                   sources={"epsilon": epsilon_source})


def codes(bn: BNLayer) -> dict[str, tuple[int, ...]]:
    return {d.code: d.channels for d in diagnose(bn)}


def test_healthy_layer_has_no_findings() -> None:
    assert codes(layer()) == {}


@pytest.mark.parametrize("kwargs, code, channels", [
    ({"mean": (0, 0), "var": (1, 1)}, "never_updated", ()),
    ({"mean": (0.5, 0), "var": (1, 1)}, "half_updated", ()),
    ({"var": (0.5, -0.1)}, "negative_variance", (1,)),
    ({"var": (0.0, 2.0)}, "zero_variance", (0,)),
    ({"var": (1e-40, 2.0)}, "denormal_variance", (0,)),
    ({"var": (1e-7, 2.0)}, "tiny_variance", (0,)),
    ({"var": (0.5, -0.01)}, "nan_ahead", (1,)),
    ({"gamma": (np.nan, 1.0)}, "not_finite", (0,)),
    ({"var": (np.inf, 1.0)}, "not_finite", (0,)),
    ({"gamma": (1e-6, 1.0), "beta": (3.0, 0.0)}, "constant_output", (0,)),
    ({"gamma": (1.0, 50.0), "var": (0.5, 0.0)}, "extreme_scale", (1,)),
    ({"epsilon": 1e-5}, "epsilon", ()),
])
def test_finding(kwargs: dict, code: str, channels: tuple) -> None:
    found = codes(layer(**kwargs))
    assert code in found
    assert found[code] == channels
    assert all(d.explanation for d in diagnose(layer(**kwargs)))


def test_assumed_epsilon_is_not_blamed() -> None:
    assert "epsilon" not in codes(layer(epsilon=1e-5, epsilon_source="default"))


def test_pytorch_epsilon_hint() -> None:
    [finding] = [d for d in diagnose(layer(epsilon=1e-5)) if d.code == "epsilon"]
    assert "PyTorch" in finding.message


def test_untrained_samples_are_flagged_and_trained_ones_not() -> None:
    trained = open_model(SAMPLES / "convnet_trained.keras")
    assert all("never_updated" not in codes(bn) for bn in trained.layers)
    untrained = BNLayer(name="b", path="b", axis=-1, epsilon=1e-3, momentum=0.99, center=True, scale=True,
                        gamma=np.ones(4, np.float32), beta=np.zeros(4, np.float32),
                        moving_mean=np.zeros(4, np.float32), moving_variance=np.ones(4, np.float32))
    assert "never_updated" in codes(untrained)


def test_keras_applications_epsilon_is_not_blamed() -> None:
    """1.001e-5 is what keras.applications' ResNet and DenseNet use: not a sign of a port."""
    assert "epsilon" not in codes(layer(epsilon=1.001e-5))
    assert "epsilon" in codes(layer(epsilon=1e-5))


def test_repeated_findings_are_grouped() -> None:
    from bntui.core.diagnostics import group_diagnostics

    layers = [BNLayer(name=f"bn{i}", path=f"bn{i}", axis=-1, epsilon=1e-5, momentum=0.99, center=True, scale=True,
                      moving_mean=np.zeros(2), moving_variance=np.ones(2), gamma=np.ones(2), beta=np.zeros(2),
                      sources={"epsilon": "config"}) for i in range(53)]
    groups = {group.code: group for group in group_diagnostics(layers)}
    assert groups["epsilon"].layer_count == 53 and groups["never_updated"].layer_count == 53
    assert groups["epsilon"].summary().startswith("53 layers: epsilon 1e-05")
