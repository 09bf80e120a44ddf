"""The ``tapeline`` command (shell).

Every expected failure (missing file, not a journal, damage, bad arguments) ends in one line
on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from engine import __version__
from engine.errors import EngineError
from engine.journal import Journal

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILURE = 1
EXIT_VERIFY_FAILED = 3


def friendly_errors(fn: F) -> F:
    """Turn the engine's own errors into a one-line message and exit code 1."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EngineError as exc:
            raise click.ClickException(str(exc)) from exc
        except BrokenPipeError:  # e.g. `tapeline journal events J | head`
            sys.stderr.close()
            raise SystemExit(0) from None

    return wrapper  # type: ignore[return-value]


class _OneLineErrorGroup(click.Group):
    """A click group whose usage errors are one ``Error: ...`` line, without the usage banner.

    Click prints a usage line and a ``Try --help`` hint above every usage error; that breaks
    the one-line promise of this module. A bare command group (``NoArgsIsHelpError``) still
    shows its help.
    """

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with _one_line_usage_errors():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _one_line_usage_errors():
            return super().invoke(ctx)


@contextmanager
def _one_line_usage_errors() -> Iterator[None]:
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise
    except click.UsageError as exc:
        raise _PlainUsageError(_one_line(exc.format_message())) from exc
    except click.ClickException as exc:
        if "\n" not in exc.message and "\r" not in exc.message:
            raise
        plain = click.ClickException(_one_line(exc.message))
        plain.exit_code = exc.exit_code  # type: ignore[misc]
        raise plain from exc


def _one_line(text: str) -> str:
    """Escape line breaks so that an error stays one line whatever the input held."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


class _PlainUsageError(click.ClickException):
    """A usage error shown as one line; exit code 2 like click's own usage errors."""

    exit_code = 2


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, v in enumerate(row):
            widths[i] = max(widths[i], min(len(v), 80))
    def fmt(row: Sequence[str]) -> str:
        return "  ".join(
            (v if len(v) <= 80 else v[:77] + "...").ljust(widths[i]) for i, v in enumerate(row)
        ).rstrip()
    lines = [fmt(list(headers)), fmt(["-" * w for w in widths])]
    lines.extend(fmt(r) for r in cells)
    return "\n".join(lines)


def _open_reader(path: str) -> Journal:
    return Journal.open(path, readonly=True)


journal_path = click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
output_format = click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
    help="Output as an aligned table or as JSON (one object per line for events).",
)


@click.group(cls=_OneLineErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tapeline")
def main() -> None:
    """tapeline: an event-sourced trading engine for MEXC Futures."""


@main.group()
def journal() -> None:
    """Inspect and verify a journal file."""


@journal.command("info")
@journal_path
@output_format
@friendly_errors
def journal_info(path: Path, fmt: str) -> None:
    """Counts, seq range, schema and size of a journal."""
    with _open_reader(str(path)) as j:
        info = j.info()
    data = {
        "path": info.path, "schema": list(info.schema), "sessions": info.sessions,
        "events": info.events, "first_seq": info.first_seq, "last_seq": info.last_seq,
        "last_hash": info.last_hash, "size_bytes": info.size_bytes,
    }
    if fmt == "json":
        click.echo(orjson.dumps(data).decode())
    else:
        for k, v in data.items():
            click.echo(f"{k:<11} {', '.join(v) if isinstance(v, list) else v}")


@journal.command("sessions")
@journal_path
@output_format
@friendly_errors
def journal_sessions(path: Path, fmt: str) -> None:
    """List the sessions a journal holds."""
    with _open_reader(str(path)) as j:
        sessions = j.sessions()
    if fmt == "json":
        for s in sessions:
            click.echo(orjson.dumps({
                "id": s.id, "started_ns": s.started_ns, "engine_version": s.engine_version,
                "strategy": s.strategy, "strategy_version": s.strategy_version,
                "config_hash": s.config_hash, "parser_version": s.parser_version,
                "mode": s.mode, "events": s.events, "first_seq": s.first_seq,
                "last_seq": s.last_seq,
            }).decode())
        return
    click.echo(_table(
        ["id", "mode", "strategy", "events", "first_seq", "last_seq", "engine", "parser"],
        [[s.id, s.mode, s.strategy, s.events, s.first_seq, s.last_seq, s.engine_version,
          s.parser_version] for s in sessions],
    ))


@journal.command("events")
@journal_path
@click.option("--session", help="Only this session (id or unique prefix).")
@click.option("--kind", "kinds", multiple=True,
              help="Only these kinds (repeatable); a trailing * matches a prefix.")
@click.option("--stream", help="Only this stream (symbol or order key).")
@click.option("--from-seq", type=click.IntRange(min=1), help="Start at this seq.")
@click.option("--to-seq", type=click.IntRange(min=1), help="Stop after this seq.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="At most this many events.")
@output_format
@friendly_errors
def journal_events(
    path: Path, session: str | None, kinds: tuple[str, ...], stream: str | None,
    from_seq: int | None, to_seq: int | None, limit: int, fmt: str,
) -> None:
    """Print events, filtered, in seq order."""
    prefixes = [k[:-1] for k in kinds if k.endswith("*")]
    exact = [k for k in kinds if not k.endswith("*")]
    if len(prefixes) > 1 or (prefixes and exact):
        raise click.BadParameter("use either one KIND* prefix or exact kinds", param_hint="--kind")
    with _open_reader(str(path)) as j:
        sid = j.session(session).id if session else None
        events = j.read(
            session=sid, kinds=exact or None, kind_prefix=prefixes[0] if prefixes else None,
            stream=stream, from_seq=from_seq, to_seq=to_seq, limit=limit,
        )
        if fmt == "json":
            for ev in events:
                click.echo(orjson.dumps({
                    "seq": ev.seq, "session": ev.session, "ts_ns": ev.ts_ns,
                    "venue_ts_ms": ev.venue_ts_ms, "source": ev.source, "kind": ev.kind,
                    "stream": ev.stream, "cause": ev.cause, "body": ev.body, "hash": ev.hash,
                }).decode())
        else:
            click.echo(_table(
                ["seq", "session", "ts_ns", "source", "kind", "stream", "cause", "body"],
                ([ev.seq, ev.session[:8], ev.ts_ns, ev.source, ev.kind, ev.stream, ev.cause,
                  ev.body] for ev in events),
            ))


@journal.command("verify")
@journal_path
@output_format
@friendly_errors
def journal_verify(path: Path, fmt: str) -> None:
    """Recompute the hash chain; exit 3 and name the first bad seq when it is broken."""
    with _open_reader(str(path)) as j:
        total = j.info().events
        def progress(n: int) -> None:
            click.echo(f"verified {n}/{total} events", err=True)
        result = j.verify(progress=progress)
    if fmt == "json":
        click.echo(orjson.dumps({
            "ok": result.ok, "checked": result.checked, "first_bad_seq": result.first_bad_seq,
            "problem": result.problem, "last_seq": result.last_seq, "last_hash": result.last_hash,
        }).decode())
    elif result.ok:
        click.echo(
            f"OK: {result.checked} events, chain head seq {result.last_seq} {result.last_hash}"
        )
    else:
        click.echo(
            f"BROKEN at seq {result.first_bad_seq}: {result.problem} "
            f"({result.checked} events before it verified)"
        )
    if not result.ok:
        raise SystemExit(EXIT_VERIFY_FAILED)


def _register() -> None:
    """Attach the commands that live in their own modules."""
    from adapters.mexc.sim.cli import sim_command
    from engine.cli_kill import kill_command
    from engine.cli_report import report_command
    from engine.cli_run import demo_command, run_command
    from engine.doctor import doctor_command
    from engine.scaffold import new_strategy_command

    main.add_command(run_command, "run")
    main.add_command(demo_command, "demo")
    main.add_command(sim_command, "sim")
    main.add_command(kill_command, "kill")
    main.add_command(new_strategy_command, "new-strategy")
    main.add_command(doctor_command, "doctor")
    main.add_command(report_command, "report")
    from engine.cli_audit import audit_group, backtest_command, replay_command

    main.add_command(replay_command, "replay")
    main.add_command(backtest_command, "backtest")
    main.add_command(audit_group, "audit")


_register()


if __name__ == "__main__":  # pragma: no cover
    main()
