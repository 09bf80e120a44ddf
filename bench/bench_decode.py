"""WS frame decode rate beside ``orjson.loads`` alone on the same frames (dev tool).

Measured: :func:`adapters.mexc.codecs.decode_ws` turning realistic frames into model values
(``push.depth`` -> ``BookDelta`` with 20 levels a side, about 800 bytes; ``push.ticker`` ->
``Ticker``). Floor: ``orjson.loads`` of the very same frames, interleaved with the measured
runs. The frames are generated from a seeded random walk (prices on a 0.1 tick, lognormal
volumes, so they vary as a live stream does), each frame is decoded once per repetition,
and the codec's conversion memo is emptied before every repetition, so a cold start is
paid as it would be on a fresh connection.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import orjson

from adapters.mexc.codecs import _fields, decode_ws
from bench.common import Case, Report, median_seconds_interleaved, per_second

SYMBOL = "BTC_USDT"
TARGET_RATIO = 0.5
COUNTS = {False: 20_000, True: 3_000}
REPEAT = {False: 5, True: 3}


def depth_frames(n: int, seed: int = 7) -> list[bytes]:
    """``n`` merged ``push.depth`` frames, 20 levels a side (~800 bytes each)."""
    rng = random.Random(seed)
    mid = 1_087_790  # in ticks of 0.1
    version = 28_111_438_870
    frames = []
    for i in range(n):
        mid += rng.randint(-3, 3)

        def level(tick: int, rng: random.Random = rng) -> list[float | int]:
            vol = 0 if rng.random() < 0.1 else max(1, int(rng.lognormvariate(8.5, 1.5)))
            return [tick / 10, vol, rng.randint(1, 12) if vol else 0]

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


def _cold(frames: Sequence[bytes]) -> Callable[[], Sequence[bytes]]:
    def setup() -> Sequence[bytes]:
        _fields.clear_memos()
        return frames

    return setup


def _decode_all(frames: Sequence[bytes]) -> None:
    decode = decode_ws
    for frame in frames:
        decode(frame)


def _loads_all(frames: Sequence[bytes]) -> None:
    loads = orjson.loads
    for frame in frames:
        loads(frame)


def _measure(report: Report, name: str, frames: list[bytes], repeat: int, what: str) -> None:
    check = decode_ws(frames[0])
    assert check.messages, f"{name}: the benchmark frame did not decode into a message"
    times = median_seconds_interleaved(
        {
            "floor": Case(_loads_all, _cold(frames)),
            "decode": Case(_decode_all, _cold(frames)),
        },
        repeat=repeat,
    )
    size = sum(map(len, frames)) // len(frames)
    report.add(
        f"decode.{name}",
        per_second(len(frames), times["decode"]),
        "msg/s",
        per_second(len(frames), times["floor"]),
        target_ratio=TARGET_RATIO,
        note=f"decode_ws -> {what}, {size}-byte frames, floor = orjson.loads alone; "
        f"median of {repeat}, {len(frames)} distinct frames",
    )


def run(report: Report, quick: bool) -> None:
    """Depth and ticker decode rates, each beside its orjson floor."""
    n = COUNTS[quick]
    repeat = REPEAT[quick]
    _measure(report, "push_depth", depth_frames(n), repeat, "BookDelta (20+20 levels)")
    _measure(report, "push_ticker", ticker_frames(n), repeat, "Ticker")
