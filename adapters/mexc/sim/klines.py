"""Kline (candle) aggregation for every MEXC interval (pure; no clock, no datetime).

One :class:`Klines` per price series (last trade, index, fair) of a symbol keeps the most
recent ``keep`` windows of each interval, updated as prices arrive. Windows are UTC:
fixed-size intervals align to the epoch, ``Week1`` starts on Monday, ``Month1`` on the 1st.
Queries fill windows without trades with flat candles at the previous close, as MEXC does.
"""

from __future__ import annotations

import bisect
from decimal import Decimal

from attrs import define

from adapters.mexc.sim.facts import Candle

__all__ = ["INTERVALS", "Klines", "window_start"]

INTERVALS: dict[str, int] = {
    "Min1": 60,
    "Min5": 300,
    "Min15": 900,
    "Min30": 1800,
    "Min60": 3600,
    "Hour4": 14400,
    "Hour8": 28800,
    "Day1": 86400,
    "Week1": 604800,
    "Month1": 0,
}
"""Interval name to window length in seconds (0: calendar month)."""

_MONDAY_OFFSET = 4 * 86400  # 1970-01-01 was a Thursday; 1970-01-05 a Monday


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """The (year, month, day) of a day count since 1970-01-01."""
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (month <= 2), month, day


def window_start(interval: str, t_s: int) -> int:
    """Start (seconds) of the ``interval`` window containing ``t_s``."""
    length = INTERVALS[interval]
    if interval == "Month1":
        year, month, _ = _civil_from_days(t_s // 86400)
        return _days_from_civil(year, month, 1) * 86400
    if interval == "Week1":
        return (t_s - _MONDAY_OFFSET) // length * length + _MONDAY_OFFSET
    return t_s // length * length


def _next_start(interval: str, start: int) -> int:
    if interval == "Month1":
        year, month, _ = _civil_from_days(start // 86400)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return _days_from_civil(year, month, 1) * 86400
    return start + INTERVALS[interval]


@define
class _Bar:
    open: Decimal
    close: Decimal
    high: Decimal
    low: Decimal
    vol: Decimal
    amount: Decimal


class Klines:
    """Candles of one price series of ``symbol`` for every interval."""

    def __init__(self, symbol: str, keep: int = 2000) -> None:
        self.symbol = symbol
        self.keep = keep
        self._bars: dict[str, dict[int, _Bar]] = {name: {} for name in INTERVALS}

    def record(self, price: Decimal, vol: Decimal, amount: Decimal, ts_ms: int) -> list[Candle]:
        """Add one price (a trade, or a price update with zero volume); return changed candles."""
        t_s = ts_ms // 1000
        changed: list[Candle] = []
        for interval, bars in self._bars.items():
            start = window_start(interval, t_s)
            bar = bars.get(start)
            if bar is None:
                if bars and start < next(reversed(bars)):
                    continue  # older than the newest window: out of order, ignored
                bar = bars[start] = _Bar(price, price, price, price, Decimal(0), Decimal(0))
                if len(bars) > self.keep:
                    del bars[next(iter(bars))]
            bar.close = price
            bar.high = max(bar.high, price)
            bar.low = min(bar.low, price)
            bar.vol += vol
            bar.amount += amount
            changed.append(self._candle(interval, start, bar))
        return changed

    def _candle(self, interval: str, start: int, bar: _Bar) -> Candle:
        return Candle(
            self.symbol,
            interval,
            start,
            bar.open,
            bar.close,
            bar.high,
            bar.low,
            bar.vol,
            bar.amount,
        )

    def candles(
        self, interval: str, start_s: int | None = None, end_s: int | None = None, limit: int = 2000
    ) -> list[Candle]:
        """Candles with window start in ``[start_s, end_s]``, gaps filled, at most ``limit``.

        Without ``start_s``, the most recent ``limit`` windows up to ``end_s`` (or the newest).
        """
        if interval not in INTERVALS:
            raise ValueError(f"unknown kline interval {interval!r}")
        bars = self._bars[interval]
        if not bars:
            return []
        keys = list(bars)
        last = keys[-1] if end_s is None else min(keys[-1], window_start(interval, end_s))
        length = INTERVALS[interval]
        if start_s is not None:
            begin = window_start(interval, start_s)
        elif length:
            begin = max(keys[0], last - (limit - 1) * length)
        else:
            begin = keys[0]
        before = bisect.bisect_left(keys, begin)
        prev = bars[keys[before - 1]] if before else None
        start = begin if prev is not None else max(begin, keys[0])
        out: list[Candle] = []
        while start <= last and len(out) < limit:
            bar = bars.get(start)
            if bar is None and prev is not None:
                c = prev.close
                bar = _Bar(c, c, c, c, Decimal(0), Decimal(0))
            if bar is not None:
                out.append(self._candle(interval, start, bar))
                prev = bar
            start = _next_start(interval, start)
        return out[-limit:]

    def latest(self) -> list[Candle]:
        """The newest candle of every interval (nothing before the first price)."""
        out = []
        for interval, bars in self._bars.items():
            if bars:
                start = next(reversed(bars))
                out.append(self._candle(interval, start, bars[start]))
        return out

    def window(self, interval: str, since_s: int) -> list[Candle]:
        """The kept candles (no gap filling) whose window starts at or after ``since_s``."""
        bars = self._bars[interval]
        return [self._candle(interval, s, b) for s, b in bars.items() if s >= since_s]
