"""Does the ledger know the state git is in? (DESIGN.md, order of durable steps, case 2.)

Crash consistency (a keep whose branch update was lost, a committed non-keep without its
archive ref) is repaired on every start by ``journal.reconcile``. What this module finds
is different: git holds something the ledger never recorded, because the ledger lost its
last transactions (restored from a backup, a WAL file lost) or someone moved our refs.
Judging against such a state would be judging against an unknown incumbent, so ``run``
refuses and points at ``autoresearch doctor``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..records import Experiment, Status
from ..store.ledger import Campaign
from ..store.workspace import Workspace


@dataclass(frozen=True)
class Disagreement:
    kind: str     # "branch" | "archive"
    ref: str
    sha: str
    detail: str


def disagreements(ws: Workspace, campaign: Campaign, experiments: list[Experiment]) -> list[Disagreement]:
    """Refs of the campaign that point where the ledger says nothing should be."""
    out = []
    branch = f"refs/heads/{campaign.branch}"
    keeps = {e.commit for e in experiments if e.status is Status.KEEP and e.commit} | {campaign.base_commit}
    tip = ws.resolve(branch)
    if tip is not None and tip not in keeps and not any(ws.is_ancestor(tip, k) for k in keeps):
        last = max((e for e in experiments if e.status is Status.KEEP and e.commit), key=lambda e: e.id, default=None)
        known = f"#{last.id} {last.commit[:7]}" if last is not None and last.commit else f"the base {campaign.base_commit[:7]}"
        out.append(Disagreement("branch", branch, tip, f"branch {campaign.branch} is at {tip[:7]}, which the ledger "
                                f"never kept (its last keep is {known})"))
    by_id = {e.id: e for e in experiments}
    prefix = f"refs/autoresearch/{campaign.tag}/discarded/"
    for ref, sha in sorted(ws.refs.list(prefix).items()):
        tail = ref[len(prefix):]
        exp = by_id.get(int(tail)) if tail.isdigit() else None
        if exp is None or exp.commit != sha or exp.status in (Status.KEEP, Status.PENDING):
            said = "no such experiment" if exp is None else f"experiment {exp.id} is {exp.status.value} at {(exp.commit or 'no commit')[:7]}"
            out.append(Disagreement("archive", ref, sha, f"{ref} points at {sha[:7]}, but the ledger has {said}"))
    return out


def explain(ws: Workspace, campaign: Campaign, found: list[Disagreement]) -> str:
    lines = "\n  ".join(d.detail for d in found)
    return (f"the ledger does not know the state of git for campaign {campaign.tag!r}:\n  {lines}\n"
            "The ledger probably lost its last transactions (or these refs were moved by hand). Nothing was run. "
            f"`autoresearch doctor {ws.arena}` explains; `autoresearch doctor {ws.arena} --repair` rebuilds what the "
            "recovery records hold and keeps every unknown commit reachable under refs/autoresearch/"
            f"{campaign.tag}/unrecorded/.")
