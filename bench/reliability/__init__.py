"""Reliability campaigns: the fault matrix, the soak and the crash campaign (dev tool).

* :mod:`bench.reliability.checks` — the invariants (journal verifies, replay is identical,
  no lost fill, no duplicate, no orphan, projections equal the exchange);
* :mod:`bench.reliability.matrix` — every simulator fault, alone and combined, while a
  strategy trades (virtual time);
* :mod:`bench.reliability.soak` — hours of virtual time with random faults, memory and
  journal growth per virtual hour;
* :mod:`bench.reliability.crash` — SIGKILL the engine process at random points and restart
  it on the same journal (real processes);
* ``python -m bench.reliability`` runs them and writes ``docs/reliability.md``.
"""
