"""--include / --exclude rules with rclone's glob semantics, applied to paths relative to REMOTE.

Pattern syntax (as rclone's filtering docs describe it):
- ``*`` matches any run of characters except ``/``; ``**`` matches any run including ``/``;
  ``?`` one character except ``/``; ``[abc]``/``[!abc]`` a class; ``{a,b}`` alternatives;
  ``\\`` escapes the next character, except that ``\\d`` ``\\s`` ``\\w`` (and ``\\D`` ``\\S`` ``\\W``) are
  Go's ASCII classes, and ``{{regexp}}`` is a regular expression, as rclone hands both to Go's regexp.
- A pattern starting with ``/`` is anchored at the root of the transfer; otherwise it matches the
  end of the path, on whole path elements (``*.jpg`` matches ``a/b/c.jpg``; ``b/c.jpg`` matches
  ``a/b/c.jpg`` but not ``a/bb/c.jpg``).
- A pattern ending with ``/`` names a directory and everything under it (``--exclude tmp/`` is
  ``--exclude tmp/**``).
Rules are tried in the order given, the first match decides; when any ``--include`` is given, a
path that matches no rule is excluded (rclone adds an implicit ``- **``).

Beyond the path, a file is kept only when it passes the rest of rclone's filters, all of them at once:
``--files-from`` (only the paths the list names, relative to the root; the rules above still apply),
``--min-size``/``--max-size`` (bytes, both bounds inclusive) and ``--max-age``/``--min-age`` (given here
as moments: modified at or after ``newer_than``, at or before ``older_than``). A size or time a file does
not have (a Google Doc's size) passes those checks. ``read_list`` reads a list file as rclone does.

This module is pure: it never touches the filesystem or Drive.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Iterable

from .errors import UsageError


#: Go regexp's Perl classes (ASCII only), which rclone patterns may use outside brackets (``*.\d\d\d``).
_PERL_CLASSES = {"d": "[0-9]", "D": "[^0-9]", "s": "[\t\n\f\r ]", "S": "[^\t\n\f\r ]",
                 "w": "[0-9A-Za-z_]", "W": "[^0-9A-Za-z_]"}


def glob_to_regex(pattern: str) -> str:
    """The regex body for one glob (without anchors). Raises UsageError on a malformed glob."""
    out: list[str] = []
    i, n = 0, len(pattern)
    depth = 0  # inside {...}
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise UsageError(f"bad filter pattern {pattern!r}: ends with a backslash")
            # rclone hands \d \s \w (and their capitals) to Go's regexp: its ASCII classes, not literals.
            out.append(_PERL_CLASSES.get(pattern[i + 1]) or re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "{" and pattern.startswith("{{", i):
            # {{regexp}}: a regular expression as rclone takes it; a longer run of '}' ends at its last two.
            j = pattern.find("}}", i + 2)
            if j < 0:
                raise UsageError(f"bad filter pattern {pattern!r}: unclosed '{{{{'")
            while j + 2 < n and pattern[j + 2] == "}":
                j += 1
            out.append(f"(?:{pattern[i + 2:j]})")
            i = j + 2
            continue
        if c == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                out.append(".*")
                i += 2
            else:
                out.append("[^/]*")
                i += 1
            continue
        if c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 2 if i + 1 < n and pattern[i + 1] in "!^" else i + 1)
            if j < 0:
                raise UsageError(f"bad filter pattern {pattern!r}: unclosed '['")
            body = pattern[i + 1:j]
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            body = body.replace("\\", "\\\\").replace("^", "\\^")
            for literal in "[&~|":  # literal in a glob's class; unescaped, Python warns of set operations
                body = body.replace(literal, "\\" + literal)
            out.append(f"[{'^/' if negate else ''}{body}]")
            i = j + 1
            continue
        elif c == "{":
            depth += 1
            out.append("(?:")
        elif c == "}" and depth:
            depth -= 1
            out.append(")")
        elif c == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    if depth:
        raise UsageError(f"bad filter pattern {pattern!r}: unclosed '{{'")
    return "".join(out)


@dataclass(frozen=True)
class Rule:
    include: bool
    pattern: str
    regex: re.Pattern

    @classmethod
    def compile(cls, include: bool, pattern: str) -> "Rule":
        if not pattern or pattern.strip() == "":
            raise UsageError("empty filter pattern")
        glob = pattern
        if glob.endswith("/"):
            glob += "**"
        if glob.startswith("/"):
            body = glob_to_regex(glob[1:])
            regex = f"^{body}$"
        else:
            body = glob_to_regex(glob)
            regex = f"(?:^|/){body}$"
        try:
            with warnings.catch_warnings():  # "[a--z]": Python's future set syntax; a glob means it literally
                warnings.simplefilter("ignore", FutureWarning)
                return cls(include, pattern, re.compile(regex, re.DOTALL))
        except re.error as exc:
            raise UsageError(f"bad filter pattern {pattern!r}: {exc}") from None


class Filter:
    """``Filter(rules)`` where rules are (include: bool, pattern) in command-line order; the keywords add
    rclone's other filters (see the module docstring)."""

    def __init__(self, rules: Iterable[tuple[bool, str]] = (), *, files_from: Iterable[str] | None = None,
                 min_size: int | None = None, max_size: int | None = None, newer_than: float | None = None,
                 older_than: float | None = None):
        self.rules = [Rule.compile(inc, pat) for inc, pat in rules]
        self._default = not any(r.include for r in self.rules)
        self.files_from = None if files_from is None else frozenset(_clean_path(p) for p in files_from if _clean_path(p))
        self.min_size, self.max_size = min_size, max_size
        self.newer_than, self.older_than = newer_than, older_than
        if min_size is not None and max_size is not None and min_size > max_size:
            raise UsageError(f"--min-size ({min_size} bytes) is larger than --max-size ({max_size} bytes): "
                             "no file can pass both")

    @classmethod
    def from_lists(cls, include: Iterable[str] = (), exclude: Iterable[str] = (), **selection) -> "Filter":
        """When only lists are known (the Python API), excludes are tried first, then includes."""
        return cls([(False, p) for p in exclude or ()] + [(True, p) for p in include or ()], **selection)

    @property
    def active(self) -> bool:
        return bool(self.rules) or self.files_from is not None or any(
            v is not None for v in (self.min_size, self.max_size, self.newer_than, self.older_than))

    def wants(self, rel_path: str) -> bool:
        """Is this path (relative to REMOTE, '/'-separated) wanted by the --include/--exclude rules?"""
        path = rel_path.strip("/")
        for rule in self.rules:
            if rule.regex.search(path):
                return rule.include
        return self._default

    def wants_folder(self, rel_dir: str) -> bool:
        """Can anything under this folder be wanted? No when the first rule that matches the folder (as ``a/b``
        or ``a/b/``) is an exclude, or with --files-from when no listed file lies below it; an include that
        names only files (``*.txt``) never prunes a folder."""
        path = rel_dir.strip("/")
        if path:
            for rule in self.rules:
                if rule.regex.search(path) or rule.regex.search(path + "/"):
                    if not rule.include:
                        return False
                    break
        if self.files_from is None:
            return True
        prefix = path + "/"
        return prefix == "/" or any(p.startswith(prefix) for p in self.files_from)

    def wants_file(self, rel_path: str, size: int | None = None, modified: float | None = None) -> bool:
        """Is this file part of the transfer: the rules, --files-from, and its size (bytes) and modification time
        (epoch seconds) against the size and age limits?"""
        if self.files_from is not None and _clean_path(rel_path) not in self.files_from:
            return False
        if not self.wants(rel_path):
            return False
        if size is not None:
            if self.min_size is not None and size < self.min_size:
                return False
            if self.max_size is not None and size > self.max_size:
                return False
        if modified is not None:
            if self.newer_than is not None and modified < self.newer_than:
                return False
            if self.older_than is not None and modified > self.older_than:
                return False
        return True


def _clean_path(path: str) -> str:
    """'./a//b/' -> 'a/b': how --files-from lines and relative paths are compared."""
    parts = [p for p in str(path).replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts)


def read_list(text: str) -> list[str]:
    """The lines of an --include-from / --exclude-from / --files-from file, as rclone reads them: surrounding
    whitespace stripped, blank lines and lines starting with '#' or ';' left out."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";")):
            out.append(line)
    return out
