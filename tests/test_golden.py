"""The shipped scenarios keep their results: each golden case (tests/golden/cases.py) is
run again through `simfl run` and its rounds.csv and events.csv are compared with the
files stored before the run-long engine was written.

Everything discrete the simulator decides (rounds, devices, cells, outcomes, stragglers,
versions) must match exactly, and every number it computes (times, energies, bits, gains,
rates) to 1e-12 relative: numpy's vectorised log10, exp and power round differently in the
last bit on CPUs with and without AVX-512 (the files were written on one with it; a run on
an AVX2-only EPYC differs in the 16th digit of a few gains), and a golden file cannot fix
the CPU of the machine that checks it. On the machine that wrote the files everything
matches to the last digit. Accuracy and loss come from torch, whose kernels may round
differently with other vector instructions: they must match to 1e-6 relative the golden
training columns of this CPU's capability (`training-<capability>.csv` where the main
files were written with another, see cases.py); a capability with none fails."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent / "golden"))
from cases import (CASES, FILES, HERE, MAIN_CAPABILITY, TRAINING_COLUMNS, cpu_capability,  # noqa: E402
                   run_case, training_file)

SIMULATOR_RTOL = 1e-12


def _numeric(column: pd.Series) -> np.ndarray | None:
    """The column as floats when every entry is a number with a fraction or an exponent
    (a computed quantity), None for labels and integer counts (compared exactly)."""
    values = column.to_numpy(dtype=str)
    if not any(("." in v or "e" in v) for v in values):
        return None
    try:
        return values.astype(float)
    except ValueError:
        return None


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("golden-cache")


@pytest.mark.parametrize("name", sorted(CASES))
def test_shipped_scenario_matches_its_golden_files(name, tmp_path, cache, monkeypatch):
    monkeypatch.setenv("SIMFL_CACHE", str(cache))
    capability = cpu_capability()
    training = None
    if capability != MAIN_CAPABILITY:
        assert training_file(name, capability).exists(), (
            f"no golden training columns for torch's CPU capability {capability}: write them with "
            f"`python tests/golden/cases.py --training {name}` on the code the main files were written with")
        training = pd.read_csv(training_file(name, capability), dtype=str, keep_default_na=False)
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
        if training is not None and file == "rounds.csv":
            want = want.copy()
            for column in TRAINING_COLUMNS:
                want[column] = training[column]
        for column in want.columns:
            if column in TRAINING_COLUMNS:
                np.testing.assert_allclose(got[column].astype(float), want[column].astype(float), rtol=1e-6,
                                           err_msg=f"{name}/{file}: {column}")
            elif (numbers := _numeric(want[column])) is not None:
                np.testing.assert_allclose(got[column].astype(float), numbers, rtol=SIMULATOR_RTOL, atol=0.0,
                                           err_msg=f"{name}/{file}: {column}")
            else:
                differ = np.flatnonzero(got[column].to_numpy() != want[column].to_numpy())
                assert differ.size == 0, (f"{name}/{file}: column {column} differs first in row {differ[0]}: "
                                          f"{got[column].iloc[differ[0]]} vs golden {want[column].iloc[differ[0]]}")
