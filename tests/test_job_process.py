"""One job as a SimPy process against hand computations: the events that stop it (going
offline, an empty battery, the deadline), an upload whose rate changes while it runs, and
the exact instants a resumed job keeps."""

import math

import pytest
import simpy

from simfl.engine.clock import at, delay_to, settled
from simfl.engine.job import Job, job_process
from simfl.jobs import BATTERY, OFFLINE, OK, STRAGGLER

S_BITS = 1_000_000.0


def job(**changes) -> Job:
    """A job dispatched at t = 10 s: 2 s of download, 3 s of compute at 0.5 W, then
    1e6 bits at 250 kbit/s (4 s) at 0.2 W; deadline at 100 s; mains powered, always online."""
    fields = dict(job=0, device=3, base_version=0, repeat=0, cell=0, gain=1e-9, round_fading=1.0, f_hz=1e9, b_hz=1e5, p_w=0.2,
                  rate_bps=250_000.0, model_bits=S_BITS, computing_w=0.5, download_s=2.0, compute_s=3.0,
                  battery_j=math.inf, online_until_s=math.inf, dispatch_s=10.0, deadline_s=100.0)
    fields.update(changes)
    return Job(**fields)


def play(the_job: Job, rates=None, start_s: float = 10.0) -> tuple[Job, float]:
    """Run the job alone; return it and the instant the server got its report."""
    env = simpy.Environment(initial_time=start_s)
    outbox = simpy.Store(env)
    got = []

    def server():
        reported = yield outbox.get()
        got.append(env.now)
        assert reported is the_job

    env.process(job_process(env, the_job, outbox, rates=rates))
    env.process(server())
    env.run()
    return the_job, got[0]


def energy_j(j: Job) -> float:
    return j.computing_w * (j.compute_end_s - j.compute_start_s) + j.p_w * (j.end_s - j.compute_end_s)


def test_a_job_that_nothing_stops_runs_its_three_phases_back_to_back():
    j, reported = play(job())
    assert (j.compute_start_s, j.compute_end_s, j.end_s, j.outcome) == (12.0, 15.0, 19.0, OK)
    assert reported == 19.0
    assert energy_j(j) == pytest.approx(0.5 * 3 + 0.2 * 4)
    assert j.bits_sent(j.end_s) == S_BITS


def test_going_offline_mid_upload_ends_the_job_there_with_the_energy_until_then():
    # offline at 17.5 s: 2.5 s into the 4 s upload; reported at the deadline, when the server gives up
    j, reported = play(job(online_until_s=17.5))
    assert (j.end_s, j.outcome) == (17.5, OFFLINE)
    assert energy_j(j) == pytest.approx(0.5 * 3 + 0.2 * 2.5)
    assert j.bits_sent(j.end_s) == pytest.approx(250_000 * 2.5)
    assert reported == 100.0


def test_going_offline_during_the_download_stops_before_any_computing():
    j, _ = play(job(online_until_s=11.0))
    assert (j.compute_start_s, j.compute_end_s, j.end_s, j.outcome) == (11.0, 11.0, 11.0, OFFLINE)
    assert energy_j(j) == 0.0 and j.bits_sent(j.end_s) == 0.0


def test_a_battery_that_empties_mid_upload_stops_at_what_is_left_over_the_sending_power():
    # 1.5 J computing leaves 0.3 J: at 0.2 W that is 1.5 s of sending, so the job stops at 15 + 1.5
    j, _ = play(job(battery_j=1.8))
    assert (j.end_s, j.outcome) == (16.5, BATTERY)
    assert energy_j(j) == pytest.approx(1.8)


def test_a_battery_that_empties_while_computing_stops_at_its_energy_over_the_computing_power():
    j, _ = play(job(battery_j=1.0))  # 1 J at 0.5 W: 2 s into the computation
    assert (j.compute_end_s, j.end_s, j.outcome) == (14.0, 14.0, BATTERY)


def test_the_deadline_cuts_a_straggler_and_ties_go_to_the_job_then_offline_then_battery():
    j, reported = play(job(deadline_s=18.0))
    assert (j.end_s, j.outcome, reported) == (18.0, STRAGGLER, 18.0)
    assert play(job(online_until_s=19.0))[0].outcome == OK  # the last bit arrives as the device leaves
    assert play(job(online_until_s=16.5, battery_j=1.8))[0].outcome == OFFLINE
    assert play(job(deadline_s=16.5, battery_j=1.8))[0].outcome == BATTERY


class Steps:
    """A rate that changes every `step_s` seconds from `start_s`, through `rates_bps` (the
    last one holding), handed out `per_chunk` steps at a time."""

    def __init__(self, start_s: float, step_s: float, rates_bps: list[float], per_chunk: int = 2) -> None:
        self.start_s, self.step_s, self.rates, self.per_chunk = start_s, step_s, rates_bps, per_chunk

    def chunk(self, j: Job, start_s: float) -> tuple[list[float], list[float], float]:
        k = int((start_s - self.start_s) // self.step_s)
        times = [start_s] + [self.start_s + (k + n) * self.step_s for n in range(1, self.per_chunk + 1)]
        rates = [self.rates[min(k + n, len(self.rates) - 1)] for n in range(self.per_chunk)]
        return times, rates, j.gain

    def track(self, j: Job) -> None:
        pass

    def release(self, j: Job, now: float) -> None:
        pass

    def wake(self, j: Job) -> None:
        return None


def test_a_flow_whose_rate_changes_k_times_ends_when_its_bits_are_sent():
    # from 15 s: 1 s at 100 kbit/s, 1 s at 400 kbit/s, 1 s at 50 kbit/s, then 200 kbit/s:
    # 550 kbit by 18 s, the other 450 kbit take 2.25 s more
    j, reported = play(job(), rates=Steps(15.0, 1.0, [1e5, 4e5, 5e4, 2e5]))
    assert j.outcome == OK
    assert j.end_s == pytest.approx(20.25, abs=1e-12)
    assert reported == j.end_s
    assert j.mean_rate_bps == pytest.approx(S_BITS / 5.25)
    assert energy_j(j) == pytest.approx(0.5 * 3 + 0.2 * 5.25)


def test_a_battery_is_drawn_across_rate_changes():
    # 0.3 J left for sending at 0.2 W: 1.5 s, whatever the rate does meanwhile
    j, _ = play(job(battery_j=1.8), rates=Steps(15.0, 1.0, [1e5, 4e5, 5e4, 2e5], per_chunk=1))
    assert (j.end_s, j.outcome) == (pytest.approx(16.5), BATTERY)
    assert j.bits_sent(j.end_s) == pytest.approx(1e5 + 4e5 * 0.5)


def test_a_job_resumed_mid_upload_ends_at_the_same_instant():
    undisturbed, _ = play(job(dispatch_s=0.1, deadline_s=1e9, download_s=0.0, compute_s=0.7), start_s=0.1)
    resumed = job(dispatch_s=0.1, deadline_s=1e9, download_s=0.0, compute_s=0.7)
    resumed.end_phase(0.1, None)
    resumed.end_phase(0.1 + 0.7, None)  # as its process would have, at the same floats
    later, _ = play(resumed, start_s=2.345678)
    assert later.end_s == undisturbed.end_s and later.outcome == OK


@pytest.mark.parametrize("now, target", [(0.0, 0.3), (0.1, 0.3), (1e9 + 0.1, 1e9 + 0.7), (3.0, 1e12 / 3), (0.7, 0.7)])
def test_at_fires_at_the_exact_float(now, target):
    assert now + delay_to(now, target) == target
    env = simpy.Environment(initial_time=now)
    fired = []
    at(env, target).callbacks.append(lambda e: fired.append(env.now))
    env.run()
    assert fired == [target]


def test_settled_waits_for_every_event_of_the_instant_including_ones_made_meanwhile():
    env = simpy.Environment()
    order = []

    def chain(name, hops):
        yield env.timeout(1.0)
        for _ in range(hops):
            yield env.timeout(0)
        order.append(name)

    def server():
        yield env.timeout(1.0)
        yield from settled(env)
        order.append("server")

    env.process(server())
    env.process(chain("a", 3))
    env.process(chain("b", 0))
    env.run()
    assert order == ["b", "a", "server"]
