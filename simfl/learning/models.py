"""Classifiers the devices train, and the uplink size S they imply.

``vgg9`` is the paper's model (Section V-A2, after FedMA's VGG-9): 3x3 convolutions
32-64-pool-128-128-pool-256-256-pool, then fully connected 512-512-C, ReLU
everywhere, no batch norm, no dropout. For 3x32x32 inputs and 10 classes it has
3,491,530 parameters, 111.7 Mb at 32 bits each, the paper's uplink figure.

``cnn`` is a compact model for 28x28 grey images that keeps a full default comparison
within minutes on two CPU cores: conv 5x5 16-pool-conv 5x5 32-pool, fc 64-C
(114,314 parameters, 5.8 MFLOP per forward pass against VGG-9's 271 MFLOP).

Weights are initialised from an explicit ``torch.Generator`` seeded by the caller,
with PyTorch's default schemes, so building a model never touches the global RNG.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from simfl.numerics import pin_torch

if TYPE_CHECKING:  # torch is imported where a model is built, so the registry is cheap to read
    from torch import nn  # deferred: torch, only when a model is built (listing MODELS must not load it)


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its builder `f(in_channels, n_classes, image_side)` and the
    number its input side must be divisible by (its pooling)."""

    builder: Callable[..., nn.Module]
    side_divisor: int


MODELS: dict[str, ModelSpec] = {}


def model(name: str, *, side_divisor: int) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a model builder under `name` (`task.model`): adding a model is one
    decorated function. A name used twice is an error."""

    def add(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        MODELS[name] = ModelSpec(builder, side_divisor)
        return builder

    return add


# Where a ReLU meets a 2x2 max-pool the pool comes first: max and ReLU commute (ReLU is
# monotone), so the function is the same, but the ReLU and its backward pass then touch
# 4x fewer values, which is measurable on a CPU.


@model("vgg9", side_divisor=8)
def vgg9(in_channels: int, n_classes: int, image_size: int = 32) -> nn.Sequential:
    """VGG-9 as in FedMA / the paper; the flattened size is 256 x (image_size/8)^2."""
    from torch import nn  # deferred: torch, only when a model is built (listing MODELS must not load it)

    def conv(cin: int, cout: int) -> nn.Conv2d:
        return nn.Conv2d(cin, cout, kernel_size=3, padding=1)

    def relu() -> nn.ReLU:
        return nn.ReLU(inplace=True)

    side = image_size // 8
    return nn.Sequential(
        conv(in_channels, 32), relu(), conv(32, 64), nn.MaxPool2d(2), relu(),
        conv(64, 128), relu(), conv(128, 128), nn.MaxPool2d(2), relu(),
        conv(128, 256), relu(), conv(256, 256), nn.MaxPool2d(2), relu(),
        nn.Flatten(),
        nn.Linear(256 * side * side, 512), nn.ReLU(inplace=True),
        nn.Linear(512, 512), nn.ReLU(inplace=True),
        nn.Linear(512, n_classes),
    )


@model("cnn", side_divisor=4)
def cnn(in_channels: int, n_classes: int, image_size: int = 28) -> nn.Sequential:
    """Compact CNN: conv5x5(16)-pool-conv5x5(32)-pool-fc64-fc(C), 'same' padding."""
    from torch import nn  # deferred: torch, only when a model is built (listing MODELS must not load it)

    side = image_size // 4
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, kernel_size=5, padding=2), nn.MaxPool2d(2), nn.ReLU(inplace=True),
        nn.Conv2d(16, 32, kernel_size=5, padding=2), nn.MaxPool2d(2), nn.ReLU(inplace=True),
        nn.Flatten(),
        nn.Linear(32 * side * side, 64), nn.ReLU(inplace=True),
        nn.Linear(64, n_classes),
    )


def build_model(name: str, image_shape: tuple[int, int, int], n_classes: int, seed: int) -> nn.Module:
    """A freshly initialised model for images of shape (C, H, W).

    Parameters
    ----------
    name
        ``cnn`` or ``vgg9``.
    seed
        Seeds a private ``torch.Generator`` for the initial weights.
    """
    import torch  # deferred: torch, only when a model is built (listing MODELS must not load it)

    pin_torch()  # portable numerics: torch's CPU-dependent backends off before the first step
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    c, h, w = image_shape
    if h != w:
        raise ValueError(f"{name} expects square images, got {h}x{w}")
    divisor = MODELS[name].side_divisor
    if h % divisor:
        raise ValueError(f"{name} needs an image side divisible by {divisor}, got {h}")
    # nn.Conv2d / nn.Linear draw default weights from the global RNG when constructed;
    # fork_rng restores its state afterwards, and init_weights redraws from our generator.
    with torch.random.fork_rng(devices=[]):
        model = MODELS[name].builder(c, n_classes, h)
    init_weights(model, seed)
    return model


def init_weights(model: nn.Module, seed: int) -> None:
    """PyTorch's default Conv/Linear initialisation, drawn from a seeded private generator:
    W ~ kaiming_uniform(a=sqrt(5)), b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    import torch  # deferred: torch, only when a model is built (listing MODELS must not load it)
    from torch import nn  # deferred: torch, only when a model is built (listing MODELS must not load it)

    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=gen)
                if module.bias is not None:
                    fan_in = module.weight[0].numel()
                    bound = 1.0 / math.sqrt(fan_in)
                    nn.init.uniform_(module.bias, -bound, bound, generator=gen)


def parameter_count(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def model_bits(model: nn.Module) -> int:
    """Uplink size S of one model update: 32 bits per parameter (Section V-A2)."""
    return 32 * parameter_count(model)


def forward_flops(model: nn.Module, image_shape: tuple[int, int, int]) -> int:
    """Multiply-accumulates x 2 of one forward pass of one image, counted analytically
    over the Conv2d and Linear layers (activations and pooling are negligible)."""
    import torch  # deferred: torch, only when a model is built (listing MODELS must not load it)
    from torch import nn  # deferred: torch, only when a model is built (listing MODELS must not load it)

    flops = 0
    x = torch.zeros(1, *image_shape)
    with torch.no_grad():
        for module in model.children() if isinstance(model, nn.Sequential) else [model]:
            y = module(x)
            if isinstance(module, nn.Conv2d):
                k = module.weight[0].numel()  # cin/groups x kh x kw
                flops += 2 * k * y.numel()
            elif isinstance(module, nn.Linear):
                flops += 2 * module.in_features * module.out_features
            x = y
    return flops


__all__ = ["MODELS", "ModelSpec", "build_model", "cnn", "forward_flops", "init_weights", "model_bits",
           "model", "parameter_count", "vgg9"]
