"""A small YAML reader for the conformance manifests (Python standard library only).

Covers the subset the corpus uses: multiple documents (---), block mappings and sequences,
flow collections on one line ({}, [], {a: b}, [a, b]), plain/single/double-quoted scalars,
literal and folded block scalars (| |- > >-), comments. Scalars are resolved the YAML 1.2 core
way (int, float, true/false, null); anything else stays a string. Anchors, aliases and tags are
not supported and raise ValueError, as does anything else the reader does not understand.
"""
import json
import re

_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


def _scalar(text):
    t = text.strip()
    if t == "" or t in ("~", "null", "Null", "NULL"):
        return None
    if t in ("true", "True", "TRUE"):
        return True
    if t in ("false", "False", "FALSE"):
        return False
    if _INT.match(t):
        return int(t)
    if _FLOAT.match(t) and any(c.isdigit() for c in t):
        return float(t)
    if t[0] == '"':
        return json.loads(t)
    if t[0] == "'":
        if len(t) < 2 or t[-1] != "'":
            raise ValueError(f"unterminated quoted scalar: {t}")
        return t[1:-1].replace("''", "'")
    if t[0] in "&*!|>%@`":
        raise ValueError(f"unsupported YAML construct: {t}")
    return t


def _strip_comment(line):
    """Drop a trailing comment (a # at line start or after a space, outside quotes)."""
    q = None
    for i, c in enumerate(line):
        if q:
            if c == q:
                q = None
            elif c == "\\" and q == '"':
                continue
        elif c in "\"'" and (i == 0 or line[i - 1] in " :[{,-"):
            q = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _split_flow(s):
    """Split the inside of a flow collection on top-level commas."""
    out, depth, q, cur = [], 0, None, ""
    for c in s:
        if q:
            cur += c
            if c == q:
                q = None
            continue
        if c in "\"'":
            q = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        elif c == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        cur += c
    if cur.strip():
        out.append(cur)
    return out


def _flow(t):
    t = t.strip()
    if t.startswith("{"):
        if not t.endswith("}"):
            raise ValueError(f"unterminated flow mapping: {t}")
        d = {}
        for part in _split_flow(t[1:-1]):
            k, v = _split_key(part.strip())
            if k is None:
                raise ValueError(f"bad flow mapping entry: {part}")
            d[k] = _flow(v) if v.strip() else None
        return d
    if t.startswith("["):
        if not t.endswith("]"):
            raise ValueError(f"unterminated flow sequence: {t}")
        return [_flow(p) for p in _split_flow(t[1:-1])]
    return _scalar(t)


def _split_key(s):
    """'key: value' -> (key, value text); (None, s) when s is not a mapping entry."""
    if not s:
        return None, s
    if s[:1] in "\"'":
        q = s[0]
        j = s.find(q, 1)
        while q == '"' and j > 0 and s[j - 1] == "\\":
            j = s.find(q, j + 1)
        if j < 0:
            return None, s
        rest = s[j + 1:]
        if rest.startswith(":") and (len(rest) == 1 or rest[1] in " \t"):
            return _scalar(s[:j + 1]), rest[1:]
        return None, s
    if s[:1] in "[{":
        return None, s
    m = re.match(r"^([^:#]*?[^\s:])?:(\s|$)", s)
    if not m or m.group(1) is None:
        return None, s
    return m.group(1), s[m.end():] if m.group(2) else ""


class _Lines:
    def __init__(self, lines):
        self.lines = lines  # (indent, text, raw)
        self.i = 0

    def peek(self):
        return self.lines[self.i] if self.i < len(self.lines) else None


def _block_scalar(ls, header, parent_indent):
    style, chomp = header[0], header[1:].strip()
    raw = []
    while ls.i < len(ls.lines):
        ind, text, rawline = ls.lines[ls.i]
        if text and ind <= parent_indent:
            break
        raw.append(rawline)
        ls.i += 1
    ind = min((len(r) - len(r.lstrip(" ")) for r in raw if r.strip()), default=0)
    body = [r[ind:] if r.strip() else "" for r in raw]
    while body and body[-1] == "":
        body.pop()
    if style == "|":
        s = "\n".join(body)
    else:
        s = ""
        for k, b in enumerate(body):
            if k == 0:
                s = b
            elif b == "" or body[k - 1] == "":
                s += "\n" + b if b else ""
            else:
                s += " " + b
    if chomp == "-":
        return s
    return s + "\n" if body else s


def _value(ls, rest, indent):
    """Value of a mapping entry/sequence item whose inline text is rest, at indent."""
    r = rest.strip()
    if r.startswith("|") or r.startswith(">"):
        return _block_scalar(ls, r, indent)
    if r:
        return _flow(r)
    nxt = ls.peek()
    if nxt is None:
        return None
    is_item = nxt[1].startswith("- ") or nxt[1] == "-"
    if nxt[0] > indent or (nxt[0] == indent and is_item):
        return _node(ls, nxt[0])
    return None


def _node(ls, indent):
    first = ls.peek()
    if first[1].startswith("- ") or first[1] == "-":
        out = []
        while True:
            cur = ls.peek()
            if cur is None or cur[0] != indent or not (cur[1].startswith("- ") or cur[1] == "-"):
                break
            item = cur[1][1:]
            pad = len(item) - len(item.lstrip(" "))
            item = item.strip()
            ls.i += 1
            if not item:
                out.append(_value(ls, "", indent))
                continue
            k, _ = _split_key(item)
            if (k is not None and not item.startswith(("{", "["))) or item.startswith("- ") \
                    or item == "-":
                # a mapping (or sequence) starting on the dash line: re-read it at its indent
                sub = indent + 1 + pad
                ls.i -= 1
                ls.lines[ls.i] = (sub, item, ls.lines[ls.i][2])
                out.append(_node(ls, sub))
            elif item.startswith("|") or item.startswith(">"):
                out.append(_block_scalar(ls, item, indent))
            else:
                out.append(_flow(item))
        return out
    d = {}
    while True:
        cur = ls.peek()
        if cur is None or cur[0] != indent:
            if cur is not None and cur[0] > indent:
                raise ValueError(f"unexpected indentation: {cur[2]!r}")
            break
        if cur[1].startswith("- "):
            break
        k, rest = _split_key(cur[1])
        if k is None:
            raise ValueError(f"expected a mapping entry: {cur[2]!r}")
        ls.i += 1
        d[k] = _value(ls, rest, indent)
    return d


def load_all(text):
    """Every document of text as Python objects (empty documents are dropped)."""
    docs, cur = [], []
    for raw in text.split("\n"):
        if raw.rstrip() == "---" or raw.startswith("--- "):
            docs.append(cur)
            cur = []
            continue
        if raw.startswith("..."):
            continue
        cur.append(raw)
    docs.append(cur)
    out = []
    for doc in docs:
        lines = []
        for raw in doc:
            raw = raw.rstrip("\r")
            if "\t" in raw[:len(raw) - len(raw.lstrip())]:
                raise ValueError("tab indentation")
            text = _strip_comment(raw)
            ind = len(raw) - len(raw.lstrip(" "))
            lines.append((ind, text.strip(), raw))
        # blank lines are kept only where a block scalar may need them
        ls = _Lines(_drop_blank_outside_scalars(lines))
        if not ls.lines:
            continue
        v = _node(ls, ls.lines[0][0])
        if ls.peek() is not None:
            raise ValueError(f"trailing content: {ls.peek()[2]!r}")
        if v is not None and v != {}:
            out.append(v)
    return out


def _drop_blank_outside_scalars(lines):
    out = []
    scalar_indent = None
    for ln in lines:
        ind, text, raw = ln
        if scalar_indent is not None:
            if not text or ind > scalar_indent:
                out.append(ln)
                continue
            scalar_indent = None
        if not text:
            continue
        out.append(ln)
        t = text[2:] if text.startswith("- ") else text
        k, rest = _split_key(t)
        r = (rest if k is not None else t).strip()
        if r[:1] and r[:1] in "|>":
            scalar_indent = ind
    # blank lines inside a scalar were given a huge indent so _block_scalar keeps them
    return [(i if t else 10 ** 6, t, r) for i, t, r in out]
