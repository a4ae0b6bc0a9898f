"""When is a checkpoint complete? The watcher's rules (completion.py), with a fake clock (no threads, no files)."""
import pytest

from drivesync.completion import (CLOSED, CREATED, DELETED, MODIFIED, MOVED_FROM, MOVED_TO, CompletionTracker,
                                  is_temporary)
from drivesync.restore import to_prune


@pytest.mark.parametrize("name", ["a.tmp", "model.pt.tmp", "x.tmp.123", "tmp-checkpoint-500", "w.part",
                                  ".model.py.swp", "notes.txt~", ".#file", "4913", "f.drivesync-partial"])
def test_temporary_names(name):
    assert is_temporary(name)


@pytest.mark.parametrize("name", ["last.ckpt", "checkpoint-500", "model.safetensors", "trainer_state.json",
                                  "tmpfile.pt", "temperature.json", "partial_results.csv"])
def test_real_names(name):
    assert not is_temporary(name)


def keys(items):
    return [(r.key, r.kind) for r in items]


def test_closed_file_is_complete_at_once():
    t = CompletionTracker(settle=10)
    t.observe(CREATED, "last.ckpt", 0.0)
    t.observe(MODIFIED, "last.ckpt", 0.5)
    assert t.due(0.6) == []
    t.observe(CLOSED, "last.ckpt", 1.0)
    ready = t.due(1.0)
    assert keys(ready) == [("last.ckpt", "file")] and ready[0].since == 1.0
    assert t.due(100.0) == []       # handed out once


def test_without_close_a_file_completes_when_it_settles():
    t = CompletionTracker(settle=10)
    t.observe(MODIFIED, "train.log", 0.0)
    t.observe(MODIFIED, "train.log", 8.0)     # still growing: the clock restarts
    assert t.due(17.9) == []
    assert t.next_deadline() == 18.0
    assert keys(t.due(18.0)) == [("train.log", "file")]
    t.observe(MODIFIED, "train.log", 30.0)    # grows again: uploaded again when it settles again
    assert keys(t.due(40.0)) == [("train.log", "file")]


def test_rename_into_place_completes_and_temporaries_never_count():
    t = CompletionTracker(settle=10)
    t.observe(CREATED, "model.pt.tmp", 0.0)
    t.observe(CLOSED, "model.pt.tmp", 1.0)
    t.observe(MOVED_FROM, "model.pt.tmp", 1.1)
    t.observe(MOVED_TO, "model.pt", 1.1)
    assert keys(t.due(1.1)) == [("model.pt", "file")]
    assert t.due(1000.0) == []


def test_checkpoint_folder_waits_for_the_folder_to_settle():
    t = CompletionTracker(settle=5)
    t.observe(CREATED, "checkpoint-500", 0.0, is_dir=True)
    t.observe(CLOSED, "checkpoint-500/model.safetensors", 1.0)   # closing one file is not enough
    t.observe(CLOSED, "checkpoint-500/optimizer.pt", 3.0)
    assert t.due(7.9) == []
    assert keys(t.due(8.0)) == [("checkpoint-500/", "dir")]


def test_complete_marker_finishes_the_folder_at_once():
    t = CompletionTracker(settle=60, complete_marker="trainer_state.json")
    t.observe(CLOSED, "checkpoint-500/model.safetensors", 1.0)
    t.observe(CLOSED, "checkpoint-500/trainer_state.json", 2.0)
    assert keys(t.due(2.0)) == [("checkpoint-500/", "dir")]


def test_marker_seen_only_by_polling_settles_briefly():
    t = CompletionTracker(settle=60, complete_marker="trainer_state.json")
    t.observe(MODIFIED, "checkpoint-500/trainer_state.json", 1.0)
    assert t.due(2.0) == []
    assert keys(t.due(3.0)) == [("checkpoint-500/", "dir")]


def test_folder_renamed_into_place_is_complete_and_its_echoes_ignored():
    t = CompletionTracker(settle=30)
    for i, f in enumerate(["a", "b", "c"]):
        t.observe(CLOSED, f"tmp-checkpoint-10/{f}", float(i))       # a temporary folder: ignored
    assert t.due(100.0) == []
    t.observe(MOVED_FROM, "tmp-checkpoint-10", 100.0, is_dir=True)
    t.observe(MOVED_TO, "checkpoint-10", 100.0, is_dir=True)
    t.observe(MOVED_TO, "checkpoint-10/a", 100.0)                     # watchdog's per-file echoes
    t.observe(MOVED_TO, "checkpoint-10/b", 100.1)
    assert keys(t.due(100.1)) == [("checkpoint-10/", "dir")]
    assert t.due(200.0) == []


def test_deletes_are_mirrored_only_when_asked():
    t = CompletionTracker(settle=5)
    t.observe(DELETED, "checkpoint-100", 1.0, is_dir=True)
    assert t.due(10.0) == []
    t = CompletionTracker(settle=5, mirror_deletes=True)
    t.observe(CLOSED, "checkpoint-100/x", 0.0)
    t.observe(DELETED, "checkpoint-100", 1.0, is_dir=True)           # rotation removes it before it settled
    assert keys(t.due(10.0)) == [("-checkpoint-100/", "delete")]
    t.observe(DELETED, "old.ckpt", 11.0)
    assert keys(t.due(11.0)) == [("-old.ckpt", "delete")]


def test_excludes_through_wanted():
    t = CompletionTracker(settle=1, wanted=lambda rel: not rel.endswith(".log"))
    t.observe(CLOSED, "train.log", 0.0)
    assert t.due(5.0) == []


def test_complete_all_for_flush():
    t = CompletionTracker(settle=100)
    t.observe(MODIFIED, "a.bin", 0.0)
    t.observe(MODIFIED, "ck-1/x", 0.0)
    t.complete_all(1.0)
    assert sorted(keys(t.due(1.0))) == [("a.bin", "file"), ("ck-1/", "dir")]


def test_keep_last_prunes_numbered_checkpoints_only():
    names = ["checkpoint-100", "checkpoint-1000", "checkpoint-500", "last.ckpt", "logs"]
    assert to_prune(names, 2) == ["checkpoint-100"]
    assert to_prune(names, 1) == ["checkpoint-100", "checkpoint-500"]


def test_keep_last_counts_each_series_and_never_prunes_shards_or_stages():
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "checkpoint-1000",
             "checkpoint-2000", "epoch=1-step=10.ckpt", "epoch=2-step=20.ckpt", ".drivesync-stage-checkpoint-3000"]
    assert to_prune(names, 1) == ["checkpoint-1000", "epoch=1-step=10.ckpt"]


def test_network_file_systems_are_polled(tmp_path):
    from drivesync.observer import network_filesystem

    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/vda / ext4 rw 0 0\n"
                      "drive /content/drive fuse.drive rw 0 0\n"
                      "srv:/x /mnt/nfs nfs4 rw 0 0\n")
    assert network_filesystem("/content/drive/MyDrive/ckpt", str(mounts)) == "fuse.drive"
    assert network_filesystem("/mnt/nfs/run", str(mounts)) == "nfs4"
    assert network_filesystem("/home/me/ckpt", str(mounts)) is None
