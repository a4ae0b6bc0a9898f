"""The emulator's `q` parser (drivesync/emulator/query.py) against a printer written here: for generated
ASTs, parse(print(ast)) == ast, for the fully parenthesised form and for the fewest parentheses the
precedence rules allow (or < and < not, left-associative), with spaces and keyword case varied; and any
text at all either parses or raises QueryError (the server's 400), never another exception (a 500)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from drivesync.emulator.query import (BOOL_FIELDS, IN_COLLECTIONS, TIME_FIELDS, And, Compare, In, Not, Or,
                                      QueryError, parse)

FAST = settings(max_examples=300, deadline=None)

# -------------------------------------------------------------------------------------- the printer


def quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def print_time(ms: int, offset_min: int) -> str:
    tz = timezone(timedelta(minutes=offset_min))
    exact = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ms)  # no float on the way
    text = exact.astimezone(tz).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z") if offset_min == 0 else text


PREC = {Or: 1, And: 2, Not: 3}


class Printer:
    """Prints an AST as `q` text. ``minimal``: only the parentheses precedence needs; ``style`` picks the
    cosmetic choices (keyword case, spaces around operators, time zone of a time)."""

    def __init__(self, minimal: bool, style: int):
        self.minimal, self.style = minimal, style

    def kw(self, word: str) -> str:
        return [word, word.upper(), word.capitalize()][self.style % 3]

    def op(self, op: str) -> str:
        if op == "contains":
            return f" {self.kw('contains')} "
        return op if self.style % 2 else f" {op} "

    def value(self, node: Compare) -> str:
        if node.field in BOOL_FIELDS:
            text = "true" if node.value else "false"
            return text.upper() if self.style % 5 == 0 else text
        if node.field in TIME_FIELDS:
            return quote(print_time(node.value, [0, 330, -480][self.style % 3]))
        return quote(node.value)

    def __call__(self, node, parent_prec: int = 0, right: bool = False) -> str:
        if isinstance(node, (And, Or)):
            word = self.kw("and" if isinstance(node, And) else "or")
            p = PREC[type(node)]
            text = f"{self(node.left, p)} {word} {self(node.right, p, right=True)}"
            needs = not self.minimal or parent_prec > p or (parent_prec == p and right)
            return f"({text})" if needs else text
        if isinstance(node, Not):
            return f"{self.kw('not')} {self(node.inner, PREC[Not])}"
        if isinstance(node, In):
            return f"{quote(node.value)} {self.kw('in')} {node.collection}"
        return f"{node.field}{self.op(node.op)}{self.value(node)}"


# ------------------------------------------------------------------------------------- generated ASTs

texts = st.text(max_size=12)  # any characters: quotes, backslashes, newlines, unicode
times = st.integers(min_value=0, max_value=253_402_214_400_000 - 86_400_000)  # 1970 .. 9999-12-30, in ms
compares = st.one_of(
    st.builds(Compare, st.just("name"), st.sampled_from(["=", "!=", "contains"]), texts),
    st.builds(Compare, st.just("mimeType"), st.sampled_from(["=", "!=", "contains"]), texts),
    st.builds(Compare, st.just("fullText"), st.just("contains"), texts),
    st.builds(Compare, st.sampled_from(sorted(BOOL_FIELDS)), st.sampled_from(["=", "!="]), st.booleans()),
    st.builds(Compare, st.sampled_from(sorted(TIME_FIELDS)), st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), times),
    st.builds(In, texts, st.sampled_from(sorted(IN_COLLECTIONS))),
)
asts = st.recursive(compares, lambda inner: st.one_of(st.builds(And, inner, inner), st.builds(Or, inner, inner),
                                                      st.builds(Not, inner)), max_leaves=8)


@FAST
@given(asts, st.integers(0, 29))
def test_parse_of_print_is_the_same_tree_fully_parenthesised(ast, style):
    text = Printer(minimal=False, style=style)(ast)
    assert parse(text) == ast, text


@FAST
@given(asts, st.integers(0, 29))
def test_parse_of_print_is_the_same_tree_with_the_fewest_parentheses(ast, style):
    text = Printer(minimal=True, style=style)(ast)
    assert parse(text) == ast, text


@FAST
@given(asts, st.integers(0, 29), st.sampled_from([" ", "  ", "\t", "\n", " \n "]))
def test_any_whitespace_between_tokens_parses_the_same(ast, style, ws):
    text = Printer(minimal=False, style=style)(ast)
    assert parse(ws + text + ws) == ast


def test_the_printer_itself_is_not_trivially_right():
    """Precedence and associativity are real: a printer that dropped needed parentheses would not round-trip."""
    a, b, c = (Compare("starred", "=", True), Compare("trashed", "=", False), In("x", "parents"))
    assert parse("starred = true or trashed = false and 'x' in parents") == Or(a, And(b, c))
    assert parse("starred = true and trashed = false or 'x' in parents") == Or(And(a, b), c)
    assert parse("not starred = true and trashed = false") == And(Not(a), b)
    left = Or(Or(a, b), c)
    right = Or(a, Or(b, c))
    assert parse(Printer(True, 0)(left)) == left and parse(Printer(True, 0)(right)) == right
    assert Printer(True, 0)(right) != Printer(True, 0)(left)


# ------------------------------------------------------------------------------------- hostile text

q_like = st.lists(st.one_of(
    st.sampled_from(["and", "or", "not", "in", "contains", "parents", "owners", "name", "trashed", "modifiedTime",
                     "fullText", "=", "!=", "<", ">=", "(", ")", "'", "\\", "'x'", "'a\\'b'", "true", "FALSE", "12",
                     "-3.5", "'2024-01-01T00:00:00Z'", "'9999-12-31T23:59:59-23:59'", "'0001-01-01T00:00:00+23:59'",
                     "'not a time'", "''", " ", "\n"]),
    st.text(max_size=4)), max_size=12).map(" ".join)


@settings(max_examples=500, deadline=None)
@given(st.one_of(q_like, st.text(max_size=40)))
def test_any_text_parses_or_is_a_query_error(text):
    try:
        parse(text)
    except QueryError:
        pass
