"""Generate docs/cli.md from the click command tree (shell).

``python -m engine.cli_docs > docs/cli.md``; ``tests/test_cli_docs.py`` fails when the
committed page differs, so no command or option goes undocumented.
"""

from __future__ import annotations

import click

from engine.cli import main

__all__ = ["render"]


def _walk(cmd: click.Command, path: list[str], out: list[str],
          parent: click.Context | None = None) -> None:
    name = " ".join(path)
    ctx = click.Context(cmd, info_name=path[-1], parent=parent, **cmd.context_settings)
    out.append(f"## `{name}`\n")
    out.append((cmd.help or "").strip().split("\n\n")[0].replace("\n", " ") + "\n")
    usage = cmd.collect_usage_pieces(ctx)
    out.append(f"```\n{name} {' '.join(usage)}\n```\n")
    rows = []
    for param in cmd.params:  # click caches its help option per command: render it ourselves
        record = param.get_help_record(ctx)
        if record is None:
            if isinstance(param, click.Argument):
                rows.append((param.human_readable_name, "argument"))
            continue
        rows.append((record[0], record[1].replace("\n", " ").replace("|", "\\|")))
    if cmd.add_help_option:
        rows.append((", ".join(sorted(ctx.help_option_names, key=len)),
                     "Show this message and exit."))
    if rows:
        out.append("| option | meaning |\n|---|---|")
        out.extend(f"| `{opt}` | {text} |" for opt, text in rows)
        out.append("")
    if isinstance(cmd, click.Group):
        for sub in sorted(cmd.list_commands(ctx)):
            child = cmd.get_command(ctx, sub)
            if child is not None:
                _walk(child, [*path, sub], out, ctx)


def render() -> str:
    """The whole reference page."""
    out = ["# CLI reference\n",
           "Generated from the command tree by `python -m engine.cli_docs`; do not edit.\n"]
    _walk(main, ["tapeline"], out)
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
