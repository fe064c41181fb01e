"""Whether a proposal can be run, decided before any run is spent. Pure: text in, a
candidate or a refusal out. The engine checks every proposal here before committing it;
the LLM proposer checks its model's replies with the same function while the conversation
is open, so the model hears what was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..edits import apply_edits, code_hash, unified_diff
from ..errors import EditError
from ..integrity import protected_changes
from ..records import FileEdit


@dataclass(frozen=True)
class Candidate:
    changed: Mapping[str, str]   # the editable files the edits change, new text
    files: Mapping[str, str]     # every editable file after the edits
    diff: str
    code_hash: str


class Refused(Exception):
    """A proposal that cannot be run; ``kind`` says which check refused it."""

    def __init__(self, kind: str, reason: str, **extra: Any):
        super().__init__(reason)
        self.kind, self.reason, self.extra = kind, reason, extra


def syntax_problem(path: str, text: str) -> str | None:
    """Why a Python file would not compile, or None (non-Python files are not checked)."""
    if not path.endswith(".py"):
        return None
    try:
        compile(text, path, "exec", dont_inherit=True)
    except SyntaxError as e:
        return f"{path} does not parse: line {e.lineno}: {e.msg}"
    except ValueError as e:  # null bytes
        return f"{path} does not parse: {e}"
    return None


@dataclass(frozen=True)
class Rules:
    """What the arena allows: the editable files and the names the harness owns."""

    editable: Sequence[str]
    protected: Sequence[str] = ()
    tried: Mapping[str, int] = field(default_factory=dict)  # code hash -> experiment that tested it


def check_candidate(old: Mapping[str, str | None], edits: Sequence[FileEdit], rules: Rules, *,
                    exp_id: int | None = None) -> Candidate:
    """Apply ``edits`` to ``old`` (the parent's editable files) and check the result: the
    edits apply, change something, are not code tried before, parse, and leave the protected
    names alone. Raises ``Refused``."""
    try:
        new = apply_edits(old, edits, list(rules.editable))
    except EditError as e:
        raise Refused("apply", str(e)) from None
    diff = unified_diff(old, new)
    files = {**{k: v for k, v in old.items() if v is not None}, **new}
    chash = code_hash(files)
    if not diff:
        raise Refused("no-change", "the edits change nothing", code_hash=chash)
    twin = rules.tried.get(chash)
    if twin is not None and twin != exp_id:
        raise Refused("duplicate", f"duplicate: the same code was already tried as experiment {twin}", diff=diff)
    for path, text in new.items():
        problem = syntax_problem(path, text)
        if problem:
            raise Refused("syntax", problem, diff=diff, code_hash=chash)
    touched = protected_changes(old, new, rules.protected)
    if touched:
        raise Refused("protected", f"changes protected constant(s) {', '.join(touched)}: the harness owns them "
                      "([arena] protected)", diff=diff, code_hash=chash)
    return Candidate(changed=new, files=files, diff=diff, code_hash=chash)
