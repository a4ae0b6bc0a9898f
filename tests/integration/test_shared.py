"""Every REMOTE form over real sockets, with two accounts: the owner shares, drivesync runs as the student.

The owner is the emulator's default account; the student is a second account made through
`POST /_emulator/accounts` (the credentials JSON it answers is written to a file and passed as
--credentials). Sharing is set up with the emulator's testing helpers (share, add_drive, set_resource_key,
set_copy_requires_writer_permission), which grant exactly what Drive's permissions.create would.
"""
from __future__ import annotations

import json
import os

import httpx
import pytest

import drivesync
from drivesync.cli import main

STUDENT = "student@example.edu"

#: The main paths run a second time against Google's front-end habits (gzip, HTML 5xx, cut bodies,
#: OR'd-parents empties, ignored Range, missing md5): they must end byte-identical under both.
BOTH_PROFILES = pytest.mark.parametrize("emulator_profile", ["unthrottled", "google-like"], indirect=True)


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def student(emulator, tmp_path) -> str:
    """The student's credentials file, made through the emulator's HTTP contract."""
    reply = httpx.post(f"{emulator.url}/_emulator/accounts", json={"email": STUDENT}, timeout=30)
    reply.raise_for_status()
    info = reply.json()
    assert info.get("type") == "authorized_user" and info.get("refresh_token")
    path = tmp_path / "student.json"
    path.write_text(json.dumps(info))
    return str(path)


@pytest.fixture
def course(emulator, student):
    """The owner's folder 'course' shared with the student as reader."""
    emu = emulator
    top = emu.add_folder("course")
    week = emu.add_folder("week1", top)
    ids = {
        "course": top, "week1": week,
        "readme": emu.add_file("readme.txt", b"hello class\n", parent_id=top),
        "data": emu.add_file("data.csv", b"a,b\n1,2\n", parent_id=week),
        "notes": emu.add_doc("notes", top, kind="document", text="lecture notes"),
    }
    emu.share(top, STUDENT, "reader")
    return ids


def cli(emu, capsys, creds, *args):
    code = main([*args, "--api-url", emu.url, "--credentials", creds])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line(err: str) -> str:
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def read(path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


# -- pull and ls by every form --------------------------------------------------------------------------

FOLDER_FORMS = [
    "id:{course}",
    "id:{course}/",
    "{course}",
    "https://drive.google.com/drive/folders/{course}",
    "https://drive.google.com/drive/folders/{course}?usp=sharing",
    "https://drive.google.com/drive/u/1/folders/{course}?usp=drive_link",
    "drive.google.com/drive/folders/{course}",
    "https://drive.google.com/open?id={course}",
    "shared-with-me:course",
    "shared-with-me:course/",
]


@BOTH_PROFILES
@pytest.mark.parametrize("form", FOLDER_FORMS)
def test_pull_a_shared_folder_by_every_form(emulator, capsys, student, course, tmp_path, form):
    remote = form.format(**course)
    local = tmp_path / "out"
    code, _, err = cli(emulator, capsys, student, "pull", remote, str(local), "-q")
    assert code == 0, err
    assert read(local / "readme.txt") == b"hello class\n"
    assert read(local / "week1" / "data.csv") == b"a,b\n1,2\n"
    assert (local / "notes.docx").exists()


@pytest.mark.parametrize("form, name", [
    ("https://drive.google.com/drive/folders/{course}?usp=sharing", "course"),
    ("shared-with-me:course/week1", "week1"),
    ("{course}", "course"),
    ("https://drive.google.com/file/d/{readme}/view", "readme.txt"),
])
def test_pull_without_local_names_the_folder_after_the_item(emulator, capsys, student, course, tmp_path,
                                                            monkeypatch, form, name):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "state").mkdir(exist_ok=True)
    before = set(os.listdir(tmp_path))
    code, _, err = cli(emulator, capsys, student, "pull", form.format(**course), "-q")
    assert code == 0, err
    assert set(os.listdir(tmp_path)) - before == {name}


@pytest.mark.parametrize("form", [
    "https://drive.google.com/file/d/{readme}/view",
    "https://drive.google.com/file/d/{readme}/view?usp=sharing",
    "https://drive.google.com/open?id={readme}",
    "https://drive.google.com/uc?id={readme}&export=download",
    "https://drive.usercontent.google.com/download?id={readme}&export=download",
    "id:{readme}",
    "{readme}",
    "id:{course}/readme.txt",
    "shared-with-me:course/readme.txt",
])
def test_pull_a_shared_file_into_a_folder_by_every_form(emulator, capsys, student, course, tmp_path, form):
    remote = form.format(**course)
    code, _, err = cli(emulator, capsys, student, "pull", remote, str(tmp_path / "into") + "/", "-q")
    assert code == 0, err
    # A trailing '/' on LOCAL makes it a folder to put the file in, even when it did not exist yet.
    assert read(tmp_path / "into" / "readme.txt") == b"hello class\n"


def test_a_docs_link_exports_the_doc(emulator, capsys, student, course, tmp_path):
    url = f"https://docs.google.com/document/d/{course['notes']}/edit?usp=sharing"
    code, _, err = cli(emulator, capsys, student, "pull", url, str(tmp_path / "docs") + "/", "-q")
    assert code == 0, err
    assert (tmp_path / "docs" / "notes.docx").stat().st_size > 0


@pytest.mark.parametrize("form, expected", [
    ("shared-with-me:course", ["notes.docx", "readme.txt", "week1/"]),
    ("shared-with-me:course/week1", ["data.csv"]),
    ("https://drive.google.com/drive/folders/{week1}?usp=sharing", ["data.csv"]),
    ("id:{course}/week1/", ["data.csv"]),
    ("{week1}", ["data.csv"]),
])
def test_ls_by_every_form(emulator, capsys, student, course, form, expected):
    code, out, err = cli(emulator, capsys, student, "ls", form.format(**course))
    assert code == 0, err
    assert out.splitlines() == expected


def test_ls_lists_what_is_shared_and_the_shared_drives(emulator, capsys, student, course):
    emu = emulator
    emu.share(emu.add_file("paper.pdf", b"%PDF"), STUDENT, "commenter")
    emu.add_folder("not shared")
    emu.add_drive("Lab Data", members={STUDENT: "reader"})
    emu.add_drive("Owners Only")
    code, out, err = cli(emu, capsys, student, "ls", "shared-with-me:")
    assert code == 0 and out.splitlines() == ["course/", "paper.pdf"], err
    code, out, err = cli(emu, capsys, student, "ls", "shared-with-me:", "--long")
    assert code == 0 and course["course"] in out.splitlines()[0]
    code, out, err = cli(emu, capsys, student, "ls", "shared-drive:")
    assert code == 0 and out.splitlines() == ["Lab Data/"], err


def test_a_bare_id_is_a_my_drive_name_first(emulator, capsys, student, course):
    """The conservative rule: a top-level My Drive item named like the id wins; id:ID always means the id."""
    emu = emulator
    mine = emu.add_folder(course["course"], owner=STUDENT)
    emu.add_file("mine.txt", b"mine", parent_id=mine, owner=STUDENT)
    code, out, err = cli(emu, capsys, student, "ls", course["course"])
    assert code == 0, err
    assert out.splitlines() == ["mine.txt"]
    code, out, err = cli(emu, capsys, student, "ls", f"id:{course['course']}")
    assert code == 0 and out.splitlines() == ["notes.docx", "readme.txt", "week1/"]


# -- the Python API --------------------------------------------------------------------------------------

def test_python_api_takes_links_and_latest_checkpoint_answers_a_remote_that_pulls(emulator, student, tmp_path):
    emu = emulator
    runs = emu.add_folder("runs")
    for step in (100, 200):
        ckpt = emu.add_folder(f"checkpoint-{step}", runs)
        emu.add_file("weights.bin", f"step {step}".encode(), parent_id=ckpt)
    emu.share(runs, STUDENT, "reader")
    url = f"https://drive.google.com/drive/folders/{runs}?usp=sharing"
    options = dict(credentials=student, api_url=emu.url)
    newest = drivesync.latest_checkpoint(url, **options)
    assert newest == f"id:{runs}/checkpoint-200"
    result = drivesync.pull(newest, str(tmp_path / "restore"), progress=False, **options)
    assert result.ok and result.done == 1
    assert read(tmp_path / "restore" / "weights.bin") == b"step 200"
    result = drivesync.pull(url, str(tmp_path / "all"), progress=False, latest=True, **options)
    assert result.ok and result.latest == ["checkpoint-200"]


# -- access that is missing --------------------------------------------------------------------------------

@pytest.mark.parametrize("form", [
    "https://drive.google.com/drive/folders/{secret}?usp=sharing",
    "https://drive.google.com/file/d/{secret}/view",
    "id:{secret}",
    "{secret}",
    "shared-with-me:secret",
])
def test_an_unshared_item_is_one_line_naming_the_account(emulator, capsys, student, tmp_path, form):
    secret = emulator.add_folder("secret")
    emulator.add_file("x.bin", b"private", parent_id=secret)
    local = tmp_path / "out"
    code, out, err = cli(emulator, capsys, student, "pull", form.format(secret=secret), str(local))
    assert code != 0
    line = one_line(err)
    assert STUDENT in line and "ask its owner to share it" in line, line
    assert not local.exists()                       # nothing written
    code, out, err = cli(emulator, capsys, student, "ls", form.format(secret=secret))
    assert code != 0 and out == "" and STUDENT in one_line(err)
    emulator.reset_stats()
    code, out, err = cli(emulator, capsys, student, "push", str(_tree(tmp_path)), form.format(secret=secret) + "/")
    assert code != 0 and STUDENT in one_line(err) and "ask its owner to share it" in err
    assert emulator.stats()["by_kind"].get("upload", 0) == 0 and _names(emulator, secret) == ["x.bin"]


def test_a_file_whose_owner_disabled_downloading_is_reported_counted_and_not_tried(emulator, capsys, student,
                                                                                  course, tmp_path):
    emu = emulator
    locked = emu.add_file("locked.bin", b"no copies", parent_id=course["course"])
    emu.set_copy_requires_writer_permission(locked)
    emu.reset_stats()
    result = drivesync.pull(f"id:{course['course']}", str(tmp_path / "a"), credentials=student, api_url=emu.url,
                            progress=False)
    assert not result.ok and result.download_disabled == 1
    assert [f.path for f in result.failed] == ["locked.bin"]
    assert "disabled downloading" in result.failed[0].reason and "disabled downloading" in str(result)
    assert read(tmp_path / "a" / "readme.txt") == b"hello class\n"
    assert not (tmp_path / "a" / "locked.bin").exists()
    assert emu.stats()["by_kind"].get("media", 0) == 2          # readme.txt and data.csv, nothing for locked.bin
    assert emu.stats()["by_status"].get("403", 0) == 0           # never tried, so never refused
    code, _, err = cli(emu, capsys, student, "pull", "shared-with-me:course", str(tmp_path / "b"))
    assert code == 6                 # exit 6: some files failed, the rest arrived
    assert "failed: locked.bin: the owner has disabled downloading" in err
    assert "1 file not downloadable" in err


def test_drives_403_cannot_download_is_counted_and_not_retried(emulator, student, course, tmp_path):
    """The listing said the file could be downloaded; by the time its turn came the owner had turned it off."""
    emu = emulator
    late = emu.add_file("late.bin", b"locked later", parent_id=course["course"])

    def lock_it(event):
        if event.kind == "queued" and event.path == "late.bin":
            emu.set_copy_requires_writer_permission(late)

    emu.reset_stats()
    result = drivesync.pull(f"id:{course['course']}", str(tmp_path / "a"), credentials=student, api_url=emu.url,
                            progress=False, subscribers=[lock_it])
    assert result.download_disabled == 1 and [f.path for f in result.failed] == ["late.bin"]
    assert "disabled downloading" in result.failed[0].reason
    assert emu.stats()["by_status"].get("403", 0) == 1             # asked once, refused once, never again
    assert not (tmp_path / "a" / "late.bin").exists()
    assert read(tmp_path / "a" / "readme.txt") == b"hello class\n"


@BOTH_PROFILES
def test_a_link_shared_item_with_a_resource_key(emulator, capsys, student, tmp_path):
    emu = emulator
    linked = emu.add_folder("linked")
    sub = emu.add_folder("sub", linked)
    emu.add_file("deep.txt", b"deep", parent_id=sub)
    emu.share(linked, None, "reader")                # anyone with the link
    key = emu.set_resource_key(linked)
    url = f"https://drive.google.com/drive/folders/{linked}?usp=sharing&resourcekey={key}"
    code, _, err = cli(emu, capsys, student, "pull", url, str(tmp_path / "with-key"), "-q")
    assert code == 0, err
    assert read(tmp_path / "with-key" / "sub" / "deep.txt") == b"deep"
    # Without its key Drive hides the item: one line, nothing written.
    code, _, err = cli(emu, capsys, student, "pull", f"https://drive.google.com/drive/folders/{linked}",
                       str(tmp_path / "no-key"))
    assert code != 0 and STUDENT in one_line(err) and not (tmp_path / "no-key").exists()


# -- shared drives ------------------------------------------------------------------------------------------

@pytest.fixture
def lab(emulator, student):
    emu = emulator
    drive_id = emu.add_drive("Lab Data", members={STUDENT: "writer"})
    runs = emu.add_folder("runs", drive_id)
    emu.add_file("metrics.json", b'{"loss": 0.1}', parent_id=runs)
    deep = emu.add_folder("42", runs)
    emu.add_file("model.bin", b"weights-42", parent_id=deep)
    emu.add_doc("plan", runs, kind="document", text="the plan")
    return {"drive": drive_id, "runs": runs, "deep": deep}


@BOTH_PROFILES
@pytest.mark.parametrize("args", [
    ["shared-drive:Lab Data/runs"],
    ["shared-drive:Lab Data/runs/"],
    ["runs", "--drive-id", "{drive}"],
    ["id:{runs}"],
    ["https://drive.google.com/drive/folders/{runs}"],
])
def test_pull_and_ls_in_a_shared_drive(emulator, capsys, student, lab, tmp_path, args):
    args = [a.format(**lab) for a in args]
    code, out, err = cli(emulator, capsys, student, "ls", *args, "-R")
    assert code == 0, err
    assert out.splitlines() == ["42/", "42/model.bin", "metrics.json", "plan.docx"]
    local = tmp_path / "runs"
    code, _, err = cli(emulator, capsys, student, "pull", args[0], str(local), *args[1:], "-q")
    assert code == 0, err
    assert read(local / "42" / "model.bin") == b"weights-42"
    assert read(local / "metrics.json") == b'{"loss": 0.1}'
    assert (local / "plan.docx").stat().st_size > 0


def test_a_shared_drive_root_and_its_errors(emulator, capsys, student, lab):
    emu = emulator
    code, out, err = cli(emu, capsys, student, "ls", "shared-drive:Lab Data")
    assert code == 0 and out.splitlines() == ["runs/"], err
    code, out, err = cli(emu, capsys, student, "ls", "shared-drive:No Such Drive")
    assert code != 0 and out == ""
    line = one_line(err)
    assert STUDENT in line and "No Such Drive" in line and "Lab Data" in line
    other = emu.add_drive("Owners Only")
    code, out, err = cli(emu, capsys, student, "ls", "", "--drive-id", other)
    assert code != 0 and STUDENT in one_line(err)
    emu.add_drive("Lab Data", members={STUDENT: "reader"})
    code, out, err = cli(emu, capsys, student, "ls", "shared-drive:Lab Data")
    assert code != 0 and "--drive-id" in one_line(err)


def test_a_shared_drive_link_is_its_root(emulator, capsys, student, lab, tmp_path):
    url = f"https://drive.google.com/drive/folders/{lab['drive']}"
    code, out, err = cli(emulator, capsys, student, "ls", url, "-R")
    assert code == 0, err
    assert out.splitlines() == ["runs/", "runs/42/", "runs/42/model.bin", "runs/metrics.json", "runs/plan.docx"]
    code, _, err = cli(emulator, capsys, student, "pull", url, str(tmp_path / "lab"), "-q")
    assert code == 0, err
    assert read(tmp_path / "lab" / "runs" / "42" / "model.bin") == b"weights-42"


@pytest.mark.parametrize("remote", ["shared-drive:Read Only", "shared-drive:Read Only/runs", "shared-drive:Read Only/new"])
def test_push_into_a_shared_drive_this_account_may_only_read(emulator, capsys, student, tmp_path, remote):
    emu = emulator
    drive_id = emu.add_drive("Read Only", members={STUDENT: "reader"})
    runs = emu.add_folder("runs", drive_id)
    code, out, err = cli(emu, capsys, student, "push", str(_tree(tmp_path)), remote)
    assert code != 0
    line = one_line(err)
    assert "may only read" in line and STUDENT in line, line
    assert _names(emu, drive_id) == ["runs"] and _names(emu, runs) == []


def test_shortcuts_into_a_shared_drive_and_to_a_shared_folder(emulator, capsys, student, lab, course, tmp_path):
    emu = emulator
    emu.add_shortcut("lab-runs", lab["runs"], owner=STUDENT)
    emu.add_shortcut("course-link", course["course"], owner=STUDENT)
    code, _, err = cli(emu, capsys, student, "pull", "lab-runs", str(tmp_path / "lab"), "-q")
    assert code == 0, err
    assert read(tmp_path / "lab" / "42" / "model.bin") == b"weights-42"
    code, _, err = cli(emu, capsys, student, "pull", "course-link/week1/data.csv", str(tmp_path) + "/", "-q")
    assert code == 0, err
    assert read(tmp_path / "data.csv") == b"a,b\n1,2\n"


def _tree(tmp_path, name="results"):
    local = tmp_path / name
    (local / "sub").mkdir(parents=True)
    (local / "a.txt").write_bytes(b"alpha")
    (local / "sub" / "b.bin").write_bytes(os.urandom(1000))
    return local


def _names(emu, parent_id):
    return sorted(c["name"] for c in emu.children(parent_id, trashed=False))


@BOTH_PROFILES
def test_push_into_a_shared_drive(emulator, capsys, student, lab, tmp_path):
    emu = emulator
    local = _tree(tmp_path)
    code, out, err = cli(emu, capsys, student, "push", str(local), "shared-drive:Lab Data/runs/43")
    assert code == 0, err
    folder = [c for c in emu.children(lab["runs"], trashed=False) if c["name"] == "43"][0]
    assert _names(emu, folder["id"]) == ["a.txt", "sub"]
    # Pushing again, the drive named by id, changes nothing (the listing inside the shared drive finds what
    # is there; with Drive giving no md5, the journal's record of the same file ids does).
    code, out, err = cli(emu, capsys, student, "push", str(local), "runs/43", "--drive-id", lab["drive"])
    assert code == 0, err
    assert "0 uploaded" in out + err, out + err
    result = drivesync.push(str(local), "shared-drive:Lab Data/runs/43", credentials=student, api_url=emu.url,
                            progress=False)
    assert result.uploaded == [] and sorted(result.skipped) == ["a.txt", "sub/b.bin"]
    # One file by link into the drive's folder.
    one = tmp_path / "one.txt"
    one.write_bytes(b"one")
    code, out, err = cli(emu, capsys, student, "push", str(one), f"https://drive.google.com/drive/folders/{lab['deep']}")
    assert code == 0, err
    assert "one.txt" in _names(emu, lab["deep"])


def test_watch_into_a_shared_drive(emulator, student, lab, tmp_path):
    emu = emulator
    local = tmp_path / "ckpts"
    local.mkdir()
    with drivesync.watch(str(local), "shared-drive:Lab Data/runs/live", credentials=student, api_url=emu.url,
                         settle=0.2, poll=True, progress=False):
        (local / "step-1.txt").write_bytes(b"one")
    live = [c for c in emu.children(lab["runs"], trashed=False) if c["name"] == "live"][0]
    assert _names(emu, live["id"]) == ["step-1.txt"]


@BOTH_PROFILES
def test_push_into_a_folder_shared_as_writer(emulator, capsys, student, tmp_path):
    emu = emulator
    project = emu.add_folder("project")
    emu.share(project, STUDENT, "writer")
    local = _tree(tmp_path)
    code, out, err = cli(emu, capsys, student, "push", str(local), "shared-with-me:project/run1")
    assert code == 0, err
    run1 = [c for c in emu.children(project, trashed=False) if c["name"] == "run1"][0]
    assert _names(emu, run1["id"]) == ["a.txt", "sub"]
    code, out, err = cli(emu, capsys, student, "push", str(local / "a.txt"),
                         f"https://drive.google.com/drive/folders/{project}?usp=sharing")
    assert code == 0, err
    assert _names(emu, project) == ["a.txt", "run1"]


@pytest.mark.parametrize("form", ["shared-with-me:course", "shared-with-me:course/new/deeper",
                                  "https://drive.google.com/drive/folders/{course}", "id:{course}/week1"])
def test_push_into_a_reader_only_folder_is_one_line(emulator, capsys, student, course, tmp_path, form):
    emu = emulator
    local = _tree(tmp_path)
    before = (_names(emu, course["course"]), _names(emu, course["week1"]))
    code, out, err = cli(emu, capsys, student, "push", str(local), form.format(**course))
    assert code != 0
    line = one_line(err)
    assert "may only read" in line and STUDENT in line, line
    assert (_names(emu, course["course"]), _names(emu, course["week1"])) == before


# -- push names its target exactly (issue 14, item 3) -------------------------------------------------------

def test_push_into_an_ambiguous_folder_path_is_refused_with_the_ids(emulator, capsys, tmp_path):
    emu = emulator
    first, second = emu.add_folder("dup"), emu.add_folder("dup")
    local = _tree(tmp_path)
    code = main(["push", str(local), "dup/run", "--api-url", emu.url, "--credentials", emu.credentials_path])
    assert code != 0
    line = one_line(capsys.readouterr().err)
    assert "ambiguous" in line and f"id:{first}" in line and f"id:{second}" in line, line
    assert _names(emu, first) == [] and _names(emu, second) == []
    # The same for one file, and pull refuses the same path the same way.
    code = main(["push", str(local / "a.txt"), "dup/", "--api-url", emu.url, "--credentials", emu.credentials_path])
    err = capsys.readouterr().err
    assert code != 0 and f"id:{first}" in one_line(err)
    assert _names(emu, first) == [] and _names(emu, second) == []
    # Named by id, the push goes exactly there.
    code = main(["push", str(local), f"id:{second}/run", "--api-url", emu.url, "--credentials", emu.credentials_path])
    assert code == 0, capsys.readouterr().err
    assert _names(emu, first) == [] and _names(emu, second) == ["run"]


def test_pull_file_into_a_new_folder_with_a_trailing_slash(emulator, capsys, tmp_path):
    emu = emulator
    data = emu.add_folder("data")
    emu.add_file("readme.txt", b"read me", parent_id=data)
    code = main(["pull", "data/readme.txt", str(tmp_path / "newdir") + "/", "-q", "--api-url", emu.url,
                 "--credentials", emu.credentials_path])
    assert code == 0, capsys.readouterr().err
    assert read(tmp_path / "newdir" / "readme.txt") == b"read me"
    # Without the slash LOCAL is the file's new name, as before.
    code = main(["pull", "data/readme.txt", str(tmp_path / "renamed"), "-q", "--api-url", emu.url,
                 "--credentials", emu.credentials_path])
    assert code == 0 and read(tmp_path / "renamed") == b"read me"


@pytest.mark.parametrize("remote", ["https://example.com/folders/x", "https://drive.google.com/drive/search?q=a",
                                    "id:not'an'id", "shared-drive:/runs", "a/../b"])
def test_a_remote_that_means_nothing_is_one_line_before_any_request(emulator, capsys, tmp_path, remote):
    emu = emulator
    local = _tree(tmp_path, "p")
    emu.reset_stats()
    for args in (["pull", remote, str(tmp_path / "x")], ["ls", remote], ["push", str(local), remote]):
        code = main([*args, "--api-url", emu.url, "--credentials", emu.credentials_path])
        assert code == 2
        one_line(capsys.readouterr().err)
    assert emu.stats()["requests"] == 0 and not (tmp_path / "x").exists()


# -- what goes on the wire ------------------------------------------------------------------------------------

@pytest.fixture
def sent(monkeypatch):
    """Every request drivesync sends (method, url, params, headers), recorded on its way to the real socket."""
    from drivesync import transport

    calls = []
    real = transport.Transport.stream

    def spy(self, method, url, *, params=None, headers=None, **kw):
        calls.append((method, url, dict(params or {}), dict(headers or {})))
        return real(self, method, url, params=params, headers=headers, **kw)

    monkeypatch.setattr(transport.Transport, "stream", spy)
    return calls


def test_shared_drive_parameters_are_the_ones_drive_requires(emulator, student, lab, tmp_path, sent):
    result = drivesync.pull("shared-drive:Lab Data/runs", str(tmp_path / "runs"), credentials=student,
                            api_url=emulator.url, progress=False)
    assert result.ok and result.done == 3
    files_calls = [c for c in sent if "/drive/v3/files" in c[1]]
    assert files_calls and all(c[2].get("supportsAllDrives") is True for c in files_calls)
    lists = [c for c in sent if c[1].endswith("/drive/v3/files") and c[0] == "GET"]
    inside = [c for c in lists if f"'{lab['runs']}' in parents" in c[2]["q"] or f"'{lab['deep']}' in parents" in c[2]["q"]]
    assert inside, lists
    for _, _, params, _ in inside:
        assert (params.get("corpora"), params.get("driveId"), params.get("includeItemsFromAllDrives")) == \
               ("drive", lab["drive"], True), params
    # A push into the drive: every files.* call (creates, uploads, generateIds) says supportsAllDrives too.
    sent.clear()
    assert drivesync.push(str(_tree(tmp_path)), "shared-drive:Lab Data/runs/new", credentials=student,
                          api_url=emulator.url, progress=False).ok
    files_calls = [c for c in sent if "/drive/v3/files" in c[1] and "upload_id=" not in c[1]]
    assert any(c[1].endswith("/upload/drive/v3/files") for c in files_calls)
    assert all(c[2].get("supportsAllDrives") is True for c in files_calls), files_calls
    # Outside shared drives a listing names no drive.
    sent.clear()
    mine = emulator.add_folder("mine", owner=STUDENT)
    emulator.add_file("m.txt", b"m", parent_id=mine, owner=STUDENT)
    assert drivesync.pull("mine", str(tmp_path / "mine"), credentials=student, api_url=emulator.url,
                          progress=False).ok
    lists = [c for c in sent if c[1].endswith("/drive/v3/files") and c[0] == "GET"]
    assert lists and all("corpora" not in c[2] and "driveId" not in c[2] for c in lists)


def test_the_resource_key_goes_with_the_item_and_its_descendants(emulator, student, tmp_path, sent):
    emu = emulator
    linked = emu.add_folder("linked")
    sub = emu.add_folder("sub", linked)
    deep = emu.add_file("deep.txt", b"deep", parent_id=sub)
    emu.share(linked, None, "reader")
    key = emu.set_resource_key(linked)
    url = f"https://drive.google.com/drive/folders/{linked}?resourcekey={key}"
    assert drivesync.pull(url, str(tmp_path / "l"), credentials=student, api_url=emu.url, progress=False).ok
    header = f"{linked}/{key}"
    get_linked = [c for c in sent if c[1].endswith(f"/files/{linked}")]
    list_sub = [c for c in sent if f"'{sub}' in parents" in c[2].get("q", "")]
    media = [c for c in sent if c[1].endswith(f"/files/{deep}") and c[2].get("alt") == "media"]
    assert get_linked and list_sub and media
    for _, _, _, headers in get_linked + list_sub + media:
        assert header in headers.get("X-Goog-Drive-Resource-Keys", "").split(","), headers
    # Requests for other items carry no key.
    emu.add_file("other.txt", b"o", owner=STUDENT)
    sent.clear()
    assert drivesync.pull("other.txt", str(tmp_path / "o.txt"), credentials=student, api_url=emu.url,
                          progress=False).ok
    assert sent and all("X-Goog-Drive-Resource-Keys" not in c[3] for c in sent)


def test_a_name_with_a_newline_is_still_one_line(emulator, capsys, tmp_path):
    emu = emulator
    for args in (["ls", "data\nset/x"], ["pull", "shared-drive:Lab\nData", str(tmp_path / "x")],
                 ["pull", "shared-with-me:a\nb", str(tmp_path / "x")]):
        code = main([*args, "--api-url", emu.url, "--credentials", emu.credentials_path])
        assert code != 0
        assert "\\n" in one_line(capsys.readouterr().err)           # the name, escaped, on the one line
    assert not (tmp_path / "x").exists()


def test_latest_checkpoint_in_a_shared_drive_pulls_back(emulator, student, lab, tmp_path):
    emu = emulator
    ckpts = emu.add_folder("ckpts", lab["drive"])
    for step in (7, 12):
        emu.add_file("w.bin", f"w{step}".encode(), parent_id=emu.add_folder(f"checkpoint-{step}", ckpts))
    options = dict(credentials=student, api_url=emu.url)
    by_name = drivesync.latest_checkpoint("shared-drive:Lab Data/ckpts", **options)
    assert by_name == "shared-drive:Lab Data/ckpts/checkpoint-12"
    by_id = drivesync.latest_checkpoint("ckpts", drive_id=lab["drive"], **options)
    assert by_id == "ckpts/checkpoint-12"
    assert drivesync.pull(by_name, str(tmp_path / "a"), progress=False, **options).ok
    assert drivesync.pull(by_id, str(tmp_path / "b"), drive_id=lab["drive"], progress=False, **options).ok
    assert read(tmp_path / "a" / "w.bin") == read(tmp_path / "b" / "w.bin") == b"w12"
