"""Fault injection switches of the simulator's server (pure: plain state, seeded randomness).

A :class:`Faults` object is read by the server on every request, push and step, so every
switch can be flipped at start-up (constructor, ``tapeline sim --fault-...``) or at run time
(assign the attribute, or ``POST /_sim/faults`` with a JSON object of the same names).
Attribute assignment is validated; counters (``*_next``) are consumed one per event.

================================  ===========================================================
switch                            effect
================================  ===========================================================
``ws_drop_every_s``               close every WebSocket connection every S seconds (None: off)
``silent_pongs``                  stop answering ``ping`` (the client's pong watchdog fires)
``depth_gap_probability``         drop each depth commit from the WS stream with probability P
``depth_gap_next``                drop the next N depth commits from the WS stream
``rest_delay_s``                  answer REST requests S seconds late (the call itself runs
                                  on arrival)
``rest_drop_next``                drop the next N REST requests unanswered, *before* running
                                  them (nothing happens on the exchange)
``rest_drop_after_next``          run the next N REST requests, then drop the answer (an order
                                  exists but the client never hears of it)
``rest_drop_mode``                how an answer is dropped: ``"timeout"`` (never answer) or
                                  ``"close"`` (close the connection)
``rest_5xx_next``                 answer the next N REST requests with HTTP ``rest_5xx_status``
                                  without running them
``rest_5xx_status``               the 5xx status used (500..599, default 503)
``order_404``                     HTTP 404 on every ``/api/v1/private/order/...`` path (an API
                                  change)
``rate_limit_next``               answer the next N REST requests with code 510
``clock_skew_s``                  offset of the server's clock (seconds, may be negative):
                                  shifts every server timestamp; beyond the receive window
                                  signed requests get code 513
``rest_match``                    when set, the REST faults above (drops, 5xx, rate limit,
                                  delay) apply only to paths containing this text
================================  ===========================================================
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

import attrs
from attrs import define, field

__all__ = ["DROP_MODES", "FaultUpdateError", "Faults"]

DROP_MODES = ("timeout", "close")
"""Values of :attr:`Faults.rest_drop_mode`."""


class FaultUpdateError(ValueError):
    """A fault update named an unknown switch or gave an invalid value."""


def _non_negative_number(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FaultUpdateError(f"{attribute.name} must be a finite number, got {value!r}")
    if value < 0:
        raise FaultUpdateError(f"{attribute.name} must be >= 0, got {value!r}")


def _finite_number(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FaultUpdateError(f"{attribute.name} must be a finite number, got {value!r}")


def _optional_period(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    _non_negative_number(instance, attribute, value)
    if not value > 0:
        raise FaultUpdateError(f"{attribute.name} must be > 0 seconds or null, got {value!r}")


def _probability(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    _non_negative_number(instance, attribute, value)
    if value > 1:
        raise FaultUpdateError(f"{attribute.name} is a probability (0..1), got {value!r}")


def _count(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FaultUpdateError(f"{attribute.name} must be an int >= 0, got {value!r}")


def _flag(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise FaultUpdateError(f"{attribute.name} must be true or false, got {value!r}")


def _status(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 500 <= value <= 599:
        raise FaultUpdateError(f"{attribute.name} must be an HTTP status 500..599, got {value!r}")


def _drop_mode(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in DROP_MODES:
        raise FaultUpdateError(f"{attribute.name} must be one of {DROP_MODES}, got {value!r}")


def _match(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise FaultUpdateError(f"{attribute.name} must be a non-empty string or null")


@define
class Faults:
    """Every fault switch (see the module docstring); all off by default.

    ``seed`` seeds the randomness of ``depth_gap_probability`` so a run is reproducible.
    """

    ws_drop_every_s: float | None = field(default=None, validator=_optional_period)
    silent_pongs: bool = field(default=False, validator=_flag)
    depth_gap_probability: float = field(default=0.0, validator=_probability)
    depth_gap_next: int = field(default=0, validator=_count)
    rest_delay_s: float = field(default=0.0, validator=_non_negative_number)
    rest_drop_next: int = field(default=0, validator=_count)
    rest_drop_after_next: int = field(default=0, validator=_count)
    rest_drop_mode: str = field(default="timeout", validator=_drop_mode)
    rest_5xx_next: int = field(default=0, validator=_count)
    rest_5xx_status: int = field(default=503, validator=_status)
    order_404: bool = field(default=False, validator=_flag)
    rate_limit_next: int = field(default=0, validator=_count)
    clock_skew_s: float = field(default=0.0, validator=_finite_number)
    rest_match: str | None = field(default=None, validator=_match)
    seed: int = field(default=0, validator=_count)
    _rng: random.Random = field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    # -------------------------------------------------------------- updating

    def switches(self) -> dict[str, Any]:
        """Every switch by name, as JSON-ready values (what ``GET /_sim/faults`` returns)."""
        return {a.name: getattr(self, a.name) for a in attrs.fields(Faults) if a.init}

    def update(self, changes: Mapping[str, Any]) -> None:
        """Set several switches at once, all or nothing; raises :class:`FaultUpdateError`."""
        known = set(self.switches())
        unknown = sorted(set(changes) - known)
        if unknown:
            raise FaultUpdateError(
                f"unknown fault switch(es) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        trial = attrs.evolve(self, **changes)  # validates every value before anything changes
        for name in changes:
            setattr(self, name, getattr(trial, name))
        if "seed" in changes:
            self._rng = random.Random(self.seed)

    def clear(self) -> None:
        """Switch every fault off (the seed is kept)."""
        seed = self.seed
        defaults = Faults()
        for name in self.switches():
            setattr(self, name, getattr(defaults, name))
        self.seed = seed

    # ------------------------------------------------------------- consuming

    def applies_to(self, path: str) -> bool:
        """True when the REST faults cover ``path`` (see ``rest_match``)."""
        return self.rest_match is None or self.rest_match in path

    def take_rest_drop(self) -> bool:
        """Consume one ``rest_drop_next``; True when this request is to be dropped."""
        if self.rest_drop_next:
            self.rest_drop_next -= 1
            return True
        return False

    def take_rest_drop_after(self) -> bool:
        """Consume one ``rest_drop_after_next``; True when this answer is to be dropped."""
        if self.rest_drop_after_next:
            self.rest_drop_after_next -= 1
            return True
        return False

    def take_5xx(self) -> int | None:
        """Consume one ``rest_5xx_next``: the status to answer with, or None."""
        if self.rest_5xx_next:
            self.rest_5xx_next -= 1
            return self.rest_5xx_status
        return None

    def take_rate_limit(self) -> bool:
        """Consume one ``rate_limit_next``; True when this request gets code 510."""
        if self.rate_limit_next:
            self.rate_limit_next -= 1
            return True
        return False

    def take_depth_gap(self) -> bool:
        """True when the next depth commit is to be left out of the WS stream."""
        if self.depth_gap_next:
            self.depth_gap_next -= 1
            return True
        return self.depth_gap_probability > 0 and self._rng.random() < self.depth_gap_probability
