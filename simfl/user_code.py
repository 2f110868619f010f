"""Importing a user's code by reference: `path/to/file.py` or `module.path`, with every
way that can fail (no file, a syntax error, an import that raises or exits) reported as
one PolicyNotFound naming the reference and the file, never a traceback. Policies
(simfl.registry) and Flower strategies (simfl.flower) are found through it."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from simfl.errors import PolicyNotFound


def is_file_reference(target: str) -> bool:
    """Whether `target` names a file (`x.py`, or anything with a slash) rather than a module."""
    return target.endswith(".py") or "/" in target


def import_target(target: str, label: str) -> ModuleType:
    """The module `target` names (a Python file, or an importable module path); `label`
    opens every message (e.g. "policy 'x.py:MyPolicy'")."""
    module_name = None
    try:
        if is_file_reference(target):
            path = Path(target)
            if not path.is_file():
                raise PolicyNotFound(f"{label}: no file {target}")
            module_name = f"simfl_user_code_{abs(hash(str(path.resolve())))}"
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise PolicyNotFound(f"{label}: {target} is not a Python file")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
            return module
        return importlib.import_module(target)
    except PolicyNotFound:
        raise
    except SyntaxError as exc:
        _forget(module_name)
        raise PolicyNotFound(f"{label}: syntax error in {exc.filename or target} line {exc.lineno}: {exc.msg}") from None
    except ImportError as exc:
        _forget(module_name)
        raise PolicyNotFound(f"{label}: cannot import {target} ({exc})") from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 (a user's module may raise anything, or sys.exit, on import)
        _forget(module_name)
        what = f"called sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else f"raised {type(exc).__name__}: {exc}"
        raise PolicyNotFound(f"{label}: importing {target} {what}") from None


def _forget(module_name: str | None) -> None:
    """Drop a half-imported user module, so a fixed file is imported afresh."""
    if module_name:
        sys.modules.pop(module_name, None)


__all__ = ["import_target", "is_file_reference"]
