"""What a file's bytes are checked against: one rule for pull and push.

Drive reports ``md5Checksum`` for binary files in My Drive, but a client must have a rule for a file
without it (drive-api.md: "Hashes"). Media answers carry ``X-Goog-Hash: crc32c=<b64>,md5=<b64>``
for the whole object. The rule, strongest first:

1. ``md5Checksum`` from the file's metadata;
2. else the md5 in ``X-Goog-Hash``;
3. else the crc32c in ``X-Goog-Hash``;
4. else the size alone, and the summary counts the file as "verified by size only".

A size that differs always fails. The rule is pure (hashes in, a verdict out); md5 is computed where
the bytes pass (download.py, upload.py), crc32c only in the rare case that needs it (``file_crc32c``).
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Mapping

MD5 = "md5"
CRC32C = "crc32c"
SIZE = "size"


@dataclass(frozen=True)
class Expected:
    """What the server says the bytes are: any of md5 (hex), crc32c (int), and the size."""

    size: int
    md5: str | None = None
    crc32c: int | None = None

    @property
    def method(self) -> str:
        """How these bytes will be verified: 'md5', 'crc32c' or 'size'."""
        return MD5 if self.md5 else CRC32C if self.crc32c is not None else SIZE


def parse_goog_hash(headers: Mapping[str, str] | None) -> dict[str, str]:
    """``X-Goog-Hash: crc32c=n8HXmg==,md5=ssbNGB2Ks7O6Xg4D1BVTcg==`` -> {'crc32c': '9fc1d79a', 'md5': hex}.

    Unknown or malformed values are left out. The header may also arrive once per hash."""
    out: dict[str, str] = {}
    if not headers:
        return out
    values = headers.getall("X-Goog-Hash", []) if hasattr(headers, "getall") else [headers.get("X-Goog-Hash") or ""]
    for value in values:
        for part in (value or "").split(","):
            name, sep, b64 = part.strip().partition("=")
            if not sep:
                continue
            try:
                raw = base64.b64decode(b64.strip() + "=" * (-len(b64.strip()) % 4), validate=True)
            except (binascii.Error, ValueError):
                continue
            name = name.strip().lower()
            if name == MD5 and len(raw) == 16:
                out[MD5] = raw.hex()
            elif name == CRC32C and len(raw) == 4:
                out[CRC32C] = raw.hex()
    return out


def expected(size: int, md5_checksum: str | None, hashes: Mapping[str, str] | None = None) -> Expected:
    """The rule above, applied to a file's metadata and the hashes of a media answer's X-Goog-Hash
    (``parse_goog_hash``'s result)."""
    hashes = hashes or {}
    crc = hashes.get(CRC32C)
    return Expected(size=size, md5=(md5_checksum or hashes.get(MD5) or None),
                    crc32c=int(crc, 16) if crc else None)


def mismatch(want: Expected, size: int, md5: str | None, crc32c: int | None = None) -> str | None:
    """None when the bytes pass the rule; else one line saying what differs."""
    if size != want.size:
        return f"size mismatch: got {size} bytes, Drive says {want.size}"
    if want.md5:
        if md5 is None:
            return "md5 not computed"  # a caller's bug, never a pass
        if md5 != want.md5:
            return f"md5 mismatch (got {md5}, Drive says {want.md5})"
        return None
    if want.crc32c is not None:
        if crc32c is None:
            return "crc32c not computed"
        if crc32c != want.crc32c:
            return f"crc32c mismatch (got {crc32c:08x}, Drive says {want.crc32c:08x})"
    return None


def crc32c(data: bytes, value: int = 0) -> int:
    """CRC-32C (Castagnoli) of ``data``, continuing from ``value`` (google-crc32c's C code)."""
    import google_crc32c

    return google_crc32c.extend(value, data)


def file_crc32c(path: str, block: int = 4 * 1024 * 1024) -> int:
    """CRC-32C of a whole file (blocking: call through asyncio.to_thread)."""
    value = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            value = crc32c(chunk, value)
    return value
