"""The world a policy plans for and the engine plays: cells and devices (a networkx
graph), mean channel gains, the devices' local data and the paper's constants."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import networkx as nx
import numpy as np

from simfl.radio import gain_from_path_loss, path_loss_db
from simfl.scenario import Scenario
from simfl.units import dbm_to_w

# Named random streams (ns-3 style): adding a draw to one never shifts another.
STREAMS = ("placement", "channel", "partition", "training", "fading", "policy", "generator", "similarity")


def streams(seed: int) -> dict[str, np.random.SeedSequence]:
    """One SeedSequence per concern, derived from the scenario seed."""
    return dict(zip(STREAMS, np.random.SeedSequence(seed).spawn(len(STREAMS))))


def rng(seed: int, name: str) -> np.random.Generator:
    """The numpy Generator of one named stream."""
    return np.random.default_rng(streams(seed)[name])


@dataclass(frozen=True)
class Constants:
    """Scalars of Problem (P1), in SI units."""

    tau: int  # local epochs
    omega_cycles: float  # CPU cycles per sample
    model_bits: float  # S = 32 x parameter count
    t_max_s: float
    dgen_max: int
    err_max: float  # Delta_max
    alpha: float
    beta: float
    gamma: float
    zeta: float
    rounds: int  # N


@dataclass(frozen=True)
class World:
    """Everything a policy may know. Arrays are indexed by device (I,) or cell (n_cells,).

    `gain` is the mean linear channel power gain (path loss and shadowing); per-round
    fading, when the cell has it, is drawn by the engine, not known to policies.
    """

    cell_names: tuple[str, ...]
    bandwidth_hz: np.ndarray  # (n_cells,)
    noise_w_per_hz: np.ndarray  # (n_cells,)
    fading: tuple[str, ...]  # per cell: "none" | "rayleigh"
    cell_of: np.ndarray  # (I,) int: index of the serving cell (nearest base station)
    position_m: np.ndarray  # (I, 2)
    distance_m: np.ndarray  # (I,) to the serving base station
    gain: np.ndarray  # (I,)
    f_max_hz: np.ndarray  # (I,)
    eps: np.ndarray  # (I,)
    p_max_w: np.ndarray  # (I,)
    d_loc_per_class: np.ndarray  # (I, C) int
    constants: Constants
    graph: nx.Graph = field(repr=False, compare=False)

    @property
    def n_devices(self) -> int:
        return len(self.f_max_hz)

    @property
    def n_cells(self) -> int:
        return len(self.cell_names)

    @property
    def n_classes(self) -> int:
        return self.d_loc_per_class.shape[1]

    @property
    def d_loc(self) -> np.ndarray:
        return self.d_loc_per_class.sum(axis=1)

    @property
    def device_bandwidth_hz(self) -> np.ndarray:
        """The total band B of each device's own cell."""
        return self.bandwidth_hz[self.cell_of]

    @property
    def device_noise_w_per_hz(self) -> np.ndarray:
        return self.noise_w_per_hz[self.cell_of]

    def with_local_data(self, d_loc_per_class: np.ndarray) -> World:
        """The same world with the devices' per-class local counts set (from a partition)."""
        counts = np.asarray(d_loc_per_class, dtype=np.int64)
        if counts.shape[0] != self.n_devices:
            raise ValueError(f"d_loc_per_class has {counts.shape[0]} rows for {self.n_devices} devices")
        return replace(self, d_loc_per_class=counts)

    def without_devices(self) -> World:
        """The same cells with no device in them (centralised training at the server)."""
        none = np.zeros(0)
        return replace(self, cell_of=np.zeros(0, dtype=np.int64), position_m=np.zeros((0, 2)), distance_m=none,
                       gain=none, f_max_hz=none, eps=none, p_max_w=none,
                       d_loc_per_class=np.zeros((0, self.n_classes), dtype=np.int64), graph=nx.Graph())

    def with_model_bits(self, model_bits: float) -> World:
        return replace(self, constants=replace(self.constants, model_bits=float(model_bits)))


def build_world(scenario: Scenario, model_bits: float, d_loc_per_class: np.ndarray | None = None,
                n_classes: int = 10) -> World:
    """Place the devices, associate each with its nearest base station and compute mean gains.

    `d_loc_per_class` comes from the data partition; without it every device holds
    `samples_per_device` spread evenly (useful for planning before data is loaded).
    """
    placement = rng(scenario.seed, "placement")
    channel = rng(scenario.seed, "channel")
    cells = scenario.cells
    bs = np.array([cell.position_m for cell in cells], dtype=float)

    positions, f_max, eps, p_max_dbm = [], [], [], []
    for group_index, group in enumerate(scenario.devices):
        n = group.count
        if group.cell is not None:
            home = np.full(n, [c.name for c in cells].index(group.cell))
        else:
            # every cell in turn, so a group without a cell spreads over all cells
            home = (np.arange(n) + group_index) % len(cells)
        if group.position_m is not None:
            pos = np.array([group.position_m], dtype=float)
        else:
            angle = placement.uniform(0.0, 2.0 * np.pi, size=n)
            if group.distance_m is not None:
                r = group.distance_m.sample(placement, n)
            else:
                radius = np.array([cells[h].radius_m for h in home])
                r = radius * np.sqrt(placement.uniform(0.0, 1.0, size=n))  # uniform in the disk
            pos = bs[home] + np.column_stack([r * np.cos(angle), r * np.sin(angle)])
        positions.append(pos)
        f_max.append(group.f_max_hz.sample(placement, n))
        eps.append(group.eps.sample(placement, n))
        p_max_dbm.append(group.p_max_dbm.sample(placement, n))

    position = np.concatenate(positions)
    all_distances = np.linalg.norm(position[:, None, :] - bs[None, :, :], axis=2)
    cell_of = np.argmin(all_distances, axis=1)
    # A device on top of its base station would have infinite gain; 1 m is the floor.
    distance = np.maximum(all_distances[np.arange(len(position)), cell_of], 1.0)
    n_devices = len(position)

    gain = np.empty(n_devices)
    for k, cell in enumerate(cells):
        members = np.flatnonzero(cell_of == k)
        pl = path_loss_db(distance[members], cell.path_loss.intercept_db, cell.path_loss.slope_db)
        gain[members] = gain_from_path_loss(pl)
    # Shadowing is drawn for every device in one go so each device's draw is stable.
    std = np.array([cells[k].path_loss.shadowing_std_db for k in cell_of])
    gain *= 10.0 ** (channel.normal(0.0, 1.0, size=n_devices) * std / 10.0)

    if d_loc_per_class is None:
        per = scenario.task.samples_per_device
        d_loc_per_class = np.tile(_even_split(per, n_classes), (n_devices, 1))

    opt, task = scenario.optimisation, scenario.task
    constants = Constants(
        tau=task.local_epochs,
        omega_cycles=opt.omega_cycles_per_sample,
        model_bits=float(model_bits),
        t_max_s=opt.t_max_s,
        dgen_max=opt.dgen_max,
        err_max=opt.err_max,
        alpha=opt.alpha,
        beta=opt.beta,
        gamma=opt.gamma,
        zeta=opt.zeta,
        rounds=task.rounds,
    )
    world = World(
        cell_names=tuple(c.name for c in cells),
        bandwidth_hz=np.array([c.bandwidth_hz for c in cells]),
        noise_w_per_hz=dbm_to_w(np.array([c.noise_dbm_per_hz for c in cells])),
        fading=tuple(c.path_loss.fading for c in cells),
        cell_of=cell_of,
        position_m=position,
        distance_m=distance,
        gain=gain,
        f_max_hz=np.concatenate(f_max),
        eps=np.concatenate(eps),
        p_max_w=dbm_to_w(np.concatenate(p_max_dbm)),
        d_loc_per_class=np.asarray(d_loc_per_class, dtype=np.int64),
        constants=constants,
        graph=nx.Graph(),
    )
    return _with_graph(world, scenario)


def _with_graph(world: World, scenario: Scenario) -> World:
    """Cells and devices as a networkx graph: a node per base station and per device,
    an edge from each device to its serving base station carrying the link."""
    g = world.graph
    for k, cell in enumerate(scenario.cells):
        g.add_node(("cell", k), kind="cell", name=cell.name, position_m=cell.position_m,
                   radius_m=cell.radius_m, bandwidth_hz=cell.bandwidth_hz)
    for i in range(world.n_devices):
        g.add_node(("device", i), kind="device", position_m=tuple(world.position_m[i]),
                   f_max_hz=float(world.f_max_hz[i]), eps=float(world.eps[i]), p_max_w=float(world.p_max_w[i]))
        g.add_edge(("device", i), ("cell", int(world.cell_of[i])), distance_m=float(world.distance_m[i]),
                   gain=float(world.gain[i]))
    return world


def _even_split(total: int, parts: int) -> np.ndarray:
    base = np.full(parts, total // parts, dtype=np.int64)
    base[: total % parts] += 1
    return base


__all__ = ["Constants", "World", "build_world", "rng", "streams"]
