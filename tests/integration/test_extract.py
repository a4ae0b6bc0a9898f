"""pull ARCHIVE DIR --extract against the emulator over real sockets: members land in DIR as unzip/tar would
put them, each verified, the archive never on disk; resume skips what is there; a server that ignores Range or
cuts bodies changes nothing; hostile members are refused one line each and nothing of them is written."""
import io
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile

import pytest

import drivesync
from drivesync.errors import DrivesyncError
from drivesync.names import PARTIAL_SUFFIX

from cli_env import env_for

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("DRIVESYNC_API_URL", raising=False)


def pull(emu, remote, local, **kw):
    kw.setdefault("progress", False)
    return drivesync.pull(remote, str(local) if local else None, credentials=emu.credentials_path,
                          api_url=emu.url, extract=True, **kw)


def tree(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            out[os.path.relpath(p, root) + "/"] = ("link", os.readlink(p)) if os.path.islink(p) else None
        for f in filenames:
            p = os.path.join(dirpath, f)
            if os.path.islink(p):
                out[os.path.relpath(p, root)] = ("link", os.readlink(p))
            else:
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, root)] = fh.read()
    return out


def no_partials(*roots):
    for root in roots:
        for dirpath, _, filenames in os.walk(root):
            assert not [f for f in filenames if f.endswith(PARTIAL_SUFFIX)], dirpath


def dataset_zip(n=40, compression=zipfile.ZIP_DEFLATED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as z:
        z.writestr(zipfile.ZipInfo("images/"), b"")
        for i in range(n):
            z.writestr(f"images/class_{i % 3}/img_{i:03d}.jpg", os.urandom(20_000 + 997 * i))
        z.writestr("labels.csv", b"name,label\n" * 5000)
        z.writestr("big.bin", os.urandom(3 * MiB + 17), compress_type=zipfile.ZIP_STORED)
        z.writestr("caf\u00e9/\u65e5\u672c.txt", "\u00fcber".encode())
        z.writestr("empty.txt", b"")
        z.writestr(zipfile.ZipInfo("empty-dir/"), b"")
    return buf.getvalue()


def unzipped(data, tmp_path, name="reference"):
    ref = tmp_path / name
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        z.extractall(ref)
    return tree(ref)


def test_zip_members_land_in_dir_as_unzip_puts_them(emulator, tmp_path):
    data = dataset_zip()
    emulator.add_file("data.zip", data)
    out = tmp_path / "out"
    result = pull(emulator, "data.zip", out, range_size=256 * 1024)
    assert result.ok, result.failed
    assert tree(out) == unzipped(data, tmp_path)
    assert result.extract and result.done == 44 and result.skipped == 0
    assert result.extracted_bytes == sum(len(v) for v in tree(out).values() if v)
    assert "extracted 44 files" in str(result)
    assert not (tmp_path / "data.zip").exists() and not (out / "data.zip").exists()    # the archive never on disk
    assert result.bytes <= len(data) + 2 * 65_536 + 100        # each byte of it fetched about once
    no_partials(tmp_path)


@pytest.mark.parametrize("name", ["data.zip", "data.tar.gz"])
def test_bwlimit_counts_every_archive_byte(emulator, tmp_path, bwlimit_spent, name):
    """--bwlimit holds for --extract as for any pull: every archive byte read from Drive passes the run's
    bucket (counted, not timed: the bucket's arithmetic is tested on a fake clock in tests/unit/test_bwlimit.py)."""
    data = dataset_zip() if name.endswith(".zip") else dataset_tar("w:gz")
    emulator.add_file(name, data)
    result = pull(emulator, name, tmp_path / "out", bwlimit=1000 * MiB)
    assert result.ok, result.failed
    assert result.bytes_received >= len(data) and sum(bwlimit_spent) == result.bytes_received


def test_several_runs_of_members_go_in_parallel_through_the_transfer_engine(emulator, tmp_path):
    data = dataset_zip(n=60, compression=zipfile.ZIP_STORED)
    emulator.add_file("data.zip", data)
    emulator.reset_stats()
    result = pull(emulator, "data.zip", tmp_path / "out", range_size=128 * 1024, io_buffer=64 * 1024)
    assert result.ok
    # One request per run of members (a run holds at most range_size bytes), plus the tail: far fewer than
    # one per member, more than one in all.
    assert 3 < result.requests < 60
    assert tree(tmp_path / "out") == unzipped(data, tmp_path)


def test_a_second_run_skips_what_is_extracted_and_fetches_only_what_is_missing(emulator, tmp_path):
    data = dataset_zip()
    emulator.add_file("data.zip", data)
    out = tmp_path / "out"
    assert pull(emulator, "data.zip", out).ok
    os.unlink(out / "images" / "class_1" / "img_004.jpg")
    with open(out / "labels.csv", "ab") as fh:
        fh.write(b"changed locally")
    again = pull(emulator, "data.zip", out)
    assert again.ok
    assert (again.done, again.skipped) == (2, 42)
    assert again.bytes < len(data) / 4
    assert tree(out) == unzipped(data, tmp_path)


def test_an_interrupted_extraction_resumes(emulator, tmp_path):
    data = dataset_zip(n=30)
    archive_id = emulator.add_file("data.zip", data)
    out = tmp_path / "out"
    # Every stream cut after 64 KiB, more often than the retries allow: some runs fail, some members land.
    emulator.configure(cut_share=1.0, cut_after_bytes=150_000)
    first = pull(emulator, "data.zip", out, max_retries=0, range_size=512 * 1024, give_up_after=5)
    assert not first.ok
    landed = {k for k, v in tree(out).items() if v is not None}
    assert all(tree(out)[k] == unzipped(data, tmp_path)[k] for k in landed)     # whatever landed is whole
    no_partials(out)
    emulator.configure(cut_share=0.0)
    second = pull(emulator, "data.zip", out)
    assert second.ok, second.failed
    assert second.skipped >= len([k for k in landed if not k.endswith("/")]) - 1
    assert tree(out) == unzipped(data, tmp_path)
    assert emulator.content(archive_id) == data


def test_cut_bodies_resume_mid_member(emulator, tmp_path):
    data = dataset_zip(n=10)
    emulator.add_file("data.zip", data)
    emulator.configure(cut_next=4, cut_after_bytes=100_000)
    result = pull(emulator, "data.zip", tmp_path / "out")
    assert result.ok and result.retries >= 1
    assert tree(tmp_path / "out") == unzipped(data, tmp_path)


@pytest.mark.parametrize("ignored", [1, 12])
def test_a_server_that_ignores_range_is_coped_with(emulator, tmp_path, ignored):
    data = dataset_zip(n=10)
    emulator.add_file("data.zip", data)
    emulator.configure(range_ignored_next=ignored)
    result = pull(emulator, "data.zip", tmp_path / "out", transfers=1)
    assert result.ok, result.failed
    # Asked again up to RANGE_IGNORED_RETRIES times, then read through to the offset: the tail and the one run
    # of members (4 MiB) each take 1 + 3 ignored answers before reading through.
    assert result.range_ignored == min(ignored, 8)
    if ignored > 4:
        assert result.bytes_received > len(data)       # reading through cost bytes before the offsets wanted
    assert tree(tmp_path / "out") == unzipped(data, tmp_path)


def test_under_the_google_like_front_end(tmp_path):
    from drivesync.emulator import Emulator

    data = dataset_zip(n=30)
    with Emulator(tmp_path / "drive", profile="google-like", range_ignored_rate=0.3, seed=5) as emu:
        emu.add_file("data.zip", data)
        result = pull(emu, "data.zip", tmp_path / "out", range_size=256 * 1024)
    assert result.ok, result.failed
    assert tree(tmp_path / "out") == unzipped(data, tmp_path)


def test_zip64_archive(emulator, tmp_path, monkeypatch):
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)      # zipfile writes zip64 records above these
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 1000)
    data = dataset_zip(n=5)
    monkeypatch.undo()
    assert b"PK\x06\x06" in data
    emulator.add_file("data.zip", data)
    assert pull(emulator, "data.zip", tmp_path / "out").ok
    assert tree(tmp_path / "out") == unzipped(data, tmp_path)


def test_keep_archive_keeps_it_beside_dir_and_default_dir_is_the_name(emulator, tmp_path, monkeypatch):
    data = dataset_zip(n=5)
    emulator.add_file("data.zip", data)
    monkeypatch.chdir(tmp_path)
    result = pull(emulator, "data.zip", None, keep_archive=True)
    assert result.ok and result.local == str(tmp_path / "data")
    assert (tmp_path / "data.zip").read_bytes() == data
    assert tree(tmp_path / "data") == unzipped(data, tmp_path)
    with pytest.raises(DrivesyncError, match="--keep-archive goes with --extract"):
        drivesync.pull("data.zip", "x", credentials=emulator.credentials_path, api_url=emulator.url,
                       keep_archive=True)


def raw_member_name(data: bytes, old: bytes, new: bytes) -> bytes:
    """Rename a member in the bytes (local header and central directory), same length: names zipfile refuses."""
    assert len(old) == len(new) and data.count(old) == 2
    return data.replace(old, new)


def hostile_zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("ok.txt", b"fine")
        z.writestr("../evil.txt", b"outside")
        z.writestr("/abs.txt", b"absolute")
        z.writestr("a/../../up.txt", b"up")
        z.writestr("NULxname", b"nul")
        z.writestr("new\nline/../../x", b"a newline in the name (shown escaped), and '..' after it")
        z.writestr("L" * 300, b"too long")
        z.writestr("x.drivesync-partial", b"looks like ours")
        z.writestr("bomb.bin", bytes(20 * MiB))
        z.writestr("liar.bin", b"y" * 50_000)
        z.writestr("badcrc.bin", b"z" * 50_000)
        for name, target in (("inside-link", "ok.txt"), ("outside-link", "../../etc/passwd"),
                             ("abs-link", "/etc/passwd")):
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (0o120777 << 16)
            z.writestr(info, target)
        z.writestr("sub/also-ok.txt", b"fine too")
    data = raw_member_name(buf.getvalue(), b"NULxname", b"NUL\x00name")
    # liar.bin: the directory says 40,000 bytes; badcrc.bin: its CRC (in both headers) is another file's.
    import struct
    import zlib
    cd = data.index(b"PK\x01\x02" + data[data.index(b"PK\x01\x02") + 4:data.index(b"PK\x01\x02") + 8])
    for name, field, value in ((b"liar.bin", 24, 40_000), (b"badcrc.bin", 16, zlib.crc32(b"other"))):
        at = data.index(b"PK\x01\x02", cd)
        while data[at + 46:at + 46 + len(name)] != name:
            at = data.index(b"PK\x01\x02", at + 4)
        data = data[:at + field] + struct.pack("<L", value) + data[at + field + 4:]
        if field == 16:
            lh = data.index(b"PK\x03\x04" + data[at + 6:at + 10])   # same version and flags: search by name
            lh = data.rfind(b"PK\x03\x04", 0, data.index(name))
            data = data[:lh + 14] + struct.pack("<L", value) + data[lh + 18:]
    return data


def test_hostile_members_are_refused_one_line_each_and_nothing_of_them_is_written(emulator, tmp_path):
    emulator.add_file("hostile.zip", hostile_zip())
    out = tmp_path / "deep" / "out"
    result = pull(emulator, "hostile.zip", out)
    assert not result.ok
    why = {f.path: f.reason for f in result.failed}
    assert set(why) == {"../evil.txt", "/abs.txt", "a/../../up.txt", "NUL\\x00name", "L" * 300, "new\\nline/../../x",
                        "x.drivesync-partial", "bomb.bin", "liar.bin", "badcrc.bin", "outside-link", "abs-link"}
    assert "'..'" in why["../evil.txt"] and "absolute" in why["/abs.txt"] and "'..'" in why["a/../../up.txt"]
    assert "unsafe" in why["NUL\\x00name"] and "unsafe" in why["L" * 300] and "unsafe" in why["x.drivesync-partial"]
    assert "'..'" in why["new\\nline/../../x"]
    assert "zip bomb" in why["bomb.bin"]
    assert "holds more than the 40000 bytes" in why["liar.bin"]
    assert "CRC-32" in why["badcrc.bin"]
    assert "leaves DIR" in why["outside-link"] and "leaves DIR" in why["abs-link"]
    assert all("\n" not in r for r in why.values())
    assert tree(out) == {"ok.txt": b"fine", "sub/": None, "sub/also-ok.txt": b"fine too",
                         "inside-link": ("link", "ok.txt")}
    assert sorted(os.listdir(tmp_path)) == ["deep", "drive", "state"] and os.listdir(tmp_path / "deep") == ["out"]
    no_partials(tmp_path)


def test_the_cli_says_one_line_per_refusal_and_exits_non_zero(emulator, tmp_path):
    emulator.add_file("hostile.zip", hostile_zip())
    emulator.add_file("notes.txt", b"not an archive")
    emulator.add_file("broken.zip", b"PK\x03\x04 but nothing else of a zip" * 10)
    env = env_for(tmp_path, emulator)
    env["DRIVESYNC_CREDENTIALS"] = emulator.credentials_path

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "drivesync", "pull", *args, "--credentials",
                               emulator.credentials_path, "-q"], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=120)

    r = cli("hostile.zip", str(tmp_path / "out"), "--extract")
    assert r.returncode != 0
    failed = [line for line in r.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 12 and "Traceback" not in r.stderr
    assert (tmp_path / "out" / "ok.txt").read_bytes() == b"fine"
    for args, says in ((("notes.txt", "n", "--extract"), "--extract reads zip and tar archives"),
                       (("broken.zip", "b", "--extract"), "not a zip archive"),
                       (("hostile.zip", "k", "--keep-archive"), "--keep-archive goes with --extract")):
        r = cli(*args)
        assert r.returncode != 0 and "Traceback" not in r.stderr
        assert says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "n").exists() and not (tmp_path / "k").exists() and not (tmp_path / "b").exists()


# -- tar ---------------------------------------------------------------------------------------------------


def add(t, name, data=None, **kw):
    ti = tarfile.TarInfo(name)
    ti.mtime = 1_700_000_000
    for k, v in kw.items():
        setattr(ti, k, v)
    if data is not None:
        ti.size = len(data)
    t.addfile(ti, io.BytesIO(data) if data is not None else None)


def dataset_tar(mode):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:
        add(t, "d", type=tarfile.DIRTYPE, mode=0o755)
        for i in range(20):
            add(t, f"d/img_{i:02d}.jpg", os.urandom(10_000 + 1000 * i))
        add(t, "d/big.bin", os.urandom(2 * MiB + 3))
        add(t, "d/link", type=tarfile.SYMTYPE, linkname="img_00.jpg")
        add(t, "d/hard", type=tarfile.LNKTYPE, linkname="d/img_01.jpg")
        add(t, "caf\u00e9.txt", "\u00fcber".encode())
    return buf.getvalue()


def untarred(data, tmp_path):
    ref = tmp_path / "reference-tar"
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        t.extractall(ref)
    return tree(ref)


@pytest.mark.parametrize("name, mode", [("data.tar", "w"), ("data.tar.gz", "w:gz"), ("data.tgz", "w:gz"),
                                        ("data.tar.bz2", "w:bz2"), ("data.tar.xz", "w:xz")])
def test_tar_family_stream_extracts(emulator, tmp_path, name, mode):
    data = dataset_tar(mode)
    emulator.add_file(name, data)
    emulator.reset_stats()
    out = tmp_path / "out"
    result = pull(emulator, name, out)
    assert result.ok, result.failed
    assert tree(out) == untarred(data, tmp_path)
    assert os.path.samefile(out / "d" / "hard", out / "d" / "img_01.jpg")
    assert os.stat(out / "d" / "big.bin").st_mtime == 1_700_000_000
    assert result.done == 24 and result.bytes == len(data)
    no_partials(tmp_path)
    again = pull(emulator, name, out)           # resumable: the stream comes again, the members are skipped
    assert again.ok and (again.done, again.skipped) == (0, 24)
    assert tree(out) == untarred(data, tmp_path)


def test_tar_zst_with_the_zstandard_extra(emulator, tmp_path):
    import zstandard   # in the dev extra: a missing one fails, never skips
    data = zstandard.ZstdCompressor().compress(dataset_tar("w"))
    emulator.add_file("data.tar.zst", data)
    result = pull(emulator, "data.tar.zst", tmp_path / "out")
    assert result.ok, result.failed
    assert tree(tmp_path / "out") == untarred(dataset_tar_cache(data), tmp_path)


def dataset_tar_cache(zst_data):
    import zstandard

    return zstandard.ZstdDecompressor().decompress(zst_data, max_output_size=64 * MiB)


def test_tar_cut_mid_stream_resumes(emulator, tmp_path):
    data = dataset_tar("w:gz")
    emulator.add_file("data.tar.gz", data)
    emulator.configure(cut_next=3, cut_after_bytes=300_000)
    result = pull(emulator, "data.tar.gz", tmp_path / "out")
    assert result.ok and result.retries >= 1
    assert tree(tmp_path / "out") == untarred(data, tmp_path)


def test_hostile_tar_members_are_refused(emulator, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        add(t, "ok.txt", b"fine")
        add(t, "../evil.txt", b"outside")
        add(t, "/abs.txt", b"abs")
        add(t, "out-link", type=tarfile.SYMTYPE, linkname="../../etc/passwd")
        add(t, "abs-link", type=tarfile.SYMTYPE, linkname="/etc/passwd")
        add(t, "out-hard", type=tarfile.LNKTYPE, linkname="../outside")
        add(t, "fifo", type=tarfile.FIFOTYPE)
        add(t, "dev", type=tarfile.CHRTYPE)
        add(t, "x.drivesync-partial", b"ours")
        add(t, "sub/in-link", type=tarfile.SYMTYPE, linkname="../ok.txt")
        add(t, "bomb", bytes(30 * MiB))
        add(t, "last.txt", b"still extracted")
    emulator.add_file("hostile.tar.gz", buf.getvalue())
    out = tmp_path / "out"
    result = pull(emulator, "hostile.tar.gz", out)
    why = {f.path: f.reason for f in result.failed}
    assert set(why) == {"../evil.txt", "/abs.txt", "out-link", "abs-link", "out-hard", "fifo", "dev",
                        "x.drivesync-partial", "bomb"}
    assert "zip bomb" in why["bomb"] and "device or fifo" in why["fifo"] and "leaves DIR" in why["out-hard"]
    assert tree(out) == {"ok.txt": b"fine", "last.txt": b"still extracted", "sub/": None,
                         "sub/in-link": ("link", "../ok.txt")}
    assert sorted(os.listdir(tmp_path)) == ["drive", "out", "state"]
    no_partials(tmp_path)


def test_a_damaged_tar_is_one_line_and_leaves_no_partial(emulator, tmp_path):
    data = dataset_tar("w:gz")
    emulator.add_file("cut.tar.gz", data[:len(data) // 2])
    with pytest.raises(DrivesyncError, match="damaged|not a tar"):
        pull(emulator, "cut.tar.gz", tmp_path / "out")
    no_partials(tmp_path)
    emulator.add_file("junk.tar", b"no tar here" * 100)
    with pytest.raises(DrivesyncError, match="damaged|not a tar"):
        pull(emulator, "junk.tar", tmp_path / "junk" / "deeper")
    assert not (tmp_path / "junk").exists()                # refused as a whole: no empty DIR left behind


def test_world_nodes_extract_a_zips_members_once_between_them(emulator, tmp_path):
    data = dataset_zip(n=30)
    emulator.add_file("data.zip", data)
    reference = unzipped(data, tmp_path)
    got, fetched = {}, 0
    for rank in range(3):
        result = pull(emulator, "data.zip", tmp_path / f"node{rank}", shard=f"{rank}/3")
        assert result.ok and result.shard == f"{rank}/3"
        got[rank] = {k: v for k, v in tree(tmp_path / f"node{rank}").items() if v is not None}
        assert result.done == len(got[rank])
        fetched += result.bytes
    names = [k for r in got for k in got[r]]
    assert len(names) == len(set(names))                                           # disjoint
    assert {k: v for r in got for k, v in got[r].items()} == {k: v for k, v in reference.items() if v is not None}
    assert fetched < len(data) * 1.2                     # one copy of the members in all, plus each node's tail
    shared = tmp_path / "shared"
    for rank in range(3):
        assert pull(emulator, "data.zip", shared, shard=(rank, 3)).ok
    assert tree(shared) == reference                     # nodes sharing one folder end with the whole archive


def test_a_tar_cannot_be_sharded(emulator, tmp_path):
    emulator.add_file("data.tar", dataset_tar("w"))
    with pytest.raises(DrivesyncError, match="needs a zip"):
        pull(emulator, "data.tar", tmp_path / "out", shard="0/2")
    assert not (tmp_path / "out").exists()


def test_kill_9_mid_extraction_leaves_only_whole_members_and_a_rerun_finishes(emulator, tmp_path):
    data = dataset_zip(n=40, compression=zipfile.ZIP_STORED)
    emulator.add_file("data.zip", data)
    reference = unzipped(data, tmp_path)
    emulator.configure(download_bps_total=1_000_000, download_burst_total=64 * 1024)     # slow enough to kill
    env = env_for(tmp_path, emulator)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "drivesync", "pull", "data.zip", str(out), "--extract", "-q",
                             "--credentials", emulator.credentials_path, "--range-size", "256K"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            if proc.poll() is not None or len([v for v in (tree(out) if out.exists() else {}).values() if v]) >= 5:
                break
            time.sleep(0.05)
        proc.kill()
    finally:
        proc.wait(30)
    # Hidden partials of the members in flight may stay after kill -9 (the rerun reuses their names).
    landed = {k: v for k, v in tree(out).items() if v is not None and not k.endswith(("/", PARTIAL_SUFFIX))}
    assert 0 < len(landed) < len([v for v in reference.values() if v is not None])
    for name, content in landed.items():
        assert content == reference[name], name          # a final name only ever holds a whole, verified member
    emulator.configure(download_bps_total=None)
    again = pull(emulator, "data.zip", out)
    assert again.ok and again.skipped >= len(landed) - 1
    assert tree(out) == reference
    no_partials(out)


@pytest.mark.parametrize("ignored", [0, 3])
def test_a_large_member_and_a_large_tar_come_through_several_streams_in_order(emulator, tmp_path, ignored):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("stored.bin", os.urandom(3 * MiB + 5), compress_type=zipfile.ZIP_STORED)
        z.writestr("deflated.bin", os.urandom(2 * MiB) + bytes(1 * MiB), compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("small.txt", b"small")
    data = buf.getvalue()
    emulator.add_file("big.zip", data)
    tar = dataset_tar("w:gz")
    emulator.add_file("big.tar.gz", tar)
    emulator.reset_stats()
    emulator.configure(range_ignored_next=ignored)
    knobs = dict(multistream_cutoff=1 * MiB, io_buffer=64 * 1024, streams_per_file=4, range_size=64 * MiB)
    result = pull(emulator, "big.zip", tmp_path / "zip", **knobs)
    assert result.ok, result.failed
    assert tree(tmp_path / "zip") == unzipped(data, tmp_path)
    # 128 KiB pieces: each large member took many requests, not one.
    assert result.requests > 40
    result = pull(emulator, "big.tar.gz", tmp_path / "tar", **knobs)
    assert result.ok, result.failed
    assert result.requests > 10 and result.bytes == len(tar)
    assert tree(tmp_path / "tar") == untarred(tar, tmp_path)


@pytest.mark.skipif(not (shutil.which("zip") and shutil.which("unzip")), reason="needs Info-ZIP's zip and unzip")
def test_an_info_zip_archive_lands_exactly_as_unzip_d_puts_it(emulator, tmp_path):
    src = tmp_path / "src"
    (src / "data" / "nested").mkdir(parents=True)
    (src / "data" / "a.txt").write_bytes(b"a" * 10_000)
    (src / "data" / "nested" / "b.bin").write_bytes(os.urandom(300_000))
    (src / "data" / "empty").mkdir()
    os.symlink("a.txt", src / "data" / "link-to-a")
    subprocess.run(["zip", "-q", "-r", "-y", str(tmp_path / "made.zip"), "data"], cwd=src, check=True)
    data = (tmp_path / "made.zip").read_bytes()
    emulator.add_file("made.zip", data)
    result = pull(emulator, "made.zip", tmp_path / "ours")
    assert result.ok, result.failed
    subprocess.run(["unzip", "-q", str(tmp_path / "made.zip"), "-d", str(tmp_path / "theirs")], check=True)
    assert tree(tmp_path / "ours") == tree(tmp_path / "theirs")
    assert os.path.islink(tmp_path / "ours" / "data" / "link-to-a")
    for rel in ("data/a.txt", "data/nested/b.bin"):      # the exact mtime of Info-ZIP's UT field, as unzip sets it
        assert os.stat(tmp_path / "ours" / rel).st_mtime == os.stat(tmp_path / "theirs" / rel).st_mtime


def test_a_zip_smaller_than_its_tail_read_comes_in_one_request(emulator, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for i in range(20):
            z.writestr(f"f{i}.txt", f"file {i}\n".encode() * 100)
    data = buf.getvalue()
    assert len(data) < 65_536
    emulator.add_file("small.zip", data)
    emulator.reset_stats()
    result = pull(emulator, "small.zip", tmp_path / "out")
    assert result.ok and result.done == 20 and result.bytes == len(data)
    assert tree(tmp_path / "out") == unzipped(data, tmp_path)
    assert emulator.stats()["by_kind"]["media"] == 1       # the tail read was the whole archive: no second fetch


def test_filters_pick_members_and_only_their_bytes_are_fetched(emulator, tmp_path):
    data = dataset_zip(n=30, compression=zipfile.ZIP_STORED)
    emulator.add_file("data.zip", data)
    reference = unzipped(data, tmp_path)
    result = pull(emulator, "data.zip", tmp_path / "out", include=["images/class_1/**"])
    assert result.ok
    want = {k: v for k, v in reference.items() if k.startswith("images/class_1/") and v is not None}
    got = {k: v for k, v in tree(tmp_path / "out").items() if v is not None}
    assert got == want and result.done == len(want) == 10
    assert result.filtered == 34 - 10                      # 30 images and 4 other files in the zip
    assert result.bytes < len(data) / 2                     # the other members' bytes were never fetched
    tar = dataset_tar("w:gz")
    emulator.add_file("data.tar.gz", tar)
    from drivesync.filters import Filter

    result = pull(emulator, "data.tar.gz", tmp_path / "t",
                  filter=Filter([(False, "d/img_1*"), (False, "d/link")], max_size=100_000))
    ref = untarred(tar, tmp_path)
    assert {k for k, v in tree(tmp_path / "t").items() if v is not None} == {
        k for k, v in ref.items() if v is not None and not k.startswith(("d/img_1", "d/link"))
        and not (isinstance(v, bytes) and len(v) > 100_000)}
    assert result.filtered > 10
