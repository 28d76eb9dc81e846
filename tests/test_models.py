"""Models: output shapes, the paper's ResNet-18 widths, user factories."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from sw.models.zoo import build_model, count_parameters
from sw.quant import quantizable_weights


def tiny_factory(hidden: int = 8) -> nn.Module:
    """A user model for the factory path."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))


@pytest.mark.parametrize("name,cfg,side", [("lenet5", {}, 28), ("lenet5", {"image_size": 8}, 8),
                                           ("lenet5", {"in_channels": 3, "image_size": 32}, 32),
                                           ("resnet18", {"image_size": 8}, 8), ("mlp", {}, 8),
                                           ("mlp", {"in_channels": 3, "image_size": 32}, 32)])
def test_shapes(name, cfg, side):
    m = build_model(name, cfg)
    x = torch.zeros(2, cfg.get("in_channels", 1), side, side)
    assert m(x).shape == (2, 10)


def test_resnet18_widths():
    m = build_model("resnet18", {})
    convs = [mod.out_channels for mod in m.modules() if isinstance(mod, nn.Conv2d)]
    assert sorted(set(convs)) == [16, 32, 64, 128]
    assert len(quantizable_weights(m)) == 21          # 17 convs + 3 shortcuts + fc
    assert 650_000 < count_parameters(m) < 750_000


def test_mlp_widths():
    m = build_model("mlp", {"in_channels": 1, "image_size": 8, "num_classes": 10})
    shapes = [tuple(getattr(m, f"fc{i}").weight.shape) for i in range(1, 5)]
    assert shapes == [(256, 64), (256, 256), (128, 256), (10, 128)]     # 64-256-256-128-10
    assert quantizable_weights(m) == ["fc1.weight", "fc2.weight", "fc3.weight", "fc4.weight"]
    assert build_model("mlp", {"hidden": [32]})(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_user_factory_and_errors():
    m = build_model("test_models:tiny_factory", {"hidden": 5})
    assert m(torch.zeros(1, 1, 8, 8)).shape == (1, 10)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("vgg99")
    with pytest.raises(ValueError, match="cannot import"):
        build_model("no_such_module_xyz:f")
