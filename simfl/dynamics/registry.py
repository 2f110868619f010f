"""Registries of dynamics components, and parsing of their scenario values.

A scenario value is either a bare name (`always`, `static`, `none`, `rayleigh`) or a
one-key mapping `{name: {field: value, ...}}`. The component class validates its own
fields through `from_config`, reporting each problem with its field path.
"""

from __future__ import annotations

import difflib
import math
from typing import Any, Callable, ClassVar

from simfl.limits import Bounds

AVAILABILITY: dict[str, Any] = {}
MOBILITY: dict[str, Any] = {}
FADING: dict[str, Any] = {}

Fail = Callable[[str, str], None]  # (field path, message)


def register(registry: dict[str, Any]) -> Callable[[type], type]:
    """Class decorator: add a component under its `kind`; a name used twice is an error."""

    def add(cls: type) -> type:
        kind = cls.kind  # type: ignore[attr-defined]
        if kind in registry and registry[kind] is not cls:
            raise ValueError(f"dynamics component {kind!r} is registered twice")
        registry[kind] = cls
        return cls

    return add


def parse_component(registry: dict[str, Any], value: Any, where: str, fail: Fail, default: str,
                    context: dict[str, Any] | None = None) -> Any:
    """The component a scenario value names, built from its fields; None after a problem.
    (The built-in components register themselves when `simfl.dynamics` is imported.)"""
    if value is None:
        value = default
    if isinstance(value, str):
        name, params = value, None
    elif isinstance(value, dict) and len(value) == 1:
        name, params = next(iter(value.items()))
    else:
        fail(where, f"must be one of {_forms(registry)}; got {value!r}")
        return None
    cls = registry.get(name) if isinstance(name, str) else None
    if cls is None:
        close = difflib.get_close_matches(str(name), registry, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        fail(where, f"unknown kind {name!r}{hint}; allowed: {_forms(registry)}")
        return None
    return cls.from_config(params, f"{where}.{name}" if params is not None else where, fail, context or {})


def _forms(registry: dict[str, Any]) -> str:
    return " | ".join(getattr(cls, "form", kind) for kind, cls in sorted(registry.items()))


class WithoutFields:
    """A component written as a bare name (`always`, `static`, `none`, `rayleigh`)."""

    kind: ClassVar[str]

    @classmethod
    def from_config(cls, params: Any, where: str, fail: Fail, context: dict) -> Any:
        if params is not None:
            fail(where, f"`{cls.kind}` takes no fields")
            return None
        return cls()


def number_field(params: Any, key: str, where: str, fail: Fail, bounds: Bounds,
                 default: float | None = None) -> float | None:
    """One finite number of a component's mapping, checked against its `bounds` (a
    component's `FIELDS`); `default` when absent and not `bounds.required`."""
    if not isinstance(params, dict):
        fail(where, f"must be a mapping with field {key!r}, got {params!r}")
        return None
    if key not in params:
        if not bounds.required:
            return default
        fail(f"{where}.{key}", "missing required field")
        return None
    raw = params[key]
    try:
        value = float(raw) if not isinstance(raw, bool) else None
    except (TypeError, ValueError):
        value = None
    if value is None or not math.isfinite(value):
        fail(f"{where}.{key}", f"must be a finite number, got {raw!r}")
        return None
    above, minimum, below, maximum = bounds.above, bounds.minimum, bounds.below, bounds.maximum
    if above is not None and value <= above:
        fail(f"{where}.{key}", f"must be > {above:g}, got {value:g}")
    if minimum is not None and value < minimum:
        fail(f"{where}.{key}", f"must be >= {minimum:g}, got {value:g}")
    if below is not None and value >= below:
        fail(f"{where}.{key}", f"must be < {below:g}, got {value:g}")
    if maximum is not None and value > maximum:
        fail(f"{where}.{key}", f"must be <= {maximum:g}, got {value:g}")
    return value


# Physical bounds of the dynamics' fields: far above any phone's, far below what turns a
# run's times into infinities (a typo like 1e300 fails on load).
MAX_SPEED_MPS = 1e3  # 3,600 km/h: above any vehicle a phone rides
MAX_PERIOD_S = 1e9  # 31 years: an on/off period or a pause


def declared(cls: type) -> set[str]:
    """The fields a component's mapping may hold: the numbers it declares in `FIELDS`
    (name -> Bounds) and the names in `CHOICES` (name -> the values it takes)."""
    return set(getattr(cls, "FIELDS", {})) | set(getattr(cls, "CHOICES", {}))


def unknown_fields(params: Any, allowed: set[str], where: str, fail: Fail) -> None:
    if isinstance(params, dict):
        for key in params:
            if key not in allowed:
                fail(f"{where}.{key}", f"unknown field; allowed: {', '.join(sorted(allowed))}")
