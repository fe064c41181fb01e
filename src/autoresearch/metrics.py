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


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def parse_summary(output: str) -> tuple[dict[str, float], dict[str, str]]:
    """Read ``name: value`` lines from a run's output.

    When the output has ``---`` separator lines (karpathy's summary block), only the last
    block after a separator that holds at least one ``name: value`` line is read; otherwise
    every such line counts and the last occurrence of a name wins. Returns the numeric
    values and, separately, values that look meant as numbers but do not parse (``3,28``).
    """
    lines = output.splitlines()
    separators = [i for i, line in enumerate(lines) if _SEPARATOR.match(line)]
    chosen = lines
    for start in reversed(separators):
        block = lines[start + 1 :]
        if any(_LINE.match(line) for line in block):
            chosen = block
            break
    values: dict[str, float] = {}
    unparsable: dict[str, str] = {}
    for line in chosen:
        m = _LINE.match(line)
        if not m:
            continue
        name, text = m.group(1), m.group(2)
        value = _number(text)
        if value is not None:
            values[name] = value
            unparsable.pop(name, None)
        elif re.search(r"\d", text):
            unparsable[name] = text
            values.pop(name, None)
    return values, unparsable


def parse_result_json(text: str) -> tuple[dict[str, float], str]:
    """Numeric top-level values of a JSON result object (nested objects flattened with dots).

    Returns the values and a problem description (empty when the JSON was fine).
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        return {}, f"result file is not valid JSON ({e.msg} at line {e.lineno})"
    if not isinstance(data, dict):
        return {}, "result file does not hold a JSON object"
    values: dict[str, float] = {}

    def walk(prefix: str, obj: Mapping[str, Any]) -> None:
        for key, value in obj.items():
            name = f"{prefix}{key}"
            if isinstance(value, bool):
                continue
            if isinstance(value, (int, float)):
                values[name] = float(value)
            elif isinstance(value, dict):
                walk(f"{name}.", value)

    walk("", data)
    return values, ""


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
    """Apply metric precedence to one run (and its eval) and check the target metric."""
    warnings: list[str] = []
    run_printed, run_bad = parse_summary(run_output)
    run_file: dict[str, float] = {}
    if run_json is not None and run_json.strip():
        run_file, problem = parse_result_json(run_json)
        if problem:
            warnings.append(f"run: {problem}")

    metrics: dict[str, float] = {**run_printed, **run_file}
    for name, value in run_printed.items():
        if name in run_file and not _agrees(value, run_file[name]):
            warnings.append(f"printed {name}={value:g} disagrees with the result file ({run_file[name]:g}); the result file counts")

    if eval_configured:
        eval_printed, eval_bad = parse_summary(eval_output or "")
        eval_file: dict[str, float] = {}
        if eval_json is not None and eval_json.strip():
            eval_file, problem = parse_result_json(eval_json)
            if problem:
                warnings.append(f"eval: {problem}")
        trusted = {**eval_printed, **eval_file}
        if target in metrics and target in trusted and not _agrees(metrics[target], trusted[target]):
            warnings.append(f"the run reported {target}={metrics[target]:g}; only the eval's {trusted[target]:g} counts")
        metrics.pop(target, None)
        metrics.update(trusted)
        bad = eval_bad if target not in trusted else {}
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
    return Measurement(metric=value, metrics=metrics, problem=problem, warnings=tuple(warnings))


def memory_gb(metrics: Mapping[str, float]) -> float | None:
    for key in ("peak_vram_mb", "peak_memory_mb"):
        if key in metrics and math.isfinite(metrics[key]):
            return metrics[key] / 1024
    return None
