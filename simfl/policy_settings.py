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

The scenario layer checks only that the values are numbers under a policy's name; the
checks against a policy's declaration are here, above it, where the policy classes are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simfl.limits import Bounds
from simfl.scenario.checks import Checker, join

if TYPE_CHECKING:
    from simfl.scenario import Scenario


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

    @property
    def bounds(self) -> Bounds:
        """The bounds a value must meet, as every other number of a scenario states them."""
        return Bounds(self.minimum, self.above, self.maximum, self.below, self.integer)


def check_settings(settings: tuple[Setting, ...], given: dict[str, Any], where: str, name: str,
                   c: Checker) -> dict[str, float]:
    """The values of the declared `settings` in `given` (the scenario's
    `policy_settings.<name>`, at field path `where`), their defaults where absent; every
    problem (a field the policy does not declare, a value out of its range) recorded in `c`."""
    if given and not settings:
        c.fail(where, f"policy {name!r} takes no settings")
        return {}
    c.unknown(given, {s.name for s in settings}, where)
    values = {}
    for s in settings:
        value = c.number(given, s.name, where, s.default, s.bounds)
        values[s.name] = s.default if value is None else value
    return values


def setting_values(scenario: Scenario, settings: tuple[Setting, ...], name: str) -> dict[str, float]:
    """The values of a policy's declared `settings` from the scenario's
    `policy_settings.<name>` (their defaults where absent); a ScenarioError naming the
    file and field when one is out of range."""
    c = Checker(scenario.source)
    values = check_settings(settings, scenario.policy_settings.get(name, {}), join("policy_settings", name), name, c)
    c.raise_if_any()
    return values


__all__ = ["Setting", "check_settings", "setting_values"]
