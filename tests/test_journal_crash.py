"""Crash safety: a writer SIGKILLed at 22 seeded moments never loses an acknowledged batch,
never leaves half a batch, and never breaks the chain.

The child (``journal_crash_child.py``) prints ``ACK <last_seq>`` after each append returns.
The parent kills it right after reading a seeded number of ACKs, while it is inside its
next append, then drains whatever ACKs were already in the pipe: every one of them names a
batch that must be in the file. All runs share one journal file, so it grows from run to run.
"""

from __future__ import annotations

import importlib.util
import os
import random
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.journal import Journal

HERE = Path(__file__).resolve().parent
CHILD = HERE / "journal_crash_child.py"
RUNS = 22
MAX_ACKS_BEFORE_KILL = 24
READ_TIMEOUT_S = 30.0  # a guard against a hung child, never a wait the test relies on

_spec = importlib.util.spec_from_file_location("journal_crash_child", CHILD)
assert _spec is not None and _spec.loader is not None
child = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(child)


class LineReader:
    """Lines from a pipe, each read bounded by a timeout (select on the raw descriptor)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buf = b""
        self.eof = False

    def readline(self, timeout: float = READ_TIMEOUT_S) -> str | None:
        """The next complete line, or None at end of file."""
        for _ in range(100_000):
            if b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                return line.decode()
            if self.eof:
                return None  # a partial last line is ignored: it was never a whole ACK
            ready, _, _ = select.select([self._fd], [], [], timeout)
            if not ready:
                raise TimeoutError(f"no output from the child within {timeout}s")
            chunk = os.read(self._fd, 65536)
            if not chunk:
                self.eof = True
            self._buf += chunk
        raise AssertionError("too many reads for one line")


def _run_and_kill(path: Path, run: int, kill_after: int, stderr_file: Path) -> list[int]:
    """Start a child, SIGKILL it after ``kill_after`` ACKs; return every ACKed last_seq."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent),
                                                        os.environ.get("PYTHONPATH", "")])}
    with open(stderr_file, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(CHILD), str(path), str(run)],
            stdout=subprocess.PIPE, stderr=err, env=env,
        )
    try:
        assert proc.stdout is not None
        reader = LineReader(proc.stdout.fileno())
        first = reader.readline()
        assert first == f"SESSION {child.session_id(run)}", stderr_file.read_text()
        acks: list[int] = []
        while len(acks) < kill_after:
            line = reader.readline()
            assert line is not None and line.startswith("ACK "), (line, stderr_file.read_text())
            acks.append(int(line.split()[1]))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=READ_TIMEOUT_S) == -signal.SIGKILL
        # ACKs already in the pipe were printed after their append returned: they count too
        for _ in range(child.MAX_BATCHES + 1):
            line = reader.readline()
            if line is None:
                break
            assert line.startswith("ACK "), line
            acks.append(int(line.split()[1]))
        return acks
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=READ_TIMEOUT_S)
        if proc.stdout is not None:
            proc.stdout.close()


def _check_after_crash(path: Path, run: int, acks: list[int], earlier_events: int) -> int:
    """Open the crashed file as the next writer would; return its event count."""
    with Journal.open(path) as j:  # takes the lock the dead child held; recovers the WAL
        result = j.verify()
        assert result.ok, result
        info = j.info()
        assert info.events == result.checked
        sid = child.session_id(run)
        stored = list(j.read(session=sid))
        # whole batches only: the stored events are exactly the first k batches, k >= acks
        sizes = [child.batch_size(run, b) for b in range(child.MAX_BATCHES)]
        k = 0
        total = 0
        while total < len(stored):
            total += sizes[k]
            k += 1
        assert total == len(stored), f"run {run}: a partial batch of {len(stored)} events"
        assert k >= len(acks)
        expected = [child.body(run, b, i) for b in range(k) for i in range(sizes[b])]
        assert [e.body for e in stored] == expected
        # each ACK names the last seq of its batch, and that batch is there
        end = stored[0].seq - 1 if stored else info.last_seq
        for b, acked_seq in enumerate(acks):
            end += sizes[b]
            assert acked_seq == end
        assert (info.last_seq or 0) >= (acks[-1] if acks else 0)
        assert info.events == earlier_events + len(stored)
        return info.events


@pytest.mark.slow
def test_sigkill_never_loses_an_acknowledged_batch(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite"
    rng = random.Random(20_240_601)
    kill_points = [rng.randrange(0, MAX_ACKS_BEFORE_KILL + 1) for _ in range(RUNS)]
    kill_points[0] = 0  # one kill during the very first append of a session
    events = 0
    sessions_seen = []
    for run, kill_after in enumerate(kill_points):
        acks = _run_and_kill(path, run, kill_after, tmp_path / f"child-{run}.stderr")
        assert len(acks) >= kill_after
        assert acks == sorted(acks)
        events = _check_after_crash(path, run, acks, events)
        sessions_seen.append(child.session_id(run))
    with Journal.open(path, readonly=True) as j:
        assert [s.id for s in j.sessions()] == sessions_seen
        assert j.verify().ok
