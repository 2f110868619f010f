"""Table I columns from a hand-made rounds.csv, checked by hand."""

import io

import numpy as np
import pandas as pd
import pytest

from simfl.metrics import format_table, summary_table

ROUNDS = """policy,round,end_s,cum_energy_j,cum_uplink_bits,accuracy
tfl,0,60,10,8e9,0.50
tfl,1,120,20,16e9,0.69
tfl,2,180,30,24e9,0.71
tfl,3,240,40,32e9,0.70
fimi,0,60,15,8e9,0.65
fimi,1,120,30,16e9,0.72
fimi,2,180,45,24e9,0.74
hdc,0,3600,5,8e9,0.40
hdc,1,7200,10,16e9,0.45
"""


def table():
    return summary_table(pd.read_csv(io.StringIO(ROUNDS)), [0.7, 0.73])


def test_costs_to_first_reach_the_target_by_hand():
    t = table().set_index("policy")
    # tfl first reaches 0.70 in round 2 (0.71): 30 J, 180 s = 0.05 h, 24e9 bits = 3 GB
    assert t.loc["tfl", "energy_j@70"] == 30
    assert t.loc["tfl", "latency_h@70"] == pytest.approx(0.05)
    assert t.loc["tfl", "uplink_gb@70"] == pytest.approx(3.0)
    # fimi reaches 0.70 in round 1: 30 J, 120 s, 2 GB; 0.73 in round 2: 45 J
    assert t.loc["fimi", "energy_j@70"] == 30
    assert t.loc["fimi", "uplink_gb@70"] == pytest.approx(2.0)
    assert t.loc["fimi", "energy_j@73"] == 45
    # tfl never reaches 0.73, hdc never reaches either: N/A
    assert np.isnan(t.loc["tfl", "energy_j@73"])
    assert np.isnan(t.loc["hdc", "latency_h@70"])
    assert t.loc["tfl", "best_accuracy"] == pytest.approx(0.71)
    assert t.loc["hdc", "rounds"] == 2


def test_ratios_are_to_the_first_policy():
    t = table().set_index("policy")
    assert t.loc["tfl", "energy_j@70_ratio"] == 1.0
    assert t.loc["fimi", "latency_h@70_ratio"] == pytest.approx(120 / 180)
    assert t.loc["fimi", "uplink_gb@70_ratio"] == pytest.approx(2 / 3)
    # the first policy never reached 0.73, so no ratio can be formed
    assert np.isnan(t.loc["fimi", "energy_j@73_ratio"])


def test_text_table_shows_na_and_ratios():
    text = format_table(table(), [0.7, 0.73])
    lines = text.splitlines()
    assert lines[0].startswith("policy") and "Energy@70 (J)" in lines[0]
    fimi = next(line for line in lines if line.startswith("fimi"))
    assert "30.00 (1.00x)" in fimi and "0.033 (0.67x)" in fimi and fimi.endswith("74.00")
    hdc = next(line for line in lines if line.startswith("hdc"))
    assert hdc.count("N/A") == 6
