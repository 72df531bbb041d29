"""Progress of a run: the seconds of each of its stages, and of long streaming passes the rate and
time left, logged at most every few seconds."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


@contextmanager
def stage(timings: dict[str, float], name: str, logger: logging.Logger | None = None) -> Iterator[None]:
    """Time a stage of a run into ``timings[name]`` (seconds) and, given a ``logger`` (the caller's,
    so run.log names the module that ran the stage), log it."""
    started = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - started
    if logger is not None:
        logger.info("%s took %.1f s", name, timings[name])


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else (f"{minutes}m{secs:02d}s" if minutes else f"{secs}s")


class Progress:
    """Call :meth:`advance` after each batch; a line is logged every ``every_s`` seconds:
    ``evaluated 640 of 83,484 images (52.1/s, 26m40s left)``."""

    def __init__(self, total: int, what: str = "evaluated", unit: str = "images", every_s: float = 10.0) -> None:
        self.total, self.what, self.unit, self.every_s = total, what, unit, every_s
        self.done = 0
        self.started = self.last = time.perf_counter()

    def advance(self, count: int) -> None:
        self.done += count
        now = time.perf_counter()
        if now - self.last >= self.every_s and self.done < self.total:
            self.last = now
            log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = (now or time.perf_counter()) - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta = format_duration(left) if left != float("inf") else "unknown"
        return f"{self.what} {self.done:,} of {self.total:,} {self.unit} ({rate:.1f}/s, {eta} left)"
