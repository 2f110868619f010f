"""Every registered policy against its definition (Section V-B), plus the conformance
checks run over all of them: valid plans, deterministic under a seed."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from simfl.errors import PolicyNotFound
from simfl.optim.learning_curve import global_error
from simfl.optim.waterfill import waterfill
from simfl.plan import check_plan
from simfl.network import Network
from simfl.policy import PlanContext, Policy
from simfl.registry import builtin_policies, check_policies, create, resolve
from simfl.scenario import scenario_from_dict
from simfl.world import build_world, rng

from conftest import StandInTrainer, scenario_dict

ROOT = Path(__file__).resolve().parents[1]
PAPER_POLICIES = ["fimi", "tfl", "hdc", "sst", "gan", "clsd", "fimi-no-ba", "fimi-no-da", "fimi-no-dm", "fimi-no-oa",
                  "semi"]
# training-side algorithms (simfl.training_side) and combinations a+b (simfl.compose)
TRAINING_SIDE = ["fedprox", "scaffold", "fednova", "fedavgm", "fedadam", "fedyogi"]
COMBINATIONS = [f"fimi+{name}" for name in TRAINING_SIDE] + ["hdc+fedprox", "semi+scaffold"]


@pytest.fixture(scope="module")
def world_and_scenario():
    raw = scenario_dict(devices={"count": 8}, task={"samples_per_device": 1250, "rounds": 200},
                        optimisation={"t_max_s": 60, "err_max": 0.2, "dgen_max": 5000, "zeta": 68,
                                      "cross_entropy": {"samples": 32, "elite": 6, "iterations": 40}})
    scenario = scenario_from_dict(raw)
    # Dir(0.4) label counts drawn here, without loading any data set
    draw = np.random.default_rng(3)
    counts = np.array([draw.multinomial(1250, draw.dirichlet(0.4 * np.ones(10))) for _ in range(8)])
    world = build_world(scenario, model_bits=32 * 3_491_530, d_loc_per_class=counts)
    return world, scenario


def plan_of(name, world, scenario):
    return create(name).plan(world, PlanContext(scenario=scenario, rng=rng(scenario.seed, "policy"), seed=scenario.seed))


def test_the_papers_policies_are_registered():
    assert set(PAPER_POLICIES) <= set(sorted(builtin_policies()))


def test_the_training_side_algorithms_are_registered():
    assert set(TRAINING_SIDE) <= set(sorted(builtin_policies()))


@pytest.mark.parametrize("name", sorted(set(sorted(builtin_policies()))) + COMBINATIONS)
def test_conformance_every_policy_gives_a_valid_deterministic_plan(name, world_and_scenario):
    world, scenario = world_and_scenario
    first = plan_of(name, world, scenario)
    check_plan(world, first)
    again = plan_of(name, world, scenario)
    for field in ("d_gen_per_class", "f_hz", "b_hz", "p_w"):
        assert np.array_equal(getattr(first, field), getattr(again, field)), field
    if first.d_gen.sum() > 0:
        assert first.generator in ("diffusion", "gan")


def test_fimi_meets_the_learning_target_and_water_fills(world_and_scenario):
    world, scenario = world_and_scenario
    plan = plan_of("fimi", world, scenario)
    assert plan.d_gen.sum() > 0
    assert global_error(world.d_loc + plan.d_gen, world.constants) <= world.constants.err_max * (1 + 1e-6)
    assert np.array_equal(plan.d_gen_per_class, waterfill(world.d_loc_per_class, plan.d_gen))
    assert plan.generator == "diffusion"
    assert plan.info.get("ce_history"), "the CE trajectory is kept for Fig. 5a"


def test_tfl_and_sst_have_no_device_side_synthetic_data(world_and_scenario):
    world, scenario = world_and_scenario
    fimi = plan_of("fimi", world, scenario)
    for name in ("tfl", "sst", "fimi-no-da"):
        assert plan_of(name, world, scenario).d_gen.sum() == 0
    sst = plan_of("sst", world, scenario)
    # its aggregation adds the server's own update to the devices' (none here)
    assert create("sst").aggregate([], StandInTrainer(), Network(world, 0).observe(0.0, 0, 0)) == 1
    assert np.array_equal(sst.server_synthetic_per_class, fimi.d_gen_per_class.sum(axis=0))


def test_sst_devices_use_exactly_tfls_resources(world_and_scenario):
    # SST reuses TFL's plan for its devices: each reused policy draws its own stream from
    # the start, so the CE search for TFL sees the same random numbers inside SST as alone
    world, scenario = world_and_scenario
    sst, tfl = plan_of("sst", world, scenario), plan_of("tfl", world, scenario)
    for field in ("f_hz", "b_hz", "p_w"):
        assert np.array_equal(getattr(sst, field), getattr(tfl, field)), field


def test_clsd_keeps_fimis_synthetic_set_at_the_server_and_no_device_trains(world_and_scenario):
    world, scenario = world_and_scenario
    clsd = plan_of("clsd", world, scenario)
    state = Network(world, 0).observe(0.0, 0, 0)
    assert state.available.all() and create("clsd").select(state, None).size == 0
    assert create("clsd").aggregate([], StandInTrainer(), state) == 1  # the server's update alone
    assert clsd.d_gen.sum() == 0
    assert np.array_equal(clsd.server_synthetic_per_class, plan_of("fimi", world, scenario).d_gen_per_class.sum(axis=0))


def test_hdc_only_synthesises_the_rarest_class(world_and_scenario):
    world, scenario = world_and_scenario
    fimi, hdc = plan_of("fimi", world, scenario), plan_of("hdc", world, scenario)
    assert np.array_equal(hdc.d_gen, fimi.d_gen)
    rarest = np.argmin(world.d_loc_per_class, axis=1)
    for i in range(world.n_devices):
        nonzero = np.flatnonzero(hdc.d_gen_per_class[i])
        assert set(nonzero) <= {rarest[i]}


def fimis_amounts_spread_evenly(name, world, scenario):
    """`name`'s plan, after checking it has FIMI's per-device amounts spread evenly over classes."""
    fimi, even = plan_of("fimi", world, scenario), plan_of(name, world, scenario)
    assert np.array_equal(even.d_gen, fimi.d_gen)
    spread = even.d_gen_per_class.max(axis=1) - even.d_gen_per_class.min(axis=1)
    assert (spread <= 1).all()
    return even


def test_no_oa_spreads_evenly_over_classes(world_and_scenario):
    fimis_amounts_spread_evenly("fimi-no-oa", *world_and_scenario)


def test_semi_gets_fimis_amounts_evenly_spread_and_labels_them_itself(world_and_scenario):
    semi = fimis_amounts_spread_evenly("semi", *world_and_scenario)
    assert semi.generator == "diffusion"
    assert 0 < create("semi").confidence < 1
    assert type(create("semi")).training_set is not Policy.training_set
    assert type(create("fimi")).training_set is Policy.training_set


def test_no_ba_gives_equal_bands(world_and_scenario):
    world, scenario = world_and_scenario
    plan = plan_of("fimi-no-ba", world, scenario)
    assert plan.b_hz == pytest.approx(np.full(world.n_devices, 20e6 / world.n_devices))
    assert not np.allclose(plan_of("fimi", world, scenario).b_hz, plan.b_hz)


def test_gan_and_no_dm_use_the_gan(world_and_scenario):
    world, scenario = world_and_scenario
    fimi = plan_of("fimi", world, scenario)
    for name in ("gan", "fimi-no-dm"):
        plan = plan_of(name, world, scenario)
        assert plan.generator == "gan"
        assert np.array_equal(plan.d_gen_per_class, fimi.d_gen_per_class)


def test_unknown_policy_is_a_clear_error_listing_the_known_ones():
    with pytest.raises(PolicyNotFound) as info:
        resolve("fimy")
    message = str(info.value)
    assert message.startswith("unknown policy 'fimy'; did you mean 'fimi'? known: ")
    for name in PAPER_POLICIES:
        assert name in message


def test_a_policy_in_a_file_is_found_by_path_and_class(tmp_path):
    source = tmp_path / "greedy.py"
    source.write_text(textwrap.dedent('''
        import numpy as np
        from simfl.plan import Plan
        from simfl.policy import Policy

        class Greedy(Policy):
            name = "greedy"
            def plan(self, world, context):
                share = world.bandwidth_hz[world.cell_of] / np.bincount(world.cell_of)[world.cell_of]
                return Plan.no_synthesis(world, f_hz=world.f_max_hz, b_hz=share, p_w=world.p_max_w)
    '''))
    cls = resolve(f"{source}:Greedy")
    assert cls.name == "greedy"
    with pytest.raises(PolicyNotFound, match="has no Policy subclass named 'Nope'"):
        resolve(f"{source}:Nope")
    with pytest.raises(PolicyNotFound, match="no file"):
        resolve(f"{tmp_path}/missing.py:Greedy")
    with pytest.raises(PolicyNotFound, match="cannot import"):
        resolve("no_such_module_xyz:Greedy")


def test_validating_a_scenario_runs_no_policy_code(tmp_path):
    # a policy file that leaves a mark when imported: naming it in a scenario must not import it
    mark = tmp_path / "imported"
    user = tmp_path / "mine.py"
    user.write_text(f"open({str(mark)!r}, 'w').close()\n")
    raw = scenario_dict(policies=["fimi", "tfl", f"{user}:Mine"])
    code = ("import sys, json; from simfl.scenario import scenario_from_dict; "
            "from simfl.registry import check_policies; "
            f"check_policies(scenario_from_dict(json.loads({json.dumps(raw)!r}))); "
            "print(','.join(m for m in sys.modules if m.startswith('simfl.policies.') or m == 'torch'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""  # no policy module, no torch
    assert not mark.exists()
    with pytest.raises(Exception, match="unknown policy 'fimy'; did you mean 'fimi'"):
        check_policies(scenario_from_dict(scenario_dict(policies=["fimy"])))


def test_validating_policy_settings_imports_only_the_policies_it_names_and_no_torch():
    # settings are checked against what each policy's class declares, so the policies named
    # under policy_settings are imported, with what their own modules import (fedprox and
    # fedavgm extend tfl, which uses fimi), and nothing else: no other policy, no torch
    listing = "print(sorted(m for m in sys.modules if m.startswith('simfl.policies.')), 'torch' in sys.modules)"
    validate = ("import sys; from simfl.cli import main; "
                f"code = main(['validate', {str(ROOT / 'tests' / 'data' / 'tiny.yaml')!r}, "
                "'--set', 'policy_settings.fedprox.mu=0.1', '--set', 'policy_settings.fedavgm.momentum=0.5']); "
                f"assert code == 0; {listing}")
    import_named = f"import sys, simfl.policies.fedprox, simfl.policies.fedavgm; {listing}"
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
            for code in (validate, import_named)]
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    validated, named = (r.stdout.strip().splitlines()[-1] for r in runs)
    assert validated.endswith(" False")  # no torch
    assert validated == named
    assert "'simfl.policies.fedprox'" in validated and "'simfl.policies.scaffold'" not in validated


def test_the_scenarios_generator_kind_is_the_one_fimi_uses(world_and_scenario):
    from dataclasses import replace

    world, scenario = world_and_scenario
    gan_scenario = replace(scenario, generator=replace(scenario.generator, kind="gan"))
    assert plan_of("fimi", world, scenario).generator == "diffusion"
    assert plan_of("fimi", world, gan_scenario).generator == "gan"
    assert plan_of("sst", world, gan_scenario).generator == "gan"
    assert plan_of("gan", world, scenario).generator == "gan"  # the GAN baseline insists on its model


def test_the_built_in_policies_install_under_simfls_namespace(tmp_path):
    # run outside the repository, so only what is installed can be imported
    import subprocess
    import sys

    code = ("import importlib.util, simfl.policies.fimi as f; "
            "print(f.Fimi.name, importlib.util.find_spec('policies') is None)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["fimi", "True"]


# --------------------------------------------------------------------------- runs

TINY = ROOT / "tests" / "data" / "tiny.yaml"
# FIMI's learning target is reachable in tiny's 3 rounds with these (about 100 synthetic samples a device)
FEASIBLE = ["optimisation.zeta=0.5", "optimisation.err_max=0.5", "optimisation.dgen_max=200"]


class Interrupted(Exception):
    """Stands for a run killed after a round's row was written."""


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """The tiny scenario prepared once, and a tiny GAN (5 steps on noise) standing in for the
    scenario's generator, so combinations with FIMI synthesise in a second."""
    from simfl.experiment import prepare
    from simfl.generative.checkpoint import checkpoint_path
    from simfl.generative.train import TrainedGenerator, train_on_arrays
    from simfl.scenario import load_scenario

    draw = np.random.default_rng(0)
    labels = np.arange(100) % 10
    images = (draw.random((100, 1, 28, 28)) * 60 + labels[:, None, None, None] * 19).astype(np.uint8)
    cache = tmp_path_factory.mktemp("cache")
    path = train_on_arrays("gan", "tiny", images, labels, 10, checkpoint_path(cache, "gan-tiny"), seed=2,
                           progress=None, steps=5)
    return prepare(load_scenario(TINY, FEASIBLE)), TrainedGenerator.from_path(path)


@pytest.mark.parametrize("name", TRAINING_SIDE + COMBINATIONS)
def test_conformance_runs_are_deterministic_and_resume_byte_identical(name, tiny_runs, tmp_path, monkeypatch):
    """Each training-side algorithm and combination: two runs write the same bytes, and a
    run interrupted after round 1 and resumed writes what the uninterrupted one did (the
    policy's tensors, e.g. SCAFFOLD's variates, restored from the checkpoint)."""
    import simfl.experiment as experiment
    from simfl.records import RunRecorder

    setup, generator = tiny_runs
    monkeypatch.setattr(experiment, "ensure_generator", lambda kind, scenario, progress=None: generator)
    whole, again, part = tmp_path / "whole", tmp_path / "again", tmp_path / "part"
    for folder in (whole, again):
        experiment.run_policy(setup, create(name), folder, progress=None)

    class StopAfterRoundOne(RunRecorder):
        def __call__(self, record, devices):
            super().__call__(record, devices)
            if record.round == 1:
                raise Interrupted

    with monkeypatch.context() as patch:
        patch.setattr(experiment, "RunRecorder", StopAfterRoundOne)
        with pytest.raises(Interrupted):
            experiment.run_policy(setup, create(name), part, progress=None)
    experiment.run_policy(setup, create(name), part, resume=True, progress=None)
    for file in ("rounds.csv", "events.csv"):
        assert (whole / file).read_bytes() == (again / file).read_bytes(), file
        assert (whole / file).read_bytes() == (part / file).read_bytes(), file
    import pandas as pd

    rounds, events = pd.read_csv(whole / "rounds.csv"), pd.read_csv(whole / "events.csv")
    assert list(rounds["round"]) == [0, 1, 2] and rounds["accuracy"].between(0, 1).all()
    # the uplink: the model times what the method sends, in bits, upload time and energy (eqs. 7-9)
    sent = setup.world.constants.model_bits * create(name).uplink_models
    ok = events[events["outcome"] == "ok"]
    assert len(ok) and (ok["bits_sent"] == sent).all()
    assert np.allclose(ok["upload_end_s"] - ok["upload_start_s"], sent / ok["rate_bps"], rtol=1e-9)
    power = pd.read_csv(whole / "plans" / f"{name}.csv").set_index("device")["p_w"]
    assert np.allclose(ok["e_com_j"], power[ok["device"]].to_numpy() * sent / ok["rate_bps"], rtol=1e-9)
    if name.startswith("fimi+"):
        assert pd.read_csv(whole / "plans" / f"{name}.csv")["d_gen"].sum() > 0


def test_the_library_entry_points_refuse_bad_policy_settings_before_any_work(tmp_path):
    # a notebook's calls check what the CLI checks, before loading data or opening a folder
    from simfl.compare import compare
    from simfl.errors import ScenarioError
    from simfl.experiment import prepare
    from simfl.sweep import sweep

    scenario = scenario_from_dict(scenario_dict(policy_settings={"fedprox": {"mu": -1}}), "lib.yaml")
    for call in (lambda: prepare(scenario), lambda: compare(scenario, tmp_path / "c", ["tfl"], progress=None),
                 lambda: sweep([("x=1", scenario)], "tfl", tmp_path / "s", progress=None)):
        with pytest.raises(ScenarioError, match=r"^lib\.yaml: policy_settings\.fedprox\.mu: must be >= 0, got -1$"):
            call()
    assert not list(tmp_path.iterdir())
