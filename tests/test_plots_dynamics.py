"""The dynamic world's figures: the timeline's bars and offline periods against hand-computed
geometry, and the report drawing them (or, for folders written before the engine recorded
participation, leaving them out)."""

import math

import numpy as np

import pandas as pd
import pytest

from simfl.compare import write_report
import matplotlib.pyplot as plt
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.colors import to_hex

from simfl.plots import PHASES, job_ends, offline_bars, participation, timeline, timeline_bars, timeline_figure
from simfl.scenario import scenario_from_dict

from conftest import scenario_dict

EVENT_COLUMNS = ["policy", "round", "device", "cell", "gain", "rate_bps", "compute_start_s", "compute_end_s",
                 "upload_start_s", "upload_end_s", "e_cmp_j", "e_com_j", "bits_sent", "straggler", "outcome",
                 "download_start_s", "battery_j", "version"]

# Two rounds with T_max = 30 s, three devices (times in s):
#  device 0 delivers both rounds: receives 2 s, computes 10 s, sends 8 s;
#  device 1 is cut at the deadline, in round 0 while sending (25..30), in round 1 while computing (33..60);
#  device 2 goes offline at 8 s while computing in round 0 and is not selected in round 1.
JOBS = [  # round, device, download_start, compute_start, compute_end, upload_start, upload_end, outcome
    (0, 0, 0.0, 2.0, 12.0, 12.0, 20.0, "ok"),
    (0, 1, 0.0, 3.0, 25.0, 25.0, 30.0, "straggler"),
    (0, 2, 0.0, 1.0, 8.0, 8.0, 8.0, "offline"),
    (1, 0, 30.0, 32.0, 42.0, 42.0, 50.0, "ok"),
    (1, 1, 30.0, 33.0, 60.0, 60.0, 60.0, "straggler"),
]


def events_frame(policy="p"):
    rows = []
    for r, i, dl, c0, c1, u0, u1, outcome in JOBS:
        rows.append({"policy": policy, "round": r, "device": i, "cell": 0, "gain": 1e-10, "rate_bps": 1e6,
                     "compute_start_s": c0, "compute_end_s": c1, "upload_start_s": u0, "upload_end_s": u1,
                     "e_cmp_j": 0.1, "e_com_j": 0.05, "bits_sent": 1e6, "straggler": outcome == "straggler",
                     "outcome": outcome, "download_start_s": dl, "battery_j": math.inf, "version": r})
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


def rounds_frame(policy="p", dynamics=True):
    frame = pd.DataFrame({
        "policy": policy, "round": [0, 1], "start_s": [0.0, 30.0], "end_s": [30.0, 60.0], "duration_s": [30.0, 30.0],
        "energy_j": [0.45, 0.3], "cum_energy_j": [0.45, 0.75], "uplink_bits": [3e6, 2e6],
        "cum_uplink_bits": [3e6, 5e6], "participants": [1, 1], "stragglers": [1, 1],
        "accuracy": [0.2, 0.3], "loss": [2.0, 1.8],
        "available": [3, 2], "selected": [3, 2], "dropouts": [1, 0], "depleted": [0, 0], "version": [1, 2]})
    return frame if dynamics else frame.drop(columns=["available", "selected", "dropouts", "depleted", "version"])


# Device 2 is online until 8 s, then again from 45 s on; devices 0 and 1 always.
AVAILABILITY = pd.DataFrame({"device": [0, 1, 2, 2], "start_s": [0.0, 0.0, 0.0, 45.0],
                             "end_s": [math.inf, math.inf, 8.0, math.inf]})


def as_tuples(frame, columns):
    return [tuple(row) for row in frame[columns].itertuples(index=False)]


def test_timeline_bars_are_each_jobs_download_compute_and_upload_spans():
    bars = timeline_bars(events_frame(), rounds_frame(), max_rounds=2)
    assert as_tuples(bars, ["device", "round", "phase", "start_s", "duration_s"]) == [
        (0, 0, "download", 0.0, 2.0), (0, 0, "compute", 2.0, 10.0), (0, 0, "upload", 12.0, 8.0),
        (0, 1, "download", 30.0, 2.0), (0, 1, "compute", 32.0, 10.0), (0, 1, "upload", 42.0, 8.0),
        # the straggler's upload is cut at T_max = 30 s; in round 1 it never reaches the upload
        (1, 0, "download", 0.0, 3.0), (1, 0, "compute", 3.0, 22.0), (1, 0, "upload", 25.0, 5.0),
        (1, 1, "download", 30.0, 3.0), (1, 1, "compute", 33.0, 27.0),
        # the dropout stops computing at 8 s: no upload bar
        (2, 0, "download", 0.0, 1.0), (2, 0, "compute", 1.0, 7.0),
    ]


def test_timeline_bars_keep_only_the_first_max_rounds():
    bars = timeline_bars(events_frame(), rounds_frame(), max_rounds=1)
    assert set(bars["round"]) == {0}
    assert len(bars) == 8  # 3 + 3 + 2 phases of round 0


def test_job_ends_are_the_upload_end_with_the_outcome():
    ends = job_ends(events_frame(), rounds_frame(), max_rounds=2)
    assert sorted(as_tuples(ends, ["device", "round", "time_s", "outcome"])) == [
        (0, 0, 20.0, "ok"), (0, 1, 50.0, "ok"), (1, 0, 30.0, "straggler"), (1, 1, 60.0, "straggler"),
        (2, 0, 8.0, "offline")]


def test_offline_bars_are_the_complement_of_the_online_intervals_in_the_window():
    # Device 2 is offline from 8 s to 45 s: one bar of 37 s; devices 0 and 1 never.
    assert as_tuples(offline_bars(AVAILABILITY, 0.0, 60.0), ["device", "start_s", "duration_s"]) == [(2, 8.0, 37.0)]


def test_offline_bars_clip_to_the_window_and_cover_devices_without_intervals():
    online = pd.DataFrame({"device": [0, 0], "start_s": [10.0, 30.0], "end_s": [20.0, 40.0]})
    whole = offline_bars(online, 0.0, 50.0, devices=[0, 1])
    # device 0: before 10, between 20 and 30, after 40; device 1 is named by no interval: all 50 s
    assert as_tuples(whole, ["device", "start_s", "duration_s"]) == [
        (0, 0.0, 10.0), (0, 20.0, 10.0), (0, 40.0, 10.0), (1, 0.0, 50.0)]
    window = offline_bars(online, 15.0, 35.0, devices=[0, 1])
    assert as_tuples(window, ["device", "start_s", "duration_s"]) == [(0, 20.0, 10.0), (1, 15.0, 20.0)]


def test_offline_bars_of_a_trace_with_no_intervals():
    empty = pd.DataFrame({"device": pd.Series(dtype=int), "start_s": pd.Series(dtype=float),
                          "end_s": pd.Series(dtype=float)})
    assert offline_bars(empty, 0.0, 50.0).empty
    assert as_tuples(offline_bars(empty, 0.0, 50.0, devices=[0]), ["device", "start_s", "duration_s"]) == [(0, 0.0, 50.0)]


def test_timeline_and_participation_write_pngs(tmp_path):
    path = timeline(events_frame(), rounds_frame(), tmp_path / "timeline.png", "p", availability=AVAILABILITY)
    assert path.stat().st_size > 0
    both = pd.concat([rounds_frame("a"), rounds_frame("b")], ignore_index=True)
    assert participation(both, tmp_path / "participation.png", "t").stat().st_size > 0


def drawn_bars(ax):
    """Every rectangle of the axes' bar collections as (device row, colour, start_s, duration_s)."""
    bars = []
    for collection in ax.collections:
        if not isinstance(collection, PolyCollection):
            continue
        colour = to_hex(collection.get_facecolor()[0])
        for path in collection.get_paths():
            (x0, y0), (x1, y1) = path.vertices.min(axis=0), path.vertices.max(axis=0)
            bars.append((round((y0 + y1) / 2), colour, float(x0), float(x1 - x0)))
    return sorted(bars)


def drawn_markers(ax):
    """Every scatter point of the axes as (device row, time_s)."""
    return sorted((round(float(y)), float(x)) for collection in ax.collections if isinstance(collection, PathCollection)
                  for x, y in collection.get_offsets())


def test_timeline_of_many_devices_draws_the_first_60():
    events = events_frame()
    many = events.assign(device=events["device"] * 40)  # devices 0, 40 and 80 of 81
    fig, title = timeline_figure(many, rounds_frame(), "p")
    ax = fig.axes[0]
    assert title == "p (first 60 of 81 devices)"
    assert ax.get_ylim() == (59.5, -0.5)  # 60 rows, device 0 on top
    green, blue, orange = (to_hex(PHASES[p][0]) for p in ("download", "compute", "upload"))
    # device 0 delivers twice; device 40 is cut while sending, then while computing (JOBS);
    # device 80 (offline at 8 s) is past the 60th row and not drawn
    assert drawn_bars(ax) == [
        (0, blue, 2.0, 10.0), (0, blue, 32.0, 10.0), (0, green, 0.0, 2.0), (0, green, 30.0, 2.0),
        (0, orange, 12.0, 8.0), (0, orange, 42.0, 8.0),
        (40, blue, 3.0, 22.0), (40, blue, 33.0, 27.0), (40, green, 0.0, 3.0), (40, green, 30.0, 3.0),
        (40, orange, 25.0, 5.0)]
    assert drawn_markers(ax) == [(40, 30.0), (40, 60.0)]  # the two deadline cuts; no offline marker at 8 s
    plt.close(fig)


@pytest.fixture
def scenario():
    return scenario_from_dict(scenario_dict())


def test_report_draws_timelines_and_participation(tmp_path, scenario):
    pd.concat([rounds_frame("a"), rounds_frame("b")]).to_csv(tmp_path / "rounds.csv", index=False)
    pd.concat([events_frame("a"), events_frame("b")]).to_csv(tmp_path / "events.csv", index=False)
    AVAILABILITY.to_csv(tmp_path / "availability.csv", index=False)
    write_report(tmp_path, scenario, ["a", "b"], stream=None)
    for name in ("timeline-a.png", "timeline-b.png", "participation.png", "accuracy.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_report_on_an_old_folder_skips_the_dynamics_figures(tmp_path, scenario):
    rounds_frame("a", dynamics=False).to_csv(tmp_path / "rounds.csv", index=False)
    old_events = events_frame("a").drop(columns=["outcome", "download_start_s", "battery_j", "version"])
    old_events.to_csv(tmp_path / "events.csv", index=False)
    write_report(tmp_path, scenario, ["a"], stream=None)
    assert (tmp_path / "accuracy.png").stat().st_size > 0
    assert not (tmp_path / "timeline-a.png").exists()
    assert not (tmp_path / "participation.png").exists()


def test_seeds_evaluated_at_different_times_are_averaged_on_a_common_grid():

    from simfl.plots import _mean_over_seeds_on_a_grid

    # seed 1: accuracy 0.2 + 0.1 t on t in [0, 4]; seed 2: 0.4 + 0.1 t, evaluated at other
    # times, on [1, 5]: on the common span [1, 4] the mean is 30 + 10 t (%), the sd 10 sqrt(2)
    rows = pd.DataFrame({"seed": [1, 1, 1, 2, 2, 2], "end_s": [0.0, 2.0, 4.0, 1.0, 3.0, 5.0],
                         "accuracy": [0.2, 0.4, 0.6, 0.5, 0.7, 0.9]})
    x, mean, sd = _mean_over_seeds_on_a_grid(rows, "end_s", points=4)
    assert np.allclose(x, [1.0, 2.0, 3.0, 4.0])
    assert np.allclose(mean, 30 + 10 * x) and np.allclose(sd, 10 * np.sqrt(2))


def test_the_timeline_marks_handovers_and_the_uploads_they_interrupted():
    events = events_frame()
    events["handovers"] = [0, 1, 0, 2, 0]
    events["handover_s"] = [math.inf, 27.0, math.inf, 43.0, math.inf]
    events["paused_s"] = [0.0, 0.5, 0.0, 1.0, 0.0]
    from simfl.plots import HANDOVER, handovers

    moved = handovers(events, rounds_frame(), max_rounds=2)
    assert as_tuples(moved, ["device", "round", "time_s", "paused_s"]) == [(1, 0, 27.0, 0.5), (0, 1, 43.0, 1.0)]
    assert handovers(events_frame(), rounds_frame(), max_rounds=2).empty  # an older folder: none drawn
    fig, _ = timeline_figure(events, rounds_frame(), max_rounds=2)
    ax = fig.axes[0]
    diamonds = [c for c in ax.collections if isinstance(c, PathCollection)
                and to_hex(c.get_facecolor()[0]) == to_hex(HANDOVER[1])]
    assert len(diamonds) == 1 and sorted(map(tuple, diamonds[0].get_offsets())) == [(27.0, 1.0), (43.0, 0.0)]
    hatched = [c for c in ax.collections if isinstance(c, PolyCollection) and c.get_hatch()]
    assert len(hatched) == 2  # one bar collection per device with an interruption
    plt.close(fig)


def test_the_sinr_figure_draws_every_upload_that_sent_by_distance_coloured_by_cell(tmp_path):
    from simfl.plots import sinr_against_distance, sinr_points

    events = pd.DataFrame({"distance_m": [100.0, 250.0, 400.0, 50.0], "sinr_db": [20.0, 8.5, math.nan, 30.0],
                           "cell": [0, 2, 2, 2], "policy": "p"})
    points = sinr_points(events)
    assert points.values.tolist() == [[100.0, 20.0, 0], [250.0, 8.5, 2], [50.0, 30.0, 2]]  # the lost upload left out
    path = sinr_against_distance(events, tmp_path / "sinr.png", "t")
    assert path.stat().st_size > 0
    assert sinr_against_distance(events.iloc[2:3], tmp_path / "none.png") is None
    assert sinr_points(events.drop(columns="sinr_db")).empty  # folders written before the column existed
