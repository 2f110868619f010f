"""Measured quality of the generators (the numbers behind the paper's Fig. 5(d) claim).

Two scores, per class and overall, both from one small CNN trained on the REAL public split:

- classification accuracy score (CAS): the share of synthetic images of class c that the
  real-data classifier labels c (how recognisable and label-faithful the samples are);
- Frechet distance (FD) between the Gaussians fitted to real and synthetic features, the
  features being that classifier's penultimate layer (the FID recipe of Heusel et al. 2017
  with a domain classifier in place of Inception). Lower is better.

Reference rows put the numbers in scale: real held-out images (the best any generator
can do at this sample size) and the same images squeezed to the generators' training
resolution and back (the best a generator at that resolution can do).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
from scipy import linalg
from torch import nn
from torch.nn import functional as F

from simfl.generative.pool import SynthesisService
from simfl.generative.train import TrainedGenerator, public_data, to_model_space, to_uint8
from simfl.learning.data import load_dataset
from simfl.learning.portable_math import adam

Progress = Callable[[str], None]


class FeatureClassifier(nn.Module):
    """conv32-pool-conv64-pool-fc64-fc C; `features` is the 64-d penultimate layer (small, so
    its covariance is well estimated from a few hundred images per class)."""

    def __init__(self, in_channels: int, side: int, n_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * (side // 4) ** 2, 64)
        self.fc2 = nn.Linear(64, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return F.relu(self.fc1(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.features(x))


def _to_input(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(images, dtype=np.float32)) / 127.5 - 1.0


@dataclass
class Judge:
    """The real-data classifier and how well it does on real held-out data."""

    model: FeatureClassifier
    real_test_accuracy: float

    @torch.no_grad()
    def predict_and_features(self, images: np.ndarray, batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
        self.model.eval()
        preds, feats = [], []
        for start in range(0, len(images), batch):
            h = self.model.features(_to_input(images[start:start + batch]))
            preds.append(self.model.fc2(h).argmax(1).numpy())
            feats.append(h.numpy().astype(np.float64))
        return np.concatenate(preds), np.concatenate(feats)


def train_judge(train_images: np.ndarray, train_labels: np.ndarray, held_out_images: np.ndarray,
                held_out_labels: np.ndarray, n_classes: int, seed: int = 0, epochs: int = 5,
                progress: Progress | None = None) -> Judge:
    """Train the judging classifier on real images (deterministic in `seed`); its accuracy
    is measured on the real held-out images."""
    c, h, w = train_images.shape[1:]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FeatureClassifier(c, h, n_classes)
    gen = torch.Generator().manual_seed(seed)
    opt = adam(model.parameters(), lr=1e-3)
    x_all, y_all = _to_input(train_images), torch.as_tensor(np.asarray(train_labels, dtype=np.int64))
    for _epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x_all), generator=gen)
        for start in range(0, len(order), 128):
            idx = order[start:start + 128]
            loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    judge = Judge(model, 0.0)
    preds, _ = judge.predict_and_features(held_out_images)
    judge.real_test_accuracy = float((preds == np.asarray(held_out_labels)).mean())
    if progress:
        progress(f"judge: CNN trained {epochs} epochs on {len(train_images)} real public images; accuracy on "
                 f"{len(held_out_images)} real test images {judge.real_test_accuracy:.3f}")
    return judge


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of two feature samples.

    Tr((S_a S_b)^(1/2)) is computed as the sum of the square roots of the eigenvalues of
    the symmetric PSD matrix S_a^(1/2) S_b S_a^(1/2), which has the same eigenvalues as
    S_a S_b; this stays real and stable when a covariance is singular (fewer samples than
    feature dimensions), where a general matrix square root does not."""
    mu_a, mu_b = feats_a.mean(0), feats_b.mean(0)
    s_a, s_b = np.atleast_2d(np.cov(feats_a, rowvar=False)), np.atleast_2d(np.cov(feats_b, rowvar=False))
    w, v = linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    inner = linalg.eigvalsh(root_a @ s_b @ root_a)
    trace_covmean = float(np.sqrt(np.clip(inner, 0.0, None)).sum())
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2.0 * trace_covmean)


def score_images(judge: Judge, name: str, images: np.ndarray, labels: np.ndarray, real_feats: np.ndarray,
                 real_labels: np.ndarray, class_names: Sequence[str], seconds_per_image: float = float("nan"),
                 real_feats_res: np.ndarray | None = None) -> pd.DataFrame:
    """One row per class and one "all" row: CAS, FD against the real features and, given
    `real_feats_res` (real images squeezed to the generator's training resolution and
    back), `fd_res`: the FD that remains once the resolution's own loss is set aside."""
    preds, feats = judge.predict_and_features(images)
    rows = []
    groups = [(cname, labels == c, real_labels == c) for c, cname in enumerate(class_names)]
    groups.append(("all", np.ones(len(labels), dtype=bool), np.ones(len(real_labels), dtype=bool)))
    for cname, mine, theirs in groups:
        if not mine.any():
            continue
        rows.append({"model": name, "class": cname, "n": int(mine.sum()),
                     "cas": float((preds[mine] == labels[mine]).mean()),
                     "fd": frechet_distance(real_feats[theirs], feats[mine]),
                     "fd_res": (frechet_distance(real_feats_res[theirs], feats[mine])
                                if real_feats_res is not None else float("nan")),
                     "s_per_image": seconds_per_image})
    return pd.DataFrame(rows)


def evaluate_generator(generators: TrainedGenerator | Sequence[TrainedGenerator], scenario: Any,
                       n_per_class: int = 200, pool_dir: str | Path | None = None, references: bool = True,
                       real_per_class: int = 500, judge: Judge | None = None,
                       progress: Progress | None = print) -> pd.DataFrame:
    """Score each generator's first `n_per_class` pool images per class (generating what the
    pool lacks, which later simulations then reuse) against real held-out test images, as
    they are (fd) and squeezed to the generator's training resolution and back (fd_res).

    The real statistics come from `real_per_class` test images per class; the judge is
    trained on the scenario's real public split. Returns a DataFrame with columns model,
    class, n, cas, fd, s_per_image (generation seconds per image when the pool had to
    generate them, else NaN), one row per class plus one "all" row per model; with
    `references`, also rows for other real test images, as they are and squeezed to the
    generators' training resolution.
    """
    gens = [generators] if isinstance(generators, TrainedGenerator) else list(generators)
    data = load_dataset(scenario.task.dataset, scenario.task.data_dir)
    pub_images, pub_labels, n_classes, class_names = public_data(scenario)
    test_images, test_labels = np.asarray(data.test_images), np.asarray(data.test_labels)
    # Two disjoint sets of test images: the real statistics, and the "real" reference row.
    order = np.random.default_rng(0).permutation(len(test_labels))
    by_class = [order[test_labels[order] == c] for c in range(n_classes)]
    stats_idx = np.concatenate([idx[:real_per_class] for idx in by_class])
    ref_idx = np.concatenate([idx[real_per_class:real_per_class + n_per_class] for idx in by_class])
    if judge is None:
        judge = train_judge(pub_images, pub_labels, test_images[stats_idx], test_labels[stats_idx], n_classes,
                            progress=progress)
    _, real_feats = judge.predict_and_features(test_images[stats_idx])
    real_labels = test_labels[stats_idx]
    resolutions = sorted({g.resolution for g in gens if g.resolution != data.image_shape[1]})
    feats_at = {r: judge.predict_and_features(to_uint8(to_model_space(test_images[stats_idx], r),
                                                       data.image_shape))[1] for r in resolutions}

    frames = []
    if references:
        ref_images, ref_labels = test_images[ref_idx], test_labels[ref_idx]
        frames.append(score_images(judge, "real test images", ref_images, ref_labels, real_feats, real_labels,
                                   class_names))
        for r in resolutions:
            squeezed = to_uint8(to_model_space(ref_images, r), data.image_shape)
            frames.append(score_images(judge, f"real test images at {r}x{r}", squeezed, ref_labels, real_feats,
                                       real_labels, class_names, real_feats_res=feats_at[r]))
    for gen in gens:
        service = SynthesisService(gen, pool_dir, progress=progress)
        start = time.perf_counter()
        images, labels = service.server_set(np.full(n_classes, n_per_class))
        elapsed = time.perf_counter() - start
        per_image = service.stats.generation_s / service.stats.generated_images if service.stats.generated_images \
            else float("nan")
        if progress:
            progress(f"{gen.key} [{gen.sampler_tag}]: {len(images)} images ({service.stats.generated_images} "
                     f"generated, {elapsed:.0f} s)")
        frames.append(score_images(judge, f"{gen.kind} {gen.sampler_tag}", images, labels, real_feats, real_labels,
                                   class_names, per_image, real_feats_res=feats_at.get(gen.resolution)))
    return pd.DataFrame(pd.concat(frames, ignore_index=True))


def summary_table(df: pd.DataFrame) -> str:
    """A plain-text table: a row per class, CAS and FD columns per model."""
    order = [c for c in dict.fromkeys(df["class"]) if c != "all"] + ["all"]
    models = list(dict.fromkeys(df["model"]))
    blocks = [("cas", "CAS (share of samples a real-data classifier labels as their class; higher is better)"),
              ("fd", "FD (Frechet distance of classifier features to real test images; lower is better)"),
              ("fd_res", "FD to real test images at the generator's training resolution (upsampled back the "
                         "same way; lower is better)")]
    lines = []
    for column, title in blocks:
        table = df.pivot(index="class", columns="model", values=column)
        table = table.loc[[c for c in order if c in table.index], models]
        if table.isna().all().all():
            continue
        lines += [title, _format(table), ""]
    return "\n".join(lines).rstrip()


def _format(table: pd.DataFrame) -> str:
    return table.to_string(float_format=lambda v: f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}")


def save_grid(generator: TrainedGenerator, path: str | Path, per_class: int = 10, pool_dir: str | Path | None = None,
              title: str | None = None) -> Path:
    """A PNG of `per_class` samples per class (rows = classes, the first images of the pool)."""
    import matplotlib.pyplot as plt  # deferred: matplotlib, only for the grid

    service = SynthesisService(generator, pool_dir)
    images, labels = service.server_set(np.full(generator.n_classes, per_class))
    c, h, w = generator.image_shape
    grid = images.reshape(generator.n_classes, per_class, c, h, w).transpose(0, 3, 1, 4, 2)
    grid = grid.reshape(generator.n_classes * h, per_class * w, c)
    fig, ax = plt.subplots(figsize=(per_class * 0.6 + 1.6, generator.n_classes * 0.6 + 0.6))
    ax.imshow(grid[..., 0] if c == 1 else grid, cmap="gray" if c == 1 else None, vmin=0, vmax=255)
    ax.set_yticks([(k + 0.5) * h for k in range(generator.n_classes)], generator.class_names, fontsize=8)
    ax.set_xticks([])
    ax.set_title(title or f"{generator.key} [{generator.sampler_tag}]", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


__all__ = ["FeatureClassifier", "Judge", "evaluate_generator", "frechet_distance", "save_grid", "score_images",
           "summary_table", "train_judge"]
