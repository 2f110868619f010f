"""The `simfl` command's entry point (also `python -m simfl`): it chooses the numerics
mode (`--numerics`, else SIMFL_NUMERICS) before anything loads numpy or torch, which
read their settings once, then hands the arguments to simfl.cli."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from simfl import numerics
from simfl.errors import SimflError


def requested_mode(argv: Sequence[str]) -> str | None:
    """The value of `--numerics` in `argv` (either spelling), or None."""
    for i, arg in enumerate(argv):
        if arg == "--numerics" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--numerics="):
            return arg.split("=", 1)[1]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    wanted = requested_mode(args)
    if wanted is None or wanted in numerics.MODES:  # another value: argparse names the choices
        try:
            numerics.configure(wanted)
        except SimflError as exc:
            print(f"simfl: error: {exc}", file=sys.stderr)
            return 2
    from simfl.cli import main as cli_main  # deferred: numpy and torch load only after --numerics is read

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
