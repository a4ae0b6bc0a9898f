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
import zipfile

import pytest

googleapiclient = pytest.importorskip("googleapiclient")
from google.oauth2.credentials import Credentials  # noqa: E402
from googleapiclient.discovery import build_from_document  # noqa: E402
from googleapiclient.errors import HttpError  # noqa: E402
from googleapiclient.http import MediaFileUpload, MediaIoBaseDownload, MediaIoBaseUpload  # noqa: E402

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
