"""google-api-python-client, unchanged, as two accounts of the emulator: sharing, permissions, shared drives,
copyRequiresWriterPermission, resource keys and shortcuts, through the discovery-built client over real
sockets. Each account's client is authorised with the credentials `POST /_emulator/accounts` answers (the
default account's with the emulator's own credentials file), built as test_googleapiclient.py builds it."""

from __future__ import annotations

import io
import json
import os
import uuid

import googleapiclient  # in the dev extra: a broken install fails here, never skips
import pytest
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build_from_document
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaInMemoryUpload, MediaIoBaseDownload

DOC_PATH = os.path.join(os.path.dirname(googleapiclient.__file__), "discovery_cache", "documents", "drive.v3.json")
FOLDER = "application/vnd.google-apps.folder"
SHORTCUT = "application/vnd.google-apps.shortcut"
ME = "emulated.user@example.com"
BOB = "bob@example.com"


def service_for(emu, info: dict):
    with open(DOC_PATH) as f:
        doc = json.load(f)
    doc["rootUrl"] = emu.url + "/"
    doc["baseUrl"] = emu.url + "/drive/v3/"
    creds = Credentials(None, refresh_token=info["refresh_token"], token_uri=info["token_uri"],
                        client_id=info["client_id"], client_secret=info["client_secret"])
    return build_from_document(doc, credentials=creds)


@pytest.fixture
def me(emulator):
    with open(emulator.credentials_path) as f:
        return service_for(emulator, json.load(f))


@pytest.fixture
def bob(emulator):
    import httpx

    # The HTTP contract: POST /_emulator/accounts answers the account's credentials.
    r = httpx.post(emulator.url + "/_emulator/accounts", json={"email": BOB}, trust_env=False)
    r.raise_for_status()
    return service_for(emulator, r.json())


def reason(err: HttpError) -> str:
    return json.loads(err.content)["error"]["errors"][0]["reason"]


def http_error(call) -> HttpError:
    with pytest.raises(HttpError) as e:
        call.execute()
    return e.value


def download(request) -> bytes:
    buf = io.BytesIO()
    d = MediaIoBaseDownload(buf, request)
    done = False
    while not done:
        _, done = d.next_chunk()
    return buf.getvalue()


def test_share_list_download_and_revoke(emulator, me, bob):
    folder = bob.files().create(body={"name": "course", "mimeType": FOLDER}, fields="id").execute()["id"]
    f = bob.files().create(body={"name": "slides.bin", "parents": [folder]},
                           media_body=MediaInMemoryUpload(b"week one", mimetype="application/octet-stream"),
                           fields="id").execute()["id"]
    assert http_error(me.files().get(fileId=f)).resp.status == 404

    perm = bob.permissions().create(fileId=folder, body={"type": "user", "role": "reader", "emailAddress": ME},
                                    sendNotificationEmail=False, fields="id,role,type").execute()
    assert (perm["role"], perm["type"]) == ("reader", "user")

    shared = me.files().list(q="sharedWithMe = true and trashed = false",
                             fields="files(id,name,ownedByMe,owners(emailAddress),sharedWithMeTime)").execute()["files"]
    assert [(x["id"], x["ownedByMe"], x["owners"][0]["emailAddress"]) for x in shared] == [(folder, False, BOB)]
    kids = me.files().list(q=f"'{folder}' in parents", fields="files(id,name,capabilities(canEdit,canDownload))"
                           ).execute()["files"]
    assert kids == [{"id": f, "name": "slides.bin", "capabilities": {"canEdit": False, "canDownload": True}}]
    assert download(me.files().get_media(fileId=f)) == b"week one"
    e = http_error(me.files().create(body={"name": "mine", "parents": [folder]}))
    assert e.resp.status == 403 and reason(e) == "insufficientFilePermissions"
    e = http_error(me.files().update(fileId=f, body={"name": "renamed"}))
    assert e.resp.status == 403 and reason(e) == "insufficientFilePermissions"
    assert reason(http_error(me.permissions().list(fileId=folder))) == "insufficientFilePermissions"

    acl = bob.permissions().list(fileId=folder, fields="permissions(id,role,emailAddress)").execute()["permissions"]
    assert sorted((p["emailAddress"], p["role"]) for p in acl) == [(BOB, "owner"), (ME, "reader")]
    assert bob.permissions().get(fileId=folder, permissionId=perm["id"], fields="role").execute() == {"role": "reader"}
    assert me.files().list(q=f"'{BOB}' in owners", fields="files(name)").execute()["files"] != []

    bob.permissions().delete(fileId=folder, permissionId=perm["id"]).execute()
    e = http_error(me.files().get(fileId=f))
    assert e.resp.status == 404 and reason(e) == "notFound"
    assert me.files().list(q="sharedWithMe = true", fields="files(id)").execute()["files"] == []


def test_writer_adds_and_copy_requires_writer_permission(emulator, me, bob):
    folder = bob.files().create(body={"name": "lab", "mimeType": FOLDER}, fields="id").execute()["id"]
    bob.permissions().create(fileId=folder, body={"type": "user", "role": "writer", "emailAddress": ME}).execute()
    made = me.files().create(body={"name": "run.bin", "parents": [folder]},
                             media_body=MediaInMemoryUpload(b"x" * 300_000, mimetype="application/octet-stream",
                                                            resumable=True, chunksize=256 * 1024),
                             fields="id,ownedByMe,parents").execute()
    assert made["ownedByMe"] is True and made["parents"] == [folder]
    secret = bob.files().create(body={"name": "answers.pdf", "parents": [folder], "copyRequiresWriterPermission": True},
                                media_body=MediaInMemoryUpload(b"%PDF", mimetype="application/pdf"),
                                fields="id,copyRequiresWriterPermission").execute()
    assert secret["copyRequiresWriterPermission"] is True
    assert download(me.files().get_media(fileId=secret["id"])) == b"%PDF"     # a writer still may
    bob.permissions().update(fileId=folder, permissionId=emulator.permission_id(ME), body={"role": "reader"}).execute()
    caps = me.files().get(fileId=secret["id"], fields="capabilities(canDownload,canCopy)").execute()["capabilities"]
    assert caps == {"canDownload": False, "canCopy": False}
    e = http_error(me.files().get_media(fileId=secret["id"]))
    assert e.resp.status == 403 and reason(e) == "cannotDownloadFile"


def test_shared_drive_members_and_parameter_errors(emulator, me, bob):
    d = bob.drives().create(requestId=str(uuid.uuid4()), body={"name": "Lab"}, fields="id,name").execute()
    drive_id = d["id"]
    assert [x["id"] for x in bob.drives().list().execute()["drives"]] == [drive_id]
    e = http_error(me.drives().get(driveId=drive_id))
    assert e.resp.status == 404 and reason(e) == "notFound"
    bob.permissions().create(fileId=drive_id, supportsAllDrives=True,
                             body={"type": "user", "role": "reader", "emailAddress": ME}).execute()
    f = bob.files().create(body={"name": "w.bin", "parents": [drive_id]}, supportsAllDrives=True,
                           media_body=MediaInMemoryUpload(b"weights", mimetype="application/octet-stream"),
                           fields="id,driveId,parents").execute()
    assert f["driveId"] == drive_id and f["parents"] == [drive_id]

    assert me.drives().get(driveId=drive_id, fields="name").execute() == {"name": "Lab"}
    got = me.files().list(corpora="drive", driveId=drive_id, includeItemsFromAllDrives=True, supportsAllDrives=True,
                          fields="files(id,driveId,owners)").execute()["files"]
    assert got == [{"id": f["id"], "driveId": drive_id}]
    assert download(me.files().get_media(fileId=f["id"], supportsAllDrives=True)) == b"weights"
    assert http_error(me.files().get(fileId=f["id"])).resp.status == 404
    e = http_error(me.files().list(corpora="drive", includeItemsFromAllDrives=True, supportsAllDrives=True))
    assert e.resp.status == 400 and reason(e) == "teamDriveIdRequiresTeamDriveCorpora"
    e = http_error(me.files().list(corpora="drive", driveId="0AnoSuchDriveUk9PVA", includeItemsFromAllDrives=True,
                                   supportsAllDrives=True))
    assert e.resp.status == 404 and "Shared drive not found" in json.loads(e.content)["error"]["message"]
    assert me.files().list(q=f"'{drive_id}' in parents", fields="files(id)").execute()["files"] == []
    e = http_error(me.files().create(body={"name": "x", "parents": [drive_id]}, supportsAllDrives=True))
    assert e.resp.status == 403 and reason(e) == "insufficientFilePermissions"

    bob.files().delete(fileId=f["id"], supportsAllDrives=True).execute()
    bob.drives().delete(driveId=drive_id).execute()
    assert bob.drives().list().execute()["drives"] == []


def test_resource_keys_and_shortcuts(emulator, me, bob):
    f = bob.files().create(body={"name": "data.csv"}, media_body=MediaInMemoryUpload(b"a,b\n", mimetype="text/csv"),
                           fields="id").execute()["id"]
    link = bob.permissions().create(fileId=f, body={"type": "anyone", "role": "reader"}, fields="id").execute()
    assert link == {"id": "anyoneWithLink"}
    key = emulator.set_resource_key(f)
    assert http_error(me.files().get(fileId=f)).resp.status == 404
    req = me.files().get(fileId=f, fields="id,resourceKey")
    req.headers["X-Goog-Drive-Resource-Keys"] = f"{f}/{key}"
    assert req.execute() == {"id": f, "resourceKey": key}
    media = me.files().get_media(fileId=f)
    media.headers["X-Goog-Drive-Resource-Keys"] = f"{f}/{key}"
    assert download(media) == b"a,b\n"

    # a shortcut in My Drive to an item shared with this account
    bob.permissions().create(fileId=f, body={"type": "user", "role": "reader", "emailAddress": ME}).execute()
    sc = me.files().create(body={"name": "data", "mimeType": SHORTCUT, "shortcutDetails": {"targetId": f}},
                           fields="id,shortcutDetails(targetId,targetResourceKey)").execute()
    assert sc["shortcutDetails"] == {"targetId": f, "targetResourceKey": key}
    target = me.files().get(fileId=sc["shortcutDetails"]["targetId"], fields="id,name").execute()
    assert target == {"id": f, "name": "data.csv"}
