"""pull --shard RANK/WORLD against the emulator over real sockets: WORLD nodes pull one copy of the tree
between them (disjoint, complete, the split every node computes), into their own disks or one shared folder;
bad --shard values are one line and nothing is written."""
import os
import random
import subprocess
import sys

import pytest

import drivesync
from drivesync import shard
from drivesync.errors import UsageError

from cli_env import env_for


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("DRIVESYNC_API_URL", raising=False)


def pull(emu, remote, local, **kw):
    kw.setdefault("progress", False)
    return drivesync.pull(remote, str(local), credentials=emu.credentials_path, api_url=emu.url, **kw)


def files_under(root):
    out = {}
    for dirpath, _, filenames in os.walk(root):
        for f in filenames:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


@pytest.fixture
def dataset(emulator):
    rng = random.Random(11)
    top = emulator.add_folder("dataset")
    folders = [top] + [emulator.add_folder(f"part{i}", top) for i in range(3)]
    want = {}
    for i in range(40):
        size = rng.choice([0, 10, 1000, 50_000, 300_000])
        where = i % 4
        data = rng.randbytes(size)
        emulator.add_file(f"f{i:02d}.bin", data, parent_id=folders[where])
        want[(f"part{where - 1}/" if where else "") + f"f{i:02d}.bin"] = data
    emulator.add_file("huge.bin", rng.randbytes(900_000), parent_id=top)
    want["huge.bin"] = emulator.content(emulator.path_id("dataset/huge.bin"))
    return want


def test_world_nodes_pull_one_copy_disjoint_and_complete(emulator, dataset, tmp_path):
    world = 3
    got = {}
    for rank in range(world):
        result = pull(emulator, "dataset", tmp_path / f"node{rank}", shard=f"{rank}/{world}")
        assert result.ok and result.shard == f"{rank}/{world}"
        got[rank] = files_under(tmp_path / f"node{rank}")
        assert result.done == len(got[rank])
    names = [p for rank in got for p in got[rank]]
    assert len(names) == len(set(names))                                   # disjoint
    assert {p: d for rank in got for p, d in got[rank].items()} == dataset  # complete, byte for byte
    split = shard.split([(p, len(d)) for p, d in dataset.items()], world)
    assert [sorted(got[r]) for r in range(world)] == [sorted(s) for s in split]   # the split every node computes
    loads = [sum(len(d) for d in got[r].values()) for r in range(world)]
    assert max(loads) - min(loads) <= max(len(d) for d in dataset.values())


def test_nodes_sharing_one_folder_end_with_the_whole_tree(emulator, dataset, tmp_path):
    shared = tmp_path / "shared"
    for rank in range(4):
        assert pull(emulator, "dataset", shared, shard=(rank, 4)).ok
    assert files_under(shared) == dataset
    again = pull(emulator, "dataset", shared, shard="1/4")       # a node that runs again finds its share there
    assert again.ok and again.done == 0 and again.skipped > 0


def test_auto_reads_the_launchers_environment(emulator, dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = pull(emulator, "dataset", tmp_path / "n1", shard="auto")
    assert result.shard == "1/2"
    assert sorted(files_under(tmp_path / "n1")) == sorted(shard.split([(p, len(d)) for p, d in dataset.items()], 2)[1])


def test_bad_shard_values_are_one_line_and_write_nothing(emulator, dataset, tmp_path):
    for spec in ("4/4", "x", "1/0"):
        with pytest.raises(UsageError, match="--shard"):
            pull(emulator, "dataset", tmp_path / "bad", shard=spec)
    with pytest.raises(UsageError, match="--shard and --delete"):
        pull(emulator, "dataset", tmp_path / "bad", shard="0/2", delete=True)
    assert not (tmp_path / "bad").exists()
    env = env_for(tmp_path, emulator)
    for args in (["--shard", "2/2"], ["--shard", "auto"], ["--shard", "1/2", "--delete"]):
        r = subprocess.run([sys.executable, "-m", "drivesync", "pull", "dataset", str(tmp_path / "cli"), *args,
                            "--credentials", emulator.credentials_path], capture_output=True, text=True,
                           env={k: v for k, v in env.items() if k not in ("RANK", "WORLD_SIZE", "SLURM_PROCID",
                                                                          "SLURM_NTASKS")},
                           timeout=120)
        assert r.returncode != 0 and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "--shard" in r.stderr, r.stderr
    assert not (tmp_path / "cli").exists()
