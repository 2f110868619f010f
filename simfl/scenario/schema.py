"""The scenario's schema: frozen dataclasses, one per section of a scenario file, that
every layer above reads and none mutates. They hold only values the loader validated
(simfl.scenario.sections), so nothing downstream re-checks them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simfl.aggregation import Aggregation
from simfl.dynamics.availability import AlwaysOn
from simfl.dynamics.fading import NoFading
from simfl.dynamics.mobility import Static
from simfl.optim.cross_entropy import CrossEntropy
from simfl.radio import DEFAULT_CARRIER_HZ


@dataclass(frozen=True)
class Distribution:
    """A per-device attribute: a constant, uniform(low, high), an arithmetic sequence
    (linspace, for sweeps like Fig. 5b) or an explicit list of values."""

    kind: str
    """constant, uniform, linspace or values."""
    params: tuple[float, ...]
    """The value (constant), low and high (uniform), first and last (linspace), or the values."""

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """`n` values: drawn from `rng` for uniform, the params otherwise."""
        if self.kind == "constant":
            return np.full(n, self.params[0], dtype=float)
        if self.kind == "uniform":
            return rng.uniform(self.params[0], self.params[1], size=n)
        if self.kind == "linspace":
            return np.linspace(self.params[0], self.params[1], n)
        return np.asarray(self.params, dtype=float)


@dataclass(frozen=True)
class PathLoss:
    """A cell's channel: the paper's log-distance path loss PL = intercept + slope
    log10(d_km) with one shadowing draw per device, or a TR 38.901 `model`
    (simfl.pathloss: uma, umi, rma), whose links draw their own LOS state and shadowing;
    and its small-scale fading either way."""

    intercept_db: float = 128.1
    """PL at 1 km of the log-distance model PL = intercept + slope log10(R in km)."""
    slope_db: float = 37.6
    """dB per decade of distance of the log-distance model."""
    shadowing_std_db: float = 0.0
    """Standard deviation of the log-normal shadowing, drawn once per device (the same on
    its link to every base station)."""
    fading: Any = NoFading()  # a simfl.dynamics.fading component
    """Small-scale fading: per round (`none`, `rayleigh`: |h|^2 ~ Exp(1) drawn anew every
    round, `{gauss_markov: {rho}}`), or in simulated time (`{rayleigh: {coherence_s}}`,
    `{gauss_markov: {rho, step_s}}`, `clarke`)."""
    model: Any = None  # a simfl.pathloss model; None: the log-distance model above
    """A TR 38.901 model (`uma`, `umi`, `rma`) with its own fields, instead of the three
    log-distance fields; absent: the log-distance model."""


@dataclass(frozen=True)
class Downlink:
    """The base station's broadcast of the global model each round (off by default, as in
    the paper) and of the synthetic data before the first round."""

    bandwidth_hz: float
    """The downlink band, shared by nobody else: every device receives at its own rate
    over all of it (a rateless broadcast)."""
    power_dbm: float
    """The base station's transmit power."""


@dataclass(frozen=True)
class Cell:
    """One base station and its band, shared by its devices by FDMA."""

    name: str
    """How device groups and messages name the cell."""
    position_m: tuple[float, float]
    """The base station's position [x, y]."""
    radius_m: float
    """Devices of a group naming this cell are placed uniformly in this disk around it."""
    bandwidth_hz: float
    """B, the uplink band its devices share (FDMA)."""
    noise_dbm_per_hz: float
    """N0, the thermal noise density (the paper prints dBm/MHz; dBm/Hz is what reproduces it)."""
    path_loss: PathLoss
    """The channel of every link to this base station (see `cells.path_loss`)."""
    downlink: Downlink | None = None
    """null: the model reaches devices at once (the paper's); else the broadcast takes its
    time each round (see `cells.downlink`)."""
    carrier_hz: float = DEFAULT_CARRIER_HZ
    """f_c, the band's centre: Clarke fading's Doppler v f_c / c, TR 38.901's path loss,
    and where the band sits for co-channel interference."""


@dataclass(frozen=True)
class HexGrid:
    """`cells: {hex_grid: {...}}`: a base station at the centre and 6r on each ring r of a
    hexagonal grid, 1 + 3R(R + 1) cells in all, each with the cell fields given beside
    these (all but `position_m`). The loader expands it into the cells themselves."""

    rings: int = 1
    """R, the rings of cells around the centre one."""
    spacing_m: float = 1.0
    """Distance between neighbouring base stations (rings x spacing_m at most 1e7 m)."""
    reuse: int = 1
    """Cells per cluster of carriers: each cell's carrier is carrier_hz + k bandwidth_hz,
    k its colour in the reuse pattern, so under 3 and 7 no two adjacent cells share a
    carrier; 1 puts every cell on one carrier."""
    name: str = "cell"
    """Prefix of the cells' names: cell0 (the centre), cell1, ..., ring by ring
    counter-clockwise from the east."""


@dataclass(frozen=True)
class DeviceGroup:
    """`count` devices whose attributes are drawn from distributions. Positions are
    uniform in the disk of `cell` (every cell in turn when no cell is named), or at
    `distance_m` from that cell's base station at a uniform angle."""

    count: int
    """How many devices the group has (an explicit device, with `position_m`, is one)."""
    cell: str | None
    """The cell whose disk they are placed in; null: spread over all cells in turn."""
    f_max_hz: Distribution
    """The CPU's highest frequency."""
    eps: Distribution
    """The energy coefficient of eq. (5), E = tau eps omega D f^2."""
    p_max_dbm: Distribution
    """The highest transmit power."""
    distance_m: Distribution | None
    """Fixed distances from the cell's base station, at uniform angles, instead of uniform
    positions in its disk."""
    position_m: tuple[float, float] | None
    """An explicit device's position [x, y] (then `count` is 1)."""
    availability: Any = AlwaysOn()  # a simfl.dynamics.availability component
    """When the devices are online: `always`, `{markov: {mean_on_s, mean_off_s}}`,
    `{trace: FILE}` or FedScale's client-behaviour trace `{fedscale: FILE}`."""
    battery_j: Distribution | None = None
    """The energy a device gives until it stops for good; null: mains powered."""
    mobility: Any = Static()  # a simfl.dynamics.mobility component
    """How the devices move: `static` or `{random_waypoint: {speed_mps, pause_s, region}}`."""


@dataclass(frozen=True)
class Task:
    """The learning task: data, model, local training, rounds and what is measured."""

    dataset: str = "fashion-mnist"
    """The data set: fashion-mnist is built in; mnist, cifar10 and gtsrb are read from `data_dir`."""
    data_dir: str | None = None
    """Where the mnist, cifar10 or gtsrb files are; nothing is downloaded."""
    model: str = "cnn"
    """cnn (compact, for 28x28 images) or vgg9 (the paper's, 3,491,530 parameters)."""
    dirichlet_z: float = 0.4
    """z of Dir(z), the label skew of the devices' local data."""
    samples_per_device: int = 1250
    """D_loc, each device's local samples: no image on two devices while the private split
    holds N x samples_per_device; beyond that each device draws its own from the class
    pools, with replacement across devices, never twice on one."""
    public_samples: int = 10000
    """The server's public split, for generator training and curve fitting; never on devices."""
    public_split_seed: int | None = None
    """Which images are public; null: the scenario's seed (`compare --seeds` keeps it fixed)."""
    learning_rate: float = 0.02
    """Local SGD's learning rate."""
    batch_size: int = 64
    """Local SGD's batch size."""
    local_epochs: int = 1
    """tau, local epochs per round."""
    rounds: int = 200
    """N, the rounds (in the asynchronous modes: aggregations)."""
    # stop once the simulated time reaches this (the row that crosses it is the last),
    # even before `rounds` rows: modes whose rows mean different work compare at equal time
    max_time_s: float | None = None
    """Stop at the first row ending at or after this simulated time; null: after `rounds`."""
    participants_per_round: int | None = None
    """K devices drawn uniformly among the available ones each round; null: all of them."""
    target_accuracies: tuple[float, ...] = (0.7,)
    """Table I's columns: the cost to first reach each test accuracy."""
    eval_samples: int | None = None
    """Evaluate on the first n test images; null: all of them."""
    # "bfloat16": about 2x faster local training on CPUs with AMX/AVX512-BF16; "auto": bfloat16
    # where the CPU has them and the numerics are fast, float32 otherwise (simfl.numerics);
    # auto is the default since its accuracy held over 3 seeds on the quickstart and paper-fmnist
    precision: str = "auto"
    """What local training computes in: auto (bfloat16 on CPUs with bfloat16 units in fast
    numerics, about 1.3-2x faster, else float32), float32 or bfloat16."""
    # intra-op threads of every training and evaluation step: a result's low bits depend on
    # it, so it is a setting of the run, the same in a sequential and a Ray run
    threads: int = 1
    """Intra-op threads of each training step; results are bit-identical for one value."""
    # checked against the machine when a run starts (simfl.learning.trainer.training_device),
    # since the machine that loads a scenario need not be the one that trains it
    device: str = "cpu"
    """Where local training and evaluation compute: cpu, cuda (refused when the run starts
    on a machine without a CUDA device) or auto (cuda where PyTorch sees one, else cpu).
    The global model, updates and checkpoints stay on the CPU. The CUDA path is untested
    on the machines simfl is built on until a GPU run is measured."""


@dataclass(frozen=True)
class Optimisation:
    """The paper's optimisation problem (12) and how it is solved."""

    t_max_s: float = 60.0
    """T_max, the round deadline."""
    err_max: float = 0.2
    """Delta_max, the bound on the global learning error (12a)."""
    dgen_max: int = 5000
    """D_max, the most synthetic samples a device receives."""
    omega_cycles_per_sample: float = 5e6
    """omega, CPU cycles to train on one sample."""
    alpha: float = 5.0
    """alpha of the learning curve (1), delta = alpha D^-beta - gamma (`simfl fit-curve` measures it)."""
    beta: float = 0.3
    """beta of the learning curve (1)."""
    gamma: float = 0.1
    """gamma of the learning curve (1)."""
    zeta: float = 68.0
    """zeta of (3) and (4)."""
    solver: str = "ce"
    """ce (the paper's cross-entropy search, Algorithm 3) or exact (the global optimum)."""
    outage: float = 0.0
    """q > 0: plan on the fading's q-quantile gain instead of the mean, so that about a
    fraction q of the updates miss T_max; with plan_for expected_transmitters, also on
    the (1 - q)-quantile of a cell's transmitter count instead of its mean."""
    plan_for: str = "all"
    """Whom a static plan shares each cell's band among: all (every device of the cell,
    the paper's problem) or expected_transmitters (the K N_c / N of them expected to
    transmit in a round with task.participants_per_round K of N: what a plan can do
    when a million phones share 19 bands; the K-of-N rule then shares the band among the
    actual participants in the plan's proportions)."""
    cross_entropy: CrossEntropy = field(default_factory=CrossEntropy)
    """The cross-entropy search's settings (see `optimisation.cross_entropy`)."""


@dataclass(frozen=True)
class Generator:
    """The server's generative model, trained by simfl on the public split."""

    kind: str = "diffusion"
    """The model FIMI and the policies built on it use: diffusion or gan (the conditional
    GAN; the `gan` baseline always uses it)."""
    config: str = "default"  # the kind's configurations: simfl.generative.configs.CONFIGS
    """default (about 18 minutes to train both kinds on 2 cores), quick (about 5) or tiny (tests)."""
    cache_dir: str | None = None
    """Where trained generators and their images are kept; null: $SIMFL_CACHE, else ~/.cache/simfl."""
    guidance: float = 2.0
    """The diffusion model's classifier-free guidance weight."""
    sampling_steps: int = 50
    """DDIM steps of the diffusion model (300: the paper's DDPM)."""


@dataclass(frozen=True)
class Server:
    """The server's own work in simulated time (defaults: the paper's, instantaneous)."""

    aggregation_delay_s: float = 0.0
    """Each aggregation takes this long; devices wait for the new model meanwhile."""
    synthesis_images_per_s: float = math.inf
    """The rate the server makes synthetic images at, before the first job of the device
    that needs them (delaying it); null: instantly."""


@dataclass(frozen=True)
class Handover:
    """When a moving device changes cell (simfl.handover): another cell's mean gain must
    exceed the serving cell's by more than `hysteresis_db` and keep doing so for
    `time_to_trigger_s`; the device then sends nothing for `interruption_s`."""

    hysteresis_db: float = 0.0
    """How much another cell's mean gain must exceed the serving cell's."""
    time_to_trigger_s: float = 0.0
    """How long it must keep doing so, without a break, before the device hands over."""
    interruption_s: float = 0.0
    """After a handover the device sends nothing for this long."""


@dataclass(frozen=True)
class NetworkSettings:
    """The `network:` section: rules of the radio network beyond each cell's own fields."""

    handover: Handover = Handover()
    """When a moving device changes cell (see `network.handover`)."""
    # how often a transfer's rate is re-evaluated while it runs; None: a tenth of the
    # shortest coherence time of the time-based fading in use, else never (the world is
    # sampled at each round's start, as before the channel had time)
    channel_step_s: float | None = None
    """Re-evaluate a transfer's rate this often while it runs; null: a tenth of the shortest
    coherence time of the time-based fading in use (none in use: the world is sampled at
    each round's start)."""
    interference: str = "none"
    """none, or co_channel: uploads of other cells on overlapping sub-bands add to the noise."""
    allocator: str = "lowest_free"
    """Where an upload's sub-band sits in its cell's band: lowest_free (one contiguous
    block in the lowest gap that holds it)."""


@dataclass(frozen=True)
class Scenario:
    """A scenario file, checked: every section as typed, frozen data."""

    name: str
    """Used in titles."""
    source: str
    """The file it came from, for messages (not a field of the file)."""
    seed: int
    """Every random draw derives from it: placement, channel, partition, training, dynamics."""
    cells: tuple[Cell, ...]
    """One or more base stations, each with its own band (a list, or `{hex_grid: {...}}`)."""
    devices: tuple[DeviceGroup, ...]
    """A group of devices, or a list of groups and explicit devices."""
    task: Task
    """The learning task (see `task`)."""
    optimisation: Optimisation
    """The paper's optimisation problem (see `optimisation`)."""
    generator: Generator
    """The server's generative model (see `generator`)."""
    policies: tuple[str, ...]
    """What `simfl compare` runs (name@mode: in that aggregation mode; a+b: a combination);
    the first is the baseline of the ratios."""
    raw: dict = field(repr=False, compare=False, default_factory=dict)
    """The mapping the file held, after overrides (not a field of the file)."""
    aggregation: Aggregation = field(default_factory=Aggregation)
    """How the server turns updates into global models (see `aggregation`)."""
    # policy name -> the numbers given under `policy_settings.<name>`; whether the policy
    # declares them and they are in its ranges is checked above this layer, against the
    # policy's class, by simfl.registry.check_policies, which also completes them with the
    # policy's defaults (what a run records)
    policy_settings: dict[str, dict[str, float]] = field(default_factory=dict)
    """Numbers under a policy's name, `{fedprox: {mu: 0.1}}`: the settings that policy
    declares (see `policy_settings`)."""
    network: NetworkSettings = NetworkSettings()
    """Rules of the radio network beyond each cell's own fields (see `network`)."""
    server: Server = field(default_factory=Server)
    """The server's own work in simulated time (see `server`)."""
    flower: dict[str, dict[str, Any]] = field(default_factory=dict)
    """A Flower strategy's constructor arguments under its class name (numbers, strings,
    booleans), `{FedAdam: {eta: 0.01}}`, and simfl's keys train_config and
    evaluate_config (the ConfigRecords handed to configure_train and configure_evaluate)
    and evaluate_fn (file.py:function); whether they fit the strategy is checked when it
    is built (see simfl.flower)."""

    @property
    def n_devices(self) -> int:
        return sum(g.count for g in self.devices)

    @property
    def split_seed(self) -> int:
        """The seed of the public/private split, and so of the generators trained on it."""
        return self.seed if self.task.public_split_seed is None else self.task.public_split_seed


__all__ = ["Cell", "DeviceGroup", "Distribution", "Downlink", "Generator", "Handover", "HexGrid", "NetworkSettings",
           "Optimisation", "PathLoss", "Scenario", "Server", "Task"]
