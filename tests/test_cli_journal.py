"""``tapeline journal info|sessions|events|verify``: output in both formats, filters, and one
line on stderr (never a traceback) for every expected failure."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from engine.cli import main
from engine.events import NewEvent
from engine.journal import Journal

KINDS = ("ws.push.depth", "ws.push.deal", "ws.push.ticker", "rest.order.create", "engine.timer")


@pytest.fixture(scope="module")
def journal_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Session alpha1: seq 1-10, session beta22: seq 11-15; kind i % 5, stream by parity."""
    path = tmp_path_factory.mktemp("cli") / "journal.sqlite"
    with Journal.open(path, synchronous="NORMAL") as j:
        a = j.start_session(started_ns=1, session_id="alpha1", strategy="grid", mode="live",
                            parser_version="p1")
        b = j.start_session(started_ns=2, session_id="beta22", strategy="maker", mode="paper")
        for session, seqs in ((a, range(1, 11)), (b, range(11, 16))):
            j.append(session, [
                NewEvent(ts_ns=1_000 + i, source=KINDS[i % 5].split(".")[0],  # type: ignore[arg-type]
                         kind=KINDS[i % 5], body=f'{{"i":{i}}}',
                         stream="BTC_USDT" if i % 2 else "ETH_USDT", cause=i - 1 if i > 1 else None)
                for i in seqs
            ])
    return path


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def json_lines(result: Result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def event_seqs(path: Path, *args: str) -> list[int]:
    return [e["seq"] for e in json_lines(run("journal", "events", path, "--format", "json", *args))]


# --------------------------------------------------------------------------- info, sessions


def test_info(journal_file: Path) -> None:
    (data,) = json_lines(run("journal", "info", journal_file, "--format", "json"))
    with Journal.open(journal_file, readonly=True) as j:
        info = j.info()
    assert data == {
        "path": str(journal_file), "schema": list(info.schema), "sessions": 2, "events": 15,
        "first_seq": 1, "last_seq": 15, "last_hash": info.last_hash, "size_bytes": info.size_bytes,
    }
    assert data["schema"][0] == "0001_initial"
    table = run("journal", "info", journal_file)
    assert table.exit_code == 0
    lines = dict(line.split(None, 1) for line in table.stdout.splitlines())
    assert lines["events"] == "15" and lines["last_hash"] == info.last_hash
    assert lines["schema"] == ", ".join(info.schema)


def test_sessions(journal_file: Path) -> None:
    rows = json_lines(run("journal", "sessions", journal_file, "--format", "json"))
    assert [(r["id"], r["events"], r["first_seq"], r["last_seq"], r["strategy"], r["mode"])
            for r in rows] == [("alpha1", 10, 1, 10, "grid", "live"),
                               ("beta22", 5, 11, 15, "maker", "paper")]
    assert rows[0]["parser_version"] == "p1" and rows[1]["parser_version"] is None
    table = run("journal", "sessions", journal_file)
    assert table.exit_code == 0
    header, _rule, *body = table.stdout.splitlines()
    assert header.split() == ["id", "mode", "strategy", "events", "first_seq", "last_seq",
                              "engine", "parser"]
    assert [line.split()[:4] for line in body] == [["alpha1", "live", "grid", "10"],
                                                   ["beta22", "paper", "maker", "5"]]


# --------------------------------------------------------------------------- events


def test_events_json_carries_every_field(journal_file: Path) -> None:
    first = json_lines(run("journal", "events", journal_file, "--format", "json", "--limit", "2"))
    with Journal.open(journal_file, readonly=True) as j:
        expected = list(j.read(limit=2))
    assert first == [
        {"seq": ev.seq, "session": ev.session, "ts_ns": ev.ts_ns, "venue_ts_ms": ev.venue_ts_ms,
         "source": ev.source, "kind": ev.kind, "stream": ev.stream, "cause": ev.cause,
         "body": ev.body, "hash": ev.hash}
        for ev in expected
    ]


@pytest.mark.parametrize(
    ("args", "seqs"),
    [
        ((), list(range(1, 16))),
        (("--session", "alpha1"), list(range(1, 11))),
        (("--session", "bet"), [11, 12, 13, 14, 15]),  # a unique prefix
        (("--kind", "ws.push.deal"), [1, 6, 11]),
        (("--kind", "ws.push.deal", "--kind", "engine.timer"), [1, 4, 6, 9, 11, 14]),
        (("--kind", "ws.push.*"), [1, 2, 5, 6, 7, 10, 11, 12, 15]),
        (("--kind", "ws.*", "--session", "beta"), [11, 12, 15]),
        (("--kind", "nothing.*"), []),
        (("--stream", "ETH_USDT"), [2, 4, 6, 8, 10, 12, 14]),
        (("--from-seq", "9"), [9, 10, 11, 12, 13, 14, 15]),
        (("--to-seq", "3"), [1, 2, 3]),
        (("--from-seq", "4", "--to-seq", "6"), [4, 5, 6]),
        (("--from-seq", "14", "--to-seq", "100"), [14, 15]),
        (("--limit", "4"), [1, 2, 3, 4]),
        (("--limit", "2", "--from-seq", "8", "--session", "alpha"), [8, 9]),
        (("--session", "beta22", "--to-seq", "12"), [11, 12]),
    ],
)
def test_event_filters(journal_file: Path, args: tuple[str, ...], seqs: list[int]) -> None:
    assert event_seqs(journal_file, *args) == seqs


def test_events_default_limit_is_100(tmp_path: Path) -> None:
    path = tmp_path / "many.sqlite"
    with Journal.open(path, synchronous="NORMAL") as j:
        sid = j.start_session(started_ns=1)
        j.append(sid, [NewEvent(ts_ns=i, source="ws", kind="k", body="b") for i in range(150)])
    assert event_seqs(path) == list(range(1, 101))
    assert len(event_seqs(path, "--limit", "1000")) == 150


def test_events_table(journal_file: Path) -> None:
    result = run("journal", "events", journal_file, "--kind", "rest.*")
    assert result.exit_code == 0
    header, rule, *rows = result.stdout.splitlines()
    assert header.split() == ["seq", "session", "ts_ns", "source", "kind", "stream", "cause",
                              "body"]
    assert set(rule) <= {"-", " "}
    assert [r.split()[:5] for r in rows] == [
        ["3", "alpha1", "1003", "rest", "rest.order.create"],
        ["8", "alpha1", "1008", "rest", "rest.order.create"],
        ["13", "beta22", "1013", "rest", "rest.order.create"],
    ]


def test_verify_ok(journal_file: Path) -> None:
    result = run("journal", "verify", journal_file)
    assert result.exit_code == 0
    with Journal.open(journal_file, readonly=True) as j:
        head = j.info().last_hash
    assert result.stdout.strip() == f"OK: 15 events, chain head seq 15 {head}"
    (data,) = json_lines(run("journal", "verify", journal_file, "--format", "json"))
    assert data == {"ok": True, "checked": 15, "first_bad_seq": None, "problem": None,
                    "last_seq": 15, "last_hash": head}


# --------------------------------------------------------------------------- failures


def assert_one_line_failure(result: Result, *, code: int | None = None,
                            contains: str = "") -> str:
    assert result.exit_code != 0, result.output
    if code is not None:
        assert result.exit_code == code, result.output
    # no exception escaped click (SystemExit is how click exits)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert contains in lines[0], lines[0]
    assert result.stdout == ""
    return lines[0]


COMMANDS = ("info", "sessions", "events", "verify")


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    junk = d / "junk.sqlite"
    junk.write_bytes(bytes(range(256)) * 64)
    empty = d / "empty.sqlite"
    empty.touch()
    other = d / "other.sqlite"
    with closing(sqlite3.connect(other, isolation_level=None)) as c:
        c.execute("CREATE TABLE events (x)")
        c.execute("INSERT INTO events VALUES (1)")
    blank = d / "blank.sqlite"
    with closing(sqlite3.connect(blank, isolation_level=None)) as c:
        c.execute("PRAGMA user_version = 7")
    (d / "a-directory").mkdir()
    return {"missing": d / "missing.sqlite", "directory": d / "a-directory", "junk": junk,
            "empty": empty, "other": other, "blank": blank}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "no such journal file"),
        ("directory", "is a directory"),
        ("junk", "not an SQLite database"),
        ("empty", "empty file"),
        ("other", "not a tapeline journal"),
        ("blank", "not a tapeline journal"),
    ],
)
def test_what_is_not_a_journal_fails_in_one_line(
    bad_files: dict[str, Path], command: str, kind: str, message: str
) -> None:
    assert_one_line_failure(run("journal", command, bad_files[kind]), contains=message)


def test_nothing_was_created_by_a_failed_read(bad_files: dict[str, Path]) -> None:
    run("journal", "info", bad_files["missing"])
    assert not bad_files["missing"].exists()


@pytest.fixture(scope="module")
def corrupt_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corrupt") / "journal.sqlite"
    with Journal.open(path, synchronous="NORMAL") as j:
        sid = j.start_session(started_ns=1)
        for start in range(0, 2_000, 500):
            j.append(sid, [NewEvent(ts_ns=i, source="ws", kind="ws.push.depth",
                                    body=f'{{"i":{i},"pad":"{"y" * 300}"}}', stream="BTC_USDT")
                           for i in range(start, start + 500)])
    size = path.stat().st_size
    assert size > 100 * 4096
    page = 4096
    middle = (size // 2) // page * page
    with open(path, "r+b") as f:  # two whole pages of garbage in the middle of the file
        f.seek(middle)
        f.write(b"\xde\xad\xbe\xef" * (2 * page // 4))
    return path


def test_a_corrupt_journal_fails_verify_in_one_line(corrupt_file: Path) -> None:
    assert_one_line_failure(run("journal", "verify", corrupt_file), code=1, contains="damaged")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_corrupt_journal_never_gives_a_traceback(corrupt_file: Path, command: str) -> None:
    # what each command notices depends on which pages it reads; none may crash
    args = ["--limit", "5000"] if command == "events" else []
    result = run("journal", command, corrupt_file, *args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if result.exit_code != 0:
        assert_one_line_failure(result, contains="damaged")


@pytest.mark.parametrize(
    ("args", "contains"),
    [
        (("--limit", "0"), "'--limit': 0 is not in the range x>=1"),
        (("--limit", "-3"), "'--limit'"),
        (("--bogus",), "No such option"),
        (("--from-seq", "abc"), "'--from-seq'"),
        (("--to-seq", "0"), "'--to-seq'"),
        (("--format", "xml"), "'--format'"),
        (("--kind", "ws.*", "--kind", "engine.timer"), "--kind"),
        (("--session", "nobody"), "no session 'nobody'"),
    ],
)
def test_bad_arguments_fail_in_one_line(
    journal_file: Path, args: tuple[str, ...], contains: str
) -> None:
    assert_one_line_failure(run("journal", "events", journal_file, *args), contains=contains)


def test_usage_errors_exit_2_and_engine_errors_exit_1(journal_file: Path) -> None:
    assert run("journal", "events", journal_file, "--limit", "0").exit_code == 2
    assert run("journal", "events", journal_file, "--session", "x").exit_code == 1
    assert_one_line_failure(run("journal", "nonsense"), code=2, contains="No such command")
    assert_one_line_failure(run("journal", "info"), code=2, contains="Missing argument")


def test_ambiguous_session_prefix(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with Journal.open(path) as j:
        j.start_session(started_ns=1, session_id="run-1")
        j.start_session(started_ns=2, session_id="run-2")
    assert_one_line_failure(run("journal", "events", path, "--session", "run"), code=1,
                            contains="ambiguous")
