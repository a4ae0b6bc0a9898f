"""Shared pytest fixtures. `emulator`: a fresh in-process Drive emulator on a tmp dir.

`emulator_profile` names the emulator's profile: 'unthrottled', and for the modules in
GOOGLE_LIKE_MODULES a second run of every test under 'google-like' (drive-like's numbers plus the
front end's gzip, HTML 5xx pages, cut bodies, OR'd-parents empties, ignored Range, missing md5).
Their fixtures build the emulator with it, so those tests must end byte-identical under both."""

from __future__ import annotations

import os
import sys

import pytest

# Make the checkout importable without an editable install.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


#: The pull, push and watch integration tests that run a second time against the google-like emulator.
GOOGLE_LIKE_MODULES = {"test_pull", "test_push", "test_watch", "test_pull_resume", "test_pull_faults",
                       "test_atomic_checkpoints"}


def pytest_generate_tests(metafunc):
    if "emulator_profile" in metafunc.fixturenames:
        module = metafunc.module.__name__.rsplit(".", 1)[-1]
        if module in GOOGLE_LIKE_MODULES:
            metafunc.parametrize("emulator_profile", ["unthrottled", "google-like"], indirect=True)


@pytest.fixture
def emulator_profile(request) -> str:
    return getattr(request, "param", "unthrottled")


@pytest.fixture
def emulator(tmp_path, emulator_profile):
    from drivesync.emulator import Emulator

    with Emulator(tmp_path / "drive", profile=emulator_profile) as emu:
        yield emu


@pytest.fixture
def bwlimit_spent(monkeypatch) -> list[int]:
    """The byte counts drivesync's --bwlimit bucket is asked to pass (pacer.Bandwidth.spend), in order: where
    the limiter sits on the byte path, counted, not timed (its arithmetic is tested on a fake clock in
    tests/unit/test_bwlimit.py)."""
    from drivesync.pacer import Bandwidth

    seen: list[int] = []
    real = Bandwidth.spend

    async def counting(self, nbytes):
        seen.append(nbytes)
        await real(self, nbytes)

    monkeypatch.setattr(Bandwidth, "spend", counting)
    return seen
