"""Checking a parsed scenario's values: `Checker` collects every problem as a
`path: message` line and raises them all at once in one ScenarioError naming the file;
its typed getters return a usable default after recording a problem, so one pass finds
every problem. Number helpers read YAML's numbers (and numeric strings like `1e6`,
which YAML 1.1 leaves as text) and refuse NaN and infinity anywhere.

Ranges come from the call (a field's `Bounds`, for the scenario's fields from the tables
of simfl.scenario.rules) and, for every integer field and every physical field, from
simfl.limits (`int_range`, `physical_range`), so a new field of either kind is held to a
range without a change here.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from simfl.errors import ScenarioError
from simfl.limits import Bounds, PhysicalRange, int_range, physical_range
from simfl.scenario.schema import Distribution


class Checker:
    """Collects problems as `path: message` lines, then raises them all at once."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []
        # files a scenario names (availability traces) are relative to the scenario's folder
        self.base_dir = str(Path(source).parent) if Path(source).exists() else None

    def fail(self, path: str, message: str) -> None:
        """Record the problem `message` of the field at `path`."""
        line = f"{path}: {message}"
        if line not in self.problems:  # the finiteness walk and a field's own check may agree
            self.problems.append(line)

    def _fail_unless_named(self, where: str, path: str, message: str) -> None:
        """Record a problem unless one under `where` is already recorded (a non-finite
        number the finiteness walk named more precisely)."""
        if not any(line.startswith(where) for line in self.problems):
            self.fail(path, message)

    def raise_if_any(self) -> None:
        """One ScenarioError naming the file and listing every recorded problem, if any."""
        if not self.problems:
            return
        if len(self.problems) == 1:
            raise ScenarioError(f"{self.source}: {self.problems[0]}")
        lines = "\n".join(f"  - {p}" for p in self.problems)
        raise ScenarioError(f"{self.source}: {len(self.problems)} problems\n{lines}")

    # typed getters: each returns a usable default after recording a problem

    def mapping(self, node: Any, path: str) -> dict:
        if node is None:
            return {}
        if not isinstance(node, dict):
            self.fail(path, f"must be a mapping, got {describe(node)}")
            return {}
        return node

    def unknown(self, node: dict, allowed: set[str], path: str) -> None:
        for key in node:
            if key not in allowed:
                self.fail(join(path, str(key)), f"unknown field; allowed: {', '.join(sorted(allowed))}")

    def number(self, node: dict, key: str, path: str, default: Any = None, bounds: Bounds = Bounds()) -> Any:
        """`node[key]` as a float (an int with `bounds.integer`), `default` when absent;
        checked against `bounds` (`minimum`/`maximum` inclusive, `above`/`below`
        exclusive), then an integer's range and a physical field's range (simfl.limits)."""
        where = join(path, key)
        minimum, above, maximum, below = bounds.minimum, bounds.above, bounds.maximum, bounds.below
        integer = bounds.integer
        if key not in node or node[key] is None:
            if bounds.required:
                self.fail(where, "missing required field" + (" (an integer)" if integer else " (a number)"))
            return default
        value = node[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            value = parse_number(value)
            if value is None:
                self.fail(where, f"must be {'an integer' if integer else 'a number'}, got {describe(node[key])}")
                return default
        if not finite(value):
            self.fail(where, f"must be finite, got {show(value)}")
            return default
        if integer and isinstance(value, float) and not value.is_integer():
            self.fail(where, f"must be an integer, got {node[key]!r}")
            return default
        before = len(self.problems)
        if minimum is not None and value < minimum:
            self.fail(where, f"must be >= {minimum:g}, got {show(value)}")
        if above is not None and value <= above:
            self.fail(where, f"must be > {above:g}, got {show(value)}")
        if maximum is not None and value > maximum:
            self.fail(where, f"must be <= {maximum:g}, got {show(value)}")
        if below is not None and value >= below:
            self.fail(where, f"must be < {below:g}, got {show(value)}")
        if integer and len(self.problems) == before:
            # every integer has a sane range (simfl.limits), so a typo like 1e300 fails here
            # instead of overflowing or running until it is killed
            low, high = int_range(where)
            if not low <= value <= high:
                self.fail(where, f"must be an integer in [{low}, {high}], got {show(value)}")
                return default
        limits = physical_range(where)
        if limits is not None and len(self.problems) == before and value not in limits:
            self.fail(where, f"must be in {limits}, got {show(value)}")
        if len(self.problems) > before:
            return default
        return int(value) if integer else float(value)

    def choice(self, node: dict, key: str, path: str, options: tuple[str, ...], default: str | None) -> Any:
        where = join(path, key)
        if key not in node or node[key] is None:
            if default is None:
                self.fail(where, f"missing required field; one of: {', '.join(options)}")
            return default
        value = node[key]
        if not isinstance(value, str) or value not in options:
            self.fail(where, f"must be one of {', '.join(options)}; got {value!r}")
            return default
        return value

    def string(self, node: dict, key: str, path: str, default: str | None) -> Any:
        if key not in node or node[key] is None:
            return default
        if not isinstance(node[key], str):
            self.fail(join(path, key), f"must be a string, got {describe(node[key])}")
            return default
        return node[key]

    def distribution(self, node: dict, key: str, path: str, bounds: Bounds,
                     count: int | None = None) -> Distribution | None:
        """A per-device attribute (a number, uniform, linspace or values), every value
        within `bounds` and the field's physical range; None when absent or wrong."""
        where = join(path, key)
        above, minimum = bounds.above, bounds.minimum
        if key not in node or node[key] is None:
            if bounds.required:
                self.fail(where, "missing required field; give a number, {uniform: [low, high]}, {linspace: [first, last]} or {values: [...]}")
            return None
        value = node[key]
        dist: Distribution | None = None
        if not isinstance(value, (dict, bool)):
            number = value if isinstance(value, (int, float)) else parse_number(value)
            if number is not None and finite(number):
                dist = Distribution("constant", (float(number),))
        elif isinstance(value, dict) and len(value) == 1:
            kind, params = next(iter(value.items()))
            if kind in ("uniform", "linspace"):
                nums = numbers(params)
                if nums is None or len(nums) != 2:
                    self._fail_unless_named(where, join(where, kind), f"must be a list [low, high] of two numbers, got {params!r}")
                    return None
                if kind == "uniform" and nums[0] > nums[1]:
                    self.fail(join(where, kind), f"low {nums[0]:g} > high {nums[1]:g}")
                    return None
                dist = Distribution(kind, tuple(nums))
            elif kind == "values":
                nums = numbers(params)
                if nums is None or not nums:
                    self._fail_unless_named(where, join(where, kind), f"must be a non-empty list of numbers, got {params!r}")
                    return None
                if count is not None and len(nums) != count:
                    self.fail(join(where, kind), f"has {len(nums)} values but the group has count {count}")
                    return None
                dist = Distribution(kind, tuple(nums))
        if dist is None and any(line.startswith(where) for line in self.problems):
            return None  # a non-finite number inside it, already named by the finiteness walk
        if dist is None:
            self.fail(where, f"must be a number, {{uniform: [low, high]}}, {{linspace: [first, last]}} or {{values: [...]}}; got {value!r}")
            return None
        lo, hi = min(dist.params), max(dist.params)
        before = len(self.problems)
        if above is not None and lo <= above:
            self.fail(where, f"every value must be > {above:g}, got {lo:g}")
        if minimum is not None and lo < minimum:
            self.fail(where, f"every value must be >= {minimum:g}, got {lo:g}")
        limits = physical_range(where)
        if limits is not None and len(self.problems) == before:
            self._within(where, limits, lo, hi)
        return dist

    def _within(self, path: str, limits: PhysicalRange, *values: float) -> None:
        """Record a problem if one of `values` (of a distribution or a point) is out of `limits`."""
        outside = [v for v in values if v not in limits]
        if outside:
            self.fail(path, f"every value must be in {limits}, got {show(outside[0])}")

    def point(self, value: Any, path: str) -> tuple[float, float]:
        """A position [x, y] in metres, each coordinate within its physical range."""
        nums = numbers(value)
        if nums is None or len(nums) != 2:
            self.fail(path, f"must be a point [x, y] in metres, got {value!r}")
            return (0.0, 0.0)
        limits = physical_range(path)
        if limits is not None:
            self._within(path, limits, *nums)
        return (nums[0], nums[1])

    def directory(self, m: dict, key: str, path: str, default: str | None) -> str | None:
        """A directory field: it may not exist yet, but it must not be a file."""
        value = self.string(m, key, path, default)
        if value is not None:
            where = Path(value).expanduser()
            if where.exists() and not where.is_dir():
                self.fail(join(path, key), f"{value} is a file, not a directory")
            elif not value.strip():
                self.fail(join(path, key), "must be a directory path, got an empty string")
        return value


def join(path: str, key: str) -> str:
    """`path.key`, or `key` at the top."""
    return f"{path}.{key}" if path else key


def describe(value: Any) -> str:
    """`int 3`, `str 'x'`, `nothing`: what a wrong value is, for messages."""
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"


def parse_number(value: Any) -> float | None:
    """YAML 1.1 reads `1e6` as a string; accept numeric strings like that (not words like
    'nan' or 'infinity', which float() would also take)."""
    if isinstance(value, str) and _NUMERIC.match(value.strip()):
        try:
            return float(value)
        except ValueError:
            return None
    return None


_NUMERIC = re.compile(r"^[+-]?(\d[\d_]*\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def finite(value: float | int) -> bool:
    """Whether a number is finite (an int too large for a float is not)."""
    if isinstance(value, int):
        return abs(value) < 2**1023  # float() of a larger int overflows
    return math.isfinite(value)


def show(value: float | int) -> str:
    """A number for a message: %g, and a huge integer by its size rather than its digits."""
    if isinstance(value, int) and abs(value) >= 10**16:
        return f"{value:.3g}" if finite(value) else f"a {len(str(abs(value)))}-digit integer"
    return f"{value:g}"


def check_finite(node: Any, path: str, c: Checker, seen: set[int] | None = None) -> None:
    """Every number anywhere in the scenario must be finite: NaN and infinity (YAML's
    .nan/.inf, or a string like 1e999) are refused here, field by field, for fields
    added later too, before any field's own check can misread them."""
    seen = set() if seen is None else seen
    if isinstance(node, (dict, list)):
        if id(node) in seen:  # YAML aliases share nodes: visit each once
            return
        seen.add(id(node))
        items = node.items() if isinstance(node, dict) else ((f"[{i}]", v) for i, v in enumerate(node))
        for key, value in items:
            where = f"{path}{key}" if isinstance(node, list) else join(path, str(key))
            check_finite(value, where, c, seen)
        return
    if isinstance(node, bool):
        return
    number = node if isinstance(node, (int, float)) else parse_number(node)
    if number is not None and not finite(number):
        c.fail(path, f"must be finite, got {show(number)}")


def numbers(values: Any) -> list[float] | None:
    """A list of finite numbers (numeric strings included) as floats, or None."""
    if not isinstance(values, list):
        return None
    out = []
    for v in values:
        if isinstance(v, bool):
            return None
        if isinstance(v, (int, float)):
            if not finite(v):
                return None
            out.append(float(v))
        else:
            n = parse_number(v)
            if n is None or not finite(n):
                return None
            out.append(n)
    return out


__all__ = ["Checker", "check_finite", "describe", "finite", "join", "numbers", "parse_number", "show"]
