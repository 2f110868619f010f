"""Training-side algorithms: what a policy changes in local training and aggregation
(FedProx, SCAFFOLD, FedNova, FedAvgM, FedAdam, FedYogi), as opposed to its data side
(synthetic data, the resource plan, who takes part: FIMI and the other baselines).

A training-side algorithm is a `TrainingAlgorithm`: it works through the policy hooks
`local_rule` (simfl.learning.local_rule) and `aggregate` (the Server protocol), declares
its scenario `settings` and its `uplink_models`, and keeps tensors it needs across rounds
in `tensor_state` (saved in each round's checkpoint). Run alone, its data side is TFL's
(each built-in one inherits simfl.policies.tfl.Tfl); `a+b` puts it behind another data
side (simfl.compose).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

from simfl.aggregation import SYNC
from simfl.errors import ScenarioError
from simfl.policy import Policy
from simfl.world import World

if TYPE_CHECKING:
    from simfl.scenario import Scenario


class TrainingAlgorithm(Policy):
    """The training side of a policy (abstract: the data side's `plan` comes from a
    data-side policy, e.g. `class FedProx(TrainingAlgorithm, Tfl)`).

    `synchronous_only`: the algorithm is defined for synchronous rounds (its aggregation
    uses every round's arrivals together), so a scenario in FedBuff or FedAsync mode is
    refused when it is configured, before anything trains.
    """

    synchronous_only: ClassVar[bool] = True
    # the training side also chooses who trains (`select`), sets the local epochs of the
    # round plan and waits for devices (a Flower strategy; simfl.compose routes it)
    decides_participants: ClassVar[bool] = False

    def __init__(self) -> None:
        # each setting's default until `configure` reads the scenario's value
        for setting in self.settings:
            setattr(self, setting.name, setting.default)

    def configure(self, scenario: Scenario) -> None:
        super().configure(scenario)
        if self.synchronous_only and self.aggregation_mode not in (None, SYNC):  # `scaffold@fedbuff`
            base = self.name.rpartition("@")[0]
            raise ScenarioError(f"policy {self.name!r}: {base!r} aggregates synchronous rounds only, not in "
                                f"{self.aggregation_mode}; run {base!r} (or {base}@sync), or fedprox, which trains "
                                "differently but aggregates by the mode's own rule")
        mode = self.aggregation_mode or scenario.aggregation.mode
        if self.synchronous_only and mode != SYNC:
            raise ScenarioError(f"{scenario.source}: aggregation.mode: policy {self.name!r} aggregates synchronous "
                                f"rounds only (mode sync), got {mode}; use mode sync, or fedprox, which trains "
                                "differently but aggregates by the mode's own rule")


def uplink_world(world: World, policy: Policy) -> World:
    """`world` with the uplink payload S (Constants.model_bits) of `policy`'s updates: the
    model times `uplink_models`, so planning (FIMI's resource plan included), upload
    times, energies (eqs. 7-9) and the bits counted all see what the devices really
    send. The world itself when the policy sends its model only."""
    factor = int(getattr(policy, "uplink_models", 1))
    if factor == 1:
        return world
    return replace(world, constants=replace(world.constants, model_bits=world.constants.model_bits * factor))


__all__ = ["TrainingAlgorithm", "uplink_world"]
