"""When each device is online: always, an on/off Markov process, or a trace file.

A device's availability is a sequence of periods, each online or offline, that
`AvailabilityTimeline` walks forward as simulated time advances. A device offline when
the server selects is not selected; one that goes offline during its job drops out.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from simfl.dynamics.registry import (AVAILABILITY, MAX_PERIOD_S, Fail, WithoutFields, declared, number_field,
                                    register, unknown_fields)
from simfl.limits import Bounds
from simfl.streams import keyed_rng, keyed_rngs

INF = math.inf


@register(AVAILABILITY)
@dataclass(frozen=True)
class AlwaysOn(WithoutFields):
    """Online for the whole run (the paper's assumption)."""

    kind: ClassVar[str] = "always"
    form: ClassVar[str] = "always"

    def period(self, seed: int, device: int, k: int, start_s: float, was_online: bool) -> tuple[bool, float]:
        return True, INF


@register(AVAILABILITY)
@dataclass(frozen=True)
class MarkovOnOff:
    """Alternating online and offline periods of exponential length (a two-state
    continuous-time Markov chain). The first state is drawn from the stationary law,
    online with probability mean_on / (mean_on + mean_off); the first period's length is
    exponential too, which is exact by memorylessness."""

    mean_on_s: float
    """The mean length of an online period."""
    mean_off_s: float
    """The mean length of an offline period."""
    kind: ClassVar[str] = "markov"
    form: ClassVar[str] = "{markov: {mean_on_s, mean_off_s}}"
    FIELDS: ClassVar[dict[str, Bounds]] = {"mean_on_s": Bounds(above=0, maximum=MAX_PERIOD_S, required=True),
                                           "mean_off_s": Bounds(above=0, maximum=MAX_PERIOD_S, required=True)}

    @classmethod
    def from_config(cls, params: Any, where: str, fail: Fail, context: dict) -> MarkovOnOff | None:
        unknown_fields(params, declared(cls), where, fail)
        on = number_field(params, "mean_on_s", where, fail, cls.FIELDS["mean_on_s"])
        off = number_field(params, "mean_off_s", where, fail, cls.FIELDS["mean_off_s"])
        return None if on is None or off is None or on <= 0 or off <= 0 else cls(on, off)

    @property
    def online_fraction(self) -> float:
        return self.mean_on_s / (self.mean_on_s + self.mean_off_s)

    def period(self, seed: int, device: int, k: int, start_s: float, was_online: bool) -> tuple[bool, float]:
        draw = keyed_rng(seed, "availability", device, k)
        online = bool(draw.random() < self.online_fraction) if k == 0 else not was_online
        return online, start_s + draw.exponential(self.mean_on_s if online else self.mean_off_s)

    def periods(self, seed: int, devices: np.ndarray, k: np.ndarray, start_s: np.ndarray,
                was_online: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`period` for many devices at once, the same draws bit for bit (keyed_rngs)."""
        online = np.logical_not(was_online)
        length = np.empty(len(devices))
        keys = np.stack([np.asarray(devices, dtype=np.int64), np.asarray(k, dtype=np.int64)], axis=1)
        fraction, on, off = self.online_fraction, self.mean_on_s, self.mean_off_s
        for j, draw in enumerate(keyed_rngs(seed, "availability", keys)):
            if keys[j, 1] == 0:
                online[j] = draw.random() < fraction
            length[j] = draw.exponential(on if online[j] else off)
        return online, np.asarray(start_s, dtype=float) + length


@register(AVAILABILITY)
@dataclass(frozen=True)
class Trace:
    """The intervals in which each device is online, from a CSV file with columns
    `device,start_s,end_s` (the shape of FedScale's client-behaviour traces). A device
    the file does not name is never online. Devices are the scenario's indices 0..N-1."""

    path: str
    intervals: tuple[tuple[tuple[float, float], ...], ...]  # per device, sorted, disjoint
    kind: ClassVar[str] = "trace"
    form: ClassVar[str] = "{trace: FILE}"

    @classmethod
    def from_config(cls, params: Any, where: str, fail: Fail, context: dict) -> Trace | None:
        if not isinstance(params, str) or not params:
            fail(where, f"must be the path of a CSV file with columns device,start_s,end_s; got {params!r}")
            return None
        path = Path(params)
        if not path.is_absolute() and context.get("base_dir") is not None:
            path = Path(context["base_dir"]) / path
        n_devices = int(context.get("n_devices", 0))
        intervals = read_trace(path, n_devices, where, fail)
        return None if intervals is None else cls(str(path), intervals)

    def period(self, seed: int, device: int, k: int, start_s: float, was_online: bool) -> tuple[bool, float]:
        edges = self._edges[device] if device < len(self._edges) else ((False, INF),)
        return edges[k] if k < len(edges) else (False, INF)

    @cached_property
    def _edges(self) -> tuple[tuple[tuple[bool, float], ...], ...]:
        """Per device, its periods as (online, end): offline gaps and online intervals
        alternating from time 0, made once (a device's k-th period is asked for in turn)."""
        out = []
        for intervals in self.intervals:
            edges: list[tuple[bool, float]] = []
            t = 0.0
            for a, b in intervals:
                if a > t:
                    edges.append((False, a))
                edges.append((True, b))
                t = b
            edges.append((False, INF))
            out.append(tuple(edges))
        return tuple(out)


def read_trace(path: Path, n_devices: int, where: str, fail: Fail) -> tuple[tuple[tuple[float, float], ...], ...] | None:
    """Per device, its online intervals sorted by start; every problem reported with its line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(where, f"cannot read the trace file {path} ({getattr(exc, 'strerror', None) or exc})")
        return None
    rows = list(csv.reader(text.splitlines()))
    if not rows or [c.strip() for c in rows[0]] != ["device", "start_s", "end_s"]:
        fail(where, f"{path}: the first line must be the header device,start_s,end_s")
        return None
    per: list[list[tuple[float, float]]] = [[] for _ in range(n_devices)]
    ok = True
    for line, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        try:
            device, start, end = int(row[0]), float(row[1]), float(row[2])
        except (ValueError, IndexError):
            fail(where, f"{path}, line {line}: expected an integer device and two numbers, got {','.join(row)!r}")
            ok = False
            continue
        if not 0 <= device < n_devices:
            fail(where, f"{path}, line {line}: device {device} does not exist (the scenario has devices 0..{n_devices - 1})")
            ok = False
        elif not (math.isfinite(start) and start >= 0 and end > start):
            fail(where, f"{path}, line {line}: an interval needs 0 <= start_s < end_s (end may be inf), got {start:g}..{end:g}")
            ok = False
        else:
            per[device].append((start, end))
    for device, spans in enumerate(per):
        spans.sort()
        for (a0, b0), (a1, b1) in zip(spans, spans[1:]):
            if a1 < b0:
                fail(where, f"{path}: device {device}'s intervals {a0:g}..{b0:g} and {a1:g}..{b1:g} overlap")
                ok = False
    return tuple(tuple(s) for s in per) if ok else None


def write_trace(rows: Sequence[tuple[int, float, float]], path: Path) -> None:
    """Online intervals (device, start_s, end_s) as a trace file, every number written
    so that `read_trace` gives back the same float (repr: shortest exact, inf as inf)."""
    lines = ["device,start_s,end_s"] + [f"{int(d)},{float(a)!r},{float(b)!r}" for d, a, b in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class AvailabilityTimeline:
    """Every device's current period, walked forward as time advances (monotone queries).

    State: per device whether it is online, when its period ends and the period's index;
    the periods themselves are drawn from keyed streams, so the state is enough to resume.
    """

    def __init__(self, specs: Sequence[Any], seed: int) -> None:
        self.specs, self.seed = list(specs), seed
        n = len(self.specs)
        # devices grouped by their availability component (the same object: a scenario's
        # device group shares one, and a trace's is too big to hash per device); a group
        # whose component draws many devices' periods at once (`periods`) is drawn in one call
        groups: dict[int, int] = {}
        group = np.fromiter((groups.setdefault(id(s), len(groups)) for s in self.specs), dtype=np.int64, count=n)
        self._group = group.astype(np.min_scalar_type(max(len(groups) - 1, 0)))  # a byte for up to 256 groups
        # group g is numbered where its first device stands
        self._groups: list[Any] = [self.specs[i] for i in np.unique(group, return_index=True)[1].tolist()]
        always = np.isin(self._group, [g for g, s in enumerate(self._groups) if isinstance(s, AlwaysOn)])
        # always-on devices need no draw: online for good, set at once (a million phones)
        self.online = always.copy()
        self.until_s = np.where(always, INF, 0.0)
        self.index = np.zeros(n, dtype=np.int64)
        self._draw(np.flatnonzero(~always), first=True)
        self.always = bool(always.all())

    def advance(self, t_s: float) -> None:
        """Move every device to the period that contains time `t_s` (periods end at
        `until_s`, exclusive)."""
        due = np.flatnonzero(self.until_s <= t_s)
        while len(due):
            self.next_period(due)
            due = due[self.until_s[due] <= t_s]

    def next_period(self, devices: np.ndarray) -> None:
        """Move `devices` (distinct) on to their next period, whatever the time."""
        self.index[devices] += 1
        self._draw(devices)

    def _draw(self, devices: np.ndarray, first: bool = False) -> None:
        """Each device's next period (its first when `first`), from its index, the end of
        its last period and whether it was online then."""
        for g in np.unique(self._group[devices]).tolist():
            spec, mine = self._groups[g], devices[self._group[devices] == g]
            start = np.zeros(len(mine)) if first else self.until_s[mine]
            was = np.zeros(len(mine), dtype=bool) if first else self.online[mine]
            if hasattr(spec, "periods"):
                self.online[mine], self.until_s[mine] = spec.periods(self.seed, mine, self.index[mine], start, was)
                continue
            for j, i in enumerate(mine.tolist()):
                self.online[i], self.until_s[i] = spec.period(self.seed, i, int(self.index[i]), float(start[j]),
                                                              bool(was[j]))

    def state_dict(self) -> dict:
        return {"online": self.online.copy(), "until_s": self.until_s.copy(), "index": self.index.copy()}

    def load_state_dict(self, state: dict) -> None:
        self.online = np.array(state["online"], dtype=bool)
        self.until_s = np.array(state["until_s"], dtype=float)
        self.index = np.array(state["index"], dtype=np.int64)


def online_intervals(specs: Sequence[Any], seed: int, until_s: float) -> list[tuple[int, float, float]]:
    """Every device's online intervals that start before `until_s`, as (device, start_s,
    end_s) rows sorted by device and start: the trace format, so a run's availability can
    be drawn or replayed."""
    device, start, end = online_interval_arrays(specs, seed, until_s)
    return list(zip(device.tolist(), start.tolist(), end.tolist()))


def online_interval_arrays(specs: Sequence[Any], seed: int,
                           until_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`online_intervals` as three columns (device, start_s, end_s): the periods are walked
    for all devices at once, period by period, by an `AvailabilityTimeline` (the run's own
    draws), and a million phones' intervals are three arrays, not millions of tuples."""
    timeline = AvailabilityTimeline(specs, seed)
    start = np.zeros(len(timeline.online))
    live = np.arange(len(start) if until_s > 0 else 0)
    devices, starts, ends = [], [], []
    while len(live):
        online = timeline.online[live]
        devices.append(live[online])
        starts.append(start[live[online]])
        ends.append(timeline.until_s[live[online]])
        end = timeline.until_s[live]
        live = live[np.isfinite(end) & (end < until_s)]
        start[live] = timeline.until_s[live]
        timeline.next_period(live)
    device, start_s, end_s = (np.concatenate(c) if c else np.zeros(0) for c in (devices, starts, ends))
    order = np.lexsort((start_s, device))  # by device, then start
    return device[order].astype(np.int64), start_s[order], end_s[order]
