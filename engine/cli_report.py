"""The ``report`` command of ``tapeline``: a session as one HTML page (shell).

:func:`build_report` verifies the journal's hash chain, gathers the session's data in one
streaming pass (:func:`engine.report_data.collect`) and renders it with
:func:`engine.report.render_html`: metadata, summary tiles, equity and PnL, positions,
prices with fills, the order-latency histogram, anomalies on a timeline and in a table, and
the order and fill summary. The page needs nothing but itself: CSS and SVG charts are
inline, a few lines of vanilla JavaScript add a hover read-out (the page reads fine without
them), and nothing is fetched. The same journal gives the same bytes (the page holds no
wall-clock time).

:data:`report_command` is the click command; ``engine.cli`` registers it as ``report``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from engine import __version__
from engine.errors import EngineError
from engine.journal import Journal, SessionInfo
from engine.report import SECTIONS, render_html
from engine.report_data import ReportData, collect

__all__ = ["SECTIONS", "ReportError", "build_report", "default_output", "pick_session",
           "report_command", "write_report"]

F = TypeVar("F", bound=Callable[..., Any])


class ReportError(EngineError):
    """The report cannot be made (no such session, nowhere to write it, ...)."""


def pick_session(journal: Journal, session: str | None) -> SessionInfo:
    """The session named (id or unique prefix), else the last one with events."""
    if session:
        return journal.session(session)
    candidates = [s for s in journal.sessions() if s.events]
    if not candidates:
        raise ReportError(f"{journal.path}: no session with events to report on")
    return candidates[-1]


def default_output(journal_path: Path, info: SessionInfo) -> Path:
    """``JOURNAL-SESSION8.html`` beside the journal."""
    return journal_path.with_name(f"{journal_path.stem}-{info.id[:8]}.html")


def _check_output(out: Path) -> None:
    """Refuse an output path that cannot be written, before any work is done."""
    if out.is_dir():
        raise ReportError(f"{out}: is a directory; name the report file to write")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise ReportError(f"{out}: cannot write the report: directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise ReportError(f"{out}: cannot write the report: permission denied")


def write_report(html_text: str, out: Path) -> int:
    """Write the page atomically (a temporary file renamed over ``out``); return its size."""
    data = html_text.encode("utf-8")
    parent = out.parent if str(out.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ReportError(f"{out}: cannot write the report: {exc.strerror or exc}") from exc
    return len(data)


def build_report(journal_path: Path, session: str | None = None, *,
                 progress: Callable[[str, int, int], None] | None = None
                 ) -> tuple[ReportData, str]:
    """Verify, collect and render: the data and the page of one session."""
    with Journal.open(journal_path, readonly=True) as journal:
        info = pick_session(journal, session)
        total = journal.info().events
        chain = journal.verify(
            progress=None if progress is None else (lambda n: progress("verifying", n, total)))
        data = collect(journal, info, chain=chain, progress=progress)
    return data, render_html(data, journal_name=journal_path.name, version=__version__)


class _Progress:
    """Progress on stderr: a line every 100k rows (a live counter on a terminal)."""

    def __init__(self) -> None:
        self.phase = ""
        self.last = 0
        self.tty = sys.stderr.isatty()

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase != self.phase:
            self.phase, self.last = phase, 0
            if self.tty:
                click.echo("", err=True)
        if self.tty:
            pct = 100 * done / total if total else 100
            click.echo(f"\rreport: {phase} {done:,}/{total:,} rows ({pct:.0f}%)",
                       err=True, nl=False)
        elif done == 0 or done // 100_000 > self.last // 100_000 or done == total:
            click.echo(f"report: {phase} {done:,}/{total:,} rows", err=True)
        self.last = done

    def close(self) -> None:
        if self.tty and self.phase:
            click.echo("", err=True)


def _one_line_errors(fn: F) -> F:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EngineError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def _size(n: int) -> str:
    return f"{n / 1024:,.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:,.2f} MiB"


@click.command("report")
@click.argument("path", metavar="JOURNAL", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--session", help="The session (id or unique prefix); default: the last one.")
@click.option("-o", "--out", "out_path", type=click.Path(path_type=Path),
              help="The HTML file to write (default: JOURNAL-SESSION.html beside it).")
@_one_line_errors
def report_command(path: Path, session: str | None, out_path: Path | None) -> None:
    """Write a self-contained HTML report of a session: equity, positions, prices and fills,
    order latency, anomalies and a summary (opens offline in any browser)."""
    if out_path is not None:
        _check_output(out_path)
    progress = _Progress()
    try:
        if out_path is None:
            with Journal.open(path, readonly=True) as journal:
                out_path = default_output(path, pick_session(journal, session))
            _check_output(out_path)
        data, page = build_report(path, session, progress=progress)
    finally:
        progress.close()
    size = write_report(page, out_path)
    if not data.chain.ok:
        click.echo(f"warning: the journal's hash chain is broken at seq "
                   f"{data.chain.first_bad_seq}: {data.chain.problem}", err=True)
    click.echo(f"wrote {out_path} ({_size(size)}): session {data.session.id}, "
               f"{data.session.events:,} events; sections: {', '.join(SECTIONS)}")

