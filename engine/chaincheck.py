"""Checking a journal's hash chain, in this process or split over worker processes (shell).

Theory of operation
-------------------
:func:`scan` walks the ``events`` table in seq order, a page at a time, and checks every row
against the *stored* hash of the row before it (:func:`engine.events.chain_checker`). It is
the reference: ``Journal.verify(workers=1)`` is one scan from the genesis hash.

Because a row's hash depends only on its own columns and the stored hash of its predecessor,
the seq range ``1..hi`` (``hi`` the highest seq when the check starts) can be cut into ``k``
contiguous chunks that are checked at the same time. The chunk that starts at seq ``a``
starts from the stored hash of row ``a - 1`` (its *anchor*); it reports ``stop`` when every
seq up to its last one verified, or the first bad seq in its range exactly as the scan
would name it (a row reached past the chunk's end is only looked at to name a missing seq).
:func:`verify_chain` then takes the chunk outcomes **in seq order**: the first chunk that is
not clean decides, so the answer — ``first_bad_seq``, the problem text, the count checked,
the last good seq and hash — is the one the single scan gives; a failure in a chunk above a
bad one does not hide it. Each chunk's anchor must be the hash its predecessor ended on, and
rows appended beyond ``hi`` meanwhile are scanned here afterwards, so a journal that a live
writer extends verifies as with the single scan (a journal changed in any other way while it
is checked gives :class:`~engine.errors.JournalError`, never a pass).

Workers are fresh interpreters (``python -c``) importing only this module, which imports no
trio or httpx: nothing is forked from a process that may run trio and threads, and unlike
:mod:`multiprocessing`'s spawn start method the caller's ``__main__`` (say the ``tapeline``
script, which imports the whole CLI) is not imported again. A worker opens the file
read-only itself (WAL allows any number of readers), reports progress and its outcome as
lines on its stdout, and exits. Every wait is bounded: a worker that exits without an
outcome, or says nothing for ``stall_timeout_s``, is a :class:`~engine.errors.JournalError`
naming its seq range (with the tail of its stderr); on any exit path the workers still
running are killed.

Parallel checking pays only for big journals (starting a worker costs ~0.1 s): by default
it is used from :data:`PARALLEL_MIN_ROWS` rows, on ``min(usable CPUs, MAX_WORKERS)``
processes (``TAPELINE_VERIFY_WORKERS`` in the environment sets that number; 1 turns the
parallel check off).
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Final, NamedTuple

import orjson

from engine.errors import JournalError
from engine.events import GENESIS_HASH, chain_checker

__all__ = [
    "MAX_SEQ",
    "MAX_WORKERS",
    "MIN_SEQ",
    "PARALLEL_MIN_ROWS",
    "ROW_COLUMNS",
    "ScanOutcome",
    "check_chunk",
    "check_chunks_here",
    "chunk_bounds",
    "default_workers",
    "plan_chunks",
    "scan",
    "settle_chunk",
    "verify_chain",
    "worker_main",
]

MIN_SEQ: Final = -(2**63)  # SQLite's rowid range
MAX_SEQ: Final = 2**63 - 1
PAGE: Final = 2000
"""Rows a page: a scan holds one page of rows in memory at a time."""
PARALLEL_MIN_ROWS: Final = 200_000
"""Below this many rows the automatic choice is one scan in this process."""
MAX_WORKERS: Final = 4
STALL_TIMEOUT_S: Final = 60.0
"""A worker that says nothing (progress or outcome) for this long is killed and reported."""
PROGRESS_EVERY: Final = 100_000
"""``progress`` is called each time this many more rows have verified."""
WORKER_REPORT_ROWS: Final = 20_000
"""A worker reports its progress about this often (rows)."""
ENV_WORKERS: Final = "TAPELINE_VERIFY_WORKERS"
ROW_COLUMNS: Final = "seq, session, ts_ns, venue_ts_ms, source, kind, stream, cause, body, hash"
"""A journal row's columns, in the order of :class:`engine.events.Event`'s fields."""
_SQL: Final = f"SELECT {ROW_COLUMNS} FROM events WHERE seq >= ? ORDER BY seq LIMIT ?"
_TAG: Final = b"@chaincheck "
_BOOT: Final = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
                "from engine.chaincheck import worker_main; sys.exit(worker_main(sys.argv[1:]))")
_REAP_S: Final = 5.0
_MAX_LINE: Final = 1 << 20

log = logging.getLogger(__name__)


class ScanOutcome(NamedTuple):
    """Where a scan (or a chunk of the check) ended.

    ``status`` is ``"stop"`` (every seq up to the scan's ``stop`` verified), ``"end"`` (the
    table ended; every row before verified) or ``"bad"`` (``bad_seq`` does not verify, for
    the reason in ``problem``). ``next_seq - 1`` rows verified (seqs run from 1);
    ``last_seq`` and ``last_hash`` are the last verified row's (the starting point's when
    none did: None and the genesis hash from the start).
    """

    status: str
    next_seq: int
    last_seq: int | None
    last_hash: str
    bad_seq: int | None = None
    problem: str | None = None


def scan(
    conn: sqlite3.Connection,
    *,
    next_seq: int = 1,
    prev_hash: str = GENESIS_HASH,
    last_seq: int | None = None,
    lowest: int = MIN_SEQ,
    stop: int | None = None,
    page: int = PAGE,
    on_page: Callable[[int], None] | None = None,
) -> ScanOutcome:
    """Check rows from seq ``lowest`` on, expecting seq ``next_seq`` chained to ``prev_hash``.

    Seqs must run on with no gap. The default is the whole journal from the genesis hash
    (reading from the lowest possible seq, so rows at seq <= 0 are seen). With ``stop`` the
    scan ends once seq ``stop`` has verified; a row above ``stop`` is read only to name a
    missing seq. ``on_page(n)`` is called after each page with the rows verified so far
    (``next_seq - 1``). SQLite errors propagate.
    """
    check = chain_checker()
    expected, prev = next_seq, prev_hash
    while True:
        n = page if stop is None else min(page, stop - expected + 2)
        rows = conn.execute(_SQL, (lowest, n)).fetchall()
        good = check(prev, expected, rows) if rows else 0
        if stop is not None and good > stop + 1 - expected:
            good = stop + 1 - expected  # the rows past stop are the next chunk's
        if good:
            prev, last_seq = rows[good - 1][9], rows[good - 1][0]
            expected += good
            if on_page is not None:
                on_page(expected - 1)
        if stop is not None and expected > stop:
            return ScanOutcome("stop", expected, last_seq, prev)
        if good < len(rows):
            seq = rows[good][0]
            if seq > expected:
                problem = f"seq {expected} is missing (next row is seq {seq})"
                bad = expected
            elif seq < expected:
                problem = f"unexpected row at seq {seq} (seqs start at 1)"
                bad = expected
            else:
                problem = "hash does not match the row's content and the previous hash"
                bad = seq
            return ScanOutcome("bad", expected, last_seq, prev, bad, problem)
        if len(rows) < n or rows[-1][0] >= MAX_SEQ:
            return ScanOutcome("end", expected, last_seq, prev)
        lowest = rows[-1][0] + 1


class _Milestones:
    """Calls ``progress(m)`` once for each multiple ``m`` of :data:`PROGRESS_EVERY` that a
    growing count of verified rows passes (so the calls are increasing)."""

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self.progress = progress
        self.done = 0

    def reach(self, done: int) -> None:
        if self.progress is None or done <= self.done:
            return
        first = self.done - self.done % PROGRESS_EVERY + PROGRESS_EVERY
        self.done = done
        for m in range(first, done + 1, PROGRESS_EVERY):
            self.progress(m)


_ENV_CAP: Final = 32
"""The most worker processes ``TAPELINE_VERIFY_WORKERS`` can ask for."""


def default_workers() -> int:
    """How many processes the automatic parallel check uses: ``TAPELINE_VERIFY_WORKERS`` when
    set to a positive integer, else the usable CPUs, at most :data:`MAX_WORKERS`."""
    raw = os.environ.get(ENV_WORKERS, "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value >= 1:
            if value > _ENV_CAP:
                log.warning("%s=%d is more than %d: using %d", ENV_WORKERS, value, _ENV_CAP,
                            _ENV_CAP)
            return min(value, _ENV_CAP)
        log.warning("ignoring %s=%r: not a positive integer", ENV_WORKERS, raw)
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_WORKERS))


def chunk_bounds(hi: int, k: int) -> list[tuple[int, int]]:
    """Seqs ``1..hi`` cut into ``min(k, hi)`` contiguous ``(first, last)`` ranges of nearly
    equal size, in order."""
    k = max(1, min(k, hi))
    return [(1 + i * hi // k, (i + 1) * hi // k) for i in range(k)]


def plan_chunks(conn: sqlite3.Connection, k: int, *, min_rows: int = 0) -> list[tuple[int, int]]:
    """The chunks of a parallel check by ``k`` processes (:func:`chunk_bounds` up to the
    highest seq), or ``[]`` when one scan should do it: fewer than two chunks, fewer than
    ``min_rows`` rows, or a first row other than seq 1 (which the first page of one scan
    finds)."""
    if k < 2:
        return []
    first = conn.execute("SELECT seq FROM events ORDER BY seq LIMIT 1").fetchone()
    if first is None or first[0] != 1:
        return []
    (top,) = conn.execute("SELECT seq FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    bounds = chunk_bounds(top, k) if top >= max(min_rows, 2) else []
    return bounds if len(bounds) > 1 else []


def verify_chain(
    conn: sqlite3.Connection,
    path: str | os.PathLike[str],
    *,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    page: int = PAGE,
    stall_timeout_s: float = STALL_TIMEOUT_S,
) -> ScanOutcome:
    """Check the whole chain of the journal open on ``conn`` (whose file is ``path``).

    ``workers=None`` chooses: worker processes (:func:`default_workers` of them) when the
    journal has at least :data:`PARALLEL_MIN_ROWS` rows, else one scan here. ``workers=1``
    is one scan here (the reference); ``workers=k`` > 1 uses ``k`` processes whatever the
    size. The outcome is the one :func:`scan` from the genesis hash gives (status ``"end"``
    or ``"bad"``). ``progress(n)`` is called with increasing multiples of
    :data:`PROGRESS_EVERY` as rows verify (in parallel: rows verified in all chunks).
    SQLite errors propagate as :mod:`sqlite3` errors (also those met in a worker, in which
    case a lower chunk found bad wins, as in a single scan); a failing worker is a
    :class:`~engine.errors.JournalError`.
    """
    milestones = _Milestones(progress)
    k = workers if workers is not None else default_workers()
    bounds = plan_chunks(conn, k, min_rows=PARALLEL_MIN_ROWS if workers is None else 0)
    if bounds and sys.executable:
        try:
            outcome = _Run(Path(path), bounds, page, stall_timeout_s, milestones).run()
        except _CannotStart as exc:
            log.warning("checking the chain in this process: %s", exc)
        else:
            if outcome.status != "stop":
                return outcome
            # rows a writer appended since the check began
            return scan(conn, next_seq=outcome.next_seq, prev_hash=outcome.last_hash,
                        last_seq=outcome.last_seq, lowest=outcome.next_seq, page=page,
                        on_page=milestones.reach)
    return scan(conn, page=page, on_page=milestones.reach)


def check_chunk(
    conn: sqlite3.Connection,
    first: int,
    last: int,
    *,
    page: int = PAGE,
    on_page: Callable[[int], None] | None = None,
) -> tuple[str | None, ScanOutcome | None]:
    """Check seqs ``first..last`` from the stored hash of row ``first - 1`` (the genesis hash
    for the first chunk, which also reads the rows below seq 1); return that anchor hash and
    the outcome, or ``(None, None)`` when row ``first - 1`` is not there (or its hash is not
    text). This is what a worker process runs."""
    if first == 1:
        return GENESIS_HASH, scan(conn, stop=last, page=page, on_page=on_page)
    row = conn.execute("SELECT hash FROM events WHERE seq = ?", (first - 1,)).fetchone()
    if row is None or type(row[0]) is not str:
        return None, None
    return row[0], scan(conn, next_seq=first, prev_hash=row[0], last_seq=first - 1,
                        lowest=first, stop=last, page=page, on_page=on_page)


def settle_chunk(
    path: str | os.PathLike[str],
    first: int,
    last: int,
    previous: ScanOutcome | None,
    anchor: str | None,
    outcome: ScanOutcome | None,
) -> ScanOutcome:
    """Take the outcome of chunk ``first..last`` after every chunk below it came back clean
    (``previous`` is the one just below, None for the first chunk).

    Returns ``outcome``: ``"bad"`` is the answer, ``"stop"`` means go on. Raises
    :class:`~engine.errors.JournalError` when the chunk did not start from the hash the one
    below ended on, or the table ended inside the chunk: the journal changed while it was
    being checked.
    """
    expected = GENESIS_HASH if previous is None else previous.last_hash
    if outcome is not None and anchor == expected and outcome.status in ("bad", "stop"):
        return outcome
    raise JournalError(
        f"{path}: the journal changed while its hash chain was being checked "
        f"(seqs {first}..{last}); check it again")


def check_chunks_here(
    conn: sqlite3.Connection,
    path: str | os.PathLike[str],
    bounds: Sequence[tuple[int, int]],
    *,
    page: int = PAGE,
) -> ScanOutcome:
    """The parallel check's chunking and settling, one chunk after the other in this process
    and then the rows past the last chunk (to test and debug the chunk logic without
    processes). Gives the outcome :func:`scan` from the genesis hash gives."""
    previous: ScanOutcome | None = None
    for first, last in bounds:
        anchor, outcome = check_chunk(conn, first, last, page=page)
        previous = settle_chunk(path, first, last, previous, anchor, outcome)
        if previous.status == "bad":
            return previous
    assert previous is not None
    return scan(conn, next_seq=previous.next_seq, prev_hash=previous.last_hash,
                last_seq=previous.last_seq, lowest=previous.next_seq, page=page)


# --------------------------------------------------------------------------- the workers


class _CannotStart(Exception):
    """No worker process could be started (the check then runs in this process)."""


class _Worker:
    """The parent's view of one worker process and its chunk."""

    def __init__(self, index: int, first: int, last: int, proc: subprocess.Popen[bytes],
                 stderr: IO[bytes]) -> None:
        self.index, self.first, self.last = index, first, last
        self.proc, self.stderr = proc, stderr
        self.buffer = b""
        self.done = 0
        self.heard = time.monotonic()
        self.outcome: ScanOutcome | None = None
        self.anchor: str | None = None
        self.failure: BaseException | None = None

    @property
    def settled(self) -> bool:
        return self.outcome is not None or self.failure is not None

    def stderr_tail(self) -> str:
        try:
            self.stderr.seek(0, os.SEEK_END)
            size = self.stderr.tell()
            self.stderr.seek(max(0, size - 1500))
            text = self.stderr.read().decode(errors="replace").strip()
        except OSError:
            return ""
        return f"; its stderr ends: {text[-1000:]}" if text else ""


class _Run:
    """One parallel check: start a worker per chunk, read their reports, settle in order."""

    def __init__(self, path: Path, bounds: Sequence[tuple[int, int]], page: int,
                 stall_timeout_s: float, milestones: _Milestones) -> None:
        self.path, self.bounds, self.page = path, bounds, page
        self.stall_timeout_s, self.milestones = stall_timeout_s, milestones
        self.workers: list[_Worker] = []
        self.selector = selectors.DefaultSelector()

    def run(self) -> ScanOutcome:
        try:
            self._start()
            return self._settle()
        finally:
            self._stop()

    def _start(self) -> None:
        root = str(Path(__file__).resolve().parent.parent)
        for index, (first, last) in enumerate(self.bounds):
            stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in _stop
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-c", _BOOT, root, str(self.path), str(first), str(last),
                     str(self.page)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr)
            except OSError as exc:  # e.g. no more processes allowed: check in this process
                stderr.close()
                raise _CannotStart(f"cannot start a worker process: {exc}") from exc
            assert proc.stdout is not None
            worker = _Worker(index, first, last, proc, stderr)
            self.workers.append(worker)
            self.selector.register(proc.stdout, selectors.EVENT_READ, worker)

    def _settle(self) -> ScanOutcome:
        """Wait for the chunks' outcomes and decide in seq order (every wait bounded)."""
        previous: ScanOutcome | None = None
        for worker in self.workers:
            while not worker.settled:
                self._wait()
            if worker.failure is not None:
                raise worker.failure
            assert worker.outcome is not None
            previous = settle_chunk(self.path, worker.first, worker.last, previous,
                                    worker.anchor, worker.outcome)
            if previous.status == "bad":
                return previous
        assert previous is not None
        return previous

    def _wait(self) -> None:
        now = time.monotonic()
        pending = [w for w in self.workers if not w.settled]
        deadline = min(w.heard for w in pending) + self.stall_timeout_s
        if now >= deadline:
            for w in pending:
                if now >= w.heard + self.stall_timeout_s:
                    w.proc.kill()
                    w.failure = JournalError(
                        f"{self.path}: the chain check worker for seqs {w.first}..{w.last} "
                        f"reported nothing for {self.stall_timeout_s:g} s and was killed"
                        f"{w.stderr_tail()}")
                    self._unregister(w)
            return
        for key, _ in self.selector.select(timeout=min(deadline - now, 1.0)):
            self._read(key.data)
        self.milestones.reach(sum(w.done for w in self.workers))

    def _read(self, worker: _Worker) -> None:
        assert worker.proc.stdout is not None
        try:
            data = os.read(worker.proc.stdout.fileno(), 65536)
        except OSError as exc:
            data = b""
            log.warning("reading a chain check worker: %s", exc)
        if not data:
            self._unregister(worker)
            if not worker.settled:
                try:
                    code: int | None = worker.proc.wait(timeout=_REAP_S)
                except subprocess.TimeoutExpired:
                    worker.proc.kill()
                    code = None
                worker.failure = JournalError(
                    f"{self.path}: the chain check worker for seqs {worker.first}..{worker.last}"
                    f" ended without an outcome (exit code {code}){worker.stderr_tail()}")
            return
        worker.heard = time.monotonic()
        worker.buffer += data
        *lines, worker.buffer = worker.buffer.split(b"\n")
        if len(worker.buffer) > _MAX_LINE:
            lines, worker.buffer = [_TAG + b"{}"], b""  # not a report: an unknown one
        for line in lines:
            if line.startswith(_TAG) and not worker.settled:
                try:
                    self._message(worker, orjson.loads(line[len(_TAG):]))
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    worker.failure = JournalError(
                        f"{self.path}: the chain check worker for seqs {worker.first}.."
                        f"{worker.last} sent an unreadable report ({exc})")

    def _message(self, worker: _Worker, msg: dict[str, Any]) -> None:
        kind = msg.get("t")
        if kind == "progress":
            worker.done = int(msg["done"])
        elif kind == "outcome":
            worker.anchor = msg["anchor"]
            if msg["outcome"] is None:
                worker.failure = JournalError(
                    f"{self.path}: the journal changed while its hash chain was being checked "
                    f"(row {worker.first - 1} is gone); check it again")
            else:
                worker.outcome = ScanOutcome(*msg["outcome"])
                worker.done = worker.outcome.next_seq - worker.first
        elif kind == "error":
            worker.failure = _rebuilt(msg["cls"], msg["msg"], self.path, worker)
        else:
            worker.failure = JournalError(
                f"{self.path}: the chain check worker for seqs {worker.first}..{worker.last} "
                f"sent an unknown report {msg!r}")

    def _unregister(self, worker: _Worker) -> None:
        assert worker.proc.stdout is not None
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(worker.proc.stdout)

    def _stop(self) -> None:
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.kill()
        for w in self.workers:
            try:
                w.proc.wait(timeout=_REAP_S)
            except subprocess.TimeoutExpired:
                log.warning("chain check worker %d (pid %d) did not exit after SIGKILL",
                            w.index, w.proc.pid)
            for f in (w.proc.stdout, w.stderr):
                if f is not None:
                    f.close()
        self.selector.close()


def _rebuilt(cls: str, message: str, path: Path, worker: _Worker) -> BaseException:
    """The exception a worker met, as the single scan would have raised it here."""
    if cls == "UnicodeDecodeError":
        return UnicodeDecodeError("utf-8", b"", 0, 1, message)
    error_type = getattr(sqlite3, cls, None)
    if isinstance(error_type, type) and issubclass(error_type, sqlite3.Error):
        return error_type(message)
    return JournalError(f"{path}: the chain check of seqs {worker.first}..{worker.last} failed "
                        f"in its worker process: {cls}: {message}")


def _send(msg: dict[str, Any]) -> None:
    os.write(1, _TAG + orjson.dumps(msg) + b"\n")


def worker_main(argv: Sequence[str]) -> int:
    """A worker process: ``PATH FIRST LAST PAGE``. Runs :func:`check_chunk` on the journal at
    ``PATH`` (opened read-only) and writes its progress and outcome as tagged JSON lines on
    stdout. Returns the exit code."""
    path, first, last, page = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    sent = first - 1

    def on_page(done: int) -> None:
        nonlocal sent
        if done - sent >= WORKER_REPORT_ROWS:
            sent = done
            _send({"t": "progress", "done": done - first + 1})

    try:
        _send({"t": "progress", "done": 0})
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        try:
            anchor, outcome = check_chunk(conn, first, last, page=page, on_page=on_page)
        finally:
            conn.close()
        _send({"t": "outcome", "anchor": anchor,
               "outcome": None if outcome is None else list(outcome)})
    except BrokenPipeError:  # the parent is gone
        return 1
    except Exception as exc:  # reported, and the parent decides what it means
        try:
            _send({"t": "error", "cls": type(exc).__name__, "msg": str(exc)})
        except BrokenPipeError:
            return 1
    return 0
