"""What the engine writes and keeps: a device's job (a row of events.csv), a round or
aggregation (a row of rounds.csv), and the state a run resumes from."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DeviceRecord:
    """What one selected device did in one round (a row of events.csv)."""

    round: int
    device: int
    cell: int
    gain: float  # channel power gain at the upload's start
    rate_bps: float  # bits sent over the upload's duration: eq. (7) at `gain` when the channel held still
    compute_start_s: float
    compute_end_s: float
    upload_start_s: float
    upload_end_s: float
    e_cmp_j: float
    e_com_j: float
    bits_sent: float
    straggler: bool
    outcome: str  # ok | straggler (cut at T_max) | offline (went offline) | battery (emptied)
    download_start_s: float
    battery_j: float  # left after the round; inf when mains powered
    version: int  # the global model version the device started from
    staleness: int = 0  # versions between its base and the model it was aggregated into; -1: not aggregated
    b_hz: float = 0.0  # the sub-band it was given
    p_w: float = 0.0  # its transmit power
    handovers: int = 0  # changes of serving cell during the job
    handover_s: float = math.inf  # when the first of them happened (inf: none)
    paused_s: float = 0.0  # time the upload sent nothing, interrupted by handovers
    sinr_db: float = math.nan  # its SINR averaged over its sending time (nan: it never sent)
    interference_w: float = math.nan  # the mean interference power at its base station over that time
    distance_m: float = math.nan  # from its serving base station, where `gain` was taken


@dataclass(frozen=True)
class RoundRecord:
    """One round as the server saw it (a row of rounds.csv)."""

    round: int
    start_s: float
    end_s: float
    duration_s: float
    energy_j: float
    cum_energy_j: float
    uplink_bits: float
    cum_uplink_bits: float
    participants: int  # updates aggregated
    stragglers: int  # cut at the deadline
    accuracy: float
    loss: float
    available: int  # online with battery left at the round's start
    selected: int
    dropouts: int  # went offline during their job
    depleted: int  # battery emptied during their job
    version: int  # the global model version after this round


@dataclass(frozen=True)
class EngineState:
    """Everything a run carries from one round to the next: a snapshot to resume from.

    `network` is the dynamics' state (`Network.state_dict`) and `policy` what the policy
    remembers (`Policy.state_dict`); both empty before the first round.
    """

    next_round: int = 0
    time_s: float = 0.0
    cum_energy_j: float = 0.0
    cum_uplink_bits: float = 0.0
    version: int = 0
    network: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)  # Policy.state_dict()
    asynchronous: dict[str, Any] = field(default_factory=dict)  # FedBuff/FedAsync: jobs in flight, buffer
    synthesised: list[int] = field(default_factory=list)  # devices whose synthetic images the server has made
    # The base models that jobs in flight and buffered updates started from, by version
    # (the trainer's own tensors: saved beside the JSON in the checkpoint, not in it).
    models: dict[int, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self, arrays: dict[str, np.ndarray] | None = None) -> str:
        """The snapshot as JSON. Given `arrays`, the dynamics' numeric arrays are put there
        instead, each named in the JSON by its key: a checkpoint keeps them as binary
        beside the text, where a million devices' state written as JSON lists would be a
        hundred MB of digits every round."""
        data = asdict(replace(self, models={}))
        del data["models"]
        if arrays is not None:
            data["network"] = _set_aside(data["network"], arrays)
        return json.dumps(data, default=_plain)

    @staticmethod
    def from_json(text: str, models: dict[int, Any] | None = None,
                  arrays: dict[str, np.ndarray] | None = None) -> EngineState:
        """The snapshot `to_json` wrote; `arrays` are the ones it set aside."""
        def restore(obj: dict) -> Any:
            return arrays[obj[ARRAY_KEY]] if arrays and len(obj) == 1 and ARRAY_KEY in obj else obj

        return EngineState(**json.loads(text, object_hook=restore), models=dict(models or {}))


ARRAY_KEY = "__array__"  # {"__array__": key}: an array `to_json` set aside under `key`


def _set_aside(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """`value` with its numeric arrays moved into `arrays` (under keys in the order met)."""
    if isinstance(value, dict):
        return {k: _set_aside(v, arrays) for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        key = str(len(arrays))
        arrays[key] = value
        return {ARRAY_KEY: key}
    return value


def _plain(value: Any) -> Any:
    """The JSON of what the dynamics keep as arrays: a round's snapshot holds array copies
    (cheap at a million devices), turned into lists only when a checkpoint is written."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
