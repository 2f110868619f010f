"""simfl from Python (a notebook, a script): the `simfl` commands as functions, and
their run folders as pandas DataFrames and figures.

    import simfl

    scenario = simfl.load_scenario("scenarios/quickstart.yaml", overrides={"task.rounds": 5})
    result = simfl.compare(scenario, policies=["tfl", "fimi", MyPolicy], out="runs/mine")
    result.summary            # Table I (summary.csv)
    result.show("accuracy")   # accuracy.png, inline in a notebook

Each function is the command of the same name, through the same code: `load_scenario`
reads a file as every command does (`--set` overrides, `--seed`, the policies checked),
`run` is `simfl run`, `compare` is `simfl compare` (with `seeds`, `simfl compare
--seeds`), and they write the same files. `open_run` reads a folder any of them wrote.
What the Python functions add: a policy may be a Policy subclass or instance defined
right here (a notebook's class cannot be named on a command line), and the results come
back as a `Result`. Errors a user can cause raise `simfl.SimflError` (ScenarioError,
PolicyNotFound, RunFolderError, ...) with the message the command would print.
"""

from __future__ import annotations

import difflib
import html
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence, TextIO

import pandas as pd

from simfl import runfolder
from simfl.compare import SUMMARY_FILE, compare as compare_folder, run_one
from simfl.compare_seeds import compare_seeds, folder_seeds, parse_seeds, seed_dir, seed_scenarios
from simfl.errors import DataNotFound, SimflError
from simfl.metrics import summary_table
from simfl.records import EVENTS_FILE, ROUNDS_FILE, read_rounds
from simfl.runfolder import METRICS_FILE
from simfl.registry import PolicyLike, as_policy, load_checked
from simfl.scenario import Scenario
from simfl.sharing import wait_politely

# before anything loads torch, as the `simfl` command does first thing (simfl.sharing says why)
wait_politely()


def load_scenario(path: str | Path, overrides: Sequence[str] | Mapping[str, Any] | None = None,
                  seed: int | None = None) -> Scenario:
    """Read and check a scenario file, as every `simfl` command does.

    Parameters
    ----------
    path
        The scenario's YAML file.
    overrides
        Fields to change before validation: a mapping of dotted field paths to values,
        ``{"task.rounds": 3, "cells[0].bandwidth_hz": 10e6}``, or the command line's
        ``--set`` strings, ``["task.rounds=3"]`` (values parsed as YAML). Both give the
        same scenario.
    seed
        Replaces the scenario's ``seed`` (the command's ``--seed``).

    Returns
    -------
    Scenario
        The validated scenario (frozen dataclasses), its policies and their settings
        checked against the policy classes.

    Raises
    ------
    ScenarioError
        Listing every problem with its field path: an unreadable file, a bad field or
        override, an unknown policy in its ``policies`` list.
    """
    return load_checked(path, overrides=overrides, seed=seed)


def run(scenario: Scenario | str | Path, policy: PolicyLike = "fimi", *, out: str | Path, resume: bool = False,
        solver: str | None = None, progress: bool = True) -> Result:
    """Train one policy on a scenario: ``simfl run SCENARIO --policy POLICY --out OUT``.

    Parameters
    ----------
    scenario
        A Scenario (`load_scenario`) or the path of a scenario file.
    policy
        A name (``"fimi"``, ``"tfl@fedbuff"``, ``"module.path:Class"``,
        ``"path/to/file.py:Class"``), a `simfl.Policy` subclass, or an instance of one
        (copied for the run). Its ``name`` keys its rows.
    out
        The run folder: rounds.csv and events.csv grow as rounds finish, then the
        participation and timeline figures are drawn.
    resume
        Continue an interrupted run in `out` (``--resume``).
    solver
        The optimiser of policies that use one, ``"ce"`` or ``"exact"`` (default: the
        scenario's ``optimisation.solver``).
    progress
        Print a line per round on stderr, as the command does.

    Returns
    -------
    Result
        The folder's tables and figures; its `summary` is Table I at the scenario's
        targets, computed from rounds.csv (``simfl run`` writes no summary.csv).
    """
    scenario = _scenario(scenario)
    instance = as_policy(policy)
    folder = Path(out)
    with _command(folder):
        run_one(scenario, instance, folder, resume=resume, solver=solver, progress=_stream(progress))
    return Result(folder, scenario, policies=(instance.name,))


def compare(scenario: Scenario | str | Path, policies: Sequence[PolicyLike] | None = None, *, out: str | Path,
            seeds: Sequence[int] | str | None = None, resume: bool = False, solver: str | None = None,
            progress: bool = True) -> Result:
    """Run several policies on the same world, data partition and seed, and write Table I
    and the figures: ``simfl compare SCENARIO --policies A,B --out OUT [--seeds S]``.

    Parameters
    ----------
    scenario
        A Scenario (`load_scenario`) or the path of a scenario file.
    policies
        Names, `simfl.Policy` subclasses or instances (each instance copied for each
        run), in the order of Table I: ratios are to the first. Default: the scenario's
        ``policies``. Each one's ``name`` keys its rows, so two must not share one.
    out
        The comparison's folder: summary.csv (Table I), rounds.csv, events.csv, plans/,
        the PNG figures; with `seeds`, one such folder per seed (``seed-<s>``) and the
        summary over seeds.
    seeds
        Repeat the comparison for each seed, e.g. ``[1, 2, 3]`` or ``"1-5"`` (the
        command's ``--seeds``); `summary` then holds the mean, standard deviation and
        how many seeds reached each target.
    resume
        Skip finished policies and continue an interrupted one (``--resume``).
    solver
        The optimiser of policies that use one, ``"ce"`` or ``"exact"``.
    progress
        Print progress on stderr and Table I on stdout, as the command does.

    Returns
    -------
    Result
        The folder's Table I, tables and figures.
    """
    scenario = _scenario(scenario)
    folder = Path(out)
    chosen = None if policies is None else list(policies)
    stream = _stream(progress)
    with _command(folder):
        if seeds is None:
            table = compare_folder(scenario, folder, chosen, resume=resume, solver=solver, progress=stream)
            seed_list: tuple[int, ...] = ()
        else:
            seed_list = tuple(parse_seeds(seeds) if isinstance(seeds, str) else seeds)
            table = compare_seeds(scenario, seed_list, folder, chosen, resume=resume, solver=solver, progress=stream)
    return Result(folder, scenario, policies=tuple(table["policy"]), seeds=seed_list)


def open_run(folder: str | Path, scenario: Scenario | str | Path | None = None) -> Result:
    """The results in a folder that `run`, `compare` or the ``simfl`` command wrote.

    Parameters
    ----------
    folder
        A run or comparison folder, or a ``compare --seeds`` folder (with seed-<s>
        directories).
    scenario
        Only needed for Table I of a folder without summary.csv (a ``simfl run``
        folder): its target accuracies. A path is loaded with `load_scenario`.

    Returns
    -------
    Result
        Reads the folder's files when its attributes are used; nothing is written.

    Raises
    ------
    DataNotFound
        When the folder holds neither rounds.csv nor seed-<s> directories.
    """
    path = Path(folder)
    seeds = tuple(folder_seeds(path)) if path.is_dir() else ()
    if not seeds and not (path / ROUNDS_FILE).is_file():
        raise DataNotFound(f"{path}: not a simfl run folder (no rounds.csv and no seed-<s> directories); "
                           "give the --out of a `simfl run` or `simfl compare`")
    return Result(path, None if scenario is None else _scenario(scenario), seeds=seeds)


@dataclass(frozen=True)
class Result:
    """A run folder's results, read from its files whenever an attribute is used (so a
    folder that is still growing shows its rows so far).

    Attributes
    ----------
    folder
        The run folder.
    scenario
        The scenario that ran, when known (`run`, `compare`, or given to `open_run`).
    policies
        The policies this result is about, in Table I's order; None: those the folder's
        summary.csv lists, else every policy in rounds.csv in the order they ran.
    seeds
        The seeds of a ``compare --seeds`` folder; () for one comparison or run.
    """

    folder: Path
    scenario: Scenario | None = None
    policies: tuple[str, ...] | None = None
    seeds: tuple[int, ...] = ()

    @property
    def summary(self) -> pd.DataFrame:
        """Table I, one row per policy: energy (J), latency (h) and uplink (GB) spent until
        each target accuracy was first reached (NaN: never), their ratios to the first
        policy, and the best accuracy; over seeds, the mean, standard deviation and
        ``reached@x`` counts. summary.csv as ``simfl compare`` wrote it; for a folder
        without one for these policies (``simfl run``), the same table computed from
        rounds.csv at the scenario's targets."""
        path = self.folder / SUMMARY_FILE
        if path.is_file():
            table = pd.read_csv(path, na_values=["N/A"])
            if self.policies is None or tuple(table["policy"]) == self.policies:
                return table
        if self.seeds:
            raise DataNotFound(f"{path}: missing; finish the comparison over seeds (compare(..., resume=True))")
        if self.scenario is None:
            raise DataNotFound(f"{self.folder}: no summary.csv (a `simfl run` folder): Table I needs the target "
                               "accuracies, give the scenario: open_run(folder, scenario=...)")
        return summary_table(read_rounds(self.folder), self.scenario.task.target_accuracies, self.policies)

    @property
    def rounds(self) -> pd.DataFrame:
        """rounds.csv: one row per policy and round (times, energy, uplink, accuracy,
        participation); over seeds, every seed's rows with a ``seed`` column."""
        if self.seeds:
            return pd.concat([read_rounds(seed_dir(self.folder, s)).assign(seed=s) for s in self.seeds],
                             ignore_index=True)
        return read_rounds(self.folder)

    @property
    def events(self) -> pd.DataFrame:
        """events.csv: one row per selected device and round (when it received, computed
        and uploaded, the energy of each, bits, outcome, b_hz, p_w, rate, ...); over
        seeds, every seed's rows with a ``seed`` column."""
        if self.seeds:
            return pd.concat([runfolder.read_table(seed_dir(self.folder, s), EVENTS_FILE).assign(seed=s)
                              for s in self.seeds], ignore_index=True)
        return runfolder.read_table(self.folder, EVENTS_FILE)

    @property
    def metrics(self) -> pd.DataFrame:
        """metrics.csv: what policies report per round besides simfl's columns (a Flower
        strategy's aggregated train and evaluate MetricRecords), one row per (policy,
        round, metric, value); empty when no policy reported any; over seeds, with a
        ``seed`` column."""
        if self.seeds:
            return pd.concat([runfolder.read_table(seed_dir(self.folder, s), METRICS_FILE).assign(seed=s)
                              for s in self.seeds], ignore_index=True)
        return runfolder.read_table(self.folder, METRICS_FILE)

    @property
    def figures(self) -> dict[str, Path]:
        """The folder's PNG figures by name (``accuracy``, ``participation``,
        ``timeline-fimi``, ...); over seeds also each seed's, as ``seed-1/accuracy``."""
        found = {p.stem: p for p in sorted(self.folder.glob("*.png"))}
        for s in self.seeds:
            found.update({f"seed-{s}/{p.stem}": p for p in sorted(seed_dir(self.folder, s).glob("*.png"))})
        return found

    def show(self, figure: str = "accuracy") -> Any:
        """A figure to display: an ``IPython.display.Image`` where IPython is installed
        (a notebook shows it inline as a cell's value), else its Path.

        Parameters
        ----------
        figure
            A key of `figures` (``"accuracy"``, ``"seed-2/accuracy"``); ``.png`` may be
            added.
        """
        figures = self.figures
        path = figures.get(figure.removesuffix(".png"))
        if path is None:
            close = difflib.get_close_matches(figure, figures, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise DataNotFound(f"{self.folder}: no figure {figure!r}{hint} it has: {', '.join(figures) or 'none'}")
        try:
            from IPython.display import Image  # deferred: IPython is optional, present where figures show inline
        except ImportError:
            return path
        return Image(filename=str(path))

    def seed(self, seed: int) -> Result:
        """The comparison of one seed of a ``compare --seeds`` folder."""
        if seed not in self.seeds:
            raise DataNotFound(f"{self.folder}: no comparison of seed {seed}; it has seeds "
                               f"{', '.join(map(str, self.seeds)) or 'none'}")
        scenario = None if self.scenario is None else seed_scenarios(self.scenario, [seed])[0]
        return Result(seed_dir(self.folder, seed), scenario, self.policies)

    def __repr__(self) -> str:
        over = f", seeds {', '.join(map(str, self.seeds))}" if self.seeds else ""
        return f"<simfl.Result {self.folder}{over}: {len(self.figures)} figures>"

    def _repr_html_(self) -> str:
        """A notebook shows a result as its Table I and the names of its figures."""
        try:
            table = self.summary.to_html(index=False, na_rep="N/A", float_format=lambda v: f"{v:.4g}")
        except SimflError as exc:
            table = f"<p>{html.escape(str(exc))}</p>"
        names = html.escape(", ".join(self.figures) or "none")
        return (f"<p><b>{html.escape(str(self.folder))}</b>: Table I</p>{table}"
                f"<p>figures (<code>.show(name)</code>): {names}</p>")


def _scenario(scenario: Scenario | str | Path) -> Scenario:
    return scenario if isinstance(scenario, Scenario) else load_checked(scenario)


def _stream(progress: bool) -> TextIO | None:
    # looked up at each call: a notebook kernel replaces sys.stderr with its own stream
    return sys.stderr if progress else None


@contextmanager
def _command(folder: Path) -> Iterator[None]:
    """What the `simfl` command does around a run: on an interrupt, say where the finished
    rounds are and how to continue; at the end, release the run folders' locks (the
    command does on exit; a notebook's process lives on, and the folder must not stay
    locked against a later run or the command)."""
    try:
        yield
    except KeyboardInterrupt:
        print(f"simfl: interrupted; finished rounds are in {folder} (continue with resume=True)", file=sys.stderr)
        raise
    finally:
        runfolder.release_all()


__all__ = ["Result", "compare", "load_scenario", "open_run", "run"]
