"""Tampering with a journal behind its back is found by ``tapeline journal verify``, which
names the first bad seq."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.cli import main
from engine.journal import Journal
from tests.journal_tampering import COLUMNS, build_journal, edited, untriggered

REPO = Path(__file__).resolve().parents[1]
N_ROWS = 20


def _build(path: Path) -> None:
    """20 rows over two sessions; some nullable fields NULL, some not; ASCII only."""
    build_journal(path, N_ROWS, 5,
                  lambda i: f'{{"i":{i},"asks":[["60000.5","12"]],"bids":[["60000.1","3"]]}}')


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pristine") / "journal.sqlite"
    _build(path)
    assert not Path(f"{path}-wal").exists()  # checkpointed on close: the file is complete
    return path


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scratch")


@pytest.fixture
def journal_copy(pristine: Path, tmp_path: Path) -> Path:
    target = tmp_path / "journal.sqlite"
    shutil.copyfile(pristine, target)
    return target


def _change_body(conn: sqlite3.Connection) -> int:
    conn.execute("UPDATE events SET body = replace(body, '60000.5', '60000.6') WHERE seq = 7")
    return 7


def _delete_middle_row(conn: sqlite3.Connection) -> int:
    conn.execute("DELETE FROM events WHERE seq = 11")
    return 11


def _swap_contents(conn: sqlite3.Connection) -> int:
    # rows 13 and 16 exchange every column but seq
    cols = ", ".join(COLUMNS[1:])
    conn.execute("BEGIN")
    conn.execute(f"CREATE TEMP TABLE saved AS SELECT {cols} FROM events WHERE seq = 13")
    conn.execute(f"UPDATE events SET ({cols}) = (SELECT {cols} FROM events WHERE seq = 16)"
                 " WHERE seq = 13")
    conn.execute(f"UPDATE events SET ({cols}) = (SELECT {cols} FROM saved) WHERE seq = 16")
    conn.execute("COMMIT")
    return 13


def _swap_seqs(conn: sqlite3.Connection) -> int:
    # rows 4 and 5 exchange their seqs, each keeping its content and hash
    conn.execute("BEGIN")
    conn.execute("UPDATE events SET seq = 1000 WHERE seq = 4")
    conn.execute("UPDATE events SET seq = 4 WHERE seq = 5")
    conn.execute("UPDATE events SET seq = 5 WHERE seq = 1000")
    conn.execute("COMMIT")
    return 4


def _recompute_nothing_but_shift(conn: sqlite3.Connection) -> int:
    # delete row 9 and renumber the rest down by one: no gap, but every hash now lies
    conn.execute("DELETE FROM events WHERE seq = 9")
    for seq in range(10, N_ROWS + 1):
        conn.execute("UPDATE events SET seq = ? WHERE seq = ?", (seq - 1, seq))
    return 9


TAMPERS: dict[str, Callable[[sqlite3.Connection], int]] = {
    "change-body": _change_body,
    "delete-middle-row": _delete_middle_row,
    "swap-contents": _swap_contents,
    "swap-seqs": _swap_seqs,
    "delete-and-renumber": _recompute_nothing_but_shift,
}


def _tamper(path: Path, how: Callable[[sqlite3.Connection], int]) -> int:
    conn = untriggered(path)
    try:
        return how(conn)
    finally:
        conn.close()


def test_the_untouched_journal_verifies(journal_copy: Path) -> None:
    result = CliRunner().invoke(main, ["journal", "verify", str(journal_copy)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"OK: {N_ROWS} events")


@pytest.mark.parametrize("name", list(TAMPERS))
def test_verify_names_the_first_bad_seq(journal_copy: Path, name: str) -> None:
    bad = _tamper(journal_copy, TAMPERS[name])

    result = CliRunner().invoke(main, ["journal", "verify", str(journal_copy)])
    assert result.exit_code == 3
    match = re.match(r"BROKEN at seq (\d+): ", result.stdout)
    assert match is not None, result.stdout
    assert int(match.group(1)) == bad
    assert f"({bad - 1} events before it verified)" in result.stdout

    as_json = CliRunner().invoke(main, ["journal", "verify", str(journal_copy), "--format", "json"])
    assert as_json.exit_code == 3
    report = orjson.loads(as_json.stdout)
    assert (report["ok"], report["first_bad_seq"], report["checked"]) == (False, bad, bad - 1)
    assert report["last_seq"] == (bad - 1 if bad > 1 else None)


def test_a_real_subprocess_exits_non_zero_and_names_the_seq(journal_copy: Path) -> None:
    bad = _tamper(journal_copy, _delete_middle_row)
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "journal", "verify", str(journal_copy)],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.startswith(f"BROKEN at seq {bad}: seq {bad} is missing")
    assert "Traceback" not in proc.stderr


def test_rows_below_seq_one_are_not_hidden(journal_copy: Path) -> None:
    # moving the last row to seq 0 must not pass as a merely shorter journal
    def move_last_row_to_zero(conn: sqlite3.Connection) -> int:
        conn.execute("UPDATE events SET seq = 0 WHERE seq = ?", (N_ROWS,))
        return 1

    _tamper(journal_copy, move_last_row_to_zero)
    with Journal.open(journal_copy, readonly=True) as j:
        result = j.verify()
    assert (result.ok, result.first_bad_seq) == (False, 1)
    assert "unexpected row at seq 0" in (result.problem or "")


# --------------------------------------------------------------------------- property


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_single_byte_edit_is_found_at_its_row(
    pristine: Path, scratch: Path, data: st.DataObject
) -> None:
    seq = data.draw(st.integers(1, N_ROWS), label="seq")
    column = data.draw(st.sampled_from(COLUMNS), label="column")
    work = scratch / "journal.sqlite"
    for leftover in (Path(f"{work}-wal"), Path(f"{work}-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(pristine, work)
    conn = untriggered(work)
    try:
        (old,) = conn.execute(f"SELECT {column} FROM events WHERE seq = ?", (seq,)).fetchone()
        new = edited(old, column, data)
        if column == "seq":
            assume(not (1 <= int(new) <= N_ROWS))  # any other seq collides with a row
        conn.execute(f"UPDATE events SET {column} = ? WHERE seq = ?", (new, seq))
    finally:
        conn.close()

    with Journal.open(work, readonly=True) as j:
        result = j.verify()
    # a row moved below seq 1 is found first, as an unexpected row where seq 1 should be
    expected = 1 if column == "seq" and int(new) < 1 else seq
    assert not result.ok
    assert result.first_bad_seq == expected, (column, old, new, result)
