"""CRC-32C (Castagnoli), the checksum Google sends in `X-Goog-Hash: crc32c=...` next to md5.

Owns one function pair: `crc32c(data, crc=0)` and the streaming `Crc32c`, on the `google-crc32c`
package (Google's C implementation, a declared dependency). The value is the plain 32-bit CRC;
`to_base64` gives the 4 big-endian bytes in base64, which is how X-Goog-Hash carries it. Pure: no I/O.
The emulator keeps its own copy of these few lines rather than sharing the client's (they share no code).
"""

from __future__ import annotations

import base64

import google_crc32c


def crc32c(data, crc: int = 0) -> int:
    """The CRC-32C of `data`, continuing from `crc` (the value of the bytes before it)."""
    return google_crc32c.extend(crc, data if isinstance(data, bytes) else bytes(data))


class Crc32c:
    """Streaming CRC-32C: `update(data)` as often as needed, then `value`."""

    __slots__ = ("value",)

    def __init__(self, value: int = 0):
        self.value = value

    def update(self, data) -> None:
        self.value = crc32c(data, self.value)


def to_base64(value: int) -> str:
    return base64.b64encode(value.to_bytes(4, "big")).decode()
