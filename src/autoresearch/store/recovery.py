"""What survives a lost or damaged ledger, and the results.tsv view.

Next to the ledger, each campaign's directory (``.autoresearch/TAG/``) holds:

- ``campaign.json``: the campaign's row (tag, branch, base commit, metric, config, ...),
  rewritten atomically when the campaign starts, continues or restarts;
- ``records.jsonl``: one line per terminal experiment, appended right after the ledger
  records its terminal status (and again when it changes: a re-measured incumbent): the
  experiment's row and its runs' rows exactly as the ledger holds them. The last line of
  an id wins; a torn last line (a harness killed mid-append) is ignored.

``autoresearch doctor --repair`` rebuilds a ledger from these; git holds the commits they
name. Appending a line costs ~20 µs, nothing next to a run.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..records import Experiment
from .. import safefs
from .ledger import Campaign, Ledger, tsv_row, write_atomic

RECORDS = "records.jsonl"
CAMPAIGN = "campaign.json"
VERSION = 1


def _rows(db: sqlite3.Connection, sql: str, args: tuple) -> list[dict[str, Any]]:
    cur = db.execute(sql, args)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def experiment_record(ledger: Ledger, campaign: Campaign, exp_id: int) -> dict[str, Any]:
    """An experiment's row and its runs' rows, as the ledger holds them."""
    exp = _rows(ledger.db, "SELECT * FROM experiments WHERE campaign_id=? AND id=?", (campaign.id, exp_id))
    runs = _rows(ledger.db, "SELECT * FROM runs WHERE campaign_id=? AND experiment_id=? ORDER BY id", (campaign.id, exp_id))
    return {"v": VERSION, "experiment": exp[0] if exp else None, "runs": runs}


def campaign_record(ledger: Ledger, campaign: Campaign) -> dict[str, Any]:
    rows = _rows(ledger.db, "SELECT * FROM campaigns WHERE id=?", (campaign.id,))
    return {"v": VERSION, "campaign": rows[0]}


class RecoveryLog:
    """``records.jsonl`` of one campaign."""

    def __init__(self, path: Path):
        self.path = path
        self.problems = 0  # lines the last read could not parse
        self._sig = _sig(path)  # the file as we last left it

    def append(self, record: Mapping[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(safefs.open_new(self.path, append=True), "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True, allow_nan=False, default=str) + "\n")
        self._sig = _sig(self.path)

    def intact(self) -> bool:
        """Whether the file is as we last left it (a change of any kind changes its ctime)."""
        return _sig(self.path) == self._sig

    def rewrite(self, ledger: Ledger, campaign: Campaign) -> None:
        """The file rebuilt from the ledger: a record per terminal experiment."""
        ids = [e.id for e in ledger.experiments(campaign) if e.status.terminal]
        text = "".join(json.dumps(experiment_record(ledger, campaign, i), sort_keys=True, allow_nan=False, default=str)
                       + "\n" for i in ids)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        safefs.clear(self.path)
        write_atomic(self.path, text)
        self._sig = _sig(self.path)

    def read(self) -> dict[int, dict[str, Any]]:
        """Experiment id -> its last record. Lines that do not parse are skipped (a torn last
        line); ``problems`` says how many."""
        out: dict[int, dict[str, Any]] = {}
        self.problems = 0
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return out
        for line in lines:
            try:
                record = json.loads(line)
                exp = record["experiment"]
                out[int(exp["id"])] = record
            except (ValueError, KeyError, TypeError):
                self.problems += 1
        return out


def _sig(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def write_campaign(state_dir: Path, record: Mapping[str, Any]) -> None:
    folder = state_dir / record["campaign"]["tag"]
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / CAMPAIGN, json.dumps(record, sort_keys=True, indent=1, default=str) + "\n")


def read_campaigns(state_dir: Path) -> list[dict[str, Any]]:
    """Every campaign row found in ``state_dir/*/campaign.json``, oldest first."""
    out = []
    for path in sorted(state_dir.glob(f"*/{CAMPAIGN}")):
        try:
            row = json.loads(path.read_text(encoding="utf-8"))["campaign"]
            if isinstance(row, dict) and "tag" in row and "id" in row:
                out.append(row)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(out, key=lambda r: r["id"])


class TsvExport:
    """``results.tsv`` of a campaign (its own and the arena's root copy), rewritten whole
    (atomically) the first time, at the end, and when a row already written changed or a
    new row would not come last; otherwise new rows are appended."""

    def __init__(self, metric: str, paths: Iterable[Path]):
        self.metric, self.paths = metric, list(paths)
        self._rows: dict[int, str] = {}
        self._rendered: dict[int, Experiment] = {}
        self._written: list[str] | None = None
        self._sigs: dict[Path, tuple[int, int, int, int] | None] = {}  # the files as we last left them

    def write(self, experiments: list[Experiment], full: bool = False) -> None:
        rows = [r for r in (self._row(e) for e in experiments) if r is not None]
        written = self._written
        changed = any(_sig(p) != sig for p, sig in self._sigs.items())  # by someone else (another campaign's copy)
        if full or changed or written is None or rows[:len(written)] != written:
            text = "\n".join([f"commit\t{self.metric}\tmemory_gb\tstatus\tdescription", *rows]) + "\n"
            for path in self.paths:
                path.parent.mkdir(parents=True, exist_ok=True)
                if path.is_dir() and not path.is_symlink():
                    safefs.remove_tree(path)
                write_atomic(path, text)
        elif len(rows) > len(written):
            text = "".join(r + "\n" for r in rows[len(written):])
            for path in self.paths:
                with os.fdopen(safefs.open_new(path, append=True), "a", encoding="utf-8") as f:
                    f.write(text)
        self._written = rows
        self._sigs = {p: _sig(p) for p in self.paths}

    def intact(self) -> bool:
        """Whether the campaign's own copy is as we last left it (nothing written yet: yes).
        The arena's root copy is shared by the campaigns of the arena: rewritten when it
        changed, not watched."""
        own = self.paths[0]
        return own not in self._sigs or _sig(own) == self._sigs[own]

    def _row(self, e: Experiment) -> str | None:
        if e is not self._rendered.get(e.id):
            self._rows[e.id] = tsv_row(e) if e.status.terminal else ""
            self._rendered[e.id] = e
        return self._rows[e.id] or None
