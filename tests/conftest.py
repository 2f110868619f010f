"""Shared test helpers: small scenarios built in code."""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from simfl.learning.protocol import LocalUpdate, RoundMetrics

BASE = {
    "name": "t",
    "seed": 7,
    "cells": [{"name": "bs0", "position_m": [0, 0], "radius_m": 400, "bandwidth_hz": 20e6,
               "noise_dbm_per_hz": -174}],
    "devices": {"count": 5, "f_max_hz": {"uniform": [1e9, 2e9]}, "eps": {"uniform": [4e-27, 6e-27]},
                "p_max_dbm": {"uniform": [20, 23]}},
    "task": {"dataset": "fashion-mnist", "model": "cnn", "samples_per_device": 100, "rounds": 3},
    "optimisation": {"t_max_s": 60},
}


def scenario_dict(**changes):
    """A copy of BASE with top-level sections replaced or (for dicts) updated."""
    raw = copy.deepcopy(BASE)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key].update(value)
        else:
            raw[key] = value
    return raw


@pytest.fixture
def base_dict():
    return scenario_dict()


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: OpenMP threads only add synchronisation, which is ruinous on a shared CPU."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class StandInTrainer:
    """A deterministic stand-in for the torch trainer (the engine is torch-free): it
    remembers who trained in which round, and its "accuracy" counts the updates."""

    def __init__(self):
        self.calls = []
        self.versions = []
        self.aggregated = 0

    def local_updates(self, round_index, devices, version=0):
        self.calls.append((round_index, np.asarray(devices).copy()))
        self.versions.append(version)
        return [LocalUpdate(client=int(i), base_version=version, samples=1, params=None) for i in devices]

    def train(self, jobs):
        self.calls.append((jobs[0].key if jobs else 0, np.array([j.client for j in jobs])))
        self.versions.append([j.base_version for j in jobs])
        return [LocalUpdate(client=j.client, base_version=j.base_version, samples=1, params=None) for j in jobs]

    def server_update(self, round_index, version=0):
        return LocalUpdate(client=-1, base_version=version, samples=1, params=None)

    def global_params(self):
        return self.aggregated

    def fedavg(self, updates, weights=None):
        return len(updates)

    def set_global(self, params):
        self.aggregated = params

    def evaluate(self):
        round_index = self.calls[-1][0] if self.calls else 0
        return RoundMetrics(accuracy=self.aggregated / 100.0 + round_index / 1000.0, loss=1.0 / (round_index + 1))


@pytest.fixture(scope="session", autouse=True)
def temporary_cache(tmp_path_factory):
    """Generators and pools the tests train go to a temporary cache, never the user's
    (~/.cache/simfl or $SIMFL_CACHE); set in the environment so CLI subprocesses inherit it."""
    before = os.environ.get("SIMFL_CACHE")
    os.environ["SIMFL_CACHE"] = str(tmp_path_factory.mktemp("simfl-cache"))
    yield
    if before is None:
        os.environ.pop("SIMFL_CACHE", None)
    else:
        os.environ["SIMFL_CACHE"] = before


_GOLDEN: list = []


def _golden_runs(tmp_path_factory):
    """The golden cases (tests/golden/cases.py), started once per session."""
    if not _GOLDEN:
        sys.path.insert(0, str(Path(__file__).parent / "golden"))
        from cases import GoldenRuns  # tests/golden is not a package: found once its folder is on the path

        _GOLDEN.append(GoldenRuns(tmp_path_factory.mktemp("golden")))
    return _GOLDEN[0]


@pytest.fixture(scope="session")
def golden_runs(tmp_path_factory):
    return _golden_runs(tmp_path_factory)


def _is_golden(item: pytest.Item) -> bool:
    return item.nodeid.split("::")[0].endswith("test_golden.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The golden tests go last: their cases run from the session's start in lanes beside
    the other tests, so a test that waits for one reached early leaves the second core
    idle once the lanes are done (6 minutes of a 28-minute CI, measured), while a wait at
    the end is for cases that had the whole session to finish."""
    items.sort(key=_is_golden)  # stable: each group keeps its order


@pytest.fixture(scope="session", autouse=True)
def start_golden_runs_early(request, tmp_path_factory):
    """A session that includes the golden tests starts their cases at once, beside the
    other tests (at a lower priority), so they use the core the other tests leave idle."""
    if any(_is_golden(item) for item in request.session.items):
        _golden_runs(tmp_path_factory)
    yield
    if _GOLDEN:
        _GOLDEN[0].stop()
