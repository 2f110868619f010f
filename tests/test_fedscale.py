"""FedScale's client-behaviour traces as availability, against independent facts: online
devices at instants worked out by hand from a small trace written here in FedScale's
format (a pickled dict), FedScale's own rule `active <= t % finish_time <= inactive`
(exact in Python for t >= 0) at floats around every edge over many periods, the
participants of an engine run worked out by hand, a malicious pickle that never runs,
and `simfl trace convert` giving the same intervals as the trace it converts."""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from simfl.compute import compute_latency_s
from simfl.dynamics.availability import AvailabilityTimeline, online_intervals
from simfl.dynamics.fedscale import FedScaleTrace
from simfl.dynamics.periodic import PeriodicSchedule
from simfl.engine import run
from simfl.errors import ScenarioError
from simfl.plan import Plan
from simfl.radio import uplink_latency_s, uplink_rate_bps
from simfl.runfolder import fingerprint
from simfl.scenario import load_scenario, scenario_from_dict
from simfl.world import build_world

from conftest import StandInTrainer, scenario_dict

ROOT = Path(__file__).resolve().parents[1]
S_BITS = 32_000
up = math.nextafter  # up(x, inf): the float just after x


def behaviour(active, inactive, finish_time=30, model="Pixel 4"):
    return {"active": list(active), "inactive": list(inactive), "finish_time": finish_time,
            "duration": sum(b - a for a, b in zip(active, inactive)), "model": model}


# Period 30 s. Written out of id order: devices take clients in sorted id order, 3, 7, 12.
CLIENTS = {
    12: behaviour([12], [28]),  # device 2: online for t mod 30 in [12, 28]
    3: behaviour([0], [30]),  # device 0: the whole period, so always
    40: behaviour([5], [6]),  # a fourth client no device gets
    7: behaviour([0, 21], [15, 30]),  # device 1: [0, 15] and [21, 30], one stretch across each wrap
}


def write_pickle(path: Path, obj) -> Path:
    path.write_bytes(pickle.dumps(obj))
    return path


def fedscale_scenario(tmp_path, clients=None, count=3, availability=None, **changes):
    trace = write_pickle(tmp_path / "behave.pkl", CLIENTS if clients is None else clients)
    devices = {**scenario_dict()["devices"], "count": count, "availability": availability or {"fedscale": str(trace)}}
    return scenario_dict(devices=devices, **changes)


# ------------------------------------------------------------------ online at given instants


def test_the_devices_online_at_chosen_instants_are_the_ones_worked_out_by_hand(tmp_path):
    specs = build_world(scenario_from_dict(fedscale_scenario(tmp_path)), model_bits=S_BITS).availability
    assert specs[0].clients == ("3", "7", "12")  # sorted ids, not the pickle's order
    # t mod 30 by hand; device 1 is online on [0, 15] and [21, 30], device 2 on [12, 28]
    expected = [
        (0.0, {0, 1}),  # 0: device 2 not yet
        (12.0, {0, 1, 2}),  # 12: device 2's first instant
        (15.0, {0, 1, 2}),  # 15: device 1's last instant (FedScale's intervals are closed)
        (up(15.0, math.inf), {0, 2}),
        (20.999, {0, 2}),
        (21.0, {0, 1, 2}),
        (28.0, {0, 1, 2}),  # 28: device 2's last instant
        (up(28.0, math.inf), {0, 1}),
        (30.0, {0, 1}),  # 30 mod 30 = 0: device 1 goes on across the wrap, device 2 waits for 42
        (42.0, {0, 1, 2}),  # 42 mod 30 = 12
        (45.0, {0, 1, 2}),  # 45 mod 30 = 15
        (up(45.0, math.inf), {0, 2}),
        (58.0, {0, 1, 2}),  # 58 mod 30 = 28
        (up(58.0, math.inf), {0, 1}),
        (30_016.0, {0, 2}),  # the 1000th period: 30016 mod 30 = 16, in device 1's gap (15, 21)
        (30_021.0, {0, 1, 2}),
    ]
    timeline = AvailabilityTimeline(specs, seed=1)
    for t, online in expected:
        timeline.advance(t)
        assert set(np.flatnonzero(timeline.online).tolist()) == online, t
    # the same as intervals (ends exclusive: the float after FedScale's inclusive end)
    assert online_intervals(specs, seed=1, until_s=100.0) == [
        (0, 0.0, math.inf),
        (1, 0.0, up(15.0, math.inf)), (1, 21.0, up(45.0, math.inf)), (1, 51.0, up(75.0, math.inf)),
        (1, 81.0, up(105.0, math.inf)),
        (2, 12.0, up(28.0, math.inf)), (2, 42.0, up(58.0, math.inf)), (2, 72.0, up(88.0, math.inf)),
    ]


@pytest.mark.parametrize("period, intervals", [
    (0.1 + 0.2, ((0.1, 0.2),)),
    (0.1 + 0.2, ((0.0, 0.05), (0.1, 0.2), (0.25, 0.1 + 0.2))),  # online across the wrap
    (0.75, ((0.25, 0.25), (0.5, 0.75))),  # online at one instant a period
])
def test_every_edge_is_the_exact_float_where_fedscales_rule_changes(period, intervals):
    # P = 0.1 + 0.2 is not 0.3, and n P + a is rarely a float: the edges must still be
    # where FedScale's `active <= t % finish_time <= inactive` changes, at every float.
    # Python's t % P is exact for t >= 0 (fmod), so the rule is evaluated exactly here.
    schedule = PeriodicSchedule(period, intervals)

    def rule(t):
        return any(a <= t % period <= b for a, b in intervals)

    for n in [*range(40), 1_000, 123_457, 10**6, 3 * 10**8]:
        for edge in {x for pair in intervals for x in pair}:
            near = n * period + edge
            candidates = [near]
            for _ in range(3):
                candidates = [math.nextafter(candidates[0], -math.inf), *candidates, math.nextafter(candidates[-1], math.inf)]
            for t in (c for c in candidates if c >= 0):
                online, end = schedule.period_from(t)
                assert online == rule(t), (n, edge, t)
                assert end > t and rule(end) != online and rule(math.nextafter(end, -math.inf)) == online, (n, t, end)
                f = t
                for _ in range(8):  # no change hides between t and the end it names
                    f = math.nextafter(f, math.inf)
                    if f >= end:
                        break
                    assert rule(f) == online, (n, t, f, end)


def test_an_idle_device_is_asked_for_no_period_until_its_own_ends(tmp_path):
    specs = build_world(scenario_from_dict(fedscale_scenario(tmp_path)), model_bits=S_BITS).availability
    asked = []

    class Counting:
        def __init__(self, spec):
            self.spec = spec

        def period(self, seed, device, k, start_s, was_online):
            asked.append(device)
            return self.spec.period(seed, device, k, start_s, was_online)

    timeline = AvailabilityTimeline([Counting(s) for s in specs], seed=1)
    assert asked == [0, 1, 2]
    for t in np.linspace(0.0, 11.9, 50):  # inside every device's first period (device 2 comes at 12)
        timeline.advance(float(t))
    assert asked == [0, 1, 2]
    timeline.advance(13.0)  # device 2's offline period ended at 12; device 0 is online for ever
    assert asked == [0, 1, 2, 2]
    timeline.advance(10 * 30.0)
    assert 0 not in asked[3:]


# ------------------------------------------------------------------ through the engine


def engine_world(tmp_path, availability):
    # Three devices computing 10 s exactly (tau omega D / f = 5e8 / 5e7) and uploading
    # S = 32 kbit on 1 MHz in a few ms; device 0 is the farthest, so the slowest to
    # upload; T_max = 12 s.
    trace = write_pickle(tmp_path / "behave.pkl", CLIENTS)
    raw = scenario_dict(
        cells=[{"name": "bs", "position_m": [0, 0], "radius_m": 300, "bandwidth_hz": 3e6}],
        devices=[{"position_m": [120.0 - 10 * i, 0], "f_max_hz": 5e7, "eps": 8e-26, "p_max_dbm": 20}
                 for i in range(3)],
        task={"samples_per_device": 100},
        optimisation={"t_max_s": 12},
    )
    if availability == "fedscale":
        # the three explicit devices are three groups: map each to its client by index
        (tmp_path / "map.csv").write_text("device,client\n0,3\n1,7\n2,12\n")
        for item in raw["devices"]:
            item["availability"] = {"fedscale": {"file": str(trace), "mapping": str(tmp_path / "map.csv")}}
    world = build_world(scenario_from_dict(raw), model_bits=S_BITS)
    plan = Plan(d_gen_per_class=np.zeros_like(world.d_loc_per_class), f_hz=np.full(3, 5e7), b_hz=np.full(3, 1e6),
                p_w=world.p_max_w)
    return world, plan


def play(world, plan, rounds):
    rows = []
    run(world, plan, StandInTrainer(), rounds=rounds, seed=1, on_round=lambda r, d, s: rows.append((r, d, s)))
    return rows


@pytest.mark.parametrize("availability", ["always", "fedscale"])
def test_the_participants_of_a_run_are_the_ones_worked_out_by_hand(tmp_path, availability):
    world, plan = engine_world(tmp_path, availability)
    k = world.constants
    t_com = uplink_latency_s(k.model_bits, uplink_rate_bps(plan.b_hz, world.gain, plan.p_w, world.device_noise_w_per_hz))
    assert compute_latency_s(k.tau, k.omega_cycles, world.d_loc, plan.f_hz).tolist() == [10.0] * 3
    assert t_com[0] == max(t_com) and t_com[0] < 0.1
    c = t_com[0]  # a round everybody finishes lasts 10 s + device 0's upload; one with a dropout T_max = 12 s
    rows = play(world, plan, rounds=6)
    selected = [sorted(d.device for d in devices) for _, devices, _ in rows]
    delivered = [sorted(d.device for d in devices if d.outcome == "ok") for _, devices, _ in rows]
    starts = [r.start_s for r, _, _ in rows]
    if availability == "always":
        assert selected == delivered == [[0, 1, 2]] * 6
        assert starts == pytest.approx([r * (10 + c) for r in range(6)], abs=1e-6)
        return
    # Device 0 always online; device 1 on [0, 15] and [21, 30] mod 30 (one stretch from
    # 21 to 45, from 51 to 75); device 2 on [12, 28] mod 30.
    # Round 0 at 0: 0, 1 (2 comes at 12); 1 finishes at 10 + c1 < 15.
    # Round 1 at 10 + c: 0, 1; 1 goes offline at 15 while computing: T_max.
    # Round 2 at 22 + c: 0, 1, 2; 2 goes offline at 28 while computing: T_max; 1 stays on across 30.
    # Round 3 at 34 + c (4 + c mod 30): 0, 1; both finish (1 is on until 45).
    # Round 4 at 44 + 2c (14 + 2c mod 30): 0, 1, 2; 1 goes offline at 45: T_max; 2 finishes at 54 + ... < 58.
    # Round 5 at 56 + 2c (26 + 2c mod 30): 0, 1, 2; 2 goes offline at 58: T_max; 1 is on until 75.
    assert selected == [[0, 1], [0, 1], [0, 1, 2], [0, 1], [0, 1, 2], [0, 1, 2]]
    assert delivered == [[0, 1], [0], [0, 1], [0, 1], [0, 2], [0, 1]]
    assert starts == pytest.approx([0, 10 + c, 22 + c, 34 + c, 44 + 2 * c, 56 + 2 * c], abs=1e-6)
    dropped = [(r, d.device, d.compute_end_s) for r, (_, devices, _) in enumerate(rows) for d in devices
               if d.outcome == "offline"]
    assert dropped == [(1, 1, pytest.approx(15.0)), (2, 2, pytest.approx(28.0)), (4, 1, pytest.approx(45.0)),
                       (5, 2, pytest.approx(58.0))]


# ------------------------------------------------------------------ mapping and group order


def test_each_group_gives_its_own_devices_the_smallest_ids_or_the_mapped_clients(tmp_path):
    trace = write_pickle(tmp_path / "behave.pkl", CLIENTS)
    (tmp_path / "map.csv").write_text("device,client\n0,40\n2,12\n3,12\n4,3\n")
    group = {"f_max_hz": 1e9, "eps": 5e-27, "p_max_dbm": 20}
    raw = scenario_dict(devices=[
        {**group, "count": 2, "availability": {"fedscale": str(trace)}},
        {**group, "count": 1},
        {**group, "count": 2, "availability": {"fedscale": {"file": str(trace), "mapping": str(tmp_path / "map.csv")}}},
    ])
    groups = scenario_from_dict(raw).devices
    assert (groups[0].availability.first_device, groups[0].availability.clients) == (0, ("3", "7"))
    # devices 3 and 4 by the mapping (its rows for devices 0 and 2 belong to other groups)
    assert (groups[2].availability.first_device, groups[2].availability.clients) == (3, ("12", "3"))


@pytest.mark.parametrize("mapping, says", [
    ("device,client\n0,3\n", "no row for device(s) 1"),
    ("device,client\n0,3\n1,99\n", "line 3: client 99 is not in the trace"),
    ("device,client\n0,3\n0,7\n1,7\n", "line 3: device 0 is mapped twice"),
    ("device,client\n0,3\n1,7\n9,7\n", "line 4: device 9 does not exist (the scenario has devices 0..1)"),
    ("dev,cli\n0,3\n", "the first line must be the header device,client"),
])
def test_a_bad_mapping_names_its_file_line_and_problem(tmp_path, mapping, says):
    (tmp_path / "map.csv").write_text(mapping)
    trace = write_pickle(tmp_path / "behave.pkl", CLIENTS)
    raw = fedscale_scenario(tmp_path, count=2, availability={"fedscale": {"file": str(trace), "mapping": str(tmp_path / "map.csv")}})
    with pytest.raises(ScenarioError) as error:
        scenario_from_dict(raw)
    assert "devices.availability.fedscale: " in str(error.value) and "map.csv" in str(error.value)
    assert says in str(error.value)


def test_more_devices_than_clients_names_the_file_and_both_counts(tmp_path):
    with pytest.raises(ScenarioError) as error:
        scenario_from_dict(fedscale_scenario(tmp_path, count=5))
    assert str(error.value) == (f"<scenario>: devices.availability.fedscale: {tmp_path / 'behave.pkl'}: 5 devices to "
                                "give clients to, but the trace has 4 clients; use at most 4 devices, or a mapping "
                                "(a device,client CSV) that gives some a client twice")


# ------------------------------------------------------------------ safety and bad files


class Payload:
    """What an attacker pickles: loading it calls os.system, which creates `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("where", ["top", "inside"])
def test_a_malicious_pickle_is_refused_and_its_payload_never_runs(tmp_path, where):
    marker = tmp_path / "pwned"
    evil = Payload(marker) if where == "top" else {3: {**CLIENTS[3], "model": Payload(marker)}}
    write_pickle(tmp_path / "behave.pkl", evil)
    with pytest.raises(ScenarioError) as error:
        scenario_from_dict(fedscale_scenario(tmp_path, clients=evil, count=1))
    message = str(error.value)
    assert "behave.pkl: refused: it names the global posix.system" in message
    assert "\n" not in message and "Traceback" not in message
    assert not marker.exists()
    pickle.loads((tmp_path / "behave.pkl").read_bytes())  # the ordinary unpickler runs it: the test means something
    assert marker.exists()


def bad(**changes):
    return {**behaviour([0, 20], [10, 25]), **changes}


@pytest.mark.parametrize("entry, says", [
    (bad(active=[0, 20], inactive=[10]), "active and inactive have different lengths (2 and 1)"),
    (bad(active=[0, 10], inactive=[15, 20]), "intervals 0 and 1 are out of order or overlap (inactive[0] = 15 > active[1] = 10)"),
    (bad(active=[20, 0], inactive=[25, 10]), "intervals 0 and 1 are out of order or overlap"),
    (bad(active=[10], inactive=[5]), "interval 0 ends before it starts (active[0] = 10 > inactive[0] = 5)"),
    (bad(active=[-5], inactive=[5]), "active[0] = -5 is negative"),
    (bad(active=[0], inactive=[40]), "inactive[0] = 40 is beyond finish_time 30"),
    (bad(finish_time=0), "finish_time (the trace's period) must be in (0, 1e+09] s, got 0"),
    (bad(finish_time=True), "finish_time must be a number, got bool True"),
    (bad(active="0,20"), "active must be a list of instants in seconds, got str '0,20'"),
    (bad(active=[0, float("nan")]), "active[1] must be a finite number, got float nan"),
    (bad(model=3), "model must be a string (the device model's name), got int 3"),
    ({k: v for k, v in bad().items() if k != "duration"}, "misses key(s) duration"),
    ([0, 10], "must be a dict with keys active, inactive, finish_time, duration, model, got list [0, 10]"),
])
def test_a_bad_client_names_the_file_the_client_and_the_problem(tmp_path, entry, says):
    raw = fedscale_scenario(tmp_path, clients={1: behaviour([0], [5]), 2: entry}, count=2)
    with pytest.raises(ScenarioError) as error:
        scenario_from_dict(raw)
    message = str(error.value)
    assert message.startswith(f"<scenario>: devices.availability.fedscale: {tmp_path / 'behave.pkl'}: client 2: {says}")
    assert "\n" not in message


@pytest.mark.parametrize("content, says", [
    (pickle.dumps([behaviour([0], [5])]), "must hold a dict of client id -> {active, inactive, finish_time, duration, model}"),
    (pickle.dumps({1: behaviour([0], [5]), "a": behaviour([0], [5])}), "client ids must be all integers or all strings"),
    (b"not a pickle at all", "not a readable pickle"),
    (pickle.dumps(CLIENTS)[:-20], "not a readable pickle"),
])
def test_a_bad_file_names_itself_and_the_problem(tmp_path, content, says):
    (tmp_path / "behave.pkl").write_bytes(content)
    raw = scenario_dict(devices={**scenario_dict()["devices"], "count": 1,
                                 "availability": {"fedscale": str(tmp_path / "behave.pkl")}})
    with pytest.raises(ScenarioError) as error:
        scenario_from_dict(raw)
    assert f"devices.availability.fedscale: {tmp_path / 'behave.pkl'}: {says}" in str(error.value)


# ------------------------------------------------------------------ the command line


def simfl(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "simfl", *args], capture_output=True, text=True, cwd=cwd)


def test_validate_reads_the_trace_beside_the_scenario_and_refuses_a_bad_one(tmp_path):
    folder = tmp_path / "scenarios"
    folder.mkdir()
    write_pickle(folder / "behave.pkl", CLIENTS)
    raw = scenario_dict(devices={**scenario_dict()["devices"], "count": 3, "availability": {"fedscale": "behave.pkl"}})
    (folder / "s.yaml").write_text(yaml.safe_dump(raw))
    good = simfl("validate", str(folder / "s.yaml"))  # run from the repository: the path is the scenario's folder's
    assert good.returncode == 0, good.stderr
    write_pickle(folder / "behave.pkl", {**CLIENTS, 7: behaviour([0, 21], [15, 31])})
    refused = simfl("validate", str(folder / "s.yaml"))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip() == (f"simfl: error: {folder / 's.yaml'}: devices.availability.fedscale: "
                                      f"{folder / 'behave.pkl'}: client 7: inactive[1] = 31 is beyond finish_time 30; "
                                      "instants are in [0, finish_time]")


def test_convert_writes_a_csv_trace_with_the_same_intervals_up_to_the_horizon(tmp_path):
    write_pickle(tmp_path / "behave.pkl", CLIENTS)
    horizon = 200.0
    done = simfl("trace", "convert", str(tmp_path / "behave.pkl"), "--horizon-s", "200", "--devices", "3",
                 "--out", str(tmp_path / "online.csv"))
    assert done.returncode == 0, done.stderr
    # device 0: one, for ever; device 1: from 0, 21, 51, ..., 171 (7); device 2: from 12 + 30 n < 200 (7)
    assert "15 online intervals of 3 devices" in done.stdout
    fedscale = scenario_from_dict(fedscale_scenario(tmp_path))
    csv = scenario_from_dict(fedscale_scenario(tmp_path, availability={"trace": str(tmp_path / "online.csv")}))
    specs_f = build_world(fedscale, model_bits=S_BITS).availability
    specs_c = build_world(csv, model_bits=S_BITS).availability
    assert online_intervals(specs_c, 1, horizon) == online_intervals(specs_f, 1, horizon)
    # and the timelines agree at every edge and beside it, up to the horizon
    a, b = AvailabilityTimeline(specs_f, 1), AvailabilityTimeline(specs_c, 1)
    instants = sorted({x for _, s, e in online_intervals(specs_f, 1, horizon) for x in (s, e) if x < horizon})
    for t in sorted({y for x in instants for y in (math.nextafter(x, -math.inf), x) if y >= 0}):
        a.advance(t)
        b.advance(t)
        assert a.online.tolist() == b.online.tolist(), t


def test_convert_refuses_a_bad_file_in_one_paragraph(tmp_path):
    write_pickle(tmp_path / "behave.pkl", CLIENTS)
    done = simfl("trace", "convert", str(tmp_path / "behave.pkl"), "--horizon-s", "100", "--devices", "9",
                 "--out", str(tmp_path / "online.csv"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (f"simfl: error: {tmp_path / 'behave.pkl'}: 9 devices to give clients to, but the "
                                   "trace has 4 clients; use at most 4 devices, or a mapping (a device,client CSV) "
                                   "that gives some a client twice")
    assert not (tmp_path / "online.csv").exists()


# ------------------------------------------------------------------ the run folder's fingerprint


def test_scenarios_without_the_kind_keep_their_fingerprint_and_one_with_it_names_its_clients(tmp_path):
    # digests of these scenarios before the fedscale kind existed
    assert fingerprint(scenario_from_dict(scenario_dict(task={"precision": "float32"})))[0] == "d8c0f98ae5582e51"
    dynamic = load_scenario(ROOT / "scenarios" / "dynamic.yaml", overrides=["task.precision=float32"])
    assert fingerprint(dynamic)[0] == "06f28ccc14a2f0e7"
    _, fields = fingerprint(scenario_from_dict(fedscale_scenario(tmp_path)))
    assert fields["devices.0.availability.clients"] == ["3", "7", "12"]
    assert fields["devices.0.availability.schedules.1.intervals"] == [[0.0, 15.0], [21.0, 30.0]]
    assert isinstance(scenario_from_dict(fedscale_scenario(tmp_path)).devices[0].availability, FedScaleTrace)
