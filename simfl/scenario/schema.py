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

    kind: str  # "constant" | "uniform" | "linspace" | "values"
    params: tuple[float, ...]

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
    slope_db: float = 37.6
    shadowing_std_db: float = 0.0
    fading: Any = NoFading()  # a simfl.dynamics.fading component
    model: Any = None  # a simfl.pathloss model; None: the log-distance model above


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
    carrier_hz: float = DEFAULT_CARRIER_HZ  # f_c: sets the Doppler of Clarke fading


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
    config: str = "default"  # a configuration of the kind: "default" | "quick" | "tiny" (simfl.generative.configs.CONFIGS)
    cache_dir: str | None = None
    guidance: float = 2.0
    sampling_steps: int = 50


@dataclass(frozen=True)
class Server:
    """The server's own work in simulated time (defaults: the paper's, instantaneous)."""

    aggregation_delay_s: float = 0.0  # each aggregation takes this long; devices wait for the new model
    synthesis_images_per_s: float = math.inf  # synthetic images made before the device that needs them trains


@dataclass(frozen=True)
class Handover:
    """When a moving device changes cell (simfl.handover): another cell's mean gain must
    exceed the serving cell's by more than `hysteresis_db` and keep doing so for
    `time_to_trigger_s`; the device then sends nothing for `interruption_s`."""

    hysteresis_db: float = 0.0
    time_to_trigger_s: float = 0.0
    interruption_s: float = 0.0


@dataclass(frozen=True)
class NetworkSettings:
    """The `network:` section: rules of the radio network beyond each cell's own fields."""

    handover: Handover = Handover()
    # how often a transfer's rate is re-evaluated while it runs; None: a tenth of the
    # shortest coherence time of the time-based fading in use, else never (the world is
    # sampled at each round's start, as before the channel had time)
    channel_step_s: float | None = None
    interference: str = "none"  # none | co_channel (simfl.engine.interference)
    allocator: str = "lowest_free"  # where a transmitter's sub-band sits in its cell's band (simfl.spectrum)


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
    # policy name -> the numbers given under `policy_settings.<name>`; whether the policy
    # declares them and they are in its ranges is checked above this layer, against the
    # policy's class, by simfl.registry.check_policies, which also completes them with the
    # policy's defaults (what a run records)
    policy_settings: dict[str, dict[str, float]] = field(default_factory=dict)
    network: NetworkSettings = NetworkSettings()
    server: Server = field(default_factory=Server)
    # Flower strategy class name -> its constructor's arguments (numbers, strings,
    # booleans) and the reserved train_config, evaluate_config (ConfigRecords) and
    # evaluate_fn ("file.py:function"); whether they fit the strategy is checked when it
    # is built (simfl.flower)
    flower: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def n_devices(self) -> int:
        return sum(g.count for g in self.devices)

    @property
    def split_seed(self) -> int:
        """The seed of the public/private split, and so of the generators trained on it."""
        return self.seed if self.task.public_split_seed is None else self.task.public_split_seed



__all__ = ["Cell", "DeviceGroup", "Distribution", "Downlink", "Generator", "Handover", "NetworkSettings",
           "Optimisation", "PathLoss", "Scenario", "Task"]
__all__ = ["Cell", "DeviceGroup", "Distribution", "Downlink", "Generator", "Optimisation", "PathLoss",
           "Scenario", "Server", "Task"]
