"""Several accounts, sharing, shared drives and resource keys, over real HTTP (httpx): who sees what, who may do
what, and Drive's errors for the rest. Two (or three) accounts in one emulator; every request carries the
token of the account it is served as."""

from __future__ import annotations

import hashlib

import httpx
import pytest

FOLDER = "application/vnd.google-apps.folder"
SHORTCUT = "application/vnd.google-apps.shortcut"
ME = "emulated.user@example.com"     # the default account (the emulator's credentials file)
BOB = "bob@example.com"
CAROL = "carol@example.com"
ALL = {"supportsAllDrives": "true"}
ALL_ITEMS = {"supportsAllDrives": "true", "includeItemsFromAllDrives": "true"}


def err(r: httpx.Response) -> tuple[int, str]:
    body = r.json()["error"]
    assert body["code"] == r.status_code and body["errors"][0]["message"]
    return r.status_code, body["errors"][0]["reason"]


@pytest.fixture
def emu(emulator):
    emulator.add_account(BOB)
    emulator.add_account(CAROL)
    return emulator


@pytest.fixture
def client(emu):
    made = []

    def make(account: str | None = None) -> httpx.Client:
        c = httpx.Client(base_url=emu.url, headers=emu.auth_headers(account=account), timeout=30, trust_env=False)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def names(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return sorted(f["name"] for f in r.json()["files"])


# ----------------------------------------------------------------- accounts


def test_accounts_endpoint_answers_credentials_that_serve_that_account(emu):
    with httpx.Client(base_url=emu.url, timeout=30, trust_env=False) as plain:
        r = plain.post("/_emulator/accounts", json={"email": "dora@example.com"})
        assert r.status_code == 200, r.text
        creds = r.json()
        assert set(creds) == {"type", "client_id", "client_secret", "refresh_token", "token_uri"}
        assert creds["type"] == "authorized_user" and creds["token_uri"].endswith("/token")
        tok = plain.post("/token", data={"grant_type": "refresh_token", "refresh_token": creds["refresh_token"],
                                         "client_id": creds["client_id"], "client_secret": creds["client_secret"]})
        token = tok.json()["access_token"]
        about = plain.get("/drive/v3/about", params={"fields": "user"},
                          headers={"Authorization": f"Bearer {token}"}).json()
        assert about["user"]["emailAddress"] == "dora@example.com" and about["user"]["me"] is True
        root = plain.get("/drive/v3/files/root", params={"fields": "id,name,ownedByMe"},
                         headers={"Authorization": f"Bearer {token}"}).json()
        assert root["id"] == emu.account_root_id("dora@example.com") != emu.root_id
        assert plain.post("/_emulator/accounts", json={"email": "not an email"}).status_code == 400
        listed = {a["email"] for a in plain.get("/_emulator/accounts").json()["accounts"]}
        assert {ME, BOB, CAROL, "dora@example.com"} <= listed


def test_each_account_sees_only_its_own_drive(emu, client):
    mine = emu.add_file("mine.txt", b"a")
    bobs = emu.add_file("bobs.txt", b"b", owner=BOB)
    me, bob = client(), client(BOB)
    assert names(me.get("/drive/v3/files", params={"q": "'root' in parents"})) == ["mine.txt"]
    assert names(bob.get("/drive/v3/files", params={"q": "'root' in parents"})) == ["bobs.txt"]
    assert names(me.get("/drive/v3/files")) == ["mine.txt"]
    for path, params in [(f"/drive/v3/files/{bobs}", {}), (f"/drive/v3/files/{bobs}", {"alt": "media"}),
                         (f"/drive/v3/files/{bobs}/revisions", {}), (f"/drive/v3/files/{bobs}/permissions", {})]:
        r = me.get(path, params=params)
        assert err(r) == (404, "notFound") and r.json()["error"]["message"] == f"File not found: {bobs}."
    assert err(me.patch(f"/drive/v3/files/{bobs}", json={"name": "x"})) == (404, "notFound")
    assert err(me.delete(f"/drive/v3/files/{bobs}")) == (404, "notFound")
    assert err(me.post(f"/drive/v3/files/{bobs}/copy", json={})) == (404, "notFound")
    assert err(me.post("/drive/v3/files", json={"name": "n", "parents": [emu.account_root_id(BOB)]})) == (404, "notFound")
    assert me.get(f"/drive/v3/files/{mine}", params={"fields": "ownedByMe,owners"}).json() == {
        "ownedByMe": True, "owners": [emu.file(mine)["owners"][0]]}
    # usage counts what each account owns
    assert me.get("/drive/v3/about", params={"fields": "storageQuota/usage"}).json()["storageQuota"]["usage"] == "1"


# ----------------------------------------------------------------- sharing and inheritance


def test_sharing_a_folder_reaches_everything_below_it_and_revoking_ends_it(emu, client):
    course = emu.add_folder("course", owner=BOB)
    week = emu.add_folder("week1", course, owner=BOB)
    notes = emu.add_file("notes.txt", b"read me", parent_id=week, owner=BOB)
    me, bob = client(), client(BOB)
    assert err(me.get(f"/drive/v3/files/{notes}")) == (404, "notFound")

    p = bob.post(f"/drive/v3/files/{course}/permissions", json={"type": "user", "role": "reader", "emailAddress": ME},
                 params={"fields": "id,type,role,emailAddress"})
    assert p.status_code == 200, p.text
    perm = p.json()
    assert perm == {"id": emu.permission_id(ME), "type": "user", "role": "reader", "emailAddress": ME}

    got = me.get(f"/drive/v3/files/{notes}", params={"fields": "id,parents,ownedByMe,owners,shared,capabilities"}).json()
    assert got["parents"] == [week] and got["ownedByMe"] is False and got["shared"] is True
    assert got["owners"][0]["emailAddress"] == BOB and got["owners"][0]["me"] is False
    assert me.get(f"/drive/v3/files/{notes}", params={"alt": "media"}).content == b"read me"
    # sharedWithMe lists the shared item itself (not what is below it); its parent (Bob's root) is not named
    r = me.get("/drive/v3/files", params={"q": "sharedWithMe = true and trashed = false",
                                          "fields": "files(id,name,parents,sharedWithMeTime,sharingUser)"})
    (item,) = r.json()["files"]
    assert item["id"] == course and "parents" not in item and item["sharedWithMeTime"].endswith("Z")
    assert item["sharingUser"]["emailAddress"] == BOB
    assert names(me.get("/drive/v3/files", params={"q": f"'{week}' in parents"})) == ["notes.txt"]
    assert names(me.get("/drive/v3/files", params={"q": "'root' in parents"})) == []
    assert names(me.get("/drive/v3/files", params={"q": f"'{BOB}' in owners"})) == ["course", "notes.txt", "week1"]
    assert names(me.get("/drive/v3/files", params={"q": f"'{ME}' in readers and not '{ME}' in owners"})) == ["course"]
    assert names(bob.get("/drive/v3/files", params={"q": "sharedWithMe = true"})) == []
    assert err(me.get("/drive/v3/files", params={"q": "sharedWithMe"})) == (400, "invalid")

    # the owner reads the ACL; a reader may not
    perms = bob.get(f"/drive/v3/files/{notes}/permissions", params={"fields": "permissions(id,role,emailAddress)"}).json()
    assert {(x["emailAddress"], x["role"]) for x in perms["permissions"]} == {(BOB, "owner"), (ME, "reader")}
    assert err(me.get(f"/drive/v3/files/{course}/permissions")) == (403, "insufficientFilePermissions")
    # an inherited permission is removed where it was given; the owner cannot be removed
    assert err(bob.delete(f"/drive/v3/files/{notes}/permissions/{perm['id']}"))[0] == 403
    assert err(bob.delete(f"/drive/v3/files/{course}/permissions/{emu.permission_id(BOB)}")) == (403, "cannotRemoveOwner")
    assert err(bob.delete(f"/drive/v3/files/{course}/permissions/nope")) == (404, "notFound")

    assert bob.delete(f"/drive/v3/files/{course}/permissions/{perm['id']}").status_code == 204
    assert err(me.get(f"/drive/v3/files/{notes}")) == (404, "notFound")
    assert err(me.get(f"/drive/v3/files/{course}")) == (404, "notFound")
    assert names(me.get("/drive/v3/files", params={"q": "sharedWithMe = true"})) == []
    assert names(me.get("/drive/v3/files", params={"q": f"'{week}' in parents"})) == []


def test_readers_cannot_write_writers_can_and_only_owners_trash(emu, client):
    folder = emu.add_folder("lab", owner=BOB)
    data = emu.add_file("data.bin", b"12345", parent_id=folder, owner=BOB)
    emu.share(folder, ME, "reader")
    emu.share(folder, CAROL, "writer")
    me, carol, bob = client(), client(CAROL), client(BOB)
    denied = (403, "insufficientFilePermissions")
    message = "The user does not have sufficient permissions for this file."
    r = me.post("/drive/v3/files", json={"name": "mine", "parents": [folder]})
    assert err(r) == denied and r.json()["error"]["message"] == message
    assert err(me.patch(f"/drive/v3/files/{data}", json={"name": "renamed"})) == denied
    assert err(me.patch(f"/upload/drive/v3/files/{data}", params={"uploadType": "media"}, content=b"new")) == denied
    assert err(me.post("/upload/drive/v3/files", params={"uploadType": "resumable"},
                       json={"name": "r.bin", "parents": [folder]})) == denied
    assert err(me.patch(f"/drive/v3/files/{data}", json={"trashed": True})) == denied
    assert err(me.delete(f"/drive/v3/files/{data}")) == denied
    assert err(me.get(f"/drive/v3/files/{data}/revisions")) == denied
    assert err(me.post(f"/drive/v3/files/{data}/permissions",
                       json={"type": "user", "role": "reader", "emailAddress": CAROL})) == denied
    caps = me.get(f"/drive/v3/files/{data}", params={"fields": "capabilities"}).json()["capabilities"]
    assert (caps["canEdit"], caps["canDownload"], caps["canCopy"], caps["canShare"], caps["canTrash"],
            caps["canDelete"]) == (False, True, True, False, False, False)
    # a reader copies into its own My Drive: the copy is its own
    cp = me.post(f"/drive/v3/files/{data}/copy", json={}, params={"fields": "id,parents,ownedByMe,name"}).json()
    assert cp["parents"] == [emu.account_root_id(ME)] and cp["ownedByMe"] is True and cp["name"] == "Copy of data.bin"

    # a writer edits and adds; what it adds is its own, and the folder's owner sees it
    assert carol.patch(f"/drive/v3/files/{data}", json={"description": "edited"}).status_code == 200
    up = carol.post("/upload/drive/v3/files", params={"uploadType": "multipart", "fields": "id,owners,parents"},
                    files=None, content=_multipart({"name": "added.bin", "parents": [folder]}, b"xyz"),
                    headers={"Content-Type": "multipart/related; boundary=BND"})
    assert up.status_code == 200, up.text
    assert up.json()["owners"][0]["emailAddress"] == CAROL and up.json()["parents"] == [folder]
    assert names(bob.get("/drive/v3/files", params={"q": f"'{folder}' in parents"})) == ["added.bin", "data.bin"]
    assert names(me.get("/drive/v3/files", params={"q": f"'{folder}' in parents"})) == ["added.bin", "data.bin"]
    caps = carol.get(f"/drive/v3/files/{data}", params={"fields": "capabilities"}).json()["capabilities"]
    assert (caps["canEdit"], caps["canShare"], caps["canTrash"], caps["canDelete"]) == (True, True, False, False)
    assert err(carol.patch(f"/drive/v3/files/{data}", json={"trashed": True})) == denied
    assert err(carol.delete(f"/drive/v3/files/{data}")) == denied
    assert err(carol.post(f"/drive/v3/files/{data}/permissions", json={"type": "user", "role": "owner",
                                                                      "emailAddress": ME}))[0] == 501
    assert bob.patch(f"/drive/v3/files/{data}", json={"trashed": True}).status_code == 200
    # sharing with an address that has no account is refused as Drive refuses it without an invitation
    assert err(bob.post(f"/drive/v3/files/{folder}/permissions",
                        json={"type": "user", "role": "reader", "emailAddress": "nobody@example.com"})) == (
        400, "invalidSharingRequest")


def _multipart(meta: dict, data: bytes) -> bytes:
    import json

    return (b"--BND\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n" + json.dumps(meta).encode()
            + b"\r\n--BND\r\nContent-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--BND--\r\n")


def test_copy_requires_writer_permission_stops_readers_downloading(emu, client):
    f = emu.add_file("exam.pdf", b"%PDF answers", owner=BOB)
    emu.share(f, ME, "reader")
    emu.share(f, CAROL, "writer")
    me, carol, bob = client(), client(CAROL), client(BOB)
    assert err(carol.patch(f"/drive/v3/files/{f}", json={"copyRequiresWriterPermission": True})) == (
        403, "insufficientFilePermissions")
    r = bob.patch(f"/drive/v3/files/{f}", json={"copyRequiresWriterPermission": True},
                  params={"fields": "copyRequiresWriterPermission,viewersCanCopyContent"})
    assert r.json() == {"copyRequiresWriterPermission": True, "viewersCanCopyContent": False}
    got = me.get(f"/drive/v3/files/{f}", params={"fields": "copyRequiresWriterPermission,capabilities"}).json()
    assert got["copyRequiresWriterPermission"] is True
    assert (got["capabilities"]["canDownload"], got["capabilities"]["canCopy"]) == (False, False)
    assert err(me.get(f"/drive/v3/files/{f}", params={"alt": "media"})) == (403, "cannotDownloadFile")
    assert err(me.post(f"/drive/v3/files/{f}/copy", json={}))[0] == 403
    assert carol.get(f"/drive/v3/files/{f}", params={"alt": "media"}).content == b"%PDF answers"
    assert bob.get(f"/drive/v3/files/{f}", params={"alt": "media"}).content == b"%PDF answers"
    # settable at creation too
    made = bob.post("/drive/v3/files", json={"name": "n", "copyRequiresWriterPermission": True},
                    params={"fields": "id,copyRequiresWriterPermission"}).json()
    assert made["copyRequiresWriterPermission"] is True


def test_changes_and_batch_are_served_per_account(emu, client):
    me, bob = client(), client(BOB)
    start = me.get("/drive/v3/changes/startPageToken").json()["startPageToken"]
    bobs = emu.add_file("secret.txt", b"s", owner=BOB)
    mine = emu.add_file("mine.txt", b"m")
    emu.delete(bobs)
    ids = [c["fileId"] for c in me.get("/drive/v3/changes", params={"pageToken": start}).json()["changes"]]
    assert ids == [mine]
    ids = [c["fileId"] for c in bob.get("/drive/v3/changes", params={"pageToken": start}).json()["changes"]]
    assert ids == [bobs]
    body = (f"--b\r\nContent-Type: application/http\r\nContent-ID: <1>\r\n\r\nGET /drive/v3/files/{mine}\r\n\r\n"
            "--b--\r\n")
    r = bob.post("/batch/drive/v3", content=body.encode(), headers={"Content-Type": "multipart/mixed; boundary=b"})
    assert "HTTP/1.1 404" in r.text


# ----------------------------------------------------------------- shared drives


def test_shared_drives_and_their_parameter_errors(emu, client):
    me, bob, carol = client(), client(BOB), client(CAROL)
    assert err(bob.post("/drive/v3/drives", json={"name": "Lab"})) == (400, "required")
    d = bob.post("/drive/v3/drives", params={"requestId": "req-1", "fields": "id,name,capabilities"},
                 json={"name": "Lab"}).json()
    drive_id = d["id"]
    assert d["name"] == "Lab" and d["capabilities"]["canManageMembers"] is True
    assert err(bob.post("/drive/v3/drives", params={"requestId": "req-1"}, json={"name": "Lab"}))[0] == 409
    assert [x["id"] for x in bob.get("/drive/v3/drives").json()["drives"]] == [drive_id]
    assert me.get("/drive/v3/drives").json()["drives"] == []
    r = me.get(f"/drive/v3/drives/{drive_id}")
    assert err(r) == (404, "notFound") and r.json()["error"]["message"] == f"Shared drive not found: {drive_id}"

    # items: driveId set, no owners, parents end at the drive id; invisible without supportsAllDrives
    f = bob.post("/drive/v3/files", params={**ALL, "fields": "id,driveId,owners,parents"},
                 json={"name": "results", "mimeType": FOLDER, "parents": [drive_id]}).json()
    assert f["driveId"] == drive_id and "owners" not in f and f["parents"] == [drive_id]
    assert err(bob.post("/drive/v3/files", json={"name": "x", "parents": [drive_id]})) == (404, "notFound")
    up = bob.post("/upload/drive/v3/files", params={**ALL, "uploadType": "media", "fields": "id"}, content=b"r1")
    assert up.status_code == 200  # no parent: the uploader's My Drive
    run = emu.add_file("run.log", b"epoch 1", parent_id=f["id"])
    assert err(bob.get(f"/drive/v3/files/{run}")) == (404, "notFound")
    # media is served without it (rclone downloads shared-drive files with a bare ?alt=media, as Drive allows)
    assert bob.get(f"/drive/v3/files/{run}", params={"alt": "media"}).content == b"epoch 1"
    assert err(bob.patch(f"/drive/v3/files/{run}", json={"name": "y"})) == (404, "notFound")
    assert bob.get(f"/drive/v3/files/{run}", params={**ALL, "alt": "media"}).content == b"epoch 1"
    root = bob.get(f"/drive/v3/files/{drive_id}", params={**ALL, "fields": "id,name,mimeType,driveId"}).json()
    assert root == {"id": drive_id, "name": "Lab", "mimeType": FOLDER, "driveId": drive_id}

    lst = {"corpora": "drive", "driveId": drive_id, **ALL_ITEMS}
    assert names(bob.get("/drive/v3/files", params=lst)) == ["results", "run.log"]
    assert err(bob.get("/drive/v3/files", params={"corpora": "drive", **ALL_ITEMS})) == (
        400, "teamDriveIdRequiresTeamDriveCorpora")
    assert err(bob.get("/drive/v3/files", params={"driveId": drive_id, **ALL_ITEMS}))[0] == 400
    assert err(bob.get("/drive/v3/files", params={"corpora": "drive", "driveId": drive_id, **ALL}))[0] == 403
    assert err(bob.get("/drive/v3/files", params={**lst, "driveId": "0AnoSuchDriveUk9PVA"})) == (404, "notFound")
    # without both flags shared-drive items are hidden from listings
    assert names(bob.get("/drive/v3/files", params={"q": f"'{f['id']}' in parents"})) == []
    assert names(bob.get("/drive/v3/files", params={"q": f"'{f['id']}' in parents", **ALL})) == []
    assert names(bob.get("/drive/v3/files", params={"q": f"'{f['id']}' in parents", **ALL_ITEMS})) == ["run.log"]
    assert names(bob.get("/drive/v3/files", params={"corpora": "allDrives", **ALL_ITEMS})) == [
        "Untitled", "results", "run.log"]
    assert err(bob.get("/drive/v3/files", params={"corpora": "allDrives", **ALL}))[0] == 403

    # members come in through permissions.create on the drive id (supportsAllDrives), organizers only
    add = {"type": "user", "role": "reader", "emailAddress": ME}
    assert err(bob.post(f"/drive/v3/files/{drive_id}/permissions", json=add)) == (404, "notFound")
    assert bob.post(f"/drive/v3/files/{drive_id}/permissions", params=ALL, json=add).status_code == 200
    assert [x["name"] for x in me.get("/drive/v3/drives").json()["drives"]] == ["Lab"]
    assert names(me.get("/drive/v3/files", params=lst)) == ["results", "run.log"]
    assert names(me.get("/drive/v3/files", params={"q": "sharedWithMe = true", **ALL_ITEMS})) == []
    denied = (403, "insufficientFilePermissions")
    assert err(me.post("/drive/v3/files", params=ALL, json={"name": "n", "parents": [drive_id]})) == denied
    assert err(me.post(f"/drive/v3/files/{drive_id}/permissions", params=ALL,
                       json={"type": "user", "role": "reader", "emailAddress": CAROL})) == denied
    assert err(bob.post(f"/drive/v3/files/{drive_id}/permissions", params=ALL,
                        json={"type": "anyone", "role": "reader"})) == (400, "invalidSharingRequest")
    assert bob.post(f"/drive/v3/files/{drive_id}/permissions", params=ALL,
                    json={"type": "user", "role": "writer", "emailAddress": CAROL}).status_code == 200
    made = carol.post("/drive/v3/files", params={**ALL, "fields": "id,driveId"},
                      json={"name": "by-carol", "parents": [f["id"]]}).json()
    assert made["driveId"] == drive_id
    caps = carol.get(f"/drive/v3/files/{run}", params={**ALL, "fields": "capabilities"}).json()["capabilities"]
    assert (caps["canEdit"], caps["canTrash"], caps["canDelete"]) == (True, False, False)
    assert err(carol.delete(f"/drive/v3/files/{run}", params=ALL)) == denied
    members = bob.get(f"/drive/v3/files/{drive_id}/permissions", params={**ALL, "fields": "permissions(emailAddress,role)"})
    assert {(m["emailAddress"], m["role"]) for m in members.json()["permissions"]} == {
        (BOB, "organizer"), (ME, "reader"), (CAROL, "writer")}

    detail = bob.get(f"/drive/v3/files/{run}/permissions", params={**ALL, "fields": "permissions(role,permissionDetails)"})
    assert {(d["permissionType"], d["inherited"], d.get("inheritedFrom"))
            for p in detail.json()["permissions"] for d in p["permissionDetails"]} == {("member", True, drive_id)}
    bob_pid = emu.permission_id(BOB)
    assert err(bob.delete(f"/drive/v3/files/{drive_id}/permissions/{bob_pid}", params=ALL)) == (
        403, "cannotRemoveLastOrganizer")

    # deleting: organizers only, and only an empty drive
    assert err(carol.delete(f"/drive/v3/drives/{drive_id}")) == denied
    assert err(bob.delete(f"/drive/v3/drives/{drive_id}"))[0] == 403
    assert bob.delete(f"/drive/v3/files/{f['id']}", params=ALL).status_code == 204
    assert bob.delete(f"/drive/v3/drives/{drive_id}").status_code == 204
    assert err(bob.get(f"/drive/v3/drives/{drive_id}")) == (404, "notFound")


# ----------------------------------------------------------------- links and resource keys


def test_link_shared_items_need_their_resource_key_and_never_show_in_search(emu, client):
    folder = emu.add_folder("public data", owner=BOB)
    inner = emu.add_file("inner.csv", b"a,b\n", parent_id=folder, owner=BOB)
    emu.share(folder, role="reader")            # anyone with the link
    me = client()
    # no key on it yet: the id is enough; found by listing its folder, never by search
    assert me.get(f"/drive/v3/files/{folder}").status_code == 200
    assert names(me.get("/drive/v3/files", params={"q": "name = 'inner.csv'"})) == []
    assert names(me.get("/drive/v3/files", params={"q": "sharedWithMe = true"})) == []
    key = emu.set_resource_key(folder)
    r = me.get(f"/drive/v3/files/{folder}")
    assert err(r) == (404, "notFound")
    assert names(me.get("/drive/v3/files", params={"q": f"'{folder}' in parents"})) == []
    hdr = {"X-Goog-Drive-Resource-Keys": f"{folder}/{key}"}
    got = me.get(f"/drive/v3/files/{folder}", headers=hdr, params={"fields": "id,resourceKey"}).json()
    assert got == {"id": folder, "resourceKey": key}
    assert names(me.get("/drive/v3/files", params={"q": f"'{folder}' in parents"}, headers=hdr)) == ["inner.csv"]
    assert me.get(f"/drive/v3/files/{inner}", params={"alt": "media"}).content == b"a,b\n"
    wrong = {"X-Goog-Drive-Resource-Keys": f"other/x, {folder}/0-wrong"}
    assert err(me.get(f"/drive/v3/files/{folder}", headers=wrong)) == (404, "notFound")
    # the owner, and anyone given direct access, need no key
    assert client(BOB).get(f"/drive/v3/files/{folder}").status_code == 200
    emu.share(folder, CAROL, "reader")
    assert client(CAROL).get(f"/drive/v3/files/{folder}").status_code == 200
    # a link reader is a reader
    assert err(me.patch(f"/drive/v3/files/{inner}", json={"name": "x"})) == (403, "insufficientFilePermissions")
    # through the admin endpoint too
    with httpx.Client(base_url=emu.url, trust_env=False) as plain:
        k2 = plain.post("/_emulator/resource-key", json={"fileId": inner}).json()["resourceKey"]
    assert err(me.get(f"/drive/v3/files/{inner}", headers=hdr)) == (404, "notFound")
    both = {"X-Goog-Drive-Resource-Keys": f"{folder}/{key},{inner}/{k2}"}
    assert me.get(f"/drive/v3/files/{inner}", headers=both, params={"alt": "media"}).content == b"a,b\n"


def test_shortcuts_to_shared_items_resolve_under_the_readers_own_visibility(emu, client):
    shared = emu.add_file("paper.pdf", b"%PDF", owner=BOB)
    emu.share(shared, ME, "reader")
    drive_id = emu.add_drive("Lab", organizer=BOB, members={ME: "reader"})
    in_drive = emu.add_file("weights.bin", b"w" * 10, parent_id=drive_id)
    me, carol = client(), client(CAROL)
    sc = me.post("/drive/v3/files", params={"fields": "id,shortcutDetails"},
                 json={"name": "paper", "mimeType": SHORTCUT, "shortcutDetails": {"targetId": shared}}).json()
    assert sc["shortcutDetails"]["targetId"] == shared
    assert err(me.post("/drive/v3/files", json={"name": "w", "mimeType": SHORTCUT,
                                                "shortcutDetails": {"targetId": in_drive}})) == (404, "notFound")
    sc2 = me.post("/drive/v3/files", params={**ALL, "fields": "id,shortcutDetails"},
                  json={"name": "w", "mimeType": SHORTCUT, "shortcutDetails": {"targetId": in_drive}}).json()
    assert sc2["shortcutDetails"] == {"targetId": in_drive, "targetMimeType": "application/octet-stream"}
    listed = me.get("/drive/v3/files", params={"q": "'root' in parents", "fields": "files(name,shortcutDetails)"})
    assert sorted(f["name"] for f in listed.json()["files"]) == ["paper", "w"]
    assert me.get(f"/drive/v3/files/{shared}", params={"alt": "media"}).content == b"%PDF"
    assert me.get(f"/drive/v3/files/{in_drive}", params={**ALL, "alt": "media"}).content == b"w" * 10
    # someone the shortcut's owner shares it with still cannot reach a target not shared with them
    emu.share(sc["id"], CAROL, "reader")
    got = carol.get(f"/drive/v3/files/{sc['id']}", params={"fields": "shortcutDetails"}).json()
    assert got["shortcutDetails"]["targetId"] == shared
    assert err(carol.get(f"/drive/v3/files/{shared}")) == (404, "notFound")


def test_one_account_answers_stay_those_of_the_single_user_emulator(emulator):
    """No second account, drive or permission: the JSON is what it always was (no owners rewriting, no driveId)."""
    fid = emulator.add_file("a.bin", b"abc")
    with httpx.Client(base_url=emulator.url, headers=emulator.auth_headers(), trust_env=False) as c:
        before = c.get(f"/drive/v3/files/{fid}", params={"fields": "*"}).json()
    assert before == emulator.file(fid)
    assert before["md5Checksum"] == hashlib.md5(b"abc").hexdigest() and "driveId" not in before
    assert before["capabilities"]["canDelete"] is True and before["ownedByMe"] is True


def test_login_hint_signs_in_that_account_and_file_as_seen_by_an_account(emu):
    from urllib.parse import parse_qs, urlsplit

    with httpx.Client(base_url=emu.url, timeout=30, trust_env=False) as plain:
        r = plain.get("/o/oauth2/auth", params={"redirect_uri": "http://127.0.0.1:1/cb", "login_hint": BOB,
                                                "client_id": "c", "response_type": "code"})
        code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
        tok = plain.post("/token", data={"grant_type": "authorization_code", "code": code, "client_id": "c",
                                         "redirect_uri": "http://127.0.0.1:1/cb"}).json()
        about = plain.get("/drive/v3/about", params={"fields": "user/emailAddress"},
                          headers={"Authorization": f"Bearer {tok['access_token']}"}).json()
        assert about == {"user": {"emailAddress": BOB}}
    f = emu.add_file("b.txt", b"b", owner=BOB)
    assert emu.file(f, account=BOB)["ownedByMe"] is True
    with pytest.raises(KeyError):
        emu.file(f, account=ME)
    emu.share(f, ME, "commenter")
    seen = emu.file(f, account=ME)
    assert seen["ownedByMe"] is False and seen["capabilities"]["canComment"] is True
    assert seen["capabilities"]["canEdit"] is False and "parents" not in seen


def test_accounts_permissions_and_drives_survive_a_restart(tmp_path):
    from drivesync.emulator import Emulator

    with Emulator(tmp_path / "d") as e:
        creds = e.add_account(BOB)
        folder = e.add_folder("kept", owner=BOB)
        e.share(folder, ME, "reader")
        drive_id = e.add_drive("Lab", organizer=BOB)
    with Emulator(tmp_path / "d") as e, httpx.Client(base_url=e.url, timeout=30, trust_env=False) as c:
        tok = c.post("/token", data={"grant_type": "refresh_token", "refresh_token": creds["refresh_token"],
                                     "client_id": creds["client_id"], "client_secret": creds["client_secret"]})
        bob = {"Authorization": f"Bearer {tok.json()['access_token']}"}
        assert [d["id"] for d in c.get("/drive/v3/drives", headers=bob).json()["drives"]] == [drive_id]
        me = e.auth_headers()
        assert names(c.get("/drive/v3/files", params={"q": "sharedWithMe = true"}, headers=me)) == ["kept"]


def test_the_command_line_makes_accounts_and_writes_their_credentials(tmp_path):
    import json
    import subprocess
    import sys

    creds = tmp_path / "bob.json"
    p = subprocess.Popen([sys.executable, "-m", "drivesync.emulator", "--data", str(tmp_path / "d"), "--port", "0",
                          "--account", f"{BOB}={creds}"], stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        url = line.split("listening on ", 1)[1].strip()
        info = json.loads(creds.read_text())
        assert oct(creds.stat().st_mode & 0o777) == "0o600" and info["token_uri"] == url + "/token"
        with httpx.Client(base_url=url, timeout=30, trust_env=False) as c:
            tok = c.post("/token", data={"grant_type": "refresh_token", "refresh_token": info["refresh_token"],
                                         "client_id": info["client_id"], "client_secret": info["client_secret"]})
            about = c.get("/drive/v3/about", params={"fields": "user/emailAddress"},
                          headers={"Authorization": f"Bearer {tok.json()['access_token']}"})
            assert about.json() == {"user": {"emailAddress": BOB}}
    finally:
        p.terminate()
        p.wait(30)
