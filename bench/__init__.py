"""tapeline's benchmarks: each figure printed beside a floor measured in the same run.

Run them with ``nox -s bench`` or ``python -m bench [--quick] [NAME ...]``. They are not
part of the test suite, and no test asserts a timing.

The contract for a benchmark module
-----------------------------------
A module ``bench/bench_<name>.py`` is found automatically (``python -m bench <name>`` runs
only it). It exposes::

    def run(report: bench.common.Report, quick: bool) -> None

and, for every figure, calls::

    report.add("<name>.<what>", value, unit, floor,
               higher_is_better=True, target_ratio=None, note="")

where ``floor`` is the best the machine can do for the same work *measured in the same run*
(the machine is noisy, so a figure is only meaningful as a ratio to its own floor; see
``FLOORS.md``). ``ratio`` is ``value / floor`` (``floor / value`` when lower is better), so
1.0 means "as fast as the floor" either way; ``target_ratio`` is the ratio the project
promises, if any. Time with :func:`bench.common.median_seconds_interleaved`: give it the
measured code and its floor as :class:`bench.common.Case` values (``fn``, an untimed
``setup`` run before every repetition, an optional ``teardown``); it runs them in turns and
returns the median seconds of each (:func:`bench.common.median_seconds` times one case).

A module must bound its own running time: under ~60 s normally and under ~10 s with
``quick=True`` (a smoke run), keep its files in a temporary directory, and never touch the
network beyond 127.0.0.1. ``python -m bench`` prints the table and merges every row into
``bench/out/latest.json``, keyed by row name, keeping rows other modules wrote earlier.
"""
