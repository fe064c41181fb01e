"""Every write to the ledger, in one class that only the journal (``engine/journal.py``)
holds: reading code gets a ``Ledger``; writing code must go through the journal, which
takes each step in the documented order (an architecture test keeps it so)."""

from __future__ import annotations

import json
import math
import sqlite3
import socket
import time
from typing import Any, Mapping

from ..records import Status
from .ledger import Campaign, Ledger, _clean_metrics, _finite


class LedgerWriter:
    def __init__(self, ledger: Ledger):
        self.ledger = ledger

    @property
    def db(self) -> "sqlite3.Connection":
        return self.ledger.db  # reopened when the watch rebuilt a replaced ledger file

    def tx(self) -> "Ledger._Tx":
        return self.ledger.tx()

    def campaign(self, tag: str) -> Campaign | None:
        return self.ledger.campaign(tag)

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
            db.execute("INSERT INTO sessions(campaign_id, started_at) SELECT id, ? FROM campaigns WHERE tag=?", (now, tag))
        campaign = self.campaign(tag)
        assert campaign is not None
        return campaign

    def touch_campaign(self, campaign: Campaign, config: Mapping[str, Any]) -> None:
        """A campaign goes on: a new session (``autoresearch run`` started again)."""
        now = time.time()
        with self.tx() as db:
            db.execute(
                "UPDATE campaigns SET last_run_at=?, config_json=? WHERE id=?",
                (now, json.dumps(config, sort_keys=True, default=str), campaign.id),
            )
            db.execute("INSERT INTO sessions(campaign_id, started_at) VALUES (?, ?)", (campaign.id, now))

    def rebase_campaign(self, campaign: Campaign, base_commit: str, readonly: Mapping[str, str | None],
                        metric: str | None = None, goal: str | None = None) -> Campaign:
        """Move a campaign whose only experiment is a failed baseline onto a new base commit
        (and, when given, the metric the config now names)."""
        with self.tx() as db:
            db.execute(
                "UPDATE campaigns SET base_commit=?, readonly_json=?, metric=?, goal=? WHERE id=?",
                (base_commit, json.dumps(readonly, sort_keys=True), metric or campaign.metric, goal or campaign.goal,
                 campaign.id),
            )
            db.execute("UPDATE experiments SET commit_sha=? WHERE campaign_id=? AND id=0", (base_commit, campaign.id))
        updated = self.campaign(campaign.tag)
        assert updated is not None
        return updated

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

    def set_proposal(self, campaign: Campaign, id: int, *, description: str, proposal: Mapping[str, Any]) -> None:
        """A proposal written again for a new incumbent (a knobs proposal rebased): what will run."""
        with self.tx() as db:
            db.execute("UPDATE experiments SET description=?, proposal_json=? WHERE campaign_id=? AND id=?",
                       (description, json.dumps(proposal, sort_keys=True, default=str), campaign.id, id))

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
        parent: str | None = None, stats: Mapping[str, float] | None = None, uncommitted: bool = False,
    ) -> None:
        """``uncommitted``: the outcome has no commit (refused before it ran; a commit of an
        earlier attempt, requeued, is no longer what this experiment stands for)."""
        assert status.terminal, status
        sets = ["status=?", "reason=?", "metric=?", "metrics_json=?", "warnings_json=?", "finished_at=?"]
        if uncommitted:
            sets.append("commit_sha=NULL")
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

    def update_stats(self, campaign: Campaign, id: int, *, mean: float, runs_n: int, se: float | None,
                     reason: str | None = None) -> None:
        """New statistics of a kept experiment after it was re-measured (and a new reason, where given)."""
        with self.tx() as db:
            db.execute("UPDATE experiments SET metric=?, mean=?, runs_n=?, se=?, reason=COALESCE(?, reason)"
                       " WHERE campaign_id=? AND id=?",
                       (_finite(mean), _finite(mean), runs_n, _finite(se), reason, campaign.id, id))

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

    def finish_run_by_token(
        self, campaign: Campaign, token: str, *, status: str, exit_code: int | None, eval_exit_code: int | None,
        metric: float | None, metrics: Mapping[str, float], warnings: list[str], problem: str, log_tail: str,
        duration_s: float, curves: Mapping[str, Any] | None = None,
    ) -> None:
        """The end of the run whose processes carried ``token`` (unique per run); ``curves``:
        its progress curves (the early-stopping reference, a pruned trial's values)."""
        with self.tx() as db:
            db.execute(
                "UPDATE runs SET status=?, exit_code=?, eval_exit_code=?, metric=?, metrics_json=?, warnings_json=?,"
                " problem=?, log_tail=?, duration_s=?, finished_at=?, curves_json=? WHERE campaign_id=? AND run_token=?",
                (status, exit_code, eval_exit_code, _finite(metric), json.dumps(_clean_metrics(metrics), sort_keys=True),
                 json.dumps(list(warnings)), problem, log_tail, duration_s, time.time(), _curves_json(curves),
                 campaign.id, token),
            )

    def add_ablation(self, campaign: Campaign, *, runs: int, rows: list[dict[str, Any]]) -> None:
        with self.tx() as db:
            db.execute("INSERT INTO ablations(campaign_id, created_at, runs, rows_json) VALUES (?, ?, ?, ?)",
                       (campaign.id, time.time(), runs, json.dumps(rows, allow_nan=False, default=str)))

    def abandon_open_runs(self, campaign: Campaign) -> int:
        """Mark runs a dead harness left ``running`` as interrupted."""
        with self.tx() as db:
            cur = db.execute(
                "UPDATE runs SET status='interrupted', finished_at=?, problem='the harness stopped during this run'"
                " WHERE campaign_id=? AND status='running'", (time.time(), campaign.id),
            )
            return cur.rowcount

    def restore(self, table: str, row: Mapping[str, Any]) -> None:
        """Put back a row as a recovery record holds it (``doctor --repair``); only the
        table's own columns are taken."""
        if table not in ("campaigns", "experiments", "runs"):
            raise ValueError(f"not a ledger table: {table}")
        columns = [r[1] for r in self.db.execute(f"PRAGMA table_info({table})")]
        names = [c for c in columns if c in row]
        with self.tx() as db:
            db.execute(f"INSERT OR REPLACE INTO {table}({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                       [row[c] for c in names])


def _curves_json(curves: Mapping[str, Any] | None) -> str:
    """Finite points only (a curve is reported by the run: untrusted, bounded by the reader)."""
    out = {str(k): [[float(f), float(v)] for f, v in c if math.isfinite(f) and math.isfinite(v)]
           for k, c in (curves or {}).items()}
    return json.dumps(out)
