"""Training-side algorithms (FedProx, SCAFFOLD, FedNova, FedAvgM, FedAdam, FedYogi) against
facts computed independently: hand-derived updates of a tiny linear model, the identities
that tie each method to FedAvg, the uplink payload, and the scenario's settings."""

from __future__ import annotations

import re
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from simfl.aggregation import Aggregation
from simfl.compose import Composed
from simfl.errors import PolicyNotFound, ScenarioError
from simfl.learning.data import ImageDataset
from simfl.learning.local_rule import LocalRule, local_steps
from simfl.learning.models import MODELS, ModelSpec
from simfl.learning.protocol import LocalUpdate
from simfl.learning.trainer import TorchTrainer
from simfl.policy import Policy
from simfl.registry import check_policies, create, name_problem, resolve
from simfl.scenario import Task, scenario_from_dict
from simfl.training_side import uplink_world

from conftest import scenario_dict

NEW_POLICIES = ["fedprox", "scaffold", "fednova", "fedavgm", "fedadam", "fedyogi"]
N_CLASSES = 3


@pytest.fixture
def linear(monkeypatch):
    """A linear softmax classifier on 2x2 images, registered as task.model 'linear-probe'."""
    def build(channels: int, n_classes: int, side: int) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(channels * side * side, n_classes))

    monkeypatch.setitem(MODELS, "linear-probe", ModelSpec(build, 1))


@pytest.fixture(scope="module")
def toy() -> ImageDataset:
    draw = np.random.default_rng(4)
    labels = draw.integers(0, N_CLASSES, 90)
    # class-dependent brightness per pixel, so the gradients are far from zero
    images = (draw.random((90, 1, 2, 2)) * 90 + labels[:, None, None, None] * 60).astype(np.uint8)
    return ImageDataset("toy", images[:60], labels[:60], images[60:], labels[60:], ("a", "b", "c"))


def trainer_for(toy: ImageDataset, parts: list[np.ndarray], policy: Policy | None = None, *, batch: int = 64,
                epochs: int = 1, lr: float = 0.1, workers: int = 1) -> TorchTrainer:
    # float32: the hand computations are float32 arithmetic (auto is bfloat16 on CPUs with bf16 units)
    task = Task(model="linear-probe", learning_rate=lr, batch_size=batch, local_epochs=epochs, precision="float32")
    return TorchTrainer(task, toy, parts, seed=3, workers=workers,
                        local_rule=None if policy is None else policy.local_rule)


def round_state(n_devices: int, version: int = 0) -> SimpleNamespace:
    """What the aggregate hooks read of a RoundState."""
    return SimpleNamespace(version=version, aggregation=Aggregation(), n_devices=n_devices)


def play(trainer: TorchTrainer, policy: Policy, rounds: int, devices: list[int]) -> list[torch.Tensor]:
    """`rounds` synchronous rounds of `devices` with `policy`'s aggregation; the global model."""
    for r in range(rounds):
        new = policy.aggregate(trainer.local_updates(r, np.array(devices), r), trainer, round_state(trainer.n_devices, r))
        if new is not None:
            trainer.set_global(new)
    return [g.clone() for g in trainer.global_params()]


def configured(name: str, **settings: float) -> Policy:
    policy = create(name)
    policy.configure(scenario_from_dict(scenario_dict(policy_settings={name: settings})))
    return policy


PARTS = [np.arange(0, 20), np.arange(20, 40), np.arange(40, 60)]


# ---------------------------------------------------------------------- FedProx


def test_fedprox_with_mu_zero_is_fedavg_exactly(linear, toy):
    plain = play(trainer_for(toy, PARTS, batch=8, epochs=2), create("tfl"), 3, [0, 1, 2])
    prox = configured("fedprox", mu=0.0)
    assert all(torch.equal(a, b) for a, b in zip(play(trainer_for(toy, PARTS, prox, batch=8, epochs=2), prox, 3,
                                                       [0, 1, 2]), plain))


def test_fedprox_keeps_each_local_model_nearer_the_global_one_as_mu_grows(linear, toy):
    def drift(mu: float) -> float:
        policy = configured("fedprox", mu=mu)
        trainer = trainer_for(toy, PARTS, policy, batch=4, epochs=5, lr=0.3)
        (update,) = trainer.local_updates(0, np.array([0]))
        return float(sum(((p - b) ** 2).sum() for p, b in zip(update.params, trainer.global_params())))

    # lr mu < 1 (a stable pull towards w_t)
    assert drift(0.0) > drift(0.5) > drift(2.0) > 0


# ---------------------------------------------------------------------- SCAFFOLD


def softmax_gradient(w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradient of the mean cross-entropy of a linear softmax model, by hand."""
    logits = x @ w.T + b
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    return p.T @ x / len(y), p.mean(axis=0)


def hand_scaffold_round(trainer: TorchTrainer, w, b, c, c_i, steps: int, lr: float):
    """One SCAFFOLD round of full-batch local GD in float64: the devices' models and new variates."""
    models, new_ci = [], []
    for i in range(trainer.n_devices):
        x_i, y_i = trainer.device_data(i)
        x = x_i.reshape(len(y_i), -1).double().numpy()
        y = y_i.numpy()
        wi, bi = w.copy(), b.copy()
        for _ in range(steps):
            gw, gb = softmax_gradient(wi, bi, x, y)
            wi, bi = wi - lr * (gw + c[0] - c_i[i][0]), bi - lr * (gb + c[1] - c_i[i][1])
        models.append((wi, bi))
        # option II: c_i+ = c_i - c + (x - y_i) / (K lr)
        new_ci.append((c_i[i][0] - c[0] + (w - wi) / (steps * lr), c_i[i][1] - c[1] + (b - bi) / (steps * lr)))
    return models, new_ci


def test_scaffold_control_variates_and_models_match_a_hand_computation_over_two_rounds(linear, toy):
    epochs, lr = 3, 0.2  # full batches: K = 3 local steps, the same gradient whatever the shuffle
    policy = create("scaffold")
    trainer = trainer_for(toy, PARTS, policy, batch=64, epochs=epochs, lr=lr)
    w, b = (t.double().numpy().copy() for t in trainer.global_params())
    zero = (np.zeros_like(w), np.zeros_like(b))
    c, c_i = zero, [zero] * 3
    for r in range(2):
        models, new_ci = hand_scaffold_round(trainer, w, b, c, c_i, epochs, lr)
        # server: x <- FedAvg (equal samples: the mean); c <- c + (1/N) sum (c_i+ - c_i)
        w, b = (np.mean([m[k] for m in models], axis=0) for k in (0, 1))
        c = tuple(c[k] + sum(new_ci[i][k] - c_i[i][k] for i in range(3)) / 3 for k in (0, 1))
        c_i = new_ci
        trainer.set_global(policy.aggregate(trainer.local_updates(r, np.array([0, 1, 2]), r), trainer, round_state(3, r)))
        for k in (0, 1):
            assert policy.server_variate[k].double().numpy() == pytest.approx(c[k], abs=2e-5)
            for i in range(3):
                assert policy.client_variates[i][k].double().numpy() == pytest.approx(c_i[i][k], abs=2e-5)
        assert trainer.global_params()[0].double().numpy() == pytest.approx(w, abs=1e-5)
        assert trainer.global_params()[1].double().numpy() == pytest.approx(b, abs=1e-5)
    assert np.abs(c[0]).max() > 1e-3  # the variates are not trivially zero


def test_scaffold_trains_bit_for_bit_the_same_in_worker_processes(linear, toy):
    results = []
    for workers in (1, 2):
        policy = create("scaffold")
        trainer = trainer_for(toy, PARTS, policy, batch=8, epochs=2, workers=workers)
        try:
            play(trainer, policy, 2, [0, 1, 2])
            updates = trainer.local_updates(2, np.array([0, 2]), 2)
        finally:
            trainer.close()
        results.append((updates, policy))
    (one, p1), (two, p2) = results
    for a, b in zip(one, two):
        assert all(torch.equal(x, y) for x, y in zip(a.params, b.params))
        assert all(torch.equal(x, y) for x, y in zip(a.extras["control_delta"], b.extras["control_delta"]))
    assert all(torch.equal(x, y) for x, y in zip(p1.server_variate, p2.server_variate))


def test_the_identity_rule_trains_exactly_as_plain_sgd(linear, toy):
    class Identity(Policy):
        name = "identity-rule"

        def plan(self, world, context):
            raise NotImplementedError

        def local_rule(self, client):
            return LocalRule()

    plain = trainer_for(toy, PARTS, batch=8, epochs=2).local_updates(0, np.array([0, 1]))
    ruled = trainer_for(toy, PARTS, Identity(), batch=8, epochs=2).local_updates(0, np.array([0, 1]))
    for a, b in zip(plain, ruled):
        assert all(torch.equal(x, y) for x, y in zip(a.params, b.params)) and a.loss == b.loss
        assert a.extras == {} and b.extras == {}


# ---------------------------------------------------------------------- FedNova


def test_fednova_with_equal_local_steps_is_fedavg_bit_for_bit(linear, toy):
    plain = play(trainer_for(toy, PARTS, batch=8, epochs=2), create("tfl"), 2, [0, 1, 2])
    nova = create("fednova")
    trainer = trainer_for(toy, PARTS, nova, batch=8, epochs=2)
    assert all(torch.equal(a, b) for a, b in zip(play(trainer, nova, 2, [0, 1, 2]), plain))
    assert [u.extras["local_steps"] for u in trainer.local_updates(2, np.array([0, 1]))] == [6, 6]


def test_fednova_normalises_unequal_local_steps_as_the_paper_does(linear, toy):
    parts = [np.arange(0, 10), np.arange(10, 40)]  # 1 and 3 batches of 10 per epoch
    nova = create("fednova")
    trainer = trainer_for(toy, parts, nova, batch=10, epochs=2)
    x = [g.double().numpy().copy() for g in trainer.global_params()]
    updates = trainer.local_updates(0, np.array([0, 1]))
    assert [u.extras["local_steps"] for u in updates] == [local_steps(10, 10, 2), local_steps(30, 10, 2)] == [2, 6]
    p, tau = np.array([10, 30]) / 40, np.array([2, 6])
    tau_eff = p @ tau
    # x - tau_eff sum_i p_i (x - y_i) / tau_i
    expected = [x[k] - tau_eff * sum(p[i] * (x[k] - updates[i].params[k].double().numpy()) / tau[i] for i in range(2))
                for k in range(2)]
    new = nova.aggregate(updates, trainer, round_state(2))
    for k in range(2):
        assert new[k].double().numpy() == pytest.approx(expected[k], abs=1e-6)
    fedavg = trainer.fedavg(updates)
    assert not np.allclose(new[0].numpy(), fedavg[0].numpy(), atol=1e-6)  # not FedAvg when steps differ


# ---------------------------------------------------------------------- server optimisers


def fixed_updates(trainer: TorchTrainer, seed: int) -> list[LocalUpdate]:
    """Two updates with given params (samples 1 and 3) from the current global model."""
    draw = np.random.default_rng(seed)
    base = trainer.global_params()
    return [LocalUpdate(client=i, base_version=0, samples=n, base=base,
                        params=[g + torch.from_numpy(draw.normal(0, 0.1, g.shape).astype(np.float32)) for g in base])
            for i, n in enumerate((1, 3))]


def pseudo_gradient(updates: list[LocalUpdate]) -> list[np.ndarray]:
    n = np.array([u.samples for u in updates], dtype=float)
    return [sum(n[i] * (updates[i].params[k].double().numpy() - updates[i].base[k].double().numpy())
                for i in range(len(updates))) / n.sum() for k in range(2)]


@pytest.mark.parametrize("name", ["fedadam", "fedyogi"])
def test_adaptive_server_steps_equal_the_update_rule_computed_by_hand(linear, toy, name):
    eta, b1, b2, tau = 0.05, 0.8, 0.9, 0.01
    policy = configured(name, server_lr=eta, beta1=b1, beta2=b2, tau=tau)
    trainer = trainer_for(toy, PARTS)
    x = [g.double().numpy().copy() for g in trainer.global_params()]
    m = [np.zeros_like(a) for a in x]
    v = [np.full_like(a, tau ** 2) for a in x]
    for r in range(3):
        updates = fixed_updates(trainer, r)
        delta = pseudo_gradient(updates)
        for k in range(2):
            m[k] = b1 * m[k] + (1 - b1) * delta[k]
            if name == "fedadam":
                v[k] = b2 * v[k] + (1 - b2) * delta[k] ** 2
            else:  # Yogi
                v[k] = v[k] - (1 - b2) * delta[k] ** 2 * np.sign(v[k] - delta[k] ** 2)
            x[k] = x[k] + eta * m[k] / (np.sqrt(v[k]) + tau)
        trainer.set_global(policy.aggregate(updates, trainer, round_state(3, r)))
        for k in range(2):
            assert trainer.global_params()[k].double().numpy() == pytest.approx(x[k], rel=1e-5, abs=1e-6)


def test_fedadam_and_fedyogi_differ_once_the_second_moment_is_in_play(linear, toy):
    finals = []
    for name in ("fedadam", "fedyogi"):
        policy, trainer = create(name), trainer_for(toy, PARTS)
        for r in range(3):
            trainer.set_global(policy.aggregate(fixed_updates(trainer, r), trainer, round_state(3, r)))
        finals.append(trainer.global_params()[0].clone())
    assert not torch.equal(*finals)


def test_fedavgm_with_momentum_zero_is_fedavg_and_with_momentum_follows_the_velocity(linear, toy):
    plain = play(trainer_for(toy, PARTS, batch=8), create("tfl"), 3, [0, 1, 2])
    zero = configured("fedavgm", momentum=0.0)
    assert all(torch.equal(a, b) for a, b in zip(play(trainer_for(toy, PARTS, batch=8), zero, 3, [0, 1, 2]), plain))

    eta, beta = 0.7, 0.5
    policy, trainer = configured("fedavgm", server_lr=eta, momentum=beta), trainer_for(toy, PARTS)
    x = [g.double().numpy().copy() for g in trainer.global_params()]
    velocity = [np.zeros_like(a) for a in x]
    for r in range(3):
        updates = fixed_updates(trainer, 10 + r)
        delta = pseudo_gradient(updates)
        for k in range(2):
            velocity[k] = beta * velocity[k] + delta[k]
            x[k] = x[k] + eta * velocity[k]
        trainer.set_global(policy.aggregate(updates, trainer, round_state(3, r)))
        for k in range(2):
            assert trainer.global_params()[k].double().numpy() == pytest.approx(x[k], abs=1e-6)


@pytest.mark.parametrize("name", ["scaffold", "fedavgm", "fedadam", "fedyogi", "fimi+scaffold"])
def test_tensor_state_round_trips_through_a_checkpoint_bit_for_bit(linear, toy, tmp_path, name):
    policy = create(name)
    trainer = trainer_for(toy, PARTS, policy, batch=8)
    play(trainer, policy, 2, [0, 1, 2])
    torch.save(policy.tensor_state(), tmp_path / "state.pt")
    again = create(name)
    again.load_tensor_state(torch.load(tmp_path / "state.pt", weights_only=True))
    updates = trainer.local_updates(2, np.array([0, 1]), 2)
    # the restored policy aggregates the next round exactly as the original does, and
    # ends it in the same state; without its state it would not
    fresh = create(name)
    models = [p.aggregate(updates, trainer, round_state(3, 2)) for p in (policy, again, fresh)]
    states = [flat(p.tensor_state()) for p in (policy, again, fresh)]
    assert all(torch.equal(x, y) for x, y in zip(models[0], models[1]))
    assert len(states[0]) == len(states[1]) and all(torch.equal(x, y) for x, y in zip(states[0], states[1]))
    assert len(states[0]) != len(states[2]) or not all(torch.equal(x, y) for x, y in zip(states[0], states[2]))


def flat(state) -> list[torch.Tensor]:
    """Every tensor of a nested tensor state, in key order."""
    if isinstance(state, dict):
        return [t for key in sorted(state) for t in flat(state[key])]
    if isinstance(state, list):
        return [t for item in state for t in flat(item)]
    return [state]


# ---------------------------------------------------------------------- the uplink


@pytest.mark.parametrize("name, sent", [("tfl", 1), ("fedprox", 1), ("scaffold", 2), ("fednova", 1), ("fedavgm", 1),
                                        ("fedadam", 1), ("fedyogi", 1), ("fimi+scaffold", 2), ("fimi+fedprox", 1)])
def test_the_uplink_payload_is_the_model_times_what_the_method_sends(name, sent):
    from simfl.world import build_world

    world = build_world(scenario_from_dict(scenario_dict()), model_bits=32 * 1000)
    assert uplink_world(world, create(name)).constants.model_bits == 32 * 1000 * sent
    assert (uplink_world(world, create(name)) is world) == (sent == 1)


def test_fimis_resource_plan_is_made_for_scaffolds_doubled_payload():
    from simfl.experiment import Setup, make_plan
    from simfl.world import build_world

    scenario = scenario_from_dict(scenario_dict(
        devices={"count": 6}, task={"samples_per_device": 1250, "rounds": 200},
        optimisation={"t_max_s": 60, "err_max": 0.2, "dgen_max": 5000, "zeta": 68,
                      "cross_entropy": {"samples": 16, "elite": 4, "iterations": 10}}))
    world = build_world(scenario, model_bits=32 * 400_000)
    setup = Setup(scenario, None, (), world, np.zeros(0, np.int64))  # type: ignore[arg-type]
    combined = make_plan(setup, create("fimi+scaffold"))
    doubled = make_plan(replace(setup, world=uplink_world(world, create("scaffold"))), create("fimi"))
    alone = make_plan(setup, create("fimi"))
    for field in ("d_gen", "f_hz", "b_hz", "p_w"):
        assert np.array_equal(getattr(combined, field), getattr(doubled, field)), field
    assert not np.array_equal(combined.p_w, alone.p_w)  # twice the bits in the same deadline costs more power


# ---------------------------------------------------------------------- settings and combinations


def test_settings_are_read_from_the_scenario_under_the_policys_name():
    policy = configured("fedadam", server_lr=0.3, tau=0.02)
    assert (policy.server_lr, policy.beta1, policy.beta2, policy.tau) == (0.3, 0.9, 0.99, 0.02)
    assert create("fedprox").mu == 0.01  # the default without a scenario
    combined = create("fimi+fedprox")
    combined.configure(scenario_from_dict(scenario_dict(policy_settings={"fedprox": {"mu": 0.5}})))
    assert isinstance(combined, Composed) and combined.training.mu == 0.5


def test_checked_settings_are_complete_with_each_policys_defaults():
    # what a run records in its folder's manifest: every declared setting, as before the
    # checks against the policy classes moved above the scenario layer
    given = scenario_from_dict(scenario_dict(policy_settings={"fedadam": {"server_lr": 0.3}, "fedprox": {}}))
    assert given.policy_settings == {"fedadam": {"server_lr": 0.3}, "fedprox": {}}
    assert check_policies(given).policy_settings == {"fedadam": {"server_lr": 0.3, "beta1": 0.9, "beta2": 0.99,
                                                                 "tau": 1e-3}, "fedprox": {"mu": 0.01}}


def test_a_policy_in_another_mode_reads_its_own_policys_settings():
    # fedprox@fedbuff is fedprox run in FedBuff: its mu is fedprox's (it was the default 0.01)
    scenario = scenario_from_dict(scenario_dict(policy_settings={"fedprox": {"mu": 0.5}}))
    for name in ("fedprox@fedbuff", "fedprox@sync", "fimi+fedprox@fedbuff"):
        policy = create(name)
        policy.configure(scenario)
        assert getattr(policy, "training", policy).mu == 0.5, name


@pytest.mark.parametrize("settings, fragments", [
    ({"fedprox": {"mu": -1}}, ["policy_settings.fedprox.mu: must be >= 0, got -1"]),
    ({"fedadam": {"beta1": 1.0}}, ["policy_settings.fedadam.beta1: must be < 1, got 1"]),
    ({"fedavgm": {"moment": 0.5}}, ["policy_settings.fedavgm.moment: unknown field; allowed: momentum, server_lr"]),
    ({"fedprx": {"mu": 1}}, ["policy_settings.fedprx: unknown policy 'fedprx'; did you mean 'fedprox'?"]),
    ({"fimi+fedprox": {"mu": 1}}, ["policy_settings.fimi+fedprox: settings go under", "each part's name"]),
    ({"fimi": {"mu": 1}}, ["policy_settings.fimi: policy 'fimi' takes no settings"]),
    ({"scaffold": 3}, ["policy_settings.scaffold: must be a mapping, got int 3"]),
    ({"fedprox": {"mu": "much"}}, ["policy_settings.fedprox.mu: must be a number, got str 'much'"]),
    ({"fedprox@fedbuff": {"mu": 1}}, ["policy_settings.fedprox@fedbuff: settings go under", "under fedprox)"]),
])
def test_bad_settings_are_one_clear_message_naming_file_field_and_what_is_allowed(settings, fragments):
    with pytest.raises(ScenarioError) as info:  # what every command does: load, then check the policies
        check_policies(scenario_from_dict(scenario_dict(policy_settings=settings), "my.yaml"))
    message = str(info.value)
    assert message.startswith("my.yaml: policy_settings.")
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("name", ["scaffold", "fednova", "fedavgm", "fedadam", "fedyogi", "fimi+scaffold"])
def test_methods_of_synchronous_rounds_refuse_an_asynchronous_scenario_up_front(name):
    scenario = scenario_from_dict(scenario_dict(aggregation={"mode": "fedbuff", "buffer_size": 2}), "a.yaml")
    with pytest.raises(ScenarioError, match=rf"a.yaml: aggregation.mode: policy '{name.split('+')[-1]}' aggregates "
                                            "synchronous rounds only"):
        create(name).configure(scenario)
    create("fedprox").configure(scenario)  # FedProx aggregates by the mode's rule
    with pytest.raises(ScenarioError, match=rf"policy '{re.escape(name)}@fedasync': .* synchronous rounds only, not in fedasync"):
        create(f"{name}@fedasync").configure(scenario_from_dict(scenario_dict(), "s.yaml"))  # a mode in the name


@pytest.mark.parametrize("reference, fragment", [
    ("fimi+tfl", "'tfl' has no training side to lend"),
    ("fedprox+scaffold", "'fedprox' is itself a training-side algorithm"),
    ("sst+scaffold", "'sst' changes training too (its own aggregate())"),
    ("power-of-choice+fedadam", "'power-of-choice' changes training too (its own aggregate())"),
    ("fimi+scaffold+fedprox", "two policy names joined by one '+'"),
    ("fimi+fedprx", "unknown policy 'fedprx'; did you mean 'fedprox'?"),
])
def test_combinations_that_cannot_work_are_refused_with_the_reason(reference, fragment):
    with pytest.raises(PolicyNotFound) as info:
        resolve(reference)
    assert fragment in str(info.value)


def test_combination_names_are_validated_in_scenarios_without_running_policy_code():
    assert name_problem("fimi+scaffold") is None and name_problem("hdc+fedadam") is None
    assert "did you mean 'scaffold'" in name_problem("fimi+scafold")
    scenario = scenario_from_dict(scenario_dict(policies=["tfl", "fimi+scaffold"]))
    assert scenario.policies == ("tfl", "fimi+scaffold")


def test_a_combination_takes_the_data_side_from_the_first_and_training_from_the_second():
    combined = create("hdc+scaffold")
    assert combined.name == "hdc+scaffold" and type(combined).uplink_models == 2
    assert type(combined.data).spread is type(create("hdc")).spread
    rule = combined.local_rule(0)
    assert type(rule).__name__ == "ControlVariateRule"
    assert resolve("hdc+scaffold") is resolve("hdc+scaffold")  # one class per pair


def test_the_docs_list_every_training_side_algorithm_with_its_settings_and_defaults():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "training-algorithms.md").read_text(encoding="utf-8")
    section = text.split("# Training-side algorithms and combinations", 1)[1].split("\n## ", 1)[0]
    for name in NEW_POLICIES:
        row = next(line for line in section.splitlines() if line.startswith(f"| `{name}` |"))
        if "as `fedadam`" in row:
            assert resolve(name).settings == resolve("fedadam").settings
            continue
        for setting in resolve(name).settings:
            assert f"`{setting.name}`" in row and f": {setting.default:g}" in row, (name, setting.name)
        assert f"{resolve(name).uplink_models} model" in row


def test_a_users_own_training_algorithm_in_a_file_combines_by_path(linear, toy, tmp_path):
    source = tmp_path / "halved.py"
    source.write_text(
        "from simfl.learning.local_rule import LocalRule\n"
        "from simfl.policies.tfl import Tfl\n"
        "from simfl.training_side import TrainingAlgorithm\n\n"
        "class Half(LocalRule):\n"
        "    def direction(self, grads, params):\n"
        "        return [g * 0.5 for g in grads]\n\n"
        "class Halved(TrainingAlgorithm, Tfl):\n"
        "    name = 'halved'\n"
        "    synchronous_only = False\n"
        "    def local_rule(self, client):\n"
        "        return Half()\n")
    combined = create(f"equal-share+{source}:Halved")
    assert combined.name == "equal-share+halved" and name_problem(f"equal-share+{source}:Halved") is None
    # half the gradient at twice the learning rate is the same SGD (both factors are powers of two)
    ruled = trainer_for(toy, PARTS, combined, batch=8, lr=0.2, workers=2)
    try:
        halved = ruled.local_updates(0, np.array([0, 1]))  # the rule, pickled into worker processes
    finally:
        ruled.close()
    plain = trainer_for(toy, PARTS, batch=8, lr=0.1).local_updates(0, np.array([0, 1]))
    for a, b in zip(halved, plain):
        assert all(torch.equal(x, y) for x, y in zip(a.params, b.params))


@pytest.mark.parametrize("mode", ["sync", "fedbuff", "fedasync"])
def test_fedprox_runs_in_every_aggregation_mode_and_with_mu_zero_is_the_default_training(linear, toy, mode):
    from simfl.engine import run
    from simfl.policy import PlanContext
    from simfl.streams import rng
    from simfl.world import build_world

    scenario = scenario_from_dict(scenario_dict(aggregation={"mode": mode, "buffer_size": 2}))
    world = build_world(scenario, model_bits=32 * 15)
    plan = create("equal-share").plan(world, PlanContext(scenario=scenario, rng=rng(0, "policy")))
    parts = [np.arange(12 * i, 12 * (i + 1)) for i in range(world.n_devices)]
    finals = {}
    for label, name, mu in (("default", "tfl", None), ("mu=0", "fedprox", 0.0), ("mu=1", "fedprox", 1.0)):
        policy = create(name) if mu is None else configured(name, mu=mu)
        trainer = trainer_for(toy, parts, policy, batch=4, lr=0.3)
        state = run(world, plan, trainer, rounds=3, seed=0, policy=policy)
        assert state.next_round == 3
        finals[label] = [g.clone() for g in trainer.global_params()]
    assert all(torch.equal(a, b) for a, b in zip(finals["default"], finals["mu=0"]))
    assert not all(torch.equal(a, b) for a, b in zip(finals["default"], finals["mu=1"]))
