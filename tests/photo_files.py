"""Photos an unlucky phone or an attacker might send, generated in a moment (no binary fixtures).

Big pictures are made without ever holding them in memory: a JPEG with a restart marker after
every row of blocks lets us encode a thin strip once and repeat its rows (each restart interval
starts from fresh DC predictors, so identical rows have identical bytes). The result is a real,
fully decodable JPEG of any height, of a few hundred KB.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

from PIL import Image

# An MCU row of a 4:2:0 JPEG is 16 pixel rows.
MCU_ROWS = 16
STRIPE_COLORS = [(200, 40, 40), (40, 160, 60), (30, 80, 200), (230, 200, 40)]


def _segments(data: bytes) -> tuple[bytes, bytes]:
    """Split a JPEG into (everything up to and including the SOS header, entropy data + EOI)."""
    position = 2
    while True:
        assert data[position] == 0xFF, "not a JPEG segment"
        marker = data[position + 1]
        length = struct.unpack(">H", data[position + 2 : position + 4])[0]
        end = position + 2 + length
        if marker == 0xDA:  # SOS: the entropy-coded data follows
            return data[:end], data[end:]
        position = end


def _with_size(header: bytes, width: int, height: int) -> bytes:
    """Rewrite the frame header (SOF0/SOF2) to claim another width and height."""
    for sof in (b"\xff\xc0", b"\xff\xc2"):
        at = header.find(sof)
        if at != -1:
            size = struct.pack(">HH", height, width)
            return header[: at + 5] + size + header[at + 9 :]
    raise AssertionError("no SOF0/SOF2 frame header")


def huge_jpeg(path: Path, width: int, height: int) -> Path:
    """A real baseline JPEG of width x height pixels (horizontal colour stripes), a few hundred KB.

    Decoding it in full needs width x height x 3 bytes (200 MP: 600 MB): a phone's 200 MP photo.
    """
    assert width % 16 == 0 and height % MCU_ROWS == 0
    strip = Image.new("RGB", (width, MCU_ROWS * len(STRIPE_COLORS)))
    for index, color in enumerate(STRIPE_COLORS):
        strip.paste(color, (0, index * MCU_ROWS, width, (index + 1) * MCU_ROWS))
    buffer = io.BytesIO()
    strip.save(buffer, "JPEG", quality=80, subsampling="4:2:0", restart_marker_rows=1)
    header, body = _segments(buffer.getvalue())
    # body = row0 RST0 row1 RST1 row2 RST2 row3 EOI
    rows, rest = [], body
    for marker in range(len(STRIPE_COLORS) - 1):
        row, rest = rest.split(bytes([0xFF, 0xD0 + marker]), 1)
        rows.append(row)
    rows.append(rest.removesuffix(b"\xff\xd9"))
    total_rows = height // MCU_ROWS
    band = max(1, total_rows // (4 * len(STRIPE_COLORS)))  # a few wide stripes
    out = bytearray(_with_size(header, width, height))
    for row in range(total_rows):
        out += rows[(row // band) % len(rows)]
        if row != total_rows - 1:
            out += bytes([0xFF, 0xD0 + row % 8])
    out += b"\xff\xd9"
    path.write_bytes(bytes(out))
    return path


def bomb_jpeg(path: Path, width: int = 14000, height: int = 14000) -> Path:
    """A 5 KB JPEG whose header claims width x height: the decompression bomb of issue 13.

    Its data ends after a 64 px picture; libjpeg paints the rest grey, so an unguarded decode
    allocates and fills all of it (14000 x 14000: 780 MB for the pixels alone).
    """
    image = Image.effect_noise((64, 64), 64).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    header, body = _segments(buffer.getvalue())
    path.write_bytes(_with_size(header, width, height) + body)
    return path


def progressive_jpeg(path: Path, width: int, height: int) -> Path:
    """A progressive JPEG of the given size (the decoder must hold all its coefficients)."""
    Image.new("RGB", (width, height), (120, 60, 30)).save(path, "JPEG", progressive=True)
    return path


def heic_photo(path: Path, width: int, height: int) -> Path:
    """A HEIC like an iPhone's (one colour; encoding 48 MP takes ~15 s, 12 MP ~4 s)."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    Image.new("RGB", (width, height), (30, 120, 200)).save(path, "HEIF", quality=10)
    return path
