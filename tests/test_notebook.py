"""docs/tutorial.ipynb runs from top to bottom, as a reader would run it: in a kernel of
this interpreter, in an empty folder, with the tests' generator cache (the tutorial's
scenario asks for the `tiny` generator, which trains in seconds)."""

import json
import sys
from pathlib import Path

import nbformat
import pandas as pd
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"
CELL_TIMEOUT_S = 150  # the whole notebook takes about 40 s on 2 busy cores; one hung cell fails it
POLICIES = ["tfl", "fimi", "equal-share", "just-in-time"]


def this_interpreters_kernel(folder: Path) -> KernelManager:
    """A kernel manager for a `python3` kernel of sys.executable (an installed `python3`
    kernelspec may name another Python)."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (simfl tests)", "language": "python"}))
    specs = KernelSpecManager(kernel_dirs=[str(folder / "kernels")], ensure_native_kernel=False)
    return KernelManager(kernel_name="python3", kernel_spec_manager=specs)


def test_the_tutorial_notebook_runs_and_compares_its_policies(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert not any(cell.outputs for cell in code), "commit the tutorial with its outputs cleared (CI runs it)"
    work = tmp_path / "work"
    work.mkdir()
    client = NotebookClient(notebook, km=this_interpreters_kernel(tmp_path), timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(work)}})
    client.execute()  # a cell that raises fails the test with its traceback (CellExecutionError)

    summary = pd.read_csv(work / "runs" / "tutorial" / "summary.csv")
    assert list(summary["policy"]) == POLICIES
    # Table I as the notebook showed it (result.summary) holds the same policies
    shown = [out["data"]["text/plain"] for cell in code if cell.source.strip() == "result.summary"
             for out in cell.outputs if out.output_type == "execute_result"]
    assert shown and all(name in shown[0] for name in POLICIES)
    figures = [out for cell in code if "result.show(" in cell.source for out in cell.outputs
               if "image/png" in out.get("data", {})]
    assert figures, "the accuracy figure is shown inline"
    # the notebook's own policy ran at the deadline, not at f_max
    plan, f_max = (pd.read_csv(work / "runs" / "tutorial" / "plans" / f"{name}.csv")
                   for name in ("just-in-time", "equal-share"))
    assert ((plan["t_cmp_s"] + plan["t_com_s"]) <= 20).all() and (plan["f_hz"] < f_max["f_hz"]).all()
