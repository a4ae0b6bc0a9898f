"""Which checkpoint is newest (restore.py), without a server."""
from __future__ import annotations

import random

from drivesync import restore


def test_natural_order():
    names = ["checkpoint-10000", "checkpoint-1500", "checkpoint-500", "Checkpoint-2", "ckpt_0009", "ckpt_10"]
    assert sorted(names, key=restore.natural_key) == [
        "Checkpoint-2", "checkpoint-500", "checkpoint-1500", "checkpoint-10000", "ckpt_0009", "ckpt_10"]
    shuffled = names[:]
    random.Random(1).shuffle(shuffled)
    assert sorted(shuffled, key=restore.natural_key) == sorted(names, key=restore.natural_key)


def test_steps_in_the_names_people_use():
    assert restore.step_of("checkpoint-1500") == (1500,)
    assert restore.step_of("epoch=3-step=1500.ckpt") == (3, 1500)
    assert restore.step_of("model_step10.pt") == (0, 10)
    assert restore.step_of("global_step2000") == (0, 2000)
    assert restore.step_of("epoch_7.pt") == (7, 0)
    assert restore.step_of("ckpt_000100.pt") == (100,)
    for none in ("last.ckpt", "config.json", "runs", ".drivesync-stage-checkpoint-9", "model-00001-of-00004.safetensors"):
        assert restore.step_of(none) is None, none


def test_latest_keeps_the_newest_of_each_series_and_everything_without_a_step():
    names = ["checkpoint-500", "checkpoint-1500", "checkpoint-10000", ".stage-checkpoint-20000", "last.ckpt",
             "config.json", "runs", "epoch=3-step=1500.ckpt", "epoch=4-step=2000.ckpt", "best-epoch=2.ckpt",
             "best-epoch=9.ckpt"]
    assert restore.latest(names) == {"checkpoint-10000", "last.ckpt", "config.json", "runs",
                                     "epoch=4-step=2000.ckpt", "best-epoch=9.ckpt"}
    assert restore.latest([]) == set()


def test_newest_across_series_is_the_highest_step():
    assert restore.newest(["checkpoint-1500", "epoch=4-step=2000.ckpt", "last.ckpt"]) == "epoch=4-step=2000.ckpt"
    assert restore.newest(["checkpoint-10000", "checkpoint-1500"]) == "checkpoint-10000"
    assert restore.newest(["last.ckpt", ".stage-9"]) is None
