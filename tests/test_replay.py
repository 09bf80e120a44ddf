"""Deterministic replay: recorded sessions replay byte for byte; a wall-clock-reading
strategy is caught at its first divergent event; a tampered journal is refused."""

from __future__ import annotations

import shutil
import sqlite3
import time
from decimal import Decimal
from pathlib import Path

import pytest
from attrs import evolve

from engine.core import DECISION_KINDS
from engine.events import TimerFired
from engine.journal import Journal
from engine.replay import (
    ChainBrokenError,
    ReplayError,
    Until,
    parse_until,
    plan_session,
    replay_all,
    replay_session,
)
from engine.risk import RiskLimits
from engine.sequencer import engine_input
from tests.recording import NONDET_SPEC, T0_NS, Recorder, record_session


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A market-maker session over 400 scripted market events, recorded once."""
    path = tmp_path_factory.mktemp("rec") / "mm.sqlite"
    rec = record_session(path, steps=400, seed=3)
    assert rec.commands > 10 and rec.fills > 3  # the session really trades
    return path, rec.session


def _rows(path: Path, session: str) -> tuple[list[int], list[int]]:
    with Journal.open(path, readonly=True) as j:
        rows = list(j.read(session=session))
    inputs = [ev.seq for ev in rows if ev.kind not in DECISION_KINDS]
    decisions = [ev.seq for ev in rows if ev.kind in DECISION_KINDS]
    return inputs, decisions


def test_recorded_market_maker_session_replays_identical(recorded: tuple[Path, str]) -> None:
    path, session = recorded
    inputs, decisions = _rows(path, session)
    with Journal.open(path, readonly=True) as j:
        result = replay_session(j, session[:6])
    assert result.identical, result.lines()
    assert result.inputs == len(inputs)
    assert result.compared == result.decisions == len(decisions)
    assert result.state_difference is None and result.notes == ()
    assert result.state.view().applied > len(inputs)


def test_replay_reads_the_journal_file_alone(recorded: tuple[Path, str],
                                            tmp_path: Path) -> None:
    path, session = recorded
    elsewhere = tmp_path / "copied" / "bundle.sqlite"
    elsewhere.parent.mkdir()
    shutil.copyfile(path, elsewhere)
    with Journal.open(elsewhere, readonly=True) as j:
        result = replay_session(j, session)
    assert result.identical and result.compared > 0


def test_wall_clock_strategy_is_caught_at_its_first_divergent_event(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "nondet.sqlite"
    monkeypatch.setattr(time, "time_ns", lambda: 1_000)  # the recording's wall clock
    rec = record_session(path, NONDET_SPEC, steps=200, seed=5)
    with Journal.open(path, readonly=True) as j:
        first_intent = next(iter(j.read(session=rec.session, kinds=["cmd.place_order"])))
        monkeypatch.setattr(time, "time_ns", lambda: 2_000)  # the replay's: another time
        result = replay_session(j, rec.session)
    d = result.divergence
    assert d is not None and not result.identical
    assert d.seq == first_intent.cause and d.input_kind == "engine.timer"
    assert "cmd.place_order differs at command.vol: recorded '2', replayed '3'" in d.explanation
    assert "not deterministic" in d.explanation
    assert d.recorded[0].startswith(f"seq {first_intent.seq} cmd.place_order")
    assert d.replayed[0].startswith("cmd.place_order") and len(d.replayed) == len(d.recorded)
    assert d.view_summary["books"]["BTC_USDT"]["synced"] is True
    assert result.inputs < rec.inputs  # it stopped at the divergence
    text = "\n".join(result.lines())
    assert f"DIVERGED at input seq {d.seq} (engine.timer" in text and "strategy view:" in text


def test_tampered_journal_is_refused_before_replay(recorded: tuple[Path, str],
                                                   tmp_path: Path) -> None:
    path, session = recorded
    bad = tmp_path / "bad.sqlite"
    shutil.copyfile(path, bad)
    conn = sqlite3.connect(bad, isolation_level=None)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET body = replace(body, '100000', '100001') WHERE seq = 40")
    conn.close()
    calls: list[int] = []
    with Journal.open(bad, readonly=True) as j, pytest.raises(ChainBrokenError) as err:
        replay_session(j, session, progress=calls.append)
    assert err.value.first_bad_seq == 40 and "seq 40" in str(err.value)
    assert calls == []


def test_until_stops_after_an_input_and_still_verifies(recorded: tuple[Path, str]) -> None:
    path, session = recorded
    with Journal.open(path, readonly=True) as j:
        rows = list(j.read(session=session))
    inputs = [ev for ev in rows if ev.kind not in DECISION_KINDS]
    # inputs whose decisions were journaled after a later input of the same batch
    batched = [ev.seq for ev in inputs if any(
        r.kind in DECISION_KINDS and r.cause == ev.seq and any(
            i.seq > ev.seq and i.seq < r.seq for i in inputs) for r in rows)]
    assert batched, "the recording should hold multi-input batches"
    with Journal.open(path, readonly=True) as j:
        for until in [*batched[:3], inputs[len(inputs) // 2].seq, inputs[0].seq]:
            result = replay_session(j, session, until_seq=until, check_chain=False)
            assert result.identical, (until, result.lines())
            assert result.last_seq == max(i.seq for i in inputs if i.seq <= until)
            assert result.compared == sum(
                1 for r in rows if r.kind in DECISION_KINDS and (r.cause or 0) <= until)
        at = inputs[100].ts_ns
        result = replay_session(j, session, until_ts_ns=at, check_chain=False)
        assert result.identical and result.inputs == sum(1 for i in inputs if i.ts_ns <= at)


def test_parse_until() -> None:
    assert parse_until("42") == Until(seq=42)
    assert parse_until(str(T0_NS)) == Until(ts_ns=T0_NS)
    assert parse_until("2026-01-01T00:00:01Z") == Until(ts_ns=T0_NS + 10**9)
    assert parse_until("2026-01-01T01:00:00.5+01:00") == Until(ts_ns=T0_NS + 5 * 10**8)
    for bad in ("soon", "-3", "2026-13-01"):
        with pytest.raises(ReplayError):
            parse_until(bad)


def test_version_changes_are_reported_not_fatal(recorded: tuple[Path, str],
                                                tmp_path: Path) -> None:
    path, session = recorded
    plugin = tmp_path / "mm2.py"
    plugin.write_text("from strategies.market_maker import MarketMaker\n\n"
                      "class MarketMaker2(MarketMaker):\n    version = '3'\n")
    with Journal.open(path, readonly=True) as j:
        result = replay_session(j, session, strategy_spec=f"{plugin}:MarketMaker2")
        info = j.session(session)
    assert result.identical  # same behaviour, new version number
    assert "recorded with market-maker 2, replaying with market-maker 3" in result.notes
    old = evolve(info, parser_version="mexc-0", engine_version="0.0.1")
    notes = plan_session(old).notes
    assert any("recorded with parser mexc-0, replaying with mexc-1" in n for n in notes)
    assert any("recorded with engine 0.0.1" in n for n in notes)


def test_unreproducible_config_hash_is_said(tmp_path: Path) -> None:
    path = tmp_path / "risk.sqlite"
    limits = RiskLimits(max_orders=9)
    rec = record_session(path, steps=60, risk=limits)
    with Journal.open(path, readonly=True) as j:
        plain = replay_session(j, rec.session)
        given = replay_session(j, rec.session, risk=limits)
    assert any("config hash" in n and "other limits" in n for n in plain.notes)
    assert given.notes == () and given.identical


def test_later_session_starts_from_the_fold_of_earlier_ones(tmp_path: Path) -> None:
    path = tmp_path / "two.sqlite"
    first = record_session(path, steps=150, seed=7, stop=False)  # leaves orders open
    second = record_session(path, steps=150, seed=8)
    with Journal.open(path, readonly=True) as j:
        results = replay_all(j)
        assert [r.session for r in results] == [first.session, second.session]
        assert all(r.identical for r in results), [r.lines() for r in results]
        # without the earlier session's fold the second one could not be identical
        assert results[1].state.view().order(f"tl{first.session[:12]}00000001") is not None


def test_a_session_cut_short_before_its_decisions_is_named(tmp_path: Path) -> None:
    path = tmp_path / "cut.sqlite"
    with Journal.open(path, synchronous="NORMAL") as j:
        rec = Recorder(j)
        rec.feed(rec.contract_detail(), rec.asset())
        rec.feed(rec.depth_snapshot([(Decimal("99999.9"), 5)], [(Decimal("100000.1"), 5)], 10))
        rec.advance(2000)
        # the timer is committed, but the process died before its decisions were
        j.append(rec.session, [engine_input(TimerFired("quote", rec.now_ns)).row])
        with pytest.raises(ReplayError):
            replay_session(j, rec.session, strategy_spec="no-such-strategy")
        result = replay_session(j, rec.session)
    d = result.divergence
    assert d is not None and d.input_kind == "engine.timer" and d.recorded == ()
    assert "session's last input" in d.explanation and len(d.replayed) == 4


def test_no_verify_replays_without_comparing(recorded: tuple[Path, str]) -> None:
    path, session = recorded
    with Journal.open(path, readonly=True) as j:
        result = replay_session(j, session, verify=False, check_chain=False)
    assert result.identical and result.compared == 0 and result.decisions > 0
    assert not result.verified
