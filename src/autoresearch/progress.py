"""Progress reports of a run, and the early-stopping rule. Pure: no processes, no files
(except the curve file beside a run's log: ``read_curve_file``, ``write_curve_file``,
``intermediate_values``).

A run reports how it is doing in one of three ways (docs/early-stopping.md):

- lines in its output: ``progress: 0.25 train_loss: 3.1`` (the fraction of its budget
  done, then ``name: value`` pairs; ``progress: 25%`` also reads);
- JSON lines appended to the file named by ``AUTORESEARCH_PROGRESS_FILE``:
  ``{"progress": 0.25, "train_loss": 3.1}``;
- the target metric printed periodically, matched by ``[metric] pattern``: every match
  is a point of the metric's own curve.

A point's fraction is the reported progress when given, else elapsed time over the time
budget. A *curve* is, per reported name, the points in order: ``[(fraction, value), ...]``.

The rule (``StopRule``, ``decide``) compares a candidate's curve with a band made from the
incumbent's curves at the same fraction; see ``decide``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from statistics import fmean, stdev
from typing import Any, Iterable, Mapping, Sequence

PROGRESS_FILE_ENV = "AUTORESEARCH_PROGRESS_FILE"
MAX_KEYS = 8            # names kept per run (the first ones reported)
MAX_POINTS = 256        # points kept per name; beyond, every other point is dropped (the curve's shape stays)
MAX_LINE = 4096         # a longer line is cut before it is read
GRID = tuple(round(0.025 * i, 3) for i in range(1, 41))  # fractions at which reference bands are kept

Curve = list[tuple[float, float]]   # (fraction of the budget, value), fractions non-decreasing
Curves = dict[str, Curve]           # reported name -> its curve

_PROGRESS = re.compile(r"^\s*progress\s*[:=]\s*([-+0-9.eE]+)(%?)[,;]?(?:\s+(.*))?$")
_PAIR = re.compile(r"([A-Za-z_][\w.\-/]{0,199})\s*[:=]\s*(\S+)")
_NAME = re.compile(r"[A-Za-z_][\w.\-/]{0,199}")


def _finite(text: Any) -> float | None:
    if isinstance(text, bool):
        return None
    try:
        x = float(text)
    except (TypeError, ValueError, OverflowError):
        return None
    return x if math.isfinite(x) else None


def _fraction(x: float | None) -> float | None:
    """A reported fraction, kept in [0, 1]; None when it is not one (negative, absurd)."""
    if x is None or x < 0 or x > 1:
        return None
    return x


def parse_progress_line(line: str) -> tuple[float | None, dict[str, float]] | None:
    """``progress: 0.25 train_loss: 3.1`` -> (0.25, {"train_loss": 3.1}); None when the
    line is not a progress line. Values that are not finite numbers are left out; a fraction
    outside [0, 1] (after ``%``) makes the point's fraction unknown (elapsed time then)."""
    m = _PROGRESS.match(line[:MAX_LINE])
    if m is None:
        return None
    raw = _finite(m.group(1))
    frac = _fraction(raw / 100 if raw is not None and m.group(2) else raw)
    if raw is not None and frac is not None and not m.group(2) and raw > 1:
        frac = None  # "progress: 30" without % is not a fraction
    values = {k: v for k, text in _PAIR.findall(m.group(3) or "") if (v := _finite(text.rstrip(",;"))) is not None}
    return frac, values


def parse_progress_json(line: str) -> tuple[float | None, dict[str, float]] | None:
    """One line of the progress file: a JSON object, ``progress`` (the fraction) optional,
    other numeric members are values. None when the line is not such an object."""
    line = line.strip()[:MAX_LINE]
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    frac = _fraction(_finite(data.get("progress")))
    values = {k: v for k, x in data.items()
              if k != "progress" and _NAME.fullmatch(k) and (v := _finite(x)) is not None}
    return frac, values


def pattern_value(rx: re.Pattern[str], line: str) -> float | None:
    """The last value ``rx`` (a ``[metric] pattern``) captures in ``line``, when finite."""
    found = None
    for m in rx.finditer(line[-MAX_LINE:]):
        captured = m.group("value") if "value" in rx.groupindex else m.group(1)
        if captured is not None:
            found = captured
    return _finite(found.strip()) if found is not None else None


def add_point(curves: Curves, fraction: float, values: Mapping[str, float]) -> None:
    """Append one report to ``curves`` (bounded: MAX_KEYS names, MAX_POINTS points each;
    a fraction never goes back)."""
    for key, value in values.items():
        if key not in curves:
            if len(curves) >= MAX_KEYS:
                continue
            curves[key] = []
        curve = curves[key]
        f = max(fraction, curve[-1][0]) if curve else fraction
        curve.append((round(f, 6), value))
        if len(curve) > MAX_POINTS:
            del curve[1:-1:2]  # every other point, first and last kept


class LineSplitter:
    """Bytes in, complete text lines out (a partial line waits; a line longer than
    MAX_LINE is cut)."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[str]:
        data = self._buf + chunk
        *lines, self._buf = data.split(b"\n")
        if len(self._buf) > MAX_LINE:
            lines.append(self._buf[:MAX_LINE])
            self._buf = b""
        return [x[:MAX_LINE].decode("utf-8", errors="replace").rstrip("\r") for x in lines]


# -- curves: interpolation and bands -----------------------------------------------------------

def value_at(curve: Sequence[tuple[float, float]], f: float) -> float | None:
    """The curve's value at fraction ``f``, linear between its points; None outside them."""
    if not curve or f < curve[0][0] or f > curve[-1][0]:
        return None
    for (f0, v0), (f1, v1) in zip(curve, curve[1:]):
        if f0 <= f <= f1:
            return v0 if f1 == f0 else v0 + (v1 - v0) * (f - f0) / (f1 - f0)
    return curve[-1][1]


def reference_band(curves: Sequence[Curve], grid: Sequence[float] = GRID) -> tuple[tuple[float, float, float], ...]:
    """(fraction, mean, sd) on ``grid`` where every curve has a value; sd 0 for one curve."""
    out = []
    for f in grid:
        vals = [v for c in curves if (v := value_at(c, f)) is not None]
        if len(vals) == len(curves) and vals:
            out.append((f, fmean(vals), stdev(vals) if len(vals) > 1 else 0.0))
    return tuple(out)


_LOWER = re.compile(r"loss|bpb|bpc|perplexity|ppl|error|err$|nll|mse|mae|rmse|cost|regret", re.IGNORECASE)
_HIGHER = re.compile(r"acc|accuracy|score|reward|f1|auc|bleu|rouge|precision|recall|map$|iou|return", re.IGNORECASE)


def proxy_direction(name: str) -> str | None:
    """Which way a reported value is better, when its name says so ("train_loss":
    minimize, "val_acc": maximize); None for anything else ("step", "tokens", "lr"),
    which is never used as a proxy for the metric. Pure."""
    lower, higher = bool(_LOWER.search(name)), bool(_HIGHER.search(name))
    if lower == higher:
        return None
    return "minimize" if lower else "maximize"


def curve_end(curve: Sequence[tuple[float, float]]) -> float | None:
    return curve[-1][1] if curve else None


def end_agrees(end: float, final: float, scale: float, noise_sd: float | None, rel_tol: float) -> bool:
    """Whether a curve's last value, on the metric's scale (``end * scale``, the scale from
    trusted runs), agrees with the run's trusted final metric within the noise (3 sd) or
    ``rel_tol`` of it, whichever is larger. Curves come from untrusted code: one that does
    not agree is not used."""
    tol = max(3 * noise_sd if noise_sd else 0.0, rel_tol * abs(final))
    return abs(end * scale - final) <= tol


def end_scale(pairs: Iterable[tuple[float, float]]) -> float | None:
    """Mean of final / end over (curve end, trusted final) pairs of trusted runs."""
    ratios = [final / end for end, final in pairs if end != 0 and math.isfinite(final / end)]
    return fmean(ratios) if ratios else None


# -- the rule ----------------------------------------------------------------------------------

MIN_FRACTION = 0.1  # nothing is judged before it (the default of [judge] early_stop_min_fraction)
SETTLED = 0.3  # from this fraction of the budget on, a worse candidate's gap is its own (before it, a
               # slow start: a low learning rate, a long warm-up, a larger model); BENCHMARKS.md
LATE = 0.5     # from this fraction on, the gap is the one the run ends with: the candidates that beat their
               # incumbent in two recorded tiny-GPT campaigns were at most 1.6 % behind it from 50 % of the
               # budget on, while 85 of the 106 that did not were more than 1.3 % behind at 50 %; BENCHMARKS.md

@dataclass(frozen=True)
class StopRule:
    """Stop a candidate whose ``key`` curve is clearly worse than the incumbent's band.

    ``reference``: (fraction, mean, sd) of the incumbent's curves. At a fraction ``f`` past
    ``min_fraction``, a point is *worse* when it is beyond the band's mean by more than
    ``max(z * sd, m * |mean|)`` in the wrong direction, where ``m`` is ``early_margin``
    before ``SETTLED`` of the budget (a start so far behind that no slow start explains it),
    ``margin`` from there on, and ``late_margin`` (never more than ``margin``) from ``LATE``
    on; the run is stopped when its last ``patience`` points are all worse. Pure data: it
    travels to Ray nodes as it is."""

    key: str
    goal: str                    # "minimize" | "maximize"
    reference: tuple[tuple[float, float, float], ...]
    min_fraction: float = MIN_FRACTION
    margin: float = 0.05         # relative to the reference value
    z: float = 4.0               # band widths (sd of the incumbent's curves)
    patience: int = 2
    curves: int = 1              # how many incumbent curves made the band
    incumbent: int = 0           # the incumbent's experiment id (for the reason)
    early_margin: float | None = None  # the margin before SETTLED (None: ``margin`` throughout)
    late_margin: float | None = None   # the margin from LATE on (None: ``margin``)

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "goal": self.goal, "reference": [list(r) for r in self.reference],
                "min_fraction": self.min_fraction, "margin": self.margin, "z": self.z, "patience": self.patience,
                "curves": self.curves, "incumbent": self.incumbent, "early_margin": self.early_margin,
                "late_margin": self.late_margin}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "StopRule":
        known = {f.name for f in fields(cls)}  # a newer sender's extra fields are not this node's to judge by
        return cls(**{k: v for k, v in d.items() if k in known and k != "reference"},  # type: ignore[arg-type]
                   reference=tuple(tuple(r) for r in d["reference"]))

    def band(self, f: float) -> tuple[float, float] | None:
        """(mean, sd) of the reference at ``f``; None outside it."""
        mean = value_at([(r[0], r[1]) for r in self.reference], f)
        sd = value_at([(r[0], r[2]) for r in self.reference], f)
        return None if mean is None or sd is None else (mean, sd)

    def limit(self, f: float) -> float | None:
        """The value past which a point at ``f`` is clearly worse; None where the rule
        does not judge (before ``min_fraction``, outside the reference)."""
        band = self.band(f) if f >= self.min_fraction else None
        if band is None:
            return None
        mean, sd = band
        tol = max(self.z * sd, self.margin_at(f) * abs(mean))
        return mean + tol if self.goal == "minimize" else mean - tol

    def margin_at(self, f: float) -> float:
        """The relative margin at fraction ``f`` of the budget: early, middle or late."""
        if f < SETTLED:
            return self.margin if self.early_margin is None else max(self.margin, self.early_margin)
        if f >= LATE and self.late_margin is not None:
            return min(self.margin, self.late_margin)
        return self.margin

    def worse(self, f: float, v: float) -> bool:
        lim = self.limit(f)
        return lim is not None and (v > lim if self.goal == "minimize" else v < lim)


@dataclass(frozen=True)
class Stop:
    """The decision to stop a run, with what it was compared to."""

    key: str
    fraction: float
    value: float
    mean: float
    sd: float
    incumbent: int = 0

    def reason(self) -> str:
        return (f"stopped early at {percent(self.fraction)} of the budget: {self.key} {self.value:.4g} vs the "
                f"incumbent's {self.mean:.4g} ± {self.sd:.2g}")


def percent(fraction: float) -> str:
    return f"{round(100 * fraction):d} %"


SPAN = 0.05  # the budget the worse points must span: one noisy stretch of fast reports is not enough


def decide(rule: StopRule, curve: Sequence[tuple[float, float]]) -> Stop | None:
    """Stop when the candidate's ``rule.key`` curve is clearly worse than the incumbent's
    band (``StopRule.limit``) at every point of its last ``SPAN`` of the budget, and those
    are at least ``rule.patience`` points (a program that reports every step is judged over
    the same share of its budget as one that reports every 5 %). Pure."""
    if not curve:
        return None
    end = curve[-1][0]
    start = max((i for i, (f, _) in enumerate(curve) if f <= end - SPAN + 1e-9), default=None)
    if start is None:
        return None
    last = list(curve[start:])
    if len(last) < rule.patience or not all(rule.worse(f, v) for f, v in last):
        return None
    f, v = last[-1]
    mean, sd = rule.band(f)  # type: ignore[misc]
    return Stop(rule.key, f, v, mean, sd, rule.incumbent)


def behind(rule: StopRule, curve: Sequence[tuple[float, float]]) -> float | None:
    """How far the curve's last point is behind the band's mean there, relative to the
    mean's size, in the rule's direction (0.07: 7 % worse; never below 0): what a stopped
    run's gap was when it was stopped. None where there is no point, no band there, or a
    mean of 0. Pure."""
    band = rule.band(curve[-1][0]) if curve else None
    if band is None or band[0] == 0:
        return None
    v, mean = curve[-1][1], band[0]
    gap = (v - mean if rule.goal == "minimize" else mean - v) / abs(mean)
    return max(0.0, gap) if math.isfinite(gap) else None


def suffix(stopped_at: float) -> str:
    """What results.tsv appends to a stopped experiment's description."""
    return f"(stopped early at {percent(stopped_at)})"


# -- the curve file beside a run's log ---------------------------------------------------------

def curve_file_for(log_path: str | Path) -> Path:
    """``logs/0007-a1-run.log`` -> ``logs/0007-a1-run.progress.json``."""
    p = Path(log_path)
    return p.with_name(p.name[:-4] + ".progress.json" if p.name.endswith(".log") else p.name + ".progress.json")


def read_curve_file(path: str | Path) -> Curves:
    """The curves stored beside a run's log; {} when there are none (or the file is not ours)."""
    from .safefs import read_regular

    data = read_regular(Path(path), 4 << 20)
    if not data:
        return {}
    try:
        raw = json.loads(data)
    except ValueError:
        return {}
    return curves_from_json(raw)


def curves_from_json(raw: Any) -> Curves:
    """Curves as JSON holds them (a file beside a log, a ledger row): reported by the run, so
    only pairs of finite numbers are kept, of the first ``MAX_KEYS`` names; {} for anything
    else. Pure."""
    if not isinstance(raw, Mapping):
        return {}
    out: Curves = {}
    for key, pts in list(raw.items())[:MAX_KEYS]:
        if isinstance(pts, (list, tuple)):
            curve = [(float(p[0]), float(p[1])) for p in pts
                     if isinstance(p, (list, tuple)) and len(p) == 2 and all(_finite(x) is not None for x in p)]
            if curve:
                out[str(key)] = curve
    return out


def write_curve_file(path: str | Path, curves: Mapping[str, Curve]) -> None:
    from .safefs import write_file

    write_file(Path(path), json.dumps({k: [list(p) for p in c] for k, c in curves.items()}).encode())


def recorded_curves(raw: Any, log_path: str | None) -> Curves:
    """A run's curves: its ledger row's (``raw``, schema 5), else the file beside its log (a
    run recorded before)."""
    return curves_from_json(raw) or (read_curve_file(curve_file_for(log_path)) if log_path else {})


def intermediate_values(curves: Any, log_path: str | None) -> dict[int, float]:
    """A stopped run's curve (``recorded_curves``) as Optuna's intermediate values of a pruned
    trial: step = percent of the budget (the first name the run reported; {} when none was kept)."""
    curve = next(iter(recorded_curves(curves, log_path).values()), [])
    return {round(100 * f): v for f, v in curve}
