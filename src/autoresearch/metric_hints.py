"""What to say when a run's output lacks the target metric: where it printed it some other
way, and the ``[metric]`` setting that reads it. Pure."""

from __future__ import annotations

import difflib
import re
from typing import Mapping

from .survey import NUMBER, inline_pattern, number_after

# a label and the number after it: `validation bpb = 2.99`, `step 200 val loss 2.4`, within a
# line too (`Test set: Average loss: 0.2312, Accuracy: 935/1000 (94%)`, pytorch/examples' MNIST)
# (the label has no digits: a step counter before it is no part of it)
LABELLED = re.compile(rf"(?<![\w./-])(?P<label>[A-Za-z][A-Za-z_ ./-]{{0,40}}?)(?P<sep>[ \t]*[=:][ \t]*|[ \t]+)"
                      rf"{NUMBER}(?![\w.])", re.M)  # within one line


def missing_hint(target: str, output: str, printed: Mapping[str, float]) -> str:
    """The first that applies: the target within a line (``_inline_hint``), a printed name
    close to it (``did_you_mean``), a line whose label reads like it (``labelled_like``),
    the names printed; else ""."""
    return (_inline_hint(target, output) or _close_name(target, printed) or _like_hint(target, output)
            or _names(target, printed))


def _inline_hint(target: str, output: str) -> str:
    """``; it printed 'val/loss=0.106' within a line: read it with [metric] pattern = ...``, or ""."""
    found = inline_pattern(target, output)
    return "" if found is None else (f"; it printed {found[0]!r} within a line: read it with "
                                     f"[metric] pattern = '{found[1]}'")


def did_you_mean(target: str, printed: Mapping[str, float]) -> str:
    """What to say when the target is missing but other names were printed: the closest
    one, else the names seen."""
    return _close_name(target, printed) or _names(target, printed)


def _close_name(target: str, printed: Mapping[str, float]) -> str:
    close = difflib.get_close_matches(target, sorted(n for n in printed if n != target), 1, 0.5)
    return (f"; it printed {close[0]}: {printed[close[0]]:g}: did you mean [metric] name = \"{close[0]}\" "
            f"(--metric {close[0]})?") if close else ""


def _names(target: str, printed: Mapping[str, float]) -> str:
    names = sorted(n for n in printed if n != target)
    if not names:
        return ""
    return "; it printed " + ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")


def _like_hint(target: str, output: str) -> str:
    found = labelled_like(target, output)
    return "" if found is None else (f"; it printed {found[0]!r}: print '{target}: <number>' instead, or read it "
                                     f"with [metric] pattern = '{found[1]}'")


def labelled_like(target: str, output: str) -> tuple[str, str] | None:
    """The last label and number on a line of ``output`` (the number within the line too),
    the label (its last words; not the tail of a name such as ``train/val/loss``) reading like
    the target: each of the target's words the start of one of them and
    each of them the start of one of the target's (``validation bpb`` for ``val_bpb``; not
    ``accumulation steps`` for ``acc``), or spelt nearly the same. (The line, a ``[metric]
    pattern`` that reads its number), or None."""
    want = [w for w in re.split(r"[^a-z]+", target.lower()) if w]
    found = None
    for m in LABELLED.finditer(output[-20_000:]):
        label, sep = m.group("label").rstrip(), m.group("sep")
        words = [(w.start(), w.group().lower()) for w in re.finditer(r"[A-Za-z]+", label)]
        for k in range(len(words) - 1, -1, -1):  # the fewest last words that read like it
            if k > 0 and not label[words[k][0] - 1].isspace():
                continue  # a name's tail (`loss` of `train/val/loss`) is not a label of its own
            tail = [w for _, w in words[k:]]
            if _alike(want, tail) or (k == 0 and difflib.SequenceMatcher(None, "_".join(tail), "_".join(want)).ratio()
                                      >= 0.8 and label != target):
                found = (m.group(0).strip()[:80], number_after(re.escape(label[words[k][0]:]).replace("\\ ", " "), sep))
                break
    return found


def _alike(want: list[str], words: list[str]) -> bool:
    """Each word of either list the start of one of the other's (of two letters at least). Pure."""
    def starts(a: str, b: str) -> bool:
        return len(min(a, b, key=len)) >= 2 and (a.startswith(b) or b.startswith(a))

    return all(any(starts(t, w) for w in words) for t in want) and all(any(starts(w, t) for t in want) for w in words)


def missing_words(source: str, target: str, pattern: str | None) -> str:
    """What a run that reported no ``target`` was expected to print. Pure."""
    expected = f"a line matching [metric] pattern {pattern!r}, a" if pattern else "a"
    return (f"{source} reported no {target} (expected {expected} '{target}: <number>' line, a printed JSON object "
            f"with a \"{target}\" key, or a JSON result at AUTORESEARCH_RESULT_FILE)")

