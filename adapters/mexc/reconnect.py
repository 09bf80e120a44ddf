"""What the long-lived MEXC streams share (shell): the reconnect backoff, the ``emit`` seam, and
journaling connects and disconnects.

:class:`Backoff` yields the delays between connection attempts: ``initial_s`` doubling up to
``max_s``, each passed through a jitter so that many clients cut off together do not come back
together. Time is never read here; the caller sleeps in trio time (virtual under
``autojump_clock``).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from contextlib import suppress

import trio

from engine.clock import Clock
from engine.events import Connected, Disconnected, EngineEvent
from engine.sequencer import Input, engine_input

__all__ = ["Backoff", "Emit", "Jitter", "JitterSpec", "StreamJournal", "make_jitter"]

Emit = Callable[[Input], Awaitable[None]]
"""``await emit(item)``: hand one input to the sequencer (in order; may wait for room)."""

Jitter = Callable[[float], float]
"""``jitter(delay) -> delay actually slept``."""

JitterSpec = random.Random | Jitter | None
"""A seeded ``random.Random`` (delay scaled by a factor in [0.8, 1.0)), a callable taking the
nominal delay and returning the one to sleep, or None for a fresh unseeded ``Random``."""

JITTER_SPREAD = 0.2
"""With a ``random.Random`` jitter, a delay is shortened by up to this fraction (never
lengthened, so ``max_s`` stays an upper bound)."""


def make_jitter(spec: JitterSpec) -> Jitter:
    """The jitter function for ``spec`` (see :data:`JitterSpec`)."""
    if spec is None:
        spec = random.Random()
    if isinstance(spec, random.Random):
        rng = spec
        return lambda delay: delay * (1.0 - JITTER_SPREAD * rng.random())
    if not callable(spec):
        raise TypeError(f"jitter must be a random.Random or a callable, got {spec!r}")
    return spec


class Backoff:
    """Exponential backoff: ``initial_s``, then doubling, capped at ``max_s``, jittered.

    ``next()`` returns the delay to sleep before the next attempt and moves on; ``reset()``
    starts again from ``initial_s`` (after a connection proved healthy).
    """

    def __init__(self, initial_s: float, max_s: float, jitter: JitterSpec = None) -> None:
        if not 0 < initial_s <= max_s:
            raise ValueError(f"need 0 < initial_s <= max_s, got {initial_s!r}, {max_s!r}")
        self.initial_s = float(initial_s)
        self.max_s = float(max_s)
        self._jitter = make_jitter(jitter)
        self._nominal = self.initial_s
        self.attempts = 0

    def next(self) -> float:
        """The (jittered) delay before the next attempt."""
        delay = self._nominal
        self._nominal = min(self._nominal * 2, self.max_s)
        self.attempts += 1
        return max(0.0, float(self._jitter(delay)))

    def reset(self) -> None:
        """Back to ``initial_s``."""
        self._nominal = self.initial_s
        self.attempts = 0


class StreamJournal:
    """Journals the engine events of one stream owner (connects, disconnects, its own events).

    ``final_disconnect`` is for a connection ended by cancellation (shutdown): it tries, for
    at most a second and shielded from the cancellation, to journal the disconnect, and gives
    up quietly if the sequencer is gone.
    """

    def __init__(self, emit: Emit, clock: Clock, url: str) -> None:
        self.emit = emit
        self.clock = clock
        self.url = url

    async def event(self, event: EngineEvent, *, stream: str | None = None) -> None:
        """Journal one engine-made event."""
        await self.emit(engine_input(event, stream=stream))

    async def connected(self, conn_id: str) -> None:
        """Journal that ``conn_id`` opened."""
        await self.event(Connected(conn_id, self.url, self.clock.time_ns()))

    async def disconnected(self, conn_id: str, reason: str) -> None:
        """Journal that ``conn_id`` closed or never opened, and why."""
        await self.event(Disconnected(conn_id, reason[:300], self.clock.time_ns()))

    async def final_disconnect(self, conn_id: str, reason: str) -> None:
        """Best effort, shielded, bounded: journal a disconnect during shutdown."""
        with (
            trio.CancelScope(shield=True),
            trio.move_on_after(1.0),
            suppress(trio.ClosedResourceError, trio.BrokenResourceError),
        ):
            await self.disconnected(conn_id, reason)
