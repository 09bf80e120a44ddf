"""The ``replay``, ``backtest`` and ``audit`` commands of ``tapeline`` (shell).

``engine.cli`` registers :data:`replay_command`, :data:`backtest_command` and
:data:`audit_group` on its ``main`` group. Every expected failure ends in one line on stderr
and a non-zero exit, never a traceback. Exit codes: 0 success (replay: identical), 1 an
error, 2 bad arguments, 3 a broken hash chain (nothing replayed), 4 a replay diverged.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from engine.audit import EXPORT_FORMATS, EXPORT_KINDS, anomalies, export, resolve_at, state_at
from engine.audit import timeline as order_timeline
from engine.errors import EngineError
from engine.journal import Journal
from engine.replay import (
    ChainBrokenError,
    ReplayError,
    ReplayResult,
    Until,
    parse_until,
    replay_session,
    require_chain,
)
from engine.state_report import BALANCE_COLUMNS, ORDER_COLUMNS, POSITION_COLUMNS, state_tables

__all__ = ["audit_group", "backtest_command", "replay_command", "standalone_cli"]

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CHAIN_BROKEN = 3
EXIT_DIVERGED = 4


class _PlainUsageError(click.ClickException):
    exit_code = 2


@contextmanager
def _one_line_usage_errors() -> Iterator[None]:
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise
    except click.UsageError as exc:
        raise _PlainUsageError(exc.format_message()) from exc


class OneLineGroup(click.Group):
    """A click group whose usage errors are one ``Error: ...`` line (as ``tapeline``'s)."""

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        with _one_line_usage_errors():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _one_line_usage_errors():
            return super().invoke(ctx)


def _friendly(fn: F) -> F:
    """The engine's own errors become one line and exit 1 (3 for a broken chain)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ChainBrokenError as exc:
            click.echo(f"Error: {exc}", err=True)
            raise SystemExit(EXIT_CHAIN_BROKEN) from None
        except EngineError as exc:
            raise click.ClickException(str(exc)) from exc
        except BrokenPipeError:
            sys.stderr.close()
            raise SystemExit(0) from None

    return wrapper  # type: ignore[return-value]


def _iso(ts_ns: int | None) -> str:
    if ts_ns is None:
        return ""
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).isoformat(timespec="milliseconds")


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, v in enumerate(row):
            widths[i] = max(widths[i], min(len(v), 90))

    def fmt(row: Sequence[str]) -> str:
        return "  ".join((v if len(v) <= 90 else v[:87] + "...").ljust(widths[i])
                         for i, v in enumerate(row)).rstrip()

    return "\n".join([fmt(list(headers)), fmt(["-" * w for w in widths]),
                      *(fmt(r) for r in cells)])


def _until(_: click.Context, param: click.Parameter, value: str | None) -> Until | None:
    """Click callback: ``SEQ|TIME`` to an :class:`Until` (a usage error when unreadable)."""
    if value is None:
        return None
    try:
        return parse_until(value)
    except ReplayError as exc:
        raise click.BadParameter(str(exc).removeprefix("--until: ")) from None


def _open(path: Path) -> Journal:
    return Journal.open(path, readonly=True)


journal_arg = click.argument("path", metavar="JOURNAL",
                             type=click.Path(dir_okay=False, path_type=Path))
output_format = click.option("--format", "fmt", type=click.Choice(["table", "json"]),
                             default="table", show_default=True, help="Table or JSON.")


class _Progress:
    """Progress on stderr: a bar on a terminal, otherwise a line every :attr:`LINE_EVERY`
    rows and, if there was one, a last line at the end."""

    LINE_EVERY = 100_000

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self.bar: Any = None
        if sys.stderr.isatty():
            self.bar = click.progressbar(length=max(total, 1), label=label, file=sys.stderr)
            self.bar.__enter__()

    def __call__(self, done: int) -> None:
        if self.bar is not None:
            self.bar.update(done - self.done)
        elif done // self.LINE_EVERY > self.done // self.LINE_EVERY or (
                done == self.total != self.done >= self.LINE_EVERY):  # a long one's end
            click.echo(f"{self.label}: {done}/{self.total} rows", err=True)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


# --------------------------------------------------------------------------- replay


@click.command("replay")
@journal_arg
@click.option("--session", help="Only this session (id or unique prefix); default: every one.")
@click.option("--strategy", "strategy_spec", metavar="NAME",
              help="Replay with this strategy instead of the recorded one.")
@click.option("--until", "until", metavar="SEQ|TIME", callback=_until,
              help="Stop after this seq, ns time or ISO time.")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Compare decisions and projections with the recording.")
@_friendly
def replay_command(path: Path, session: str | None, strategy_spec: str | None,
                   until: Until | None, verify: bool) -> None:
    """Replay recorded sessions deterministically; exit 4 at the first divergence."""
    until = until or Until()
    with _open(path) as journal:
        require_chain(journal)
        sessions = ([journal.session(session)] if session else
                    [s for s in journal.sessions() if s.events])
        if not sessions:
            raise ReplayError(f"{path}: no session with events to replay")
        results: list[ReplayResult] = []
        for info in sessions:
            progress = _Progress(f"replaying {info.id[:8]}", info.events)
            try:
                result = replay_session(
                    journal, info.id, strategy_spec=strategy_spec, until_seq=until.seq,
                    until_ts_ns=until.ts_ns, verify=verify, progress=progress,
                    check_chain=False)
            finally:
                progress.close()
            results.append(result)
            for line in result.lines():
                click.echo(line)
            if not result.identical:
                raise SystemExit(EXIT_DIVERGED)
    inputs = sum(r.inputs for r in results)
    elapsed = sum(r.elapsed_s for r in results)
    rate = inputs / elapsed if elapsed > 0 else float("inf")
    verdict = "identical" if verify else "not verified"
    click.echo(f"replayed {inputs} events of {len(results)} session(s), "
               f"{sum(r.compared for r in results)} decisions compared, {elapsed:.2f} s "
               f"({rate:,.0f} events/s): {verdict}")


# --------------------------------------------------------------------------- backtest


def _decimal(_: click.Context, param: click.Parameter, value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"not a number: {value!r}") from None
    if not d.is_finite() or d < 0:
        raise click.BadParameter(f"must be a non-negative number, got {value!r}")
    return d


@click.command("backtest")
@journal_arg
@click.option("--strategy", "strategy_spec", required=True, metavar="NAME",
              help="Strategy to test (entry point, module:Class or file.py:Class).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML file whose [strategy] table configures the strategy.")
@click.option("--session", help="Session whose market data to use (default: the last one).")
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Journal to write (default: JOURNAL-backtest.sqlite beside it).")
@click.option("--latency-ms", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="One-way latency between the strategy and the simulated exchange.")
@click.option("--maker-fee", callback=_decimal, help="Maker fee rate (default: recorded).")
@click.option("--taker-fee", callback=_decimal, help="Taker fee rate (default: recorded).")
@click.option("--balance", callback=_decimal, default="10000", show_default=True,
              help="Starting USDT balance.")
@click.option("--depth-levels", type=click.IntRange(min=1), default=20, show_default=True,
              help="Recorded book levels a side mirrored as liquidity.")
@click.option("--deal-fills/--no-deal-fills", default=True, show_default=True,
              help="Let recorded deals fill resting strategy orders.")
@_friendly
def backtest_command(path: Path, strategy_spec: str, config_path: Path | None,
                     session: str | None, out_path: Path | None, latency_ms: float,
                     maker_fee: Decimal | None, taker_fee: Decimal | None, balance: Decimal,
                     depth_levels: int, deal_fills: bool) -> None:
    """Run a strategy over a recorded session's market data against the simulator."""
    from engine.backtest import run_backtest
    from engine.config import load_config

    config = dict(load_config(config_path).strategy) if config_path is not None else {}
    out = out_path or path.with_name(f"{path.stem}-backtest{path.suffix or '.sqlite'}")
    with _open(path) as source:
        if session:
            info = source.session(session)
        else:
            candidates = [s for s in source.sessions() if s.events and s.mode != "backtest"]
            if not candidates:
                raise EngineError(f"{path}: no recorded session to backtest on")
            info = candidates[-1]
        progress = _Progress(f"backtest over {info.id[:8]}", info.events)
        try:
            with Journal.open(out, synchronous="NORMAL") as out_journal:
                result = run_backtest(
                    source, info.id, strategy_spec, config, out_journal,
                    latency_ms=latency_ms, maker_fee=maker_fee, taker_fee=taker_fee,
                    balance=balance if balance is not None else Decimal(10000),
                    depth_levels=depth_levels, fills_from_deals=deal_fills,
                    progress=progress)
        finally:
            progress.close()
    for line in result.lines():
        click.echo(line)


# --------------------------------------------------------------------------- audit


@click.group("audit", cls=OneLineGroup)
def audit_group() -> None:
    """Post-mortem audit: verify, sessions, order timelines, state as of, anomalies, export."""


@audit_group.command("verify")
@journal_arg
@output_format
@_friendly
def audit_verify(path: Path, fmt: str) -> None:
    """Recompute the hash chain; exit 3 and name the first bad seq when it is broken."""
    with _open(path) as journal:
        total = journal.info().events
        result = journal.verify(
            progress=lambda n: click.echo(f"verified {n}/{total} events", err=True))
    if fmt == "json":
        click.echo(orjson.dumps({
            "ok": result.ok, "checked": result.checked, "first_bad_seq": result.first_bad_seq,
            "problem": result.problem, "last_seq": result.last_seq,
            "last_hash": result.last_hash}).decode())
    elif result.ok:
        click.echo(f"OK: {result.checked} events, chain head seq {result.last_seq} "
                   f"{result.last_hash}")
    else:
        click.echo(f"BROKEN at seq {result.first_bad_seq}: {result.problem} "
                   f"({result.checked} events before it verified)")
    if not result.ok:
        raise SystemExit(EXIT_CHAIN_BROKEN)


@audit_group.command("sessions")
@journal_arg
@output_format
@_friendly
def audit_sessions(path: Path, fmt: str) -> None:
    """Every session: mode, strategy and version, versions, config hash, seq range."""
    with _open(path) as journal:
        sessions = journal.sessions()
    rows = [{"id": s.id, "started": _iso(s.started_ns), "mode": s.mode,
             "strategy": s.strategy, "strategy_version": s.strategy_version,
             "engine": s.engine_version, "parser": s.parser_version,
             "config_hash": s.config_hash, "events": s.events, "first_seq": s.first_seq,
             "last_seq": s.last_seq} for s in sessions]
    if fmt == "json":
        for row in rows:
            click.echo(orjson.dumps(row).decode())
        return
    headers = list(rows[0]) if rows else ["id"]
    click.echo(_table(headers, ([r[h] for h in headers] for r in rows)))


@audit_group.command("timeline")
@journal_arg
@click.argument("order")
@output_format
@_friendly
def audit_timeline(path: Path, order: str, fmt: str) -> None:
    """The story of one order (by externalOid or orderId), each row with its latency."""
    with _open(path) as journal:
        tl = order_timeline(journal, order)
    if fmt == "json":
        for e in tl.entries:
            click.echo(orjson.dumps({"seq": e.seq, "ts_ns": e.ts_ns, "time": _iso(e.ts_ns),
                                     "kind": e.kind, "what": e.what,
                                     "since_intent_ms": e.since_intent_ms,
                                     "status": e.status}).decode())
        return
    click.echo(f"order externalOid {tl.external_oid or '-'}, orderId {tl.order_id or '-'}")
    click.echo(_table(["seq", "time", "+ms", "kind", "what", "status after"], (
        [e.seq, _iso(e.ts_ns), "" if e.since_intent_ms is None else f"{e.since_intent_ms:.1f}",
         e.kind, e.what, e.status] for e in tl.entries)))


@audit_group.command("state")
@journal_arg
@click.option("--at", "at", required=True, metavar="SEQ|TIME", callback=_until,
              help="A seq, ns since the epoch, or an ISO time.")
@click.option("--session", help="Resolve --at within this session.")
@click.option("--open-only", is_flag=True, help="Only orders not yet terminal.")
@output_format
@_friendly
def audit_state(path: Path, at: Until, session: str | None, open_only: bool,
                fmt: str) -> None:
    """Orders, positions and balances as they were: the fold of the journal up to --at."""
    with _open(path) as journal:
        seq = resolve_at(journal, at, session=session)
        state = state_at(journal, seq)
        row = next(iter(journal.read(from_seq=seq, to_seq=seq)))
    tables = state_tables(state, open_only=open_only)
    if fmt == "json":
        click.echo(orjson.dumps({"seq": seq, "ts_ns": row.ts_ns, "session": row.session,
                                 **tables}).decode())
        return
    click.echo(f"state as of seq {seq} ({_iso(row.ts_ns)}, session {row.session})")
    for name, columns in (("orders", ORDER_COLUMNS), ("positions", POSITION_COLUMNS),
                          ("balances", BALANCE_COLUMNS)):
        click.echo(f"\n{name} ({len(tables[name])}):")
        if tables[name]:
            click.echo(_table(columns, ([r[c] for c in columns] for r in tables[name])))


@audit_group.command("anomalies")
@journal_arg
@click.option("--session", help="Only this session (id or unique prefix).")
@output_format
@_friendly
def audit_anomalies(path: Path, session: str | None, fmt: str) -> None:
    """Gaps, resyncs, reconnects, rate limits, decode errors, unknown outcomes, kill-switch
    trips, reconcile differences and strategy failures, each with its seq and time."""
    with _open(path) as journal:
        found = list(anomalies(journal, session=session))
    if fmt == "json":
        for a in found:
            click.echo(orjson.dumps({"seq": a.seq, "ts_ns": a.ts_ns, "time": _iso(a.ts_ns),
                                     "session": a.session, "kind": a.kind,
                                     "detail": a.detail}).decode())
        return
    if not found:
        click.echo("no anomalies")
        return
    click.echo(_table(["seq", "time", "session", "kind", "detail"],
                      ([a.seq, _iso(a.ts_ns), a.session[:8], a.kind, a.detail]
                       for a in found)))


@audit_group.command("export")
@journal_arg
@click.option("--what", type=click.Choice(list(EXPORT_KINDS)), required=True,
              help="Fills, orders (as the fold leaves them) or every event.")
@click.option("--format", "fmt", type=click.Choice(list(EXPORT_FORMATS)), default="csv",
              show_default=True,
              help="parquet (typed columns) needs pyarrow: the tapeline[parquet] extra.")
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Output file (default: stdout; parquet needs one).")
@click.option("--session", help="Only this session (id or unique prefix).")
@_friendly
def audit_export(path: Path, what: str, fmt: str, out_path: Path | None,
                 session: str | None) -> None:
    """Export fills, orders or events as CSV or JSON lines (or parquet with pyarrow)."""
    bar: _Progress | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = _Progress(f"exporting {what}", total)
        bar(done)

    try:
        with _open(path) as journal:
            n = export(journal, what, fmt, out_path if out_path is not None else sys.stdout,
                       session=session, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    if out_path is not None:
        click.echo(f"wrote {n} {what} to {out_path}", err=True)


def standalone_cli() -> click.Group:
    """A group holding the three commands, for tests and for use without ``engine.cli``."""
    group = OneLineGroup("tapeline", context_settings={"help_option_names": ["-h", "--help"]})
    group.add_command(replay_command)
    group.add_command(backtest_command)
    group.add_command(audit_group)
    return group
