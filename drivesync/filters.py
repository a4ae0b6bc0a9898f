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
    """``Filter(rules)`` where rules are (include: bool, pattern) in command-line order."""

    def __init__(self, rules: Iterable[tuple[bool, str]] = ()):
        self.rules = [Rule.compile(inc, pat) for inc, pat in rules]
        self._default = not any(r.include for r in self.rules)

    @classmethod
    def from_lists(cls, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> "Filter":
        """When only lists are known (the Python API), excludes are tried first, then includes."""
        return cls([(False, p) for p in exclude or ()] + [(True, p) for p in include or ()])

    @property
    def active(self) -> bool:
        return bool(self.rules)

    def wants(self, rel_path: str) -> bool:
        """Is this file (path relative to REMOTE, '/'-separated) part of the transfer?"""
        path = rel_path.strip("/")
        for rule in self.rules:
            if rule.regex.search(path):
                return rule.include
        return self._default
