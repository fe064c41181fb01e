"""A knobs proposal moved onto a new incumbent.

A knobs proposal is a set of values, not a text patch. When the incumbent changes between
the proposal and its run (another slot kept something, or a winner must be re-measured on
the incumbent that overtook it), the knobs it moves are written again, with their proposed
values, into the new incumbent's code; every other knob keeps the new incumbent's value.
The proposal's record (params, values, signature, parent) is rewritten to what will run,
so the study rebuilt from the ledger sees the point that was measured.

``rebase_knobs`` is pure: the proposal, the new incumbent's files and metric in; a new
proposal out, or the reason it cannot move (the string).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..errors import ConfigError
from ..records import Proposal
from .knob_code import code_signature, describe, discover, module_constants, render_edits
from .knob_constraints import broken, parse_constraints
from .knob_space import Space

__all__ = ["is_knobs_proposal", "rebase_knobs"]


def is_knobs_proposal(proposal: Proposal) -> bool:
    stored = proposal.meta.get("knobs") if isinstance(proposal.meta, Mapping) else None
    return isinstance(stored, Mapping) and all(
        isinstance(stored.get(k), Mapping) for k in ("params", "values", "spaces", "parent"))


def moved_knobs(stored: Mapping[str, Any]) -> list[str]:
    """The knobs a proposal changes: those whose point differs from its parent's."""
    parent = stored["parent"].get("params") or {}
    return sorted(nm for nm, p in stored["params"].items() if nm not in parent or parent[nm] != p)


def rebase_knobs(proposal: Proposal, files: Mapping[str, str], metric: float | None, *,
                 constraints: Sequence[str] = (), readonly: Mapping[str, str] | None = None) -> Proposal | str:
    """``proposal`` written again on ``files`` (the new incumbent's editable files)."""
    stored = proposal.meta["knobs"]
    moved = moved_knobs(stored)
    by_name = {k.name: k for k in discover(files)}
    gone = [nm for nm in moved if nm not in by_name]
    if gone:
        return f"the knob(s) it moves are no longer in the code: {', '.join(gone)}"
    changes = {nm: stored["values"][nm] for nm in moved if by_name[nm].value != stored["values"][nm]}
    if not changes:
        return "the new incumbent already holds every value it proposes"
    if constraints:
        env = {**module_constants({**(readonly or {}), **files}), **{k.name: k.value for k in by_name.values()}}
        try:
            bad = broken(parse_constraints(tuple(constraints), env), {**env, **changes})
        except ConfigError as e:
            return f"its constraints cannot be checked on the new incumbent: {e}"
        if bad is not None:
            return f"on the new incumbent it breaks the constraint {bad.text!r}"
    spaces = {nm: Space.from_dict(d) for nm, d in stored["spaces"].items()}
    outside = sorted(nm for nm, sp in spaces.items() if nm not in changes
                     and (nm not in by_name or sp.to_param(by_name[nm].value) is None))
    if outside:  # the study's point would not be the code that runs
        return f"on the new incumbent, knob(s) {', '.join(outside)} lie outside the search space (or are gone)"
    current_params: dict[str, Any] = {}
    params: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for nm, space in sorted(spaces.items()):
        k = by_name.get(nm)
        current_params[nm] = space.to_param(k.value) if k is not None else stored["parent"]["params"].get(nm)
        params[nm] = stored["params"][nm] if nm in changes else current_params[nm]
        values[nm] = stored["values"][nm] if nm in changes else k.value  # type: ignore[union-attr]
    knobs = list(by_name.values())
    meta = dict(proposal.meta)
    meta["knobs"] = {**stored, "params": params, "values": values, "signature": code_signature(files, knobs),
                     "parent": {"params": current_params, "metric": metric},
                     "rebased": int(stored.get("rebased", 0)) + 1}
    return Proposal(description=describe(knobs, changes), edits=render_edits(knobs, changes),
                    proposer=proposal.proposer, meta=meta, tokens=proposal.tokens, cost=proposal.cost)
