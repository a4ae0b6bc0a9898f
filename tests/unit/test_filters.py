"""filters.py: rclone-style --include/--exclude globs on paths relative to REMOTE."""
import pytest

from drivesync.errors import UsageError
from drivesync.filters import Filter


def wants(rules, path):
    return Filter(rules).wants(path)


@pytest.mark.parametrize("pattern, path, match", [
    ("*.jpg", "a.jpg", True),
    ("*.jpg", "deep/dir/a.jpg", True),     # unanchored: matches the end of the path
    ("*.jpg", "a.jpg/x.txt", False),
    ("/*.jpg", "a.jpg", True),
    ("/*.jpg", "dir/a.jpg", False),       # anchored at the root
    ("b/c.txt", "a/b/c.txt", True),
    ("b/c.txt", "a/bb/c.txt", False),     # whole path elements only
    ("data/**", "data/x/y/z.bin", True),
    ("data/*", "data/x/y.bin", False),    # * does not cross '/'
    ("data/", "data/x/y.bin", True),      # a directory pattern covers its contents
    ("file?.txt", "file1.txt", True),
    ("file?.txt", "file/.txt", False),
    ("[ab].txt", "b.txt", True),
    ("[!ab].txt", "c.txt", True),
    ("[!ab].txt", "a.txt", False),
    ("*.{jpg,png}", "x/y.png", True),
    ("*.{jpg,png}", "x/y.gif", False),
    ("\\*.txt", "*.txt", True),
    ("\\*.txt", "a.txt", False),
])
def test_exclude_patterns(pattern, path, match):
    assert wants([(False, pattern)], path) is (not match)


def test_include_excludes_everything_else():
    f = Filter([(True, "*.py")])
    assert f.wants("src/x.py")
    assert not f.wants("README.md")


def test_first_matching_rule_wins():
    rules = [(False, "secret/**"), (True, "*.txt")]
    assert not wants(rules, "secret/a.txt")
    assert wants(rules, "public/a.txt")
    assert not wants(rules, "public/a.bin")
    assert wants([(True, "*.txt"), (False, "secret/**")], "secret/a.txt")


def test_no_rules_wants_everything():
    assert Filter().wants("anything/at/all")
    assert not Filter().active


def test_from_lists_tries_excludes_first():
    f = Filter.from_lists(include=["*.txt"], exclude=["tmp/**"])
    assert f.wants("a.txt") and not f.wants("tmp/a.txt") and not f.wants("a.bin")


@pytest.mark.parametrize("bad", ["", "[abc", "{a,b", "x\\"])
def test_malformed_patterns_are_usage_errors(bad):
    with pytest.raises(UsageError):
        Filter([(True, bad)])
