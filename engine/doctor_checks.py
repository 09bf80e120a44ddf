"""The checks of ``tapeline doctor`` that need no exchange (shell: reads the environment,
installed distributions, files).

Each check returns a :class:`CheckResult`: a plain verdict (OK, WARN, FAIL), one line saying
what was found, and, unless it is OK, one line saying what to do. The verdict rules are
data and pure functions (:func:`impostor_results`, :func:`lock_result`, :func:`clock_result`,
:func:`capability_results`), so they are tested without an environment to match.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import stat
import warnings
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from attrs import field, frozen

from engine.errors import JournalError

__all__ = [
    "CLOCK_FAIL_MS",
    "CLOCK_WARN_MS",
    "IMPOSTOR_DISTRIBUTIONS",
    "MEXC_NAMED_ALLOWED",
    "CheckResult",
    "Verdict",
    "capability_results",
    "clock_result",
    "credentials_result",
    "impostor_results",
    "installed_distributions",
    "journal_result",
    "lock_result",
    "normalize",
    "parse_lock",
]


class Verdict(StrEnum):
    """How a check came out."""

    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@frozen
class CheckResult:
    """One check's outcome: ``name``, ``verdict``, what was found and what to do."""

    name: str
    verdict: Verdict
    found: str
    action: str | None = None
    data: Mapping[str, Any] = field(factory=dict)

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``--json``)."""
        return {"check": self.name, "verdict": str(self.verdict), "found": self.found,
                "action": self.action, "data": dict(self.data)}


# ------------------------------------------------------------------ installed distributions

IMPOSTOR_DISTRIBUTIONS: frozenset[str] = frozenset({
    # Reported by JFrog Security Research (April 2025): sold as a ccxt extension that "adds
    # MEXC futures trading", it overrode ccxt's signing and sent orders, keys and secrets to
    # its authors. MEXC has stated it never published an SDK under that name.
    "ccxt-mexc-futures",
    # Names of the same pattern (an unofficial "futures API" that promises order placement
    # while MEXC's own is closed). None of them is published by MEXC or needed by tapeline;
    # any of them in the environment that holds your keys must be treated as hostile.
    "mexc-futures-sdk",
    "mexc-futures-api",
    "mexc-api-bypass",
    "mexc-futures-bypass",
    "mexc-futures-trading",
    "ccxt-mexc",
    "ccxt-mexc-api",
    "pymexc-futures",
})
"""Distributions that impersonate an exchange SDK to steal API keys (normalized names)."""

MEXC_NAMED_ALLOWED: frozenset[str] = frozenset()
"""Distributions with "mexc" in their name that are known to be harmless. tapeline needs
none (it speaks to MEXC itself); add a name here only after reading that package's source."""

_LOCK_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them (``Foo_Bar.baz`` → ``foo-bar-baz``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_distributions() -> dict[str, str]:
    """Normalized name → version of every distribution importable here."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.name  # None-safe: a broken dist-info has no usable name
        if name:
            found.setdefault(normalize(name), dist.version or "?")
    return found


def impostor_results(installed: Mapping[str, str]) -> list[CheckResult]:
    """FAIL for each known impostor SDK, WARN for other unknown ``*mexc*`` distributions."""
    impostors = sorted(n for n in installed if n in IMPOSTOR_DISTRIBUTIONS)
    others = sorted(n for n in installed if "mexc" in n and n not in IMPOSTOR_DISTRIBUTIONS
                    and n not in MEXC_NAMED_ALLOWED)
    results = []
    if impostors:
        names = ", ".join(f"{n} {installed[n]}" for n in impostors)
        results.append(CheckResult(
            "packages", Verdict.FAIL,
            f"known key-stealing impostor SDK installed: {names}",
            f"uninstall it (pip uninstall {' '.join(impostors)}) and rotate your API keys "
            f"now: delete them on MEXC and create new ones",
            {"impostors": impostors}))
    if others:
        results.append(CheckResult(
            "packages", Verdict.WARN,
            f"unrecognised MEXC-named distribution installed: {', '.join(others)}",
            "tapeline needs no MEXC SDK; if you did not install it on purpose, uninstall it "
            "and rotate your API keys",
            {"unknown_mexc": others}))
    if not results:
        results.append(CheckResult(
            "packages", Verdict.OK,
            f"no impostor exchange SDK among {len(installed)} installed distributions"))
    return results


def parse_lock(text: str) -> dict[str, str]:
    """Normalized name → version of every ``name==version`` line of a lock file."""
    pins: dict[str, str] = {}
    for line in text.splitlines():
        m = _LOCK_LINE.match(line.strip())
        if m:
            pins[normalize(m.group(1))] = m.group(2)
    return pins


def lock_result(installed: Mapping[str, str], locked: Mapping[str, str] | None,
                lock_path: str | None) -> CheckResult:
    """WARN when installed versions differ from the lock or locked ones are missing."""
    if locked is None:
        return CheckResult("lock", Verdict.OK, "no requirements.lock found next to tapeline; "
                           "version check skipped")
    differ = sorted(n for n in locked if n in installed and installed[n] != locked[n])
    missing = sorted(n for n in locked if n not in installed)
    if not differ and not missing:
        return CheckResult("lock", Verdict.OK,
                           f"all {len(locked)} pinned versions installed ({lock_path})")
    parts = []
    if differ:
        parts.append(f"{len(differ)} differ: " + ", ".join(
            f"{n} {installed[n]} (lock {locked[n]})" for n in differ[:8])
            + (" ..." if len(differ) > 8 else ""))
    if missing:
        parts.append(f"{len(missing)} missing: " + ", ".join(missing[:8])
                     + (" ..." if len(missing) > 8 else ""))
    return CheckResult(
        "lock", Verdict.WARN, "; ".join(parts),
        f"reinstall from the lock in a fresh virtualenv: pip install --require-hashes "
        f"-r {lock_path}", {"differ": differ, "missing": missing})


# ------------------------------------------------------------------------------ the clock

CLOCK_WARN_MS = 2_000
"""Skew from which the clock check warns."""

CLOCK_FAIL_MS = 8_000
"""Skew from which it fails: MEXC refuses signed requests 10 s off (code 513)."""


def clock_result(skew_ms: int, rtt_ms: int, where: str) -> CheckResult:
    """The verdict on a measured clock skew (server minus local) and round trip."""
    data = {"skew_ms": skew_ms, "rtt_ms": rtt_ms}
    if skew_ms == 0:
        found = f"local clock in step with {where} (round trip {rtt_ms} ms)"
    else:
        ahead = "behind" if skew_ms > 0 else "ahead of"
        found = (f"local clock {abs(skew_ms) / 1000:.3f} s {ahead} {where} "
                 f"(round trip {rtt_ms} ms)")
    if abs(skew_ms) >= CLOCK_FAIL_MS:
        return CheckResult("clock", Verdict.FAIL, found,
                           "synchronise the system clock now (enable NTP: timedatectl "
                           "set-ntp true, or chronyc makestep); MEXC refuses signed requests "
                           "10 s off", data)
    if abs(skew_ms) >= CLOCK_WARN_MS:
        return CheckResult("clock", Verdict.WARN, found,
                           "enable NTP time synchronisation (timedatectl set-ntp true) "
                           "before the skew reaches MEXC's 10 s window", data)
    return CheckResult("clock", Verdict.OK, found, data=data)


# ------------------------------------------------------------------------------- journal


def journal_result(path: Path, *, must_exist: bool) -> CheckResult:
    """Open ``path`` read-only and verify its hash chain."""
    from engine.journal import Journal

    if not path.exists() and not must_exist:
        return CheckResult("journal", Verdict.OK, f"{path} does not exist yet")
    try:
        with Journal.open(path, readonly=True) as journal:
            result = journal.verify()
    except JournalError as exc:
        return CheckResult("journal", Verdict.FAIL, str(exc),
                           "check the path; if the file is damaged keep a copy and restore "
                           "the last backup (docs/operations.md)")
    if result.ok:
        return CheckResult("journal", Verdict.OK,
                           f"{path}: {result.checked} events verify, chain head seq "
                           f"{result.last_seq} {result.last_hash[:16]}…",
                           data={"checked": result.checked, "last_seq": result.last_seq,
                                 "last_hash": result.last_hash})
    return CheckResult(
        "journal", Verdict.FAIL,
        f"{path}: chain broken at seq {result.first_bad_seq}: {result.problem}",
        "do not write to it; keep the file as evidence, inspect with tapeline journal events "
        f"--from-seq {result.first_bad_seq}, and restore the last good backup",
        {"first_bad_seq": result.first_bad_seq})


# --------------------------------------------------------------------------- credentials


def credentials_result(environ: Mapping[str, str], file: Path | None) -> tuple[
        CheckResult, Any]:
    """Whether API keys are configured (and the file holding them is private).

    Returns the result and the :class:`~adapters.mexc.auth.Credentials` (or None). Neither
    ever shows the secret; the key is shown masked.
    """
    from adapters.mexc.auth import (
        API_KEY_VAR,
        API_SECRET_VAR,
        Credentials,
        InsecureCredentialsWarning,
    )
    from adapters.mexc.errors import CredentialsError

    if file is not None:
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
        except OSError as exc:
            return CheckResult("keys", Verdict.FAIL,
                               f"cannot read credentials file {file}: {exc.strerror}",
                               "fix the path in --credentials-file or [mexc] credentials_file"
                               ), None
        if os.name == "posix" and mode & stat.S_IROTH:
            return CheckResult("keys", Verdict.FAIL,
                               f"credentials file {file} is readable by every user "
                               f"(mode {mode:04o})",
                               f"chmod 600 {file}, then rotate the keys if others could log "
                               f"in here", {"mode": f"{mode:04o}"}), None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", InsecureCredentialsWarning)
                creds = Credentials.from_file(file)
        except CredentialsError as exc:
            return CheckResult("keys", Verdict.FAIL, str(exc),
                               "write api_key and api_secret into it (TOML or KEY=value)"), None
        if os.name == "posix" and mode & (stat.S_IRGRP | stat.S_IWGRP | stat.S_IWOTH):
            return CheckResult("keys", Verdict.WARN,
                               f"key {creds.masked_key} from {file}, which its group can "
                               f"read or others can write (mode {mode:04o})",
                               f"chmod 600 {file}", {"mode": f"{mode:04o}"}), creds
        return CheckResult("keys", Verdict.OK,
                           f"key {creds.masked_key} from {file} (mode {mode:04o})"), creds
    try:
        creds = Credentials.from_env(environ)
    except CredentialsError as exc:
        return CheckResult("keys", Verdict.WARN, f"no API keys: {exc}",
                           f"for live trading export {API_KEY_VAR} and {API_SECRET_VAR} (or "
                           "use --credentials-file); read and trade permission only, never "
                           "withdrawal"), None
    return CheckResult("keys", Verdict.OK,
                       f"key {creds.masked_key} from {API_KEY_VAR}/{API_SECRET_VAR}"), creds


# ---------------------------------------------------------------------------- capability


def capability_results(contracts: Iterable[Any], symbols: Sequence[str],
                       where: str) -> list[CheckResult]:
    """Per symbol: listed, ``apiAllowed`` and ``state`` from ``contract/detail``."""
    by_symbol = {c.symbol: c for c in contracts}
    results = []
    for sym in symbols:
        c = by_symbol.get(sym)
        if c is None:
            results.append(CheckResult(
                f"capability {sym}", Verdict.FAIL, f"{sym} is not listed by {where}",
                "check the symbol (BASE_USDT, e.g. BTC_USDT) in --symbols or the config"))
        elif not c.api_allowed or c.state != 0:
            results.append(CheckResult(
                f"capability {sym}", Verdict.WARN,
                f"order placement unavailable for {sym} (apiAllowed={c.api_allowed}, "
                f"state={c.state}); cancels and queries still work",
                "paper-trade with --mode sim (or --mode shadow, live data with simulated "
                "fills, once available), or --mode record, until MEXC reopens API trading",
                {"api_allowed": c.api_allowed, "state": c.state}))
        else:
            results.append(CheckResult(
                f"capability {sym}", Verdict.OK,
                f"{sym}: API trading allowed, min vol {c.min_vol}, price unit {c.price_unit}",
                data={"api_allowed": True, "state": 0}))
    return results
