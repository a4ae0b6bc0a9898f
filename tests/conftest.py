"""Shared pytest fixtures. `emulator`: a fresh in-process Drive emulator (unthrottled) on a tmp dir."""

from __future__ import annotations

import os
import sys

import pytest

# Make the checkout importable without an editable install.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture
def emulator(tmp_path):
    from drivesync.emulator import Emulator

    with Emulator(tmp_path / "drive", profile="unthrottled") as emu:
        yield emu
