"""``tapeline kill``: trip the kill switch of a running session from another terminal (shell).

The engine that writes a journal holds ``JOURNAL.lock`` and keeps its pid in it; ``kill``
sends that process SIGUSR1, which the runtime turns into a journaled kill-switch trip (no
new orders, cancel all open orders, keep recording, alert).
"""

from __future__ import annotations

import fcntl
import os
import signal
from pathlib import Path

import click

__all__ = ["kill_command"]


@click.command("kill")
@click.argument("journal", type=click.Path(dir_okay=False, path_type=Path))
def kill_command(journal: Path) -> None:
    """Trip the kill switch of the session writing JOURNAL (sends it SIGUSR1)."""
    lock = Path(f"{journal}.lock")
    try:
        with open(lock) as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                pass  # held: a writer is running, as expected
            else:
                raise click.ClickException(f"no session is writing {journal} right now")
            text = f.read().strip()
    except FileNotFoundError:
        raise click.ClickException(f"no session is writing {journal} (no {lock})") from None
    if not text.isdigit():
        raise click.ClickException(f"{lock} holds no pid; is the engine older than this tool?")
    pid = int(text)
    try:
        os.kill(pid, signal.SIGUSR1)
    except ProcessLookupError:
        raise click.ClickException(f"process {pid} is gone") from None
    except PermissionError:
        raise click.ClickException(f"not allowed to signal process {pid}") from None
    click.echo(f"kill switch requested for pid {pid} (journal {journal})")
