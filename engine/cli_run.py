"""``tapeline run`` and ``tapeline demo`` (shell).

``run`` builds :class:`~engine.runtime.RunOptions` from the TOML config (``--config``) with
command-line options taking precedence, picks the venue for the mode, and runs one session
with a live status line and a clean Ctrl-C. ``demo`` is the Quick start's main job: the
example market maker against the bundled simulator for about a minute, then a summary.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import click
import trio

from engine.config import FileConfig, load_config, parse_duration
from engine.errors import ConfigError, EngineError
from engine.runtime import MODES, RunOptions, SessionSummary, json_summary, run_session

__all__ = ["demo_command", "run_command"]


def _duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def _symbols(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[str, ...] | None:
    if value is None:
        return None
    syms = tuple(s.strip().upper() for s in value.split(",") if s.strip())
    if not syms or any(not s.replace("_", "").isalnum() or "_" not in s for s in syms):
        raise click.BadParameter(f"expected a comma list like BTC_USDT,ETH_USDT, got {value!r}")
    return syms


def build_options(cfg: FileConfig, **cli: Any) -> RunOptions:
    """Merge the config file and the command line (the command line wins)."""
    run = dict(cfg.run)

    def pick(name: str, key: str | None = None, default: Any = None) -> Any:
        value = cli.get(name)
        return value if value is not None else run.get(key or name, default)

    strategy_config = dict(cfg.strategy)
    symbols = pick("symbols", default=None)
    symbols = tuple(symbols) if symbols else None
    if symbols is None:
        sym = strategy_config.get("symbol")
        symbols = (str(sym),) if sym else ("BTC_USDT",)
    return RunOptions(
        journal_path=Path(pick("journal", default="tapeline.sqlite")),
        mode=pick("mode", default="sim"),
        strategy=pick("strategy", default=None),
        strategy_config=strategy_config,
        symbols=symbols,
        duration_s=pick("duration", default=None),
        cancel_on_stop=pick("cancel_on_stop", default=True),
        exit_on_kill=run.get("exit_on_kill", True),
        risk=cfg.risk,
        alert_command=cfg.alerts.get("command"),
        alert_webhook=cfg.alerts.get("webhook"),
        status_every_s=pick("status_every", "status_every_s", 5.0),
        synchronous=run.get("synchronous", "FULL"),
        stale_account_s=run.get("stale_account_s", 60.0),
    )


def _mexc_config(cfg: FileConfig) -> Any:
    from adapters.mexc.config import Generation, MexcConfig

    m = cfg.mexc
    try:
        generation = Generation(m.get("generation", "new"))
    except ValueError:
        raise ConfigError("[mexc] generation must be 'new' or 'old'") from None
    kwargs: dict[str, Any] = {"generation": generation}
    for key in ("rest_base", "ws_url", "recv_window"):
        if key in m:
            kwargs[key] = m[key]
    try:
        return MexcConfig(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"[mexc] {exc}") from None


def _venue_factory(opts: RunOptions, cfg: FileConfig) -> Any:
    balance = Decimal(str(cfg.sim.get("balance", "10000")))
    if opts.mode == "sim":
        from adapters.mexc.venue import open_sim_venue

        return partial(open_sim_venue, symbols=opts.symbols, seed=int(cfg.sim.get("seed", 1)),
                       balance=balance)
    config = _mexc_config(cfg)
    if opts.mode == "shadow":
        from adapters.mexc.shadow import open_shadow_venue

        return partial(open_shadow_venue, source_config=config, symbols=opts.symbols,
                       balance=balance)
    from adapters.mexc.auth import Credentials
    from adapters.mexc.errors import CredentialsError
    from adapters.mexc.venue import open_live_venue

    credentials = None
    if opts.mode == "live":
        m = cfg.mexc
        try:
            credentials = (Credentials.from_file(Path(m["credentials_file"]).expanduser())
                           if "credentials_file" in m else Credentials.from_env())
        except CredentialsError as exc:
            raise ConfigError(f"live mode needs API keys: {exc}") from None
    return partial(open_live_venue, config=config, credentials=credentials)


def _run(opts: RunOptions, venue: Any, *, handle_signals: bool) -> SessionSummary:
    async def main() -> SessionSummary:
        return await run_session(opts, venue, handle_signals=handle_signals)

    return trio.run(main)


def _finish(summary: SessionSummary, as_json: bool) -> None:
    if as_json:
        click.echo(json_summary(summary))
    else:
        for line in summary.lines():
            click.echo(line)
    if summary.exit_code:
        sys.exit(summary.exit_code)


@click.command("run")
@click.option("--strategy", help="Strategy: entry-point name, module:Class or path/file.py:Class.")
@click.option("--mode", type=click.Choice(MODES), help="sim (default), live, shadow or record.")
@click.option(
    "--symbols", callback=_symbols, help="Comma list of contracts, e.g. BTC_USDT,ETH_USDT."
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML configuration file (see docs/configuration.md).",
)
@click.option(
    "--journal",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Journal file (default tapeline.sqlite; sessions are appended).",
)
@click.option("--duration", callback=_duration, help="Stop after this long (e.g. 90s, 5m, 2h).")
@click.option(
    "--status-every", type=click.FloatRange(min=0), help="Status line period in s (0: off)."
)
@click.option(
    "--cancel-on-stop/--keep-orders-on-stop",
    default=None,
    help="Cancel all open orders when the session stops (default: cancel).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the final summary as JSON.")
def run_command(
    strategy: str | None,
    mode: str | None,
    symbols: tuple[str, ...] | None,
    config_path: Path | None,
    journal: Path | None,
    duration: float | None,
    status_every: float | None,
    cancel_on_stop: bool | None,
    as_json: bool,
) -> None:
    """Run a strategy (by default against the bundled simulator) until Ctrl-C or --duration."""
    try:
        cfg = load_config(config_path)
        opts = build_options(
            cfg,
            strategy=strategy,
            mode=mode,
            symbols=symbols,
            journal=journal,
            duration=duration,
            status_every=status_every,
            cancel_on_stop=cancel_on_stop,
        )
        venue = _venue_factory(opts, cfg)
        summary = _run(opts, venue, handle_signals=True)
    except EngineError as exc:
        raise click.ClickException(str(exc)) from None
    _finish(summary, as_json)


@click.command("demo")
@click.option(
    "--journal",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("tapeline-demo.sqlite"),
    show_default=True,
    help="Journal file.",
)
@click.option(
    "--duration", callback=_duration, default="60s", show_default=True, help="How long to trade."
)
@click.option("--json", "as_json", is_flag=True, help="Print the final summary as JSON.")
def demo_command(journal: Path, duration: float, as_json: bool) -> None:
    """Run the example market maker against the bundled simulator, then summarise."""
    click.echo(
        f"tapeline demo: market maker on BTC_USDT against the bundled simulator "
        f"for {duration:g} s (Ctrl-C stops early)",
        err=True,
    )
    try:
        opts = RunOptions(
            journal_path=journal,
            mode="sim",
            strategy="market-maker",
            symbols=("BTC_USDT",),
            duration_s=duration,
            status_every_s=10.0,
        )
        cfg = load_config(None)
        summary = _run(opts, _venue_factory(opts, cfg), handle_signals=True)
    except EngineError as exc:
        raise click.ClickException(str(exc)) from None
    _finish(summary, as_json)
    if not as_json:
        click.echo(
            f"next: tapeline journal verify {journal}  |  tapeline audit anomalies {journal}"
        )
