"""What every benchmark module shares: the :class:`Report` and a median timer (dev tool).

See the package docstring (``bench/__init__.py``) for the contract a module follows.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Generic, TextIO, TypeVar

__all__ = [
    "DEFAULT_OUT",
    "Case",
    "Report",
    "Row",
    "median_seconds",
    "median_seconds_interleaved",
    "per_second",
]

DEFAULT_OUT = Path(__file__).resolve().parent / "out" / "latest.json"

T = TypeVar("T")


@dataclass(frozen=True)
class Row:
    """One benchmark figure beside its floor."""

    name: str
    value: float
    unit: str
    floor: float
    ratio: float
    higher_is_better: bool
    target_ratio: float | None
    meets_target: bool | None
    note: str
    timestamp: str

    def as_json(self) -> dict[str, Any]:
        """The row as stored in latest.json (the name is the key, so it is left out)."""
        data = asdict(self)
        del data["name"]
        for key in ("value", "floor", "ratio"):
            if not math.isfinite(data[key]):
                data[key] = None  # JSON has no inf/nan
        return data


def _ratio(value: float, floor: float, higher_is_better: bool) -> float:
    top, bottom = (value, floor) if higher_is_better else (floor, value)
    if bottom == 0:
        return math.inf if top > 0 else math.nan
    return top / bottom


def _number(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


class Report:
    """Collects rows, prints each as it comes, and merges them all into a JSON file."""

    HEADER = f"{'name':<34} {'value':>12} {'floor':>12} {'unit':<7} {'ratio':>6} {'target':>7}"

    def __init__(self, out: Path = DEFAULT_OUT, *, stream: TextIO | None = None) -> None:
        self.out = out
        self.rows: dict[str, Row] = {}
        self._stream = stream if stream is not None else sys.stdout
        self._header_printed = False

    def add(
        self,
        name: str,
        value: float,
        unit: str,
        floor: float,
        *,
        higher_is_better: bool = True,
        target_ratio: float | None = None,
        note: str = "",
    ) -> Row:
        """Record ``value`` (in ``unit``) beside the ``floor`` measured in the same run.

        ``ratio`` is value/floor, or floor/value when lower is better: 1.0 is floor speed.
        ``meets_target`` is None when there is no ``target_ratio``.
        """
        ratio = _ratio(value, floor, higher_is_better)
        meets = None if target_ratio is None else bool(ratio >= target_ratio)
        row = Row(
            name=name, value=float(value), unit=unit, floor=float(floor), ratio=ratio,
            higher_is_better=higher_is_better, target_ratio=target_ratio, meets_target=meets,
            note=note, timestamp=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
        self.rows[name] = row
        self._print(row)
        return row

    def _print(self, row: Row) -> None:
        if not self._header_printed:
            print(self.HEADER, file=self._stream)
            self._header_printed = True
        print(self.format_row(row), file=self._stream, flush=True)

    @staticmethod
    def format_row(row: Row) -> str:
        """One aligned table line; ``!`` marks a missed target."""
        target = "" if row.target_ratio is None else f"{row.target_ratio:.2f}"
        flag = "" if row.meets_target is not False else " !"
        return (
            f"{row.name:<34} {_number(row.value):>12} {_number(row.floor):>12} "
            f"{row.unit:<7} {row.ratio:>6.2f} {target:>7}{flag}"
        )

    def table(self) -> str:
        """Every row of this run, as a table with notes below it."""
        lines = [self.HEADER, "-" * len(self.HEADER)]
        lines += [self.format_row(r) for r in self.rows.values()]
        notes = [f"  {r.name}: {r.note}" for r in self.rows.values() if r.note]
        if notes:
            lines += ["", "notes:", *notes]
        return "\n".join(lines)

    def write(self) -> Path:
        """Merge this run's rows into ``out``, keeping rows other modules wrote before."""
        merged: dict[str, Any] = {}
        if self.out.exists():
            try:
                loaded = json.loads(self.out.read_text())
            except (OSError, ValueError):
                loaded = {}
            if isinstance(loaded, dict):
                merged.update(loaded)
        merged.update({name: row.as_json() for name, row in self.rows.items()})
        self.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.out)
        return self.out


@dataclass(frozen=True)
class Case(Generic[T]):
    """Something to time: ``fn(setup())``, then ``teardown`` of the same value (untimed)."""

    fn: Callable[[T], object]
    setup: Callable[[], T]
    teardown: Callable[[T], object] | None = None

    def time_once(self) -> float:
        """Seconds ``fn`` took on a fresh ``setup()``."""
        arg = self.setup()
        try:
            t0 = time.perf_counter()
            self.fn(arg)
            return time.perf_counter() - t0
        finally:
            if self.teardown is not None:
                self.teardown(arg)


def median_seconds_interleaved(
    cases: Mapping[str, Case[Any]], *, repeat: int = 3
) -> dict[str, float]:
    """Median seconds of each case over ``repeat`` rounds, the cases taking turns (A B, B A,
    A B, ...) so that a slow spell of the machine hits the measured code and its floor alike."""
    if not 1 <= repeat <= 25:
        raise ValueError("repeat must be between 1 and 25")
    times: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    for round_no in range(repeat):
        for name in order if round_no % 2 == 0 else reversed(order):
            times[name].append(cases[name].time_once())
    return {name: statistics.median(ts) for name, ts in times.items()}


def median_seconds(
    fn: Callable[[T], object],
    *,
    setup: Callable[[], T],
    teardown: Callable[[T], object] | None = None,
    repeat: int = 3,
) -> float:
    """Median wall time of ``fn(setup())`` over ``repeat`` runs; setup is not timed."""
    case = Case(fn, setup, teardown)
    return median_seconds_interleaved({"only": case}, repeat=repeat)["only"]


def per_second(count: int, seconds: float) -> float:
    """``count`` per second (inf when no time passed)."""
    return count / seconds if seconds > 0 else math.inf
