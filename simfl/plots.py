"""The paper's figures as PNG files, drawn from the CSV/JSON files a comparison wrote
(so a plot can be redrawn without re-running)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def accuracy_curves(rounds: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Fig. 4: test accuracy against cumulative device energy and against simulated time."""
    fig, (ax_e, ax_t) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, mine in rounds.groupby("policy", sort=False):
        mine = mine.sort_values("round")
        ax_e.plot(mine["cum_energy_j"], 100 * mine["accuracy"], label=name)
        ax_t.plot(mine["end_s"] / 3600.0, 100 * mine["accuracy"], label=name)
    _label_accuracy_axes(ax_e, ax_t, "cumulative device energy (J)", "simulated time (h)", "test accuracy (%)")
    return _save(fig, path, title)


def accuracy_curves_over_seeds(rounds: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Fig. 4 over seeds: per policy and round, the mean test accuracy (band: +- one
    standard deviation) against the mean cumulative energy and the mean simulated time."""
    fig, (ax_e, ax_t) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, mine in rounds.groupby("policy", sort=False):
        per_round = mine.groupby("round").agg(acc=("accuracy", "mean"), sd=("accuracy", "std"),
                                              energy=("cum_energy_j", "mean"), end=("end_s", "mean"))
        acc, sd = 100 * per_round["acc"], 100 * per_round["sd"].fillna(0.0)
        for ax, x in ((ax_e, per_round["energy"]), (ax_t, per_round["end"] / 3600.0)):
            (line,) = ax.plot(x, acc, label=name)
            ax.fill_between(x, acc - sd, acc + sd, color=line.get_color(), alpha=0.15, linewidth=0)
    _label_accuracy_axes(ax_e, ax_t, "mean cumulative device energy (J)", "mean simulated time (h)",
                         "test accuracy (%), mean over seeds")
    return _save(fig, path, title)


def _label_accuracy_axes(ax_e: Axes, ax_t: Axes, energy_label: str, time_label: str, accuracy_label: str) -> None:
    """The shared dressing of Fig. 4's two panels: axis labels, grid, legend on the time panel."""
    ax_e.set_xlabel(energy_label)
    ax_t.set_xlabel(time_label)
    for ax in (ax_e, ax_t):
        ax.set_ylabel(accuracy_label)
        ax.grid(alpha=0.3)
    ax_t.legend(loc="lower right")


def similarity_boxes(similarity: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Fig. 5(h): per policy, the box of its devices' gradient similarity (52) to a
    virtual IID device."""
    names = list(dict.fromkeys(similarity["policy"]))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(names) + 1.5), 4))
    ax.boxplot([similarity.loc[similarity["policy"] == n, "similarity"].to_numpy() for n in names])
    ax.set_xticks(range(1, len(names) + 1), names)
    ax.set_ylabel("gradient similarity to IID, eq. (52)")
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path, title)


def synthetic_allocation(plan: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Fig. 5(b): each device's synthetic amount against its energy coefficient and its
    distance to the base station."""
    fig, (ax_eps, ax_d) = plt.subplots(1, 2, figsize=(10, 4))
    ax_eps.scatter(plan["eps"], plan["d_gen"], c=plan["distance_m"], cmap="viridis")
    ax_eps.set_xlabel("energy coefficient eps")
    ax_d.scatter(plan["distance_m"], plan["d_gen"], c=plan["eps"], cmap="magma")
    ax_d.set_xlabel("distance to base station (m)")
    for ax in (ax_eps, ax_d):
        ax.set_ylabel("synthetic samples D_gen")
        ax.grid(alpha=0.3)
    return _save(fig, path, title)


def ce_convergence(info_path: Path, path: Path, title: str = "") -> Path | None:
    """Fig. 5(a): round energy of the CE search per iteration (best sample, elite mean and
    sample mean), from a plan's info JSON. None when it has no history."""
    info = json.loads(Path(info_path).read_text())
    history = info.get("ce_history")
    if not history:
        return None
    frame = pd.DataFrame(history)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for column in [c for c in frame.columns if c != "iteration" and c.endswith("_j")]:
        ax.plot(frame.get("iteration", frame.index), frame[column], label=column.removesuffix("_energy_j").replace("_", " "))
    ax.set_xlabel("CE iteration")
    ax.set_ylabel("round energy (J)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path, title)


def _save(fig: plt.Figure, path: Path, title: str) -> Path:
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
