"""A policy's settings in the scenario: `policy_settings.<policy name>.<field>`.

A policy declares what it reads as a class attribute `settings`, a tuple of `Setting`s
(name, default, allowed range); simfl validates the scenario's values against it like
every other field (one ScenarioError naming the file, the field and what is allowed) and
hands the policy the values through `Policy.configure`:

    class FedProx(TrainingAlgorithm):
        name = "fedprox"
        settings = (Setting("mu", 0.01, "proximal weight", minimum=0.0),)

    # scenario.yaml
    policy_settings:
      fedprox: {mu: 0.1}
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    """One numeric setting of a policy: its default and the bounds a value must meet
    (`minimum`/`maximum` inclusive, `above`/`below` exclusive)."""

    name: str
    default: float
    doc: str
    minimum: float | None = None
    above: float | None = None
    maximum: float | None = None
    below: float | None = None
    integer: bool = False


__all__ = ["Setting"]
