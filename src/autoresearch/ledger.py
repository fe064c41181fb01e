"""The SQLite ledger: the truth about a campaign. ``results.tsv`` is an export of it.

One file per arena (``.autoresearch/ledger.sqlite``), WAL mode, one transaction per state
change. Experiments and runs are separate tables: an experiment has one run, or several
when a judge confirms. Each run records the token its processes carried, so a harness
that resumes after being killed can find and stop processes its predecessor left.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .errors import AutoresearchError
from .metrics import memory_gb
from .records import Experiment, Status

SCHEMA_VERSION = 3

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
    FOREIGN KEY (campaign_id, experiment_id) REFERENCES experiments(campaign_id, id)
);
CREATE INDEX IF NOT EXISTS runs_by_experiment ON runs(campaign_id, experiment_id);
CREATE TABLE IF NOT EXISTS ablations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    created_at  REAL NOT NULL,
    runs        INTEGER NOT NULL,
    rows_json   TEXT NOT NULL
);
"""


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


class Ledger:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        version = 0
        if self.db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='meta'").fetchone() is not None:
            row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row["value"]) if row else 0
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"{self.path} was written by a newer autoresearch (schema {version}, this one "
                f"knows {SCHEMA_VERSION}); upgrade autoresearch to read it"
            )
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
            if version in (1, 2):  # v3: ablation results
                db.execute(_SCHEMA[_SCHEMA.index("CREATE TABLE IF NOT EXISTS ablations"):].split(";")[0])
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self.db.close()

    class _Tx:
        def __init__(self, db: sqlite3.Connection):
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type, exc, tb) -> None:
            if exc_type is None:
                self.db.execute("COMMIT")
            else:
                self.db.execute("ROLLBACK")

    def tx(self) -> "Ledger._Tx":
        return Ledger._Tx(self.db)

    # -- campaigns ------------------------------------------------------------------------
    def _campaign(self, row: sqlite3.Row | None) -> Campaign | None:
        if row is None:
            return None
        return Campaign(
            id=row["id"], tag=row["tag"], branch=row["branch"], base_commit=row["base_commit"],
            metric=row["metric"], goal=row["goal"], config=json.loads(row["config_json"]),
            readonly=json.loads(row["readonly_json"]), host=row["host"],
            created_at=row["created_at"], last_run_at=row["last_run_at"],
        )

    def campaign(self, tag: str) -> Campaign | None:
        return self._campaign(self.db.execute("SELECT * FROM campaigns WHERE tag=?", (tag,)).fetchone())

    def latest_campaign(self) -> Campaign | None:
        row = self.db.execute("SELECT * FROM campaigns ORDER BY last_run_at DESC, id DESC LIMIT 1").fetchone()
        return self._campaign(row)

    def campaigns(self) -> list[Campaign]:
        return [self._campaign(r) for r in self.db.execute("SELECT * FROM campaigns ORDER BY id")]  # type: ignore[misc]

    def create_campaign(
        self, *, tag: str, branch: str, base_commit: str, metric: str, goal: str,
        config: Mapping[str, Any], readonly: Mapping[str, str | None],
    ) -> Campaign:
        now = time.time()
        with self.tx() as db:
            db.execute(
                "INSERT INTO campaigns(tag, branch, base_commit, metric, goal, config_json, readonly_json, host, created_at, last_run_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                (tag, branch, base_commit, metric, goal, json.dumps(config, sort_keys=True, default=str),
                 json.dumps(readonly, sort_keys=True), socket.gethostname(), now, now),
            )
        campaign = self.campaign(tag)
        assert campaign is not None
        return campaign

    def touch_campaign(self, campaign: Campaign, config: Mapping[str, Any]) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE campaigns SET last_run_at=?, config_json=? WHERE id=?",
                (time.time(), json.dumps(config, sort_keys=True, default=str), campaign.id),
            )

    def rebase_campaign(self, campaign: Campaign, base_commit: str, readonly: Mapping[str, str | None]) -> Campaign:
        """Move a campaign whose only experiment is a failed baseline onto a new base commit."""
        with self.tx() as db:
            db.execute(
                "UPDATE campaigns SET base_commit=?, readonly_json=? WHERE id=?",
                (base_commit, json.dumps(readonly, sort_keys=True), campaign.id),
            )
            db.execute("UPDATE experiments SET commit_sha=? WHERE campaign_id=? AND id=0", (base_commit, campaign.id))
        updated = self.campaign(campaign.tag)
        assert updated is not None
        return updated

    # -- experiments ----------------------------------------------------------------------
    def next_experiment_id(self, campaign: Campaign) -> int:
        row = self.db.execute("SELECT MAX(id) AS m FROM experiments WHERE campaign_id=?", (campaign.id,)).fetchone()
        return 0 if row["m"] is None else row["m"] + 1

    def add_experiment(
        self, campaign: Campaign, *, id: int, description: str, proposer: str, parent: str | None,
        proposal: Mapping[str, Any], diff: str = "", code_hash: str | None = None,
        tokens: int = 0, cost: float = 0.0,
    ) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO experiments(campaign_id, id, status, description, proposer, parent, diff, code_hash,"
                " proposal_json, tokens, cost, host, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (campaign.id, id, Status.PENDING.value, description, proposer, parent, diff, code_hash,
                 json.dumps(proposal, sort_keys=True, default=str), tokens, cost, socket.gethostname(), time.time()),
            )

    def set_running(
        self, campaign: Campaign, id: int, *, commit: str, parent: str | None, diff: str, code_hash: str,
        attempt: int, seed: int, slot: str, log_path: str,
    ) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE experiments SET status=?, commit_sha=?, parent=?, diff=?, code_hash=?, attempt=?, seed=?,"
                " slot=?, host=?, log_path=?, started_at=? WHERE campaign_id=? AND id=?",
                (Status.RUNNING.value, commit, parent, diff, code_hash, attempt, seed, slot, socket.gethostname(),
                 log_path, time.time(), campaign.id, id),
            )

    def finish_experiment(
        self, campaign: Campaign, id: int, *, status: Status, reason: str = "",
        metric: float | None = None, metrics: Mapping[str, float] | None = None,
        warnings: tuple[str, ...] | list[str] = (), diff: str | None = None, code_hash: str | None = None,
        parent: str | None = None, stats: Mapping[str, float] | None = None,
    ) -> None:
        assert status.terminal, status
        sets = ["status=?", "reason=?", "metric=?", "metrics_json=?", "warnings_json=?", "finished_at=?"]
        args: list[Any] = [status.value, reason, _finite(metric), json.dumps(_clean_metrics(metrics or {}), sort_keys=True),
                           json.dumps(list(warnings)), time.time()]
        stats = stats or {}
        for col, value in (("diff", diff), ("code_hash", code_hash), ("parent", parent), ("runs_n", stats.get("runs")),
                           ("mean", _finite(stats.get("mean"))), ("se", _finite(stats.get("se"))),
                           ("p_value", _finite(stats.get("p_value")))):
            if value is not None:
                sets.append(f"{col}=?")
                args.append(value)
        with self.tx() as db:
            db.execute(f"UPDATE experiments SET {', '.join(sets)} WHERE campaign_id=? AND id=?", (*args, campaign.id, id))

    def requeue(self, campaign: Campaign, id: int, *, attempt: int, reason: str) -> None:
        """Put an experiment back in the queue (the infrastructure failed its run): pending
        again, as its next attempt, with the reason among its warnings."""
        with self.tx() as db:
            row = db.execute("SELECT warnings_json FROM experiments WHERE campaign_id=? AND id=?",
                             (campaign.id, id)).fetchone()
            warnings = json.loads(row[0]) if row and row[0] else []
            warnings.append(f"requeued: {reason}")
            db.execute("UPDATE experiments SET status=?, attempt=?, warnings_json=? WHERE campaign_id=? AND id=?",
                       (Status.PENDING.value, attempt, json.dumps(warnings), campaign.id, id))

    def update_stats(self, campaign: Campaign, id: int, *, mean: float, runs_n: int, se: float | None) -> None:
        """New statistics of a kept experiment after it was re-measured."""
        with self.tx() as db:
            db.execute("UPDATE experiments SET metric=?, mean=?, runs_n=?, se=? WHERE campaign_id=? AND id=?",
                       (_finite(mean), _finite(mean), runs_n, _finite(se), campaign.id, id))

    def _experiment(self, row: sqlite3.Row) -> Experiment:
        proposal = json.loads(row["proposal_json"])
        return Experiment(
            id=row["id"], status=Status(row["status"]), description=row["description"], proposer=row["proposer"],
            parent=row["parent"], commit=row["commit_sha"], metric=row["metric"],
            metrics={k: (v if v is not None else math.nan) for k, v in json.loads(row["metrics_json"]).items()},
            reason=row["reason"], diff=row["diff"], attempt=row["attempt"], seed=row["seed"],
            meta=proposal.get("meta", {}), log_path=row["log_path"], tokens=row["tokens"], cost=row["cost"],
            runs_n=row["runs_n"], se=row["se"], p_value=row["p_value"], code_hash=row["code_hash"],
        )

    def experiments(self, campaign: Campaign) -> list[Experiment]:
        rows = self.db.execute("SELECT * FROM experiments WHERE campaign_id=? ORDER BY id", (campaign.id,))
        return [self._experiment(r) for r in rows]

    def experiment(self, campaign: Campaign, id: int) -> Experiment | None:
        row = self.db.execute("SELECT * FROM experiments WHERE campaign_id=? AND id=?", (campaign.id, id)).fetchone()
        return self._experiment(row) if row else None

    def proposal(self, campaign: Campaign, id: int) -> dict[str, Any]:
        row = self.db.execute("SELECT proposal_json FROM experiments WHERE campaign_id=? AND id=?", (campaign.id, id)).fetchone()
        return json.loads(row["proposal_json"]) if row else {}

    def code_hashes(self, campaign: Campaign) -> dict[str, int]:
        """Code hash -> experiment id for every experiment whose code was (or is being) tested."""
        rows = self.db.execute(
            "SELECT id, code_hash FROM experiments WHERE campaign_id=? AND code_hash IS NOT NULL AND status != ?"
            " ORDER BY id DESC", (campaign.id, Status.INVALID.value),
        )
        return {r["code_hash"]: r["id"] for r in rows}

    # -- runs -----------------------------------------------------------------------------
    def start_run(
        self, campaign: Campaign, experiment_id: int, *, attempt: int, purpose: str, seed: int,
        slot: str, log_path: str, run_token: str,
    ) -> int:
        with self.tx() as db:
            cur = db.execute(
                "INSERT INTO runs(campaign_id, experiment_id, attempt, purpose, seed, slot, host, status, log_path,"
                " run_token, started_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (campaign.id, experiment_id, attempt, purpose, seed, slot, socket.gethostname(), "running",
                 log_path, run_token, time.time()),
            )
            return int(cur.lastrowid)

    def finish_run(
        self, run_id: int, *, status: str, exit_code: int | None, eval_exit_code: int | None,
        metric: float | None, metrics: Mapping[str, float], warnings: tuple[str, ...] | list[str],
        problem: str, log_tail: str, duration_s: float,
    ) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE runs SET status=?, exit_code=?, eval_exit_code=?, metric=?, metrics_json=?, warnings_json=?,"
                " problem=?, log_tail=?, duration_s=?, finished_at=? WHERE id=?",
                (status, exit_code, eval_exit_code, _finite(metric), json.dumps(_clean_metrics(metrics), sort_keys=True),
                 json.dumps(list(warnings)), problem, log_tail, duration_s, time.time(), run_id),
            )

    def runs(self, campaign: Campaign, experiment_id: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM runs WHERE campaign_id=?"
        args: list[Any] = [campaign.id]
        if experiment_id is not None:
            sql += " AND experiment_id=?"
            args.append(experiment_id)
        out = []
        for r in self.db.execute(sql + " ORDER BY id", args):
            d = dict(r)
            d["metrics"] = json.loads(d.pop("metrics_json"))
            d["warnings"] = json.loads(d.pop("warnings_json"))
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

    def add_ablation(self, campaign: Campaign, *, runs: int, rows: list[dict[str, Any]]) -> None:
        with self.tx() as db:
            db.execute("INSERT INTO ablations(campaign_id, created_at, runs, rows_json) VALUES (?, ?, ?, ?)",
                       (campaign.id, time.time(), runs, json.dumps(rows, allow_nan=False, default=str)))

    def latest_ablation(self, campaign: Campaign) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM ablations WHERE campaign_id=? ORDER BY id DESC LIMIT 1", (campaign.id,)).fetchone()
        if row is None:
            return None
        return {"created_at": row["created_at"], "runs": row["runs"], "rows": json.loads(row["rows_json"])}

    def count_runs(self, campaign: Campaign, purpose: str) -> int:
        row = self.db.execute("SELECT COUNT(*) AS n FROM runs WHERE campaign_id=? AND purpose=?", (campaign.id, purpose)).fetchone()
        return int(row["n"])

    def open_run_tokens(self, campaign: Campaign) -> list[str]:
        rows = self.db.execute(
            "SELECT run_token FROM runs WHERE campaign_id=? AND status='running' AND run_token IS NOT NULL", (campaign.id,)
        )
        return [r["run_token"] for r in rows]

    def abandon_open_runs(self, campaign: Campaign) -> int:
        """Mark runs a dead harness left ``running`` as interrupted."""
        with self.tx() as db:
            cur = db.execute(
                "UPDATE runs SET status='interrupted', finished_at=?, problem='the harness stopped during this run'"
                " WHERE campaign_id=? AND status='running'", (time.time(), campaign.id),
            )
            return cur.rowcount


# -- results.tsv ------------------------------------------------------------------------------

def _tsv_text(value: str) -> str:
    return " ".join(value.replace("\t", " ").split())


def results_tsv(metric: str, experiments: list[Experiment]) -> str:
    """karpathy's five columns, one row per terminal experiment, from the ledger's records."""
    lines = [f"commit\t{metric}\tmemory_gb\tstatus\tdescription"]
    for e in experiments:
        if not e.status.terminal:
            continue
        commit = (e.commit or "0000000")[:7]
        value = f"{e.metric:.6f}" if e.metric is not None and math.isfinite(e.metric) else "0.000000"
        mem = memory_gb(e.metrics)
        mem_text = f"{mem:.1f}" if mem is not None else "0.0"
        lines.append(f"{commit}\t{value}\t{mem_text}\t{e.status.value}\t{_tsv_text(e.description)}")
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str, tmp_dir: Path) -> None:
    """Write via a temporary file in ``tmp_dir`` (ours, excluded from git, same file system),
    so a kill mid-write leaves neither a torn file nor a stray file in the user's checkout."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"{path.name}.{os.getpid()}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
