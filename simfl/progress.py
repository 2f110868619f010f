"""Lines that long steps without a natural count print while they run."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import TextIO


def wall(seconds: float) -> str:
    """A wall time as people read it: 42 s, 2 min 33 s, 1 h 05 min."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Heartbeat:
    """`with Heartbeat(stream, "[tfl] planning 1,000,000 devices"):` prints that line once
    the step has run `quiet_s`, then how long it has run every `every_s`, and at its end
    how long it took; a step over within `quiet_s` prints nothing (a small scenario's
    plan). For steps whose length is not known in advance (a solver's search), so that a
    user sees at once what the program is doing and that it is alive."""

    def __init__(self, stream: TextIO | None, what: str, *, quiet_s: float = 10.0, every_s: float = 30.0) -> None:
        self.stream, self.what, self.quiet_s, self.every_s = stream, what, quiet_s, every_s
        self.spoke = False
        self._done = threading.Event()
        self._lock = threading.Lock()  # the last line waits for a beat being printed
        self._thread: threading.Thread | None = None
        self.started = 0.0

    def __enter__(self) -> Heartbeat:
        self.started = time.monotonic()
        if self.stream is not None:
            self._thread = threading.Thread(target=self._beat, name="simfl-heartbeat", daemon=True)
            self._thread.start()
        return self

    def _beat(self) -> None:
        if self._done.wait(self.quiet_s):
            return
        self._say(f"{self.what} ...")
        while not self._done.wait(self.every_s):
            self._say(f"{self.what}: {wall(time.monotonic() - self.started)} so far")

    def _say(self, line: str) -> None:
        with self._lock:
            if not self._done.is_set():  # nothing after the step's end
                print(line, file=self.stream, flush=True)
                self.spoke = True

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        with self._lock:
            self._done.set()
        if self._thread is not None:
            self._thread.join()
        if self.spoke and kind is None:
            print(f"{self.what}: done in {wall(time.monotonic() - self.started)}", file=self.stream, flush=True)


__all__ = ["Heartbeat", "wall"]
