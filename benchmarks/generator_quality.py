"""Quality and sampling cost of the trained default generators (docs/generator-quality.md).

    python benchmarks/generator_quality.py tests/data/generator-scenario.yaml \
        --n-per-class 50 --ddpm-per-class 10 --out /tmp/generator-quality.csv

Stages, each printed as soon as it is done (the later ones are the costly ones):
1. GAN vs diffusion (DDIM, the scenario's sampling_steps and guidance), with real references;
   sample grids under docs/.
2. Fewer DDIM steps (10) and no guidance (w = 0), same images per class.
3. DDPM over all 300 steps (the paper's sampler) vs DDIM on the same (smaller) number of
   images per class: what the shortcut costs in quality.
All images go through the synthesis pool, so simulations later reuse them.
"""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd

from simfl.generative.evaluate import evaluate_generator, save_grid, summary_table, train_judge
from simfl.generative.train import load_generator, public_data
from simfl.learning.data import load_dataset
from simfl.scenario import load_scenario


def log(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario")
    parser.add_argument("--n-per-class", type=int, default=50)
    parser.add_argument("--ddpm-per-class", type=int, default=10)
    parser.add_argument("--stages", default="1,2,3")
    parser.add_argument("--out", default="/tmp/generator-quality.csv")
    parser.add_argument("--docs", default="docs")
    args = parser.parse_args()
    stages = {int(s) for s in args.stages.split(",")}

    scenario = load_scenario(args.scenario)
    diffusion = load_generator("diffusion", scenario)
    gan = load_generator("gan", scenario)
    for g in (diffusion, gan):
        meta = g.meta
        log(f"{g.key}: {meta['total_steps']} steps, batch {meta['training']['batch_size']}, "
            f"resolution {g.resolution}")

    data = load_dataset(scenario.task.dataset)
    pub_images, pub_labels, n_classes, _ = public_data(scenario)
    start = time.perf_counter()
    judge = train_judge(pub_images, pub_labels, data.test_images[:5000], data.test_labels[:5000], n_classes,
                        progress=log)
    log(f"judge trained in {time.perf_counter() - start:.0f} s")

    frames = []

    def run(gens, n, references, stage):
        df = evaluate_generator(gens, scenario, n_per_class=n, references=references, judge=judge, progress=log)
        df["stage"] = stage
        frames.append(df)
        pd.concat(frames).to_csv(args.out, index=False)
        print(f"\n=== stage {stage}: {n} images per class ===")
        print(summary_table(df))
        print(df[df["class"] == "all"][["model", "n", "cas", "fd", "s_per_image"]].to_string(index=False))
        sys.stdout.flush()

    if 1 in stages:
        run([gan, diffusion], args.n_per_class, True, 1)
        log(f"grid: {save_grid(diffusion, f'{args.docs}/samples-diffusion.png', title='diffusion (DDPM + CFG), ' + diffusion.sampler_tag)}")
        log(f"grid: {save_grid(gan, f'{args.docs}/samples-gan.png', title='conditional GAN')}")
    if 2 in stages:
        run([diffusion.with_sampling(steps=10), diffusion.with_sampling(guidance=0.0)], args.n_per_class, False, 2)
    if 3 in stages:
        run([diffusion.with_sampling(steps=300), diffusion, gan], args.ddpm_per_class, False, 3)


if __name__ == "__main__":
    main()
