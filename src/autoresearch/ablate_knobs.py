"""Leave-one-out for knobs experiments. A knobs proposal is a set of values, not a text
patch: when one knob was tuned again and again (``LR 0.01 → 0.001``, later ``0.001 →
0.004``), the first change's diff no longer reverts on the final incumbent. So the variant
without a knobs experiment K sets back, on the final incumbent's code, each knob K changed
to the value it had before K (K's parent), one knob at a time, each edit rendered the way
the knobs proposer renders its own (``knob_code.render_edits``).

A knob that a later kept change set again holds none of K's values on the final incumbent:
removing K changes nothing there, so it is left as it is and named. When that is true of
every knob K changed, K is *superseded*: there is nothing of it left to remove, and nothing
is run for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from .edits import apply_edits
from .errors import EditError
from .proposers.knob_code import Knob, discover, format_value, render_edits, written_value
from .records import Experiment, FileEdit
from .status import knob_values
from .store.workspace import Workspace


def is_knobs_experiment(e: Experiment) -> bool:
    """Whether the experiment came from knobs values (the knobs proposer, or an LLM's knobs
    mode): its proposal's meta holds ``knobs.values`` / ``knobs.params``."""
    return knob_values(e.meta) is not None


@dataclass
class KnobRevert:
    files: dict[str, str] | None                                      # the variant's changed files; None: no variant
    reverted: dict[str, tuple[str, str]] = field(default_factory=dict)  # knob -> (its text now, the text written back)
    superseded: dict[str, int | None] = field(default_factory=dict)   # knob -> the later kept change that set it again
    problem: str = ""                                                 # why there is no variant (files None)

    @property
    def summary(self) -> str:
        parts = [f"{n} {now} → {old}" for n, (now, old) in self.reverted.items()]
        kept = [f"{n} (set again by #{j})" if j is not None else f"{n} (set again later)"
                for n, j in self.superseded.items()]
        return ", ".join(parts) + (f"; left as they are: {', '.join(kept)}" if kept and parts else "")


class KnobHistory:
    """The knobs of the editable files at each commit of a chain (read once per commit)."""

    def __init__(self, ws: Workspace, editable: Sequence[str]):
        self.ws, self.editable = ws, tuple(editable)
        self._cache: dict[str, dict[str, Knob]] = {}

    def files(self, commit: str) -> dict[str, str]:
        return {p: t for p, t in self.ws.read_files(commit, self.editable).items() if t is not None}

    def knobs(self, commit: str) -> dict[str, Knob]:
        if commit not in self._cache:
            self._cache[commit] = knobs_of(self.files(commit))
        return self._cache[commit]

    def parent(self, e: Experiment) -> str | None:
        if e.parent:
            return e.parent
        head = self.ws.objects.read(e.commit)[1].split(b"\nparent ", 1) if e.commit else []
        return head[1][:2 * self.ws.objects.hash_len].decode() if len(head) > 1 else None

    def changes(self, e: Experiment) -> dict[str, tuple[Knob, Knob]]:
        """The knobs ``e`` changed: name -> (as its parent had it, as ``e`` wrote it)."""
        parent = self.parent(e)
        if parent is None or e.commit is None:
            return {}
        before, after = self.knobs(parent), self.knobs(e.commit)
        return {n: (before[n], k) for n, k in after.items() if n in before and before[n].value != k.value}


def knobs_of(files: Mapping[str, str | None]) -> dict[str, Knob]:
    """The knobs of the files, by name (none where the survey cannot read the code)."""
    try:
        return {k.name: k for k in discover({p: t for p, t in files.items() if t is not None})}
    except Exception:  # noqa: BLE001 - code the survey cannot read has no knobs to set back
        return {}


def revert_knobs(history: KnobHistory, tip: str, e: Experiment, later: Sequence[Experiment]) -> KnobRevert:
    """The final incumbent ``tip`` without knobs experiment ``e``: each knob ``e`` changed and
    that still holds ``e``'s value is set back to its parent's value, one at a time; the
    others are left (``later``: the kept experiments after ``e`` on the branch)."""
    changes = history.changes(e)
    if not changes:
        return KnobRevert(None, problem="its knob changes are not found in its commit")
    files: dict[str, str | None] = dict(history.files(tip))
    out = KnobRevert(None)
    changed: dict[str, str] = {}
    for name, (before, mine) in changes.items():
        now = knobs_of(files).get(name)
        if now is None:
            return KnobRevert(None, problem=f"the knob {name} is no longer in the final incumbent's code")
        if now.value != mine.value:
            out.superseded[name] = _last_setter(history, name, later)
            continue
        try:
            new = apply_edits(files, [_edit_back(now, before)], history.editable)
        except EditError as err:
            return KnobRevert(None, problem=f"the knob {name} cannot be set back: {err}")
        files.update(new)
        changed.update(new)
        out.reverted[name] = (now.text, _text(now, before))
    if not out.reverted:
        by = sorted({f"#{j}" for j in out.superseded.values() if j is not None})
        out.problem = (f"superseded{' by ' + ', '.join(by) if by else ''}: {', '.join(out.superseded)} set again "
                       "later, none of its values is left")
        return out
    out.files = changed
    return out


def _edit_back(now: Knob, before: Knob) -> FileEdit:
    """The edit that writes ``before``'s value into ``now``'s line, rendered as the knobs
    proposer renders its values; where that rendering would round the value (the user wrote
    more digits than the proposer writes), the parent's own text is written instead."""
    edit = render_edits([now], {now.name: before.value})[0]
    if written_value(now, before.value) == before.value:
        return edit
    line = now.line[: now.col] + before.text + now.line[now.end_col:]
    return FileEdit(now.path, now.prefix + now.line + now.suffix, now.prefix + line + now.suffix)


def _text(now: Knob, before: Knob) -> str:
    return format_value(now, before.value) if written_value(now, before.value) == before.value else before.text


def _last_setter(history: KnobHistory, name: str, later: Sequence[Experiment]) -> int | None:
    found = None
    for x in later:
        if name in history.changes(x):
            found = x.id
    return found
