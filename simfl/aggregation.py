"""How the server turns arriving updates into global models: synchronous rounds, FedBuff
and FedAsync (the scenario's `aggregation:` section).

- `sync`: today's rounds. The server dispatches a round's participants, waits for them
  (or T_max) and averages what arrived (FedAvg, S4).
- `fedbuff` (Nguyen et al., AISTATS 2022): every available device, up to
  `max_concurrency` M at once, repeatedly takes the current global model, trains and
  uploads. The server keeps arrivals in a buffer; every `buffer_size` K arrivals it
  applies

      theta <- theta + eta_g * sum_k n_k s_k (theta_k - base_k) / sum_k n_k,

  with n_k the update's training samples (D_loc + D_gen, as FedAvg weighs them),
  s_k = (1 + staleness_k)^-a and staleness_k the number of global versions since the
  update's base model. With no staleness and eta_g = 1 this is FedAvg of the buffer
  exactly (the fresh part is computed as a `mix` that returns FedAvg's tensors).
- `fedasync` (Xie et al., 2019): every arrival is mixed in at once,
  theta <- (1 - alpha_k) theta + alpha_k theta_k with alpha_k = alpha (1 + staleness_k)^-a.

The policy's `aggregate` hook decides; its default (`default_aggregate`) is the rule of
the scenario's mode, so a policy that adds to the aggregation (SST's server update) works
in every mode by calling it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:
    from simfl.learning.protocol import LocalUpdate, Server

SYNC, FEDBUFF, FEDASYNC = "sync", "fedbuff", "fedasync"


@dataclass(frozen=True)
class Aggregation:
    """The scenario's `aggregation:` section: how the server turns updates into global models."""

    mode: str = SYNC
    """sync (rounds), fedbuff or fedasync."""
    buffer_size: int = 10
    """K: FedBuff aggregates every K arrivals."""
    max_concurrency: int | None = None
    """M, the devices training at once; null: `task.participants_per_round`, else all."""
    staleness: float = 0.5
    """The exponent a of the weight (1 + s)^-a of an update s versions old: written
    `{polynomial: a}`, or `constant` for a = 0."""
    server_lr: float = 1.0
    """eta_g of FedBuff's step."""
    mixing: float = 0.6
    """alpha of FedAsync's mix."""
    eval_every: int = 1
    """Evaluate the global model after every E-th aggregation (and the last), for speed
    when there are many (the asynchronous modes)."""
    eval_every_s: float | None = None
    """Or evaluate the first aggregation at or after each multiple of S seconds of
    simulated time, so that modes whose aggregations come at different rates know their
    time to a target to the same resolution."""

    @property
    def asynchronous(self) -> bool:
        """Whether the server aggregates arrivals as they come (else in rounds)."""
        return MODES[self.mode].arrivals is not None

    @property
    def arrivals_per_aggregation(self) -> int:
        """How many arrivals an asynchronous server aggregates at once."""
        arrivals = MODES[self.mode].arrivals
        if arrivals is None:
            raise ValueError(f"aggregation mode {self.mode!r} plays synchronous rounds")
        return arrivals(self)

    def evaluates(self, row: int, previous_s: float, now_s: float) -> bool:
        """Whether aggregation `row` (0-based), at `now_s` after the previous one at
        `previous_s`, is evaluated (the run's last is, whatever this says)."""
        if self.eval_every_s is not None:
            return math.floor(now_s / self.eval_every_s) > math.floor(previous_s / self.eval_every_s)
        return (row + 1) % self.eval_every == 0


def staleness_weight(staleness: int, exponent: float) -> float:
    """(1 + s)^-a: how much an update computed `staleness` versions ago still counts."""
    return float((1.0 + staleness) ** -exponent)


def fedbuff_step(updates: Sequence[LocalUpdate], server: Server, version: int, settings: Aggregation) -> Any:
    """The global model after one FedBuff step over `updates` (the buffer) at global
    `version`: theta + eta_g sum_k n_k s_k (theta_k - base_k) / sum_k n_k."""
    if not updates:
        return None
    samples = [float(u.samples) for u in updates]
    total = sum(samples)
    if total <= 0:
        return None
    eta = settings.server_lr
    fresh = [i for i, u in enumerate(updates) if u.base_version == version]
    stale = [i for i, u in enumerate(updates) if u.base_version != version]
    new = server.global_params()
    if fresh:
        # The fresh updates' deltas all start from the current model: their sample-weighted
        # sum is the step towards their FedAvg, taken as a mix so that eta_g = 1 with no
        # stale update lands exactly on FedAvg's tensors.
        fresh_samples = sum(samples[i] for i in fresh)
        average = server.fedavg([updates[i] for i in fresh], [samples[i] for i in fresh])
        new = server.mix(new, average, eta * fresh_samples / total)
    if stale:
        weights = [samples[i] * staleness_weight(version - updates[i].base_version, settings.staleness) for i in stale]
        delta = server.average_delta([updates[i] for i in stale], weights)
        if delta is not None:
            new = server.step(new, delta, eta * sum(weights) / total)
    return new


def fedasync_step(update: LocalUpdate, server: Server, version: int, settings: Aggregation, start: Any = None) -> Any:
    """The model `start` (default: the global one) after mixing one arrival in:
    (1 - alpha_s) theta + alpha_s theta_k, alpha_s = alpha (1 + s)^-a."""
    weight = settings.mixing * staleness_weight(version - update.base_version, settings.staleness)
    return server.mix(server.global_params() if start is None else start, update.params, weight)


def fedavg_rule(updates: Sequence[LocalUpdate], server: Server, version: int, settings: Aggregation) -> Any:
    """A synchronous round's rule: FedAvg of the updates (weighted by their samples)."""
    return server.fedavg(updates)


def fedasync_rule(updates: Sequence[LocalUpdate], server: Server, version: int, settings: Aggregation) -> Any:
    """FedAsync's rule: each update mixed in, in turn (an arrival, or SST's server update
    after it)."""
    new = server.global_params()
    for update in updates:
        new = fedasync_step(update, server, version, settings, new)
    return new


@dataclass(frozen=True)
class Mode:
    """One way the server turns updates into global models: its default rule (what a
    policy's `aggregate` hook does unless it says otherwise) and, for an asynchronous
    mode, how many arrivals it aggregates at once (None: synchronous rounds)."""

    rule: Callable[[Sequence[LocalUpdate], Server, int, Aggregation], Any]
    arrivals: Callable[[Aggregation], int] | None


# The modes by name (`aggregation.mode`, `policy@mode`); the first is the default.
MODES: dict[str, Mode] = {
    SYNC: Mode(fedavg_rule, arrivals=None),
    FEDBUFF: Mode(fedbuff_step, arrivals=lambda settings: settings.buffer_size),
    FEDASYNC: Mode(fedasync_rule, arrivals=lambda settings: 1),
}


def default_aggregate(updates: Sequence[LocalUpdate], server: Server, version: int, settings: Aggregation) -> Any:
    """The mode's own rule: FedAvg (sync), one FedBuff step, or the FedAsync mixes of
    each update in turn. None when nothing changes."""
    if not updates:
        return None
    return MODES[settings.mode].rule(updates, server, version, settings)


__all__ = ["FEDASYNC", "FEDBUFF", "MODES", "SYNC", "Aggregation", "Mode", "default_aggregate", "fedasync_rule",
           "fedasync_step", "fedavg_rule", "fedbuff_step", "staleness_weight"]
