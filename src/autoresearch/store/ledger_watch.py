"""Writes to the ledger by anyone but this harness, noticed and undone.

A run without a sandbox can open ``.autoresearch/ledger.db`` and rewrite a row (the
baseline's metric, say): nothing changes while the campaign runs (the engine judges from
memory), but after a restart a worse model would be kept against the falsified incumbent.
So the harness keeps a copy of its campaign's rows in memory and notices foreign writes:

- SQLite's ``PRAGMA data_version`` changes exactly when another connection committed;
  it is read inside each of our write transactions (no one else can commit while we hold
  the write lock) and after every run. Unchanged: nothing to compare.
- Temporary triggers (they live in this connection only, so they fire for our own writes
  only) list the rows we wrote; the copy is refreshed from those rows before each commit.
- When another connection wrote, the campaign's rows are compared with the copy; each
  difference is put back in the same transaction, and described. (Another campaign's rows
  in the same ledger are its own business.)
- The schema is compared too: a trigger, view or index someone else added (a trigger can
  rewrite every row we write, or abort our writes) is dropped before our statements run;
  ``meta`` rows (the schema version) are put back; a table of ours altered or dropped is
  reported (``autoresearch doctor --repair`` rebuilds the ledger).
- A ledger file replaced or deleted under us is noticed by its inode and rebuilt from
  this connection's view (SQLite's backup), then reopened.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from .ledger import Ledger, connect

TABLES = ("campaigns", "experiments", "runs", "sessions")  # in the order rows are put back (references first)
_WHERE = {"campaigns": "id=?", "experiments": "campaign_id=?", "runs": "campaign_id=?", "sessions": "campaign_id=?"}
Key = tuple[str, int]


class LedgerWatch:
    def __init__(self, ledger: Ledger, campaign_id: int):
        self.ledger, self.campaign_id = ledger, campaign_id
        self.found: list[str] = []  # differences found and put back, until taken
        self.planted = foreign_objects(ledger.db, drop=True)  # while no harness ran: reported, charged to no run
        self._install()
        self.rows = self._load()
        self.schema = self._schema()
        self.meta = self._meta()
        self.seen = self._version()
        self.ino = self._inode()

    def _install(self) -> None:
        db = self.ledger.db
        db.execute("CREATE TEMP TABLE IF NOT EXISTS ar_touched(tbl TEXT NOT NULL, rid INTEGER NOT NULL)")
        for t in TABLES:
            for op, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
                db.execute(f"CREATE TEMP TRIGGER IF NOT EXISTS ar_watch_{t}_{op.lower()} AFTER {op} ON main.{t} "
                           f"BEGIN INSERT INTO ar_touched VALUES ('{t}', {row}.rowid); END")
        self.ledger.watch = self

    def _version(self) -> int:
        return int(self.ledger.db.execute("PRAGMA data_version").fetchone()[0])

    def _inode(self) -> int | None:
        try:
            return os.stat(self.ledger.path).st_ino
        except OSError:
            return None

    def _load(self, keys: set[Key] | None = None) -> dict[Key, tuple[Any, ...]]:
        out: dict[Key, tuple[Any, ...]] = {}
        db = self.ledger.db
        for t in TABLES:
            if keys is None:
                rows = db.execute(f"SELECT rowid, * FROM {t} WHERE {_WHERE[t]}", (self.campaign_id,)).fetchall()
            else:
                ids = [rid for tbl, rid in keys if tbl == t]
                if not ids:
                    continue
                rows = []
                for i in range(0, len(ids), 500):
                    chunk = ids[i:i + 500]
                    rows += db.execute(f"SELECT rowid, * FROM {t} WHERE {_WHERE[t]} AND rowid IN "
                                       f"({','.join('?' * len(chunk))})", (self.campaign_id, *chunk)).fetchall()
            out.update(((t, int(r[0])), tuple(r)[1:]) for r in rows)
        return out

    def _schema(self) -> dict[tuple[str, str], str | None]:
        return {(str(t), str(n)): s for t, n, s in self.ledger.db.execute("SELECT type, name, sql FROM main.sqlite_master")}

    def _meta(self) -> dict[str, Any]:
        return dict(self.ledger.db.execute("SELECT key, value FROM meta").fetchall())

    # -- the hooks of our own transactions (Ledger._Tx) ---------------------------------------
    def on_begin(self) -> None:
        """Inside our write transaction, before our first statement."""
        version = self._version()
        if version != self.seen:
            self.found += self._put_back_schema()
            self.found += self._put_back()
            self.seen = version

    def _put_back_schema(self) -> list[str]:
        """Foreign triggers, views and indexes dropped; meta rows put back; a changed table of
        ours reported."""
        from ..sanitize import one_line

        db, out = self.ledger.db, []
        now = self._schema()
        for (kind, name), sql in sorted(now.items()):
            if (kind, name) in self.schema:
                if self.schema[(kind, name)] != sql:
                    out.append(f"ledger: {kind} {one_line(name, 60)} altered (run `autoresearch doctor --repair`)")
                continue
            if kind in ("trigger", "view", "index"):
                db.execute(f"DROP {kind.upper()} IF EXISTS main.\"{name.replace(chr(34), chr(34) * 2)}\"")
                out.append(f"ledger: {kind} {one_line(name, 60)} added by another process: dropped")
            else:
                out.append(f"ledger: {kind} {one_line(name, 60)} added by another process (left as is)")
        for kind, name in sorted(set(self.schema) - set(now)):
            out.append(f"ledger: {kind} {one_line(name, 60)} dropped by another process (run `autoresearch doctor --repair`)")
        if ("table", "meta") in now:
            meta = self._meta()
            for key in sorted(set(meta) | set(self.meta), key=str):
                if meta.get(key) != self.meta.get(key):
                    out.append(f"ledger: meta {one_line(str(key), 40)} {one_line(repr(self.meta.get(key)), 40)} -> "
                               f"{one_line(repr(meta.get(key)), 40)}: put back")
                    if key in self.meta:
                        db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, self.meta[key]))
                    else:
                        db.execute("DELETE FROM meta WHERE key=?", (key,))
        return out

    def on_commit(self) -> None:
        """Inside our write transaction, before it commits: the copy follows what we wrote."""
        db = self.ledger.db
        keys = {(str(t), int(r)) for t, r in db.execute("SELECT tbl, rid FROM ar_touched")}
        if keys:
            db.execute("DELETE FROM ar_touched")
            fresh = self._load(keys)
            for k in keys:
                if k in fresh:
                    self.rows[k] = fresh[k]
                else:
                    self.rows.pop(k, None)

    # -- after each run -----------------------------------------------------------------------
    def check(self) -> list[str]:
        """What another process changed in this campaign's rows since the last look, put
        back; also a ledger file replaced or deleted (rebuilt from our view)."""
        if self._inode() != self.ino:
            self.found.append(self._rebuild())
        elif self._version() != self.seen:
            with self.ledger.tx():
                pass  # on_begin compares and puts back
        found, self.found = self.found, []
        return found

    def _put_back(self) -> list[str]:
        now = self._load()
        out = []
        db = self.ledger.db
        for key in sorted(set(now) | set(self.rows), key=lambda k: (TABLES.index(k[0]), k[1])):
            before, after = self.rows.get(key), now.get(key)
            if before == after:
                continue
            t, rid = key
            cols = _columns(db, t)
            out.append(_describe(t, cols, before, after))
            if before is None:
                db.execute(f"DELETE FROM {t} WHERE rowid=?", (rid,))
            elif after is None:
                db.execute(f"INSERT INTO {t}(rowid, {', '.join(cols)}) VALUES (?{', ?' * len(cols)})", (rid, *before))
            else:
                db.execute(f"UPDATE {t} SET {', '.join(f'{c}=?' for c in cols)} WHERE rowid=?", (*before, rid))
        return out

    def _rebuild(self) -> str:
        """The ledger file is not the one we opened: write ours back in its place."""
        path = Path(self.ledger.path)
        what = "replaced" if path.exists() else "deleted"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.rebuild")
        tmp.unlink(missing_ok=True)
        dst = sqlite3.connect(str(tmp))
        try:
            self.ledger.db.backup(dst)
        finally:
            dst.close()
        self.ledger.db.close()
        for suffix in ("-wal", "-shm"):  # a foreign WAL would be replayed onto ours
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        os.replace(tmp, path)
        self.ledger.db = connect(path)
        self._install()
        self.seen, self.ino = self._version(), self._inode()
        return f"the ledger file {path} was {what}; rebuilt from the harness's copy"


def foreign_objects(db: sqlite3.Connection, *, drop: bool) -> list[str]:
    """Triggers and views in the ledger: the harness defines none, so each was planted
    (a trigger can rewrite every row the harness writes, or abort its writes). Dropped
    when ``drop``; described either way."""
    from ..sanitize import one_line

    out = []
    for kind, name in db.execute("SELECT type, name FROM main.sqlite_master WHERE type IN ('trigger', 'view')").fetchall():
        if drop:
            db.execute(f"DROP {str(kind).upper()} IF EXISTS main.\"{str(name).replace(chr(34), chr(34) * 2)}\"")
        out.append(f"ledger: a {kind} {one_line(str(name), 60)} (the harness defines none)" + (": dropped" if drop else ""))
    if out and drop:
        db.commit()
    return out


def _columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in db.execute(f"PRAGMA table_info({table})")]


def _describe(table: str, cols: list[str], before: tuple[Any, ...] | None, after: tuple[Any, ...] | None) -> str:
    """One difference, for the report. Pure."""
    from ..sanitize import one_line

    row = before if before is not None else after
    assert row is not None
    ident = dict(zip(cols, row))
    name = {"campaigns": f"campaign {ident.get('tag')!r}", "experiments": f"experiment #{ident.get('id')}",
            "runs": f"run {ident.get('id')} of experiment #{ident.get('experiment_id')}"}[table]
    if before is None:
        return f"ledger: {name} added"
    if after is None:
        return f"ledger: {name} deleted"
    diffs = [f"{c} {one_line(repr(a), 40)} -> {one_line(repr(b), 40)}" for c, a, b in zip(cols, before, after) if a != b]
    return f"ledger: {name}: " + ", ".join(diffs[:3]) + (f" (+{len(diffs) - 3} more)" if len(diffs) > 3 else "")
