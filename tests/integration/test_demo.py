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


SMALL_STORY = dict(images=12, zip_size=3 * 1024 * 1024, save_every=20, saves_before_loss=2, saves_after=2,
                   step_s=0.01, ckpt_size=200_000)


def test_the_whole_story_restores_the_newest_checkpoint_and_resumes_from_it(tmp_path):
    from drivesync.demo import RUN_REMOTE, load_hf_checkpoint, read_ckpt_header, run_story, weights_at

    lines = []
    report = run_story(str(tmp_path / "demo"), progress=False, say=lines.append, **SMALL_STORY)
    assert report.ok, lines
    text = "\n".join(lines)
    # Runtime 1 saved plain-file and folder checkpoints, then died while step 60's was half written.
    assert {"last.ckpt", "epoch=0-step=20.ckpt", "epoch=1-step=40.ckpt", "checkpoint-20", "checkpoint-40"} <= \
        set(report.saved_before_loss)
    assert report.lost_at_step == 60 and "SIGKILL" in text
    # The fresh runtime got exactly the newest checkpoint of each series (and last.ckpt), nothing older.
    restored = tmp_path / "demo" / "runtime-2" / "checkpoints"
    assert report.restored == ["checkpoint-40", "epoch=1-step=40.ckpt", "last.ckpt"]
    assert report.restore["latest"] and report.restore["failed"] == []
    assert report.restored_step == 40 and report.resumed_step == 41
    # Runtime 2 trained on from there: its checkpoints continue the series and the weights are right.
    assert report.final_step == 80
    step, weights = load_hf_checkpoint(str(restored / "checkpoint-80"))
    assert step == 80 and weights == weights_at(80)
    assert read_ckpt_header(str(restored / "last.ckpt"))["global_step"] == 80
    # The half-written folder of the lost runtime stayed behind, under its temporary name, and never reached Drive.
    assert (tmp_path / "demo" / "runtime-1" / "checkpoints" / "tmp-checkpoint-60").is_dir()
    assert load_hf_checkpoint(str(restored / "checkpoint-60")) == (60, weights_at(60))   # runtime 2's own save
    assert report.final_matches_uninterrupted
    assert report.latest_on_drive == f"{RUN_REMOTE}/checkpoint-80"
    # Measured figures only: every upload of both runtimes has a lag, and the pulls have speeds.
    assert len(report.lags) >= 2 * 3 and all(lag >= 0 for lag in report.lags)
    assert report.project.mb_per_s > 0 and report.restore["mb_per_s"] > 0 and report.wall_s > 0


def test_demo_command_plays_the_story_and_exits_0(tmp_path, capsys, monkeypatch):
    import functools

    import drivesync.demo as demo

    monkeypatch.setattr(demo, "run_story", functools.partial(demo.run_story, **SMALL_STORY))
    code = main(["demo", str(tmp_path / "demo")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "RUNTIME LOST at step 60" in err and "resuming at step 41" in err
    assert "median" in err and "worst" in err and "MiB/s" in err
    assert "demo wall time:" in err.strip().splitlines()[-2]
