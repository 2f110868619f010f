"""Combinations `a+b`: the data side of policy `a` with the training side of policy `b`.

`fimi+scaffold` plans, synthesises, selects and sets resources as FIMI does (`plan`,
`select`, `plan_round`, `training_set` of `a`) and trains and aggregates as SCAFFOLD does
(`local_rule`, `aggregate`, `uplink_models` of `b`), so the plan is made for SCAFFOLD's
doubled uplink payload. `b` must be a training-side algorithm
(simfl.training_side.TrainingAlgorithm); `a` must leave training alone (no aggregate or
local_rule of its own, one model uploaded), else the combination would silently drop
part of `a`: such a pair is refused with a message saying why.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import numpy as np

from simfl import guard
from simfl.aggregation import SYNC
from simfl.errors import PolicyNotFound, ScenarioError
from simfl.plan import Plan, RoundPlan
from simfl.policy import PlanContext, Policy
from simfl.training_side import TrainingAlgorithm
from simfl.world import World

if TYPE_CHECKING:
    from simfl.learning.local_rule import LocalRule
    from simfl.learning.protocol import LocalUpdate, Server, TrainingData
    from simfl.network import RoundState
    from simfl.scenario import Scenario

SEPARATOR = "+"


def split(reference: str) -> tuple[str, str] | None:
    """(data side, training side) of `a+b`; None for a single policy. More than one `+`
    is refused: a combination has one data side and one training side."""
    if SEPARATOR not in reference:
        return None
    parts = reference.split(SEPARATOR)
    if len(parts) != 2 or not all(parts):
        raise PolicyNotFound(f"policy {reference!r}: a combination is data-side+training-side, two policy names "
                             "joined by one '+', e.g. fimi+scaffold")
    return parts[0], parts[1]


def composition_problem(data: type[Policy], training: type[Policy]) -> str | None:
    """Why `data`+`training` cannot be combined, or None."""
    pair = f"{data.name}+{training.name}"
    if not issubclass(training, TrainingAlgorithm):
        return (f"policy {pair!r}: {training.name!r} has no training side to lend (after the '+' comes a "
                "training-side algorithm such as fedprox, scaffold, fednova, fedavgm, fedadam or fedyogi)")
    if issubclass(data, TrainingAlgorithm):
        return (f"policy {pair!r}: {data.name!r} is itself a training-side algorithm; its own training would be "
                f"dropped. Before the '+' comes a data side (e.g. fimi, tfl, hdc)")
    own = [hook for hook in ("aggregate", "local_rule") if getattr(data, hook) is not getattr(Policy, hook)]
    if own or data.uplink_models != 1:
        what = ", ".join(f"its own {hook}()" for hook in own) or f"uplink_models = {data.uplink_models}"
        return (f"policy {pair!r}: {data.name!r} changes training too ({what}), which {training.name!r} would "
                "replace; combine a data side that leaves training to the default hooks")
    return None


class Composed(Policy):
    """A data-side policy and a training-side one, each instantiated, hooks routed. A
    training side that `decides_participants` (a Flower strategy) also selects them,
    and the round waits for devices as it does."""

    data_side: ClassVar[type[Policy]]
    training_side: ClassVar[type[Policy]]

    def __init__(self) -> None:
        # each part through the guard, so a failing constructor is named with its own file
        self.data = guard.instantiate(self.data_side)
        self.training = guard.instantiate(self.training_side)

    # the data side
    def plan(self, world: World, context: PlanContext) -> Plan:
        return self.data.plan(world, context)

    def select(self, state: RoundState, context: PlanContext) -> np.ndarray:
        if self.training.decides_participants:  # a Flower strategy samples its own nodes
            return self.training.select(state, context)
        return self.data.select(state, context)

    def plan_round(self, world: World, state: RoundState, context: PlanContext) -> RoundPlan:
        if not self.training.decides_participants:
            return self.data.plan_round(world, state, context)
        # the data side's resources for the participants the training side chose: its
        # own per-round plan where it has one (fimi-online), else its static plan shared
        # as for K of N; then the training side's local epochs
        own = type(self.data).plan_round is not Policy.plan_round
        base = self.data.plan_round(world, state, context) if own else self.training.shared_plan(world, state, context)
        return self.training.with_local_epochs(base, world)

    def training_set(self, data: TrainingData) -> tuple[Any, Any]:
        return self.data.training_set(data)

    # the training side
    def local_rule(self, client: int) -> LocalRule | None:
        return self.training.local_rule(client)

    def aggregate(self, updates: Sequence[LocalUpdate], server: Server, state: RoundState) -> Any:
        return self.training.aggregate(updates, server, state)

    # both
    def configure(self, scenario: Scenario) -> None:
        if self.aggregation_mode is not None:  # `fimi+fedprox@fedbuff`: the parts see the name's mode
            if self.aggregation_mode != SYNC and getattr(self.training, "synchronous_only", False):
                raise ScenarioError(f"policy {self.name!r}: {self.training.name!r} aggregates synchronous rounds "
                                    f"only, not in {self.aggregation_mode}; drop the '@{self.aggregation_mode}', "
                                    "or combine with fedprox, which aggregates by the mode's own rule")
            scenario = replace(scenario, aggregation=replace(scenario.aggregation, mode=self.aggregation_mode))
        self.data.configure(scenario)
        self.training.configure(scenario)

    def state_dict(self) -> dict[str, Any]:
        return {"data": self.data.state_dict(), "training": self.training.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.data.load_state_dict(state.get("data", {}))
        self.training.load_state_dict(state.get("training", {}))

    def round_metrics(self) -> dict[str, float]:
        return {**self.data.round_metrics(), **self.training.round_metrics()}

    def tensor_state(self) -> dict[str, Any]:
        return {"data": self.data.tensor_state(), "training": self.training.tensor_state()}

    def load_tensor_state(self, state: dict[str, Any]) -> None:
        self.data.load_tensor_state(state.get("data", {}))
        self.training.load_tensor_state(state.get("training", {}))


@lru_cache(maxsize=None)
def compose(data: type[Policy], training: type[Policy]) -> type[Policy]:
    """The class of `data`+`training` (one class per pair, named `<data>+<training>`);
    PolicyNotFound saying why when the two cannot be combined."""
    problem = composition_problem(data, training)
    if problem:
        raise PolicyNotFound(problem)
    label = f"{data.__name__}With{training.__name__}"
    return type(label, (Composed,), {"name": f"{data.name}{SEPARATOR}{training.name}", "data_side": data,
                                     "training_side": training, "uplink_models": training.uplink_models,
                                     "waits_for_devices": training.waits_for_devices,
                                     "__module__": __name__, "__qualname__": label,
                                     "__doc__": f"{data.name}'s data side with {training.name}'s training side."})


__all__ = ["SEPARATOR", "Composed", "compose", "composition_problem", "split"]
