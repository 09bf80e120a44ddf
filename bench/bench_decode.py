"""WS frame decode rate beside ``orjson.loads`` alone on the same frames (dev tool).

Measured: :func:`adapters.mexc.codecs.decode_ws` turning realistic frames into model values
(``push.depth`` -> ``BookDelta`` with 20 levels a side, about 870 bytes; ``push.ticker`` ->
``Ticker``, about 460 bytes). Floor: ``orjson.loads`` of the very same frames, interleaved
with the measured runs (:func:`bench.common.median_seconds_interleaved`).

The frames come from seeded random walks, so they vary as a live stream does and the
codec's conversion memos (:mod:`adapters.mexc.codecs._fields`) are not flattered:

* depth: a book on a 0.1 tick whose mid moves -3..+3 ticks a frame; every frame shows the
  20 ticks each side of the mid. A level keeps its volume and order count until it is
  re-drawn, which happens to each visible level with probability :data:`CHANGE` per frame
  (a re-draw deletes the level one time in ten, otherwise takes a lognormal volume of
  median ~4,900 contracts and 1-12 orders). ``fresh_volumes`` re-draws every level in every
  frame, the worst case for any value cache (almost every volume is new);
* ticker: last price on a 0.1 tick moving -5..+5 ticks a second, growing 24 h volume and
  amount, jittered index/fair prices, as MEXC pushes it once a second.

Two states of the memos, each row with its own floor and ratio:

* ``cold``: memos emptied, then the first :data:`COLD` frames of a stream (a fresh start);
* steady (no suffix): memos emptied and warmed on the first part of the stream (untimed),
  then the next frames, never seen before, are timed. Every repetition re-does the warm-up
  so no repetition decodes frames the memos have already met.

Last measured (medians of six runs on the shared 2-core machine): depth 0.23 cold, 0.27
steady, 0.25 with fresh volumes; ticker 0.16 cold, 0.19 steady. The 0.5 target is not met;
``docs/mexc-codecs.md`` (Performance) breaks a frame's cost down and says why.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import orjson

from adapters.mexc.codecs import _fields, decode_ws
from bench.common import Case, Report, median_seconds_interleaved, per_second

SYMBOL = "BTC_USDT"
TARGET_RATIO = 0.5
CHANGE = 0.3
"""Probability that a visible depth level is re-drawn between two frames."""
STEADY = {False: 20_000, True: 3_000}
"""Frames timed in steady state (after as many warm-up frames)."""
COLD = 1_000
"""Frames timed from a cold start."""
REPEAT = {False: 7, True: 3}

Frames = Sequence[bytes]


def depth_frames(n: int, seed: int = 7, *, change: float = CHANGE) -> list[bytes]:
    """``n`` merged ``push.depth`` frames, 20 levels a side (~870 bytes each)."""
    rng = random.Random(seed)
    mid = 1_087_790  # in ticks of 0.1
    version = 28_111_438_870
    book: dict[int, tuple[int, int]] = {}

    def draw() -> tuple[int, int]:
        if rng.random() < 0.1:
            return 0, 0
        return max(1, int(rng.lognormvariate(8.5, 1.5))), rng.randint(1, 12)

    def level(tick: int) -> list[float | int]:
        state = book.get(tick)
        if state is None or rng.random() < change:
            state = book[tick] = draw()
        return [tick / 10, *state]

    frames = []
    for i in range(n):
        mid += rng.randint(-3, 3)
        asks = [level(mid + 1 + k) for k in range(20)]
        bids = [level(mid - k) for k in range(20)]
        begin, version = version + 1, version + rng.randint(1, 4)
        data = {"asks": asks, "bids": bids, "begin": begin, "end": version, "version": version}
        frames.append(
            orjson.dumps(
                {
                    "channel": "push.depth",
                    "data": data,
                    "symbol": SYMBOL,
                    "ts": 1_767_225_600_000 + i,
                }
            )
        )
    return frames


def ticker_frames(n: int, seed: int = 11) -> list[bytes]:
    """``n`` ``push.ticker`` frames as MEXC sends them once a second."""
    rng = random.Random(seed)
    last = 1_091_671  # ticks of 0.1
    volume = 954_830_625
    amount = 10_374_579_341.00211
    frames = []
    for i in range(n):
        last += rng.randint(-5, 5)
        trade = rng.randint(1, 3_000)
        volume += trade
        amount = round(amount + trade * last / 100_000, 5)
        data = {
            "contractId": 10,
            "symbol": SYMBOL,
            "lastPrice": last / 10,
            "bid1": (last - 1) / 10,
            "ask1": last / 10,
            "volume24": volume,
            "amount24": amount,
            "holdVol": 381_485_808 + rng.randint(-50_000, 50_000),
            "lower24Price": 106_226,
            "high24Price": 111_553.8,
            "riseFallRate": round(rng.uniform(-0.05, 0.05), 4),
            "riseFallValue": round(rng.uniform(-1500, 1500), 1),
            "indexPrice": (last + rng.randint(-20, 20)) / 10,
            "fairPrice": (last + rng.randint(-5, 5)) / 10,
            "fundingRate": 0.0001,
            "maxBidPrice": 120_158.5,
            "minAskPrice": 98_311.5,
            "timestamp": 1_767_225_600_000 + i * 1_000,
        }
        frames.append(
            orjson.dumps(
                {
                    "symbol": SYMBOL,
                    "data": data,
                    "channel": "push.ticker",
                    "ts": 1_767_225_600_000 + i * 1_000,
                }
            )
        )
    return frames


def _decode_all(frames: Frames) -> None:
    decode = decode_ws
    for frame in frames:
        decode(frame)


def _loads_all(frames: Frames) -> None:
    loads = orjson.loads
    for frame in frames:
        loads(frame)


def _after(warm: Frames, timed: Frames) -> Callable[[], Frames]:
    """An untimed setup: empty the memos, decode ``warm`` (may be empty), hand over ``timed``."""

    def setup() -> Frames:
        _fields.clear_memos()
        _decode_all(warm)
        return timed

    return setup


def _measure(
    report: Report, name: str, warm: Frames, timed: Frames, repeat: int, what: str
) -> None:
    assert decode_ws(timed[0]).messages, f"{name}: the benchmark frame decoded into nothing"
    setup = _after(warm, timed)
    times = median_seconds_interleaved(
        {"floor": Case(_loads_all, setup), "decode": Case(_decode_all, setup)}, repeat=repeat
    )
    size = sum(map(len, timed)) // len(timed)
    state = f"after {len(warm)} warm-up frames" if warm else "memos empty (cold start)"
    report.add(
        f"decode.{name}",
        per_second(len(timed), times["decode"]),
        "msg/s",
        per_second(len(timed), times["floor"]),
        target_ratio=TARGET_RATIO,
        note=f"decode_ws -> {what}, {size}-byte frames, {len(timed)} distinct frames, "
        f"{state}; floor = orjson.loads alone on the same frames; median of {repeat}",
    )


def run(report: Report, quick: bool) -> None:
    """Depth and ticker decode rates, cold and steady, each beside its orjson floor."""
    n = STEADY[quick]
    repeat = REPEAT[quick]
    depth = depth_frames(2 * n)
    what = f"BookDelta (20+20 levels, {CHANGE:.0%} re-drawn a frame)"
    _measure(report, "push_depth.cold", (), depth[:COLD], repeat, what)
    _measure(report, "push_depth", depth[:n], depth[n:], repeat, what)
    fresh = depth_frames(2 * n, change=1.0)
    _measure(
        report, "push_depth.fresh_volumes", fresh[:n], fresh[n:], repeat,
        "BookDelta (20+20 levels, all re-drawn every frame)",
    )  # fmt: skip
    ticker = ticker_frames(2 * n)
    _measure(report, "push_ticker.cold", (), ticker[:COLD], repeat, "Ticker")
    _measure(report, "push_ticker", ticker[:n], ticker[n:], repeat, "Ticker")
