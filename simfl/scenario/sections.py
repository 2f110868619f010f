"""Building each section of a scenario from its parsed mapping: cells (a list, or a
hexagonal grid), device groups, task, optimisation, generator, aggregation, and the
shape of `policies` and `policy_settings`. Each builder records every problem in the
Checker and returns a usable value, so one pass reports them all.

Whether the policies named exist and which settings each takes depends on the policy
classes, which live above this layer: simfl.registry.check_policies checks that, and
every entry point calls it right after loading.
"""

from __future__ import annotations

import difflib
from dataclasses import replace
from pathlib import Path
from typing import Any

from simfl.aggregation import MODES, Aggregation
from simfl.dynamics import AVAILABILITY, FADING, MOBILITY, parse_component
from simfl.dynamics.availability import AlwaysOn
from simfl.dynamics.fading import NoFading
from simfl.dynamics.mobility import Static
from simfl.generative import CONFIG_NAMES, KINDS as GENERATOR_KINDS
from simfl.geometry import hex_grid_sites
from simfl.learning.data import DATASETS
from simfl.learning.models import MODELS
from simfl.learning.protocol import PRECISIONS
from simfl.limits import MAX_DISTANCE_M
from simfl.optim.cross_entropy import CrossEntropy
from simfl.optim.fimi import SOLVERS
from simfl.pathloss import MODELS as PATH_LOSS_MODELS
from simfl.radio import DEFAULT_CARRIER_HZ
from simfl.scenario.checks import Checker, describe, join, numbers
from simfl.spectrum import INTERFERENCE_MODELS, REUSE_FACTORS, check_allocator, reuse_colour
from simfl.scenario.schema import (Cell, DeviceGroup, Distribution, Downlink, Generator, Handover, NetworkSettings,
                                   Optimisation, PathLoss, Scenario, Server, Task)

SECTIONS = {"name", "description", "seed", "cells", "devices", "task", "optimisation", "generator", "policies",
            "aggregation", "policy_settings", "network", "server", "flower"}
# keys under `flower.<Strategy>` that are simfl's, not the strategy constructor's
FLOWER_RESERVED = ("train_config", "evaluate_config", "evaluate_fn")


def build_scenario(raw: dict, c: Checker, source: str) -> Scenario:
    """The Scenario of a parsed mapping, every problem recorded in `c` (the caller raises
    them; the Scenario returned alongside problems is not to be used)."""
    c.unknown(raw, SECTIONS, "")
    name = c.string(raw, "name", "", Path(source).stem)
    seed = c.number(raw, "seed", "", 0, minimum=0, integer=True)

    cells = _build_cells(raw.get("cells"), c)
    devices = _build_devices(raw.get("devices"), c, {cell.name for cell in cells})
    _check_model_distances(cells, devices, isinstance(raw.get("devices"), list), c)
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
    network = _build_network(c.mapping(raw.get("network"), "network"), c)
    server = _build_server(c.mapping(raw.get("server"), "server"), c)
    flower = _build_flower(c.mapping(raw.get("flower"), "flower"), c)
    return Scenario(name=name, source=source, seed=seed, cells=cells, devices=devices, task=task,
                    optimisation=optimisation, generator=generator, policies=policies, raw=raw,
                    aggregation=aggregation, policy_settings=settings, network=network, server=server,
                    flower=flower)


CELL_FIELDS = {"name", "position_m", "radius_m", "bandwidth_hz", "noise_dbm_per_hz", "path_loss", "downlink",
               "carrier_hz"}


def _build_cells(node: Any, c: Checker) -> tuple[Cell, ...]:
    if node is None:
        c.fail("cells", "missing required field: a list of cells, each with position_m, radius_m, bandwidth_hz")
        return ()
    if isinstance(node, dict) and "hex_grid" in node:
        return _hex_grid_cells(node, c)
    if not isinstance(node, list) or not node:
        c.fail("cells", f"must be a non-empty list of cells or {{hex_grid: {{rings, spacing_m, ...}}}}, "
                        f"got {describe(node)}")
        return ()
    cells = []
    names: set[str] = set()
    for i, item in enumerate(node):
        path = f"cells[{i}]"
        m = c.mapping(item, path)
        c.unknown(m, CELL_FIELDS, path)
        cell = _build_cell(m, path, c, f"cell{i}")
        if cell.name in names:
            c.fail(join(path, "name"), f"duplicate cell name {cell.name!r}")
        names.add(cell.name)
        cells.append(cell)
    return tuple(cells)


def _hex_grid_cells(node: dict, c: Checker) -> tuple[Cell, ...]:
    """`cells: {hex_grid: {rings: R, spacing_m: d, reuse: 1 | 3 | 7, ...one cell's fields}}`:
    a base station at the centre and 6r on each ring r <= R of a hexagonal grid whose
    neighbours are d apart (1 + 3R(R + 1) cells), every one with the given fields; named
    <name><index> (default cell0, cell1, ...), the centre first, then ring by ring
    counter-clockwise from the east. Under reuse 3 or 7 each cell's carrier is the given
    one plus its colour (simfl.spectrum.reuse_colour) times its bandwidth."""
    c.unknown(node, {"hex_grid"}, "cells")
    path = "cells.hex_grid"
    m = c.mapping(node["hex_grid"], path)
    c.unknown(m, (CELL_FIELDS - {"position_m"}) | {"rings", "spacing_m", "reuse"}, path)
    rings = c.number(m, "rings", path, 1, minimum=0, integer=True, required=True)
    spacing = c.number(m, "spacing_m", path, 1.0, above=0, required=True)
    if rings is not None and spacing is not None and rings * spacing > MAX_DISTANCE_M:
        # the grid's corners lie on the axes, rings x spacing_m from the centre
        c.fail(join(path, "spacing_m"), f"puts the outer ring {rings} x {spacing:g} = {rings * spacing:g} m from the "
                                        f"centre; base stations must be within {MAX_DISTANCE_M:g} m of it")
    reuse = m.get("reuse", 1)
    if isinstance(reuse, bool) or reuse not in REUSE_FACTORS:
        c.fail(join(path, "reuse"), f"must be one of {', '.join(map(str, REUSE_FACTORS))} (cells per cluster of "
                                    f"carriers), got {reuse!r}")
        reuse = 1
    prefix = c.string(m, "name", path, "cell")
    template = _build_cell({k: v for k, v in m.items() if k not in ("rings", "spacing_m", "name", "reuse")}, path, c,
                           prefix)
    return tuple(replace(template, name=f"{prefix}{i}", position_m=position,
                         carrier_hz=template.carrier_hz + reuse_colour(q, r, int(reuse)) * template.bandwidth_hz)
                 for i, ((q, r), position) in enumerate(hex_grid_sites(int(rings or 0), float(spacing or 1.0))))


def _build_cell(m: dict, path: str, c: Checker, default_name: str) -> Cell:
    name = c.string(m, "name", path, default_name)
    position = c.point(m.get("position_m", [0.0, 0.0]), join(path, "position_m"))
    radius = c.number(m, "radius_m", path, 1.0, above=0, required=True)
    bandwidth = c.number(m, "bandwidth_hz", path, 1.0, above=0, required=True)
    noise = c.number(m, "noise_dbm_per_hz", path, -174.0, maximum=0)
    carrier = c.number(m, "carrier_hz", path, DEFAULT_CARRIER_HZ, above=0)
    path_loss = _build_path_loss(c.mapping(m.get("path_loss"), join(path, "path_loss")), path, c, carrier, radius)
    downlink = None
    if m.get("downlink") is not None:
        dl_path = join(path, "downlink")
        dl = c.mapping(m.get("downlink"), dl_path)
        c.unknown(dl, {"bandwidth_hz", "power_dbm"}, dl_path)
        downlink = Downlink(bandwidth_hz=c.number(dl, "bandwidth_hz", dl_path, 1.0, above=0, required=True),
                            power_dbm=c.number(dl, "power_dbm", dl_path, 46.0, required=True))
    return Cell(name, position, radius, bandwidth, noise, path_loss, downlink, carrier_hz=carrier)


LOG_DISTANCE_FIELDS = {"intercept_db", "slope_db", "shadowing_std_db"}


def _build_path_loss(pl: dict, cell_path: str, c: Checker, carrier_hz: float | None,
                     radius_m: float | None) -> PathLoss:
    """`path_loss: {intercept_db, slope_db, shadowing_std_db, fading}`, the paper's
    log-distance model, or `{model: uma | umi | rma, <the model's fields>, fading}`, a
    TR 38.901 model (simfl.pathloss.MODELS) whose fields, and the cell's carrier and
    radius, are held to the ranges the model declares."""
    where = join(cell_path, "path_loss")
    fading = parse_component(FADING, pl.get("fading"), join(where, "fading"), c.fail, "none") or NoFading()
    name = pl.get("model")
    if name is None:
        c.unknown(pl, LOG_DISTANCE_FIELDS | {"fading", "model"}, where)
        return PathLoss(intercept_db=c.number(pl, "intercept_db", where, 128.1),
                        slope_db=c.number(pl, "slope_db", where, 37.6, above=0),
                        shadowing_std_db=c.number(pl, "shadowing_std_db", where, 0.0, minimum=0), fading=fading)
    cls = PATH_LOSS_MODELS.get(name) if isinstance(name, str) else None
    if cls is None:
        close = difflib.get_close_matches(str(name), PATH_LOSS_MODELS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        c.fail(join(where, "model"), f"unknown path-loss model {name!r}{hint}; allowed: {', '.join(PATH_LOSS_MODELS)} "
                                     "(TR 38.901), or no model for the log-distance model "
                                     "{intercept_db, slope_db, shadowing_std_db}")
        return PathLoss(fading=fading)
    allowed = set(cls.FIELDS) | {"model", "fading"}
    for key in pl:
        if key in LOG_DISTANCE_FIELDS:
            c.fail(join(where, str(key)), f"belongs to the log-distance model (no `model`), not to model {name}; "
                                          f"allowed with {name}: {', '.join(sorted(allowed))}")
        elif key not in allowed:
            c.fail(join(where, str(key)), f"unknown field; allowed with model {name}: {', '.join(sorted(allowed))}")
    values = {}
    for key, limits in cls.FIELDS.items():
        value = c.number(pl, key, where, limits.default)
        if value is not None and not limits.low <= value <= limits.high:
            c.fail(join(where, key), f"must be in [{limits.low:g}, {limits.high:g}] {limits.unit} for model {name} "
                                     f"({limits.why}), got {value:g}")
        values[key] = limits.default if value is None or not limits.low <= value <= limits.high else value
    model = cls(**values)
    for field, message in model.problems(carrier_hz if carrier_hz is not None else DEFAULT_CARRIER_HZ,
                                         radius_m if radius_m is not None else 0.0):
        c.fail(join(cell_path, field), message)
    return PathLoss(fading=fading, model=model)


def _check_model_distances(cells: tuple[Cell, ...], devices: tuple[DeviceGroup, ...], listed: bool,
                           c: Checker) -> None:
    """A group placed at fixed distances (`distance_m`) from cells with a TR 38.901 model
    stays within the distances the model's table holds for (the cell named, or every cell
    when the group spreads over them)."""
    for i, group in enumerate(devices):
        if group.distance_m is None:
            continue
        farthest = max(group.distance_m.params)
        for cell in cells if group.cell is None else [cell for cell in cells if cell.name == group.cell]:
            model = cell.path_loss.model
            if model is not None and farthest > model.MAX_DISTANCE_M:
                c.fail(join(f"devices[{i}]" if listed else "devices", "distance_m"),
                       f"every value must be <= {model.MAX_DISTANCE_M:g} m from cell {cell.name}, whose path_loss "
                       f"model {model.kind} holds to d_2D = {model.MAX_DISTANCE_M:g} m (TR 38.901 Table 7.4.1-1), "
                       f"got {farthest:g}")
                break


def _build_devices(node: Any, c: Checker, cell_names: set[str]) -> tuple[DeviceGroup, ...]:
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
            c.fail(join(path, "count"), "an explicit device (position_m given) has count 1")
        cell = c.string(m, "cell", path, None)
        if cell is not None and cell not in cell_names:
            c.fail(join(path, "cell"), f"unknown cell {cell!r}; known: {', '.join(sorted(cell_names)) or 'none'}")
        position = c.point(m["position_m"], join(path, "position_m")) if explicit else None
        distance = None
        if "distance_m" in m:
            if explicit:
                c.fail(join(path, "distance_m"), "give either position_m or distance_m, not both")
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
            mobility=parse_component(MOBILITY, m.get("mobility"), join(path, "mobility"), c.fail, "static") or Static(),
        ))
    # Availability last: a trace names devices by their index over all groups, and a
    # FedScale trace gives its clients to the group's own devices.
    n_devices = sum(g.count for g in groups)
    first = 0
    for i, (group, item) in enumerate(zip(list(groups), groups_raw)):
        value = item.get("availability") if isinstance(item, dict) else None
        if value is not None:
            path = f"devices[{i}]" if isinstance(node, list) else "devices"
            spec = parse_component(AVAILABILITY, value, join(path, "availability"), c.fail, "always",
                                   {"n_devices": n_devices, "base_dir": c.base_dir, "first_device": first,
                                    "group_size": group.count})
            groups[i] = replace(group, availability=spec or AlwaysOn())
        first += group.count
    return tuple(groups)


def _build_task(m: dict, c: Checker) -> Task:
    p = "task"
    d = Task()
    c.unknown(m, set(Task.__dataclass_fields__), p)
    targets = m.get("target_accuracies", list(d.target_accuracies))
    nums = numbers(targets if isinstance(targets, list) else [targets])
    if nums is None or not nums or any(not 0 < t <= 1 for t in nums):
        c.fail(join(p, "target_accuracies"), f"must be a list of accuracies in (0, 1], e.g. [0.7, 0.8]; got {targets!r}")
        nums = list(d.target_accuracies)
    task = Task(
        dataset=c.choice(m, "dataset", p, tuple(DATASETS), d.dataset),
        data_dir=c.directory(m, "data_dir", p, d.data_dir),
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
        c.fail(join(p, "model"), f"{task.model} needs an image side divisible by {net.side_divisor}, but "
                                  f"{task.dataset} images are {side}x{side}; use {' or '.join(fits)} with {task.dataset}")
    test_size = data.test_size if data is not None else None
    if test_size and task.eval_samples is not None and task.eval_samples > test_size:
        c.fail(join(p, "eval_samples"), f"must be at most the {test_size} test images of {task.dataset}, "
                                         f"got {task.eval_samples}")
    train_size = data.train_size if data is not None else None
    if train_size and task.public_samples >= train_size:
        c.fail(join(p, "public_samples"), f"must be less than the {train_size} training images of "
                                           f"{task.dataset}, got {task.public_samples}")
    return task


def _build_optimisation(m: dict, c: Checker) -> Optimisation:
    p = "optimisation"
    d = Optimisation()
    c.unknown(m, set(Optimisation.__dataclass_fields__), p)
    cp = join(p, "cross_entropy")
    ce_raw = c.mapping(m.get("cross_entropy"), cp)
    c.unknown(ce_raw, set(CrossEntropy.__dataclass_fields__), cp)
    dce = CrossEntropy()
    samples = c.number(ce_raw, "samples", cp, dce.samples, minimum=2, integer=True)
    elite = c.number(ce_raw, "elite", cp, dce.elite, minimum=1, integer=True)
    if elite is not None and samples is not None and elite > samples:
        c.fail(join(cp, "elite"), f"must be <= samples ({samples}), got {elite}")
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


def _build_generator(m: dict, c: Checker) -> Generator:
    p = "generator"
    d = Generator()
    c.unknown(m, set(Generator.__dataclass_fields__), p)
    return Generator(
        kind=c.choice(m, "kind", p, GENERATOR_KINDS, d.kind),
        config=c.choice(m, "config", p, CONFIG_NAMES, d.config),
        cache_dir=c.directory(m, "cache_dir", p, d.cache_dir),
        guidance=c.number(m, "guidance", p, d.guidance, minimum=0),
        sampling_steps=c.number(m, "sampling_steps", p, d.sampling_steps, minimum=1, integer=True),
    )


def _build_aggregation(m: dict, c: Checker, n_devices: int | None) -> Aggregation:
    p = "aggregation"
    d = Aggregation()
    c.unknown(m, set(Aggregation.__dataclass_fields__), p)
    concurrency = c.number(m, "max_concurrency", p, d.max_concurrency, minimum=1, integer=True)
    if concurrency is not None and n_devices is not None and concurrency > n_devices:
        c.fail(join(p, "max_concurrency"), f"must be <= the number of devices ({n_devices}), got {concurrency}")
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


def _build_server(m: dict, c: Checker) -> Server:
    p = "server"
    d = Server()
    c.unknown(m, set(Server.__dataclass_fields__), p)
    return Server(aggregation_delay_s=c.number(m, "aggregation_delay_s", p, d.aggregation_delay_s, minimum=0),
                  synthesis_images_per_s=c.number(m, "synthesis_images_per_s", p, d.synthesis_images_per_s, above=0))


def _eval_every_s(m: dict, c: Checker) -> float | None:
    value = c.number(m, "eval_every_s", "aggregation", None, above=0)
    if value is not None and m.get("eval_every") is not None:
        c.fail("aggregation.eval_every_s", "give eval_every (aggregations) or eval_every_s (simulated seconds), "
                                           "not both")
    return value


def _staleness(m: dict, c: Checker, default: float) -> float:
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




def _build_network(m: dict, c: Checker) -> NetworkSettings:
    """`network: {channel_step_s, interference, allocator, handover: {hysteresis_db,
    time_to_trigger_s, interruption_s}}`, each number >= 0 and within its physical range
    (simfl.limits); the handover fields default to 0 (hand over the moment another cell is
    stronger, without a break); interference to none, the allocator to lowest_free."""
    c.unknown(m, {"handover", "channel_step_s", "interference", "allocator"}, "network")
    step = c.number(m, "channel_step_s", "network", None, above=0)
    interference = c.choice(m, "interference", "network", INTERFERENCE_MODELS, "none")
    placer = m.get("allocator", "lowest_free")
    check_allocator(placer, "network.allocator", c.fail)
    p = "network.handover"
    h = c.mapping(m.get("handover"), p)
    c.unknown(h, set(Handover.__dataclass_fields__), p)
    d = Handover()
    return NetworkSettings(handover=Handover(
        hysteresis_db=c.number(h, "hysteresis_db", p, d.hysteresis_db, minimum=0),
        time_to_trigger_s=c.number(h, "time_to_trigger_s", p, d.time_to_trigger_s, minimum=0),
        interruption_s=c.number(h, "interruption_s", p, d.interruption_s, minimum=0),
    ), channel_step_s=step, interference=str(interference), allocator=str(placer))


def _build_policies(node: Any, c: Checker) -> tuple[str, ...]:
    """`policies: [name, ...]`: the names' shape; whether each names a policy is checked
    above this layer (simfl.registry.check_policies)."""
    if node is None:
        return ()
    if not isinstance(node, list) or not all(isinstance(x, str) and x for x in node):
        c.fail("policies", f"must be a list of policy names, e.g. [fimi, tfl]; got {node!r}")
        return ()
    return tuple(node)


def _build_policy_settings(m: dict, c: Checker) -> dict[str, dict[str, float]]:
    """`policy_settings: {<policy name>: {<field>: number}}`: a plain policy name over a
    mapping of numbers. Which fields each policy declares, and their ranges, are checked
    above this layer against the policy's class (simfl.registry.check_policies)."""
    out: dict[str, dict[str, float]] = {}
    for key, value in m.items():
        where = join("policy_settings", str(key))
        if not isinstance(key, str) or any(mark in key for mark in "+:@"):
            c.fail(where, "settings go under a built-in or installed policy's own name (for a combination "
                          "like fimi+scaffold, under each part's name, e.g. scaffold; for a policy in another "
                          "aggregation mode like fedprox@fedbuff, under fedprox)")
            continue
        given = c.mapping(value, where)
        numbers_given = {str(field): c.number(given, field, where) for field in given}
        out[key] = {field: number for field, number in numbers_given.items() if number is not None}
    return out


def _build_flower(m: dict, c: Checker) -> dict[str, dict[str, Any]]:
    """`flower: {<Strategy>: {<argument>: number | string | boolean, train_config: {...},
    evaluate_config: {...}, evaluate_fn: file.py:function}}`: the arguments of a Flower
    strategy's constructor (`policy_settings` takes numbers only; Flower's take strings
    and booleans too) and the ConfigRecords simfl hands its configure_train and
    configure_evaluate. Whether the arguments fit the strategy is checked when it is
    built, before anything trains (simfl.flower)."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in m.items():
        where = join("flower", str(key))
        if not isinstance(key, str) or not key.isidentifier():
            c.fail(where, "settings go under the strategy's class name, e.g. flower: {FedAdam: {eta: 0.01}}")
            continue
        given = c.mapping(value, where)
        arguments: dict[str, Any] = {}
        for field_name, item in given.items():
            path = join(where, str(field_name))
            if field_name in ("train_config", "evaluate_config"):
                record = c.mapping(item, path)
                bad = [k for k, v in record.items() if not _flower_scalar(v)]
                if bad:
                    c.fail(join(path, str(bad[0])), "a ConfigRecord value is a number, a string or a boolean; "
                           f"got {describe(record[bad[0]])}")
                arguments[field_name] = dict(record)
            elif field_name == "evaluate_fn":
                if not isinstance(item, str) or ":" not in item:
                    c.fail(path, f"give path/to/file.py:function (Flower's evaluate_fn(server_round, arrays)); "
                                 f"got {describe(item)}")
                arguments[field_name] = item
            elif _flower_scalar(item):
                arguments[str(field_name)] = item
            else:
                c.fail(path, f"a strategy argument is a number, a string or a boolean; got {describe(item)}")
        out[key] = arguments
    return out


def _flower_scalar(value: Any) -> bool:
    return isinstance(value, (bool, int, float, str)) and not (isinstance(value, float) and value != value)


__all__ = ["FLOWER_RESERVED", "SECTIONS", "build_scenario"]
