"""The channel in simulated time, against independent facts: the scenario fields that
configure it (a carrier that keeps old run folders' fingerprints at its default), and the
per-round forms that keep parsing to what they did."""

from __future__ import annotations

from pathlib import Path

import pytest

from simfl.dynamics.fading import Clarke, GaussMarkov, GaussMarkovSteps, NoFading, Rayleigh, RayleighBlocks
from simfl.errors import ScenarioError
from simfl.runfolder import fingerprint
from simfl.scenario import load_scenario, scenario_from_dict
from simfl.world import build_world

from conftest import scenario_dict


# ------------------------------------------------------------------ scenario fields


def world_of(**cell):
    raw = scenario_dict()
    raw["cells"][0].update(cell)
    return build_world(scenario_from_dict(raw), model_bits=32_000)


def test_carrier_hz_defaults_to_2_ghz_and_reaches_the_world():
    assert world_of().carrier_hz.tolist() == [2e9]
    assert world_of(carrier_hz=3.5e9).carrier_hz.tolist() == [3.5e9]
    raw = scenario_dict(cells={"hex_grid": {"rings": 1, "spacing_m": 500, "radius_m": 300, "bandwidth_hz": 1e7,
                                            "carrier_hz": 28e9}})
    assert build_world(scenario_from_dict(raw), model_bits=32_000).carrier_hz.tolist() == [28e9] * 7


def test_a_world_built_without_carriers_has_the_default():
    world = world_of()
    older = type(world)(**{k: v for k, v in world.__dict__.items() if k != "carrier_hz"})
    assert older.carrier_hz.tolist() == [2e9]


def test_folders_written_before_carrier_hz_keep_their_fingerprint():
    tiny = Path(__file__).parent / "data" / "tiny.yaml"
    # computed before cells had a carrier_hz; float32 so that the digest is the same on every CPU
    assert fingerprint(load_scenario(tiny, overrides=["task.precision=float32"]))[0] == "56f9d9fd707a7c4f"
    other = fingerprint(load_scenario(tiny, overrides=["task.precision=float32", "cells.0.carrier_hz=3.5e9"]))
    assert other[1]["cells.0.carrier_hz"] == 3.5e9


@pytest.mark.parametrize("fading, expected", [
    ({"rayleigh": {"coherence_s": 0.5}}, RayleighBlocks(0.5)),
    ({"gauss_markov": {"rho": 0.7, "step_s": 0.1}}, GaussMarkovSteps(0.7, 0.1)),
    ({"clarke": {"min_doppler_hz": 2}}, Clarke(2.0)),
    ("clarke", Clarke(0.0)),
    # the forms that existed before keep their per-round classes, exactly
    ("rayleigh", Rayleigh()),
    ({"gauss_markov": {"rho": 0.7}}, GaussMarkov(0.7)),
    ("none", NoFading()),
    (None, NoFading()),
])
def test_each_fading_form_parses_to_its_component(fading, expected):
    parsed = world_of(path_loss={} if fading is None else {"fading": fading}).fading[0]
    assert type(parsed) is type(expected) and parsed == expected


@pytest.mark.parametrize("cell, expected", [
    ({"path_loss": {"fading": {"rayleigh": {"coherence_s": -1}}}},
     "cells[0].path_loss.fading.rayleigh.coherence_s: must be >= 1e-06, got -1"),
    ({"path_loss": {"fading": {"rayleigh": {"coherence_s": 1e10}}}},
     "cells[0].path_loss.fading.rayleigh.coherence_s: must be <= 1e+09, got 1e+10"),
    ({"path_loss": {"fading": {"gauss_markov": {"rho": 1.0, "step_s": 0.1}}}},
     "cells[0].path_loss.fading.gauss_markov.rho: must be < 1, got 1"),
    ({"path_loss": {"fading": {"gauss_markov": {"rho": 0.5, "step_s": 0}}}},
     "cells[0].path_loss.fading.gauss_markov.step_s: must be >= 1e-06, got 0"),
    ({"path_loss": {"fading": {"clarke": {"min_doppler_hz": -3}}}},
     "cells[0].path_loss.fading.clarke.min_doppler_hz: must be >= 0, got -3"),
    ({"path_loss": {"fading": {"clarke": {"min_doppler_hz": 1, "speed_mps": 2}}}},
     "cells[0].path_loss.fading.clarke.speed_mps: unknown field; allowed: min_doppler_hz"),
    ({"path_loss": {"fading": {"gauss_markov": {"rho": 0.5, "step": 2}}}},
     "cells[0].path_loss.fading.gauss_markov.step: unknown field; allowed: rho, step_s"),
    ({"path_loss": {"fading": {"rayleigh": 0.5}}},
     "cells[0].path_loss.fading.rayleigh: must be a mapping with field 'coherence_s', got 0.5"),
    ({"path_loss": {"fading": "jakes"}},
     "cells[0].path_loss.fading: unknown kind 'jakes'; allowed: clarke | {clarke: {min_doppler_hz}} | "
     "{gauss_markov: {rho}} | {gauss_markov: {rho, step_s}} | none | rayleigh | {rayleigh: {coherence_s}}"),
    ({"carrier_hz": 0}, "cells[0].carrier_hz: must be > 0, got 0"),
    ({"carrier_hz": 1e13}, "cells[0].carrier_hz: must be in (0, 1e12] Hz, got 1e+13"),
    ({"carrier_hz": "2.4 GHz"}, "cells[0].carrier_hz: must be a number, got str '2.4 GHz'"),
])
def test_bad_channel_fields_give_one_paragraph_naming_the_field(cell, expected):
    raw = scenario_dict()
    raw["cells"][0].update(cell)
    with pytest.raises(ScenarioError) as error:
        scenario_from_dict(raw, "x.yaml")
    message = str(error.value)
    assert message == f"x.yaml: {expected}"
    assert "\n" not in message and "Traceback" not in message
