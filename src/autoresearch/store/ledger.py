"""The SQLite ledger: the truth about a campaign. ``results.tsv`` is an export of it.

One file per arena (``.autoresearch/ledger.sqlite``), WAL mode, one transaction per state
change. Experiments and runs are separate tables: an experiment has one run, or several
when a judge confirms. Each run records the token its processes carried, so a harness
that resumes after being killed can find and stop processes its predecessor left.
"""

from __future__ import annotations

import dataclasses

import json
import math
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import AutoresearchError
from ..metrics import memory_gb
from ..records import Experiment, Status, code_tried

SCHEMA_VERSION = 6
READABLE_FROM = 5  # the oldest schema a read-only command reads as it is (6 only added the sessions table)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS campaigns (
    id            INTEGER PRIMARY KEY,
    tag           TEXT NOT NULL UNIQUE,
    branch        TEXT NOT NULL,
    base_commit   TEXT NOT NULL,
    metric        TEXT NOT NULL,
    goal          TEXT NOT NULL,
    config_json   TEXT NOT NULL,
    readonly_json TEXT NOT NULL,
    host          TEXT NOT NULL,
    created_at    REAL NOT NULL,
    last_run_at   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS experiments (
    campaign_id   INTEGER NOT NULL REFERENCES campaigns(id),
    id            INTEGER NOT NULL,
    status        TEXT NOT NULL,
    description   TEXT NOT NULL,
    proposer      TEXT NOT NULL,
    parent        TEXT,
    commit_sha    TEXT,
    diff          TEXT NOT NULL DEFAULT '',
    code_hash     TEXT,
    proposal_json TEXT NOT NULL DEFAULT '{}',
    reason        TEXT NOT NULL DEFAULT '',
    metric        REAL,
    metrics_json  TEXT NOT NULL DEFAULT '{}',
    warnings_json TEXT NOT NULL DEFAULT '[]',
    attempt       INTEGER NOT NULL DEFAULT 1,
    seed          INTEGER,
    host          TEXT,
    slot          TEXT,
    log_path      TEXT,
    tokens        INTEGER NOT NULL DEFAULT 0,
    cost          REAL NOT NULL DEFAULT 0,
    runs_n        INTEGER,
    mean          REAL,
    se            REAL,
    p_value       REAL,
    created_at    REAL NOT NULL,
    started_at    REAL,
    finished_at   REAL,
    PRIMARY KEY (campaign_id, id)
);
CREATE TABLE IF NOT EXISTS runs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id    INTEGER NOT NULL,
    experiment_id  INTEGER NOT NULL,
    attempt        INTEGER NOT NULL,
    purpose        TEXT NOT NULL,
    seed           INTEGER,
    slot           TEXT,
    host           TEXT,
    status         TEXT NOT NULL,
    exit_code      INTEGER,
    eval_exit_code INTEGER,
    metric         REAL,
    metrics_json   TEXT NOT NULL DEFAULT '{}',
    warnings_json  TEXT NOT NULL DEFAULT '[]',
    problem        TEXT NOT NULL DEFAULT '',
    log_path       TEXT,
    log_tail       TEXT NOT NULL DEFAULT '',
    run_token      TEXT,
    started_at     REAL NOT NULL,
    finished_at    REAL,
    duration_s     REAL,
    curves_json    TEXT NOT NULL DEFAULT '{}',
    FOREIGN KEY (campaign_id, experiment_id) REFERENCES experiments(campaign_id, id)
);
CREATE INDEX IF NOT EXISTS runs_by_experiment ON runs(campaign_id, experiment_id);
CREATE INDEX IF NOT EXISTS runs_by_token ON runs(run_token);
CREATE TABLE IF NOT EXISTS ablations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    created_at  REAL NOT NULL,
    runs        INTEGER NOT NULL,
    rows_json   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    started_at  REAL NOT NULL
);
"""


def connect(path: Path) -> sqlite3.Connection:
    """A connection that writes the ledger at ``path``."""
    db = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    return db


class LedgerError(AutoresearchError):
    pass


@dataclass(frozen=True)
class Campaign:
    id: int
    tag: str
    branch: str
    base_commit: str
    metric: str
    goal: str
    config: Mapping[str, Any]
    readonly: Mapping[str, str | None]
    host: str
    created_at: float
    last_run_at: float


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _clean_metrics(metrics: Mapping[str, float]) -> dict[str, float | None]:
    # JSON has no NaN/inf; store them as null rather than produce invalid JSON.
    return {k: _finite(v) for k, v in metrics.items()}


def is_damage(e: sqlite3.DatabaseError) -> bool:
    """Whether SQLite says the file itself is broken (not that the disk is full or read-only)."""
    text = str(e).lower()
    return not isinstance(e, sqlite3.OperationalError) or any(
        w in text for w in ("malformed", "not a database", "corrupt", "encrypted"))


def damaged(path: Path, e: object) -> "LedgerError":
    """The error a damaged ledger gives, with the way back."""
    arena = path.parent.parent
    return LedgerError(
        f"the ledger {path} cannot be read ({e}). Nothing is lost while git and the recovery records "
        f"({path.parent}/TAG/records.jsonl) hold the campaign: `autoresearch doctor {arena}` says what is wrong, "
        f"`autoresearch doctor {arena} --repair` rebuilds the ledger from them (the damaged file is kept aside).")


def _open_readonly(path: Path) -> sqlite3.Connection:
    """Read without writing anything (a read-only directory, another user's arena): mode=ro,
    or immutable when SQLite cannot even create its shared-memory file there."""
    if not path.is_file():
        raise LedgerError(f"no ledger at {path}")
    for query in ("mode=ro", "immutable=1"):
        try:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?{query}", uri=True, timeout=30, isolation_level=None,
                                 check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
            return db
        except sqlite3.OperationalError:
            if query == "immutable=1":
                raise
    raise AssertionError("unreachable")


def integrity(ledger: "Ledger", full: bool = False) -> list[str]:
    """SQLite's own check of the file (``quick_check``, or the slower ``integrity_check``):
    [] when it is sound, else what SQLite found."""
    try:
        rows = [r[0] for r in ledger.db.execute("PRAGMA integrity_check" if full else "PRAGMA quick_check")]
    except sqlite3.DatabaseError as e:
        return [str(e)]
    return [] if rows == ["ok"] else rows[:20]


def _json(path: Path, row: sqlite3.Row, column: str, where: str) -> Any:
    """A JSON column, or the error that names the row (the ledger is damaged)."""
    try:
        value = json.loads(row[column])
    except (TypeError, ValueError, RecursionError) as e:
        raise _bad(path, where, column, str(e)) from None
    expected = list if column in ("warnings_json", "rows_json") else dict
    if not isinstance(value, expected):
        raise _bad(path, where, column, f"a JSON {type(value).__name__}, not a {expected.__name__}")
    return value


def _bad(path: Path, where: str, column: str, why: str) -> "LedgerError":
    return damaged(path, f"{where}: column {column}: {why}")  # type: ignore[arg-type]


class Ledger:
    """The campaign's truth, read. Writes go through ``ledger_writer.LedgerWriter``, which
    only the journal holds. ``readonly``: opened without writing anything (status, report)."""

    def __init__(self, path: Path, readonly: bool = False):
        self.path = path
        self.readonly = readonly
        self.watch: Any = None  # a LedgerWatch while a campaign runs (store/ledger_watch.py)
        try:
            if readonly:
                self.db = _open_readonly(path)
                self._check_version()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                self.db = connect(path)
                self._migrate()
        except sqlite3.DatabaseError as e:
            if not is_damage(e):
                raise  # a full disk, a read-only file: the machine's, not the ledger's (errors.environment_error)
            raise damaged(path, e) from None

    def _check_version(self) -> int:
        version = 0
        if self.db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='meta'").fetchone() is not None:
            row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row["value"]) if row else 0
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"{self.path} was written by a newer autoresearch (schema {version}, this one "
                f"knows {SCHEMA_VERSION}); upgrade autoresearch to read it"
            )
        if self.readonly and version < READABLE_FROM:
            raise LedgerError(f"{self.path} has an older schema ({version}): run `autoresearch run` once (or "
                              "`autoresearch doctor --repair`) to upgrade it, then read it")
        return version

    def _migrate(self) -> None:
        version = self._check_version()
        if version == SCHEMA_VERSION:
            return
        with self.tx() as db:
            if version == 0:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
            if version == 1:  # v2: the judge's statistics per experiment
                for column in ("runs_n INTEGER", "mean REAL", "se REAL", "p_value REAL"):
                    db.execute(f"ALTER TABLE experiments ADD COLUMN {column}")
            if version in (1, 2, 3, 4, 5):  # v3: ablation results; v4: runs found by their token; v6: sessions (IF NOT EXISTS)
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
            if "curves_json" not in {r[1] for r in db.execute("PRAGMA table_info(runs)")}:  # v5: progress curves
                db.execute("ALTER TABLE runs ADD COLUMN curves_json TEXT NOT NULL DEFAULT '{}'")
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self.db.close()

    class _Tx:
        def __init__(self, ledger: "Ledger"):
            self.ledger = ledger

        def __enter__(self) -> sqlite3.Connection:
            db = self.ledger.db
            db.execute("BEGIN IMMEDIATE")
            try:
                if self.ledger.watch is not None:
                    self.ledger.watch.on_begin()  # another process's writes, noticed before ours
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return db

        def __exit__(self, exc_type, exc, tb) -> None:
            db = self.ledger.db
            if exc_type is None:
                try:
                    if self.ledger.watch is not None:
                        self.ledger.watch.on_commit()
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            else:
                db.execute("ROLLBACK")

    def tx(self) -> "Ledger._Tx":
        return Ledger._Tx(self)

    # -- campaigns ------------------------------------------------------------------------
    def _campaign(self, row: sqlite3.Row | None) -> Campaign | None:
        if row is None:
            return None
        return Campaign(
            id=row["id"], tag=row["tag"], branch=row["branch"], base_commit=row["base_commit"],
            metric=row["metric"], goal=row["goal"], config=_json(self.path, row, "config_json", f"campaign {row['tag']!r}"),
            readonly=_json(self.path, row, "readonly_json", f"campaign {row['tag']!r}"), host=row["host"],
            created_at=row["created_at"], last_run_at=row["last_run_at"],
        )

    def campaign(self, tag: str) -> Campaign | None:
        return self._campaign(self.db.execute("SELECT * FROM campaigns WHERE tag=?", (tag,)).fetchone())

    def latest_campaign(self) -> Campaign | None:
        row = self.db.execute("SELECT * FROM campaigns ORDER BY last_run_at DESC, id DESC LIMIT 1").fetchone()
        return self._campaign(row)

    def campaigns(self) -> list[Campaign]:
        return [self._campaign(r) for r in self.db.execute("SELECT * FROM campaigns ORDER BY id")]  # type: ignore[misc]

    # -- experiments ----------------------------------------------------------------------
    def next_experiment_id(self, campaign: Campaign) -> int:
        row = self.db.execute("SELECT MAX(id) AS m FROM experiments WHERE campaign_id=?", (campaign.id,)).fetchone()
        return 0 if row["m"] is None else row["m"] + 1

    def _experiment(self, row: sqlite3.Row) -> Experiment:
        where = f"experiment {row['id']}"
        proposal = _json(self.path, row, "proposal_json", where)
        metrics = _json(self.path, row, "metrics_json", where)
        try:
            status = Status(row["status"])
        except ValueError:
            raise _bad(self.path, where, "status", f"unknown status {row['status']!r}") from None
        return Experiment(
            id=row["id"], status=status, description=row["description"], proposer=row["proposer"],
            parent=row["parent"], commit=row["commit_sha"], metric=row["metric"],
            metrics={k: (v if v is not None else math.nan) for k, v in metrics.items()},
            reason=row["reason"], diff=row["diff"], attempt=row["attempt"], seed=row["seed"],
            meta=proposal.get("meta", {}), log_path=row["log_path"], tokens=row["tokens"], cost=row["cost"],
            runs_n=row["runs_n"], se=row["se"], p_value=row["p_value"], code_hash=row["code_hash"],
        )

    def experiments(self, campaign: Campaign, ids: Iterable[int] | None = None) -> list[Experiment]:
        """The campaign's experiments by id (only ``ids`` when given)."""
        if ids is None:
            rows = self.db.execute("SELECT * FROM experiments WHERE campaign_id=? ORDER BY id", (campaign.id,))
        else:
            wanted = sorted(set(ids))
            rows = self.db.execute(f"SELECT * FROM experiments WHERE campaign_id=? AND id IN ({','.join('?' * len(wanted))})"
                                   " ORDER BY id", (campaign.id, *wanted))
        out = [self._experiment(r) for r in rows]
        if any("stopped_early_at" in e.metrics for e in out):  # with the curve of its stopped run (the last)
            curves = {r["experiment_id"]: _json(self.path, r, "curves_json", f"run {r['id']}") for r in self.db.execute(
                "SELECT experiment_id, id, curves_json FROM runs WHERE campaign_id=? AND status='stopped' ORDER BY id",
                (campaign.id,))}
            out = [dataclasses.replace(e, curves=curves[e.id]) if curves.get(e.id) else e for e in out]
        return out

    def experiment(self, campaign: Campaign, id: int) -> Experiment | None:
        row = self.db.execute("SELECT * FROM experiments WHERE campaign_id=? AND id=?", (campaign.id, id)).fetchone()
        return self._experiment(row) if row else None

    def proposal(self, campaign: Campaign, id: int) -> dict[str, Any]:
        row = self.db.execute("SELECT proposal_json FROM experiments WHERE campaign_id=? AND id=?", (campaign.id, id)).fetchone()
        return _json(self.path, row, "proposal_json", f"experiment {id}") if row else {}

    def code_hashes(self, campaign: Campaign) -> dict[str, int]:
        """Code hash -> experiment id for every experiment whose code was (or is being) tested:
        not those refused (invalid), but those that ran over budget (invalid after a whole run,
        which the same code would repeat: a review)."""
        rows = self.db.execute(
            "SELECT id, code_hash, status, reason FROM experiments WHERE campaign_id=? AND code_hash IS NOT NULL"
            " ORDER BY id DESC", (campaign.id,),
        )
        return {r["code_hash"]: r["id"] for r in rows if code_tried(r["status"], r["reason"])}

    # -- runs -----------------------------------------------------------------------------
    def runs(self, campaign: Campaign, experiment_id: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM runs WHERE campaign_id=?"
        args: list[Any] = [campaign.id]
        if experiment_id is not None:
            sql += " AND experiment_id=?"
            args.append(experiment_id)
        out = []
        for r in self.db.execute(sql + " ORDER BY id", args):
            d = dict(r)
            d["metrics"] = _json(self.path, r, "metrics_json", f"run {r['id']}")
            d["warnings"] = _json(self.path, r, "warnings_json", f"run {r['id']}")
            d["curves"] = _json(self.path, r, "curves_json", f"run {r['id']}")
            for column in ("metrics_json", "warnings_json", "curves_json"):
                d.pop(column)
            out.append(d)
        return out

    def ok_run_metrics(self, campaign: Campaign) -> dict[int, list[tuple[int, str, float]]]:
        """Experiment id -> [(attempt, purpose, metric)] of every run that produced a metric."""
        out: dict[int, list[tuple[int, str, float]]] = {}
        rows = self.db.execute(
            "SELECT experiment_id, attempt, purpose, metric FROM runs WHERE campaign_id=? AND status='ok'"
            " AND metric IS NOT NULL ORDER BY id", (campaign.id,),
        )
        for r in rows:
            out.setdefault(r["experiment_id"], []).append((r["attempt"], r["purpose"], r["metric"]))
        return out

    def latest_ablation(self, campaign: Campaign) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM ablations WHERE campaign_id=? ORDER BY id DESC LIMIT 1", (campaign.id,)).fetchone()
        if row is None:
            return None
        return {"created_at": row["created_at"], "runs": row["runs"], "rows": _json(self.path, row, "rows_json", "the ablation")}

    def count_runs(self, campaign: Campaign, purpose: str) -> int:
        row = self.db.execute("SELECT COUNT(*) AS n FROM runs WHERE campaign_id=? AND purpose=?", (campaign.id, purpose)).fetchone()
        return int(row["n"])

    def open_run_tokens(self, campaign: Campaign) -> list[str]:
        rows = self.db.execute(
            "SELECT run_token FROM runs WHERE campaign_id=? AND status='running' AND run_token IS NOT NULL", (campaign.id,)
        )
        return [r["run_token"] for r in rows]

# -- results.tsv ------------------------------------------------------------------------------

def _tsv_text(value: str) -> str:
    from ..sanitize import one_line

    return one_line(value.replace("\t", " "), limit=1000)


def results_tsv(metric: str, experiments: list[Experiment]) -> str:
    """karpathy's five columns, one row per terminal experiment, from the ledger's records."""
    rows = (tsv_row(e) for e in experiments if e.status.terminal)
    return "\n".join([f"commit\t{metric}\tmemory_gb\tstatus\tdescription", *rows]) + "\n"


def tsv_row(e: Experiment) -> str:
    """One experiment's results.tsv row (a terminal one). Pure."""
    commit = (e.commit or "0000000")[:7]
    value = f"{e.metric:.6f}" if e.metric is not None and math.isfinite(e.metric) else "0.000000"
    mem = memory_gb(e.metrics)
    mem_text = f"{mem:.1f}" if mem is not None else "0.0"
    description = e.description
    stopped = e.metrics.get("stopped_early_at")
    if stopped is not None and e.status is Status.DISCARD:  # early stopping (progress.py)
        from ..progress import suffix

        description = f"{description} {suffix(stopped)}"
    return f"{commit}\t{value}\t{mem_text}\t{e.status.value}\t{_tsv_text(description)}"


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file next to the target (same directory, so the same file
    system: ``os.replace`` is atomic there), so a kill mid-write leaves the old file or the
    new one, never a torn one. The temporary name starts with a dot and carries our pid."""
    from .. import safefs

    target = os.fspath(path)
    tmp = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.{os.getpid()}.autoresearch-tmp")  # TMP_SUFFIX
    with os.fdopen(safefs.open_new(tmp), "w", encoding="utf-8") as f:  # never through a link planted at that name
        f.write(text)
    os.replace(tmp, target)


def sessions(ledger: Ledger, campaign: Campaign) -> list[float]:
    """When each ``autoresearch run`` of the campaign started (none recorded before schema 6,
    and none in a schema-5 ledger read as it is)."""
    if ledger.db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='sessions'").fetchone() is None:
        return []
    rows = ledger.db.execute("SELECT started_at FROM sessions WHERE campaign_id=? ORDER BY started_at", (campaign.id,))
    return [float(r["started_at"]) for r in rows]
