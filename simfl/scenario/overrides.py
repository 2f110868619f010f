"""The `--set FIELD=VALUE` language: one override changes one field of a parsed scenario
before it is validated. Fields are dotted paths, list items addressed as `cells.0.x` or
`cells[0].x`; values are YAML (`1e6`, `[1, 2]`, `{uniform: [1, 2]}`, `true`). From Python
(simfl.load_scenario) the same overrides may be a {field: value} mapping of Python values."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import yaml

from simfl.errors import ScenarioError
from simfl.scenario.strict_yaml import load_yaml


def apply_override(raw: dict, item: str, source: str = "<scenario>") -> None:
    """Apply one `a.b.c=value` override to `raw` in place; a missing mapping on the way is
    created. A value that is not YAML is taken as the text it is."""
    if "=" not in item:
        raise ScenarioError(f"{source}: --set {item!r}: expected FIELD=VALUE, e.g. --set task.rounds=5.")
    key, value_text = item.split("=", 1)
    try:
        value = load_yaml(value_text)
    except yaml.constructor.ConstructorError as exc:
        raise ScenarioError(f"{source}: --set {item!r}: {exc.problem}.") from None
    except (yaml.YAMLError, RecursionError):
        value = value_text
    set_field(raw, key, value, f"--set {item!r}", source)


def apply_overrides(raw: dict, overrides: Sequence[str] | Mapping[str, Any] | None, source: str = "<scenario>") -> None:
    """Apply `--set` strings (`apply_override`), or a {field: value} mapping whose values
    are already what YAML would give (numbers, strings, booleans, lists, mappings; a
    tuple counts as a list), to `raw` in place, in order."""
    if overrides is None:
        return
    if isinstance(overrides, Mapping):
        for key, value in overrides.items():
            if not isinstance(key, str):
                raise ScenarioError(f"{source}: overrides: the field {key!r} must be a dotted path string, "
                                    "e.g. 'task.rounds'.")
            set_field(raw, key, _as_yaml(value), f"overrides[{key!r}]", source)
        return
    for item in [overrides] if isinstance(overrides, str) else overrides:
        if not isinstance(item, str):
            raise ScenarioError(f"{source}: overrides: {item!r} is not a FIELD=VALUE string, e.g. 'task.rounds=5'.")
        apply_override(raw, item, source)


def set_field(raw: dict, key: str, value: Any, label: str, source: str = "<scenario>") -> None:
    """Set the field at the dotted path `key` (`cells.0.x` or `cells[0].x`) of `raw` to
    `value`, creating missing mappings on the way; `label` names the override in errors."""
    parts = [p for p in key.replace("[", ".").replace("]", "").split(".") if p]
    if not parts:
        raise ScenarioError(f"{source}: {label}: empty field path.")
    node: Any = raw
    for part in parts[:-1]:
        node = _step(node, part, label, source)
    last = parts[-1]
    if isinstance(node, list):
        idx = _index(node, last, label, source)
        node[idx] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ScenarioError(f"{source}: {label}: {'.'.join(parts[:-1])} is not a mapping or list.")


def _as_yaml(value: Any) -> Any:
    """A Python value as the YAML loader would have given it: tuples as lists."""
    if isinstance(value, (list, tuple)):
        return [_as_yaml(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _as_yaml(v) for k, v in value.items()}
    return value


def _step(node: Any, part: str, label: str, source: str) -> Any:
    """The child `part` of `node` (a list index or a key, created as a mapping if absent)."""
    if isinstance(node, list):
        return node[_index(node, part, label, source)]
    if isinstance(node, dict):
        if part not in node or node[part] is None:
            node[part] = {}
        return node[part]
    raise ScenarioError(f"{source}: {label}: cannot descend into {part!r}.")


def _index(node: list, part: str, label: str, source: str) -> int:
    try:
        idx = int(part)
    except ValueError:
        raise ScenarioError(f"{source}: {label}: {part!r} must be a list index (0..{len(node) - 1}).") from None
    if not 0 <= idx < len(node):
        raise ScenarioError(f"{source}: {label}: index {idx} out of range (0..{len(node) - 1}).")
    return idx


__all__ = ["apply_override", "apply_overrides", "set_field"]
