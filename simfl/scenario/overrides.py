"""The `--set FIELD=VALUE` language: one override changes one field of a parsed scenario
before it is validated. Fields are dotted paths, list items addressed as `cells.0.x` or
`cells[0].x`; values are YAML (`1e6`, `[1, 2]`, `{uniform: [1, 2]}`, `true`)."""

from __future__ import annotations

from typing import Any

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
    parts = [p for p in key.replace("[", ".").replace("]", "").split(".") if p]
    if not parts:
        raise ScenarioError(f"{source}: --set {item!r}: empty field path.")
    node: Any = raw
    for part in parts[:-1]:
        node = _step(node, part, item, source)
    last = parts[-1]
    if isinstance(node, list):
        idx = _index(node, last, item, source)
        node[idx] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ScenarioError(f"{source}: --set {item!r}: {'.'.join(parts[:-1])} is not a mapping or list.")


def _step(node: Any, part: str, item: str, source: str) -> Any:
    """The child `part` of `node` (a list index or a key, created as a mapping if absent)."""
    if isinstance(node, list):
        return node[_index(node, part, item, source)]
    if isinstance(node, dict):
        if part not in node or node[part] is None:
            node[part] = {}
        return node[part]
    raise ScenarioError(f"{source}: --set {item!r}: cannot descend into {part!r}.")


def _index(node: list, part: str, item: str, source: str) -> int:
    try:
        idx = int(part)
    except ValueError:
        raise ScenarioError(f"{source}: --set {item!r}: {part!r} must be a list index (0..{len(node) - 1}).") from None
    if not 0 <= idx < len(node):
        raise ScenarioError(f"{source}: --set {item!r}: index {idx} out of range (0..{len(node) - 1}).")
    return idx


__all__ = ["apply_override"]
