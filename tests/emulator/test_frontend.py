"""Google's front-end oddities (drivesync/emulator/frontend.py) over real sockets, one Profile field at a time.

Raw answers come through http.client, which decodes nothing, so gzip and cut bodies are seen as sent.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import json
import os
from urllib.parse import urlencode

import pytest

from drivesync.emulator import Emulator
from drivesync.emulator import crc32c as crc
from drivesync.emulator.__main__ import parse_args, parse_sets
from drivesync.emulator.frontend import ors_parents, wants_gzip
from drivesync.emulator.limits import GOOGLE_LIKE_ODDITIES, PROFILES, SOURCES, Profile

GZ_HEADERS = {"Accept-Encoding": "gzip", "User-Agent": "some-client/1.0 (gzip)"}


def raw(emu, method: str, path: str, params: dict | None = None, headers: dict | None = None, body: bytes = b""):
    """One request on a fresh connection: (status, headers dict lower-cased, body bytes exactly as sent)."""
    if params:
        path += "?" + urlencode(params)
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=30)
    try:
        h = {**emu.auth_headers(), **(headers or {})}
        conn.request(method, path, body=body or None, headers=h)
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


@pytest.fixture
def emu(tmp_path):
    with Emulator(tmp_path / "drive", profile="unthrottled") as e:
        yield e


def folders_with_children(emu, n_folders=2, per=3):
    folders = [emu.add_folder(f"d{i}") for i in range(n_folders)]
    for i, f in enumerate(folders):
        for j in range(per):
            emu.add_file(f"f{i}-{j}", b"x" * (j + 1), parent_id=f)
    return folders


def or_query(folders) -> str:
    return "trashed=false and (" + " or ".join(f"'{f}' in parents" for f in folders) + ")"


# ----------------------------------------------------------------- 1. gzip


def test_wants_gzip_rule():
    assert wants_gzip({"Accept-Encoding": "gzip, deflate", "User-Agent": "google-api-python-client/2 (gzip)"})
    assert not wants_gzip({"Accept-Encoding": "gzip, deflate", "User-Agent": "python-httpx/0.27"})
    assert not wants_gzip({"User-Agent": "x (gzip)"})
    assert not wants_gzip({"Accept-Encoding": "gzip;q=0, identity", "User-Agent": "x (gzip)"})
    assert not wants_gzip({"Accept-Encoding": "identity", "User-Agent": "x (gzip)"})


def test_gzip_only_with_both_headers_and_never_on_media(emu):
    fid = emu.add_file("data.json", b'{"media": "stays byte-exact"}' * 50, mime_type="application/json")
    doc = emu.add_doc("doc", text="hello " * 100)
    path = f"/drive/v3/files/{fid}"
    # Off by default (unthrottled is as kind as before): both headers, no gzip.
    st, h, body = raw(emu, "GET", path, {"fields": "*"}, GZ_HEADERS)
    assert st == 200 and "content-encoding" not in h and json.loads(body)["id"] == fid

    emu.configure(gzip_json=True)
    st, h, body = raw(emu, "GET", path, {"fields": "*"}, GZ_HEADERS)
    assert st == 200 and h["content-encoding"] == "gzip" and "Accept-Encoding" in h["vary"]
    assert json.loads(gzip.decompress(body))["id"] == fid
    assert int(h["content-length"]) == len(body)
    for only in ({"Accept-Encoding": "gzip"}, {"User-Agent": "x (gzip)"}, {}):
        st, h, body = raw(emu, "GET", path, {"fields": "*"}, {"Accept-Encoding": "identity", **only})
        assert st == 200 and "content-encoding" not in h and json.loads(body)["id"] == fid
    # Errors and listings are JSON answers too.
    st, h, body = raw(emu, "GET", "/drive/v3/files/nope", None, GZ_HEADERS)
    assert st == 404 and h["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(body))["error"]["errors"][0]["reason"] == "notFound"
    # Media and export: never, even with both headers (and a JSON file's media is application/json).
    st, h, body = raw(emu, "GET", path, {"alt": "media"}, GZ_HEADERS)
    assert st == 200 and "content-encoding" not in h and body == emu.content(fid)
    st, h, body = raw(emu, "GET", path, {"alt": "media"}, {**GZ_HEADERS, "Range": "bytes=0-9"})
    assert st == 206 and "content-encoding" not in h and body == emu.content(fid)[:10]
    st, h, body = raw(emu, "GET", f"/drive/v3/files/{doc}/export", {"mimeType": "text/plain"}, GZ_HEADERS)
    assert st == 200 and "content-encoding" not in h and body.decode().startswith("hello")


def test_gzip_bytes_sent_counts_the_wire(emu):
    parent = emu.add_folder("many")
    for i in range(300):
        emu.add_file(f"file-{i:04d}.bin", b"x", parent_id=parent)
    params = {"q": f"'{parent}' in parents", "pageSize": "1000", "fields": "files(id,name,md5Checksum,size)"}
    emu.configure(gzip_json=True)
    sizes = {}
    for label, headers in (("plain", {"Accept-Encoding": "identity"}), ("gzip", GZ_HEADERS)):
        emu.reset_stats()
        st, h, body = raw(emu, "GET", "/drive/v3/files", params, headers)
        assert st == 200
        assert emu.stats()["bytes_sent"] == len(body)
        sizes[label] = len(body)
    assert emu.stats()["frontend"]["gzip"] == 1
    assert sizes["gzip"] * 3 < sizes["plain"]


def test_gzip_batch_answer(emu):
    emu.configure(gzip_json=True)
    boundary = "b0undary"
    part = "GET /drive/v3/files/root?fields=id HTTP/1.1\r\n\r\n"
    body = (f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <1>\r\n\r\n{part}\r\n"
            f"--{boundary}--\r\n").encode()
    st, h, data = raw(emu, "POST", "/batch/drive/v3", None,
                      {**GZ_HEADERS, "Content-Type": f"multipart/mixed; boundary={boundary}"}, body)
    assert st == 200 and h["content-encoding"] == "gzip"
    assert emu.root_id in gzip.decompress(data).decode()


def test_admin_configure_toggles_one_field_at_a_time(emu):
    path = "/drive/v3/files/root"

    def configure(overrides):
        st, _, body = raw(emu, "POST", "/_emulator/configure", None, {"Content-Type": "application/json"},
                          json.dumps(overrides).encode())
        assert st == 200
        return json.loads(body)

    assert configure({"gzip_json": True})["gzip_json"] is True
    assert raw(emu, "GET", path, None, GZ_HEADERS)[1]["content-encoding"] == "gzip"
    profile = configure({"gzip_json": False, "range_ignored_rate": 0.25})
    assert profile["gzip_json"] is False and profile["range_ignored_rate"] == 0.25
    assert "content-encoding" not in raw(emu, "GET", path, None, GZ_HEADERS)[1]
    # The admin answers themselves are never touched.
    configure({"gzip_json": True, "json_cut_next": 5, "html_error_next": 5})
    st, h, body = raw(emu, "GET", "/_emulator/profile", None, GZ_HEADERS)
    assert st == 200 and "content-encoding" not in h and json.loads(body)["html_error_next"] == 5


# ----------------------------------------------------------------- 2. HTML 5xx


def test_front_end_html_502_503_pages(emu):
    emu.configure(html_error_next=2, html_error_503_share=0.5, seed=11)
    seen = []
    for _ in range(2):
        st, h, body = raw(emu, "GET", "/drive/v3/files/root")
        assert st in (502, 503)
        assert h["content-type"].startswith("text/html")
        text = body.decode()
        assert text.startswith("<!DOCTYPE html>") and f"Error {st} (" in text and "!!1" in text
        with pytest.raises(ValueError):
            json.loads(body)
        seen.append(st)
    st, h, body = raw(emu, "GET", "/drive/v3/files/root")
    assert st == 200 and json.loads(body)["id"] == emu.root_id
    stats = emu.stats()
    assert sum(stats["frontend"].get(f"html_{c}", 0) for c in (502, 503)) == 2
    assert sum(stats["by_status"].get(str(c), 0) for c in (502, 503)) == 2
    # No token needed: the front end answers before Drive checks credentials.
    emu.configure(html_error_next=1)
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    conn.request("GET", "/drive/v3/files/root")
    assert conn.getresponse().status in (502, 503)
    conn.close()


def test_html_error_rate_is_seeded(tmp_path):
    def statuses(seed):
        with Emulator(tmp_path / f"d{seed}-{len(os.listdir(tmp_path))}", html_error_rate=0.3, seed=seed) as e:
            return [raw(e, "GET", "/drive/v3/files/root")[0] for _ in range(40)]

    a, b = statuses(5), statuses(5)
    assert a == b
    assert 3 <= sum(s != 200 for s in a) <= 25
    assert set(a) <= {200, 502, 503}


def test_drive_5xx_as_html(emu):
    emu.configure(error_rate=1.0, html_5xx_share=1.0)
    st, h, body = raw(emu, "GET", "/drive/v3/files/root")
    assert st in (500, 503) and h["content-type"].startswith("text/html") and f"Error {st}" in body.decode()
    emu.configure(html_5xx_share=0.0)
    st, h, body = raw(emu, "GET", "/drive/v3/files/root")
    assert st in (500, 503) and json.loads(body)["error"]["errors"][0]["reason"] == "backendError"
    # 4xx stay Drive's JSON.
    emu.configure(error_rate=0.0, html_5xx_share=1.0)
    st, h, body = raw(emu, "GET", "/drive/v3/files/nope")
    assert st == 404 and json.loads(body)["error"]["code"] == 404


# ----------------------------------------------------------------- 3. OR'd parents


def test_ors_parents_detection():
    assert ors_parents("'a' in parents or 'b' in parents")
    assert ors_parents("trashed=false and ('a' in parents or 'b' in parents or 'c' in parents)")
    assert ors_parents("not ('a' in parents or name = 'x' or 'b' in parents)")
    assert not ors_parents("'a' in parents")
    assert not ors_parents("'a' in parents and 'b' in parents")
    assert not ors_parents("'a' in parents or name = 'x'")
    assert not ors_parents(None) and not ors_parents("bogus ((")


def test_ord_parents_empty_next_counter(emu):
    folders = folders_with_children(emu)
    params = {"q": or_query(folders), "pageSize": "2", "fields": "nextPageToken,files(id,name)"}
    st, _, body = raw(emu, "GET", "/drive/v3/files", params)
    truth = json.loads(body)
    assert len(truth["files"]) == 2 and truth["nextPageToken"]

    emu.configure(ord_parents_empty_next=2)
    for _ in range(2):
        st, _, body = raw(emu, "GET", "/drive/v3/files", params)
        assert st == 200 and json.loads(body) == {"files": []}
    assert json.loads(raw(emu, "GET", "/drive/v3/files", params)[2]) == truth
    # Single-parent queries are always answered truly, whatever the rate.
    emu.configure(ord_parents_empty_rate=1.0)
    single = {"q": f"'{folders[0]}' in parents", "fields": "files(id)"}
    assert len(json.loads(raw(emu, "GET", "/drive/v3/files", single)[2])["files"]) == 3
    assert json.loads(raw(emu, "GET", "/drive/v3/files", params)[2]) == {"files": []}
    assert emu.stats()["frontend"]["ord_parents_empty"] == 3


def test_ord_parents_empty_rate_is_seeded(tmp_path):
    def empties(seed):
        with Emulator(tmp_path / f"e{seed}-{len(os.listdir(tmp_path))}", ord_parents_empty_rate=0.5, seed=seed) as e:
            folders = folders_with_children(e, 3, 1)
            params = {"q": or_query(folders), "fields": "files(id)"}
            out = []
            for _ in range(30):
                out.append(len(json.loads(raw(e, "GET", "/drive/v3/files", params)[2])["files"]) == 0)
            return out

    a = empties(3)
    assert a == empties(3)
    assert 5 <= sum(a) <= 25


# ----------------------------------------------------------------- 4. JSON cut mid-body


def test_json_cut_truncated_complete_body(emu):
    fid = emu.add_file("a.bin", b"abc")
    params = {"fields": "*"}
    truth = raw(emu, "GET", f"/drive/v3/files/{fid}", params)[2]
    emu.configure(json_cut_next=1, json_cut_modes="truncated")
    st, h, body = raw(emu, "GET", f"/drive/v3/files/{fid}", params)
    assert st == 200 and h["content-type"].startswith("application/json")
    assert int(h["content-length"]) == len(body)  # a complete answer...
    assert 0 < len(body) < len(truth) and truth.startswith(body)  # ...whose body is not JSON
    with pytest.raises(ValueError):
        json.loads(body)
    assert raw(emu, "GET", f"/drive/v3/files/{fid}", params)[2] == truth
    # With gzip the encoding is valid and the JSON inside is still cut.
    emu.configure(json_cut_next=1, gzip_json=True)
    st, h, body = raw(emu, "GET", f"/drive/v3/files/{fid}", params, GZ_HEADERS)
    inner = gzip.decompress(body)
    assert st == 200 and truth.startswith(inner) and len(inner) < len(truth)
    assert emu.stats()["frontend"]["json_cut_truncated"] == 2


def test_json_cut_drop_and_html(emu):
    fid = emu.add_file("a.bin", b"abc")
    emu.configure(json_cut_next=1, json_cut_modes="drop")
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    conn.request("GET", f"/drive/v3/files/{fid}?fields=*", headers=emu.auth_headers())
    r = conn.getresponse()
    assert r.status == 200
    with pytest.raises(http.client.IncompleteRead) as exc:
        r.read()
    assert 0 < len(exc.value.partial) < int(r.getheader("Content-Length"))
    conn.close()
    emu.configure(json_cut_next=1, json_cut_modes="html")
    st, h, body = raw(emu, "GET", f"/drive/v3/files/{fid}")
    assert st == 200 and h["content-type"].startswith("text/html") and b"<html>" in body
    stats = emu.stats()
    assert stats["frontend"]["json_cut_drop"] == 1 and stats["frontend"]["json_cut_html"] == 1
    # Media is never cut by this rule.
    emu.configure(json_cut_rate=1.0, json_cut_modes="truncated")
    st, h, body = raw(emu, "GET", f"/drive/v3/files/{fid}", {"alt": "media"})
    assert st == 200 and body == b"abc"


# ----------------------------------------------------------------- 5. Range ignored


def test_range_ignored(emu):
    data = os.urandom(5000)
    fid = emu.add_file("r.bin", data)
    path = f"/drive/v3/files/{fid}"
    emu.configure(range_ignored_next=1)
    st, h, body = raw(emu, "GET", path, {"alt": "media"}, {"Range": "bytes=100-199"})
    assert st == 200 and body == data and "content-range" not in h
    st, h, body = raw(emu, "GET", path, {"alt": "media"}, {"Range": "bytes=100-199"})
    assert st == 206 and body == data[100:200] and h["content-range"] == "bytes 100-199/5000"
    # Without Range nothing is drawn or counted.
    emu.configure(range_ignored_rate=1.0)
    assert raw(emu, "GET", path, {"alt": "media"})[0] == 200
    st, _, body = raw(emu, "GET", path, {"alt": "media"}, {"Range": "bytes=0-0"})
    assert st == 200 and body == data
    assert emu.stats()["frontend"]["range_ignored"] == 2


# ----------------------------------------------------------------- 6. md5 missing + X-Goog-Hash


def test_crc32c_known_values():
    assert crc.crc32c(b"123456789") == 0xE3069283
    assert crc.crc32c(b"") == 0
    c = crc.Crc32c()
    for piece in (b"1234", b"5", b"6789"):
        c.update(piece)
    assert c.value == 0xE3069283
    assert crc.to_base64(0xE3069283) == "4waSgw=="
    blob = os.urandom(70_000)
    assert crc.crc32c(blob[1000:], crc.crc32c(blob[:1000])) == crc.crc32c(blob)


def goog_hash(h) -> dict:
    return dict(item.split("=", 1) for item in h["x-goog-hash"].split(","))


def test_x_goog_hash_on_every_media_answer(emu):
    fid = emu.add_file("nine.txt", b"123456789")
    md5 = base64.b64encode(hashlib.md5(b"123456789").digest()).decode()
    st, h, body = raw(emu, "GET", f"/drive/v3/files/{fid}", {"alt": "media"})
    assert st == 200 and body == b"123456789"
    assert goog_hash(h) == {"crc32c": "4waSgw==", "md5": md5}
    assert h["x-goog-hash"] == f"crc32c=4waSgw==,md5={md5}"
    # A 206 carries the hashes of the whole object, not of the range.
    st, h, body = raw(emu, "GET", f"/drive/v3/files/{fid}", {"alt": "media"}, {"Range": "bytes=2-4"})
    assert st == 206 and body == b"345" and goog_hash(h) == {"crc32c": "4waSgw==", "md5": md5}
    # An empty file, a copy (crc32c computed lazily, then kept), and a new revision.
    empty = emu.add_file("empty", b"")
    assert goog_hash(raw(emu, "GET", f"/drive/v3/files/{empty}", {"alt": "media"})[1])["crc32c"] == "AAAAAA=="
    copy = emu.store.copy_file(fid, name="copy")
    rev = emu.store.row(copy)["revision"]
    assert emu.store.crc32c(rev, compute=False) is None
    assert goog_hash(raw(emu, "GET", f"/drive/v3/files/{copy}", {"alt": "media"})[1])["crc32c"] == "4waSgw=="
    assert emu.store.crc32c(rev, compute=False) == 0xE3069283
    st, _, _ = raw(emu, "PATCH", f"/upload/drive/v3/files/{fid}", {"uploadType": "media"},
                   {"Content-Type": "application/octet-stream"}, b"hello")
    assert st == 200
    h = raw(emu, "GET", f"/drive/v3/files/{fid}", {"alt": "media"})[1]
    assert goog_hash(h) == {"crc32c": crc.to_base64(crc.crc32c(b"hello")),
                            "md5": base64.b64encode(hashlib.md5(b"hello").digest()).decode()}


def test_md5_missing_per_file_and_seeded(emu):
    parent = emu.add_folder("p")
    ids = [emu.add_file(f"f{i}", f"content {i}".encode(), parent_id=parent) for i in range(60)]
    params = {"q": f"'{parent}' in parents", "pageSize": "1000", "fields": "files(id,md5Checksum,sha256Checksum)"}

    def lacking():
        files = json.loads(raw(emu, "GET", "/drive/v3/files", params)[2])["files"]
        return {f["id"] for f in files if "md5Checksum" not in f}

    assert lacking() == set()
    emu.configure(md5_missing_rate=0.3, seed=4)
    first = lacking()
    assert 5 <= len(first) <= 35 and first == lacking()
    for fid in ids[:10]:
        got = json.loads(raw(emu, "GET", f"/drive/v3/files/{fid}", {"fields": "*"})[2])
        assert ("md5Checksum" in got) == (fid not in first)
        assert ("sha1Checksum" in got) == (fid not in first) and got["size"]
    gone = next(iter(first))
    st, h, body = raw(emu, "GET", f"/drive/v3/files/{gone}", {"alt": "media"})
    assert goog_hash(h)["md5"] == base64.b64encode(hashlib.md5(body).digest()).decode()
    assert goog_hash(h)["crc32c"] == crc.to_base64(crc.crc32c(body))
    # Uploads answer the same way for files that lack it.
    emu.configure(md5_missing_rate=1.0)
    st, _, body = raw(emu, "POST", "/upload/drive/v3/files", {"uploadType": "media", "fields": "id,md5Checksum"},
                      {"Content-Type": "application/octet-stream"}, b"new")
    assert st == 200 and "md5Checksum" not in json.loads(body)
    # Another seed picks other files.
    emu.configure(md5_missing_rate=0.3, seed=5)
    assert lacking() != first


# ----------------------------------------------------------------- 7. the google-like profile


def test_google_like_is_drive_like_plus_the_oddities():
    drive, google, kind = PROFILES["drive-like"], PROFILES["google-like"], PROFILES["unthrottled"]
    assert google.name == "google-like"
    for name, value in google.as_dict().items():
        if name == "name":
            continue
        if name in GOOGLE_LIKE_ODDITIES:
            assert value == GOOGLE_LIKE_ODDITIES[name], name
            assert name in SOURCES, name
        else:
            assert value == getattr(drive, name), name
    assert google.gzip_json and google.html_error_rate > 0 and google.ord_parents_empty_rate > 0
    assert google.json_cut_rate > 0 and google.range_ignored_rate > 0 and google.md5_missing_rate > 0
    assert set(google.json_cut_modes.split(",")) == {"truncated", "drop", "html"}
    # Nobody else gets any oddity.
    default = Profile()
    for p in (drive, kind):
        for name in GOOGLE_LIKE_ODDITIES:
            assert getattr(p, name) == getattr(default, name), (p.name, name)
        assert not p.gzip_json and p.html_error_rate == 0 and p.json_cut_rate == 0


def test_command_line_selects_google_like_and_sets_fields():
    args = parse_args(["--data", "/tmp/x", "--profile", "google-like", "--set", "gzip_json=false",
                       "--set", "html_error_rate=0", "--set", "json_cut_modes=drop,html"])
    assert args.profile == "google-like"
    assert parse_sets(args.set) == {"gzip_json": False, "html_error_rate": 0, "json_cut_modes": "drop,html"}
    with pytest.raises(SystemExit):
        parse_sets(["novalue"])


def test_google_like_over_sockets(tmp_path):
    # The numbers are drive-like's (latency etc.), so keep this short: one listing, one download.
    with Emulator(tmp_path / "g", profile="google-like", html_error_rate=0.0, json_cut_rate=0.0) as e:
        fid = e.add_file("nine", b"123456789")
        st, h, body = raw(e, "GET", "/drive/v3/files", {"fields": "files(id)"}, GZ_HEADERS)
        assert st == 200 and h["content-encoding"] == "gzip"
        assert fid in {f["id"] for f in json.loads(gzip.decompress(body))["files"]}
        st, h, body = raw(e, "GET", f"/drive/v3/files/{fid}", {"alt": "media"}, GZ_HEADERS)
        assert st == 200 and body == b"123456789" and goog_hash(h)["crc32c"] == "4waSgw=="
        assert e.stats()["frontend"]["gzip"] == 1


def test_googleapiclient_decodes_gzip(tmp_path):
    pytest.importorskip("googleapiclient")
    import io

    import googleapiclient
    from google.oauth2.credentials import Credentials
    from googleapiclient.discovery import build_from_document
    from googleapiclient.http import MediaIoBaseDownload

    doc_path = os.path.join(os.path.dirname(googleapiclient.__file__), "discovery_cache", "documents", "drive.v3.json")
    with Emulator(tmp_path / "d", gzip_json=True, md5_missing_rate=0.5) as e:
        with open(doc_path) as f:
            doc = json.load(f)
        doc["rootUrl"], doc["baseUrl"] = e.url + "/", e.url + "/drive/v3/"
        info = json.load(open(e.credentials_path))
        creds = Credentials(None, refresh_token=info["refresh_token"], token_uri=info["token_uri"],
                            client_id=info["client_id"], client_secret=info["client_secret"])
        drive = build_from_document(doc, credentials=creds)
        data = os.urandom(300_000)
        fid = e.add_file("blob", data)
        listed = drive.files().list(fields="files(id,name,size)").execute()
        assert [f["id"] for f in listed["files"]] == [fid]
        buf = io.BytesIO()
        dl = MediaIoBaseDownload(buf, drive.files().get_media(fileId=fid), chunksize=100_000)
        done = False
        while not done:
            _, done = dl.next_chunk()
        assert buf.getvalue() == data
        assert e.stats()["frontend"]["gzip"] >= 1
