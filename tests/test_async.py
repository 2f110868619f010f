"""FedBuff and FedAsync in simulated time, against schedules and models worked out by hand.

The tiny world: three devices whose jobs take T_cmp = 0.5, 1.3 and 2.2 s (1e5 samples x
5e6 cycles... set through f) plus an upload of a few hundred microseconds (u_i, eqs. 7-8),
always on, no fading. A numeric stand-in trainer makes the models hand-checkable: device
i's local update is its base model plus the unit vector e_i.
"""

from __future__ import annotations


import numpy as np
import pytest

from simfl.compute import compute_energy_j, compute_latency_s
from simfl.engine import EngineState, run
from simfl.errors import ScenarioError
from simfl.learning.protocol import LocalUpdate, RoundMetrics
from simfl.plan import Plan
from simfl.radio import uplink_energy_j, uplink_latency_s, uplink_rate_bps
from simfl.scenario import scenario_from_dict
from simfl.world import build_world

from conftest import scenario_dict

S_BITS = 32_000
T_CMP = np.array([0.5, 1.3, 2.2])


class VectorTrainer:
    """Models are float vectors; device i's update is base + e_i; accuracy is the sum."""

    def __init__(self, n: int, samples: int = 100) -> None:
        self.g = np.zeros(n)
        self.samples = samples
        self.trained: list[tuple[int, int, int, int]] = []  # (client, key, base_version, repeat)

    def train(self, jobs):
        out = []
        for job in jobs:
            base = self.g if job.base is None else job.base
            self.trained.append((job.client, job.key, job.base_version, job.repeat))
            out.append(LocalUpdate(client=job.client, base_version=job.base_version, samples=self.samples,
                                   params=base + np.eye(len(self.g))[job.client], base=base))
        return out

    def local_updates(self, round_index, devices, version=0):
        from simfl.learning.protocol import TrainJob

        return self.train([TrainJob(client=int(i), key=round_index, base_version=version) for i in sorted(devices)])

    def server_update(self, round_index, version=0):
        # the server's own update (SST, CLSD): its model plus a tenth of the ones vector
        return LocalUpdate(client=-1, base_version=version, samples=self.samples, params=self.g + 0.1, base=self.g)

    def global_params(self):
        return self.g

    def fedavg(self, updates, weights=None):
        weights = [u.samples for u in updates] if weights is None else weights
        return sum(w * u.params for u, w in zip(updates, weights)) / sum(weights)

    def average_delta(self, updates, weights=None):
        weights = [u.samples for u in updates] if weights is None else weights
        return sum(w * (u.params - u.base) for u, w in zip(updates, weights)) / sum(weights)

    def step(self, params, delta, scale):
        return params + scale * delta

    def mix(self, start, end, weight):
        return (1 - weight) * start + weight * end

    def set_global(self, params):
        self.g = params

    def evaluate(self):
        return RoundMetrics(accuracy=float(self.g.sum()), loss=0.0)


def tiny_world(aggregation, devices=3, t_cmp=T_CMP, **changes):
    raw = scenario_dict(devices={"count": devices, "f_max_hz": 2e9, "eps": 5e-27, "p_max_dbm": 20}, aggregation=aggregation,
                        **changes)
    world = build_world(scenario_from_dict(raw), model_bits=S_BITS)
    k = world.constants
    f = k.tau * k.omega_cycles * world.d_loc / np.resize(t_cmp, devices)  # eq. (6) solved for f
    plan = Plan(d_gen_per_class=np.zeros_like(world.d_loc_per_class), f_hz=f,
                b_hz=np.full(devices, world.bandwidth_hz[0] / devices), p_w=world.p_max_w)
    return world, plan


def job_times(world, plan):
    """T_cmp + T_com of each device's job, eqs. (6)-(8), with the band split among M = 3."""
    k = world.constants
    rate = uplink_rate_bps(plan.b_hz, world.gain, plan.p_w, world.device_noise_w_per_hz)
    return compute_latency_s(k.tau, k.omega_cycles, world.d_loc, plan.f_hz) + uplink_latency_s(k.model_bits, rate)


def play(world, plan, trainer, rounds, state=EngineState(), seed=1):
    rows = []
    final = run(world, plan, trainer, rounds=rounds, seed=seed, state=state,
                on_round=lambda r, d, s: rows.append((r, d, s)))
    return rows, final


def test_fedbuff_schedule_staleness_and_models_equal_the_hand_computation():
    world, plan = tiny_world({"mode": "fedbuff", "buffer_size": 2, "staleness": {"polynomial": 1}})
    d = job_times(world, plan)
    assert np.allclose(d, T_CMP, atol=2e-3)  # uploads of about a millisecond
    trainer = VectorTrainer(3)
    rows, final = play(world, plan, trainer, rounds=3)
    # All three start at 0 from v0. Arrivals: dev0 at d0 and 2d0 (buffer full: v1);
    # dev1 at d1 = 1.3 (from v0); dev0 at 3d0 = 1.5 (from v1): v2; dev0 at 4d0 = 2.0
    # (from v2); dev2 at d2 = 2.2 (from v0): v3.
    assert [r.end_s for r, _, _ in rows] == pytest.approx([2 * d[0], 3 * d[0], d[2]], rel=1e-12)
    assert [r.version for r, _, _ in rows] == [1, 2, 3]
    jobs = [[(e.device, e.version, e.staleness) for e in events] for _, events, _ in rows]
    assert jobs == [[(0, 0, 0), (0, 0, 0)], [(1, 0, 1), (0, 1, 0)], [(0, 2, 0), (2, 0, 2)]]
    # Models: g1 = e0; g2 = g1 + (e0 + e1 / 2) / 2; g3 = g2 + (e0 + e2 / 3) / 2 (weights (1 + s)^-1).
    e = np.eye(3)
    assert np.allclose(trainer.g, 2 * e[0] + 0.25 * e[1] + e[2] / 6, rtol=0, atol=1e-15)
    # training seeds: (base version, device, repeat): dev0 trained twice from v0
    assert sorted(trainer.trained) == sorted([(0, 0, 0, 0), (0, 0, 0, 1), (1, 0, 0, 0), (0, 1, 1, 0), (0, 2, 2, 0),
                                              (2, 0, 0, 0)])
    assert final.version == 3 and final.next_round == 3


def test_fedasync_mixes_every_arrival_with_the_staleness_weight():
    world, plan = tiny_world({"mode": "fedasync", "mixing": 0.5, "staleness": {"polynomial": 1}})
    d = job_times(world, plan)
    trainer = VectorTrainer(3)
    rows, _ = play(world, plan, trainer, rounds=3)
    # dev0 at d0 (s 0): g1 = e0 / 2; dev0 at 2d0 from v1 (s 0): g2 = (g1 + g1 + e0) / 2 = e0;
    # dev1 at d1 from v0 (s 2): alpha = 0.5 / 3, g3 = (5/6) e0 + e1 / 6.
    assert [r.end_s for r, _, _ in rows] == pytest.approx([d[0], 2 * d[0], d[1]], rel=1e-12)
    assert [[(e.device, e.version, e.staleness) for e in events] for _, events, _ in rows] == \
        [[(0, 0, 0)], [(0, 1, 0)], [(1, 0, 2)]]
    e = np.eye(3)
    assert np.allclose(trainer.g, 5 / 6 * e[0] + e[1] / 6, rtol=0, atol=1e-15)


def test_job_energy_is_eq5_plus_eq9_and_rows_add_up():
    world, plan = tiny_world({"mode": "fedbuff", "buffer_size": 2})
    k = world.constants
    rate = uplink_rate_bps(plan.b_hz, world.gain, plan.p_w, world.device_noise_w_per_hz)
    e_cmp = compute_energy_j(k.tau, world.eps, k.omega_cycles, world.d_loc, plan.f_hz)
    e_com = uplink_energy_j(k.model_bits, plan.p_w, rate)
    rows, final = play(world, plan, VectorTrainer(3), rounds=4)
    for _, events, _ in rows:
        for ev in events:
            assert ev.e_cmp_j == pytest.approx(e_cmp[ev.device], rel=1e-12)
            assert ev.e_com_j == pytest.approx(e_com[ev.device], rel=1e-12)
            assert ev.bits_sent == S_BITS
    # A row counts what was spent up to its time, jobs in flight included: by the last
    # aggregation every device has been computing since t = 0 except when uploading.
    end = rows[-1][0].end_s
    reported = sum(ev.e_cmp_j + ev.e_com_j for _, events, _ in rows for ev in events)
    assert final.cum_energy_j > reported
    # with the power of each phase, the energy up to `end` of three devices busy without a break
    p_cmp = world.eps * plan.f_hz ** 3
    bound = ((p_cmp + plan.p_w) * end).sum()
    assert final.cum_energy_j <= bound


def test_max_concurrency_is_never_exceeded():
    world, plan = tiny_world({"mode": "fedbuff", "buffer_size": 3, "max_concurrency": 2}, devices=6,
                             t_cmp=np.array([0.5, 1.3, 2.2, 0.7, 0.9, 1.7]))
    rows, _ = play(world, plan, VectorTrainer(6), rounds=8)
    jobs = [(ev.download_start_s, ev.upload_end_s) for _, events, _ in rows for ev in events]
    assert len(jobs) >= 24
    for t, _ in jobs:
        busy = sum(1 for s, e in jobs if s <= t < e)
        assert busy <= 2
    assert max(sum(1 for s, e in jobs if s <= t < e) for t, _ in jobs) == 2


def test_fedbuff_with_k_equal_n_and_equal_devices_is_synchronous_fedavg():
    raw_devices = [{"position_m": [150, 0], "f_max_hz": 1e9, "eps": 5e-27, "p_max_dbm": 20}] * 4
    results = {}
    for mode in ("sync", "fedbuff"):
        raw = scenario_dict(devices=raw_devices, aggregation={"mode": mode, "buffer_size": 4})
        world = build_world(scenario_from_dict(raw), model_bits=S_BITS)
        plan = Plan(d_gen_per_class=np.zeros_like(world.d_loc_per_class), f_hz=world.f_max_hz,
                    b_hz=np.full(4, 5e6), p_w=world.p_max_w)
        trainer = VectorTrainer(4)
        rows, _ = play(world, plan, trainer, rounds=3)
        results[mode] = (trainer.g, [r.end_s for r, _, _ in rows], sorted(trainer.trained))
    assert np.array_equal(results["sync"][0], results["fedbuff"][0])
    assert results["sync"][1] == results["fedbuff"][1]
    assert results["sync"][2] == results["fedbuff"][2]  # the same seeds: (round = base version, device)


def test_an_asynchronous_run_resumes_bit_for_bit_with_jobs_in_flight():
    raw_extra = {"availability": {"markov": {"mean_on_s": 3.0, "mean_off_s": 1.5}}, "battery_j": {"uniform": [3, 9]}}
    for aggregation in ({"mode": "fedbuff", "buffer_size": 3, "max_concurrency": 4, "eval_every": 2},
                        {"mode": "fedasync", "max_concurrency": 3}):
        world, plan = tiny_world(aggregation, devices=6, t_cmp=np.array([0.5, 1.3, 2.2, 0.7, 0.9, 1.7]))
        raw = scenario_dict(devices={"count": 6, "f_max_hz": 2e9, "eps": 5e-27, "p_max_dbm": 20, **raw_extra},
                            aggregation=aggregation, task={"rounds": 10})
        world = build_world(scenario_from_dict(raw), model_bits=S_BITS)
        whole_trainer = VectorTrainer(6)
        whole, _ = play(world, plan, whole_trainer, rounds=10)
        first_trainer = VectorTrainer(6)
        first, middle = play(world, plan, first_trainer, rounds=5)
        assert middle.asynchronous["flights"], "the test needs jobs in flight at the snapshot"
        restored = EngineState.from_json(middle.to_json(),
                                         {v: m.copy() for v, m in middle.models.items()})
        second_trainer = VectorTrainer(6)
        second_trainer.g = first_trainer.g.copy()
        rest, _ = play(world, plan, second_trainer, rounds=10, state=restored)
        assert [(r, d) for r, d, _ in whole] == [(r, d) for r, d, _ in first + rest]
        assert np.array_equal(whole_trainer.g, second_trainer.g)
        outcomes = {ev.outcome for _, events, _ in whole for ev in events}
        assert outcomes - {"ok"}, "the test needs lost jobs"


@pytest.mark.parametrize("aggregation, field, says", [
    ({"mode": "fedbuff", "buffer_size": 0}, "aggregation.buffer_size", ">= 1"),
    ({"mode": "fedbuff", "max_concurrency": 6}, "aggregation.max_concurrency", "number of devices (5)"),
    ({"mode": "fedasync", "staleness": {"polynomial": -0.5}}, "aggregation.staleness.polynomial", ">= 0"),
    ({"mode": "fedsgd"}, "aggregation.mode", "sync, fedbuff, fedasync"),
    ({"mode": "fedbuff", "staleness": "hinge"}, "aggregation.staleness", "constant or {polynomial: a}"),
    ({"mode": "fedasync", "mixing": 1.5}, "aggregation.mixing", "<= 1"),
    ({"mode": "fedbuff", "server_lr": 0}, "aggregation.server_lr", "> 0"),
    ({"mode": "fedbuff", "buffer": 3}, "aggregation.buffer", "unknown"),
])
def test_bad_aggregation_settings_name_the_field(aggregation, field, says):
    with pytest.raises(ScenarioError) as error:
        scenario_from_dict(scenario_dict(aggregation=aggregation), source="s.yaml")
    message = str(error.value)
    assert field in message and says in message and "s.yaml" in message


def test_a_time_budget_ends_the_run_at_the_first_row_that_reaches_it():
    # FedAsync: an aggregation per arrival, at d0, 2 d0, d1, 3 d0, ... (d = 0.5, 1.3, 2.2 s
    # plus ~1 ms uploads). A budget of 1.2 s ends the run at the arrival at d1 ~ 1.3 s, the
    # first row ending at or after it, long before the 50 rounds; that row is evaluated.
    world, plan = tiny_world({"mode": "fedasync", "eval_every": 10}, task={"max_time_s": 1.2, "rounds": 50})
    d = job_times(world, plan)
    rows, final = play(world, plan, VectorTrainer(3), rounds=50)
    assert [r.end_s for r, _, _ in rows] == pytest.approx([d[0], 2 * d[0], d[1]], rel=1e-12)
    assert np.isnan(rows[0][0].accuracy) and np.isnan(rows[1][0].accuracy) and not np.isnan(rows[2][0].accuracy)
    assert final.next_round == 3 and final.time_s == pytest.approx(d[1], rel=1e-12)


def test_a_time_budget_ends_synchronous_rounds_too():
    # every round waits for the slowest device, d2 ~ 2.2 s: a 5 s budget is crossed by the
    # third round (ending at ~6.6 s), which is the last
    world, plan = tiny_world({"mode": "sync"}, task={"max_time_s": 5.0})
    d = job_times(world, plan)
    rows, final = play(world, plan, VectorTrainer(3), rounds=50)
    assert [r.end_s for r, _, _ in rows] == pytest.approx([d[2], 2 * d[2], 3 * d[2]], rel=1e-12)
    assert final.next_round == 3


def test_a_policy_name_with_a_mode_runs_that_mode():
    from simfl.errors import PolicyNotFound
    from simfl.experiment import in_mode
    from simfl.registry import create, name_problem, split_mode

    assert split_mode("tfl@fedbuff") == ("tfl", "fedbuff")
    assert split_mode("my@lab/policy.py:Mine") == ("my@lab/policy.py:Mine", None)  # an @ inside a path
    policy = create("tfl@fedasync")
    assert policy.name == "tfl@fedasync" and policy.aggregation_mode == "fedasync"
    assert create("tfl").aggregation_mode is None
    with pytest.raises(PolicyNotFound, match="unknown aggregation mode 'fedbuf'.*sync, fedbuff, fedasync"):
        create("tfl@fedbuf")
    assert "unknown aggregation mode" in name_problem("tfl@fedbuf")
    assert name_problem("tfl@sync") is None


    from simfl.experiment import Setup

    scenario = scenario_from_dict(scenario_dict(aggregation={"mode": "sync", "buffer_size": 2}))
    world = build_world(scenario, model_bits=S_BITS)
    setup = Setup(scenario=scenario, dataset=None, device_indices=(), world=world, public_idx=np.zeros(0))
    moved = in_mode(setup, policy)
    for aggregation in (moved.world.constants.aggregation, moved.scenario.aggregation):
        assert aggregation.mode == "fedasync" and aggregation.buffer_size == 2  # the scenario's other settings stay
    assert in_mode(setup, create("tfl")) is setup


@pytest.mark.parametrize("mode", ["fedbuff", "fedasync"])
def test_every_policy_runs_in_the_asynchronous_modes_within_max_concurrency_and_deterministically(mode):
    from simfl.policy import PlanContext
    from simfl.registry import builtin_policies, create
    from simfl.world import rng

    aggregation = {"mode": mode, "buffer_size": 3, "max_concurrency": 4}
    raw = scenario_dict(devices={"count": 8, "f_max_hz": {"uniform": [0.5e9, 2e9]}}, aggregation=aggregation,
                        task={"samples_per_device": 1250, "rounds": 200},  # N of the plans; 8 are played
                        optimisation={"t_max_s": 60, "err_max": 0.2, "dgen_max": 5000, "zeta": 68,
                                      "cross_entropy": {"samples": 16, "elite": 4, "iterations": 10}})
    scenario = scenario_from_dict(raw)
    draw = np.random.default_rng(3)
    counts = np.array([draw.multinomial(1250, draw.dirichlet(0.4 * np.ones(10))) for _ in range(8)])
    world = build_world(scenario, model_bits=S_BITS, d_loc_per_class=counts)
    for name in sorted(builtin_policies()):
        if getattr(create(name), "synchronous_only", False):
            continue  # SCAFFOLD, FedNova, server optimisers: refused in these modes (test_training_algorithms)
        outcomes = []
        for _ in range(2):
            policy = create(name)
            context = PlanContext(scenario=scenario, rng=rng(scenario.seed, "policy"), seed=scenario.seed)
            plan = policy.plan(world, context)
            rows = []
            run(world, plan, VectorTrainer(8), rounds=8, seed=1, policy=policy, context=context,
                on_round=lambda r, d, s: rows.append((r, d)))
            outcomes.append([(r, tuple(d)) for r, d in rows])
        assert outcomes[0] == outcomes[1], name
        jobs = [e for _, events in outcomes[0] for e in events]
        if name == "clsd":  # it selects nobody: no job, no aggregation
            assert jobs == []
            continue
        assert len(outcomes[0]) == 8, name
        # at every job's start, at most M = 4 jobs are running (from their logged times)
        spans = [(e.download_start_s, e.upload_end_s) for e in jobs]
        for start, _ in spans:
            assert sum(a <= start < b for a, b in spans) <= 4, (name, start)
        assert all(e.staleness >= 0 for e in jobs if e.outcome == "ok"), name


def test_eval_every_s_evaluates_the_first_aggregation_past_each_multiple_of_it():
    # FedAsync arrivals at about 0.5, 1.0, 1.3, 1.5, 2.0, 2.2 s (d = 0.5, 1.3, 2.2 s plus
    # ~1 ms uploads): with S = 1 s the ones just past 1 s and 2 s are evaluated, and the last
    world, plan = tiny_world({"mode": "fedasync", "eval_every_s": 1.0}, task={"rounds": 6})
    rows, _ = play(world, plan, VectorTrainer(3), rounds=6)
    assert [round(r.end_s, 1) for r, _, _ in rows] == [0.5, 1.0, 1.3, 1.5, 2.0, 2.2]
    assert [not np.isnan(r.accuracy) for r, _, _ in rows] == [False, True, False, False, True, True]
    with pytest.raises(ScenarioError, match="aggregation.eval_every_s: give eval_every .* not both"):
        scenario_from_dict(scenario_dict(aggregation={"eval_every": 2, "eval_every_s": 1.0}), source="s.yaml")


def test_a_checkpoint_with_jobs_in_flight_from_before_jobs_were_processes_is_refused_clearly():
    from simfl.engine.asynchronous import saved_job
    from simfl.errors import RunFolderError

    old = {"job": 0, "device": 1, "base_version": 0, "repeat": 0, "dispatch_s": 0.0, "compute_start_s": 0.0,
           "compute_end_s": 1.0, "end_s": 2.0, "report_s": 2.0, "outcome": "ok", "rate_bps": 1e6, "f_hz": 1e9,
           "b_hz": 1e6, "p_w": 0.1, "cell": 0, "gain": 1e-9, "counted_j": 0.0, "counted_bits": 0.0}
    with pytest.raises(RunFolderError, match="older simfl .* start the run afresh"):
        saved_job(old)
