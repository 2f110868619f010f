"""A class-conditional DCGAN-style GAN (the paper's "GAN" baseline, Section V-B).

Generator: DCGAN (Radford et al. 2016) transposed convolutions with BatchNorm, the label
embedding concatenated to the latent. Discriminator: strided convolutions with spectral
normalisation (Miyato et al. 2018) and a projection head for the label (Miyato & Koyama
2018). Hinge loss. Sizes: the image side must be 4 * 2^k (8, 16, 32).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import spectral_norm

from simfl.generative.configs import GANConfig
from simfl.learning.portable_math import Tanh


def _levels(resolution: int) -> int:
    levels = 0
    side = resolution
    while side > 4:
        if side % 2:
            raise ValueError(f"GAN resolution must be 4 * 2^k, got {resolution}")
        side //= 2
        levels += 1
    if side != 4:
        raise ValueError(f"GAN resolution must be 4 * 2^k, got {resolution}")
    return levels


class Generator(nn.Module):
    def __init__(self, config: GANConfig, n_classes: int) -> None:
        super().__init__()
        self.config = config
        self.n_classes = n_classes
        levels = _levels(config.resolution)
        top = config.width * 2 ** levels
        self.label_emb = nn.Embedding(n_classes, config.latent_dim)
        self.fc = nn.Sequential(nn.Linear(2 * config.latent_dim, top * 16), nn.BatchNorm1d(top * 16), nn.ReLU())
        self.top = top
        layers: list[nn.Module] = []
        c = top
        for _ in range(levels):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, stride=2, padding=1), nn.BatchNorm2d(c // 2), nn.ReLU()]
            c //= 2
        layers += [nn.Conv2d(c, config.in_channels, 3, padding=1), Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.fc(torch.cat([z, self.label_emb(y)], dim=1)).view(-1, self.top, 4, 4)
        return self.body(h)


class Discriminator(nn.Module):
    def __init__(self, config: GANConfig, n_classes: int) -> None:
        super().__init__()
        levels = _levels(config.resolution)
        layers: list[nn.Module] = [spectral_norm(nn.Conv2d(config.in_channels, config.width, 3, padding=1)),
                                   nn.LeakyReLU(0.2)]
        c = config.width
        for _ in range(levels):
            layers += [spectral_norm(nn.Conv2d(c, 2 * c, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            c *= 2
        self.body = nn.Sequential(*layers)
        self.features = c
        self.linear = spectral_norm(nn.Linear(c, 1))
        self.label_proj = spectral_norm(nn.Embedding(n_classes, c))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.body(x).sum(dim=(2, 3))
        return self.linear(h).squeeze(1) + (self.label_proj(y) * h).sum(dim=1)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge loss: E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge generator loss: -E[D(G(z))]."""
    return -fake_logits.mean()


def gan_step(gen: Generator, disc: Discriminator, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
             real: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> tuple[float, float]:
    """One discriminator update and one generator update; returns (d_loss, g_loss)."""
    b = real.shape[0]
    z = torch.randn(b, gen.config.latent_dim, generator=generator)
    fake = gen(z, labels)
    d_loss = discriminator_loss(disc(real, labels), disc(fake.detach(), labels))
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()

    g_loss = generator_loss(disc(fake, labels))
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    return d_loss.item(), g_loss.item()


@torch.no_grad()
def gan_sample(gen: Generator, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Images in [-1, 1] for `labels` (the generator in eval mode: BatchNorm running statistics)."""
    z = torch.randn(labels.shape[0], gen.config.latent_dim, generator=generator)
    return gen(z, labels)


__all__ = ["Discriminator", "GANConfig", "Generator", "discriminator_loss", "gan_sample", "gan_step", "generator_loss"]
