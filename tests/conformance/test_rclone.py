"""Real rclone (Debian's 1.60.1) against the emulator, unchanged, through the TLS-terminating proxy.

rclone always talks to https://www.googleapis.com; `HTTPS_PROXY` + `--ca-cert` route it to the
emulator (see benchmarks/rclone_setup.py and drivesync/emulator/proxy.py). Every check compares what
rclone reports or writes with the emulator's own state, so a Drive behaviour the emulator gets wrong
shows up here as a failing rclone command (its stderr is in the assertion message).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from rclone_cli import FAST, MARKS, Rclone, rclone_args, write_rclone_config

pytestmark = MARKS

KIB = 1024


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    from drivesync.emulator.testing import Emulator

    with Emulator(tmp_path_factory.mktemp("rclone-emu"), proxy=True) as e:
        yield e


@pytest.fixture(scope="module")
def rclone(emu, tmp_path_factory):
    return Rclone(emu, tmp_path_factory.mktemp("rclone-home"))


def _rfc3339(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def _data(n: int, seed: int) -> bytes:
    out = bytearray()
    block = hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def _seed_tree(emu, top: str) -> dict[str, str]:
    """top/{a.txt, empty.bin, sub/{b.bin, deeper/c.txt}, gone.txt (trashed)} -> path: id."""
    ids: dict[str, str] = {}
    t = emu.add_folder(top)
    ids["a.txt"] = emu.add_file("a.txt", b"hello rclone\n", parent_id=t)
    ids["empty.bin"] = emu.add_file("empty.bin", b"", parent_id=t)
    sub = ids["sub"] = emu.add_folder("sub", parent_id=t)
    ids["sub/b.bin"] = emu.add_file("sub/b.bin".split("/")[-1], _data(300 * KIB + 5, 1), parent_id=sub)
    deeper = ids["sub/deeper"] = emu.add_folder("deeper", parent_id=sub)
    ids["sub/deeper/c.txt"] = emu.add_file(
        "c.txt", "unicodé ✓\n".encode(), parent_id=deeper,
        modified_time="2021-05-06T07:08:09.123Z",
    )
    gone = emu.add_file("gone.txt", b"trashed", parent_id=t)
    emu.trash(gone)
    ids["__top__"] = t
    return ids


@pytest.mark.parametrize("fast_list", [False, True], ids=["walk", "fast-list"])
def test_lsjson_recursive_matches_the_store(emu, rclone, fast_list):
    """Walk: one `'<id>' in parents` query per folder. --fast-list: batched
    `trashed=false and ('A' in parents or 'B' in parents ...)` queries."""
    top = f"ls-tree-{fast_list}"
    ids = _seed_tree(emu, top)
    extra = ("--fast-list",) if fast_list else ()
    listing = {e["Path"]: e for e in rclone.lsjson("-R", *extra, f"emu:{top}")}
    want = {k for k in ids if k != "__top__"}
    assert set(listing) == want, "trashed files must not be listed; every live one must"
    for path, entry in listing.items():
        f = emu.file(ids[path])
        assert entry["ID"] == f["id"]
        assert entry["Name"] == f["name"]
        if f["mimeType"] == "application/vnd.google-apps.folder":
            assert entry["IsDir"] is True
        else:
            assert entry["IsDir"] is False
            assert entry["Size"] == int(f["size"]) == len(emu.content(f["id"]))
            assert entry["MimeType"] == f["mimeType"]
            assert _rfc3339(entry["ModTime"]) == _rfc3339(f["modifiedTime"])
    assert listing["sub/deeper/c.txt"]["ModTime"].startswith("2021-05-06T07:08:09.123")


def test_md5sum_matches_the_store(emu, rclone):
    ids = _seed_tree(emu, "md5-tree")
    out = rclone("md5sum", "emu:md5-tree").stdout
    sums = {}
    for line in out.splitlines():
        digest, path = line.split("  ", 1)
        sums[path] = digest
    files = {k: v for k, v in ids.items() if k in ("a.txt", "empty.bin", "sub/b.bin", "sub/deeper/c.txt")}
    assert set(sums) == set(files)
    for path, fid in files.items():
        assert sums[path] == emu.file(fid)["md5Checksum"] == hashlib.md5(emu.content(fid)).hexdigest()


def test_copy_down_byte_for_byte(emu, rclone, tmp_path):
    ids = _seed_tree(emu, "down-tree")
    big = emu.add_file("big.bin", size=3 * 1024 * KIB + 17, seed=7, parent_id=ids["__top__"])
    dest = tmp_path / "down"
    rclone("copy", "emu:down-tree", str(dest))
    got = {str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()}
    assert got == {"a.txt", "empty.bin", "sub/b.bin", "sub/deeper/c.txt", "big.bin"}
    for path in got:
        fid = big if path == "big.bin" else ids[path]
        assert (dest / path).read_bytes() == emu.content(fid), path
    # files above --multi-thread-cutoff are fetched as N concurrent ranged GETs (206)
    mt = tmp_path / "mt"
    emu.reset_stats()
    # (rclone 1.64 and later cut multi-thread downloads into --multi-thread-chunk-size parts, 64M by default)
    chunk = ("--multi-thread-chunk-size", "1M") if rclone.version >= (1, 64) else ()
    rclone("copy", "emu:down-tree/big.bin", str(mt), "--multi-thread-cutoff", "1M",
           "--multi-thread-streams", "4", *chunk)
    assert (mt / "big.bin").read_bytes() == emu.content(big)
    assert emu.stats()["by_status"].get("206", 0) >= 2  # (rclone splits 3 MiB into 3 parts)
    # rclone sets local mtimes from modifiedTime
    mtime = dt.datetime.fromtimestamp((dest / "sub/deeper/c.txt").stat().st_mtime, dt.timezone.utc)
    assert abs((mtime - _rfc3339("2021-05-06T07:08:09.123Z")).total_seconds()) < 0.002
    # and a second copy is a no-op that the listing alone satisfies
    again = rclone("copy", "-v", "emu:down-tree", str(dest))
    assert "Copied" not in again.stderr


def _write_local_tree(root: Path) -> dict[str, bytes]:
    files = {
        "one.txt": b"first\n",
        "empty": b"",
        "dir/two.bin": _data(70 * KIB, 2),
        "dir/nested/three.json": b'{"k": 3}',
        "spaced name (1).txt": b"spaces and parens",
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    os.utime(root / "one.txt", (1_600_000_000.25, 1_600_000_000.25))
    return files


def _remote_tree(emu, folder_id: str, prefix: str = "") -> dict[str, dict]:
    out: dict[str, dict] = {}
    for c in emu.children(folder_id, trashed=False):
        rel = prefix + c["name"]
        if c["mimeType"] == "application/vnd.google-apps.folder":
            out.update(_remote_tree(emu, c["id"], rel + "/"))
        else:
            out[rel] = c
    return out


def test_copy_up_small_files(emu, rclone, tmp_path):
    src = tmp_path / "up"
    files = _write_local_tree(src)
    emu.add_folder("up-small")
    rclone("copy", str(src), "emu:up-small")
    top = emu.path_id("up-small")
    remote = _remote_tree(emu, top)
    assert set(remote) == set(files)
    for rel, data in files.items():
        f = emu.file(remote[rel]["id"])
        assert emu.content(f["id"]) == data, rel
        assert f["md5Checksum"] == hashlib.md5(data).hexdigest()
        assert int(f["size"]) == len(data)
    one = emu.file(remote["one.txt"]["id"])
    assert one["modifiedTime"] == "2020-09-13T12:26:40.250Z"  # rclone sends the local mtime
    assert one["mimeType"].startswith("text/plain")


@pytest.mark.parametrize(
    "size, chunk",
    [
        (1024 * KIB + 123, "256k"),  # 5 chunks, the last short
        (2 * 1024 * KIB, "1M"),  # exactly 2 chunks
    ],
)
def test_copy_up_chunked_resumable(emu, rclone, tmp_path, size, chunk):
    src = tmp_path / f"chunked-{chunk}"
    src.mkdir()
    data = _data(size, size)
    (src / "big.bin").write_bytes(data)
    folder = f"up-chunked-{chunk}"
    emu.add_folder(folder)
    emu.reset_stats()
    p = rclone(
        "copy", "-vv", str(src), f"emu:{folder}",
        "--drive-chunk-size", chunk, "--drive-upload-cutoff", chunk,
    )
    chunk_bytes = int(chunk[:-1]) * (1024 if chunk.endswith("k") else 1024 * 1024)
    sent = p.stderr.count("Sending chunk")
    assert sent == -(-size // chunk_bytes), p.stderr[-3000:]  # every chunk POSTed once, no retries
    [f] = emu.children(emu.path_id(folder), trashed=False)
    assert f["name"] == "big.bin"
    assert emu.content(f["id"]) == data
    assert emu.file(f["id"])["md5Checksum"] == hashlib.md5(data).hexdigest()
    stats = emu.stats()
    assert stats["bytes_received"] >= size


def test_overwrite_keeps_the_id(emu, rclone, tmp_path):
    """rclone updates an existing file in place: PATCH .../upload/drive/v3/files/{id} (multipart,
    or resumable above the cutoff), so the id stays and a new revision carries the content."""
    src = tmp_path / "ow"
    src.mkdir()
    folder = emu.add_folder("overwrite")
    fid = emu.add_file("f.bin", b"old contents", parent_id=folder,
                       modified_time="2020-01-01T00:00:00.000Z")
    big = emu.add_file("g.bin", b"old big", parent_id=folder,
                       modified_time="2020-01-01T00:00:00.000Z")
    (src / "f.bin").write_bytes(b"new contents, longer")
    new_big = _data(600 * KIB, 9)
    (src / "g.bin").write_bytes(new_big)
    rclone("copy", str(src), "emu:overwrite", "--drive-chunk-size", "256k", "--drive-upload-cutoff", "256k")
    kids = {c["name"]: c["id"] for c in emu.children(folder, trashed=False)}
    assert kids == {"f.bin": fid, "g.bin": big}
    assert emu.content(fid) == b"new contents, longer"
    assert emu.content(big) == new_big


def test_copy_up_then_check_round_trip(emu, rclone, tmp_path):
    """`rclone check` compares sizes and md5s from a fresh listing against the local tree."""
    src = tmp_path / "rt"
    _write_local_tree(src)
    emu.add_folder("round-trip")
    rclone("copy", str(src), "emu:round-trip")
    rclone("check", str(src), "emu:round-trip")
    back = tmp_path / "back"
    rclone("copy", "emu:round-trip", str(back))
    for p in src.rglob("*"):
        if p.is_file():
            assert (back / p.relative_to(src)).read_bytes() == p.read_bytes()


def test_deletefile_trashes(emu, rclone):
    folder = emu.add_folder("del")
    fid = emu.add_file("x.txt", b"x", parent_id=folder)
    rclone("deletefile", "emu:del/x.txt")
    assert emu.file(fid)["trashed"] is True  # rclone's default is --drive-use-trash=true
    assert rclone.lsjson("emu:del") == []


def test_google_doc_is_exported(emu, rclone, tmp_path):
    """rclone lists Docs as name.docx (size -1), asks about.get(fields=exportFormats,importFormats)
    and downloads through the file's exportLinks."""
    folder = emu.add_folder("docs")
    emu.add_doc("Notes", parent_id=folder, text="some text")
    listing = rclone.lsjson("emu:docs")
    assert [e["Path"] for e in listing] == ["Notes.docx"]
    assert listing[0]["Size"] == -1
    dest = tmp_path / "docs"
    rclone("copy", "emu:docs", str(dest))
    body = (dest / "Notes.docx").read_bytes()
    assert body, "export returned nothing"


def test_shortcuts_resolve_to_their_targets(emu, rclone, tmp_path):
    """rclone lists a shortcut under its own name with the target's size/type (ID "target\\tshortcut")
    and reads the target's content through it."""
    top = emu.add_folder("shortcuts")
    target_dir = emu.add_folder("real-dir", parent_id=top)
    target = emu.add_file("real.bin", _data(5000, 5), parent_id=target_dir)
    emu.add_shortcut("to-file", target, parent_id=top)
    emu.add_shortcut("to-dir", target_dir, parent_id=top)
    listing = {e["Path"]: e for e in rclone.lsjson("-R", "emu:shortcuts")}
    assert set(listing) == {"real-dir", "real-dir/real.bin", "to-file", "to-dir", "to-dir/real.bin"}
    assert listing["to-file"]["Size"] == 5000 and listing["to-dir"]["IsDir"] is True
    assert listing["to-file"]["ID"].split("\t")[0] == target
    dest = tmp_path / "sc"
    rclone("copy", "emu:shortcuts", str(dest))
    assert (dest / "to-file").read_bytes() == emu.content(target)
    assert (dest / "to-dir/real.bin").read_bytes() == emu.content(target)


def test_server_side_operations(emu, rclone):
    """mkdir (files.create folder), copyto (files.copy), moveto (files.update with
    addParents/removeParents + name), directory move, delete without trash (files.delete),
    purge (trash the folder), rmdir."""
    top = emu.add_folder("ops")
    src = emu.add_folder("src", parent_id=top)
    fid = emu.add_file("f.bin", _data(40 * KIB, 4), parent_id=src)
    data = emu.content(fid)

    rclone("mkdir", "emu:ops/made")
    made = emu.path_id("ops/made")
    assert emu.file(made)["mimeType"] == "application/vnd.google-apps.folder"

    rclone("copyto", "emu:ops/src/f.bin", "emu:ops/made/copy.bin")
    [copy] = emu.children(made, trashed=False)
    assert copy["name"] == "copy.bin" and copy["id"] != fid
    assert emu.content(copy["id"]) == data

    rclone("moveto", "emu:ops/made/copy.bin", "emu:ops/moved.bin")
    moved = emu.file(copy["id"])  # same file, new parent and name
    assert moved["name"] == "moved.bin" and moved["parents"] == [top]
    assert emu.children(made, trashed=False) == []

    rclone("move", "emu:ops/src", "emu:ops/src2")  # server-side DirMove: the folder itself moves
    assert emu.file(src)["name"] == "src2"

    rclone("delete", "--drive-use-trash=false", "emu:ops/moved.bin")
    with pytest.raises(Exception):
        emu.file(copy["id"])

    rclone("purge", "emu:ops/src2")
    assert emu.file(src)["trashed"] is True

    rclone("rmdir", "emu:ops/made")
    assert emu.file(made)["trashed"] is True
    assert rclone.lsjson("emu:ops") == []


@pytest.mark.parametrize(
    "token_url", [None, "https://oauth2.googleapis.com/token"], ids=["plain-token-uri", "via-proxy"]
)
def test_rclone_refreshes_an_expired_token(emu, tmp_path, token_url):
    """An expired token in the config: rclone POSTs grant_type=refresh_token to token_url (the
    emulator's plain URL, or Google's through the proxy), uses the new token, saves it back."""
    conf = tmp_path / "rclone.conf"
    env = write_rclone_config(
        conf,
        emulator_token_uri=emu.token_uri,
        credentials_json_path=emu.credentials_path,
        proxy_url=emu.proxy_url,
        ca_cert_path=emu.ca_cert_path,
        token_url=token_url,
        prefetch_token=False,
    )
    env["HOME"] = str(tmp_path)
    before = emu.stats()["token_grants"]
    emu.add_folder("refresh-" + ("plain" if token_url is None else "proxy"))
    p = subprocess.run(
        rclone_args(*FAST, "lsf", "emu:", ca_cert_path=emu.ca_cert_path),
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert emu.stats()["token_grants"] == before + 1
    saved = conf.read_text()
    assert "expired-placeholder" not in saved and '"refresh_token"' in saved
