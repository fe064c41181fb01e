"""The confirm judge in real campaigns on the synthetic arena (known ground truth).

The arena's noise here is drawn from AUTORESEARCH_SEED only, so every run is reproducible
and the verdicts cannot flake; run k of every experiment gets seed k."""

from __future__ import annotations

import json
import sqlite3

from autoresearch.store.ledger import SCHEMA_VERSION, Ledger
from autoresearch.testing import constant_edit, make_synthetic_arena, write_proposals
from conftest import ledger_rows, run_cli

# true val_loss: baseline 1.4656; LR 0.003 -> 1.3289 (better by 0.137 = many sigma)
PROPS = [
    {"description": "better: lower lr", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]},
    {"description": "neutral: a comment", "edits": [{"path": "train.py", "search": "WIDTH = 64 ",
                                                      "replace": "WIDTH = 64  # same "}]},
    {"description": "worse: narrow", "edits": [constant_edit("WIDTH", 64, 16)]},
    {"description": "neutral again: another comment", "edits": [{"path": "train.py", "search": "DROPOUT = 0.3 ",
                                                                  "replace": "DROPOUT = 0.3  # same "}]},
]


def test_confirm_campaign(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena", noise_seed_sd=0.01,
                                 config_overrides={"judge": {"policy": "confirm", "remeasure_every": 2}})
    props = write_proposals(tmp_path / "p.json", PROPS)
    r = run_cli("run", arena, "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr
    exps = {x["id"]: x for x in ledger_rows(arena, "SELECT * FROM experiments")}
    assert [exps[i]["status"] for i in range(5)] == ["keep", "keep", "discard", "discard", "discard"]
    runs = ledger_rows(arena, "SELECT experiment_id, purpose, seed, status, metric FROM runs ORDER BY id")
    baseline_runs = [x for x in runs if x["purpose"] == "baseline"]
    assert [x["seed"] for x in baseline_runs] == list(range(8))  # n0 = 8, harness-chosen seeds
    assert exps[0]["runs_n"] == 8 and exps[0]["se"] > 0
    # the improvement is far beyond the noise: kept with a p-value
    assert exps[1]["p_value"] < 0.05 / 3 and exps[1]["runs_n"] >= 1
    assert abs(exps[1]["metric"] - 1.3289) < 0.03
    # the screen run decides the clearly worse change
    assert exps[3]["runs_n"] == 1 and "not better" in exps[3]["reason"]
    # the incumbent was re-measured after every 2 candidates
    remeasures = [x for x in runs if x["purpose"] == "remeasure"]
    assert len(remeasures) == 2 and all(x["experiment_id"] == 1 for x in remeasures)
    for e in exps.values():  # the metric is the mean of the experiment's runs
        ok = [x["metric"] for x in runs if x["experiment_id"] == e["id"] and x["status"] == "ok"]
        if e["status"] in ("keep", "discard"):
            assert abs(e["metric"] - sum(ok) / len(ok)) < 1e-9
    status = json.loads(run_cli("status", arena, "--json").stdout)
    e1 = status["experiments"][1]
    assert e1["runs_n"] == exps[1]["runs_n"] and e1["p_value"] == exps[1]["p_value"] and e1["se"] is not None
    assert len(e1["runs"]) == exps[1]["runs_n"]  # its own runs and the two re-measurements: all count
    assert [r["purpose"] for r in e1["runs"]].count("remeasure") == 2
    text = run_cli("status", arena)
    assert "± se" in text.stdout and "runs" in text.stdout


def test_interrupted_confirmation_reruns_from_scratch(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena", noise_seed_sd=0.01,
                                 config_overrides={"judge": {"policy": "confirm", "remeasure_every": 0}})
    props = write_proposals(tmp_path / "p.json", PROPS[1:2])  # a neutral change: may need several runs
    killed = run_cli("run", arena, "--proposals", props, env={"AUTORESEARCH_CRASH_AT": "after_run:1"})
    assert killed.returncode == -9
    r = run_cli("run", arena, "--proposals", props)
    assert r.returncode == 0, r.stderr
    row = ledger_rows(arena, "SELECT status, attempt, runs_n FROM experiments WHERE id = 1")[0]
    assert row["attempt"] == 2 and row["status"] in ("keep", "discard")
    runs = ledger_rows(arena, "SELECT attempt, status FROM runs WHERE experiment_id = 1 ORDER BY id")
    assert runs[0]["attempt"] == 1 and runs[0]["status"] == "ok"  # its first run finished, then the harness died
    assert sum(1 for x in runs if x["attempt"] == 1) == 1
    # judged on the runs of attempt 2 only
    assert row["runs_n"] == sum(1 for x in runs if x["attempt"] == 2 and x["status"] == "ok") >= 1


def test_schema_1_ledger_is_migrated(tmp_path):
    path = tmp_path / "ledger.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE campaigns (id INTEGER PRIMARY KEY, tag TEXT NOT NULL UNIQUE, branch TEXT NOT NULL,
            base_commit TEXT NOT NULL, metric TEXT NOT NULL, goal TEXT NOT NULL, config_json TEXT NOT NULL,
            readonly_json TEXT NOT NULL, host TEXT NOT NULL, created_at REAL NOT NULL, last_run_at REAL NOT NULL);
        CREATE TABLE experiments (campaign_id INTEGER NOT NULL, id INTEGER NOT NULL, status TEXT NOT NULL,
            description TEXT NOT NULL, proposer TEXT NOT NULL, parent TEXT, commit_sha TEXT, diff TEXT NOT NULL DEFAULT '',
            code_hash TEXT, proposal_json TEXT NOT NULL DEFAULT '{}', reason TEXT NOT NULL DEFAULT '', metric REAL,
            metrics_json TEXT NOT NULL DEFAULT '{}', warnings_json TEXT NOT NULL DEFAULT '[]', attempt INTEGER NOT NULL DEFAULT 1,
            seed INTEGER, host TEXT, slot TEXT, log_path TEXT, tokens INTEGER NOT NULL DEFAULT 0, cost REAL NOT NULL DEFAULT 0,
            created_at REAL NOT NULL, started_at REAL, finished_at REAL, PRIMARY KEY (campaign_id, id));
        INSERT INTO campaigns VALUES (1, 'old', 'autoresearch/old', 'abc', 'val_bpb', 'minimize', '{}', '{}', 'h', 0, 0);
        INSERT INTO experiments (campaign_id, id, status, description, proposer, metric, created_at)
            VALUES (1, 0, 'keep', 'baseline', 'baseline', 1.5, 0);
    """)
    db.close()
    ledger = Ledger(path)
    exps = ledger.experiments(ledger.campaign("old"))
    assert exps[0].metric == 1.5 and exps[0].runs_n is None
    assert ledger.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    assert ledger.db.execute("SELECT COUNT(*) FROM ablations").fetchone()[0] == 0  # v3's table, added by the migration
    ledger.close()
    newer = sqlite3.connect(path)
    newer.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    newer.commit()
    newer.close()
    try:
        Ledger(path)
    except Exception as e:
        assert "newer autoresearch" in str(e)
    else:
        raise AssertionError("a newer schema must be refused")
