"""Quality and sampling cost of the trained default generators (docs/generator-quality.md).

    python benchmarks/generator_quality.py tests/data/generator-scenario.yaml --stages gan,diffusion,samplers

Stages, each printed as soon as it is done (run them separately while a model still trains):
- gan: real references and the GAN, images from the synthesis pool; its sample grid.
- diffusion: the diffusion model with the scenario's sampler (DDIM, sampling_steps, guidance)
  and with 10 DDIM steps; its sample grid.
- samplers: DDPM over all 300 steps (the paper's sampler) vs DDIM 50 / 10 steps vs the GAN
  on the same labels and seeds, drawn directly (not through the pool, whose 32-image chunks
  would make 300-step sampling cost half an hour here): what the DDIM shortcut costs.
- guidance: the diffusion model at guidance weights 0, 0.5 and 1.
The judge (the real-data classifier) is trained once and cached at --judge.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from simfl.generative.evaluate import (FeatureClassifier, Judge, evaluate_generator, save_grid, score_images,
                                       summary_table, train_judge)
from simfl.generative.train import load_generator, public_data, to_model_space, to_uint8
from simfl.learning.data import load_dataset
from simfl.scenario import load_scenario


def log(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def get_judge(scenario, path: Path) -> Judge:
    data = load_dataset(scenario.task.dataset)
    pub_images, pub_labels, n_classes, _ = public_data(scenario)
    if path.exists():
        model = FeatureClassifier(*data.image_shape[:2], n_classes)
        state = torch.load(path)
        model.load_state_dict(state["model"])
        return Judge(model, state["accuracy"])
    start = time.perf_counter()
    judge = train_judge(pub_images, pub_labels, data.test_images[:5000], data.test_labels[:5000], n_classes,
                        progress=log)
    log(f"judge trained in {time.perf_counter() - start:.0f} s")
    torch.save({"model": judge.model.state_dict(), "accuracy": judge.real_test_accuracy}, path)
    return judge


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario")
    parser.add_argument("--n-per-class", type=int, default=50)
    parser.add_argument("--direct-per-class", type=int, default=5)
    parser.add_argument("--stages", default="gan,diffusion,samplers")
    parser.add_argument("--out", default="/tmp/generator-quality")
    parser.add_argument("--judge", default="/tmp/generator-quality-judge.pt")
    parser.add_argument("--docs", default="docs")
    args = parser.parse_args()
    stages = args.stages.split(",")

    scenario = load_scenario(args.scenario)
    judge = get_judge(scenario, Path(args.judge))
    log(f"judge accuracy on real test images: {judge.real_test_accuracy:.3f}")

    def report(df: pd.DataFrame, stage: str, n: int) -> None:
        df.to_csv(f"{args.out}-{stage}.csv", index=False)
        print(f"\n=== {stage}: {n} images per class ===")
        print(summary_table(df))
        print(df[df["class"] == "all"][["model", "n", "cas", "fd", "fd_res", "s_per_image"]].to_string(index=False))
        sys.stdout.flush()

    def describe(g) -> None:
        log(f"{g.key}: {g.meta['total_steps']} steps, {g.meta['train_samples']} public images, "
            f"resolution {g.resolution}")

    if "gan" in stages:
        gan = load_generator("gan", scenario)
        describe(gan)
        df = evaluate_generator([gan], scenario, n_per_class=args.n_per_class, judge=judge, progress=log)
        report(df, "gan", args.n_per_class)
        log(f"grid: {save_grid(gan, f'{args.docs}/samples-gan.png', title='conditional GAN (16x16, upsampled)')}")
    if "diffusion" in stages:
        diffusion = load_generator("diffusion", scenario)
        describe(diffusion)
        df = evaluate_generator([diffusion, diffusion.with_sampling(steps=10)], scenario,
                                n_per_class=args.n_per_class, references=False, judge=judge, progress=log)
        report(df, "diffusion", args.n_per_class)
        title = f"diffusion, DDIM {diffusion.steps} steps, guidance {diffusion.guidance:g} (16x16, upsampled)"
        log(f"grid: {save_grid(diffusion, f'{args.docs}/samples-diffusion.png', title=title)}")
    if "samplers" in stages:
        diffusion, gan = load_generator("diffusion", scenario), load_generator("gan", scenario)
        data = load_dataset(scenario.task.dataset)
        test_labels = np.asarray(data.test_labels)
        _, real_feats = judge.predict_and_features(np.asarray(data.test_images))
        squeezed = to_uint8(to_model_space(np.asarray(data.test_images), diffusion.resolution), data.image_shape)
        _, real_feats_res = judge.predict_and_features(squeezed)
        k = args.direct_per_class
        labels = np.repeat(np.arange(diffusion.n_classes), k)
        frames = []
        for gen in (gan, diffusion.with_sampling(steps=10), diffusion, diffusion.with_sampling(steps=300)):
            start = time.perf_counter()
            images = gen.sample(labels, seed=12345)
            per_image = (time.perf_counter() - start) / len(labels)
            log(f"{gen.sampler_tag}: {per_image:.3f} s per image")
            frames.append(score_images(judge, f"{gen.kind} {gen.sampler_tag}", images, labels, real_feats,
                                       test_labels, diffusion.class_names, per_image, real_feats_res))
        report(pd.concat(frames, ignore_index=True), "samplers", k)
    if "guidance" in stages:
        diffusion = load_generator("diffusion", scenario)
        df = evaluate_generator([diffusion.with_sampling(guidance=w) for w in (0.0, 0.5, 1.0)], scenario,
                                n_per_class=args.n_per_class, references=False, judge=judge, progress=log)
        report(df, "guidance", args.n_per_class)


if __name__ == "__main__":
    main()
