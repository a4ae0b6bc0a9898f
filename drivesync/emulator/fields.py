"""Partial responses: the `fields` parameter, parsed, validated against the real Drive v3 schema, applied.

Owns the grammar `a,b/c,d(e,f/g),*` and the rule that an unknown field is a 400 "Invalid field selection".
Pure: no HTTP, no store. The schema comes from `schema.py` (generated from the discovery document).
"""

from __future__ import annotations

from .schema import SCHEMAS

# A selection tree: {name: subtree}, where subtree None means "the whole value" and "*" as a key means all.
Selection = dict


class FieldsError(ValueError):
    def __init__(self, selection: str):
        super().__init__(selection)
        self.selection = selection


def parse(fields: str) -> Selection:
    """Parse a fields string into a selection tree. Syntax errors raise FieldsError."""
    text = fields.replace(" ", "").replace("\n", "")
    pos = 0

    def parse_list(depth: int) -> Selection:
        nonlocal pos
        out: Selection = {}
        while True:
            start = pos
            while pos < len(text) and text[pos] not in ",()":
                pos += 1
            path = text[start:pos]
            if not path:
                raise FieldsError(text[start:] or fields)
            parts = path.split("/")
            if any(not p for p in parts):
                raise FieldsError(path)
            sub: Selection | None = None
            if pos < len(text) and text[pos] == "(":
                pos += 1
                sub = parse_list(depth + 1)
                if pos >= len(text) or text[pos] != ")":
                    raise FieldsError(fields)
                pos += 1
            # a/b/c(sub) -> {a: {b: {c: sub}}}
            node = out
            for p in parts[:-1]:
                existing = node.get(p, {})
                if existing is None:  # already whole
                    node = {}
                else:
                    node[p] = existing
                    node = existing
            last = parts[-1]
            if last in node and node[last] is None:
                pass
            elif sub is None:
                node[last] = None
            else:
                prev = node.get(last)
                node[last] = _merge(prev, sub) if isinstance(prev, dict) else sub
            if pos < len(text) and text[pos] == ",":
                pos += 1
                continue
            if depth > 0 and pos < len(text) and text[pos] == ")":
                return out
            if pos >= len(text):
                if depth > 0:
                    raise FieldsError(fields)
                return out
            raise FieldsError(text[pos:])

    if not text:
        raise FieldsError(fields)
    return parse_list(0)


def _merge(a: Selection, b: Selection) -> Selection:
    out = dict(a)
    for k, v in b.items():
        if k in out and isinstance(out[k], dict) and isinstance(v, dict):
            out[k] = _merge(out[k], v)
        elif k in out and out[k] is None:
            pass
        else:
            out[k] = v
    return out


def _schema_fields(schema) -> dict | None:
    if isinstance(schema, str):
        return SCHEMAS[schema]
    if isinstance(schema, dict):
        return schema
    return None  # a leaf or a free-form map: anything below is allowed


def validate(sel: Selection, schema: str | dict, prefix: str = "") -> None:
    """Raise FieldsError naming the first field that the schema does not have."""
    props = _schema_fields(schema)
    if props is None:
        return
    for name, sub in sel.items():
        if name == "*":
            continue
        if name not in props:
            raise FieldsError(prefix + name)
        if isinstance(sub, dict):
            validate(sub, props[name], prefix + name + "/")


def apply(value, sel: Selection | None):
    """Keep only the selected parts of a JSON value (dicts are filtered, lists are mapped)."""
    if sel is None or "*" in sel and len(sel) == 1:
        return value
    if isinstance(value, list):
        return [apply(v, sel) for v in value]
    if not isinstance(value, dict):
        return value
    if "*" in sel:
        out = dict(value)
        for k, sub in sel.items():
            if k != "*" and k in value and sub is not None:
                out[k] = apply(value[k], sub)
        return out
    out = {}
    for k, sub in sel.items():
        if k in value:
            out[k] = apply(value[k], sub) if sub is not None else value[k]
    return out


def compile(fields: str | None, schema: str, default: Selection) -> Selection:
    """Parse and validate `fields` for a response of type `schema`, or return the default selection."""
    if fields is None or fields == "":
        return default
    sel = parse(fields)
    validate(sel, schema)
    return sel


def wants(sel: Selection | None, name: str) -> bool:
    """Whether the selection asks for a top-level field (so expensive fields can be skipped)."""
    return sel is None or "*" in sel or name in sel


FILE_DEFAULT: Selection = {"kind": None, "id": None, "name": None, "mimeType": None}
FILE_LIST_DEFAULT: Selection = {
    "kind": None,
    "nextPageToken": None,
    "incompleteSearch": None,
    "files": FILE_DEFAULT,
}
CHANGE_LIST_DEFAULT: Selection = {
    "kind": None,
    "nextPageToken": None,
    "newStartPageToken": None,
    "changes": {
        "kind": None,
        "changeType": None,
        "time": None,
        "removed": None,
        "fileId": None,
        "file": FILE_DEFAULT,
    },
}

# revisions.get / revisions.list without `fields` (what Drive v3 answers by default).
REVISION_DEFAULT: Selection = {"kind": None, "id": None, "mimeType": None, "modifiedTime": None}
REVISION_LIST_DEFAULT: Selection = {"kind": None, "nextPageToken": None, "revisions": REVISION_DEFAULT}
