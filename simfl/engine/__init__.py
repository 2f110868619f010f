"""The SimPy engine: one environment for the whole run (`run`, simulation.py).

A long-lived process per device takes its jobs from an inbox; a job is "receive the global
model (if the cell has a modelled downlink), compute for tau*omega*(D_loc+D_gen)/f
seconds (eq. 6), upload S bits on the sub-band at the power the round plan gives (eqs.
7-9)", its course computed by simfl.jobs when it is dispatched (dispatch.py). A device
stops short when it goes offline or its battery empties during the job (its energy
until then counts, its update is lost); the server cuts at the deadline T_max whoever is
still busy (a straggler).

The server process is synchronous rounds (synchronous.py) or, in FedBuff and FedAsync,
arrivals aggregated as they come (asynchronous.py), with the same jobs, accounting and
hooks. The engine asks a Trainer for accuracy; it knows nothing of torch, and of a
policy only its hooks. Everything a run carries from one round to the next is in an
`EngineState` (records.py: simulated time, model version, totals, every device's
battery, availability, position and fading state), so a run resumed from one continues
bit for bit.
"""

from simfl.engine.records import DeviceRecord, EngineState, RoundRecord
from simfl.engine.simulation import run

__all__ = ["DeviceRecord", "EngineState", "RoundRecord", "run"]
