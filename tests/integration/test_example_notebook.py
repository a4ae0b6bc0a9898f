"""examples/colab_quickstart.ipynb runs headless against the Drive emulator (a separate process), with its
`colab-only` cells (install, Colab sign-in) skipped and its parameters overridden, papermill-style, by a cell
injected after the one tagged `parameters`."""
import asyncio
import os
from pathlib import Path

import pytest

# The [dev] extra installs these: a missing one is a broken install, not a reason to skip.
import ipykernel  # noqa: E402,F401
import nbclient  # noqa: E402
import nbformat  # noqa: E402

from drivesync.config import Settings  # noqa: E402
from drivesync.demo import EmulatorProcess, sample_project, upload_project  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "colab_quickstart.ipynb"
RUN = "runs/notebook/checkpoints"


def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def _prepared(work: Path):
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    nbformat.validate(nb)
    tags = [set(c.metadata.get("tags", [])) for c in nb.cells]
    assert sum("colab-only" in t for t in tags) == 2, "the install and sign-in cells are tagged colab-only"
    colab_only = [c.source for c, t in zip(nb.cells, tags) if "colab-only" in t]
    assert any("%pip install" in s for s in colab_only) and any("authenticate_user()" in s for s in colab_only)
    cells = []
    for cell, t in zip(nb.cells, tags):
        if "colab-only" in t:
            continue
        cells.append(cell)
        if "parameters" in t:
            injected = nbformat.v4.new_code_cell(
                f"WORK = {str(work)!r}\nPROJECT = 'sample-project'\nRUN = {RUN!r}\n"
                "SAVE_EVERY = 20\nSTEPS = 40\nSTEP_S = 0.005\nSHARD_BYTES = 100_000")
            injected.metadata["tags"] = ["injected-parameters"]
            cells.append(injected)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in cells), "no cell tagged parameters"
    nb.cells = cells
    return nb


def test_colab_quickstart_runs_against_the_emulator(tmp_path, monkeypatch):
    files = sample_project(images=4, zip_size=512 * 1024)
    with EmulatorProcess(str(tmp_path)) as emu:
        settings = Settings(api_url=emu.url, write_tps=1000.0, write_burst=100, tps=1000.0)
        asyncio.run(upload_project(settings, emu.credentials, files, "sample-project"))
        monkeypatch.setenv("DRIVESYNC_API_URL", emu.url)
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", emu.credentials)
        monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
        work = tmp_path / "content"
        nb = _prepared(work)
        client = nbclient.NotebookClient(nb, timeout=240, kernel_name="python3", allow_errors=False,
                                         resources={"metadata": {"path": str(tmp_path)}})
        client.execute()   # raises CellExecutionError naming the cell if any cell fails

    out = {i: _stdout(c) for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    text = "\n".join(out.values())
    # The pull brought the project.
    for rel, data in files.items():
        assert (work / "project" / rel).read_bytes() == data, rel
    # The first session's checkpoints reached Drive as they completed.
    assert "step 40: saved checkpoint-40" in text
    assert f"newest on Drive: {RUN}/checkpoint-40" in text
    # The restore brought the newest checkpoint and last.ckpt, nothing older and no temporary name.
    assert "restored: ['checkpoint-40', 'last.ckpt']" in text
    assert "resuming from checkpoint-40 at step 41" in text
    # The resumed session went on from there and its checkpoints are on Drive too.
    assert "step 80: saved checkpoint-80" in text and "step 20: saved" in text
    assert f"newest on Drive: {RUN}/checkpoint-80" in text
    assert sorted(os.listdir(work / "restored")) == ["checkpoint-40", "checkpoint-60", "checkpoint-80", "last.ckpt"]
    assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
