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

    def allowed(self) -> str:
        """The range in words, for the README and messages."""
        parts = [f">= {self.minimum:g}" if self.minimum is not None else "",
                 f"> {self.above:g}" if self.above is not None else "",
                 f"<= {self.maximum:g}" if self.maximum is not None else "",
                 f"< {self.below:g}" if self.below is not None else ""]
        kind = "an integer" if self.integer else "a number"
        bounds = " and ".join(p for p in parts if p)
        return f"{kind} {bounds}" if bounds else kind


__all__ = ["Setting"]
