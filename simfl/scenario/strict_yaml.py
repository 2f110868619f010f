"""YAML as scenarios read it: safe types only, and a key given twice in one mapping is an
error (PyYAML would keep the last silently, so a second `task:` block would replace the
first). Used for scenario files and for the values of `--set` overrides alike."""

from __future__ import annotations

from typing import Any

import yaml

from simfl.errors import ScenarioError


class StrictLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping."""


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: let PyYAML report it
            continue
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {first.line + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str) -> Any:
    """YAML text -> Python objects through StrictLoader; PyYAML's errors propagate."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 (a SafeLoader subclass)


def parse_yaml(text: str, source: str, what: str = "The file must be a YAML mapping.") -> Any:
    """YAML text -> Python objects (safe types only, no duplicate keys); ScenarioError naming
    the line otherwise."""
    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(f"{source}: malformed YAML{where}: {problem}. {what}") from None
    except RecursionError:
        raise ScenarioError(f"{source}: YAML nested too deeply. {what}") from None


__all__ = ["StrictLoader", "load_yaml", "parse_yaml"]
