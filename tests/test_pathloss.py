"""TR 38.901 path loss (Table 7.4.1-1) and LOS probability (Table 7.4.2-1) against numbers
worked from the table's formulas in the test itself, and each link's own LOS state and
shadowing: drawn with the table's probability, N(0, 1), independent across links and
renewed per correlation distance walked."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from simfl.links import Links
from simfl.pathloss import RMa, UMa, UMi
from simfl.pathloss.link_state import link_state, los_draw
from simfl.scenario import scenario_from_dict
from simfl.world import build_world

sys.path.insert(0, str(Path(__file__).parent))
from conftest import scenario_dict  # noqa: E402

C = 299_792_458.0
log10 = math.log10


def rma_pl1(d3d, fc_ghz=2.0, h=5.0):
    """RMa's PL1 written out: 20 log10(40 pi d f / 3) + min(0.03 h^1.72, 10) log10 d
    - min(0.044 h^1.72, 14.77) + 0.002 log10(h) d."""
    return (20 * log10(40 * math.pi * d3d * fc_ghz / 3) + min(0.03 * h**1.72, 10) * log10(d3d)
            - min(0.044 * h**1.72, 14.77) + 0.002 * log10(h) * d3d)


# UMa, h_UT 1.5 m, 3.5 GHz: d'_BP = 4 (25 - 1)(1.5 - 1) 3.5e9 / c = 560.39 m, h_BS - h_UT = 23.5 m
UMA_BP = 4 * 24 * 0.5 * 3.5e9 / C
# UMi, h_UT 1.5 m, 28 GHz: d'_BP = 4 (10 - 1)(1.5 - 1) 28e9 / c = 1681.2 m, h_BS - h_UT = 8.5 m
UMI_BP = 4 * 9 * 0.5 * 28e9 / C
# RMa, h_BS 35 m, h_UT 1.5 m, 2 GHz, h 5 m, W 20 m: d_BP = 2 pi 35 1.5 2e9 / c = 2200.6 m
RMA_BP = 2 * math.pi * 35 * 1.5 * 2e9 / C


@pytest.mark.parametrize("model, d2d, los, carrier, expected, about", [
    # below the breakpoint, PL1 = 28 + 22 log10(d3D) + 20 log10(fc)
    (UMa(), 100.0, True, 3.5e9, 28 + 22 * log10(math.hypot(100, 23.5)) + 20 * log10(3.5), 83.14),
    # above it, PL2 = 28 + 40 log10(d3D) + 20 log10(fc) - 9 log10(d'_BP^2 + 23.5^2)
    (UMa(), 1000.0, True, 3.5e9, 28 + 40 * log10(math.hypot(1000, 23.5)) + 20 * log10(3.5)
     - 9 * log10(UMA_BP**2 + 23.5**2), 109.41),
    # NLOS: PL' = 13.54 + 39.08 log10(d3D) + 20 log10(fc) - 0.6 (1.5 - 1.5) = 141.67 > PL_LOS = 109.41
    (UMa(), 1000.0, False, 3.5e9, 13.54 + 39.08 * log10(math.hypot(1000, 23.5)) + 20 * log10(3.5), 141.67),
    # UMi: PL1 = 32.4 + 21 log10(d3D) + 20 log10(fc)
    (UMi(), 200.0, True, 28e9, 32.4 + 21 * log10(math.hypot(200, 8.5)) + 20 * log10(28), 109.67),
    (UMi(), 2000.0, True, 28e9, 32.4 + 40 * log10(math.hypot(2000, 8.5)) + 20 * log10(28)
     - 9.5 * log10(UMI_BP**2 + 8.5**2), 132.10),
    # PL' = 35.3 log10(d3D) + 22.4 + 21.3 log10(fc) - 0.3 (1.5 - 1.5)
    (UMi(), 200.0, False, 28e9, 35.3 * log10(math.hypot(200, 8.5)) + 22.4 + 21.3 * log10(28), 134.46),
    (UMi(), 2000.0, False, 28e9, 35.3 * log10(math.hypot(2000, 8.5)) + 22.4 + 21.3 * log10(28), 169.75),
    # RMa: PL1 below d_BP; PL2 = PL1(d_BP) + 40 log10(d3D / d_BP) above
    (RMa(), 1000.0, True, 2e9, rma_pl1(math.hypot(1000, 33.5)), 100.60),
    (RMa(), 4000.0, True, 2e9, rma_pl1(RMA_BP) + 40 * log10(math.hypot(4000, 33.5) / RMA_BP), 119.67),
    # PL' = 161.04 - 7.1 log10 W + 7.5 log10 h - (24.37 - 3.7 (h / h_BS)^2) log10 h_BS
    #       + (43.42 - 3.1 log10 h_BS)(log10 d3D - 3) + 20 log10 fc - (3.2 (log10(11.75 h_UT))^2 - 4.97)
    (RMa(), 4000.0, False, 2e9, 161.04 - 7.1 * log10(20) + 7.5 * log10(5) - (24.37 - 3.7 * (5 / 35) ** 2) * log10(35)
     + (43.42 - 3.1 * log10(35)) * (log10(math.hypot(4000, 33.5)) - 3) + 20 * log10(2)
     - (3.2 * log10(11.75 * 1.5) ** 2 - 4.97), 148.81),
], ids=["uma-los-pl1", "uma-los-pl2", "uma-nlos", "umi-los-pl1", "umi-los-pl2", "umi-nlos-near", "umi-nlos-far",
        "rma-los-pl1", "rma-los-pl2", "rma-nlos"])
def test_path_loss_is_table_7_4_1_1(model, d2d, los, carrier, expected, about):
    assert expected == pytest.approx(about, abs=0.005)  # the formula above, worked by hand to 2 decimals
    assert model.path_loss_db(d2d, los, carrier) == pytest.approx(expected, abs=1e-9)


def test_nlos_is_the_larger_of_los_and_nlos_prime():
    # UMa, h_UT 13 m, 2 GHz, 10 m: d3D = sqrt(10^2 + 12^2) = 15.62 m,
    # PL_LOS = 28 + 22 log10(15.62) + 20 log10(2) = 60.28 > PL' = 13.54 + 39.08 log10(15.62) + 20 log10(2) - 0.6 x 11.5 = 59.31
    d3d = math.hypot(10, 12)
    los, nlos_prime = 28 + 22 * log10(d3d) + 20 * log10(2), 13.54 + 39.08 * log10(d3d) + 20 * log10(2) - 0.6 * 11.5
    assert (los, nlos_prime) == pytest.approx((60.28, 59.31), abs=0.005)
    assert UMa(h_ut_m=13.0).path_loss_db(10.0, False, 2e9) == pytest.approx(los, abs=1e-9)


def test_nearer_than_10_m_is_the_path_loss_of_10_m():
    for model in (UMa(), UMi(), RMa()):
        assert model.path_loss_db([0.0, 3.0], [True, False], 3.5e9) == pytest.approx(
            model.path_loss_db([10.0, 10.0], [True, False], 3.5e9), abs=0)


def test_shadow_fading_sigma_is_the_tables():
    far = RMA_BP + 1.0
    assert RMa().sigma_db([100.0, far, 100.0, far], [True, True, False, False], 2e9).tolist() == [4.0, 6.0, 8.0, 8.0]
    assert UMa().sigma_db([100.0, 100.0], [True, False], 2e9).tolist() == [4.0, 6.0]
    assert UMi().sigma_db([100.0, 100.0], [True, False], 2e9).tolist() == [4.0, 7.82]
    assert RMa().jump_distances_m(2e9) == pytest.approx((2200.637,), abs=1e-3)


@pytest.mark.parametrize("model, d2d, expected, about", [
    (UMa(), 18.0, 1.0, 1.0),
    # 18 / d + exp(-d / 63)(1 - 18 / d)
    (UMa(), 100.0, 18 / 100 + math.exp(-100 / 63) * (1 - 18 / 100), 0.3477),
    # x (1 + C'(h_UT) 5/4 (d / 100)^3 exp(-d / 150)), C'(18 m) = ((18 - 13) / 10)^1.5
    (UMa(h_ut_m=18.0), 100.0, (18 / 100 + math.exp(-100 / 63) * 0.82) * (1 + 0.5**1.5 * 1.25 * math.exp(-100 / 150)),
     0.4266),
    (UMi(), 18.0, 1.0, 1.0),
    # 18 / d + exp(-d / 36)(1 - 18 / d)
    (UMi(), 100.0, 18 / 100 + math.exp(-100 / 36) * (1 - 18 / 100), 0.2310),
    (RMa(), 10.0, 1.0, 1.0),
    # exp(-(d - 10) / 1000)
    (RMa(), 510.0, math.exp(-0.5), 0.6065),
], ids=["uma-18m", "uma-100m", "uma-tall-terminal", "umi-18m", "umi-100m", "rma-10m", "rma-510m"])
def test_los_probability_is_table_7_4_2_1(model, d2d, expected, about):
    assert expected == pytest.approx(about, abs=5e-5)
    assert model.los_probability(d2d) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("model", [UMa(), UMi(), RMa()], ids=["uma", "umi", "rma"])
def test_the_los_radius_of_a_draw_is_where_the_probability_falls_to_it(model):
    u = np.array([0.9, 0.5, 0.1, 0.01])
    radius = np.array([model.los_distance_m(x) for x in u])
    assert model.los_probability(radius) == pytest.approx(u, rel=1e-9)
    assert (np.diff(radius) > 0).all()


def uma_world(count, distance_m, **cell):
    raw = scenario_dict(cells=[{"name": "a", "position_m": [0, 0], "radius_m": 1000, "bandwidth_hz": 1e7,
                                "carrier_hz": 3.5e9, "path_loss": {"model": "uma"}, **cell}],
                        devices={"count": count, "distance_m": distance_m, "f_max_hz": 1e9, "eps": 5e-27,
                                 "p_max_dbm": 20})
    return build_world(scenario_from_dict(raw), model_bits=32_000)


def test_the_los_fraction_over_many_drops_is_the_probability():
    # 20,000 links at 100 m: Pr_LOS = 0.3477 (above), standard error sqrt(p (1 - p) / n) = 0.0034
    world = uma_world(20_000, 100.0)
    los = world.links.state(world.position_m).los[:, 0]
    p = 18 / 100 + math.exp(-100 / 63) * (1 - 18 / 100)
    assert abs(los.mean() - p) < 4 * math.sqrt(p * (1 - p) / 20_000)
    # and over distances 20-1000 m, binned: each bin's fraction is its mean probability
    world = uma_world(20_000, {"uniform": [20, 1000]})
    state = world.links.state(world.position_m)
    edges = np.linspace(20, 1000, 6)
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (world.distance_m >= low) & (world.distance_m < high)
        p = UMa().los_probability(world.distance_m[inside]).mean()
        assert abs(state.los[inside, 0].mean() - p) < 4 * math.sqrt(p * (1 - p) / inside.sum())


def test_each_link_has_its_own_standard_normal_shadowing_in_its_state_and_gain_is_minus_pl_plus_sigma_z():
    world = uma_world(20_000, 300.0)
    state = world.links.state(world.position_m)
    z = state.z[:, 0]
    assert abs(z.mean()) < 4 / math.sqrt(20_000) and abs(z.std() - 1.0) < 0.02
    assert abs(np.corrcoef(z, world.shadowing_z)[0, 1]) < 4 / math.sqrt(20_000)  # not the log-distance draw
    los = state.los[:, 0]
    pl = np.where(los, UMa().path_loss_db(300.0, True, 3.5e9), UMa().path_loss_db(300.0, False, 3.5e9))
    assert 10 * np.log10(world.gain) == pytest.approx(-pl + np.where(los, 4.0, 6.0) * z, abs=1e-9)


def test_two_cells_draw_independently_and_no_draw_depends_on_who_asks_first():
    links = Links(np.array([[0.0, 0.0], [250.0, 0.0]]), np.full((2, 3), np.nan), np.zeros(5000), (UMi(), UMi()),
                  np.array([28e9, 28e9]), seed=3)
    position = np.column_stack([np.full(5000, 125.0), np.zeros(5000)])  # 125 m from both stations
    state = links.state(position)
    assert abs(np.corrcoef(state.z[:, 0], state.z[:, 1])[0, 1]) < 4 / math.sqrt(5000)
    assert 0.2 < (state.los[:, 0] != state.los[:, 1]).mean()  # Pr_LOS(125 m) = 0.144: ~25% of pairs differ
    backwards = links.state(position[::-1], device=np.arange(5000)[::-1])
    assert np.array_equal(backwards.z[::-1], state.z) and np.array_equal(backwards.los[::-1], state.los)
    one = links.state(position[[1234]], device=1234)
    assert one.z[0].tolist() == state.z[1234].tolist()


def test_a_link_renews_its_draws_per_correlation_distance_walked():
    # UMi: LOS state every 50 m (Table 7.6.3.1-2), shadowing every 10 m in LOS, 13 m in NLOS (Table 7.5-6)
    model, device, cell = UMi(), np.arange(4000), 0
    u0, u49, u50 = (los_draw(model, 5, device, cell, w) for w in (0.0, 49.999, 50.0))
    assert np.array_equal(u0, u49) and not (u0 == u50).any()
    assert abs(np.corrcoef(u0, u50)[0, 1]) < 4 / math.sqrt(4000)
    for d2d, in_los, correlation in ((5.0, True, 10.0), (5000.0, False, 13.0)):  # LOS at 5 m; mostly NLOS at 5 km
        first, before, after = (link_state(model, 5, device, cell, d2d, w) for w in (0.0, correlation - 1e-6,
                                                                                   correlation))
        kept = first.los == in_los
        assert kept.mean() > 0.99
        assert np.array_equal(first.z[kept], before.z[kept])
        z0, z1 = first.z[kept], after.z[kept]
        assert (z0 != z1).all() and abs(np.corrcoef(z0, z1)[0, 1]) < 4 / math.sqrt(4000)


def test_the_log_distance_columns_beside_a_tr38901_cell_are_the_papers():
    links = Links(np.array([[0.0, 0.0], [300.0, 400.0]]), np.array([[128.1, 37.6, 4.0], [np.nan] * 3]),
                  np.array([0.5]), (None, UMa()), np.array([2e9, 2e9]), seed=1)
    gain = links.gains_db(np.array([[0.0, 0.0]]))
    assert gain[0, 0] == pytest.approx(-(128.1 + 37.6 * -3.0) + 0.5 * 4.0, abs=1e-12)  # 1 m floor, z sigma
    state = links.state(np.array([[0.0, 0.0]]))
    los = bool(state.los[0, 1])
    expected = -UMa().path_loss_db(500.0, los, 2e9) + (4.0 if los else 6.0) * state.z[0, 1]
    assert gain[0, 1] == pytest.approx(expected, abs=1e-12)


def test_a_new_path_loss_model_is_one_registered_class():
    # free space, PL = 32.45 + 20 log10(f_GHz) + 20 log10(d_3D m), always LOS, no shadowing:
    # at 3 GHz and 400 m (h_BS 10 m, h_UT 1.5 m: d_3D = 400.09 m), 32.45 + 9.542 + 52.043 = 94.04 dB
    from dataclasses import dataclass, field

    from simfl.errors import ScenarioError
    from simfl.pathloss import MODELS, FieldRange, Tr38901Model, register

    @dataclass(frozen=True)
    class FreeSpace(Tr38901Model):
        h_ut_m: float = 1.5
        kind: str = field(default="free-space", init=False)
        h_bs_m = 10.0
        FIELDS = {"h_ut_m": FieldRange(1.0, 2.0, 1.5, "a test's range")}
        SF_CORRELATION_M = (10.0, 10.0)
        LOS_CORRELATION_M = 10.0

        def los_path_loss_db(self, d2d_m, carrier_hz):
            return 32.45 + 20 * np.log10(carrier_hz / 1e9) + 20 * np.log10(np.hypot(d2d_m, 10.0 - self.h_ut_m))

        nlos_path_loss_db = los_path_loss_db

        def los_sigma_db(self, d2d_m, carrier_hz):
            return np.zeros(np.shape(d2d_m))

        def los_probability(self, d2d_m):
            return np.ones(np.shape(d2d_m))

    register(FreeSpace)
    try:
        with pytest.raises(ValueError, match="registered twice"):
            register(type("FreeSpace", (FreeSpace,), {}))
        raw = scenario_dict(cells=[{"name": "a", "position_m": [0, 0], "radius_m": 500, "bandwidth_hz": 1e7,
                                    "carrier_hz": 3e9, "path_loss": {"model": "free-space"}}],
                            devices={"count": 3, "distance_m": 400.0, "f_max_hz": 1e9, "eps": 5e-27, "p_max_dbm": 20})
        world = build_world(scenario_from_dict(raw), model_bits=32_000)
        expected = 32.45 + 20 * log10(3) + 20 * log10(math.hypot(400, 8.5))
        assert expected == pytest.approx(94.04, abs=0.005)
        assert 10 * np.log10(world.gain) == pytest.approx([-expected] * 3, abs=1e-9)
        raw["cells"][0]["path_loss"]["h_ut_m"] = 3
        with pytest.raises(ScenarioError, match=r"h_ut_m: must be in \[1, 2\] m for model free-space \(a test's"):
            scenario_from_dict(raw)
    finally:
        del MODELS["free-space"]


def test_keyed_uniforms_are_uniform_independent_of_their_keys_and_the_same_however_asked():
    from scipy import stats

    from simfl.streams import keyed_uniform

    grid = keyed_uniform(1, "path_loss", 0, np.arange(2000)[:, None], np.arange(10)[None, :], 0)
    assert grid.shape == (2000, 10) and 0.0 < grid.min() and grid.max() < 1.0
    assert stats.kstest(grid.ravel(), "uniform").pvalue > 1e-3
    # neighbouring keys, in any position, are unrelated
    for a, b in ((grid[:, 0], grid[:, 1]), (grid[:-1, 0], grid[1:, 0]),
                 (grid[:, 0], keyed_uniform(1, "path_loss", 0, np.arange(2000), 0, 1)),
                 (grid[:, 0], keyed_uniform(1, "path_loss", 1, np.arange(2000), 0, 0)),
                 (grid[:, 0], keyed_uniform(2, "path_loss", 0, np.arange(2000), 0, 0))):
        assert abs(np.corrcoef(a, b)[0, 1]) < 4 / math.sqrt(len(a))
    assert keyed_uniform(1, "path_loss", 0, 1234, 7, 0) == grid[1234, 7]  # a scalar key, as in the grid
