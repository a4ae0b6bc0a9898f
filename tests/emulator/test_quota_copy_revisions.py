"""Storage quota, files.copy naming, revisions.list/get, honest 501/400 for calls the emulator does not
serve, and the one-way import graph of server.py / uploads.py / service.py. Over real HTTP (httpx)."""

from __future__ import annotations

import ast
import hashlib
import json
import os

import httpx
import pytest

from drivesync.emulator import Emulator
from drivesync.emulator.__main__ import parse_args, storage_size
from drivesync.emulator.limits import PROFILES, SOURCES

FOLDER = "application/vnd.google-apps.folder"
QUOTA_MESSAGE = "The user's Drive storage quota has been exceeded."


def err(r: httpx.Response) -> tuple[int, str]:
    body = r.json()["error"]
    assert body["code"] == r.status_code and body["message"] and body["errors"][0]["message"]
    return r.status_code, body["errors"][0]["reason"]


@pytest.fixture
def api(emulator):
    with httpx.Client(base_url=emulator.url, headers=emulator.auth_headers(), timeout=30) as c:
        yield c


def media(api, data: bytes, file_id: str | None = None, fields: str = "id,size,md5Checksum,headRevisionId"):
    url = "/upload/drive/v3/files" + (f"/{file_id}" if file_id else "")
    send = api.patch if file_id else api.post
    return send(url, params={"uploadType": "media", "fields": fields}, content=data,
                headers={"Content-Type": "application/octet-stream"})


def multipart(api, meta: dict, data: bytes):
    body = b"\r\n".join([b"--BND", b"Content-Type: application/json", b"", json.dumps(meta).encode(),
                         b"--BND", b"Content-Type: application/octet-stream", b"", data, b"--BND--", b""])
    return api.post("/upload/drive/v3/files", params={"uploadType": "multipart", "fields": "id,size"}, content=body,
                    headers={"Content-Type": "multipart/related; boundary=BND"})


def resumable_start(api, total: int | None, file_id: str | None = None):
    headers = {"X-Upload-Content-Type": "application/octet-stream"}
    if total is not None:
        headers["X-Upload-Content-Length"] = str(total)
    url = "/upload/drive/v3/files" + (f"/{file_id}" if file_id else "")
    send = api.patch if file_id else api.post
    return send(url, params={"uploadType": "resumable", "fields": "id,size,headRevisionId"}, json={"name": "r.bin"},
                headers=headers)


def quota_exceeded(r: httpx.Response) -> bool:
    return err(r) == (403, "storageQuotaExceeded") and r.json()["error"]["message"] == QUOTA_MESSAGE


# ----------------------------------------------------------------- storage quota


def test_storage_limit_of_the_profiles_and_the_cli():
    assert PROFILES["drive-like"].storage_limit_bytes == 15 * 1024**3 == 16106127360
    assert PROFILES["google-like"].storage_limit_bytes == PROFILES["drive-like"].storage_limit_bytes
    assert PROFILES["unthrottled"].storage_limit_bytes is None
    assert "storage_limit_bytes" in SOURCES
    assert storage_size("15GiB") == 15 * 1024**3 and storage_size("500MB") == 500 * 10**6
    assert storage_size("1234") == 1234 and storage_size("none") is None
    assert parse_args(["--data", "d", "--storage-limit", "2KiB"]).storage_limit == 2048
    with pytest.raises(SystemExit):
        parse_args(["--data", "d", "--storage-limit", "lots"])


def test_storage_quota_is_shown_and_enforced_on_every_upload_kind_and_copies(tmp_path):
    with Emulator(tmp_path / "d", storage_limit_bytes=1000) as emu, \
            httpx.Client(base_url=emu.url, headers=emu.auth_headers(), timeout=30) as api:
        about = api.get("/drive/v3/about", params={"fields": "storageQuota"}).json()["storageQuota"]
        assert about["limit"] == "1000" and about["usage"] == "0"

        first = media(api, b"a" * 600)
        assert first.status_code == 200
        fid = first.json()["id"]
        assert quota_exceeded(media(api, b"b" * 401))  # simple
        assert quota_exceeded(multipart(api, {"name": "m"}, b"c" * 401))  # multipart
        assert quota_exceeded(resumable_start(api, 401))  # resumable, the declared size is refused up front
        s = resumable_start(api, None)  # resumable, size unknown until the last chunk
        assert s.status_code == 200
        assert quota_exceeded(api.put(s.headers["Location"], content=b"d" * 401,
                                      headers={"Content-Range": "bytes 0-400/401"}))
        assert quota_exceeded(api.post(f"/drive/v3/files/{fid}/copy", json={}))  # copies
        assert media(api, b"e" * 400).status_code == 200  # exactly up to the limit is fine
        assert quota_exceeded(media(api, b"f"))

        # A new revision replaces the old bytes (the store keeps only the head's content).
        r = media(api, b"g" * 590, file_id=fid)
        assert r.status_code == 200 and r.json()["size"] == "590"
        assert quota_exceeded(media(api, b"h" * 601, file_id=fid))
        # Trash still counts; deleting frees the space.
        assert api.patch(f"/drive/v3/files/{fid}", json={"trashed": True}).status_code == 200
        assert quota_exceeded(media(api, b"i" * 20))
        assert api.delete(f"/drive/v3/files/{fid}").status_code == 204
        assert media(api, b"j" * 500).status_code == 200
        assert api.get("/drive/v3/about", params={"fields": "storageQuota/usage"}).json() == {
            "storageQuota": {"usage": "900"}}

        emu.configure(storage_limit_bytes=None)
        assert "limit" not in api.get("/drive/v3/about", params={"fields": "storageQuota"}).json()["storageQuota"]
        assert media(api, b"k" * 5000).status_code == 200


# ----------------------------------------------------------------- files.copy


def test_copy_without_a_name_is_copy_of_name(emulator, api):
    fid = emulator.add_file("report.pdf", b"%PDF-1.4 data")
    doc = emulator.add_doc("Notes", text="hello")
    folder = emulator.add_folder("dest")
    r = api.post(f"/drive/v3/files/{fid}/copy", json={}, params={"fields": "id,name,md5Checksum,parents"}).json()
    assert r["name"] == "Copy of report.pdf" and r["id"] != fid
    assert r["md5Checksum"] == hashlib.md5(b"%PDF-1.4 data").hexdigest()
    assert emulator.content(r["id"]) == b"%PDF-1.4 data"
    again = api.post(f"/drive/v3/files/{fid}/copy", params={"fields": "name"}).json()  # no body at all
    assert again["name"] == "Copy of report.pdf"
    named = api.post(f"/drive/v3/files/{fid}/copy", json={"name": "mine.pdf", "parents": [folder]},
                     params={"fields": "name,parents"}).json()
    assert named == {"name": "mine.pdf", "parents": [folder]}
    assert api.post(f"/drive/v3/files/{doc}/copy", json={}).json()["name"] == "Copy of Notes"


# ----------------------------------------------------------------- revisions


def test_revisions_list_and_get(emulator, api):
    v1, v2, v3 = b"first", b"second version", b"third!"
    r1 = media(api, v1).json()
    fid = r1["id"]
    r2 = media(api, v2, file_id=fid).json()  # a re-push (PATCH with media) is a new revision
    s = resumable_start(api, len(v3), file_id=fid)
    r3 = api.put(s.headers["Location"], content=v3).json()  # and so is a resumable PATCH
    heads = [r1["headRevisionId"], r2["headRevisionId"], r3["headRevisionId"]]
    assert len(set(heads)) == 3 and r3["id"] == fid

    full = api.get(f"/drive/v3/files/{fid}/revisions", params={"fields": "*"}).json()
    assert full["kind"] == "drive#revisionList" and "nextPageToken" not in full
    assert [x["id"] for x in full["revisions"]] == heads  # the old revisions stay listed
    for rev, data in zip(full["revisions"], (v1, v2, v3)):
        assert rev["kind"] == "drive#revision" and rev["mimeType"] == "application/octet-stream"
        assert rev["md5Checksum"] == hashlib.md5(data).hexdigest() and rev["size"] == str(len(data))
        assert rev["keepForever"] is False and rev["modifiedTime"].endswith("Z") and rev["originalFilename"]
    assert api.get(f"/drive/v3/files/{fid}", params={"fields": "headRevisionId"}).json()["headRevisionId"] == heads[-1]

    # default fields, partial responses, an unknown field
    default = api.get(f"/drive/v3/files/{fid}/revisions").json()
    assert set(default) == {"kind", "revisions"}
    assert set(default["revisions"][0]) == {"kind", "id", "mimeType", "modifiedTime"}
    part = api.get(f"/drive/v3/files/{fid}/revisions", params={"fields": "revisions(id,md5Checksum)"}).json()
    assert part == {"revisions": [{"id": h, "md5Checksum": hashlib.md5(d).hexdigest()} for h, d in zip(heads, (v1, v2, v3))]}
    assert err(api.get(f"/drive/v3/files/{fid}/revisions", params={"fields": "revisions(bogus)"})) == (
        400, "invalidParameter")

    # paging
    page = api.get(f"/drive/v3/files/{fid}/revisions", params={"pageSize": 2, "fields": "nextPageToken,revisions/id"}).json()
    assert [x["id"] for x in page["revisions"]] == heads[:2]
    rest = api.get(f"/drive/v3/files/{fid}/revisions", params={"pageSize": 2, "pageToken": page["nextPageToken"]}).json()
    assert [x["id"] for x in rest["revisions"]] == heads[2:] and "nextPageToken" not in rest

    # revisions.get: by id, by "head", alt=media of the head; old contents are not kept (honest 501)
    got = api.get(f"/drive/v3/files/{fid}/revisions/{heads[1]}", params={"fields": "id,size"}).json()
    assert got == {"id": heads[1], "size": str(len(v2))}
    assert set(api.get(f"/drive/v3/files/{fid}/revisions/{heads[0]}").json()) == {"kind", "id", "mimeType", "modifiedTime"}
    assert api.get(f"/drive/v3/files/{fid}/revisions/head", params={"fields": "id"}).json() == {"id": heads[-1]}
    assert api.get(f"/drive/v3/files/{fid}/revisions/{heads[-1]}", params={"alt": "media"}).content == v3
    assert err(api.get(f"/drive/v3/files/{fid}/revisions/{heads[0]}", params={"alt": "media"})) == (501, "notImplemented")
    assert err(api.get(f"/drive/v3/files/{fid}/revisions/nope")) == (404, "notFound")

    # a copy starts with one revision of its own; a seeded file has its head revision
    cp = api.post(f"/drive/v3/files/{fid}/copy", json={}, params={"fields": "id,headRevisionId"}).json()
    assert [x["id"] for x in api.get(f"/drive/v3/files/{cp['id']}/revisions").json()["revisions"]] == [cp["headRevisionId"]]
    seeded = emulator.add_file("s.bin", b"seed")
    assert len(api.get(f"/drive/v3/files/{seeded}/revisions").json()["revisions"]) == 1

    # folders do not support revisions; Docs revisions are not emulated; a deleted file has none
    assert err(api.get(f"/drive/v3/files/{emulator.add_folder('f')}/revisions")) == (403, "revisionsNotSupported")
    assert err(api.get(f"/drive/v3/files/{emulator.add_doc('d')}/revisions")) == (501, "notImplemented")
    assert api.delete(f"/drive/v3/files/{fid}").status_code == 204
    assert err(api.get(f"/drive/v3/files/{fid}/revisions")) == (404, "notFound")


def test_revisions_survive_a_restart_and_metadata_only_updates(tmp_path):
    with Emulator(tmp_path / "d") as emu, httpx.Client(base_url=emu.url, headers=emu.auth_headers()) as api:
        fid = media(api, b"one").json()["id"]
        media(api, b"two", file_id=fid)
        api.patch(f"/drive/v3/files/{fid}", json={"name": "renamed"})  # no new content: no new revision
        before = api.get(f"/drive/v3/files/{fid}/revisions", params={"fields": "*"}).json()
    assert len(before["revisions"]) == 2
    with Emulator(tmp_path / "d") as emu, httpx.Client(base_url=emu.url, headers=emu.auth_headers()) as api:
        assert api.get(f"/drive/v3/files/{fid}/revisions", params={"fields": "*"}).json() == before
        # a data dir from before revisions were recorded: the head is listed, and kept by the next upload
        emu.store.execute("DELETE FROM revisions WHERE file_id = ?", (fid,))
        head = api.get(f"/drive/v3/files/{fid}/revisions", params={"fields": "revisions(id,size)"}).json()
        assert head == {"revisions": [{"id": before["revisions"][-1]["id"], "size": "3"}]}
        new = media(api, b"three", file_id=fid).json()["headRevisionId"]
        ids = [x["id"] for x in api.get(f"/drive/v3/files/{fid}/revisions").json()["revisions"]]
        assert ids == [before["revisions"][-1]["id"], new]


# ----------------------------------------------------------------- 501 / 400 / 404


def test_unimplemented_methods_answer_501_and_non_methods_400(emulator, api):
    fid = emulator.add_file("a.bin", b"x")
    for method, path in [
        ("GET", f"/drive/v3/files/{fid}/comments"),
        ("GET", "/drive/v3/files/missing-file/comments"),  # a missing file does not make it a 404
        ("POST", f"/drive/v3/files/{fid}/comments"),
        ("GET", f"/drive/v3/files/{fid}/comments/c1/replies"),
        ("DELETE", f"/drive/v3/files/{fid}/revisions/r1"),
        ("PATCH", "/drive/v3/drives/d1"),
        ("GET", "/drive/v3/teamdrives"),
        ("POST", "/drive/v3/changes/watch"),
        ("POST", "/drive/v3/channels/stop"),
        ("GET", "/drive/v3/apps"),
        ("POST", f"/drive/v3/files/{fid}/watch"),
        ("GET", f"/drive/v3/files/{fid}/listLabels"),
        ("POST", f"/drive/v3/files/{fid}/approvals:start"),
    ]:
        r = api.request(method, path, json={} if method == "POST" else None)
        assert err(r) == (501, "notImplemented"), (method, path, r.text)
        assert r.json()["error"]["status"] == "UNIMPLEMENTED"
    for method, path in [("GET", "/drive/v3/nothing"), ("GET", f"/drive/v3/files/{fid}/bogus"),
                         ("PUT", "/drive/v3/about"), ("GET", "/drive/v2/files"), ("GET", "/no/such/api")]:
        assert err(api.request(method, path)) == (400, "badRequest"), (method, path)
    for method, path in [("POST", f"/upload/drive/v3/files/{fid}"), ("PATCH", "/upload/drive/v3/files")]:
        r = api.request(method, path, params={"uploadType": "media"}, content=b"x")
        assert err(r) == (400, "badRequest"), (method, path)
    # 404 notFound stays the answer for a missing file
    assert err(api.get("/drive/v3/files/missing-file")) == (404, "notFound")
    assert err(api.get("/drive/v3/files/missing-file/revisions")) == (404, "notFound")


def test_batch_parts_get_the_same_answers(emulator, api):
    fid = emulator.add_file("a.bin", b"x")
    parts = [f"GET /drive/v3/files/{fid}/comments", f"GET /drive/v3/files/{fid}/revisions",
             "GET /drive/v3/bogus", "GET /drive/v3/files/missing"]
    body = "".join(
        f"--b\r\nContent-Type: application/http\r\nContent-ID: <{i}>\r\n\r\n{p}\r\n\r\n" for i, p in enumerate(parts)
    ) + "--b--\r\n"
    r = api.post("/batch/drive/v3", content=body.encode(), headers={"Content-Type": "multipart/mixed; boundary=b"})
    statuses = [int(line.split()[1]) for line in r.text.splitlines() if line.startswith("HTTP/1.1 ")]
    assert statuses == [501, 200, 400, 404]


# ----------------------------------------------------------------- module shape


def _imports(path: str) -> set[str]:
    tree = ast.parse(open(path).read())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            out.add(node.module or "")
            out.update(a.name for a in node.names if node.module is None)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("drivesync.emulator."):
            out.add(node.module.rsplit(".", 1)[1])
    return out


def test_import_graph_is_one_way():
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "drivesync", "emulator")
    uploads = _imports(os.path.join(here, "uploads.py"))
    service = _imports(os.path.join(here, "service.py"))
    server = _imports(os.path.join(here, "server.py"))
    assert "server" not in uploads and "service" in uploads  # not even under TYPE_CHECKING
    assert not {"server", "uploads"} & service
    assert {"service", "uploads"} <= server
