"""google-api-python-client, unchanged, against the emulator.

The client is built from the discovery document it ships, with rootUrl/baseUrl rewritten to the
emulator (client_options alone would not move uploads or batch), and authorised with the emulator's
credentials file. Everything here goes over real sockets through httplib2.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import zipfile

import googleapiclient  # in the dev extra: a broken install fails here, never skips
import pytest
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build_from_document
from googleapiclient.errors import HttpError
from googleapiclient.http import (
    MediaFileUpload,
    MediaInMemoryUpload,
    MediaIoBaseDownload,
    MediaIoBaseUpload,
)

KIB = 1024
DOC_PATH = os.path.join(os.path.dirname(googleapiclient.__file__), "discovery_cache", "documents", "drive.v3.json")


def drive_service(emu):
    with open(DOC_PATH) as f:
        doc = json.load(f)
    doc["rootUrl"] = emu.url + "/"
    doc["baseUrl"] = emu.url + "/drive/v3/"
    # google-auth's from_authorized_user_file always replaces token_uri with Google's (a security fix in
    # google-auth 2.x), so take the file's own token_uri explicitly; test_google_auth.py covers the
    # unchanged google.auth.default() path through the TLS proxy.
    with open(emu.credentials_path) as f:
        info = json.load(f)
    creds = Credentials(
        None,
        refresh_token=info["refresh_token"],
        token_uri=info["token_uri"],
        client_id=info["client_id"],
        client_secret=info["client_secret"],
    )
    return build_from_document(doc, credentials=creds)


def reason(err: HttpError) -> str:
    return json.loads(err.content)["error"]["errors"][0]["reason"]


@pytest.fixture
def drive(emulator):
    return drive_service(emulator)


def test_folders_uploads_list_download_update(emulator, drive, tmp_path):
    folder = drive.files().create(body={"name": "ckpt", "mimeType": "application/vnd.google-apps.folder"}, fields="id").execute()
    sub = drive.files().create(
        body={"name": "sub/with slash", "mimeType": "application/vnd.google-apps.folder", "parents": [folder["id"]]},
        fields="id,parents",
    ).execute()
    assert sub["parents"] == [folder["id"]]

    small = tmp_path / "small.bin"
    small.write_bytes(b"x" * 1000)
    big_data = os.urandom(1 * 1024 * KIB + 123)
    big = tmp_path / "big.bin"
    big.write_bytes(big_data)

    # multipart
    m = drive.files().create(
        body={"name": "small.bin", "parents": [folder["id"]]},
        media_body=MediaFileUpload(str(small), mimetype="application/octet-stream", resumable=False),
        fields="id,size,md5Checksum",
    ).execute()
    assert m["size"] == "1000" and m["md5Checksum"] == hashlib.md5(b"x" * 1000).hexdigest()

    # resumable in 256 KiB chunks
    req = drive.files().create(
        body={"name": "big.bin", "parents": [folder["id"]]},
        media_body=MediaFileUpload(str(big), mimetype="application/octet-stream", resumable=True, chunksize=256 * KIB),
        fields="id,size,md5Checksum,sha256Checksum,headRevisionId",
    )
    resp = None
    progress = []
    while resp is None:
        status, resp = req.next_chunk()
        if status:
            progress.append(status.resumable_progress)
    assert progress == [256 * KIB * i for i in range(1, 5)]
    assert resp["md5Checksum"] == hashlib.md5(big_data).hexdigest()
    assert resp["sha256Checksum"] == hashlib.sha256(big_data).hexdigest()
    assert emulator.content(resp["id"]) == big_data

    # empty file, resumable
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    e = drive.files().create(
        body={"name": "empty.bin", "parents": [folder["id"]]},
        media_body=MediaFileUpload(str(empty), mimetype="application/octet-stream", resumable=True),
        fields="id,size,md5Checksum",
    ).execute()
    assert e["size"] == "0" and e["md5Checksum"] == hashlib.md5(b"").hexdigest()

    # list with paging and fields
    for i in range(7):
        emulator.add_file(f"f{i}.txt", b"%d" % i, parent_id=folder["id"])
    seen, token, pages = [], None, 0
    while True:
        r = drive.files().list(
            q=f"'{folder['id']}' in parents and trashed=false",
            pageSize=3,
            pageToken=token,
            fields="nextPageToken,files(id,name,mimeType,size,md5Checksum,parents,modifiedTime)",
        ).execute()
        pages += 1
        for f in r["files"]:
            assert set(f) <= {"id", "name", "mimeType", "size", "md5Checksum", "parents", "modifiedTime"}
        seen += [f["name"] for f in r["files"]]
        token = r.get("nextPageToken")
        if not token:
            break
    assert pages == 4
    assert sorted(seen) == sorted(["sub/with slash", "small.bin", "big.bin", "empty.bin"] + [f"f{i}.txt" for i in range(7)])

    # download: larger than the chunk size, and an empty file
    buf = io.BytesIO()
    dl = MediaIoBaseDownload(buf, drive.files().get_media(fileId=resp["id"]), chunksize=300 * KIB)
    done, chunks = False, 0
    while not done:
        _, done = dl.next_chunk()
        chunks += 1
    assert buf.getvalue() == big_data and chunks == 4
    buf = io.BytesIO()
    dl = MediaIoBaseDownload(buf, drive.files().get_media(fileId=e["id"]))
    done = False
    while not done:
        _, done = dl.next_chunk()
    assert buf.getvalue() == b""

    # update content: same id, new md5, new revision, version up
    before = drive.files().get(fileId=m["id"], fields="md5Checksum,headRevisionId,version").execute()
    upd = drive.files().update(
        fileId=m["id"],
        media_body=MediaIoBaseUpload(io.BytesIO(b"new content"), mimetype="application/octet-stream", resumable=True),
        fields="id,md5Checksum,headRevisionId,version,size",
    ).execute()
    assert upd["id"] == m["id"]
    assert upd["md5Checksum"] == hashlib.md5(b"new content").hexdigest() != before["md5Checksum"]
    assert upd["headRevisionId"] != before["headRevisionId"]
    assert int(upd["version"]) > int(before["version"])
    assert drive.files().get_media(fileId=m["id"]).execute() == b"new content"


def test_export_doc_and_not_downloadable(emulator, drive):
    doc = emulator.add_doc("notes", text="hello\nworld")
    assert drive.files().export(fileId=doc, mimeType="text/plain").execute() == b"hello\nworld"
    docx = drive.files().export(
        fileId=doc, mimeType="application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    ).execute()
    assert "word/document.xml" in zipfile.ZipFile(io.BytesIO(docx)).namelist()
    meta = drive.files().get(fileId=doc, fields="exportLinks,mimeType").execute()
    assert "text/plain" in meta["exportLinks"]
    with pytest.raises(HttpError) as ei:
        drive.files().get_media(fileId=doc).execute()
    assert ei.value.resp.status == 403 and reason(ei.value) == "fileNotDownloadable"


def test_errors_not_found_and_rate_limit(emulator, drive):
    with pytest.raises(HttpError) as ei:
        drive.files().get(fileId="nope").execute()
    assert ei.value.resp.status == 404 and reason(ei.value) == "notFound"

    emulator.configure(requests_per_s=0.001, request_burst=2, rate_limit_429_share=0.0)
    drive.files().get(fileId="root").execute()
    drive.files().get(fileId="root").execute()
    with pytest.raises(HttpError) as ei:
        drive.files().get(fileId="root").execute(num_retries=0)
    assert ei.value.resp.status == 403 and reason(ei.value) == "userRateLimitExceeded"
    emulator.configure(rate_limit_429_share=1.0)
    with pytest.raises(HttpError) as ei:
        drive.files().get(fileId="root").execute(num_retries=0)
    assert ei.value.resp.status == 429 and reason(ei.value) == "rateLimitExceeded"


def test_batch(emulator, drive):
    a = emulator.add_file("a", b"1")
    results = {}

    def cb(rid, resp, exc):
        results[rid] = (resp, exc)

    batch = drive.new_batch_http_request(callback=cb)
    batch.add(drive.files().get(fileId=a, fields="id,name"), request_id="one")
    batch.add(drive.files().get(fileId="missing"), request_id="two")
    batch.execute()
    assert results["one"][0] == {"id": a, "name": "a"}
    assert results["two"][1].resp.status == 404


def test_multipart_uploads_of_random_bodies_are_byte_exact(emulator, drive):
    """The client's own multipart/related bodies (resumable=False; its email generator frames them with bare
    LF) over random data: each one is stored byte for byte. Bodies ending in CR used to lose that byte."""
    rng = random.Random(20240601)
    bodies = [b"", b"\r", b"\n", b"\r\n", b"\n\r", b"abc\r", b"abc\r\r", b"--\r"]
    bodies += [rng.randbytes(rng.randrange(1, 2048)) + bytes([last]) for last in range(256)]  # every last byte
    bodies += [rng.randbytes(rng.randrange(0, 4096)) for _ in range(200)]
    fid = None
    for i, data in enumerate(bodies):
        if i % 2:
            media = MediaInMemoryUpload(data, mimetype="application/octet-stream", resumable=False)
        else:
            media = MediaIoBaseUpload(io.BytesIO(data), mimetype="application/octet-stream", resumable=False)
        r = drive.files().create(body={"name": f"r{i}.bin"}, media_body=media, fields="id,size,md5Checksum").execute()
        assert (r["size"], r["md5Checksum"]) == (str(len(data)), hashlib.md5(data).hexdigest()), (i, data[-4:])
        assert emulator.content(r["id"]) == data
        fid = r["id"]
    # a new revision of the same file through files.update's multipart path
    for data in (b"v2\r", rng.randbytes(999) + b"\r", b"\r\n"):
        r = drive.files().update(
            fileId=fid, body={}, media_body=MediaInMemoryUpload(data, mimetype="application/octet-stream"),
            fields="id,size,md5Checksum",
        ).execute()
        assert (r["id"], r["size"], r["md5Checksum"]) == (fid, str(len(data)), hashlib.md5(data).hexdigest())
        assert emulator.content(fid) == data



def test_revisions_copy_and_unimplemented_methods(emulator, drive):
    """revisions.list/get and files.copy as the discovery-built client calls them; an unimplemented method
    is an HttpError 501 notImplemented, not a 404 that would read as a missing file."""
    f = drive.files().create(
        body={"name": "ckpt.bin"}, media_body=MediaInMemoryUpload(b"v1", mimetype="application/octet-stream"),
        fields="id,headRevisionId",
    ).execute()
    g = drive.files().update(
        fileId=f["id"], media_body=MediaInMemoryUpload(b"v2!", mimetype="application/octet-stream"),
        fields="headRevisionId",
    ).execute()
    revs = drive.revisions().list(fileId=f["id"], fields="revisions(id,size,md5Checksum)").execute()["revisions"]
    assert [r["id"] for r in revs] == [f["headRevisionId"], g["headRevisionId"]]
    assert [r["size"] for r in revs] == ["2", "3"] and revs[0]["md5Checksum"] == hashlib.md5(b"v1").hexdigest()
    assert drive.revisions().get(fileId=f["id"], revisionId=g["headRevisionId"], fields="id").execute() == {
        "id": g["headRevisionId"]}
    assert drive.revisions().get_media(fileId=f["id"], revisionId=g["headRevisionId"]).execute() == b"v2!"
    assert drive.files().copy(fileId=f["id"], body={}, fields="name").execute() == {"name": "Copy of ckpt.bin"}
    with pytest.raises(HttpError) as e:
        drive.comments().list(fileId=f["id"], fields="comments(id)").execute()
    assert e.value.resp.status == 501 and reason(e.value) == "notImplemented"
