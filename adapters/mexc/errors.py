"""The MEXC adapter's exception tree (pure). Extended by the protocol layer.

::

    MexcError
    └── DecodeError        a frame or response could not be decoded into model values
"""

from __future__ import annotations

__all__ = ["DecodeError", "MexcError"]


class MexcError(Exception):
    """Root of every error the MEXC adapter raises on purpose."""


class DecodeError(MexcError):
    """Wire text could not be decoded; ``where`` names the channel or endpoint."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason
