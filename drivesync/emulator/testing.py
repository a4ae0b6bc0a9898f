"""`Emulator`: the emulator running in-process on a background thread, for tests and benchmarks.

Owns the thread, its event loop and the lifecycle (start on a free port, stop cleanly), and exposes the
contract of docs/emulator-contract.md: URLs, the credentials file, configure/stats, seeding and reading
the store, auth controls. Must never share an event loop with the code under test: the server runs on
its own loop so a blocked client cannot stall it (and vice versa).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
from pathlib import Path

from .limits import Profile, get_profile
from .server import EmulatorServer
from .store import Store


class Emulator:
    """`with Emulator(data_dir, profile="unthrottled", **overrides) as emu: ...`"""

    def __init__(
        self,
        data_dir: str | os.PathLike | None = None,
        profile: str | Profile = "unthrottled",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        proxy: bool = False,
        proxy_port: int = 0,
        ca_dir: str | os.PathLike | None = None,
        credentials_path: str | os.PathLike | None = None,
        **overrides,
    ):
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="drive-emulator-"))
        self.profile_start = get_profile(profile, **overrides)
        self.host = host
        self.port_requested = port
        self.proxy = proxy
        self.proxy_port_requested = proxy_port
        # One CA per user by default (shared across tests: making a CA costs an RSA key generation).
        self.ca_dir = str(ca_dir or os.path.join(tempfile.gettempdir(), f"drivesync-emulator-ca-{os.getuid()}"))
        self.credentials_path = str(credentials_path or self.data_dir / "credentials.json")
        self.store: Store | None = None
        self.server: EmulatorServer | None = None
        self.proxy_url: str | None = None
        self.ca_cert_path: str | None = None
        self._proxy_server = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "Emulator":
        self.store = Store(self.data_dir)
        self.server = EmulatorServer(self.store, self.profile_start)
        ready = threading.Event()
        failure: list[BaseException] = []

        def run():
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)

            async def main():
                self._stopped = asyncio.Event()
                try:
                    await self.server.start(self.host, self.port_requested)
                    if self.proxy:
                        await self._start_proxy()
                except BaseException as e:  # report to the starting thread
                    failure.append(e)
                    ready.set()
                    return
                ready.set()
                await self._stopped.wait()
                if self._proxy_server is not None:
                    self._proxy_server.close()
                    try:
                        await asyncio.wait_for(self._proxy_server.wait_closed(), 2)
                    except Exception:
                        pass
                await self.server.stop()

            try:
                loop.run_until_complete(main())
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="drive-emulator", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            self._thread.join(5)
            self.store.close()
            raise failure[0]
        self.server.auth.write_credentials(self.credentials_path, self.token_uri)
        return self

    async def _start_proxy(self) -> None:
        from .proxy import start_proxy  # written by another engineer; optional

        os.makedirs(self.ca_dir, exist_ok=True)
        server, port, ca = await start_proxy(
            "127.0.0.1", self.server.port, "127.0.0.1", self.proxy_port_requested, self.ca_dir
        )
        self._proxy_server = server
        self.proxy_url = f"http://127.0.0.1:{port}"
        self.ca_cert_path = ca

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(30)
        if self.store is not None:
            self.store.close()
            self.store = None

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ addresses

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}" if self.host in ("0.0.0.0", "") else f"http://{self.host}:{self.server.port}"

    @property
    def token_uri(self) -> str:
        return self.url + "/token"

    @property
    def root_id(self) -> str:
        return self.store.root_id

    @property
    def profile(self) -> Profile:
        return self.server.limits.profile

    # ------------------------------------------------------------------ limits and stats

    def configure(self, **overrides) -> Profile:
        return self.server.limits.configure(**overrides)

    def stats(self) -> dict:
        return self.server.stats.snapshot()

    def reset_stats(self) -> None:
        self.server.stats.reset()

    # ------------------------------------------------------------------ seeding and reading

    # Every seeding helper takes `owner=EMAIL` (an account from add_account; default: the default account).
    # Without a parent an item goes in its owner's My Drive; with a parent in a shared drive it belongs to
    # the drive (no owner).

    def add_folder(self, name: str, parent_id: str | None = None, *, owner: str | None = None) -> str:
        return self.store.add_folder(name, parent_id, owner=owner)

    def add_file(self, name: str, data: bytes | None = None, **kw) -> str:
        return self.store.add_file(name, data, **kw)

    def add_doc(self, name: str, parent_id: str | None = None, kind: str = "document", text: str = "", *,
                owner: str | None = None) -> str:
        return self.store.add_doc(name, parent_id, kind, text, owner=owner)

    def add_shortcut(self, name: str, target_id: str, parent_id: str | None = None, *,
                     owner: str | None = None) -> str:
        return self.store.add_shortcut(name, target_id, parent_id, owner=owner)

    # ------------------------------------------------------------------ accounts and sharing (issue 11)

    def add_account(self, email: str, display_name: str | None = None) -> dict:
        """Create an account (or take the existing one) and return an authorized_user credentials dict for it
        (a new refresh token each call; the same shape as `credentials_path`'s file). What
        `POST /_emulator/accounts {"email": ...}` answers."""
        self.server.sharing.add_account(email, display_name)
        return self.server.auth.credentials_info(self.token_uri, email)

    def write_account_credentials(self, email: str, path: str | os.PathLike) -> str:
        """add_account(email), written to `path` (mode 0600) for `--credentials PATH`; returns the path."""
        self.server.sharing.add_account(email)
        return self.server.auth.write_credentials(path, self.token_uri, email=email)

    def account_root_id(self, email: str) -> str:
        """The id of an account's My Drive root (what 'root' means for it)."""
        a = self.server.sharing.account(email)
        if a is None:
            raise KeyError(email)
        return a.root_id

    def share(self, file_id: str, email: str | None = None, role: str = "reader", *, type: str | None = None,
              allow_discovery: bool = False) -> dict:
        """Give `email` (type user) or anyone with the link (`email=None` or type="anyone") `role` on an item,
        without the checks permissions.create makes. A folder's permissions reach everything below it.
        On a shared drive's id this adds a member (roles reader .. organizer). Returns the Permission JSON."""
        from .sharing import DRIVE_ROLES, ITEM_ROLES

        kind = type or ("user" if email else "anyone")
        is_drive = self.server.sharing.drive_row(file_id) is not None
        if role not in (DRIVE_ROLES if is_drive else ITEM_ROLES):
            raise ValueError(f"role {role!r} is not one Drive lets you give here")
        p = self.server.sharing.grant(self.store.resolve(file_id), type=kind, role=role, email=email,
                                      allow_discovery=allow_discovery)
        row = self.store.row(file_id)
        return self.server.sharing.view().permission_json(p, row)

    def unshare(self, file_id: str, permission_id: str) -> None:
        """Remove one permission (an account's permissionId, or 'anyoneWithLink' / 'anyone')."""
        if not self.server.sharing.revoke(self.store.resolve(file_id), permission_id):
            raise KeyError(permission_id)

    def permission_id(self, email: str) -> str:
        """An account's permissionId (the id of its permissions on every item)."""
        a = self.server.sharing.account(email)
        if a is None:
            raise KeyError(email)
        return a.permission_id

    def add_drive(self, name: str, organizer: str | None = None, members: dict[str, str] | None = None) -> str:
        """A shared drive organized by `organizer` (default: the default account) with more `members`
        ({email: role}); returns its id, which is also its root folder's id (parent_id for add_file etc.)."""
        sharing = self.server.sharing
        org = sharing.account(organizer) if organizer else sharing.default()
        if org is None:
            raise KeyError(organizer)
        drive_id = sharing.create_drive(name, org)
        for email, role in (members or {}).items():
            self.share(drive_id, email, role)
        return drive_id

    def set_resource_key(self, file_id: str) -> str:
        """Give an item a resource key (what `POST /_emulator/resource-key` does); returns the key. Accounts
        that reach the item only by an `anyone` link must then send `X-Goog-Drive-Resource-Keys: ID/KEY`."""
        return self.server.sharing.set_resource_key(file_id)

    def set_copy_requires_writer_permission(self, file_id: str, value: bool = True) -> None:
        """Readers and commenters then cannot download or copy it (403 cannotDownloadFile)."""
        self.store.update(file_id, copy_requires_writer=value)

    def trash(self, file_id: str) -> None:
        self.store.trash(file_id)

    def delete(self, file_id: str) -> None:
        self.store.delete(file_id)

    def file(self, file_id: str, account: str | None = None) -> dict:
        """The File resource (every field); with `account`, as that account sees it (KeyError if it cannot:
        Drive would answer 404; shared drives and link-only items count as reachable here)."""
        if account is None:
            return self.store.resource(self.store.require(file_id), self.url)
        sharing = self.server.sharing
        who = sharing.account(account)
        if who is None:
            raise KeyError(account)
        view = sharing.view(who, supports_all_drives=True)
        row = self.store.row(view.resolve(file_id))
        acc = view.access(row, check_key=False)
        if acc is None:
            raise KeyError(file_id)
        return view.resource(row, self.url, acc)

    def content(self, file_id: str) -> bytes:
        return self.store.content(file_id)

    def children(self, parent_id: str, trashed: bool | None = None) -> list[dict]:
        return self.store.children(parent_id, trashed)

    def path_id(self, path: str) -> str:
        return self.store.path_id(path)

    def set_abusive(self, file_id: str, abusive: bool = True) -> None:
        self.store.set_abusive(file_id, abusive)

    # ------------------------------------------------------------------ auth controls

    def expire_tokens(self) -> None:
        self.server.auth.expire_tokens()

    def revoke_refresh_tokens(self) -> None:
        self.server.auth.revoke_refresh_tokens()

    def expire_upload_sessions(self) -> None:
        self.server.uploads.expire_sessions()

    def write_service_account_key(self, path: str | os.PathLike) -> str:
        return self.server.auth.write_service_account_key(path, self.token_uri)

    def access_token(self, lifetime_s: float | None = None, account: str | None = None) -> str:
        """A fresh bearer token for raw HTTP tests (beyond the contract); `account`: served as that email."""
        if account is not None and self.server.sharing.account(account) is None:
            raise KeyError(account)
        kw = {"subject": account} if account else {}
        return self.server.auth.issue_access_token(lifetime_s=lifetime_s, **kw)[0]

    def auth_headers(self, account: str | None = None) -> dict[str, str]:
        """{"Authorization": "Bearer <fresh token>"} (beyond the contract); `account` as in access_token."""
        return {"Authorization": f"Bearer {self.access_token(account=account)}"}

    def write_credentials(self, path: str | os.PathLike) -> str:
        """Write another authorized_user file (e.g. after revoke_refresh_tokens); beyond the contract."""
        return self.server.auth.write_credentials(path, self.token_uri)
