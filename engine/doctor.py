"""``tapeline doctor``: is this machine ready to trade, and does MEXC still speak our protocol?
(shell).

The checks, each with a verdict (OK / WARN / FAIL) and what to do:

* ``packages``: no impostor exchange SDK installed (they steal API keys);
* ``lock``: installed versions match ``requirements.lock``;
* ``keys``: API keys configured (only a masked key is ever shown), their file private;
* ``journal``: the journal (``--journal`` or ``[run] journal``) opens and its chain verifies;
* ``reach`` and ``clock``: the exchange answers ``ping``, and the local clock is within 2 s
  (WARN) / 8 s (FAIL) of its server time; MEXC refuses signed requests 10 s off;
* ``keys accepted``: a private read succeeds with those keys;
* ``capability SYMBOL``: the contract is listed with ``apiAllowed`` and ``state`` 0.

``--canary`` then runs :class:`adapters.mexc.canary.Canary` (every endpoint and channel the
engine uses, one far-away order placed and cancelled) into its own journal, and verifies it.

The target is MEXC as configured in ``[mexc]``; ``--sim`` starts the bundled simulator in
process instead (no sockets), so doctor can be tried, and tested, offline. Exit code 0 when
no check failed, 1 otherwise.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from functools import partial
from pathlib import Path
from typing import Any

import click
import orjson
import trio
from attrs import frozen

from engine.clock import Clock, TrioClock
from engine.config import FileConfig, load_config
from engine.doctor_checks import (
    CheckResult,
    Verdict,
    capability_results,
    clock_result,
    credentials_result,
    impostor_results,
    installed_distributions,
    journal_result,
    lock_result,
    parse_lock,
)
from engine.errors import ConfigError, EngineError

__all__ = [
    "DoctorOptions", "DoctorReport", "doctor_command", "local_checks", "one_line", "run_doctor",
]

DEFAULT_CANARY_JOURNAL = Path("tapeline-canary.sqlite")
_PINGS = 3

OpenVenue = Callable[[Clock], AbstractAsyncContextManager[Any]]


@frozen
class DoctorOptions:
    """What to check (built by :func:`doctor_command` or by tests)."""

    symbols: tuple[str, ...] = ("BTC_USDT",)
    journal: Path | None = None
    journal_must_exist: bool = True
    credentials_file: Path | None = None
    environ: Mapping[str, str] = {}
    lock_path: Path | None = None
    canary: bool = False
    canary_journal: Path = DEFAULT_CANARY_JOURNAL
    canary_wait_s: float = 10.0
    sim: bool = False


@frozen
class DoctorReport:
    """Every check's result, in order; ``canary`` summarises a canary run."""

    target: str
    results: tuple[CheckResult, ...]
    canary: Mapping[str, Any] | None = None

    @property
    def failed(self) -> bool:
        """True when some check failed."""
        return any(r.verdict is Verdict.FAIL for r in self.results)

    def counts(self) -> dict[str, int]:
        """How many checks had each verdict."""
        return {v.value: sum(1 for r in self.results if r.verdict is v) for v in Verdict}

    def lines(self) -> list[str]:
        """The human report."""
        width = max((len(r.name) for r in self.results), default=8)
        out = [f"tapeline doctor: {self.target}"]
        for r in self.results:
            out.append(f"  {r.verdict.value:<4}  {r.name:<{width}}  {r.found}")
            if r.action and r.verdict is not Verdict.OK:
                out.append(f"        {'':<{width}}  -> {r.action}")
        if self.canary is not None:
            c = self.canary
            out.append(f"canary: {c['rest_calls']} REST calls, {c['frames']} frames, "
                       f"{c['findings']} findings; journal {c['journal']} "
                       f"(session {c['session']})")
        n = self.counts()
        verdict = "not ready" if self.failed else "ready"
        out.append(f"{n['FAIL']} FAIL, {n['WARN']} WARN, {n['OK']} OK: {verdict}")
        return out

    def as_json(self) -> str:
        """The report as one JSON object."""
        return orjson.dumps({
            "target": self.target, "ok": not self.failed, "counts": self.counts(),
            "checks": [r.as_json() for r in self.results], "canary": self.canary,
        }).decode()


# ------------------------------------------------------------------------- local checks


def _find_lock(explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    here = Path(__file__).resolve().parent.parent / "requirements.lock"
    return here if here.is_file() else None


def local_checks(opts: DoctorOptions) -> tuple[list[CheckResult], Any]:
    """The checks that need no exchange; returns them and the credentials found (or None)."""
    installed = installed_distributions()
    results = impostor_results(installed)
    lock = _find_lock(opts.lock_path)
    locked = None
    if lock is not None:
        try:
            locked = parse_lock(lock.read_text(encoding="utf-8", errors="replace"))
        except OSError as exc:
            results.append(CheckResult("lock", Verdict.WARN, f"cannot read {lock}: "
                                       f"{exc.strerror}", "pass a readable lock file"))
            lock = None
    if lock is not None:
        results.append(lock_result(installed, locked, str(lock)))
    keys, creds = credentials_result(opts.environ, opts.credentials_file)
    results.append(keys)
    if opts.journal is not None and not opts.canary:
        results.append(journal_result(opts.journal, must_exist=opts.journal_must_exist))
    return results, creds


# ----------------------------------------------------------------------- network checks


async def _measure_clock(rest: Any, clock: Clock) -> tuple[int, int]:
    """(skew_ms, rtt_ms) from the ping with the shortest round trip."""
    best: tuple[int, int] | None = None
    for _ in range(_PINGS):
        t0 = clock.time_ns()
        server_ms = int(await rest.ping())
        t1 = clock.time_ns()
        rtt_ms = (t1 - t0) // 1_000_000
        skew_ms = server_ms - (t0 + t1) // 2_000_000
        if best is None or rtt_ms < best[1]:
            best = (skew_ms, rtt_ms)
    assert best is not None
    return best


async def _network_checks(opts: DoctorOptions, venue: Any, clock: Clock,
                          where: str) -> list[CheckResult]:
    from adapters.mexc.errors import AuthError, MexcError, PermissionDeniedError
    from adapters.mexc.rest import MexcRestClient

    public = MexcRestClient(venue.http, venue.mexc_config, None, clock)
    try:
        skew_ms, rtt_ms = await _measure_clock(public, clock)
    except MexcError as exc:
        return [CheckResult("reach", Verdict.FAIL, f"{where} did not answer ping: {exc}",
                            "check the network, a proxy, and [mexc] rest_base / generation")]
    results = [CheckResult("reach", Verdict.OK, f"{where} answers ping"),
               clock_result(skew_ms, rtt_ms, where)]
    if venue.credentials is not None:
        private = MexcRestClient(venue.http, venue.mexc_config, venue.credentials, clock)
        try:
            await private.assets()
        except (AuthError, PermissionDeniedError) as exc:
            results.append(CheckResult(
                "keys accepted", Verdict.FAIL, f"the exchange refused the key "
                f"{venue.credentials.masked_key}: {exc}",
                "check key and secret; the key needs read and trade permission, and its IP "
                "whitelist must include this machine"))
        except MexcError as exc:
            results.append(CheckResult("keys accepted", Verdict.WARN,
                                       f"private read failed: {exc}", "run doctor again"))
        else:
            whose = " (the simulator's own key; --sim sends yours nowhere)" if opts.sim else ""
            results.append(CheckResult(
                "keys accepted", Verdict.OK,
                f"a signed read works with {venue.credentials.masked_key}{whose}"))
    try:
        contracts = await public.contract_detail()
    except MexcError as exc:
        results.append(CheckResult("capability", Verdict.FAIL,
                                   f"contract/detail failed: {exc}", "run doctor --canary"))
    else:
        results.extend(capability_results(contracts, opts.symbols, where))
    return results


async def _canary(opts: DoctorOptions, venue: Any, clock: Clock,
                  where: str) -> tuple[list[CheckResult], dict[str, Any]]:
    from adapters.mexc.canary import Canary
    from adapters.mexc.codecs import PARSER_VERSION
    from engine import __version__
    from engine.codec import encode
    from engine.events import SessionEnded, SessionStarted, canonical_json
    from engine.journal import Journal

    meta = canonical_json({"target": where, "symbols": list(opts.symbols),
                           "engine": __version__})
    with Journal.open(opts.canary_journal, synchronous="FULL") as journal:
        sid = journal.start_session(started_ns=clock.time_ns(), strategy="canary",
                                    parser_version=PARSER_VERSION, mode="canary", meta=meta)
        journal.append(sid, [encode(SessionStarted("canary", "canary", meta, clock.time_ns()))])
        canary = Canary(journal, sid, http=venue.http, config=venue.mexc_config,
                        credentials=venue.credentials, ws_url=venue.ws_url,
                        connect=venue.ws_connect, clock=clock, symbol=opts.symbols[0],
                        ws_wait_s=opts.canary_wait_s)
        reason = "stopped"
        try:
            report = await canary.run()
            reason = f"canary done: {report.findings} findings"
        finally:
            journal.append(sid, [encode(SessionEnded(reason, clock.time_ns()))])
    results = list(report.results)
    verified = journal_result(opts.canary_journal, must_exist=True)
    results.append(CheckResult("canary journal", verified.verdict, verified.found,
                               verified.action, verified.data))
    summary = {"journal": str(opts.canary_journal), "session": sid,
               "rest_calls": report.rest_calls, "frames": report.frames,
               "findings": report.findings}
    return results, summary


async def run_doctor(opts: DoctorOptions, open_venue: OpenVenue, where: str, *,
                     clock: Clock,
                     local: Sequence[CheckResult] | None = None) -> DoctorReport:
    """Run the checks (``local`` ones already made, if given) against ``open_venue``."""
    results = list(local or ())
    canary = None
    async with open_venue(clock) as venue:
        results.extend(await _network_checks(opts, venue, clock, where))
        reachable = not any(r.name == "reach" and r.verdict is Verdict.FAIL for r in results)
        if opts.canary and reachable:
            found, canary = await _canary(opts, venue, clock, where)
            results.extend(found)
    return DoctorReport(where, tuple(results), canary)


# ---------------------------------------------------------------------------- targets


def mexc_config_from(cfg: FileConfig) -> Any:
    """The :class:`~adapters.mexc.config.MexcConfig` of the ``[mexc]`` table."""
    from adapters.mexc.config import Generation, MexcConfig

    m = cfg.mexc
    try:
        kwargs: dict[str, Any] = {"generation": Generation(m.get("generation", "new"))}
    except ValueError:
        raise ConfigError("[mexc] generation must be 'new' or 'old'") from None
    for key in ("rest_base", "ws_url", "recv_window"):
        if key in m:
            kwargs[key] = m[key]
    try:
        return MexcConfig(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"[mexc] {exc}") from None


def sim_target(symbols: Sequence[str]) -> tuple[OpenVenue, str]:
    """The bundled simulator, in process, with an account of its own."""
    from adapters.mexc.venue import open_sim_venue

    return (partial(open_sim_venue, symbols=tuple(symbols), in_process=True),
            "bundled simulator (in process)")


def mexc_target(cfg: FileConfig, credentials: Any) -> tuple[OpenVenue, str]:
    """MEXC (or the MEXC-compatible base URL of ``[mexc]``) with the user's credentials."""
    from adapters.mexc.venue import open_live_venue

    config = mexc_config_from(cfg)
    return (partial(open_live_venue, config=config, credentials=credentials),
            f"MEXC at {config.rest_base}")


# -------------------------------------------------------------------------------- CLI


_LINE_BREAKS = {c: repr(chr(c))[1:-1] for c in (0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E,
                                                0x85, 0x2028, 0x2029)}


def one_line(text: str) -> str:
    """``text`` with its line breaks escaped (click quotes bad arguments verbatim)."""
    return text.translate(_LINE_BREAKS)


class _OneLineCommand(click.Command):
    """Usage errors as one ``Error: ...`` line (exit code 2), without the usage banner."""

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise _UsageLine(one_line(exc.format_message())) from exc


class _UsageLine(click.ClickException):
    exit_code = 2


def _symbols(_ctx: click.Context, _param: click.Parameter,
             value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    syms = tuple(dict.fromkeys(s.strip().upper() for s in value.split(",") if s.strip()))
    if not syms or any("_" not in s or not s.replace("_", "").isalnum() or not s.isascii()
                       for s in syms):
        raise click.BadParameter(f"expected a comma list like BTC_USDT,ETH_USDT, got {value!r}")
    return syms


def _config_symbols(cfg: FileConfig) -> tuple[str, ...]:
    syms = cfg.run.get("symbols")
    if syms:
        return tuple(str(s).upper() for s in syms)
    sym = cfg.strategy.get("symbol")
    return (str(sym).upper(),) if isinstance(sym, str) and sym else ("BTC_USDT",)


def _open_clock() -> Clock:
    # Wall time that moves with trio's clock (real here), as the runtime does.
    return TrioClock(time.time_ns() - int(trio.current_time() * 1e9))


@click.command("doctor", cls=_OneLineCommand,
               context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML configuration file ([mexc] decides the target).")
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path),
              help="Journal to verify (with --canary: where the canary writes; default "
                   f"{DEFAULT_CANARY_JOURNAL}).")
@click.option("--credentials-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File with api_key and api_secret (default: MEXC_API_KEY/MEXC_API_SECRET).")
@click.option("--symbols", callback=_symbols, help="Contracts to probe, e.g. BTC_USDT,ETH_USDT.")
@click.option("--sim", is_flag=True, help="Check against the bundled simulator (offline).")
@click.option("--canary", is_flag=True,
              help="Also call every endpoint and channel the engine uses and place and cancel "
                   "one order far from the market; findings are journaled.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def doctor_command(config_path: Path | None, journal: Path | None,
                   credentials_file: Path | None, symbols: tuple[str, ...] | None,
                   sim: bool, canary: bool, as_json: bool) -> None:
    """Check this machine and the exchange before trading; exit 1 when a check fails."""
    try:
        cfg = load_config(config_path)
        journal_path, must_exist = journal, True
        if journal_path is None and not canary and cfg.run.get("journal"):
            journal_path, must_exist = Path(str(cfg.run["journal"])).expanduser(), False
        cred_file = credentials_file
        if cred_file is None and cfg.mexc.get("credentials_file"):
            cred_file = Path(str(cfg.mexc["credentials_file"])).expanduser()
        opts = DoctorOptions(
            symbols=symbols or _config_symbols(cfg), journal=journal_path,
            journal_must_exist=must_exist, credentials_file=cred_file,
            environ=dict(os.environ), canary=canary,
            canary_journal=journal if journal is not None else DEFAULT_CANARY_JOURNAL, sim=sim)
        local, creds = local_checks(opts)
        open_venue, where = (sim_target(opts.symbols) if sim else mexc_target(cfg, creds))

        async def main() -> DoctorReport:
            return await run_doctor(opts, open_venue, where, clock=_open_clock(), local=local)

        report = trio.run(main)
    except EngineError as exc:
        raise click.ClickException(one_line(str(exc))) from None
    if as_json:
        click.echo(report.as_json())
    else:
        for line in report.lines():
            click.echo(line)
    if report.failed:
        raise SystemExit(1)
