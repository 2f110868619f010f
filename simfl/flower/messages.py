"""What crosses between simfl and a Flower strategy: the global model as an
`ArrayRecord`, the devices as a `Grid` that answers at once, a device's local update as
the reply a Flower ClientApp sends (an ArrayRecord of its model and a MetricRecord with
`num-examples`), and a device that did not deliver as an error reply, as Flower reports
a failed node."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Error, Message, MetricRecord, RecordDict
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.serverapp.grid import Grid
from flwr.serverapp.strategy import strategy_utils
from flwr.supercore.task_identity import TaskIdentity

from simfl.errors import PolicyError

# Flower's error codes are its own business; a node that missed the round gets this one
NOT_DELIVERED = 1


def ensure_identity() -> None:
    """The identity a ServerApp process has, which Flower's Message needs to address
    messages: simfl plays the ServerApp (node SUPERLINK_NODE_ID) of one run."""
    for attribute, value in (("run_id", 0), ("task_id", 0), ("node_id", SUPERLINK_NODE_ID)):
        if getattr(TaskIdentity, f"_{attribute}") is None:
            setattr(TaskIdentity, attribute, value)


def to_array_record(params: Sequence[torch.Tensor], names: Sequence[str]) -> ArrayRecord:
    """The model's tensors as an ArrayRecord keyed by their parameter names (copies)."""
    return ArrayRecord({name: Array(p.detach().numpy().copy()) for name, p in zip(names, params, strict=True)})


def from_array_record(record: ArrayRecord, names: Sequence[str], like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """An ArrayRecord as the model's tensors (names, shapes and dtypes of `like`); a
    PolicyError naming what does not fit."""
    missing = [name for name in names if name not in record]
    if missing or len(record) != len(names):
        raise PolicyError(f"the strategy returned arrays {sorted(record.keys())}; the model's are {list(names)}")
    out = []
    for name, ref in zip(names, like):
        array = np.asarray(record[name].numpy())
        if array.shape != tuple(ref.shape):
            raise PolicyError(f"the strategy returned array {name!r} of shape {array.shape}; the model's is "
                              f"{tuple(ref.shape)}")
        out.append(torch.from_numpy(array.astype(np.float32, copy=True)).to(ref.dtype))
    return out


def update_reply(instruction: Message, params: Sequence[torch.Tensor], names: Sequence[str], samples: int,
                 loss: float | None) -> Message:
    """A device's local update as a Flower ClientApp replies to a train message: its
    model under "arrays" and its metrics under "metrics" (`num-examples`, `train_loss`)."""
    metrics: dict[str, int | float | list[int] | list[float]] = {"num-examples": int(samples)}
    if loss is not None:
        metrics["train_loss"] = float(loss)
    content = RecordDict({"arrays": to_array_record(params, names), "metrics": MetricRecord(metrics)})
    return Message(content, reply_to=instruction)


def evaluation_reply(instruction: Message, loss: float, accuracy: float, samples: int) -> Message:
    """A device's evaluation of the model it was sent, as a ClientApp replies."""
    metrics = MetricRecord({"eval_loss": float(loss), "eval_acc": float(accuracy), "num-examples": int(samples)})
    return Message(RecordDict({"metrics": metrics}), reply_to=instruction)


def error_reply(instruction: Message, reason: str) -> Message:
    """A node that did not answer (a straggler cut at the deadline, a device that went
    offline or ran out of battery): an error reply, as Flower reports a failed node."""
    return Message(Error(code=NOT_DELIVERED, reason=reason), reply_to=instruction)


def config_of(message: Message) -> ConfigRecord:
    """The ConfigRecord a train or evaluate message carries (empty when none)."""
    records = list(message.content.config_records.values())
    return records[0] if records else ConfigRecord()


def arrays_of(message: Message) -> ArrayRecord | None:
    """The ArrayRecord a message carries, if any."""
    records = list(message.content.array_records.values())
    return records[0] if records else None


class TooFewNodes(Exception):
    """Flower's node sampling would wait in real time for more nodes to connect."""


class SimulatedGrid(Grid):
    """The Grid a strategy samples from: simfl's devices available at this instant of
    simulated time, node id = device index. It answers at once and never waits; the
    engine, not the grid, carries the messages (in simulated time, over the radio)."""

    def __init__(self, available: np.ndarray) -> None:
        self._nodes = [int(i) for i in np.flatnonzero(available)]
        self._run: Any = None

    def get_node_ids(self) -> Iterable[int]:
        return list(self._nodes)

    def set_run(self, run: Any) -> None:
        self._run = run

    @property
    def run(self) -> Any:
        return self._run

    def create_message(self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str,
                       ttl: float | None = None) -> Message:
        return Message(content=content, message_type=message_type, dst_node_id=dst_node_id, group_id=group_id,
                       ttl=ttl)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        raise _unsupported("push_messages")

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        raise _unsupported("pull_messages")

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        raise _unsupported("send_and_receive")


def _unsupported(method: str) -> PolicyError:
    return PolicyError(f"the strategy called grid.{method}(); in simfl the engine delivers a strategy's messages in "
                       "simulated time (configure_train returns them, aggregate_train receives the replies), so a "
                       "strategy only lists nodes through the grid (get_node_ids, get_nodes)")


@contextlib.contextmanager
def never_waiting() -> Iterator[None]:
    """Flower's node sampling (strategy_utils.sample_nodes) sleeps in real time until
    enough nodes connect; here that raises TooFewNodes instead, and the engine waits in
    simulated time for more devices to come online."""
    real = strategy_utils.sleep

    def refuse(_seconds: object) -> None:
        raise TooFewNodes

    strategy_utils.sleep = refuse
    try:
        yield
    finally:
        strategy_utils.sleep = real


__all__ = ["NOT_DELIVERED", "SimulatedGrid", "TooFewNodes", "arrays_of", "config_of", "ensure_identity",
           "error_reply", "evaluation_reply", "from_array_record", "never_waiting", "to_array_record", "update_reply"]
