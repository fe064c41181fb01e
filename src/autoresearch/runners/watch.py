"""Watching a live run's progress (the runner side of ``progress.py``).

The local runner feeds the run's output to ``ProgressWatch.output`` (from its log pump)
and calls ``poll`` from its wait loop: ``poll`` reads what the run appended to its progress
file and says whether the rule stops the run. On a Ray node the same happens, with the
rule sent along with the job.

Bounded against a run that floods: lines are cut at ``progress.MAX_LINE``, at most
``PATTERN_LINES`` lines are tried against ``[metric] pattern``, at most
``FILE_BYTES`` of the progress file and ``OUTPUT_BYTES`` of output are read, and every
curve keeps ``progress.MAX_POINTS``.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..progress import (Curves, LineSplitter, Stop, StopRule, add_point, decide, parse_progress_json,
                        parse_progress_line, pattern_value)

PATTERN_LINES = 50_000      # output lines tried against [metric] pattern per run
OUTPUT_BYTES = 256 << 20    # bytes of output read for progress per run (a flood is not parsed to its end)
FILE_BYTES = 16 << 20       # bytes of the progress file read per run


@dataclass(frozen=True)
class WatchSpec:
    """What to watch in one run: its budget (elapsed / budget is the fraction when a report
    has none), the target metric and its ``[metric] pattern``, and the rule (None: record
    the curves only). Pure data (it travels to Ray nodes)."""

    budget_s: float
    metric: str = ""
    pattern: str | None = None
    rule: StopRule | None = None

    def to_json(self) -> dict[str, Any]:
        return {"budget_s": self.budget_s, "metric": self.metric, "pattern": self.pattern,
                "rule": self.rule.to_json() if self.rule is not None else None}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "WatchSpec":
        rule = StopRule.from_json(d["rule"]) if d.get("rule") else None
        return cls(float(d["budget_s"]), str(d.get("metric", "")), d.get("pattern"), rule)


class ProgressWatch:
    """One run's reports, as they come; thread-safe (the log pump and the wait loop)."""

    def __init__(self, spec: WatchSpec, progress_file: Path | None, started: float | None = None):
        from ..metrics import compile_pattern

        self.spec, self.progress_file = spec, progress_file
        self.started = time.monotonic() if started is None else started
        self.curves: Curves = {}
        self.stop: Stop | None = None
        try:
            self._rx = compile_pattern(spec.pattern) if spec.pattern else None
        except ValueError:  # the config refuses such a pattern at load; here it matches nothing
            self._rx = None
        self._lock = threading.Lock()
        self._out, self._file = LineSplitter(), LineSplitter()
        self._offset = 0
        self._pattern_lines = 0
        self._output_bytes = 0
        self._new = False

    def _fraction(self, reported: float | None) -> float:
        if reported is not None:
            return reported
        budget = self.spec.budget_s or 1.0
        return min(1.0, (time.monotonic() - self.started) / budget)

    def _report(self, parsed: tuple[float | None, dict[str, float]] | None) -> None:
        if parsed is not None and parsed[1]:
            add_point(self.curves, self._fraction(parsed[0]), parsed[1])
            self._new = True

    def output(self, chunk: bytes) -> None:
        """Bytes of the run's output (stdout and stderr)."""
        with self._lock:
            self._output_bytes += len(chunk)
            if self._output_bytes > OUTPUT_BYTES:
                return
            for line in self._out.feed(chunk):
                parsed = parse_progress_line(line)
                if parsed is None and self._rx is not None and self._pattern_lines < PATTERN_LINES:
                    self._pattern_lines += 1
                    value = pattern_value(self._rx, line)
                    parsed = (None, {self.spec.metric: value}) if value is not None else None
                self._report(parsed)

    def _read_file(self) -> bytes:
        path = self.progress_file
        if path is None or self._offset >= FILE_BYTES:
            return b""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return b""
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return b""
            os.lseek(fd, self._offset, os.SEEK_SET)
            data = os.read(fd, min(1 << 20, FILE_BYTES - self._offset))
        except OSError:
            return b""
        finally:
            os.close(fd)
        self._offset += len(data)
        return data

    def poll(self) -> Stop | None:
        """Read the progress file's new lines; the stop decision (once made, kept)."""
        data = self._read_file()
        with self._lock:
            for line in self._file.feed(data):
                self._report(parse_progress_json(line))
            rule = self.spec.rule
            if self.stop is None and rule is not None and self._new:
                self._new = False
                curve = self.curves.get(rule.key)
                self.stop = decide(rule, curve) if curve else None
            return self.stop

    def finish(self) -> None:
        """The run is over: its last lines without a newline count too."""
        self.output(b"\n")
        data = self._read_file()
        with self._lock:
            for line in self._file.feed(data + b"\n"):
                self._report(parse_progress_json(line))

    def snapshot(self) -> dict[str, tuple[tuple[float, float], ...]]:
        with self._lock:
            return {k: tuple(c) for k, c in self.curves.items()}
