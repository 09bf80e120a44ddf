"""nox sessions: tests (the default), browser, lint, typecheck, bench, soak, crash, reliability.

Every session installs exactly the versions pinned in requirements.lock (with hashes), then
tapeline itself without dependencies, so what is tested is what the lock file says.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"

LOCK = "requirements.lock"


def _install(session: nox.Session) -> None:
    session.install("--require-hashes", "-r", LOCK)
    session.install("--no-deps", "--no-build-isolation", "-e", ".")


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite but the browser test (pytest, trio mode, warnings are errors)."""
    _install(session)
    session.run("python", "-m", "pytest", "--ignore=tests/browser", *session.posargs)


@nox.session
def browser(session: nox.Session) -> None:
    """The HTML report rendered in headless Chromium (needs Debian's `chromium` package)."""
    _install(session)
    session.run("python", "-m", "pytest", "tests/browser", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over everything."""
    _install(session)
    session.run("ruff", "check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy on engine/ and adapters/."""
    _install(session)
    session.run("mypy", "engine", "adapters")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks beside their floors; writes bench/out/latest.json."""
    _install(session)
    session.run("python", "-m", "bench", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """Many virtual hours with faults at random moments (default 6 h); memory and journal size
    per hour reported and bounded. Pass e.g. `-- --hours 24`."""
    _install(session)
    session.run("python", "-m", "bench.reliability", "soak",
                *(session.posargs or ["--hours", "6"]))


@nox.session
def crash(session: nox.Session) -> None:
    """SIGKILL the engine 50+ times while it trades, restarting on the same journal."""
    _install(session)
    session.run("python", "-m", "bench.reliability", "crash",
                *(session.posargs or ["--kills", "50"]))


@nox.session
def reliability(session: nox.Session) -> None:
    """Fault matrix, soak, crash campaign and bad inputs; rewrites docs/reliability.md."""
    _install(session)
    session.run("python", "-m", "bench.reliability", "all",
                *(session.posargs or ["--hours", "6", "--kills", "50"]))
