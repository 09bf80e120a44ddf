"""The journal's contract: round trips, filtered streaming reads, sessions, append-only
triggers, the single writer, failed appends and migrations."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

import engine
from engine.errors import JournalError, JournalLockedError, JournalWriteError, NotAJournalError
from engine.events import GENESIS_HASH, Fact, NewEvent, chain_hash
from engine.journal import SCHEMA_MIGRATIONS, Journal

# --------------------------------------------------------------------------- round trip


def test_append_then_read_round_trips_every_field(writer: Journal, make_event) -> None:
    sid = writer.start_session(started_ns=1, session_id="s1")
    batch = [
        make_event(0, venue_ts_ms=1_700_000_000_123, cause=None),
        make_event(1, kind="rest.order.create", source="rest", stream=None, cause=1,
                   body='{"success":true,"code":0,"data":"1234"}'),
        make_event(2, kind="engine.timer", source="engine", stream="", venue_ts_ms=0, cause=0,
                   body='{"name":"t","ts_ns":5}'),
    ]
    seqs = writer.append(sid, batch)
    assert seqs == range(1, 4)
    assert writer.last_seq == 3

    got = list(writer.read())
    assert [e.seq for e in got] == [1, 2, 3]
    prev = GENESIS_HASH
    for new, ev in zip(batch, got, strict=True):
        assert (ev.session, ev.ts_ns, ev.venue_ts_ms, ev.source, ev.kind, ev.stream, ev.cause,
                ev.body) == (sid, new.ts_ns, new.venue_ts_ms, new.source, new.kind, new.stream,
                             new.cause, new.body)
        prev = chain_hash(prev, ev.seq, sid, new.ts_ns, new.venue_ts_ms, new.source, new.kind,
                          new.stream, new.cause, new.body)
        assert ev.hash == prev
    # "" and 0 are kept apart from NULL
    assert got[1].stream is None and got[2].stream == ""
    assert got[0].cause is None and got[2].cause == 0


def test_round_trip_survives_reopen_and_continues_the_chain(journal_path: Path, make_event) -> None:
    with Journal.open(journal_path) as j:
        sid = j.start_session(started_ns=1)
        j.append(sid, [make_event(i) for i in range(5)])
        head = j.info().last_hash
    with Journal.open(journal_path) as j:
        assert j.last_seq == 5
        assert j.info().last_hash == head
        assert j.append(sid, [make_event(5)]) == range(6, 7)
        assert j.verify().ok


def test_empty_batch_writes_nothing(writer: Journal, make_event) -> None:
    sid = writer.start_session(started_ns=1)
    writer.append(sid, [make_event(0), make_event(1)])
    before = writer.info()
    seqs = writer.append(sid, [])
    assert seqs == range(3, 3) and len(seqs) == 0
    assert writer.info() == before
    assert writer.append(sid, [make_event(2)]) == range(3, 4)


# --------------------------------------------------------------------------- filters


@pytest.fixture
def populated(writer: Journal, make_event) -> tuple[Journal, str, str]:
    """seq 1-6 session A, 7-9 session B, 10-12 session A again; kinds and streams vary."""
    a = writer.start_session(started_ns=1, session_id="aaaa1111")
    b = writer.start_session(started_ns=2, session_id="bbbb2222")
    rows = [  # (session, kind, stream)
        (a, "ws.push.depth", "BTC_USDT"),   # 1
        (a, "ws.push.deal", "BTC_USDT"),    # 2
        (a, "ws.push.depth", "ETH_USDT"),   # 3
        (a, "rest.order.create", None),     # 4
        (a, "engine.timer", None),          # 5
        (a, "ws.push.ticker", "BTC_USDT"),  # 6
        (b, "ws.push.depth", "BTC_USDT"),   # 7
        (b, "engine.connected", None),      # 8
        (b, "ws.push.deal", "ETH_USDT"),    # 9
        (a, "ws.push.depth", "BTC_USDT"),   # 10
        (a, "order.accepted", "BTC_USDT"),  # 11
        (a, "ws.push.deal", "BTC_USDT"),    # 12
    ]
    seq = 0
    while seq < len(rows):  # consecutive runs of one session go in one batch
        session = rows[seq][0]
        batch = []
        while seq < len(rows) and rows[seq][0] == session:
            _, kind, stream = rows[seq]
            source = kind.split(".")[0] if kind.split(".")[0] in ("ws", "rest") else "engine"
            batch.append(make_event(seq, kind=kind, stream=stream, source=source))
            seq += 1
        writer.append(session, batch)
    return writer, a, b


def _seqs(j: Journal, **kw) -> list[int]:
    return [e.seq for e in j.read(**kw)]


def test_read_filters_select_exact_seqs(populated) -> None:
    j, a, b = populated
    assert _seqs(j) == list(range(1, 13))
    assert _seqs(j, session=a) == [1, 2, 3, 4, 5, 6, 10, 11, 12]
    assert _seqs(j, session=b) == [7, 8, 9]
    assert _seqs(j, from_seq=5) == [5, 6, 7, 8, 9, 10, 11, 12]
    assert _seqs(j, to_seq=4) == [1, 2, 3, 4]
    assert _seqs(j, from_seq=3, to_seq=7) == [3, 4, 5, 6, 7]
    assert _seqs(j, from_seq=9, to_seq=8) == []
    assert _seqs(j, kinds=["ws.push.depth"]) == [1, 3, 7, 10]
    assert _seqs(j, kinds=["ws.push.deal", "engine.timer"]) == [2, 5, 9, 12]
    assert _seqs(j, kinds=[]) == list(range(1, 13))  # an empty list filters nothing
    assert _seqs(j, kind_prefix="ws.push.") == [1, 2, 3, 6, 7, 9, 10, 12]
    assert _seqs(j, kind_prefix="engine.") == [5, 8]
    assert _seqs(j, kind_prefix="ws.push.d") == [1, 2, 3, 7, 9, 10, 12]
    assert _seqs(j, stream="ETH_USDT") == [3, 9]
    assert _seqs(j, stream="BTC_USDT") == [1, 2, 6, 7, 10, 11, 12]
    assert _seqs(j, limit=3) == [1, 2, 3]
    assert _seqs(j, limit=0) == []
    assert _seqs(j, session=a, kind_prefix="ws.", stream="BTC_USDT") == [1, 2, 6, 10, 12]
    assert _seqs(j, session=a, from_seq=4, limit=4) == [4, 5, 6, 10]
    assert _seqs(j, session=b, kinds=["ws.push.deal"], to_seq=9) == [9]
    assert _seqs(j, kind_prefix="nothing.") == []


def test_small_pages_give_the_same_answer(populated) -> None:
    j, a, _ = populated
    for page in (1, 2, 3, 5):
        assert _seqs(j, page=page) == list(range(1, 13))
        assert _seqs(j, session=a, kind_prefix="ws.", page=page) == [1, 2, 3, 6, 10, 12]
        assert _seqs(j, from_seq=2, limit=5, page=page) == [2, 3, 4, 5, 6]


def test_read_facts_are_the_reads_rows_cut_to_what_interpreting_needs(populated) -> None:
    j, a, b = populated
    for kw in ({}, {"session": a}, {"session": b}, {"from_seq": 5}, {"to_seq": 4},
               {"from_seq": 3, "to_seq": 9, "session": a}, {"from_seq": 9, "to_seq": 8}):
        for page in (1, 2, 5, 1000):
            facts = list(j.read_facts(page=page, **kw))
            expected = [Fact(e.seq, e.ts_ns, e.venue_ts_ms, e.source, e.kind, e.stream, e.cause,
                             e.body)
                        for e in j.read(**kw)]
            assert facts == expected, (kw, page)
            assert all(type(f) is Fact for f in facts)
    assert [f.seq for f in j.read_facts(session=a)] == [1, 2, 3, 4, 5, 6, 10, 11, 12]


def test_read_facts_carry_venue_time_and_cause(writer: Journal, make_event) -> None:
    sid = writer.start_session(started_ns=1)
    writer.append(sid, [make_event(1, venue_ts_ms=1_700_000_000_123),
                        make_event(2, kind="engine.timer", source="engine", stream=None,
                                   cause=1)])
    (one, two) = writer.read_facts(session=sid)
    assert (one.venue_ts_ms, one.cause, two.venue_ts_ms, two.cause) == (
        1_700_000_000_123, None, None, 1)
    assert (two.kind, two.source, two.stream) == ("engine.timer", "engine", None)


def _limit(sql: str) -> int:
    match = re.search(r"LIMIT (\d+)\s*$", sql)
    assert match is not None, sql
    return int(match.group(1))


def test_reads_stream_lazily_in_pages(journal_path: Path) -> None:
    n, batch = 50_000, 5_000
    with Journal.open(journal_path, synchronous="NORMAL") as j:
        sid = j.start_session(started_ns=1)
        for start in range(0, n, batch):
            j.append(sid, [NewEvent(ts_ns=i, source="ws", kind="ws.push.deal", body=str(i))
                           for i in range(start, start + batch)])
    with Journal.open(journal_path, readonly=True) as j:
        statements: list[str] = []
        j._conn.set_trace_callback(statements.append)
        it = j.read(session=sid, page=1_000)
        assert statements == []  # nothing runs before the first next()
        first = next(it)
        assert first.seq == 1
        assert len(statements) == 1 and statements[0].rstrip().endswith("LIMIT 1000")
        for _ in range(999):
            next(it)
        assert len(statements) == 1  # still the first page
        assert next(it).seq == 1_001
        assert len(statements) == 2
        rest = sum(1 for _ in it)
        assert rest == n - 1_001
        assert len(statements) == n // 1_000 + 1  # 50 full pages and one empty one
        assert {_limit(s) for s in statements} == {1_000}
        # a limit that is not a multiple of the page asks only for what is left
        statements.clear()
        assert sum(1 for _ in j.read(limit=2_500, page=1_000)) == 2_500
        assert [_limit(s) for s in statements] == [1_000, 1_000, 500]


# --------------------------------------------------------------------------- sessions


def test_sessions_count_their_events(populated) -> None:
    j, a, b = populated
    empty = j.start_session(started_ns=3, session_id="cccc3333")
    by_id = {s.id: s for s in j.sessions()}
    assert [s.id for s in j.sessions()] == [a, b, empty]  # oldest first
    assert (by_id[a].events, by_id[a].first_seq, by_id[a].last_seq) == (9, 1, 12)
    assert (by_id[b].events, by_id[b].first_seq, by_id[b].last_seq) == (3, 7, 9)
    assert (by_id[empty].events, by_id[empty].first_seq, by_id[empty].last_seq) == (0, None, None)
    info = j.info()
    assert (info.sessions, info.events, info.first_seq, info.last_seq) == (3, 12, 1, 12)


def test_start_session_stores_its_metadata(writer: Journal) -> None:
    sid = writer.start_session(
        started_ns=1_700_000_000_000_000_000, strategy="grid", strategy_version="1.2.3",
        config_hash="sha256:abc", parser_version="mexc-codecs/7", mode="shadow",
        meta='{"symbol":"BTC_USDT"}',
    )
    s = writer.session(sid)
    assert s.engine_version == engine.__version__
    assert (s.strategy, s.strategy_version, s.config_hash, s.parser_version, s.mode, s.meta) == (
        "grid", "1.2.3", "sha256:abc", "mexc-codecs/7", "shadow", '{"symbol":"BTC_USDT"}'
    )
    assert s.started_ns == 1_700_000_000_000_000_000
    assert len(sid) == 16
    # the metadata is in the file, not only in memory
    with closing(sqlite3.connect(writer.path, isolation_level=None)) as other:
        row = other.execute(
            "SELECT engine_version, strategy, config_hash, parser_version FROM sessions"
        ).fetchone()
    assert row == (engine.__version__, "grid", "sha256:abc", "mexc-codecs/7")


def test_session_lookup_by_prefix(writer: Journal) -> None:
    writer.start_session(started_ns=1, session_id="abc123")
    writer.start_session(started_ns=2, session_id="abd456")
    writer.start_session(started_ns=3, session_id="ab")
    assert writer.session("abc").id == "abc123"
    assert writer.session("ab").id == "ab"  # an exact id wins over a prefix
    with pytest.raises(JournalError, match="ambiguous"):
        writer.session("a")
    with pytest.raises(JournalError, match="no session"):
        writer.session("zz")


def test_session_ids_are_unique(writer: Journal) -> None:
    writer.start_session(started_ns=1, session_id="same")
    with pytest.raises(JournalWriteError, match="already exists"):
        writer.start_session(started_ns=2, session_id="same")


def test_append_to_an_unknown_session_is_refused(writer: Journal, make_event) -> None:
    writer.start_session(started_ns=1, session_id="known")
    with pytest.raises(JournalWriteError, match="unknown session"):
        writer.append("unknown", [make_event(0)])
    assert writer.last_seq == 0
    assert writer.info().events == 0


# --------------------------------------------------------------------------- append-only


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE events SET body = 'x' WHERE seq = 2",
        "UPDATE events SET seq = 99 WHERE seq = 3",
        "DELETE FROM events WHERE seq = 2",
        "DELETE FROM events",
        "UPDATE sessions SET strategy = 'other'",
        "DELETE FROM sessions",
    ],
)
def test_update_and_delete_are_refused_by_triggers(populated, sql: str) -> None:
    j, _, _ = populated
    before = j.info()
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        j._conn.execute(sql)  # the journal's own connection
    other = sqlite3.connect(j.path, timeout=0.5, isolation_level=None)  # a second connection
    with closing(other), pytest.raises(sqlite3.IntegrityError, match="append-only"):
        other.execute(sql)
    assert j.info() == before
    assert j.verify().ok


@pytest.mark.parametrize("recursive_triggers", ["OFF", "ON"])
def test_insert_or_replace_cannot_overwrite_a_row(populated, recursive_triggers: str) -> None:
    j, a, _ = populated
    before = [(e.seq, e.body, e.hash) for e in j.read()]
    # REPLACE deletes the row it collides with, firing DELETE triggers only with
    # recursive_triggers on; the 0002 migration refuses the colliding insert itself.
    with closing(sqlite3.connect(j.path, timeout=0.5, isolation_level=None)) as other:
        other.execute(f"PRAGMA recursive_triggers = {recursive_triggers}")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            other.execute(
                "INSERT OR REPLACE INTO events (seq, session, ts_ns, source, kind, body, hash)"
                " VALUES (2, ?, 0, 'ws', 'x', 'x', 'x')", (a,)
            )
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            other.execute(
                "REPLACE INTO sessions (id, started_ns, engine_version) VALUES (?, 0, 'x')", (a,)
            )
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            other.execute(
                "INSERT INTO events (seq, session, ts_ns, source, kind, body, hash)"
                " VALUES (2, ?, 0, 'ws', 'x', 'x', 'x') ON CONFLICT DO UPDATE SET body = 'y'", (a,)
            )
    assert [(e.seq, e.body, e.hash) for e in j.read()] == before
    assert j.session(a).engine_version == engine.__version__
    assert j.verify().ok


# --------------------------------------------------------------------------- single writer


def test_a_second_writer_is_locked_out_but_readers_are_welcome(
    journal_path: Path, make_event
) -> None:
    with Journal.open(journal_path) as first:
        sid = first.start_session(started_ns=1)
        first.append(sid, [make_event(0), make_event(1)])
        with pytest.raises(JournalLockedError, match="another process is writing"):
            Journal.open(journal_path)
        with Journal.open(journal_path, readonly=True) as reader:
            assert [e.seq for e in reader.read()] == [1, 2]
            with pytest.raises(JournalError, match="read-only"):
                reader.append(sid, [make_event(2)])
            with pytest.raises(JournalError, match="read-only"):
                reader.start_session(started_ns=2)
            first.append(sid, [make_event(2)])  # the writer goes on while a reader is open
            assert reader.info().last_seq == 3
    with Journal.open(journal_path) as second:  # the lock went with the first writer
        assert second.last_seq == 3


# --------------------------------------------------------------------------- failed appends


def test_a_bad_event_fails_the_whole_batch_and_leaves_the_head(writer: Journal, make_event) -> None:
    sid = writer.start_session(started_ns=1)
    writer.append(sid, [make_event(0), make_event(1)])
    head = (writer.last_seq, writer.info().last_hash)
    with pytest.raises(JournalWriteError, match="bad source"):
        writer.append(sid, [make_event(2), make_event(3, source="mystery"), make_event(4)])
    assert (writer.last_seq, writer.info().last_hash) == head
    assert writer.info().events == 2
    assert writer.append(sid, [make_event(5)]) == range(3, 4)
    assert writer.verify().ok and writer.verify().checked == 3


def test_a_failure_inside_sqlite_rolls_back_the_batch(writer: Journal, make_event) -> None:
    sid = writer.start_session(started_ns=1)
    writer.append(sid, [make_event(0)])
    head = (writer.last_seq, writer.info().last_hash)
    # "disk full" in the middle of the batch: cap the file at its current size
    pages = writer._conn.execute("PRAGMA page_count").fetchone()[0]
    writer._conn.execute(f"PRAGMA max_page_count = {pages}")
    big = [make_event(i, body="x" * 3_000) for i in range(1, 30)]
    with pytest.raises(JournalWriteError, match="full"):
        writer.append(sid, big)
    assert (writer.last_seq, writer.info().last_hash) == head
    assert writer.info().events == 1
    assert not writer._conn.in_transaction
    writer._conn.execute("PRAGMA max_page_count = 1073741823")
    assert writer.append(sid, big[:3]) == range(2, 5)
    result = writer.verify()
    assert result.ok and result.checked == 4


# --------------------------------------------------------------------------- opening


def test_migrations_are_recorded_once(journal_path: Path) -> None:
    names = tuple(m.name for m in SCHEMA_MIGRATIONS._migrations)
    assert names[0] == "0001_initial"
    for _ in range(2):
        with Journal.open(journal_path) as j:
            assert j.info().schema == names
    with Journal.open(journal_path, readonly=True) as r:
        assert r.info().schema == names
    with closing(sqlite3.connect(journal_path, isolation_level=None)) as c:
        rows = c.execute("SELECT name FROM _sqlite_migrations ORDER BY id").fetchall()
        app_id = c.execute("PRAGMA application_id").fetchone()[0]
        mode = c.execute("PRAGMA journal_mode").fetchone()[0]
    assert tuple(r[0] for r in rows) == names
    assert app_id == 0x54504C4E
    assert mode == "wal"


def test_opening_what_is_not_a_journal(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite"
    with pytest.raises(NotAJournalError, match="no such journal file"):
        Journal.open(missing, readonly=True)
    with pytest.raises(NotAJournalError, match="no such journal file"):
        Journal.open(missing, create=False)
    assert not missing.exists()
    with pytest.raises(NotAJournalError, match="directory"):
        Journal.open(tmp_path)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database\n" * 200)
    for readonly in (True, False):
        with pytest.raises(NotAJournalError, match="not an SQLite database"):
            Journal.open(junk, readonly=readonly)
    other = tmp_path / "other.sqlite"
    with closing(sqlite3.connect(other, isolation_level=None)) as c:
        c.execute("CREATE TABLE t (x)")
    for readonly in (True, False):
        with pytest.raises(NotAJournalError, match="not a tapeline journal"):
            Journal.open(other, readonly=readonly)
    blank = tmp_path / "blank.sqlite"  # a valid SQLite file with no tables
    with closing(sqlite3.connect(blank, isolation_level=None)) as c:
        c.execute("PRAGMA user_version = 1")
    with pytest.raises(NotAJournalError, match="not a tapeline journal"):
        Journal.open(blank, readonly=True)
    with Journal.open(blank) as j:  # a writer may adopt it
        assert j.info().events == 0
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    with pytest.raises(NotAJournalError, match="empty file"):
        Journal.open(empty, readonly=True)
    with pytest.raises(JournalError, match="synchronous"):
        Journal.open(tmp_path / "x.sqlite", synchronous="OFF")
