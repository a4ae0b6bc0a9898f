"""``drivesync demo``: see a pull work end to end with no Google account.

It launches the project's Drive emulator as a separate process (``python -m drivesync.emulator``; the
client never imports the emulator's code), uploads a generated sample project through the Drive API
(code files, ~200 small PNG images, a ~50 MB zip: multipart and resumable uploads), gives the emulator
Drive-like speed limits, then pulls the project with progress bars into ``./drivesync-demo`` and
returns the PullResult. Content is deterministic, so a second demo into the same folder verifies by
hash and transfers nothing new. The emulator process and its data are removed at the end.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib

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


def run_demo(target: str = "drivesync-demo", *, progress: bool = True, images: int = 200,
             zip_size: int = 50 * 1000 * 1000, say=print):
    """Start the emulator, seed it through the API, pull into ``target``; returns the PullResult."""
    from .puller import pull
    from .state import Journal

    target = os.path.abspath(target)
    workdir = tempfile.mkdtemp(prefix="drivesync-demo-")
    try:
        with EmulatorProcess(workdir) as emu:
            say(f"started a local Drive emulator at {emu.url}")
            files = sample_project(images=images, zip_size=zip_size)
            total = sum(len(d) for d in files.values())
            say(f"uploading a sample project ({len(files)} files, {total / 1e6:.0f} MB) through the Drive API ...")
            seed_settings = Settings(api_url=emu.url, write_tps=1000.0, write_burst=100, tps=1000.0)
            asyncio.run(upload_project(seed_settings, emu.credentials, files, "sample-project"))
            emu.configure(**DRIVE_LIKE)
            say(f"pulling sample-project/ into {target} (the emulator now limits like Drive: "
                "25 MB/s per connection, 150 MB/s in all, 200 requests/s)")
            journal = Journal(os.path.join(workdir, "journal.db"))
            try:
                return pull("sample-project/", target, credentials=emu.credentials, api_url=emu.url,
                            progress=progress, journal=journal)
            finally:
                journal.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
