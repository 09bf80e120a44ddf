"""Deterministic replay of a recorded session, and its verification (shell: reads the journal).

Theory of operation
-------------------
Replay is the live pipeline with the journal as its source. A session's rows are of two
sorts: *inputs* (every kind not in :data:`engine.core.DECISION_KINDS`: WS frames, REST
answers, timers, stops, ...) and *decisions* (intents, risk verdicts, decode and strategy
failures), which the live :class:`~engine.sequencer.Sequencer` appended after each batch
with ``cause`` = the seq of the input that caused them. :func:`replay_session` rebuilds the
state the live engine started from (the fold of every earlier row, as start-up does), loads
and configures the recorded strategy from the session's meta, and feeds the session's inputs
in seq order through a fresh :class:`~engine.core.Core`. Nothing is sent anywhere: the
recorded REST answers are inputs like any other.

With ``verify`` the decisions the replayed core makes are encoded exactly as the sequencer
encodes them and compared, byte for byte and in order, with the recorded decision rows. One
streaming cursor reads the session in seq order: each input is handled at once, its replayed
decisions wait in a queue that the recorded decision rows, which follow later in the same
stream, must match head first. The queue holds at most one sequencer batch of decisions, so
memory stays flat. Alongside, a *reference* state folds the recorded rows in journal order
(sharing each input's decoded values with the core); at the end the replayed projections
must equal it. Books and markets are the exception: they fold only input values
(:data:`~engine.projections.MARKET_TYPES`), which both sides fold alike, so the reference
counts those values without folding them again and takes its books and markets from the
replayed state. The first difference stops the replay and is reported as a
:class:`Divergence`, with the view the strategy had when it handled the divergent event.

A journal whose hash chain does not verify is refused before anything is replayed
(:class:`ChainBrokenError`, naming the first bad seq). Planning (strategy, versions, config
hash, ``--until``) is in :mod:`engine.replay_plan`; results and diffs in
:mod:`engine.replay_report`; both are re-exported here.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

from attrs import frozen

from adapters.mexc.errors import DecodeError
from adapters.mexc.interpret import interpret as mexc_interpret
from engine import codec
from engine.core import DECISION_KINDS, Core, Decision
from engine.events import EngineEvent, Event, NewEvent, Row
from engine.journal import Journal, SessionInfo
from engine.projections import MARKET_TYPES, State, apply, project_except
from engine.rebuild import fold_rows, rebuild_state
from engine.replay_plan import (
    ChainBrokenError,
    ReplayError,
    SessionPlan,
    Until,
    config_hash,
    parse_until,
    plan_session,
    require_chain,
)
from engine.replay_report import (
    Divergence,
    ReplayResult,
    describe,
    excerpt,
    first_difference,
    normalized,
    render,
    same_row,
)
from engine.risk import RiskGate, RiskLimits
from engine.state_report import view_summary
from engine.strategy import StrategyContext

__all__ = [
    "ChainBrokenError",
    "Divergence",
    "ReplayError",
    "ReplayResult",
    "SessionPlan",
    "Until",
    "config_hash",
    "parse_until",
    "plan_session",
    "replay_all",
    "replay_session",
    "require_chain",
    "view_at_input",
]

PROGRESS_EVERY: Final = 10_000
_DECISIONS: Final = sorted(DECISION_KINDS)
_NO_LIMIT: Final = 2**63

Interpret = Callable[[Row], Sequence[Any]]


def _prior_state(journal: Journal, info: SessionInfo, interpret: Interpret,
                 decode_errors: tuple[type[Exception], ...]) -> State:
    if not info.first_seq or info.first_seq <= 1:
        return State()
    state, _, _ = rebuild_state(journal, interpret, to_seq=info.first_seq - 1,
                                decode_errors=decode_errors)
    return state


def view_at_input(journal: Journal, info: SessionInfo, seq: int, *,
                  interpret: Interpret = mexc_interpret,
                  decode_errors: tuple[type[Exception], ...] = (DecodeError,)) -> State:
    """The state a strategy saw when handling input ``seq`` of the session: earlier rows,
    the decisions of earlier inputs (even those journaled after ``seq`` in the same batch),
    and the input itself, but none of its own decisions."""

    def rows() -> Iterator[Event]:
        for ev in journal.read(session=info.id):
            decision = ev.kind in DECISION_KINDS
            if ev.seq > seq and not decision:
                return
            if decision and (ev.cause is None or ev.cause >= seq):
                continue
            yield ev

    state = _prior_state(journal, info, interpret, decode_errors)
    return fold_rows(state, rows(), interpret, decode_errors=decode_errors)[0]


# --------------------------------------------------------------------------- the replayer


@frozen
class _Pending:
    cause: int
    row: NewEvent
    event: EngineEvent


class _Replayer:
    """One replay: the core, the reference fold, the queue of unmatched decisions."""

    def __init__(self, journal: Journal, plan: SessionPlan, *, interpret: Interpret,
                 decode_errors: tuple[type[Exception], ...], verify: bool,
                 progress: Callable[[int], None] | None) -> None:
        info = plan.session
        self.journal, self.plan, self.info = journal, plan, info
        self.interpret, self.decode_errors = interpret, decode_errors
        self.verify, self.progress = verify, progress
        state = _prior_state(journal, info, interpret, decode_errors)
        self.reference = State.restore(state.snapshot()) if verify else None
        strategy = None
        if plan.strategy_cls is not None:
            strategy = plan.strategy_cls()
            ctx = StrategyContext.create(info.id, plan.config, plan.symbols)
            try:
                strategy.on_start(ctx)
            except Exception as exc:
                raise ReplayError(f"strategy {plan.strategy_spec!r}: on_start failed: "
                                  f"{type(exc).__name__}: {exc}") from exc
        self.core = Core(state, interpret, strategy=strategy, risk=RiskGate(plan.risk),
                         decode_errors=decode_errors)
        self.pending: deque[_Pending] = deque()
        self._matched: tuple[int | None, list[NewEvent]] = (None, [])
        self.inputs = self.decisions = self.compared = self.rows = 0
        self.last_input_seq: int | None = None
        self.divergence: Divergence | None = None

    def run(self, until: Until) -> None:
        """Replay up to ``until``; sets ``divergence`` on the first difference."""
        cutoff: int | None = None
        progress, verify, interpret = self.progress, self.verify, self.interpret
        core = self.core
        fold_values, decode_failed, decode_errors = (core.fold_values, core.decode_failed,
                                                     core.decode_errors)
        until_seq = until.seq if until.seq is not None else _NO_LIMIT
        until_ns = until.ts_ns if until.ts_ns is not None else _NO_LIMIT
        reference = self.reference
        rows = inputs = 0
        last_input_seq: int | None = None
        for ev in self.journal.read_facts(session=self.info.id):  # the hot loop: locals only
            rows += 1
            if progress is not None and rows % PROGRESS_EVERY == 0:
                progress(rows)
            if ev.kind in DECISION_KINDS:
                if verify and not self._recorded(ev):
                    break
                continue
            seq = ev.seq
            if seq > until_seq or ev.ts_ns > until_ns:
                cutoff = seq
                break
            try:  # Core.handle, with the values kept for the reference
                try:
                    values = interpret(ev)
                except decode_errors as exc:
                    values = ()
                    decisions = decode_failed(ev, exc)
                else:
                    decisions = fold_values(values, ev.ts_ns, seq)
            except Exception as exc:
                raise ReplayError(f"replay failed on seq {seq} ({ev.kind}): "
                                  f"{type(exc).__name__}: {exc}") from exc
            if reference is not None and values:
                # books and markets fold only inputs, the same values in the same order on
                # both sides, so the reference does not fold them again (see state_difference)
                project_except(reference, values, MARKET_TYPES)
            inputs += 1
            last_input_seq = seq
            if decisions:
                self._decided(seq, decisions)
        self.inputs, self.last_input_seq = inputs, last_input_seq
        self.rows = rows
        if self.divergence is not None:
            return
        if verify and cutoff is not None and self.last_input_seq is not None:
            # decisions of the last inputs may follow inputs beyond the cutoff (same batch)
            last = self.last_input_seq
            for rec in self.journal.read(session=self.info.id, kinds=_DECISIONS,
                                         from_seq=cutoff, page=64):
                if rec.cause is None or rec.cause > last:
                    break
                if not self._recorded(rec):
                    return
        if verify and self.pending:
            self.divergence = self._diverged(self.pending[0].cause)

    def _decided(self, seq: int, decisions: Sequence[Decision]) -> None:
        self.decisions += len(decisions)
        if self.verify:
            for d in decisions:
                self.pending.append(_Pending(
                    seq, codec.encode(d.event, stream=d.stream, cause=seq), d.event))

    def _recorded(self, rec: Row) -> bool:
        if self.pending:
            head = self.pending[0]
            if same_row(head.row, rec):
                self.pending.popleft()
                self.compared += 1
                if self.reference is not None:
                    apply(self.reference, head.event)
                cause, rows = self._matched
                if cause != head.cause:
                    self._matched = (head.cause, rows := [])
                rows.append(head.row)
                return True
            at = head.cause if rec.cause is None else min(head.cause, rec.cause)
        else:
            at = rec.cause if rec.cause is not None else rec.seq
        self.divergence = self._diverged(at)
        return False

    # ------------------------------------------------------------------ reporting

    def _recorded_for(self, cause: int) -> list[Event]:
        out: list[Event] = []
        for rec in self.journal.read(session=self.info.id, kinds=_DECISIONS, from_seq=cause,
                                     page=64):
            if (rec.cause is not None and rec.cause > cause) or len(out) >= 50:
                break
            if rec.cause == cause or (rec.cause is None and rec.seq == cause):
                out.append(rec)
        return out

    def _is_last_input(self, seq: int) -> bool:
        for ev in self.journal.read(session=self.info.id, from_seq=seq + 1, page=256):
            if ev.kind not in DECISION_KINDS:
                return False
        return True

    def _diverged(self, seq: int) -> Divergence:
        row = next(iter(self.journal.read(session=self.info.id, from_seq=seq, to_seq=seq)), None)
        recorded = self._recorded_for(seq)
        cause, matched = self._matched
        replayed = [*(matched if cause == seq else []),
                    *(p.row for p in self.pending if p.cause == seq)]
        if not replayed:
            why = (f"the recording has {len(recorded)} decision(s) for this event that the "
                   "replay did not make")
        elif not recorded:
            why = (f"the replay made {len(replayed)} decision(s) for this event that the "
                   "recording does not have")
            if self._is_last_input(seq):
                why += (" (it is the session's last input: the recording may have stopped "
                        "before they were committed)")
        else:
            pairs = zip(recorded, replayed, strict=False)
            why = next((describe(a, b) for a, b in pairs if not same_row(b, a)),
                       f"the recording has {len(recorded)} decision(s), the replay "
                       f"{len(replayed)}")
        if self.plan.notes:
            why += "; " + "; ".join(self.plan.notes)
        elif self.plan.strategy_cls is not None:
            why += ("; the strategy and parser versions are unchanged, so the strategy is "
                    "probably not deterministic (it must read time only from view.now_ns, "
                    "randomness only from ctx.random, and do no I/O)")
        state = view_at_input(self.journal, self.info, seq, interpret=self.interpret,
                              decode_errors=self.decode_errors)
        return Divergence(
            seq=seq, input_kind=row.kind if row else "?",
            input_ts_ns=row.ts_ns if row else None,
            input_excerpt=excerpt(row.body) if row else "",
            view_summary=view_summary(state, self.plan.symbols),
            recorded=tuple(render(r) for r in recorded),
            replayed=tuple(render(r) for r in replayed), explanation=why)

    def state_difference(self) -> str | None:
        """Where the replayed projections differ from the fold of the recorded rows."""
        if self.reference is None:
            return None
        mine = normalized(self.core.state.snapshot())
        theirs = normalized(self.reference.snapshot())
        # The reference did not refold MARKET_TYPES values: books and markets folded nothing
        # else, and both sides folded the same values in the same order, so they are equal.
        theirs["books"], theirs["market"] = mine["books"], mine["market"]
        return None if mine == theirs else first_difference(mine, theirs)


# --------------------------------------------------------------------------- entry points


def replay_session(
    journal: Journal,
    session_id: str,
    *,
    strategy_spec: str | None = None,
    strategy_config: Mapping[str, Any] | None = None,
    until_seq: int | None = None,
    until_ts_ns: int | None = None,
    verify: bool = True,
    progress: Callable[[int], None] | None = None,
    risk: RiskLimits | None = None,
    interpret: Interpret = mexc_interpret,
    decode_errors: tuple[type[Exception], ...] = (DecodeError,),
    check_chain: bool = True,
) -> ReplayResult:
    """Replay one session (id or unique prefix) and, with ``verify``, compare it with the
    recording. ``progress(rows_read)`` is called every :data:`PROGRESS_EVERY` rows.

    Raises :class:`ChainBrokenError` (before replaying anything) when the hash chain does not
    verify, :class:`ReplayError` when the session cannot be replayed.
    """
    t0 = time.perf_counter()
    if check_chain:
        require_chain(journal)
    info = journal.session(session_id)
    plan = plan_session(info, strategy_spec=strategy_spec, strategy_config=strategy_config,
                        risk=risk)
    replayer = _Replayer(journal, plan, interpret=interpret, decode_errors=decode_errors,
                         verify=verify, progress=progress)
    replayer.run(Until(until_seq, until_ts_ns))
    difference = None
    if verify and replayer.divergence is None:
        difference = replayer.state_difference()
    if progress is not None:
        progress(replayer.rows)
    return ReplayResult(
        session=info.id, inputs=replayer.inputs, decisions=replayer.decisions,
        compared=replayer.compared, last_seq=replayer.last_input_seq, verified=verify,
        divergence=replayer.divergence, state_difference=difference, notes=plan.notes,
        elapsed_s=time.perf_counter() - t0, state=replayer.core.state)


def replay_all(journal: Journal, **options: Any) -> list[ReplayResult]:
    """Replay every session with events, oldest first (the chain is verified once)."""
    if options.pop("check_chain", True):
        require_chain(journal)
    return [replay_session(journal, s.id, check_chain=False, **options)
            for s in journal.sessions() if s.events]
