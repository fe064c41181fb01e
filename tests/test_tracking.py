"""MLflow export against a local SQLite tracking store (no server): every terminal
experiment becomes a run with params, metrics, status and the diff and log tail as
artifacts; a resumed campaign catches up without duplicates; the user's tracking URI is
honoured."""

from __future__ import annotations

import pytest

from autoresearch.testing import constant_edit, make_synthetic_arena, write_proposals
from conftest import ledger_rows, run_cli

pytestmark = [pytest.mark.slow]  # end-to-end: make test-fast leaves it out

PROPS = [
    {"description": "lower lr", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]},
    {"description": "bad dropout", "edits": [constant_edit("DROPOUT", 0.3, -0.5)]},
    {"description": "narrow", "edits": [constant_edit("WIDTH", 64, 16)]},
]


def runs_in(uri: str, name: str) -> dict[int, object]:
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(name)
    assert exp is not None, f"no MLflow experiment {name}"
    return {int(r.data.tags["autoresearch.experiment"]): r for r in client.search_runs([exp.experiment_id])}


def test_experiments_become_mlflow_runs_and_resume_does_not_duplicate(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    arena = make_synthetic_arena(tmp_path / "arena", config_overrides={"tracking": {"mlflow": True, "uri": uri}})
    props = write_proposals(tmp_path / "p.json", PROPS)
    r = run_cli("run", arena, "--tag", "m", "--proposals", props, "--max-experiments", "3", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    runs = runs_in(uri, "autoresearch/m")
    assert sorted(runs) == [0, 1, 2]
    one = runs[1]
    ledger = ledger_rows(arena, "SELECT * FROM experiments WHERE id = 1")[0]
    assert one.data.params["description"] == "lower lr" and one.data.params["commit"] == ledger["commit_sha"]
    assert one.data.params["proposer"] == "scripted" and one.data.tags["status"] == "keep"
    assert one.data.metrics["val_loss"] == pytest.approx(ledger["metric"])
    assert runs[2].data.tags["status"] == "crash" and "DROPOUT must be in" in runs[2].data.tags["reason"]
    assert runs[2].info.status == "FAILED" and one.info.status == "FINISHED"
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    assert {a.path for a in client.list_artifacts(one.info.run_id)} == {"diff.patch", "log_tail.txt"}
    # a local store keeps its artifacts in the arena's .autoresearch, not in the current directory
    assert one.info.artifact_uri.startswith((arena / ".autoresearch" / "mlflow-artifacts" / "m").as_uri())
    # continue the campaign: the new experiment is exported, the old ones are not duplicated
    r = run_cli("run", arena, "--tag", "m", "--proposals", props, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(runs_in(uri, "autoresearch/m")) == [0, 1, 2, 3]


def test_the_users_tracking_uri_is_honoured(tmp_path):
    uri = f"sqlite:///{tmp_path / 'users.db'}"
    arena = make_synthetic_arena(tmp_path / "arena", config_overrides={"tracking": {"mlflow": True, "experiment": "mine"}})
    props = write_proposals(tmp_path / "p.json", PROPS[:1])
    r = run_cli("run", arena, "--tag", "u", "--proposals", props, env={"MLFLOW_TRACKING_URI": uri}, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(runs_in(uri, "mine")) == [0, 1]


def test_a_broken_tracking_store_never_stops_the_campaign(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena", config_overrides={
        "tracking": {"mlflow": True, "uri": "http://127.0.0.1:9/"}})  # nothing listens on port 9
    props = write_proposals(tmp_path / "p.json", PROPS[:1])
    r = run_cli("run", arena, "--tag", "b", "--proposals", props, env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
                                                                        "MLFLOW_HTTP_REQUEST_TIMEOUT": "2"}, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "MLflow export stopped" in r.stdout
    assert [x["status"] for x in ledger_rows(arena, "SELECT status FROM experiments")] == ["keep", "keep"]


def test_without_a_uri_everything_stays_in_the_arenas_state_directory(tmp_path):
    # MLflow's own default would be ./mlruns in whatever directory the harness started in
    arena = make_synthetic_arena(tmp_path / "arena", config_overrides={"tracking": {"mlflow": True}})
    props = write_proposals(tmp_path / "p.json", PROPS[:1])
    elsewhere = tmp_path / "started-here"
    elsewhere.mkdir()
    env = {"MLFLOW_TRACKING_URI": ""}
    r = run_cli("run", arena, "--tag", "d", "--proposals", props, cwd=elsewhere, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert list(elsewhere.iterdir()) == []
    assert not (arena / "mlruns").exists()
    store = arena / ".autoresearch" / "mlflow.db"
    assert store.is_file()
    runs = runs_in(f"sqlite:///{store}", "autoresearch/d")
    assert sorted(runs) == [0, 1]
    assert runs[1].info.artifact_uri.startswith((arena / ".autoresearch" / "mlflow-artifacts" / "d").as_uri())
