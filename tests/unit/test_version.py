"""One version, written once (drivesync/__init__.py), and every place that shows it agrees."""
from __future__ import annotations

import importlib.metadata
import pathlib
import subprocess
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import pytest

import drivesync
from drivesync.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_version_flag_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"drivesync {drivesync.__version__}\n"


def test_version_from_a_real_process_exits_zero():
    run = subprocess.run([sys.executable, "-m", "drivesync", "--version"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == f"drivesync {drivesync.__version__}" and run.stderr == ""


def test_pyproject_reads_the_version_from_the_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"], "the version is written in drivesync/__init__.py only"
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "drivesync.__version__"}


def test_installed_metadata_agrees():
    # The installed (editable or wheel) distribution was built from the same source; a stale install fails here.
    assert importlib.metadata.version("drivesync") == drivesync.__version__

