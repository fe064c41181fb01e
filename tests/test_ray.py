"""The Ray runner on a real cluster on loopback: a head with no CPUs and one worker node with
fake ``fake_gpu`` resources, so every experiment runs on the worker node's processes.

A worker is killed mid-run from inside the run itself (the run finds its Ray worker
process, ``ray::autoresearch_run``, among its ancestors and SIGKILLs it): a real worker
death, at a chosen moment."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autoresearch.api import run_campaign
from autoresearch.errors import ConfigError, InfraError
from autoresearch.testing import RayCluster, constant_edit, make_synthetic_arena, synthetic_true_loss, write_proposals

pytestmark = [pytest.mark.ray, pytest.mark.slow]

CHAOS = '''"""Test helper: records where it runs, and kills its own Ray worker (or its node's raylet) when told to."""
import json, os, signal, sys, time
CONTROL = {control!r}
PHASE = {phase!r}
exp = int(os.environ["AUTORESEARCH_EXPERIMENT_ID"])
with open(os.path.join(CONTROL, "runs.jsonl"), "a") as f:
    f.write(json.dumps({{"exp": exp, "phase": PHASE, "pid": os.getpid(), "cwd": os.getcwd(),
                         "arena_dir": os.environ.get("AUTORESEARCH_ARENA_DIR"),
                         "secret": os.environ.get("OPENAI_API_KEY")}}) + "\\n")
path = os.path.join(CONTROL, "kill.json")
plan = json.load(open(path)) if os.path.exists(path) else {{}}
if plan.get("left", 0) > 0 and exp in plan.get("exps", []) and plan.get("phase", "run") == PHASE:
    plan["left"] -= 1
    json.dump(plan, open(path, "w"))
    # "ray::": the Ray worker running this task dies; "raylet": the node dies (its raylet
    # and every process between it and this one, as when the machine goes away)
    target = plan.get("target", "ray::").encode()
    pid, chain = os.getpid(), []
    while pid > 1:
        stat = open(f"/proc/{{pid}}/stat").read()
        pid = int(stat[stat.rfind(")") + 2:].split()[1])
        chain.append(pid)
        if target in open(f"/proc/{{pid}}/cmdline", "rb").read()[:200]:
            doomed = chain if target == b"raylet" else [pid]
            # each with its start time: once killed, its pid may be reused by then (pids wrap at 32768)
            born = [int(open(f"/proc/{{p}}/stat").read().rsplit(") ", 1)[1].split()[19]) for p in doomed]
            json.dump([list(x) for x in zip(doomed, born)], open(os.path.join(CONTROL, "killed.json"), "w"))
            # all of them stopped before any dies, as when the machine goes away at once: were
            # the run's shell killed first while its Ray worker still ran, the worker would report
            # a plain crash (the run killed by SIGKILL) and its sweep of the run would kill this
            # helper before it reached the rest
            for p in doomed:
                os.kill(p, signal.SIGSTOP)
                time.sleep(plan.get("pause_s", 0))  # (a test makes this helper as slow as a loaded machine can)
            for p in doomed:
                os.kill(p, signal.SIGKILL)
            break
    time.sleep(60)  # the node's guardian kills this process once its worker is dead
    sys.exit(3)
'''

SCORE = '''"""The eval: reads what the run left in its worktree (only there, on the node that ran it)."""
import chaos_eval
print(open("summary.txt").read())
'''


@pytest.fixture(scope="module")
def cluster():
    c = RayCluster(workers=1, cpus=2, resources={"fake_gpu": 2})
    try:
        c.start()  # stops what it started when it fails
        with c.driver():  # this process as its driver: RAY_AUTH_MODE=disabled, restored after
            yield c
    finally:
        left = c.stop()
        assert left == [], f"processes of the test cluster left behind: {left}"


def _arena(tmp_path: Path, cluster: RayCluster, name: str, *, slots: int = 1, run_seconds: float = 0.0,
           **ray: object) -> tuple[Path, Path]:
    control = tmp_path / f"{name}-control"
    control.mkdir()
    py = sys.executable
    arena = make_synthetic_arena(
        tmp_path / name, run_seconds=run_seconds,
        config_overrides={
            "arena": {"run": f"{py} chaos.py && {py} train.py > summary.txt", "eval": f"{py} score.py",
                      "readonly": ["prepare.py", "chaos.py", "score.py", "chaos_eval.py"]},
            "runner": {"kind": "ray", "slots": slots},
            "runner.ray": {"address": cluster.address, "resources": {"fake_gpu": 1},
                           "work_dir": str(cluster.temp_dir / "nodes"), **ray},
        },
        extra_files={"chaos.py": CHAOS.format(control=str(control), phase="run"), "score.py": SCORE,
                     "chaos_eval.py": CHAOS.format(control=str(control), phase="eval")},
    )
    return arena, control


def _runs(control: Path) -> list[dict]:
    path = control / "runs.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _gone_within(pids: list, seconds: float) -> bool:
    """Each process (a pid, or [pid, start time] where its pid may be reused since) gone."""
    end = time.monotonic() + seconds
    while any(_alive(*p) if isinstance(p, list) else _alive(p) for p in pids):
        if time.monotonic() > end:
            return False
        time.sleep(0.1)
    return True


def _alive(pid: int, born: int | None = None) -> bool:
    """Running and not a zombie; where ``born`` is given, the process started then (not a
    later one that was given the same pid)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(") ", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z" and (born is None or int(fields[19]) == born)


def test_campaign_on_the_cluster_eval_on_the_same_node_and_a_killed_worker_retried(tmp_path, cluster, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-driver-secret")
    arena, control = _arena(tmp_path, cluster, "e2e", slots=2,
                            prepare=f"{sys.executable} -c \"open('{tmp_path}/prepared.txt', 'a').write('x')\"")
    (control / "kill.json").write_text(json.dumps({"exps": [1], "left": 1}))
    proposals = write_proposals(tmp_path / "p.json", [
        {"description": "lower lr", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]},                 # 1
        {"description": "writes prepare.py at run time", "edits": [{"path": "train.py", "search": "if __name__",
         "replace": "open('prepare.py', 'a').write('# tampered')\nif __name__"}]},                              # 2
        {"description": "negative dropout", "edits": [constant_edit("DROPOUT", 0.3, -0.5)]},                    # 3
    ])
    events = []
    outcome, _ = run_campaign(arena, proposer_kind="scripted", proposals=proposals, max_experiments=4,
                              report=events.append)
    assert outcome.exit_code == 0, outcome
    db = sqlite3.connect(arena / ".autoresearch" / "ledger.sqlite")
    exps = {r[0]: r[1:] for r in db.execute("SELECT id, status, reason, metric FROM experiments")}
    assert exps[0][0] == "keep" and exps[1][0] == "keep", exps
    assert exps[1][2] == pytest.approx(synthetic_true_loss(0.003, 64, 0.3, 500))
    assert exps[2][0] == "invalid" and "prepare.py" in exps[2][1], exps[2]  # a runtime write on the node counts
    assert exps[3][0] == "crash" and "DROPOUT" in exps[3][1], exps[3]
    # every run happened on the node, in a scratch worktree under work_dir, with the node's prepared arena
    nodes = cluster.temp_dir / "nodes"
    runs = _runs(control)
    assert {r["exp"] for r in runs} == {0, 1, 2, 3}
    runs = [r for r in runs if r["phase"] == "run"]
    assert all(r["cwd"].startswith(str(nodes / "scratch")) for r in runs), runs
    assert all(r["arena_dir"].startswith(str(nodes / "base")) for r in runs), runs
    assert all(r["secret"] is None for r in runs)  # the driver's key never reaches a node's run
    assert (tmp_path / "prepared.txt").read_text() == "x"  # prepare: once per node, not per run
    # the killed try: its worker died, the run was retried on a fresh worker and counted once
    killed = [r for r in runs if r["exp"] == 1]
    assert len(killed) == 2
    assert _gone_within([killed[0]["pid"]], 10), "the run of a killed worker must not outlive it"
    rows = db.execute("SELECT status, log_path FROM runs WHERE experiment_id=1").fetchall()
    assert [r[0] for r in rows] == ["ok"]
    log = Path(rows[0][1]).read_text()
    assert "retried on node" in log and "WorkerCrashedError" in log, log
    eval_log = Path(rows[0][1].replace("-run.log", "-eval.log")).read_text()
    assert "val_loss:" in eval_log  # the eval found summary.txt: it ran where the run ran
    assert any("runner: Ray at" in e.detail for e in events)


def test_infrastructure_failures_requeue_then_stop_and_resume(tmp_path, cluster):
    arena, control = _arena(tmp_path, cluster, "infra")
    (control / "kill.json").write_text(json.dumps({"exps": [1], "left": 100}))
    proposals = write_proposals(tmp_path / "p.json", [
        {"description": "lower lr", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]}])
    with pytest.raises(InfraError, match="3 runs in a row failed"):
        run_campaign(arena, proposer_kind="scripted", proposals=proposals, max_experiments=2)
    db = sqlite3.connect(arena / ".autoresearch" / "ledger.sqlite")
    status, attempt = db.execute("SELECT status, attempt FROM experiments WHERE id=1").fetchone()
    assert status == "pending" and attempt == 4  # never counted against it: still waiting
    rows = db.execute("SELECT status, problem FROM runs WHERE experiment_id=1").fetchall()
    assert [r[0] for r in rows] == ["infra"] * 3
    assert all("2 tries failed" in r[1] and "WorkerCrashedError" in r[1] for r in rows), rows
    assert len([r for r in _runs(control) if r["exp"] == 1 and r["phase"] == "run"]) == 6  # a try and a retry each
    assert _gone_within([r["pid"] for r in _runs(control)], 10)
    db.close()
    # the cluster is healthy again: the same command finishes the experiment
    (control / "kill.json").write_text(json.dumps({"exps": [], "left": 0}))
    outcome, _ = run_campaign(arena, proposer_kind="scripted", proposals=proposals, max_experiments=2)
    assert outcome.exit_code == 0
    db = sqlite3.connect(arena / ".autoresearch" / "ledger.sqlite")
    assert db.execute("SELECT status FROM experiments WHERE id=1").fetchone()[0] == "keep"
    assert db.execute("SELECT count(*) FROM experiments").fetchone()[0] == 2


def _working_in(directory: Path) -> list[int]:
    """Processes whose working directory is under ``directory``."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.readlink(f"/proc/{name}/cwd").startswith(str(directory)) and _alive(int(name)):
                    out.append(int(name))
            except OSError:
                pass
    return out


def test_stopping_the_harness_cancels_the_run_on_its_node(tmp_path, cluster):
    import threading

    from autoresearch.events import StopSignal

    arena, control = _arena(tmp_path, cluster, "stop", run_seconds=60.0)
    stop = StopSignal()
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(out=run_campaign(arena, max_experiments=2, stop=stop)[0]))
    thread.start()
    end = time.monotonic() + 60
    while not _runs(control) and time.monotonic() < end:  # the baseline run has started on the node
        time.sleep(0.2)
    assert _runs(control), "the baseline never started"
    time.sleep(1.0)
    scratch = cluster.temp_dir / "nodes" / "scratch"
    assert _working_in(scratch), "the run should be working on the node now"
    t0 = time.monotonic()
    stop.set(2)  # what Ctrl-C does
    thread.join(60)
    assert not thread.is_alive() and result["out"].exit_code == 130
    assert time.monotonic() - t0 < 30  # not the 60 s of the run
    assert _gone_within(_working_in(scratch), 10), "the cancelled run must not go on on its node"
    db = sqlite3.connect(arena / ".autoresearch" / "ledger.sqlite")
    assert db.execute("SELECT status FROM experiments WHERE id=0").fetchone()[0] == "interrupted"


def test_a_node_without_the_data_stops_the_campaign_with_what_to_do(tmp_path, cluster):
    arena, _ = _arena(tmp_path, cluster, "nodata", data_paths=["/nonexistent/shared/data"])
    with pytest.raises(InfraError, match=r"lacks /nonexistent/shared/data.*mount the shared file system"):
        run_campaign(arena, max_experiments=2)


def test_resources_no_node_has_are_refused_before_anything_runs(tmp_path, cluster):
    arena, _ = _arena(tmp_path, cluster, "nofit", resources={"tpu": 1})
    with pytest.raises(ConfigError, match=r"no node of the Ray cluster can hold one experiment.*tpu"):
        run_campaign(arena, max_experiments=2)
    assert not (arena / ".autoresearch" / "ledger.sqlite").exists()


def test_the_cli_runs_a_campaign_on_the_cluster_through_ray_client(tmp_path, cluster):
    # --ray-address ray://HOST:PORT: the driver talks to the cluster through Ray Client
    arena = make_synthetic_arena(tmp_path / "cli", config_overrides={
        "runner.ray": {"resources": {"fake_gpu": 1}, "work_dir": str(cluster.temp_dir / "nodes")}})
    env = cluster.driver_environ({k: v for k, v in os.environ.items() if not k.startswith("RAY_")})
    proc = subprocess.run(
        [sys.executable, "-m", "autoresearch", "run", str(arena), "--runner", "ray", "--ray-address", cluster.client_address,
         "--slots", "2", "-n", "4"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"runner: Ray at {cluster.client_address}" in proc.stdout, proc.stdout
    tsv = (arena / "results.tsv").read_text().splitlines()
    assert len(tsv) == 5 and "keep" in tsv[1], (tsv, proc.stdout)


def test_a_node_dying_during_the_eval_reruns_the_experiment_on_another_node(tmp_path, cluster):
    """The eval must run where the run left its checkpoint. When that node dies (its raylet
    is killed), the run is done again on a surviving node and the eval follows it there."""
    cluster.add_worker()  # a second node; the first one dies in this test (so: the last test here)
    arena, control = _arena(tmp_path, cluster, "nodedeath")
    # the helper pauses after its first signal, as a loaded machine can make it: were the
    # node's processes killed one by one, its Ray worker would see only its run killed by
    # SIGKILL (a plain crash) and sweep the run, this helper included, before the rest died
    plan = {"exps": [1], "left": 1, "phase": "eval", "target": "raylet", "pause_s": 0.5}
    (control / "kill.json").write_text(json.dumps(plan))
    proposals = write_proposals(tmp_path / "p.json", [
        {"description": "lower lr", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]}])
    outcome, _ = run_campaign(arena, proposer_kind="scripted", proposals=proposals, max_experiments=2)
    assert outcome.exit_code == 0, outcome
    # the node did die: its raylet, its Ray worker and the eval's shell
    assert _gone_within(json.loads((control / "killed.json").read_text()), 1), "the helper did not kill the node"
    db = sqlite3.connect(arena / ".autoresearch" / "ledger.sqlite")
    status, reason = db.execute("SELECT status, reason FROM experiments WHERE id=1").fetchone()
    tails = db.execute("SELECT status, problem, log_tail FROM runs WHERE experiment_id=1").fetchall()
    assert status == "keep", (reason, tails, _runs(control))
    rows = db.execute("SELECT status, log_path FROM runs WHERE experiment_id=1").fetchall()
    assert [r[0] for r in rows] == ["ok"]
    eval_log = Path(rows[0][1].replace("-run.log", "-eval.log")).read_text()
    assert "retried on node" in eval_log and "val_loss:" in eval_log, eval_log
    evals = [r for r in _runs(control) if r["exp"] == 1 and r["phase"] == "eval"]
    runs = [r for r in _runs(control) if r["exp"] == 1 and r["phase"] == "run"]
    assert len(evals) == 2 and len(runs) == 2  # the run was done again before the second eval
    # a worker whose raylet died exits within seconds (killing its direct children); the
    # detached guardian then sweeps the rest of the run
    assert _gone_within([evals[0]["pid"]], 10), "the eval of a dead node must not outlive its worker"
