"""The parallel hash-chain check (``engine/chaincheck.py``) gives exactly what one scan gives.

Chunking is forced small (``workers=k`` on journals of 60 rows, pages of a few rows), so the
multi-chunk paths run here: tampering at and away from chunk boundaries is compared with the
single scan, in this process (:func:`check_chunks_here`, with hypothesis) and through real
worker processes; failing, silent and crashing workers become errors, never a pass or a hang.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import engine.chaincheck as chaincheck
from engine.chaincheck import (
    ScanOutcome,
    check_chunks_here,
    chunk_bounds,
    plan_chunks,
    scan,
    verify_chain,
)
from engine.cli import main
from engine.errors import JournalError
from engine.journal import Journal, VerifyResult
from tests.journal_tampering import COLUMNS, build_journal, edited, untriggered

N_ROWS = 60
# with workers=3 the chunks are 1..20, 21..40, 41..60
assert chunk_bounds(N_ROWS, 3) == [(1, 20), (21, 40), (41, 60)]


def _build(path: Path, n: int = N_ROWS) -> None:
    """``n`` rows over two sessions, some nullable fields NULL, one non-ASCII body."""
    build_journal(path, n, 7, lambda i: f'{{"i":{i},"asks":[["60000.5","12"]],'
                                        f'"note":"{"é" if i == 33 else ""}"}}')


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pristine") / "journal.sqlite"
    _build(path)
    return path


@pytest.fixture
def copy(pristine: Path, tmp_path: Path) -> Path:
    target = tmp_path / "journal.sqlite"
    shutil.copyfile(pristine, target)
    return target


def _sql(*statements: str) -> Callable[[sqlite3.Connection], None]:
    def run(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN")
        for s in statements:
            conn.execute(s)
        conn.execute("COMMIT")
    return run


def _swap_contents(x: int, y: int) -> Callable[[sqlite3.Connection], None]:
    cols = ", ".join(COLUMNS[1:])
    return _sql(f"CREATE TEMP TABLE saved AS SELECT {cols} FROM events WHERE seq = {x}",
                f"UPDATE events SET ({cols}) = (SELECT {cols} FROM events WHERE seq = {y})"
                f" WHERE seq = {x}",
                f"UPDATE events SET ({cols}) = (SELECT {cols} FROM saved) WHERE seq = {y}")


def _swap_seqs(x: int, y: int) -> Callable[[sqlite3.Connection], None]:
    return _sql(f"UPDATE events SET seq = 1000 WHERE seq = {x}",
                f"UPDATE events SET seq = {x} WHERE seq = {y}",
                f"UPDATE events SET seq = {y} WHERE seq = 1000")


def _renumber_from(x: int) -> Callable[[sqlite3.Connection], None]:
    return _sql(f"DELETE FROM events WHERE seq = {x}",
                *(f"UPDATE events SET seq = {s - 1} WHERE seq = {s}"
                  for s in range(x + 1, N_ROWS + 1)))


def _body(seq: int) -> Callable[[sqlite3.Connection], None]:
    return _sql(f"UPDATE events SET body = body || ' ' WHERE seq = {seq}")


def _delete(*seqs: int) -> Callable[[sqlite3.Connection], None]:
    return _sql(*(f"DELETE FROM events WHERE seq = {s}" for s in seqs))


def _copy_row(src: int, dst: int, *,
              hash_: str | None = None) -> Callable[[sqlite3.Connection], None]:
    h = "hash" if hash_ is None else f"'{hash_}'"
    return _sql(f"INSERT INTO events SELECT {dst}, session, ts_ns, venue_ts_ms, source, kind,"
                f" stream, cause, body, {h} FROM events WHERE seq = {src}")


TAMPERS: dict[str, Callable[[sqlite3.Connection], None]] = {
    "untouched": _sql(),
    "body-first-row": _body(1),
    "body-away-from-boundaries": _body(7),
    "body-last-of-chunk": _body(20),
    "body-first-of-chunk": _body(21),
    "body-last-row": _body(60),
    "body-in-two-chunks": _sql("UPDATE events SET body = body || ' ' WHERE seq IN (45, 12)"),
    "hash-at-boundary": _sql("UPDATE events SET hash = upper(hash) WHERE seq = 40"),
    "hash-as-blob": _sql("UPDATE events SET hash = CAST(hash AS BLOB) WHERE seq = 20"),
    "body-as-blob": _sql("UPDATE events SET body = CAST(body AS BLOB) WHERE seq = 22"),
    "delete-away": _delete(11),
    "delete-first-row": _delete(1),
    "delete-last-of-chunk": _delete(20),
    "delete-first-of-chunk": _delete(21),
    "delete-both-sides-of-boundary": _delete(40, 41),
    "delete-span-over-boundary": _sql("DELETE FROM events WHERE seq BETWEEN 17 AND 44"),
    "delete-last-row": _delete(60),  # a shorter journal: verifies
    "delete-second-half": _sql("DELETE FROM events WHERE seq > 30"),
    "delete-all-but-first": _sql("DELETE FROM events WHERE seq > 1"),
    "swap-contents-across-boundary": _swap_contents(19, 22),
    "swap-seqs-at-boundary": _swap_seqs(20, 21),
    "swap-seqs-away": _swap_seqs(4, 5),
    "renumber-after-delete": _renumber_from(9),
    "renumber-at-boundary": _renumber_from(21),
    "row-at-seq-zero": _sql("UPDATE events SET seq = 0 WHERE seq = 60"),
    "row-at-negative-seq": _sql("UPDATE events SET seq = -5 WHERE seq = 30"),
    "row-far-above": _sql(f"UPDATE events SET seq = {2**62} WHERE seq = 60"),
    "row-at-max-seq": _sql(f"UPDATE events SET seq = {2**63 - 1} WHERE seq = 41"),
    "gap-at-the-end": _copy_row(60, 70),
    "extra-row-bad-hash": _copy_row(60, 61, hash_="0" * 64),
    "extra-row-good-prev": _copy_row(1, 61),
}


def _tampered(path: Path, name: str) -> Path:
    conn = untriggered(path)
    try:
        TAMPERS[name](conn)
    finally:
        conn.close()
    return path


def _serial(path: Path, page: int = chaincheck.PAGE) -> ScanOutcome:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        return scan(conn, page=page)
    finally:
        conn.close()


# ------------------------------------------------------------------ in this process


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_chunked_in_process_equals_one_scan(copy: Path, name: str) -> None:
    _tampered(copy, name)
    reference = _serial(copy)
    conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True, isolation_level=None)
    try:
        for k in (2, 3, 4, 7, 60):
            bounds = plan_chunks(conn, k)
            assert bounds or name.startswith(("delete-first-row", "row-at-", "delete-all-"))
            for page in (1, 2, 3, 7, 2000):
                if bounds:
                    got = check_chunks_here(conn, copy, bounds, page=page)
                    assert got == reference, (k, page)
                assert scan(conn, page=page) == reference, page
    finally:
        conn.close()


def test_a_journal_that_shrank_while_checked_is_an_error(copy: Path) -> None:
    # chunks planned for 60 rows, but the table now ends at seq 30
    _tampered(copy, "delete-second-half")
    conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True, isolation_level=None)
    try:
        with pytest.raises(JournalError, match=r"changed while .* \(seqs 21\.\.40\)"):
            check_chunks_here(conn, copy, chunk_bounds(N_ROWS, 3))
    finally:
        conn.close()


def test_the_reference_scan_is_what_verify_reports(copy: Path) -> None:
    _tampered(copy, "body-first-of-chunk")
    with Journal.open(copy, readonly=True) as j:
        result = j.verify(workers=1)
    assert result == VerifyResult(False, 20, 21, "hash does not match the row's content and "
                                  "the previous hash", 20, result.last_hash)
    assert result.last_hash == _serial(copy).last_hash != "0" * 64


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scratch")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_edits_give_the_same_answer_chunked(pristine: Path, scratch: Path,
                                                data: st.DataObject) -> None:
    work = scratch / "journal.sqlite"
    for leftover in (Path(f"{work}-wal"), Path(f"{work}-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(pristine, work)
    conn = untriggered(work)
    try:
        for _ in range(data.draw(st.integers(1, 3), label="edits")):
            seq = data.draw(st.integers(1, N_ROWS), label="seq")
            if data.draw(st.booleans(), label="delete"):
                conn.execute("DELETE FROM events WHERE seq = ?", (seq,))
                continue
            column = data.draw(st.sampled_from(COLUMNS), label="column")
            row = conn.execute(f"SELECT {column} FROM events WHERE seq = ?", (seq,)).fetchone()
            if row is None:
                continue
            new = edited(row[0], column, data)
            if column == "seq":
                taken = conn.execute("SELECT 1 FROM events WHERE seq = ?", (new,)).fetchone()
                assume(taken is None)
            conn.execute(f"UPDATE events SET {column} = ? WHERE seq = ?", (new, seq))
    finally:
        conn.close()
    reference = _serial(work)
    k = data.draw(st.integers(2, 8), label="chunks")
    page = data.draw(st.sampled_from([1, 2, 3, 5, 2000]), label="page")
    ro = sqlite3.connect(f"file:{work}?mode=ro", uri=True, isolation_level=None)
    try:
        bounds = plan_chunks(ro, k)
        assume(bounds)
        assert check_chunks_here(ro, work, bounds, page=page) == reference
    finally:
        ro.close()


# ------------------------------------------------------------------ worker processes

# A real worker costs ~0.1-0.2 s to start, so the cases at and around chunk boundaries run
# through processes (every tamper runs chunked in this process above), with the chunk count
# and page size varying over the list.
_PROCESS_TAMPERS = ("untouched", "body-last-of-chunk", "body-first-of-chunk",
                    "hash-as-blob", "delete-last-of-chunk", "delete-first-of-chunk",
                    "delete-span-over-boundary", "delete-second-half", "swap-seqs-at-boundary",
                    "row-far-above", "extra-row-bad-hash")
_PROCESS_CASES = [(name, 2 + i % 2, (1, 3, 2000)[i % 3]) for i, name in enumerate(_PROCESS_TAMPERS)]


@pytest.mark.parametrize(("name", "k", "page"), _PROCESS_CASES)
def test_worker_processes_give_what_one_scan_gives(copy: Path, name: str, k: int,
                                                   page: int) -> None:
    _tampered(copy, name)
    reference = _serial(copy)
    with Journal.open(copy, readonly=True) as j:
        got = verify_chain(j._conn, copy, workers=k, page=page, stall_timeout_s=30)
        serial = j.verify(workers=1)
    assert got == reference
    assert serial == VerifyResult(reference.status != "bad", reference.next_seq - 1,
                                  reference.bad_seq, reference.problem, reference.last_seq,
                                  reference.last_hash)


def test_progress_is_monotone_and_as_in_one_scan(copy: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chaincheck, "PROGRESS_EVERY", 7)
    with Journal.open(copy, readonly=True) as j:
        serial: list[int] = []
        parallel: list[int] = []
        j.verify(workers=1, progress=serial.append)
        j.verify(workers=3, progress=parallel.append)
    assert serial == parallel == list(range(7, N_ROWS + 1, 7))


def test_a_broken_journal_reports_progress_in_order(copy: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chaincheck, "PROGRESS_EVERY", 5)
    _tampered(copy, "body-first-of-chunk")
    calls: list[int] = []
    with Journal.open(copy, readonly=True) as j:
        result = j.verify(workers=3, progress=calls.append)
    assert result.first_bad_seq == 21
    assert calls == sorted(set(calls)) and all(c % 5 == 0 for c in calls)


def test_rows_appended_after_the_chunks_are_checked_here(
        copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # as if a writer appended seqs 51..60 after the check planned its chunks up to seq 50
    real = chaincheck.chunk_bounds
    monkeypatch.setattr(chaincheck, "chunk_bounds", lambda hi, k: real(hi - 10, k))
    with Journal.open(copy, readonly=True) as j:
        assert j.verify(workers=2) == j.verify(workers=1)
    _tampered(copy, "body-last-row")
    with Journal.open(copy, readonly=True) as j:
        result = j.verify(workers=2)
        assert result == j.verify(workers=1)
    assert result.first_bad_seq == N_ROWS


def test_the_automatic_choice_goes_parallel_from_the_threshold(
        copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[int] = []
    real_run = chaincheck._Run.run

    def spy(self: chaincheck._Run) -> ScanOutcome:
        started.append(len(self.bounds))
        return real_run(self)

    monkeypatch.setattr(chaincheck._Run, "run", spy)
    monkeypatch.setenv(chaincheck.ENV_WORKERS, "2")
    with Journal.open(copy, readonly=True) as j:
        j.verify()
        assert started == []  # 60 rows: below the threshold
        monkeypatch.setattr(chaincheck, "PARALLEL_MIN_ROWS", N_ROWS)
        assert j.verify().ok
        assert started == [2]
        monkeypatch.setenv(chaincheck.ENV_WORKERS, "1")
        assert j.verify().ok
        assert started == [2]


def test_an_empty_journal_verifies_with_workers(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    with Journal.open(path, synchronous="NORMAL") as j:
        j.start_session(started_ns=1)
    with Journal.open(path, readonly=True) as j:
        assert j.verify(workers=4) == j.verify(workers=1) == VerifyResult(
            True, 0, None, None, None, "0" * 64)


# ------------------------------------------------------------------ failing workers


def _boot(monkeypatch: pytest.MonkeyPatch, prefix: str) -> None:
    """Run ``prefix`` in each worker before its normal start (argv[3] is its first seq)."""
    monkeypatch.setattr(chaincheck, "_BOOT", f"import sys\n{prefix}\n{chaincheck._BOOT}")


@pytest.mark.parametrize(("prefix", "expected"), [
    ("sys.exit(3)", "ended without an outcome (exit code 3)"),
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "(exit code -9)"),
    ("print('@chaincheck {\"t\": \"nonsense\"}', flush=True)", "unknown report"),
    ("print('@chaincheck not json', flush=True)", "unreadable report"),
    ("print('@chaincheck {\"t\": \"outcome\", \"anchor\": 1}', flush=True)",
     "unreadable report"),
    ("raise SystemExit('boom from the worker')", "boom from the worker"),
])
def test_a_failing_worker_is_an_error(copy: Path, monkeypatch: pytest.MonkeyPatch,
                                      prefix: str, expected: str) -> None:
    _boot(monkeypatch, prefix)
    with Journal.open(copy, readonly=True) as j, pytest.raises(
            JournalError, match=r"seqs 1\.\.30") as caught:
        j.verify(workers=2)
    assert expected in str(caught.value)


def test_a_silent_worker_is_killed_after_the_stall_timeout(copy: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _boot(monkeypatch, "import time; time.sleep(120)")
    with Journal.open(copy, readonly=True) as j, pytest.raises(
            JournalError, match=r"seqs 1\.\.30 reported nothing for 0\.3 s and was killed"):
        verify_chain(j._conn, copy, workers=2, stall_timeout_s=0.3)


def test_a_lower_bad_chunk_wins_over_a_failing_higher_one(
        copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _boot(monkeypatch, "if int(sys.argv[3]) > 1: sys.exit(4)")
    _tampered(copy, "body-away-from-boundaries")
    with Journal.open(copy, readonly=True) as j:
        result = j.verify(workers=3)
        assert result == j.verify(workers=1)
        assert result.first_bad_seq == 7


def test_a_failing_higher_chunk_is_an_error_when_the_lower_ones_are_clean(
        copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _boot(monkeypatch, "if int(sys.argv[3]) > 40: sys.exit(4)")
    with Journal.open(copy, readonly=True) as j, pytest.raises(
            JournalError, match=r"seqs 41\.\.60 ended without an outcome \(exit code 4\)"):
        j.verify(workers=3)


def test_an_unreadable_file_in_a_worker_is_the_same_error_as_here(tmp_path: Path,
                                                                 copy: Path) -> None:
    missing = tmp_path / "gone" / "journal.sqlite"
    with Journal.open(copy, readonly=True) as j, pytest.raises(sqlite3.OperationalError,
                                                                match="unable to open"):
        verify_chain(j._conn, missing, workers=2)


def test_a_damaged_file_is_reported_alike(copy: Path) -> None:
    data = bytearray(copy.read_bytes())
    page_size = 4096
    last_page = len(data) // page_size - 1
    data[last_page * page_size:last_page * page_size + 200] = b"\xff" * 200
    copy.write_bytes(bytes(data))

    def outcome(workers: int) -> str:
        try:
            with Journal.open(copy, readonly=True) as j:
                return repr(j.verify(workers=workers))
        except JournalError as exc:
            return f"{type(exc).__name__}: {exc}"

    serial = outcome(1)
    assert serial.startswith("JournalCorruptError: ")  # the last page holds table rows
    assert outcome(3) == serial
    assert outcome(2) == serial


@pytest.mark.parametrize("allowed", [0, 1])
def test_a_worker_start_failure_falls_back_to_one_scan(copy: Path, monkeypatch: pytest.MonkeyPatch,
                                                       allowed: int) -> None:
    real = chaincheck.subprocess.Popen
    started: list[object] = []

    def popen(*args: object, **kwargs: object) -> object:
        if len(started) >= allowed:
            raise OSError("no more processes today")
        started.append(real(*args, **kwargs))  # type: ignore[call-overload]
        return started[-1]

    monkeypatch.setattr(chaincheck.subprocess, "Popen", popen)
    _tampered(copy, "delete-first-of-chunk")
    with Journal.open(copy, readonly=True) as j:
        assert j.verify(workers=3) == j.verify(workers=1)
    assert all(p.poll() is not None for p in started)  # type: ignore[attr-defined]


def test_the_worker_imports_neither_trio_nor_httpx(copy: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; import engine.chaincheck; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('trio', 'httpx', 'anyio',"
            " 'sqlite_utils', 'click')]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ callers agree


@pytest.mark.parametrize("tamper", ["delete-first-of-chunk"])
def test_journal_verify_and_audit_verify_agree_in_parallel(
        copy: Path, monkeypatch: pytest.MonkeyPatch, tamper: str) -> None:
    _tampered(copy, tamper)
    outputs = {}
    for parallel in (False, True):
        if parallel:
            monkeypatch.setattr(chaincheck, "PARALLEL_MIN_ROWS", 10)
            monkeypatch.setenv(chaincheck.ENV_WORKERS, "3")
        for args in (["journal", "verify"], ["audit", "verify"]):
            result = CliRunner().invoke(main, [*args, str(copy), "--format", "json"])
            outputs[(parallel, args[0])] = (result.exit_code, result.stdout)
    assert len(set(outputs.values())) == 1, outputs


def test_replay_refuses_a_tampered_journal_before_replaying(
        copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.replay import replay_session
    from engine.replay_plan import ChainBrokenError

    monkeypatch.setattr(chaincheck, "PARALLEL_MIN_ROWS", 10)
    monkeypatch.setenv(chaincheck.ENV_WORKERS, "3")
    _tampered(copy, "swap-seqs-at-boundary")
    with Journal.open(copy, readonly=True) as j, pytest.raises(ChainBrokenError) as caught:
        replay_session(j, "sess-a")
    assert caught.value.first_bad_seq == 20


def test_a_worker_error_is_rebuilt_as_one_scan_would_raise_it(copy: Path) -> None:
    # the same translation as one scan: a worker's sqlite error is rebuilt here
    worker = chaincheck._Worker.__new__(chaincheck._Worker)
    worker.first, worker.last = 21, 40
    rebuilt = chaincheck._rebuilt("DatabaseError", "database disk image is malformed", copy,
                                  worker)
    assert type(rebuilt) is sqlite3.DatabaseError
    assert isinstance(chaincheck._rebuilt("UnicodeDecodeError", "x", copy, worker),
                      UnicodeDecodeError)
    assert isinstance(chaincheck._rebuilt("TypeError", "x", copy, worker), JournalError)
