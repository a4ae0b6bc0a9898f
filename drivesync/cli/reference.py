"""docs/cli.md, written from the argparse parser itself: ``python -m drivesync.cli.reference > docs/cli.md``.

Every command, argument and option the parser knows, with the help text ``--help`` shows (defaults and
``DRIVESYNC_`` variables included). The text is laid out here, not by argparse's formatter, so it is the
same on every Python version and terminal width; tests/unit/test_cli_reference.py regenerates it and
compares it with the committed file.
"""
from __future__ import annotations

import argparse
import sys

GENERATE = "python -m drivesync.cli.reference > docs/cli.md"


def render(parser: argparse.ArgumentParser | None = None) -> str:
    from . import COMMANDS, EXIT_CODES, build_parser

    parser = parser or build_parser()
    commands = _subcommands(parser)
    lines = [
        "# drivesync command reference",
        "",
        f"<!-- Generated from the argparse parser by `{GENERATE}`; do not edit by hand. -->",
        "",
        _escape(parser.description or ""),
        "",
        "```",
        f"drivesync [-h] [--version] COMMAND ...",
        "```",
        "",
    ]
    lines += _options(parser)
    lines += ["## Commands", ""]
    lines += [f"- [`{name}`](#drivesync-{name}): {_escape(help_text)}" for name, _, help_text in commands]
    lines += ["", "## Exit codes", "", _escape(EXIT_CODES[0].upper() + EXIT_CODES[1:]) + ".", ""]
    for name, sub, _ in commands:
        lines += [f"## drivesync {name}", ""]
        if sub.description:
            lines += [_escape(sub.description), ""]
        lines += ["```", _synopsis(sub), "```", ""]
        lines += _options(sub)
    missing = set(COMMANDS) - {name for name, _, _ in commands}
    if missing:  # a command module failed to register: the reference would silently lose it
        raise RuntimeError(f"commands missing from the parser: {sorted(missing)}")
    return "\n".join(lines).rstrip("\n") + "\n"


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser, str]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return [(name, sub, helps.get(name, "")) for name, sub in action.choices.items()]
    return []


def _groups(parser: argparse.ArgumentParser):
    """(title, actions) in --help's order; argparse's own two groups get titles that do not vary by Python version."""
    for group in parser._action_groups:
        if group is parser._positionals:
            title = "Arguments"
        elif group is parser._optionals:
            title = "Options"
        else:
            title = (group.title or "").capitalize()
        actions = [a for a in group._group_actions
                   if a.help is not argparse.SUPPRESS and not isinstance(a, argparse._SubParsersAction)]
        if actions:
            yield title, actions


def _options(parser: argparse.ArgumentParser) -> list[str]:
    formatter = parser._get_formatter()
    lines: list[str] = []
    for title, actions in _groups(parser):
        lines += [f"**{_escape(title)}**", ""]
        for action in actions:
            text = formatter._expand_help(action) if action.help else ""
            lines.append(f"- `{_invocation(action)}`" + (f": {_escape(text)}" if text else ""))
        lines.append("")
    return lines


def _invocation(action: argparse.Action) -> str:
    if not action.option_strings:
        return _positional(action)
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    metavar = action.metavar or action.dest.upper()
    return ", ".join(f"{opt} {metavar}" for opt in action.option_strings)


def _positional(action: argparse.Action) -> str:
    name = action.metavar or action.dest
    return f"[{name}]" if action.nargs == "?" else f"{name} ..." if action.nargs in ("*", "+") else name


def _synopsis(parser: argparse.ArgumentParser) -> str:
    positionals = [_positional(a) for a in parser._positionals._group_actions if a.help is not argparse.SUPPRESS]
    return " ".join([parser.prog, "[options]", *positionals])


def _escape(text: str) -> str:
    """Markdown that shows the help text as written (globs, <placeholders>, backslashes)."""
    for raw, safe in (("\\", "\\\\"), ("`", "\\`"), ("*", "\\*"), ("<", "&lt;"), (">", "&gt;")):
        text = text.replace(raw, safe)
    return text


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
