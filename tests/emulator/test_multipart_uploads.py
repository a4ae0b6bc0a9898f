"""multipart/related uploads are stored byte for byte, whatever the body ends in and whatever the framing.

The bug these pin down: with bare-LF framing (what google-api-python-client's email generator writes) the
emulator took the line break before the closing delimiter to be CRLF whenever the body ended in CR, and
stored the body one byte short (about one random upload in 256). Everything goes over real HTTP to one
in-process emulator; the server's read size is varied so a delimiter also straddles two reads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from drivesync.emulator import Emulator, uploads

LINE_ENDS = [b"\r", b"\n", b"\r\n", b"\n\r", b"\r\r", b"\n\n", b"\r\n\r\n", b"-", b"--", b" ", b"\t", b"\x00", b"\xff"]


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    with Emulator(tmp_path_factory.mktemp("drive"), profile="unthrottled") as e:
        yield e


@pytest.fixture(scope="module")
def api(emu):
    with httpx.Client(base_url=emu.url, headers=emu.auth_headers(), timeout=30) as c:
        yield c


@contextlib.contextmanager
def server_read_block(n: int):
    """The server's body read size for one upload (the server reads uploads.READ_BLOCK at call time)."""
    saved = uploads.READ_BLOCK
    uploads.READ_BLOCK = n
    try:
        yield
    finally:
        uploads.READ_BLOCK = saved


def multipart(meta: dict, data: bytes, boundary: bytes, nl: bytes, epilogue: bytes = b"") -> bytes:
    """A multipart/related body framed with `nl` (CRLF or bare LF) throughout, as a client writes it."""
    return b"".join([
        b"preamble, ignored" + nl,
        b"--" + boundary + nl,
        b"Content-Type: application/json; charset=UTF-8" + nl,
        nl,
        json.dumps(meta).encode() + nl,
        b"--" + boundary + nl,
        b"Content-Type: application/octet-stream" + nl,
        nl,
        data + nl,
        b"--" + boundary + b"--" + epilogue,
    ])


def upload(api, data: bytes, boundary: bytes, nl: bytes, epilogue: bytes = b"", file_id: str | None = None) -> dict:
    body = multipart({"name": "m.bin"}, data, boundary, nl, epilogue)
    url = "/upload/drive/v3/files" + (f"/{file_id}" if file_id else "")
    send = api.patch if file_id else api.post
    r = send(url, params={"uploadType": "multipart", "fields": "id,size,md5Checksum"}, content=body,
             headers={"Content-Type": f'multipart/related; boundary="{boundary.decode()}"'})
    assert r.status_code == 200, r.text
    return r.json()


def assert_stored(emu, answer: dict, data: bytes) -> None:
    assert answer["size"] == str(len(data))
    assert answer["md5Checksum"] == hashlib.md5(data).hexdigest()
    assert emu.content(answer["id"]) == data


BOUNDARIES = [b"BND", b"===============6665767137850188686==", b"a'()+_,-./:=?b"]


def payloads():
    """Random bytes, often spiced with line breaks, dashes and pieces of the boundary, ending in any line end."""
    piece = st.one_of(
        st.binary(max_size=64),
        st.sampled_from(LINE_ENDS + [b"--BND", b"\n--BNDx", b"\r\n--BN", b"--BND-", b"\n--", b"=="]),
    )
    return st.tuples(st.lists(piece, max_size=12).map(b"".join), st.sampled_from([b""] + LINE_ENDS))


def contains_delimiter(data: bytes, nl: bytes, boundary: bytes) -> bool:
    """Whether ``data`` itself holds a delimiter: line break, '--', the boundary, then '--', CR, LF, space
    or tab, where Go's mime/multipart reader (and the emulator, after it) ends a part; RFC 2046 5.1.1 says
    the delimiter must not occur in the content at all. Such a body is not valid multipart: a client must
    pick another boundary (google-api-python-client's generator does), so the test never sends one.
    ("\r\n--BND\r" in the content is one: found by this test's own random examples.)"""
    framed = nl + data + nl + b"--" + boundary + b"--"
    delimiter = nl + b"--" + boundary
    real = len(nl) + len(data)
    i = framed.find(delimiter)
    while i != -1 and i < real:
        after = framed[i + len(delimiter):]
        if after.startswith(b"--") or after[:1] in (b"\r", b"\n", b" ", b"\t"):
            return True
        i = framed.find(delimiter, i + 1)
    return False


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payload=payloads(),
    nl=st.sampled_from([b"\r\n", b"\n"]),
    boundary=st.sampled_from(BOUNDARIES),
    epilogue=st.sampled_from([b"", b"\r\n", b"\n", b"\nepilogue\n"]),
    block=st.sampled_from([1, 3, 7, 64, uploads.READ_BLOCK]),
)
def test_multipart_body_is_stored_byte_for_byte(emu, api, payload, nl, boundary, epilogue, block):
    data = payload[0] + payload[1]
    assume(not contains_delimiter(data, nl, boundary))
    with server_read_block(block):
        answer = upload(api, data, boundary, nl, epilogue)
    assert_stored(emu, answer, data)


@pytest.mark.parametrize("nl", [b"\r\n", b"\n"], ids=["crlf", "lf"])
def test_every_last_byte_and_line_end(emu, api, nl):
    """All 256 final bytes and every line-ending pair, both framings; a new revision (PATCH) too."""
    fid = None
    for last in [bytes([i]) for i in range(256)] + LINE_ENDS:
        for data in (last, b"payload" + last, b"x\r\n" * 3 + last):
            ans = upload(api, data, b"===============1234567890==", nl)
            assert_stored(emu, ans, data)
            fid = ans["id"]
    for data in (b"new\r", b"new\n", b"\r\n", b"\r"):
        ans = upload(api, data, b"BND", nl, file_id=fid)
        assert ans["id"] == fid
        assert_stored(emu, ans, data)


def test_malformed_multipart_is_400(emu, api):
    for body in (b"no delimiter at all", b"--BND\nContent-Type: application/json\n\n{}\n--BND\n\nno end"):
        r = api.post("/upload/drive/v3/files", params={"uploadType": "multipart"}, content=body,
                     headers={"Content-Type": "multipart/related; boundary=BND"})
        assert r.status_code == 400 and r.json()["error"]["errors"][0]["reason"] == "badRequest"
