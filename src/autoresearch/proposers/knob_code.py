"""Knobs in code: finding module-level constants bound to numeric literals, and writing a
new value back into the same spot of the same line (an ordinary SEARCH/REPLACE edit)."""

from __future__ import annotations

import ast
import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..records import FileEdit

_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass(frozen=True)
class Knob:
    name: str
    path: str
    value: float | int
    is_int: bool
    text: str  # the source text of the value expression
    line: str  # the whole source line of the assignment
    col: int  # where the value expression starts and ends in that line
    end_col: int


def _literal(node: ast.AST) -> float | int | None:
    """The value of a numeric literal expression, or None if it is anything else."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _literal(node.operand)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Pow, ast.Mult, ast.Add, ast.Sub, ast.Div)):
        a, b = _literal(node.left), _literal(node.right)
        if a is None or b is None:
            return None
        try:
            if isinstance(node.op, ast.Pow):
                if abs(b) > 64:
                    return None
                return a**b
            return {ast.Mult: a * b, ast.Add: a + b, ast.Sub: a - b}.get(type(node.op), a / b if b else None)
        except (OverflowError, ZeroDivisionError):
            return None
    return None


def find_knobs(path: str, source: str) -> list[Knob]:
    """Module-level UPPER_CASE numeric constants of one Python file, in source order."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    lines = source.splitlines()
    seen: dict[str, int] = {}
    found: list[Knob] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            target, value = node.target.id, node.value
        else:
            continue
        if not _NAME.match(target):
            continue
        seen[target] = seen.get(target, 0) + 1
        v = _literal(value)
        if v is None or isinstance(v, complex) or node.lineno != node.end_lineno or not math.isfinite(v):
            continue
        line = lines[value.lineno - 1]
        # ast offsets count UTF-8 bytes; convert to str indices
        raw = line.encode()
        col = len(raw[: value.col_offset].decode())
        end = len(raw[: value.end_col_offset].decode())
        found.append(Knob(target, path, v, isinstance(v, int), line[col:end], line, col, end))
    return [k for k in found if seen[k.name] == 1]  # a name assigned twice is ambiguous


# -- search spaces ------------------------------------------------------------------------


def format_value(knob: Knob, value: Any) -> str:
    if isinstance(value, bool) or isinstance(value, str):
        return repr(value)
    if knob.is_int or isinstance(value, int):
        v = int(value)
        if "**" in knob.text and v >= 2 and v & (v - 1) == 0:
            return f"2**{v.bit_length() - 1}"
        return str(v)
    text = f"{float(value):.4g}"
    if not any(c in text for c in ".en"):
        text += ".0"
    return text


def written_value(knob: Knob, value: Any) -> Any:
    """The value the code holds once ``value`` is written with ``format_value``."""
    if isinstance(value, (bool, str)):
        return value
    parsed = _literal(ast.parse(format_value(knob, value), mode="eval").body)
    return parsed if parsed is not None else value


def render_edits(knobs: Sequence[Knob], changes: Mapping[str, Any]) -> tuple[FileEdit, ...]:
    by_name = {k.name: k for k in knobs}
    edits = []
    for name, value in changes.items():
        k = by_name[name]
        new_line = k.line[: k.col] + format_value(k, value) + k.line[k.end_col :]
        edits.append(FileEdit(k.path, k.line, new_line))
    return tuple(edits)


def describe(knobs: Sequence[Knob], changes: Mapping[str, Any]) -> str:
    by_name = {k.name: k for k in knobs}
    return ", ".join(f"{n} {by_name[n].text} → {format_value(by_name[n], v)}" for n, v in changes.items())


def code_signature(files: Mapping[str, str], knobs: Sequence[Knob]) -> str:
    """A hash of the editable code with the knobs' values masked out."""
    h = hashlib.sha256()
    by_path: dict[str, list[Knob]] = {}
    for k in knobs:
        by_path.setdefault(k.path, []).append(k)
    for path in sorted(files):
        text = files[path]
        for k in by_path.get(path, []):
            text = text.replace(k.line, k.line[: k.col] + "<knob>" + k.line[k.end_col :], 1)
        h.update(path.encode() + b"\0" + text.encode() + b"\0")
    return h.hexdigest()[:16]
