"""The client against each of Google's front-end habits, switched on one at a time in the emulator
(emulator/frontend.py), over real sockets: gzip JSON, HTML 5xx pages, bodies that are not JSON,
OR'd-parents listings answered empty, Range ignored, files without md5Checksum, a full Drive."""
from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from drivesync.cli import main
from drivesync.config import MiB, Settings
from drivesync.puller import pull, pull_async
from drivesync.session import open_drive


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))


def seed_tree(emu, folders=12, per_folder=6, size=3000):
    """data/ with nested folders (two levels), ``folders * per_folder`` files in all."""
    top = emu.add_folder("data")
    expected = {}
    for i in range(folders):
        parent = top if i < 4 else emu.path_id(f"data/d{i % 4}")
        name = f"d{i}"
        fid = emu.add_folder(name, parent)
        rel = f"d{i}" if i < 4 else f"d{i % 4}/d{i}"
        for j in range(per_folder):
            data = hashlib.sha256(f"{i}/{j}".encode()).digest() * (size // 32)
            emu.add_file(f"f{j}.bin", data, parent_id=fid)
            expected[f"{rel}/f{j}.bin"] = data
    return expected


def local_files(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, root)] = open(path, "rb").read()
    return out


def settings_for(emu, **kw):
    return Settings(api_url=emu.url, backoff_base=0.05, backoff_cap=0.2, **kw)


def test_gzip_json_is_read_and_shrinks_a_listing(emulator, tmp_path):
    top = emulator.add_folder("big")
    for i in range(400):
        emulator.add_file(f"file-{i:04}.txt", b"x", parent_id=top)

    async def list_bytes():
        async with open_drive(settings_for(emulator), credentials=emulator.credentials_path) as drive:
            files = await drive.list(f"'{top}' in parents")
            return len(files), drive.t.stats.wire_bytes

    plain = asyncio.run(list_bytes())
    emulator.configure(gzip_json=True)
    compressed = asyncio.run(list_bytes())
    assert plain[0] == compressed[0] == 400
    assert compressed[1] * 3 < plain[1], (plain, compressed)
    result = pull("big/", str(tmp_path / "out"), settings=settings_for(emulator), credentials=emulator.credentials_path)
    assert result.ok and result.done == 400


def test_html_502_503_pages_are_retried(emulator, tmp_path):
    expected = seed_tree(emulator, folders=4, per_folder=3)
    emulator.configure(html_error_next=5)
    result = pull("data/", str(tmp_path / "out"), settings=settings_for(emulator),
                  credentials=emulator.credentials_path)
    assert result.ok and local_files(tmp_path / "out") == expected
    assert result.retries >= 5


@pytest.mark.parametrize("mode", ["truncated", "drop", "html"])
def test_a_200_whose_body_is_not_json_is_retried(emulator, tmp_path, mode):
    expected = seed_tree(emulator, folders=4, per_folder=3)
    emulator.configure(json_cut_next=3, json_cut_modes=mode)
    result = pull("data/", str(tmp_path / "out"), settings=settings_for(emulator),
                  credentials=emulator.credentials_path)
    assert result.ok and local_files(tmp_path / "out") == expected
    assert result.retries >= 3


def test_a_200_that_is_never_json_fails_with_one_line_naming_the_call(emulator, tmp_path, capsys):
    emulator.add_folder("data")
    emulator.configure(json_cut_rate=1.0, json_cut_modes="html")
    code = main(["pull", "data/", str(tmp_path / "out"), "-q", "--api-url", emulator.url,
                 "--credentials", emulator.credentials_path, "--give-up-after", "2"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1 and "Traceback" not in err, err
    # The first call is the lookup of 'data' below My Drive's root (by the 'root' alias).
    assert "answer is not JSON (an HTML page" in lines[0] and "(files.list)" in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


def test_ord_parents_empties_never_lose_a_file(emulator, tmp_path):
    expected = seed_tree(emulator)        # 72 files in 12 folders on two levels
    emulator.configure(ord_parents_empty_next=1000)   # every OR'd-parents query answers empty
    # Four query slots: 12 folders spread over 16 would be queries of one parent each, never OR'd.
    result = pull("data/", str(tmp_path / "out"), settings=settings_for(emulator, list_concurrency=4),
                  credentials=emulator.credentials_path)
    assert result.ok and result.done == 72
    assert local_files(tmp_path / "out") == expected
    assert result.list_rechecks > 0


def test_ord_parents_empties_at_a_seeded_rate(emulator, tmp_path):
    expected = seed_tree(emulator)
    emulator.configure(ord_parents_empty_rate=0.5, seed=7)
    # Small batches, so there are many OR'd queries to spoil.
    result = pull("data/", str(tmp_path / "out"), settings=settings_for(emulator, list_batch=3),
                  credentials=emulator.credentials_path)
    assert result.ok and local_files(tmp_path / "out") == expected


def test_a_server_that_ignores_range_costs_the_file_once(emulator, tmp_path):
    data = os.urandom(24 * MiB)
    emulator.add_file("big.bin", data)
    emulator.configure(range_ignored_rate=1.0)
    settings = settings_for(emulator, multistream_cutoff=4 * MiB, range_size=2 * MiB, streams_per_file=8)
    result = pull("big.bin", str(tmp_path / "big.bin"), settings=settings, credentials=emulator.credentials_path)
    assert result.ok and (tmp_path / "big.bin").read_bytes() == data
    assert result.range_ignored == 1
    assert result.bytes_received <= 1.05 * len(data), result.bytes_received / len(data)


def test_a_server_that_ignores_range_sometimes(emulator, tmp_path):
    top = emulator.add_folder("data")
    files = {f"f{i}.bin": os.urandom(6 * MiB + i) for i in range(4)}
    for name, data in files.items():
        emulator.add_file(name, data, parent_id=top)
    emulator.configure(range_ignored_rate=0.3, seed=3)
    settings = settings_for(emulator, multistream_cutoff=1 * MiB, range_size=1 * MiB)
    result = pull("data/", str(tmp_path / "out"), settings=settings, credentials=emulator.credentials_path)
    assert result.ok and local_files(tmp_path / "out") == files


def test_files_without_md5checksum_are_verified_by_x_goog_hash(emulator, tmp_path, capsys):
    top = emulator.add_folder("data")
    files = {f"f{i}.bin": os.urandom(size) for i, size in enumerate([10, 200_000, 3 * MiB])}
    for name, data in files.items():
        emulator.add_file(name, data, parent_id=top)
    emulator.configure(md5_missing_rate=1.0)
    code = main(["pull", "data/", str(tmp_path / "out"), "-q", "--json", "--api-url", emulator.url,
                 "--credentials", emulator.credentials_path, "--range-size", "1M", "--multistream-cutoff", "1M"])
    import json

    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["verified_by_goog_hash"] == 3 and summary["verified_by_size_only"] == 0
    assert local_files(tmp_path / "out") == files


def test_flipped_bytes_without_md5checksum_are_still_caught(emulator, tmp_path):
    top = emulator.add_folder("data")
    small = emulator.add_file("small.bin", os.urandom(100_000), parent_id=top)
    big = emulator.add_file("big.bin", os.urandom(3 * MiB), parent_id=top)
    for fid in (small, big):   # a byte flipped on the way: same size, other bytes
        path = emulator.store.content_path(emulator.file(fid)["headRevisionId"])
        data = bytearray(path.read_bytes())
        data[len(data) // 3] ^= 0x01
        path.write_bytes(bytes(data))
    emulator.configure(md5_missing_rate=1.0)
    settings = settings_for(emulator, multistream_cutoff=1 * MiB, range_size=1 * MiB)
    result = pull("data/", str(tmp_path / "out"), settings=settings, credentials=emulator.credentials_path)
    assert sorted(f.path for f in result.failed) == ["big.bin", "small.bin"]
    assert all("mismatch" in f.reason for f in result.failed)
    assert not (tmp_path / "out" / "big.bin").exists() and not (tmp_path / "out" / "small.bin").exists()


def test_push_without_md5checksum_is_verified_and_counted(emulator, tmp_path):
    from drivesync.pusher import push

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.bin").write_bytes(os.urandom(1000))
    (src / "b.bin").write_bytes(os.urandom(9 * MiB))       # resumable
    emulator.configure(md5_missing_rate=1.0)
    result = push(str(src), "up", settings=settings_for(emulator), credentials=emulator.credentials_path)
    assert result.ok and sorted(result.uploaded) == ["a.bin", "b.bin"]
    assert result.verified_by_goog_hash + result.verified_by_size_only == 2
    assert "verified by" in result.summary()
    again = push(str(src), "up", settings=settings_for(emulator), credentials=emulator.credentials_path)
    assert again.ok and again.uploaded == [] and sorted(again.skipped) == ["a.bin", "b.bin"]   # the journal vouches
    (src / "a.bin").write_bytes(os.urandom(1000))
    changed = push(str(src), "up", settings=settings_for(emulator), credentials=emulator.credentials_path)
    assert changed.uploaded == ["a.bin"]
    up = emulator.path_id("up")
    for name in ("a.bin", "b.bin"):
        fid = emulator.path_id(f"up/{name}")
        assert emulator.content(fid) == (src / name).read_bytes()
    assert up


def test_a_full_drive_stops_a_push_with_one_line(emulator, tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        (src / f"f{i}.bin").write_bytes(os.urandom(400_000))
    emulator.configure(storage_limit_bytes=1_000_000)
    code = main(["push", str(src), "up", "--api-url", emulator.url, "--credentials", emulator.credentials_path,
                 "--no-progress"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and "Traceback" not in err
    assert len(lines) == 1 and "Drive is full" in lines[0] and "storageQuotaExceeded" in lines[0], err


@pytest.mark.parametrize("mode", ["drop", "truncated"])
def test_a_create_whose_answer_is_lost_makes_no_duplicate(emulator, mode):
    """The server made the folder (or file) and its answer was lost: the retry, under the same
    generated id, is recognised (409) instead of creating a twin."""
    root = emulator.root_id

    async def go():
        async with open_drive(settings_for(emulator), credentials=emulator.credentials_path) as drive:
            await drive.new_id()            # fill the id pool, so the next JSON answer is the create's
            emulator.configure(json_cut_next=1, json_cut_modes=mode)
            folder = await drive.create_folder("once", root)
            emulator.configure(json_cut_next=1, json_cut_modes=mode)
            file = await drive.upload_multipart({"name": "once.bin", "parents": [folder.id]}, b"payload")
            return folder, file, drive.t.stats.retries

    folder, file, retries = asyncio.run(go())
    assert retries >= 2
    assert [c["id"] for c in emulator.children(root) if c["name"] == "once"] == [folder.id]
    assert [c["id"] for c in emulator.children(folder.id)] == [file.id]
    assert emulator.content(file.id) == b"payload" and file.md5 == hashlib.md5(b"payload").hexdigest()
    assert emulator.stats()["frontend"][f"json_cut_{mode}"] == 2


@pytest.mark.parametrize("size", [1000, 3 * MiB], ids=["multipart", "resumable"])
def test_bytes_drive_stored_wrong_are_sent_once_more(emulator, tmp_path, size):
    from drivesync.pusher import push

    src = tmp_path / "src"
    src.mkdir()
    data = os.urandom(size)
    (src / "model.bin").write_bytes(data)
    emulator.configure(corrupt_upload_next=1)
    result = push(str(src), "up", settings=settings_for(emulator, upload_cutoff=1 * MiB),
                  credentials=emulator.credentials_path)
    assert result.ok and result.uploaded == ["model.bin"]
    files = emulator.children(emulator.path_id("up"))
    assert len(files) == 1 and emulator.content(files[0]["id"]) == data     # one file, the right bytes
    assert emulator.stats()["corrupted_uploads"] == 1


@pytest.mark.parametrize("existing", [False, True], ids=["new-file", "new-revision"])
def test_bytes_stored_wrong_twice_never_stay_on_drive_unannounced(emulator, tmp_path, existing):
    from drivesync.pusher import PushFailed, push

    src = tmp_path / "src"
    src.mkdir()
    settings = settings_for(emulator)
    if existing:
        (src / "model.bin").write_bytes(b"first version")
        assert push(str(src), "up", settings=settings, credentials=emulator.credentials_path).ok
    (src / "model.bin").write_bytes(os.urandom(5000))
    emulator.configure(corrupt_upload_next=2)
    with pytest.raises(PushFailed) as info:
        push(str(src), "up", settings=settings, credentials=emulator.credentials_path)
    (path, error), = info.value.result.failed
    files = emulator.children(emulator.path_id("up"), trashed=False)
    if existing:
        assert "is BAD" in error and "Manage versions" in error, error
        assert len(files) == 1
    else:
        assert "the new Drive file was removed again" in error, error
        assert files == []


@pytest.mark.parametrize("mode", ["drop", "truncated"])
def test_a_resumable_upload_whose_last_answer_is_lost_makes_one_file(emulator, tmp_path, mode):
    from drivesync.upload import UploadTarget, upload_file

    data = os.urandom(3 * MiB)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    chunk = 1 * MiB

    async def go():
        async with open_drive(settings_for(emulator), credentials=emulator.credentials_path) as drive:
            sent = [0]

            def progress(n):
                sent[0] += n
                if sent[0] == len(data) - chunk:      # the next answer is the last chunk's (the file)
                    emulator.configure(json_cut_next=1, json_cut_modes=mode)

            return await upload_file(drive, str(path), UploadTarget(name="big.bin", parent_id=emulator.root_id),
                                     chunk_size=chunk, cutoff=0, progress=progress)

    remote = asyncio.run(go())
    assert emulator.stats()["frontend"][f"json_cut_{mode}"] == 1
    twins = [c for c in emulator.children(emulator.root_id) if c["name"] == "big.bin"]
    assert [c["id"] for c in twins] == [remote.id] and emulator.content(remote.id) == data
