"""Every code block marked runnable in README.md and docs/*.md runs and succeeds.

The convention: an HTML comment ``<!-- runnable -->`` alone on the line right before an
opening fence (```` ```bash ````, ```` ```sh ```` or ```` ```python ````). It does not show
in rendered Markdown, and it works in any renderer, unlike fence attributes.

The marked blocks of one file run in order in one fresh temporary directory, so a tutorial's
later steps see what its earlier ones made; each block is its own process with a time limit:
bash with ``-e -o pipefail`` and this interpreter's ``bin`` directory first on ``PATH``,
python with this interpreter. Mark only quick (< 20 s), self-contained blocks: network only to
127.0.0.1, nothing outside the working directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from attrs import frozen

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 60.0  # a generous bound: marked blocks are meant to take well under 20 s
MARKER = re.compile(r"^\s*<!--\s*runnable\s*-->\s*$")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)")
COMMANDS = {
    "bash": ["bash", "-e", "-o", "pipefail", "-c"],
    "sh": ["bash", "-e", "-o", "pipefail", "-c"],
    "python": [sys.executable, "-c"],
}


class MarkupError(ValueError):
    """A runnable marker that does not introduce a proper code block."""


@frozen
class Block:
    """One runnable code block: where it starts (1-based line of its fence), its language
    and its code."""

    path: str
    line: int
    lang: str
    code: str


def runnable_blocks(text: str, path: str = "<text>") -> list[Block]:
    """The blocks of ``text`` marked runnable, in order."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        if not MARKER.match(lines[i]):
            i += 1
            continue
        j = i + 1
        fence = FENCE.match(lines[j]) if j < len(lines) else None
        if fence is None:
            raise MarkupError(f"{path}:{i + 1}: <!-- runnable --> must be followed directly "
                              "by a fenced code block")
        ticks, lang = fence.group(1), fence.group(2).lower()
        end = j + 1
        while end < len(lines) and not lines[end].strip().startswith(ticks):
            end += 1
        if end == len(lines):
            raise MarkupError(f"{path}:{j + 1}: the runnable code block is never closed")
        blocks.append(Block(path, j + 1, lang, "\n".join(lines[j + 1:end]) + "\n"))
        i = end + 1
    return blocks


def run_block(block: Block, cwd: Path, *, path_prefix: list[Path] | None = None,
              timeout_s: float = TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run one block in ``cwd`` and return the finished process."""
    command = COMMANDS.get(block.lang)
    if command is None:
        raise MarkupError(f"{block.path}:{block.line}: cannot run a {block.lang or 'plain'!r} "
                          f"block; runnable blocks are {', '.join(sorted(COMMANDS))}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    prefix = path_prefix if path_prefix is not None else [Path(sys.executable).parent]
    env["PATH"] = os.pathsep.join([*map(str, prefix), env.get("PATH", "")])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run([*command, block.code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout_s, check=False)


def run_file(path: Path, cwd: Path, **options: object) -> None:
    """Run every runnable block of ``path`` in order in ``cwd``; fail on the first error."""
    rel = path.relative_to(REPO).as_posix()
    for block in runnable_blocks(path.read_text(encoding="utf-8"), rel):
        try:
            done = run_block(block, cwd, **options)  # type: ignore[arg-type]
        except subprocess.TimeoutExpired:
            pytest.fail(f"{rel}:{block.line}: still running after {TIMEOUT_S:g} s")
        if done.returncode != 0:
            pytest.fail(f"{rel}:{block.line}: {block.lang} block exited {done.returncode}\n"
                        f"--- code\n{block.code}--- stdout\n{done.stdout}--- stderr\n"
                        f"{done.stderr}")


def documents() -> list[Path]:
    """README.md and docs/*.md."""
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def documents_with_blocks() -> list[Path]:
    """The documents holding at least one runnable block."""
    return [p for p in documents() if runnable_blocks(p.read_text(encoding="utf-8"), str(p))]


@pytest.mark.parametrize("path", documents_with_blocks(),
                         ids=lambda p: p.relative_to(REPO).as_posix())
def test_runnable_blocks_run(path: Path, tmp_path: Path) -> None:
    run_file(path, tmp_path)


def test_the_tutorial_and_the_strategy_guide_are_checked() -> None:
    checked = {p.relative_to(REPO).as_posix() for p in documents_with_blocks()}
    assert {"docs/tutorial.md", "docs/strategies.md"} <= checked


def test_markers_and_blocks_are_parsed() -> None:
    text = "\n".join([
        "# t", "```bash", "not marked", "```",
        "<!-- runnable -->", "```bash", "echo one", "echo two", "```",
        "  <!--runnable-->", "````python title=x", "print('```')", "````",
    ])
    first, second = runnable_blocks(text, "t.md")
    assert (first.line, first.lang, first.code) == (6, "bash", "echo one\necho two\n")
    assert (second.line, second.lang, second.code) == (11, "python", "print('```')\n")


@pytest.mark.parametrize("text", [
    "<!-- runnable -->\nsome prose\n```bash\necho\n```",
    "<!-- runnable -->\n```bash\necho never closed",
    "<!-- runnable -->",
])
def test_bad_markup_is_an_error(text: str) -> None:
    with pytest.raises(MarkupError):
        runnable_blocks(text, "bad.md")


def test_a_failing_block_fails(tmp_path: Path) -> None:
    ok = run_block(Block("x.md", 1, "bash", "echo hi > made.txt\n"), tmp_path)
    assert ok.returncode == 0 and (tmp_path / "made.txt").read_text() == "hi\n"
    bad = run_block(Block("x.md", 1, "bash", "false\necho not reached\n"), tmp_path)
    assert bad.returncode != 0 and "not reached" not in bad.stdout
    py = run_block(Block("x.md", 1, "python", "import sys; sys.exit(3)\n"), tmp_path)
    assert py.returncode == 3
    with pytest.raises(MarkupError, match="cannot run"):
        run_block(Block("x.md", 1, "toml", "a = 1\n"), tmp_path)
