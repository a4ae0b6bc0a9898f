"""names.py: local names for Drive names are safe, distinct, deterministic and stay inside LOCAL."""
import os

import pytest

from drivesync import names
from drivesync.errors import UsageError


@pytest.mark.parametrize("remote, local", [
    ("train.zip", "train.zip"),
    ("a/b", "a\uff0fb"),
    ("../x", "..\uff0fx"),
    (".", "\uff0e"),
    ("..", "\uff0e\uff0e"),
    ("", "_"),
    ("nul\x00byte", "nul\u2400byte"),
    ("caf\u00e9 \u65e5\u672c", "caf\u00e9 \u65e5\u672c"),
    ("x.drivesync-partial", "x.drivesync-partial_"),
])
def test_safe_name(remote, local):
    assert names.safe_name(remote) == local
    assert "/" not in names.safe_name(remote) and "\x00" not in names.safe_name(remote)


def test_long_names_fit_and_stay_distinct():
    a = "\u00e9" * 200 + "a.bin"     # 405 bytes of UTF-8
    b = "\u00e9" * 200 + "b.bin"
    sa, sb = names.safe_name(a), names.safe_name(b)
    assert len(sa.encode()) <= 255 and len(sb.encode()) <= 255
    assert sa != sb
    assert sa.endswith(".bin")
    assert names.safe_name(a) == sa  # deterministic
    sa.encode("utf-8").decode("utf-8")  # never splits a character


def test_assign_names_orders_duplicates_by_id_whatever_the_input_order():
    items = [("zz999999", "data.csv"), ("aa111111", "data.csv"), ("mm555555", "other")]
    first, warnings = names.assign_names(items)
    second, _ = names.assign_names(list(reversed(items)))
    assert first == second
    assert first["aa111111"] == "data.csv"
    assert first["zz999999"] == "data (zz999999).csv"
    assert first["mm555555"] == "other"
    assert len(warnings) == 1 and "data.csv" in warnings[0]


def test_assign_names_avoids_a_real_file_with_the_suffixed_name():
    items = [("aaaaaaaa1", "x.txt"), ("bbbbbbbb1", "x.txt"), ("cccccccc1", "x (bbbbbbbb).txt")]
    got, _ = names.assign_names(items)
    assert len(set(got.values())) == 3
    assert got["cccccccc1"] == "x (bbbbbbbb).txt"
    assert got["bbbbbbbb1"] == "x (bbbbbbbb1).txt"


def test_partial_name_is_hidden_bounded_and_recognised():
    p = names.partial_name("model.pt", "1234567890abcdef")
    assert p == ".model.pt.12345678.drivesync-partial"
    assert names.is_partial(p)
    long = names.partial_name("x" * 255, "abcdefghij")
    assert len(long.encode()) <= 255 and names.is_partial(long)
    assert not names.is_partial("model.pt")


def test_join_inside_refuses_escapes(tmp_path):
    root = str(tmp_path / "out")
    assert names.join_inside(root, ["a", "b.txt"]) == os.path.join(root, "a", "b.txt")
    for bad in (["..", "x"], ["a/../../x"], ["."], ["x\x00"]):
        with pytest.raises(UsageError):
            names.join_inside(root, bad)


def test_inside_follows_symlinks(tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    assert names.inside(str(root), str(root / "a" / "b"))
    assert not names.inside(str(root), str(root / "link" / "x"))
    assert not names.inside(str(root), str(tmp_path / "out2" / "x"))
