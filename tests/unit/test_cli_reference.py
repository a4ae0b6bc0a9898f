"""docs/cli.md is generated from the parser (drivesync/cli/reference.py) and kept in sync with it."""
from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys

from drivesync.cli import COMMANDS, build_parser
from drivesync.cli.reference import GENERATE, render

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "cli.md"


def test_docs_cli_md_is_what_the_parser_generates():
    assert DOC.read_text() == render(), f"docs/cli.md is stale: run `{GENERATE}`"


def test_the_reference_does_not_depend_on_who_generates_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIVESYNC_", "XDG_"))}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "cfg"), DRIVESYNC_TRANSFERS="7",
               DRIVESYNC_CONFIG_DIR=str(tmp_path / "elsewhere"), COLUMNS="40")
    run = subprocess.run([sys.executable, "-m", "drivesync.cli.reference"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout == DOC.read_text()
    assert str(tmp_path) not in run.stdout


def test_every_command_argument_and_option_is_in_the_reference():
    text = render()
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(subparsers.choices) == list(COMMANDS)
    for name, sub in subparsers.choices.items():
        section = text.split(f"\n## drivesync {name}\n", 1)[1].split("\n## ", 1)[0]
        for action in sub._actions:
            if action.help is argparse.SUPPRESS:
                continue
            for shown in action.option_strings or [action.metavar or action.dest]:
                assert f"`{shown}" in section or f"[{shown}]" in section or f", {shown}" in section, (name, shown)
    assert "$DRIVESYNC_TRANSFERS" in text and "130 interrupted" in text


def test_a_new_flag_changes_the_reference():
    parser = build_parser()
    pull = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["pull"]
    pull.add_argument("--brand-new", metavar="N", help="a flag added after the reference was made")
    assert "- `--brand-new N`: a flag added after the reference was made" in render(parser)
    assert render(parser) != DOC.read_text()


def test_markdown_shows_help_text_as_written():
    text = render()
    assert "./&lt;last part of REMOTE&gt;" in text    # <placeholders> are not swallowed as HTML tags
    assert "<!-- Generated" in text.splitlines()[2]


def test_readme_use_section_shows_every_command_and_links_the_reference():
    readme = (ROOT / "README.md").read_text()
    use = readme.split("\n## Use\n", 1)[1].split("\n## ", 1)[0]
    for name in COMMANDS:
        assert f"drivesync {name}" in use or f"'drivesync {name}'" in use, name
    assert "drivesync --version" in use and "docs/cli.md" in use


def test_readme_installs_from_what_exists_today():
    import re

    readme = (ROOT / "README.md").read_text()
    # 'pip install drivesync' (or drivesync[extra]) names a package that is not published; the clone's '.[extra]' is fine.
    said = readme.replace("(`pip install drivesync` finds nothing)", "")
    assert not re.search(r"pip install (-q )?['\"]?drivesync\b(?!\s*@)", said), "README installs a package not on PyPI"
    assert "pip install -e ." in readme and "python -m build" in readme
