#!/usr/bin/env python3
"""Draw Twofold's app icon (two overlapping squares, one platform folded over two of everything, on a
blue rounded square) and write the
PNG sizes the Linux bundle needs. Standard library only: run `python3 make-icons.py` in this folder."""

import struct
import zlib

BLUE = (37, 99, 235)
WHITE = (255, 255, 255)
PALE = (191, 219, 254)
SUPERSAMPLE = 4


def inside_rounded(x, y, x0, y0, x1, y1, r):
    """Is the point (x, y) inside the rounded rectangle [x0, x1] x [y0, y1] with corner radius r?"""
    if x < x0 or x > x1 or y < y0 or y > y1:
        return False
    cx = min(max(x, x0 + r), x1 - r)
    cy = min(max(y, y0 + r), y1 - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def shade(u, v):
    """Colour and coverage at unit coordinates (u, v) in [0, 1)."""
    if not inside_rounded(u, v, 0.02, 0.02, 0.98, 0.98, 0.2):
        return None
    if inside_rounded(u, v, 0.40, 0.40, 0.80, 0.80, 0.07):
        return WHITE
    if inside_rounded(u, v, 0.35, 0.35, 0.85, 0.85, 0.1):
        return BLUE  # the gap that lets the front square stand off the back one
    if inside_rounded(u, v, 0.20, 0.20, 0.60, 0.60, 0.07):
        return PALE
    return BLUE


def render(size):
    rows = []
    n = SUPERSAMPLE
    for y in range(size):
        row = bytearray([0])  # filter type: none
        for x in range(size):
            acc = [0, 0, 0]
            hits = 0
            for sy in range(n):
                for sx in range(n):
                    c = shade((x + (sx + 0.5) / n) / size, (y + (sy + 0.5) / n) / size)
                    if c is not None:
                        hits += 1
                        for i in range(3):
                            acc[i] += c[i]
            if hits:
                row += bytes([acc[0] // hits, acc[1] // hits, acc[2] // hits, 255 * hits // (n * n)])
            else:
                row += bytes(4)
        rows.append(bytes(row))
    return b"".join(rows)


def png(size):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(render(size), 9))
        + chunk(b"IEND", b"")
    )


if __name__ == "__main__":
    for name, size in [("32x32.png", 32), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512)]:
        with open(name, "wb") as f:
            f.write(png(size))
        print(f"{name}: {size}x{size}")
