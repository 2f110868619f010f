"""simfl.progress: what a long step without a count prints while it runs."""

from __future__ import annotations

import io
import time

import pytest

from simfl.progress import Heartbeat, wall


@pytest.mark.parametrize("seconds, says", [(0.4, "0 s"), (42.4, "42 s"), (153.2, "2 min 33 s"), (600, "10 min 00 s"),
                                           (3899, "1 h 04 min")])
def test_wall_times_read_as_people_say_them(seconds, says):
    assert wall(seconds) == says


def test_a_long_step_says_what_it_does_that_it_is_alive_and_how_long_it_took():
    stream = io.StringIO()
    with Heartbeat(stream, "[tfl] planning for 1,000,000 devices", quiet_s=0.05, every_s=0.1):
        time.sleep(0.6)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[tfl] planning for 1,000,000 devices ..."
    assert len(lines) >= 3 and all(line.endswith(" s so far") for line in lines[1:-1])
    assert lines[-1] == "[tfl] planning for 1,000,000 devices: done in 1 s"


def test_a_short_step_prints_nothing_and_a_failed_one_no_done_line():
    stream = io.StringIO()
    with Heartbeat(stream, "building", quiet_s=5.0):
        pass
    assert stream.getvalue() == ""
    with pytest.raises(ValueError), Heartbeat(stream, "building", quiet_s=0.01, every_s=10.0):
        time.sleep(0.1)
        raise ValueError("a bad plan")
    assert stream.getvalue() == "building ...\n"
