"""Metrics in JSON: the result file a run writes (``AUTORESEARCH_RESULT_FILE``), and a log
record a run prints as one line (``print(json.dumps({"epoch": 3, "val_f1": 0.81}))``, or a
Python dict of numbers as Hugging Face's Trainer prints it), read as ``name: value`` lines
(``metrics.parse_summary_texts``). Bounded, so no output can crash the harness. Pure."""

from __future__ import annotations

import json
import math
import re
from typing import Any, Mapping

MAX_METRICS = 200              # distinct names kept per run (the target always)
MAX_JSON_DEPTH = 20
MAX_INT_DIGITS = 64
_NAME = re.compile(r"[A-Za-z_][\w.\-/]{0,199}")


def _depth(text: str) -> int:
    """How deep JSON nests (brackets outside strings), counted without parsing."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _bounded_int(text: str) -> float:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits")
    return float(int(text))


def parse_result_json(text: str, keep: str = "") -> tuple[dict[str, float], str]:
    """Numeric top-level values of a JSON result object (nested objects flattened with dots).

    Returns the values and a problem description (empty when the JSON was fine). Bounded:
    nesting deeper than MAX_JSON_DEPTH, integers longer than MAX_INT_DIGITS digits and more
    than MAX_METRICS numbers are refused or cut, so no result file can crash the harness.
    """
    data, problem = _json_object(text)
    return ({}, problem) if data is None else (numbers(data, keep), "")


def _json_object(text: str) -> tuple[dict[str, Any] | None, str]:
    """A JSON object, bounded (depth, integer digits), or None and what is wrong with it. Pure."""
    if _depth(text) > MAX_JSON_DEPTH:
        return None, f"result file nests deeper than {MAX_JSON_DEPTH} levels"
    try:
        data = json.loads(text, parse_int=_bounded_int)
    except json.JSONDecodeError as e:
        return None, f"result file is not valid JSON ({e.msg} at line {e.lineno})"
    except (ValueError, RecursionError, OverflowError) as e:
        return None, f"result file is not usable JSON ({str(e)[:100]})"
    if not isinstance(data, dict):
        return None, "result file does not hold a JSON object"
    return data, ""


def numbers(data: Mapping[str, Any], keep: str = "") -> dict[str, float]:
    """The numbers of a parsed object, nested objects flattened with dots (at most
    MAX_METRICS, ``keep`` always). Pure."""
    values: dict[str, float] = {}

    def walk(prefix: str, obj: Mapping[str, Any]) -> None:
        for key, value in obj.items():
            name = f"{prefix}{key}"
            if not _NAME.fullmatch(name) or (len(values) >= MAX_METRICS and name != keep):
                continue  # names are shown in terminals and reports: the printed form's characters only
            if isinstance(value, bool):
                continue
            if isinstance(value, (int, float)):
                try:
                    values[name] = float(value)
                except OverflowError:  # an integer too large for a float: not a metric
                    continue
            elif isinstance(value, dict):
                walk(f"{name}.", value)

    walk("", data)
    return values


JSON_LINE_CHARS = 1 << 16  # a printed JSON object longer than this is not read as metrics


def json_line(line: str, keep: str) -> dict[str, float] | None:
    """The numbers of a line that ends in one JSON object (``{"epoch": 3, "val_f1": 0.81}``,
    as ``print(json.dumps(record))`` writes a log record; after a prefix such as logging's
    ``INFO:__main__:``) or one Python dict of numbers (``{'eval_loss': 0.52, 'epoch': 1.0}``,
    as Hugging Face's Trainer prints its logs; ``nan`` and ``inf`` included; numbers written
    as strings too, as transformers 5 prints them), else None. Pure."""
    text = line.strip()
    start = text.find("{")
    if start < 0 or not text.endswith("}") or len(text) > JSON_LINE_CHARS:
        return None
    text = text[start:]
    if _depth(text) > MAX_JSON_DEPTH:
        return None
    data = _python_dict(text) if text.startswith("{'") else _json_object(text)[0]
    return numbers(_numeric_strings(data), keep) if data is not None else None


_NUMBER_TEXT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)", re.IGNORECASE)


def _numeric_strings(data: Any) -> Any:
    """A printed record with its numbers written as strings read as numbers: transformers 5's
    Trainer prints ``{'eval_loss': '0.1108', 'eval_accuracy': '0.947'}`` (a newcomer's
    trial: "the run reported no eval_accuracy"). Only printed records; a result file's
    strings stay strings. Pure."""
    if isinstance(data, dict):
        return {k: _numeric_strings(v) for k, v in data.items()}
    if isinstance(data, str) and len(data) <= 40 and _NUMBER_TEXT.fullmatch(data.strip()):
        return float(data)
    return data


def _python_dict(text: str) -> dict[str, Any] | None:
    """A Python dict literal of string keys and numbers (nested dicts too), as ``print``
    writes one: ``nan`` and ``inf`` are read as floats (``ast.literal_eval`` refuses them, and
    a diverged run's record would then be skipped for an earlier one), integers beyond
    MAX_INT_DIGITS digits left out; anything else (a call, a name) refuses the line. Pure."""
    import ast

    try:
        tree = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    specials = {"nan": math.nan, "inf": math.inf}

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Dict):
            if not all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.keys):
                raise ValueError("not a record")
            return {k.value: value(v) for k, v in zip(node.keys, node.values)}  # type: ignore[union-attr]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = value(node.operand)
            if isinstance(inner, (int, float)) and not isinstance(inner, bool):
                return -inner if isinstance(node.op, ast.USub) else inner
            raise ValueError("not a number")
        if isinstance(node, ast.Name) and node.id in specials:
            return specials[node.id]
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
            if isinstance(node.value, int) and not isinstance(node.value, bool) and \
                    len(str(abs(node.value))) > MAX_INT_DIGITS:
                return None  # too long a number: left out, as a result file's is refused
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [value(x) for x in node.elts]
        raise ValueError("not a literal")

    try:
        data = value(tree)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None
