"""The official way: google-api-python-client, one file after another, as Google's Drive samples do.

As a contender it runs this module as a child process (``python -m benchmarks.contenders.official``):

* the client is built with ``build_from_document`` from the discovery document the library ships,
  with ``rootUrl`` rewritten to the emulator (``client_options`` alone would not move uploads);
* pull: a recursive ``files().list`` walk (one folder at a time, the library's default page size,
  ``nextPageToken`` loop as in the search sample), then for each file ``files().get_media`` +
  ``MediaIoBaseDownload(fh, request).next_chunk()`` until done (the download sample; the library's
  default 100 MiB chunk), written straight to the final path (that is what the sample does);
* push: ``files().create`` for the folder, then for each file ``MediaFileUpload(path, resumable=True)``
  (default 100 MiB chunk) and a ``next_chunk()`` loop (the resumable-upload sample).

The samples pass no ``num_retries``; here every call gets ``num_retries=5`` so a rate-limit answer
(403/429 under drive-like) is retried by the library's own backoff instead of ending the run: that
is the most generous reading of "the official way", and it changes nothing when no error comes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .base import Contender, Measured, RunContext, clean_env, run_measured

FOLDER = "application/vnd.google-apps.folder"
RETRIES = 5


# ---------------------------------------------------------------- the client script (child process)

def _service(root_url: str, credentials: str):
    import googleapiclient
    from google.oauth2.credentials import Credentials
    from googleapiclient.discovery import build_from_document

    doc_path = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / "drive.v3.json"
    text = doc_path.read_text()
    root = root_url.rstrip("/") + "/"
    doc = json.loads(text.replace("https://www.googleapis.com/", root))
    doc["rootUrl"] = root
    doc["mtlsRootUrl"] = root
    info = json.loads(Path(credentials).read_text())
    # from_authorized_user_file always uses Google's token endpoint; the emulator's is in the file.
    creds = Credentials(token=None, refresh_token=info["refresh_token"], token_uri=info["token_uri"],
                        client_id=info["client_id"], client_secret=info["client_secret"])
    return build_from_document(doc, credentials=creds)


def _find_child(service, parent: str, name: str) -> dict | None:
    q = "name = '{}' and '{}' in parents and trashed = false".format(name.replace("\\", "\\\\").replace("'", "\\'"), parent)
    got = service.files().list(q=q, fields="files(id, name, mimeType)").execute(num_retries=RETRIES)
    files = got.get("files", [])
    return files[0] if files else None


def _resolve(service, path: str) -> dict:
    node = {"id": "root", "mimeType": FOLDER, "name": ""}
    for part in [p for p in path.split("/") if p]:
        child = _find_child(service, node["id"], part)
        if child is None:
            raise SystemExit(f"official: not found: {path}")
        node = child
    return node


def _list(service, folder_id: str):
    token = None
    while True:
        got = service.files().list(
            q=f"'{folder_id}' in parents and trashed = false",
            spaces="drive",
            fields="nextPageToken, files(id, name, mimeType, size)",
            pageToken=token,
        ).execute(num_retries=RETRIES)
        yield from got.get("files", [])
        token = got.get("nextPageToken")
        if not token:
            return


def _safe(name: str) -> str:
    name = name.replace("/", "_").replace("\0", "_")
    return "_" if name in ("", ".", "..") else name


def pull_tree(service, folder_id: str, dest: Path) -> int:
    from googleapiclient.http import MediaIoBaseDownload

    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    for f in _list(service, folder_id):
        target = dest / _safe(f["name"])
        if f["mimeType"] == FOLDER:
            count += pull_tree(service, f["id"], target)
            continue
        if f["mimeType"].startswith("application/vnd.google-apps."):
            continue  # Docs need export; not part of these scenarios
        request = service.files().get_media(fileId=f["id"])
        with open(target, "wb") as fh:
            downloader = MediaIoBaseDownload(fh, request)
            done = False
            while not done:
                _status, done = downloader.next_chunk(num_retries=RETRIES)
        count += 1
    return count


def push_tree(service, src: Path, parent_id: str) -> int:
    from googleapiclient.http import MediaFileUpload

    count = 0
    for entry in sorted(src.iterdir()):
        if entry.is_dir():
            folder = service.files().create(body={"name": entry.name, "mimeType": FOLDER, "parents": [parent_id]},
                                            fields="id").execute(num_retries=RETRIES)
            count += push_tree(service, entry, folder["id"])
            continue
        media = MediaFileUpload(str(entry), resumable=True)
        request = service.files().create(body={"name": entry.name, "parents": [parent_id]}, media_body=media,
                                         fields="id")
        response = None
        while response is None:
            _status, response = request.next_chunk(num_retries=RETRIES)
        count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="official", description="google-api-python-client, one file at a time")
    ap.add_argument("mode", choices=("pull", "push"))
    ap.add_argument("--root-url", required=True)
    ap.add_argument("--credentials", required=True)
    ap.add_argument("--remote", required=True, help="pull: folder path under My Drive; push: new folder name")
    ap.add_argument("--local", required=True)
    ns = ap.parse_args(argv)
    service = _service(ns.root_url, ns.credentials)
    if ns.mode == "pull":
        node = _resolve(service, ns.remote)
        if node["mimeType"] != FOLDER:
            raise SystemExit(f"official: not a folder: {ns.remote}")
        n = pull_tree(service, node["id"], Path(ns.local))
    else:
        folder = service.files().create(body={"name": ns.remote, "mimeType": FOLDER, "parents": ["root"]},
                                        fields="id").execute(num_retries=RETRIES)
        n = push_tree(service, Path(ns.local), folder["id"])
    print(f"official: {ns.mode} {n} files")
    return 0


# ---------------------------------------------------------------- the contender (harness side)

class Official(Contender):
    name = "official"
    label = "official client, one at a time"

    def pacing(self, profile) -> str:
        # One request at a time, over the emulator's plain port (rootUrl rewritten): it is far from any
        # quota, and the proxy's TLS would only slow it further.
        return "none (one request at a time, plain port)"

    def unavailable(self, direction: str) -> str | None:
        try:
            import googleapiclient.discovery  # noqa: F401
        except ImportError:
            return "google-api-python-client is not installed"
        return super().unavailable(direction)

    def _run(self, ctx: RunContext, mode: str, local: Path) -> Measured:
        argv = [sys.executable, "-m", "benchmarks.contenders.official", mode, "--root-url", ctx.emu.url,
                "--credentials", ctx.emu.credentials_path, "--remote", ctx.remote_root, "--local", str(local)]
        repo = str(Path(__file__).resolve().parents[2])
        env = clean_env()
        env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
        return run_measured(argv, env=env, timeout=ctx.timeout, cwd=repo, log=ctx.log)

    def pull(self, ctx: RunContext, dest: Path) -> Measured:
        return self._run(ctx, "pull", dest)

    def push(self, ctx: RunContext, src: Path) -> Measured:
        return self._run(ctx, "push", src)


if __name__ == "__main__":
    sys.exit(main())
