"""drivesync:// (drivesync/fs.py) against the emulator over real sockets, through fsspec itself and the engines
that read through it: listing and the id cache, ranged reads, seek, get through the parallel downloader, every
REMOTE form, fsspec's chaining into a zip, pandas and pyarrow reading CSV and Parquet, writes that appear only
when committed (close, transactions), folders, rm and mv, and errors as the OS errors fsspec expects."""
from __future__ import annotations

import asyncio
import hashlib
import io
import os
import tempfile
import zipfile

import fsspec
import numpy as np
import pandas as pd               # the engines are in the dev extra: a missing one fails, never skips
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from drivesync.config import Settings

from drivesync.fs import DriveFileSystem, DriveFsError

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("DRIVESYNC_API_URL", raising=False)


@pytest.fixture
def so(emulator):
    """storage_options, as a user passes them to pandas or fsspec.open."""
    return {"credentials": emulator.credentials_path, "api_url": emulator.url}


@pytest.fixture
def fs(so):
    fs = DriveFileSystem(**so, skip_instance_cache=True)
    yield fs
    fs.close()


def sent(fs) -> int:
    """Requests this file system's Transport has sent so far (counted by the client: the emulator counts an
    answer after its body went out, so its counters can trail the client by a request)."""
    session = fs._session_
    return session.drive.t.stats.requests if session is not None else 0


def children_named(emu, parent_id, name):
    return [c for c in emu.children(parent_id) if c["name"] == name and not c.get("trashed")]


# -- reading ----------------------------------------------------------------------------------------


def test_the_entry_point_registers_the_protocol(so):
    cls = fsspec.get_filesystem_class("drivesync")
    assert cls is DriveFileSystem
    assert "drivesync" in fsspec.available_protocols()


def test_ls_info_find_glob_with_batched_listings_and_an_id_cache(emulator, fs):
    emu = emulator
    top = emu.add_folder("deeplearning")
    ids = {"deeplearning/a.csv": emu.add_file("a.csv", b"x,y\n1,2\n", parent_id=top)}
    # 30 folders over 3 levels: a walk folder by folder would cost 30+ listings, batched ones a handful.
    for i in range(10):
        sub = emu.add_folder(f"s{i}", top)
        for j in range(2):
            deep = emu.add_folder(f"d{j}", sub)
            path = f"deeplearning/s{i}/d{j}/part.bin"
            ids[path] = emu.add_file("part.bin", bytes([i, j]) * 10, parent_id=deep)
    found = fs.find("deeplearning")
    assert found == sorted(ids)
    listings = sent(fs)
    # resolve (1), the top folder (1), then each of the two levels below (10 and 20 folders) spread over
    # list_concurrency queries at most, so their pages come in parallel; folder by folder would be 32.
    slots = Settings().list_concurrency
    spread = sum(-(-n // -(-n // slots)) for n in (10, 20))
    assert listings <= 1 + 1 + spread < 1 + 1 + 30, f"find cost {listings} requests for 31 folders"
    # Everything below was listed once: ls, info, glob and isdir answer from the caches.
    before = sent(fs)
    assert fs.ls("deeplearning/s3", detail=False) == ["deeplearning/s3/d0", "deeplearning/s3/d1"]
    info = fs.info("deeplearning/s4/d1/part.bin")
    assert (info["type"], info["size"], info["id"]) == ("file", 20, ids["deeplearning/s4/d1/part.bin"])
    assert info["md5Checksum"] == hashlib.md5(bytes([4, 1]) * 10).hexdigest()
    assert fs.glob("deeplearning/s*/d1/*.bin") == sorted(p for p in ids if "/d1/" in p)
    assert fs.isdir("deeplearning/s9") and fs.isfile("deeplearning/a.csv")
    assert not fs.exists("deeplearning/s9/nothing-here")
    assert sent(fs) == before
    # A fresh file system pays for what it asks only: a path as the CLI resolves it (one name query per
    # level, from My Drive's 'root' alias), a glob one listing of the folder, then nothing more for what
    # that listed.
    other = DriveFileSystem(credentials=emu.credentials_path, api_url=emu.url, skip_instance_cache=True)
    assert other.info("deeplearning/a.csv")["id"] == ids["deeplearning/a.csv"]
    assert sent(other) == 2
    assert other.glob("deeplearning/*") == ["deeplearning/a.csv"] + [f"deeplearning/s{i}" for i in range(10)]
    assert sent(other) <= 6
    before = sent(other)
    assert [other.info(f"deeplearning/s{i}")["type"] for i in range(10)] == ["directory"] * 10
    assert sent(other) == before
    # Two levels deep: the ten folders of the first level listed (once each), nothing deeper.
    assert other.glob("deeplearning/*/*") == sorted(f"deeplearning/s{i}/d{j}" for i in range(10) for j in range(2))
    assert sent(other) - before == 10
    assert other.find("deeplearning", maxdepth=1) == ["deeplearning/a.csv"]
    other.close()


def test_cat_file_with_start_and_end_and_cat_ranges(emulator, fs):
    emu = emulator
    data = os.urandom(300_000)
    emu.add_file("blob.bin", data)
    assert fs.cat_file("blob.bin") == data
    assert fs.cat_file("drivesync://blob.bin", start=1000, end=1010) == data[1000:1010]
    assert fs.cat_file("blob.bin", start=-100) == data[-100:]
    assert fs.cat_file("blob.bin", start=10, end=-10) == data[10:-10]
    assert fs.cat_file("blob.bin", start=299_990, end=400_000) == data[299_990:]
    assert fs.cat_file("blob.bin", start=5, end=5) == b""
    starts, ends = [0, 5000, 123_456, 299_000], [10, 5100, 200_000, 300_000]
    before, bytes_before = sent(fs), emu.stats()["bytes_sent"]
    got = fs.cat_ranges(["blob.bin"] * 4, starts, ends)
    assert got == [data[s:e] for s, e in zip(starts, ends)]
    assert sent(fs) - before == 4          # one ranged GET each (the item is cached), never the whole file
    assert emu.stats()["bytes_sent"] - bytes_before < len(data)
    emu.add_file("empty.txt", b"")
    assert fs.cat_file("empty.txt") == b""


def test_a_long_read_goes_as_parallel_ranges(emulator, fs):
    emu = emulator
    data = os.urandom(40 * MiB + 3)
    emu.add_file("long.bin", data)
    fs.info("long.bin")
    before = sent(fs)
    assert fs.cat_file("long.bin") == data
    assert sent(fs) - before == 11          # 4 MiB ranges (the last one 3 bytes), not one 40 MiB stream
    before = sent(fs)
    assert fs.cat_file("long.bin", start=MiB, end=9 * MiB) == data[MiB:9 * MiB]
    assert sent(fs) - before == 1           # two pieces or less: one GET


def test_open_rb_seeks_and_reads_ahead_in_ranged_gets(emulator, fs):
    emu = emulator
    data = os.urandom(3 * MiB + 17)
    fid = emu.add_file("big.bin", data)
    with fs.open("big.bin", "rb", block_size=1 * MiB) as f:
        opened = sent(fs)
        assert f.size == len(data)
        f.seek(2 * MiB + 5)
        assert f.read(100) == data[2 * MiB + 5:2 * MiB + 105]
        f.seek(-7, 2)
        assert f.read() == data[-7:]
        f.seek(10)
        pieces = [f.read(64 * 1024) for _ in range(32)]   # 2 MiB of small reads: served from read-ahead blocks
        assert b"".join(pieces) == data[10:10 + 2 * MiB]
        assert f.tell() == 10 + 2 * MiB
    assert opened <= 3                      # resolving the path: the root, one name query
    media = sent(fs) - opened
    assert 3 <= media <= 6, f"{media} ranged GETs for three reads and 2 MiB read in 32 pieces with 1 MiB blocks"
    with fsspec.open(f"drivesync://id:{fid}", "rb", credentials=emu.credentials_path, api_url=emu.url) as f:
        assert f.read(16) == data[:16]


def test_a_file_that_changes_on_drive_between_reads_is_one_line_not_mixed_bytes(emulator, fs):
    emu = emulator
    old = os.urandom(2 * MiB)
    fid = emu.add_file("moving.bin", old)
    with fs.open("moving.bin", "rb", block_size=256 * 1024) as f:
        assert f.read(1000) == old[:1000]
        fs.pipe_file(f"id:{fid}", os.urandom(2 * MiB + 1))       # a new revision, one byte longer
        f.seek(MiB)
        with pytest.raises(DriveFsError, match="changed on Drive while it was read") as caught:
            f.read(1000)
    assert "\n" not in str(caught.value)


def test_get_goes_through_the_parallel_ranged_downloader(emulator, so, tmp_path):
    emu = emulator
    fs = DriveFileSystem(**so, multistream_cutoff=1 * MiB, range_size=256 * 1024, skip_instance_cache=True)
    top = emu.add_folder("ds")
    big = os.urandom(2 * MiB + 3)
    emu.add_file("big.bin", big, parent_id=top)
    sub = emu.add_folder("sub", top)
    emu.add_file("small.txt", b"small", parent_id=sub)
    fs.info("ds/big.bin")
    before = sent(fs)
    fs.get_file("ds/big.bin", str(tmp_path / "one.bin"))
    assert (tmp_path / "one.bin").read_bytes() == big
    assert sent(fs) - before >= 9            # 2 MiB in 256 KiB ranges
    fs.get("ds", str(tmp_path / "copy"), recursive=True)
    assert (tmp_path / "copy" / "big.bin").read_bytes() == big
    assert (tmp_path / "copy" / "sub" / "small.txt").read_bytes() == b"small"
    leftovers = [n for _, _, files in os.walk(tmp_path / "copy") for n in files if "partial" in n]
    assert leftovers == []
    fs.close()


def test_every_remote_form_names_the_same_bytes(emulator, fs):
    emu = emulator
    top = emu.add_folder("deeplearning")
    fid = emu.add_file("data.bin", b"the bytes", parent_id=top)
    assert fs.cat_file("drivesync://deeplearning/data.bin") == b"the bytes"
    assert fs.cat_file(f"id:{fid}") == b"the bytes"
    assert fs.cat_file(f"id:{top}/data.bin") == b"the bytes"
    assert fs.ls(f"id:{top}", detail=False) == [f"id:{top}/data.bin"]
    assert fs.cat_file(f"drivesync://https://drive.google.com/file/d/{fid}/view?usp=sharing") == b"the bytes"
    # An item another account shared with this one, and a shared drive this account is a member of.
    emu.add_account("friend@example.com")
    theirs = emu.add_folder("their-data", owner="friend@example.com")
    emu.add_file("t.csv", b"shared,csv\n", parent_id=theirs, owner="friend@example.com")
    emu.share(theirs, "emulated.user@example.com", "reader")
    assert fs.cat_file("shared-with-me:their-data/t.csv") == b"shared,csv\n"
    assert "shared-with-me:their-data" in fs.ls("shared-with-me:", detail=False)
    team = emu.add_drive("Team", organizer="friend@example.com", members={"emulated.user@example.com": "writer"})
    emu.add_file("model.pt", b"weights", parent_id=team)
    assert fs.cat_file("shared-drive:Team/model.pt") == b"weights"
    assert fs.ls("shared-drive:", detail=False) == ["shared-drive:Team"]
    assert fs.ls("shared-drive:Team", detail=False) == ["shared-drive:Team/model.pt"]
    fs.pipe_file("shared-drive:Team/runs/1/out.txt", b"written into a shared drive")
    assert fs.cat_file("shared-drive:Team/runs/1/out.txt") == b"written into a shared drive"


def test_names_drive_allows_and_paths_cannot_hold_are_listed_by_id(emulator, fs):
    emu = emulator
    top = emu.add_folder("odd")
    a = emu.add_file("dup.txt", b"first", parent_id=top)
    b = emu.add_file("dup.txt", b"second", parent_id=top)
    s = emu.add_file("a/b", b"slash", parent_id=top)
    emu.add_file("plain.txt", b"plain", parent_id=top)
    names = fs.ls("odd", detail=False)
    assert sorted(names) == sorted([f"id:{a}", f"id:{b}", f"id:{s}", "odd/plain.txt"])
    assert {fs.cat_file(n) for n in names} == {b"first", b"second", b"slash", b"plain"}


def test_missing_paths_folders_and_docs_are_the_errors_fsspec_expects(emulator, fs):
    emu = emulator
    top = emu.add_folder("d")
    emu.add_doc("Notes", top, text="hello")
    with pytest.raises(FileNotFoundError):
        fs.cat_file("d/missing.csv")
    with pytest.raises(FileNotFoundError):
        fs.info("nothing/at/all")
    with pytest.raises(FileNotFoundError):
        fs.open("d/missing.csv", "rb")
    with pytest.raises(FileNotFoundError, match="cannot see"):
        fs.cat_file("id:1NoSuchFileAnywhere0000000000")
    assert not fs.exists("d/missing.csv")
    with pytest.raises(IsADirectoryError):
        fs.cat_file("d")
    with pytest.raises(DriveFsError, match="Google Docs") as caught:
        fs.cat_file("d/Notes")
    assert "\n" not in str(caught.value)
    with pytest.raises(NotADirectoryError):
        fs.ls("d/Notes/below")


def test_credentials_and_settings_that_cannot_work_are_one_line(emulator, tmp_path):
    from drivesync.errors import AuthError, UsageError

    with pytest.raises(UsageError) as caught:
        DriveFileSystem(api_url=emulator.url, tps=-1, skip_instance_cache=True)
    assert "\n" not in str(caught.value)
    fs = DriveFileSystem(credentials=str(tmp_path / "missing.json"), api_url=emulator.url, skip_instance_cache=True)
    with pytest.raises(AuthError) as caught:
        fs.ls("")
    assert "missing.json" in str(caught.value) and "\n" not in str(caught.value)


def test_credentials_are_found_once_on_the_callers_thread(emulator, so, monkeypatch):
    """Colab's sign-in prompt (auth.colab_sign_in) must run on the notebook's thread, not fsspec's IO thread."""
    import threading

    import drivesync.fs as fsmod

    threads = []
    real = fsmod.find_credentials

    def spy(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(fsmod, "find_credentials", spy)
    emulator.add_file("c.txt", b"c")
    fs = DriveFileSystem(**so, skip_instance_cache=True)
    assert threads == []                                  # nothing is looked up before it is used
    assert fs.cat_file("c.txt") == b"c" and fs.ls("", detail=False) == ["c.txt"]
    assert threads == [threading.current_thread().name]
    fs.close()


def test_zip_member_through_fsspec_chaining(emulator, so):
    emu = emulator
    buf = io.BytesIO()
    members = {f"images/{i:03d}.png": os.urandom(200_000 + i) for i in range(60)}     # 12 MB, 3 read-ahead blocks
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    top = emu.add_folder("datasets")
    emu.add_file("data.zip", buf.getvalue(), parent_id=top)
    before = emu.stats()["bytes_sent"]
    with fsspec.open("zip://images/017.png::drivesync://datasets/data.zip", drivesync=so) as f:
        assert f.read() == members["images/017.png"]
    # The central directory and one member: a few ranged GETs, not the whole archive.
    assert emu.stats()["bytes_sent"] - before < len(buf.getvalue()) / 2
    zfs = fsspec.filesystem("zip", fo="drivesync://datasets/data.zip", target_options=so)
    assert sorted(zfs.find("images")) == sorted(members)


def test_pandas_and_pyarrow_read_csv_and_parquet(emulator, so, fs):
    emu = emulator
    top = emu.add_folder("tables")
    df = pd.DataFrame({"a": range(1000), "b": [f"row {i}" for i in range(1000)], "c": [i * 0.5 for i in range(1000)]})
    emu.add_file("t.csv", df.to_csv(index=False).encode(), parent_id=top)
    got = pd.read_csv("drivesync://tables/t.csv", storage_options=so)
    pd.testing.assert_frame_equal(got, df)
    # Parquet written by pandas through drivesync:// (open('wb') -> upload), read back by pandas and pyarrow.
    df.to_parquet("drivesync://tables/t.parquet", storage_options=so, row_group_size=250)
    pd.testing.assert_frame_equal(pd.read_parquet("drivesync://tables/t.parquet", storage_options=so), df)
    before = sent(fs)
    table = pq.read_table("tables/t.parquet", filesystem=fs, columns=["c"])
    assert table.column_names == ["c"] and table.column("c").to_pylist() == df["c"].tolist()
    assert sent(fs) > before
    # A folder of Parquet files as one dataset.
    for i in range(3):
        part = df.iloc[i * 100:(i + 1) * 100]
        buf = io.BytesIO()
        part.to_parquet(buf, index=False)
        fs.pipe_file(f"tables/parts/p{i}.parquet", buf.getvalue())
    import pyarrow.dataset as ds

    dataset = ds.dataset("tables/parts", filesystem=fs, format="parquet")
    assert dataset.to_table().num_rows == 300
    assert sorted(dataset.to_table(columns=["a"]).column("a").to_pylist()) == list(range(300))


def test_asynchronous_use_on_the_callers_loop(emulator, so):
    emu = emulator
    emu.add_file("x.txt", b"async bytes")

    async def main():
        fs = DriveFileSystem(**so, asynchronous=True, skip_instance_cache=True)
        try:
            got = await asyncio.gather(fs._cat_file("x.txt"), fs._cat_file("x.txt", start=6))
            info = await fs._info("x.txt")
        finally:
            await fs._close()
        return got, info

    got, info = asyncio.run(main())
    assert got == [b"async bytes", b"bytes"] and info["size"] == 11


# -- writing ----------------------------------------------------------------------------------------


def test_pipe_and_put_create_missing_parents_once_and_overwrite_as_a_new_revision(emulator, fs, tmp_path):
    emu = emulator
    fs.pipe({f"runs/exp1/ckpt/{i}.txt": f"v{i}".encode() for i in range(6)})    # in parallel, one new tree
    runs = children_named(emu, emu.root_id, "runs")
    assert len(runs) == 1
    exp = children_named(emu, runs[0]["id"], "exp1")
    assert len(exp) == 1
    ckpt = children_named(emu, exp[0]["id"], "ckpt")
    assert len(ckpt) == 1 and len(emu.children(ckpt[0]["id"])) == 6
    first = fs.info("runs/exp1/ckpt/0.txt")["id"]
    fs.pipe_file("runs/exp1/ckpt/0.txt", b"second version")
    assert fs.info("runs/exp1/ckpt/0.txt")["id"] == first
    assert emu.content(first) == b"second version"
    assert len(emu.children(ckpt[0]["id"])) == 6
    with pytest.raises(FileExistsError):
        fs.pipe_file("runs/exp1/ckpt/1.txt", b"not over an existing file", mode="create")
    assert fs.cat_file("runs/exp1/ckpt/1.txt") == b"v1"
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(9 * MiB))            # above upload_cutoff: a resumable upload
    before = sent(fs)
    fs.put_file(str(local), "runs/exp1/big.bin")
    assert emu.content(fs.info("runs/exp1/big.bin")["id"]) == local.read_bytes()
    assert sent(fs) - before >= 3          # a session opened, then 16 MiB chunks: not one multipart request


def test_open_wb_is_visible_only_when_closed(emulator, fs):
    emu = emulator
    top = emu.add_folder("out")
    f = fs.open("out/model.bin", "wb", block_size=5 * MiB)
    f.write(os.urandom(6 * MiB))
    f.write(b"tail")
    assert children_named(emu, top, "model.bin") == []
    f.close()
    made = children_named(emu, top, "model.bin")
    assert len(made) == 1 and int(made[0]["size"]) == 6 * MiB + 4
    assert fs.cat_file("out/model.bin", start=-4) == b"tail"


def test_a_transaction_commits_every_file_at_its_end_or_none(emulator, fs, tmp_path, monkeypatch):
    emu = emulator
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))      # where open('wb') spools its bytes
    top = emu.add_folder("ckpts")
    with fs.transaction:
        with fs.open("ckpts/step-10.ckpt", "wb") as f:
            f.write(b"weights at step 10")
        fs.pipe_file("ckpts/step-10.json", b'{"step": 10}')
        assert emu.children(top) == []          # closed, but not committed
        assert len(os.listdir(spool)) == 2      # both wait on local disk
    assert sorted(c["name"] for c in emu.children(top)) == ["step-10.ckpt", "step-10.json"]
    assert fs.cat_file("ckpts/step-10.ckpt") == b"weights at step 10"
    with pytest.raises(RuntimeError):
        with fs.transaction:
            with fs.open("ckpts/step-20.ckpt", "wb") as f:
                f.write(b"half")
            raise RuntimeError("training crashed")
    assert sorted(c["name"] for c in emu.children(top)) == ["step-10.ckpt", "step-10.json"]
    assert not fs.exists("ckpts/step-20.ckpt")
    assert os.listdir(spool) == []          # committed and discarded spools are gone


def test_mkdir_rm_and_mv(emulator, fs):
    emu = emulator
    fs.makedirs("a/b/c", exist_ok=True)
    with pytest.raises(FileExistsError):
        fs.makedirs("a/b")
    fs.mkdir("a/b/c2")
    assert fs.ls("a/b", detail=False) == ["a/b/c", "a/b/c2"]
    fs.pipe_file("a/b/c/f.txt", b"f")
    with pytest.raises(OSError, match="not empty"):
        fs.rmdir("a/b/c")
    fs.rmdir("a/b/c2")
    assert fs.ls("a/b", detail=False) == ["a/b/c"]
    # mv: a rename, a move into an existing folder, a folder with everything in it (one update each).
    fid = fs.info("a/b/c/f.txt")["id"]
    fs.mv("a/b/c/f.txt", "a/g.txt")
    assert fs.info("a/g.txt")["id"] == fid and not fs.exists("a/b/c/f.txt")
    folder_id = fs.info("a/b")["id"]
    fs.mkdir("z")
    fs.mv("a/b", "z")
    assert fs.info("z/b")["id"] == folder_id and fs.ls("z/b", detail=False) == ["z/b/c"]
    assert not fs.exists("a/b")
    fs.pipe_file("z/old.txt", b"old")
    fs.mv("a/g.txt", "z/old.txt")                  # onto a file: replaces it
    assert fs.cat_file("z/old.txt") == b"f" and fs.info("z/old.txt")["id"] == fid
    # copy: through this machine, a new file with the same bytes; a folder's files too.
    fs.copy("z/old.txt", "z/copied/again.txt")
    assert fs.cat_file("z/copied/again.txt") == b"f" and fs.info("z/copied/again.txt")["id"] != fid
    fs.pipe_file("z/b/c/k.txt", b"k")
    fs.copy("z/b", "w", recursive=True)
    assert fs.find("w") == ["w/c/k.txt"] and fs.cat_file("w/c/k.txt") == b"k"
    assert fs.cat_file("z/b/c/k.txt") == b"k"
    # rm: a file, then a folder with everything below it in one request; rm goes to Drive's trash.
    fs.rm("z/old.txt")
    assert not fs.exists("z/old.txt") and emu.file(fid)["trashed"]
    for i in range(10):
        fs.pipe_file(f"z/b/c/n{i}.txt", b"n")
    before = sent(fs)
    fs.rm("z", recursive=True)
    assert sent(fs) - before <= 3          # one trash, not one per item below
    assert not fs.exists("z") and not fs.exists("z/b/c")
    with pytest.raises(FileNotFoundError):
        fs.rm("z/b")


def test_reads_survive_google_front_end_habits(tmp_path):
    """Range ignored (200 with the whole body), media bodies cut mid-way, 5xx and cut JSON answers: every
    read still returns exactly the bytes asked for."""
    from drivesync.emulator import Emulator

    with Emulator(tmp_path / "drive", profile="unthrottled", range_ignored_next=3, cut_next=3,
                  cut_after_bytes=50_000, error_rate=0.1, json_cut_rate=0.05, ord_parents_empty_rate=0.5,
                  gzip_json=True) as emu:
        top = emu.add_folder("d")
        data = os.urandom(1 * MiB + 5)
        emu.add_file("f.bin", data, parent_id=top)
        for i in range(5):
            emu.add_file(f"s{i}.txt", f"small {i}".encode(), parent_id=emu.add_folder(f"sub{i}", top))
        fs = DriveFileSystem(credentials=emu.credentials_path, api_url=emu.url, backoff_base=0.01,
                             backoff_cap=0.05, skip_instance_cache=True)
        try:
            assert fs.cat_file("d/f.bin", start=100_000, end=400_000) == data[100_000:400_000]   # Range ignored
            assert fs.cat_file("d/f.bin", start=7, end=300_007) == data[7:300_007]
            with fs.open("d/f.bin", "rb", block_size=256 * 1024) as f:
                f.seek(600_000)
                assert f.read(200_000) == data[600_000:800_000]
            assert fs.cat_file("d/f.bin") == data
            assert len(fs.find("d")) == 6                  # empty OR'd-parents answers rechecked
            stats = emu.stats()
            assert stats["cut_connections"] >= 3 and stats["frontend"], stats
        finally:
            fs.close()


def test_read_ahead_grows_for_sequential_reads_and_stays_small_for_random_ones(emulator, fs):
    emu = emulator
    data = os.urandom(8 * MiB)
    emu.add_file("seq.bin", data)
    with fs.open("seq.bin", "rb") as f:                  # the default: 256 KiB first, x4 while sequential
        start = sent(fs)
        pieces = [f.read(64 * 1024) for _ in range(128)]
        reads = sent(fs) - start
    assert b"".join(pieces) == data
    assert reads <= 7, f"{reads} GETs for 8 MiB read front to back (a fixed 256 KiB read-ahead takes 32)"
    # A Parquet file read column by column: each column's chunks (400 KB, above the first read-ahead), not a
    # block more per chunk (fsspec's stock readahead, 5 MiB blocks, serves this file 5.7 times over).
    rng = np.random.default_rng(3)
    table = pa.table({f"c{i}": rng.random(200_000) for i in range(8)})       # 1.6 MB per column
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=50_000)
    emu.add_file("cols.parquet", sink.getvalue().to_pybytes())
    fs.info("cols.parquet")
    served = emu.stats()["bytes_sent"]
    costs = []
    for name in table.column_names:
        before = sent(fs)
        got = pq.read_table("cols.parquet", filesystem=fs, columns=[name])
        costs.append(sent(fs) - before)
        assert got.column(name).to_pylist() == table.column(name).to_pylist()
    served = emu.stats()["bytes_sent"] - served
    # The footer once (read_table opens the file each time; its tail is kept by revision), then one GET per
    # row group's chunk of the column.
    assert costs[0] == 5 and set(costs[1:]) == {4}, costs
    assert served < 1.5 * len(sink.getvalue().to_pybytes()), "column by column read the file more than 1.5 times"


def test_a_link_shared_folder_with_its_resource_key(emulator, tmp_path):
    """Another account's folder shared by link, with a resource key: the link (key included) is a path, its
    children's paths carry the key, and reading below it works; without the key the folder is not found."""
    emu = emulator
    linked = emu.add_folder("linked")
    sub = emu.add_folder("sub", linked)
    emu.add_file("deep.txt", b"deep", parent_id=sub)
    emu.share(linked, None, "reader")                   # anyone with the link
    key = emu.set_resource_key(linked)
    student = emu.write_account_credentials("student@example.edu", tmp_path / "student.json")
    fs = DriveFileSystem(credentials=student, api_url=emu.url, skip_instance_cache=True)
    try:
        url = f"drivesync://https://drive.google.com/drive/folders/{linked}?usp=sharing&resourcekey={key}"
        assert fs.ls(url, detail=False) == [f"id:{linked}/sub?resourcekey={key}"]
        assert fs.find(url) == [f"id:{linked}/sub/deep.txt?resourcekey={key}"]
        assert fs.cat_file(f"id:{linked}/sub/deep.txt?resourcekey={key}") == b"deep"
        other = DriveFileSystem(credentials=student, api_url=emu.url, skip_instance_cache=True)
        with pytest.raises(FileNotFoundError, match="student@example.edu"):
            other.ls(f"id:{linked}")
        other.close()
    finally:
        fs.close()
