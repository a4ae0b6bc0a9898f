"""`pull --latest` and `drivesync.latest_checkpoint` against the emulator over real sockets: the newest
checkpoint and the files without a step come back, nothing older, never a hidden stage."""
from __future__ import annotations

import json
import os

import pytest

import drivesync
from drivesync.cli import main


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def run(emulator):
    top = emulator.add_folder("run42")
    ckpt = emulator.add_folder("checkpoints", top)
    for step in (500, 1500, 10000):
        folder = emulator.add_folder(f"checkpoint-{step}", ckpt)
        emulator.add_file("model.safetensors", f"weights {step}".encode(), parent_id=folder)
        emulator.add_file("trainer_state.json", json.dumps({"global_step": step}).encode(), parent_id=folder)
    stage = emulator.add_folder(".drivesync-stage-checkpoint-20000", ckpt)       # an upload in progress
    emulator.add_file("model.safetensors", b"half", parent_id=stage)
    emulator.add_file("last.ckpt", b"last", parent_id=ckpt)
    emulator.add_file("config.json", b"{}", parent_id=ckpt)
    emulator.add_file("epoch=1-step=900.ckpt", b"e1", parent_id=ckpt)
    emulator.add_file("epoch=2-step=1800.ckpt", b"e2", parent_id=ckpt)
    return emulator


def files_under(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_pull_latest_brings_the_newest_and_the_stepless(run, tmp_path, capsys):
    out = tmp_path / "restored"
    code = main(["pull", "run42/checkpoints", str(out), "--latest", "--api-url", run.url,
                 "--credentials", run.credentials_path, "-q", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["ok"]
    assert summary["latest"] == ["checkpoint-10000", "epoch=2-step=1800.ckpt"]
    assert files_under(out) == ["checkpoint-10000/model.safetensors", "checkpoint-10000/trainer_state.json",
                                "config.json", "epoch=2-step=1800.ckpt", "last.ckpt"]
    assert (out / "checkpoint-10000" / "model.safetensors").read_bytes() == b"weights 10000"


def test_latest_checkpoint_in_python(run):
    path = drivesync.latest_checkpoint("run42/checkpoints", api_url=run.url, credentials=run.credentials_path)
    assert path == "run42/checkpoints/checkpoint-10000"
    empty = run.add_folder("empty")
    run.add_file("notes.txt", b"x", parent_id=empty)
    assert drivesync.latest_checkpoint("empty", api_url=run.url, credentials=run.credentials_path) is None


def test_latest_refuses_delete_and_files(run, tmp_path, capsys):
    code = main(["pull", "run42/checkpoints", str(tmp_path / "x"), "--latest", "--delete", "--api-url", run.url,
                 "--credentials", run.credentials_path])
    assert code == 2 and "--latest and --delete" in capsys.readouterr().err
    code = main(["pull", "run42/checkpoints/last.ckpt", str(tmp_path / "y"), "--latest", "--api-url", run.url,
                 "--credentials", run.credentials_path])
    assert code == 2 and "needs a folder" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_ls_orders_numbered_names_naturally(run, capsys):
    code = main(["ls", "run42/checkpoints", "--api-url", run.url, "--credentials", run.credentials_path])
    lines = capsys.readouterr().out.split()
    assert code == 0
    numbered = [line for line in lines if line.startswith("checkpoint-")]
    assert numbered == ["checkpoint-500/", "checkpoint-1500/", "checkpoint-10000/"]


def test_the_recycled_runtime_recipe_pushes_nothing_back_twice(run, tmp_path, capsys):
    """README's recipe: restore with --latest into a fresh runtime, then push the folder back (what the
    watcher's first pass does): everything restored is recognised as already on Drive."""
    out = tmp_path / "content" / "checkpoints"
    assert main(["pull", "run42/checkpoints", str(out), "--latest", "-q", "--api-url", run.url,
                 "--credentials", run.credentials_path]) == 0
    result = drivesync.push(str(out), "run42/checkpoints", api_url=run.url, credentials=run.credentials_path)
    assert result.ok and result.uploaded == [] and len(result.skipped) == 5
    assert capsys.readouterr().err == ""
