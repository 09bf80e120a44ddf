"""Child process of test_journal_crash: append batches until killed, acknowledging each one.

``python journal_crash_child.py PATH RUN`` opens PATH as the writer (synchronous=FULL, the
default), starts session ``crash-RUN``, prints ``SESSION <id>``, then appends at most
:data:`MAX_BATCHES` batches and prints ``ACK <last_seq>`` (flushed) after each append returns.
The batch sizes and bodies are functions of (run, batch, index) so the parent can check them.
"""

from __future__ import annotations

import sys

MAX_BATCHES = 500


def session_id(run: int) -> str:
    """The session a run writes."""
    return f"crash-{run:03d}"


def batch_size(run: int, batch: int) -> int:
    """How many events batch ``batch`` of run ``run`` holds (1-16)."""
    return 1 + (run * 7 + batch * 13) % 16


def body(run: int, batch: int, index: int) -> str:
    """The body of one event: names itself, padded to a few hundred bytes."""
    head = f'{{"run":{run},"batch":{batch},"index":{index},"pad":"'
    return head + "x" * (100 + (batch * 31 + index * 17) % 200) + '"}'


def main(argv: list[str]) -> int:
    """Append until killed (or until MAX_BATCHES, which a test never lets it reach)."""
    from engine.events import NewEvent
    from engine.journal import Journal

    path, run = argv[1], int(argv[2])
    with Journal.open(path) as journal:
        sid = journal.start_session(started_ns=run, session_id=session_id(run), mode="crash")
        print(f"SESSION {sid}", flush=True)
        for b in range(MAX_BATCHES):
            seqs = journal.append(sid, [
                NewEvent(ts_ns=run * 1_000_000 + b * 100 + i, source="ws", kind="ws.push.deal",
                         body=body(run, b, i), stream="BTC_USDT")
                for i in range(batch_size(run, b))
            ])
            print(f"ACK {seqs[-1]}", flush=True)
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
