"""One device's job as a SimPy process, the same in every aggregation mode.

A job receives the global model (where the cell models a downlink), computes for
tau*omega*(D_loc+D_gen)/f seconds (eq. 6) and uploads S bits on its sub-band (eqs. 7-9).
The upload is a flow: the job keeps its remaining bits and the rate of its current
segment, and a change of rate (a channel step) ends the segment, so the upload ends when
its bits are sent, however the rate moved meanwhile (the fluid model of flow-level
network simulators). Its energy is power times the time each phase ran.

Three things stop a job short, each an event the job waits on beside its phase's end,
made when the job needs it (an idle device has no process and no events):
- its device goes offline: the end of its current online period, from the
  availability timeline;
- its battery empties, at the current phase's power: receiving draws nothing from the
  battery's FL budget, computing draws eps f^3, sending P; the instant is recomputed
  whenever the power changes, i.e. at every phase;
- the server's deadline (T_max after the job's start): a straggler.
On ties the job's own work wins (an upload that ends at the instant its device goes
offline arrived), then going offline, then the battery, then the deadline. Energy spent
until the stop counts; the update is lost. The server learns of a lost job at the
deadline (it cannot tell a silent device from a slow one), so the job reports then; a
finished job reports when its last bit arrives.

Every instant is computed from the job's own state (a phase's start plus its duration, a
segment's start plus its remaining bits over its rate) and waited for exactly
(clock.at), so a run resumed from a checkpoint taken in the middle of a job ends it at
the same float.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Generator, Protocol

import numpy as np
import simpy

from simfl.engine.clock import at
from simfl.jobs import BATTERY, OFFLINE, OK, STRAGGLER

DOWNLOAD, COMPUTE, UPLOAD, DONE = "download", "compute", "upload", "done"
NAN = math.nan


class RateSource(Protocol):
    """What sets an upload's rate while it runs (the channel in time)."""

    def chunk(self, job: Job, start_s: float) -> tuple[list[float], list[float], float]:
        """The job's next stretch of upload from `start_s`: instants t_0 = start_s < t_1 <
        ... < t_n (the channel steps, the last where the stretch ends), the rate on each
        [t_k, t_k+1) (n rates), the channel sampled at t_k, and the gain at t_0. A function
        of the job's device, cell and resources and of time only, so that a resumed job
        gets the same."""
        ...

    def track(self, job: Job) -> None:
        """A job was dispatched (it holds its sub-band in its cell until it is done)."""
        ...

    def release(self, job: Job, now: float) -> None:
        """The job ended at `now` (its upload, if it had begun, with it)."""
        ...

    def wake(self, job: Job) -> simpy.Event | None:
        """An event that fires when something else changes the job's rate before its
        stretch ends (another transmission that it hears starting or ending); the source
        has then cut the job's stretch at that instant. None: nothing else changes it."""
        ...


@dataclass
class Job:
    """One device's job: what it was given at dispatch and how far it has got (absolute
    simulated times). Plain data, so that `dataclasses.asdict` is its checkpoint."""

    job: int  # dispatch number in the run (asynchronous modes), device index in a synchronous round
    device: int
    base_version: int  # the global model it took
    repeat: int  # its device's earlier jobs from the same base version (training seed)
    cell: int
    gain: float  # channel power gain when it was dispatched, then at the upload's start
    round_fading: float  # the per-round fading draw of the job's round (1 where fading is in time or none)
    f_hz: float
    b_hz: float
    p_w: float
    rate_bps: float  # the rate of the upload's current segment
    model_bits: float
    computing_w: float  # eps f^3
    download_s: float
    compute_s: float
    battery_j: float  # the device's FL budget at dispatch (inf: mains powered)
    online_until_s: float  # when its device goes offline (inf: never)
    dispatch_s: float
    deadline_s: float
    phase: str = DOWNLOAD
    compute_start_s: float = NAN
    compute_end_s: float = NAN  # = the upload's start
    end_s: float = NAN  # the upload's end, or where the job stopped
    outcome: str = ""
    left_bits: float = NAN  # still to send in the upload
    sent_bits: float = 0.0  # sent in the upload's earlier segments
    segment_start_s: float = NAN
    segments: int = 0  # stretches of the upload begun (1: its rate never changed)
    chunk_times: list[float] = field(default_factory=list)  # the upload's current stretch (RateSource.chunk)
    chunk_rates: list[float] = field(default_factory=list)
    chunk_interference: list[float] = field(default_factory=list)  # W on each interval (empty: none)
    chunk_paused: bool = False  # the current stretch is a handover's interruption: nothing sent, no power
    sinr_s: float = 0.0  # the integral of the SINR over the upload's earlier stretches (linear, x s)
    interference_ws: float = 0.0  # the integral of the interference power over them (J)
    paused_s: float = 0.0  # the upload's time in earlier interruptions
    handovers: int = 0
    first_handover_s: float = math.inf  # inf: none
    last_handover_s: float = -math.inf  # the last of its device's handovers the job has taken in
    start_cell: int = -1  # the cell at the job's start (-1: `cell`, set when the job is made)
    planned_b_hz: float = -1.0  # the sub-band its round plan gave it (-1: `b_hz`, set when the job is made)
    distance_m: float = math.nan  # to the base station it sends to, where `gain` was taken
    pieces: list[list[float]] = field(default_factory=list)  # its sub-band [lo, hi) Hz while sending (interference)
    placed_cell: int = -1  # the cell and width the sub-band was placed for (-1: none)
    placed_b_hz: float = 0.0
    counted_j: float = 0.0  # energy already counted in rounds.csv rows (asynchronous modes)
    counted_bits: float = 0.0

    def __post_init__(self) -> None:
        if self.start_cell < 0:
            self.start_cell = self.cell
        if self.planned_b_hz < 0:
            self.planned_b_hz = self.b_hz

    # ---------------------------------------------------------------- instants

    @property
    def report_s(self) -> float:
        """When the server learns how the job ended: its last bit, or the deadline if lost."""
        return self.end_s if self.outcome == OK else self.deadline_s

    def phase_end_s(self) -> float:
        """When the current phase (the upload's current segment) ends if nothing stops it."""
        if self.phase == DOWNLOAD:
            return self.dispatch_s + self.download_s if self.download_s > 0 else self.dispatch_s
        if self.phase == COMPUTE:
            return self.compute_start_s + self.compute_s
        if not self.chunk_times:
            return self.segment_start_s + _ratio(self.left_bits, self.rate_bps)
        if len(self.chunk_rates) == 1:  # one rate to the stretch's end (as below, without arrays)
            start, end = self.chunk_times
            rate = self.chunk_rates[0]
            return start + _ratio(self.left_bits, rate) if self.left_bits <= rate * (end - start) else math.inf
        times, cumulative = self.chunk_times, self._chunk_cumulative()
        k = int(np.searchsorted(cumulative, self.left_bits))
        if k >= len(self.chunk_rates):
            return math.inf  # not in this stretch
        before = cumulative[k - 1] if k else 0.0
        return times[k] + _ratio(self.left_bits - before, self.chunk_rates[k])

    def rerate_s(self) -> float:
        """When the upload's current stretch ends unfinished (inf: it finishes in it, or the
        rate never changes)."""
        if self.phase != UPLOAD or not self.chunk_times or math.isfinite(self.phase_end_s()):
            return math.inf
        return self.chunk_times[-1]

    def _chunk_cumulative(self) -> np.ndarray:
        return np.cumsum(np.asarray(self.chunk_rates) * np.diff(self.chunk_times))

    def _chunk_bits(self, time_s: float) -> float:
        """Bits sent in the current stretch by `time_s`."""
        times = np.asarray(self.chunk_times)
        spans = np.clip(time_s - times[:-1], 0.0, np.diff(times))
        return float(np.dot(self.chunk_rates, spans))

    def _chunk_integrals(self, time_s: float) -> tuple[float, float]:
        """The integrals of the SINR and of the interference power over the current stretch
        up to `time_s` (nothing in an interruption). The SINR is the rate's: 2^(r/b) - 1."""
        if self.chunk_paused or not self.chunk_times:
            return 0.0, 0.0
        times = np.asarray(self.chunk_times)
        spans = np.clip(time_s - times[:-1], 0.0, np.diff(times))
        sinr = np.expm1(np.asarray(self.chunk_rates) / self.b_hz * math.log(2.0))
        interference = float(np.dot(self.chunk_interference, spans)) if self.chunk_interference else 0.0
        return float(np.dot(sinr, spans)), interference

    def signal_quality(self) -> tuple[float, float]:
        """The upload's SINR averaged over its sending time, in dB, and its mean
        interference power, in W (nan, nan: it never sent)."""
        sending = self.sending_s(self.end_s)
        if not sending > 0:
            return math.nan, math.nan
        if not self.chunk_times:
            return _db(math.expm1(self.rate_bps / self.b_hz * math.log(2.0))), 0.0
        sinr_s, interference_ws = self._chunk_integrals(self.end_s)
        return _db((self.sinr_s + sinr_s) / sending), (self.interference_ws + interference_ws) / sending

    def battery_empty_s(self) -> float:
        """When the battery empties at the current phase's power (inf: not in this phase)."""
        if not math.isfinite(self.battery_j) or self.phase == DOWNLOAD:
            return math.inf
        if self.phase == COMPUTE:
            if self.battery_j < self.computing_w * self.compute_s:
                return self.compute_start_s + self.battery_j / self.computing_w
            return math.inf
        if self.chunk_paused:
            return math.inf
        sent_for_s = self.segment_start_s - self.compute_end_s - self.paused_s  # (- 0.0 is exact)
        left_j = self.battery_j - self.computing_w * self.compute_s - self.p_w * sent_for_s
        if self.chunk_times:  # the rate moves, the power does not: empty at what is left over P
            return self.segment_start_s + _ratio(left_j, self.p_w)
        if left_j < self.p_w * _ratio(self.left_bits, self.rate_bps):
            return self.segment_start_s + _ratio(left_j, self.p_w)
        return math.inf

    def first_stop(self) -> tuple[float, str]:
        """The first of going offline, emptying the battery and the deadline, ties in that order."""
        stop, cause = self.online_until_s, OFFLINE
        empty = self.battery_empty_s()
        if empty < stop:
            stop, cause = empty, BATTERY
        if self.deadline_s < stop:
            stop, cause = self.deadline_s, STRAGGLER
        return stop, cause

    # ---------------------------------------------------------------- moves

    def end_phase(self, now: float, rates: RateSource | None) -> None:
        if self.phase == DOWNLOAD:
            self.phase, self.compute_start_s = COMPUTE, now
        elif self.phase == COMPUTE:
            self.phase, self.compute_end_s = UPLOAD, now
            self.left_bits, self.segment_start_s, self.segments = self.model_bits, now, 1
            if rates is not None:
                self.chunk_times, self.chunk_rates, self.gain = rates.chunk(self, now)
                self.rate_bps = self.chunk_rates[0]
        else:
            self._finish(now, OK)

    def next_chunk(self, now: float, rates: RateSource) -> None:
        """The current stretch ended at `now` with bits still to send: they carry on at the
        rates of the next."""
        if self.chunk_paused:
            self.paused_s += now - self.segment_start_s
        sinr_s, interference_ws = self._chunk_integrals(now)
        self.sinr_s += sinr_s
        self.interference_ws += interference_ws
        sent = self._chunk_bits(now)
        self.left_bits -= sent
        self.sent_bits += sent
        self.segments += 1
        self.segment_start_s = now
        self.chunk_times, self.chunk_rates, _ = rates.chunk(self, now)

    def stop(self, now: float, cause: str) -> None:
        if self.phase == UPLOAD and self.chunk_paused:
            self.paused_s += now - self.segment_start_s
        if self.phase == DOWNLOAD:
            self.compute_start_s = now
        if self.phase in (DOWNLOAD, COMPUTE):
            self.compute_end_s = now
        self._finish(now, cause)

    def _finish(self, now: float, outcome: str) -> None:
        self.phase, self.end_s, self.outcome = DONE, now, outcome

    # ---------------------------------------------------------------- accounts

    @property
    def mean_rate_bps(self) -> float:
        """The upload's bits over its duration: the rate of eq. (7) when it never changed."""
        if not self.chunk_times:
            return self.rate_bps
        duration = self.end_s - self.compute_end_s
        return self.bits_sent(self.end_s) / duration if duration > 0 else self.chunk_rates[0]

    def bits_sent(self, time_s: float) -> float:
        """Bits on the uplink by `time_s`: the whole update once it arrived."""
        if self.phase == DONE and self.outcome == OK and time_s >= self.end_s:
            return float(self.model_bits)
        if self.phase not in (UPLOAD, DONE) or self.segments == 0:
            return 0.0
        until = min(time_s, self.end_s) if self.phase == DONE else time_s
        if self.chunk_times:
            return self.sent_bits + self._chunk_bits(until)
        return self.sent_bits + self.rate_bps * max(until - self.segment_start_s, 0.0)

    def computing_s(self, time_s: float) -> float:
        """How long the job has been computing by `time_s`."""
        if self.phase == DOWNLOAD:
            return 0.0
        compute_end = self.compute_end_s if self.phase in (UPLOAD, DONE) else time_s
        return max(min(time_s, compute_end) - self.compute_start_s, 0.0)

    def sending_s(self, time_s: float) -> float:
        """How long the upload has been sending by `time_s` (its interruptions left out)."""
        if self.phase not in (UPLOAD, DONE) or self.segments == 0:
            return 0.0
        until = min(time_s, self.end_s) if self.phase == DONE else time_s
        elapsed = max(until - self.compute_end_s, 0.0)
        if self.phase == UPLOAD and self.chunk_paused:
            elapsed -= max(until - self.segment_start_s, 0.0)
        return elapsed - self.paused_s

    def entry(self) -> dict[str, Any]:
        """The job's row of a round's log (what `dispatch.device_record` writes)."""
        sinr_db, interference_w = self.signal_quality()
        return {"download_start_s": self.dispatch_s, "compute_start_s": self.compute_start_s,
                "compute_end_s": self.compute_end_s, "upload_start_s": self.compute_end_s,
                "upload_end_s": self.end_s, "outcome": self.outcome, "rate_bps": self.mean_rate_bps,
                "bits_sent": self.bits_sent(self.end_s), "sending_s": self.sending_s(self.end_s),
                "handovers": self.handovers, "handover_s": self.first_handover_s, "paused_s": self.paused_s,
                "sinr_db": sinr_db, "interference_w": interference_w, "distance_m": self.distance_m}


def _db(x: float) -> float:
    return 10.0 * math.log10(x) if x > 0 else -math.inf


def _ratio(a: float, b: float) -> float:
    """a / b, infinite for b = 0 (a flow at rate 0 never ends; a phase drawing no power never empties a battery)."""
    return a / b if b else math.inf


def job_process(env: simpy.Environment, job: Job, outbox: simpy.Store, deadline: simpy.Event | None = None,
                rates: RateSource | None = None) -> Generator[simpy.Event, Any, None]:
    """Run `job` from where it is to its end, then report it to the server's `outbox` at
    `job.report_s`. `deadline` is the server's event at `job.deadline_s` when it has
    one for the whole round; a job of its own is made otherwise."""
    if deadline is None or deadline.processed:
        deadline = at(env, job.deadline_s)
    offline = at(env, job.online_until_s) if math.isfinite(job.online_until_s) else None
    woken = rates.wake if rates is not None else None
    while job.phase != DONE:
        now = env.now
        end = job.phase_end_s()
        stop, cause = job.first_stop()
        change = job.rerate_s()
        if end <= now and end <= stop:
            job.end_phase(now, rates)
        elif stop <= now:
            job.stop(now, cause)
        elif change <= now:
            assert rates is not None
            job.next_chunk(now, rates)
        else:
            wakes = [deadline]
            if math.isfinite(min(end, change)):
                wakes.append(at(env, min(end, change)))
            if offline is not None:
                wakes.append(offline)
            empty = job.battery_empty_s()
            if math.isfinite(empty):
                wakes.append(at(env, empty))
            if woken is not None and job.phase == UPLOAD:
                other = woken(job)
                if other is not None:
                    wakes.append(other)
            yield env.any_of(wakes)
    if rates is not None:
        rates.release(job, env.now)
    if job.report_s > env.now:
        yield at(env, job.report_s)
    yield outbox.put(job)
