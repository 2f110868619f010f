"""The scenario reference page, generated from the code each time the site is built.

Every section and field of a scenario file, with its type, default, allowed values and
description, is read from what the loader itself uses, so the page cannot drift from it:

- the frozen dataclasses of simfl.scenario.schema (and the sections they nest): their
  fields, type hints, defaults and field docstrings;
- the tables the loader checks against: simfl.scenario.rules (bounds, choices, the
  defaults only the file format has) and simfl.limits (integer and physical ranges);
- the registered dynamics components and path-loss models, with the fields they declare;
- the registered policies' settings (`policy_settings`).

A field without a docstring stops the build (and fails tests/test_docs.py). MkDocs runs
`on_files` (the `hooks:` of mkdocs.yml), which adds the page as a generated file.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import math
import textwrap
import types
import typing
from typing import Any

from simfl.dynamics import AVAILABILITY, FADING, MOBILITY
from simfl.limits import DEFAULT_INT_RANGE, Bounds, compact, int_range, physical_range
from simfl.pathloss import MODELS as PATH_LOSS_MODELS
from simfl.scenario import schema
from simfl.scenario.rules import CHOICES, DEFAULTS, NUMBERS, Derived, options
from simfl.scenario.sections import NOT_KEPT

PAGE = "reference/scenario.md"

# Scenario fields that are not written in a file (where it came from, the raw mapping)
INTERNAL = {"source", "raw"}
# the file's alternatives that the loader expands, shown as sections of their own
ALTERNATIVES: dict[str, type] = {"cells.hex_grid": schema.HexGrid}
# fields whose value is a registered component: the registry and where the page lists it
COMPONENTS: dict[str, tuple[dict[str, Any], str]] = {
    "cells.path_loss.fading": (FADING, "fading"),
    "cells.path_loss.model": (PATH_LOSS_MODELS, "path-loss-models"),
    "devices.availability": (AVAILABILITY, "availability"),
    "devices.mobility": (MOBILITY, "mobility"),
}


@dataclasses.dataclass(frozen=True)
class Section:
    """A mapping of the file: its path (`task`, `cells.path_loss`; "" is the top level) and
    the dataclass that holds it."""

    path: str
    cls: type

    @property
    def anchor(self) -> str:
        return self.path.replace(".", "-") if self.path else "top-level"

    @property
    def title(self) -> str:
        return f"`{self.path}`" if self.path else "The top level"


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass (the string literal that follows its
    annotated assignment, as documentation tools read it)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for stmt, after in zip(body, body[1:]):
        if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            docs[stmt.target.id] = " ".join(inspect.cleandoc(after.value.value).split())
    return docs


def nested(hint: Any) -> type | None:
    """The dataclass a field's type holds (directly, optionally or as a list), if any."""
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint) and hint is not schema.Distribution:
        return hint  # type: ignore[return-value]
    if typing.get_origin(hint) in (tuple, typing.Union, types.UnionType):
        for arg in args:
            found = nested(arg)
            if found is not None:
                return found
    return None


def sections() -> list[Section]:
    """Every mapping of a scenario file, top down, in the order of the dataclasses' fields."""
    out: list[Section] = []

    def walk(path: str, cls: type) -> None:
        out.append(Section(path, cls))
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            sub = nested(hints[f.name])
            if sub is not None and f.name not in INTERNAL:
                child = f"{path}.{f.name}" if path else f.name
                walk(child, sub)
                for alternative, alt_cls in ALTERNATIVES.items():
                    if alternative.rsplit(".", 1)[0] == child:
                        out.append(Section(alternative, alt_cls))

    walk("", schema.Scenario)
    return out


def unwrap(hint: Any) -> Any:
    """`X` of an optional `X | None`; any other type as it is."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1
    return args[0] if optional else hint


SCALARS = {float: "number", int: "integer", str: "string", bool: "boolean"}


def type_name(hint: Any, path: str = "") -> str:
    """How a file writes a value of this type; a nested section's links to its table."""
    if nested(hint) is not None and path:
        return f"[{type_name(hint)}](#{path.replace('.', '-')})"
    if unwrap(hint) is not hint:
        return f"{type_name(unwrap(hint))} or null"
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return "list of " + ("mappings" if dataclasses.is_dataclass(args[0]) else f"{SCALARS[args[0]]}s")
        return "[x, y]"
    if hint is schema.Distribution:
        return "[distribution](#distributions)"
    if dataclasses.is_dataclass(hint) or typing.get_origin(hint) is dict or hint is dict:
        return "mapping"
    if hint is Any:
        return "kind"  # a registered component, named alone or with its fields
    return SCALARS[hint]


def yaml_value(value: Any) -> str:
    """A default as a file would write it."""
    if value is None or (isinstance(value, float) and math.isinf(value)):
        return "null"  # an infinite default (no limit) is what the loader makes of null
    if isinstance(value, Derived):
        return value.text
    if hasattr(value, "kind"):
        return value.kind  # a component without fields, written by its name alone
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if isinstance(value, float):
        return compact(value)
    return str(value)


def interval(path: str, bounds: Bounds, integer: bool) -> str:
    """What the checks allow for the number at `path`: its bounds, intersected with its
    integer range or physical range (simfl.limits), as one interval."""
    low: tuple[float, bool] | None = None  # (value, open)
    high: tuple[float, bool] | None = None

    def raise_low(value: float, is_open: bool) -> None:
        nonlocal low
        if low is None or value > low[0] or (value == low[0] and is_open):
            low = (value, is_open)

    def lower_high(value: float, is_open: bool) -> None:
        nonlocal high
        if high is None or value < high[0] or (value == high[0] and is_open):
            high = (value, is_open)

    for value, is_open in ((bounds.minimum, False), (bounds.above, True)):
        if value is not None:
            raise_low(value, is_open)
    for value, is_open in ((bounds.maximum, False), (bounds.below, True)):
        if value is not None:
            lower_high(value, is_open)
    unit = note = ""
    if integer:
        lo, hi = int_range(path)
        raise_low(lo, False)
        lower_high(hi, False)
    limits = physical_range(path)
    if limits is not None:
        raise_low(limits.low, limits.low_open)
        lower_high(limits.high, False)
        unit, note = limits.unit, limits.note
    show = (lambda v: str(int(v))) if integer else compact
    if low is not None and high is not None:
        text = f"{'(' if low[1] else '['}{show(low[0])}, {show(high[0])}{')' if high[1] else ']'}"
    elif low is not None:
        text = f"{'>' if low[1] else '>='} {show(low[0])}"
    elif high is not None:
        text = f"{'<' if high[1] else '<='} {show(high[0])}"
    else:
        text = "any number"
    text += f" {unit}" if unit else ""
    text += f" ({note})" if note else ""
    return ("integer in " if integer and low and high else "") + text


def allowed(path: str, key: str, hint: Any) -> str:
    """The values a field takes, from the loader's tables and the registries."""
    section = path.rsplit(".", 1)[0] if "." in path else ""
    if path in COMPONENTS:
        registry, anchor = COMPONENTS[path]
        return f"[one of: {', '.join(f'`{k}`' for k in registry)}](#{anchor})"
    if key in CHOICES.get(section, {}):
        return "one of: " + ", ".join(f"`{v}`" for v in options(section, key))
    bounds = NUMBERS.get(section, {}).get(key)
    if bounds is None and physical_range(path) is None:
        return ""
    hint = unwrap(hint)
    text = interval(path, bounds or Bounds(), hint is int)
    if hint is schema.Distribution:
        return f"every value {text}"
    if typing.get_origin(hint) is tuple and typing.get_args(hint)[-1] is Ellipsis:
        return f"each {text}"
    return text


def default(section: Section, f: dataclasses.Field, hint: Any) -> str:
    """The field's default: required, the file format's own, the dataclass's, or null."""
    bounds = NUMBERS.get(section.path, {}).get(f.name)
    if bounds is not None and bounds.required:
        return "required"
    if f.name in DEFAULTS.get(section.path, {}):
        value = DEFAULTS[section.path][f.name]
        return value.text if isinstance(value, Derived) else f"`{yaml_value(value)}`"
    if nested(hint) is not None and typing.get_origin(hint) is not tuple and f.default is not None:
        return "its fields' defaults"
    if f.default is not dataclasses.MISSING:
        return f"`{yaml_value(f.default)}`"
    if f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
        return "`{}`" if value == {} else f"`{yaml_value(value)}`"
    if type(None) in typing.get_args(hint):
        return "`null`"
    return "required"


def cell(text: str) -> str:
    """Text fit for a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def section_table(section: Section) -> list[str]:
    """The section's fields: name as written, type, default, allowed values, description."""
    docs = field_docs(section.cls)
    hints = typing.get_type_hints(section.cls)
    lines = ["| field | type | default | allowed | description |", "| --- | --- | --- | --- | --- |"]
    for f in dataclasses.fields(section.cls):
        if section.path == "" and f.name in INTERNAL:
            continue
        if f.name not in docs:
            raise ValueError(f"{section.cls.__module__}.{section.cls.__name__}.{f.name} has no docstring: say what "
                             f"the field is in a string literal under it")
        path = f"{section.path}.{f.name}" if section.path else f.name
        hint = hints[f.name]
        lines.append(f"| `{f.name}` | {type_name(hint, path)} | {default(section, f, hint)} | "
                     f"{cell(allowed(path, f.name, hint))} | {cell(docs[f.name])} |")
    if section.path == "":
        for key, text in NOT_KEPT.items():
            lines.append(f"| `{key}` | string | `null` |  | {cell(text)} |")
    return lines


def component_table(registry: dict[str, Any]) -> list[str]:
    """The kinds of a dynamics component: how each is written, its fields and what it is."""
    lines = ["| kind | written | fields | description |", "| --- | --- | --- | --- |"]
    for kind, cls in registry.items():
        fields = []
        for name, bounds in getattr(cls, "FIELDS", {}).items():
            value = "required" if bounds.required else (
                f"default `{yaml_value(getattr(cls, name))}`" if hasattr(cls, name) else "optional")
            fields.append(f"`{name}`: {interval(name, bounds, bounds.integer)}, {value}")
        for name, choices in getattr(cls, "CHOICES", {}).items():
            fields.append(f"`{name}`: one of {', '.join(f'`{c}`' for c in choices)}, "
                          f"default `{getattr(cls, name)}`")
        doc = " ".join(inspect.cleandoc(cls.__doc__ or "").split())
        for variant in variants(cls):  # the time-based forms document their own fields
            doc += " " + " ".join(inspect.cleandoc(variant.__doc__ or "").split())
        lines.append(f"| `{kind}` | `{cell(cls.form)}` | {cell('; '.join(fields)) or '—'} | {cell(doc)} |")
    return lines


def variants(cls: type) -> list[type]:
    """The other classes of `cls`'s module that a scenario writes with its kind (the
    time-based forms of `rayleigh` and `gauss_markov`)."""
    kind = getattr(cls, "kind")
    return [c for _, c in inspect.getmembers(inspect.getmodule(cls), inspect.isclass)
            if c.__module__ == cls.__module__ and getattr(c, "kind", None) == kind and not issubclass(cls, c)]


def path_loss_models() -> list[str]:
    """TR 38.901's models: their fields with range and default, carriers and distances."""
    lines = ["| model | fields (default; range) | carrier_hz | distances | description |",
             "| --- | --- | --- | --- | --- |"]
    for kind, cls in PATH_LOSS_MODELS.items():
        fields = "; ".join(f"`{name}` ({yaml_value(r.default)}; {yaml_value(r.low)}-{yaml_value(r.high)} {r.unit}): "
                           f"{r.why}" for name, r in cls.FIELDS.items())
        low, high = cls.CARRIER_RANGE_HZ
        doc = " ".join(inspect.cleandoc(cls.__doc__ or "").split())
        lines.append(f"| `{kind}` | {cell(fields)} | {low / 1e9:g}-{high / 1e9:g} GHz | "
                     f"up to {cls.MAX_DISTANCE_M / 1e3:g} km | {cell(doc)} |")
    return lines


def policy_settings() -> list[str]:
    """Every registered policy's settings, as `policy_settings.<policy>.<setting>`."""
    from simfl.registry import builtin_policies  # the policies sit above the scenario layer

    lines = ["| policy | setting | default | allowed | description |", "| --- | --- | --- | --- | --- |"]
    for name, cls in sorted(builtin_policies().items()):
        for s in cls.settings:
            lines.append(f"| `{name}` | `{s.name}` | `{yaml_value(s.default)}` | {s.bounds or 'any number'} | "
                         f"{cell(s.doc)} |")
    return lines


def reference_markdown() -> str:
    """The whole page."""
    out = [
        "# Scenario reference",
        "",
        "Every section and field of a scenario file, generated from simfl's code when this site is "
        "built: the schema's dataclasses (`simfl/scenario/schema.py`) give each field's type, default "
        "and description, the loader's tables (`simfl/scenario/rules.py`, `simfl/limits.py`) what it "
        "allows, and the registries the kinds of each component. A file is checked against exactly "
        "this on load, and every problem is named with its file, field and what is allowed. "
        "[Writing a scenario](../scenarios.md) walks through an annotated example.",
        "",
        "A field that is absent, or given as `null`, takes its default; every physical quantity is "
        "also held to a physical range, and every integer to a sane one. Lists are written "
        "`cells[0]` in messages and in `--set` (`--set cells.0.bandwidth_hz=10e6`).",
        "",
    ]
    for section in sections():
        out += [f"## {section.title} {{#{section.anchor}}}", ""]
        doc = " ".join(inspect.cleandoc(section.cls.__doc__ or "").split())
        if doc and section.path:
            out += [doc, ""]
        out += section_table(section) + [""]
    out += [
        "## Distributions {#distributions}", "",
        "A device attribute (`f_max_hz`, `eps`, `p_max_dbm`, `distance_m`, `battery_j`) is a number, "
        "the same for every device of the group, or one of `{uniform: [low, high]}`, "
        "`{linspace: [first, last]}` (an arithmetic sequence over the group, as in Fig. 5b) and "
        "`{values: [...]}` (one per device). Every value must be within the field's range.", "",
        "## Availability {#availability}", "", *component_table(AVAILABILITY), "",
        "## Mobility {#mobility}", "", *component_table(MOBILITY), "",
        "## Fading {#fading}", "", *component_table(FADING), "",
        "## Path-loss models (TR 38.901) {#path-loss-models}", "",
        "`cells[].path_loss: {model: NAME, <its fields>}` instead of the log-distance fields; "
        "[Path loss](../path-loss.md) says what each model computes.", "", *path_loss_models(), "",
        "## `policy_settings` {#policy_settings}", "",
        "Numbers under a policy's name, e.g. `policy_settings: {fedprox: {mu: 0.1}}`; for a "
        "combination like `fimi+scaffold`, under each part's name. These are the settings the "
        "built-in policies declare (a policy of your own declares its own, "
        "`simfl.policy_settings.Setting`).", "", *policy_settings(), "",
    ]
    integer_low, integer_high = DEFAULT_INT_RANGE
    out += [f"Integers without a range of their own are held to [{integer_low}, {integer_high}].", ""]
    return "\n".join(out)


def on_files(files: Any, config: Any) -> Any:
    """MkDocs hook: add the generated reference page to the site's files."""
    from mkdocs.structure.files import File  # deferred: mkdocs, only when the site is built

    files.append(File.generated(config, PAGE, content=reference_markdown()))
    return files
