"""Reading odd answers (answers.py) and the one verification rule (integrity.py), without a server."""
from __future__ import annotations

import base64
import gzip
import hashlib
import json
import zlib

import pytest

from drivesync import answers, integrity
from drivesync.errors import BAD_ANSWER, Action, DriveError, classify
from drivesync.transport import parse_error


# -- decoding ------------------------------------------------------------------------------------------


def test_gzip_and_deflate_bodies_are_inflated_identity_passes_through():
    body = json.dumps({"files": [{"id": str(i)} for i in range(500)]}).encode()
    assert answers.decode({"Content-Encoding": "gzip"}, gzip.compress(body)) == body
    assert answers.decode({"Content-Encoding": "deflate"}, zlib.compress(body)) == body
    raw_deflate = zlib.compressobj(wbits=-15)
    assert answers.decode({"Content-Encoding": "deflate"}, raw_deflate.compress(body) + raw_deflate.flush()) == body
    assert answers.decode({}, body) == body
    assert answers.decode({"Content-Encoding": "identity"}, body) == body


def test_cut_or_garbled_gzip_is_a_bad_answer_not_a_crash():
    whole = gzip.compress(b'{"files": []}' * 100)
    with pytest.raises(answers.BadAnswer, match="cut short"):
        answers.decode({"Content-Encoding": "gzip"}, whole[: len(whole) // 2])
    with pytest.raises(answers.BadAnswer, match="not valid gzip"):
        answers.decode({"Content-Encoding": "gzip"}, b"\x1f\x8b garbage")
    with pytest.raises(answers.BadAnswer, match="unknown encoding"):
        answers.decode({"Content-Encoding": "br"}, b"\x0b\x02")


@pytest.mark.parametrize("body, why", [
    (b'{"files": [{"id": "a"}, {"id": "b"', "cut short or malformed"),
    (b"<!DOCTYPE html><html><head><title>Sign in to the Wi-Fi</title></head><body>x</body></html>",
     "an HTML page: Sign in to the Wi-Fi"),
    (b"[1, 2, 3]", "not an object"),
    (b"\xff\xfe\x00garbage", "bytes of"),
])
def test_unreadable_200_bodies_are_bad_answers(body, why):
    with pytest.raises(answers.BadAnswer, match=why):
        answers.json_object(body, "application/json; charset=UTF-8")


def test_empty_body_is_an_empty_object():
    assert answers.json_object(b"", "") == {}
    assert answers.json_object(b'{"a": 1}') == {"a": 1}


def test_bad_answer_is_retried_like_a_5xx():
    assert classify(200, BAD_ANSWER) is Action.RETRY
    assert classify(0, "connectionError") is Action.RETRY


# -- error bodies --------------------------------------------------------------------------------------

HTML_413 = b"""<html>
<head><title>413 Request Entity Too Large</title></head>
<body>
<h1>Request Entity Too Large</h1>
<p>The request is larger than allowed.</p>
<address>Apache/2.4.41 at /var/www/html/index.php line 12</address>
<pre>Traceback: /usr/lib/python3/dist-packages/app/server.py</pre>
</body>
</html>
"""


def test_an_html_error_page_becomes_one_short_line_without_server_paths():
    error = parse_error(413, {"Content-Type": "text/html"}, HTML_413, what="upload x", host="www.googleapis.com")
    text = str(error)
    assert "\n" not in text and "<" not in text
    assert "/var/www" not in text and "/usr/lib" not in text
    assert text == "Drive answered 413: 413 Request Entity Too Large (upload x)"


def test_an_html_page_without_title_keeps_its_first_words():
    page = b"<html><body>\n<h1>Bad   Gateway</h1>\n<p>The server at /srv/x/y.py  hiccupped.</p></body></html>"
    reason, message = answers.error_summary({}, page)
    assert reason == "" and message == "Bad Gateway The server at hiccupped"


def test_google_front_end_502_page():
    page = (b"<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 502 (Server Error)!!1</title>"
            b"\n  <style>*{margin:0;padding:0}</style>\n  <p><b>502.</b> <ins>That\xe2\x80\x99s an error.</ins>")
    error = parse_error(502, {"Content-Type": "text/html; charset=UTF-8"}, page, what="files.list")
    assert str(error) == "Drive answered 502: Error 502 (Server Error)!!1 (files.list)"


def test_json_error_shapes():
    drive = {"error": {"code": 403, "message": "The user's Drive storage quota has been exceeded.",
                       "errors": [{"domain": "usageLimits", "reason": "storageQuotaExceeded", "message": "x"}]}}
    assert answers.error_summary({}, json.dumps(drive).encode()) == (
        "storageQuotaExceeded", "The user's Drive storage quota has been exceeded")
    no_errors_list = {"error": {"code": 403, "message": "Request had insufficient authentication scopes.",
                                "status": "PERMISSION_DENIED"}}
    assert answers.error_summary({}, json.dumps(no_errors_list).encode()) == (
        "PERMISSION_DENIED", "Request had insufficient authentication scopes")
    assert answers.error_summary({}, b'{"message": "quota exceeded for this project"}') == (
        "", "quota exceeded for this project")
    assert answers.error_summary({}, b'{"error": "invalid_grant", "error_description": "Bad Request"}') == (
        "invalid_grant", "Bad Request")
    gz = gzip.compress(json.dumps(drive).encode())
    assert answers.error_summary({"Content-Encoding": "gzip"}, gz)[0] == "storageQuotaExceeded"


def test_a_reason_that_is_not_an_identifier_is_dropped_and_long_messages_are_cut():
    body = json.dumps({"error": {"message": "x" * 1000, "errors": [{"reason": "<script>alert(1)</script>"}]}})
    reason, message = answers.error_summary({}, body.encode())
    assert reason == "" and len(message) <= answers.MESSAGE_LIMIT and message.endswith("...")


def test_empty_error_body_gets_the_status_text():
    assert str(parse_error(503, {}, b"", what="files.list")) == "Drive answered 503: Service Unavailable (files.list)"


def test_connection_failure_names_the_host():
    error = DriveError(0, "connectionError", "connection refused", what="files.list", host="www.googleapis.com")
    assert str(error) == "could not reach www.googleapis.com: connection refused (files.list)"
    assert DriveError(503, "backendError", host="h").short() == "503 backendError from h"


# -- integrity -----------------------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_x_goog_hash_parsing():
    data = b"123456789"
    md5 = hashlib.md5(data).digest()
    crc = (0xE3069283).to_bytes(4, "big")
    hashes = integrity.parse_goog_hash({"X-Goog-Hash": f"crc32c={_b64(crc)},md5={_b64(md5)}"})
    assert hashes == {"crc32c": "e3069283", "md5": md5.hex()}
    assert integrity.crc32c(data) == 0xE3069283
    assert integrity.parse_goog_hash({"X-Goog-Hash": "md5=not base64!!, crc32c=AAAA"}) == {}
    assert integrity.parse_goog_hash({}) == {}


def test_the_rule_prefers_md5checksum_then_header_md5_then_crc32c_then_size():
    md5 = hashlib.md5(b"abc").hexdigest()
    assert integrity.expected(3, md5, {"md5": "0" * 32}).md5 == md5
    assert integrity.expected(3, None, {"md5": md5, "crc32c": "00000001"}).method == "md5"
    only_crc = integrity.expected(3, None, {"crc32c": "00000001"})
    assert only_crc.method == "crc32c" and only_crc.crc32c == 1
    assert integrity.expected(3, None, {}).method == "size"


def test_mismatch_verdicts():
    md5 = hashlib.md5(b"abc").hexdigest()
    assert integrity.mismatch(integrity.Expected(3, md5=md5), 3, md5) is None
    assert "md5 mismatch" in integrity.mismatch(integrity.Expected(3, md5=md5), 3, "0" * 32)
    assert "size mismatch" in integrity.mismatch(integrity.Expected(4, md5=md5), 3, md5)
    crc = integrity.crc32c(b"abc")
    assert integrity.mismatch(integrity.Expected(3, crc32c=crc), 3, md5, crc) is None
    assert "crc32c mismatch" in integrity.mismatch(integrity.Expected(3, crc32c=crc), 3, md5, crc ^ 1)
    assert integrity.mismatch(integrity.Expected(3), 3, md5) is None          # size only
    assert integrity.mismatch(integrity.Expected(3, crc32c=crc), 3, md5) == "crc32c not computed"


def test_file_crc32c_matches_one_shot(tmp_path):
    data = bytes(range(256)) * 40000
    p = tmp_path / "f"
    p.write_bytes(data)
    assert integrity.file_crc32c(str(p), block=65536) == integrity.crc32c(data)
