"""The `simfl` command: argument parsing and printing only; every command is a library
call a notebook can make too."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from simfl import fitcurve, numerics, runfolder
from simfl.cli.arguments import positive_int
from simfl.cli.generator import add_generator_commands
from simfl.cli.trace import add_trace_commands
from simfl.errors import SimflError
from simfl.experiment import jsonable, make_plan, prepare
from simfl.optim.fimi import SOLVERS, plan_json
from simfl.registry import create, load_checked
from simfl.scenario import Scenario
from simfl.sharing import wait_politely

if TYPE_CHECKING:
    from simfl.parallel import Cluster


def _scenario_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a scenario field, e.g. --set task.rounds=5 (repeatable)")
    numerics.add_option(parser)


def _policy_list(text: str | None) -> list[str] | None:
    """`--policies a,b`; None when not given (the scenario's list), an error when given but empty."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise SimflError(f"--policies {text!r}: names no policy; give a comma-separated list, e.g. --policies tfl,fimi")
    return names


def _load(args: argparse.Namespace, path: str | None = None) -> Scenario:
    """The scenario the command names, validated with its policies and their settings."""
    return load_checked(path or args.scenario, overrides=args.overrides, seed=args.seed)


def cmd_validate(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.scenarios:
        try:
            scenario = _load(args, path)
        except SimflError as exc:
            print(f"simfl: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{path}: ok ({len(scenario.cells)} cell(s), {scenario.n_devices} devices, "
              f"{scenario.task.dataset}/{scenario.task.model}, {scenario.task.rounds} rounds, "
              f"policies: {', '.join(scenario.policies) or 'none'})")
    return 2 if failed else 0


def cmd_run(args: argparse.Namespace) -> int:

    from simfl.compare import run_one  # deferred: matplotlib, only for the commands that draw

    scenario = _load(args)
    policy = create(args.policy)
    out = Path(args.out)
    try:
        frame = run_one(scenario, policy, out, resume=args.resume, solver=args.solver)
    except KeyboardInterrupt:
        print(f"simfl: interrupted; finished rounds are in {out} (continue with --resume)", file=sys.stderr)
        return 130
    mine = frame[frame["policy"] == policy.name]
    last = mine.iloc[-1]
    print(f"{policy.name}: {len(mine)} rounds, best accuracy {mine['accuracy'].max():.4f}, "
          f"energy {last['cum_energy_j']:.1f} J, time {last['end_s'] / 3600:.3f} h, "
          f"uplink {last['cum_uplink_bits'] / 8e9:.3f} GB -> {out}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:

    scenario = _load(args)
    policy = create(args.policy)
    setup = prepare(scenario, sys.stderr)
    plan = make_plan(setup, policy, args.solver, sys.stderr)
    document = plan_json(setup.world, plan, None, policy=policy.name, solver=args.solver or scenario.optimisation.solver)
    document["info"] = json.loads(json.dumps(plan.info, default=jsonable))
    if args.json:
        print(json.dumps(document, indent=1))
    else:
        _print_plan_table(document)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from simfl.compare import compare  # deferred: matplotlib, only for the commands that draw

    scenario = _load(args)
    names = _policy_list(args.policies)
    out = Path(args.out)
    try:
        cluster = _cluster(args)
        if cluster is not None:
            _compare_on_ray(args, cluster, scenario, names, out)
        elif args.seeds:
            from simfl.compare_seeds import compare_seeds, parse_seeds  # deferred: matplotlib, only for the commands that draw

            compare_seeds(scenario, parse_seeds(args.seeds), out, names, resume=args.resume, solver=args.solver,
                          progress=sys.stderr)
        else:
            compare(scenario, out, names, resume=args.resume, solver=args.solver, progress=sys.stderr)
    except KeyboardInterrupt:
        print(f"simfl: interrupted; finished rounds are in {out} (continue with --resume)", file=sys.stderr)
        return 130
    if args.seeds:
        print(f"\nwrote {out}/summary.csv (over seeds), seeds.csv, accuracy.png and one comparison per seed in {out}/seed-*")
    else:
        metrics = ", metrics.csv" if (Path(out) / "metrics.csv").exists() else ""
        print(f"\nwrote {out}/summary.csv, rounds.csv, events.csv{metrics} and the figures")
    return 0


def _cluster(args: argparse.Namespace) -> Cluster | None:
    """The Ray cluster that --workers / --ray-address ask for, or None to run here in turn."""
    if args.workers is None and args.ray_address is None:
        return None
    if args.workers is not None and args.ray_address is not None:
        raise SimflError("--workers starts a local Ray and --ray-address joins a running one; give one of them")
    from simfl.parallel import Cluster, require_ray  # deferred: Ray and matplotlib, only with --workers or --ray-address

    require_ray()
    return Cluster(workers=args.workers, address=args.ray_address)


def _compare_on_ray(args: argparse.Namespace, cluster: Cluster, scenario: Scenario, names: list[str] | None,
                    out: Path) -> None:
    from simfl.parallel import compare_parallel  # deferred: Ray and matplotlib, only with --workers or --ray-address

    if args.seeds:
        from simfl.compare_seeds import parse_seeds, seed_dir, seed_scenarios, write_seed_report  # deferred: matplotlib, only for the commands that draw

        runs = [(s, seed_dir(out, s.seed)) for s in seed_scenarios(scenario, parse_seeds(args.seeds))]
    else:
        runs = [(scenario, out)]
    with cluster:
        compare_parallel(runs, names, cluster, resume=args.resume, solver=args.solver)
    if args.seeds:
        policy_names = [create(name).name for name in (names or scenario.policies)]
        write_seed_report(out, scenario, [s.seed for s, _ in runs], policy_names)


def _ray_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=positive_int, default=None, metavar="N",
                        help="run the independent runs as tasks on a local Ray with N workers (one core each; "
                             "needs pip install 'simfl[ray]')")
    parser.add_argument("--ray-address", default=None, metavar="ADDR",
                        help="run them on the Ray cluster at ADDR (e.g. auto, or ray://head:10001); --out, the "
                             "data and the generator cache must be on a file system every node sees")


def cmd_report(args: argparse.Namespace) -> int:
    from simfl.report import report  # deferred: matplotlib, only for the commands that draw

    scenario = _load(args)
    names = _policy_list(args.policies)
    report(scenario, Path(args.out), names)
    print(f"\nrewrote {args.out}/summary.csv and the figures")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from simfl.sweep import sweep, sweep_runs  # deferred: matplotlib, only for the commands that draw

    runs = sweep_runs(args.scenario, args.vary, args.overrides, args.seed)
    out = Path(args.out)
    try:
        cluster = _cluster(args)
        if cluster is not None:
            from simfl.parallel import sweep_parallel  # deferred: Ray and matplotlib, only with --workers or --ray-address

            with cluster:
                sweep_parallel(runs, args.policy, out, cluster, resume=args.resume, solver=args.solver)
        else:
            sweep(runs, args.policy, out, resume=args.resume, solver=args.solver, progress=sys.stderr)
    except KeyboardInterrupt:
        print(f"simfl: interrupted; finished rounds are in {out} (continue with --resume)", file=sys.stderr)
        return 130
    print(f"\nwrote {out}/summary.csv, accuracy.png and one run per value in {out}/")
    return 0


def cmd_fit_curve(args: argparse.Namespace) -> int:

    from simfl.optim.learning_curve import learning_curve_plot  # deferred: matplotlib, only for the commands that draw

    scenario = _load(args)
    sizes = _sizes(args.sizes, scenario.task.public_samples) if args.sizes else fitcurve.default_sizes(scenario.task.public_samples)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frame = fitcurve.measure_learning_curve(scenario, sizes, epochs=args.epochs, min_steps=args.min_steps)
    frame.to_csv(out / "learning-curve.csv", index=False)
    curve = fitcurve.fit(frame)
    frame["fitted"] = curve.predict(frame["samples"].to_numpy())
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"\ndelta = {curve.alpha:.4g} D^-{curve.beta:.4g} - {curve.gamma:.4g}   (R^2 = {curve.r2:.4f})")
    learning_curve_plot(frame["samples"], frame["error"], curve, out / "learning-curve.png",
                        f"{scenario.task.dataset} / {scenario.task.model}")
    lines = ["optimisation:", f"  alpha: {curve.alpha:.6g}", f"  beta: {curve.beta:.6g}", f"  gamma: {curve.gamma:.6g}"]
    if args.zeta_from:
        d_mix = np.full(scenario.n_devices, float(scenario.task.samples_per_device))
        zeta = fitcurve.zeta_from_run(Path(args.zeta_from) / "rounds.csv", args.zeta_policy, curve, d_mix)
        lines.append(f"  zeta: {zeta:.6g}")
        print(f"zeta = {zeta:.4g} from the {args.zeta_policy} run in {args.zeta_from}")
    (out / "learning-curve.yaml").write_text("\n".join(lines) + "\n")
    print(f"wrote {out}/learning-curve.csv, .png and .yaml (paste the constants into your scenario)")
    return 0


def _sizes(text: str, public_samples: int) -> list[int]:
    """`--sizes 50,100,...`: subset sizes of the public split."""
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if len(sizes) < 3 or any(not 1 <= n <= public_samples for n in sizes):
        raise SimflError(f"--sizes {text!r}: give at least three comma-separated subset sizes in [1, {public_samples}] "
                         "(task.public_samples), e.g. --sizes 50,200,1000")
    return sizes


def _print_plan_table(document: dict) -> None:

    devices = pd.DataFrame(document["devices"])
    columns = ["id", "cell", "distance_m", "d_loc", "d_gen", "f_hz", "b_hz", "p_w", "t_cmp_s", "t_com_s", "energy_j"]
    print(devices[[c for c in columns if c in devices]].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"\n{document['policy']} ({document['solver']}): {document['energy_j']:.3f} J per round, "
          f"{int(devices['d_gen'].sum())} synthetic samples in total")


def _solver_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--solver", choices=tuple(SOLVERS), default=None,
                        help="optimiser for policies that use one (default: the scenario's optimisation.solver)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="simfl", description="simfl: federated learning with generative data over wireless edge devices, simulated.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check scenario files")
    p.add_argument("scenarios", nargs="+", metavar="SCENARIO")
    _scenario_options(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("run", help="train one policy on a scenario, writing rounds.csv and events.csv")
    p.add_argument("scenario")
    p.add_argument("--policy", required=True, help="a name, module.path:Class or file.py:Class")
    p.add_argument("--out", required=True, help="output directory")
    _solver_option(p)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    _scenario_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("plan", help="print a policy's plan (synthetic data and resources per device)")
    p.add_argument("scenario")
    p.add_argument("--policy", default="fimi")
    _solver_option(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _scenario_options(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("fit-curve", help="fit the learning curve (1) on the public split (Fig. 3)")
    p.add_argument("scenario")
    p.add_argument("--out", default="runs/fit-curve", help="where to write the table, plot and constants")
    p.add_argument("--sizes", default=None, help="comma-separated subset sizes (default: 8 from 50 to public_samples)")
    p.add_argument("--epochs", type=positive_int, default=5, help="passes over each subset (at least --min-steps SGD steps)")
    p.add_argument("--min-steps", type=positive_int, default=300)
    p.add_argument("--zeta-from", default=None, metavar="RUN_DIR", help="estimate zeta from a run's rounds.csv via (3)/(4)")
    p.add_argument("--zeta-policy", default="tfl", help="which policy's rounds to use with --zeta-from")
    _scenario_options(p)
    p.set_defaults(func=cmd_fit_curve)

    p = sub.add_parser("compare", help="run several policies on the same world and write Table I and figures")
    p.add_argument("scenario")
    p.add_argument("--policies", default=None, help="comma-separated policies (default: the scenario's list)")
    p.add_argument("--out", required=True, help="output directory")
    _solver_option(p)
    p.add_argument("--resume", action="store_true", help="continue an interrupted comparison in --out")
    p.add_argument("--seeds", default=None, metavar="1,2,3",
                   help="repeat the comparison for each seed (or a range 1-5) into --out/seed-<s>; "
                        "summary.csv then holds mean, sd and reach counts over seeds")
    _ray_options(p)
    _scenario_options(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("report", help="Table I and figures again from a finished comparison (e.g. other targets)")
    p.add_argument("scenario", help="the scenario the comparison ran (its targets can be --set anew)")
    p.add_argument("--out", required=True, help="the comparison's output directory")
    p.add_argument("--policies", default=None, help="comma-separated policies and their order (default: all, as run)")
    _scenario_options(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("sweep", help="run one policy over several values of a scenario field (Fig. 5c, 5f-g)")
    p.add_argument("scenario")
    p.add_argument("--policy", default="fimi")
    p.add_argument("--vary", required=True, metavar="FIELD=V1,V2,...",
                   help="the field and its values, e.g. optimisation.err_max=0.15,0.2,0.25")
    p.add_argument("--out", required=True, help="output directory (one run directory per value)")
    _solver_option(p)
    p.add_argument("--resume", action="store_true", help="continue an interrupted sweep in --out")
    _ray_options(p)
    _scenario_options(p)
    p.set_defaults(func=cmd_sweep)

    add_generator_commands(sub)
    add_trace_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The `simfl` command. Every error a user can cause (a bad file, field, policy, run
    folder or path) ends it with one message on stderr and exit status 2; a traceback
    means a bug in simfl."""
    wait_politely()  # before anything loads torch (simfl.sharing says why)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        numerics.configure(args.numerics)  # the `simfl` command chose it before numpy loaded; this checks it
        return int(args.func(args) or 0)
    except SimflError as exc:
        print(f"simfl: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (`simfl plan ... | head -1`): nothing more to say to it, and
        # the interpreter's own flush at exit must not fail again on the closed pipe
        _silence_stdout()
        return 141  # what a shell reports for a command ended by SIGPIPE
    except OSError as exc:
        # a path the user named that cannot be read or written (--out a file, a full disk,
        # no permission): the OS's reason and the path are the whole story
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"simfl: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("simfl: interrupted", file=sys.stderr)
        return 130
    finally:
        runfolder.release_all()


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # no real stdout (e.g. captured in a test): nothing will flush into a closed pipe
