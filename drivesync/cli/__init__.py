"""The command line: argument parsing and printing only. Every command calls the public API.

Each command lives in its own module here with ``register(subparsers)``; ``main`` turns any
DrivesyncError into one line on stderr and a non-zero exit, never a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import logging
import os
import sys

from ..errors import DrivesyncError

#: Command modules, in the order `drivesync --help` lists them.
COMMANDS = ("demo", "pull", "push", "ls", "status", "flush", "stop", "whoami", "login", "authorize")


#: What every --help ends with; errors.py gives each error type its code.
EXIT_CODES = ("exit codes (as rclone's where they fit): 0 ok; 1 an error not listed here; 2 usage (a bad flag "
              "or value); 3 not found (REMOTE on Drive, LOCAL on disk); 5 temporary (Drive unreachable or "
              "failing until --give-up-after: try again later); 6 some files failed, the rest were transferred; "
              "7 fatal (credentials missing or rejected, Drive full, no write access); 9 nothing transferred "
              "(only with --error-on-no-transfer); 130 interrupted")


class _Formatter(argparse.HelpFormatter):
    """Every option that takes a value says its default: the help text does ('(default 32, or
    $DRIVESYNC_TRANSFERS)'), or argparse's own default is added; on/off flags are off unless given."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or action.nargs == 0 or action.default in (None, argparse.SUPPRESS, False, [])
                or not action.option_strings):
            return text
        return f"{text} (default {action.default})"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        if kwargs.get("add_help", True) and "epilog" not in kwargs:
            kwargs["epilog"] = EXIT_CODES
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # one line, exit 2, like every other bad input
        self.exit(2, f"drivesync: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(prog="drivesync", description="Fast, verified Google Drive sync for GPU machines.")
    parser.add_argument("--version", action="version", version=f"drivesync {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{_module_for(name)}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(__name__):
                continue  # command not built yet
            raise
        module.register(sub, name)
    return parser


def _module_for(command: str) -> str:
    return {"flush": "push", "status": "push", "stop": "push", "authorize": "login", "whoami": "login", "ls": "pull"}.get(command, command)


def _return_big_buffers_to_the_os() -> None:
    """Make glibc serve allocations of 1 MiB and more with mmap, always, and keep up to 4 MiB free at
    the top of a heap instead of giving it back at once.

    Transfers allocate and free many multi-MiB buffers from several threads; with glibc's adaptive
    threshold they land in per-thread arenas and stay resident (measured: a 4-file push peaked at
    312 MB, 208 MB with this). Fixing that threshold also fixes the trim threshold at 128 KiB, so a
    heap shrank and grew again (brk, then a page fault per 4 KiB) around every body chunk of a pull:
    3.5 % of a small-file pull's CPU went to brk. The command owns its process, so it may set these;
    the library does not.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1024 * 1024)       # M_MMAP_THRESHOLD
        libc.mallopt(-1, 4 * 1024 * 1024)   # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune


#: gc.set_threshold for a drivesync command: the young generation collected every 10,000 allocations, not 700.
GC_THRESHOLD = (10_000, 10, 10)


def _collect_garbage_less_often() -> None:
    """Collect the young generation after 10,000 container allocations instead of CPython's 700.

    Every request allocates a few hundred tracked objects (aiohttp's request, response, futures, header
    dicts) and most die by reference count within the request; at 700 the collector ran several times
    per small file, each time walking the 64 transfers' objects in flight. Measured: user CPU of an unpaced
    6,000-file pull 8 % lower (benchmarks/profile_pull.py --ab, 4 interleaved pairs, lower in each), peak RSS
    unchanged (99-103 MB, 4,000 small files and 500 MB of large ones). The older generations keep their
    ratios, so a full collection still comes every 100 young ones. The command owns its process; the library
    leaves a caller's collector alone.
    """
    gc.set_threshold(*GC_THRESHOLD)


def main(argv: list[str] | None = None) -> int:
    _return_big_buffers_to_the_os()
    _collect_garbage_less_often()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    verbosity = getattr(args, "verbose", 0) or 0
    logging.basicConfig(level=logging.DEBUG if verbosity > 1 else logging.INFO if verbosity else logging.WARNING,
                        format="%(message)s", stream=sys.stderr)
    try:
        with _access_token(args):
            return int(args.func(args) or 0)
    except DrivesyncError as exc:
        print(f"drivesync: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("drivesync: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except OSError as exc:
        # A local disk problem (full, read-only, permissions): one line, not a traceback.
        where = f": {exc.filename}" if exc.filename else ""
        print(f"drivesync: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1


def run() -> None:
    """The ``drivesync`` program (its console script, ``python -m drivesync``): ``main()``, then the exit
    without the interpreter's last collection. A command that is done has written and closed all it
    writes, so what is still alive is freed with the process; the full collection CPython runs at exit
    walked every object left (aiohttp's and the journal's modules, the listing), with no system call in
    it: a four-file drive-like pull through the harness's emulator and proxy took 0.635 s with it and
    0.603 s without (median of 10 interleaved runs each).
    gc.freeze() leaves the rest of the exit as it was: atexit handlers, threads joined, files flushed.
    ``main`` is for callers that stay (tests call it in-process); this is for the process that ends."""
    code = main()
    gc.freeze()
    sys.exit(code)


@contextlib.contextmanager
def _access_token(args):
    """--access-token reaches auth.find_credentials as $DRIVESYNC_ACCESS_TOKEN (so a background watcher inherits
    it without its value on a command line), for this command only; never printed."""
    from ..auth import ACCESS_TOKEN_ENV
    from ..errors import UsageError

    token = getattr(args, "access_token", None)
    if token is None:
        yield
        return
    if not token.strip():
        raise UsageError("--access-token is empty")
    if getattr(args, "credentials", None):
        raise UsageError("--access-token and --credentials name two sources of credentials: give one")
    before = os.environ.get(ACCESS_TOKEN_ENV)
    os.environ[ACCESS_TOKEN_ENV] = token.strip()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ACCESS_TOKEN_ENV, None)
        else:
            os.environ[ACCESS_TOKEN_ENV] = before


if __name__ == "__main__":
    run()
