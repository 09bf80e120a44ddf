"""Clocks (shell): the one seam through which the engine and adapters read time.

:class:`SystemClock` reads the wall clock. :class:`TrioClock` derives wall time from trio's
clock plus a fixed epoch, so that under ``autojump_clock`` (virtual time) every timestamp,
ping and timeout moves with the virtual clock. :class:`FixedClock` is for pure unit tests.
"""

from __future__ import annotations

import time
from typing import Protocol

import trio

__all__ = ["Clock", "FixedClock", "SystemClock", "TrioClock"]


class Clock(Protocol):
    """Something that tells the time in nanoseconds since the Unix epoch."""

    def time_ns(self) -> int:
        """Wall time, ns since the epoch."""
        ...

    def time_ms(self) -> int:
        """Wall time, ms since the epoch."""
        ...


class SystemClock:
    """The real wall clock."""

    def time_ns(self) -> int:
        """Wall time, ns since the epoch."""
        return time.time_ns()

    def time_ms(self) -> int:
        """Wall time, ms since the epoch."""
        return time.time_ns() // 1_000_000


class TrioClock:
    """Wall time = ``epoch_ns`` + trio's current (possibly virtual) time."""

    def __init__(self, epoch_ns: int = 1_767_225_600_000_000_000) -> None:
        self.epoch_ns = epoch_ns

    def time_ns(self) -> int:
        """Wall time, ns since the epoch; must be called inside ``trio.run``."""
        return self.epoch_ns + int(trio.current_time() * 1_000_000_000)

    def time_ms(self) -> int:
        """Wall time, ms since the epoch; must be called inside ``trio.run``."""
        return self.time_ns() // 1_000_000


class FixedClock:
    """A clock that only moves when told to (``advance``)."""

    def __init__(self, now_ns: int = 1_767_225_600_000_000_000) -> None:
        self.now_ns = now_ns

    def time_ns(self) -> int:
        """The fixed time, ns."""
        return self.now_ns

    def time_ms(self) -> int:
        """The fixed time, ms."""
        return self.now_ns // 1_000_000

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now_ns += int(seconds * 1_000_000_000)
