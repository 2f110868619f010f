"""The policy interface, in the style of Flower's Strategy: a policy decides once, before
training (`plan`: synthetic data and a static resource plan, Section III-A S1), and may
decide every round through hooks the engine calls, each with a default that is the
paper's behaviour:

- `select(state, context)`: the participants among the available devices;
- `plan_round(world, state, context)`: each participant's f, b, P for this round;
- `aggregate(updates, server, state)`: the new global model from the arrived updates;
- `training_set(data)`: what a device trains on, from its local and synthetic data;
- `local_rule(client)`: what changes in a device's local SGD (FedProx, SCAFFOLD, FedNova;
  `simfl.learning.local_rule`), None for plain SGD.

Training-side algorithms also declare `uplink_models` (how many model-sized tensors a
device uploads: SCAFFOLD's control variates double it, and the experiment sizes the
world's uplink payload S by it before planning) and `settings` (their fields under
`policy_settings.<name>` in the scenario, read by `configure`).

A new baseline is one class in one file under `policies/` (or anywhere importable):

    class EqualShare(Policy):
        name = "equal-share"
        def plan(self, world, context):
            return Plan.no_synthesis(world, f_hz=world.f_max_hz, b_hz=..., p_w=world.p_max_w)

A policy never reaches into the engine: what it decides is what its hooks return.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import numpy as np

from simfl.aggregation import default_aggregate
from simfl.plan import Plan, RoundPlan, shared_among_selected
from simfl.optim.cross_entropy import DEFAULT_SETTINGS, CrossEntropy
from simfl.policy_settings import Setting, setting_values
from simfl.streams import keyed_rng, rng
from simfl.world import World

if TYPE_CHECKING:
    from simfl.learning.local_rule import LocalRule
    from simfl.learning.protocol import LocalUpdate, Server, TrainingData
    from simfl.network import RoundState
    from simfl.scenario import Scenario


@dataclass(frozen=True)
class PlanContext:
    """What a policy may use besides the world: the scenario (for its settings), a random
    generator of its own stream, the solver, and (in the round hooks) the seed, the
    static plan the policy made, K and the run's world."""

    scenario: Scenario | None
    rng: np.random.Generator
    solver: str = "ce"
    seed: int = 0
    plan: Plan | None = None
    participants_per_round: int | None = None
    world: World | None = None  # in the round hooks: the world of the run (its limits)
    server: Any = None  # in the round hooks: the run's Server (simfl.learning.protocol), its global model

    @property
    def cross_entropy(self) -> CrossEntropy:
        """The CE search's settings: the scenario's, or the defaults without a scenario."""
        return DEFAULT_SETTINGS if self.scenario is None else self.scenario.optimisation.cross_entropy

    @property
    def generator(self) -> str:
        """The generative model the scenario chose (`generator.kind`), for policies that
        do not insist on one."""
        return "diffusion" if self.scenario is None else self.scenario.generator.kind

    def restarted(self) -> PlanContext:
        """The context with the policy stream from its start: what a policy passes to
        another policy whose plan it reuses (SST's TFL resources, CLSD's FIMI amounts), so
        the reused plan is exactly the one that policy makes on its own."""
        return replace(self, rng=rng(self.seed, "policy"))


class Policy(ABC):
    """Decides synthetic amounts and resources, once and (optionally) every round.

    Attributes
    ----------
    name:
        The id users type (`--policy fimi`).
    aggregation_mode:
        None: the scenario's `aggregation.mode`. `tfl@fedbuff` names tfl run in FedBuff
        (the registry makes that subclass), so one comparison can hold several modes.
    uplink_models:
        Model-sized tensors a device uploads per update (1: its model; SCAFFOLD: 2).
    settings:
        The fields the policy reads from `policy_settings.<name>` in the scenario.
    waits_for_devices:
        When `select` returns nobody, the server waits for the next device to come
        online and asks again, instead of playing a round without participants (a
        Flower strategy that needs more nodes than are available: Flower waits too).
    """

    name: ClassVar[str]
    aggregation_mode: ClassVar[str | None] = None
    uplink_models: ClassVar[int] = 1
    settings: ClassVar[tuple[Setting, ...]] = ()
    waits_for_devices: ClassVar[bool] = False

    def configure(self, scenario: Scenario) -> None:
        """Take the policy's `settings` from the scenario's `policy_settings.<name>`
        (checked against their ranges; defaults where absent) as attributes of the same
        names. Called before planning and training. `fedprox@fedbuff` reads fedprox's."""
        name = self.name.removesuffix(f"@{self.aggregation_mode}") if self.aggregation_mode else self.name
        for key, value in setting_values(scenario, self.settings, name).items():
            setattr(self, key, value)

    @abstractmethod
    def plan(self, world: World, context: PlanContext) -> Plan:
        """Return the plan for `world` (decided once, before the first round)."""

    def select(self, state: RoundState, context: PlanContext) -> np.ndarray:
        """The devices that take part in this round, among `state.available`.

        Default: every available device, or `task.participants_per_round` of them drawn
        uniformly without replacement (the round's own draw of the "selection" stream,
        the same for every policy of a comparison).
        """
        available = np.flatnonzero(state.available)
        k = context.participants_per_round
        if k is None or k >= len(available):
            return available
        draw = keyed_rng(context.seed, "selection", state.round)
        return np.sort(draw.choice(available, size=k, replace=False))

    def plan_round(self, world: World, state: RoundState, context: PlanContext) -> RoundPlan:
        """f, b and P of every device for this round (entries of devices not selected are
        ignored). Default: the static plan; with K of N (`task.participants_per_round`)
        each cell's band is shared among the selected devices in it, in the plan's
        proportions (`plan.shared_among_selected`), rather than left planned for all N;
        otherwise, where devices moved into a cell whose band their planned sub-bands
        overfill, the selected devices' sub-bands in that cell are scaled down in
        proportion to fit it. In the asynchronous modes the planned shares are scaled up
        so that the max_concurrency devices that may transmit at once fill the band, and
        fitted into what the jobs in flight leave free (`RoundPlan.fitted`)."""
        assert context.plan is not None
        if context.participants_per_round is not None and not state.aggregation.asynchronous:
            return shared_among_selected(world, context.plan, state.cell_of, state.selected)
        concurrency = state.aggregation.max_concurrency if state.aggregation.asynchronous else None
        return RoundPlan.fitted(world, context.plan, state.cell_of, state.selected, concurrency, state.band_free_hz)

    def aggregate(self, updates: Sequence[LocalUpdate], server: Server, state: RoundState) -> Any:
        """The new global model from the updates that arrived (None: unchanged). Default:
        the rule of the scenario's `aggregation.mode` (`simfl.aggregation`): FedAvg
        weighted by each update's training samples (S4) in synchronous rounds, one
        staleness-weighted FedBuff step over the buffer, or FedAsync's mix."""
        return default_aggregate(updates, server, state.version, state.aggregation)

    def training_set(self, data: TrainingData) -> tuple[Any, Any]:
        """What a device trains on this round, as (inputs, labels) tensors. Default: its
        whole mixed set D_loc u D_gen with the generator's labels."""
        return data.x, data.y

    def local_rule(self, client: int) -> LocalRule | None:
        """How `client`'s local SGD differs from plain SGD in the job being dispatched
        (a picklable `LocalRule`), or None: plain SGD (the default)."""
        return None

    def round_metrics(self) -> dict[str, float]:
        """Numbers the policy reports about the round just aggregated (a Flower
        strategy's aggregated train and evaluate MetricRecords), written to the run
        folder's metrics.csv as (policy, round, metric, value) rows. Default: none."""
        return {}

    def tensor_state(self) -> dict[str, Any]:
        """What the policy remembers that is tensors (server momentum, Adam moments,
        control variates): saved with torch.save in each round's checkpoint beside the
        model, so it round-trips bit for bit. Nested dicts (string keys) and lists of
        tensors. Default: nothing."""
        return {}

    def load_tensor_state(self, state: dict[str, Any]) -> None:
        """Restore what `tensor_state` returned."""

    def state_dict(self) -> dict[str, Any]:
        """What the policy remembers between rounds (e.g. devices' last reported losses),
        as JSON-serialisable data: it is saved in each round's snapshot so a resumed run
        continues bit for bit. Default: nothing."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""

    def __repr__(self) -> str:
        return f"<policy {self.name}>"


class FixedPlan(Policy):
    """A given plan with every default hook (engine tests, notebooks)."""

    name = "fixed-plan"

    def __init__(self, plan: Plan) -> None:
        self._plan = plan

    def plan(self, world: World, context: PlanContext) -> Plan:
        return self._plan
