"""Draw the Teams app icons (color.png 192x192, outline.png 32x32 transparent) with no
dependencies: a magnifying glass, white, on the accent colour or on nothing.

    python teams/make_icons.py   # rewrites teams/color.png and teams/outline.png
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ACCENT = (31, 111, 235, 255)  # #1F6FEB, the manifest's accentColor
CLEAR = (0, 0, 0, 0)

Pixel = tuple[int, int, int, int]


def png(width: int, height: int, pixels: list[list[Pixel]]) -> bytes:
    """An 8-bit RGBA PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + bytes(c for px in row for c in px) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def glass(size: int, x: float, y: float) -> bool:
    """Whether (x, y), in pixels of a `size` square, is on the magnifying glass."""
    u, v = x / size, y / size
    cx, cy, radius, ring = 0.42, 0.42, 0.22, 0.07
    on_ring = abs(math.hypot(u - cx, v - cy) - radius) <= ring / 2
    # the handle: a thick segment from the ring towards the lower right corner
    start = cx + (radius + ring / 2) / math.sqrt(2)
    t = ((u - start) + (v - start)) / 2
    along = 0 <= t <= 0.2
    off_axis = abs((u - start) - (v - start)) / math.sqrt(2)
    return on_ring or (along and off_axis <= ring * 0.7)


def draw(size: int, background: Pixel) -> bytes:
    """The icon at `size` pixels (4x4 supersampling for smooth edges)."""
    rows = []
    for y in range(size):
        row = []
        for x in range(size):
            samples = [(x + (i + 0.5) / 4, y + (j + 0.5) / 4) for i in range(4) for j in range(4)]
            hits = sum(glass(size, u, v) for u, v in samples)
            alpha = hits / 16
            if background[3]:
                r, g, b = (round(c + (255 - c) * alpha) for c in background[:3])
                row.append((r, g, b, 255))
            else:
                row.append((255, 255, 255, round(255 * alpha)))
        rows.append(row)
    return png(size, size, rows)


if __name__ == "__main__":
    (HERE / "color.png").write_bytes(draw(192, ACCENT))
    (HERE / "outline.png").write_bytes(draw(32, CLEAR))
