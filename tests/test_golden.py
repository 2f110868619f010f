"""The shipped scenarios keep their results: each golden case (tests/golden/cases.py) is
run again through `simfl run` and its rounds.csv and events.csv are compared with the
files stored before the run-long engine was written.

Everything the simulator computes (times, energies, bits, gains, rates, stragglers) must
match to the last digit. Accuracy and loss come from torch, whose kernels may round
differently on another CPU; they must match to 1e-6 relative (on the machine that wrote
the files they match exactly)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent / "golden"))
from cases import CASES, FILES, HERE, run_case  # noqa: E402

TRAINING_COLUMNS = ("accuracy", "loss")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("golden-cache")


@pytest.mark.parametrize("name", sorted(CASES))
def test_shipped_scenario_matches_its_golden_files(name, tmp_path, cache, monkeypatch):
    monkeypatch.setenv("SIMFL_CACHE", str(cache))
    out = run_case(name, tmp_path / name, cache)
    for file in FILES:
        stored = HERE / name / file
        assert (out / file).exists() == stored.exists(), f"{name}/{file}: present in one run only"
        if not stored.exists():
            continue
        want = pd.read_csv(stored, dtype=str, keep_default_na=False)
        got = pd.read_csv(out / file, dtype=str, keep_default_na=False)
        assert list(got.columns[: len(want.columns)]) == list(want.columns), f"{name}/{file}: columns"
        assert len(got) == len(want), f"{name}/{file}: {len(got)} rows, golden {len(want)}"
        for column in want.columns:
            if column in TRAINING_COLUMNS:
                np.testing.assert_allclose(got[column].astype(float), want[column].astype(float), rtol=1e-6,
                                           err_msg=f"{name}/{file}: {column}")
            else:
                differ = np.flatnonzero(got[column].to_numpy() != want[column].to_numpy())
                assert differ.size == 0, (f"{name}/{file}: column {column} differs first in row {differ[0]}: "
                                          f"{got[column].iloc[differ[0]]} vs golden {want[column].iloc[differ[0]]}")
