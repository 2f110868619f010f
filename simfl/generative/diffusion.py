"""Denoising diffusion: noise schedule, forward process, training loss and sampling.

DDPM (Ho et al. 2020) with classifier-free guidance (Ho & Salimans 2021): the network is
trained with its label replaced by the null label at rate `p_uncond`, and sampled with

    eps = (1 + w) eps(x_t, t, y) - w eps(x_t, t, null)

for a guidance weight w >= 0 (w = 0 is plain conditional sampling). Sampling is either
ancestral DDPM over all T steps (the paper uses T = 300) or deterministic DDIM (Song et al.
2021, eta = 0) over a subsequence of the T steps.

Timesteps are indexed t = 0 .. T-1; alpha_bar[t] = prod_{s <= t} (1 - beta_s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from simfl.learning.portable_math import cos, sqrt

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t) -> eps


@dataclass(frozen=True)
class Schedule:
    """The variance schedule beta_1..beta_T and the quantities derived from it (float64)."""

    betas: torch.Tensor  # (T,)

    @property
    def n_steps(self) -> int:
        return int(self.betas.shape[0])

    @property
    def alphas(self) -> torch.Tensor:
        return 1.0 - self.betas

    @property
    def alpha_bar(self) -> torch.Tensor:
        return torch.cumprod(self.alphas, dim=0)

    @property
    def alpha_bar_prev(self) -> torch.Tensor:
        return torch.cat([torch.ones(1, dtype=self.betas.dtype), self.alpha_bar[:-1]])

    @property
    def posterior_variance(self) -> torch.Tensor:
        """Variance of q(x_{t-1} | x_t, x_0), eq. (7) of Ho et al.: beta_t (1 - ab_{t-1}) / (1 - ab_t)."""
        return self.betas * (1.0 - self.alpha_bar_prev) / (1.0 - self.alpha_bar)


def linear_schedule(n_steps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> Schedule:
    """Ho et al.'s linear schedule, its end points rescaled by 1000 / T so that a shorter
    chain still ends near pure noise (alpha_bar_T ~ e^-10 at T = 300)."""
    scale = 1000.0 / n_steps
    return Schedule(torch.linspace(beta_start * scale, beta_end * scale, n_steps, dtype=torch.float64))


def cosine_schedule(n_steps: int, s: float = 0.008, max_beta: float = 0.999) -> Schedule:
    """Nichol & Dhariwal (2021): alpha_bar(t) = f(t) / f(0), f(t) = cos^2(((t/T + s) / (1 + s)) pi/2).
    Gentler than the linear schedule at low resolution, where the linear one destroys the
    image in the first few steps."""
    steps = torch.arange(n_steps + 1, dtype=torch.float64)
    f = cos(((steps / n_steps + s) / (1 + s)) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    betas = (1.0 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)
    return Schedule(betas)


def make_schedule(kind: str, n_steps: int) -> Schedule:
    if kind == "linear":
        return linear_schedule(n_steps)
    if kind == "cosine":
        return cosine_schedule(n_steps)
    raise ValueError(f"unknown noise schedule {kind!r}; known: linear, cosine")


def _at(values: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """values[t] shaped to broadcast over (B, C, H, W), in float32."""
    return values.to(torch.float32)[t][:, None, None, None]


def q_sample(schedule: Schedule, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Draw from q(x_t | x_0) = N(sqrt(ab_t) x_0, (1 - ab_t) I), eq. (4) of Ho et al."""
    ab = _at(schedule.alpha_bar, t)
    return sqrt(ab) * x0 + sqrt(1.0 - ab) * noise


def q_mean_variance(schedule: Schedule, x0: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of q(x_t | x_0)."""
    ab = _at(schedule.alpha_bar, t)
    return sqrt(ab) * x0, (1.0 - ab).expand_as(x0)


def diffusion_loss(model: nn.Module, schedule: Schedule, x0: torch.Tensor, y: torch.Tensor, null_label: int,
                   p_uncond: float, generator: torch.Generator) -> torch.Tensor:
    """The simple loss of Ho et al. (eq. 14), ||eps - eps_theta(x_t, t, y)||^2, with the label
    replaced by `null_label` at rate `p_uncond` so the same network learns eps(x_t, t, null)."""
    b = x0.shape[0]
    t = torch.randint(0, schedule.n_steps, (b,), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    drop = torch.rand(b, generator=generator) < p_uncond
    y = torch.where(drop, torch.full_like(y, null_label), y)
    return ((model(q_sample(schedule, x0, t, noise), t, y) - noise) ** 2).mean()


def guided_eps(model: nn.Module, y: torch.Tensor, null_label: int, guidance: float | None) -> EpsFn:
    """eps(x_t, t) for label y: conditional when `guidance` is None, else classifier-free guided
    (1 + w) eps(x, y) - w eps(x, null), both terms in one batched forward pass."""
    if guidance is None:
        return lambda x, t: model(x, t, y)
    null = torch.full_like(y, null_label)

    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null]))
        cond, uncond = both.chunk(2)
        return (1.0 + guidance) * cond - guidance * uncond

    return eps


def _predict_x0(schedule: Schedule, x: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    ab = _at(schedule.alpha_bar, t)
    return ((x - sqrt(1.0 - ab) * eps) / sqrt(ab)).clamp(-1.0, 1.0)


@torch.no_grad()
def ddpm_sample(eps_fn: EpsFn, schedule: Schedule, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Ancestral sampling over all T steps (Algorithm 2 of Ho et al.), x_0 clipped to [-1, 1]
    and the posterior mean taken from the clipped x_0 (eq. 7)."""
    ab, ab_prev, betas = schedule.alpha_bar, schedule.alpha_bar_prev, schedule.betas
    coef_x0 = betas * sqrt(ab_prev) / (1.0 - ab)
    coef_xt = (1.0 - ab_prev) * sqrt(1.0 - betas) / (1.0 - ab)
    sigma = sqrt(schedule.posterior_variance)
    x = torch.randn(shape, generator=generator)
    for step in reversed(range(schedule.n_steps)):
        t = torch.full((shape[0],), step, dtype=torch.long)
        x0 = _predict_x0(schedule, x, t, eps_fn(x, t))
        x = _at(coef_x0, t) * x0 + _at(coef_xt, t) * x
        if step > 0:
            x = x + _at(sigma, t) * torch.randn(shape, generator=generator)
    return x


def ddim_timesteps(n_train_steps: int, n_sample_steps: int) -> list[int]:
    """An evenly spaced, strictly decreasing subsequence of 0..T-1 that ends at 0."""
    n = max(1, min(n_sample_steps, n_train_steps))
    steps = torch.linspace(0, n_train_steps - 1, n).round().long().unique().tolist()
    return sorted(steps, reverse=True)


@torch.no_grad()
def ddim_sample(eps_fn: EpsFn, schedule: Schedule, shape: tuple[int, ...], n_steps: int,
                generator: torch.Generator) -> torch.Tensor:
    """Deterministic DDIM (eta = 0): x_prev = sqrt(ab_prev) x0 + sqrt(1 - ab_prev) eps, where
    eps is recomputed from the clipped x0 so the update stays on the noise it implies."""
    ab = schedule.alpha_bar
    x = torch.randn(shape, generator=generator)
    steps = ddim_timesteps(schedule.n_steps, n_steps)
    for i, step in enumerate(steps):
        t = torch.full((shape[0],), step, dtype=torch.long)
        x0 = _predict_x0(schedule, x, t, eps_fn(x, t))
        if i == len(steps) - 1:
            return x0
        a_t = _at(ab, t)
        eps = (x - sqrt(a_t) * x0) / sqrt(1.0 - a_t)
        a_prev = _at(ab, torch.full_like(t, steps[i + 1]))
        x = sqrt(a_prev) * x0 + sqrt(1.0 - a_prev) * eps
    return x


def sample(model: nn.Module, schedule: Schedule, labels: torch.Tensor, image_shape: tuple[int, int, int],
           null_label: int, guidance: float | None, steps: int, generator: torch.Generator) -> torch.Tensor:
    """Images in [-1, 1] for `labels`: DDPM over all T steps when `steps` >= T, else DDIM with
    `steps` steps. `guidance` None is unguided conditional sampling."""
    eps_fn = guided_eps(model, labels, null_label, guidance)
    shape = (labels.shape[0], *image_shape)
    if steps >= schedule.n_steps:
        return ddpm_sample(eps_fn, schedule, shape, generator)
    return ddim_sample(eps_fn, schedule, shape, steps, generator)


__all__ = [
    "Schedule", "cosine_schedule", "ddim_sample", "ddim_timesteps", "ddpm_sample", "diffusion_loss",
    "guided_eps", "linear_schedule", "make_schedule", "q_mean_variance", "q_sample", "sample",
]
