"""The SimPy engine: one environment for the whole run (`run`, simulation.py).

Each job is a process of its own (job.py), the same in every mode: "receive the global
model (if the cell has a modelled downlink), compute for tau*omega*(D_loc+D_gen)/f
seconds (eq. 6), upload S bits on the sub-band at the power the round plan gives (eqs.
7-9)", the upload a flow whose rate may change while it runs. Events stop it short: its
device going offline, its battery emptying (its energy until then counts, its update is
lost) and the server's deadline T_max (a straggler). Jobs report to the server through
one Store; an idle device has no process.

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
