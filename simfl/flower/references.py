"""Flower strategies by reference: `flower:FedAdam` (a strategy Flower ships, in
flwr.serverapp.strategy) or `flower:path/to/file.py:MyStrategy` (a user's subclass of
flwr.serverapp.strategy.Strategy). Validating a scenario checks the reference's shape
and, for a file, that it exists; the strategy's code runs only when a run builds it."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from typing import Any

from simfl.errors import PolicyNotFound
from simfl.user_code import import_target, is_file_reference

PREFIX = "flower:"
INSTALL_HINT = "install Flower with pip install 'simfl[flower]' (flwr 1.42, the message API)"


def is_flower(reference: str) -> bool:
    """Whether `reference` names a Flower strategy (`flower:...`)."""
    return reference.startswith(PREFIX)


def split_reference(reference: str) -> tuple[str | None, str]:
    """(file or None, class name) of `flower:Name` or `flower:path.py:Name`."""
    body = reference[len(PREFIX):]
    target, colon, attr = body.rpartition(":")
    if not colon:
        return None, body
    return target, attr


def policy_name(reference: str) -> str:
    """The name a Flower strategy's runs are recorded under: `flower.<Class>` (a policy's
    name names files, so no colon or slash)."""
    return f"flower.{split_reference(reference)[1]}"


def reference_problem(reference: str) -> str | None:
    """What is wrong with a `flower:` reference, checked without running its code: the
    shape, Flower installed, and the file there (a built-in name is checked against the
    names Flower's strategy package exports, which imports Flower, not the user's code)."""
    target, attr = split_reference(reference)
    if not attr.isidentifier():
        return (f"policy {reference!r}: give flower:<Strategy> (one of Flower's, e.g. flower:FedAdam) or "
                "flower:path/to/file.py:<Class>")
    if importlib.util.find_spec("flwr") is None:
        return f"policy {reference!r}: Flower is not installed; {INSTALL_HINT}"
    if target is None:
        names = builtin_strategies()
        if attr not in names:
            return f"policy {reference!r}: Flower has no strategy {attr!r}; it has {', '.join(sorted(names))}"
        return None
    if is_file_reference(target) and not Path(target).is_file():
        return f"policy {reference!r}: no file {target}"
    return None


def builtin_strategies() -> dict[str, type]:
    """Flower's own strategies (flwr.serverapp.strategy), by class name."""
    from flwr.serverapp import strategy as package  # deferred: Flower is an optional extra

    return {name: obj for name, obj in vars(package).items()
            if inspect.isclass(obj) and issubclass(obj, package.Strategy) and obj is not package.Strategy}


def strategy_class(reference: str) -> type:
    """The Flower Strategy subclass `reference` names (PolicyNotFound saying why not)."""
    problem = reference_problem(reference)
    if problem:
        raise PolicyNotFound(problem)
    target, attr = split_reference(reference)
    if target is None:
        return builtin_strategies()[attr]
    from flwr.serverapp.strategy import Strategy  # deferred: Flower is an optional extra

    module = import_target(target, f"policy {reference!r}")
    cls: Any = getattr(module, attr, None)
    if not (inspect.isclass(cls) and issubclass(cls, Strategy)):
        raise PolicyNotFound(f"policy {reference!r}: {target} has no subclass of Flower's "
                             f"flwr.serverapp.strategy.Strategy named {attr!r}")
    return cls


__all__ = ["INSTALL_HINT", "PREFIX", "builtin_strategies", "is_flower", "policy_name", "reference_problem",
           "split_reference", "strategy_class"]
