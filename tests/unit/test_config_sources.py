"""Where settings come from: flag > DRIVESYNC_* variable > config file > default; the XDG-aware folders."""
from __future__ import annotations

import dataclasses

import pytest

from drivesync import auth, state
from drivesync.config import (KiB, MiB, Settings, config_file, env_name, env_settings, file_settings,
                              from_environment, parse_age, parse_rate, user_dir)
from drivesync.errors import UsageError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No DRIVESYNC_* or XDG_* variable of the machine running the tests leaks in; the config dir is empty."""
    import os

    for name in list(os.environ):
        if name.startswith(("DRIVESYNC_", "XDG_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DRIVESYNC_CONFIG_DIR", str(tmp_path / "conf"))
    (tmp_path / "conf").mkdir()
    return tmp_path / "conf"


def write_config(directory, text: str):
    path = directory / "config.toml"
    path.write_text(text)
    return path


def test_precedence_flag_over_env_over_file_over_default(clean_env, monkeypatch):
    assert from_environment().transfers == Settings.transfers == 64
    write_config(clean_env, "transfers = 7\nstreams_per_file = 3\n")
    assert from_environment().transfers == 7
    monkeypatch.setenv("DRIVESYNC_TRANSFERS", "9")
    s = from_environment()
    assert s.transfers == 9 and s.streams_per_file == 3        # the file still gives what env does not
    assert from_environment(transfers=11).transfers == 11       # a flag wins
    assert from_environment(transfers=None).transfers == 9      # a flag not given changes nothing


def test_every_setting_has_a_variable(monkeypatch):
    """Each Settings field is read from DRIVESYNC_<FIELD>, typed as the field is."""
    samples = {int: "5", float: "2.5", bool: "false", str: "http://127.0.0.1:9"}
    for f in dataclasses.fields(Settings):
        default = getattr(Settings, f.name)
        if f.name == "bwlimit":
            text, want = "2M", 2 * MiB
        elif f.name == "upload_chunk_size":
            text, want = "512K", 512 * KiB
        elif isinstance(default, bool):
            text, want = "false", False
        else:
            text = samples[type(default)]
            want = type(default)(text)
        monkeypatch.setenv(env_name(f.name), text)
        assert getattr(from_environment(), f.name) == want, f.name
        monkeypatch.delenv(env_name(f.name))


def test_sizes_and_rates_in_env_and_file(clean_env, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_RANGE_SIZE", "64M")
    write_config(clean_env, 'bwlimit = "10M"\nupload-chunk-size = "8M"\nmultistream_cutoff = 1048576\n')
    s = from_environment()
    assert s.range_size == 64 * MiB and s.bwlimit == 10 * MiB and s.upload_chunk_size == 8 * MiB
    assert s.multistream_cutoff == MiB
    assert parse_rate("512") == 512 * KiB and parse_rate("off") == 0 and parse_rate("1.5M") == 1.5 * MiB


@pytest.mark.parametrize("var,value,words", [
    ("DRIVESYNC_TRANSFERS", "many", "DRIVESYNC_TRANSFERS"),
    ("DRIVESYNC_TRANSFERS", "0", "DRIVESYNC_TRANSFERS"),
    ("DRIVESYNC_TPS", "nan", "DRIVESYNC_TPS"),
    ("DRIVESYNC_STREAMS_PER_FILE", "1.5", "a whole number"),
    ("DRIVESYNC_BWLIMIT", "10M:1M", "not a rate"),
    ("DRIVESYNC_UPLOAD_CHUNK_SIZE", "100K", "DRIVESYNC_UPLOAD_CHUNK_SIZE"),
])
def test_a_bad_variable_is_one_line_naming_it(monkeypatch, var, value, words):
    monkeypatch.setenv(var, value)
    with pytest.raises(UsageError) as exc:
        from_environment()
    assert words in str(exc.value) and "\n" not in str(exc.value)


def test_an_empty_variable_is_unset(monkeypatch):
    monkeypatch.setenv("DRIVESYNC_TRANSFERS", "  ")
    assert env_settings() == {} and from_environment().transfers == 64


@pytest.mark.parametrize("text,words", [
    ("transfers = ", "not valid TOML"),
    ("tranfers = 3", "unknown setting 'tranfers'"),
    ('transfers = "x"', "transfers"),
    ("tps = -1", "tps"),
    ("range_size = true", "a size"),
    ("[section]\ntransfers = 3", "unknown setting 'section'"),
])
def test_a_bad_config_file_is_one_line_naming_the_file(clean_env, text, words):
    path = write_config(clean_env, text + "\n")
    with pytest.raises(UsageError) as exc:
        from_environment()
    message = str(exc.value)
    assert words in message and str(path) in message and "\n" not in message


def test_config_file_lives_in_the_config_dir(clean_env, tmp_path, monkeypatch):
    assert config_file() == clean_env / "config.toml"
    assert file_settings() == {}                        # no file: nothing, no error
    monkeypatch.delenv("DRIVESYNC_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / "xdg" / "drivesync").mkdir(parents=True)
    (tmp_path / "xdg" / "drivesync" / "config.toml").write_text("transfers = 5\n")
    assert config_file() == tmp_path / "xdg" / "drivesync" / "config.toml"
    assert from_environment().transfers == 5


def test_xdg_dirs_are_respected_by_the_one_resolver(tmp_path, monkeypatch):
    import sys

    if sys.platform == "win32":
        pytest.skip("XDG variables are not read on Windows")
    monkeypatch.delenv("DRIVESYNC_CONFIG_DIR")
    home = tmp_path / "home"
    assert user_dir("state") == (home / ".local/state/drivesync" if sys.platform != "darwin"
                                 else home / "Library/Application Support/drivesync")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "c"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "s"))
    assert auth.config_dir() == user_dir("config") == tmp_path / "c" / "drivesync"
    assert state.state_dir() == user_dir("state") == tmp_path / "s" / "drivesync"
    assert auth.token_path().parent == tmp_path / "c" / "drivesync"
    # The XDG spec: a relative value is ignored (both folders, the same rule).
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/c")
    monkeypatch.setenv("XDG_STATE_HOME", "relative/s")
    assert "relative" not in str(user_dir("config")) and "relative" not in str(state.state_dir())
    # drivesync's own variables win over XDG's.
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "mine"))
    assert state.state_dir() == tmp_path / "mine"


def test_ages():
    now = 1_000_000.0
    assert parse_age("90", now) == now - 90
    assert parse_age("1h30m", now) == now - 5400
    assert parse_age("2d", now) == now - 2 * 86400
    assert parse_age("1M", now) == now - 30 * 86400 and parse_age("1m", now) == now - 60
    assert parse_age("1970-01-02", now) == 86400
    for bad in ("soon", "3x", "", "1h 30m"):
        with pytest.raises(UsageError):
            parse_age(bad, now)


def test_static_access_token_from_env_is_never_in_the_source_line(monkeypatch):
    secret = "ya29.secret-token-value"
    monkeypatch.setenv("DRIVESYNC_ACCESS_TOKEN", secret)
    chosen = auth.find_credentials()
    assert chosen.credentials.token == secret
    assert secret not in chosen.source and "DRIVESYNC_ACCESS_TOKEN" in chosen.source


def test_credentials_flag_beats_the_token_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("DRIVESYNC_ACCESS_TOKEN", "from-env")
    path = tmp_path / "token.json"
    path.write_text('{"type": "access_token", "access_token": "from-file"}')
    chosen = auth.find_credentials(str(path))
    assert chosen.credentials.token == "from-file" and "from-file" not in chosen.source
