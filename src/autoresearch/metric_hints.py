"""What to say when a run's output lacks the target metric: where it printed it some other
way, and the ``[metric]`` setting that reads it. Pure."""

from __future__ import annotations

import difflib
import re
from typing import Mapping

from .survey import NUMBER, inline_pattern

# a line that is a label and a number: `validation bpb = 2.99`, `Val BPB: 2.99`
LABELLED = re.compile(rf"^[^\w\n]*(?P<label>[A-Za-z][\w ./-]{{0,40}}?)(?P<sep>[ \t]*[=:][ \t]*|[ \t]+){NUMBER}[ \t]*$",
                      re.M)  # within one line


def missing_hint(target: str, output: str, printed: Mapping[str, float]) -> str:
    """The first that applies: the target within a line (``_inline_hint``), a printed name
    close to it (``did_you_mean``), a line whose label reads like it (``labelled_like``);
    else ""."""
    return _inline_hint(target, output) or did_you_mean(target, printed) or _like_hint(target, output)


def _inline_hint(target: str, output: str) -> str:
    """``; it printed 'val/loss=0.106' within a line: read it with [metric] pattern = ...``, or ""."""
    found = inline_pattern(target, output)
    return "" if found is None else (f"; it printed {found[0]!r} within a line: read it with "
                                     f"[metric] pattern = '{found[1]}'")


def did_you_mean(target: str, printed: Mapping[str, float]) -> str:
    """What to say when the target is missing but other names were printed: the closest
    one, else the names seen."""
    names = sorted(n for n in printed if n != target)
    if not names:
        return ""
    close = difflib.get_close_matches(target, names, 1, 0.5)
    if close:
        return (f"; it printed {close[0]}: {printed[close[0]]:g}: did you mean [metric] name = \"{close[0]}\" "
                f"(--metric {close[0]})?")
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    return f"; it printed {shown}"


def _like_hint(target: str, output: str) -> str:
    found = labelled_like(target, output)
    return "" if found is None else (f"; it printed {found[0]!r}: print '{target}: <number>' instead, or read it "
                                     f"with [metric] pattern = '{found[1]}'")


def labelled_like(target: str, output: str) -> tuple[str, str] | None:
    """The last line of ``output`` that is a label and a number, the label reading like the
    target (each of the target's words the start of one of its words, or the other way:
    ``validation bpb`` for ``val_bpb``; or spelt nearly the same): (the line, a ``[metric]
    pattern`` that reads its number). None where no line does."""
    want = [w for w in re.split(r"[\W_]+", target.lower()) if w]
    found = None
    for m in LABELLED.finditer(output[-20_000:]):
        label, sep = m.group("label").strip(), m.group("sep")
        words = [w for w in re.split(r"[\W_]+", label.lower()) if w]
        alike = all(any(w.startswith(t) or (len(w) >= 2 and t.startswith(w)) for w in words) for t in want)
        if label != target and (alike or difflib.SequenceMatcher(None, "_".join(words), "_".join(want)).ratio() >= 0.8):
            found = (m.group(0).strip()[:80],
                     re.escape(label).replace("\\ ", " ") + (rf"\s*{re.escape(sep.strip())}\s*" if sep.strip() else r"\s+")
                     + NUMBER)
    return found
