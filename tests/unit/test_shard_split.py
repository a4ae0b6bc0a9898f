"""shard.py: the split is disjoint, complete, deterministic (any listing order) and balanced within the largest
file; RANK/WORLD and 'auto' parse to one UsageError line when they are wrong."""
import random

import pytest
from hypothesis import given, settings, strategies as st

from drivesync import shard
from drivesync.errors import UsageError

trees = st.lists(st.tuples(st.text(min_size=1, max_size=8), st.integers(min_value=0, max_value=10**9)),
                 max_size=60, unique_by=lambda f: f[0])


@settings(max_examples=200, deadline=None)
@given(trees, st.integers(min_value=1, max_value=9), st.randoms(use_true_random=False))
def test_disjoint_complete_deterministic_balanced(files, world, rnd):
    shards = shard.split(files, world)
    assert len(shards) == world
    flat = [p for s in shards for p in s]
    assert sorted(flat) == sorted(p for p, _ in files)          # complete, and nothing twice (disjoint)
    shuffled = list(files)
    rnd.shuffle(shuffled)
    assert shard.split(shuffled, world) == shards                # every node computes the same split
    loads = shard.loads(files, world)
    largest = max((s for _, s in files), default=0)
    assert max(loads) - min(loads) <= largest                    # balanced within the largest file


def test_one_node_pulls_everything_and_more_nodes_than_files_get_nothing():
    files = [("a", 5), ("b", 3)]
    assert shard.split(files, 1) == [["a", "b"]]
    assert shard.split(files, 4) == [["a"], ["b"], [], []]


def test_ties_go_by_path_then_by_rank():
    files = [("b", 10), ("a", 10), ("c", 10), ("d", 10)]
    assert shard.split(files, 2) == [["a", "c"], ["b", "d"]]


def test_a_skewed_tree_is_balanced_by_bytes_not_by_count():
    rng = random.Random(3)
    files = [("big", 1000)] + [(f"s{i}", rng.randint(1, 20)) for i in range(200)]
    loads = shard.loads(files, 4)
    assert loads[0] == 1000 and max(loads[1:]) - min(loads[1:]) <= 20


@pytest.mark.parametrize("spec, want", [("0/1", (0, 1)), ("3/4", (3, 4)), (" 1 / 2 ", (1, 2)), ((2, 3), (2, 3))])
def test_parse(spec, want):
    assert shard.parse(spec) == want


@pytest.mark.parametrize("spec, why", [("4/4", "RANK must be from 0 to 3"), ("0/0", "WORLD must be at least 1"),
                                       ("-1/4", "expected RANK/WORLD"), ("1", "expected RANK/WORLD"),
                                       ("a/b", "expected RANK/WORLD"), ("1/4/2", "expected RANK/WORLD"),
                                       ((5, 2), "RANK must be from 0 to 1")])
def test_bad_specs_are_one_line(spec, why):
    with pytest.raises(UsageError, match=why) as e:
        shard.parse(spec)
    assert "\n" not in str(e.value)


def test_auto_reads_torchrun_then_slurm():
    assert shard.parse("auto", {"RANK": "2", "WORLD_SIZE": "8", "SLURM_PROCID": "0", "SLURM_NTASKS": "2"}) == (2, 8)
    assert shard.parse("auto", {"SLURM_PROCID": "1", "SLURM_NTASKS": "2"}) == (1, 2)
    with pytest.raises(UsageError, match="neither RANK/WORLD_SIZE"):
        shard.parse("auto", {})
    with pytest.raises(UsageError, match="not whole numbers"):
        shard.parse("auto", {"RANK": "x", "WORLD_SIZE": "2"})
    with pytest.raises(UsageError, match="RANK must be from 0 to 1"):
        shard.parse("AUTO", {"RANK": "2", "WORLD_SIZE": "2"})


def test_nodes_of_one_account_get_their_share_of_its_quota():
    assert shard.share_of_quota(195.0, 4, tps_given=False) == 48.75
    assert shard.share_of_quota(50.0, 4, tps_given=True) == 50.0
    assert shard.share_of_quota(195.0, 1, tps_given=False) == 195.0
