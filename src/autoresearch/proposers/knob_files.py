"""The knob record (``Knob``), and knobs of config files: the leaves of YAML, JSON and
TOML files by dotted path (``optimizer.lr``, ``optimizer.betas[1]``), each with where its
value sits in its line, so that a new value is written into the same spot (comments and
layout kept). Python sources are ``knob_code``'s."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

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


def _usable(v: Any) -> bool:
    return v is not None and not isinstance(v, complex) and (type(v) not in (int, float) or math.isfinite(v)) and \
        (not isinstance(v, str) or (len(v) <= 200 and "\n" not in v))


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
