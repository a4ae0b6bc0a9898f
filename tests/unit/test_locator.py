"""locator.parse: every REMOTE form a user has, and one clear UsageError for what it cannot mean."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from drivesync.errors import UsageError
from drivesync.locator import ID, MY_DRIVE, SHARED_DRIVE, SHARED_WITH_ME, Locator, is_bare_id, parse

FID = "1AbCdEfGhIjKlMnOpQrStUvWxYz012345"        # 33 characters, like a Drive file id
DOC = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"  # 44, like an old Docs id
SHARED_DRIVE_ID = "0AHdUBqWcGxMkUk9PVA"          # 19, like a shared drive id


# -- paths under My Drive ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, parts, folder", [
    ("", (), False),
    ("/", (), False),
    ("data", ("data",), False),
    ("data/", ("data",), True),
    ("deeplearning/data/train", ("deeplearning", "data", "train"), False),
    ("  a//b/ ", ("a", "b"), True),
    ("/id:x", ("id:x",), False),                 # a leading '/' keeps a name a name
    (f"/{FID}", (FID,), False),
    ("run 42/ckpt", ("run 42", "ckpt"), False),
    ("checkpoint-1500", ("checkpoint-1500",), False),   # not id-shaped: too short
])
def test_my_drive_paths(text, parts, folder):
    loc = parse(text)
    assert (loc.anchor, loc.parts, loc.wants_folder, loc.bare_id) == (MY_DRIVE, parts, folder, False)


@pytest.mark.parametrize("text", ["a/../b", "./a", "a/./b", ".."])
def test_dot_parts_are_refused(text):
    with pytest.raises(UsageError, match="not allowed"):
        parse(text)


def test_not_text_is_refused():
    with pytest.raises(UsageError):
        parse(None)  # type: ignore[arg-type]


# -- ids ----------------------------------------------------------------------------------------------

def test_id_forms():
    assert parse(f"id:{FID}") == Locator(ID, (), False, file_id=FID, text=f"id:{FID}")
    loc = parse(f"id:{FID}/")
    assert loc.anchor == ID and loc.wants_folder and loc.parts == ()
    loc = parse(f"id:{FID}/sub/dir/")
    assert (loc.file_id, loc.parts, loc.wants_folder) == (FID, ("sub", "dir"), True)
    loc = parse(f"id:{FID}/ckpt?resourcekey=0-AbC_d")
    assert (loc.file_id, loc.parts, loc.resource_key) == (FID, ("ckpt",), "0-AbC_d")


@pytest.mark.parametrize("text", ["id:", "id:  ", "id:a'b", "id:short", "id:has space here and more",
                                  f"id:{FID}?resourcekey=bad key"])
def test_bad_ids(text):
    with pytest.raises(UsageError):
        parse(text)


@pytest.mark.parametrize("token, bare", [
    (FID, True), (DOC, True), (SHARED_DRIVE_ID, True),
    ("datasets_and_models", False),      # no digit: a name
    ("12345678901234567890", False),     # no letter: a name
    ("short1", False),                   # too short
    ("with.dot.1234567890abcdef", False),
])
def test_the_bare_id_rule(token, bare):
    assert is_bare_id(token) is bare
    loc = parse(token)
    assert loc.anchor == MY_DRIVE and loc.parts == (token,) and loc.bare_id is bare
    if bare:
        assert loc.file_id == token
        assert loc.as_id() == Locator(ID, (), False, file_id=token, text=token)
        assert loc.as_path().bare_id is False and loc.as_path().parts == (token,)


def test_a_bare_id_with_a_slash_inside_is_a_path():
    loc = parse(f"{FID}/x")
    assert loc.anchor == MY_DRIVE and not loc.bare_id and loc.parts == (FID, "x")
    loc = parse(f"{FID}/")
    assert loc.bare_id and loc.wants_folder


# -- links ---------------------------------------------------------------------------------------------

LINKS = [
    (f"https://drive.google.com/drive/folders/{FID}", FID, None, True),
    (f"https://drive.google.com/drive/folders/{FID}?usp=sharing", FID, None, True),
    (f"https://drive.google.com/drive/folders/{FID}?usp=drive_link&resourcekey=0-xYz_12", FID, "0-xYz_12", True),
    (f"https://drive.google.com/drive/u/0/folders/{FID}", FID, None, True),
    (f"https://drive.google.com/drive/u/3/folders/{FID}?resourcekey=0-k", FID, "0-k", True),
    (f"drive.google.com/drive/folders/{FID}", FID, None, True),
    (f"http://drive.google.com/drive/mobile/folders/{FID}", FID, None, True),
    (f"https://drive.google.com/file/d/{FID}/view", FID, None, False),
    (f"https://drive.google.com/file/d/{FID}/view?usp=sharing", FID, None, False),
    (f"https://drive.google.com/file/d/{FID}/view?usp=sharing&resourcekey=0-AA", FID, "0-AA", False),
    (f"https://drive.google.com/file/u/1/d/{FID}/edit", FID, None, False),
    (f"https://drive.google.com/open?id={FID}", FID, None, False),
    (f"https://drive.google.com/open?id={FID}&resourcekey=0-Q", FID, "0-Q", False),
    (f"https://drive.google.com/uc?id={FID}&export=download", FID, None, False),
    (f"https://drive.google.com/uc?export=download&id={FID}", FID, None, False),
    (f"https://drive.usercontent.google.com/download?id={FID}&export=download&confirm=t", FID, None, False),
    (f"https://docs.google.com/document/d/{DOC}/edit", DOC, None, False),
    (f"https://docs.google.com/document/d/{DOC}/edit?usp=sharing", DOC, None, False),
    (f"https://docs.google.com/spreadsheets/d/{DOC}/edit#gid=0", DOC, None, False),
    (f"https://docs.google.com/presentation/d/{DOC}/edit?resourcekey=0-Z#slide=id.p", DOC, "0-Z", False),
    (f"https://docs.google.com/document/u/0/d/{DOC}/edit", DOC, None, False),
    (f"https://docs.google.com/a/example.edu/document/d/{DOC}/edit", DOC, None, False),
    (f"https://drive.google.com/a/example.edu/file/d/{FID}/view", FID, None, False),
    (f"https://docs.google.com/forms/d/{DOC}/edit", DOC, None, False),
    (f"HTTPS://Drive.Google.Com/drive/folders/{FID}", FID, None, True),
    (f"https://www.drive.google.com/drive/folders/{FID}", FID, None, True),
    (f"https://drive.google.com/drive/folders/{SHARED_DRIVE_ID}", SHARED_DRIVE_ID, None, True),
]


@pytest.mark.parametrize("url, file_id, key, folder", LINKS)
def test_links(url, file_id, key, folder):
    loc = parse(url)
    assert (loc.anchor, loc.file_id, loc.resource_key, loc.wants_folder, loc.parts) == (ID, file_id, key, folder, ())
    assert loc.text == url
    # What a link means survives being written back as id:ID (with its resource key).
    back = parse(loc.canonical())
    assert (back.anchor, back.file_id, back.resource_key) == (ID, file_id, key)


def test_my_drive_link_is_the_root():
    assert parse("https://drive.google.com/drive/my-drive").is_root
    assert parse("https://drive.google.com/drive/u/0/my-drive").is_root


@pytest.mark.parametrize("url, says", [
    ("https://example.com/drive/folders/abc", "not a Google Drive link"),
    ("https://drive.google.com/drive/search?q=report", "not one item"),
    ("https://drive.google.com/drive/recent", "not one item"),
    ("https://drive.google.com/drive/shared-with-me", "shared-with-me:NAME"),
    ("https://drive.google.com/", "no file or folder id"),
    ("https://drive.google.com/drive/folders/", "no file or folder id"),
    ("https://docs.google.com/forms/d/e/1FAIpQLSfD3abcdefghijklmnopqrstuvwxyz/viewform", "published"),
    ("https://drive.google.com/open?id=short", "not a Drive id"),
    ("https://drive.google.com/open?id=a%27b%27cdefghijklmnop", "not a Drive id"),
    (f"https://drive.google.com/open?id={FID}&resourcekey=bad%20key", "resource key"),
])
def test_links_that_name_no_item(url, says):
    with pytest.raises(UsageError, match=says) as info:
        parse(url)
    assert "\n" not in str(info.value)


# -- shared with me, shared drives ---------------------------------------------------------------------

def test_shared_with_me():
    loc = parse("shared-with-me:Course 101/week1/data.csv")
    assert (loc.anchor, loc.parts, loc.wants_folder) == (SHARED_WITH_ME, ("Course 101", "week1", "data.csv"), False)
    assert parse("shared-with-me:Course/").wants_folder
    assert parse("shared-with-me:").parts == ()


def test_shared_drive_by_name_and_by_id():
    loc = parse("shared-drive:Lab Data/runs/42/")
    assert (loc.anchor, loc.drive_name, loc.parts, loc.wants_folder) == (SHARED_DRIVE, "Lab Data", ("runs", "42"), True)
    loc = parse("shared-drive:Lab Data")
    assert (loc.drive_name, loc.parts, loc.wants_folder) == ("Lab Data", (), False)
    loc = parse("runs/42", drive_id=SHARED_DRIVE_ID)
    assert (loc.anchor, loc.drive_id, loc.parts) == (SHARED_DRIVE, SHARED_DRIVE_ID, ("runs", "42"))
    assert parse("", drive_id=SHARED_DRIVE_ID).parts == ()
    # With --drive-id an id-shaped name is a name inside the drive (never a bare id).
    assert parse(FID, drive_id=SHARED_DRIVE_ID).parts == (FID,)


@pytest.mark.parametrize("text, drive_id", [
    ("shared-drive:", None), ("shared-drive:/x", None), ("shared-drive:  /x", None),
    (f"id:{FID}", SHARED_DRIVE_ID), (f"https://drive.google.com/drive/folders/{FID}", SHARED_DRIVE_ID),
    ("shared-with-me:x", SHARED_DRIVE_ID), ("x", "not an id!"), ("x", "short"),
])
def test_shared_drive_refusals(text, drive_id):
    with pytest.raises(UsageError):
        parse(text, drive_id=drive_id)


# -- deriving locators ---------------------------------------------------------------------------------

def test_child_and_parent():
    loc = parse(f"https://drive.google.com/drive/folders/{FID}?resourcekey=0-k")
    child = loc.child("checkpoint-1500")
    assert child.canonical() == f"id:{FID}/checkpoint-1500?resourcekey=0-k"
    assert parse(child.canonical()) == Locator(ID, ("checkpoint-1500",), False, file_id=FID, resource_key="0-k",
                                               text=child.canonical())
    assert parse("shared-drive:Lab/runs").child("x").canonical() == "shared-drive:Lab/runs/x"
    assert parse("shared-with-me:Course").child("w1").canonical() == "shared-with-me:Course/w1"
    p = parse("a/b/c").parent()
    assert p.parts == ("a", "b") and p.wants_folder
    with pytest.raises(ValueError):
        parse("").parent()
    with pytest.raises(ValueError):
        parse(FID).child("x")            # a bare id is decided first
    assert parse("shared-drive:D").describe() == "shared-drive:D"
    assert parse("").describe() == "My Drive"
    assert parse("a\nb/c\td").describe() == "a\\nb/c\\td"          # messages stay one line


# -- properties ----------------------------------------------------------------------------------------

name_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00")
names = st.text(name_chars, min_size=1, max_size=12).map(str.strip).filter(lambda n: n and n not in (".", ".."))
ids = st.text(st.sampled_from("abcXYZ0189_-"), min_size=19, max_size=44).filter(
    lambda t: any(c.isdigit() for c in t) and any(c.isalpha() for c in t))
keys = st.text(st.sampled_from("abcXYZ0189_-"), min_size=1, max_size=20)


@st.composite
def locators(draw):
    parts = tuple(draw(st.lists(names, max_size=4)))
    folder = draw(st.booleans()) and bool(parts)
    kind = draw(st.sampled_from([MY_DRIVE, ID, SHARED_WITH_ME, SHARED_DRIVE, "drive-id"]))
    if kind == MY_DRIVE:
        return Locator(MY_DRIVE, parts, folder), None
    if kind == ID:
        return Locator(ID, parts, draw(st.booleans()) if not parts else folder, file_id=draw(ids),
                       resource_key=draw(st.none() | keys)), None
    if kind == SHARED_WITH_ME:
        return Locator(SHARED_WITH_ME, parts, folder), None
    if kind == SHARED_DRIVE:
        return Locator(SHARED_DRIVE, parts, folder, drive_name=draw(names)), None
    drive_id = draw(ids)
    return Locator(SHARED_DRIVE, parts, folder, drive_id=drive_id), drive_id


def _same(a: Locator, b: Locator) -> bool:
    return (a.anchor, a.parts, a.wants_folder, a.file_id, a.resource_key, a.drive_name, a.drive_id) == \
           (b.anchor, b.parts, b.wants_folder, b.file_id, b.resource_key, b.drive_name, b.drive_id)


@settings(max_examples=400, deadline=None)
@given(locators())
def test_canonical_round_trips(case):
    loc, drive_id = case
    text = loc.canonical()
    back = parse(text, drive_id=drive_id)
    if back.bare_id:                     # one id-shaped name at the top of My Drive: decided later, by name first
        back = back.as_path()
    assert _same(back, loc), (loc, text, back)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_any_text_parses_or_is_one_usage_line(text):
    try:
        loc = parse(text)
    except UsageError as exc:
        message = str(exc)
        assert message and "\n" not in message.strip("\n") or "\n" in text
        return
    assert loc.anchor in (MY_DRIVE, ID, SHARED_WITH_ME, SHARED_DRIVE)
    assert all(p and p not in (".", "..") and "/" not in p for p in loc.parts)
    if loc.anchor == ID:
        assert is_bare_id(loc.file_id) or len(loc.file_id) >= 10


@settings(max_examples=200, deadline=None)
@given(ids, st.sampled_from(["https://drive.google.com/drive/folders/{}", "https://drive.google.com/file/d/{}/view",
                             "https://drive.google.com/open?id={}", "https://docs.google.com/document/d/{}/edit",
                             "drive.google.com/drive/u/2/folders/{}?usp=sharing"]),
       st.none() | keys)
def test_every_link_shape_carries_its_id_and_key(file_id, shape, key):
    url = shape.format(file_id)
    if key:
        url += ("&" if "?" in url else "?") + f"resourcekey={key}"
    loc = parse(url)
    assert (loc.anchor, loc.file_id, loc.resource_key) == (ID, file_id, key)
