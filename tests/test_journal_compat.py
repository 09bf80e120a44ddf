"""An old journal (schema 0001, committed as tests/fixtures/journal_v1.sqlite) still opens,
verifies, reads, decodes and takes new appends with today's code."""

from __future__ import annotations

import shutil
import sqlite3
from collections import Counter
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest
import sqlite_utils

from engine import codec
from engine import commands as c
from engine import events as e
from engine.events import NewEvent
from engine.journal import SCHEMA_MIGRATIONS, Journal
from engine.model import OrderType, Side

FIXTURE = Path(__file__).parent / "fixtures" / "journal_v1.sqlite"
# pinned when the fixture was made (see tests/fixtures/make_journal_fixture.py)
EVENTS = 337
LAST_HASH = "11104ec3bfe2923e8159c47af4b412e18331a93dd6b63905258963b4fe608b9e"
SESSIONS = {"fx-live-a1b2c3d4": (207, 1, 207), "fx-paper-e5f6a7b8": (130, 208, 337)}
ALL_MIGRATIONS = tuple(m.name for m in SCHEMA_MIGRATIONS._migrations)


@pytest.fixture
def old_journal(tmp_path: Path) -> Path:
    target = tmp_path / "journal_v1.sqlite"
    shutil.copyfile(FIXTURE, target)
    return target


def test_the_fixture_is_complete_and_old() -> None:
    assert not Path(f"{FIXTURE}-wal").exists()
    with closing(sqlite3.connect(f"file:{FIXTURE}?mode=ro", uri=True)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        applied = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
    assert applied == ["0001_initial"]


def test_a_reader_opens_verifies_and_reads_every_event(old_journal: Path) -> None:
    with Journal.open(old_journal, readonly=True) as j:
        info = j.info()
        assert info.schema == ("0001_initial",)  # a reader never migrates
        assert (info.events, info.last_seq, info.last_hash) == (EVENTS, EVENTS, LAST_HASH)
        result = j.verify()
        assert (result.ok, result.checked, result.last_hash) == (True, EVENTS, LAST_HASH)
        assert {s.id: (s.events, s.first_seq, s.last_seq) for s in j.sessions()} == SESSIONS
        live = j.session("fx-live")
        assert (live.engine_version, live.strategy, live.parser_version, live.mode) == (
            "0.1.0", "grid", "mexc-codecs/1", "live"
        )
        events = list(j.read())
    assert [ev.seq for ev in events] == list(range(1, EVENTS + 1))
    kinds = Counter(ev.kind for ev in events)
    assert (kinds["ws.push.depth"], kinds["ws.push.deal"], kinds["ws.push.ticker"]) == (
        100, 100, 100
    )
    engine_kinds = {k for k in kinds if codec.is_engine_kind(k)}
    assert engine_kinds <= set(codec.ENGINE_EVENT_TYPES)  # later versions only add kinds


def test_every_engine_event_decodes(old_journal: Path) -> None:
    with Journal.open(old_journal, readonly=True) as j:
        decoded = [(ev, codec.decode(ev.kind, ev.body)) for ev in j.read()
                   if codec.is_engine_kind(ev.kind)]
    assert len(decoded) == 32
    for ev, obj in decoded:
        assert isinstance(obj, codec.ENGINE_EVENT_TYPES[ev.kind])
        assert obj.ts_ns == ev.ts_ns
        assert ev.source == obj.SOURCE
        # decoding then encoding gives back the stored body: nothing was lost
        assert codec.encode(obj, stream=ev.stream, cause=ev.cause).body == ev.body
    requested = [obj for _, obj in decoded if isinstance(obj, e.OrderRequested)]
    assert requested[0].command == c.PlaceOrder(
        symbol="BTC_USDT", side=Side.OPEN_LONG, order_type=OrderType.LIMIT, vol=Decimal(2),
        external_oid="fx-live--000001", price=Decimal("86999.5"),
        open_type=c.OpenType.ISOLATED, leverage=10,
    )
    assert requested[2].command.reduce_only is True
    issued = [type(obj.command) for _, obj in decoded if isinstance(obj, e.CommandIssued)]
    assert issued == [c.CancelOrder, c.ChangeLeverage, c.ChangeMargin, c.CancelByExternalOid,
                      c.CancelAll]


def test_a_writer_migrates_it_and_appends(old_journal: Path) -> None:
    with Journal.open(old_journal) as j:
        assert j.info().schema == ALL_MIGRATIONS
        assert j.last_seq == EVENTS
        sid = j.start_session(started_ns=2_000_000_000_000_000_000, strategy="grid")
        seqs = j.append(sid, [
            NewEvent(ts_ns=2_000_000_000_000_000_001, source="ws", kind="ws.push.deal",
                     body='{"channel":"push.deal"}', stream="BTC_USDT"),
            codec.encode(e.SessionEnded(reason="test", ts_ns=2_000_000_000_000_000_002)),
        ])
        assert seqs == range(EVENTS + 1, EVENTS + 3)
        result = j.verify()
        assert result.ok and result.checked == EVENTS + 2
    # the migrations are recorded once and nothing is pending
    db = sqlite_utils.Database(old_journal)
    try:
        assert SCHEMA_MIGRATIONS.pending(db) == []
        assert [m.name for m in SCHEMA_MIGRATIONS.applied(db)] == list(ALL_MIGRATIONS)
    finally:
        db.close()
    with Journal.open(old_journal, readonly=True) as j:
        assert j.info().events == EVENTS + 2
        assert [ev.kind for ev in j.read(from_seq=EVENTS)] == [
            "engine.session_ended", "ws.push.deal", "engine.session_ended"
        ]
        # the old rows are untouched by the migration
        assert j.read(to_seq=EVENTS).__next__().seq == 1
        assert j.verify().ok


def test_the_migrated_file_refuses_replace(old_journal: Path) -> None:
    Journal.open(old_journal).close()
    conn = sqlite3.connect(old_journal, isolation_level=None)
    with closing(conn), pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("INSERT OR REPLACE INTO events (seq, session, ts_ns, source, kind, body,"
                     " hash) VALUES (5, 'x', 0, 'ws', 'k', 'b', 'h')")
