"""Post-mortem audit and the replay/audit CLI: state as of a seq, timelines, anomalies,
exports, and one-line errors with the documented exit codes."""

from __future__ import annotations

import csv
import importlib.util
import io
import shutil
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.mexc.errors import DecodeError
from adapters.mexc.interpret import interpret, ws_row
from adapters.mexc.sim.wire import error_envelope
from engine import audit
from engine.audit import anomalies, state_at, timeline
from engine.cli_audit import standalone_cli
from engine.events import (
    BookGapDetected,
    BookResynced,
    Connected,
    Disconnected,
    Event,
    KillSwitchTripped,
    ReconcileDifference,
)
from engine.journal import Journal
from engine.projections import State, project
from engine.sequencer import Input, engine_input
from engine.state_report import state_tables
from tests.recording import NONDET_SPEC, Recorder, record_session

CLI = standalone_cli()
D = Decimal


def run(*args: object) -> Result:
    return CliRunner().invoke(CLI, [str(a) for a in args])


def one_line_error(result: Result, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.output, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output + result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list[Event]]:
    path = tmp_path_factory.mktemp("audit") / "mm.sqlite"
    rec = record_session(path, steps=300, seed=11)
    with Journal.open(path, readonly=True) as j:
        rows = list(j.read())
    return path, rec.session, rows


def _values(ev: Event) -> Sequence[Any]:
    try:
        return interpret(ev)
    except DecodeError:
        return ()


# --------------------------------------------------------------------------- state as of


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_state_at_seq_is_the_fold_of_that_prefix(
        recorded: tuple[Path, str, list[Event]], data: st.DataObject) -> None:
    path, _, rows = recorded
    seq = data.draw(st.integers(min_value=1, max_value=len(rows)), label="seq")
    expected = project(State(), (v for ev in rows[:seq] for v in _values(ev)))
    result = run("audit", "state", path, "--at", seq, "--format", "json")
    assert result.exit_code == 0, result.output
    shown = orjson.loads(result.output)
    assert shown["seq"] == seq
    assert {k: shown[k] for k in ("orders", "positions", "balances")} == state_tables(expected)
    with Journal.open(path, readonly=True) as j:
        assert state_at(j, seq) == expected


def test_state_at_a_time_is_the_prefix_up_to_it(recorded: tuple[Path, str, list[Event]]) -> None:
    path, session, rows = recorded
    target = rows[len(rows) // 2]
    when = datetime.fromtimestamp(target.ts_ns // 10**9, UTC).isoformat()
    cut = max(ev.seq for ev in rows if ev.ts_ns <= target.ts_ns // 10**9 * 10**9)
    result = run("audit", "state", path, "--at", when, "--session", session[:5])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"state as of seq {cut} ")
    assert "orders (" in result.output and "balances (1)" in result.output


# --------------------------------------------------------------------------- timelines


def test_timeline_of_a_filled_order(recorded: tuple[Path, str, list[Event]]) -> None:
    path, _, rows = recorded
    fill = next(ev for ev in rows if ev.kind == "ws.push.personal.order.deal")
    oid = orjson.loads(fill.body)["data"]["externalOid"]
    order_id = str(orjson.loads(fill.body)["data"]["orderId"])
    with Journal.open(path, readonly=True) as j:
        by_oid = timeline(j, oid)
        by_id = timeline(j, order_id)
    assert by_oid == timeline_with_key(by_id, oid)
    kinds = [e.kind for e in by_oid.entries]
    assert kinds[:3] == ["cmd.place_order", "risk.accepted", "rest.order_create"]
    assert "ws.push.personal.order" in kinds and "ws.push.personal.order.deal" in kinds
    answer = by_oid.entries[2]
    assert "HTTP 200" in answer.what and "latency 5.0 ms" in answer.what
    assert by_oid.entries[0].since_intent_ms == 0.0
    assert answer.since_intent_ms is not None and answer.since_intent_ms > 0
    assert by_oid.entries[0].status == "requested (filled 0)"
    assert any(e.status == "filled (filled 1)" for e in by_oid.entries)
    assert [e.seq for e in by_oid.entries] == sorted(e.seq for e in by_oid.entries)
    out = run("audit", "timeline", path, oid)
    assert out.exit_code == 0 and f"orderId {order_id}" in out.output
    assert "WS fill" in out.output
    assert one_line_error(run("audit", "timeline", path, "nope"), 1).endswith("'nope'")


def timeline_with_key(tl: Any, key: str) -> Any:
    from attrs import evolve

    return evolve(tl, key=key)


# --------------------------------------------------------------------------- anomalies


def _anomalous_journal(path: Path, tmp: Path) -> dict[str, int]:
    """A session with one of each anomaly; returns the seq of each."""
    plugin = tmp / "boom.py"
    plugin.write_text(
        "from engine.events import TimerFired\nfrom engine.strategy import Strategy\n\n"
        "class Boom(Strategy):\n    name = 'boom'\n\n"
        "    def on_event(self, view, event):\n"
        "        if isinstance(event, TimerFired):\n            raise RuntimeError('boom')\n"
        "        return ()\n")
    seqs: dict[str, int] = {}
    with Journal.open(path, synchronous="NORMAL") as j:
        rec = Recorder(j, f"{plugin}:Boom")

        def feed(name: str | None, item: Input) -> None:
            rec.advance(10)
            if name is not None:
                seqs[name] = j.last_seq + 1  # the input's seq; its decisions follow it
            rec.feed(item)

        feed(None, rec.contract_detail())
        feed(None, rec.depth_snapshot([(D("99999.9"), 5)], [(D("100000.1"), 5)], 10))
        feed(None, rec.depth_delta(11, bids=[(D("99999.8"), 3)]))
        feed("gap", rec.depth_delta(13, bids=[(D("99999.7"), 3)]))
        feed("gap_journaled", engine_input(BookGapDetected("BTC_USDT", 12, 13, rec.now_ns)))
        feed("resync", engine_input(BookResynced("BTC_USDT", 20, "snapshot", rec.now_ns)))
        feed("disconnect", engine_input(Disconnected("c1", "closed by peer", rec.now_ns)))
        feed("reconnect", engine_input(Connected("c2", "ws://127.0.0.1/edge", rec.now_ns)))
        feed("rate_limit_429", rec.rest("depth", "Too Many Requests", status=429,
                                        path_params={"symbol": "BTC_USDT"}))
        feed("rate_limit_510", rec.rest("ticker", error_envelope(510, "too frequent")))
        feed("decode_error", Input(ws_row(
            '{"channel":"push.depth","data":"oops","symbol":"BTC_USDT","ts":1}', rec.now_ns)))
        feed("unknown_outcome", rec.rest("order_create", "gateway timeout", status=504,
                                         stream="tlx0000000001"))
        feed("kill_switch", engine_input(KillSwitchTripped("operator request", rec.now_ns)))
        feed("reconcile", engine_input(ReconcileDifference(
            "order_missing", "tlx0000000002", "journal open, exchange not", rec.now_ns)))
        feed("strategy_failed", rec.timer())
        seqs["strategy_failed"] = next(
            ev.seq for ev in j.read(kinds=["strategy.failed"]))
    return seqs


def test_anomalies_are_each_named_with_seq_and_time(tmp_path: Path) -> None:
    path = tmp_path / "anomalies.sqlite"
    seqs = _anomalous_journal(path, tmp_path)
    with Journal.open(path, readonly=True) as j:
        found = list(anomalies(j))
    at = {(a.kind, a.seq) for a in found}
    for kind, name in (("gap", "gap"), ("gap", "gap_journaled"), ("resync", "resync"),
                       ("disconnect", "disconnect"), ("reconnect", "reconnect"),
                       ("rate_limit", "rate_limit_429"), ("rate_limit", "rate_limit_510"),
                       ("decode_error", "decode_error"), ("unknown_outcome", "unknown_outcome"),
                       ("kill_switch", "kill_switch"),
                       ("reconcile_difference", "reconcile"),
                       ("strategy_failed", "strategy_failed")):
        assert (kind, seqs[name]) in at, (kind, name, sorted(at))
    # the 429's body and the garbage frame are undecodable; each is named once, not again
    # for the engine.decode_failed row the core journaled about it
    assert sorted(a.seq for a in found if a.kind == "decode_error") == sorted(
        [seqs["rate_limit_429"], seqs["decode_error"]])
    assert any(a.kind == "fold.unknown_external_oid" for a in found)
    assert all(a.ts_ns > 0 for a in found)
    result = run("audit", "anomalies", path, "--format", "json")
    assert result.exit_code == 0
    lines = [orjson.loads(line) for line in result.output.splitlines()]
    assert {(d["kind"], d["seq"]) for d in lines} == at
    assert all(d["time"].startswith("2026-01-01T") for d in lines)


def test_a_clean_session_has_no_anomalies(recorded: tuple[Path, str, list[Event]]) -> None:
    path, session, _ = recorded
    result = run("audit", "anomalies", path, "--session", session)
    assert result.exit_code == 0 and result.output.strip() == "no anomalies"


# --------------------------------------------------------------------------- exports


def test_export_fills_orders_and_events(recorded: tuple[Path, str, list[Event]],
                                        tmp_path: Path) -> None:
    path, session, rows = recorded
    deals = [orjson.loads(ev.body)["data"] for ev in rows
             if ev.kind == "ws.push.personal.order.deal"]
    fills = run("audit", "export", path, "--what", "fills", "--format", "csv")
    assert fills.exit_code == 0
    parsed = list(csv.DictReader(io.StringIO(fills.output)))
    assert [(r["order_id"], r["external_oid"], r["price"]) for r in parsed] == [
        (str(d["orderId"]), d["externalOid"], str(d["price"])) for d in deals]
    out = tmp_path / "orders.jsonl"
    orders = run("audit", "export", path, "--what", "orders", "--format", "jsonl", "-o", out,
                 "--session", session)
    assert orders.exit_code == 0 and f"to {out}" in orders.stderr
    exported = [orjson.loads(line) for line in out.read_text().splitlines()]
    placed = [orjson.loads(ev.body)["command"]["external_oid"] for ev in rows
              if ev.kind == "cmd.place_order"]
    assert [o["external_oid"] for o in exported] == placed
    assert {o["status"] for o in exported} <= {"filled", "cancelled", "open"}
    assert sum(o["status"] == "filled" for o in exported) == len(deals)
    events = run("audit", "export", path, "--what", "events", "--format", "jsonl")
    dumped = [orjson.loads(line) for line in events.output.splitlines()]
    assert [(d["seq"], d["kind"], d["body"], d["hash"]) for d in dumped] == [
        (ev.seq, ev.kind, ev.body, ev.hash) for ev in rows]
    csv_events = list(csv.DictReader(io.StringIO(
        run("audit", "export", path, "--what", "events").output)))
    assert len(csv_events) == len(rows) and csv_events[5]["body"] == rows[5].body


PARQUET_EXPORT = ("audit", "export", "--what", "events", "--format", "parquet")


@pytest.mark.parametrize(("what", "types"), [
    ("events", audit.EVENT_TYPES), ("fills", audit.FILL_TYPES), ("orders", audit.ORDER_TYPES)])
def test_parquet_export_is_typed_and_equals_jsonl(
        recorded: tuple[Path, str, list[Event]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, what: str, types: dict[str, str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path, _, _ = recorded
    monkeypatch.setattr(audit, "_PARQUET_BATCH_ROWS", 7)  # several batches, even for orders
    jsonl, parquet = tmp_path / f"{what}.jsonl", tmp_path / f"{what}.parquet"
    assert run("audit", "export", path, "--what", what, "--format", "jsonl",
               "-o", jsonl).exit_code == 0
    expected = [orjson.loads(line) for line in jsonl.read_text().splitlines()]
    result = run("audit", "export", path, "--what", what, "--format", "parquet", "-o", parquet)
    assert result.exit_code == 0, result.output
    assert f"wrote {len(expected)} {what} to {parquet}" in result.stderr

    table = pq.read_table(parquet)
    assert table.num_rows == len(expected) > 7
    assert pq.ParquetFile(parquet).metadata.num_row_groups == -(-len(expected) // 7)
    arrow = {"int64": pa.int64(), "bool": pa.bool_(), "string": pa.string(),
             "decimal": pa.string()}
    assert table.column_names == list(expected[0])
    assert [(f.name, f.type) for f in table.schema] == [
        (c, arrow[types[c]]) for c in table.column_names]
    decimals = {f.name for f in table.schema
                if (f.metadata or {}).get(b"tapeline.type") == b"decimal"}
    assert decimals == {c for c, t in types.items() if t == "decimal"}
    got = table.to_pylist()
    assert got == expected  # every row, field by field, Python types included
    for i in (0, len(got) // 2, len(got) - 1):
        assert [(c, got[i][c], type(got[i][c])) for c in expected[i]] == [
            (c, expected[i][c], type(expected[i][c])) for c in expected[i]]


def test_parquet_export_keeps_decimals_exact_and_nulls_null(
        recorded: tuple[Path, str, list[Event]], tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    path, _, rows = recorded
    for what in ("events", "fills", "orders"):
        assert run("audit", "export", path, "--what", what, "--format", "parquet",
                   "-o", tmp_path / f"{what}.parquet").exit_code == 0
    schemas = {what: pq.read_schema(tmp_path / f"{what}.parquet")
               for what in ("events", "fills", "orders")}
    assert [str(schemas["events"].field(c).type) for c in ("seq", "ts_ns", "cause", "body")] == [
        "int64", "int64", "int64", "string"]
    assert [str(schemas["fills"].field(c).type) for c in ("price", "is_taker", "fill_ts_ms")] == [
        "string", "bool", "int64"]
    assert [str(schemas["orders"].field(c).type) for c in ("avg_price", "fills", "reason")] == [
        "string", "int64", "string"]
    events = pq.read_table(tmp_path / "events.parquet").to_pylist()
    first = rows[0]
    assert first.venue_ts_ms is None and first.cause is None
    assert events[0] == {"seq": 1, "session": first.session, "ts_ns": first.ts_ns,
                         "venue_ts_ms": None, "source": first.source, "kind": first.kind,
                         "stream": None, "cause": None, "body": first.body,
                         "hash": first.hash}
    caused = next(ev for ev in rows if ev.cause is not None)
    stamped = next(ev for ev in rows if ev.venue_ts_ms is not None)
    assert events[caused.seq - 1]["cause"] == caused.cause
    assert events[stamped.seq - 1]["venue_ts_ms"] == stamped.venue_ts_ms

    deals = [orjson.loads(ev.body)["data"] for ev in rows
             if ev.kind == "ws.push.personal.order.deal"]
    fills = pq.read_table(tmp_path / "fills.parquet").to_pylist()
    assert [(f["order_id"], D(f["price"]), D(f["vol"]), f["is_taker"]) for f in fills] == [
        (str(d["orderId"]), D(str(d["price"])), D(str(d["vol"])), d["isTaker"]) for d in deals]
    assert fills[0]["price"] == str(deals[0]["price"])  # "99999.8", not a float

    orders = pq.read_table(tmp_path / "orders.parquet").to_pylist()
    unfilled = [o for o in orders if o["fills"] == 0]
    assert unfilled and all(o["avg_price"] is None and o["filled_vol"] == "0"
                            for o in unfilled)
    filled = [o for o in orders if o["status"] == "filled"]
    assert filled and all(o["avg_price"] == o["price"] for o in filled)


def test_parquet_without_pyarrow_is_one_line(recorded: tuple[Path, str, list[Event]],
                                             tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path, _, _ = recorded
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name.partition(".")[0] == "pyarrow" else real_find_spec(name, package)

    monkeypatch.setattr(audit.importlib.util, "find_spec", find_spec)
    out = tmp_path / "events.parquet"
    line = one_line_error(run(*PARQUET_EXPORT[:2], path, *PARQUET_EXPORT[2:], "-o", out), 1)
    assert "parquet export needs pyarrow" in line and "tapeline[parquet]" in line
    assert not out.exists()


def test_parquet_needs_an_output_file(recorded: tuple[Path, str, list[Event]]) -> None:
    path, _, _ = recorded
    result = run(*PARQUET_EXPORT[:2], path, *PARQUET_EXPORT[2:])
    assert "parquet export needs an output file (-o FILE)" in one_line_error(result, 1)
    assert result.stdout == ""
    with Journal.open(path, readonly=True) as j, pytest.raises(audit.AuditError, match="-o"):
        audit.export(j, "fills", "parquet", io.StringIO())


# --------------------------------------------------------------------------- CLI behaviour


def test_replay_cli_identical_and_summary(recorded: tuple[Path, str, list[Event]]) -> None:
    path, session, _ = recorded
    result = run("replay", path, "--session", session[:8])
    assert result.exit_code == 0, result.output
    assert "identical" in result.output and "decisions compared" in result.output
    assert "events/s" in result.output
    until = run("replay", path, "--until", "120", "--no-verify")
    assert until.exit_code == 0 and "not verified" in until.output


def test_replay_cli_divergence_exits_4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "nondet.sqlite"
    monkeypatch.setattr(time, "time_ns", lambda: 1_000)
    record_session(path, NONDET_SPEC, steps=200)
    monkeypatch.setattr(time, "time_ns", lambda: 2_000)
    result = run("replay", path)
    assert result.exit_code == 4
    assert "DIVERGED at input seq" in result.output and "strategy view:" in result.output
    assert "recorded (4):" in result.output and "replayed (4):" in result.output
    assert "command.vol: recorded '2', replayed '3'" in result.output


def test_broken_chain_exit_3(recorded: tuple[Path, str, list[Event]], tmp_path: Path) -> None:
    path, _, _ = recorded
    bad = tmp_path / "bad.sqlite"
    shutil.copyfile(path, bad)
    conn = sqlite3.connect(bad, isolation_level=None)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET ts_ns = ts_ns + 1 WHERE seq = 57")
    conn.close()
    line = one_line_error(run("replay", bad), 3)
    assert "seq 57" in line and "refusing to replay" in line
    verify = run("audit", "verify", bad)
    assert verify.exit_code == 3 and "BROKEN at seq 57" in verify.output
    assert run("audit", "verify", path).output.startswith("OK: ")


def test_cli_errors_are_one_line(recorded: tuple[Path, str, list[Event]],
                                 tmp_path: Path) -> None:
    path, _, rows = recorded
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database at all, just some text " * 40)
    assert "no such journal file" in one_line_error(run("replay", tmp_path / "none.sqlite"), 1)
    assert "not" in one_line_error(run("audit", "sessions", junk), 1)
    assert "no session" in one_line_error(run("replay", path, "--session", "zzz"), 1)
    assert "--until" in one_line_error(run("replay", path, "--until", "yesterday"), 2)
    assert "outside" in one_line_error(run("audit", "state", path, "--at", len(rows) + 5), 1)
    one_line_error(run("audit", "export", path, "--what", "trades"), 2)
    one_line_error(run("audit", "state", path), 2)
    assert "strategy" in one_line_error(run("replay", path, "--strategy", "no-such"), 1)
    sessions = run("audit", "sessions", path, "--format", "json")
    assert orjson.loads(sessions.output.splitlines()[0])["strategy"] == "market-maker"


@pytest.mark.parametrize("what", ["events", "fills", "orders"])
def test_export_reports_progress_up_to_the_total(
    recorded: tuple[Path, str, list[Event]], what: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, session, rows = recorded
    monkeypatch.setattr(audit, "_PROGRESS_EVERY", 50)
    calls: list[tuple[int, int]] = []
    with Journal.open(path, readonly=True) as j:
        n = audit.export(j, what, "jsonl", io.StringIO(), session=session,
                         progress=lambda done, total: calls.append((done, total)))
    assert n > 0
    totals = {total for _, total in calls}
    assert totals == {len(rows)}  # one session from seq 1: every row is scanned
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == len(rows)
    if what == "events":  # every 50 rows read, then the end
        assert len(calls) == len(rows) // 50 + 1


def test_export_cli_prints_progress_lines_off_a_terminal(
    recorded: tuple[Path, str, list[Event]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path, _, rows = recorded
    monkeypatch.setattr(audit, "_PROGRESS_EVERY", 100)
    monkeypatch.setattr("engine.cli_audit._Progress.LINE_EVERY", 200)
    out = tmp_path / "events.csv"
    result = run("audit", "export", path, "--what", "events", "-o", out)
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("exporting events:")]
    assert lines and lines[-1] == f"exporting events: {len(rows)}/{len(rows)} rows"
    assert f"wrote {len(rows)} events to {out}" in result.output
