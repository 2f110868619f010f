"""The generators a scenario may name (`generator.kind`) and their training configurations
(`generator.config`): the registry every choice of a generator comes from (scenario
checks, `simfl generator --kind`, training and sampling). Plain dataclasses, no torch, so
validating a scenario stays cheap; simfl.generative.train holds the code of each kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class UNetConfig:
    """Widths of a UNet whose resolution halves at every level after the first."""

    in_channels: int = 1
    base_channels: int = 64
    channel_mults: tuple[int, ...] = (1, 2, 2)
    attention_at_bottom: bool = True
    groups: int = 8


@dataclass(frozen=True)
class GANConfig:
    in_channels: int = 1
    resolution: int = 16
    latent_dim: int = 64
    width: int = 32  # channels at full resolution; doubled at every halving


@dataclass(frozen=True)
class DiffusionTraining:
    resolution: int = 16
    unet: UNetConfig = field(default_factory=lambda: UNetConfig(base_channels=32, channel_mults=(1, 2, 2)))
    n_timesteps: int = 300  # T, as in the paper (Section V-A3)
    schedule: str = "cosine"
    p_uncond: float = 0.15  # rate at which the label is replaced by the null label
    batch_size: int = 64
    steps: int = 4000
    lr: float = 5e-4
    warmup_steps: int = 200
    ema_decay: float = 0.998
    log_every: int = 100
    checkpoint_every: int = 500


@dataclass(frozen=True)
class GANTraining:
    resolution: int = 16
    gan: GANConfig = field(default_factory=GANConfig)
    batch_size: int = 64
    steps: int = 6000
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.0, 0.9)
    ema_decay: float = 0.999
    log_every: int = 200
    checkpoint_every: int = 1000


# Per kind, its configurations by name. "default": useful quality in about 20 minutes on
# 2 idle CPU cores; "quick": the same networks for a fraction of the steps, with a
# faster-moving EMA and learning-rate warm-up to match (about 5 minutes for both, what
# the quickstart uses); "tiny": seconds, for tests.
CONFIGS: dict[str, dict[str, Any]] = {
    "diffusion": {
        "default": DiffusionTraining(),
        "quick": DiffusionTraining(steps=1200, lr=1e-3, warmup_steps=100, ema_decay=0.99, checkpoint_every=200),
        "tiny": DiffusionTraining(
            resolution=8, unet=UNetConfig(base_channels=8, channel_mults=(1, 2), attention_at_bottom=True, groups=4),
            n_timesteps=50, batch_size=16, steps=30, lr=2e-3, warmup_steps=0, ema_decay=0.9, log_every=10,
            checkpoint_every=10),
    },
    "gan": {
        "default": GANTraining(),
        "quick": GANTraining(steps=2000, ema_decay=0.995, checkpoint_every=500),
        "tiny": GANTraining(resolution=8, gan=GANConfig(resolution=8, latent_dim=8, width=8), batch_size=16,
                            steps=30, ema_decay=0.9, log_every=10, checkpoint_every=10),
    },
}
KINDS = tuple(CONFIGS)
# every configuration name some kind has (a scenario's kind and config are checked together)
CONFIG_NAMES = tuple(dict.fromkeys(name for configs in CONFIGS.values() for name in configs))

__all__ = ["CONFIGS", "CONFIG_NAMES", "KINDS", "DiffusionTraining", "GANConfig", "GANTraining", "UNetConfig"]
