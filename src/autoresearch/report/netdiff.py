"""The net change of a campaign: ``git diff`` from its base commit to the best kept commit,
limited to the editable files (what a pull request would carry). Read-only git."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

MAX_LINES = 400


def net_diff(arena: Path, base: str, best: str | None, editable: Sequence[str]) -> dict[str, Any]:
    """``{"from", "to", "diff", "stat", "truncated", "note"}``: ``diff`` is empty and ``note``
    says why when nothing was kept or git cannot tell."""
    from ..store.gitobjects import git

    out: dict[str, Any] = {"from": base, "to": best, "diff": "", "stat": "", "truncated": 0, "note": ""}
    if not best or best == base:
        out["note"] = "no change was kept: the best is the baseline."
        return out
    paths = ["--", *editable] if editable else []
    proc = git(["diff", "--no-color", "--no-ext-diff", "--no-textconv", f"{base}..{best}", *paths], arena, check=False)
    if proc.returncode != 0:
        out["note"] = f"git diff {base[:7]}..{best[:7]} failed: {proc.stderr.decode(errors='replace').strip()[:300]}"
        return out
    stat = git(["diff", "--no-color", "--stat", f"{base}..{best}", *paths], arena, check=False)
    out["stat"] = stat.stdout.decode(errors="replace").rstrip() if stat.returncode == 0 else ""
    lines = proc.stdout.decode(errors="replace").splitlines()
    if len(lines) > MAX_LINES:
        out["truncated"] = len(lines) - MAX_LINES
        lines = lines[:MAX_LINES]
    out["diff"] = "\n".join(lines)
    if not lines:
        out["note"] = "the kept changes cancel out: the editable files are as at the base commit."
    return out


def fence(text: str) -> str:
    """A markdown code fence longer than any run of backticks in ``text``. Pure."""
    longest, run = 0, 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)
