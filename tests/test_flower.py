"""Flower strategies in simfl's world (simfl.flower): conformance against Flower's own
code and against simfl's own policies, Flower's FedAdam rule computed by hand, the
seeded node sampling, failures as error replies, and clear refusals."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from simfl import runfolder
from simfl.errors import PolicyError, PolicyNotFound, ScenarioError
from simfl.registry import check_policies, create, name_problem
from simfl.scenario import scenario_from_dict

from conftest import scenario_dict
from test_training_algorithms import N_CLASSES, PARTS, linear, toy, trainer_for  # noqa: F401 (fixtures)

pytest.importorskip("flwr")

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"
TINY = ROOT / "tests" / "data" / "tiny.yaml"


def simfl_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simfl", *args], capture_output=True, text=True, cwd=cwd)


def configured(reference: str, flower: dict | None = None, **changes):
    policy = create(reference)
    policy.configure(scenario_from_dict(scenario_dict(flower=flower or {}, **changes)))
    return policy


def state(round_index: int, n_devices: int, available=None, selected=None) -> SimpleNamespace:
    """What the Flower adapter's hooks read of a RoundState."""
    available = np.ones(n_devices, bool) if available is None else np.asarray(available)
    return SimpleNamespace(round=round_index, n_devices=n_devices, available=available,
                           selected=np.flatnonzero(available) if selected is None else selected, version=round_index)


def flower_round(policy, trainer, r: int, n: int):
    chosen = policy.select(state(r, n), SimpleNamespace(server=trainer))
    updates = trainer.local_updates(r, chosen, r)
    return chosen, updates, policy.aggregate(updates, trainer, state(r, n, selected=chosen))


# ------------------------------------------------------------------ conformance on the quickstart


@pytest.fixture(scope="module")
def quickstart_runs(tmp_path_factory):
    """3 rounds of the quickstart: simfl's tfl, fedavgm and fedprox beside Flower's FedAvg,
    FedAvgM and FedProx at equal settings, and Flower's robust aggregators."""
    scenario = yaml.safe_load(QUICKSTART.read_text())
    scenario["task"]["rounds"] = 3
    scenario["flower"] = {"FedAvgM": {"server_momentum": 0.9}, "FedProx": {"proximal_mu": 0.01},
                          "FedTrimmedAvg": {"beta": 0.1}}
    scenario["policy_settings"] = {"fedavgm": {"momentum": 0.9, "server_lr": 1.0}, "fedprox": {"mu": 0.01}}
    folder = tmp_path_factory.mktemp("quickstart")
    path = folder / "quickstart.yaml"
    path.write_text(yaml.safe_dump(scenario))
    policies = "tfl,flower:FedAvg,fedavgm,flower:FedAvgM,fedprox,flower:FedProx,flower:FedMedian," \
               "flower:FedTrimmedAvg,flower:Krum"
    result = simfl_cli("compare", str(path), "--policies", policies, "--out", str(folder / "run"))
    assert result.returncode == 0, result.stderr
    return folder / "run"


def final_model(run: Path, policy: str) -> dict[str, torch.Tensor]:
    saved = runfolder.load_checkpoint(run / "checkpoints" / f"{policy}-round2.pt")
    return saved["simfl_global_model"]


@pytest.mark.parametrize("ours, flowers", [("tfl", "flower.FedAvg"), ("fedavgm", "flower.FedAvgM"),
                                           ("fedprox", "flower.FedProx")])
def test_flower_strategies_give_simfls_global_model_and_energy(quickstart_runs, ours, flowers):
    # the same model within float tolerance: one round's aggregates differ by ~5e-8 relative
    # (numpy's and torch's summation orders); later rounds' local SGD amplifies that to
    # ~3e-3 after 3 rounds (measured for FedAvg on the quickstart)
    a, b = final_model(quickstart_runs, ours), final_model(quickstart_runs, flowers)
    for name in a:
        assert torch.linalg.vector_norm(a[name] - b[name]) <= 1e-2 * torch.linalg.vector_norm(a[name]), name
    rounds = pd.read_csv(quickstart_runs / "rounds.csv")
    mine, theirs = rounds[rounds.policy == ours], rounds[rounds.policy == flowers]
    assert mine.energy_j.tolist() == theirs.energy_j.tolist()  # the same devices, the same resources
    assert mine.uplink_bits.tolist() == theirs.uplink_bits.tolist()
    assert np.allclose(mine.accuracy, theirs.accuracy, atol=0.01)


def test_flowers_robust_aggregators_run_and_learn_on_the_quickstart(quickstart_runs):
    rounds = pd.read_csv(quickstart_runs / "rounds.csv")
    for policy in ("flower.FedMedian", "flower.FedTrimmedAvg", "flower.Krum"):
        mine = rounds[rounds.policy == policy]
        assert len(mine) == 3 and (mine.participants == 10).all()
        assert mine.accuracy.iloc[-1] > 0.25  # 10 classes: chance is 0.10; tfl reaches ~0.41
        assert mine.loss.iloc[-1] < mine.loss.iloc[0]


def test_the_aggregated_metric_records_are_written_per_round(quickstart_runs):
    metrics = pd.read_csv(quickstart_runs / "metrics.csv")
    fedavg = metrics[metrics.policy == "flower.FedAvg"]
    assert set(fedavg.metric) == {"train_loss", "eval_loss", "eval_acc"}
    assert sorted(fedavg["round"].unique()) == [0, 1, 2]
    # the local evaluation of a model that learns improves over the rounds
    acc = fedavg[fedavg.metric == "eval_acc"].set_index("round").value
    assert acc[2] > acc[0]


# ------------------------------------------------------------------ FedAdam by hand


def test_flowers_fedadam_follows_its_own_rule_computed_by_hand(linear, toy):
    eta, eta_l, b1, b2, tau = 0.05, 0.1, 0.9, 0.99, 1e-3
    policy = configured("flower:FedAdam", {"FedAdam": {"eta": eta, "beta_1": b1, "beta_2": b2, "tau": tau,
                                                       "fraction_evaluate": 0.0}})
    trainer = trainer_for(toy, PARTS, policy)
    x = [p.numpy().astype(np.float64) for p in trainer.global_params()]
    m = [np.zeros_like(v) for v in x]
    v = [np.zeros_like(w) for w in x]
    for r in range(3):
        chosen, updates, new = flower_round(policy, trainer, r, len(PARTS))
        assert chosen.tolist() == [0, 1, 2]  # fraction_train 1.0: every available node
        weights = np.array([u.samples for u in updates], float)
        average = [sum(w * u.params[i].numpy() for w, u in zip(weights, updates)) / weights.sum()
                   for i in range(len(x))]
        delta = [a - xi for a, xi in zip(average, x)]
        m = [b1 * mi + (1 - b1) * d for mi, d in zip(m, delta)]
        v = [b2 * vi + (1 - b2) * d ** 2 for vi, d in zip(v, delta)]
        server_round = r + 1
        eta_norm = eta * np.sqrt(1 - b2 ** (server_round + 1.0)) / (1 - b1 ** (server_round + 1.0))
        x = [xi + eta_norm * mi / (np.sqrt(vi) + tau) for xi, mi, vi in zip(x, m, v)]
        for got, want in zip(new, x):
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-6)
        trainer.set_global(new)
        x = [p.numpy().astype(np.float64) for p in new]  # the next round starts from what was set


def test_a_strategys_state_round_trips_through_a_checkpoint(linear, toy):
    policy = configured("flower:FedAdam", {"FedAdam": {"eta": 0.05, "beta_1": 0.9, "beta_2": 0.99,
                                                       "fraction_evaluate": 0.0}})
    trainer = trainer_for(toy, PARTS, policy)
    _, _, new = flower_round(policy, trainer, 0, 3)
    trainer.set_global(new)
    saved = policy.tensor_state()
    again = configured("flower:FedAdam", {"FedAdam": {"eta": 0.05, "beta_1": 0.9, "beta_2": 0.99,
                                                      "fraction_evaluate": 0.0}})
    again.load_tensor_state(saved)
    for key in ("m_t", "v_t"):
        for name, value in getattr(policy.strategy, key).items():
            assert np.array_equal(getattr(again.strategy, key)[name], value)


# ------------------------------------------------------------------ sampling, settings, failures


def test_node_sampling_is_seeded_per_round_and_leaves_pythons_random_alone(linear, toy):
    flower = {"FedAvg": {"fraction_train": 0.5, "min_train_nodes": 2, "fraction_evaluate": 0.0}}
    policy = configured("flower:FedAvg", flower)
    trainer = trainer_for(toy, [np.arange(i * 6, i * 6 + 6) for i in range(10)], policy)
    random.seed(123)
    expected_next = random.random()
    random.seed(123)
    picks = [policy.select(state(r, 10), SimpleNamespace(server=trainer)).tolist() for r in range(6)]
    assert random.random() == expected_next  # the caller's random stream is restored
    assert all(len(p) == 5 for p in picks)  # int(10 * 0.5) nodes
    assert len({tuple(p) for p in picks}) > 1  # each round its own draw
    again = configured("flower:FedAvg", flower)
    assert [again.select(state(r, 10), SimpleNamespace(server=trainer)).tolist() for r in range(6)] == picks
    # only available devices are offered as nodes
    available = np.array([True, False] * 5)
    assert set(policy.select(state(0, 10, available), SimpleNamespace(server=trainer)).tolist()) <= {0, 2, 4, 6, 8}


def test_too_few_nodes_selects_nobody_and_waits_instead_of_sleeping(linear, toy):
    policy = configured("flower:FedAvg", {"FedAvg": {"min_available_nodes": 3}})
    trainer = trainer_for(toy, PARTS, policy)
    chosen = policy.select(state(0, 3, [True, True, False]), SimpleNamespace(server=trainer))
    assert chosen.size == 0 and policy.waits_for_devices


def test_the_config_record_sets_learning_rate_epochs_and_proximal_term(linear, toy):
    flower = {"FedAvg": {"train_config": {"lr": 0.3, "local-epochs": 2}, "fraction_evaluate": 0.0}}
    policy = configured("flower:FedAvg", flower)
    trainer = trainer_for(toy, PARTS, policy, lr=0.1, epochs=1)
    chosen = policy.select(state(0, 3), SimpleNamespace(server=trainer))
    rule = policy.local_rule(int(chosen[0]))
    assert (rule.learning_rate, rule.local_epochs, rule.mu) == (0.3, 2, 0.0)
    # the same update as plain SGD with lr 0.3 and 2 epochs (the task's settings replaced)
    flowered = trainer.local_updates(0, chosen, 0)
    plain = trainer_for(toy, PARTS, None, lr=0.3, epochs=2).local_updates(0, chosen, 0)
    for a, b in zip(flowered, plain):
        for x, y in zip(a.params, b.params):
            assert torch.equal(x, y)
    fedprox = configured("flower:FedProx", {"FedProx": {"proximal_mu": 0.5, "fraction_evaluate": 0.0}})
    fedprox.select(state(0, 3), SimpleNamespace(server=trainer))
    assert fedprox.local_rule(0).mu == 0.5 and fedprox.local_rule(0).learning_rate is None


def test_more_local_epochs_cost_proportionally_more_computation(tmp_path):
    """Eq. (5): E_cmp = tau eps omega D f^2, so 2 local epochs at the same f (f_max, the
    equal-share data side) double each device's computation energy and (eq. 6) time; T_max
    is generous, so nobody is cut."""
    scenario = yaml.safe_load(TINY.read_text())
    scenario["optimisation"]["t_max_s"] = 100
    scenario["flower"] = {"FedAvg": {"train_config": {"local-epochs": 2}, "fraction_evaluate": 0.0}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(scenario))
    result = simfl_cli("compare", str(path), "--policies", "equal-share,equal-share+flower:FedAvg", "--out",
                       str(tmp_path / "run"), "--set", "task.rounds=1")
    assert result.returncode == 0, result.stderr
    events = pd.read_csv(tmp_path / "run" / "events.csv").set_index(["policy", "device"])
    once, twice = events.loc["equal-share"], events.loc["equal-share+flower.FedAvg"]
    assert (twice.outcome == "ok").all()
    np.testing.assert_allclose(twice.e_cmp_j, 2 * once.e_cmp_j, rtol=1e-12)
    np.testing.assert_allclose(twice.compute_end_s - twice.compute_start_s,
                               2 * (once.compute_end_s - once.compute_start_s), rtol=1e-12)
    np.testing.assert_allclose(twice.e_com_j, once.e_com_j, rtol=1e-12)


STRATEGY_FILE = '''
from flwr.app import MetricRecord
from flwr.serverapp.strategy import FedAvg


class CountingFedAvg(FedAvg):
    """FedAvg that reports how many replies were results and how many errors."""

    def aggregate_train(self, server_round, replies):
        replies = list(replies)
        arrays, metrics = super().aggregate_train(server_round, replies)
        errors = sum(r.has_error() for r in replies)
        return arrays, MetricRecord({"errors": errors, "results": len(replies) - errors})


class Broken(FedAvg):
    def aggregate_train(self, server_round, replies):
        raise ValueError("no aggregation today")
'''


def test_stragglers_reach_the_strategy_as_error_replies(tmp_path):
    (tmp_path / "mine.py").write_text(STRATEGY_FILE)
    scenario = yaml.safe_load(TINY.read_text())
    # two local epochs where TFL's plan fits one into T_max: every device misses the deadline
    scenario["flower"] = {"CountingFedAvg": {"fraction_evaluate": 0.0, "train_config": {"local-epochs": 2}}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(scenario))
    result = simfl_cli("run", "tiny.yaml", "--policy", "flower:mine.py:CountingFedAvg", "--out", "run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rounds = pd.read_csv(tmp_path / "run" / "rounds.csv")
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv").pivot(index="round", columns="metric", values="value")
    assert (metrics["train_errors"] == rounds.selected - rounds.participants).all()
    assert (metrics["train_results"] == rounds.participants).all()
    assert (rounds.selected - rounds.participants).sum() > 0  # the test saw stragglers


def test_a_strategy_that_raises_is_named_with_its_file_and_method(tmp_path):
    (tmp_path / "mine.py").write_text(STRATEGY_FILE)
    result = simfl_cli("run", str(TINY), "--policy", f"flower:{tmp_path / 'mine.py'}:Broken", "--out",
                       str(tmp_path / "run"))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "aggregate_train() raised ValueError: no aggregation today" in result.stderr
    line = STRATEGY_FILE.splitlines().index('        raise ValueError("no aggregation today")') + 1
    assert f"{tmp_path / 'mine.py'} line {line}" in result.stderr


# ------------------------------------------------------------------ what is refused, clearly


def test_references_are_checked_without_running_a_strategy(tmp_path):
    assert name_problem("flower:FedAdam") is None
    assert name_problem("fimi+flower:FedAdam") is None
    assert "Flower has no strategy 'FedAdma'" in name_problem("flower:FedAdma")
    assert "no file" in name_problem(f"flower:{tmp_path / 'missing.py'}:X")
    (tmp_path / "plain.py").write_text("class NotAStrategy: pass\n")
    with pytest.raises(PolicyNotFound, match="no subclass of Flower's"):
        create(f"flower:{tmp_path / 'plain.py'}:NotAStrategy")


def test_unknown_strategy_arguments_and_bad_values_are_named():
    with pytest.raises(ScenarioError, match=r"flower\.FedAdam\.etaa: FedAdam takes no argument 'etaa'"):
        configured("flower:FedAdam", {"FedAdam": {"etaa": 0.1}})
    with pytest.raises(ScenarioError, match=r"flower\.FedAdam\.eta: a strategy argument is a number, a string"):
        scenario_from_dict(scenario_dict(flower={"FedAdam": {"eta": [1, 2]}}))


def test_k_of_n_asynchronous_modes_and_too_few_devices_are_refused():
    with pytest.raises(ScenarioError, match="participants_per_round.*fraction_train"):
        configured("flower:FedAvg", task={"participants_per_round": 2})
    with pytest.raises(ScenarioError, match="synchronous rounds only"):
        configured("flower:FedAvg", aggregation={"mode": "fedbuff", "buffer_size": 2, "max_concurrency": 3})
    with pytest.raises(ScenarioError, match="min_available_nodes: the strategy waits for 9 nodes"):
        configured("flower:FedAvg", {"FedAvg": {"min_available_nodes": 9}})


def test_a_bad_config_value_from_the_strategy_is_named(linear, toy):
    policy = configured("flower:FedAvg", {"FedAvg": {"train_config": {"local-epochs": 0}}})
    trainer = trainer_for(toy, PARTS, policy)
    with pytest.raises(PolicyError, match=r"configure_train\(\) set config\['local-epochs'\] = 0"):
        policy.select(state(0, 3), SimpleNamespace(server=trainer))


def test_fimi_plans_the_data_side_of_a_flower_strategy():
    fimi_flower = create("fimi+flower:FedAdam")
    assert fimi_flower.name == "fimi+flower.FedAdam" and fimi_flower.waits_for_devices
    check_policies(scenario_from_dict(scenario_dict(policies=["fimi+flower:FedAdam", "flower:FedAvg"])))
