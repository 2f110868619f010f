"""`simfl trace convert`: argument parsing and printing only."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from simfl import numerics
from simfl.cli.arguments import positive_int
from simfl.dynamics.availability import write_trace
from simfl.dynamics.fedscale import fedscale_intervals
from simfl.dynamics.registry import MAX_PERIOD_S


def _horizon(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (math.isfinite(value) and 0 < value <= MAX_PERIOD_S):
        raise argparse.ArgumentTypeError(f"must be in (0, {MAX_PERIOD_S:g}] s, got {text}")
    return value


def cmd_convert(args: argparse.Namespace) -> int:
    rows = fedscale_intervals(Path(args.file), args.horizon_s, args.devices,
                              Path(args.mapping) if args.mapping else None)
    out = Path(args.out)
    write_trace(rows, out)
    devices = len({d for d, _, _ in rows})
    print(f"{out}: {len(rows)} online intervals of {devices} devices starting before {args.horizon_s:g} s")
    return 0


def add_trace_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `trace convert` on the `simfl` command's subparsers."""
    group = subparsers.add_parser("trace", help="availability traces")
    sub = group.add_subparsers(dest="trace_command", metavar="{convert}", required=True)

    p = sub.add_parser("convert", help="a FedScale client-behaviour trace as simfl's CSV trace (device,start_s,end_s)")
    p.add_argument("file", help="FedScale's client-behaviour trace: a pickled dict of client id -> active, inactive, "
                                "finish_time, duration, model")
    p.add_argument("--horizon-s", type=_horizon, required=True,
                   help="unroll the trace's periods up to this time: every online interval that starts before it")
    p.add_argument("--out", required=True, help="the CSV file to write")
    p.add_argument("--devices", type=positive_int, default=None,
                   help="devices 0..N-1 get the N smallest client ids (default: one device per client)")
    p.add_argument("--mapping", default=None, metavar="CSV",
                   help="which client each device gets: a CSV with header device,client (then give --devices)")
    numerics.add_option(p)  # every command takes it; nothing here depends on it
    p.set_defaults(func=cmd_convert)


__all__ = ["add_trace_commands", "cmd_convert"]
