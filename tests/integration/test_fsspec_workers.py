"""drivesync:// in other processes, as engines use it: pickled to workers (Dask ships file systems as their
storage options), inherited by forked workers (PyTorch DataLoader's default on Linux: torch is too heavy for
CI, so its workers are stood in for by multiprocessing fork workers reading through a Dataset-like object
made in the parent), and Dask reading many files in parallel with threads and with processes."""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import pickle

import dask.dataframe as dd      # the engines are in the dev extra: a missing one fails here, never skips
import pandas as pd
import pytest

from drivesync.fs import DriveFileSystem


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("DRIVESYNC_API_URL", raising=False)


@pytest.fixture
def so(emulator):
    return {"credentials": emulator.credentials_path, "api_url": emulator.url}


@pytest.fixture
def shards(emulator):
    """20 CSV shards in one folder: {path: bytes}."""
    top = emulator.add_folder("data")
    out = {}
    for i in range(20):
        frame = pd.DataFrame({"shard": [i] * 50, "x": range(i * 50, (i + 1) * 50)})
        data = frame.to_csv(index=False).encode()
        emulator.add_file(f"part-{i:02d}.csv", data, parent_id=top)
        out[f"data/part-{i:02d}.csv"] = data
    return out


class Shards:
    """What a torch Dataset over Drive looks like: a file system and paths, items read on demand."""

    def __init__(self, fs, paths):
        self.fs, self.paths = fs, list(paths)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        data = self.fs.cat_file(self.paths[i])
        with self.fs.open(self.paths[i], "rb") as f:       # and through a file object with a seek
            f.seek(3)
            tail = f.read()
        assert tail == data[3:]
        return self.paths[i], hashlib.md5(data).hexdigest(), os.getpid()


_DATASET: Shards | None = None


def _read_item(i):
    return _DATASET[i]


def _read_with(args):
    fs_bytes, path = args
    fs = pickle.loads(fs_bytes)
    return hashlib.md5(fs.cat_file(path)).hexdigest(), os.getpid()


def test_a_forked_worker_reads_through_the_file_system_it_inherited(so, shards):
    global _DATASET
    fs = DriveFileSystem(**so, skip_instance_cache=True)
    fs.ls("data")                                      # the parent's session, loop and caches exist
    parent_session = fs._session_
    assert parent_session is not None
    _DATASET = Shards(fs, sorted(shards))
    try:
        with multiprocessing.get_context("fork").Pool(2) as pool:
            got = pool.map(_read_item, range(len(_DATASET)), chunksize=3)
    finally:
        _DATASET = None
    assert {p: m for p, m, _ in got} == {p: hashlib.md5(d).hexdigest() for p, d in shards.items()}
    assert os.getpid() not in {pid for _, _, pid in got}
    # The parent's file system still works, on its own session (the children made their own).
    assert fs._session_ is parent_session
    assert fs.cat_file("data/part-07.csv") == shards["data/part-07.csv"]
    fs.close()


def test_pickled_to_a_spawned_process_it_connects_again(so, shards):
    fs = DriveFileSystem(**so, skip_instance_cache=True)
    assert fs.cat_file("data/part-00.csv") == shards["data/part-00.csv"]
    blob = pickle.dumps(fs)
    assert b"Bearer" not in blob and b"access_token" not in blob    # options travel, never a token
    same = pickle.loads(blob)
    assert same.cat_file("data/part-01.csv") == shards["data/part-01.csv"]
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        got = pool.map(_read_with, [(blob, p) for p in sorted(shards)[:3]])
    assert [m for m, _ in got] == [hashlib.md5(shards[p]).hexdigest() for p in sorted(shards)[:3]]
    assert os.getpid() not in {pid for _, pid in got}
    fs.close()


def _frame(shards):
    return pd.concat([pd.read_csv(__import__("io").BytesIO(shards[p])) for p in sorted(shards)], ignore_index=True)


def test_dask_reads_many_files_in_parallel_with_threads(emulator, so, shards):
    fs = DriveFileSystem(**so)                          # the instance dask's workers get from fsspec's cache
    frame = dd.read_csv("drivesync://data/part-*.csv", storage_options=so, blocksize=None)
    assert frame.npartitions == 20
    got = frame.compute(scheduler="threads", num_workers=4).reset_index(drop=True)
    pd.testing.assert_frame_equal(got.sort_values(["shard", "x"]).reset_index(drop=True), _frame(shards))
    assert fs._session_ is not None
    stats = fs._session_.drive.t.stats
    assert stats.by_status[206] + stats.by_status[200] >= 20      # every shard read, by ranged GETs
    assert stats.retries == 0
    # Parquet shards written through drivesync:// by Dask, read back as one frame.
    frame.to_parquet("drivesync://data/as-parquet", storage_options=so, compute=True)
    assert len(fs.glob("data/as-parquet/*.parquet")) == 20
    back = dd.read_parquet("drivesync://data/as-parquet", storage_options=so).compute(scheduler="threads")
    pd.testing.assert_frame_equal(back.sort_values(["shard", "x"]).reset_index(drop=True), _frame(shards))
    fs.close()


@pytest.mark.slow
def test_dask_processes_get_the_file_system_by_pickle(so, shards):
    frame = dd.read_csv("drivesync://data/part-*.csv", storage_options=so, blocksize=None)
    got = frame.groupby("shard").x.sum().compute(scheduler="processes", num_workers=2)
    want = _frame(shards).groupby("shard").x.sum()
    pd.testing.assert_series_equal(got.sort_index(), want.sort_index())
