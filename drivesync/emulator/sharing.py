"""Several accounts, permissions, shared drives and resource keys: who may see and do what.

Owns the accounts (the default one, `store.USER_EMAIL`, owns everything a single-account emulator holds;
`add_account` makes more, each with its own My Drive root), the permissions of items (users and `anyone`;
reader < commenter < writer < fileOrganizer < organizer < owner), shared drives (a drive is a parentless
folder row whose id is the drive id; members are permissions on that id), resource keys, and the per-request
`View`: the account a call is served as, the resource keys it sent (`X-Goog-Drive-Resource-Keys`) and
whether it said `supportsAllDrives`. The View answers "may this account see this item" (else Drive's 404),
"may it do that" (else 403 insufficientFilePermissions), the `capabilities` of an item for it, the SQL that
limits files.list to what it may list, and the File resource as it sees it (owners, ownedByMe, shared,
sharedWithMeTime, parents it can see, driveId).

Permissions inherit down folders (as on Drive). An item is visible to an account that owns it, holds a
user permission on it or on a folder above it, is a member of its shared drive, or (then "by link only")
when an `anyone` permission applies: such an item is never found by search, only got by id or listed as
a child of a folder the account can see, and when it has a resource key the key must come in the header.

With one account, no shared drive and no permission (`View.simple`), every answer is what the single-user
emulator always gave: the same rows, the same JSON, no extra queries.
Pure: no HTTP, no aiohttp; imports store and errors only (service.py and server.py use it).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass

from . import errors
from .store import FOLDER, USER_EMAIL, USER_NAME, Store, now_ms, rfc3339

ROLES = ("reader", "commenter", "writer", "fileOrganizer", "organizer", "owner")
RANK = {r: i for i, r in enumerate(ROLES)}
ITEM_ROLES = ("reader", "commenter", "writer")
DRIVE_ROLES = ("reader", "commenter", "writer", "fileOrganizer", "organizer")
LINK_ID = "anyoneWithLink"      # the id Drive gives an `anyone` permission with allowFileDiscovery false
PUBLIC_ID = "anyone"            # ... and with allowFileDiscovery true


@dataclass(frozen=True)
class Account:
    email: str
    name: str
    permission_id: str
    root_id: str

    @property
    def is_default(self) -> bool:
        return self.email == USER_EMAIL


@dataclass(frozen=True)
class Access:
    """How one account reaches one item."""
    role: str
    link_only: bool = False           # only through an `anyone` permission
    shared_ms: int | None = None      # a user permission on the item itself: when it was shared (sharedWithMe)
    sharer: str | None = None


OWNER = Access("owner")


def _max_role(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if RANK[a] >= RANK[b] else b


def capabilities(role: str, row: dict, in_drive: bool) -> dict:
    """`capabilities` of an item for an account with `role`, as Drive sets them (My Drive: only the owner
    trashes or deletes; shared drives: organizers delete, organizers and file organizers trash; readers and
    commenters of a copyRequiresWriterPermission item cannot download or copy)."""
    is_folder = row["mime_type"] == FOLDER
    rank = RANK[role]
    writer = rank >= RANK["writer"]
    owner = role == "owner"
    organizer = role == "organizer"
    manager = role in ("organizer", "fileOrganizer")
    downloadable = writer or not row.get("copy_requires_writer")
    trash = manager if in_drive else owner
    return {
        "canAddChildren": is_folder and writer and not row["trashed"],
        "canChangeCopyRequiresWriterPermission": manager if in_drive else owner,
        "canComment": rank >= RANK["commenter"],
        "canCopy": not is_folder and downloadable,
        "canDelete": organizer if in_drive else owner,
        "canDownload": downloadable,
        "canEdit": writer,
        "canListChildren": is_folder,
        "canModifyContent": writer,
        "canReadRevisions": not is_folder and writer,
        "canRemoveChildren": is_folder and writer,
        "canRename": writer,
        "canShare": writer,
        "canTrash": trash,
        "canUntrash": trash,
    }


def drive_capabilities(role: str) -> dict:
    organizer = role == "organizer"
    manager = role in ("organizer", "fileOrganizer")
    writer = RANK[role] >= RANK["writer"]
    return {
        "canAddChildren": writer, "canComment": RANK[role] >= RANK["commenter"], "canCopy": True,
        "canDeleteChildren": organizer, "canDeleteDrive": organizer, "canDownload": True, "canEdit": writer,
        "canListChildren": True, "canManageMembers": organizer, "canReadRevisions": writer,
        "canRename": organizer, "canRenameDrive": organizer, "canShare": writer, "canTrashChildren": manager,
        "canChangeCopyRequiresWriterPermissionRestriction": organizer,
        "canChangeDomainUsersOnlyRestriction": organizer, "canChangeDriveMembersOnlyRestriction": organizer,
        "canChangeSharingFoldersRequiresOrganizerPermissionRestriction": organizer,
        "canChangeDriveBackground": organizer, "canResetDriveRestrictions": organizer,
    }


def parse_resource_keys(header: str | None) -> dict[str, str]:
    """`X-Goog-Drive-Resource-Keys: ID/KEY[,ID2/KEY2]` -> {ID: KEY}."""
    out: dict[str, str] = {}
    for item in (header or "").split(","):
        fid, sep, key = item.strip().partition("/")
        if sep and fid and key:
            out[fid] = key
    return out


class Sharing:
    """Accounts, permissions and shared drives over the store's tables (thread-safe through the store's lock)."""

    def __init__(self, store: Store):
        self.store = store
        self._lock = threading.Lock()
        self._accounts: dict[str, Account] = {}
        self._simple: bool | None = None

    # ------------------------------------------------------------------ accounts

    def simple(self) -> bool:
        """One account, no shared drive, no permission: the single-user emulator, unchanged."""
        s = self._simple
        if s is None:
            r = self.store.execute(
                "SELECT (SELECT count(*) FROM accounts) AS a, (SELECT count(*) FROM drives) AS d, "
                "(SELECT count(*) FROM permissions) AS p")[0]
            s = self._simple = r["a"] <= 1 and r["d"] == 0 and r["p"] == 0
        return s

    def _changed(self) -> None:
        self._simple = None

    def account(self, email: str | None) -> Account | None:
        if not email:
            return None
        a = self._accounts.get(email)
        if a is None:
            rows = self.store.execute("SELECT * FROM accounts WHERE email = ?", (email,))
            if not rows:
                return None
            r = rows[0]
            a = self._accounts[email] = Account(r["email"], r["display_name"], r["permission_id"], r["root_id"])
        return a

    def default(self) -> Account:
        return self.account(USER_EMAIL)

    def accounts(self) -> list[Account]:
        return [self.account(r["email"]) for r in self.store.execute("SELECT email FROM accounts ORDER BY created_ms")]

    def add_account(self, email: str, display_name: str | None = None) -> Account:
        """A new account with its own My Drive (the existing one if the email is known)."""
        email = (email or "").strip()
        if "@" not in email or email.startswith("@") or email.endswith("@") or any(c.isspace() for c in email):
            raise ValueError(f"not an email address: {email!r}")
        with self._lock:
            a = self.account(email)
            if a is not None:
                return a
            root = self.store.new_root(owner=email)
            name = display_name or email.split("@", 1)[0].replace(".", " ").title()
            self.store.execute(
                "INSERT INTO accounts (email, display_name, permission_id, root_id, created_ms) VALUES (?, ?, ?, ?, ?)",
                (email, name, str(secrets.randbelow(10**20)), root, now_ms()))
            self._changed()
            return self.account(email)

    def user_json(self, email: str, viewer: Account) -> dict:
        a = self.account(email)
        if a is None:
            return {"kind": "drive#user", "displayName": email, "me": False, "emailAddress": email}
        return {"kind": "drive#user", "displayName": a.name, "me": a.email == viewer.email,
                "permissionId": a.permission_id, "emailAddress": a.email}

    # ------------------------------------------------------------------ permissions (rows)

    def permissions_of(self, file_id: str) -> list[dict]:
        return self.store.execute("SELECT * FROM permissions WHERE file_id = ? ORDER BY created_ms, id", (file_id,))

    def grant(self, file_id: str, *, type: str, role: str, email: str | None = None,
              allow_discovery: bool = False) -> dict:
        """Add (or change the role of) a permission; returns its row. No checks: callers check."""
        if type == "user":
            a = self.account(email)
            if a is None:
                raise KeyError(email)
            pid = a.permission_id
            email = a.email
        else:
            pid = PUBLIC_ID if allow_discovery else LINK_ID
            email = None
        t = now_ms()
        with self.store.lock:
            old = self.store.db.execute("SELECT created_ms FROM permissions WHERE file_id = ? AND id = ?",
                                        (file_id, pid)).fetchone()
            self.store.db.execute(
                "INSERT OR REPLACE INTO permissions (file_id, id, type, role, email, allow_discovery, created_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (file_id, pid, type, role, email, int(bool(allow_discovery)), old["created_ms"] if old else t))
            self.store._change(file_id, False, t)
        self._changed()
        return self.store.execute("SELECT * FROM permissions WHERE file_id = ? AND id = ?", (file_id, pid))[0]

    def revoke(self, file_id: str, permission_id: str) -> bool:
        with self.store.lock:
            n = self.store.db.execute("DELETE FROM permissions WHERE file_id = ? AND id = ?",
                                      (file_id, permission_id)).rowcount
            if n:
                self.store._change(file_id, False, now_ms())
        self._changed()
        return bool(n)

    # ------------------------------------------------------------------ shared drives (rows)

    def drive_row(self, drive_id: str) -> dict | None:
        rows = self.store.execute("SELECT * FROM drives WHERE id = ?", (drive_id,))
        return rows[0] if rows else None

    def member_role(self, account: Account, drive_id: str) -> str | None:
        rows = self.store.execute(
            "SELECT role FROM permissions WHERE file_id = ? AND type = 'user' AND email = ?", (drive_id, account.email))
        return rows[0]["role"] if rows else None

    def create_drive(self, name: str, organizer: Account, request_id: str | None = None) -> str:
        """A shared drive whose creator is its organizer. `request_id` makes creation idempotent per account:
        the same one again is 409 (as Drive answers a repeated requestId)."""
        key = f"{organizer.email}\n{request_id}" if request_id is not None else None
        if key is not None and self.store.execute("SELECT 1 FROM drives WHERE request_id = ?", (key,)):
            raise errors.DriveError(409, "duplicate", "A shared drive with this requestId already exists.",
                                    location="requestId")
        drive_id = "0A" + secrets.token_urlsafe(9)[:11] + "Uk9PVA"
        self.store.new_root(owner=organizer.email, name=name, drive_id=drive_id)
        self.store.execute("INSERT INTO drives (id, name, request_id, created_ms) VALUES (?, ?, ?, ?)",
                           (drive_id, name, key, now_ms()))
        self.grant(drive_id, type="user", role="organizer", email=organizer.email)
        return drive_id

    def delete_drive(self, drive_id: str) -> None:
        self.store.delete(drive_id)   # the root row, everything below it, their permissions (the members)
        self.store.execute("DELETE FROM drives WHERE id = ?", (drive_id,))
        self._changed()

    def drives_of(self, account: Account) -> list[dict]:
        return self.store.execute(
            "SELECT d.*, p.role FROM drives d JOIN permissions p ON p.file_id = d.id AND p.type = 'user' "
            "AND p.email = ? ORDER BY d.created_ms, d.id", (account.email,))

    def drive_resource(self, d: dict, role: str) -> dict:
        return {
            "kind": "drive#drive", "id": d["id"], "name": d["name"], "createdTime": rfc3339(d["created_ms"]),
            "hidden": bool(d["hidden"]), "colorRgb": "#4986e7", "themeId": "abacus",
            "capabilities": drive_capabilities(role),
            "restrictions": {"adminManagedRestrictions": False, "copyRequiresWriterPermission": False,
                             "domainUsersOnly": False, "driveMembersOnly": False,
                             "sharingFoldersRequiresOrganizerPermission": False},
        }

    # ------------------------------------------------------------------ resource keys

    def set_resource_key(self, file_id: str) -> str:
        """Give an item a resource key (as Drive's 2021 security update did to link-shared items)."""
        key = "0-" + secrets.token_urlsafe(16)
        with self.store.lock:
            fid = self.store.resolve(file_id)
            if self.store.db.execute("UPDATE files SET resource_key = ? WHERE id = ?", (key, fid)).rowcount != 1:
                raise errors.not_found(file_id)
        return key

    # ------------------------------------------------------------------ views

    def view(self, account: Account | None = None, *, resource_keys: str | None = None,
             supports_all_drives: bool = False) -> "View":
        return View(self, account or self.default(), parse_resource_keys(resource_keys), supports_all_drives)


class View:
    """One call as one account sees the store. See the module docstring."""

    def __init__(self, sharing: Sharing, account: Account, keys: dict[str, str], all_drives: bool):
        self.sharing = sharing
        self.store = sharing.store
        self.account = account
        self.keys = keys
        self.all_drives = all_drives
        self.simple = account.is_default and sharing.simple()
        self._perm_cache: dict[str, list[dict]] | None = None
        self._row_cache: dict[str, dict | None] | None = None

    # ------------------------------------------------------------------ plumbing

    def cached(self) -> "View":
        """Memoise rows and permissions for the rest of this (read-only) call: listings walk the same folders."""
        self._perm_cache, self._row_cache = {}, {}
        return self

    def resolve(self, file_id: str) -> str:
        return self.account.root_id if file_id == "root" else file_id

    def _row(self, fid: str) -> dict | None:
        if self._row_cache is None:
            return self.store.row(fid)
        if fid not in self._row_cache:
            self._row_cache[fid] = self.store.row(fid)
        return self._row_cache[fid]

    def _perms(self, fid: str) -> list[dict]:
        if self._perm_cache is None:
            return self.sharing.permissions_of(fid)
        if fid not in self._perm_cache:
            self._perm_cache[fid] = self.sharing.permissions_of(fid)
        return self._perm_cache[fid]

    # ------------------------------------------------------------------ access

    def access(self, row: dict | None, *, check_key: bool = True) -> Access | None:
        """How this account reaches `row`, or None (then Drive answers 404 for it)."""
        if row is None:
            return None
        if self.simple:
            return OWNER
        me = self.account.email
        in_drive = row["drive_id"] is not None
        if in_drive and not self.all_drives:
            return None     # shared-drive items do not exist for a call without supportsAllDrives
        if not in_drive and row["owner"] == me:
            return OWNER
        best = link = None
        shared_ms = sharer = None
        node, first, hops = row, True, 0
        while node is not None and hops < 1000:
            if not in_drive and not first and node["owner"] == me:
                best = _max_role(best, "writer")   # what the owner of a folder keeps over items others put in it
            for p in self._perms(node["id"]):
                if p["type"] == "user" and p["email"] == me:
                    best = _max_role(best, p["role"])
                    if first and not in_drive:
                        shared_ms, sharer = p["created_ms"], node["owner"]
                elif p["type"] == "anyone":
                    link = _max_role(link, p["role"])
            if node["parent"] is None:
                break
            node, first, hops = self._row(node["parent"]), False, hops + 1
        if best is not None:
            return Access(_max_role(best, link), False, shared_ms, sharer)
        if link is not None:
            if check_key and row["resource_key"] and self.keys.get(row["id"]) != row["resource_key"]:
                return None
            return Access(link, True)
        return None

    def get(self, file_id: str, *, check_key: bool = True) -> tuple[dict, Access]:
        """(row, access) of an item this account can reach; Drive's 404 notFound otherwise."""
        fid = self.resolve(file_id)
        row = self.store.row(fid)
        acc = self.access(row, check_key=check_key)
        if acc is None:
            raise errors.not_found(file_id)
        return row, acc

    def require(self, file_id: str) -> dict:
        return self.get(file_id)[0]

    def caps(self, row: dict, acc: Access) -> dict:
        return capabilities(acc.role, row, row["drive_id"] is not None)

    def need(self, row: dict, acc: Access, capability: str) -> None:
        """403 insufficientFilePermissions unless the account's capabilities on the item include it."""
        if not self.simple and not self.caps(row, acc)[capability]:
            raise errors.insufficient_permissions()

    def writable(self, file_id: str, capability: str = "canEdit") -> dict:
        row, acc = self.get(file_id)
        self.need(row, acc, capability)
        return row

    def container(self, parent_id: str | None) -> str:
        """The folder a new item goes in (default: this account's My Drive): 404 if invisible, 403 unless the
        account may add children to it."""
        row, acc = self.get(parent_id or "root")
        if row["mime_type"] != FOLDER:
            raise errors.DriveError(400, "invalid", "The specified parent is not a folder.", location="parents")
        self.need(row, acc, "canAddChildren")
        return row["id"]

    def owner_for_new(self) -> str:
        return self.account.email

    def downloadable(self, row: dict, acc: Access) -> None:
        if not self.simple and not self.caps(row, acc)["canDownload"]:
            raise errors.cannot_download()

    # ------------------------------------------------------------------ files.list

    def list_filter(self, *, named_parents: list[str], corpora: str, drive_id: str | None,
                    include_drives: bool) -> tuple[str, list]:
        """A WHERE fragment limiting files.list to what this account may list, plus its parameters."""
        if self.simple:
            return "1", []      # no shared drive exists, nobody else: every row is the default account's
        me = self.account.email
        visible_parents = []
        for p in named_parents:
            row = self.store.row(self.resolve(p))
            if row is not None and self.access(row) is not None:
                visible_parents.append(row["id"])
        granted = (
            "WITH RECURSIVE granted(id) AS ("
            " SELECT file_id FROM permissions WHERE type = 'user' AND email = ?"
            " UNION SELECT f.id FROM files f JOIN files p ON p.id = f.parent"
            "  WHERE p.owner = ? AND f.owner IS NOT ? AND f.drive_id IS NULL"
            " UNION SELECT f.id FROM files f JOIN granted g ON f.parent = g.id"
            ") SELECT id FROM granted")
        marks = ",".join("?" * len(visible_parents)) or "NULL"
        params: list = []
        parts = []
        if corpora != "drive":
            parts.append(f"(drive_id IS NULL AND (owner = ? OR id IN ({granted}) OR parent IN ({marks})))")
            params += [me, me, me, me, *visible_parents]
        if include_drives and self.all_drives:
            if corpora == "drive":
                parts.append("(drive_id = ?)")
                params.append(drive_id)
            else:
                members = "SELECT file_id FROM permissions WHERE type = 'user' AND email = ? AND file_id IN (SELECT id FROM drives)"
                member_clause = f"drive_id IN ({members}) OR " if corpora == "allDrives" else ""
                parts.append(f"(drive_id IS NOT NULL AND ({member_clause}id IN ({granted}) OR parent IN ({marks})))")
                if member_clause:
                    params.append(me)
                params += [me, me, me, *visible_parents]
        if not parts:
            return "0", []
        return "(" + " OR ".join(parts) + ")", params

    # ------------------------------------------------------------------ the File resource

    def resource(self, row: dict, base: str | None = None, acc: Access | None = None) -> dict:
        """The File resource as this account sees it."""
        f = self.store.resource(row, base)
        if self.simple:
            return f
        if acc is None:
            acc = self.access(row, check_key=False) or Access("reader", True)
        me = self.account
        in_drive = row["drive_id"] is not None
        f["capabilities"] = self.caps(row, acc)
        crwp = bool(row["copy_requires_writer"])
        f["copyRequiresWriterPermission"] = crwp
        f["viewersCanCopyContent"] = not crwp
        if in_drive:
            for k in ("owners", "ownedByMe", "shared", "permissionIds", "lastModifyingUser", "trashingUser",
                      "modifiedByMe", "modifiedByMeTime", "viewedByMe", "viewedByMeTime"):
                f.pop(k, None)
            f["driveId"] = f["teamDriveId"] = row["drive_id"]
        else:
            owner = self.sharing.user_json(row["owner"], me)
            mine = row["owner"] == me.email
            perms = self._perms(row["id"])
            f["owners"] = [owner]
            f["ownedByMe"] = mine
            f["lastModifyingUser"] = owner
            if "trashingUser" in f:
                f["trashingUser"] = owner
            f["modifiedByMe"] = f["viewedByMe"] = mine
            if not mine:
                f.pop("modifiedByMeTime", None)
                f.pop("viewedByMeTime", None)
            f["shared"] = bool(perms) or self._inherits_sharing(row)
            f["permissionIds"] = [owner.get("permissionId")] + [p["id"] for p in perms]
            if acc.shared_ms is not None and not mine:
                f["sharedWithMeTime"] = rfc3339(acc.shared_ms)
                if acc.sharer:
                    f["sharingUser"] = self.sharing.user_json(acc.sharer, me)
        if row["resource_key"]:
            f["resourceKey"] = row["resource_key"]
        if row["target_id"] and "shortcutDetails" in f:
            t = self.store.row(row["target_id"])
            if t is not None and t["resource_key"]:
                f["shortcutDetails"]["targetResourceKey"] = t["resource_key"]
        if row["parent"] is not None:
            prow = self._row(row["parent"])
            if self.access(prow, check_key=False) is None:
                f.pop("parents", None)   # Drive names only the parents this account can see
        return f

    def _inherits_sharing(self, row: dict) -> bool:
        node = self._row(row["parent"]) if row["parent"] else None
        hops = 0
        while node is not None and hops < 1000:
            if self._perms(node["id"]):
                return True
            node = self._row(node["parent"]) if node["parent"] else None
            hops += 1
        return False

    # ------------------------------------------------------------------ the Permission resource

    def permission_json(self, p: dict, row: dict, inherited_from: str | None = None) -> dict:
        out = {"kind": "drive#permission", "id": p["id"], "type": p["type"], "role": p["role"]}
        if p["type"] == "user":
            a = self.sharing.account(p["email"])
            out["emailAddress"] = p["email"]
            out["displayName"] = a.name if a else p["email"]
        else:
            out["allowFileDiscovery"] = bool(p["allow_discovery"])
        out["deleted"] = False
        out["pendingOwner"] = False
        if row["drive_id"] is not None:
            kind = "member" if (inherited_from or row["id"]) == row["drive_id"] else "file"
            detail = {"permissionType": kind, "role": p["role"], "inherited": inherited_from is not None}
            if inherited_from is not None:
                detail["inheritedFrom"] = inherited_from
            out["permissionDetails"] = [detail]
        return out

    def permissions_list(self, row: dict) -> list[dict]:
        """The item's owner (My Drive), its own permissions, and those it inherits from the folders above it
        (one entry per principal, the highest role)."""
        out: dict[str, dict] = {}
        if row["drive_id"] is None and row["owner"]:
            a = self.sharing.account(row["owner"])
            out[a.permission_id] = {"kind": "drive#permission", "id": a.permission_id, "type": "user",
                                    "role": "owner", "emailAddress": a.email, "displayName": a.name,
                                    "deleted": False, "pendingOwner": False}
        node, first, hops = row, True, 0
        while node is not None and hops < 1000:
            for p in self._perms(node["id"]):
                j = self.permission_json(p, row, None if first else node["id"])
                old = out.get(p["id"])
                if old is None or RANK[old["role"]] < RANK[p["role"]]:
                    out[p["id"]] = j
            node = self._row(node["parent"]) if node["parent"] else None
            first, hops = False, hops + 1
        return list(out.values())
