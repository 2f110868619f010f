"""The one place where simfl calls a policy's own code.

A policy may be a file a user wrote a minute ago: whatever it raises, returns or does
(`sys.exit`, an abstract class, a name with a slash in it) must end the command with a
message that names the policy's file, the method and what went wrong, not a traceback
from deep inside simfl after other policies have already trained.
"""

from __future__ import annotations

import inspect
import re
import traceback
from typing import Any

from simfl.errors import InfeasiblePlan, PolicyError, SimflError
from simfl.plan import RoundPlan

# A policy's name names files (plans/<name>.csv, checkpoints/<name>-round<r>.pt) and CSV rows.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+@-]{0,63}$")  # @: a policy in another aggregation mode (tfl@fedbuff)


def origin(cls: type) -> str:
    """Where a policy class is defined: its file, else its module."""
    try:
        return inspect.getsourcefile(cls) or cls.__module__
    except (TypeError, OSError):  # a class with no file: built in, or typed at a prompt (python -c, a notebook)
        return cls.__module__


def describe(cls: type, reference: str | None = None) -> str:
    """`policy 'x' (path/to/file.py, class X)`, for messages."""
    name = getattr(cls, "name", None)
    label = reference if reference is not None else (name if isinstance(name, str) else cls.__name__)
    return f"policy {label!r} ({origin(cls)}, class {cls.__qualname__})"


def check_class(cls: type, reference: str | None = None) -> None:
    """The class attributes simfl relies on, checked before anything runs."""
    who = describe(cls, reference)
    abstract = sorted(getattr(cls, "__abstractmethods__", ()))
    if abstract:
        raise PolicyError(f"{who} is abstract: it does not define {', '.join(m + '()' for m in abstract)}")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise PolicyError(f"{who}: `name` must be a string of letters, digits and . _ + - @ (at most 64, no "
                          f"spaces or slashes: it names files), got {name!r}")
    for hook in ("plan", "select", "plan_round", "aggregate", "training_set", "state_dict", "load_state_dict"):
        if not callable(getattr(cls, hook, None)):
            raise PolicyError(f"{who}: `{hook}` must be a method, got {getattr(cls, hook, None)!r}")


def instantiate(cls: type, reference: str | None = None) -> Any:
    """`cls()`, through the guard."""
    check_class(cls, reference)
    return _guarded(describe(cls, reference), cls, "__init__", cls)


def call(policy: Any, method: str, *args: Any, expect: type | None = None) -> Any:
    """`policy.<method>(*args)`; a PolicyError naming the policy's file and the method when
    it raises, exits, or returns something other than an `expect` instance."""
    who = describe(type(policy))
    result = _guarded(who, type(policy), f"{method}()", getattr(policy, method), *args)
    if expect is not None and not isinstance(result, expect):
        raise PolicyError(f"{who}: {method}() returned {_what(result)}; it must return a {expect.__name__}")
    return result


def check_result(policy: Any, method: str, check: Any, *args: Any) -> None:
    """Run simfl's own `check(*args)` on what `policy.<method>` returned: an infeasible plan
    is named as this policy's, and one simfl cannot even read (wrong types, shapes) is a
    PolicyError rather than a traceback from inside the check."""
    who = describe(type(policy))
    try:
        check(*args)
    except InfeasiblePlan as exc:
        raise InfeasiblePlan(f"{who}: {method}() returned an infeasible plan: {exc}") from None
    except SimflError:
        raise
    except Exception as exc:  # noqa: BLE001 (a malformed result is the policy's, whatever the check tripped on)
        raise PolicyError(f"{who}: {method}() returned a malformed result ({type(exc).__name__}: {exc})") from None


class GuardedHooks:
    """A policy whose round hooks (what the engine calls every round) go through the
    guard, so a hook that raises, exits or returns the wrong kind of thing in round 17 is
    named like a failing `plan()`. Everything else is the policy's own."""

    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.name = policy.name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.policy, attribute)

    def plan(self, world: Any, context: Any) -> Any:
        return call(self.policy, "plan", world, context)

    def select(self, state: Any, context: Any) -> Any:
        return call(self.policy, "select", state, context)

    def plan_round(self, world: Any, state: Any, context: Any) -> Any:
        return call(self.policy, "plan_round", world, state, context, expect=RoundPlan)

    def aggregate(self, updates: Any, server: Any, state: Any) -> Any:
        return call(self.policy, "aggregate", updates, server, state)

    def training_set(self, data: Any) -> Any:
        return call(self.policy, "training_set", data, expect=tuple)

    def local_rule(self, client: int) -> Any:
        return call(self.policy, "local_rule", client)

    def configure(self, scenario: Any) -> Any:
        return call(self.policy, "configure", scenario)

    def round_metrics(self) -> Any:
        return call(self.policy, "round_metrics", expect=dict)

    def tensor_state(self) -> Any:
        return call(self.policy, "tensor_state", expect=dict)

    def load_tensor_state(self, state: Any) -> Any:
        return call(self.policy, "load_tensor_state", state)

    def state_dict(self) -> Any:
        return call(self.policy, "state_dict", expect=dict)

    def load_state_dict(self, state: Any) -> Any:
        return call(self.policy, "load_state_dict", state)


def _guarded(who: str, cls: type, method: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except SimflError:
        raise  # simfl's own message (e.g. an infeasible problem in FIMI's solver) already says what is wrong
    except SystemExit as exc:
        raise PolicyError(f"{who}: {method} called sys.exit({exc.code!r}); a policy must return or raise, "
                          "not end the program") from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 (anything a user's code raises is reported, not a traceback)
        raise PolicyError(f"{who}: {method} raised {type(exc).__name__}: {exc}{where(exc, cls)}") from None


def where(exc: BaseException, cls: type) -> str:
    """` (at file.py line 12)`: the last frame of the traceback in the policy's own file."""
    source = origin(cls)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == source]
    if not frames:
        return ""
    return f" (at {source} line {frames[-1].lineno})"


def _what(value: Any) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return "None" if value is None else f"a {type(value).__name__} {text}"


__all__ = ["NAME_PATTERN", "GuardedHooks", "call", "check_class", "check_result", "describe", "instantiate", "origin", "where"]
