"""Scenario files: the YAML schema, its validation, and command-line overrides.

A scenario is checked once, on load, into frozen dataclasses. Every problem found is
collected and reported in one ScenarioError naming the file, the field path and what is
allowed; inside simfl nothing is re-checked.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from simfl.aggregation import MODES, Aggregation
from simfl.dynamics import AVAILABILITY, FADING, MOBILITY, parse_component
from simfl.dynamics.availability import AlwaysOn
from simfl.dynamics.fading import NoFading
from simfl.dynamics.mobility import Static
from simfl.errors import ScenarioError
from simfl.generative import CONFIG_NAMES, KINDS as GENERATOR_KINDS
from simfl.learning.data import DATASETS
from simfl.learning.models import MODELS
from simfl.learning.protocol import PRECISIONS
from simfl.limits import int_range
from simfl.optim.fimi import SOLVERS
from simfl.optim.cross_entropy import CrossEntropy



# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Distribution:
    """A per-device attribute: a constant, uniform(low, high), an arithmetic sequence
    (linspace, for sweeps like Fig. 5b) or an explicit list of values."""

    kind: str  # "constant" | "uniform" | "linspace" | "values"
    params: tuple[float, ...]

    def sample(self, rng: Any, n: int) -> Any:
        import numpy as np

        if self.kind == "constant":
            return np.full(n, self.params[0], dtype=float)
        if self.kind == "uniform":
            return rng.uniform(self.params[0], self.params[1], size=n)
        if self.kind == "linspace":
            return np.linspace(self.params[0], self.params[1], n)
        return np.asarray(self.params, dtype=float)


@dataclass(frozen=True)
class PathLoss:
    intercept_db: float = 128.1
    slope_db: float = 37.6
    shadowing_std_db: float = 0.0
    fading: Any = NoFading()  # a simfl.dynamics.fading component


@dataclass(frozen=True)
class Downlink:
    """The base station's broadcast of the global model each round (off by default, as in
    the paper) and of the synthetic data before the first round."""

    bandwidth_hz: float
    power_dbm: float


@dataclass(frozen=True)
class Cell:
    name: str
    position_m: tuple[float, float]
    radius_m: float
    bandwidth_hz: float
    noise_dbm_per_hz: float
    path_loss: PathLoss
    downlink: Downlink | None = None


@dataclass(frozen=True)
class DeviceGroup:
    """`count` devices whose attributes are drawn from distributions. Positions are
    uniform in the disk of `cell` (every cell in turn when no cell is named), or at
    `distance_m` from that cell's base station at a uniform angle."""

    count: int
    cell: str | None
    f_max_hz: Distribution
    eps: Distribution
    p_max_dbm: Distribution
    distance_m: Distribution | None
    position_m: tuple[float, float] | None  # an explicit single device
    availability: Any = AlwaysOn()  # a simfl.dynamics.availability component
    battery_j: Distribution | None = None  # None: mains powered
    mobility: Any = Static()  # a simfl.dynamics.mobility component


@dataclass(frozen=True)
class Task:
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    model: str = "cnn"
    dirichlet_z: float = 0.4
    samples_per_device: int = 1250
    public_samples: int = 10000
    public_split_seed: int | None = None  # which images are public; None: the scenario's seed
    learning_rate: float = 0.02
    batch_size: int = 64
    local_epochs: int = 1
    rounds: int = 200
    # stop once the simulated time reaches this (the row that crosses it is the last),
    # even before `rounds` rows: modes whose rows mean different work compare at equal time
    max_time_s: float | None = None
    participants_per_round: int | None = None  # K of N drawn each round; None: every available device
    target_accuracies: tuple[float, ...] = (0.7,)
    eval_samples: int | None = None  # None: the whole test set
    # "bfloat16": about 2x faster local training on CPUs with AMX/AVX512-BF16; "auto": bfloat16
    # where the CPU has them and the numerics are fast, float32 otherwise (simfl.numerics);
    # auto is the default since its accuracy held over 3 seeds on the quickstart and paper-fmnist
    precision: str = "auto"
    # intra-op threads of every training and evaluation step: a result's low bits depend on
    # it, so it is a setting of the run, the same in a sequential and a Ray run
    threads: int = 1


@dataclass(frozen=True)
class Optimisation:
    t_max_s: float = 60.0
    err_max: float = 0.2  # Delta_max
    dgen_max: int = 5000  # D_max
    omega_cycles_per_sample: float = 5e6
    alpha: float = 5.0
    beta: float = 0.3
    gamma: float = 0.1
    zeta: float = 68.0
    solver: str = "ce"
    outage: float = 0.0  # q: plan on the fading's q-quantile, so about q of the updates miss T_max
    cross_entropy: CrossEntropy = field(default_factory=CrossEntropy)


@dataclass(frozen=True)
class Generator:
    kind: str = "diffusion"
    config: str = "default"  # "default" | "quick" | "tiny" (simfl.generative.train.CONFIGS)
    cache_dir: str | None = None
    guidance: float = 2.0
    sampling_steps: int = 50


@dataclass(frozen=True)
class Scenario:
    name: str
    source: str  # the file it came from, for messages
    seed: int
    cells: tuple[Cell, ...]
    devices: tuple[DeviceGroup, ...]
    task: Task
    optimisation: Optimisation
    generator: Generator
    policies: tuple[str, ...]
    raw: dict = field(repr=False, compare=False, default_factory=dict)
    aggregation: Aggregation = field(default_factory=Aggregation)
    # policy name -> its validated settings (`policy_settings:`; simfl.policy_settings)
    policy_settings: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def n_devices(self) -> int:
        return sum(g.count for g in self.devices)

    @property
    def split_seed(self) -> int:
        """The seed of the public/private split, and so of the generators trained on it."""
        return self.seed if self.task.public_split_seed is None else self.task.public_split_seed


# --------------------------------------------------------------------------- loading


MAX_FILE_BYTES = 10_000_000  # a scenario is a page of YAML; more is the wrong file


def load_scenario(path: str | Path, overrides: list[str] | None = None, seed: int | None = None) -> Scenario:
    """Read, override and validate a scenario file. Raises ScenarioError listing every problem."""
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


class _StrictLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping: PyYAML would keep the
    last silently, so a second `task:` block would replace the first."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: let PyYAML report it
            continue
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {first.line + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, source: str, what: str = "The file must be a YAML mapping.") -> Any:
    """YAML text -> Python objects (safe types only, no duplicate keys); ScenarioError naming
    the line otherwise."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(f"{source}: malformed YAML{where}: {problem}. {what}") from None
    except RecursionError:
        raise ScenarioError(f"{source}: YAML nested too deeply. {what}") from None


def scenario_from_dict(raw: Any, source: str = "<scenario>", overrides: list[str] | None = None, seed: int | None = None) -> Scenario:
    """Validate a parsed scenario mapping (after applying `--set` overrides and `--seed`)."""
    if not isinstance(raw, dict):
        raise ScenarioError(f"{source}: the file must be a YAML mapping of fields (name, seed, cells, devices, ...), got {type(raw).__name__}.")
    raw = copy.deepcopy(raw)
    for item in overrides or []:
        apply_override(raw, item, source)
    if seed is not None:
        raw["seed"] = seed
    checker = _Checker(source)
    _check_finite(raw, "", checker)
    scenario = _build(raw, checker, source)
    checker.raise_if_any()
    assert scenario is not None
    return scenario


def apply_override(raw: dict, item: str, source: str = "<scenario>") -> None:
    """Apply one `a.b.c=value` override in place; the value is parsed as YAML
    (so `1e6`, `[1, 2]`, `true` work). List items are addressed as `cells.0.x` or `cells[0].x`."""
    if "=" not in item:
        raise ScenarioError(f"{source}: --set {item!r}: expected FIELD=VALUE, e.g. --set task.rounds=5.")
    key, value_text = item.split("=", 1)
    try:
        value = yaml.load(value_text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.constructor.ConstructorError as exc:
        raise ScenarioError(f"{source}: --set {item!r}: {exc.problem}.") from None
    except (yaml.YAMLError, RecursionError):
        value = value_text
    parts = [p for p in key.replace("[", ".").replace("]", "").split(".") if p]
    if not parts:
        raise ScenarioError(f"{source}: --set {item!r}: empty field path.")
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        node = _step(node, part, item, source, create=True)
    last = parts[-1]
    if isinstance(node, list):
        idx = _index(node, last, item, source)
        node[idx] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ScenarioError(f"{source}: --set {item!r}: {'.'.join(parts[:-1])} is not a mapping or list.")


def _step(node: Any, part: str, item: str, source: str, create: bool) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, item, source)]
    if isinstance(node, dict):
        if part not in node or node[part] is None:
            node[part] = {}
        return node[part]
    raise ScenarioError(f"{source}: --set {item!r}: cannot descend into {part!r}.")


def _index(node: list, part: str, item: str, source: str) -> int:
    try:
        idx = int(part)
    except ValueError:
        raise ScenarioError(f"{source}: --set {item!r}: {part!r} must be a list index (0..{len(node) - 1}).") from None
    if not 0 <= idx < len(node):
        raise ScenarioError(f"{source}: --set {item!r}: index {idx} out of range (0..{len(node) - 1}).")
    return idx


# --------------------------------------------------------------------------- validation


class _Checker:
    """Collects problems as `path: message` lines, then raises them all at once."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []
        # files a scenario names (availability traces) are relative to the scenario's folder
        self.base_dir = str(Path(source).parent) if Path(source).exists() else None

    def fail(self, path: str, message: str) -> None:
        line = f"{path}: {message}"
        if line not in self.problems:  # the finiteness walk and a field's own check may agree
            self.problems.append(line)

    def _fail_unless_named(self, where: str, path: str, message: str) -> None:
        """Record a problem unless one under `where` is already recorded (a non-finite
        number the finiteness walk named more precisely)."""
        if not any(line.startswith(where) for line in self.problems):
            self.fail(path, message)

    def raise_if_any(self) -> None:
        if not self.problems:
            return
        if len(self.problems) == 1:
            raise ScenarioError(f"{self.source}: {self.problems[0]}")
        lines = "\n".join(f"  - {p}" for p in self.problems)
        raise ScenarioError(f"{self.source}: {len(self.problems)} problems\n{lines}")

    # typed getters: each returns a usable default after recording a problem

    def mapping(self, node: Any, path: str) -> dict:
        if node is None:
            return {}
        if not isinstance(node, dict):
            self.fail(path, f"must be a mapping, got {_describe(node)}")
            return {}
        return node

    def unknown(self, node: dict, allowed: set[str], path: str) -> None:
        for key in node:
            if key not in allowed:
                self.fail(_join(path, str(key)), f"unknown field; allowed: {', '.join(sorted(allowed))}")

    def number(self, node: dict, key: str, path: str, default: Any = None, *, minimum: float | None = None,
               above: float | None = None, maximum: float | None = None, below: float | None = None,
               integer: bool = False, required: bool = False) -> Any:
        where = _join(path, key)
        if key not in node or node[key] is None:
            if required:
                self.fail(where, "missing required field" + (" (an integer)" if integer else " (a number)"))
            return default
        value = node[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            value = _parse_number(value)
            if value is None:
                self.fail(where, f"must be {'an integer' if integer else 'a number'}, got {_describe(node[key])}")
                return default
        if not _finite(value):
            self.fail(where, f"must be finite, got {_show(value)}")
            return default
        if integer and isinstance(value, float) and not value.is_integer():
            self.fail(where, f"must be an integer, got {node[key]!r}")
            return default
        before = len(self.problems)
        if minimum is not None and value < minimum:
            self.fail(where, f"must be >= {minimum:g}, got {_show(value)}")
        if above is not None and value <= above:
            self.fail(where, f"must be > {above:g}, got {_show(value)}")
        if maximum is not None and value > maximum:
            self.fail(where, f"must be <= {maximum:g}, got {_show(value)}")
        if below is not None and value >= below:
            self.fail(where, f"must be < {below:g}, got {_show(value)}")
        if integer and len(self.problems) == before:
            # every integer has a sane range (simfl.limits), so a typo like 1e300 fails here
            # instead of overflowing or running until it is killed
            low, high = int_range(where)
            if not low <= value <= high:
                self.fail(where, f"must be an integer in [{low}, {high}], got {_show(value)}")
                return default
        if len(self.problems) > before:
            return default
        return int(value) if integer else float(value)

    def choice(self, node: dict, key: str, path: str, options: tuple[str, ...], default: str | None) -> Any:
        where = _join(path, key)
        if key not in node or node[key] is None:
            if default is None:
                self.fail(where, f"missing required field; one of: {', '.join(options)}")
            return default
        value = node[key]
        if not isinstance(value, str) or value not in options:
            self.fail(where, f"must be one of {', '.join(options)}; got {value!r}")
            return default
        return value

    def string(self, node: dict, key: str, path: str, default: str | None) -> Any:
        if key not in node or node[key] is None:
            return default
        if not isinstance(node[key], str):
            self.fail(_join(path, key), f"must be a string, got {_describe(node[key])}")
            return default
        return node[key]

    def distribution(self, node: dict, key: str, path: str, *, above: float | None = None,
                     minimum: float | None = None, count: int | None = None, required: bool = True) -> Distribution | None:
        where = _join(path, key)
        if key not in node or node[key] is None:
            if required:
                self.fail(where, "missing required field; give a number, {uniform: [low, high]}, {linspace: [first, last]} or {values: [...]}")
            return None
        value = node[key]
        dist: Distribution | None = None
        if not isinstance(value, (dict, bool)):
            number = value if isinstance(value, (int, float)) else _parse_number(value)
            if number is not None and _finite(number):
                dist = Distribution("constant", (float(number),))
        elif isinstance(value, dict) and len(value) == 1:
            kind, params = next(iter(value.items()))
            if kind in ("uniform", "linspace"):
                nums = _numbers(params)
                if nums is None or len(nums) != 2:
                    self._fail_unless_named(where, _join(where, kind), f"must be a list [low, high] of two numbers, got {params!r}")
                    return None
                if kind == "uniform" and nums[0] > nums[1]:
                    self.fail(_join(where, kind), f"low {nums[0]:g} > high {nums[1]:g}")
                    return None
                dist = Distribution(kind, tuple(nums))
            elif kind == "values":
                nums = _numbers(params)
                if nums is None or not nums:
                    self._fail_unless_named(where, _join(where, kind), f"must be a non-empty list of numbers, got {params!r}")
                    return None
                if count is not None and len(nums) != count:
                    self.fail(_join(where, kind), f"has {len(nums)} values but the group has count {count}")
                    return None
                dist = Distribution(kind, tuple(nums))
        if dist is None and any(line.startswith(where) for line in self.problems):
            return None  # a non-finite number inside it, already named by the finiteness walk
        if dist is None:
            self.fail(where, f"must be a number, {{uniform: [low, high]}}, {{linspace: [first, last]}} or {{values: [...]}}; got {value!r}")
            return None
        lo = min(dist.params)
        if above is not None and lo <= above:
            self.fail(where, f"every value must be > {above:g}, got {lo:g}")
        if minimum is not None and lo < minimum:
            self.fail(where, f"every value must be >= {minimum:g}, got {lo:g}")
        return dist


def _build(raw: dict, c: _Checker, source: str) -> Scenario | None:
    c.unknown(raw, {"name", "description", "seed", "cells", "devices", "task", "optimisation", "generator", "policies",
                    "aggregation", "policy_settings"}, "")
    name = c.string(raw, "name", "", Path(source).stem)
    seed = c.number(raw, "seed", "", 0, minimum=0, integer=True)

    cells = _build_cells(raw.get("cells"), c)
    devices = _build_devices(raw.get("devices"), c, {cell.name for cell in cells})
    task = _build_task(c.mapping(raw.get("task"), "task"), c)
    n_devices = sum(g.count for g in devices)
    if task.participants_per_round is not None and devices and task.participants_per_round > n_devices:
        c.fail("task.participants_per_round", f"must be <= the number of devices ({n_devices}), "
               f"got {task.participants_per_round}")
    optimisation = _build_optimisation(c.mapping(raw.get("optimisation"), "optimisation"), c)
    generator = _build_generator(c.mapping(raw.get("generator"), "generator"), c)
    policies = _build_policies(raw.get("policies"), c)
    aggregation = _build_aggregation(c.mapping(raw.get("aggregation"), "aggregation"), c, n_devices if devices else None)
    settings = _build_policy_settings(c.mapping(raw.get("policy_settings"), "policy_settings"), c)
    return Scenario(name=name, source=source, seed=seed, cells=cells, devices=devices, task=task,
                    optimisation=optimisation, generator=generator, policies=policies, raw=raw,
                    aggregation=aggregation, policy_settings=settings)


CELL_FIELDS = {"name", "position_m", "radius_m", "bandwidth_hz", "noise_dbm_per_hz", "path_loss", "downlink"}


def _build_cells(node: Any, c: _Checker) -> tuple[Cell, ...]:
    if node is None:
        c.fail("cells", "missing required field: a list of cells, each with position_m, radius_m, bandwidth_hz")
        return ()
    if isinstance(node, dict) and "hex_grid" in node:
        return _hex_grid_cells(node, c)
    if not isinstance(node, list) or not node:
        c.fail("cells", f"must be a non-empty list of cells or {{hex_grid: {{rings, spacing_m, ...}}}}, "
                        f"got {_describe(node)}")
        return ()
    cells = []
    names: set[str] = set()
    for i, item in enumerate(node):
        path = f"cells[{i}]"
        m = c.mapping(item, path)
        c.unknown(m, CELL_FIELDS, path)
        cell = _build_cell(m, path, c, f"cell{i}")
        if cell.name in names:
            c.fail(_join(path, "name"), f"duplicate cell name {cell.name!r}")
        names.add(cell.name)
        cells.append(cell)
    return tuple(cells)


def _hex_grid_cells(node: dict, c: _Checker) -> tuple[Cell, ...]:
    """`cells: {hex_grid: {rings: R, spacing_m: d, ...one cell's fields}}`: a base station
    at the centre and 6r on each ring r <= R of a hexagonal grid whose neighbours are d
    apart (1 + 3R(R + 1) cells), every one with the given fields; named <name><index>
    (default cell0, cell1, ...), the centre first, then ring by ring counter-clockwise
    from the east."""
    c.unknown(node, {"hex_grid"}, "cells")
    path = "cells.hex_grid"
    m = c.mapping(node["hex_grid"], path)
    c.unknown(m, (CELL_FIELDS - {"position_m"}) | {"rings", "spacing_m"}, path)
    rings = c.number(m, "rings", path, 1, minimum=0, integer=True, required=True)
    spacing = c.number(m, "spacing_m", path, 1.0, above=0, required=True)
    prefix = c.string(m, "name", path, "cell")
    template = _build_cell({k: v for k, v in m.items() if k not in ("rings", "spacing_m", "name")}, path, c, prefix)
    return tuple(replace(template, name=f"{prefix}{i}", position_m=position)
                 for i, position in enumerate(hex_grid_positions(int(rings or 0), float(spacing or 1.0))))


def hex_grid_positions(rings: int, spacing_m: float) -> list[tuple[float, float]]:
    """Base-station positions of a hexagonal grid: (0, 0), then each ring r = 1..rings
    (6r sites at hexagonal distance r, neighbours `spacing_m` apart) counter-clockwise
    from the east."""
    sites = []
    for q in range(-rings, rings + 1):
        for r in range(-rings, rings + 1):
            ring = max(abs(q), abs(r), abs(q + r))
            if ring <= rings:
                x, y = spacing_m * (q + r / 2.0), spacing_m * (r * math.sqrt(3.0) / 2.0)
                sites.append((ring, math.atan2(y, x) % (2.0 * math.pi), (x, y)))
    return [position for _, _, position in sorted(sites)]


def _build_cell(m: dict, path: str, c: _Checker, default_name: str) -> Cell:
    name = c.string(m, "name", path, default_name)
    position = _point(m.get("position_m", [0.0, 0.0]), _join(path, "position_m"), c)
    radius = c.number(m, "radius_m", path, 1.0, above=0, required=True)
    bandwidth = c.number(m, "bandwidth_hz", path, 1.0, above=0, required=True)
    noise = c.number(m, "noise_dbm_per_hz", path, -174.0, maximum=0)
    pl_path = _join(path, "path_loss")
    pl = c.mapping(m.get("path_loss"), pl_path)
    c.unknown(pl, {"intercept_db", "slope_db", "shadowing_std_db", "fading"}, pl_path)
    path_loss = PathLoss(
        intercept_db=c.number(pl, "intercept_db", pl_path, 128.1),
        slope_db=c.number(pl, "slope_db", pl_path, 37.6, above=0),
        shadowing_std_db=c.number(pl, "shadowing_std_db", pl_path, 0.0, minimum=0),
        fading=parse_component(FADING, pl.get("fading"), _join(pl_path, "fading"), c.fail, "none") or NoFading(),
    )
    downlink = None
    if m.get("downlink") is not None:
        dl_path = _join(path, "downlink")
        dl = c.mapping(m.get("downlink"), dl_path)
        c.unknown(dl, {"bandwidth_hz", "power_dbm"}, dl_path)
        downlink = Downlink(bandwidth_hz=c.number(dl, "bandwidth_hz", dl_path, 1.0, above=0, required=True),
                            power_dbm=c.number(dl, "power_dbm", dl_path, 46.0, required=True))
    return Cell(name, position, radius, bandwidth, noise, path_loss, downlink)


def _build_devices(node: Any, c: _Checker, cell_names: set[str]) -> tuple[DeviceGroup, ...]:
    if node is None:
        c.fail("devices", "missing required field: a group {count, f_max_hz, eps, p_max_dbm} or a list of groups and explicit devices")
        return ()
    groups_raw = node if isinstance(node, list) else [node]
    if not groups_raw:
        c.fail("devices", "must list at least one device group")
        return ()
    groups = []
    for i, item in enumerate(groups_raw):
        path = f"devices[{i}]" if isinstance(node, list) else "devices"
        m = c.mapping(item, path)
        c.unknown(m, {"count", "cell", "f_max_hz", "eps", "p_max_dbm", "distance_m", "position_m", "availability",
                      "battery_j", "mobility"}, path)
        explicit = "position_m" in m
        count = 1 if explicit else c.number(m, "count", path, 0, minimum=1, integer=True, required=True)
        if explicit and "count" in m and m["count"] != 1:
            c.fail(_join(path, "count"), "an explicit device (position_m given) has count 1")
        cell = c.string(m, "cell", path, None)
        if cell is not None and cell not in cell_names:
            c.fail(_join(path, "cell"), f"unknown cell {cell!r}; known: {', '.join(sorted(cell_names)) or 'none'}")
        position = _point(m["position_m"], _join(path, "position_m"), c) if explicit else None
        distance = None
        if "distance_m" in m:
            if explicit:
                c.fail(_join(path, "distance_m"), "give either position_m or distance_m, not both")
            distance = c.distribution(m, "distance_m", path, above=0, count=count)
        groups.append(DeviceGroup(
            count=count or 0,
            cell=cell,
            f_max_hz=c.distribution(m, "f_max_hz", path, above=0, count=count) or Distribution("constant", (1.0,)),
            eps=c.distribution(m, "eps", path, above=0, count=count) or Distribution("constant", (1.0,)),
            p_max_dbm=c.distribution(m, "p_max_dbm", path, count=count) or Distribution("constant", (0.0,)),
            distance_m=distance,
            position_m=position,
            battery_j=c.distribution(m, "battery_j", path, above=0, count=count, required=False),
            mobility=parse_component(MOBILITY, m.get("mobility"), _join(path, "mobility"), c.fail, "static") or Static(),
        ))
    # Availability last: a trace names devices by their index over all groups.
    n_devices = sum(g.count for g in groups)
    for i, (group, item) in enumerate(zip(list(groups), groups_raw)):
        value = item.get("availability") if isinstance(item, dict) else None
        if value is not None:
            path = f"devices[{i}]" if isinstance(node, list) else "devices"
            spec = parse_component(AVAILABILITY, value, _join(path, "availability"), c.fail, "always",
                                   {"n_devices": n_devices, "base_dir": c.base_dir})
            groups[i] = replace(group, availability=spec or AlwaysOn())
    return tuple(groups)


def _build_task(m: dict, c: _Checker) -> Task:
    p = "task"
    d = Task()
    c.unknown(m, set(Task.__dataclass_fields__), p)
    targets = m.get("target_accuracies", list(d.target_accuracies))
    nums = _numbers(targets if isinstance(targets, list) else [targets])
    if nums is None or not nums or any(not 0 < t <= 1 for t in nums):
        c.fail(_join(p, "target_accuracies"), f"must be a list of accuracies in (0, 1], e.g. [0.7, 0.8]; got {targets!r}")
        nums = list(d.target_accuracies)
    task = Task(
        dataset=c.choice(m, "dataset", p, tuple(DATASETS), d.dataset),
        data_dir=_directory(c, m, "data_dir", p, d.data_dir),
        model=c.choice(m, "model", p, tuple(sorted(MODELS)), d.model),
        dirichlet_z=c.number(m, "dirichlet_z", p, d.dirichlet_z, above=0),
        samples_per_device=c.number(m, "samples_per_device", p, d.samples_per_device, minimum=1, integer=True),
        public_samples=c.number(m, "public_samples", p, d.public_samples, minimum=1, integer=True),
        public_split_seed=c.number(m, "public_split_seed", p, d.public_split_seed, minimum=0, integer=True),
        learning_rate=c.number(m, "learning_rate", p, d.learning_rate, above=0),
        batch_size=c.number(m, "batch_size", p, d.batch_size, minimum=1, integer=True),
        local_epochs=c.number(m, "local_epochs", p, d.local_epochs, minimum=1, integer=True),
        rounds=c.number(m, "rounds", p, d.rounds, minimum=1, integer=True),
        max_time_s=c.number(m, "max_time_s", p, d.max_time_s, above=0),
        participants_per_round=c.number(m, "participants_per_round", p, d.participants_per_round, minimum=1,
                                        integer=True),
        target_accuracies=tuple(nums),
        eval_samples=c.number(m, "eval_samples", p, d.eval_samples, minimum=1, integer=True),
        precision=c.choice(m, "precision", p, PRECISIONS, d.precision),
        threads=c.number(m, "threads", p, d.threads, minimum=1, integer=True),
    )
    data, net = DATASETS.get(task.dataset), MODELS.get(task.model)
    if data is not None and net is not None and data.image_side % net.side_divisor:
        side = data.image_side
        fits = [name for name, spec in MODELS.items() if side % spec.side_divisor == 0]
        c.fail(_join(p, "model"), f"{task.model} needs an image side divisible by {net.side_divisor}, but "
                                  f"{task.dataset} images are {side}x{side}; use {' or '.join(fits)} with {task.dataset}")
    test_size = data.test_size if data is not None else None
    if test_size and task.eval_samples is not None and task.eval_samples > test_size:
        c.fail(_join(p, "eval_samples"), f"must be at most the {test_size} test images of {task.dataset}, "
                                         f"got {task.eval_samples}")
    train_size = data.train_size if data is not None else None
    if train_size and task.public_samples >= train_size:
        c.fail(_join(p, "public_samples"), f"must be less than the {train_size} training images of "
                                           f"{task.dataset}, got {task.public_samples}")
    return task


def _build_optimisation(m: dict, c: _Checker) -> Optimisation:
    p = "optimisation"
    d = Optimisation()
    c.unknown(m, set(Optimisation.__dataclass_fields__), p)
    cp = _join(p, "cross_entropy")
    ce_raw = c.mapping(m.get("cross_entropy"), cp)
    c.unknown(ce_raw, set(CrossEntropy.__dataclass_fields__), cp)
    dce = CrossEntropy()
    samples = c.number(ce_raw, "samples", cp, dce.samples, minimum=2, integer=True)
    elite = c.number(ce_raw, "elite", cp, dce.elite, minimum=1, integer=True)
    if elite is not None and samples is not None and elite > samples:
        c.fail(_join(cp, "elite"), f"must be <= samples ({samples}), got {elite}")
    ce = CrossEntropy(
        samples=samples,
        elite=elite,
        iterations=c.number(ce_raw, "iterations", cp, dce.iterations, minimum=1, integer=True),
        smoothing=c.number(ce_raw, "smoothing", cp, dce.smoothing, above=0, maximum=1),
        tol=c.number(ce_raw, "tol", cp, dce.tol, above=0),
    )
    return Optimisation(
        t_max_s=c.number(m, "t_max_s", p, d.t_max_s, above=0),
        err_max=c.number(m, "err_max", p, d.err_max, above=0, below=1),
        dgen_max=c.number(m, "dgen_max", p, d.dgen_max, minimum=0, integer=True),
        omega_cycles_per_sample=c.number(m, "omega_cycles_per_sample", p, d.omega_cycles_per_sample, above=0),
        alpha=c.number(m, "alpha", p, d.alpha, above=0),
        beta=c.number(m, "beta", p, d.beta, above=0),
        gamma=c.number(m, "gamma", p, d.gamma, minimum=0),
        zeta=c.number(m, "zeta", p, d.zeta, above=0),
        solver=c.choice(m, "solver", p, tuple(SOLVERS), d.solver),
        outage=c.number(m, "outage", p, d.outage, minimum=0, below=1),
        cross_entropy=ce,
    )


def _build_generator(m: dict, c: _Checker) -> Generator:
    p = "generator"
    d = Generator()
    c.unknown(m, set(Generator.__dataclass_fields__), p)
    return Generator(
        kind=c.choice(m, "kind", p, GENERATOR_KINDS, d.kind),
        config=c.choice(m, "config", p, CONFIG_NAMES, d.config),
        cache_dir=_directory(c, m, "cache_dir", p, d.cache_dir),
        guidance=c.number(m, "guidance", p, d.guidance, minimum=0),
        sampling_steps=c.number(m, "sampling_steps", p, d.sampling_steps, minimum=1, integer=True),
    )


def _build_aggregation(m: dict, c: _Checker, n_devices: int | None) -> Aggregation:
    p = "aggregation"
    d = Aggregation()
    c.unknown(m, set(Aggregation.__dataclass_fields__), p)
    concurrency = c.number(m, "max_concurrency", p, d.max_concurrency, minimum=1, integer=True)
    if concurrency is not None and n_devices is not None and concurrency > n_devices:
        c.fail(_join(p, "max_concurrency"), f"must be <= the number of devices ({n_devices}), got {concurrency}")
    return Aggregation(
        mode=c.choice(m, "mode", p, tuple(MODES), d.mode),
        buffer_size=c.number(m, "buffer_size", p, d.buffer_size, minimum=1, integer=True),
        max_concurrency=concurrency,
        staleness=_staleness(m, c, d.staleness),
        server_lr=c.number(m, "server_lr", p, d.server_lr, above=0),
        mixing=c.number(m, "mixing", p, d.mixing, above=0, maximum=1),
        eval_every=c.number(m, "eval_every", p, d.eval_every, minimum=1, integer=True),
        eval_every_s=_eval_every_s(m, c),
    )


def _eval_every_s(m: dict, c: _Checker) -> float | None:
    value = c.number(m, "eval_every_s", "aggregation", None, above=0)
    if value is not None and m.get("eval_every") is not None:
        c.fail("aggregation.eval_every_s", "give eval_every (aggregations) or eval_every_s (simulated seconds), "
                                           "not both")
    return value


def _staleness(m: dict, c: _Checker, default: float) -> float:
    """`staleness: constant` (exponent 0) or `{polynomial: a}` with a >= 0."""
    where = "aggregation.staleness"
    value = m.get("staleness")
    if value is None:
        return default
    if value == "constant":
        return 0.0
    if isinstance(value, dict) and set(value) == {"polynomial"}:
        exponent = c.number(value, "polynomial", where, None, minimum=0, required=True)
        return default if exponent is None else float(exponent)
    c.fail(where, f"must be constant or {{polynomial: a}} with an exponent a >= 0 (weight (1 + staleness)^-a), "
                  f"got {value!r}")
    return default


def _build_policies(node: Any, c: _Checker) -> tuple[str, ...]:
    if node is None:
        return ()
    if not isinstance(node, list) or not all(isinstance(x, str) and x for x in node):
        c.fail("policies", f"must be a list of policy names, e.g. [fimi, tfl]; got {node!r}")
        return ()
    from simfl.registry import name_problem  # lazy: the registry imports policies, which import this module

    for i, name in enumerate(node):
        problem = name_problem(name)
        if problem:
            c.fail(f"policies[{i}]", problem)
    return tuple(node)


def _build_policy_settings(m: dict, c: _Checker) -> dict[str, dict[str, float]]:
    """`policy_settings: {<policy name>: {<field>: value}}`, each checked against the
    fields the policy declares (its class's `settings`). Only these policies' classes are
    imported (built-in or installed ones: a policy in a user's file is never imported to
    validate a scenario, so it cannot have settings here)."""
    from simfl.registry import name_problem, resolve  # lazy: the registry imports policies

    out: dict[str, dict[str, float]] = {}
    for key, value in m.items():
        where = _join("policy_settings", str(key))
        if not isinstance(key, str) or "+" in key or ":" in key:
            c.fail(where, "settings go under a built-in or installed policy's own name (for a combination "
                          "like fimi+scaffold, under each part's name, e.g. scaffold)")
            continue
        problem = name_problem(key)
        if problem:
            c.fail(where, problem)
            continue
        out[key] = _check_settings(resolve(key).settings, c.mapping(value, where), where, key, c)
    return out


def _check_settings(settings: Any, m: dict, where: str, name: str, c: _Checker) -> dict[str, float]:
    """The values of `settings` (a tuple of simfl.policy_settings.Setting) in `m`, their
    defaults where absent, every problem recorded in `c`."""
    if m and not settings:
        c.fail(where, f"policy {name!r} takes no settings")
        return {}
    c.unknown(m, {s.name for s in settings}, where)
    values = {}
    for s in settings:
        value = c.number(m, s.name, where, s.default, minimum=s.minimum, above=s.above, maximum=s.maximum,
                         below=s.below, integer=s.integer)
        values[s.name] = s.default if value is None else value
    return values


def policy_settings(scenario: Scenario, settings: Any, name: str) -> dict[str, float]:
    """The values of a policy's declared `settings` from the scenario's
    `policy_settings.<name>` (their defaults where absent); a ScenarioError naming the
    file and field when one is out of range."""
    c = _Checker(scenario.source)
    values = _check_settings(settings, scenario.policy_settings.get(name, {}), _join("policy_settings", name), name, c)
    c.raise_if_any()
    return values


# --------------------------------------------------------------------------- helpers


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"


def _parse_number(value: Any) -> float | None:
    """YAML 1.1 reads `1e6` as a string; accept numeric strings like that (not words like
    'nan' or 'infinity', which float() would also take)."""
    if isinstance(value, str) and _NUMERIC.match(value.strip()):
        try:
            return float(value)
        except ValueError:
            return None
    return None


_NUMERIC = re.compile(r"^[+-]?(\d[\d_]*\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _finite(value: float | int) -> bool:
    if isinstance(value, int):
        return abs(value) < 2**1023  # float() of a larger int overflows
    return math.isfinite(value)


def _show(value: float | int) -> str:
    if isinstance(value, int) and abs(value) >= 10**16:
        return f"{value:.3g}" if _finite(value) else f"a {len(str(abs(value)))}-digit integer"
    return f"{value:g}"


def _check_finite(node: Any, path: str, c: _Checker, seen: set[int] | None = None) -> None:
    """Every number anywhere in the scenario must be finite: NaN and infinity (YAML's
    .nan/.inf, or a string like 1e999) are refused here, field by field, for fields
    added later too, before any field's own check can misread them."""
    seen = set() if seen is None else seen
    if isinstance(node, (dict, list)):
        if id(node) in seen:  # YAML aliases share nodes: visit each once
            return
        seen.add(id(node))
        items = node.items() if isinstance(node, dict) else ((f"[{i}]", v) for i, v in enumerate(node))
        for key, value in items:
            where = f"{path}{key}" if isinstance(node, list) else _join(path, str(key))
            _check_finite(value, where, c, seen)
        return
    if isinstance(node, bool):
        return
    number = node if isinstance(node, (int, float)) else _parse_number(node)
    if number is not None and not _finite(number):
        c.fail(path, f"must be finite, got {_show(number)}")


def _directory(c: _Checker, m: dict, key: str, path: str, default: str | None) -> str | None:
    """A directory field: it may not exist yet, but it must not be a file."""
    value = c.string(m, key, path, default)
    if value is not None:
        where = Path(value).expanduser()
        if where.exists() and not where.is_dir():
            c.fail(_join(path, key), f"{value} is a file, not a directory")
        elif not value.strip():
            c.fail(_join(path, key), "must be a directory path, got an empty string")
    return value


def _numbers(values: Any) -> list[float] | None:
    if not isinstance(values, list):
        return None
    out = []
    for v in values:
        if isinstance(v, bool):
            return None
        if isinstance(v, (int, float)):
            if not _finite(v):
                return None
            out.append(float(v))
        else:
            n = _parse_number(v)
            if n is None or not _finite(n):
                return None
            out.append(n)
    return out


def _point(value: Any, path: str, c: _Checker) -> tuple[float, float]:
    nums = _numbers(value)
    if nums is None or len(nums) != 2:
        c.fail(path, f"must be a point [x, y] in metres, got {value!r}")
        return (0.0, 0.0)
    return (nums[0], nums[1])
