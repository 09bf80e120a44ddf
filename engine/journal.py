"""The append-only, hash-chained SQLite journal (shell: owns a SQLite connection).

Theory of operation
-------------------
One file holds many sessions. The ``events`` table is the total order (``seq``); every row
carries ``hash = sha256(prev_hash || row)`` (see :func:`engine.events.chain_hash`), and
triggers refuse UPDATE, DELETE and a colliding INSERT (``INSERT OR REPLACE``) on ``events``
and ``sessions``. One process writes at a time:
:meth:`Journal.open` takes an exclusive ``flock`` on ``PATH.lock`` for writers, and the
writer keeps the chain head (last seq and hash) in memory. :meth:`Journal.append` writes a
whole batch in one ``BEGIN IMMEDIATE … COMMIT`` and returns only after the commit, so a
caller that has seen ``append`` return may act on the batch: it is durable (WAL,
``synchronous=FULL`` by default). Reads are keyset-paginated by ``seq`` so that no read ever
holds a whole session in memory or a long read transaction.

The schema is created and evolved with :class:`sqlite_utils.Migrations`; ``PRAGMA
application_id`` marks the file as a tapeline journal. Limitation: a hash chain with no
external anchor cannot detect rows removed from the *end* of the file; ``verify`` reports the
last seq and hash so an operator can anchor them elsewhere.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Final

import sqlite_utils
from attrs import frozen

from engine import __version__
from engine.chaincheck import MAX_SEQ, MIN_SEQ, ROW_COLUMNS, verify_chain
from engine.errors import (
    JournalCorruptError,
    JournalError,
    JournalLockedError,
    JournalWriteError,
    NotAJournalError,
)
from engine.events import GENESIS_HASH, SOURCES, Event, Fact, NewEvent, chain_hash

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_MIGRATIONS",
    "Journal",
    "JournalInfo",
    "SessionInfo",
    "VerifyResult",
]

APPLICATION_ID: Final = 0x54504C4E  # "TPLN"
READ_PAGE: Final = 2000
_FACT_COLUMNS: Final = "seq, ts_ns, venue_ts_ms, source, kind, stream, cause, body"  # events.Fact
_INSERT: Final = (
    "INSERT INTO events (seq, session, ts_ns, venue_ts_ms, source, kind, stream, cause, body, hash)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

SCHEMA_MIGRATIONS = sqlite_utils.Migrations("tapeline.journal")

log = logging.getLogger(__name__)


@SCHEMA_MIGRATIONS(name="0001_initial")
def _m0001_initial(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            started_ns INTEGER NOT NULL,
            engine_version TEXT NOT NULL,
            strategy TEXT,
            strategy_version TEXT,
            config_hash TEXT,
            parser_version TEXT,
            mode TEXT,
            meta TEXT NOT NULL DEFAULT '{}'
        )
        """
    )
    db.execute(
        """
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            session TEXT NOT NULL REFERENCES sessions(id),
            ts_ns INTEGER NOT NULL,
            venue_ts_ms INTEGER,
            source TEXT NOT NULL,
            kind TEXT NOT NULL,
            stream TEXT,
            cause INTEGER,
            body TEXT NOT NULL,
            hash TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX events_session_seq ON events(session, seq)")
    db.execute("CREATE INDEX events_kind_seq ON events(kind, seq)")
    db.execute("CREATE INDEX events_stream_seq ON events(stream, seq)")
    for table in ("events", "sessions"):
        for op in ("UPDATE", "DELETE"):
            db.execute(
                f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'journal is append-only: {op} on {table} refused'); END"
            )


@SCHEMA_MIGRATIONS(name="0002_no_replace")
def _m0002_no_replace(db: sqlite_utils.Database) -> None:
    # INSERT OR REPLACE deletes the row it collides with without firing DELETE triggers
    # (unless recursive_triggers is on), so refuse an insert whose key already exists.
    for table, key in (("events", "seq"), ("sessions", "id")):
        db.execute(
            f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "
            f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {key} = NEW.{key}) "
            f"BEGIN SELECT RAISE(ABORT, 'journal is append-only: {table} {key} exists'); END"
        )


@frozen
class SessionInfo:
    """One row of the sessions table, with its event count and seq range."""

    id: str
    started_ns: int
    engine_version: str
    strategy: str | None
    strategy_version: str | None
    config_hash: str | None
    parser_version: str | None
    mode: str | None
    meta: str
    events: int
    first_seq: int | None
    last_seq: int | None


@frozen
class JournalInfo:
    """What a journal file holds."""

    path: str
    schema: tuple[str, ...]
    sessions: int
    events: int
    first_seq: int | None
    last_seq: int | None
    last_hash: str
    size_bytes: int


@frozen
class VerifyResult:
    """The outcome of :meth:`Journal.verify`. ``first_bad_seq`` is None when the chain holds."""

    ok: bool
    checked: int
    first_bad_seq: int | None
    problem: str | None
    last_seq: int | None
    last_hash: str


_READ_ERRORS: Final = (sqlite3.DatabaseError, UnicodeDecodeError)
"""What SQLite raises on a damaged file. ``UnicodeDecodeError`` comes from Python decoding
an error message that quotes damaged bytes (``malformed database schema (...)``)."""


def _translate(exc: Exception, path: Path) -> JournalError:
    if isinstance(exc, UnicodeDecodeError):
        return JournalCorruptError(f"{path}: the journal file is damaged (undecodable text)")
    text = str(exc)
    if "not a database" in text or "file is encrypted" in text:
        return NotAJournalError(f"{path}: not a tapeline journal (not an SQLite database)")
    if "malformed" in text or "disk image" in text or "corrupt" in text:
        return JournalCorruptError(f"{path}: the journal file is damaged ({text})")
    return JournalError(f"{path}: {text}")


class _Checkpointer:
    """A daemon thread running ``PRAGMA wal_checkpoint(PASSIVE)`` on its own connection
    (see :meth:`Journal.checkpoint_in_background`)."""

    def __init__(self, path: Path, synchronous: str, interval_s: float) -> None:
        self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        # a checkpoint syncs the database file according to its own connection's setting
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"checkpoint {path.name}",
                                        daemon=True)
        self.checkpoints = 0

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopping.wait(self._interval_s):
                try:
                    self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error as exc:  # busy or failing: try again next time
                    log.warning("background WAL checkpoint failed: %s", exc)
        finally:
            self._conn.close()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()


class Journal:
    """An open journal file. Use :meth:`open`; close it (or use ``with``) when done."""

    def __init__(
        self, path: Path, conn: sqlite3.Connection, *, writable: bool, lock: IO[str] | None
    ):
        self.path = path
        self._conn = conn
        self._writable = writable
        self._lock = lock
        self._db = sqlite_utils.Database(conn)
        self._last_seq = 0
        self._last_hash = GENESIS_HASH
        self._known_sessions: set[str] = set()
        self._checkpointer: _Checkpointer | None = None
        self._synchronous = "FULL"
        if writable:
            self._synchronous = str(
                conn.execute("PRAGMA synchronous").fetchone()[0])  # 0..3, as SQLite reports
            self._load_head()

    # ------------------------------------------------------------------ opening and closing

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        readonly: bool = False,
        create: bool = True,
        synchronous: str = "FULL",
    ) -> Journal:
        """Open (and, for a writer, create or migrate) the journal at ``path``.

        A reader (``readonly=True``) never changes the file and fails with
        :class:`NotAJournalError` when it is missing or not a journal. A writer takes the
        single-writer lock and fails with :class:`JournalLockedError` when another process
        holds it.
        """
        p = Path(path)
        if synchronous.upper() not in {"FULL", "NORMAL", "EXTRA"}:
            raise JournalError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        if p.is_dir():
            raise NotAJournalError(f"{p}: is a directory, not a journal file")
        exists = p.exists()
        if not exists and not p.parent.is_dir():
            raise JournalError(f"{p}: directory {p.parent} does not exist")
        if not exists and (readonly or not create):
            raise NotAJournalError(f"{p}: no such journal file")
        if exists and p.stat().st_size == 0 and readonly:
            raise NotAJournalError(f"{p}: empty file, not a tapeline journal")
        lock = None if readonly else cls._take_lock(p)
        try:
            if readonly:
                conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True, isolation_level=None)
            else:
                # the writer may commit from a worker thread (group commit); it stays the
                # only user of this connection, one call at a time
                conn = sqlite3.connect(str(p), isolation_level=None, check_same_thread=False)
            try:
                cls._check_identity(
                    conn, p, fresh=not exists or p.stat().st_size == 0, readonly=readonly
                )
                if not readonly:
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
                    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                    SCHEMA_MIGRATIONS.apply(sqlite_utils.Database(conn))
            except _READ_ERRORS as exc:
                conn.close()
                raise _translate(exc, p) from exc
            except BaseException:
                conn.close()
                raise
        except BaseException:
            if lock is not None:
                lock.close()
            raise
        return cls(p, conn, writable=not readonly, lock=lock)

    @staticmethod
    def _take_lock(p: Path) -> IO[str]:
        lock = open(f"{p}.lock", "a")  # noqa: SIM115 - held for the journal's lifetime
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            lock.close()
            raise JournalLockedError(f"{p}: another process is writing this journal") from exc
        lock.truncate(0)  # the writer's pid, for `tapeline kill`
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        return lock

    @staticmethod
    def _check_identity(
        conn: sqlite3.Connection, p: Path, *, fresh: bool, readonly: bool
    ) -> None:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        if app_id == APPLICATION_ID:
            return
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        # A writer may turn an empty SQLite file into a journal; a reader has nothing to read.
        if (fresh or not tables) and app_id == 0 and not readonly:
            return
        raise NotAJournalError(f"{p}: an SQLite file, but not a tapeline journal")

    def close(self) -> None:
        """Close the connection and release the writer lock (after stopping the background
        checkpointer, if one runs; the last connection's close checkpoints the WAL)."""
        try:
            if self._checkpointer is not None:
                self._checkpointer.stop()
                self._checkpointer = None
            self._conn.close()
        finally:
            if self._lock is not None:
                self._lock.close()
                self._lock = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _load_head(self) -> None:
        row = self._conn.execute(
            "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if row is not None:
            self._last_seq, self._last_hash = int(row[0]), str(row[1])
        self._known_sessions = {r[0] for r in self._conn.execute("SELECT id FROM sessions")}

    # ------------------------------------------------------------------ writing

    @property
    def last_seq(self) -> int:
        """The seq of the last committed row (0 for an empty journal)."""
        return self._last_seq

    def start_session(
        self,
        *,
        started_ns: int,
        strategy: str | None = None,
        strategy_version: str | None = None,
        config_hash: str | None = None,
        parser_version: str | None = None,
        mode: str | None = None,
        meta: str = "{}",
        session_id: str | None = None,
    ) -> str:
        """Record a new session and return its id."""
        self._require_writer()
        sid = session_id or uuid.uuid4().hex[:16]
        try:
            self._conn.execute(
                "INSERT INTO sessions (id, started_ns, engine_version, strategy, strategy_version,"
                " config_hash, parser_version, mode, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (sid, started_ns, __version__, strategy, strategy_version, config_hash,
                 parser_version, mode, meta),
            )
        except sqlite3.IntegrityError as exc:
            raise JournalWriteError(f"session {sid!r} already exists") from exc
        except sqlite3.DatabaseError as exc:
            raise JournalWriteError(f"{self.path}: cannot start a session: {exc}") from exc
        self._known_sessions.add(sid)
        return sid

    def append(self, session: str, events: Sequence[NewEvent]) -> range:
        """Append ``events`` to ``session`` as one committed batch; return their seqs.

        Returns only after COMMIT. On any failure nothing of the batch is stored, the chain
        head is unchanged, and :class:`JournalWriteError` is raised.
        """
        self._require_writer()
        if session not in self._known_sessions:
            raise JournalWriteError(f"unknown session {session!r}: call start_session first")
        if not events:
            return range(self._last_seq + 1, self._last_seq + 1)
        seq = self._last_seq
        prev = self._last_hash
        rows = []
        for ev in events:
            if ev.source not in SOURCES:
                raise JournalWriteError(f"bad source {ev.source!r} for kind {ev.kind!r}")
            seq += 1
            prev = chain_hash(
                prev, seq, session, ev.ts_ns, ev.venue_ts_ms, ev.source, ev.kind,
                ev.stream, ev.cause, ev.body,
            )
            rows.append(
                (seq, session, ev.ts_ns, ev.venue_ts_ms, ev.source, ev.kind, ev.stream,
                 ev.cause, ev.body, prev)
            )
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_INSERT, rows)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise JournalWriteError(
                f"{self.path}: append of {len(rows)} events failed: {exc}"
            ) from exc
        first = self._last_seq + 1
        self._last_seq, self._last_hash = seq, prev
        return range(first, seq + 1)

    def checkpoint_in_background(self, interval_s: float = 0.25) -> None:
        """Take WAL checkpoints off the commit path: turn the writer's auto-checkpoint off and
        checkpoint (``PASSIVE``: never blocks the writer) from a thread with its own
        connection every ``interval_s`` seconds until :meth:`close`.

        Without this, SQLite checkpoints inside whichever commit pushes the WAL past 1000
        pages (every ~200th single-row commit), and that commit takes milliseconds. The WAL
        stays bounded: a writer restarts it from the top once a checkpoint has caught up.
        Idempotent.
        """
        self._require_writer()
        if self._checkpointer is not None:
            return
        checkpointer = _Checkpointer(self.path, self._synchronous, interval_s)
        self._conn.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpointer = checkpointer
        checkpointer.start()

    def _require_writer(self) -> None:
        if not self._writable:
            raise JournalError(f"{self.path}: opened read-only")

    # ------------------------------------------------------------------ reading

    def read(
        self,
        *,
        session: str | None = None,
        from_seq: int | None = None,
        to_seq: int | None = None,
        kinds: Iterable[str] | None = None,
        kind_prefix: str | None = None,
        stream: str | None = None,
        limit: int | None = None,
        page: int = READ_PAGE,
    ) -> Iterator[Event]:
        """Stream events in seq order, filtered; memory stays bounded by ``page`` rows.

        Without ``from_seq`` the read starts at the lowest seq in the file, whatever it is (a
        tampered file may hold rows at seq <= 0, and :meth:`verify` must see them).
        """
        for rows in self._pages(ROW_COLUMNS, session, from_seq, to_seq, kinds, kind_prefix,
                                stream, limit, page):
            for r in rows:
                yield Event(*r)

    def read_facts(
        self,
        *,
        session: str | None = None,
        from_seq: int | None = None,
        to_seq: int | None = None,
        page: int = READ_PAGE,
    ) -> Iterator[Fact]:
        """Like :meth:`read`, as :class:`~engine.events.Fact` tuples (no session, no hash):
        what rebuilds and replays read. About 40 % fewer instructions a row than :meth:`read`.
        """
        new = tuple.__new__
        for rows in self._pages(_FACT_COLUMNS, session, from_seq, to_seq, None, None, None,
                                None, page):
            for r in rows:
                yield new(Fact, r)

    def _pages(
        self,
        columns: str,
        session: str | None,
        from_seq: int | None,
        to_seq: int | None,
        kinds: Iterable[str] | None,
        kind_prefix: str | None,
        stream: str | None,
        limit: int | None,
        page: int,
    ) -> Iterator[list[Any]]:
        """The filtered rows of :meth:`read`, ``columns`` of each (seq first), by pages."""
        where = ["seq >= ?"]
        params: list[Any] = []
        if session is not None:
            if kinds is None and kind_prefix is None and stream is None:
                # A whole session: walk the table by seq between the session's first and last
                # rows (both found in the session index once a page) rather than follow that
                # index, which costs a table lookup a row. The bounds change nothing in what
                # matches; they only show SQLite where the session lies.
                # (?1 is the lowest seq, ?2 the session; the parameters after keep their order)
                where = ["seq >= max(?1, (SELECT seq FROM events WHERE session = ?2 ORDER BY seq"
                         " LIMIT 1))", "seq <= (SELECT seq FROM events WHERE session = ?2"
                         " ORDER BY seq DESC LIMIT 1)", "+session = ?2"]
            else:
                where.append("session = ?")
            params.append(session)
        if to_seq is not None:
            where.append("seq <= ?")
            params.append(to_seq)
        kind_list = list(kinds) if kinds is not None else None
        if kind_list:
            where.append(f"kind IN ({','.join('?' * len(kind_list))})")
            params.extend(kind_list)
        if kind_prefix is not None:
            where.append("substr(kind, 1, ?) = ?")
            params.extend([len(kind_prefix), kind_prefix])
        if stream is not None:
            where.append("stream = ?")
            params.append(stream)
        sql = f"SELECT {columns} FROM events WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?"
        lowest = from_seq if from_seq is not None else MIN_SEQ
        remaining = limit
        while remaining is None or remaining > 0:
            n = page if remaining is None else min(page, remaining)
            try:
                rows = self._conn.execute(sql, [lowest, *params, n]).fetchall()
            except _READ_ERRORS as exc:
                raise _translate(exc, self.path) from exc
            yield rows
            if len(rows) < n or rows[-1][0] >= MAX_SEQ:
                return
            lowest = rows[-1][0] + 1
            if remaining is not None:
                remaining -= len(rows)

    def sessions(self) -> list[SessionInfo]:
        """Every session, oldest first, with event counts."""
        sql = (
            "SELECT s.id, s.started_ns, s.engine_version, s.strategy, s.strategy_version,"
            " s.config_hash, s.parser_version, s.mode, s.meta,"
            " (SELECT count(*) FROM events e WHERE e.session = s.id),"
            " (SELECT min(seq) FROM events e WHERE e.session = s.id),"
            " (SELECT max(seq) FROM events e WHERE e.session = s.id)"
            " FROM sessions s ORDER BY s.started_ns, s.rowid"
        )
        try:
            return [SessionInfo(*r) for r in self._conn.execute(sql)]
        except _READ_ERRORS as exc:
            raise _translate(exc, self.path) from exc

    def session(self, session_id: str) -> SessionInfo:
        """One session by id (a unique prefix is accepted)."""
        matches = [s for s in self.sessions() if s.id.startswith(session_id)]
        exact = [s for s in matches if s.id == session_id]
        if exact:
            return exact[0]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise JournalError(f"{self.path}: no session {session_id!r}")
        raise JournalError(f"{self.path}: session prefix {session_id!r} is ambiguous")

    def info(self) -> JournalInfo:
        """Counts, seq range and schema of the file."""
        try:
            n_sessions = self._conn.execute("SELECT count(*) FROM sessions").fetchone()[0]
            first, last, count = self._conn.execute(
                "SELECT min(seq), max(seq), count(*) FROM events"
            ).fetchone()
            head = self._conn.execute(
                "SELECT hash FROM events ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            schema = tuple(m.name for m in SCHEMA_MIGRATIONS.applied(self._db))
        except _READ_ERRORS as exc:
            raise _translate(exc, self.path) from exc
        size = sum(
            os.path.getsize(f) for f in (self.path, Path(f"{self.path}-wal")) if os.path.exists(f)
        )
        return JournalInfo(
            path=str(self.path), schema=schema, sessions=n_sessions, events=count,
            first_seq=first, last_seq=last, last_hash=head[0] if head else GENESIS_HASH,
            size_bytes=size,
        )

    def verify(
        self, *, progress: Callable[[int], None] | None = None, workers: int | None = None
    ) -> VerifyResult:
        """Recompute the hash chain from the first row; name the first bad seq, if any.

        Seqs must run 1, 2, 3, ... with no gap. ``first_bad_seq`` is the lowest seq that does
        not verify, so every row below it does: a changed row's own seq, or the seq where a
        row is missing or an unexpected one stands. ``progress(n)`` is called as each further
        100,000 rows have verified.

        A big journal is checked in chunks by worker processes at once (see
        :mod:`engine.chaincheck`), with the same result as one pass: ``workers=None`` chooses
        (parallel from :data:`engine.chaincheck.PARALLEL_MIN_ROWS` rows), ``workers=1``
        checks in this process, ``workers=k`` uses ``k`` processes. A worker that fails or
        stalls raises :class:`JournalError`.
        """
        try:
            outcome = verify_chain(self._conn, self.path, progress=progress, workers=workers)
        except _READ_ERRORS as exc:
            raise _translate(exc, self.path) from exc
        return VerifyResult(outcome.status != "bad", outcome.next_seq - 1, outcome.bad_seq,
                            outcome.problem, outcome.last_seq, outcome.last_hash)
