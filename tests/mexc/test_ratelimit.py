"""The client-side rate limiter, in virtual time (autojump_clock): windows, fairness, backoff."""

from __future__ import annotations

import pytest
import trio

from adapters.mexc.config import MexcConfig
from adapters.mexc.ratelimit import RateLimiter
from engine.clock import TrioClock


async def test_sliding_window_spaces_requests(autojump_clock: trio.abc.Clock) -> None:
    limiter = RateLimiter({"k": (3, 2.0)})
    times = []
    for _ in range(7):
        await limiter.acquire("k")
        times.append(trio.current_time())
    assert times == [0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 4.0]


async def test_window_slides_rather_than_resets(autojump_clock: trio.abc.Clock) -> None:
    limiter = RateLimiter({"k": (2, 1.0)})
    await limiter.acquire("k")
    await trio.sleep(0.75)
    await limiter.acquire("k")
    times = []
    for _ in range(2):
        await limiter.acquire("k")
        times.append(trio.current_time())
    assert times == [1.0, 1.75]


async def test_keys_are_independent_and_default_applies(autojump_clock: trio.abc.Clock) -> None:
    limiter = RateLimiter({"default": (1, 5.0), "fast": (10, 1.0)})
    await limiter.acquire("a")
    await limiter.acquire("b")
    for _ in range(10):
        await limiter.acquire("fast")
    assert trio.current_time() == 0.0
    await limiter.acquire("a")
    assert trio.current_time() == 5.0
    stats = limiter.statistics()
    assert stats["a"].limit == (1, 5.0)
    assert stats["a"].in_window == 1
    assert stats["fast"].in_window == 0


async def test_concurrent_waiters_are_served_in_order(autojump_clock: trio.abc.Clock) -> None:
    limiter = RateLimiter({"k": (1, 1.0)})
    served: list[tuple[int, float]] = []

    async def client(i: int) -> None:
        await trio.sleep(i * 0.001)  # arrive in order 0, 1, 2, 3
        await limiter.acquire("k")
        served.append((i, trio.current_time()))

    async with trio.open_nursery() as nursery:
        for i in range(4):
            nursery.start_soon(client, i)
        await trio.sleep(0.01)
        assert limiter.statistics()["k"].waiting == 3
    assert [i for i, _ in served] == [0, 1, 2, 3]
    assert [t for _, t in served] == pytest.approx([0.0, 1.0, 2.0, 3.0])


async def test_backoff_doubles_and_is_capped(autojump_clock: trio.abc.Clock) -> None:
    limiter = RateLimiter({"k": (100, 1.0)}, backoff_initial_s=1.0, backoff_max_s=5.0)
    pauses = []
    for _ in range(5):
        pauses.append(limiter.note_rate_limited("k"))
        start = trio.current_time()
        await limiter.acquire("k")
        assert trio.current_time() - start == pytest.approx(pauses[-1])
    assert pauses == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert limiter.statistics()["k"].consecutive_hits == 5
    limiter.note_success("k")
    assert limiter.note_rate_limited("k") == 1.0


async def test_retry_after_can_lengthen_the_pause(autojump_clock: trio.abc.Clock) -> None:
    limiter = RateLimiter(backoff_initial_s=1.0, backoff_max_s=30.0)
    assert limiter.note_rate_limited("k", retry_after_s=12.0) == 12.0
    assert limiter.note_rate_limited("k", retry_after_s=0.5) == 2.0
    await limiter.acquire("k")
    assert trio.current_time() == pytest.approx(12.0)


async def test_from_config_with_an_injected_wall_clock(autojump_clock: trio.abc.Clock) -> None:
    clock = TrioClock()
    limiter = RateLimiter.from_config(MexcConfig(), now=lambda: clock.time_ns() / 1e9)
    times = []
    for _ in range(5):
        await limiter.acquire("order_create")  # 4 per 2 s
        times.append(trio.current_time())
    assert times[:4] == [0.0] * 4
    assert times[4] == pytest.approx(2.0)


def test_backoff_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        RateLimiter(backoff_initial_s=0)
    with pytest.raises(ValueError):
        RateLimiter(backoff_initial_s=2, backoff_max_s=1)
