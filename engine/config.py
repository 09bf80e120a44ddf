"""The TOML configuration file and command-line overrides (shell: reads files).

Every option is documented in ``docs/configuration.md``. Unknown tables or keys, wrong
types and bad values are a :class:`~engine.errors.ConfigError` naming the key, never a
traceback. Secrets are never read from this file: API keys come from the environment
(``MEXC_API_KEY``, ``MEXC_API_SECRET``) or from the file named by ``mexc.credentials_file``.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from attrs import frozen

from engine.errors import ConfigError
from engine.risk import RiskLimits

__all__ = ["SCHEMA", "FileConfig", "load_config", "parse_duration"]

SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "run": {
        "mode": str,
        "strategy": str,
        "symbols": list,
        "journal": str,
        "duration": (str, int, float),
        "cancel_on_stop": bool,
        "exit_on_kill": bool,
        "status_every_s": (int, float),
        "synchronous": str,
        "stale_account_s": (int, float),
    },
    "strategy": {},  # free-form: passed to the strategy's Config
    "risk": {
        "max_orders": int,
        "window_s": (int, float),
        "max_leverage": int,
        "max_order_notional": (int, float, str),
        "max_position_vol": (int, float, str),
        "max_open_orders": int,
        "restricted_symbols": list,
    },
    "alerts": {"command": str, "webhook": str},
    "mexc": {
        "generation": str,
        "rest_base": str,
        "ws_url": str,
        "credentials_file": str,
        "recv_window": int,
    },
    "sim": {"seed": int, "balance": (int, float, str), "port": int},
}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: str | float | int) -> float:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"1.5h"``, ``"1d"`` or ``"250ms"``."""
    if isinstance(value, bool):
        raise ConfigError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(value)
        if m is None:
            raise ConfigError(f"not a duration: {value!r} (use e.g. 90s, 5m, 1h)")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:  # NaN compares false with everything
        raise ConfigError(f"duration must be a finite positive number, got {value!r}")
    return seconds


@frozen
class FileConfig:
    """The parsed configuration file, table by table."""

    run: Mapping[str, Any]
    strategy: Mapping[str, Any]
    risk: RiskLimits
    alerts: Mapping[str, Any]
    mexc: Mapping[str, Any]
    sim: Mapping[str, Any]
    path: str | None = None


def _check_types(table: str, data: Mapping[str, Any]) -> None:
    schema = SCHEMA[table]
    if not schema:
        return
    for key, value in data.items():
        if key not in schema:
            raise ConfigError(
                f"[{table}] unknown option {key!r}; known: {', '.join(sorted(schema))}"
            )
        want = schema[key]
        if (
            isinstance(value, bool)
            and want is not bool
            and (not isinstance(want, tuple) or bool not in want)
        ):
            raise ConfigError(f"[{table}] {key} must not be a boolean")
        if not isinstance(value, want):
            names = (want,) if isinstance(want, type) else want
            raise ConfigError(
                f"[{table}] {key} must be {' or '.join(t.__name__ for t in names)}, "
                f"not {type(value).__name__}"
            )


def _decimal(table: str, key: str, value: Any) -> Decimal:
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"[{table}] {key} is not a number: {value!r}") from None
    if not d.is_finite() or d <= 0:
        raise ConfigError(f"[{table}] {key} must be a positive number, got {value!r}")
    return d


_RANGES: dict[tuple[str, str], tuple[float, float, bool]] = {
    # (table, key): (low, high, low allowed); values must also be finite (TOML has nan, inf)
    ("run", "status_every_s"): (0, math.inf, True),
    ("run", "stale_account_s"): (0, math.inf, False),
    ("risk", "window_s"): (0, math.inf, False),
    ("sim", "seed"): (0, math.inf, True),
    ("sim", "port"): (0, 65535, True),
}


def _check_ranges(table: str, data: Mapping[str, Any]) -> None:
    for key, value in data.items():
        bounds = _RANGES.get((table, key))
        if bounds is None:
            continue
        low, high, low_ok = bounds
        if not math.isfinite(value) or value > high or value < low or (value == low and not low_ok):
            limit = f">= {low:g}" if low_ok else f"> {low:g}"
            upper = f" and <= {high:g}" if math.isfinite(high) else ""
            raise ConfigError(
                f"[{table}] {key} must be a finite number {limit}{upper}, got {value!r}"
            )


def _risk(data: Mapping[str, Any]) -> RiskLimits:
    kwargs: dict[str, Any] = dict(data)
    for key in ("max_order_notional", "max_position_vol"):
        if key in kwargs:
            kwargs[key] = _decimal("risk", key, kwargs[key])
    for key in ("max_orders", "max_leverage", "max_open_orders"):
        if key in kwargs and kwargs[key] <= 0:
            raise ConfigError(f"[risk] {key} must be positive")
    if "restricted_symbols" in kwargs:
        syms = kwargs["restricted_symbols"]
        if not all(isinstance(s, str) for s in syms):
            raise ConfigError("[risk] restricted_symbols must be a list of symbols")
        kwargs["restricted_symbols"] = frozenset(s.upper() for s in syms)
    return RiskLimits(**kwargs)


def load_config(path: str | Path | None) -> FileConfig:
    """Read and validate ``path`` (None gives the defaults)."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path).expanduser()
        try:
            raw = p.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"config file {p} does not exist") from None
        except OSError as exc:
            raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from None
        except ValueError:  # a NUL in the path: no file can have that name
            raise ConfigError(f"config file {str(p)!r} is not a valid path") from None
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
    unknown = set(data) - set(SCHEMA)
    if unknown:
        raise ConfigError(
            f"unknown table(s) in config: {', '.join(sorted(unknown))}; known: {', '.join(SCHEMA)}"
        )
    for table, value in data.items():
        if not isinstance(value, dict):
            raise ConfigError(f"[{table}] must be a table")
        _check_types(table, value)
        _check_ranges(table, value)
    run = dict(data.get("run", {}))
    if "symbols" in run and not all(isinstance(s, str) for s in run["symbols"]):
        raise ConfigError("[run] symbols must be a list of strings")
    if "duration" in run:
        run["duration"] = parse_duration(run["duration"])
    sim = dict(data.get("sim", {}))
    if "balance" in sim:
        sim["balance"] = _decimal("sim", "balance", sim["balance"])
    return FileConfig(
        run=run,
        strategy=dict(data.get("strategy", {})),
        risk=_risk(data.get("risk", {})),
        alerts=dict(data.get("alerts", {})),
        mexc=dict(data.get("mexc", {})),
        sim=sim,
        path=None if path is None else str(path),
    )
