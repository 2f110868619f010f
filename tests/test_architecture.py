"""The architecture as a checked fact: the layers of pyproject.toml's import-linter
contract hold (no module imports one above it, not even inside a function, so no cycle
hides behind a late import), and every import left inside a function says why it waits."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REASON = "# deferred:"


def test_the_import_layers_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def function_level_imports(path: Path) -> list[tuple[int, str]]:
    """(line, source) of every import statement inside a function of the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    found.append((inner.lineno, lines[inner.lineno - 1]))
    return sorted(set(found))


def test_every_import_inside_a_function_says_why_it_waits():
    """A late import is for a heavy library a command may not need (torch, matplotlib,
    Ray) or a user's module; the reason is on its line or the line above, after
    `# deferred:`. One that hid a cycle would break the layers above instead."""
    missing = []
    for folder in ("simfl", "policies"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            lines = path.read_text(encoding="utf-8").splitlines()
            for line, source in function_level_imports(path):
                above = lines[line - 2] if line >= 2 else ""
                if REASON not in source and REASON not in above:
                    missing.append(f"{path.relative_to(ROOT)}:{line}: {source.strip()}")
    assert not missing, "imports inside functions without a `# deferred: why` reason:\n" + "\n".join(missing)


def test_the_reason_check_sees_imports_inside_functions(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\n\n\ndef f():\n    import json\n    return json\n\n\nclass A:\n    def g(self):\n"
                      "        # deferred: heavy\n        from pathlib import Path\n        return Path\n")
    assert [line for line, _ in function_level_imports(sample)] == [5, 12]


def test_the_engine_uses_only_simpys_public_calls():
    """SimPy's queue, event ids and event state (`_queue`, `_eid`, `_ok`, `_value`) are its
    own: the engine waits through timeouts, Stores and conditions, so a SimPy release that
    changes its internals cannot change a run."""
    private = ("._queue", "._eid", "._ok", "._value", "._now")
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for folder in ("simfl", "policies") for path in sorted((ROOT / folder).rglob("*.py"))
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
             if any(name in line for name in private)]
    assert not found, "\n".join(found)
