"""Pure metric parsing and precedence.

Precedence (DESIGN.md): with an ``eval`` command configured only the eval's result counts
for the target metric. Otherwise the JSON the run wrote to ``AUTORESEARCH_RESULT_FILE``
wins over printed ``name: value`` lines, and a printed value that disagrees is kept as a
warning.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Mapping

from .records import Measurement

_LINE = re.compile(r"^\s*([A-Za-z_][\w.\-/]*)\s*:\s*(\S+)\s*$")
_SEPARATOR = re.compile(r"^\s*-{3,}\s*$")
_NAME = re.compile(r"[A-Za-z_][\w.\-/]{0,199}")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


SUMMARY_TAIL_CHARS = 1 << 20   # the summary block is read from the end of the output
MAX_METRICS = 200              # distinct names kept per run (the target always)
MAX_JSON_DEPTH = 20
MAX_INT_DIGITS = 64


def parse_summary(output: str, keep: str = "") -> tuple[dict[str, float], dict[str, str]]:
    """Read ``name: value`` lines from a run's output.

    When the output has ``---`` separator lines (karpathy's summary block), only the last
    block after a separator that holds at least one ``name: value`` line is read; otherwise
    every such line counts and the last occurrence of a name wins. Returns the numeric
    values and, separately, values that look meant as numbers but do not parse (``3,28``).
    Bounded: only the last MB of output is read, and at most MAX_METRICS names are kept
    (``keep``, the target metric, always).
    """
    values, unparsable, _ = parse_summary_texts(output, keep)
    return values, unparsable


def parse_summary_texts(output: str, keep: str = "") -> tuple[dict[str, float], dict[str, str], dict[str, str]]:
    """``parse_summary``, plus the text each value was printed as (its precision)."""
    lines = output[-SUMMARY_TAIL_CHARS:].splitlines()
    separators = [i for i, line in enumerate(lines) if _SEPARATOR.match(line)]
    chosen = lines
    for start in reversed(separators):
        block = lines[start + 1 :]
        if any(_LINE.match(line) for line in block):
            chosen = block
            break
    values: dict[str, float] = {}
    texts: dict[str, str] = {}
    unparsable: dict[str, str] = {}
    for line in chosen:
        m = _LINE.match(line)
        if not m:
            continue
        name, text = m.group(1), m.group(2)
        if name not in values and name not in unparsable and name != keep and len(values) + len(unparsable) >= MAX_METRICS:
            continue
        value = _number(text)
        if value is not None:
            values[name], texts[name] = value, text
            unparsable.pop(name, None)
        elif re.search(r"\d", text):
            unparsable[name] = text[:40]
            values.pop(name, None)
    return values, unparsable, texts


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
    if _depth(text) > MAX_JSON_DEPTH:
        return {}, f"result file nests deeper than {MAX_JSON_DEPTH} levels"
    try:
        data = json.loads(text, parse_int=_bounded_int)
    except json.JSONDecodeError as e:
        return {}, f"result file is not valid JSON ({e.msg} at line {e.lineno})"
    except (ValueError, RecursionError, OverflowError) as e:
        return {}, f"result file is not usable JSON ({str(e)[:100]})"
    if not isinstance(data, dict):
        return {}, "result file does not hold a JSON object"
    values: dict[str, float] = {}

    def walk(prefix: str, obj: Mapping[str, Any]) -> None:
        for key, value in obj.items():
            name = f"{prefix}{key}"
            if not _NAME.fullmatch(name) or (len(values) >= MAX_METRICS and name != keep):
                continue  # names are shown in terminals and reports: the printed form's characters only
            if isinstance(value, bool):
                continue
            if isinstance(value, (int, float)):
                values[name] = float(value)
            elif isinstance(value, dict):
                walk(f"{name}.", value)

    walk("", data)
    return values, ""


def printed_tolerance(text: str) -> float:
    """Half a unit in the last printed digit: ``0.9979`` -> 5e-5, ``953`` -> 0.5,
    ``1.2e-3`` -> 5e-5. Pure."""
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.split(".", 1)[1]) if "." in mantissa else 0
    try:
        exp = int(exponent) if exponent else 0
    except ValueError:
        exp = 0
    return 0.5 * 10.0 ** (exp - decimals)


def _agrees(a: float, b: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def measure(
    target: str,
    *,
    run_output: str,
    run_json: str | None,
    eval_output: str | None = None,
    eval_json: str | None = None,
    eval_configured: bool = False,
) -> Measurement:
    """Apply metric precedence to one run (and its eval) and check the target metric.

    With an eval configured the run is untrusted: its result file is not even parsed, and
    its printed values are kept as information only. The eval's result file wins over its
    printed value; when the two disagree beyond the printed value's own precision, the
    measurement is in ``conflict`` (the engine makes the run invalid)."""
    warnings: list[str] = []
    run_printed, run_bad, run_texts = parse_summary_texts(run_output, target)
    run_file: dict[str, float] = {}
    if not eval_configured and run_json is not None and run_json.strip():
        run_file, problem = parse_result_json(run_json, target)
        if problem:
            warnings.append(f"run: {problem}")
    metrics: dict[str, float] = {**run_printed, **run_file}
    for name, value in run_printed.items():
        if name in run_file and not _agrees(value, run_file[name]) and \
                not abs(value - run_file[name]) <= printed_tolerance(run_texts[name]):
            warnings.append(f"printed {name}={value:g} disagrees with the result file ({run_file[name]:g}); the result file counts")
    conflict = ""
    if eval_configured:
        trusted, bad, conflict = _trusted(target, eval_output or "", eval_json, warnings)
        if target in metrics and target in trusted and not _agrees(metrics[target], trusted[target]):
            warnings.append(f"the run reported {target}={metrics[target]:g}; only the eval's {trusted[target]:g} counts")
        metrics.pop(target, None)
        metrics.update(trusted)
        bad = bad if target not in trusted else {}
        source = "the eval"
    else:
        bad = run_bad if target not in metrics else {}
        source = "the run"
    value = metrics.get(target)
    problem = ""
    if value is None:
        if target in bad:
            problem = f"{target} is not a number: {bad[target]!r}"
        else:
            problem = f"{source} reported no {target} (expected a '{target}: <number>' line or a JSON result)"
    elif not math.isfinite(value):
        problem = f"{target} is {value}"
        value = None
    return Measurement(metric=value, metrics=metrics, problem=problem, warnings=tuple(warnings), conflict=conflict)


def _trusted(target: str, output: str, result_json: str | None,
             warnings: list[str]) -> tuple[dict[str, float], dict[str, str], str]:
    """The eval's metrics (its result file over its printed lines), what did not parse, and
    a conflict when its file and its printed target disagree beyond the printed precision."""
    printed, bad, texts = parse_summary_texts(output, target)
    from_file: dict[str, float] = {}
    if result_json is not None and result_json.strip():
        from_file, problem = parse_result_json(result_json, target)
        if problem:
            warnings.append(f"eval: {problem}")
    conflict = ""
    if target in printed and target in from_file and math.isfinite(printed[target]) and math.isfinite(from_file[target]):
        if abs(printed[target] - from_file[target]) > printed_tolerance(texts[target]) + 1e-12:
            conflict = (f"the eval printed {target}: {texts[target]} but its result file says {from_file[target]:.10g}; "
                        "something other than the evaluator wrote one of them")
    return {**printed, **from_file}, bad, conflict


def memory_gb(metrics: Mapping[str, float]) -> float | None:
    for key in ("peak_vram_mb", "peak_memory_mb"):
        if key in metrics and math.isfinite(metrics[key]):
            return metrics[key] / 1024
    return None
