"""Tampering: what a run changed that the harness reads or trusts, noticed right after
each run, undone, and charged to the runs that were live (DESIGN.md, order of durable
steps, case 3).

Watched: every file git reads for configuration or attributes (the repository's config
and what it includes, the user's and the system's, ``info/``, hooks, alternates, the
checkout's ``.gitattributes``), every ref, the ledger's rows of this campaign, the
harness's own files (``campaign.json``, ``records.jsonl``, ``results.tsv``), and the
checkout's ``[arena] data`` (``datafiles.py``; reported, not put back: no copy is kept).
A change found after a run, or just before the harness moves a ref, makes every
experiment whose run was live since the last look ``invalid`` ("tampering: ..."); the change is put back:
files as they were, our refs (the campaign's branch and archive refs, replace refs) where
they pointed, ledger rows as the harness wrote them. A moved ref that is not the
harness's (the user's branch, a tag, HEAD) is reported with the command that puts it
back, not moved: the harness never writes the user's refs.

With the sandbox, runs cannot write any of this (the repository is read-only to them, the
ledger invisible): a change then came from another process, and is reported, not undone.
"""

from __future__ import annotations

import os
from typing import Callable

from ..datafiles import DataFiles
from ..store.gitwatch import Change, GitWatch
from ..store.ledger_watch import LedgerWatch
from ..store.workspace import attribute_files
from .journal import Journal

OURS = ("refs/replace/",)  # besides the campaign's namespace: refs the harness puts back


class Guard:
    def __init__(self, journal: Journal, *, sandboxed: bool, note: Callable[[str], None],
                 data: DataFiles | None = None):
        ws, tag = journal.ws, journal.tag
        self.journal, self.sandboxed, self.note = journal, sandboxed, note
        self.ours = (f"refs/heads/{journal.campaign.branch}", f"refs/autoresearch/{tag}/", *OURS)

        def not_ours(ref: str) -> bool:  # another campaign's refs: its own harness watches them
            return ref.startswith(("refs/heads/autoresearch/", "refs/autoresearch/")) and not self.is_ours(ref)

        self.git = GitWatch(ws.git_dir, ws.root, attributes=attribute_files(ws), home=os.environ.get("HOME"),
                            xdg=os.environ.get("XDG_CONFIG_HOME"), ignore_ref=not_ours,
                            extra=[journal.out_dir / "campaign.json"])
        self.ledger = LedgerWatch(journal.ledger, journal.campaign.id)
        if self.ledger.planted:
            note("the ledger held objects another process added while no campaign ran: " + "; ".join(self.ledger.planted))
        self.data = data                # [arena] data: the checkout's copies, fingerprinted at the start
        self.live: set[int] = set()     # experiments with a run in progress
        self.charged: dict[int, str] = {}  # experiment -> why its run is invalid
        self._busy = False
        ws.watchers.append(self)

    def is_ours(self, ref: str) -> bool:
        """The campaign's branch, its archive namespace (and the name of that folder itself:
        a link or a file planted there), replace refs."""
        return ref.startswith(self.ours) or ref in (p.rstrip("/") for p in self.ours)

    # -- runs ---------------------------------------------------------------------------------
    def started(self, exp_id: int) -> None:
        self.live.add(exp_id)

    def finished(self, exp_id: int) -> str | None:
        """The run of ``exp_id`` ended: look. Why its run is invalid, or None."""
        self.check()
        self.live.discard(exp_id)
        return self.charged.pop(exp_id, None)

    # -- the workspace's hooks around our own ref writes ------------------------------------------
    def before_ref_write(self, ref: str) -> None:
        """A full look only when the ref is not where we left it (a run moved it since the
        last look): the look after every run covers the rest."""
        if not self._busy and not self.git.ref_as_expected(ref):
            self.check()

    def after_ref_write(self, ref: str) -> None:
        self.git.expect_ref(ref)

    # -- looking ------------------------------------------------------------------------------
    def check(self) -> list[str]:
        """Compare, put back, charge the live runs; what was found."""
        if self._busy:
            return []
        self._busy = True
        try:
            found = self.ledger.check() + self._own_files() + (self.data.check() if self.data is not None else [])
            for _ in range(3):  # what putting back reveals (a folder's link replaced: its content) is looked at again
                changes = self.git.scan()
                if not changes:
                    break
                found += self._undo(changes)
                if self.sandboxed:
                    break
            if not found:
                return []
            self.git.accept()
        finally:
            self._busy = False
        if self.sandboxed:
            self.note("changed while runs were live, by another process (the sandbox keeps runs out of these): "
                      + "; ".join(found[:20]))
            return found
        reason = "tampering: " + "; ".join(found[:4]) + (f" (+{len(found) - 4} more)" if len(found) > 4 else "")
        for exp_id in self.live:
            self.charged.setdefault(exp_id, reason)
        live = ", ".join(f"#{e}" for e in sorted(self.live)) or "none"
        self.note(f"TAMPERING while runs were live (experiments {live}; each is recorded invalid): "
                  + "; ".join(found[:20]) + ("" if len(found) <= 20 else f" (+{len(found) - 20} more)"))
        return found

    def _undo(self, changes: list[Change]) -> list[str]:
        """Put back what is ours to put back (files first: git reads them when moving refs);
        describe every change."""
        out: list[str] = []
        refs: dict[str, str | None] = {}
        for c in sorted(changes, key=lambda c: c.kind != "file"):
            text = c.describe()
            if self.sandboxed:
                out.append(f"{text} (left as is)")
            elif c.kind == "file":
                problem = self.git.restore(c)
                out.append(f"{text}: {'put back' if problem is None else problem}")
            elif self.is_ours(c.name):
                refs[c.name] = c.before if isinstance(c.before, str) and c.before else None
                out.append(f"{text}: put back")
            else:
                redo = f"git update-ref {c.name} {c.after}" if c.after else f"git update-ref -d {c.name}"
                undo = f"git update-ref {c.name} {c.before}" if c.before else f"git update-ref -d {c.name}"
                out.append(f"{text}: not the harness's ref, left as is (to put it back: {undo}; it was: {redo})")
        if refs:
            out += self.journal.restore_refs(refs)
        return out

    def _own_files(self) -> list[str]:
        """The harness's records: rewritten from the ledger when a run changed them."""
        out = []
        j = self.journal
        if not j.recovery.intact():
            out.append(f"file {j.recovery.path} changed: rewritten from the ledger")
            j.recovery.rewrite(j.ledger, j.campaign)
        if not j.tsv.intact():
            out.append("results.tsv changed: rewritten from the ledger")
            j.export(full=True)
        return out

    def close(self) -> None:
        ws = self.journal.ws
        if self in ws.watchers:
            ws.watchers.remove(self)
        self.journal.ledger.watch = None
