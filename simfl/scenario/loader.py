"""Reading a scenario: the file (size, binary and encoding refused by name), its YAML,
the `--set` overrides and `--seed`, then one validation pass into a Scenario; every
problem is reported in one ScenarioError naming the file, the field path and what is
allowed."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping, Sequence

from simfl.errors import ScenarioError
from simfl.scenario.checks import Checker, check_finite
from simfl.scenario.overrides import apply_overrides
from simfl.scenario.schema import Scenario
from simfl.scenario.sections import build_scenario
from simfl.scenario.strict_yaml import parse_yaml

MAX_FILE_BYTES = 10_000_000  # a scenario is a page of YAML; more is the wrong file


def load_scenario(path: str | Path, overrides: Sequence[str] | Mapping[str, Any] | None = None,
                  seed: int | None = None) -> Scenario:
    """Read, override and validate a scenario file. Raises ScenarioError listing every problem.
    `overrides`: `--set` strings, or a {field: value} mapping (simfl.scenario.overrides).

    The policies it names and their settings are checked against the policy classes by
    simfl.registry.check_policies, which every command calls right after this."""
    path = Path(path)
    source = str(path)
    try:
        if path.is_dir():
            raise ScenarioError(f"{source}: is a directory, not a scenario file.")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ScenarioError(f"{source}: {path.stat().st_size} bytes is not a scenario file (a YAML file of at "
                                f"most {MAX_FILE_BYTES} bytes).")
        data = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{source}: cannot read the scenario file ({exc.strerror}).") from None
    raw = parse_yaml(_decode(data, source), source)
    return scenario_from_dict(raw, source, overrides=overrides, seed=seed)


def _decode(data: bytes, source: str) -> str:
    """The file's text; a binary or non-UTF-8 file is named, not half-read."""
    nul = data.find(b"\0")
    if nul >= 0:
        raise ScenarioError(f"{source}: is a binary file (a NUL byte at offset {nul}), not a YAML scenario.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ScenarioError(f"{source}: is not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line}); "
                            "save the scenario as UTF-8.") from None


def scenario_from_dict(raw: Any, source: str = "<scenario>",
                       overrides: Sequence[str] | Mapping[str, Any] | None = None, seed: int | None = None) -> Scenario:
    """Validate a parsed scenario mapping (after applying `--set` overrides and `--seed`);
    the caller's mapping is left as it was."""
    if not isinstance(raw, dict):
        raise ScenarioError(f"{source}: the file must be a YAML mapping of fields (name, seed, cells, devices, ...), "
                            f"got {type(raw).__name__}.")
    raw = copy.deepcopy(raw)
    apply_overrides(raw, overrides, source)
    if seed is not None:
        raw["seed"] = seed
    checker = Checker(source)
    check_finite(raw, "", checker)
    scenario = build_scenario(raw, checker, source)
    checker.raise_if_any()
    return scenario


__all__ = ["MAX_FILE_BYTES", "load_scenario", "scenario_from_dict"]
