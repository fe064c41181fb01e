"""The training script of a repository whose script is not named ``train*.py`` (pytorch/
examples' ``main.py``, kuangliu's ``main.py`` without a ``__main__`` guard, facebookresearch's
``main_dino.py``): what ``init`` edits and runs. Pure: file texts in, a name and the reason
out.

- **The README's**: the first top-level script a README starts (``python``, ``python3.10
  -u``, ``python -m torch.distributed.launch``, ``torchrun``, ``accelerate launch``,
  ``deepspeed``, options before the script skipped) that trains, or whose local imports
  train (a ``main.py`` that wraps an ``engine.py``).
- **Else the only one**: the one top-level script with a ``__main__`` guard that trains.

A script *trains* where it calls ``.backward(`` or ``.fit(``, or names an optimizer and
calls ``.step(``. Scripts named like data, preparation, evaluation, tests or tools
(``prepare*``, ``eval*``, ``data*``, ``test*``, ``setup.py``, ``download*``, ...) are never
the training script: a README usually runs its data step first, and making it editable
would take it out of the readonly files (a review of the first version found both).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Callable, Iterable, Mapping

NOT_TRAINERS = ("prepare", "preprocess", "eval", "evaluate", "data", "test", "conftest", "setup", "download",
                "convert", "export", "inference", "infer", "predict", "demo", "plot", "visual", "benchmark")
LAUNCH = re.compile(r"(?:\bpython[\d.]*(?:\s+-u)?(?:\s+-m\s+torch\.distributed\.(?:launch|run))?|\btorchrun"
                    r"|\baccelerate\s+launch|\bdeepspeed)\s+(?:--?[\w.-]+(?:[= ][\w.:/-]+)?\s+)*([\w.-]+\.py)\b")


def trains(text: str) -> bool:
    """Whether a script's text trains something: ``.backward(``, ``.fit(``, or an optimizer
    and a ``.step(`` call (two linear scans, not one pattern spanning the file). Pure."""
    return ".backward(" in text or ".fit(" in text or (".step(" in text and re.search(r"\boptim(?:izer)?\b", text) is not None)


def other_trainer(py: Mapping[str, str], readme: str,
                  imports: Callable[[str], Iterable[str]]) -> tuple[str, str] | None:
    """(the script, why) for a repository without a ``train*.py``; None where none is
    clear. ``py``: the Python files by path; ``imports(path)``: the repository's files that
    script imports. Pure."""
    top = {p: t for p, t in py.items() if "/" not in p and not PurePosixPath(p).stem.lower().startswith(NOT_TRAINERS)}
    for m in LAUNCH.finditer(readme):
        p = m.group(1)
        if p in top and (trains(top[p]) or any(trains(py[q]) for q in imports(p) if q in py)):
            return p, f"the README runs `{' '.join(m.group(0).split())}`"
    guarded = [p for p in sorted(top) if "__main__" in top[p] and trains(top[p])]
    return (guarded[0], "the only script at the top that trains") if len(guarded) == 1 else None
