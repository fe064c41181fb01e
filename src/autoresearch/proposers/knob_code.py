"""Knobs in code: literals where people keep hyperparameters, found without running
anything, and a new value written back into the same spot of the same line (an ordinary
SEARCH/REPLACE edit).

Sources (each knob is named as DESIGN.md "Knob names" settles):

- module-level constants of a Python file: UPPER_CASE names (``LR``); any name in a
  config-only file (every statement an assignment, like nanoGPT's ``config/*.py``); a
  lowercase name assigned once and never rebound anywhere in its file (nanoGPT's
  ``batch_size`` in ``train.py``; a counter such as ``iter_num += 1`` is state, not a knob);
- elements of a literal tuple or list on one line: ``ADAM_BETAS[1]``;
- argparse options with a literal ``default=``, named by their dest: ``lr``;
- fields of a class with literal defaults (dataclasses, pydantic models, NamedTuples):
  ``TrainConfig.lr``; the literal defaults of a Lightning module's ``__init__``:
  ``LitModel.lr``;
- leaves of YAML, JSON and TOML files, by dotted path: ``optimizer.lr``.

Numbers are searched; strings and booleans are knobs too, tuned only through declared
``choices``. A name found in two files is qualified with its file: ``cfg/a.py:lr``.
The knob record and the config files' parsers are ``knob_files``'.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import replace
from typing import Any, Iterable, Mapping, Sequence

from ..records import FileEdit
from .knob_files import Knob, _split, _toml, _usable, _yaml

_UPPER = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _literal(node: ast.AST) -> Any:
    """The value of a literal expression (numbers, with arithmetic such as ``2**19`` or
    ``16 * 1024``; strings; booleans), or None if it is anything else."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float, bool, str):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _literal(node.operand)
        if type(v) not in (int, float):
            return None
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Pow, ast.Mult, ast.Add, ast.Sub, ast.Div)):
        a, b = _literal(node.left), _literal(node.right)
        if type(a) not in (int, float) or type(b) not in (int, float):
            return None
        try:
            if isinstance(node.op, ast.Pow):
                if abs(b) > 64 or abs(a) > 1e6:
                    return None
                return a**b
            return {ast.Mult: a * b, ast.Add: a + b, ast.Sub: a - b}.get(type(node.op), a / b if b else None)
        except (OverflowError, ZeroDivisionError):
            return None
    return None


def _cols(line: str, node: ast.AST) -> tuple[int, int]:
    raw = line.encode()  # ast offsets count UTF-8 bytes
    return len(raw[: node.col_offset].decode(errors="replace")), len(raw[: node.end_col_offset].decode(errors="replace"))


def _python_knob(name: str, path: str, lines: list[str], node: ast.AST, kind: str, symbol: str) -> "Knob | None":
    v = _literal(node)
    if not _usable(v) or node.lineno != node.end_lineno:
        return None
    line = lines[node.lineno - 1]
    col, end = _cols(line, node)
    return Knob(name, path, v, type(v) is int, line[col:end], line, col, end, node.lineno, kind, symbol)


def config_only(tree: ast.Module) -> bool:
    """Every statement an assignment (or a docstring or an import): a file that only sets values."""
    body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    return bool(body) and all(isinstance(n, (ast.Assign, ast.AnnAssign, ast.Import, ast.ImportFrom)) for n in body) and \
        any(isinstance(n, (ast.Assign, ast.AnnAssign)) for n in body)


def _stores(tree: ast.Module) -> dict[str, int]:
    """How many times each name is bound anywhere in a module (assignments, augmented
    assignments, loop targets, ``global`` writes ...)."""
    out: dict[str, int] = {}
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            out[n.id] = out.get(n.id, 0) + 1
        elif isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name):
            out[n.target.id] = out.get(n.target.id, 0) + 1  # (its Name is Store already; counted twice: never "once")
    return out


def _python(path: str, source: str) -> list[Knob]:
    try:
        tree = ast.parse(source)
        stores = _stores(tree)
    except (SyntaxError, ValueError, RecursionError):
        return []
    lines = _split(source)
    any_case = config_only(tree)
    found: list[Knob] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            target, value = node.target.id, node.value
        elif isinstance(node, ast.ClassDef):
            found += _fields(path, lines, node)
            continue
        else:
            continue
        if stores.get(target, 0) != 1 or target.startswith("_") or target.startswith("__"):
            continue  # bound twice (state, or ambiguous); private
        if not (_UPPER.match(target) or any_case or target.islower()):
            continue  # (CamelCase: a class alias, not a setting)
        if isinstance(value, (ast.Tuple, ast.List)) and value.lineno == value.end_lineno:
            for i, elt in enumerate(value.elts):
                k = _python_knob(f"{target}[{i}]", path, lines, elt, "element", target)
                if k is not None:
                    found.append(k)
            continue
        k = _python_knob(target, path, lines, value, "constant", target)
        if k is not None:
            found.append(k)
    found += _argparse(path, lines, tree)
    return found


_LIGHTNING = {"LightningModule", "LightningDataModule"}


def _fields(path: str, lines: list[str], cls: ast.ClassDef) -> list[Knob]:
    """Annotated class attributes with literal defaults (dataclasses and the like); plain
    assignments too when the class is a dataclass; a Lightning module's ``__init__`` defaults."""
    dataclass_like = any("dataclass" in ast.unparse(d) for d in cls.decorator_list)
    out = []
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            target, value = node.target.id, node.value
        elif dataclass_like and isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        else:
            continue
        if target.startswith("_"):
            continue
        value = _field_default(value)
        k = _python_knob(f"{cls.name}.{target}", path, lines, value, "field", target)
        if k is not None:
            out.append(k)
    return out + _init_defaults(path, lines, cls)


def _field_default(value: ast.expr) -> ast.expr:
    """The default inside ``field(default=64, metadata={...})`` (dataclasses; the way Hugging
    Face's argument dataclasses write every field: an HF trial found 0 knobs) or pydantic's
    ``Field(64, ...)``; else the value as it is."""
    if not isinstance(value, ast.Call) or not ast.unparse(value.func).split(".")[-1] in ("field", "Field"):
        return value
    default = next((kw.value for kw in value.keywords if kw.arg == "default"), None)
    if default is None and ast.unparse(value.func).split(".")[-1] == "Field" and value.args:
        default = value.args[0]
    return default if default is not None else value


def _init_defaults(path: str, lines: list[str], cls: ast.ClassDef) -> list[Knob]:
    """The literal defaults of a Lightning module's ``__init__`` (``LightningModule``,
    ``LightningDataModule``: ``def __init__(self, lr: float = 1e-3)`` is ``LitModel.lr``),
    where a plain Lightning project keeps its hyperparameters (a newcomer's trial found none
    of them). A field: frozen where every ``LitModel(...)`` passes it (``default_unused``)."""
    if not any(ast.unparse(b).rsplit(".", 1)[-1] in _LIGHTNING for b in cls.bases):
        return []
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is None:
        return []
    a = init.args
    positional = [*a.posonlyargs, *a.args]  # the defaults are the last of these (a review: / shifted them)
    pairs = list(zip(positional[len(positional) - len(a.defaults):], a.defaults)) + \
        [(arg, d) for arg, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
    out = []
    for arg, value in pairs:
        if arg.arg.startswith("_"):
            continue
        k = _python_knob(f"{cls.name}.{arg.arg}", path, lines, value, "field", arg.arg)
        if k is not None:
            out.append(k)
    return out


def argparse_dest(call: ast.Call) -> str | None:
    """The dest of an ``add_argument`` call, as argparse derives it. Pure."""
    for kw in call.keywords:
        if kw.arg == "dest" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
            return kw.value.value
    flags = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    if not flags:
        return None
    long = [f for f in flags if f.startswith("--")]
    chosen = long[0] if long else flags[0]
    dest = chosen.lstrip("-").replace("-", "_")
    return dest if dest.isidentifier() else None


def _argparse(path: str, lines: list[str], tree: ast.Module) -> list[Knob]:
    out = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument"):
            continue
        default = next((kw.value for kw in node.keywords if kw.arg == "default"), None)
        dest = argparse_dest(node)
        if default is None or dest is None:
            continue
        k = _python_knob(dest, path, lines, default, "argparse", dest)
        if k is not None:
            out.append(k)
    return out


def _context(source: str, k: Knob) -> tuple[str, str]:
    """The fewest whole lines before (or else after) the knob's line that make the SEARCH
    text match once, as a substring (the edit applier's rule)."""
    lines = _split(source)
    for n in range(0, k.lineno):
        block = "".join(line + "\n" for line in lines[k.lineno - 1 - n:k.lineno - 1])
        if source.count(block + k.line) == 1:
            return block, ""
    for n in range(1, len(lines) - k.lineno + 1):
        after = "".join("\n" + line for line in lines[k.lineno:k.lineno + n])
        if source.count(k.line + after) == 1:
            return "", after
    return "", ""  # (no context makes it unique: the edit says so when it is applied)


def find_knobs(path: str, source: str) -> list[Knob]:
    """The knobs of one file, in source order (names unqualified)."""
    if path.endswith(".py"):
        found = _python(path, source)
    elif path.endswith((".yaml", ".yml")):
        found = _yaml(path, source, "yaml")
    elif path.endswith(".json"):
        found = _yaml(path, source, "json")
    elif path.endswith(".toml"):
        found = _toml(path, source)
    else:
        return []
    names = [k.name for k in found]
    found = [k for k in found if names.count(k.name) == 1]  # a name defined twice in a file is ambiguous
    found.sort(key=lambda k: (k.lineno, k.col))
    out = []
    for k in found:
        prefix, suffix = _context(source, k)
        out.append(replace(k, prefix=prefix, suffix=suffix))
    return out


def discover(files: Mapping[str, str]) -> list[Knob]:
    """The knobs of several files; a name found in more than one file is qualified with
    its file (``path:NAME``)."""
    knobs = [k for path in sorted(files) for k in find_knobs(path, files[path])]
    counts: dict[str, int] = {}
    for k in knobs:
        counts[k.name] = counts.get(k.name, 0) + 1
    return [k if counts[k.name] == 1 else replace(k, name=f"{k.path}:{k.name}") for k in knobs]


# -- writing values ------------------------------------------------------------------------------

def format_value(knob: Knob, value: Any) -> str:
    if isinstance(value, bool):
        return repr(value) if knob.syntax == "python" else ("true" if value else "false")
    if isinstance(value, str):
        if knob.syntax == "python":
            return repr(value)
        if knob.syntax == "yaml" and knob.text[:1] not in ("'", '"'):
            return value if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_./-]*", value) and value.lower() not in (
                "true", "false", "yes", "no", "on", "off", "null", "none") else json.dumps(value)
        return json.dumps(value)
    if knob.is_int or isinstance(value, int):
        v = int(value)
        if knob.syntax == "python" and "**" in knob.text and v >= 2 and v & (v - 1) == 0:
            return f"2**{v.bit_length() - 1}"
        if knob.syntax == "python" and "_" in knob.text:
            return f"{v:_}"
        return str(v)
    text = f"{float(value):.4g}"
    if not any(c in text for c in ".en"):
        text += ".0"
    if knob.syntax == "yaml" and "e" in text and "." not in text.split("e")[0]:
        text = text.replace("e", ".0e", 1)  # PyYAML (YAML 1.1) reads 1e-05 as a string
    return text


def _parse_written(knob: Knob, text: str) -> Any:
    if knob.syntax == "python":
        return _literal(ast.parse(text, mode="eval").body)
    if knob.syntax == "toml":
        try:
            import tomllib
        except ImportError:
            import tomli as tomllib  # type: ignore[no-redef]
        return tomllib.loads(f"x = {text}")["x"]
    import yaml

    return yaml.safe_load(text) if knob.syntax == "yaml" else json.loads(text)


def written_value(knob: Knob, value: Any) -> Any:
    """The value the file holds once ``value`` is written with ``format_value``."""
    if isinstance(value, (bool, str)):
        return value
    try:
        parsed = _parse_written(knob, format_value(knob, value))
    except Exception:  # noqa: BLE001 - a value that does not read back: the value as given
        return value
    return parsed if parsed is not None else value


def render_edits(knobs: Sequence[Knob], changes: Mapping[str, Any]) -> tuple[FileEdit, ...]:
    """One SEARCH/REPLACE edit per changed line (several elements of one tuple: one edit)."""
    by_name = {k.name: k for k in knobs}
    lines: dict[tuple[str, int], list[tuple[Knob, Any]]] = {}
    for name, value in changes.items():
        k = by_name[name]
        lines.setdefault((k.path, k.lineno), []).append((k, value))
    edits = []
    for (path, _), items in sorted(lines.items()):
        first = items[0][0]
        new_line = first.line
        for k, value in sorted(items, key=lambda kv: -kv[0].col):  # right to left: columns stay valid
            new_line = new_line[: k.col] + format_value(k, value) + new_line[k.end_col :]
        edits.append(FileEdit(path, first.prefix + first.line + first.suffix, first.prefix + new_line + first.suffix))
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
        lines = files[path].split("\n")
        for k in sorted(by_path.get(path, []), key=lambda k: -k.col):
            i = k.lineno - 1
            if 0 <= i < len(lines) and lines[i].rstrip("\r") == k.line:
                lines[i] = lines[i][: k.col] + "<knob>" + lines[i][k.end_col :]
        h.update(path.encode() + b"\0" + "\n".join(lines).encode() + b"\0")
    return h.hexdigest()[:16]


def module_constants(files: Mapping[str, str]) -> dict[str, Any]:
    """Every module-level name bound once to a literal (numbers, strings, tuples of them) in
    the Python files given: what a constraint may name besides the knobs."""
    out: dict[str, Any] = {}
    for path in sorted(files):
        if not path.endswith(".py"):
            continue
        try:
            tree = ast.parse(files[path])
        except (SyntaxError, ValueError, RecursionError):
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                name, value = node.targets[0].id, node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                name, value = node.target.id, node.value
            else:
                continue
            if isinstance(value, (ast.Tuple, ast.List)):
                items = [_literal(e) for e in value.elts]
                v: Any = tuple(items) if all(_usable(x) for x in items) else None
            else:
                v = _literal(value)
            if v is not None:
                out.setdefault(name, v)
    return out


def knob_rows(knobs: Iterable[Knob]) -> list[dict[str, Any]]:
    return [{"name": k.name, "file": k.path, "line": k.lineno, "value": k.value, "kind": k.kind} for k in knobs]
