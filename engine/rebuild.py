"""Rebuilding state from a journal (shell: reads the journal).

The code path that rebuilds state at start-up is the one audit and replay use: stream the
rows in seq order, interpret each with the adapter's codecs, fold. Rows that cannot be
interpreted are counted, not fatal (their ``engine.decode_failed`` twin is in the journal).
:func:`rebuild_state` reads :class:`~engine.events.Fact` rows (only what interpreting needs),
so the ``interpret`` it is given must take a :class:`~engine.events.Row`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from engine.codec import JournalDecodeError
from engine.events import Row
from engine.journal import Journal
from engine.projections import State
from engine.projections.state import folder

__all__ = ["fold_rows", "rebuild_state"]


def fold_rows(
    state: State,
    rows: Any,
    interpret: Callable[[Row], Sequence[Any]],
    *,
    decode_errors: tuple[type[Exception], ...] = (),
    progress: Callable[[int], None] | None = None,
) -> tuple[State, int, int]:
    """Fold ``rows`` into ``state``; return it with the counts of rows folded and unreadable."""
    errors: tuple[type[Exception], ...] = (JournalDecodeError, *decode_errors)
    fold = folder(state)
    folded = bad = 0
    every = 100_000 if progress is not None else -1
    for ev in rows:
        try:
            values = interpret(ev)
        except errors:
            bad += 1
            continue
        fold(values)
        folded += 1
        if folded == every:
            assert progress is not None
            progress(folded)
            every += 100_000
    return state, folded, bad


def rebuild_state(
    journal: Journal,
    interpret: Callable[[Row], Sequence[Any]],
    *,
    session: str | None = None,
    to_seq: int | None = None,
    decode_errors: tuple[type[Exception], ...] = (),
    progress: Callable[[int], None] | None = None,
) -> tuple[State, int, int]:
    """The state as of ``to_seq`` (or the end), from every session or one."""
    return fold_rows(State(), journal.read_facts(session=session, to_seq=to_seq), interpret,
                     decode_errors=decode_errors, progress=progress)
