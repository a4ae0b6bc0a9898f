"""The `q` search language of files.list: tokenizer, parser, and a translation to a SQLite WHERE clause.

Owns the supported subset (drive-api.md): `'<id>' in parents`, `name = / != / contains`, `mimeType = / !=`,
`trashed = / !=`, `starred`, `sharedWithMe`, `modifiedTime` / `createdTime` comparisons, `'me'` (or an
email) `in owners / writers / readers` (their SQL reads the `permissions` table of sharing.py), joined by
`and` / `or` / `not` and parentheses; single-quoted strings with `\\'` and `\\\\` escapes; spaces around
operators optional. Pure: no database, no HTTP. Anything outside the subset raises `QueryError`, which the
server answers with Drive's 400 "Invalid Value" (location q).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone


class QueryError(ValueError):
    pass


# ---------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^'\\]|\\.)*')
  | (?P<op><=|>=|!=|=|<|>)
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<num>-?\d+(?:\.\d+)?)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Token:
    kind: str  # str, op, lp, rp, word, num, end
    value: str
    pos: int


def _unescape(body: str) -> str:
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            if i + 1 >= len(body):
                raise QueryError("dangling backslash")
            out.append(body[i + 1])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def tokenize(q: str) -> list[Token]:
    toks: list[Token] = []
    pos = 0
    while pos < len(q):
        m = _TOKEN.match(q, pos)
        if not m:
            raise QueryError(f"unexpected character at {pos}: {q[pos]!r}")
        kind = m.lastgroup
        text = m.group()
        if kind == "str":
            toks.append(Token("str", _unescape(text[1:-1]), pos))
        elif kind != "ws":
            toks.append(Token(kind, text, pos))
        pos = m.end()
    toks.append(Token("end", "", pos))
    return toks


# ---------------------------------------------------------------- AST


@dataclass(frozen=True)
class And:
    left: object
    right: object


@dataclass(frozen=True)
class Or:
    left: object
    right: object


@dataclass(frozen=True)
class Not:
    inner: object


@dataclass(frozen=True)
class Compare:
    field: str  # name, mimeType, trashed, starred, modifiedTime, createdTime
    op: str  # = != < <= > >= contains
    value: object  # str, bool, or int (epoch milliseconds)


@dataclass(frozen=True)
class In:
    value: str
    collection: str  # parents, owners


STRING_FIELDS = {"name", "mimeType", "fullText"}
BOOL_FIELDS = {"trashed", "starred", "sharedWithMe"}
TIME_FIELDS = {"modifiedTime", "createdTime", "viewedByMeTime"}
IN_COLLECTIONS = {"parents", "owners", "writers", "readers"}


def parse_time(value: str) -> int:
    """RFC 3339 (UTC when no offset is given) -> epoch milliseconds."""
    v = value.strip()
    if v.endswith(("Z", "z")):
        v = v[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(v)
    except ValueError as e:
        raise QueryError(f"bad time {value!r}") from e
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(round(dt.timestamp() * 1000))


class _Parser:
    def __init__(self, toks: list[Token]):
        self.toks = toks
        self.i = 0

    def peek(self) -> Token:
        return self.toks[self.i]

    def take(self) -> Token:
        t = self.toks[self.i]
        self.i += 1
        return t

    def is_word(self, word: str) -> bool:
        t = self.peek()
        return t.kind == "word" and t.value.lower() == word

    def parse(self):
        node = self.or_expr()
        if self.peek().kind != "end":
            raise QueryError(f"unexpected {self.peek().value!r} at {self.peek().pos}")
        return node

    def or_expr(self):
        node = self.and_expr()
        while self.is_word("or"):
            self.take()
            node = Or(node, self.and_expr())
        return node

    def and_expr(self):
        node = self.not_expr()
        while self.is_word("and"):
            self.take()
            node = And(node, self.not_expr())
        return node

    def not_expr(self):
        if self.is_word("not"):
            self.take()
            return Not(self.not_expr())
        return self.atom()

    def atom(self):
        t = self.peek()
        if t.kind == "lp":
            self.take()
            node = self.or_expr()
            if self.take().kind != "rp":
                raise QueryError("missing )")
            return node
        if t.kind == "str":
            self.take()
            if not self.is_word("in"):
                raise QueryError("expected 'in' after a string")
            self.take()
            coll = self.take()
            if coll.kind != "word" or coll.value not in IN_COLLECTIONS:
                raise QueryError(f"unsupported collection {coll.value!r}")
            return In(t.value, coll.value)
        if t.kind == "word":
            self.take()
            field = t.value
            if field not in STRING_FIELDS | BOOL_FIELDS | TIME_FIELDS:
                raise QueryError(f"unsupported field {field!r}")
            op_tok = self.take()
            if op_tok.kind == "op":
                op = op_tok.value
            elif op_tok.kind == "word" and op_tok.value.lower() == "contains":
                op = "contains"
            else:
                raise QueryError(f"expected an operator after {field}")
            val = self.take()
            return _compare(field, op, val)
        raise QueryError(f"unexpected {t.value!r} at {t.pos}")


def _compare(field: str, op: str, val: Token) -> Compare:
    if field in STRING_FIELDS:
        if val.kind != "str":
            raise QueryError(f"{field} needs a string")
        allowed = {"contains"} if field == "fullText" else {"=", "!=", "contains"}
        if field == "mimeType":
            allowed = {"=", "!=", "contains"}
        if op not in allowed:
            raise QueryError(f"{op} not allowed on {field}")
        return Compare(field, op, val.value)
    if field in BOOL_FIELDS:
        if val.kind != "word" or val.value.lower() not in ("true", "false"):
            raise QueryError(f"{field} needs true or false")
        if op not in ("=", "!="):
            raise QueryError(f"{op} not allowed on {field}")
        return Compare(field, op, val.value.lower() == "true")
    # time fields
    if val.kind != "str":
        raise QueryError(f"{field} needs a quoted RFC 3339 time")
    if op == "contains":
        raise QueryError(f"contains not allowed on {field}")
    return Compare(field, op, parse_time(val.value))


def parse(q: str):
    """Parse a `q` string into an AST (None for an empty query)."""
    if q is None or not q.strip():
        return None
    return _Parser(tokenize(q)).parse()


# ---------------------------------------------------------------- matching helpers


def name_contains(name: str, needle: str) -> bool:
    """Drive's `name contains`: case-insensitive prefix match on the whole name or on any word of it
    (Drive documents `contains` on name as prefix matching: 'Hello' matches HelloWorld, 'World' does not)."""
    if name is None:
        return False
    n = name.casefold()
    s = needle.casefold()
    if not s:
        return True
    if n.startswith(s):
        return True
    for m in re.finditer(r"(?:^|[\W_])(?=\w)", n):
        if n.startswith(s, m.end()):
            return True
    return False


# ---------------------------------------------------------------- SQL

_SQL_COLUMN = {
    "name": "name",
    "mimeType": "mime_type",
    "trashed": "trashed",
    "starred": "starred",
    "modifiedTime": "modified_ms",
    "createdTime": "created_ms",
    "viewedByMeTime": "modified_ms",
}


_WRITER_ROLES = "'writer', 'fileOrganizer', 'organizer'"
_READER_ROLES = "'reader', 'commenter', 'writer', 'fileOrganizer', 'organizer'"


def parents_named(node) -> list[str]:
    """Every id of an `'<id>' in parents` term in the query (where a listing may show link-shared children)."""
    out: list[str] = []

    def walk(n) -> None:
        if isinstance(n, (And, Or)):
            walk(n.left)
            walk(n.right)
        elif isinstance(n, Not):
            walk(n.inner)
        elif isinstance(n, In) and n.collection == "parents":
            out.append(n.value)

    if node is not None:
        walk(node)
    return out


def only_fields(node, allowed: set[str]) -> bool:
    """Whether every term of the query compares one of `allowed` (drives.list's q)."""
    if node is None:
        return True
    if isinstance(node, (And, Or)):
        return only_fields(node.left, allowed) and only_fields(node.right, allowed)
    if isinstance(node, Not):
        return only_fields(node.inner, allowed)
    return isinstance(node, Compare) and node.field in allowed


def to_sql(node, *, root_id: str, user_email: str) -> tuple[str, list]:
    """Translate an AST into a WHERE fragment over the `files` table plus its parameters.
    Uses the SQLite function `drive_contains(name, needle)` that the store registers."""
    params: list = []

    def emit(n) -> str:
        if isinstance(n, And):
            return f"({emit(n.left)} AND {emit(n.right)})"
        if isinstance(n, Or):
            return f"({emit(n.left)} OR {emit(n.right)})"
        if isinstance(n, Not):
            return f"(NOT {emit(n.inner)})"
        if isinstance(n, In):
            if n.collection == "parents":
                params.append(root_id if n.value == "root" else n.value)
                return "parent = ?"
            who = user_email if n.value == "me" else n.value
            if n.collection == "owners":
                params.append(who)
                return "owner = ?"
            # writers / readers: the owner, and those given that role on the item itself.
            roles = _WRITER_ROLES if n.collection == "writers" else _READER_ROLES
            params.extend([who, who])
            return (f"(owner = ? OR id IN (SELECT file_id FROM permissions WHERE type = 'user' AND email = ? "
                    f"AND role IN ({roles})))")
        if isinstance(n, Compare) and n.field == "sharedWithMe":
            params.extend([user_email, user_email])
            expr = ("(drive_id IS NULL AND owner IS NOT ? AND id IN "
                    "(SELECT file_id FROM permissions WHERE type = 'user' AND email = ?))")
            return expr if (n.op == "=") == n.value else f"(NOT {expr})"
        if isinstance(n, Compare):
            if n.field == "fullText":
                params.extend([n.value, n.value])
                return "(drive_contains(name, ?) OR instr(coalesce(doc_text, ''), ?) > 0)"
            col = _SQL_COLUMN[n.field]
            if n.op == "contains":
                params.append(n.value)
                if n.field == "name":
                    return f"drive_contains({col}, ?)"
                return f"instr({col}, ?) > 0"
            v = n.value
            if isinstance(v, bool):
                v = int(v)
            params.append(v)
            op = "<>" if n.op == "!=" else n.op
            return f"{col} {op} ?"
        raise QueryError(f"unknown node {n!r}")

    if node is None:
        return "1", []
    return emit(node), params


def matches(node, file: dict, *, root_id: str, user_email: str) -> bool:
    """Evaluate an AST against a store row dict (same columns as the SQL); used by tests as an oracle."""
    if node is None:
        return True
    if isinstance(node, And):
        return matches(node.left, file, root_id=root_id, user_email=user_email) and matches(
            node.right, file, root_id=root_id, user_email=user_email
        )
    if isinstance(node, Or):
        return matches(node.left, file, root_id=root_id, user_email=user_email) or matches(
            node.right, file, root_id=root_id, user_email=user_email
        )
    if isinstance(node, Not):
        return not matches(node.inner, file, root_id=root_id, user_email=user_email)
    if isinstance(node, In):
        if node.collection == "parents":
            return file.get("parent") == (root_id if node.value == "root" else node.value)
        return (file.get("owner") or user_email) == (user_email if node.value == "me" else node.value)
    if isinstance(node, Compare) and node.field == "sharedWithMe":
        return bool(file.get("shared_with_me")) == ((node.op == "=") == node.value)
    if isinstance(node, Compare):
        if node.field == "fullText":
            return name_contains(file.get("name"), node.value) or node.value in (file.get("doc_text") or "")
        v = file.get(_SQL_COLUMN[node.field])
        if node.op == "contains":
            return name_contains(v, node.value) if node.field == "name" else node.value in (v or "")
        want = node.value
        if isinstance(want, bool):
            v = bool(v)
        return {
            "=": v == want,
            "!=": v != want,
            "<": v < want,
            "<=": v <= want,
            ">": v > want,
            ">=": v >= want,
        }[node.op]
    raise QueryError(f"unknown node {node!r}")
