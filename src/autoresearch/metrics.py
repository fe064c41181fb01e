"""Pure metric parsing and precedence.

Precedence (DESIGN.md): with an ``eval`` command configured only the eval's result counts
for the target metric. Otherwise the JSON the run wrote to ``AUTORESEARCH_RESULT_FILE``
wins over printed values, and a printed value that disagrees is kept as a warning. Printed
values are ``name: value`` lines (and the numbers of a line that is one JSON record:
``metric_json``) and, when configured, regexes (``[metric] pattern`` for the target,
``[metric.patterns]`` for others) that read metrics as a program prints them.
"""

from __future__ import annotations

import functools
import math
import re
import sys
from typing import Any, Mapping, Sequence

if sys.version_info >= (3, 11):
    from re import _parser as _regex_parser  # the standard library's own regex parser
else:  # pragma: no cover - exercised on 3.10 only
    import sre_parse as _regex_parser

from .metric_json import MAX_METRICS, json_line, parse_result_json
from .records import Measurement

_LINE = re.compile(r"^\s*([A-Za-z_][\w.\-/]*)\s*:\s*(\S+)\s*$")
# Hugging Face's `trainer.log_metrics("eval", metrics)`: "  eval_accuracy           =      0.947"
# (spaces on both sides of `=`: not an argument echoed as `lr=0.1`; a newcomer's trial)
_EQ_LINE = re.compile(r"^\s*([A-Za-z_][\w.\-/]*)\s+=\s+(\S+)\s*$")
_SEPARATOR = re.compile(r"^\s*-{3,}\s*$")
_NAME = re.compile(r"[A-Za-z_][\w.\-/]{0,199}")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


SUMMARY_TAIL_CHARS = 1 << 20   # the summary block is read from the end of the output


def parse_summary(output: str, keep: str = "") -> tuple[dict[str, float], dict[str, str]]:
    """Read ``name: value`` lines from a run's output.

    When the output has ``---`` separator lines (karpathy's summary block), only the last
    block after a separator that holds at least one ``name: value`` line is read (and the
    target ``keep`` from before it, where the block lacks it); otherwise every such line
    counts and the last occurrence of a name wins. Returns the numeric
    values and, separately, values that look meant as numbers but do not parse (``3,28``).
    Bounded: only the last MB of output is read, and at most MAX_METRICS names are kept
    (``keep``, the target metric, always).
    """
    values, unparsable, _ = parse_summary_texts(output, keep)
    return values, unparsable


def parse_summary_texts(output: str, keep: str = "") -> tuple[dict[str, float], dict[str, str], dict[str, str]]:
    """``parse_summary``, plus the text each value was printed as (its precision). A line
    that is one JSON object counts as a ``name: value`` line for each number in it (a log
    record per epoch: the last one's values win)."""
    lines = output[-SUMMARY_TAIL_CHARS:].splitlines()
    separators = [i for i, line in enumerate(lines) if _SEPARATOR.match(line)]
    chosen = lines
    for start in reversed(separators):
        block = lines[start + 1 :]
        if any(_LINE.match(line) or _EQ_LINE.match(line) for line in block):
            chosen = block
            break
    values, unparsable, texts = _read_lines(chosen, keep)
    if keep and chosen is not lines and keep not in values and keep not in unparsable:
        # the target is not in the summary block, but was printed before it (a JSON record per
        # epoch, then a `---` block of other numbers): its last value there counts
        # (its value and no printed text: it takes no part in the printed-vs-file conflict rule, so a
        # stale training line never contradicts an eval's result file: a review)
        every = _read_lines(lines, keep)
        for found, out in zip(every[:2], (values, unparsable)):
            if keep in found:
                out[keep] = found[keep]  # type: ignore[index]
    return values, unparsable, texts


_JSON_LINES = 2000  # a JSON object printed over more lines than this is not read as one record


def _records(lines: list[str]) -> list[str]:
    """``lines`` with a JSON object printed over several lines (``json.dumps(metrics,
    indent=2)``, ``cat metrics.json``: a line ``{`` and one ``}`` at its indentation) as one
    line (a scikit-learn trial: its metrics were printed so, and not read). Pure."""
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == "{":
            indent = line[:len(line) - len(line.lstrip())]
            end = next((j for j in range(i + 1, min(len(lines), i + _JSON_LINES))
                        if lines[j].rstrip() in (indent + "}", indent + "},")), None)
            if end is not None:
                out.append(" ".join(x.strip() for x in lines[i:end + 1]).rstrip(","))
                i = end + 1
                continue
        out.append(line)
        i += 1
    return out


def _read_lines(chosen: list[str], keep: str) -> tuple[dict[str, float], dict[str, str], dict[str, str]]:
    """The ``name: value`` lines and JSON records of ``chosen``: the last value of a name wins."""
    values: dict[str, float] = {}
    texts: dict[str, str] = {}
    unparsable: dict[str, str] = {}
    for line in _records(chosen):
        m = _LINE.match(line) or _EQ_LINE.match(line)
        if not m:  # a JSON record: its numbers, with no printed text (they take no part in a conflict: a review)
            record = json_line(line, keep) if "{" in line else None
            for name, value in (record or {}).items():
                if name in values or name in unparsable or name == keep or len(values) + len(unparsable) < MAX_METRICS:
                    values[name] = value
                    texts.pop(name, None)
                    unparsable.pop(name, None)
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


# -- metrics as programs print them: [metric] pattern and [metric.patterns] -------------------

MAX_PATTERN_CHARS = 500        # a metric regex longer than this is refused at config load
MAX_PATTERNS = 20              # secondary patterns ([metric.patterns]) at most
PATTERN_LINE_CHARS = 2048      # a line longer than this is cut to its last PATTERN_LINE_CHARS
PATTERN_EXAMPLE = "val loss ([0-9.]+)"


def _unbounded_nesting(sub: Any) -> int:
    """How deeply unbounded repetitions (``+``, ``*``, ``{n,}``) nest in a parsed regex."""
    deepest = 0
    for op, av in sub:
        if op in (_regex_parser.MAX_REPEAT, _regex_parser.MIN_REPEAT):
            _, high, inner = av
            deepest = max(deepest, (high == _regex_parser.MAXREPEAT) + _unbounded_nesting(inner))
            continue
        stack = [av]
        while stack:  # the sub-patterns inside groups, branches and lookarounds
            item = stack.pop()
            if isinstance(item, _regex_parser.SubPattern):
                deepest = max(deepest, _unbounded_nesting(item))
            elif isinstance(item, (tuple, list)):
                stack.extend(item)
    return deepest


def compile_pattern(text: str) -> re.Pattern[str]:
    """A metric regex, compiled, or ValueError saying what is wrong and how to fix it. Pure.

    The value is the group named ``value``, else the only capture group. Refused: no such
    group, a regex that matches an empty line (it would match every line), one longer than
    MAX_PATTERN_CHARS, and one that nests unbounded repetitions (``(a+)+``), which can take
    exponential time on a line that almost matches."""
    fix = f"write one regex with one group around the number, e.g. '{PATTERN_EXAMPLE}'"
    if not text.strip():
        raise ValueError(f"the pattern is empty; {fix}")
    if len(text) > MAX_PATTERN_CHARS:
        raise ValueError(f"the pattern is {len(text)} characters long (at most {MAX_PATTERN_CHARS}); {fix}")
    try:
        rx = re.compile(text)
    except re.error as e:
        raise ValueError(f"not a valid regular expression: {e}; {fix}") from None
    except (RecursionError, OverflowError):
        raise ValueError(f"the regular expression is too complex; {fix}") from None
    if "value" not in rx.groupindex and rx.groups != 1:
        raise ValueError(f"it has {rx.groups} capture groups, it needs exactly one around the number (make the "
                         f"others non-capturing, (?:...), or name the number's (?P<value>...)); {fix}")
    if rx.search("") is not None:
        raise ValueError(f"it matches an empty line, so every line would match; {fix}")
    if _unbounded_nesting(_regex_parser.parse(text)) > 1:
        raise ValueError("it repeats a repetition (like '(a+)+' or '(\\w+\\s?)*'), which can take exponential time "
                         f"on a line that almost matches; repeat only once, e.g. '{PATTERN_EXAMPLE}'")
    return rx


def check_pattern(text: str) -> str:
    """``text`` when ``compile_pattern`` accepts it (for config validation)."""
    compile_pattern(text)
    return text


def check_pattern_names(target: str, patterns: Mapping[str, str]) -> None:
    """ValueError unless ``patterns`` (``[metric.patterns]``) names at most MAX_PATTERNS
    metrics, each a metric name as results show it, none of them the target. Pure."""
    if len(patterns) > MAX_PATTERNS:
        raise ValueError(f"[metric.patterns] has {len(patterns)} patterns (at most {MAX_PATTERNS}); keep the ones "
                         "you will look at")
    bad = next((name for name in patterns if not _NAME.fullmatch(name)), None)
    if bad is not None:
        raise ValueError(f"[metric.patterns] {bad!r} is not a metric name (a letter or _, then letters, digits, "
                         "_ . - /; at most 200 characters)")
    if target in patterns:
        raise ValueError(f"[metric.patterns] has {target!r}, the target metric; set its regex as [metric] pattern")


@functools.lru_cache(maxsize=64)
def _usable_pattern(text: str) -> re.Pattern[str] | None:
    try:
        return compile_pattern(text)
    except ValueError:
        return None  # the config refuses it at load; a direct caller's bad regex matches nothing


def _last_capture(rx: re.Pattern[str], lines: Sequence[str]) -> str | None:
    """The value group of the last match in ``lines``, read from the end (bounded lines)."""
    for line in reversed(lines):
        found = None
        for m in rx.finditer(line[-PATTERN_LINE_CHARS:]):
            captured = m.group("value") if "value" in rx.groupindex else m.group(1)
            if captured is not None:
                found = captured
        if found is not None:
            return found.strip()
    return None


PATTERN_SECONDS = 5.0  # all the patterns of one output, in a child process (a regex that backtracks cannot hang the harness)
_MATCHER = r"""
import json, re, sys
d = json.load(sys.stdin)
out = {}
for name, text in d["patterns"]:
    rx = re.compile(text)
    group = "value" if "value" in rx.groupindex else 1
    for line in reversed(d["lines"]):
        found = None
        for m in rx.finditer(line):
            if m.group(group) is not None:
                found = m.group(group)
        if found is not None:
            out[name] = found.strip()
            break
json.dump(out, sys.stdout)
"""


class PatternTimeout(Exception):
    pass


def _captures_bounded(lines: Sequence[str], patterns: Sequence[tuple[str, str]],
                      seconds: float = PATTERN_SECONDS) -> dict[str, str]:
    """The last capture of each pattern, computed by a child Python with a deadline."""
    import json
    import subprocess
    import sys

    data = json.dumps({"lines": [line[-PATTERN_LINE_CHARS:] for line in lines], "patterns": list(patterns)})
    try:
        p = subprocess.run([sys.executable, "-I", "-S", "-c", _MATCHER], input=data, capture_output=True, text=True,
                           timeout=seconds)
    except subprocess.TimeoutExpired:
        raise PatternTimeout(f"the [metric] patterns took more than {seconds:g} s on this output (a regex that "
                             "backtracks: avoid nested or adjacent unbounded repeats such as '.*x.*'); no value read") from None
    if p.returncode != 0:
        raise PatternTimeout(f"the [metric] patterns could not be applied: {p.stderr.strip()[-300:]}")
    return json.loads(p.stdout)


def parse_patterns(output: str, patterns: Mapping[str, str], bounded: float | None = None) -> tuple[
        dict[str, float], dict[str, str], dict[str, str]]:
    """Metrics read with regexes (``{name: regex}``): for each name, the group of the last
    match in the output. Returns the values, the captures that are not numbers, and the text
    of each value (its printed precision), like ``parse_summary_texts``. Pure.

    Bounded like the summary parser: only the last MB of output is read. Lines end at
    ``\\n``, ``\\r`` (progress lines) and the other line breaks; a line is cut to its last
    PATTERN_LINE_CHARS characters before a regex sees it, and lines are read from the end,
    stopping at the first that matches. At most MAX_PATTERNS + 1 regexes are applied."""
    lines = output[-SUMMARY_TAIL_CHARS:].splitlines()
    values: dict[str, float] = {}
    unparsable: dict[str, str] = {}
    texts: dict[str, str] = {}
    usable = [(name, text) for name, text in list(patterns.items())[: MAX_PATTERNS + 1] if _usable_pattern(text) is not None]
    if bounded is not None:  # seconds for all the patterns, in a child process
        captures: dict[str, str] = _captures_bounded(lines, usable, bounded) if usable and lines else {}
    else:
        captures = {}
        for name, text in usable:
            got = _last_capture(_usable_pattern(text), lines)  # type: ignore[arg-type]
            if got is not None:
                captures[name] = got
    for name, _ in usable:
        captured = captures.get(name)
        if captured is None:
            continue
        value = _number(captured)
        if value is None:
            unparsable[name] = captured[:40]
        else:
            values[name], texts[name] = value, captured
    return values, unparsable, texts


def parse_printed(output: str, target: str, patterns: Mapping[str, str], bounded: float | None = None) -> tuple[
        dict[str, float], dict[str, str], dict[str, str], list[str]]:
    """Everything one output printed: ``name: value`` lines, and the ``patterns``; a name's
    pattern, when it matches, wins over its ``name: value`` line. Returns values, unparsable
    texts, printed texts and warnings (a secondary capture that is not a finite number is
    dropped with a warning; the target's is left for ``measure`` to judge). Pure."""
    values, unparsable, texts = parse_summary_texts(output, target)
    if not patterns:
        return values, unparsable, texts, []
    try:
        found, bad, found_texts = parse_patterns(output, patterns, bounded=bounded)
    except PatternTimeout as e:
        return values, unparsable, texts, [str(e)]
    warnings = []
    for name in (*found, *bad):  # the pattern matched: it decides this name in this output
        values.pop(name, None)
        unparsable.pop(name, None)
        texts.pop(name, None)
        if name != target and name in bad:
            warnings.append(f"pattern for {name} matched {bad.pop(name)!r}, which is not a number")
        elif name != target and not math.isfinite(found[name]):
            warnings.append(f"pattern for {name} matched {found_texts.pop(name)!r}, which is not a finite number")
            del found[name]
    return {**values, **found}, {**unparsable, **bad}, {**texts, **found_texts}, warnings


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
    pattern: str | None = None,
    patterns: Mapping[str, str] | None = None,
) -> Measurement:
    """Apply metric precedence to one run (and its eval) and check the target metric.

    With an eval configured the run is untrusted: its result file is not even parsed, and
    its printed values are kept as information only. The eval's result file wins over its
    printed value; when the two disagree beyond the printed value's own precision, the
    measurement is in ``conflict`` (the engine makes the run invalid). ``pattern`` (the
    target's regex) and ``patterns`` (other metrics, ``{name: regex}``) read every output
    too; in one output, a name's regex that matches wins over its ``name: value`` line."""
    warnings: list[str] = []
    regexes = _regexes(target, pattern, patterns)
    run_printed, run_bad, run_texts, found = parse_printed(run_output, target, regexes, bounded=PATTERN_SECONDS)
    warnings += [f"run: {w}" for w in found]
    run_file: dict[str, float] = {}
    if not eval_configured and run_json is not None and run_json.strip():
        run_file, problem = parse_result_json(run_json, target)
        if problem:
            warnings.append(f"run: {problem}")
    metrics: dict[str, float] = {**run_printed, **run_file}
    for name, value in run_printed.items():  # (a value from a printed JSON record has no text: not compared)
        if name in run_file and name in run_texts and not _agrees(value, run_file[name]) and \
                not abs(value - run_file[name]) <= printed_tolerance(run_texts[name]):
            warnings.append(f"printed {name}={value:g} disagrees with the result file ({run_file[name]:g}); the result file counts")
    conflict = ""
    if eval_configured:
        trusted, bad, conflict = _trusted(target, eval_output or "", eval_json, warnings, regexes)
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
            from .metric_hints import missing_hint, missing_words

            problem = missing_words(source, target, pattern) + missing_hint(
                target, (eval_output if eval_configured else run_output) or "", metrics)
    elif not math.isfinite(value):
        problem = f"{target} is {value}"
        value = None
    return Measurement(metric=value, metrics=metrics, problem=problem, warnings=tuple(warnings), conflict=conflict)


def _regexes(target: str, pattern: str | None, patterns: Mapping[str, str] | None) -> dict[str, str]:
    """``{name: regex}``, the target's first (so no bound can drop it)."""
    others = {name: regex for name, regex in (patterns or {}).items() if not (pattern and name == target)}
    return {target: pattern, **others} if pattern else others


def _trusted(target: str, output: str, result_json: str | None, warnings: list[str],
             regexes: Mapping[str, str]) -> tuple[dict[str, float], dict[str, str], str]:
    """The eval's metrics (its result file over its printed values), what did not parse, and
    a conflict when its file and its printed target disagree beyond the printed precision."""
    printed, bad, texts, found = parse_printed(output, target, regexes, bounded=PATTERN_SECONDS)
    warnings += [f"eval: {w}" for w in found]
    from_file: dict[str, float] = {}
    if result_json is not None and result_json.strip():
        from_file, problem = parse_result_json(result_json, target)
        if problem:
            warnings.append(f"eval: {problem}")
    conflict = ""
    if target in texts and target in from_file and math.isfinite(printed[target]) and math.isfinite(from_file[target]):
        if abs(printed[target] - from_file[target]) > printed_tolerance(texts[target]) + 1e-12:
            conflict = (f"the eval printed {target}: {texts[target]} but its result file says {from_file[target]:.10g}; "
                        "something other than the evaluator wrote one of them")
    return {**printed, **from_file}, bad, conflict


def memory_gb(metrics: Mapping[str, float]) -> float | None:
    """results.tsv's memory_gb: the memory the run reported (``peak_vram_mb``, else
    ``peak_memory_mb``), else the peak RSS of its process tree the harness measured
    (``peak_rss_mb``, which a run cannot set: ``Measurement.with_harness_metrics``)."""
    for key in ("peak_vram_mb", "peak_memory_mb", "peak_rss_mb"):
        if key in metrics and math.isfinite(metrics[key]):
            return metrics[key] / 1024
    return None
