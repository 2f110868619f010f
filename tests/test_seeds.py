"""Table I over seeds from hand-made per-seed rows, checked by hand, and the seeds'
scenarios sharing one public split."""

import io

import numpy as np
import pandas as pd
import pytest

from simfl.errors import SimflError
from simfl.metrics import summary_table
from simfl.scenario import scenario_from_dict
from simfl.compare_seeds import format_seed_table, parse_seeds, seed_scenarios, seed_summary

from conftest import scenario_dict

# Two seeds of a two-policy comparison, as rounds.csv rows.
SEED_1 = """policy,round,end_s,cum_energy_j,cum_uplink_bits,accuracy
tfl,0,60,10,8e9,0.60
tfl,1,120,20,16e9,0.71
fimi,0,60,15,8e9,0.72
fimi,1,120,30,16e9,0.74
"""
SEED_2 = """policy,round,end_s,cum_energy_j,cum_uplink_bits,accuracy
tfl,0,60,12,8e9,0.65
tfl,1,120,24,16e9,0.69
fimi,0,60,14,8e9,0.66
fimi,1,120,28,16e9,0.70
"""


def per_seed():
    frames = [summary_table(pd.read_csv(io.StringIO(text)), [0.7], ["tfl", "fimi"]).assign(seed=seed)
              for seed, text in ((1, SEED_1), (2, SEED_2))]
    return pd.concat(frames, ignore_index=True)


def test_mean_sd_reach_count_and_paired_ratio_by_hand():
    t = seed_summary(per_seed(), [0.7], ["tfl", "fimi"]).set_index("policy")
    # tfl reaches 0.70 only on seed 1 (20 J at round 1): one seed, no sd
    assert t.loc["tfl", "reached@70"] == 1
    assert t.loc["tfl", "energy_j@70_mean"] == 20
    assert np.isnan(t.loc["tfl", "energy_j@70_sd"])
    # fimi: seed 1 at round 0 (15 J), seed 2 at round 1 (28 J): mean 21.5, sd |28-15|/sqrt 2
    assert t.loc["fimi", "reached@70"] == 2
    assert t.loc["fimi", "energy_j@70_mean"] == pytest.approx(21.5)
    assert t.loc["fimi", "energy_j@70_sd"] == pytest.approx(13 / np.sqrt(2))
    # paired ratio: only seed 1 has both, 15 / 20
    assert t.loc["fimi", "energy_j@70_ratio"] == pytest.approx(0.75)
    # latency: seed 1 60 s, seed 2 120 s -> mean 90 s = 0.025 h
    assert t.loc["fimi", "latency_h@70_mean"] == pytest.approx(0.025)
    # best accuracy: tfl 0.71 and 0.69 -> 0.70; fimi 0.74 and 0.70 -> 0.72
    assert t.loc["tfl", "best_accuracy_mean"] == pytest.approx(0.70)
    assert t.loc["fimi", "best_accuracy_sd"] == pytest.approx(0.04 / np.sqrt(2))


def test_text_table_shows_mean_sd_ratio_and_reach():
    text = format_seed_table(seed_summary(per_seed(), [0.7], ["tfl", "fimi"]), [0.7], 2)
    fimi = next(line for line in text.splitlines() if line.startswith("fimi"))
    assert "21.50 ± 9.19 (0.75x) [2/2]" in fimi
    assert fimi.endswith("72.00 ± 2.83")
    tfl = next(line for line in text.splitlines() if line.startswith("tfl"))
    assert "20.00 (1.00x) [1/2]" in tfl


def test_never_reached_is_na_with_its_count():
    rows = per_seed()
    rows.loc[rows["policy"] == "tfl", ["energy_j@70", "latency_h@70", "uplink_gb@70"]] = np.nan
    table = seed_summary(rows, [0.7], ["tfl", "fimi"])
    assert "N/A [0/2]" in format_seed_table(table, [0.7], 2)


def test_every_seed_keeps_the_scenarios_public_split():
    scenario = scenario_from_dict(scenario_dict(seed=7))
    runs = seed_scenarios(scenario, [1, 2, 3])
    assert [r.seed for r in runs] == [1, 2, 3]
    assert {r.split_seed for r in runs} == {7}
    with pytest.raises(SimflError, match="--seeds"):
        seed_scenarios(scenario, [1, 1])


def test_seeds_are_a_list_or_an_inclusive_range():
    assert parse_seeds("1,2,5") == [1, 2, 5]
    assert parse_seeds("3-6") == [3, 4, 5, 6]
    for bad in ("", "a,b", "5-", "1-2-3"):
        with pytest.raises(SimflError, match="--seeds"):
            parse_seeds(bad)
