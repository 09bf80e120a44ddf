"""A price-time priority order book for one contract, with versioned depth commits (pure).

Theory of operation. Resting orders queue per price level in arrival order. Matching is
two-step so that the exchange can check margin against the exact fills before anything
moves: :meth:`OrderBook.plan` walks the opposite side best-price-first, queue-order within a
level, and returns the :class:`Match` steps an incoming order would make (and, with
self-trade prevention, the :class:`SelfCancel` of every own resting order it would reach);
:meth:`OrderBook.execute` applies such a plan. The book knows nothing about accounts.

Every mutation marks its level dirty. :meth:`OrderBook.commit` turns the dirty levels whose
aggregated ``(volume, order count)`` differ from what was last published into one
:class:`~adapters.mexc.sim.facts.DepthCommit` with ``version = previous + 1`` (absolute
volumes, 0 deletes a level). The last ``commit_limit`` commits are kept for
``depth_commits``; a snapshot carries the version of the last commit, so snapshot plus the
later commits always reproduce the current book.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator
from decimal import Decimal

from attrs import define, frozen

from adapters.mexc.sim.facts import DepthCommit, DepthSnapshot
from engine.model import Level

__all__ = ["Match", "OrderBook", "Plan", "Resting", "SelfCancel"]

_ZERO = Decimal(0)


@define
class Resting:
    """An order resting in the book; ``remaining`` shrinks as it fills."""

    order_id: str
    owner: str
    is_buy: bool
    price: Decimal
    remaining: Decimal


@frozen
class Match:
    """The incoming order takes ``vol`` from resting ``maker_order_id`` at ``price``."""

    maker_order_id: str
    maker_owner: str
    price: Decimal
    vol: Decimal


@frozen
class SelfCancel:
    """Self-trade prevention: the incoming order reached its owner's resting order."""

    maker_order_id: str


@frozen
class Plan:
    """What an incoming order would do: ``steps`` in execution order, ``filled`` in total.

    ``crosses`` is True when any resting order (the owner's own included) sits at a price
    the incoming order would trade at; a post-only order is cancelled exactly then.
    """

    steps: tuple[Match | SelfCancel, ...]
    filled: Decimal
    crosses: bool

    @property
    def matches(self) -> tuple[Match, ...]:
        """Only the fills."""
        return tuple(s for s in self.steps if isinstance(s, Match))


class _Side:
    """One side of the book: sorted prices, a FIFO queue and a volume total per price."""

    def __init__(self, is_buy: bool) -> None:
        self.is_buy = is_buy
        self.prices: list[Decimal] = []
        self.queues: dict[Decimal, deque[Resting]] = {}
        self.totals: dict[Decimal, Decimal] = {}

    def best_first(self) -> Iterator[Decimal]:
        return reversed(self.prices) if self.is_buy else iter(self.prices)

    def best(self) -> Decimal | None:
        if not self.prices:
            return None
        return self.prices[-1] if self.is_buy else self.prices[0]

    def level(self, price: Decimal) -> Level:
        queue = self.queues.get(price)
        if not queue:
            return (price, _ZERO, 0)
        return (price, self.totals[price], len(queue))

    def add(self, order: Resting) -> None:
        queue = self.queues.get(order.price)
        if queue is None:
            bisect.insort(self.prices, order.price)
            queue = self.queues[order.price] = deque()
            self.totals[order.price] = _ZERO
        queue.append(order)
        self.totals[order.price] += order.remaining

    def take(self, order: Resting, vol: Decimal) -> None:
        order.remaining -= vol
        self.totals[order.price] -= vol
        if order.remaining == 0:
            self._unlink(order)

    def remove(self, order: Resting) -> None:
        self.totals[order.price] -= order.remaining
        self._unlink(order)

    def _unlink(self, order: Resting) -> None:
        queue = self.queues[order.price]
        queue.remove(order)
        if not queue:
            del self.queues[order.price]
            del self.totals[order.price]
            self.prices.pop(bisect.bisect_left(self.prices, order.price))


class OrderBook:
    """The book of one symbol; see the module docstring for how to drive it."""

    def __init__(self, symbol: str, *, commit_limit: int = 1000, version: int = 0) -> None:
        self.symbol = symbol
        self.version = version
        self._bids = _Side(is_buy=True)
        self._asks = _Side(is_buy=False)
        self._orders: dict[str, Resting] = {}
        self._dirty: set[tuple[bool, Decimal]] = set()
        self._published: dict[tuple[bool, Decimal], tuple[Decimal, int]] = {}
        self._commits: deque[DepthCommit] = deque(maxlen=commit_limit)

    def _side(self, is_buy: bool) -> _Side:
        return self._bids if is_buy else self._asks

    @property
    def best_bid(self) -> Decimal | None:
        """Highest resting buy price."""
        return self._bids.best()

    @property
    def best_ask(self) -> Decimal | None:
        """Lowest resting sell price."""
        return self._asks.best()

    def get(self, order_id: str) -> Resting | None:
        """The resting order with this id, if it is in the book."""
        return self._orders.get(order_id)

    def __len__(self) -> int:
        return len(self._orders)

    def plan(
        self, owner: str, is_buy: bool, vol: Decimal, limit: Decimal | None, prevent_self: bool
    ) -> Plan:
        """The steps an incoming order of ``vol`` would make; ``limit`` None is a market order."""
        steps: list[Match | SelfCancel] = []
        left = vol
        crosses = False
        opposite = self._side(not is_buy)
        for price in opposite.best_first():
            if limit is not None and (price > limit if is_buy else price < limit):
                break
            crosses = True
            for resting in opposite.queues[price]:
                if left == 0:
                    break
                if prevent_self and resting.owner == owner:
                    steps.append(SelfCancel(resting.order_id))
                    continue
                take = min(left, resting.remaining)
                steps.append(Match(resting.order_id, resting.owner, price, take))
                left -= take
            if left == 0:
                break
        return Plan(tuple(steps), vol - left, crosses)

    def execute(self, plan: Plan) -> None:
        """Apply a plan made by :meth:`plan` on this book, with no change in between."""
        for step in plan.steps:
            resting = self._orders[step.maker_order_id]
            side = self._side(resting.is_buy)
            self._dirty.add((resting.is_buy, resting.price))
            if isinstance(step, Match):
                side.take(resting, step.vol)
                if resting.remaining == 0:
                    del self._orders[resting.order_id]
            else:
                side.remove(resting)
                del self._orders[resting.order_id]

    def add(self, order: Resting) -> None:
        """Rest ``order`` at the back of its price level's queue."""
        if order.order_id in self._orders:
            raise ValueError(f"order {order.order_id} already rests in the book")
        if order.remaining <= 0:
            raise ValueError("a resting order needs a positive remaining volume")
        self._side(order.is_buy).add(order)
        self._orders[order.order_id] = order
        self._dirty.add((order.is_buy, order.price))

    def remove(self, order_id: str) -> Resting | None:
        """Take an order out of the book (cancel); None when it is not resting."""
        order = self._orders.pop(order_id, None)
        if order is not None:
            self._side(order.is_buy).remove(order)
            self._dirty.add((order.is_buy, order.price))
        return order

    def commit(self, ts: int) -> DepthCommit | None:
        """Publish the levels changed since the last commit, or None if none changed."""
        asks: list[Level] = []
        bids: list[Level] = []
        for is_buy, price in self._dirty:
            _, vol, count = level = self._side(is_buy).level(price)
            key = (is_buy, price)
            if self._published.get(key, (_ZERO, 0)) == (vol, count):
                continue
            if count:
                self._published[key] = (vol, count)
            else:
                self._published.pop(key, None)
            (bids if is_buy else asks).append(level)
        self._dirty.clear()
        if not asks and not bids:
            return None
        self.version += 1
        asks.sort()
        bids.sort(reverse=True)
        commit = DepthCommit(self.symbol, self.version, tuple(asks), tuple(bids), ts)
        self._commits.append(commit)
        return commit

    def commits(self, limit: int | None = None) -> tuple[DepthCommit, ...]:
        """The last ``limit`` commits (all kept ones when None), oldest first."""
        kept = tuple(self._commits)
        return kept if limit is None else kept[max(0, len(kept) - limit) :]

    def snapshot(self, ts: int, limit: int | None = None) -> DepthSnapshot:
        """The published book (the state as of ``version``), top ``limit`` levels a side."""
        if self._dirty:
            raise RuntimeError("snapshot between a mutation and its commit")
        asks = [self._asks.level(p) for p in self._asks.best_first()]
        bids = [self._bids.level(p) for p in self._bids.best_first()]
        if limit is not None:
            asks, bids = asks[:limit], bids[:limit]
        return DepthSnapshot(self.symbol, self.version, tuple(asks), tuple(bids), ts)

    def resting(self) -> Iterator[Resting]:
        """Every resting order, bids then asks, best price and queue order first."""
        for side in (self._bids, self._asks):
            for price in side.best_first():
                yield from side.queues[price]
