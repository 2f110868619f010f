"""Training the server-side generators on the public split, and loading them back.

`train_generator(kind, scenario)` trains a class-conditional diffusion model or GAN on the
scenario's PUBLIC split only (never on device data), for a fixed number of steps (so the
result is deterministic given the seed, whatever the machine's speed), checkpointing
periodically and resuming from the last checkpoint if interrupted. `load_generator(kind,
scenario)` returns a `TrainedGenerator` ready to sample uint8 images at the data's
resolution.

Resolution: on 2 CPU cores a 28x28 diffusion model does not converge in minutes (DESIGN.md),
so both generators train at a reduced side (16 for "default") and their samples are
upsampled bilinearly to the data's resolution.
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from simfl.errors import DataNotFound, SimflError
from simfl.generative.configs import CONFIGS, KINDS
from simfl.generative import diffusion as dm
from simfl.generative.checkpoint import (DamagedCheckpoint, checkpoint_path, checkpoint_stem, load_checkpoint,
                                         resolve_cache_dir, save_checkpoint)
from simfl.generative.gan import Discriminator, Generator, gan_sample, gan_step
from simfl.generative.unet import UNet
from simfl.learning.data import load_dataset, public_private_split
from simfl.learning.portable_math import adam
from simfl.numerics import pin_torch
from simfl.streams import rng

Progress = Callable[[str], None]

def training_config(kind: str, config: str, in_channels: int) -> Any:
    """The training configuration `config` of generator `kind` for images of `in_channels`."""
    if kind not in CONFIGS or config not in CONFIGS[kind]:
        raise SimflError(f"unknown generator {kind!r} / config {config!r}; kinds and their configs: "
                         + "; ".join(f"{k}: {', '.join(c)}" for k, c in CONFIGS.items()))
    return IMPLEMENTATIONS[kind].with_channels(CONFIGS[kind][config], in_channels)


# --------------------------------------------------------------------------- the kinds


class _Optimisation:
    """What a training run of one kind keeps besides the sampled network and its EMA: the
    optimisers (and a GAN's discriminator). Saved in the checkpoint under fixed keys."""

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, rng: torch.Generator, step: int) -> tuple[float, str]:
        """One training step on the batch (x, y): the loss to log and any extra text for the log line."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError


class GeneratorKind:
    """The code of one generator kind (its configurations are in simfl.generative.configs)."""

    def with_channels(self, cfg: Any, in_channels: int) -> Any:
        raise NotImplementedError

    def network(self, cfg: Any, n_classes: int) -> nn.Module:
        """The network that samples (trained, and kept as an EMA)."""
        raise NotImplementedError

    def optimisation(self, cfg: Any, n_classes: int, model: nn.Module) -> _Optimisation:
        raise NotImplementedError

    def sampler_tag(self, cfg: Any, guidance: float, steps: int) -> str:
        """Names the sampler setting, so pools of different settings never mix."""
        raise NotImplementedError

    def sample(self, net: nn.Module, cfg: Any, labels: torch.Tensor, channels: int, n_classes: int, guidance: float,
               steps: int, generator: torch.Generator) -> torch.Tensor:
        """Images in [-1, 1] at the configuration's resolution, one per label."""
        raise NotImplementedError


class _DiffusionOptimisation(_Optimisation):
    def __init__(self, cfg: Any, n_classes: int, model: nn.Module) -> None:
        self.cfg, self.n_classes = cfg, n_classes
        self.opt = adam(model.parameters(), lr=cfg.lr)
        self.schedule = dm.make_schedule(cfg.schedule, cfg.n_timesteps)

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, rng: torch.Generator, step: int) -> tuple[float, str]:
        lr = self.cfg.lr * min(1.0, (step + 1) / max(1, self.cfg.warmup_steps))
        for group in self.opt.param_groups:
            group["lr"] = lr
        loss = dm.diffusion_loss(model, self.schedule, x, y, self.n_classes, self.cfg.p_uncond, rng)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.item(), ""

    def state_dict(self) -> dict[str, Any]:
        return {"opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.opt.load_state_dict(state["opt"])


class Diffusion(GeneratorKind):
    """The class-conditional DDPM with classifier-free guidance (a UNet); samples by DDPM
    when `steps` >= T, else by DDIM."""

    def with_channels(self, cfg: Any, in_channels: int) -> Any:
        return replace(cfg, unet=replace(cfg.unet, in_channels=in_channels))

    def network(self, cfg: Any, n_classes: int) -> nn.Module:
        return UNet(cfg.unet, n_classes)

    def optimisation(self, cfg: Any, n_classes: int, model: nn.Module) -> _Optimisation:
        return _DiffusionOptimisation(cfg, n_classes, model)

    def sampler_tag(self, cfg: Any, guidance: float, steps: int) -> str:
        method = f"ddpm{cfg.n_timesteps}" if steps >= cfg.n_timesteps else f"ddim{steps}"
        return f"{method}-w{guidance:g}"

    def sample(self, net: nn.Module, cfg: Any, labels: torch.Tensor, channels: int, n_classes: int, guidance: float,
               steps: int, generator: torch.Generator) -> torch.Tensor:
        schedule = dm.make_schedule(cfg.schedule, cfg.n_timesteps)
        return dm.sample(net, schedule, labels, (channels, cfg.resolution, cfg.resolution), n_classes, guidance, steps,
                         generator)


class _GANOptimisation(_Optimisation):
    def __init__(self, cfg: Any, n_classes: int, model: nn.Module) -> None:
        self.disc = Discriminator(cfg.gan, n_classes)
        self.opt = adam(model.parameters(), lr=cfg.lr_g, betas=cfg.betas)
        self.opt_d = adam(self.disc.parameters(), lr=cfg.lr_d, betas=cfg.betas)

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, rng: torch.Generator, step: int) -> tuple[float, str]:
        assert isinstance(model, Generator)
        d_loss, g_loss = gan_step(model, self.disc, self.opt, self.opt_d, x, y, rng)
        # the discriminator's hinge loss: falls as D learns, ~2 at equilibrium of chance
        return d_loss, f" g_loss {g_loss:.3f}"

    def state_dict(self) -> dict[str, Any]:
        return {"opt": self.opt.state_dict(), "disc": self.disc.state_dict(), "opt_d": self.opt_d.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.opt.load_state_dict(state["opt"])
        self.disc.load_state_dict(state["disc"])
        self.opt_d.load_state_dict(state["opt_d"])


class GAN(GeneratorKind):
    """The conditional DCGAN-style GAN (hinge loss, spectral norm); one pass per sample."""

    def with_channels(self, cfg: Any, in_channels: int) -> Any:
        return replace(cfg, gan=replace(cfg.gan, in_channels=in_channels, resolution=cfg.resolution))

    def network(self, cfg: Any, n_classes: int) -> nn.Module:
        return Generator(cfg.gan, n_classes)

    def optimisation(self, cfg: Any, n_classes: int, model: nn.Module) -> _Optimisation:
        return _GANOptimisation(cfg, n_classes, model)

    def sampler_tag(self, cfg: Any, guidance: float, steps: int) -> str:
        return "gan"

    def sample(self, net: nn.Module, cfg: Any, labels: torch.Tensor, channels: int, n_classes: int, guidance: float,
               steps: int, generator: torch.Generator) -> torch.Tensor:
        assert isinstance(net, Generator)
        return gan_sample(net, labels, generator)


# The code of each kind of simfl.generative.configs.CONFIGS (a new kind: its configurations
# there, its class here).
IMPLEMENTATIONS: dict[str, GeneratorKind] = {"diffusion": Diffusion(), "gan": GAN()}
assert set(IMPLEMENTATIONS) == set(CONFIGS), "every generator kind has its configurations and its code"


# --------------------------------------------------------------------------- image conversion


def to_model_space(images: np.ndarray, resolution: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 in [-1, 1] at resolution x resolution (antialiased)."""
    x = torch.from_numpy(np.array(images, dtype=np.float32)) / 127.5 - 1.0
    if x.shape[-1] != resolution or x.shape[-2] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(-1.0, 1.0)


def to_uint8(x: torch.Tensor, image_shape: tuple[int, int, int]) -> np.ndarray:
    """float in [-1, 1] at the model's resolution -> uint8 (N, C, H, W) at the data's resolution."""
    h, w = image_shape[1], image_shape[2]
    if x.shape[-2:] != (h, w):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return ((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8).numpy()


# --------------------------------------------------------------------------- training state


def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    with torch.no_grad():
        for pe, pm in zip(ema.parameters(), model.parameters()):
            pe.lerp_(pm, 1.0 - decay)
        for be, bm in zip(ema.buffers(), model.buffers()):
            be.copy_(bm)


class _Run:
    """Models, EMA, optimisers, step counter and RNG of one training run; all of it
    goes into the checkpoint, so a resumed run continues bit for bit."""

    def __init__(self, kind: str, cfg: Any, n_classes: int, seed: int) -> None:
        self.kind, self.cfg, self.n_classes, self.seed = kind, cfg, n_classes, seed
        pin_torch()
        # parameter initialisation draws from torch's global RNG: fork it so nothing leaks out
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = IMPLEMENTATIONS[kind].network(cfg, n_classes)
            self.optimisation = IMPLEMENTATIONS[kind].optimisation(cfg, n_classes, self.model)
        self.ema = copy.deepcopy(self.model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.rng = torch.Generator().manual_seed(seed)
        self.step = 0
        self.elapsed_s = 0.0
        self.history: list[tuple[int, float, float]] = []  # (step, loss, elapsed_s)
        self.log_extra = ""  # the kind's own text for the progress line (a GAN's generator loss)

    def train_step(self, data: torch.Tensor, labels: torch.Tensor) -> float:
        idx = torch.randint(0, data.shape[0], (self.cfg.batch_size,), generator=self.rng)
        x, y = data[idx], labels[idx]
        self.model.train()
        value, self.log_extra = self.optimisation.step(self.model, x, y, self.rng, self.step)
        _ema_update(self.ema, self.model, self.cfg.ema_decay)
        self.step += 1
        return value

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "rng": self.rng.get_state(),
            "step": self.step,
            "elapsed_s": self.elapsed_s,
            "history": list(self.history),
            **self.optimisation.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimisation.load_state_dict(state)
        self.rng.set_state(state["rng"])
        self.step = int(state["step"])
        self.elapsed_s = float(state["elapsed_s"])
        self.history = [tuple(h) for h in state["history"]]


def _trajectory(training: dict[str, Any]) -> dict[str, Any]:
    """The settings that shape the training trajectory: a run may resume under another step
    budget or logging interval (to train longer), never under another model or optimiser."""
    return {k: v for k, v in training.items() if k not in ("steps", "log_every", "checkpoint_every")}


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def train_on_arrays(kind: str, config: str, images: np.ndarray, labels: np.ndarray, n_classes: int,
                    path: Path, seed: int, meta: dict[str, Any] | None = None, progress: Progress | None = _stderr,
                    stop_after: int | None = None, steps: int | None = None) -> Path:
    """Train (or resume training) a generator on uint8 `images` (N, C, H, W) with int `labels`,
    checkpointing to `path`. `stop_after` ends the run early at that step (a checkpoint is
    written), as an interruption would; `steps` overrides the configuration's step budget.

    Returns `path`. If the checkpoint there is already complete, returns at once.
    """
    if images.ndim != 4 or images.dtype != np.uint8:
        raise SimflError(f"generator training needs uint8 images (N, C, H, W), got {images.dtype} {images.shape}")
    if len(images) != len(labels) or len(images) == 0:
        raise SimflError(f"generator training needs as many labels as images (> 0), got {len(images)} / {len(labels)}")
    labels_np = np.asarray(labels, dtype=np.int64)
    if labels_np.min() < 0 or labels_np.max() >= n_classes:
        raise SimflError(f"labels must lie in 0..{n_classes - 1}, got {labels_np.min()}..{labels_np.max()}")
    cfg = training_config(kind, config, images.shape[1])
    total = int(steps if steps is not None else cfg.steps)
    run = _Run(kind, cfg, n_classes, seed)
    header = {
        "kind": kind, "config": config, "seed": seed, "n_classes": n_classes, "total_steps": total,
        "image_shape": tuple(int(s) for s in images.shape[1:]), "resolution": cfg.resolution,
        "training": asdict(cfg), "train_samples": int(len(images)), **(meta or {}),
    }
    if path.exists():
        state = load_checkpoint(path)
        if state["meta"]["kind"] != kind or _trajectory(state["meta"]["training"]) != _trajectory(header["training"]):
            raise SimflError(f"{path} holds a different generator ({state['meta']['kind']}, "
                             f"{state['meta']['config']}); delete it or use another --cache-dir")
        run.load_state_dict(state["run"])
        if progress and run.step < total:
            progress(f"{kind} {config}: resuming {path.name} at step {run.step}/{total}")
    if run.step >= total:
        return path

    data = to_model_space(images, cfg.resolution)
    y = torch.from_numpy(labels_np)

    def save() -> None:
        save_checkpoint(path, {"meta": header, "run": run.state_dict()})

    end = total if stop_after is None else min(total, stop_after)
    window: list[float] = []
    t_last = time.perf_counter()
    try:
        while run.step < end:
            window.append(run.train_step(data, y))
            now = time.perf_counter()
            run.elapsed_s += now - t_last
            t_last = now
            if run.step % cfg.log_every == 0 or run.step == end:
                mean = float(np.mean(window))
                run.history.append((run.step, mean, run.elapsed_s))
                window = []
                if progress:
                    per = run.elapsed_s / max(1, run.step)
                    progress(f"{kind} {config} step {run.step}/{total} loss {mean:.4f}{run.log_extra} "
                             f"{run.elapsed_s:.0f} s ({1000 * per:.0f} ms/step, ~{per * (total - run.step) / 60:.1f} min left)")
            if run.step % cfg.checkpoint_every == 0 or run.step == end:
                save()
                t_last = time.perf_counter()  # the save is not training time
    except KeyboardInterrupt:
        save()
        if progress:
            progress(f"interrupted at step {run.step}; checkpoint saved to {path}; run the same command to resume")
        raise
    return path


# --------------------------------------------------------------------------- scenarios


def public_data(scenario: Any) -> tuple[np.ndarray, np.ndarray, int, tuple[str, ...]]:
    """The scenario's PUBLIC split: (images, labels, n_classes, class_names). The split is
    `public_private_split` with task.public_samples and the scenario's "partition" stream,
    the same call the data partitioner makes, so the generator never sees device data."""
    task = scenario.task
    data = load_dataset(task.dataset, task.data_dir)
    _private, public = public_private_split(data.train_labels, task.public_samples, rng(scenario.split_seed, "partition"))
    public = np.asarray(public)
    return (np.asarray(data.train_images[public]), np.asarray(data.train_labels[public], dtype=np.int64),
            int(data.n_classes), tuple(data.class_names))


def generator_seed(scenario_seed: int) -> int:
    """The torch seed of generator training, drawn from the scenario's "generator" stream."""
    return int(rng(scenario_seed, "generator").integers(0, 2**62))


def scenario_checkpoint(kind: str, scenario: Any, cache_dir: str | Path | None = None) -> Path:
    stem = checkpoint_stem(kind, scenario.generator.config, scenario.task.dataset, scenario.task.public_samples,
                           scenario.split_seed)
    return checkpoint_path(resolve_cache_dir(cache_dir, scenario.generator.cache_dir), stem)


def train_command(kind: str, scenario: Any, cache_dir: str | Path | None = None) -> str:
    """The exact `simfl generator train` command that produces this scenario's checkpoint."""
    parts = ["simfl generator train", f"--kind {kind}", str(scenario.source), f"--seed {scenario.split_seed}",
             f"--set task.dataset={scenario.task.dataset}", f"--set task.public_samples={scenario.task.public_samples}",
             f"--set generator.config={scenario.generator.config}"]
    if scenario.task.data_dir:
        parts.append(f"--set task.data_dir={scenario.task.data_dir}")
    if cache_dir is not None:
        parts.append(f"--cache-dir {cache_dir}")
    elif scenario.generator.cache_dir:
        parts.append(f"--set generator.cache_dir={scenario.generator.cache_dir}")
    return " ".join(parts)


def train_generator(kind: str, scenario: Any, cache_dir: str | Path | None = None,
                    progress: Progress | None = _stderr, stop_after: int | None = None) -> Path:
    """Train the scenario's `kind` generator ("diffusion" | "gan") at scenario.generator.config
    on the public split, checkpointing under the cache directory; resumes an interrupted run.
    Returns the checkpoint path."""
    if kind not in KINDS:
        raise SimflError(f"unknown generator kind {kind!r}; known: {', '.join(KINDS)}")
    path = scenario_checkpoint(kind, scenario, cache_dir)
    images, labels, n_classes, class_names = public_data(scenario)
    if progress:
        progress(f"training {kind} ({scenario.generator.config}) on {len(images)} public {scenario.task.dataset} "
                 f"images -> {path}")
    meta = {"dataset": scenario.task.dataset, "public_samples": scenario.task.public_samples,
            "split_seed": scenario.split_seed, "class_names": class_names}
    return train_on_arrays(kind, scenario.generator.config, images, labels, n_classes, path,
                           generator_seed(scenario.split_seed), meta=meta, progress=progress, stop_after=stop_after)


# --------------------------------------------------------------------------- sampling


class TrainedGenerator:
    """A trained generator (its EMA weights) ready to draw labelled uint8 images.

    Diffusion samples with classifier-free guidance weight `guidance` and `steps` denoising
    steps: ancestral DDPM when steps >= T (the paper's 300), deterministic DDIM otherwise.
    """

    def __init__(self, path: Path, state: dict[str, Any], guidance: float = 2.0, steps: int = 50) -> None:
        meta = state["meta"]
        self.path = Path(path)
        self.key = self.path.stem
        self.meta = meta
        self.kind: str = meta["kind"]
        self.n_classes: int = int(meta["n_classes"])
        self.class_names: tuple[str, ...] = tuple(meta.get("class_names") or (str(c) for c in range(self.n_classes)))
        self.image_shape: tuple[int, int, int] = tuple(meta["image_shape"])  # type: ignore[assignment]
        self.resolution: int = int(meta["resolution"])
        self.guidance = float(guidance)
        self.steps = int(steps)
        self.cfg = training_config(self.kind, meta["config"], self.image_shape[0])
        self.implementation = IMPLEMENTATIONS[self.kind]
        pin_torch()
        self.net = self.implementation.network(self.cfg, self.n_classes)
        self.net.load_state_dict(state["run"]["ema"])
        self.net.eval()

    @classmethod
    def from_path(cls, path: Path, guidance: float = 2.0, steps: int = 50) -> "TrainedGenerator":
        return cls(path, load_checkpoint(path), guidance, steps)

    def with_sampling(self, guidance: float | None = None, steps: int | None = None) -> "TrainedGenerator":
        """The same weights, another sampler setting."""
        other = copy.copy(self)
        other.guidance = self.guidance if guidance is None else float(guidance)
        other.steps = self.steps if steps is None else int(steps)
        return other

    @property
    def sampler_tag(self) -> str:
        """Names the sampler setting, so pools of different settings never mix."""
        return self.implementation.sampler_tag(self.cfg, self.guidance, self.steps)

    @property
    def bytes_per_image(self) -> int:
        c, h, w = self.image_shape
        return c * h * w

    def sample(self, labels: np.ndarray, seed: int, batch_size: int = 256) -> np.ndarray:
        """uint8 images (n, C, H, W) at the data's resolution, one per label, deterministic in `seed`."""
        labels_t = torch.as_tensor(np.asarray(labels, dtype=np.int64))
        generator = torch.Generator().manual_seed(int(seed))
        out = []
        for start in range(0, len(labels_t), batch_size):
            y = labels_t[start:start + batch_size]
            x = self.implementation.sample(self.net, self.cfg, y, self.image_shape[0], self.n_classes, self.guidance,
                                           self.steps, generator)
            out.append(to_uint8(x, self.image_shape))
        if not out:
            return np.zeros((0, *self.image_shape), dtype=np.uint8)
        return np.concatenate(out)


def load_generator(kind: str, scenario: Any, cache_dir: str | Path | None = None) -> TrainedGenerator:
    """The scenario's trained `kind` generator, with its sampling settings from
    scenario.generator (guidance, sampling_steps). Raises DataNotFound, naming the exact
    command that trains it, when the checkpoint is missing or only partly trained."""
    if kind not in KINDS:
        raise SimflError(f"unknown generator kind {kind!r}; known: {', '.join(KINDS)}")
    path = scenario_checkpoint(kind, scenario, cache_dir)
    command = train_command(kind, scenario, cache_dir)
    if not path.exists():
        raise DataNotFound(f"no trained {kind} generator for {scenario.source} (looked for {path}). "
                           f"Train it with:\n  {command}")
    try:
        state = load_checkpoint(path)
    except DamagedCheckpoint as exc:  # the one place that knows the command that trains it again
        raise DamagedCheckpoint(f"{exc} with:\n  {command}") from None
    # the budget of the configuration as it is now: raising it turns a finished run into one to resume
    step = state["run"]["step"]
    total = training_config(kind, state["meta"]["config"], state["meta"]["image_shape"][0]).steps
    if step < total:
        raise DataNotFound(f"the {kind} generator at {path} is only partly trained (step {step} of {total}). "
                           f"Resume with:\n  {command}")
    return TrainedGenerator(path, state, scenario.generator.guidance, scenario.generator.sampling_steps)


__all__ = ["GAN", "IMPLEMENTATIONS", "Diffusion", "GeneratorKind", "TrainedGenerator", "generator_seed",
           "load_generator", "public_data", "scenario_checkpoint", "to_model_space", "to_uint8", "train_command",
           "train_generator", "train_on_arrays", "training_config"]
