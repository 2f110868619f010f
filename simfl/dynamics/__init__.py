"""What changes during a run: device availability, batteries, mobility and fading.

Each kind of dynamic is one small class registered by the name users write in a scenario
(`availability: {markov: {...}}`, `mobility: {random_waypoint: {...}}`,
`fading: {gauss_markov: {...}}`), the way policies are: a new one is one class with
`@register`. Every draw is keyed by (device, period) or by round through counter-based
seeds (`simfl.world.keyed_rng`), so a device's timeline is a function of the seed alone:
every policy of a comparison meets the same world, however its rounds fall, and a
resumed run needs only the small state each runtime serialises.
"""

from simfl.dynamics.registry import AVAILABILITY, FADING, MOBILITY, parse_component, register
# the built-in components, imported for their @register: every import of simfl.dynamics (or of
# a module in it) fills the registries before anything parses a scenario
from simfl.dynamics import availability, fading, fedscale, mobility  # noqa: E402,F401  isort: skip

__all__ = ["AVAILABILITY", "FADING", "MOBILITY", "parse_component", "register"]
