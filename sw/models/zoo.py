"""Models: LeNet-5, the paper's ResNet-18 (widths 16-32-64-128), an MLP, and user modules by import path."""
from __future__ import annotations

import inspect

import torch
from torch import nn
import torch.nn.functional as F

from sw.factory import import_factory  # noqa: F401  (re-exported)


class LeNet5(nn.Module):
    """LeNet-5: two 5x5 convolutions with pooling, then 120-84-classes fully connected layers."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> None:
        super().__init__()
        pad2 = 2 if image_size < 16 else 0   # keep small inputs (8x8 digits) from shrinking to nothing
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5, padding=pad2)
        side = ((image_size // 2) + 2 * pad2 - 4) // 2
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv + batch norm, identity or 1x1 projection shortcut."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """CIFAR-style ResNet-18 with the paper's reduced widths 16-32-64-128 (2 blocks per stage)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28,
                 widths: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        layers, cin = [], widths[0]
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers += [BasicBlock(cin, w, stride), BasicBlock(w, w, 1)]
            cin = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layers(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class MLP(nn.Module):
    """Fully connected classifier on the flattened image: in -> hidden (ReLU) ... -> classes.

    The default hidden widths 256-256-128 make the 64-256-256-128-10 MLP on 8x8 digits.
    Layers are fc1 .. fc{len(hidden)+1}.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 8,
                 hidden: tuple[int, ...] = (256, 256, 128)) -> None:
        super().__init__()
        widths = [in_channels * image_size * image_size, *hidden, num_classes]
        self.depth = len(widths) - 1
        for i in range(self.depth):
            setattr(self, f"fc{i + 1}", nn.Linear(widths[i], widths[i + 1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        for i in range(1, self.depth + 1):
            x = getattr(self, f"fc{i}")(x)
            if i < self.depth:
                x = F.relu(x)
        return x


MODELS = {"lenet5": LeNet5, "resnet18": ResNet18, "mlp": MLP}


#: keyword arguments `train` offers every model, from its data set (sw.data.Dataset.model_config)
DATA_KEYS = ("in_channels", "num_classes", "image_size")


def factory_kwargs(factory, config: dict) -> dict:
    """The keyword arguments a factory gets: every entry of `config`, except the DATA_KEYS its
    signature does not take (a factory without **kwargs need not declare them)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return dict(config)
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return dict(config)
    return {k: v for k, v in config.items() if k not in DATA_KEYS or k in params}


def build_model(name: str, config: dict | None = None) -> nn.Module:
    """Build a registered model ("lenet5", "resnet18", "mlp") or a user's "package.module:factory".

    A factory is called with keyword arguments only: in_channels, num_classes and image_size
    (from the data set) when its signature names them or takes **kwargs, plus every entry of
    the model configuration (`--model-config`), which it must accept. It returns an nn.Module.
    """
    config = dict(config or {})
    if name in MODELS:
        for key in ("widths", "hidden"):
            if key in config:
                config[key] = tuple(config[key])
        return MODELS[name](**config)
    if ":" in name:
        factory = import_factory(name, "model")
        kwargs = factory_kwargs(factory, config)
        try:
            model = factory(**kwargs)
        except TypeError as e:
            raise ValueError(f"model factory {name!r} does not take the keyword arguments "
                             f"{', '.join(sorted(kwargs)) or '(none)'}: {' '.join(str(e).splitlines())} "
                             f"(a factory receives {', '.join(DATA_KEYS)} if it names them, and every "
                             "--model-config entry)") from None
        if not isinstance(model, nn.Module):
            raise ValueError(f"model factory {name!r} did not return a torch.nn.Module")
        return model
    raise ValueError(f"unknown model {name!r}: use one of {', '.join(MODELS)} or package.module:factory")


def describe_mismatch(model: nn.Module, state: dict) -> str | None:
    """One line saying how `state` does not fit `model`'s state_dict (None if it fits by names and shapes)."""
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}
    missing = [k for k in want if k not in have]
    extra = [k for k in have if k not in want]
    shape = [k for k in want if k in have and want[k] != have[k]]
    if not (missing or extra or shape):
        return None
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (first {missing[0]!r})")
    if extra:
        parts.append(f"{len(extra)} unexpected (first {extra[0]!r})")
    if shape:
        parts.append(f"{len(shape)} of other shapes (first {shape[0]!r}: {have[shape[0]]}, the model has "
                     f"{want[shape[0]]})")
    return f"{type(model).__name__} has {len(want)} state entries, the weights {len(have)}: " + ", ".join(parts)


def load_weights(model: nn.Module, state: dict, where: str, name: str) -> nn.Module:
    """Load a state_dict into `model`; a mismatch is one ValueError line naming the first differing entry."""
    why = describe_mismatch(model, state)
    if why is not None:
        raise ValueError(f"{where}: weights do not fit model {name!r}: {why}")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{where}: weights do not fit model {name!r}: {' '.join(str(e).split())[:300]}") from None
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
