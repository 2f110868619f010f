"""FedScale's client-behaviour traces as device availability: `{fedscale: FILE}`.

The file is FedScale's `client_behave_trace` format (SymbioticLab/FedScale,
benchmark/dataset/data/device_info/README.md): a pickled dict of client id ->
`{'active': [s], 'inactive': [s], 'finish_time': s, 'duration': s, 'model': str}`.
FedScale's `ClientMetadata.is_active` (fedscale/cloud/internal/client_metadata.py)
takes `norm_time = cur_time % finish_time` and says the client is active when
`active[i] <= norm_time <= inactive[i]`, i being an index it moves forward by one on a
call whose norm_time is past `inactive[i]` and wraps modulo the number of intervals.
simfl keeps the rule, online while active[k] <= t mod finish_time <= inactive[k] for
some k (`simfl.dynamics.periodic`), without the moving index: FedScale's lags behind
when calls are further apart than an interval, and after a wrap it keeps the last
interval until norm_time passes it again. `duration` and `model` are checked and not
used: a device's speed comes from the scenario.

Clients go to a device group's devices in sorted id order (the group's first device
gets the smallest id), or as a `device,client` CSV says. FedScale's clientManager gives
client c the trace `keys[c % len(keys)]` in the pickle's insertion order, wrapping
around (fedscale/cloud/client_manager.py); simfl refuses a group larger than the file
instead of giving two devices one trace unasked.

A pickle runs code when it is loaded, so the file is read by an unpickler that refuses
every global: it can build dicts, lists, tuples, numbers, strings, bools and None, which
is all such a trace holds, and nothing that calls a function.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from simfl.dynamics.availability import online_intervals
from simfl.dynamics.periodic import PeriodicSchedule
from simfl.dynamics.registry import AVAILABILITY, MAX_PERIOD_S, Fail, register, unknown_fields
from simfl.errors import SimflError

KEYS = ("active", "inactive", "finish_time", "duration", "model")
_MAX_CLIENT_PROBLEMS = 5  # a file with thousands of bad clients says so without listing them all


@register(AVAILABILITY)
@dataclass(frozen=True)
class FedScaleTrace:
    """The online periods of a device group from FedScale's client-behaviour trace, a
    pickled dict of client id -> {active, inactive, finish_time, duration, model}: a client
    is online while active[k] <= t mod finish_time <= inactive[k] for some k. The group's
    devices take the clients in sorted id order, or as the `device,client` CSV `mapping`
    says (paths relative to the scenario's folder): device `first_device + i` behaves as
    client `clients[i]`, whose schedule is `schedules[i]`."""

    path: str
    first_device: int
    clients: tuple[str, ...]
    schedules: tuple[PeriodicSchedule, ...]
    kind: ClassVar[str] = "fedscale"
    form: ClassVar[str] = "{fedscale: FILE} | {fedscale: {file: FILE, mapping: CSV}}"

    @classmethod
    def from_config(cls, params: Any, where: str, fail: Fail, context: dict) -> FedScaleTrace | None:
        if isinstance(params, dict):
            unknown_fields(params, {"file", "mapping"}, where, fail)
            file, mapping = params.get("file"), params.get("mapping")
            if not isinstance(file, str) or not file:
                fail(f"{where}.file", f"must be the path of a FedScale client-behaviour trace (a pickle), got {file!r}")
                return None
            if mapping is not None and (not isinstance(mapping, str) or not mapping):
                fail(f"{where}.mapping", f"must be the path of a CSV file with columns device,client, got {mapping!r}")
                return None
        elif isinstance(params, str) and params:
            file, mapping = params, None
        else:
            fail(where, "must be the path of a FedScale client-behaviour trace (a pickled dict of client id -> "
                        f"active, inactive, finish_time, duration, model) or {{file: FILE, mapping: CSV}}; got {params!r}")
            return None
        base = context.get("base_dir")
        path = _beside(file, base)
        n_devices = int(context.get("n_devices", 0))
        first = int(context.get("first_device", 0))
        count = int(context.get("group_size", n_devices - first))
        trace = read_fedscale(path, where, fail)
        if trace is None:
            return None
        if mapping is None:
            clients = assign_in_order(trace, path, count, where, fail)
        else:
            clients = read_mapping(_beside(mapping, base), trace, path, n_devices, first, count, where, fail)
        if clients is None:
            return None
        schedules = client_schedules(trace, clients, path, where, fail)
        if schedules is None:
            return None
        return cls(str(path), first, tuple(str(c) for c in clients), schedules)

    def period(self, seed: int, device: int, k: int, start_s: float, was_online: bool) -> tuple[bool, float]:
        return self.schedules[device - self.first_device].period_from(start_s)


def fedscale_intervals(path: Path, horizon_s: float, devices: int | None = None,
                       mapping: Path | None = None) -> list[tuple[int, float, float]]:
    """The online intervals (device, start_s, end_s) that start before `horizon_s` of
    devices 0..devices-1 (default: one per client) under a FedScale trace, every period
    up to the horizon unrolled: simfl's trace format, which has no period. Devices take
    clients as a group of that many devices would (`mapping` as in a scenario). SimflError
    naming the file and every problem found."""
    problems: list[str] = []

    def fail(where: str, message: str) -> None:
        problems.append(message)  # no scenario field to name: each message names the file

    n = devices
    if n is None:
        trace = read_fedscale(path, "", fail)
        n = len(trace) if trace is not None else 0
    spec = None
    if not problems:
        params = str(path) if mapping is None else {"file": str(path), "mapping": str(mapping)}
        spec = FedScaleTrace.from_config(params, "", fail, {"n_devices": n, "first_device": 0, "group_size": n})
    if spec is None:
        raise SimflError(problems[0] if len(problems) == 1 else
                         f"{len(problems)} problems\n" + "\n".join(f"  - {p}" for p in problems))
    return online_intervals([spec] * n, seed=0, until_s=horizon_s)


def _beside(file: str, base_dir: str | None) -> Path:
    """A path the scenario names: relative to the scenario's folder, as every file it names."""
    path = Path(file)
    return path if path.is_absolute() or base_dir is None else Path(base_dir) / path


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle named a global (a class or function), which plain data never needs."""


class _PlainUnpickler(pickle.Unpickler):
    """Builds only what a pickle builds without naming a global (containers, numbers,
    strings, bools, None); a pickle that names one, the way to call code, is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise RefusedGlobal(f"it names the global {module}.{name}")


def load_plain_pickle(data: bytes) -> Any:
    """The object a pickle of plain data holds; RefusedGlobal for one that names a global,
    other exceptions for a damaged one."""
    return _PlainUnpickler(io.BytesIO(data)).load()


def read_fedscale(path: Path, where: str, fail: Fail) -> dict[Any, Any] | None:
    """The trace's dict of client id -> behaviour, its ids all integers or all strings;
    None after a problem. Each client's entry is checked when it is used."""
    try:
        trace = _load(path)
    except OSError as exc:
        fail(where, f"cannot read the FedScale trace {path} ({exc.strerror or exc})")
        return None
    except RefusedGlobal as exc:
        fail(where, f"{path}: refused: {exc}. A FedScale client-behaviour trace holds only dicts, lists, numbers "
                    "and strings, and simfl builds nothing else from a pickle (loading one can run code)")
        return None
    except Exception as exc:  # noqa: BLE001  a damaged pickle fails in many ways; each is the file's fault
        fail(where, f"{path}: not a readable pickle ({type(exc).__name__}: {exc})")
        return None
    if not isinstance(trace, dict) or not trace:
        fail(where, f"{path}: must hold a dict of client id -> {{{', '.join(KEYS)}}} (FedScale's client-behaviour "
                    f"trace), got {_describe(trace)}")
        return None
    kinds = {type(k) for k in trace}
    if not (kinds == {int} or kinds == {str}):
        fail(where, f"{path}: client ids must be all integers or all strings (FedScale's are integers), got "
                    f"{', '.join(sorted(t.__name__ for t in kinds))}")
        return None
    return trace


_LAST: dict[bytes, Any] = {}  # SHA-256 of a file's bytes -> its trace: the last one read


def _load(path: Path) -> Any:
    """A file unpickled once while its bytes stay the same: several groups, or a sweep's
    runs, may name the same (large) trace. Callers only read what it returns."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).digest()
    if digest not in _LAST:
        trace = load_plain_pickle(data)
        _LAST.clear()
        _LAST[digest] = trace
    return _LAST[digest]


def assign_in_order(trace: dict[Any, Any], path: Path, count: int, where: str, fail: Fail) -> list[Any] | None:
    """The `count` smallest client ids, in order: the group's devices, first to last."""
    if count > len(trace):
        fail(where, f"{path}: {count} devices to give clients to, but the trace has {len(trace)} clients; use at "
                    f"most {len(trace)} devices, or a mapping (a device,client CSV) that gives some a client twice")
        return None
    return sorted(trace)[:count]


def read_mapping(path: Path, trace: dict[Any, Any], trace_path: Path, n_devices: int, first: int, count: int,
                 where: str, fail: Fail) -> list[Any] | None:
    """The client of each of the group's devices (scenario indices first..first+count-1)
    from a CSV with header device,client; rows of other groups' devices are theirs."""
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    except (OSError, UnicodeDecodeError) as exc:
        fail(where, f"cannot read the mapping file {path} ({getattr(exc, 'strerror', None) or exc})")
        return None
    if not rows or [c.strip() for c in rows[0]] != ["device", "client"]:
        fail(where, f"{path}: the first line must be the header device,client")
        return None
    by_name = {str(c): c for c in trace}
    chosen: dict[int, Any] = {}
    ok = True
    for line, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        try:
            device, client = int(row[0]), row[1].strip()
        except (ValueError, IndexError):
            fail(where, f"{path}, line {line}: expected a device index and a client id, got {','.join(row)!r}")
            ok = False
            continue
        if not 0 <= device < n_devices:
            fail(where, f"{path}, line {line}: device {device} does not exist (the scenario has devices "
                        f"0..{n_devices - 1})")
            ok = False
        elif client not in by_name:
            fail(where, f"{path}, line {line}: client {client} is not in the trace {trace_path}")
            ok = False
        elif first <= device < first + count:
            if device in chosen:
                fail(where, f"{path}, line {line}: device {device} is mapped twice")
                ok = False
            chosen[device] = by_name[client]
    missing = [d for d in range(first, first + count) if d not in chosen]
    if missing and ok:
        shown = ", ".join(str(d) for d in missing[:10]) + (", ..." if len(missing) > 10 else "")
        fail(where, f"{path}: every device of the group needs a client; no row for device(s) {shown}")
        ok = False
    return [chosen[d] for d in range(first, first + count)] if ok else None


def client_schedules(trace: dict[Any, Any], clients: list[Any], path: Path, where: str,
                     fail: Fail) -> tuple[PeriodicSchedule, ...] | None:
    """Each client's schedule, in order; every bad client's problem reported (the first
    few of them)."""
    schedules, bad = [], []
    for client in clients:
        try:
            schedules.append(schedule_of(trace[client]))
        except ValueError as exc:
            if client not in bad:
                bad.append(client)
                if len(bad) <= _MAX_CLIENT_PROBLEMS:
                    fail(where, f"{path}: client {client!r}: {exc}")
    if len(bad) > _MAX_CLIENT_PROBLEMS:
        fail(where, f"{path}: and {len(bad) - _MAX_CLIENT_PROBLEMS} more clients with problems")
    return None if bad else tuple(schedules)


def schedule_of(entry: Any) -> PeriodicSchedule:
    """A client's behaviour as a schedule; ValueError saying what is wrong with it."""
    if not isinstance(entry, dict):
        raise ValueError(f"must be a dict with keys {', '.join(KEYS)}, got {_describe(entry)}")
    missing = [k for k in KEYS if k not in entry]
    if missing:
        raise ValueError(f"misses key(s) {', '.join(missing)} (a client's behaviour has {', '.join(KEYS)})")
    period = _number(entry["finish_time"], "finish_time")
    if not 0 < period <= MAX_PERIOD_S:
        raise ValueError(f"finish_time (the trace's period) must be in (0, {MAX_PERIOD_S:g}] s, got {period:g}")
    duration = _number(entry["duration"], "duration")
    if duration < 0:
        raise ValueError(f"duration must be >= 0, got {duration:g}")
    if not isinstance(entry["model"], str):
        raise ValueError(f"model must be a string (the device model's name), got {_describe(entry['model'])}")
    starts, ends = _instants(entry["active"], "active"), _instants(entry["inactive"], "inactive")
    if len(starts) != len(ends):
        raise ValueError(f"active and inactive have different lengths ({len(starts)} and {len(ends)}); each "
                         "online interval is active[k]..inactive[k]")
    for k, (a, b) in enumerate(zip(starts, ends)):
        if a < 0:
            raise ValueError(f"active[{k}] = {a:g} is negative; instants are in [0, finish_time]")
        if b > period:
            raise ValueError(f"inactive[{k}] = {b:g} is beyond finish_time {period:g}; instants are in "
                             "[0, finish_time]")
        if a > b:
            raise ValueError(f"interval {k} ends before it starts (active[{k}] = {a:g} > inactive[{k}] = {b:g})")
        if k and a < ends[k - 1]:
            raise ValueError(f"intervals {k - 1} and {k} are out of order or overlap (inactive[{k - 1}] = "
                             f"{ends[k - 1]:g} > active[{k}] = {a:g}); they must be sorted and disjoint")
    return PeriodicSchedule(period, tuple(zip(starts, ends)))


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key} must be a number, got {_describe(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf  # an integer beyond any float
    if not math.isfinite(number):
        raise ValueError(f"{key} must be a finite number, got {_describe(value)}")
    return number


def _instants(value: Any, key: str) -> list[float]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{key} must be a list of instants in seconds, got {_describe(value)}")
    return [_number(v, f"{key}[{k}]") for k, v in enumerate(value)]


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"
