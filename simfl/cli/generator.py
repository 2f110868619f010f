"""`simfl generator train | evaluate | sample`: argument parsing and printing only."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from simfl import numerics
from simfl.errors import SimflError
from simfl.generative import KINDS
from simfl.registry import load_checked
from simfl.scenario import Scenario


def _common(parser: argparse.ArgumentParser, kinds: Sequence[str]) -> None:
    parser.add_argument("scenario", help="scenario YAML file (its task and generator sections are used)")
    parser.add_argument("--kind", choices=kinds, default=None,
                        help="generator kind (default: the scenario's generator.kind)")
    parser.add_argument("--cache-dir", default=None,
                        help="checkpoint cache (default: generator.cache_dir, $SIMFL_CACHE or ~/.cache/simfl)")
    parser.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a scenario field, e.g. --set generator.config=tiny (repeatable)")
    numerics.add_option(parser)


def _class_indices(text: str) -> list[int]:
    """`--classes 0,3,7`: whole numbers separated by commas."""
    try:
        return [int(c) for c in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated class indices such as 0,3,7, got {text!r}") from None


def _sampling(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=None,
                        help="diffusion denoising steps (>= 300: DDPM; fewer: DDIM); default generator.sampling_steps")
    parser.add_argument("--guidance", type=float, default=None,
                        help="classifier-free guidance weight w; default generator.guidance")
    parser.add_argument("--pool-dir", default=None, help="synthetic image pool (default: <cache>/pools)")


def _scenario(args: argparse.Namespace) -> Scenario:
    # checked as every command checks it, though only its task and generator are used here
    return load_checked(args.scenario, overrides=args.overrides, seed=args.seed)


def _kinds(args: argparse.Namespace, scenario: Scenario) -> list[str]:
    if args.kind == "both":
        return list(KINDS)
    return [args.kind or scenario.generator.kind]


def _pool_dir(args: argparse.Namespace) -> str | None:
    if args.pool_dir is not None:
        return args.pool_dir
    return str(Path(args.cache_dir) / "pools") if args.cache_dir else None


def _generators(args: argparse.Namespace, scenario: Scenario) -> list:
    from simfl.generative.train import load_generator  # deferred: torch, only for the generator commands

    gens = [load_generator(kind, scenario, args.cache_dir) for kind in _kinds(args, scenario)]
    return [g.with_sampling(guidance=args.guidance, steps=args.steps) for g in gens]


def cmd_train(args: argparse.Namespace) -> int:
    from simfl.generative.train import train_generator  # deferred: torch, only for the generator commands

    scenario = _scenario(args)
    for kind in _kinds(args, scenario):
        path = train_generator(kind, scenario, cache_dir=args.cache_dir)
        print(f"{kind}: {path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from simfl.generative.evaluate import evaluate_generator, save_grid, summary_table  # deferred: torch, only for the generator commands

    scenario = _scenario(args)
    gens = _generators(args, scenario)
    df = evaluate_generator(gens, scenario, n_per_class=args.n_per_class, pool_dir=_pool_dir(args),
                            real_per_class=args.real_per_class,
                            progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(summary_table(df))
    if args.csv:
        df.to_csv(args.csv, index=False)
        print(f"scores: {args.csv}")
    if args.grid:
        for gen in gens:
            grid = Path(args.grid)
            if len(gens) > 1:
                grid = grid.with_name(f"{grid.stem}-{gen.kind}{grid.suffix}")
            print(f"grid: {save_grid(gen, grid, pool_dir=_pool_dir(args))}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from simfl.generative.evaluate import save_grid  # deferred: torch, only for the generator commands
    from simfl.generative.pool import SynthesisService  # deferred: torch, only for the generator commands

    scenario = _scenario(args)
    out = Path(args.out)
    for gen in _generators(args, scenario):
        target = out if args.kind != "both" else out.with_name(f"{out.stem}-{gen.kind}{out.suffix}")
        if target.suffix == ".png":
            save_grid(gen, target, per_class=args.per_class, pool_dir=_pool_dir(args))
        elif target.suffix == ".npz":
            if args.classes:
                classes = args.classes
            else:
                classes = list(range(gen.n_classes))
            counts = np.zeros(gen.n_classes, dtype=np.int64)
            for c in classes:
                if not 0 <= c < gen.n_classes:
                    raise SimflError(f"--classes: unknown class {c}; the generator has classes 0..{gen.n_classes - 1}")
                counts[c] = args.per_class
            images, labels = SynthesisService(gen, _pool_dir(args)).server_set(counts)
            target.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(target, images=images, labels=labels)
        else:
            raise SimflError(f"--out {target}: give a .png (a grid, rows = classes) or a .npz (images, labels)")
        print(f"{gen.kind} [{gen.sampler_tag}]: {target}")
    return 0


def add_generator_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `generator train | evaluate | sample` on the `simfl` command's subparsers."""
    group = subparsers.add_parser("generator", help="train, evaluate and sample the server's generative models")
    sub = group.add_subparsers(dest="generator_command", metavar="{train,evaluate,sample}", required=True)

    p = sub.add_parser("train", help="train a generator on the scenario's public split (resumes if interrupted)")
    _common(p, (*KINDS, "both"))
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="classification accuracy score and Frechet distance per class")
    _common(p, (*KINDS, "both"))
    _sampling(p)
    p.add_argument("--n-per-class", type=int, default=200, help="synthetic images scored per class (default 200)")
    p.add_argument("--real-per-class", type=int, default=500,
                   help="real test images per class for the real feature statistics (default 500)")
    p.add_argument("--grid", default=None, help="also write a sample grid PNG (rows = classes)")
    p.add_argument("--csv", default=None, help="also write the scores as CSV")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("sample", help="write samples from the pool: a .png grid or a .npz of images and labels")
    _common(p, (*KINDS, "both"))
    _sampling(p)
    p.add_argument("--per-class", type=int, default=10, help="images per class (default 10)")
    p.add_argument("--classes", type=_class_indices, default=None,
                   help="comma-separated class indices (default: all; .npz only)")
    p.add_argument("--out", required=True, help="output file, .png or .npz")
    p.set_defaults(func=cmd_sample)


__all__ = ["add_generator_commands", "cmd_evaluate", "cmd_sample", "cmd_train"]
