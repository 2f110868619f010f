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
from typing import Any, Callable

from simfl.aggregation import Aggregation
from simfl.dynamics import AVAILABILITY, FADING, MOBILITY, parse_component
from simfl.dynamics.availability import AlwaysOn
from simfl.dynamics.fading import NoFading
from simfl.dynamics.mobility import Static
from simfl.geometry import hex_grid_sites
from simfl.learning.data import DATASETS
from simfl.learning.models import MODELS
from simfl.limits import MAX_DISTANCE_M
from simfl.optim.cross_entropy import CrossEntropy
from simfl.pathloss import MODELS as PATH_LOSS_MODELS
from simfl.radio import DEFAULT_CARRIER_HZ
from simfl.scenario.checks import Checker, describe, join, numbers
from simfl.scenario.rules import DEFAULTS, NUMBERS, options
from simfl.scenario.schema import (Cell, DeviceGroup, Distribution, Downlink, Generator, Handover, HexGrid,
                                   NetworkSettings, Optimisation, PathLoss, Scenario, Server, Task)
from simfl.spectrum import check_allocator, reuse_colour

SECTIONS = {"name", "description", "seed", "cells", "devices", "task", "optimisation", "generator", "policies",
            "aggregation", "policy_settings", "network", "server", "flower"}
# what a top-level key that the Scenario does not keep is for (the reference prints it)
NOT_KEPT = {"description": "Free text for the reader of the file; simfl does not read it."}


def build_scenario(raw: dict, c: Checker, source: str) -> Scenario:
    """The Scenario of a parsed mapping, every problem recorded in `c` (the caller raises
    them; the Scenario returned alongside problems is not to be used)."""
    c.unknown(raw, SECTIONS, "")
    name = c.string(raw, "name", "", Path(source).stem)
    seed = c.number(raw, "seed", "", DEFAULTS[""]["seed"], NUMBERS[""]["seed"])

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


CELL_FIELDS = set(Cell.__dataclass_fields__)
DEVICE_FIELDS = set(DeviceGroup.__dataclass_fields__)


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
    c.unknown(m, (CELL_FIELDS - {"position_m"}) | set(HexGrid.__dataclass_fields__), path)
    rules, d = NUMBERS[path], HexGrid()
    rings = c.number(m, "rings", path, d.rings, rules["rings"])
    spacing = c.number(m, "spacing_m", path, d.spacing_m, rules["spacing_m"])
    if rings is not None and spacing is not None and rings * spacing > MAX_DISTANCE_M:
        # the grid's corners lie on the axes, rings x spacing_m from the centre
        c.fail(join(path, "spacing_m"), f"puts the outer ring {rings} x {spacing:g} = {rings * spacing:g} m from the "
                                        f"centre; base stations must be within {MAX_DISTANCE_M:g} m of it")
    reuse = m.get("reuse", d.reuse)
    if isinstance(reuse, bool) or reuse not in options(path, "reuse"):
        c.fail(join(path, "reuse"), f"must be one of {', '.join(map(str, options(path, 'reuse')))} (cells per cluster "
                                    f"of carriers), got {reuse!r}")
        reuse = d.reuse
    grid = HexGrid(rings=int(rings or 0), spacing_m=float(spacing or 1.0), reuse=int(reuse),
                   name=c.string(m, "name", path, d.name))
    template = _build_cell({k: v for k, v in m.items() if k not in HexGrid.__dataclass_fields__}, path, c, grid.name)
    return tuple(replace(template, name=f"{grid.name}{i}", position_m=position,
                         carrier_hz=template.carrier_hz + reuse_colour(q, r, grid.reuse) * template.bandwidth_hz)
                 for i, ((q, r), position) in enumerate(hex_grid_sites(grid.rings, grid.spacing_m)))


def _build_cell(m: dict, path: str, c: Checker, default_name: str) -> Cell:
    rules, defaults = NUMBERS["cells"], DEFAULTS["cells"]
    name = c.string(m, "name", path, default_name)
    position = c.point(m.get("position_m", list(defaults["position_m"])), join(path, "position_m"))
    radius = c.number(m, "radius_m", path, 1.0, rules["radius_m"])
    bandwidth = c.number(m, "bandwidth_hz", path, 1.0, rules["bandwidth_hz"])
    noise = c.number(m, "noise_dbm_per_hz", path, defaults["noise_dbm_per_hz"], rules["noise_dbm_per_hz"])
    carrier = c.number(m, "carrier_hz", path, DEFAULT_CARRIER_HZ, rules["carrier_hz"])
    path_loss = _build_path_loss(c.mapping(m.get("path_loss"), join(path, "path_loss")), path, c, carrier, radius)
    downlink = None
    if m.get("downlink") is not None:
        dl_path = join(path, "downlink")
        dl = c.mapping(m.get("downlink"), dl_path)
        c.unknown(dl, set(Downlink.__dataclass_fields__), dl_path)
        rules = NUMBERS["cells.downlink"]
        downlink = Downlink(bandwidth_hz=c.number(dl, "bandwidth_hz", dl_path, 1.0, rules["bandwidth_hz"]),
                            power_dbm=c.number(dl, "power_dbm", dl_path, 46.0, rules["power_dbm"]))
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
        rules, d = NUMBERS["cells.path_loss"], PathLoss()
        return PathLoss(intercept_db=c.number(pl, "intercept_db", where, d.intercept_db, rules["intercept_db"]),
                        slope_db=c.number(pl, "slope_db", where, d.slope_db, rules["slope_db"]),
                        shadowing_std_db=c.number(pl, "shadowing_std_db", where, d.shadowing_std_db,
                                                  rules["shadowing_std_db"]), fading=fading)
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
        c.unknown(m, DEVICE_FIELDS, path)
        rules = NUMBERS["devices"]
        explicit = "position_m" in m
        count = 1 if explicit else c.number(m, "count", path, 0, rules["count"])
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
            distance = c.distribution(m, "distance_m", path, rules["distance_m"], count)
        groups.append(DeviceGroup(
            count=count or 0,
            cell=cell,
            f_max_hz=c.distribution(m, "f_max_hz", path, rules["f_max_hz"], count) or Distribution("constant", (1.0,)),
            eps=c.distribution(m, "eps", path, rules["eps"], count) or Distribution("constant", (1.0,)),
            p_max_dbm=c.distribution(m, "p_max_dbm", path, rules["p_max_dbm"], count) or Distribution("constant", (0.0,)),
            distance_m=distance,
            position_m=position,
            battery_j=c.distribution(m, "battery_j", path, rules["battery_j"], count),
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


def _reader(node: dict, section: str, c: Checker, defaults: Any) -> Callable[[str], Any]:
    """`read(key)`: the number `key` of a section's mapping `node`, checked against the
    section's bounds (rules.NUMBERS), or the field's default in `defaults` when absent."""
    rules = NUMBERS[section]
    return lambda key: c.number(node, key, section, getattr(defaults, key), rules[key])


def _build_task(m: dict, c: Checker) -> Task:
    p = "task"
    d = Task()
    c.unknown(m, set(Task.__dataclass_fields__), p)
    number = _reader(m, p, c, d)
    targets = m.get("target_accuracies", list(d.target_accuracies))
    nums = numbers(targets if isinstance(targets, list) else [targets])
    accuracy = NUMBERS[p]["target_accuracies"]
    if nums is None or not nums or not all(accuracy.admits(t) for t in nums):
        c.fail(join(p, "target_accuracies"), f"must be a list of accuracies {accuracy}, e.g. [0.7, 0.8]; got {targets!r}")
        nums = list(d.target_accuracies)
    task = Task(
        dataset=c.choice(m, "dataset", p, options(p, "dataset"), d.dataset),
        data_dir=c.directory(m, "data_dir", p, d.data_dir),
        model=c.choice(m, "model", p, options(p, "model"), d.model),
        dirichlet_z=number("dirichlet_z"),
        samples_per_device=number("samples_per_device"),
        public_samples=number("public_samples"),
        public_split_seed=number("public_split_seed"),
        learning_rate=number("learning_rate"),
        batch_size=number("batch_size"),
        local_epochs=number("local_epochs"),
        rounds=number("rounds"),
        max_time_s=number("max_time_s"),
        participants_per_round=number("participants_per_round"),
        target_accuracies=tuple(nums),
        eval_samples=number("eval_samples"),
        precision=c.choice(m, "precision", p, options(p, "precision"), d.precision),
        threads=number("threads"),
        device=c.choice(m, "device", p, options(p, "device"), d.device),
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
    elif train_size and task.samples_per_device > train_size - task.public_samples:
        # N x samples_per_device may exceed the private split (devices then share images,
        # simfl.learning.partition.local_data), but one device never holds an image twice
        c.fail(join(p, "samples_per_device"), f"must be at most the {train_size - task.public_samples} private "
                                               f"images of {task.dataset} ({train_size} less public_samples "
                                               f"{task.public_samples}), got {task.samples_per_device}")
    return task


def _build_optimisation(m: dict, c: Checker) -> Optimisation:
    p = "optimisation"
    d = Optimisation()
    c.unknown(m, set(Optimisation.__dataclass_fields__), p)
    cp = join(p, "cross_entropy")
    ce_raw = c.mapping(m.get("cross_entropy"), cp)
    c.unknown(ce_raw, set(CrossEntropy.__dataclass_fields__), cp)
    search = _reader(ce_raw, cp, c, CrossEntropy())
    samples, elite = search("samples"), search("elite")
    if elite is not None and samples is not None and elite > samples:
        c.fail(join(cp, "elite"), f"must be <= samples ({samples}), got {elite}")
    ce = CrossEntropy(samples=samples, elite=elite, iterations=search("iterations"), smoothing=search("smoothing"),
                      tol=search("tol"))
    number = _reader(m, p, c, d)
    return Optimisation(
        t_max_s=number("t_max_s"),
        err_max=number("err_max"),
        dgen_max=number("dgen_max"),
        omega_cycles_per_sample=number("omega_cycles_per_sample"),
        alpha=number("alpha"),
        beta=number("beta"),
        gamma=number("gamma"),
        zeta=number("zeta"),
        solver=c.choice(m, "solver", p, options(p, "solver"), d.solver),
        outage=number("outage"),
        plan_for=c.choice(m, "plan_for", p, options(p, "plan_for"), d.plan_for),
        cross_entropy=ce,
    )


def _build_generator(m: dict, c: Checker) -> Generator:
    p = "generator"
    d = Generator()
    c.unknown(m, set(Generator.__dataclass_fields__), p)
    number = _reader(m, p, c, d)
    return Generator(
        kind=c.choice(m, "kind", p, options(p, "kind"), d.kind),
        config=c.choice(m, "config", p, options(p, "config"), d.config),
        cache_dir=c.directory(m, "cache_dir", p, d.cache_dir),
        guidance=number("guidance"),
        sampling_steps=number("sampling_steps"),
    )


def _build_aggregation(m: dict, c: Checker, n_devices: int | None) -> Aggregation:
    p = "aggregation"
    d = Aggregation()
    c.unknown(m, set(Aggregation.__dataclass_fields__), p)
    number = _reader(m, p, c, d)
    concurrency = number("max_concurrency")
    if concurrency is not None and n_devices is not None and concurrency > n_devices:
        c.fail(join(p, "max_concurrency"), f"must be <= the number of devices ({n_devices}), got {concurrency}")
    return Aggregation(
        mode=c.choice(m, "mode", p, options(p, "mode"), d.mode),
        buffer_size=number("buffer_size"),
        max_concurrency=concurrency,
        staleness=_staleness(m, c, d.staleness),
        server_lr=number("server_lr"),
        mixing=number("mixing"),
        eval_every=number("eval_every"),
        eval_every_s=_eval_every_s(m, c, number),
    )


def _build_server(m: dict, c: Checker) -> Server:
    p = "server"
    c.unknown(m, set(Server.__dataclass_fields__), p)
    number = _reader(m, p, c, Server())
    return Server(aggregation_delay_s=number("aggregation_delay_s"),
                  synthesis_images_per_s=number("synthesis_images_per_s"))


def _eval_every_s(m: dict, c: Checker, number: Callable[[str], Any]) -> float | None:
    value = number("eval_every_s")
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
    exponent_bounds = NUMBERS["aggregation"]["staleness"]
    if isinstance(value, dict) and set(value) == {"polynomial"}:
        exponent = c.number(value, "polynomial", where, None, replace(exponent_bounds, required=True))
        return default if exponent is None else float(exponent)
    c.fail(where, f"must be constant or {{polynomial: a}} with an exponent a {exponent_bounds} "
                  f"(weight (1 + staleness)^-a), got {value!r}")
    return default


def _build_network(m: dict, c: Checker) -> NetworkSettings:
    """`network: {channel_step_s, interference, allocator, handover: {hysteresis_db,
    time_to_trigger_s, interruption_s}}`, each number >= 0 and within its physical range
    (simfl.limits); the handover fields default to 0 (hand over the moment another cell is
    stronger, without a break); interference to none, the allocator to lowest_free."""
    p = "network"
    d = NetworkSettings()
    c.unknown(m, set(NetworkSettings.__dataclass_fields__), p)
    step = _reader(m, p, c, d)("channel_step_s")
    interference = c.choice(m, "interference", p, options(p, "interference"), d.interference)
    placer = m.get("allocator", d.allocator)
    check_allocator(placer, "network.allocator", c.fail)
    hp = "network.handover"
    h = c.mapping(m.get("handover"), hp)
    c.unknown(h, set(Handover.__dataclass_fields__), hp)
    handover = _reader(h, hp, c, Handover())
    return NetworkSettings(handover=Handover(
        hysteresis_db=handover("hysteresis_db"),
        time_to_trigger_s=handover("time_to_trigger_s"),
        interruption_s=handover("interruption_s"),
    ), channel_step_s=step, interference=str(interference), allocator=str(placer))


def _build_policies(node: Any, c: Checker) -> tuple[str, ...]:
    """`policies: [name, ...]`: the names' shape; whether each names a policy is checked
    above this layer (simfl.registry.check_policies)."""
    if node is None:
        return DEFAULTS[""]["policies"]
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


__all__ = ["NOT_KEPT", "SECTIONS", "build_scenario"]
