"""The world a policy plans for and the engine plays: cells and devices (as arrays, and
as a networkx graph on demand), mean channel gains, the devices' local data and the
paper's constants."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from simfl.aggregation import Aggregation
from simfl.geometry import MIN_DISTANCE_M, site_distances_m
from simfl.links import Links, strongest_site
from simfl.radio import DEFAULT_CARRIER_HZ, mean_gain
from simfl.streams import keyed_rng, rng, streams
from simfl.units import dbm_to_w

if TYPE_CHECKING:
    from simfl.scenario import Scenario

PLAN_FOR = ("all", "expected_transmitters")  # optimisation.plan_for (World.planning_band_hz)


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
    max_time_s: float = math.inf  # the run stops at the first row ending at or after it
    participants_per_round: int | None = None  # K of N; None: every available device
    outage: float = 0.0  # q: plan on the fading's q-quantile instead of the mean channel
    plan_for: str = "all"  # all | expected_transmitters: whom a static plan shares a cell's band among
    aggregation: Aggregation = Aggregation()  # sync rounds, FedBuff or FedAsync
    aggregation_delay_s: float = 0.0  # simulated time each aggregation takes (scenario `server`)
    channel_step_s: float | None = None  # network.channel_step_s
    handover: Any = None  # network.handover (simfl.scenario.Handover); None: the defaults
    synthesis_images_per_s: float = math.inf  # the server's synthetic images per second of simulated time
    interference: str = "none"  # network.interference
    allocator: str = "lowest_free"  # network.allocator


@dataclass(frozen=True)
class World:
    """Everything a policy may know. Arrays are indexed by device (I,) or cell (n_cells,).

    `gain` is the mean linear channel power gain (path loss and shadowing); per-round
    fading, when the cell has it, is drawn by the engine, not known to policies. The gain
    of any device anywhere to any cell is `links` (simfl.links.Links).
    """

    cell_names: tuple[str, ...]
    bandwidth_hz: np.ndarray  # (n_cells,)
    noise_w_per_hz: np.ndarray  # (n_cells,)
    fading: tuple[Any, ...]  # per cell: a simfl.dynamics.fading component
    cell_of: np.ndarray  # (I,) int: index of the serving cell (strongest mean gain: `attach`)
    position_m: np.ndarray  # (I, 2)
    distance_m: np.ndarray  # (I,) to the serving base station
    gain: np.ndarray  # (I,)
    f_max_hz: np.ndarray  # (I,)
    eps: np.ndarray  # (I,)
    p_max_w: np.ndarray  # (I,)
    d_loc_per_class: np.ndarray  # (I, C) int32 (int64 where a count needs it): a million phones x 10 classes
    constants: Constants
    # Dynamics (simfl.dynamics); the defaults are the paper's static world.
    bs_position_m: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # (n_cells, 2)
    cell_radius_m: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n_cells,)
    path_loss_params: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # (n_cells, [intercept, slope, shadow std])
    shadowing_z: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (I,) each device's N(0, 1) shadowing draw
    home_cell: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # (I,) where it was placed
    availability: tuple[Any, ...] = ()  # per device: a simfl.dynamics.availability component
    mobility: tuple[Any, ...] = ()  # per device: a simfl.dynamics.mobility component
    battery_j: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (I,) capacity; inf: mains powered
    downlink: tuple[Any, ...] = ()  # per cell: (bandwidth_hz, power_w) of the model broadcast, or None
    # (I, n_cells) mean linear gain of each placed device to every base station (simfl.links);
    # column cell_of[i] of row i is gain[i], bit for bit (the mean: `for_planning`'s outage
    # quantile changes `gain` only). 1.5 MB at 10,000 devices x 19 cells.
    link_gain: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    carrier_hz: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n_cells,) f_c, the Doppler's scale
    # per cell: a TR 38.901 model (simfl.pathloss), or None for the log-distance model of its
    # path_loss_params row; () when every cell has the log-distance model
    path_loss_models: tuple[Any, ...] = ()
    seed: int = 0  # the scenario's: a TR 38.901 link's LOS state and shadowing are keyed draws of it

    def __post_init__(self) -> None:
        # a World built without carriers (by code older than them) has every cell at the default
        if len(self.carrier_hz) == 0 and self.cell_names:
            object.__setattr__(self, "carrier_hz", np.full(len(self.cell_names), DEFAULT_CARRIER_HZ))

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

    def for_planning(self) -> World:
        """The world a policy plans on: with `outage` q > 0, each device's gain is the
        q-quantile of its faded gain instead of the mean, so a plan that meets T_max
        exactly misses it with probability q (optimisation.outage)."""
        world = self.with_planning_band()
        q = self.constants.outage
        if q <= 0:
            return world
        factor = np.array([f.quantile(q) for f in self.fading])[self.cell_of]  # per cell, then per device
        return replace(world, gain=self.gain * factor)

    @property
    def plans_for_expected_transmitters(self) -> bool:
        """Whether static plans share each cell's band among the devices expected to
        transmit in a round (`plan_for: expected_transmitters` with K of N participants)."""
        return (self.constants.plan_for == "expected_transmitters"
                and self.constants.participants_per_round is not None and self.n_devices > 0)

    @property
    def planning_band_hz(self) -> np.ndarray:
        """Each cell's band as a static plan shares it: the band itself, or with
        `plan_for: expected_transmitters` and K of N participants, the band times
        N_c / E_c, where E_c = max(1, K N_c / N) of the cell's N_c devices are expected
        to transmit in a round. Each planned sub-band is then the share of the band a
        device would have among the expected transmitters, and the round's K-of-N rule
        (plan.shared_among_selected) shares the real band among the actual ones.

        A cell's transmitters are a draw, Binomial(K, N_c / N), and a plan that meets T_max
        exactly misses it wherever more than E_c come (about half the cells). With
        `outage` q > 0, E_c is the count's (1 - q)-quantile instead, so a cell's share holds
        in a fraction 1 - q of rounds, as the fading's q-quantile holds the gain."""
        if not self.plans_for_expected_transmitters:
            return self.bandwidth_hz
        k = self.constants.participants_per_round
        assert k is not None
        in_cell = np.bincount(self.cell_of, minlength=self.n_cells).astype(float)
        q = self.constants.outage
        share = in_cell / self.n_devices
        if q <= 0:
            counted = k * share
        else:
            from scipy.stats import binom  # deferred: scipy.stats takes half a second to load

            counted = binom.ppf(1.0 - q, k, share)
        expected = np.maximum(1.0, counted)
        return self.bandwidth_hz * np.where(in_cell > 0, in_cell / expected, 1.0)

    def with_planning_band(self) -> World:
        """The world with each cell's band as a static plan shares it (`planning_band_hz`)."""
        band = self.planning_band_hz
        return self if band is self.bandwidth_hz else replace(self, bandwidth_hz=band)

    @cached_property
    def graph(self) -> nx.Graph:
        """Cells and devices as a networkx graph: a node per base station and per device,
        an edge from each device to its serving base station carrying the link. Built on
        first use: it costs about a kilobyte and 40 us per device, which a million
        phones would pay for nothing (simfl's own code reads the arrays)."""
        g = nx.Graph()
        for k, name in enumerate(self.cell_names):
            g.add_node(("cell", k), kind="cell", name=name, position_m=tuple(map(float, self.bs_position_m[k])),
                       radius_m=float(self.cell_radius_m[k]), bandwidth_hz=float(self.bandwidth_hz[k]))
        for i in range(self.n_devices):
            g.add_node(("device", i), kind="device", position_m=tuple(self.position_m[i]),
                       f_max_hz=float(self.f_max_hz[i]), eps=float(self.eps[i]), p_max_w=float(self.p_max_w[i]))
            g.add_edge(("device", i), ("cell", int(self.cell_of[i])), distance_m=float(self.distance_m[i]),
                       gain=float(self.gain[i]))
        return g

    @property
    def links(self) -> Links:
        """The mean gain of any of the world's devices, anywhere, to every cell (simfl.links)."""
        return Links(self.bs_position_m, self.path_loss_params, self.shadowing_z, self.path_loss_models,
                     self.carrier_hz, self.seed)

    def serving(self, position_m: np.ndarray, walked_m: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Serving cell (the strongest mean gain, simfl.links.strongest_site), distance and
        mean gain (path loss and shadowing) of the world's devices at `position_m`, having
        walked `walked_m` (default: none)."""
        links = self.links
        cell_of, distance, _ = attach(position_m, links, walked_m)
        if links.log_distance_only:
            intercept, slope, std = self.path_loss_params[cell_of].T
            return cell_of, distance, mean_gain(distance, intercept, slope, self.shadowing_z, std)
        return cell_of, distance, links.gain_to(cell_of, position_m, walked_m=walked_m)[1]


def _counts(d_loc_per_class: np.ndarray) -> np.ndarray:
    """Class counts as int32, half of int64's 80 bytes per device at 10 classes (a million
    phones), or int64 if one needs it; arithmetic on them goes to int64 (sums) or float."""
    counts = np.asarray(d_loc_per_class)
    fits = counts.size == 0 or int(counts.max()) < np.iinfo(np.int32).max
    return counts.astype(np.int32 if fits else np.int64, copy=False)


def attach(position_m: np.ndarray, links: Links, walked_m: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each device's serving cell, the base station of strongest mean gain (path loss and
    shadowing, no fast fading; the nearest unless another is stronger beyond rounding), its
    distance to it, floored at 1 m, and the (I, n_cells) gains of all its links (device j
    at row j, having walked `walked_m`). With the log-distance model and equal parameters
    in every cell the shadowing draw, the same on every link, cancels and this is the
    nearest base station."""
    distance = site_distances_m(position_m, links.bs_position_m)
    gains = links.gains(position_m, walked_m=walked_m)
    cell_of = strongest_site(gains, distance)
    return cell_of, np.maximum(distance[np.arange(len(position_m)), cell_of], MIN_DISTANCE_M), gains


def mean_gains_to_all(world: World, position_m: np.ndarray, walked_m: np.ndarray | None = None) -> np.ndarray:
    """(I, n_cells) mean linear gain of each of the world's devices, at `position_m` (I, 2)
    having walked `walked_m` (default: none), to every base station (simfl.links.Links)."""
    return world.links.gains(position_m, walked_m=walked_m)


def build_world(scenario: Scenario, model_bits: float, d_loc_per_class: np.ndarray | None = None,
                n_classes: int = 10) -> World:
    """Place the devices, attach each to its strongest base station (`attach`) and compute mean gains.

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
    n_devices = len(position)

    # Shadowing is drawn for every device in one go so each device's draw is stable.
    shadowing_z = channel.normal(0.0, 1.0, size=n_devices)
    path_loss_params = np.array([[c.path_loss.intercept_db, c.path_loss.slope_db, c.path_loss.shadowing_std_db]
                                 if c.path_loss.model is None else [np.nan] * 3 for c in cells], dtype=float)
    models = tuple(c.path_loss.model for c in cells) if any(c.path_loss.model is not None for c in cells) else ()
    links = Links(bs, path_loss_params, shadowing_z, models, np.array([c.carrier_hz for c in cells], dtype=float),
                  int(scenario.seed))
    cell_of, distance, link_gain = attach(position, links)
    if links.log_distance_only:
        intercept, slope, std = np.array([(cells[k].path_loss.intercept_db, cells[k].path_loss.slope_db,
                                           cells[k].path_loss.shadowing_std_db) for k in cell_of]).reshape(-1, 3).T
        gain = mean_gain(distance, intercept, slope, shadowing_z, std)
    else:
        gain = link_gain[np.arange(n_devices), cell_of]
    battery_draws = rng(scenario.seed, "battery")
    battery = np.concatenate([g.battery_j.sample(battery_draws, g.count) if g.battery_j is not None
                              else np.full(g.count, np.inf) for g in scenario.devices])

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
        max_time_s=math.inf if task.max_time_s is None else float(task.max_time_s),
        participants_per_round=task.participants_per_round,
        outage=opt.outage,
        plan_for=opt.plan_for,
        aggregation=scenario.aggregation,
        aggregation_delay_s=scenario.server.aggregation_delay_s,
        channel_step_s=scenario.network.channel_step_s,
        handover=scenario.network.handover,
        interference=scenario.network.interference,
        allocator=scenario.network.allocator,
        synthesis_images_per_s=scenario.server.synthesis_images_per_s,
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
        d_loc_per_class=_counts(d_loc_per_class),
        constants=constants,
        bs_position_m=bs,
        cell_radius_m=np.array([c.radius_m for c in cells], dtype=float),
        path_loss_params=path_loss_params,
        shadowing_z=shadowing_z,
        home_cell=cell_of.copy(),
        availability=tuple(g.availability for g in scenario.devices for _ in range(g.count)),
        mobility=tuple(g.mobility for g in scenario.devices for _ in range(g.count)),
        battery_j=battery,
        downlink=tuple(None if c.downlink is None else (c.downlink.bandwidth_hz, float(dbm_to_w(c.downlink.power_dbm)))
                       for c in cells),
        link_gain=link_gain,
        carrier_hz=links.carrier_hz,
        path_loss_models=models,
        seed=int(scenario.seed),
    )
    return world


def _even_split(total: int, parts: int) -> np.ndarray:
    base = np.full(parts, total // parts, dtype=np.int64)
    base[: total % parts] += 1
    return base


__all__ = ["Constants", "World", "attach", "build_world", "keyed_rng", "mean_gains_to_all", "rng", "streams"]
