"""A seeded fault campaign: drivesync's pull, push and push --watch driven through faults, with the
invariants checked after every run.

    python -m tests.faults --short                  # what CI runs (tests/integration/test_fault_campaign.py)
    python -m tests.faults --seed 7 --runs 10       # every fault, 10 runs each
    python -m tests.faults --faults pull-kill9,watch-kill9 --runs 40

The last full run (every fault, 6 runs each) is committed as tests/faults/last-result.json: its table, the
commit it ran on, and every run's seed and notes.

Every run uses the real CLI (`drivesync ...` as a child process) against the bundled emulator running as a
process of its own, so that both can be killed. After each run the campaign checks:

- lost:       a file of the source missing at its final path once the run (and its resume) is over
- corrupt:    a file at a final path, locally or on Drive, that is not byte-identical to a version of its
              source (a partial at a final path, a mixed revision, a half checkpoint folder visible on Drive)
- duplicated: two items with the same name in one Drive folder
- wrong exit: exit 0 when something is missing, or non-zero after a run that did everything
- traceback:  a Python traceback on stderr, from any run
- resent:     bytes moved beyond the source's size, as a share of it (bounded: at most 1.0)

Faults that need root (a full disk: a small tmpfs) are skipped with a reason otherwise. Randomness
comes from random.Random(seed) per fault and run, so a failing row is reproduced with the same seed.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = [sys.executable, "-c", "import sys; from drivesync.cli import main; sys.exit(main(sys.argv[1:]))"]
KiB, MiB = 1024, 1024 * 1024
FOLDER = "application/vnd.google-apps.folder"
TRACEBACK = "Traceback (most recent call last)"
UNTHROTTLED = dict(download_bps_per_connection=None, download_bps_total=None, upload_bps_per_connection=None,
                   upload_bps_total=None, error_rate=0.0, cut_share=0.0, html_error_rate=0.0, json_cut_rate=0.0,
                   range_ignored_rate=0.0, requests_per_s=None, writes_per_s=None, token_lifetime_s=3600.0,
                   upload_session_lifetime_s=7 * 24 * 3600.0)


# -- the emulator as a process ---------------------------------------------------------------------

class EmulatorProcess:
    """The bundled emulator in a process of its own, on a fixed port, so it can be killed and restarted
    on the same data (its tokens, files and upload sessions live in SQLite)."""

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.data = os.path.join(workdir, "drive")
        self.credentials = os.path.join(workdir, "credentials.json")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> "EmulatorProcess":
        self.starts += 1
        log = open(os.path.join(self.workdir, f"emulator-{self.starts}.log"), "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "drivesync.emulator", "--data", self.data,
                                      "--port", str(self.port), "--credentials-out", self.credentials],
                                     cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the emulator exited: {open(log.name).read()[-500:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return self
            time.sleep(0.05)
        raise RuntimeError("the emulator did not start listening within 30 s")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _admin(self, what: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/_emulator/{what}", data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
        return json.loads(raw) if raw else {}

    def configure(self, **overrides) -> None:
        self._admin("configure", overrides)

    def stats(self) -> dict:
        return self._admin("stats")

    def reset_stats(self) -> None:
        self._admin("reset-stats", {})


class DriveView:
    """What Drive holds, read through the Drive v3 API with the account's own token (plain urllib, so
    the campaign shares no code with the client it judges). Call it only with faults switched off."""

    def __init__(self, emu: EmulatorProcess):
        self.emu = emu
        self._token: str | None = None

    def token(self, fresh: bool = False) -> str:
        if self._token is None or fresh:
            with open(self.emu.credentials) as fh:
                c = json.load(fh)
            form = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": c["refresh_token"],
                                           "client_id": c["client_id"], "client_secret": c["client_secret"]}).encode()
            with urllib.request.urlopen(urllib.request.Request(c["token_uri"], data=form), timeout=30) as r:
                self._token = json.loads(r.read())["access_token"]
        return self._token

    def call(self, method: str, path: str, params: dict | None = None, data: bytes | None = None,
             headers: dict | None = None) -> bytes:
        url = f"{self.emu.url}{path}" + (("?" + urllib.parse.urlencode(params)) if params else "")
        for attempt in range(6):
            req = urllib.request.Request(url, data=data, method=method,
                                         headers={**(headers or {}), "Authorization": f"Bearer {self.token()}"})
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    return r.read()
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    self.token(fresh=True)
                elif exc.code not in (403, 429, 500, 502, 503) or attempt == 5:
                    raise
            except (urllib.error.URLError, ConnectionError):
                if attempt == 5:
                    raise
            time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def children(self, folder_id: str) -> list[dict]:
        out, page = [], None
        while True:
            params = {"q": f"'{folder_id}' in parents and trashed = false", "pageSize": 1000,
                      "fields": "nextPageToken,files(id,name,mimeType,size,md5Checksum)"}
            if page:
                params["pageToken"] = page
            body = json.loads(self.call("GET", "/drive/v3/files", params))
            out += body.get("files", [])
            page = body.get("nextPageToken")
            if not page:
                return out

    def path_id(self, path: str) -> str | None:
        folder = "root"
        for name in [p for p in path.split("/") if p]:
            match = [c for c in self.children(folder) if c["name"] == name]
            if not match:
                return None
            folder = match[0]["id"]
        return folder

    def tree(self, path: str) -> tuple[dict[str, dict], int]:
        """({relative path: file item} under ``path``, the number of duplicated names found)."""
        files, dups = {}, 0
        top = self.path_id(path)
        if top is None:
            return files, 0
        todo = [("", top)]
        while todo:
            rel, fid = todo.pop()
            kids = self.children(fid)
            names = [k["name"] for k in kids]
            dups += len(names) - len(set(names))
            for k in kids:
                krel = f"{rel}/{k['name']}".lstrip("/")
                if k["mimeType"] == FOLDER:
                    todo.append((krel, k["id"]))
                else:
                    files[krel] = k
        return files, dups

    def content(self, file_id: str) -> bytes:
        return self.call("GET", f"/drive/v3/files/{file_id}", {"alt": "media"})

    def put_media(self, file_id: str, data: bytes) -> None:
        self.call("PATCH", f"/upload/drive/v3/files/{file_id}", {"uploadType": "media"}, data=data,
                  headers={"Content-Type": "application/octet-stream"})


# -- local trees -----------------------------------------------------------------------------------

def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def is_partial(name: str) -> bool:
    return name.startswith(".") and name.endswith(".drivesync-partial")


def local_tree(root: str) -> dict[str, str]:
    """{relative path: md5} of every file under ``root`` except drivesync's hidden partials."""
    out = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            if is_partial(name):
                continue
            full = os.path.join(dirpath, name)
            with open(full, "rb") as fh:
                out[os.path.relpath(full, root).replace(os.sep, "/")] = md5(fh.read())
    return out


def make_tree(rng: random.Random, root: str, files: int, large: int = 1, large_mb: float = 4) -> dict[str, str]:
    """Random files under ``root`` (a few empty, most small, ``large`` of about ``large_mb``): {rel: md5}."""
    out = {}
    for i in range(files):
        folder = rng.choice(["", "a", "a/b", "c"])
        rel = f"{folder}/f{i:03d}.bin".lstrip("/")
        size = 0 if i % 11 == 0 else rng.randint(1, 300 * KiB)
        if i < large:
            size = int(large_mb * MiB) + rng.randint(0, 64 * KiB)
        data = rng.randbytes(size)
        os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
        with open(os.path.join(root, rel), "wb") as fh:
            fh.write(data)
        out[rel] = md5(data)
    return out


# -- one run's judgement ---------------------------------------------------------------------------

@dataclasses.dataclass
class Run:
    fault: str
    run: int
    seed: int
    lost: int = 0
    corrupt: int = 0
    duplicated: int = 0
    wrong_exit: int = 0
    traceback: int = 0
    resent: float | None = None   # bytes moved beyond the source's size, as a share of it (kill faults)
    kills: int = 0          # kill -9s that landed while the process was still working
    skipped: str = ""
    notes: list = dataclasses.field(default_factory=list)

    @property
    def bad(self) -> bool:
        return bool(self.lost or self.corrupt or self.duplicated or self.wrong_exit or self.traceback
                    or (self.resent or 0.0) > 1.0)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def saw(self, stderr: str, what: str) -> None:
        if TRACEBACK in stderr:
            self.traceback += 1
            self.note(f"{what}: traceback: {stderr[stderr.index(TRACEBACK):][:300]!r}")

    def compare(self, want: dict[str, str], got: dict[str, str], where: str, versions=None) -> None:
        """The end state: every wanted file present with its md5 (or one of ``versions[rel]``)."""
        for rel, digest in want.items():
            if rel not in got:
                self.lost += 1
                self.note(f"{where}: {rel} missing")
            elif got[rel] != digest and got[rel] not in (versions or {}).get(rel, ()):
                self.corrupt += 1
                self.note(f"{where}: {rel} differs")
        for rel in set(got) - set(want):
            self.corrupt += 1
            self.note(f"{where}: {rel} should not be there")

    def finals_complete(self, got: dict[str, str], versions: dict[str, set], where: str) -> None:
        """Mid-way (after a kill): whatever is at a final path is a whole version of its source."""
        for rel, digest in got.items():
            if digest not in versions.get(rel, ()):
                self.corrupt += 1
                self.note(f"{where}: {rel} at its final path is not a whole version")

    def exit(self, rc: int, complete: bool, what: str) -> None:
        if (rc == 0) != complete:
            self.wrong_exit += 1
            self.note(f"{what}: exit {rc} although the result is {'complete' if complete else 'incomplete'}")


class Campaign:
    def __init__(self, workdir: str, seed: int):
        self.workdir = workdir
        self.seed = seed
        self.emu = EmulatorProcess(workdir).start()
        self.drive = DriveView(self.emu)
        self.counter = 0
        self.dataset: dict[str, str] = {}
        self.dataset_bytes = 0

    def close(self) -> None:
        self.emu.stop()

    # -- helpers -----------------------------------------------------------------------------------

    def fresh(self, what: str) -> str:
        self.counter += 1
        path = os.path.join(self.workdir, f"{self.counter:03d}-{what}")
        os.makedirs(path)
        return path

    def env(self, state: str) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("GOOGLE_", "DRIVESYNC_", "CLOUDSDK_", "GCE_"))}
        env.update(DRIVESYNC_STATE_DIR=state, DRIVESYNC_CONFIG_DIR=os.path.join(self.workdir, "config"),
                   CLOUDSDK_CONFIG=os.path.join(self.workdir, "gcloud"), DRIVESYNC_API_URL=self.emu.url,
                   GCE_METADATA_HOST="127.0.0.1:9", GCE_METADATA_IP="127.0.0.1:9", PYTHONUNBUFFERED="1")
        return env

    def cli(self, *args: str) -> list[str]:
        return CLI + list(args) + ["--credentials", self.emu.credentials, "--give-up-after", "60"]

    def run(self, args, state: str, timeout: float = 120) -> tuple[int, str]:
        r = subprocess.run(args, env=self.env(state), capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stderr

    def start(self, args, state: str) -> subprocess.Popen:
        return subprocess.Popen(args, env=self.env(state), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)

    @staticmethod
    def kill_after(proc: subprocess.Popen, seconds: float) -> bool:
        """kill -9 ``proc`` after ``seconds`` unless it ended first; True if it was killed."""
        try:
            proc.wait(seconds)
            return False
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True

    def clean(self) -> None:
        self.emu.configure(**UNTHROTTLED)

    def drive_md5s(self, remote: str) -> tuple[dict[str, str], int]:
        files, dups = self.drive.tree(remote)
        return {rel: md5(self.drive.content(item["id"])) for rel, item in files.items()}, dups

    def until_folder_upload(self, remote: str, proc: subprocess.Popen, limit: float = 20.0) -> float:
        """Wait until Drive shows a folder under ``remote`` (a checkpoint's stage, or the checkpoint); 0."""
        deadline = time.time() + limit
        while time.time() < deadline and proc.poll() is None:
            top = self.drive.path_id(remote)
            if top and any(k["mimeType"] == FOLDER for k in self.drive.children(top)):
                break
            time.sleep(0.05)
        return 0.0

    def ensure_dataset(self) -> None:
        """The tree the pull faults download, pushed once (with no faults) and checked on Drive."""
        if self.dataset:
            return
        src = self.fresh("dataset")
        self.dataset = make_tree(random.Random(self.seed), src, files=24, large=2, large_mb=3)
        self.dataset_bytes = sum(os.path.getsize(os.path.join(src, rel)) for rel in self.dataset)
        rc, err = self.run(self.cli("push", src, "dataset", "-q"), self.fresh("state"))
        got, dups = self.drive_md5s("dataset")
        if rc != 0 or got != self.dataset or dups:
            raise RuntimeError(f"seeding the dataset failed (exit {rc}): {err[-500:]}")

    def pull_versions(self) -> dict[str, set]:
        return {rel: {digest} for rel, digest in self.dataset.items()}

    def pull_checked(self, r: Run, local: str, state: str, what: str, *,
                     must_finish: bool = True) -> tuple[int, str]:
        """``drivesync pull dataset LOCAL``, then judge it: the whole dataset with exit 0 (``must_finish``),
        or (a run that may fail) only whole files at final paths; a truthful exit either way."""
        rc, err = self.run(self.cli("pull", "dataset", local, "-q"), state)
        r.saw(err, what)
        got = local_tree(local)
        if must_finish:
            r.compare(self.dataset, got, "local")
        else:
            r.finals_complete(got, self.pull_versions(), f"local after {what}")
        r.exit(rc, got == self.dataset, what)
        return rc, err

    def push_checked(self, r: Run, src: str, want: dict[str, str], remote: str, state: str, what: str,
                     *flags: str) -> tuple[int, str]:
        """``drivesync push SRC REMOTE``, then (faults off) judge Drive: exactly ``want``, no duplicate,
        a truthful exit."""
        rc, err = self.run(self.cli("push", src, remote, "-q", *flags), state)
        r.saw(err, what)
        self.clean()
        got, dups = self.drive_md5s(remote)
        r.duplicated += dups
        r.compare(want, got, "Drive")
        r.exit(rc, got == want, what)
        return rc, err


# -- the faults ------------------------------------------------------------------------------------

FAULTS = {}


def fault(name: str, needs_root: bool = False):
    def register(fn):
        FAULTS[name] = (fn, needs_root)
        return fn
    return register


@fault("pull-kill9")
def pull_kill9(c: Campaign, r: Run, rng: random.Random) -> None:
    c.ensure_dataset()
    local, state = c.fresh("local"), c.fresh("state")
    c.emu.configure(download_bps_per_connection=2 * MiB, download_bps_total=4 * MiB)
    c.emu.reset_stats()
    proc = c.start(c.cli("pull", "dataset", local, "-q"), state)
    killed = c.kill_after(proc, rng.uniform(0.2, 2.0))
    r.kills += killed
    r.saw(proc.stderr.read(), "pull before the kill")
    r.finals_complete(local_tree(local), c.pull_versions(), "local after kill -9")
    if not killed:
        r.note("the pull ended before the kill")
    c.clean()
    c.pull_checked(r, local, state, "resumed pull")
    r.resent = max(0.0, c.emu.stats()["bytes_sent"] - c.dataset_bytes - 256 * KiB) / c.dataset_bytes


@fault("pull-emulator-restart")
def pull_emulator_restart(c: Campaign, r: Run, rng: random.Random) -> None:
    c.ensure_dataset()
    local, state = c.fresh("local"), c.fresh("state")
    c.emu.configure(download_bps_per_connection=2 * MiB, download_bps_total=4 * MiB)
    proc = c.start(c.cli("pull", "dataset", local, "-q"), state)
    time.sleep(rng.uniform(0.2, 1.5))
    c.emu.kill()                             # Drive's front end gone: connections refused, bodies cut
    time.sleep(rng.uniform(0.2, 2.0))
    c.emu.start()                            # (a restarted emulator runs unthrottled)
    rc = proc.wait(120)
    r.saw(proc.stderr.read(), "pull across the restart")
    got = local_tree(local)
    r.compare(c.dataset, got, "local")
    r.exit(rc, got == c.dataset, "pull across the restart")


def push_tree(c: Campaign, rng: random.Random) -> tuple[str, dict[str, str], str]:
    local = c.fresh("src")
    want = make_tree(rng, local, files=14, large=2, large_mb=2.5)
    return local, want, f"pushed/{os.path.basename(local)}"


@fault("push-kill9")
def push_kill9(c: Campaign, r: Run, rng: random.Random) -> None:
    local, want, remote = push_tree(c, rng)
    state = c.fresh("state")
    total = sum(os.path.getsize(os.path.join(local, rel)) for rel in want)
    c.emu.configure(upload_bps_per_connection=2 * MiB, upload_bps_total=4 * MiB)
    c.emu.reset_stats()
    proc = c.start(c.cli("push", local, remote, "-q", "--chunk-size", "256K"), state)
    r.kills += c.kill_after(proc, rng.uniform(0.2, 2.5))
    r.saw(proc.stderr.read(), "push before the kill")
    c.clean()
    got, dups = c.drive_md5s(remote)
    r.finals_complete(got, {rel: {d} for rel, d in want.items()}, "Drive after kill -9")
    r.duplicated += dups
    received = c.emu.stats()["bytes_received"]
    rc, err = c.run(c.cli("push", local, remote, "-q", "--chunk-size", "256K"), state)
    r.saw(err, "resumed push")
    got, dups = c.drive_md5s(remote)
    r.duplicated += dups
    r.compare(want, got, "Drive")
    r.exit(rc, got == want, "resumed push")
    r.resent = max(0.0, received + (c.emu.stats()["bytes_received"] - received) - total - 512 * KiB) / total


@fault("push-emulator-restart")
def push_emulator_restart(c: Campaign, r: Run, rng: random.Random) -> None:
    local, want, remote = push_tree(c, rng)
    state = c.fresh("state")
    c.emu.configure(upload_bps_per_connection=2 * MiB, upload_bps_total=4 * MiB)
    proc = c.start(c.cli("push", local, remote, "-q", "--chunk-size", "256K"), state)
    time.sleep(rng.uniform(0.2, 1.5))
    c.emu.kill()
    time.sleep(rng.uniform(0.2, 2.0))
    c.emu.start()
    rc = proc.wait(120)
    r.saw(proc.stderr.read(), "push across the restart")
    got, dups = c.drive_md5s(remote)
    r.duplicated += dups
    r.compare(want, got, "Drive")
    r.exit(rc, got == want, "push across the restart")


class Trainer(threading.Thread):
    """Saves like a training loop: step-N.pt by tmp + os.replace, last.ckpt rewritten in place, and every
    fourth step a Hugging Face folder (tmp-checkpoint-N, renamed when complete). Records every version."""

    def __init__(self, root: str, rng: random.Random, steps: int, every: float):
        super().__init__(daemon=True)
        self.root, self.rng, self.steps, self.every = root, rng, steps, every
        self.versions: dict[str, set] = {}
        self.folders: dict[str, set] = {}       # checkpoint folder -> the names of its files

    def _write(self, path: str, data: bytes) -> None:
        with open(path, "wb") as fh:
            fh.write(data)

    def run(self) -> None:
        for step in range(1, self.steps + 1):
            data = self.rng.randbytes(self.rng.randint(50 * KiB, 900 * KiB))
            tmp = os.path.join(self.root, f".step-{step}.pt.tmp")
            self._write(tmp, data)
            os.replace(tmp, os.path.join(self.root, f"step-{step:03d}.pt"))
            self.versions[f"step-{step:03d}.pt"] = {md5(data)}
            last = self.rng.randbytes(self.rng.randint(10 * KiB, 400 * KiB))
            self._write(os.path.join(self.root, "last.ckpt"), last)
            self.versions.setdefault("last.ckpt", set()).add(md5(last))
            if step % 4 == 0:
                name = f"checkpoint-{step}"
                tmpdir = os.path.join(self.root, f"tmp-{name}")
                os.makedirs(tmpdir)
                files = {f"model-0000{i}-of-00003.safetensors":
                         self.rng.randbytes(self.rng.randint(1 * MiB, 2 * MiB)) for i in range(1, 4)}
                files["trainer_state.json"] = json.dumps({"global_step": step}).encode()
                for fname, blob in files.items():
                    self._write(os.path.join(tmpdir, fname), blob)
                    self.versions[f"{name}/{fname}"] = {md5(blob)}
                os.rename(tmpdir, os.path.join(self.root, name))
                self.folders[name] = set(files)
            time.sleep(self.every)


def visible_checkpoints(c: Campaign, remote: str, trainer: Trainer, r: Run, where: str) -> None:
    """A checkpoint folder visible on Drive under its name holds every one of its files: never half a
    checkpoint, and never an empty one (stages are hidden names and not looked at)."""
    top = c.drive.path_id(remote)
    for folder in c.drive.children(top) if top else []:
        if folder["mimeType"] != FOLDER or folder["name"].startswith(".drivesync-"):
            continue
        names = {k["name"] for k in c.drive.children(folder["id"])}
        if names != trainer.folders.get(folder["name"]):
            r.corrupt += 1
            r.note(f"{where}: {folder['name']}/ visible with {len(names)} of "
                   f"{len(trainer.folders.get(folder['name'], ()))} files")


@fault("watch-kill9")
def watch_kill9(c: Campaign, r: Run, rng: random.Random) -> None:
    local, state = c.fresh("train"), c.fresh("state")
    remote = f"watched/{os.path.basename(local)}"
    c.emu.configure(upload_bps_per_connection=3 * MiB, upload_bps_total=6 * MiB)
    watch = c.cli("push", local, remote, "--watch", "--settle", "0.3", "-q")
    proc = c.start(watch, state)
    trainer = Trainer(local, rng, steps=16, every=0.15)
    trainer.start()
    if r.run % 2:
        r.kills += c.kill_after(proc, rng.uniform(0.5, 4.0))
    else:
        # Aimed (every other run, the first included) at the moment that matters most: a checkpoint
        # folder's files going up. A checkpoint uploaded into its final folder is caught here.
        r.kills += c.kill_after(proc, c.until_folder_upload(remote, proc) + rng.uniform(0.0, 0.4))
    r.saw(proc.stderr.read(), "watcher before the kill")
    trainer.join()
    c.clean()
    got, dups = c.drive_md5s(remote)
    got = {rel: d for rel, d in got.items() if not rel.startswith(".drivesync-")}
    r.duplicated += dups
    r.finals_complete(got, trainer.versions, "Drive after kill -9")
    visible_checkpoints(c, remote, trainer, r, "Drive after kill -9")
    # The next runtime starts the watcher again: it catches up with everything complete.
    want = local_tree(local)
    proc = c.start(watch, state)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        got, dups = c.drive_md5s(remote)
        got = {rel: d for rel, d in got.items() if not rel.startswith(".drivesync-")}
        if got == want:
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(30)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
        r.wrong_exit += 1
        r.note("the restarted watcher did not stop on SIGTERM")
    r.saw(proc.stderr.read(), "restarted watcher")
    got, dups = c.drive_md5s(remote)
    got = {rel: d for rel, d in got.items() if not rel.startswith(".drivesync-")}
    r.duplicated += dups
    r.compare(want, got, "Drive")


@fault("server-faults")
def server_faults(c: Campaign, r: Run, rng: random.Random) -> None:
    """5xx, HTML error pages, bodies cut mid-stream, spoiled JSON answers (cut after the server acted),
    ignored Range headers, on a pull and on a push."""
    c.ensure_dataset()
    faults = dict(seed=rng.randrange(1 << 30), error_rate=0.15, cut_share=0.25, cut_after_bytes=64 * KiB,
                  html_error_rate=0.05, html_5xx_share=0.5, json_cut_rate=0.08, json_cut_modes="truncated,drop,html",
                  range_ignored_rate=0.2)
    local, state = c.fresh("local"), c.fresh("state")
    c.emu.configure(**faults)
    c.pull_checked(r, local, state, "pull")
    src, want, remote = push_tree(c, rng)
    c.emu.configure(**faults)
    c.push_checked(r, src, want, remote, c.fresh("state"), "push", "--chunk-size", "256K")


@fault("rate-limit-storm")
def rate_limit_storm(c: Campaign, r: Run, rng: random.Random) -> None:
    """A quota far below drivesync's pacing: 403 userRateLimitExceeded and 429 on most calls."""
    c.ensure_dataset()
    storm = dict(requests_per_s=30.0, request_burst=5, rate_limit_429_share=0.5)
    local, state = c.fresh("local"), c.fresh("state")
    c.emu.configure(**storm)
    c.pull_checked(r, local, state, "pull")
    src, want, remote = push_tree(c, rng)
    c.push_checked(r, src, want, remote, c.fresh("state"), "push")


@fault("expiring-tokens-and-sessions")
def expiring(c: Campaign, r: Run, rng: random.Random) -> None:
    """Access tokens that live two seconds under slow transfers (each run outlives several); a push killed
    mid-way whose upload sessions Drive has dropped by the time it runs again."""
    c.ensure_dataset()
    local, state = c.fresh("local"), c.fresh("state")
    c.emu.configure(token_lifetime_s=2.0, download_bps_per_connection=3 * MiB, download_bps_total=6 * MiB)
    c.pull_checked(r, local, state, "pull")
    src, want, remote = push_tree(c, rng)
    pstate = c.fresh("state")
    c.emu.configure(token_lifetime_s=2.0, upload_bps_per_connection=2 * MiB, upload_bps_total=4 * MiB)
    proc = c.start(c.cli("push", src, remote, "-q", "--chunk-size", "256K"), pstate)
    c.kill_after(proc, rng.uniform(0.3, 1.5))
    r.saw(proc.stderr.read(), "push before the kill")
    c.emu._admin("expire-upload-sessions", {})
    c.emu.configure(upload_bps_per_connection=None, upload_bps_total=None)
    c.push_checked(r, src, want, remote, pstate, "push after its sessions expired", "--chunk-size", "256K")


def damage(path: str, how: str) -> None:
    if how == "garbage":
        with open(path, "r+b") as fh:
            fh.seek(0)
            fh.write(os.urandom(4096))
    elif how == "truncated":
        os.truncate(path, os.path.getsize(path) // 2)
    elif how == "folder":
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path + suffix)
        os.makedirs(path)


@fault("journal-damaged")
def journal_damaged(c: Campaign, r: Run, rng: random.Random) -> None:
    """garbage bytes in journal.db, the journal cut to half, a folder in its place: the run goes on."""
    c.ensure_dataset()
    how = rng.choice(["garbage", "truncated", "folder"])
    r.note(f"journal {how}")
    local, state = c.fresh("local"), c.fresh("state")
    rc, err = c.run(c.cli("pull", "dataset", local, "-q"), state)
    r.saw(err, "first pull")
    damage(os.path.join(state, "journal.db"), how)
    c.pull_checked(r, local, state, "pull with a damaged journal")
    src, want, remote = push_tree(c, rng)
    pstate = c.fresh("state")
    c.run(c.cli("push", src, remote, "-q"), pstate)
    damage(os.path.join(pstate, "journal.db"), how)
    with open(os.path.join(src, "added-after.bin"), "wb") as fh:
        data = rng.randbytes(10 * KiB)
        fh.write(data)
    want["added-after.bin"] = md5(data)
    c.push_checked(r, src, want, remote, pstate, "push with a damaged journal")


@fault("changed-underneath")
def changed_underneath(c: Campaign, r: Run, rng: random.Random) -> None:
    """A local file rewritten while push sends it; a Drive file given a new revision while pull fetches it."""
    src, want, remote = push_tree(c, rng)
    hot = os.path.join(src, "hot.bin")
    versions = {"hot.bin": set()}
    stop = threading.Event()

    def rewrite():
        while not stop.is_set():
            data = rng.randbytes(3 * MiB)
            with open(hot, "r+b" if os.path.exists(hot) else "wb") as fh:
                fh.write(data)
                fh.truncate()
            versions["hot.bin"].add(md5(data))
            time.sleep(0.05)

    writer = threading.Thread(target=rewrite, daemon=True)
    writer.start()
    while not versions["hot.bin"]:
        time.sleep(0.01)
    state = c.fresh("state")
    c.emu.configure(upload_bps_per_connection=4 * MiB)
    rc, err = c.run(c.cli("push", src, remote, "-q", "--chunk-size", "256K"), state)
    r.saw(err, "push while hot.bin is rewritten")
    stop.set()
    writer.join()
    c.clean()
    got, dups = c.drive_md5s(remote)
    r.duplicated += dups
    r.finals_complete(got, {**{rel: {d} for rel, d in want.items()}, **versions}, "Drive while rewritten")
    with open(hot, "rb") as fh:
        want["hot.bin"] = md5(fh.read())
    rc, err = c.run(c.cli("push", src, remote, "-q"), state)
    r.saw(err, "push once hot.bin settled")
    got, dups = c.drive_md5s(remote)
    r.duplicated += dups
    r.compare(want, got, "Drive")
    r.exit(rc, got == want, "push once hot.bin settled")

    # Drive's side: a new revision lands while pull is fetching the old one.
    old, new = rng.randbytes(6 * MiB), rng.randbytes(5 * MiB + 123)
    fid = c.drive.path_id(remote + "/hot.bin")
    c.drive.put_media(fid, old)
    local, lstate = c.fresh("local"), c.fresh("state")
    c.emu.configure(download_bps_per_connection=2 * MiB, download_bps_total=4 * MiB)
    proc = c.start(c.cli("pull", remote + "/hot.bin", local + "/", "-q"), lstate)
    time.sleep(rng.uniform(0.3, 1.5))
    c.drive.put_media(fid, new)
    rc = proc.wait(120)
    r.saw(proc.stderr.read(), "pull across a new revision")
    got = local_tree(local)
    r.finals_complete(got, {"hot.bin": {md5(old), md5(new)}}, "local across a new revision")
    if rc == 0 and "hot.bin" not in got:
        r.wrong_exit += 1
        r.note("pull across a new revision: exit 0 without the file")
    c.clean()
    rc, err = c.run(c.cli("pull", remote + "/hot.bin", local + "/", "-q"), lstate)
    r.saw(err, "pull after the new revision")
    got = local_tree(local)
    r.compare({"hot.bin": md5(new)}, got, "local")
    r.exit(rc, got == {"hot.bin": md5(new)}, "pull after the new revision")


@contextlib.contextmanager
def small_tmpfs(path: str, size: str):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path], check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], capture_output=True)


def one_line(err: str) -> bool:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    return 0 < len(lines) <= 3


@fault("disk-full-data", needs_root=True)
def disk_full_data(c: Campaign, r: Run, rng: random.Random) -> None:
    """LOCAL on a tmpfs too small for the tree: one clear line, a non-zero exit, nothing partial at a final
    path; with room made, the same pull completes."""
    c.ensure_dataset()
    local, state = os.path.join(c.fresh("full"), "local"), c.fresh("state")
    with small_tmpfs(local, f"{max(64, c.dataset_bytes // 3 // KiB)}k"):
        rc, err = c.pull_checked(r, local, state, "pull onto a full disk", must_finish=False)
        if rc != 0 and not one_line(err):
            r.wrong_exit += 1
            r.note(f"pull onto a full disk: not one clear line: {err[-300:]!r}")
        subprocess.run(["mount", "-o", "remount,size=256m", local], check=True, capture_output=True)
        c.pull_checked(r, local, state, "pull with room made")


@fault("disk-full-state", needs_root=True)
def disk_full_state(c: Campaign, r: Run, rng: random.Random) -> None:
    """The state folder (the journal) on a tmpfs with no room: the pull either completes or stops with one
    line, and never leaves a partial at a final path; pull and push alike."""
    c.ensure_dataset()
    local = c.fresh("local")
    with small_tmpfs(os.path.join(c.fresh("fullstate"), "state"), "8k") as state:
        with open(os.path.join(state, "filler"), "wb") as fh:      # leave the journal (almost) no room
            with contextlib.suppress(OSError):
                fh.write(b"\0" * 8 * KiB)
        rc, err = c.pull_checked(r, local, state, "pull with a full state folder", must_finish=False)
        if rc != 0 and not one_line(err):
            r.wrong_exit += 1
            r.note(f"pull with a full state folder: not one clear line: {err[-300:]!r}")
        src, want, remote = push_tree(c, rng)
        rc, err = c.run(c.cli("push", src, remote, "-q"), state)
        r.saw(err, "push with a full state folder")
        got, dups = c.drive_md5s(remote)
        r.duplicated += dups
        r.finals_complete(got, {rel: {d} for rel, d in want.items()}, "Drive with a full state folder")
        r.exit(rc, got == want, "push with a full state folder")
    c.pull_checked(r, local, c.fresh("state"), "pull with room made")


# -- the campaign ----------------------------------------------------------------------------------

#: CI's version: every fault once (about two minutes on 2 cores); the full campaign is --runs N.
SHORT = {name: 1 for name in FAULTS}


def run_campaign(seed: int, plan: dict[str, int], workdir: str | None = None, echo=print) -> list[Run]:
    results: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="drivesync-faults-", dir=workdir) as work:
        campaign = Campaign(work, seed)
        try:
            for name, runs in plan.items():
                fn, needs_root = FAULTS[name]
                for i in range(runs):
                    run_seed = hash_seed(seed, name, i)
                    r = Run(name, i, run_seed)
                    t0 = time.time()
                    if needs_root and os.geteuid() != 0:
                        r.skipped = "needs root (a small tmpfs)"
                    else:
                        try:
                            fn(campaign, r, random.Random(run_seed))
                        except Exception as exc:      # the harness itself failed: a finding, not a pass
                            r.wrong_exit += 1
                            r.note(f"harness: {type(exc).__name__}: {exc}")
                        finally:
                            with contextlib.suppress(Exception):
                                if campaign.emu.proc.poll() is not None:
                                    campaign.emu.start()
                                campaign.clean()
                    results.append(r)
                    verdict = (f"skipped: {r.skipped}" if r.skipped else "ok" if not r.bad
                               else "BAD " + "; ".join(r.notes)[:600])
                    echo(f"{name} #{i} seed {run_seed} ({time.time() - t0:.0f} s): {verdict}")
        finally:
            campaign.close()
    return results


def hash_seed(seed: int, name: str, i: int) -> int:
    return int(hashlib.sha256(f"{seed}:{name}:{i}".encode()).hexdigest()[:8], 16)


def table(results: list[Run]) -> str:
    rows = ["| fault | runs | kill -9 mid-run | lost | corrupt | duplicated | wrong exit | traceback | resent (max) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in dict.fromkeys(r.fault for r in results):
        rs = [r for r in results if r.fault == name and not r.skipped]
        if not rs:
            skipped = next(r.skipped for r in results if r.fault == name)
            rows.append(f"| {name} | skipped: {skipped} | | | | | | | |")
            continue
        kills = sum(r.kills for r in rs) if name.endswith("kill9") else "-"
        resent = [r.resent for r in rs if r.resent is not None]
        rows.append(f"| {name} | {len(rs)} | {kills} | {sum(r.lost for r in rs)} | {sum(r.corrupt for r in rs)} | "
                    f"{sum(r.duplicated for r in rs)} | {sum(r.wrong_exit for r in rs)} | "
                    f"{sum(r.traceback for r in rs)} | {f'{max(resent):.2f}' if resent else '-'} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=5, help="runs per fault (kill faults: each at a random moment)")
    ap.add_argument("--short", action="store_true", help="CI's version: a few runs per fault")
    ap.add_argument("--faults", help=f"comma-separated subset of: {', '.join(FAULTS)}")
    ap.add_argument("--workdir", help="where the runs' folders go (default: a temporary folder)")
    ap.add_argument("--out", help="write the results (table and every run) as JSON here")
    args = ap.parse_args(argv)
    names = args.faults.split(",") if args.faults else list(FAULTS)
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        ap.error(f"unknown fault(s): {', '.join(unknown)}")
    plan = {n: (SHORT.get(n, 1) if args.short else args.runs) for n in names}
    started = time.time()
    results = run_campaign(args.seed, plan, args.workdir)
    text = table(results)
    print(text)
    print(f"{len(results)} runs in {time.time() - started:.0f} s, seed {args.seed}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"seed": args.seed, "plan": plan, "table": text,
                       "runs": [dataclasses.asdict(r) for r in results]}, fh, indent=1)
    return 1 if any(r.bad for r in results) else 0
