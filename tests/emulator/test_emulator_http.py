"""The emulator over real sockets (httpx): every endpoint, status code and JSON shape the client relies on."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import sys
import time
import zipfile

import httpx
import pytest

from drivesync.emulator import Emulator

FOLDER = "application/vnd.google-apps.folder"
KIB = 1024


@pytest.fixture
def api(emulator):
    with httpx.Client(base_url=emulator.url, headers=emulator.auth_headers(), timeout=30) as c:
        yield c


def err(r: httpx.Response) -> tuple[int, str]:
    body = r.json()["error"]
    assert body["code"] == r.status_code and body["message"] and body["errors"][0]["message"]
    return r.status_code, body["errors"][0]["reason"]


# ----------------------------------------------------------------- files.get / list


def test_get_root_alias_default_fields_and_errors(emulator, api):
    r = api.get("/drive/v3/files/root")
    assert r.status_code == 200
    assert r.json() == {"kind": "drive#file", "id": emulator.root_id, "name": "My Drive", "mimeType": FOLDER}
    assert api.get("/drive/v3/files/root", params={"fields": "id"}).json() == {"id": emulator.root_id}
    fid = emulator.add_file("x.bin", b"abc", modified_time="2024-02-02T10:40:02.874Z")
    full = api.get(f"/drive/v3/files/{fid}", params={"fields": "*"}).json()
    assert full["size"] == "3" and full["version"].isdigit() and full["quotaBytesUsed"] == "3"
    assert full["md5Checksum"] == hashlib.md5(b"abc").hexdigest()
    assert full["sha1Checksum"] == hashlib.sha1(b"abc").hexdigest()
    assert full["sha256Checksum"] == hashlib.sha256(b"abc").hexdigest()
    assert full["modifiedTime"] == "2024-02-02T10:40:02.874Z"
    assert full["parents"] == [emulator.root_id] and full["headRevisionId"]
    assert full["createdTime"].endswith("Z") and len(full["createdTime"]) == 24
    r = api.get(f"/drive/v3/files/{fid}", params={"fields": "id,bogus"})
    assert err(r) == (400, "invalidParameter")
    assert r.json()["error"]["message"] == "Invalid field selection bogus"
    r = api.get("/drive/v3/files/nope")
    assert err(r) == (404, "notFound") and r.json()["error"]["message"] == "File not found: nope."
    # unknown query parameters (rclone sends v2 ones) are ignored; the usual flags are accepted
    r = api.get(f"/drive/v3/files/{fid}", params={"supportsAllDrives": "true", "acknowledgeAbuse": "false",
                                                  "includeItemsFromAllDrives": "true", "foo": "bar"})
    assert r.status_code == 200


def test_folder_and_doc_fields(emulator, api):
    folder = emulator.add_folder("f")
    doc = emulator.add_doc("d", parent_id=folder, text="hi")
    sc = emulator.add_shortcut("s", doc, parent_id=folder)
    f = api.get(f"/drive/v3/files/{folder}", params={"fields": "*"}).json()
    assert "size" not in f and "md5Checksum" not in f
    d = api.get(f"/drive/v3/files/{doc}", params={"fields": "*"}).json()
    assert "md5Checksum" not in d and "headRevisionId" not in d
    assert d["exportLinks"]["text/plain"].startswith(emulator.url + f"/drive/v3/files/{doc}/export?mimeType=")
    s = api.get(f"/drive/v3/files/{sc}", params={"fields": "shortcutDetails,size"}).json()
    assert s == {"shortcutDetails": {"targetId": doc, "targetMimeType": "application/vnd.google-apps.document"}}


def test_list_query_paging_fields_order(emulator, api):
    parents = [emulator.add_folder(f"d{i}") for i in range(55)]
    for i, p in enumerate(parents):
        emulator.add_file(f"n{i:02d}", b"x", parent_id=p)
    trashed = emulator.add_file("gone", b"x", parent_id=parents[0])
    emulator.trash(trashed)
    q = "trashed=false and (" + " or ".join(f"'{p}' in parents" for p in parents) + ")"
    names, token, pages = [], None, 0
    while True:
        params = {"q": q, "pageSize": 20, "fields": "nextPageToken,files(id,name,parents)", "orderBy": "name desc"}
        if token:
            params["pageToken"] = token
        r = api.get("/drive/v3/files", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        names += [f["name"] for f in body["files"]]
        token = body.get("nextPageToken")
        if not token:
            break
    assert pages == 3 and names == [f"n{i:02d}" for i in reversed(range(55))]
    # trashed files are listed unless the query says otherwise
    r = api.get("/drive/v3/files", params={"q": f"'{parents[0]}' in parents"}).json()
    assert sorted(f["name"] for f in r["files"]) == ["gone", "n00"]
    assert set(r) == {"kind", "incompleteSearch", "files"}
    assert set(r["files"][0]) == {"kind", "id", "name", "mimeType"}
    # pageSize above 1000 is coerced; 0 is invalid
    assert api.get("/drive/v3/files", params={"pageSize": 5000}).status_code == 200
    assert err(api.get("/drive/v3/files", params={"pageSize": 0}))[0] == 400
    assert err(api.get("/drive/v3/files", params={"q": "name = 'x"})) == (400, "invalid")
    r = api.get("/drive/v3/files", params={"q": "name = 'x"})
    assert r.json()["error"]["errors"][0]["location"] == "q"
    assert err(api.get("/drive/v3/files", params={"fields": "files(nope)"})) == (400, "invalidParameter")
    assert err(api.get("/drive/v3/files", params={"orderBy": "size"})) == (400, "invalid")
    # folder-first ordering
    mixed = emulator.add_folder("mixed")
    emulator.add_file("a-file", b"", parent_id=mixed)
    emulator.add_folder("z-folder", parent_id=mixed)
    r = api.get("/drive/v3/files", params={"q": f"'{mixed}' in parents", "orderBy": "folder,name"}).json()
    assert [f["name"] for f in r["files"]] == ["z-folder", "a-file"]


def test_list_name_and_time_queries(emulator, api):
    p = emulator.add_folder("p")
    emulator.add_file("it's.txt", b"", parent_id=p, modified_time="2020-01-01T00:00:00Z")
    emulator.add_file("new.txt", b"", parent_id=p, modified_time="2024-01-01T00:00:00Z")
    emulator.add_folder("sub", parent_id=p)

    def names(q):
        r = api.get("/drive/v3/files", params={"q": f"'{p}' in parents and ({q})"})
        assert r.status_code == 200, r.text
        return sorted(f["name"] for f in r.json()["files"])

    assert names("name = 'it\\'s.txt'") == ["it's.txt"]
    assert names("name!='new.txt'") == ["it's.txt", "sub"]
    assert names("name contains 'new'") == ["new.txt"]
    assert names(f"mimeType = '{FOLDER}'") == ["sub"]
    assert names(f"not mimeType = '{FOLDER}'") == ["it's.txt", "new.txt"]
    assert names("modifiedTime > '2021-01-01T00:00:00' and mimeType != 'application/vnd.google-apps.folder'") == ["new.txt"]
    assert names("modifiedTime < '2021-01-01T00:00:00.000Z'") == ["it's.txt"]


# ----------------------------------------------------------------- create / update / delete / trash / changes


def test_create_update_delete_trash_changes(emulator, api):
    start = api.get("/drive/v3/changes/startPageToken").json()
    assert start["kind"] == "drive#startPageToken"
    r = api.post("/drive/v3/files", json={"name": "dir", "mimeType": FOLDER}, params={"fields": "id,parents,mimeType"})
    d = r.json()
    assert r.status_code == 200 and d["parents"] == [emulator.root_id]
    other = api.post("/drive/v3/files", json={"name": "other", "mimeType": FOLDER}).json()["id"]
    f = api.post("/drive/v3/files", json={"name": "meta-only", "parents": [d["id"]]}, params={"fields": "*"}).json()
    assert f["size"] == "0" and f["md5Checksum"] == hashlib.md5(b"").hexdigest() and f["version"] == "1"
    assert err(api.post("/drive/v3/files", json={"name": "x", "parents": ["missing"]})) == (404, "notFound")
    assert err(api.post("/drive/v3/files", json={"name": "x", "size": "5"})) == (403, "fieldNotWritable")
    # rename, modifiedTime, move
    r = api.patch(f"/drive/v3/files/{f['id']}", json={"name": "renamed", "modifiedTime": "2021-05-05T05:05:05.555Z"},
                  params={"addParents": other, "removeParents": d["id"], "fields": "name,modifiedTime,parents,version"})
    assert r.json() == {"name": "renamed", "modifiedTime": "2021-05-05T05:05:05.555Z", "parents": [other], "version": "2"}
    r = api.patch(f"/drive/v3/files/{f['id']}", json={}, params={"addParents": d["id"]})
    assert err(r) == (403, "cannotAddParent")
    r = api.patch(f"/drive/v3/files/{f['id']}", json={"parents": [d["id"]]})
    assert err(r) == (403, "fieldNotWritable")
    # trash a folder: the children go with it, and come back with it
    child = emulator.add_file("child", b"c", parent_id=other)
    r = api.patch(f"/drive/v3/files/{other}", json={"trashed": True}, params={"fields": "trashed,explicitlyTrashed,trashedTime"})
    assert r.json()["trashed"] is True and r.json()["explicitlyTrashed"] is True and "trashedTime" in r.json()
    c = api.get(f"/drive/v3/files/{child}", params={"fields": "trashed,explicitlyTrashed"}).json()
    assert c == {"trashed": True, "explicitlyTrashed": False}
    api.patch(f"/drive/v3/files/{other}", json={"trashed": False})
    assert api.get(f"/drive/v3/files/{child}", params={"fields": "trashed"}).json() == {"trashed": False}
    # delete and empty trash
    assert api.delete(f"/drive/v3/files/{f['id']}").status_code == 204
    assert api.get(f"/drive/v3/files/{f['id']}").status_code == 404
    api.patch(f"/drive/v3/files/{other}", json={"trashed": True})
    assert api.delete("/drive/v3/files/trash").status_code == 204
    assert api.get(f"/drive/v3/files/{child}").status_code == 404
    # changes: every create/update/trash/delete left a row; latest per file
    r = api.get("/drive/v3/changes", params={"pageToken": start["startPageToken"], "pageSize": 2})
    body = r.json()
    seen = {}
    while True:
        for ch in body["changes"]:
            seen[ch["fileId"]] = ch["removed"]
        if "nextPageToken" in body:
            body = api.get("/drive/v3/changes", params={"pageToken": body["nextPageToken"], "pageSize": 2}).json()
        else:
            break
    assert "newStartPageToken" in body
    assert seen[f["id"]] is True and seen[child] is True and seen[d["id"]] is False
    assert api.get("/drive/v3/changes", params={"pageToken": body["newStartPageToken"]}).json()["changes"] == []


def test_about(emulator, api):
    emulator.add_file("a", b"12345")
    assert err(api.get("/drive/v3/about"))[0] == 400
    r = api.get("/drive/v3/about", params={"fields": "user,storageQuota"}).json()
    assert r["user"]["me"] is True and r["user"]["emailAddress"]
    assert r["storageQuota"]["usage"] == "5" and isinstance(r["storageQuota"]["usageInDrive"], str)


def test_names_are_not_paths(emulator, api):
    weird = ["../../etc/passwd", "a/b\\c", "x" * 2000, "ünï 😀 ", "..", "con"]
    ids = []
    for n in weird:
        r = api.post("/upload/drive/v3/files", params={"uploadType": "multipart"}, files=None,
                     content=_multipart({"name": n}, n.encode()), headers={"Content-Type": "multipart/related; boundary=BND"})
        assert r.status_code == 200, r.text
        ids.append(r.json()["id"])
    for n, i in zip(weird, ids):
        assert emulator.file(i)["name"] == n and emulator.content(i) == n.encode()
    assert api.post("/drive/v3/files", json={"name": "a\0b"}).status_code == 400


# ----------------------------------------------------------------- downloads and export


def test_ranges(emulator, api):
    data = bytes(range(256)) * 40
    fid = emulator.add_file("r.bin", data)
    r = api.get(f"/drive/v3/files/{fid}", params={"alt": "media"})
    assert r.status_code == 200 and r.content == data and r.headers["content-length"] == str(len(data))
    r = api.get(f"/drive/v3/files/{fid}", params={"alt": "media"}, headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20] and r.headers["content-range"] == f"bytes 10-19/{len(data)}"
    r = api.get(f"/drive/v3/files/{fid}", params={"alt": "media"}, headers={"Range": "bytes=10000-104857599"})
    assert r.status_code == 206 and r.content == data[10000:] and r.headers["content-range"] == f"bytes 10000-10239/10240"
    r = api.get(f"/drive/v3/files/{fid}", params={"alt": "media"}, headers={"Range": "bytes=10240-"})
    assert r.status_code == 416 and r.headers["content-range"] == "bytes */10240"
    empty = emulator.add_file("e", b"")
    r = api.get(f"/drive/v3/files/{empty}", params={"alt": "media"}, headers={"Range": "bytes=0-104857599"})
    assert r.status_code == 416 and r.headers["content-range"] == "bytes */0"
    r = api.get(f"/drive/v3/files/{empty}", params={"alt": "media"})
    assert r.status_code == 200 and r.content == b""
    assert api.get("/drive/v3/files/nope", params={"alt": "media"}).status_code == 404


def test_docs_export_and_not_downloadable(emulator, api):
    doc = emulator.add_doc("d", text="line one\nline two")
    sheet = emulator.add_doc("s", kind="spreadsheet", text="a,b\n1,2")
    deck = emulator.add_doc("p", kind="presentation", text="slide")
    r = api.get(f"/drive/v3/files/{doc}", params={"alt": "media"})
    assert err(r) == (403, "fileNotDownloadable")
    r = api.get(f"/drive/v3/files/{doc}/export", params={"mimeType": "text/plain"})
    assert r.status_code == 200 and r.content == b"line one\nline two"
    for fid, mime, part in [
        (doc, "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "word/document.xml"),
        (sheet, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xl/workbook.xml"),
        (deck, "application/vnd.openxmlformats-officedocument.presentationml.presentation", "ppt/presentation.xml"),
    ]:
        r = api.get(f"/drive/v3/files/{fid}/export", params={"mimeType": mime})
        assert r.status_code == 200 and r.headers["content-type"].startswith(mime)
        z = zipfile.ZipFile(io.BytesIO(r.content))
        assert z.testzip() is None and part in z.namelist() and "[Content_Types].xml" in z.namelist()
    assert api.get(f"/drive/v3/files/{sheet}/export", params={"mimeType": "text/csv"}).content == b"a,b\n1,2"
    assert api.get(f"/drive/v3/files/{doc}/export", params={"mimeType": "application/pdf"}).content.startswith(b"%PDF-")
    # the exportLinks URL works as-is (rclone downloads Docs that way)
    link = api.get(f"/drive/v3/files/{doc}", params={"fields": "exportLinks"}).json()["exportLinks"]["text/plain"]
    assert api.get(link).content == b"line one\nline two"
    assert err(api.get(f"/drive/v3/files/{doc}/export", params={"mimeType": "image/gif"}))[0] == 400
    binary = emulator.add_file("b", b"x")
    assert err(api.get(f"/drive/v3/files/{binary}/export", params={"mimeType": "text/plain"}))[0] == 403
    emulator.configure(export_size_limit_bytes=5)
    assert err(api.get(f"/drive/v3/files/{doc}/export", params={"mimeType": "text/plain"})) == (403, "exportSizeLimitExceeded")


def test_abusive_file_needs_acknowledge(emulator, api):
    fid = emulator.add_file("bad", b"evil")
    emulator.set_abusive(fid)
    assert err(api.get(f"/drive/v3/files/{fid}", params={"alt": "media"})) == (403, "cannotDownloadAbusiveFile")
    assert api.get(f"/drive/v3/files/{fid}", params={"alt": "media", "acknowledgeAbuse": "true"}).content == b"evil"


# ----------------------------------------------------------------- uploads


def _multipart(meta: dict, data: bytes, crlf: bool = True) -> bytes:
    nl = b"\r\n" if crlf else b"\n"
    return nl.join([
        b"--BND", b"Content-Type: application/json; charset=UTF-8", b"", json.dumps(meta).encode(),
        b"--BND", b"Content-Type: text/plain", b"", data, b"--BND--", b"",
    ])


def test_simple_and_multipart_uploads(emulator, api):
    r = api.post("/upload/drive/v3/files", params={"uploadType": "media", "fields": "id,name,size,mimeType"},
                 content=b"hello", headers={"Content-Type": "text/plain"})
    assert r.status_code == 200 and r.json()["size"] == "5" and r.json()["mimeType"] == "text/plain"
    assert r.json()["name"] == "Untitled"
    for crlf in (True, False):
        payload = b"line\r\n--BNDnot-a-boundary\n" * 1000
        r = api.post("/upload/drive/v3/files", params={"uploadType": "multipart", "fields": "id,name,md5Checksum"},
                     content=_multipart({"name": "m.txt"}, payload, crlf),
                     headers={"Content-Type": 'multipart/related; boundary="BND"'})
        assert r.status_code == 200, r.text
        assert r.json()["md5Checksum"] == hashlib.md5(payload).hexdigest()
        assert emulator.content(r.json()["id"]) == payload
    # new content for an existing file: same id, version up
    fid = r.json()["id"]
    r = api.patch(f"/upload/drive/v3/files/{fid}", params={"uploadType": "media", "fields": "id,size,version"}, content=b"v2")
    assert r.json() == {"id": fid, "size": "2", "version": "2"}
    assert err(api.post("/upload/drive/v3/files", content=b"x")) == (400, "invalid")  # no uploadType


def _session(api, meta=None, total=None, file_id=None, params=None):
    headers = {"X-Upload-Content-Type": "application/octet-stream"}
    if total is not None:
        headers["X-Upload-Content-Length"] = str(total)
    q = {"uploadType": "resumable", **(params or {})}
    if file_id:
        r = api.patch(f"/upload/drive/v3/files/{file_id}", params=q, json=meta or {}, headers=headers)
    else:
        r = api.post("/upload/drive/v3/files", params=q, json=meta or {"name": "r.bin"}, headers=headers)
    assert r.status_code == 200, r.text
    assert "upload_id=" in r.headers["location"]
    return r.headers["location"]


def test_resumable_protocol(emulator, api):
    U = 256 * KIB
    data = hashlib.sha256(b"seed").digest() * (3 * U // 32) + b"tail!"
    total = len(data)
    loc = _session(api, {"name": "big.bin"}, total, params={"fields": "id,size,md5Checksum,name"})
    # status query before anything: 308, no Range
    r = api.put(loc, headers={"Content-Range": f"bytes */{total}"})
    assert r.status_code == 308 and "range" not in r.headers
    # a non-final chunk that is not a multiple of 256 KiB
    r = api.put(loc, content=data[:1000], headers={"Content-Range": f"bytes 0-999/{total}"})
    assert r.status_code == 400
    # first chunk by PUT, total unknown
    r = api.put(loc, content=data[:U], headers={"Content-Range": f"bytes 0-{U - 1}/*"})
    assert r.status_code == 308 and r.headers["range"] == f"bytes=0-{U - 1}"
    # a chunk beyond the committed offset
    r = api.put(loc, content=data[2 * U:3 * U], headers={"Content-Range": f"bytes {2 * U}-{3 * U - 1}/*"})
    assert r.status_code == 400
    # an overlapping chunk (rclone-style POST): the overlap is skipped
    r = api.post(loc, content=data[0:2 * U], headers={"Content-Range": f"bytes 0-{2 * U - 1}/{total}"})
    assert r.status_code == 308 and r.headers["range"] == f"bytes=0-{2 * U - 1}"
    r = api.put(loc, headers={"Content-Range": "bytes */*"})
    assert r.status_code == 308 and r.headers["range"] == f"bytes=0-{2 * U - 1}"
    # the final chunk
    r = api.put(loc, content=data[2 * U:], headers={"Content-Range": f"bytes {2 * U}-{total - 1}/{total}"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["size"] == str(total) and body["md5Checksum"] == hashlib.md5(data).hexdigest() and body["name"] == "big.bin"
    assert emulator.content(body["id"]) == data
    # a status query after completion answers the file
    r = api.put(loc, headers={"Content-Range": f"bytes */{total}"})
    assert r.status_code == 200 and r.json()["id"] == body["id"]
    # a bad Content-Range
    loc2 = _session(api)
    assert api.put(loc2, content=b"abc", headers={"Content-Range": "bytes 0-9/3"}).status_code == 400
    assert api.put(loc2, content=b"abc", headers={"Content-Range": "garbage"}).status_code == 400
    # an unknown session
    assert api.put(loc.replace("upload_id=", "upload_id=zz"), content=b"x").status_code == 404


def test_resumable_new_revision_same_id(emulator, api):
    fid = emulator.add_file("f.bin", b"old")
    before = emulator.file(fid)
    loc = _session(api, {}, 3, file_id=fid, params={"fields": "id,md5Checksum,headRevisionId,version"})
    r = api.put(loc, content=b"new", headers={"Content-Range": "bytes 0-2/3"})
    assert r.status_code == 200 and r.json()["id"] == fid
    assert r.json()["md5Checksum"] == hashlib.md5(b"new").hexdigest()
    assert r.json()["headRevisionId"] != before["headRevisionId"]
    assert int(r.json()["version"]) > int(before["version"])
    assert emulator.content(fid) == b"new"


def test_expired_session_and_restart_persistence(tmp_path):
    U = 256 * KIB
    data = bytes(range(256)) * (2 * U // 256)
    with Emulator(tmp_path / "d") as emu:
        h = emu.auth_headers()
        with httpx.Client(base_url=emu.url, headers=h) as api:
            loc = _session(api, {"name": "p.bin"}, len(data))
            assert api.put(loc, content=data[:U], headers={"Content-Range": f"bytes 0-{U - 1}/{len(data)}"}).status_code == 308
            expired = _session(api)
            fid = emu.add_file("kept", b"kept")
        emu.expire_upload_sessions()
        with httpx.Client(base_url=emu.url, headers=h) as api:
            r = api.put(expired, content=b"x", headers={"Content-Range": "bytes 0-0/1"})
            assert err(r) == (404, "notFound")
        old_port = emu.port
        refresh = json.load(open(emu.credentials_path))["refresh_token"]
    # expire_upload_sessions expired the first session too: start another before the restart
    with Emulator(tmp_path / "d", port=old_port) as emu:
        with httpx.Client(base_url=emu.url, headers=emu.auth_headers()) as api:
            loc = _session(api, {"name": "p.bin"}, len(data))
            assert api.put(loc, content=data[:U], headers={"Content-Range": f"bytes 0-{U - 1}/{len(data)}"}).status_code == 308
        tok = emu.access_token()
    with Emulator(tmp_path / "d", port=old_port) as emu:
        assert emu.content(fid) == b"kept"
        # the old access token and refresh token still work after a restart
        with httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {tok}"}) as api:
            r = api.put(loc, headers={"Content-Range": f"bytes */{len(data)}"})
            assert r.status_code == 308 and r.headers["range"] == f"bytes=0-{U - 1}"
            r = api.put(loc, content=data[U:], headers={"Content-Range": f"bytes {U}-{len(data) - 1}/{len(data)}"})
            assert r.status_code == 200
            assert emu.content(r.json()["id"]) == data
        r = httpx.post(emu.token_uri, data={"grant_type": "refresh_token", "refresh_token": refresh})
        assert r.status_code == 200


# ----------------------------------------------------------------- auth


def test_auth_errors(emulator):
    url = emulator.url + "/drive/v3/files/root"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        r = httpx.get(url, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        e = r.json()["error"]["errors"][0]
        assert (e["reason"], e["message"], e["location"]) == ("authError", "Invalid Credentials", "Authorization")
    tok = emulator.access_token()
    assert httpx.get(url, headers={"Authorization": f"Bearer {tok}"}).status_code == 200
    emulator.expire_tokens()
    assert httpx.get(url, headers={"Authorization": f"Bearer {tok}"}).status_code == 401
    assert httpx.get(url, params={"access_token": emulator.access_token()}).status_code == 200


def test_token_endpoint(emulator):
    refresh = json.load(open(emulator.credentials_path))["refresh_token"]
    for path in ("/token", "/o/oauth2/token"):
        r = httpx.post(emulator.url + path, data={"grant_type": "refresh_token", "refresh_token": refresh})
        assert r.status_code == 200
        body = r.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] > 3000 and "refresh_token" not in body
    r = httpx.post(emulator.token_uri, data={"grant_type": "refresh_token", "refresh_token": "nope"})
    assert r.status_code == 400 and r.json() == {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
    r = httpx.post(emulator.token_uri, data={"grant_type": "password"})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
    # revoke
    assert httpx.post(emulator.url + "/revoke", data={"token": refresh}).status_code == 200
    r = httpx.post(emulator.token_uri, data={"grant_type": "refresh_token", "refresh_token": refresh})
    assert r.json()["error"] == "invalid_grant"
    assert httpx.post(emulator.url + "/revoke", data={"token": "unknown"}).status_code == 400


def test_authorization_code_flow_with_pkce(emulator):
    import base64
    import secrets
    from urllib.parse import parse_qs, urlparse

    verifier = secrets.token_urlsafe(40)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    for path in ("/o/oauth2/auth", "/o/oauth2/v2/auth"):
        r = httpx.get(emulator.url + path, params={
            "client_id": "c", "redirect_uri": "http://localhost:9/cb", "response_type": "code",
            "scope": "https://www.googleapis.com/auth/drive", "state": "xyz",
            "code_challenge": challenge, "code_challenge_method": "S256"})
        assert r.status_code == 302
        loc = urlparse(r.headers["location"])
        assert loc.netloc == "localhost:9" and loc.path == "/cb"
        q = parse_qs(loc.query)
        assert q["state"] == ["xyz"]
        code = q["code"][0]
        bad = httpx.post(emulator.token_uri, data={"grant_type": "authorization_code", "code": code,
                                                   "redirect_uri": "http://localhost:9/cb", "code_verifier": "wrong"})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    r = httpx.get(emulator.url + "/o/oauth2/auth", params={"client_id": "c", "redirect_uri": "http://localhost:9/cb",
                                                          "code_challenge": challenge, "code_challenge_method": "S256"})
    code = parse_qs(urlparse(r.headers["location"]).query)["code"][0]
    r = httpx.post(emulator.token_uri, data={"grant_type": "authorization_code", "code": code, "client_id": "c",
                                             "redirect_uri": "http://localhost:9/cb", "code_verifier": verifier})
    assert r.status_code == 200 and r.json()["refresh_token"] and r.json()["access_token"]
    again = httpx.post(emulator.token_uri, data={"grant_type": "authorization_code", "code": code,
                                                 "redirect_uri": "http://localhost:9/cb", "code_verifier": verifier})
    assert again.status_code == 400  # codes are single use


def test_urls_follow_the_host_header(emulator, api):
    fid = emulator.add_doc("d", text="x")
    r = api.post("/upload/drive/v3/files", params={"uploadType": "resumable"}, json={"name": "a"},
                 headers={"Host": "www.googleapis.com"})
    assert r.headers["location"].startswith("https://www.googleapis.com/upload/drive/v3/files?")
    r = api.get(f"/drive/v3/files/{fid}", params={"fields": "exportLinks"}, headers={"Host": "www.googleapis.com"})
    assert r.json()["exportLinks"]["text/plain"].startswith(f"https://www.googleapis.com/drive/v3/files/{fid}/export")


# ----------------------------------------------------------------- limits and faults


def test_request_quota_403_and_429(emulator, api):
    emulator.configure(requests_per_s=0.01, request_burst=3, rate_limit_429_share=0.0)
    codes = [api.get("/drive/v3/files/root").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 403, 403]
    r = api.get("/drive/v3/files/root")
    assert r.json()["error"]["errors"][0]["domain"] == "usageLimits" and err(r) == (403, "userRateLimitExceeded")
    assert "retry-after" not in r.headers
    emulator.configure(rate_limit_429_share=1.0, retry_after_s=7)
    r = api.get("/drive/v3/files/root")
    assert err(r) == (429, "rateLimitExceeded") and r.headers["retry-after"] == "7"
    emulator.configure(rate_limit_429_share=0.5, seed=1)
    mix = {api.get("/drive/v3/files/root").status_code for _ in range(30)}
    assert mix == {403, 429}
    s = emulator.stats()
    assert s["by_status"]["403"] >= 3 and s["by_status"]["429"] >= 1 and s["rate_limited"] >= 4


def test_write_rate(emulator, api):
    emulator.configure(writes_per_s=0.01, write_burst=2)
    codes = [api.post("/drive/v3/files", json={"name": f"w{i}"}).status_code for i in range(3)]
    assert codes == [200, 200, 403]
    assert api.get("/drive/v3/files/root").status_code == 200  # reads are not writes
    r = api.post("/upload/drive/v3/files", params={"uploadType": "media"}, content=b"x")
    assert err(r) == (403, "rateLimitExceeded")
    assert emulator.stats()["write_limited"] == 2


def test_injected_backend_errors(emulator, api):
    emulator.configure(error_rate=1.0, error_503_share=0.0)
    assert err(api.get("/drive/v3/files/root")) == (500, "backendError")
    emulator.configure(error_503_share=1.0)
    assert api.get("/drive/v3/files/root").status_code == 503
    emulator.configure(error_rate=0.5, error_503_share=0.5, seed=3)
    codes = [api.get("/drive/v3/files/root").status_code for _ in range(40)]
    assert {200, 500, 503} == set(codes)
    emulator.configure(seed=3)
    assert codes == [api.get("/drive/v3/files/root").status_code for _ in range(40)]  # seeded: reproducible
    assert emulator.stats()["injected_errors"] > 10


def test_cut_connections(emulator, api):
    data = bytes(range(256)) * 4096  # 1 MiB
    fid = emulator.add_file("c.bin", data)
    emulator.configure(cut_next=2, cut_after_bytes=100_000)
    for _ in range(2):
        got = bytearray()
        with pytest.raises(httpx.HTTPError):
            with api.stream("GET", f"/drive/v3/files/{fid}", params={"alt": "media"}) as r:
                assert r.status_code == 200
                for chunk in r.iter_raw():
                    got += chunk
        assert bytes(got) == data[:100_000]
    assert api.get(f"/drive/v3/files/{fid}", params={"alt": "media"}).content == data
    assert emulator.stats()["cut_connections"] == 2


class PacedClock:
    """The emulator's limits on a frozen clock, and every asyncio.sleep of its server and upload code
    recorded (by the function that asked) instead of slept. On a frozen clock a token bucket's debt only
    grows, so the longest wait a transfer is told to take is exactly its bucket time, (bytes - burst) /
    rate: the throttling is checked as arithmetic, never against the wall clock."""

    def __init__(self):
        self.t = 1000.0
        self.sleeps: list[tuple[str, float]] = []

    def __call__(self) -> float:
        return self.t

    def waits(self, who: str) -> list[float]:
        return [d for caller, d in self.sleeps if caller == who]


class _RecordingAsyncio:
    """Stands in for the `asyncio` module inside the emulator's server and upload modules."""

    def __init__(self, clock: PacedClock):
        self._clock = clock

    def __getattr__(self, name):
        return getattr(asyncio, name)

    def sleep(self, delay, result=None):
        self._clock.sleeps.append((sys._getframe(1).f_code.co_name, delay))
        return _real_sleep(0, result)


_real_sleep = asyncio.sleep


@pytest.fixture
def paced(emulator, monkeypatch):
    from drivesync.emulator import limits as limits_module, server as server_module, service as service_module
    from drivesync.emulator import uploads as uploads_module

    clock = PacedClock()
    monkeypatch.setattr(emulator.server.limits, "clock", clock)  # buckets built from now on use it
    # service.py builds the per-connection buckets itself, on TokenBucket's default clock
    monkeypatch.setattr(service_module, "TokenBucket",
                        lambda rate, burst, clock_=clock: limits_module.TokenBucket(rate, burst, clock_))
    shim = _RecordingAsyncio(clock)
    monkeypatch.setattr(server_module, "asyncio", shim)
    monkeypatch.setattr(uploads_module, "asyncio", shim)
    return clock


def test_bandwidth_and_latency_are_enforced(emulator, paced):
    size = 2_000_000
    fid = emulator.add_file("bw.bin", size=size, seed=7)
    emulator.configure(download_bps_per_connection=4_000_000, download_burst_per_connection=256 * KIB,
                       media_latency_s=0.1, metadata_latency_s=0.2)
    emulator.reset_stats()
    with httpx.Client(base_url=emulator.url, headers=emulator.auth_headers()) as api:
        r = api.get(f"/drive/v3/files/{fid}", params={"alt": "media"})
        assert len(r.content) == size and emulator.stats()["bytes_sent"] == size
        assert paced.waits("_latency") == [0.1]  # time to first byte of media
        # every byte went through the connection's bucket: the last one may go (size - burst) / rate later
        assert max(paced.waits("_paced_send")) == pytest.approx((size - 256 * KIB) / 4_000_000)
        paced.sleeps.clear()
        assert api.get("/drive/v3/files/root").status_code == 200
        assert paced.sleeps == [("_latency", 0.2)]  # a metadata call: its latency and no bandwidth wait
    # total cap shared by two connections: the bucket's debt is both downloads' bytes, not one's
    emulator.configure(download_bps_per_connection=None, download_bps_total=8_000_000, download_burst_total=256 * KIB,
                       media_latency_s=0, metadata_latency_s=0)
    paced.sleeps.clear()
    emulator.reset_stats()
    import concurrent.futures as cf

    def fetch():
        with httpx.Client(base_url=emulator.url, headers=emulator.auth_headers()) as c:
            return len(c.get(f"/drive/v3/files/{fid}", params={"alt": "media"}).content)

    with cf.ThreadPoolExecutor(2) as ex:
        assert list(ex.map(lambda _: fetch(), range(2))) == [size, size]
    assert emulator.stats()["bytes_sent"] == 2 * size
    assert paced.waits("_latency") == []
    assert max(paced.waits("_paced_send")) == pytest.approx((2 * size - 256 * KIB) / 8_000_000)


def test_upload_bandwidth(emulator, api, paced):
    emulator.configure(upload_bps_per_connection=2_000_000, upload_burst_per_connection=64 * KIB)
    emulator.reset_stats()
    data = b"u" * 1_000_000
    r = api.post("/upload/drive/v3/files", params={"uploadType": "media"}, content=data)
    assert r.status_code == 200 and emulator.content(r.json()["id"]) == data
    assert emulator.stats()["bytes_received"] == len(data)
    assert max(paced.waits("blocks")) == pytest.approx((len(data) - 64 * KIB) / 2_000_000)


def test_stats_and_admin_endpoints(emulator, api):
    fid = emulator.add_file("s", b"12345")
    emulator.reset_stats()
    api.get("/drive/v3/files/root")
    api.get(f"/drive/v3/files/{fid}", params={"alt": "media"})
    api.get("/drive/v3/files/missing")
    s = emulator.stats()
    assert s["requests"] == 3 and s["by_kind"] == {"metadata": 2, "media": 1}
    assert s["by_status"] == {"200": 2, "404": 1} and s["bytes_sent"] >= 5
    assert httpx.get(emulator.url + "/_emulator/stats").json()["requests"] == 3
    r = httpx.post(emulator.url + "/_emulator/configure", json={"requests_per_s": 1000})
    assert r.status_code == 200 and r.json()["requests_per_s"] == 1000 and emulator.profile.requests_per_s == 1000
    assert httpx.post(emulator.url + "/_emulator/configure", json={"bogus": 1}).status_code == 400
    assert httpx.post(emulator.url + "/_emulator/reset-stats").status_code == 200
    assert emulator.stats()["requests"] == 0


def test_store_contract_helpers(emulator):
    a = emulator.add_folder("a")
    b = emulator.add_folder("b", parent_id=a)
    c = emulator.add_file("c.txt", b"c", parent_id=b)
    assert emulator.path_id("a/b/c.txt") == c
    with pytest.raises(KeyError):
        emulator.path_id("a/x")
    assert [f["name"] for f in emulator.children(a)] == ["b"]
    big = emulator.add_file("big", size=3_000_000, seed=5)
    again = emulator.add_file("again", size=3_000_000, seed=5)
    assert emulator.file(big)["md5Checksum"] == emulator.file(again)["md5Checksum"]
    assert emulator.file(big)["md5Checksum"] == hashlib.md5(emulator.content(big)).hexdigest()
    emulator.trash(c)
    assert emulator.children(b, trashed=False) == [] and len(emulator.children(b, trashed=True)) == 1
    emulator.delete(a)
    with pytest.raises(Exception):
        emulator.file(c)


def test_cli_subprocess(tmp_path):
    import os
    import signal
    import stat
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    creds = tmp_path / "creds.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "drivesync.emulator", "--data", str(tmp_path / "d"), "--port", "0",
         "--credentials-out", str(creds), "--profile", "drive-like", "--token-lifetime", "120",
         "--storage-limit", "5MB"],
        cwd=root, stdout=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("drivesync emulator listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[-1]
        info = json.loads(creds.read_text())
        assert stat.S_IMODE(os.stat(creds).st_mode) == 0o600
        assert info["type"] == "authorized_user" and info["token_uri"] == url + "/token"
        tok = httpx.post(info["token_uri"], data={"grant_type": "refresh_token", "refresh_token": info["refresh_token"]}).json()
        assert tok["expires_in"] == 120
        r = httpx.get(url + "/drive/v3/files/root", headers={"Authorization": f"Bearer {tok['access_token']}"})
        assert r.status_code == 200
        prof = httpx.get(url + "/_emulator/profile").json()
        assert prof["name"] == "drive-like" and prof["requests_per_s"] == 200.0
        assert prof["storage_limit_bytes"] == 5_000_000
        about = httpx.get(url + "/drive/v3/about", params={"fields": "storageQuota/limit"},
                          headers={"Authorization": f"Bearer {tok['access_token']}"}).json()
        assert about == {"storageQuota": {"limit": "5000000"}}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def test_resumable_chunk_cut_short_commits_whole_units(emulator, api):
    import socket
    from urllib.parse import urlsplit

    U = 256 * KIB
    data = bytes(range(256)) * (4 * U // 256)
    loc = _session(api, {"name": "cut.bin"}, len(data))
    u = urlsplit(loc)
    tok = api.headers["Authorization"]
    head = (f"PUT {u.path}?{u.query} HTTP/1.1\r\nHost: {u.netloc}\r\nAuthorization: {tok}\r\n"
            f"Content-Length: {2 * U}\r\nContent-Range: bytes 0-{2 * U - 1}/{len(data)}\r\n\r\n").encode()
    with socket.create_connection((u.hostname, u.port)) as s:
        s.sendall(head + data[: U + 1000])
        time.sleep(0.3)
    deadline = time.time() + 5
    while True:
        r = api.put(loc, headers={"Content-Range": f"bytes */{len(data)}"})
        if r.status_code == 308 and r.headers.get("range") == f"bytes=0-{U - 1}" or time.time() > deadline:
            break
        time.sleep(0.05)
    assert r.status_code == 308 and r.headers["range"] == f"bytes=0-{U - 1}"
    r = api.put(loc, content=data[U:], headers={"Content-Range": f"bytes {U}-{len(data) - 1}/{len(data)}"})
    assert r.status_code == 200 and emulator.content(r.json()["id"]) == data
