"""``tapeline sim``: run the MEXC Futures simulator on a local port (shell).

Prints where it listens and the credentials to use, one ``name=value`` per line, then
serves until interrupted (Ctrl-C or SIGTERM end it cleanly with exit code 0). Bad
arguments end in one ``Error: ...`` line and a non-zero exit code.
"""

from __future__ import annotations

import re
import secrets
import signal
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

import click
import trio

from adapters.mexc.shadow import JournalMarket
from adapters.mexc.sim.asgi import rest_base_url, serve_sim, ws_url
from adapters.mexc.sim.contracts import Contract, default_contracts, make_contract
from adapters.mexc.sim.faults import Faults, FaultUpdateError
from adapters.mexc.sim.market import DEFAULT_START_PRICES
from adapters.mexc.sim.service import ADMIN_PATH, SimService, is_loopback
from engine.clock import SystemClock
from engine.errors import EngineError

__all__ = ["sim_command"]

_SYMBOL = re.compile(r"^[A-Z0-9]{2,20}_USDT$")
_GENERIC_START_PRICE = Decimal(100)


class _OneLineCommand(click.Command):
    """A click command whose usage errors are one ``Error: ...`` line (no usage banner)."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise _OneLineError(exc.format_message()) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _OneLineError(exc.format_message()) from exc


class _OneLineError(click.ClickException):
    exit_code = 2


def _decimal(text: str, name: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise click.BadParameter(f"{text!r} is not a number", param_hint=name) from None
    if not value.is_finite() or value <= 0:
        raise click.BadParameter("must be a positive number", param_hint=name)
    return value


def parse_symbols(text: str) -> tuple[list[Contract], dict[str, Decimal]]:
    """Contracts and start prices for a comma list of ``BASE_USDT`` symbols.

    BTC_USDT and ETH_USDT use their built-in specifications; any other symbol gets a
    generic contract (1 base unit per contract, 0.001 price tick) starting at 100 USDT.
    """
    symbols = [s.strip().upper() for s in text.split(",") if s.strip()]
    if not symbols:
        raise click.BadParameter("give at least one symbol", param_hint="--symbols")
    if len(set(symbols)) != len(symbols):
        raise click.BadParameter("a symbol is listed twice", param_hint="--symbols")
    builtin = default_contracts()
    contracts: list[Contract] = []
    prices: dict[str, Decimal] = {}
    for index, symbol in enumerate(symbols):
        if not _SYMBOL.match(symbol):
            raise click.BadParameter(
                f"{symbol!r} is not a BASE_USDT symbol (e.g. BTC_USDT)", param_hint="--symbols"
            )
        if symbol in builtin:
            contracts.append(builtin[symbol])
            prices[symbol] = DEFAULT_START_PRICES[symbol]
        else:
            contracts.append(
                make_contract(
                    symbol,
                    contract_size=Decimal(1),
                    price_unit=Decimal("0.001"),
                    price_scale=3,
                    max_leverage=100,
                    contract_id=100 + index,
                )
            )
            prices[symbol] = _GENERIC_START_PRICE
    return contracts, prices


def _faults(seed: int, options: dict[str, Any]) -> Faults:
    changes: dict[str, Any] = {}
    if options["drop_every"] is not None:
        changes["ws_drop_every_s"] = options["drop_every"]
    if options["silent_pongs"]:
        changes["silent_pongs"] = True
    if options["depth_gaps"] is not None:
        changes["depth_gap_probability"] = options["depth_gaps"]
    if options["rest_delay"] is not None:
        changes["rest_delay_s"] = options["rest_delay"]
    if options["fault_5xx"] is not None:
        changes["rest_5xx_next"] = options["fault_5xx"]
    if options["fault_404"]:
        changes["order_404"] = True
    if options["rate_limit"] is not None:
        changes["rate_limit_next"] = options["rate_limit"]
    if options["clock_skew"] is not None:
        changes["clock_skew_s"] = options["clock_skew"]
    faults = Faults(seed=seed)
    try:
        faults.update(changes)
    except FaultUpdateError as exc:
        raise click.UsageError(str(exc)) from None
    return faults


async def _serve(
    service: SimService, host: str, port: int, allow_remote: bool, lines: Sequence[str],
    market: Any = None,
) -> None:
    async with trio.open_nursery() as nursery:
        if market is not None:
            await nursery.start(market.run)
        bound = await nursery.start(
            partial(serve_sim, service, host, port, allow_remote=allow_remote)
        )
        base = rest_base_url(host, bound)
        for line in (
            f"rest_base={base}",
            f"rest_public={base}/api/v1/contract",
            f"rest_private={base}/api/v1/private",
            f"ws_url={ws_url(host, bound)}",
            f"admin={base}{ADMIN_PATH}",
            *lines,
        ):
            click.echo(line)
        click.echo("serving; Ctrl-C to stop", err=True)
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            async for _ in signals:  # one SIGTERM ends the run
                nursery.cancel_scope.cancel()
                break


@click.command("sim", cls=_OneLineCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port to listen on; 0 picks a free one.",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow listening on a non-loopback address (no TLS, no auth on the admin).",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of the synthetic market (and of random faults).",
)
@click.option(
    "--symbols",
    default="BTC_USDT,ETH_USDT",
    show_default=True,
    help="Comma list of BASE_USDT contracts to list.",
)
@click.option("--balance", default="10000", show_default=True, help="USDT in the test account.")
@click.option("--api-key", help="Fixed API key (with --api-secret); random when not given.")
@click.option("--api-secret", help="Fixed API secret (with --api-key).")
@click.option(
    "--step",
    type=click.FloatRange(min=0.001),
    default=0.1,
    show_default=True,
    help="Seconds between market steps.",
)
@click.option(
    "--market-journal",
    type=click.Path(exists=True, dir_okay=False),
    help="Play a recorded journal's market (books, deals, prices) instead of the synthetic one.",
)
@click.option("--market-session", help="With --market-journal: the session to play (id or prefix).")
@click.option(
    "--market-speed",
    type=click.FloatRange(min=0.001),
    default=1.0,
    show_default=True,
    help="With --market-journal: playback speed (2 plays twice as fast).",
)
@click.option(
    "--fault-drop-every",
    "drop_every",
    type=click.FloatRange(min=0.001),
    help="Close every WebSocket connection every S seconds.",
)
@click.option(
    "--fault-silent-pongs", "silent_pongs", is_flag=True, help="Never answer WebSocket pings."
)
@click.option(
    "--fault-depth-gaps",
    "depth_gaps",
    type=float,
    help="Leave each depth commit out of the WS stream with probability P.",
)
@click.option(
    "--fault-rest-delay", "rest_delay", type=float, help="Answer REST requests S seconds late."
)
@click.option(
    "--fault-5xx",
    "fault_5xx",
    type=click.IntRange(min=0),
    help="Answer the first N REST requests with HTTP 503.",
)
@click.option(
    "--fault-404",
    "fault_404",
    is_flag=True,
    help="HTTP 404 on every order endpoint (an API change).",
)
@click.option(
    "--fault-rate-limit",
    "rate_limit",
    type=click.IntRange(min=0),
    help="Answer the first N REST requests with code 510.",
)
@click.option(
    "--clock-skew",
    "clock_skew",
    type=float,
    help="Offset the server clock by S seconds (beyond 10 s: code 513).",
)
def sim_command(
    host: str,
    port: int,
    allow_remote: bool,
    seed: int,
    symbols: str,
    balance: str,
    api_key: str | None,
    api_secret: str | None,
    step: float,
    market_journal: str | None,
    market_session: str | None,
    market_speed: float,
    **fault_options: Any,
) -> None:
    """Run a local MEXC Futures simulator (REST + WebSocket) until interrupted."""
    if not allow_remote and not is_loopback(host):
        raise click.BadParameter(
            f"{host!r} is not a loopback address; add --allow-remote to listen on it",
            param_hint="--host",
        )
    if (api_key is None) != (api_secret is None):
        raise click.UsageError("give both --api-key and --api-secret, or neither")
    amount = _decimal(balance, "--balance")
    contracts, prices = parse_symbols(symbols)
    faults = _faults(seed, fault_options)
    key = api_key or f"mx0sim{secrets.token_hex(8)}"
    secret = api_secret or secrets.token_hex(16)
    if not key.strip() or not secret.strip() or any(c.isspace() for c in key + secret):
        raise click.UsageError("--api-key and --api-secret must be non-empty without spaces")

    async def main() -> None:
        journal_contracts = []
        if market_journal is not None:
            try:
                journal_contracts = JournalMarket.contracts(market_journal, market_session)
            except EngineError as exc:
                raise click.ClickException(str(exc)) from None
        service = SimService(
            clock=SystemClock(),
            seed=seed,
            contracts=journal_contracts or contracts,
            start_prices=None if journal_contracts else prices,
            faults=faults,
            step_s=step,
            drive_market=market_journal is None,
        )
        service.add_account(key, secret, amount)
        market = (JournalMarket(service, market_journal, session=market_session,
                                speed=market_speed) if market_journal else None)
        await _serve(service, host, port, allow_remote,
                     [f"api_key={key}", f"api_secret={secret}"], market)

    try:
        trio.run(main)
    except BaseException as exc:  # sorted below; anything unexpected is re-raised
        leaves = _leaves(exc)
        if any(isinstance(leaf, KeyboardInterrupt) for leaf in leaves) and all(
            isinstance(leaf, KeyboardInterrupt | trio.Cancelled) for leaf in leaves
        ):
            return
        failure = next((leaf for leaf in leaves if isinstance(leaf, OSError)), None)
        if failure is None:
            raise
        reason = failure.strerror or str(failure)
        raise click.ClickException(f"cannot listen on {host}:{port}: {reason}") from None


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (possibly nested) exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


if __name__ == "__main__":  # python -m adapters.mexc.sim.cli
    sim_command()
