"""Client-side rate limiting per rate key, with backoff after 510/429 (shell: trio).

Theory of operation: each rate key (one per endpoint, see :mod:`adapters.mexc.endpoints`)
has a sliding-window log of the monotonic times of its last ``count`` requests. A request
may go when fewer than ``count`` of them lie within the last ``period_s`` seconds; otherwise
:meth:`RateLimiter.acquire` sleeps until the oldest leaves the window. Waiters on a key are
served first come, first served (a fair ``trio.Lock`` per key).

When the exchange still says "too frequent" (510, HTTP 429, 2037) the client calls
:meth:`RateLimiter.note_rate_limited`: the key is then blocked for a pause that starts at
``backoff_initial_s`` and doubles with each consecutive hit up to ``backoff_max_s`` (or for
a longer ``Retry-After``). A successful answer resets the streak.

Time is monotonic seconds from an injected function, trio's own clock by default, so tests
run under ``autojump_clock`` without real sleeping. An injected function must advance when
trio sleeps (e.g. wall time from :class:`engine.clock.TrioClock`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping

import trio
from attrs import define, frozen

from adapters.mexc.config import DEFAULT_RATE_LIMIT, MexcConfig, RateLimit

__all__ = ["KeyStatistics", "RateLimiter"]


@frozen
class KeyStatistics:
    """A snapshot of one rate key."""

    key: str
    limit: RateLimit
    in_window: int
    blocked_until: float
    consecutive_hits: int
    waiting: int


@define
class _KeyState:
    limit: RateLimit
    lock: trio.Lock
    times: deque[float]
    blocked_until: float = float("-inf")
    hits: int = 0
    waiting: int = 0


class RateLimiter:
    """Spaces requests per rate key to ``(count, period_s)`` limits and backs off on 510/429."""

    def __init__(
        self,
        limits: Mapping[str, RateLimit] | None = None,
        *,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 30.0,
        now: Callable[[], float] = trio.current_time,
    ) -> None:
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise ValueError("backoff needs 0 < backoff_initial_s <= backoff_max_s")
        self._limits = dict(limits or {})
        self._default = self._limits.get("default", DEFAULT_RATE_LIMIT)
        self._backoff_initial = backoff_initial_s
        self._backoff_max = backoff_max_s
        self._now = now
        self._keys: dict[str, _KeyState] = {}

    @classmethod
    def from_config(
        cls, config: MexcConfig, *, now: Callable[[], float] = trio.current_time
    ) -> RateLimiter:
        """A limiter with the config's rate limits and backoff."""
        return cls(
            config.rate_limits,
            backoff_initial_s=config.backoff_initial_s,
            backoff_max_s=config.backoff_max_s,
            now=now,
        )

    def _state(self, key: str) -> _KeyState:
        state = self._keys.get(key)
        if state is None:
            limit = self._limits.get(key, self._default)
            state = _KeyState(limit, trio.Lock(), deque(maxlen=limit[0]))
            self._keys[key] = state
        return state

    async def _sleep_until(self, deadline: float) -> None:
        if self._now is trio.current_time:
            await trio.sleep_until(deadline)
        else:
            await trio.sleep(max(0.0, deadline - self._now()))

    async def acquire(self, key: str) -> None:
        """Wait until a request on ``key`` is allowed, and count it."""
        state = self._state(key)
        count, period = state.limit
        state.waiting += 1
        try:
            async with state.lock:
                while True:
                    now = self._now()
                    while state.times and state.times[0] + period <= now:
                        state.times.popleft()
                    ready_at = state.blocked_until
                    if len(state.times) >= count:
                        ready_at = max(ready_at, state.times[0] + period)
                    if ready_at <= now:
                        state.times.append(now)
                        return
                    await self._sleep_until(ready_at)
        finally:
            state.waiting -= 1

    def note_rate_limited(self, key: str, retry_after_s: float | None = None) -> float:
        """Record a "too frequent" answer on ``key``; returns the pause imposed (seconds)."""
        state = self._state(key)
        state.hits += 1
        pause = min(self._backoff_max, self._backoff_initial * 2.0 ** min(state.hits - 1, 64))
        if retry_after_s is not None and retry_after_s > pause:
            pause = retry_after_s
        state.blocked_until = max(state.blocked_until, self._now() + pause)
        return pause

    def note_success(self, key: str) -> None:
        """Record an accepted request on ``key``: the backoff streak starts over."""
        state = self._keys.get(key)
        if state is not None:
            state.hits = 0

    def statistics(self) -> dict[str, KeyStatistics]:
        """A snapshot of every key used so far."""
        now = self._now()
        return {
            key: KeyStatistics(
                key=key,
                limit=state.limit,
                in_window=sum(1 for t in state.times if t + state.limit[1] > now),
                blocked_until=state.blocked_until,
                consecutive_hits=state.hits,
                waiting=state.waiting,
            )
            for key, state in self._keys.items()
        }
