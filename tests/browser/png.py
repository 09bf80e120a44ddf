"""A small PNG reader for screenshot checks (stdlib only: zlib and struct).

Reads 8-bit greyscale, RGB and RGBA, non-interlaced images, which is what Chromium's
``--screenshot`` writes, into rows of RGB tuples-in-bytes.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

__all__ = ["Image", "read_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 6: 4}


class Image:
    """Decoded pixels: ``rgb(x, y)`` and the raw RGB ``rows`` (3 bytes a pixel)."""

    def __init__(self, width: int, height: int, rows: list[bytes]) -> None:
        self.width = width
        self.height = height
        self.rows = rows

    def rgb(self, x: int, y: int) -> tuple[int, int, int]:
        """The colour at (x, y)."""
        r = self.rows[y]
        return r[3 * x], r[3 * x + 1], r[3 * x + 2]


def _unfilter(kind: int, line: bytearray, prev: bytes | bytearray, bpp: int) -> None:
    n = len(line)
    if kind == 0:
        return
    if kind == 1:  # Sub
        for i in range(bpp, n):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif kind == 2:  # Up
        for i in range(n):
            line[i] = (line[i] + prev[i]) & 0xFF
    elif kind == 3:  # Average
        for i in range(n):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
    elif kind == 4:  # Paeth
        for i in range(n):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            line[i] = (line[i] + pred) & 0xFF
    else:
        raise ValueError(f"bad PNG filter type {kind}")


def read_png(path: Path) -> Image:
    """Decode ``path``; raises ValueError for a PNG this reader does not handle."""
    data = path.read_bytes()
    if not data.startswith(_SIGNATURE):
        raise ValueError(f"{path}: not a PNG file")
    pos = len(_SIGNATURE)
    idat = bytearray()
    width = height = depth = color = interlace = 0
    for _ in range(1_000_000):
        if pos + 8 > len(data):
            break
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if ctype == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif ctype == b"IDAT":
            idat += body
        elif ctype == b"IEND":
            break
    if depth != 8 or color not in _CHANNELS or interlace:
        raise ValueError(f"{path}: unsupported PNG (depth {depth}, colour type {color}, "
                         f"interlace {interlace})")
    bpp = _CHANNELS[color]
    raw = zlib.decompress(bytes(idat))
    stride = width * bpp
    prev: bytes | bytearray = bytes(stride)
    rows: list[bytes] = []
    for y in range(height):
        start = y * (stride + 1)
        line = bytearray(raw[start + 1:start + 1 + stride])
        _unfilter(raw[start], line, prev, bpp)
        prev = line
        if bpp == 3:
            rows.append(bytes(line))
        elif bpp == 4:
            rgb = bytearray(width * 3)
            rgb[0::3], rgb[1::3], rgb[2::3] = line[0::4], line[1::4], line[2::4]
            rows.append(bytes(rgb))
        else:
            rows.append(bytes(b for v in line for b in (v, v, v)))
    return Image(width, height, rows)
