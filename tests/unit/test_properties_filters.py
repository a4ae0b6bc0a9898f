"""filters.py against rclone's documented behaviour (docs/content/filtering.md: the pattern examples table,
the anchoring rules, first match wins, the implied '- **' after an --include), as examples and as
properties over generated paths."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from drivesync.errors import UsageError
from drivesync.filters import Filter

FAST = settings(max_examples=200, deadline=None)

# rclone's "Filter pattern examples" table: pattern, paths it matches, paths it does not (leading '/'
# there means the root of the transfer; paths here are relative to it).
RCLONE_EXAMPLES = [
    ("*.jpg", ["file.jpg", "dir/file.jpg"], ["file.png", "dir/file.png"]),                      # wildcard
    ("/*.jpg", ["file.jpg", "file2.jpg"], ["file.png", "dir/file.jpg"]),                         # rooted
    ("*.{jpg,png}", ["file.jpg", "dir/file.png"], ["file.gif", "dir/file.gif"]),                 # alternates
    ("dir/**", ["dir/anyfile", "subdir/dir/subsubdir/anyfile"], ["file.png", "subdir/file.png"]),  # path wildcard
    ("*.t?t", ["file.txt", "dir/file.tzt"], ["file.qxt", "dir/file.png"]),                       # any char
    ("*.[a-z]", ["file.a", "dir/file.b"], ["file.0", "dir/file.1"]),                             # range
    ("*.\\?\\?\\?", ["file.???", "dir/file.???"], ["file.abc", "dir/file.def"]),                 # escape
    ("*.\\d\\d\\d", ["file.012", "dir/file.345"], ["file.abc", "dir/file.def"]),                 # class
    ("*.{{jpe?g}}", ["file.jpeg", "dir/file.jpg"], ["file.png", "dir/file.jpeeg"]),              # regexp
    # rooted regexp; the docs' table also lists dir/file.jpg as not matching, but '.*' crosses '/' and
    # rclone itself (1.60.1: `rclone ls DIR --include '/{{.*\.jpe?g}}'`) lists it: what rclone does wins
    ("/{{.*\\.jpe?g}}", ["file.jpeg", "file.jpg", "dir/file.jpg"], ["file.png", "dir/file.png"]),
    # the anchoring rules' own examples
    ("file.jpg", ["file.jpg", "directory/file.jpg"], ["afile.jpg", "directory/afile.jpg"]),
    ("/file.jpg", ["file.jpg"], ["afile.jpg", "directory/file.jpg"]),
    # case sensitive without --ignore-case
    ("potato", ["potato"], ["POTATO"]),
    # the exclude example with escaped brackets: '*\[{JP,KR,HK}\]*'
    ("*\\[{JP,KR,HK}\\]*", ["film [JP].mkv", "x/[HK]"], ["film [US].mkv", "film JP.mkv"]),
]


@pytest.mark.parametrize("pattern, yes, no", RCLONE_EXAMPLES, ids=[e[0] for e in RCLONE_EXAMPLES])
def test_rclone_documented_examples(pattern, yes, no):
    include = Filter([(True, pattern)])
    for path in yes:
        assert include.wants(path), (pattern, path)
    for path in no:
        assert not include.wants(path), (pattern, path)
    exclude = Filter([(False, pattern)])       # an exclude is the same match, the other way
    assert not any(exclude.wants(p) for p in yes) and all(exclude.wants(p) for p in no)


@pytest.mark.rclone
@pytest.mark.skipif(shutil.which("rclone") is None, reason="rclone is not on PATH (.ci/run installs it)")
def test_the_examples_select_what_rclone_itself_selects(tmp_path):
    """The same examples through the real rclone binary: `rclone lsf -R --files-only --exclude PATTERN` over a
    folder holding every path of the table must list exactly what Filter.wants leaves. (--exclude, not
    --include: an --include makes rclone skip folders its directory rules rule out, so `dir/**` would not
    reach subdir/dir/subsubdir/anyfile, which the docs say it matches and drivesync's full walk sees.)"""
    every = sorted({p for _, yes, no in RCLONE_EXAMPLES for p in yes + no})
    for p in every:
        (tmp_path / "tree" / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "tree" / p).write_bytes(b"x")
    env = {**os.environ, "RCLONE_CONFIG": str(tmp_path / "rclone.conf")}
    for pattern, _, _ in RCLONE_EXAMPLES:
        got = subprocess.run(["rclone", "lsf", "-R", "--files-only", str(tmp_path / "tree"), "--exclude", pattern],
                             capture_output=True, text=True, env=env, timeout=60)
        assert got.returncode == 0, got.stderr
        assert sorted(got.stdout.split("\n")[:-1]) == [p for p in every if Filter([(False, pattern)]).wants(p)], pattern


@pytest.mark.parametrize("pattern", ["{{unclosed", "{{a}", "x{{", "{a,b", "[ab", "a\\"])
def test_malformed_patterns_are_one_usage_error(pattern):
    with pytest.raises(UsageError):
        Filter([(True, pattern)])


# ---------------------------------------------------------------------------------------- properties

segment = st.text(alphabet="abcXYZ019._- ()é", min_size=1, max_size=6).filter(lambda s: s not in (".", ".."))
paths = st.lists(segment, min_size=1, max_size=5).map("/".join)


def literal(text: str) -> str:
    """A glob matching exactly `text`: every special character escaped."""
    return "".join("\\" + c if c in "*?[]{}\\," else c for c in text)


@FAST
@given(paths, paths)
def test_an_unanchored_literal_matches_whole_trailing_path_elements(pattern_path, path):
    assume(pattern_path.strip())  # a blank pattern is refused ("empty filter pattern")
    f = Filter([(True, literal(pattern_path))])
    p, q = path.split("/"), pattern_path.split("/")
    assert f.wants(path) == (p[-len(q):] == q)


@FAST
@given(paths, paths)
def test_a_rooted_literal_matches_only_that_path(pattern_path, path):
    assume(pattern_path.strip())
    assert Filter([(True, "/" + literal(pattern_path))]).wants(path) == (path == pattern_path)


@FAST
@given(paths)
def test_a_star_never_crosses_a_slash_and_two_stars_do(path):
    parts = path.split("/")
    assert Filter([(True, "/*")]).wants(path) == (len(parts) == 1)
    assert Filter([(True, "/**")]).wants(path)
    assert Filter([(True, "/" + "/".join("*" * len(parts)))]).wants(path)
    assert Filter([(True, "?" * len(parts[-1]))]).wants(path)        # '?' is one character, never '/'
    assert not Filter([(True, "/" + "?" * len(path))]).wants(path) or len(parts) == 1


@FAST
@given(paths, paths)
def test_a_directory_pattern_is_the_directory_and_everything_under_it(folder, rest):
    f = Filter([(False, "/" + literal(folder) + "/")])
    assert not f.wants(folder + "/" + rest)
    assert f.wants(rest) or rest.startswith(folder + "/")
    assert Filter([(False, "/" + literal(folder) + "/")]).wants(folder + "x") or folder + "x" == folder


@FAST
@given(st.lists(st.tuples(st.booleans(), st.sampled_from(["*.txt", "/a/**", "b/", "*.{bin,pt}", "c?", "**",
                                                          "/*", "*X*", "\\d*", "{{[ab]+}}"])), max_size=6),
       paths)
def test_first_match_decides_and_an_include_implies_exclude_everything_else(rules, path):
    """The order rclone documents: rules tried left to right, the first match decides; no match means
    included, unless an --include was given (rclone adds '- **')."""
    got = Filter(rules).wants(path)
    for include, pattern in rules:
        if Filter([(True, pattern)]).wants(path):
            assert got == include
            return
    assert got == (not any(include for include, _ in rules))


@FAST
@given(st.text(alphabet="abc0123 _-", max_size=8))
def test_perl_classes_are_ascii_like_go_regexp(text):
    assume(text)
    for cls, rx in (("\\d", r"[0-9]"), ("\\s", r"[\t\n\f\r ]"), ("\\w", r"[0-9A-Za-z_]")):
        want = all(re.fullmatch(rx, ch) for ch in text)
        assert Filter([(True, "/" + cls * len(text))]).wants(text) == want
        assert Filter([(True, "/" + cls.upper() * len(text))]).wants(text) == all(not re.fullmatch(rx, ch) for ch in text)
