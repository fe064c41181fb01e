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
  ``TrainConfig.lr``;
- leaves of YAML, JSON and TOML files, by dotted path: ``optimizer.lr``.

Numbers are searched; strings and booleans are knobs too, tuned only through declared
``choices``. A name found in two files is qualified with its file: ``cfg/a.py:lr``.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import re
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Sequence

from ..records import FileEdit

_UPPER = re.compile(r"^[A-Z][A-Z0-9_]*$")
_TOML_KEY = r"(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')"
_TOML_HEADER = re.compile(rf"^\s*\[\s*({_TOML_KEY}(?:\s*\.\s*{_TOML_KEY})*)\s*\]\s*(?:#.*)?$")
_TOML_PAIR = re.compile(rf"^\s*({_TOML_KEY}(?:\s*\.\s*{_TOML_KEY})*)\s*=\s*")
_TOML_VALUE = re.compile(r"[+-]?(?:\d[\d_]*)(?:\.\d[\d_]*)?(?:[eE][+-]?\d+)?\b|true\b|false\b|\"[^\"\\]*\"|'[^']*'")
CONFIG_SUFFIXES = (".yaml", ".yml", ".json", ".toml")
_LINES = re.compile(r"\r\n|\r|\n")


def _split(source: str) -> list[str]:
    """Lines as parsers count them (``str.splitlines`` also breaks at form feeds and
    U+2028, which ``ast`` and YAML do not: line numbers would point elsewhere)."""
    return _LINES.split(source)

Value = "float | int | bool | str"


@dataclass(frozen=True)
class Knob:
    name: str
    path: str
    value: Any  # float | int | bool | str
    is_int: bool
    text: str  # the source text of the value
    line: str  # the whole source line holding it
    col: int  # where the value starts and ends in that line
    end_col: int
    lineno: int = 0  # 1-based
    kind: str = "constant"  # constant | element | argparse | field | leaf
    symbol: str = ""  # how code reads it (a global's name, an argparse dest, a field): for usage analysis
    syntax: str = "python"  # python | yaml | json | toml: how a new value is written
    prefix: str = ""  # the lines before ``line`` that make the SEARCH text unique in its file
    suffix: str = ""  # or the lines after it (a knob on the first line)
    frozen: str | None = None  # why it is not searched by default (None: searched)

    @property
    def numeric(self) -> bool:
        return type(self.value) in (int, float)


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


def _usable(v: Any) -> bool:
    return v is not None and not isinstance(v, complex) and (type(v) not in (int, float) or math.isfinite(v)) and \
        (not isinstance(v, str) or (len(v) <= 200 and "\n" not in v))


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


def _fields(path: str, lines: list[str], cls: ast.ClassDef) -> list[Knob]:
    """Annotated class attributes with literal defaults (dataclasses and the like); plain
    assignments too when the class is a dataclass."""
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
        k = _python_knob(f"{cls.name}.{target}", path, lines, value, "field", target)
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


# -- YAML, JSON and TOML ------------------------------------------------------------------------

def _yaml(path: str, source: str, syntax: str) -> list[Knob]:
    import yaml

    try:
        root = yaml.compose(source, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return []
    lines = _split(source)
    out: list[Knob] = []
    seen: set[int] = set()  # an anchored node is one value, named once (aliases and merges of it are not knobs)

    def visit(node: Any, prefix: str) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                    visit(value, f"{prefix}.{key.value}" if prefix else str(key.value))
        elif isinstance(node, yaml.SequenceNode) and prefix:
            for i, value in enumerate(node.value):
                if isinstance(value, yaml.ScalarNode):
                    visit(value, f"{prefix}[{i}]")
        elif isinstance(node, yaml.ScalarNode) and prefix:
            start, end = node.start_mark, node.end_mark
            if start.line != end.line or start.line >= len(lines):
                return
            try:
                value = yaml.safe_load(source[start.index:end.index]) if syntax == "yaml" else json.loads(source[start.index:end.index])
            except (yaml.YAMLError, ValueError):
                return
            if type(value) not in (int, float, bool, str) or not _usable(value):
                return
            line = lines[start.line]
            text = line[start.column:end.column]
            symbol = re.sub(r"\[\d+\]$", "", prefix).rsplit(".", 1)[-1]
            out.append(Knob(prefix, path, value, type(value) is int, text, line, start.column, end.column,
                            start.line + 1, "leaf", symbol, syntax))

    try:
        visit(root, "")
    except RecursionError:
        return []
    return out


def _toml_key(text: str) -> str:
    return ".".join(p.strip().strip("\"'") for p in re.findall(_TOML_KEY, text))


def _toml(path: str, source: str) -> list[Knob]:
    """Leaves ``key = value`` one per line under ``[table]`` headers (the common shape of
    config files; arrays of tables and multi-line values are left out)."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        doc = tomllib.loads(source)
    except (tomllib.TOMLDecodeError, RecursionError):
        return []
    out = []
    table = ""
    in_string = False  # inside a multi-line string: text, not keys
    for i, line in enumerate(_split(source)):
        quotes = line.count('"""') + line.count("'''")
        if in_string or quotes % 2:
            in_string = in_string != bool(quotes % 2)
            continue
        if line.lstrip().startswith("[["):
            table = "\0"  # an array of tables: not addressed by a dotted name
            continue
        m = _TOML_HEADER.match(line)
        if m:
            table = _toml_key(m.group(1))
            continue
        m = _TOML_PAIR.match(line)
        if not m or table == "\0":
            continue
        v = _TOML_VALUE.match(line, m.end())
        if not v:
            continue
        rest = line[v.end():].strip()
        if rest and not rest.startswith("#"):
            continue
        try:
            value = tomllib.loads(f"x = {v.group(0)}")["x"]
        except tomllib.TOMLDecodeError:
            continue
        key = _toml_key(m.group(1))
        name = f"{table}.{key}" if table else key
        if not _toml_holds(doc, name, value):
            continue  # (inside a multi-line string, or a key the scanner misread)
        out.append(Knob(name, path, value, type(value) is int, v.group(0), line, v.start(), v.end(), i + 1, "leaf",
                        key.rsplit(".", 1)[-1], "toml"))
    return out


def _toml_holds(doc: Any, name: str, value: Any) -> bool:
    """Whether the parsed document holds ``value`` at the dotted ``name``."""
    here = doc
    for part in name.split("."):
        if not isinstance(here, dict) or part not in here:
            return False
        here = here[part]
    return type(here) is type(value) and here == value


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
