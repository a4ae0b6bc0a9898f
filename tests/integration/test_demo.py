"""`drivesync demo`: emulator as a subprocess, sample project uploaded through the API, pulled back."""
import hashlib
import os

import pytest

from drivesync.cli import main
from drivesync.demo import png, run_demo, sample_project


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))


def test_sample_png_is_a_real_png():
    data = png(8, 8, 1)
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and b"IHDR" in data and data.endswith(b"IEND\xaeB`\x82")


def test_demo_pulls_the_uploaded_project_and_a_second_run_skips_it(tmp_path):
    target = tmp_path / "demo"
    lines = []
    result = run_demo(str(target), progress=False, images=12, zip_size=3 * 1024 * 1024, say=lines.append)
    assert result.ok, result.failed
    expected = sample_project(images=12, zip_size=3 * 1024 * 1024)
    assert result.done == len(expected)
    for rel, data in expected.items():
        assert hashlib.md5((target / rel).read_bytes()).hexdigest() == hashlib.md5(data).hexdigest(), rel
    assert any("emulator" in line for line in lines)
    again = run_demo(str(target), progress=False, images=12, zip_size=3 * 1024 * 1024, say=lambda m: None)
    assert again.ok and again.done == 0 and again.skipped == len(expected)


def test_demo_refuses_an_unusable_target(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"x")
    code = main(["demo", str(blocker / "sub"), "-q"])
    err = capsys.readouterr().err
    assert code != 0 and len(err.strip().splitlines()) == 1 and "is a file" in err
