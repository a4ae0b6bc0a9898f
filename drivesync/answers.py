"""Reading what a server answered, defensively: content decoding, JSON bodies, foreign error pages.

Drive's front end gzips JSON when asked (we ask: listings shrink several times), 502/503 pages come
as HTML from Google's front end rather than Drive's JSON, and proxies or captive portals answer 200
with an HTML page. Everything here is pure (bytes and headers in, values or BadAnswer out), so every
odd shape is unit-tested without a server. transport.py applies it to every answer.
"""
from __future__ import annotations

import html
import json
import re
import zlib
from typing import Mapping

#: The most bytes a compressed answer may inflate to (a listing of 1,000 files is ~1 MB).
MAX_INFLATED = 256 * 1024 * 1024
#: Longest error message shown to a user.
MESSAGE_LIMIT = 160


class BadAnswer(ValueError):
    """A body that cannot be what the server meant: not JSON, cut short, or in an unknown encoding."""


def decode(headers: Mapping[str, str], body: bytes) -> bytes:
    """The body with its Content-Encoding (gzip, deflate, identity) undone."""
    encoding = (headers.get("Content-Encoding") or "identity").strip().lower()
    if not body or encoding in ("identity", ""):
        return body
    if encoding in ("gzip", "x-gzip", "deflate"):
        # wbits: 16+ for gzip framing; deflate is zlib-wrapped in practice, raw by some servers.
        for wbits in ((31,) if encoding != "deflate" else (15, -15)):
            inflater = zlib.decompressobj(wbits)
            try:
                out = inflater.decompress(body, MAX_INFLATED)
            except zlib.error:
                continue
            if inflater.unconsumed_tail:
                raise BadAnswer(f"{encoding} answer inflates past {MAX_INFLATED // (1024 * 1024)} MiB")
            if not inflater.eof:
                raise BadAnswer(f"{encoding} answer cut short ({len(body)} bytes)")
            return out
        raise BadAnswer(f"answer is not valid {encoding} ({len(body)} bytes)")
    raise BadAnswer(f"answer in an unknown encoding {encoding!r}")


def json_object(raw: bytes, content_type: str = "") -> dict:
    """The JSON object in a decoded body ({} for an empty body); BadAnswer for anything else."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadAnswer(f"answer is not JSON ({_describe(content_type, raw)})") from None
    if not isinstance(data, dict):
        raise BadAnswer(f"answer is JSON but not an object ({type(data).__name__})")
    return data


def _describe(content_type: str, raw: bytes) -> str:
    kind = (content_type or "no content type").split(";")[0].strip()
    if _looks_like_html(raw):
        title = page_text(raw)
        return f"an HTML page{': ' + title if title else ''}"
    if kind.endswith("json"):
        return f"{len(raw)} bytes of {kind}, cut short or malformed"
    return f"{len(raw)} bytes of {kind}"


# -- error bodies --------------------------------------------------------------------------------------

_TAG = re.compile(r"<[^>]*>")
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.S | re.I)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.S | re.I)
#: Server file paths ('/usr/lib/python3/site.py', 'C:\\srv\\app') have no place in a user's error line.
_PATH = re.compile(r"(?<![\w:/])(?:[A-Za-z]:\\|/)(?:[\w.\-]+[\\/])+[\w.\-]*")
_SPACE = re.compile(r"\s+")


def _looks_like_html(raw: bytes) -> bool:
    head = raw[:512].lstrip().lower()
    return head.startswith((b"<!doctype", b"<html", b"<head", b"<body", b"<?xml")) or b"<html" in head


def clean(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """One short line: no tags, no server paths, whitespace collapsed, cut at ``limit``."""
    text = html.unescape(_TAG.sub(" ", text))
    text = _PATH.sub("", text)
    text = _SPACE.sub(" ", text).strip(" .:;,-")
    if len(text) > limit:
        text = text[: limit - 3].rstrip() + "..."
    return text


def page_text(raw: bytes) -> str:
    """The gist of an HTML page: its title, else its first words."""
    text = raw.decode("utf-8", "replace")
    text = _SCRIPT.sub(" ", text)
    m = _TITLE.search(text)
    if m and clean(m.group(1)):
        return clean(m.group(1))
    return clean(text)


def error_summary(headers: Mapping[str, str], body: bytes) -> tuple[str, str]:
    """(reason, message) from an error body in any shape: Drive's ``error.errors[].reason`` and
    ``error.message``, OAuth's ``error``/``error_description``, a plain ``message``, an HTML page, or text."""
    try:
        raw = decode(headers, body)
    except BadAnswer:
        return "", ""
    if not raw.strip():
        return "", ""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict):
        reason, message = "", ""
        err = data.get("error")
        if isinstance(err, dict):
            message = _text(err.get("message"))
            errors = err.get("errors")
            if isinstance(errors, list) and errors and isinstance(errors[0], dict):
                reason = _text(errors[0].get("reason"))
                message = message or _text(errors[0].get("message"))
            reason = reason or _text(err.get("status"))
        elif isinstance(err, str):
            reason = err
            message = _text(data.get("error_description"))
        message = message or _text(data.get("message"))
        return _token(reason), clean(message)
    if _looks_like_html(raw):
        return "", page_text(raw)
    return "", clean(raw.decode("utf-8", "replace"))


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _token(reason: str) -> str:
    """A reason is a single identifier (``storageQuotaExceeded``); anything else is dropped."""
    return reason if re.fullmatch(r"[A-Za-z][A-Za-z0-9_.\-]{0,63}", reason or "") else ""
