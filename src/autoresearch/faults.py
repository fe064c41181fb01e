"""Crash injection for tests: ``AUTORESEARCH_CRASH_AT=POINT`` or ``POINT:EXPERIMENT_ID``
makes the harness ``kill -9`` itself at that point, so every window between two durable
steps can be hit deterministically. Unset (always, outside tests) it costs one dict lookup.

Points, in the order an experiment passes them: ``after_pending``, ``mid_commit``,
``after_commit``, ``after_running``, ``mid_run``, ``after_run``, ``after_terminal``,
``mid_advance``, ``after_advance``.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Callable

ENV = "AUTORESEARCH_CRASH_AT"
POINTS = (
    "after_pending", "mid_commit", "after_commit", "after_running", "mid_run",
    "after_run", "after_terminal", "mid_advance", "after_advance",
)
_SPEC = os.environ.get(ENV, "")


def armed(point: str, experiment_id: int) -> bool:
    return bool(_SPEC) and _SPEC in (point, f"{point}:{experiment_id}")


def crash_point(point: str, experiment_id: int, leave: Callable[[], Path] | None = None) -> None:
    """Die here (SIGKILL, no cleanup) when armed; ``leave`` is a lock file to leave behind,
    as git would when killed in the middle of an update."""
    if armed(point, experiment_id):
        if leave is not None:
            path = leave()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("stale lock left by an injected crash\n")
        os.kill(os.getpid(), signal.SIGKILL)
