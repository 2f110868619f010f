"""The paper's figures as PNG files, drawn from the CSV/JSON files a comparison wrote
(so a plot can be redrawn without re-running)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

# No matplotlib.use() here: importing simfl must not change a notebook's backend;
# without a display matplotlib picks a non-interactive one itself, and every figure is
# saved and closed.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def accuracy_curves(rounds: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Fig. 4: test accuracy against cumulative device energy and against simulated time."""
    fig, (ax_e, ax_t) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, mine in rounds.groupby("policy", sort=False):
        # asynchronous runs evaluate every `eval_every` aggregations: NaN rows are not gaps
        mine = mine.dropna(subset=["accuracy"]).sort_values("round")
        ax_e.plot(mine["cum_energy_j"], 100 * mine["accuracy"], label=name)
        ax_t.plot(mine["end_s"] / 3600.0, 100 * mine["accuracy"], label=name)
    _label_accuracy_axes(ax_e, ax_t, "cumulative device energy (J)", "simulated time (h)", "test accuracy (%)")
    return _save(fig, path, title)


def accuracy_curves_over_seeds(rounds: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Fig. 4 over seeds: per policy and round, the mean test accuracy (band: +- one
    standard deviation) against the mean cumulative energy and the mean simulated time.
    Runs evaluated only now and then (asynchronous modes) have no common rounds: their
    seeds' curves are interpolated onto a common grid of energy and of time instead."""
    fig, (ax_e, ax_t) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, mine in rounds.groupby("policy", sort=False):
        if mine["accuracy"].isna().any():
            for ax, column, scale in ((ax_e, "cum_energy_j", 1.0), (ax_t, "end_s", 1 / 3600.0)):
                x, acc, sd = _mean_over_seeds_on_a_grid(mine.dropna(subset=["accuracy"]), column)
                _band(ax, scale * x, acc, sd, str(name))
            continue
        per_round = mine.groupby("round").agg(acc=("accuracy", "mean"), sd=("accuracy", "std"),
                                              energy=("cum_energy_j", "mean"), end=("end_s", "mean"))
        acc, sd = 100 * per_round["acc"], 100 * per_round["sd"].fillna(0.0)
        for ax, x in ((ax_e, per_round["energy"]), (ax_t, per_round["end"] / 3600.0)):
            _band(ax, x, acc, sd, str(name))
    _label_accuracy_axes(ax_e, ax_t, "mean cumulative device energy (J)", "mean simulated time (h)",
                         "test accuracy (%), mean over seeds")
    return _save(fig, path, title)


def _mean_over_seeds_on_a_grid(rows: pd.DataFrame, column: str, points: int = 200
                               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each seed's accuracy (%) interpolated linearly at `points` values of `column` up to
    where the shortest seed ends; their mean and standard deviation."""
    seeds = [g.sort_values(column) for _, g in rows.groupby("seed")]
    end = min(float(g[column].max()) for g in seeds)
    start = max(float(g[column].min()) for g in seeds)
    x = np.linspace(start, end, points)
    curves = np.array([np.interp(x, g[column].to_numpy(), 100 * g["accuracy"].to_numpy()) for g in seeds])
    return x, curves.mean(axis=0), curves.std(axis=0, ddof=1) if len(seeds) > 1 else np.zeros(points)


def _band(ax: Axes, x: Any, mean: Any, sd: Any, label: str) -> None:
    (line,) = ax.plot(x, mean, label=label)
    ax.fill_between(x, mean - sd, mean + sd, color=line.get_color(), alpha=0.15, linewidth=0)


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


# A job's phases in the order they happen, with their colours and legend text in the timeline.
PHASES = {"download": ("tab:green", "receiving the model"), "compute": ("tab:blue", "computing"),
          "upload": ("tab:orange", "sending the update")}
# How a job that did not deliver ended (events.csv `outcome`): marker, colour, legend text.
JOB_ENDS = {
    "straggler": ("x", "tab:red", "cut at the deadline (straggler)"),
    "offline": ("v", "0.2", "went offline (dropout)"),
    "battery": ("s", "tab:purple", "battery emptied"),
}
OFFLINE_COLOUR = "0.75"
HANDOVER = ("D", "tab:cyan", "handover (first of the job's)")
INTERRUPTION_COLOUR = "white"  # drawn over the upload: nothing sent
TIMELINE_MAX_DEVICES = 60


def plotted_rounds(rounds: pd.DataFrame, max_rounds: int) -> pd.DataFrame:
    """The rows of rounds.csv (one policy) of the first `max_rounds` rounds, by round index."""
    first = np.sort(rounds["round"].unique())[:max_rounds]
    return rounds[rounds["round"].isin(first)].sort_values("round")


def timeline_bars(events: pd.DataFrame, rounds: pd.DataFrame, max_rounds: int) -> pd.DataFrame:
    """The timeline's bars: per selected device of the first `max_rounds` rounds, one row
    per phase it spent time in, receiving the model (download_start_s..compute_start_s),
    computing (compute_start_s..compute_end_s) and sending (upload_start_s..upload_end_s).
    Columns device, round, phase, start_s, duration_s; zero-length phases are left out
    (a job stopped early has its later phases at the stop time, with no length)."""
    jobs = events[events["round"].isin(plotted_rounds(rounds, max_rounds)["round"])]
    spans = {"download": ("download_start_s", "compute_start_s"), "compute": ("compute_start_s", "compute_end_s"),
             "upload": ("upload_start_s", "upload_end_s")}
    bars = pd.concat([pd.DataFrame({"device": jobs["device"].astype(int), "round": jobs["round"].astype(int),
                                    "phase": phase, "start_s": jobs[a], "duration_s": jobs[b] - jobs[a]})
                      for phase, (a, b) in spans.items()], ignore_index=True)
    bars = bars[bars["duration_s"] > 0]
    order = bars["phase"].map({p: k for k, p in enumerate(PHASES)})
    return bars.assign(_order=order).sort_values(["device", "round", "_order"]).drop(columns="_order").reset_index(drop=True)


def job_ends(events: pd.DataFrame, rounds: pd.DataFrame, max_rounds: int) -> pd.DataFrame:
    """Where each job of the first `max_rounds` rounds stopped: columns device, round,
    time_s (its upload_end_s, the moment it delivered or was stopped) and outcome."""
    jobs = events[events["round"].isin(plotted_rounds(rounds, max_rounds)["round"])]
    return pd.DataFrame({"device": jobs["device"].astype(int), "round": jobs["round"].astype(int),
                         "time_s": jobs["upload_end_s"], "outcome": jobs["outcome"]}).reset_index(drop=True)


def handovers(events: pd.DataFrame, rounds: pd.DataFrame, max_rounds: int) -> pd.DataFrame:
    """The jobs of the first `max_rounds` rounds that handed over: columns device, round,
    time_s (the first handover) and paused_s (how long the upload sent nothing, drawn from
    that instant on). Empty for run folders written before events.csv had them."""
    if "handover_s" not in events or "handovers" not in events:
        return pd.DataFrame({"device": pd.Series(dtype=int), "round": pd.Series(dtype=int),
                             "time_s": pd.Series(dtype=float), "paused_s": pd.Series(dtype=float)})
    jobs = events[events["round"].isin(plotted_rounds(rounds, max_rounds)["round"]) & (events["handovers"] > 0)]
    return pd.DataFrame({"device": jobs["device"].astype(int), "round": jobs["round"].astype(int),
                         "time_s": jobs["handover_s"].astype(float),
                         "paused_s": jobs["paused_s"].astype(float)}).reset_index(drop=True)


def offline_bars(availability: pd.DataFrame, t0_s: float, t1_s: float,
                 devices: Iterable[int] | None = None) -> pd.DataFrame:
    """The offline periods within [t0_s, t1_s]: the complement of each device's online
    intervals (`availability`: columns device, start_s, end_s, as in an availability
    trace; end_s may be inf). A device in `devices` that has no interval is offline
    throughout, as a trace treats a device it does not name. Columns device, start_s,
    duration_s."""
    online = availability.sort_values(["device", "start_s"])
    by_device = online.groupby("device")["end_s"]
    # The gap before each interval starts where the intervals before it end.
    before = pd.DataFrame({"device": online["device"],
                           "start_s": by_device.cummax().groupby(online["device"]).shift().fillna(-math.inf),
                           "end_s": online["start_s"]})
    after = pd.DataFrame({"device": by_device.max().index, "start_s": by_device.max().to_numpy(), "end_s": math.inf})
    never = sorted(set(devices if devices is not None else ()) - set(online["device"]))
    absent = pd.DataFrame({"device": never, "start_s": -math.inf, "end_s": math.inf})
    parts = [g for g in (before, after, absent) if not g.empty]
    if not parts:
        return pd.DataFrame({"device": pd.Series(dtype=int), "start_s": pd.Series(dtype=float),
                             "duration_s": pd.Series(dtype=float)})
    gaps = pd.concat(parts, ignore_index=True)
    if devices is not None:
        gaps = gaps[gaps["device"].isin(list(devices))]
    start, end = gaps["start_s"].clip(lower=t0_s), gaps["end_s"].clip(upper=t1_s)
    bars = pd.DataFrame({"device": gaps["device"].astype(int), "start_s": start, "duration_s": end - start})
    return bars[bars["duration_s"] > 0].sort_values(["device", "start_s"]).reset_index(drop=True)


def timeline(events: pd.DataFrame, rounds: pd.DataFrame, path: Path, title: str = "", max_rounds: int = 5,
             availability: pd.DataFrame | None = None) -> Path:
    """What each device did in the first `max_rounds` rounds of one policy: a row per
    device with its download, compute and upload bars, a marker where a job was cut
    (deadline, offline, battery), a diamond at a job's first handover with its upload's
    interruption hatched from there, the round boundaries, and in grey the periods it was
    offline when an `availability` frame (online intervals: device, start_s, end_s) is
    given. At most the first 60 devices are drawn; the title then says so."""
    fig, title = timeline_figure(events, rounds, title, max_rounds, availability)
    return _save(fig, path, title)


def timeline_figure(events: pd.DataFrame, rounds: pd.DataFrame, title: str = "", max_rounds: int = 5,
                    availability: pd.DataFrame | None = None) -> tuple[plt.Figure, str]:
    """The figure `timeline` saves, and its title."""
    shown = plotted_rounds(rounds, max_rounds)
    t0, t1 = float(shown["start_s"].min()), float(shown["end_s"].max())
    known = [events["device"].max(), -1 if availability is None or availability.empty else availability["device"].max()]
    n_devices = int(np.nanmax(np.asarray(known, dtype=float))) + 1
    rows = min(n_devices, TIMELINE_MAX_DEVICES)
    if rows < n_devices:
        title = f"{title} (first {rows} of {n_devices} devices)".strip()
    fig, ax = plt.subplots(figsize=(11, max(3.2, 0.2 * rows + 1.8)))
    if availability is not None:
        gaps = offline_bars(availability, t0, t1, range(rows))
        for device, mine in gaps.groupby("device"):
            ax.broken_barh(list(zip(mine["start_s"], mine["duration_s"])), (device - 0.5, 1.0),
                           facecolors=OFFLINE_COLOUR, edgecolor="none", zorder=0)
    bars = timeline_bars(events, rounds, max_rounds)
    for (device, phase), mine in bars[bars["device"] < rows].groupby(["device", "phase"]):
        ax.broken_barh(list(zip(mine["start_s"], mine["duration_s"])), (device - 0.32, 0.64),
                       facecolors=PHASES[phase][0], edgecolor="none", zorder=2)
    moved = handovers(events, rounds, max_rounds)
    moved = moved[moved["device"] < rows]
    paused = moved[moved["paused_s"] > 0]
    for device, mine in paused.groupby("device"):
        ax.broken_barh(list(zip(mine["time_s"], mine["paused_s"])), (device - 0.32, 0.64), facecolors=INTERRUPTION_COLOUR,
                       edgecolor=PHASES["upload"][0], hatch="////", linewidth=0.5, zorder=2.2)
    ax.scatter(moved["time_s"], moved["device"], marker=HANDOVER[0], color=HANDOVER[1], s=22, zorder=3)
    ends = job_ends(events, rounds, max_rounds)
    ends = ends[ends["device"] < rows]
    for outcome, (marker, colour, _) in JOB_ENDS.items():
        mine = ends[ends["outcome"] == outcome]
        ax.scatter(mine["time_s"], mine["device"], marker=marker, color=colour, s=30, linewidths=1.5, zorder=3)
    for t in np.unique(np.concatenate([shown["start_s"].to_numpy(), shown["end_s"].to_numpy()])):
        ax.axvline(t, color="0.3", linewidth=0.8, linestyle="--", zorder=2.5)
    rounds_axis = ax.secondary_xaxis("top")
    rounds_axis.set_xticks((shown["start_s"] + shown["end_s"]).to_numpy() / 2, [str(r) for r in shown["round"]])
    rounds_axis.tick_params(length=0, labelsize=8, labelcolor="0.3")
    rounds_axis.set_xlabel("round", fontsize=8, color="0.3")
    ax.set_xlim(t0 - 0.01 * (t1 - t0), t1 + 0.01 * (t1 - t0))
    ax.set_ylim(rows - 0.5, -0.5)  # device 0 on top
    if rows <= 30:
        ax.set_yticks(range(rows))
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("device")
    handles: list[Artist] = [Patch(color=colour, label=text) for colour, text in PHASES.values()]
    if availability is not None:
        handles.append(Patch(color=OFFLINE_COLOUR, label="offline"))
    handles += [Line2D([], [], marker=m, color=c, linestyle="none", markersize=7, markeredgewidth=2, label=text)
                for m, c, text in JOB_ENDS.values()]
    if not moved.empty:
        handles.append(Line2D([], [], marker=HANDOVER[0], color=HANDOVER[1], linestyle="none", markersize=6,
                              label=HANDOVER[2]))
    if not paused.empty:
        handles.append(Patch(facecolor=INTERRUPTION_COLOUR, edgecolor=PHASES["upload"][0], hatch="////",
                             label="upload interrupted by a handover"))
    handles.append(Line2D([], [], color="0.3", linewidth=0.8, linestyle="--", label="round boundary"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig, title


# The outcomes of the selected devices, stacked in this order (they add up to `selected`).
PARTICIPATION = {"participants": ("tab:green", "aggregated"), "stragglers": ("tab:red", "stragglers"),
                 "dropouts": ("0.3", "went offline"), "depleted": ("tab:purple", "battery emptied")}


def participation(rounds: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Per policy (one panel each) and round: the selected devices as a stack of what
    became of them (aggregated, stragglers, went offline, battery emptied), outlined by
    their number, and the devices available at the round's start as a line."""
    names = list(dict.fromkeys(rounds["policy"]))
    ncols = 1 if len(names) <= 2 else 2
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(7.5 * ncols, 2.4 * nrows + 1.4), sharex=True, sharey=True,
                             squeeze=False)
    for ax, name in zip(axes.flat, names):
        mine = rounds[rounds["policy"] == name].sort_values("round")
        x = mine["round"].to_numpy()
        edges = np.append(x - 0.5, x[-1] + 0.5)  # rounds are consecutive
        bottom = np.zeros(len(mine))
        for column, (colour, label) in PARTICIPATION.items():
            ax.bar(x, mine[column], 1.0, bottom=bottom, color=colour, label=label, linewidth=0)
            bottom += mine[column].to_numpy()
        ax.stairs(mine["selected"], edges, baseline=None, color="black", linewidth=0.8, label="selected")
        ax.stairs(mine["available"], edges, baseline=None, color="tab:cyan", linewidth=2.0, label="available")
        ax.set_title(name, fontsize=10)
        ax.set_ylim(0, 1.08 * max(float(rounds["available"].max()), 1.0))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3, axis="y")
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for col in range(ncols):  # the lowest visible panel of each column carries the round axis
        lowest = axes[(len(names) - 1 - col) // ncols, col]
        lowest.xaxis.set_tick_params(labelbottom=True)
        lowest.set_xlabel("round")
    for ax in axes[:, 0]:
        ax.set_ylabel("devices")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=9, frameon=False)
    return _save(fig, path, title, rect=(0, 0.6 / fig.get_figheight(), 1, 1))  # room for the legend below


def staleness_histogram(events: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Per policy, the share of its aggregated updates by staleness (global versions
    between an update's base model and the aggregation that used it; 0 in synchronous
    rounds). Lost jobs (staleness -1) are not updates and are left out."""
    used = events[events["staleness"] >= 0]
    names = list(dict.fromkeys(used["policy"]))
    top = int(used["staleness"].max()) if len(used) else 0
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    width = 0.8 / max(len(names), 1)
    for index, name in enumerate(names):
        counts = np.bincount(used.loc[used["policy"] == name, "staleness"].to_numpy(dtype=np.int64), minlength=top + 1)
        share = 100.0 * counts / max(counts.sum(), 1)
        ax.bar(np.arange(top + 1) + (index - (len(names) - 1) / 2) * width, share, width, label=name)
    ax.set_xlabel("staleness (global versions since the update's base model)")
    ax.set_ylabel("aggregated updates (%)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3, axis="y")
    ax.legend()
    return _save(fig, path, title)


def sinr_points(events: pd.DataFrame) -> pd.DataFrame:
    """The uploads that sent something, with their distance to the serving base station,
    their time-averaged SINR (dB) and their cell: what `sinr_against_distance` draws."""
    if not {"sinr_db", "distance_m"} <= set(events.columns):
        return pd.DataFrame({"distance_m": [], "sinr_db": [], "cell": []})
    sent = events[np.isfinite(events["sinr_db"].astype(float)) & np.isfinite(events["distance_m"].astype(float))]
    return sent[["distance_m", "sinr_db", "cell"]].reset_index(drop=True)


def sinr_against_distance(events: pd.DataFrame, path: Path, title: str = "") -> Path | None:
    """Each upload's SINR (averaged over its sending time) against its distance to the
    base station it sent to, coloured by that cell, with a colour bar naming the cells.
    None (no figure) when no upload sent anything."""
    points = sinr_points(events)
    if points.empty:
        return None
    cells = np.sort(points["cell"].unique())
    index = np.searchsorted(cells, points["cell"].to_numpy())
    colours = plt.get_cmap("tab20" if len(cells) > 10 else "tab10")
    norm = BoundaryNorm(np.arange(len(cells) + 1) - 0.5, len(cells))
    fig, ax = plt.subplots(figsize=(7.0, 4.4))
    drawn = ax.scatter(points["distance_m"], points["sinr_db"], c=index, cmap=ListedColormap(
        [colours(k % colours.N) for k in range(len(cells))]), norm=norm, s=9, alpha=0.7, linewidths=0)
    bar = fig.colorbar(drawn, ax=ax, ticks=np.arange(len(cells)))
    bar.ax.set_yticklabels([str(c) for c in cells])
    bar.set_label("serving cell (index in the scenario)")
    ax.set_xlabel("distance to the serving base station (m)")
    ax.set_ylabel("SINR over the upload (dB)")
    ax.grid(alpha=0.3)
    return _save(fig, path, title)


def _save(fig: plt.Figure, path: Path, title: str, rect: tuple[float, float, float, float] = (0, 0, 1, 1)) -> Path:
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
