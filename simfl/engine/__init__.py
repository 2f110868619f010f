"""The SimPy engine: one environment for the whole run.

A long-lived process per device waits for jobs in its inbox; a job is "receive the global
model (if the cell has a modelled downlink), compute for tau*omega*(D_loc+D_gen)/f
seconds (eq. 6), upload S bits on the sub-band at the power the round plan gives (eqs.
7-9)". Finished updates travel to the server through a `simpy.Store`, each carrying the
model version it was computed from. A device stops short when it goes offline or its
battery empties during the job (its energy until then counts, its update is lost); the
server cuts at the deadline T_max whoever is still busy (a straggler).

The server process plays synchronous rounds: observe the network (positions, serving
cells, this round's fading, who is online), let the policy select the participants and
set their resources, dispatch the jobs, collect the updates until all have arrived or the
deadline passes, and aggregate them through the policy's hook. The engine asks a Trainer
for accuracy; it knows nothing of torch, and of a policy only its hooks. In the
asynchronous modes (FedBuff, FedAsync) `simfl.asynchronous.AsyncServer` is the server
process instead, with the same jobs, accounting and hooks.

Everything a run carries from one round to the next is in an `EngineState` (simulated
time, model version, totals, every device's battery, availability, position and fading
state), so a run resumed from one continues bit for bit.
"""

from simfl.engine.records import DeviceRecord, EngineState, RoundRecord
from simfl.engine.simulation import run

__all__ = ["DeviceRecord", "EngineState", "RoundRecord", "run"]
