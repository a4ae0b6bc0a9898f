"""``drivesync demo``: see the whole story work end to end with no Google account.

``run_story`` (what ``drivesync demo`` runs): pull a sample project; train a toy model whose checkpoints
(Lightning-style files and Hugging Face-style folders) a background ``push --watch`` uploads as they
complete; lose the runtime (SIGKILL the watcher while the next checkpoint is half written); restore the
newest checkpoint into a fresh folder with ``pull --latest``, resume from its step, ``flush`` and ``stop``;
then summarise what was measured (``story_summary``). The watchers, the restore, ``flush`` and ``stop`` run as
their own processes, as a user would type them. ``run_demo`` (``drivesync demo --pull-only``) is the pull alone:

It launches the project's Drive emulator as a separate process (``python -m drivesync.emulator``; the
client never imports the emulator's code), uploads a generated sample project through the Drive API
(code files, ~200 small PNG images, a ~50 MB zip: multipart and resumable uploads), gives the emulator
Drive-like speed limits, then pulls the project with progress bars into ``./drivesync-demo`` and
returns the PullResult. Content is deterministic, so a second demo into the same folder verifies by
hash and transfers nothing new. The emulator process and its data are removed at the end.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from dataclasses import dataclass, field

from .config import MiB, Settings
from .errors import DrivesyncError

LISTENING = "drivesync emulator listening on "

#: Limits applied after seeding so the pull looks like Drive (see the emulator's drive-like profile).
DRIVE_LIKE = {
    "metadata_latency_s": 0.05, "media_latency_s": 0.1,
    "download_bps_per_connection": 25_000_000, "download_bps_total": 150_000_000,
    "requests_per_s": 200.0, "request_burst": 100,
}


# -- the sample project ----------------------------------------------------------------------------


def png(width: int, height: int, seed: int) -> bytes:
    """A small, valid PNG (an RGB gradient that differs per seed)."""
    rng = random.Random(seed)
    r0, g0, b0 = rng.randrange(256), rng.randrange(256), rng.randrange(256)
    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in ((r0 + x * 4) % 256, (g0 + y * 4) % 256, (b0 + x + y) % 256))
        for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b"")


def dataset_zip(size: int, seed: int = 42) -> bytes:
    """A zip of ~``size`` bytes holding incompressible samples (stored, like a prepared dataset)."""
    import io
    import zipfile

    rng = random.Random(seed)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        part = 4 * MiB
        for i in range(max(1, -(-size // part))):
            info = zipfile.ZipInfo(f"shard-{i:03d}.bin", date_time=(2024, 1, 1, 0, 0, 0))
            zf.writestr(info, rng.randbytes(part))
    return buf.getvalue()


def sample_project(*, images: int = 200, zip_size: int = 50 * 1000 * 1000) -> dict[str, bytes]:
    """{relative path: content} for the demo project."""
    files = {
        "README.md": b"# sample-project\n\nA generated project for `drivesync demo`.\n",
        "requirements.txt": b"torch\nnumpy\npillow\n",
        "code/train.py": b"import model\n\nif __name__ == '__main__':\n    model.train(epochs=10)\n",
        "code/model.py": b"def train(epochs):\n    for epoch in range(epochs):\n        print('epoch', epoch)\n",
        "code/utils/data.py": b"def load(path):\n    return open(path, 'rb').read()\n",
        "data/dataset.zip": dataset_zip(zip_size),
    }
    for i in range(images):
        files[f"data/images/img_{i:03d}.png"] = png(48, 48, i)
    return files


# -- the emulator process ----------------------------------------------------------------------------


class EmulatorProcess:
    """``python -m drivesync.emulator`` on a free port, stopped (and its data removed) on exit."""

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.credentials = os.path.join(workdir, "credentials.json")
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def __enter__(self) -> "EmulatorProcess":
        cmd = [sys.executable, "-m", "drivesync.emulator", "--data", os.path.join(self.workdir, "drive"),
               "--port", "0", "--credentials-out", self.credentials]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith(LISTENING) or not line:
                break
        if not line.startswith(LISTENING):
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            self.__exit__()
            last = (err.strip().splitlines() or ["no output"])[-1]
            raise DrivesyncError(f"the demo could not start the Drive emulator ({last})")
        self.url = line[len(LISTENING):].strip()
        return self

    def configure(self, **overrides) -> None:
        req = urllib.request.Request(self.url + "/_emulator/configure", data=json.dumps(overrides).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def upload_project(settings: Settings, credentials: str, files: dict[str, bytes], top: str) -> None:
    """Create ``top/`` in My Drive and upload ``files`` under it through the Drive API."""
    from .session import open_drive

    async with open_drive(settings, credentials=credentials) as drive:
        root = await drive.get("root", "id")
        folders = {"": (await drive.create_folder(top, root.id)).id}
        for rel in sorted({os.path.dirname(p) for p in files}, key=lambda p: p.count("/")):
            parts = rel.split("/") if rel else []
            for i in range(len(parts)):
                path = "/".join(parts[:i + 1])
                if path not in folders:
                    folders[path] = (await drive.create_folder(parts[i], folders["/".join(parts[:i])])).id
        sem = asyncio.Semaphore(16)

        async def one(rel: str, data: bytes) -> None:
            meta = {"name": os.path.basename(rel), "parents": [folders[os.path.dirname(rel)]]}
            async with sem:
                if len(data) <= settings.upload_cutoff:
                    await drive.upload_multipart(meta, data)
                    return
                session = await drive.start_resumable(meta, len(data))
                pos = 0
                while pos < len(data):
                    chunk = data[pos:pos + settings.upload_chunk_size]
                    last = pos + len(chunk) >= len(data)
                    reply = await drive.send_chunk(session, pos, chunk, len(data) if last else None)
                    if reply.status in (200, 201):
                        return
                    from .drive import committed_offset

                    pos = committed_offset(reply)

        await asyncio.gather(*(one(rel, data) for rel, data in files.items()))


def run_demo(target: str = "drivesync-demo", *, progress: bool | None = None, images: int = 200,
             zip_size: int = 50 * 1000 * 1000, say=print):
    """Start the emulator, seed it through the API, pull into ``target``; returns the PullResult."""
    target = os.path.abspath(target)
    workdir = tempfile.mkdtemp(prefix="drivesync-demo-")
    try:
        with EmulatorProcess(workdir) as emu:
            say(f"started a local Drive emulator at {emu.url}")
            return _seed_and_pull(emu, workdir, target, images=images, zip_size=zip_size, progress=progress,
                                  say=say)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _seed_and_pull(emu, workdir: str, target: str, *, images: int, zip_size: int, progress, say,
                   step: str = "") -> "PullResult":
    """Upload the sample project through the Drive API (unthrottled), then pull it into ``target`` with
    the emulator limiting like Drive; ``step`` numbers the lines when the demo tells more of the story."""
    from .puller import pull
    from .state import Journal

    indent = " " * len(step)
    files = sample_project(images=images, zip_size=zip_size)
    total = sum(len(d) for d in files.values())
    say(f"{step}uploading a sample project ({len(files)} files, {_size(total)}) through the Drive API ...")
    seed_settings = Settings(api_url=emu.url, write_tps=1000.0, write_burst=100, tps=1000.0)
    asyncio.run(upload_project(seed_settings, emu.credentials, files, "sample-project"))
    emu.configure(**DRIVE_LIKE)
    say(f"{indent}pulling sample-project/ into {target} (the emulator now limits like Drive: "
        f"{_rate(25e6)} per connection, {_rate(150e6)} in all, 200 requests/s)")
    journal = Journal(os.path.join(workdir, "journal.db"))
    try:
        return pull("sample-project/", target, credentials=emu.credentials, api_url=emu.url,
                    progress=progress, journal=journal)
    finally:
        journal.close()


# -- the whole story: pull, train with a watcher, lose the runtime, restore, resume, flush -------------

#: Where the story's checkpoints live on (emulated) Drive.
RUN_REMOTE = "runs/demo-run/checkpoints"
_SHARDS = ("model-00001-of-00002.bin", "model-00002-of-00002.bin")
_DURABLE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) durable: (\S+) .*, ([\d.]+) s after it was complete")


def initial_weights() -> bytes:
    """The model's "weights" are a 32-byte state; every shard and checkpoint file is derived from it."""
    return hashlib.sha256(b"drivesync demo model").digest()


def train_step(weights: bytes, step: int) -> bytes:
    """One deterministic training step: the same steps from the same weights always end the same."""
    return hashlib.sha256(weights + step.to_bytes(8, "big")).digest()


def weights_at(step: int) -> bytes:
    """The weights an uninterrupted run has after ``step`` steps (what a resumed run must match)."""
    weights = initial_weights()
    for s in range(1, step + 1):
        weights = train_step(weights, s)
    return weights


def _loss(weights: bytes, step: int) -> float:
    return 2.5 / (1.0 + step / 150.0) * (0.95 + 0.1 * weights[0] / 255.0)


def _blob(weights: bytes, name: str, size: int) -> bytes:
    return random.Random(weights + name.encode()).randbytes(size)


def ckpt_bytes(weights: bytes, step: int, epoch: int, size: int) -> bytes:
    """A Lightning-style single-file checkpoint: a JSON header line, then the tensor bytes."""
    head = json.dumps({"format": "drivesync-demo", "global_step": step, "epoch": epoch, "weights": weights.hex()})
    return head.encode() + b"\n" + _blob(weights, "ckpt", size)


def read_ckpt_header(path: str) -> dict:
    with open(path, "rb") as fh:
        return json.loads(fh.readline())


def load_hf_checkpoint(folder: str) -> tuple[int, bytes]:
    """(global_step, weights) of a ``checkpoint-N/`` folder; raises ValueError if a shard does not match."""
    with open(os.path.join(folder, "trainer_state.json"), encoding="utf-8") as fh:
        state = json.load(fh)
    weights = bytes.fromhex(state["weights"])
    for name in _SHARDS:
        with open(os.path.join(folder, name), "rb") as fh:
            data = fh.read()
        if hashlib.md5(data).hexdigest() != state["shards_md5"][name]:
            raise ValueError(f"{folder}/{name} does not match trainer_state.json")
    return state["global_step"], weights


@dataclass
class StoryReport:
    """What ``run_story`` measured. Every figure the demo prints comes from here."""

    project: object = None                     # PullResult of the project pull
    restore: dict = field(default_factory=dict)  # `pull --latest --json` of the fresh runtime
    saved_before_loss: list[str] = field(default_factory=list)   # checkpoints runtime 1 completed
    lost_at_step: int = 0                      # where runtime 1 died (its tmp-checkpoint half written)
    restored: list[str] = field(default_factory=list)            # top-level names in the restored folder
    restored_step: int = 0
    resumed_step: int = 0                      # the first step runtime 2 trained
    final_step: int = 0
    final_matches_uninterrupted: bool = False
    latest_on_drive: str | None = None
    lags: list[float] = field(default_factory=list)              # complete -> durable, seconds, both runtimes
    flush_s: float = 0.0
    wall_s: float = 0.0
    ok: bool = False


class _Runtime:
    """One "machine": a checkpoint folder, its own state dir, a background watcher run as a process."""

    def __init__(self, name: str, root: str, workdir: str, emu: EmulatorProcess, say):
        self.name = name
        self.local = os.path.join(root, name, "checkpoints")
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)
        os.makedirs(self.local)
        self.env = {k: v for k, v in os.environ.items() if k != "DRIVESYNC_WATCH_DIR"}
        self.env.update(DRIVESYNC_API_URL=emu.url, GOOGLE_APPLICATION_CREDENTIALS=emu.credentials,
                        DRIVESYNC_STATE_DIR=os.path.join(workdir, f"state-{name}"))
        self.say = say
        self.pid: int | None = None
        self.log = ""
        self.completed: dict[str, float] = {}    # shown name -> wall time it became complete (last version)

    def cli(self, *args: str, show: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        if show:
            self.say(f"  [{self.name}] $ drivesync {' '.join(args)}")
        proc = subprocess.run([sys.executable, "-m", "drivesync", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        if proc.returncode != 0:
            last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
            raise DrivesyncError(f"the demo's 'drivesync {args[0]}' failed: {last}")
        return proc

    def start_watcher(self) -> None:
        out = self.cli("push", "--watch", self.local, RUN_REMOTE, "--background").stdout
        pid, log = re.search(r"\(pid (\d+)\)", out), re.search(r"log: (.+?); ", out)
        if not pid or not log:
            raise DrivesyncError(f"the demo could not read the watcher's pid and log from: {out.strip()}")
        self.pid, self.log = int(pid.group(1)), log.group(1)
        self.say(f"  [{self.name}] watcher running as pid {self.pid}")

    def durable(self) -> list[tuple[str, float, float]]:
        """(name, wall time it became complete, lag) for every `durable:` line in the watcher's log."""
        found = []
        try:
            with open(self.log, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    m = _DURABLE.match(line)
                    if m:
                        at = time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1000
                        lag = float(m.group(4))
                        found.append((m.group(3), at - lag, lag))
        except OSError:
            pass
        return found

    def wait_durable(self, names: list[str], timeout: float = 90.0) -> float:
        """Wait until the last completed version of each name is durable; returns how long that took."""
        start = time.monotonic()
        while True:
            seen = {}
            for name, completed_at, _ in self.durable():
                seen[name] = max(seen.get(name, 0.0), completed_at)
            if all(seen.get(n, 0.0) >= self.completed[n] - 0.5 for n in names):
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                missing = [n for n in names if seen.get(n, 0.0) < self.completed[n] - 0.5]
                raise DrivesyncError(f"the demo's watcher did not make {', '.join(missing)} durable in {timeout:.0f} s "
                                     f"(log: {self.log})")
            time.sleep(0.2)

    def alive(self) -> bool:
        if not self.pid:
            return False
        try:
            with open(f"/proc/{self.pid}/stat", encoding="ascii") as fh:
                return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
        except OSError:
            try:
                os.kill(self.pid, 0)
            except OSError:
                return False
            return True

    def kill(self) -> None:
        """kill -9 the watcher this runtime started (only that pid), and wait until it is gone."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)

    # -- the trainer's side: checkpoints written the way Lightning and Hugging Face write them --------

    def save(self, weights: bytes, step: int, epoch: int, size: int) -> list[str]:
        data = ckpt_bytes(weights, step, epoch, size)
        names = [f"epoch={epoch}-step={step}.ckpt", "last.ckpt"]
        for name in names:                                 # last.ckpt: overwritten in place, every save
            with open(os.path.join(self.local, name), "wb") as fh:
                fh.write(data)
            self.completed[name] = time.time()
        tmp = os.path.join(self.local, f"tmp-checkpoint-{step}")
        os.makedirs(tmp)
        shards = {name: _blob(weights, name, size) for name in _SHARDS}
        for name, blob in shards.items():
            with open(os.path.join(tmp, name), "wb") as fh:
                fh.write(blob)
        state = {"global_step": step, "epoch": epoch, "weights": weights.hex(),
                 "shards_md5": {n: hashlib.md5(b).hexdigest() for n, b in shards.items()},
                 "log_history": [{"step": step, "loss": round(_loss(weights, step), 4)}]}
        with open(os.path.join(tmp, "trainer_state.json"), "w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=1)
        os.rename(tmp, os.path.join(self.local, f"checkpoint-{step}"))   # as Trainer does: complete at once
        self.completed[f"checkpoint-{step}/"] = time.time()
        return names + [f"checkpoint-{step}/"]


def _train(rt: _Runtime, weights: bytes, first: int, last: int, *, save_every: int, step_s: float,
           size: int, say) -> bytes:
    for step in range(first, last + 1):
        weights = train_step(weights, step)
        time.sleep(step_s)                                 # the GPU's share of a step
        if step % save_every == 0:
            names = rt.save(weights, step, step // save_every - 1, size)
            say(f"  [{rt.name}] step {step:5d}  loss {_loss(weights, step):.4f}  saved {', '.join(names)}")
    return weights


def run_story(target: str = "drivesync-demo", *, progress: bool | None = None, images: int = 200,
              zip_size: int = 50 * 1000 * 1000, save_every: int = 100, saves_before_loss: int = 4,
              saves_after: int = 3, step_s: float = 0.025, ckpt_size: int = 2 * 1000 * 1000,
              say=print) -> StoryReport:
    """The whole story against a local emulator; returns what was measured (``StoryReport``).

    1. pull the sample project into ``target/sample-project`` (as ``run_demo``);
    2. runtime-1 trains, saving ``epoch=E-step=S.ckpt``, ``last.ckpt`` (overwritten) and Hugging Face style
       ``checkpoint-S/`` folders (written as ``tmp-checkpoint-S``, renamed into place) while a background
       ``push --watch`` uploads them; once its newest checkpoint is durable, the runtime is lost: the
       watcher is killed with SIGKILL while the next checkpoint is half written;
    3. runtime-2, a fresh folder with its own state dir, restores with ``pull --latest``, checks the
       weights, resumes training at the restored step + 1 under a new watcher, ``flush``es and ``stop``s;
    4. the final weights are compared with an uninterrupted run's.
    ``target/runtime-1`` and ``target/runtime-2`` are recreated on every run.
    """
    from .puller import latest_checkpoint, pull

    began = time.monotonic()
    report = StoryReport()
    target = os.path.abspath(target)
    workdir = tempfile.mkdtemp(prefix="drivesync-demo-")
    runtimes: list[_Runtime] = []
    try:
        with EmulatorProcess(workdir) as emu:
            say(f"started a local Drive emulator at {emu.url}")
            report.project = _seed_and_pull(emu, workdir, os.path.join(target, "sample-project"), images=images,
                                            zip_size=zip_size, progress=progress, say=say, step="1. ")
            from .progress import summary_line

            say(f"   {summary_line(report.project)}")
            if not report.project.ok:
                return report

            say(f"2. runtime-1 trains; a background watcher uploads each checkpoint to {RUN_REMOTE} as it completes")
            rt1 = _Runtime("runtime-1", target, workdir, emu, say)
            runtimes.append(rt1)
            rt1.start_watcher()
            last_saved = save_every * saves_before_loss
            weights = _train(rt1, initial_weights(), 1, last_saved, save_every=save_every, step_s=step_s,
                             size=ckpt_size, say=say)
            report.saved_before_loss = sorted(os.listdir(rt1.local))
            # Training goes on; the runtime dies while the next checkpoint is being written.
            report.lost_at_step = last_saved + save_every
            weights = _train(rt1, weights, last_saved + 1, report.lost_at_step, save_every=report.lost_at_step + 1,
                             step_s=step_s, size=ckpt_size, say=say)
            half = os.path.join(rt1.local, f"tmp-checkpoint-{report.lost_at_step}")
            os.makedirs(half)
            with open(os.path.join(half, _SHARDS[0]), "wb") as fh:
                fh.write(_blob(weights, _SHARDS[0], ckpt_size)[: ckpt_size // 2])
            newest = [f"epoch={saves_before_loss - 1}-step={last_saved}.ckpt", "last.ckpt", f"checkpoint-{last_saved}/"]
            waited = rt1.wait_durable(newest)
            say(f"  [runtime-1] step {last_saved}'s checkpoints are durable on Drive"
                + (f" (the demo waited {waited:.1f} s more for them)" if waited >= 0.1 else ""))
            rt1.kill()
            rt1.pid = None
            say(f"  [runtime-1] RUNTIME LOST at step {report.lost_at_step}: watcher pid {rt1.pid} killed with "
                f"SIGKILL while tmp-checkpoint-{report.lost_at_step}/ was half written")

            say("3. runtime-2: a fresh folder and state dir restore the newest checkpoint from Drive")
            rt2 = _Runtime("runtime-2", target, workdir, emu, say)
            runtimes.append(rt2)
            out = rt2.cli("pull", RUN_REMOTE, rt2.local, "--latest", "--json", "-q").stdout
            report.restore = json.loads(out)
            report.restored = sorted(os.listdir(rt2.local))
            say(f"  [runtime-2] restored {', '.join(report.restored)}: "
                f"{_size(report.restore['bytes'])} in {report.restore['seconds']:.2f} s "
                f"= {_rate(report.restore['bytes_per_s'])}")
            folders = [n for n in report.restored if n.startswith("checkpoint-")]
            if len(folders) != 1:
                raise DrivesyncError(f"the demo expected one checkpoint folder after --latest, got {folders}")
            report.restored_step, weights = load_hf_checkpoint(os.path.join(rt2.local, folders[0]))
            header = read_ckpt_header(os.path.join(rt2.local, "last.ckpt"))
            if header["global_step"] != report.restored_step or weights != weights_at(report.restored_step):
                raise DrivesyncError("the demo's restored checkpoint does not hold the weights that were saved")
            report.resumed_step = report.restored_step + 1
            say(f"  [runtime-2] {folders[0]}/ verified (shards match trainer_state.json, last.ckpt is the same step); "
                f"resuming at step {report.resumed_step}")
            rt2.start_watcher()
            report.final_step = report.restored_step + save_every * saves_after
            weights = _train(rt2, weights, report.resumed_step, report.final_step, save_every=save_every,
                             step_s=step_s, size=ckpt_size, say=say)
            flush_began = time.monotonic()
            say("  [runtime-2] $ drivesync flush   # the last cell: wait until everything complete is on Drive")
            flushed = rt2.cli("flush", show=False).stdout.strip()
            report.flush_s = time.monotonic() - flush_began
            say(f"  [runtime-2] {flushed} ({report.flush_s:.1f} s)")
            say(f"  [runtime-2] $ drivesync stop")
            say(f"  [runtime-2] {rt2.cli('stop', show=False).stdout.strip()}")
            rt2.pid = None          # it exits by itself now; never signal a pid that may be reused
            report.latest_on_drive = latest_checkpoint(RUN_REMOTE, credentials=emu.credentials, api_url=emu.url)
            report.final_matches_uninterrupted = weights == weights_at(report.final_step)
            report.lags = [lag for rt in runtimes for _, _, lag in rt.durable()]
            report.ok = (report.project.ok and report.final_matches_uninterrupted
                         and report.latest_on_drive == f"{RUN_REMOTE}/checkpoint-{report.final_step}")
    finally:
        for rt in runtimes:
            rt.kill()          # only what the demo started; a no-op for a watcher that was stopped
        shutil.rmtree(workdir, ignore_errors=True)
        report.wall_s = time.monotonic() - began
    return report


def _size(n: float) -> str:
    from .progress import human_bytes

    return human_bytes(n)


def _rate(bytes_per_s: float) -> str:
    from .progress import human_rate

    return human_rate(bytes_per_s)


def story_summary(report: StoryReport) -> list[str]:
    """The closing lines: every number here was measured in this run."""
    p = report.project
    lines = ["summary (every figure measured in this run):",
             f"  pull of the project:   {p.done} files, {_size(p.bytes)} in {p.seconds:.1f} s = {_rate(p.bytes_per_s)}"]
    if report.restore:
        r = report.restore
        lines.append(f"  restore (--latest):    {len(report.restored)} items, {_size(r['bytes'])} in "
                     f"{r['seconds']:.2f} s = {_rate(r['bytes_per_s'])}; newest checkpoint step {report.restored_step}, "
                     "nothing older")
    if report.lags:
        lines.append(f"  checkpoint complete -> durable on Drive: median {statistics.median(report.lags):.1f} s, "
                     f"worst {max(report.lags):.1f} s over {len(report.lags)} uploads (paced at Drive's 3 writes/s)")
    if report.resumed_step:
        lines.append(f"  lost at step {report.lost_at_step}, resumed at step {report.resumed_step}, finished at step "
                     f"{report.final_step}; final weights "
                     + ("match an uninterrupted run" if report.final_matches_uninterrupted else "DIFFER from an uninterrupted run"))
        lines.append(f"  flush at the end: {report.flush_s:.1f} s; newest on Drive: {report.latest_on_drive}")
    lines.append(f"  demo wall time: {report.wall_s:.1f} s")
    return lines
