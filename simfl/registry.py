"""Finding policies by name (Gymnasium-style registry): a module in `policies/`, a
`module.path:Class` string, or an installed package's `simfl.policies` entry point;
`flower:Strategy` or `flower:file.py:Class`, a Flower strategy (simfl.flower); and
`a+b`, the data side of a with the training side of b (simfl.compose).

`check_policies` checks what a scenario says about policies (the names it lists, each
policy's settings) against the policies themselves; the scenario layer below cannot, as
the policies import it. Every command calls it right after loading a scenario
(`load_checked` does both).

`as_policy` is what a comparison runs: a reference as above, or (from Python, e.g. a
notebook) a Policy subclass or instance, which no name could import.
"""

from __future__ import annotations

import ast
import copy
import difflib
import importlib
import importlib.util
import inspect
import pkgutil
import sys
from dataclasses import replace
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence, Union

import simfl.policies
from simfl import guard
from simfl.aggregation import MODES
from simfl.compose import compose, split
from simfl.errors import PolicyError, PolicyNotFound
from simfl.flower.references import is_flower, reference_problem
import simfl.policies as package
from simfl.policy import Policy
from simfl.policy_settings import check_settings
from simfl.scenario import load_scenario
from simfl.scenario.checks import Checker, join
from simfl.user_code import import_target

if TYPE_CHECKING:
    from simfl.scenario import Scenario

ENTRY_POINT_GROUP = "simfl.policies"

# What a comparison accepts as a policy: a reference (`fimi`, `pkg.mod:Class`,
# `file.py:Class`, `a+b`, `tfl@fedbuff`), a Policy subclass, or an instance of one.
PolicyLike = Union[str, type[Policy], Policy]


@lru_cache(maxsize=1)
def builtin_policies() -> dict[str, type[Policy]]:
    """name -> class for every Policy subclass defined in the `policies` package and in
    installed entry points. A name defined twice is an error, not a silent override."""
    found: dict[str, type[Policy]] = {}
    origins: dict[str, str] = {}

    def add(cls: type[Policy], origin: str) -> None:
        guard.check_class(cls)
        name = cls.name
        if name in found and found[name] is not cls:
            raise PolicyNotFound(f"policy name {name!r} is defined twice: in {origins[name]} and in {origin}")
        found[name], origins[name] = cls, origin

    for info in sorted(pkgutil.iter_modules(simfl.policies.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"simfl.policies.{info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Policy) and obj.__module__ == module.__name__ and not inspect.isabstract(obj):
                add(obj, f"policies/{info.name}.py")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        if not (inspect.isclass(cls) and issubclass(cls, Policy)):
            raise PolicyNotFound(f"entry point {ep.name} = {ep.value} is not a simfl Policy subclass")
        add(cls, f"entry point {ep.value}")
    return found


def declared_names() -> dict[str, str]:
    """name -> where, for every policy the `policies` package and installed entry points
    declare, read from the source (each class's `name = "..."`) without importing it:
    validating a scenario runs no policy code."""
    found: dict[str, str] = {}
    for folder in simfl.policies.__path__:
        for path in sorted(Path(folder).glob("*.py")):
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except (OSError, SyntaxError, UnicodeDecodeError):
                continue  # it fails with a clear error when it is imported
            for node in tree.body:
                if isinstance(node, ast.ClassDef):
                    for item in node.body:
                        if (isinstance(item, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "name"
                                                                  for t in item.targets)
                                and isinstance(item.value, ast.Constant) and isinstance(item.value.value, str)):
                            found.setdefault(item.value.value, f"policies/{path.name}")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, f"entry point {ep.value}")
    return found


def split_mode(reference: str) -> tuple[str, str | None]:
    """`tfl@fedbuff` -> (`tfl`, `fedbuff`): a policy run in another aggregation mode than
    the scenario's. A reference without `@mode` (paths may hold an `@` before their last
    `/` or `:`) -> (reference, None)."""
    base, at, mode = reference.rpartition("@")
    if not at or "/" in mode or ":" in mode:
        return reference, None
    return base, mode


def _mode_problem(reference: str, mode: str) -> str | None:
    if mode in MODES:
        return None
    return (f"policy {reference!r}: unknown aggregation mode {mode!r} after '@'; allowed: {', '.join(MODES)} "
            "(e.g. tfl@fedbuff)")


def name_problem(name: str) -> str | None:
    """What is wrong with a policy reference, or None (used to validate scenario files).
    Names and paths are checked without importing or running the policy's code (whether
    the two parts of `a+b` fit together is checked when it is created)."""
    name, mode = split_mode(name)
    if mode is not None and (problem := _mode_problem(name, mode)):
        return problem
    try:
        parts = split(name)
    except PolicyNotFound as exc:
        return str(exc)
    if parts is not None:
        return next((problem for problem in map(name_problem, parts) if problem), None)
    if is_flower(name):
        return reference_problem(name)
    if ":" in name:
        target, _, attr = name.rpartition(":")
        if target.endswith(".py") or "/" in target:
            path = Path(target)
            if not path.is_file():
                return f"policy {name!r}: no file {target}"
            return None
        try:
            spec = importlib.util.find_spec(target)
        except (ImportError, ValueError):
            spec = None
        return None if spec is not None else f"policy {name!r}: no module {target}"
    names = declared_names()
    if name in names:
        return None
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return (f"unknown policy {name!r}{hint} known: {', '.join(sorted(names))} "
            "(or give module.path:Class or path/to/file.py:Class)")


def check_policies(scenario: Scenario) -> Scenario:
    """Check the scenario's `policies` (each a known name, module path or file) and its
    `policy_settings` (each under a built-in or installed policy that declares those
    settings, every value in its range); one ScenarioError naming the file and listing
    every problem. Imports only the policies that have settings here, never user files.

    Returns the scenario with each policy's settings complete (its declared defaults
    where absent): what a run records in its folder's manifest."""
    c = Checker(scenario.source)
    for i, name in enumerate(scenario.policies):
        problem = name_problem(name)
        if problem:
            c.fail(f"policies[{i}]", problem)
    complete = {}
    for name, given in scenario.policy_settings.items():
        where = join("policy_settings", name)
        problem = name_problem(name)
        if problem:
            c.fail(where, problem)
            continue
        complete[name] = check_settings(declared_class(name).settings, given, where, name, c)
    c.raise_if_any()
    return replace(scenario, policy_settings=complete)


def load_checked(path: str | Path, overrides: Sequence[str] | Mapping[str, Any] | None = None,
                 seed: int | None = None) -> Scenario:
    """A scenario file as every command reads it: `load_scenario` (overrides as `--set`
    strings or a {field: value} mapping, then the seed), then `check_policies`."""
    return check_policies(load_scenario(path, overrides=overrides, seed=seed))


def declared_class(name: str) -> type[Policy]:
    """The class of the built-in or installed policy `name`, importing only the module
    that declares it (validating settings loads no other policy); the full registry
    decides for a name the source scan attributes to no single module."""
    where = declared_names().get(name, "")
    candidates: list[type] = []
    if where.startswith("policies/"):
        module = importlib.import_module(f"simfl.policies.{Path(where).stem}")
        candidates = [obj for _, obj in inspect.getmembers(module, inspect.isclass) if obj.__module__ == module.__name__]
    elif where.startswith("entry point "):
        candidates = [ep.load() for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    for cls in candidates:
        if (inspect.isclass(cls) and issubclass(cls, Policy) and not inspect.isabstract(cls)
                and getattr(cls, "name", None) == name):
            guard.check_class(cls)
            return cls
    return resolve(name)


def resolve(reference: str) -> type[Policy]:
    """A policy class from a name, `module.path:Class`, `path/to/file.py:Class`, or
    `a+b` of two of these (PolicyNotFound saying why when they do not combine)."""
    parts = split(reference)
    if parts is not None:
        return compose(resolve(parts[0]), resolve(parts[1]))
    if is_flower(reference):
        from simfl.flower.adapter import flower_policy  # deferred: Flower loads only for a Flower strategy

        return flower_policy(reference)
    if ":" in reference:
        return _from_path(reference)
    policies = builtin_policies()
    if reference in policies:
        return policies[reference]
    close = difflib.get_close_matches(reference, policies, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise PolicyNotFound(f"unknown policy {reference!r}{hint} known: {', '.join(sorted(policies))} "
                         "(or give module.path:Class or path/to/file.py:Class)")


def create(reference: str) -> Policy:
    """An instance of the policy `reference` names; its class and constructor go through
    simfl.guard, so a broken user policy is named, not a traceback."""
    base, mode = split_mode(reference)
    if mode is not None and (problem := _mode_problem(reference, mode)):
        raise PolicyNotFound(problem)
    cls = resolve(base)
    if mode is not None:
        # a subclass, so that everything keyed by the policy's name (rows, checkpoints,
        # plans, figures) tells the modes apart
        cls = type(f"{cls.__name__}_{mode}", (cls,), {"name": f"{cls.name}@{mode}", "aggregation_mode": mode,
                                                       "__module__": cls.__module__})
    return guard.instantiate(cls, base if ":" in base else None)


def as_policy(policy: PolicyLike) -> Policy:
    """A fresh policy instance from a reference (`create`), a Policy subclass (called
    with no arguments) or an instance (a deep copy, so that runs never share the state a
    policy keeps between rounds, and the caller's object stays as it was). A class or an
    instance is used as it is, never looked up by name: one defined in a notebook is not
    importable. Its class and its `name` are checked through simfl.guard."""
    if isinstance(policy, str):
        return create(policy)
    if inspect.isclass(policy) and issubclass(policy, Policy):
        return guard.instantiate(policy)
    if isinstance(policy, Policy):
        guard.check_class(type(policy))
        name = policy.name
        if not isinstance(name, str) or not guard.NAME_PATTERN.match(name):
            raise PolicyError(f"{guard.describe(type(policy))}: `name` must be a string of letters, digits and "
                              f". _ + - @ (at most 64, no spaces or slashes: it names files), got {name!r}")
        try:
            return copy.deepcopy(policy)
        except Exception as exc:  # noqa: BLE001 (a user's attribute may refuse copying in any way)
            raise PolicyError(f"{guard.describe(type(policy))}: the instance cannot be copied for a run "
                              f"({type(exc).__name__}: {exc}); pass its class instead") from None
    raise PolicyNotFound(f"policy {policy!r}: give a policy name (e.g. 'fimi', 'module.path:Class' or "
                         "'path/to/file.py:Class'), a simfl.Policy subclass or an instance of one")


def policy_label(policy: PolicyLike) -> str:
    """How messages name what was given for a policy: the reference itself, or the
    class (`module.Class`) of a class or instance."""
    if isinstance(policy, str):
        return policy
    cls = policy if inspect.isclass(policy) else type(policy)
    return f"{cls.__module__}.{cls.__qualname__}"


def _from_path(reference: str) -> type[Policy]:
    target, _, attr = reference.rpartition(":")
    if not target or not attr:
        raise PolicyNotFound(f"policy {reference!r}: give module.path:Class or path/to/file.py:Class")
    module = import_target(target, f"policy {reference!r}")
    cls = getattr(module, attr, None)
    if not (inspect.isclass(cls) and issubclass(cls, Policy)):
        raise PolicyNotFound(f"policy {reference!r}: {target} has no Policy subclass named {attr!r}")
    guard.check_class(cls, reference)
    return cls
