"""The city of scenarios/city.yaml at full size: 10,000 devices planned by FIMI's exact
solver and played by the engine (no training), checked against the paper's closed forms."""

from pathlib import Path

import numpy as np
import pytest

from simfl.engine import run
from simfl.experiment import make_plan, plan_context, prepare
from simfl.registry import create
from simfl.scenario import load_scenario

from conftest import StandInTrainer

CITY = Path(__file__).resolve().parents[1] / "scenarios" / "city.yaml"


@pytest.fixture(scope="module")
def city():
    scenario = load_scenario(CITY)
    setup = prepare(scenario)
    return scenario, setup, make_plan(setup, create("fimi"), "exact")


def test_the_city_has_ten_thousand_devices_on_seven_hexagonal_cells_each_holding_five_images(city):
    scenario, setup, _ = city
    world = setup.world
    assert world.n_devices == 10_000 and len(scenario.cells) == 7
    assert (world.d_loc == 5).all()
    held = np.concatenate(setup.device_indices)
    assert len(np.unique(held)) == 50_000  # one shared private split, no image on two phones
    assert not np.isin(held, setup.public_idx).any()
    # every device lies in its cell's disk
    assert (world.distance_m <= 577 + 1e-9).all()


def test_fimi_plans_ten_thousand_devices_within_every_constraint(city):
    scenario, setup, plan = city
    world, k = setup.world, setup.world.constants
    d_mix = world.d_loc + plan.d_gen
    # (12a): the global error after N rounds, eq. (4) with the mean local error (1)-(2)
    delta = k.alpha * d_mix.astype(float) ** -k.beta - k.gamma
    assert np.exp(k.rounds * (delta.mean() - 1) / k.zeta) <= k.err_max * (1 + 1e-9)
    assert plan.d_gen.sum() > 0 and (plan.d_gen <= scenario.optimisation.dgen_max).all()
    # each round fits T_max: computation (omega tau D / f) plus the upload of S bits at the
    # Shannon rate b log2(1 + g p / (N0 b)) of eq. (8)
    t_cmp = k.tau * k.omega_cycles * d_mix / plan.f_hz
    rate = plan.b_hz * np.log2(1 + world.gain * plan.p_w / (world.device_noise_w_per_hz * plan.b_hz))
    assert (t_cmp + k.model_bits / rate <= k.t_max_s * (1 + 1e-6)).all()
    for cell in range(len(scenario.cells)):  # FDMA: a cell's shares fit its band
        assert plan.b_hz[world.cell_of == cell].sum() <= scenario.cells[cell].bandwidth_hz * (1 + 1e-9)


def test_the_engine_plays_ten_thousand_devices_with_a_hundred_participants_per_round(city):
    scenario, setup, plan = city
    world, k = setup.world, setup.world.constants
    rows, events = [], []
    run(world, plan, StandInTrainer(), 2, scenario.seed, context=plan_context(setup, "exact"),
        on_round=lambda record, devices, state: (rows.append(record), events.append(devices)))
    assert [r.selected for r in rows] == [100, 100] and [r.participants for r in rows] == [100, 100]
    for record, devices in zip(rows, events):
        ids = np.array([d.device for d in devices])
        assert len(np.unique(ids)) == 100
        d_mix = world.d_loc[ids] + plan.d_gen[ids]
        # the static plan's shares, scaled so that the 100 drawn fill their cells' bands (K of N)
        cell = world.cell_of[ids]
        planned = np.bincount(cell, weights=plan.b_hz[ids], minlength=world.n_cells)
        b = world.bandwidth_hz[cell] * plan.b_hz[ids] / planned[cell]
        # eq. (5): tau eps omega D f^2; eq. (9): p S / rate; a static channel (no fading here)
        e_cmp = k.tau * world.eps[ids] * k.omega_cycles * d_mix * plan.f_hz[ids] ** 2
        rate = b * np.log2(1 + world.gain[ids] * plan.p_w[ids] / (world.device_noise_w_per_hz[ids] * b))
        e_com = plan.p_w[ids] * k.model_bits / rate
        assert record.energy_j == pytest.approx(float((e_cmp + e_com).sum()), rel=1e-9)
        # a synchronous round lasts as long as its slowest participant
        latency = k.tau * k.omega_cycles * d_mix / plan.f_hz[ids] + k.model_bits / rate
        assert record.duration_s == pytest.approx(float(latency.max()), rel=1e-9)
    assert not np.array_equal(np.sort([d.device for d in events[0]]), np.sort([d.device for d in events[1]]))


def test_the_cross_entropy_search_is_refused_for_the_city_with_a_pointer_to_the_exact_solver(city):
    from simfl.errors import SimflError
    from simfl.optim.fimi import CE_MAX_DEVICES, solve
    from simfl.world import rng

    _, setup, _ = city
    assert setup.world.n_devices > CE_MAX_DEVICES
    with pytest.raises(SimflError, match="does not converge for 10000 devices.*exact solver"):
        solve(setup.world, "ce", rng(1, "policy"))


def test_similarity_is_recorded_for_a_seeded_sample_of_five_hundred_devices(city, tmp_path):
    import pandas as pd

    from simfl.experiment import SIMILARITY_MAX_DEVICES, _record_similarity
    from simfl.learning.trainer import TorchTrainer

    scenario, setup, plan = city
    trainer = TorchTrainer(scenario.task, setup.dataset, list(setup.device_indices), seed=scenario.seed, workers=1)
    _record_similarity(setup, "fimi", trainer, plan, tmp_path)
    rows = pd.read_csv(tmp_path / "similarity.csv")
    assert len(rows) == SIMILARITY_MAX_DEVICES == rows["device"].nunique()
    assert rows["device"].is_monotonic_increasing and rows["device"].max() > 9000  # spread over the city
    assert (rows["d_loc"] == 5).all() and (rows["d_gen"] == plan.d_gen[rows["device"]]).all()
    assert rows["similarity"].between(-1, 1).all()
