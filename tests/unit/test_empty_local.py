"""An empty LOCAL is refused by the library as by the CLI: os.path.abspath("") is the current folder,
so push("") uploaded the working directory and pull(X, "") wrote into it. Refused before any request
(the API URL points at a closed port: reaching it would be another error)."""
from __future__ import annotations

import pytest

import drivesync
from drivesync.errors import EMPTY_LOCAL, UsageError

NOWHERE = "http://127.0.0.1:9"


def test_push_of_an_empty_path_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.txt").write_text("not for Drive")
    with pytest.raises(UsageError, match="empty path"):
        drivesync.push("", "somewhere", api_url=NOWHERE, progress=False)


def test_watch_of_an_empty_path_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="empty path"):
        with drivesync.watch("", "somewhere", api_url=NOWHERE):
            pass


def test_pull_into_an_empty_path_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError) as caught:
        drivesync.pull("data", "", api_url=NOWHERE, progress=False)
    assert str(caught.value) == EMPTY_LOCAL
    assert list(tmp_path.iterdir()) == []
