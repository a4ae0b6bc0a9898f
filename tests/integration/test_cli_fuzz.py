"""No traceback, ever, from the CLI: hundreds of malformed command lines and environment values.

A seeded generator builds, for every subcommand, a command line that is valid except for at least one
malformed part (a bad number, size, glob, id, link, URL or credentials file, a missing value, an unknown
flag, a flag that needs another, a LOCAL that cannot be, ...), sometimes with a few harmless valid flags
around it. Each runs in-process through ``drivesync.cli.main`` against a real emulator over real sockets,
and must end with a non-zero exit, no traceback, no Python warning, and one short line on stderr (the
login narration before the pasted-token prompt aside). A handful more run as child processes, for what
only a process has: environment variables read at start, arguments that are not UTF-8.

Reproduce a failure: DRIVESYNC_FUZZ_SEED=<seed> (and DRIVESYNC_FUZZ_CASE=<n> for one case).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from drivesync.cli import main
from drivesync.emulator import Emulator

SEED = int(os.environ.get("DRIVESYNC_FUZZ_SEED", "14"))
CASES = int(os.environ.get("DRIVESYNC_FUZZ_CASES", "400"))
ONLY = os.environ.get("DRIVESYNC_FUZZ_CASE")
CASE_TIMEOUT_S = 60      # a case that hangs is a failure too (a CLI must not wait forever on bad input)
LONGEST_LINE = 600       # "short": one line a person reads, not a dump

REPO = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------------------------ bad values

BAD_INTS = ["0", "-1", "-0", "many", "1.5", "", " ", "0x10", "1e3", "2^4", "++1", "1,000", "NaN", "\u221e"]
BAD_FLOATS = ["0", "-1", "-0.0", "nan", "-inf", "abc", "", "1e-400", "1..2", "0x1p-2000", "one"]
BAD_SIZES = ["12Q", "-1M", "", "M", "1.5.5M", "nan", "inf", "-inf", "1e400", "1e400M", "0x10M", "K1", "1MM",
             "--", "\u00bd", "1 2M"]
BAD_GLOBS = ["[abc", "{a,b", "a\\", "[]", "[z-a]", "{a,[b}", "x{", "**[", "[!"]
BAD_REMOTES = ["nope/", "project/missing.txt", "project/file.txt/x", "project/file.txt/", "id:", "id:!!!",
               "id:doesnotexist0", "id:" + "a" * 300, "project/../x", "..", "./", "a\x00b",
               "https://example.com/x", "https://drive.google.com/drive/folders/", "https://drive.google.com/",
               "http://[::1/x", "https://docs.google.com/document/d/e/xyz/pub", "shared-drive:", "shared-drive:/x",
               "shared-drive:No Such Drive/x", "shared-with-me:", "shared-with-me:nobody/x", "project/twin"]
BAD_DRIVE_IDS = ["", "!!", "a b", "x" * 500, "../x", "id:abc"]
BAD_URLS = ["not a url", "ftp://example.invalid/", "http://", "://", "http://[::1", "http://localhost:99999",
            "http://127.0.0.1:1", "file:///etc/passwd", "http://exa mple/", "127.0.0.1:8080", "https://:443/",
            "http://127.0.0.1:-5", "http://\u00e9\u00e9:1/x"]
BAD_EXPORTS = ["docx,exe", "", ",", "exe", "docx,,xlsx", "pdf;docx", "DOCX?"]
UNKNOWN_FLAGS = ["--bogus", "--no-such-flag", "-Z", "--transfer-count", "--INCLUDE", "--verbose=3", "-vZ",
                 "--dry-run=yes", "--json=1"]
USERS = ["someone@example.com", "x", "a b", "@"]


def _credential_files(d: Path, emu: Emulator) -> list[str]:
    """Credentials files that cannot work, each in its own way."""
    d.mkdir()
    files = {
        "empty.json": b"",
        "binary.json": b"\xff\xfe\x00garbage\x80\x81",
        "latin1.json": '{"type": "authorized_user", "refresh_token": "caf\u00e9"}'.encode("latin-1"),
        "text.json": b"hello, not json",
        "list.json": b"[]",
        "number.json": b"42",
        "null.json": b"null",
        "string.json": b'"a string"',
        "object.json": b"{}",
        "weird-type.json": b'{"type": "weird"}',
        "type-not-text.json": b'{"type": ["service_account"]}',
        "sa-empty.json": b'{"type": "service_account"}',
        "sa-bad-key.json": json.dumps({"type": "service_account", "client_email": "a@b.example",
                                       "private_key": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
                                       "private_key_id": "k", "token_uri": emu.token_uri}).encode(),
        "user-bad-refresh.json": b'{"type": "authorized_user", "refresh_token": 5}',
        "user-no-client.json": b'{"type": "authorized_user", "refresh_token": "1//x"}',
        "user-revoked.json": json.dumps({"type": "authorized_user", "client_id": "x", "client_secret": "y",
                                         "refresh_token": "1//no-such-refresh-token",
                                         "token_uri": emu.token_uri}).encode(),
        "user-bad-token-uri.json": json.dumps({"type": "authorized_user", "client_id": "x", "client_secret": "y",
                                               "refresh_token": "1//x", "token_uri": "not a url"}).encode(),
        "client-file.json": b'{"installed": {"client_id": "x"}}',
        "deep.json": b"[" * 100_000 + b"]" * 100_000,
        "deep-object.json": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        "huge-number.json": b'{"type": "authorized_user", "refresh_token": 1' + b"0" * 5000 + b"}",
        "truncated.json": b'{"type": "authorized_user", "client_id": "x", "refresh_tok',
    }
    for name, data in files.items():
        (d / name).write_bytes(data)
    (d / "a-folder").mkdir()
    (d / "unreadable.json").write_bytes(b"{}")
    (d / "unreadable.json").chmod(0)
    os.symlink(d / "gone.json", d / "dangling.json")
    out = [str(d / n) for n in files] + [str(d / "a-folder"), str(d / "unreadable.json"), str(d / "dangling.json"),
                                        str(d / "missing.json"), str(d / "empty.json" / "below-a-file.json")]
    if os.path.exists("/proc/self/mem"):
        out.append("/proc/self/mem")  # open succeeds, read fails (EIO)
    return out


def _client_files(d: Path) -> list[str]:
    """OAuth client files that cannot work (none may be usable: a usable one would open a sign-in flow)."""
    d.mkdir()
    files = {"empty.json": b"", "binary.json": b"\xff\x00\xfe", "list.json": b"[]", "object.json": b"{}",
             "installed-text.json": b'{"installed": "x"}', "installed-empty.json": b'{"installed": {}}',
             "deep.json": b"[" * 100_000 + b"]" * 100_000, "credentials.json": b'{"type": "authorized_user"}'}
    for name, data in files.items():
        (d / name).write_bytes(data)
    return [str(d / n) for n in files] + [str(d / "missing.json"), str(d), ""]


@dataclass
class World:
    emu: Emulator
    root: Path
    creds: list[str]
    clients: list[str]
    src: Path          # a folder push may upload
    a_file: Path       # a regular file where a folder is needed
    fresh: "callable" = None

    def conn(self) -> list[str]:
        return ["--api-url", self.emu.url, "--credentials", self.emu.credentials_path]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    with Emulator(root / "emu") as emu:
        top = emu.add_folder("project")
        emu.add_file("file.txt", b"x", parent_id=top)
        emu.add_folder("twin", top)
        emu.add_folder("twin", top)
        src = root / "src"
        src.mkdir()
        (src / "a.txt").write_bytes(b"a")
        a_file = root / "a-file"
        a_file.write_bytes(b"mine")
        counter = iter(range(10**9))
        w = World(emu, root, _credential_files(root / "creds", emu), _client_files(root / "clients"), src, a_file)
        w.fresh = lambda: str(root / "out" / f"o{next(counter)}")
        yield w


@pytest.fixture(autouse=True)
def clean_env(tmp_path, monkeypatch):
    for k in list(os.environ):
        if k.startswith(("GOOGLE_", "DRIVESYNC_", "CLOUDSDK_", "BROWSER", "SSH_")):
            monkeypatch.delenv(k)
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DRIVESYNC_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


# ------------------------------------------------------------------------------------ generator

@dataclass
class Case:
    argv: list[str]
    why: str
    stdin: str = ""
    narrated: bool = False   # login --no-browser: instructions and a prompt come before the error line
    notes: list[str] = field(default_factory=list)


# value-taking flags of each command, by the kind of value
INT_FLAGS = {"pull": ["--transfers", "--streams", "--max-streams"], "push": ["--transfers", "--keep-last"]}
FLOAT_FLAGS = {"pull": ["--tps", "--give-up-after"], "push": ["--settle", "--give-up-after"],
               "ls": ["--give-up-after"], "whoami": ["--give-up-after"], "flush": ["--timeout"], "stop": ["--timeout"]}
SIZE_FLAGS = {"pull": ["--range-size", "--multistream-cutoff"], "push": ["--chunk-size"]}
GLOB_FLAGS = {"pull": ["--include", "--exclude"], "push": ["--exclude"]}
VALUE_FLAGS = {
    "pull": ["--transfers", "--streams", "--max-streams", "--range-size", "--multistream-cutoff", "--tps",
             "--include", "--exclude", "--export-formats", "--drive-id", "--api-url", "--credentials",
             "--impersonate", "--give-up-after"],
    "ls": ["--drive-id", "--api-url", "--credentials", "--impersonate", "--give-up-after"],
    "push": ["--transfers", "--chunk-size", "--exclude", "--settle", "--complete-marker", "--keep-last",
             "--drive-id", "--api-url", "--credentials", "--impersonate", "--give-up-after"],
    "whoami": ["--api-url", "--credentials", "--impersonate", "--give-up-after"],
    "flush": ["--timeout"], "stop": ["--timeout"], "status": [],
    "login": ["--client-secrets", "--scope", "--auth-uri", "--token-uri", "--token-file", "--api-url"],
    "authorize": ["--client-secrets", "--scope", "--auth-uri", "--token-uri"],
    "demo": [],
}
HARMLESS = {
    "pull": [["-q"], ["--dry-run"], ["--json"], ["--transfers", "3"], ["--skip-gdocs"], ["--streams", "2"],
             ["--tps", "50"], ["--give-up-after", "5"], ["--include", "*.txt"], ["--range-size", "1M"]],
    "ls": [["-R"], ["-l"], ["--give-up-after", "5"]],
    "push": [["--no-progress"], ["-q"], ["--transfers", "2"], ["--exclude", "*.tmp"], ["--chunk-size", "256K"]],
    "whoami": [["--give-up-after", "5"]],
}


class Generator:
    def __init__(self, world: World, seed: int):
        self.w = world
        self.r = random.Random(seed)

    def pick(self, xs):
        return self.r.choice(xs)

    def base(self, cmd: str) -> list[str]:
        w = self.w
        return {
            "pull": ["pull", "project", w.fresh(), *w.conn()],
            "ls": ["ls", "project", *w.conn()],
            "push": ["push", str(w.src), "pushed", *w.conn()],
            "whoami": ["whoami", *w.conn()],
            "flush": ["flush"], "status": ["status"],
            "stop": ["stop", str(w.src)],                         # no watcher runs: 'stop LOCAL' is an error
            "login": ["login", "--no-browser"],
            "authorize": ["authorize", "--no-open"],
            "demo": ["demo", str(w.a_file / "demo")],             # DIR under a file: refused before anything
        }[cmd]

    def case(self) -> Case:
        cmd = self.pick(["pull"] * 5 + ["push"] * 4 + ["ls"] * 2 + ["whoami"] * 2
                        + ["flush", "stop", "status", "login", "authorize", "demo", "none"])
        if cmd == "none":
            return self.top_level()
        argv = self.base(cmd)
        for _ in range(self.r.choice([0, 0, 1, 2])):
            if cmd in HARMLESS:
                argv += self.pick(HARMLESS[cmd])
        mutations = [self.unknown_flag, self.missing_value, self.bad_value, self.extra_positional]
        mutations += {"pull": [self.bad_remote] * 3 + [self.drop_positional, self.bad_local, self.pull_rules],
                      "ls": [self.bad_remote] * 2, "push": [self.push_rules] * 3 + [self.bad_push_remote,
                                                                                  self.bad_local, self.drop_positional],
                      "login": [self.login_rules] * 3, "authorize": [self.authorize_rules] * 3,
                      "flush": [], "stop": [], "status": [], "whoami": [self.bad_credentials] * 2, "demo": []}[cmd]
        case = self.pick(mutations)(cmd, argv)
        if self.r.random() < 0.15 and cmd in ("pull", "ls", "push", "whoami"):
            case = self.bad_credentials(cmd, case.argv) if "--credentials" in case.argv else case
        return case

    # -- mutations: each returns a Case that is invalid in at least one way

    def top_level(self) -> Case:
        argv = self.pick([["--bogus"], ["nosuchcommand"], ["pul"], ["-x", "pull"],
                          ["PULL", "project"], ["", "x"], ["--", "pull"]])
        return Case(argv, "no such command or top-level flag")

    def unknown_flag(self, cmd, argv) -> Case:
        flag = self.pick(UNKNOWN_FLAGS)
        at = self.r.randint(1, len(argv))
        return Case(argv[:at] + [flag] + argv[at:], f"unknown flag {flag}")

    def missing_value(self, cmd, argv) -> Case:
        flags = VALUE_FLAGS[cmd]
        if not flags:
            return self.unknown_flag(cmd, argv)
        flag = self.pick(flags)
        return Case(argv + [flag], f"{flag} without its value")

    def bad_value(self, cmd, argv) -> Case:
        kinds = [k for k, table in (("int", INT_FLAGS), ("float", FLOAT_FLAGS), ("size", SIZE_FLAGS),
                                    ("glob", GLOB_FLAGS)) if cmd in table]
        if cmd in ("pull", "ls", "push", "whoami"):
            kinds += ["url", "impersonate"]
        if cmd == "pull":
            kinds += ["export", "drive-id"]
        if not kinds:
            return self.unknown_flag(cmd, argv)
        kind = self.pick(kinds)
        if kind == "url":
            url = self.pick(BAD_URLS)
            return Case(self._set(argv, "--api-url", url) + ["--give-up-after", "0.5"], f"--api-url {url!r}")
        if kind == "impersonate":  # the emulator's credentials are a user's: impersonation needs a key
            return Case(argv + ["--impersonate", self.pick(USERS)], "--impersonate with user credentials")
        if kind == "export":
            v = self.pick(BAD_EXPORTS)
            return Case(argv + ["--export-formats", v], f"--export-formats {v!r}")
        if kind == "drive-id":
            v = self.pick(BAD_DRIVE_IDS)
            return Case(argv + ["--drive-id", v], f"--drive-id {v!r}")
        table, values = {"int": (INT_FLAGS, BAD_INTS), "float": (FLOAT_FLAGS, BAD_FLOATS),
                         "size": (SIZE_FLAGS, BAD_SIZES), "glob": (GLOB_FLAGS, BAD_GLOBS)}[kind]
        flag, value = self.pick(table[cmd]), self.pick(values)
        if flag in ("--settle", "--keep-last") and "--watch" not in argv and self.r.random() < 0.5:
            argv = argv + ["--watch"]   # the watch flags' own values, with --watch: still refused at once
        form = [f"{flag}={value}"] if self.r.random() < 0.3 else [flag, value]
        return Case(argv + form, f"{flag} {value!r}")

    def extra_positional(self, cmd, argv) -> Case:
        extra = self.pick([["extra"], ["a", "b"], ["project"]])
        if cmd in ("flush", "stop", "status"):
            return Case(argv + (["extra"] if cmd == "stop" else ["x", "y"] if cmd == "flush" else ["x"]),
                        "one positional too many")
        if cmd in ("whoami", "login", "authorize", "demo"):
            return Case(argv + extra + (["more"] if cmd == "demo" else []), "a positional it does not take")
        if cmd == "ls":
            return Case(argv[:2] + ["again"] + argv[2:], "ls takes one REMOTE")
        return Case(argv[:3] + extra + argv[3:], "one positional too many")

    def drop_positional(self, cmd, argv) -> Case:
        return Case([cmd] + argv[3:], f"{cmd} without its positionals")

    def bad_remote(self, cmd, argv) -> Case:
        # `ls shared-drive:` and `ls shared-with-me:` list the drives and the shared items: not malformed there
        remote = self.pick([r for r in BAD_REMOTES if cmd != "ls" or r not in ("shared-drive:", "shared-with-me:")])
        return Case([argv[0], remote] + argv[2:], f"REMOTE {remote!r}")

    def bad_push_remote(self, cmd, argv) -> Case:
        remote = self.pick([r for r in BAD_REMOTES if r not in ("nope/", "project/missing.txt")]
                           + ["project/file.txt"])
        return Case(argv[:2] + [remote] + argv[3:], f"REMOTE {remote!r}")

    def bad_local(self, cmd, argv) -> Case:
        w = self.w
        if cmd == "pull":
            local = self.pick([str(w.a_file), str(w.a_file / "below"), "/proc/version/x", "/dev/null/x"])
            return Case(argv[:2] + [local] + argv[3:], f"LOCAL {local!r}")
        local = self.pick([str(w.root / "missing"), "/dev/null", str(w.a_file / "below"), "", "/proc/self/fd/0/x"])
        return Case(argv[:1] + [local] + argv[2:], f"LOCAL {local!r}")

    def pull_rules(self, cmd, argv) -> Case:
        return self.pick([
            Case(argv + ["--range-size", self.pick(["0", "0K", "0.1"])], "--range-size below one byte"),
            Case(argv + ["--streams"] + [self.pick(BAD_INTS)], "--streams bad"),
            Case(argv + ["--latest", "--include", self.pick(BAD_GLOBS)], "--latest with a bad glob"),
        ])

    def push_rules(self, cmd, argv) -> Case:
        watch_only = self.pick([["--settle", "5"], ["--complete-marker", "done.json"], ["--keep-last", "2"],
                                ["--poll"], ["--background"]])
        return self.pick([
            Case(argv + watch_only, f"{watch_only[0]} without --watch"),
            Case(argv + ["--watch", "--drive-id", "0AAbcdefghijk"], "--watch with --drive-id"),
            Case(argv + ["--watch", "-L"], "--watch with --copy-links"),
            Case(argv + ["--chunk-size", self.pick(["100K", "0", "1", "255K", "257K", "1000000"])],
                 "--chunk-size not a multiple of 256 KiB"),
            Case(argv + ["--watch", "--chunk-size", self.pick(["100K", "0"])], "watch with a bad chunk size"),
            Case(argv + ["--watch", "--exclude", self.pick(BAD_GLOBS)], "watch with a bad glob"),
        ])

    def login_rules(self, cmd, argv) -> Case:
        c = self.pick(self.w.clients)
        return self.pick([
            Case(argv, "a pasted line that is not a token", stdin=self.pick(["garbage\n", "drivesync-token:!!!\n",
                                                                            "drivesync-token:e30\n", "\x00\n", "\n\n"]),
                 narrated=True),
            Case(argv, "nothing pasted", stdin="", narrated=True),
            Case(["login", "--browser", "--client-secrets", c], f"login with client file {c!r}"),
            Case(["login", "--scope", self.pick(["everything", "", "DRIVE"])], "--scope not a choice"),
            Case(["login", "--browser", "--no-browser"], "--browser and --no-browser"),
            Case(["login", "--browser", "--client-secrets", c, "--token-uri", self.pick(BAD_URLS)],
                 "bad client and token URI"),
        ])

    def authorize_rules(self, cmd, argv) -> Case:
        c = self.pick(self.w.clients)
        return self.pick([
            Case(argv + ["--client-secrets", c], f"authorize with client file {c!r}"),
            Case(argv, "authorize without any client file"),
            Case(argv + ["--client-secrets", c, "--auth-uri", self.pick(BAD_URLS)], "bad client and auth URI"),
            Case(argv + ["--scope", "nope"], "--scope not a choice"),
        ])

    def bad_credentials(self, cmd, argv) -> Case:
        path = self.pick(self.w.creds)
        return Case(self._set(argv, "--credentials", path), f"--credentials {Path(path).name or repr(path)}")

    @staticmethod
    def _set(argv, flag, value):
        out = list(argv)
        if flag in out:
            out[out.index(flag) + 1] = value
        else:
            out += [flag, value]
        return out


# ------------------------------------------------------------------------------------ running

class _Hung(Exception):
    pass


def _alarm(signum, frame):
    raise _Hung(f"no answer within {CASE_TIMEOUT_S} s")


USER_VISIBLE = (UserWarning, FutureWarning, RuntimeWarning, SyntaxWarning, UnicodeWarning, BytesWarning)


def run_in_process(case: Case) -> tuple[object, str, str, list[str]]:
    out, err = io.StringIO(), io.StringIO()
    old_stdin, old_handler = sys.stdin, signal.signal(signal.SIGALRM, _alarm)
    sys.stdin = io.StringIO(case.stdin)
    signal.alarm(CASE_TIMEOUT_S)
    try:
        with warnings.catch_warnings(record=True) as caught, \
                contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            warnings.simplefilter("always")
            try:
                code = main(list(case.argv))
            except SystemExit as exc:
                code = exc.code
            except _Hung as exc:
                code = f"HUNG: {exc}"
            except BaseException as exc:  # noqa: BLE001 - what the user would see as a traceback
                import traceback

                code = "TRACEBACK"
                err.write("Traceback (most recent call last):\n" + "".join(traceback.format_exception(exc)))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old_handler)
        sys.stdin = old_stdin
    shown = [f"{w.category.__name__}: {w.message}" for w in caught if issubclass(w.category, USER_VISIBLE)]
    return code, out.getvalue(), err.getvalue(), shown


def problems(case: Case, code, out: str, err: str, shown_warnings: list[str]) -> list[str]:
    found = []
    if not isinstance(code, int) or isinstance(code, bool):
        found.append(f"exit {code!r}" if not isinstance(code, str) else code)
    elif code == 0:
        found.append("exit 0 for a malformed command line")
    if "Traceback" in out or "Traceback" in err:
        found.append("a traceback")
    if shown_warnings:
        found.append(f"a Python warning on stderr: {shown_warnings[0]}")
    lines = [line for line in err.splitlines() if line.strip()]
    if not lines:
        found.append("no error message on stderr")
    else:
        if not case.narrated and len(lines) != 1:
            found.append(f"{len(lines)} lines on stderr, not one")
        last = lines[-1]
        if not last.startswith("drivesync"):
            found.append(f"the error line does not say who speaks: {last[:120]!r}")
        if len(last) > LONGEST_LINE:
            found.append(f"an error line of {len(last)} characters")
    return found


def _report(failures) -> str:
    out = [f"{len(failures)} malformed command lines handled badly (seed {SEED}):"]
    for n, case, found, err in failures[:15]:
        out.append(f"  case {n}: drivesync {' '.join(map(repr, case.argv))}  [{case.why}]")
        out.append(f"      -> {'; '.join(found)}")
        tail = err.strip().splitlines()[-3:]
        out += [f"         | {line[:200]}" for line in tail]
    return "\n".join(out)


def test_malformed_command_lines_end_in_one_line_and_a_nonzero_exit(world):
    gen = Generator(world, SEED)
    cases = [gen.case() for _ in range(CASES)]
    failures, kinds = [], set()
    for n, case in enumerate(cases):
        if ONLY is not None and str(n) != ONLY:
            continue
        kinds.add(case.argv[0] if case.argv else "")
        code, out, err, shown = run_in_process(case)
        found = problems(case, code, out, err, shown)
        if found:
            failures.append((n, case, found, err))
    assert not failures, _report(failures)
    if ONLY is None:
        # the generator reached every subcommand (a generator that drifted to one command proves little)
        assert {"pull", "push", "ls", "whoami", "flush", "stop", "status", "login", "authorize", "demo"} <= kinds, kinds


def test_the_checker_itself_rejects_what_it_must():
    """The oracle can fail: a traceback, a zero exit, two lines and a mute error are each caught."""
    case = Case(["pull"], "x")
    assert problems(case, 0, "", "drivesync: fine\n", [])
    assert problems(case, 1, "", "Traceback (most recent call last):\n  ...\nValueError: x\n", [])
    assert problems(case, 1, "", "drivesync: one\ndrivesync: two\n", [])
    assert problems(case, 1, "", "", [])
    assert problems(case, 1, "", "drivesync: x\n", ["FutureWarning: Possible nested set"])
    assert problems(case, "HUNG: no answer", "", "drivesync: x\n", [])
    assert not problems(case, 2, "", "drivesync: error: argument --transfers: not a whole number: 'x'\n", [])


# ------------------------------------------------------------------------------------ as a process

def _child_env(tmp_path, world, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GOOGLE_", "DRIVESYNC_", "CLOUDSDK_", "GCE_", "BROWSER", "SSH_", "DISPLAY"))}
    env.update(DRIVESYNC_CONFIG_DIR=str(tmp_path / "config"), DRIVESYNC_STATE_DIR=str(tmp_path / "state"),
               CLOUDSDK_CONFIG=str(tmp_path / "gcloud"), PYTHONPATH=str(REPO),
               GCE_METADATA_DETECT_RETRIES="1", GCE_METADATA_HOST="127.0.0.1:9", GCE_METADATA_IP="127.0.0.1:9")
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def _process_cases(tmp_path, world):
    """(argv as bytes or str, env overrides, why): what needs a process of its own."""
    emu, a_file = world.emu, world.a_file
    creds = {Path(p).name: p for p in world.creds if p}
    clients = {Path(p).name: p for p in world.clients if p}
    pull = ["pull", "project", str(tmp_path / "out"), "--give-up-after", "0.5"]
    who = ["whoami", "--give-up-after", "0.5"]
    return [
        (pull + ["--credentials", emu.credentials_path], {"DRIVESYNC_API_URL": "not a url"}, "DRIVESYNC_API_URL garbage"),
        (pull + ["--credentials", emu.credentials_path], {"DRIVESYNC_API_URL": "http://[::1"}, "DRIVESYNC_API_URL bad IPv6"),
        (pull + ["--credentials", emu.credentials_path], {"DRIVESYNC_API_URL": "http://localhost:99999"},
         "DRIVESYNC_API_URL port out of range"),
        (pull + ["--credentials", emu.credentials_path], {"DRIVESYNC_API_URL": "ftp://example.invalid"},
         "DRIVESYNC_API_URL not http"),
        (pull + ["--api-url", emu.url, "--credentials", emu.credentials_path], {"DRIVESYNC_STATE_DIR": str(a_file)},
         "DRIVESYNC_STATE_DIR is a file"),
        (pull + ["--api-url", emu.url, "--credentials", emu.credentials_path],
         {"DRIVESYNC_STATE_DIR": str(a_file / "below")}, "DRIVESYNC_STATE_DIR below a file"),
        (who + ["--api-url", emu.url], {"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "missing.json")},
         "GOOGLE_APPLICATION_CREDENTIALS missing"),
        (who + ["--api-url", emu.url], {"GOOGLE_APPLICATION_CREDENTIALS": creds["binary.json"]},
         "GOOGLE_APPLICATION_CREDENTIALS garbage"),
        (who + ["--api-url", emu.url], {"GOOGLE_APPLICATION_CREDENTIALS": creds["deep.json"]},
         "GOOGLE_APPLICATION_CREDENTIALS deeply nested"),
        (who + ["--api-url", emu.url], {"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path)},
         "GOOGLE_APPLICATION_CREDENTIALS a folder"),
        (who + ["--api-url", emu.url], {"DRIVESYNC_CONFIG_DIR": str(a_file)}, "no credentials, config dir a file"),
        (["authorize", "--no-open"], {"DRIVESYNC_CLIENT_SECRETS": clients["binary.json"]}, "DRIVESYNC_CLIENT_SECRETS garbage"),
        (["authorize", "--no-open"], {"DRIVESYNC_CLIENT_SECRETS": str(tmp_path / "nope.json")},
         "DRIVESYNC_CLIENT_SECRETS missing"),
        ([b"pull", b"caf\xff/x", str(tmp_path / "out").encode(), b"--api-url", emu.url.encode(), b"--credentials",
          emu.credentials_path.encode()], {}, "REMOTE not UTF-8"),
        ([b"pull", b"project", str(tmp_path / "o").encode(), b"--include", b"[\xff", b"--api-url", emu.url.encode(),
          b"--credentials", emu.credentials_path.encode()], {}, "a glob not UTF-8"),
        ([b"push", b"/no/such/\xfe\xff", b"x", b"--api-url", emu.url.encode(), b"--credentials",
          emu.credentials_path.encode()], {}, "LOCAL not UTF-8"),
        (["pull", "caf\u00e9/\u65e5\u672c", str(tmp_path / "out"), "--api-url", emu.url, "--credentials",
          emu.credentials_path], {"LC_ALL": "C", "LANG": "C", "PYTHONIOENCODING": "ascii"},
         "a non-ASCII REMOTE on an ASCII terminal"),
    ]


def test_malformed_environment_and_bytes_as_a_process(tmp_path, world):
    failures = []
    for argv, env, why in _process_cases(tmp_path, world):
        cmd = [sys.executable.encode() if isinstance(argv[0], bytes) else sys.executable,
               *([b"-m", b"drivesync"] if isinstance(argv[0], bytes) else ["-m", "drivesync"]), *argv]
        try:
            got = subprocess.run(cmd, env=_child_env(tmp_path, world, **env), capture_output=True,
                                 timeout=CASE_TIMEOUT_S, cwd=tmp_path)
            code, out, err = got.returncode, got.stdout.decode(errors="replace"), got.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired:
            code, out, err = "HUNG", "", ""
        case = Case([a.decode(errors="replace") if isinstance(a, bytes) else a for a in argv], why)
        found = problems(case, code, out, err, [])
        if found:
            failures.append((why, case, found, err))
    assert not failures, "\n".join(f"{why}: {'; '.join(found)}\n    {' '.join(case.argv)}\n    | "
                                   + "\n    | ".join(err.strip().splitlines()[-4:])
                                   for why, case, found, err in failures)
