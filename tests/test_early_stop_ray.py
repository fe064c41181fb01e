"""Early stopping on a real Ray cluster on loopback: the rule travels with the job and the
node stops a clearly worse candidate; the curves come back with the outcome."""

from __future__ import annotations

import sqlite3

import pytest

from autoresearch.api import run_campaign
from autoresearch.progress import curve_file_for, read_curve_file
from autoresearch.testing import RayCluster, commit_all, write_proposals
from conftest import git
from test_early_stop import CONFIG, TRAIN, edit

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_a_ray_node_stops_a_clearly_worse_candidate(tmp_path):
    cluster = RayCluster(workers=1, cpus=2, resources={"fake_gpu": 2})
    try:
        cluster.start()
        with cluster.driver():
            arena = tmp_path / "arena"
            arena.mkdir()
            (arena / "train.py").write_text(TRAIN)
            (arena / "autoresearch.toml").write_text(CONFIG + f'''
[runner]
kind = "ray"

[runner.ray]
address = "{cluster.address}"
resources = {{ fake_gpu = 1 }}
work_dir = "{cluster.temp_dir / 'nodes'}"
''')
            git(arena, "init", "-q", "-b", "main")
            commit_all(arena, "arena")
            props = write_proposals(tmp_path / "p.json", [
                {"description": "much worse", "edits": edit(START=8.0, FINAL=6.0)},
                {"description": "better", "edits": edit(FINAL=1.8)},
            ])
            outcome, _ = run_campaign(arena, tag="r", proposer_kind="scripted", proposals=props, max_experiments=5)
    finally:
        left = cluster.stop()
        assert left == [], f"processes of the test cluster left behind: {left}"
    assert outcome.exit_code == 0
    db = sqlite3.connect(arena / ".autoresearch" / "ledger.sqlite")
    rows = db.execute("SELECT id, status, reason FROM experiments ORDER BY id").fetchall()
    assert [r[1] for r in rows] == ["keep", "discard", "keep"], rows
    assert rows[1][2].startswith("stopped early at ")
    runs = db.execute("SELECT experiment_id, status, log_path FROM runs ORDER BY id").fetchall()
    assert [r[1] for r in runs] == ["ok", "stopped", "ok"]
    assert len(read_curve_file(curve_file_for(runs[0][2]))["train_loss"]) == 10  # the curve came home
