"""Axis ticks and small SVG pieces shared by the report's charts: pure functions, no I/O."""

from __future__ import annotations

import html
import math
from typing import Any, Callable, Sequence


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values (1, 2, 2.5 or 5 × 10^k apart, the spacing whose count
    is nearest ``n``) inside [lo, hi]. Pure."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        return [lo]
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10)), key=lambda st: abs((hi - lo) / st - n))
    first = math.ceil(lo / step - 1e-9)
    ticks = []
    k = first
    while k * step <= hi + step * 1e-9:
        ticks.append(round(k * step, 12) + 0.0)  # + 0.0: no "-0"
        k += 1
    return ticks


def log_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """Ticks for a log axis over [lo, hi] (both > 0): powers of ten, with 2 and 5 between
    them when the range is narrow, or a linear ``nice_ticks`` inside one decade. Pure."""
    if lo <= 0 or hi <= 0 or not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi < lo:
        lo, hi = hi, lo
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    for mults in ((1,), (1, 2, 5), (1, 2, 3, 5)):
        ticks = [m * 10.0 ** k for k in range(a, b + 1) for m in mults if lo * (1 - 1e-9) <= m * 10.0 ** k <= hi * (1 + 1e-9)]
        if len(ticks) >= 3 or mults == (1, 2, 3, 5):
            break
    if len(ticks) >= 2:
        return [float(f"{t:.6g}") for t in ticks]
    return nice_ticks(lo, hi, n)


def tick_label(x: float) -> str:
    """A short label: 0.001, 2.5, 1e+04, 1,500 (no float noise). Pure."""
    if x == 0:
        return "0"
    if abs(x) >= 1e5 or abs(x) < 1e-3:
        return f"{x:.2g}"
    if float(x).is_integer():
        return f"{int(x)}"
    return f"{x:.4g}"


class Scale:
    """A linear or log map from data to pixels (``lo`` maps to ``p0``, ``hi`` to ``p1``)."""

    def __init__(self, lo: float, hi: float, p0: float, p1: float, *, log: bool = False):
        if log and lo > 0 and hi > 0:
            lo, hi = math.log10(lo), math.log10(hi)
        else:
            log = False
        if hi == lo:
            pad = 0.5 * (abs(hi) or 1)
            lo, hi = lo - pad, hi + pad
        self.lo, self.hi, self.p0, self.p1, self.log = lo, hi, p0, p1, log

    def __call__(self, x: float) -> float:
        v = math.log10(x) if self.log else x
        return self.p0 + (v - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)

    def ticks(self, n: int = 5) -> list[float]:
        if self.log:
            return log_ticks(10 ** self.lo, 10 ** self.hi, n)
        return nice_ticks(self.lo, self.hi, n)


def axis_svg(scale: Scale, *, vertical: bool, at: float, length: tuple[float, float], n: int = 5,
             label: Callable[[float], str] = tick_label, grid: bool = True, ticks: Sequence[float] | None = None) -> str:
    """An axis line with ticks, labels and faint grid lines (``length``: the other axis's
    pixel span, for the grid). ``at``: the pixel position of the axis line."""
    parts = []
    a, b = length
    if vertical:
        parts.append(f'<line class="axis" x1="{at}" y1="{min(scale.p0, scale.p1)}" x2="{at}" y2="{max(scale.p0, scale.p1)}" stroke="#bbb"/>')
    else:
        parts.append(f'<line class="axis" x1="{min(scale.p0, scale.p1)}" y1="{at}" x2="{max(scale.p0, scale.p1)}" y2="{at}" stroke="#bbb"/>')
    for t in scale.ticks(n) if ticks is None else ticks:
        p = scale(t)
        if vertical:
            if grid:
                parts.append(f'<line x1="{a}" y1="{p:.1f}" x2="{b}" y2="{p:.1f}" stroke="#eee"/>')
            parts.append(f'<line x1="{at - 4}" y1="{p:.1f}" x2="{at}" y2="{p:.1f}" stroke="#999"/>'
                         f'<text class="tick" x="{at - 6}" y="{p + 4:.1f}" text-anchor="end">{_e(label(t))}</text>')
        else:
            if grid:
                parts.append(f'<line x1="{p:.1f}" y1="{a}" x2="{p:.1f}" y2="{b}" stroke="#eee"/>')
            parts.append(f'<line x1="{p:.1f}" y1="{at}" x2="{p:.1f}" y2="{at + 4}" stroke="#999"/>'
                         f'<text class="tick" x="{p:.1f}" y="{at + 15}" text-anchor="middle">{_e(label(t))}</text>')
    return "".join(parts)


def span(values: Sequence[float]) -> tuple[float, float]:
    """The data range with 4 % padding each side (a single value gets a unit-ish range). Pure."""
    lo, hi = min(values), max(values)
    if hi == lo:
        pad = 0.5 * (abs(hi) or 1)
        return lo - pad, hi + pad
    pad = 0.04 * (hi - lo)
    return lo - pad, hi + pad


def pow2_ticks(values: Sequence[float], n: int = 5) -> list[float] | None:
    """Powers of two spanning ``values`` when they all are powers of two (a ``pow2`` knob:
    16, 64, 256 rather than 20, 50, 200), thinned to about ``n``; else None. Pure."""
    if not values or not all(isinstance(v, int) and v > 0 and not v & (v - 1) for v in values):
        return None
    lo, hi = min(values).bit_length() - 1, max(values).bit_length() - 1
    step = max(1, math.ceil((hi - lo + 1) / n))
    return [float(2 ** k) for k in range(lo, hi + 1, step)]
