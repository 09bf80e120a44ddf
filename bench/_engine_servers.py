"""Helpers of ``bench_engine`` (dev tool): realistic depth frames and the two local servers.

Not a benchmark module itself (its name does not start with ``bench_``). The servers run as
child processes so that their CPU does not share the measuring process's interpreter::

    python -m bench._engine_servers ws N SEED VERSION0
    python -m bench._engine_servers sim API_KEY SECRET

Each prints its bound port (127.0.0.1 only) on the first line of stdout and exits when its
stdin closes, so a child never outlives the bench that started it.

* ``ws``: a minimal wsproto server (see :func:`serve_frames`). On a text message
  ``go COUNT`` it sends the first COUNT of its N pre-generated ``push.depth`` frames as fast
  as the socket takes them; it answers ``{"method":"ping"}`` with a pong and ignores
  anything else.
* ``sim``: the bundled MEXC simulator (:class:`~adapters.mexc.sim.service.SimService`,
  rate limiting off, market standing still) served with
  :func:`~adapters.mexc.sim.asgi.serve_sim`, with one account funded with 10M USDT.
"""

from __future__ import annotations

import random
import sys
from decimal import Decimal
from functools import partial

import orjson
import trio

SYMBOL = "BTC_USDT"
T0_MS = 1_767_225_600_000
BALANCE = Decimal("10000000")
LEVELS = 20
CHANGE = 0.3
"""Probability that a visible level is re-drawn between two frames."""


def depth_frames(n: int, seed: int = 7, version0: int = 28_111_438_870) -> list[str]:
    """``n`` ``push.depth`` frames, 20 levels a side (~800 bytes), versions ``version0 + 1``
    onwards, exactly one apart. The mid walks -3..+3 ticks of 0.1 a frame and each visible
    level is re-drawn with probability :data:`CHANGE` (a tenth of re-draws delete it), so the
    frames vary as a live stream does and never repeat."""
    rng = random.Random(seed)
    mid = 1_087_790  # ticks of 0.1
    book: dict[int, tuple[int, int]] = {}

    def level(tick: int) -> list[float | int]:
        state = book.get(tick)
        if state is None or rng.random() < CHANGE:
            if rng.random() < 0.1:
                state = (0, 0)
            else:
                state = (max(1, int(rng.lognormvariate(8.5, 1.5))), rng.randint(1, 12))
            book[tick] = state
        return [tick / 10, *state]

    frames = []
    for i in range(n):
        mid += rng.randint(-3, 3)
        data = {
            "asks": [level(mid + 1 + k) for k in range(LEVELS)],
            "bids": [level(mid - k) for k in range(LEVELS)],
            "version": version0 + 1 + i,
        }
        frames.append(orjson.dumps({"channel": "push.depth", "data": data, "symbol": SYMBOL,
                                    "ts": T0_MS + i}).decode())
    return frames


def snapshot_levels(version0: int) -> dict[str, object]:
    """The ``contract/depth`` data of a book at ``version0`` around the frames' start."""
    mid = 1_087_790
    return {"asks": [[(mid + 1 + k) / 10, 1_000 + k, 1] for k in range(LEVELS)],
            "bids": [[(mid - k) / 10, 1_000 + k, 1] for k in range(LEVELS)],
            "version": version0}


# ----------------------------------------------------------------------------- servers


async def _until_stdin_closes() -> None:
    await trio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)


async def serve_frames(n: int, seed: int, version0: int) -> None:
    """The ``ws`` child: serve ``n`` frames to every connection that says ``go COUNT``.

    A minimal wsproto server (wsproto is what trio-websocket is built on): the frames are
    encoded once, then written in 64 KiB chunks, so that the server outpaces any client (a
    trio-websocket server sends only ~20k frames/s on the 2-core machine, about the client
    floor, and would have made the floor measure the server)."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import (
        AcceptConnection,
        CloseConnection,
        Message,
        Ping,
        Request,
        TextMessage,
    )

    frames = depth_frames(n, seed, version0)
    encoder = WSConnection(ConnectionType.SERVER)
    encoder.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
                         b"Sec-WebSocket-Version: 13\r\n\r\n")
    next(encoder.events())
    encoder.send(AcceptConnection())
    wire = [encoder.send(TextMessage(f)) for f in frames]
    pong = encoder.send(TextMessage(f'{{"channel":"pong","data":{T0_MS}}}'))

    async def send_frames(stream: trio.SocketStream, count: int) -> None:
        chunk: list[bytes] = []
        size = 0
        for data in wire[:count]:
            chunk.append(data)
            size += len(data)
            if size >= 65536:
                await stream.send_all(b"".join(chunk))
                chunk, size = [], 0
        if chunk:
            await stream.send_all(b"".join(chunk))

    async def handler(stream: trio.SocketStream) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        text: list[str] = []
        try:
            while True:  # ends when the client goes
                data = await stream.receive_some(65536)
                if not data:
                    return
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, Request):
                        await stream.send_all(ws.send(AcceptConnection()))
                    elif isinstance(event, Ping):
                        await stream.send_all(ws.send(event.response()))
                    elif isinstance(event, CloseConnection):
                        await stream.send_all(ws.send(event.response()))
                        return
                    elif isinstance(event, Message):
                        text.append(str(event.data))
                        if not event.message_finished:
                            continue
                        message, text = "".join(text), []
                        if message.startswith("go "):
                            await send_frames(stream, int(message.split()[1]))
                        elif message == '{"method":"ping"}':
                            await stream.send_all(pong)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        finally:
            await trio.aclose_forcefully(stream)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
        print(listeners[0].socket.getsockname()[1], flush=True)
        await _until_stdin_closes()
        nursery.cancel_scope.cancel()


async def serve_simulator(api_key: str, secret: str) -> None:
    """The ``sim`` child: the simulator on 127.0.0.1, one funded account, no rate limits."""
    from adapters.mexc.sim.asgi import serve_sim
    from adapters.mexc.sim.service import SimService
    from adapters.mexc.venue import sim_contracts
    from engine.clock import SystemClock

    service = SimService(clock=SystemClock(), seed=1, contracts=sim_contracts([SYMBOL]),
                         rate_limiting=False, drive_market=False)
    service.add_account(api_key, secret, BALANCE)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(partial(serve_sim, service, "127.0.0.1", 0, run_market=False))
        print(port, flush=True)
        await _until_stdin_closes()
        nursery.cancel_scope.cancel()


def main(argv: list[str]) -> None:
    """Entry point of the child processes (see the module docstring)."""
    if argv[:1] == ["ws"] and len(argv) == 4:
        trio.run(serve_frames, int(argv[1]), int(argv[2]), int(argv[3]))
    elif argv[:1] == ["sim"] and len(argv) == 3:
        trio.run(serve_simulator, argv[1], argv[2])
    else:
        raise SystemExit("usage: python -m bench._engine_servers ws N SEED VERSION0 | "
                         "sim API_KEY SECRET")


if __name__ == "__main__":
    main(sys.argv[1:])
