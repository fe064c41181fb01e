"""End-to-end campaigns through the real CLI: real git, real subprocesses, real SQLite."""

from __future__ import annotations

import json
import tomllib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autoresearch.testing import commit_all, constant_edit, make_synthetic_arena, write_proposals
from conftest import _env, git, ledger_rows, run_cli

LR = lambda old, new: constant_edit("LEARNING_RATE", old, new)  # noqa: E731
WIDTH = lambda old, new: constant_edit("WIDTH", old, new)  # noqa: E731
DROPOUT = lambda old, new: constant_edit("DROPOUT", old, new)  # noqa: E731

SLEEP_EDIT = {"path": "train.py", "search": 'if __name__ == "__main__":',
              "replace": 'import time\ntime.sleep(120)\nif __name__ == "__main__":'}


def proposals_file(tmp_path: Path, entries: list[dict]) -> Path:
    return write_proposals(tmp_path / "proposals.json", entries)


def statuses(arena: Path) -> list[tuple[int, str]]:
    return [(r["id"], r["status"]) for r in ledger_rows(arena, "SELECT id, status FROM experiments ORDER BY id")]


def test_scripted_campaign_end_to_end(arena, tmp_path):
    head_before = git(arena, "rev-parse", "HEAD")
    train_before = (arena / "train.py").read_text()
    props = proposals_file(tmp_path, [
        {"description": "lower the learning rate", "edits": [LR(0.01, 0.003)]},                       # 1 keep
        {"description": "narrow the model", "edits": [WIDTH(64, 16)]},                                # 2 discard
        {"description": "edit the evaluator", "edits": [{"path": "prepare.py", "search": "NOISE_RUN_SD = 0.0",
                                                         "replace": "NOISE_RUN_SD = -1.0"}]},         # 3 invalid (FAULTS 1)
        {"description": "break the syntax", "edits": [{"path": "train.py", "search": "WIDTH = 64",
                                                       "replace": "WIDTH = = 64"}]},                  # 4 invalid (FAULTS 10)
        {"description": "negative dropout", "edits": [DROPOUT(0.3, -0.5)]},                           # 5 crash
        {"description": "narrow the model again", "edits": [WIDTH(64, 16)]},                          # 6 invalid duplicate (FAULTS 11)
        {"description": "search for nothing", "edits": [{"path": "train.py", "search": "DEPTH = 8", "replace": "DEPTH = 9"}]},  # 7 invalid
        {"description": "escape the arena", "edits": [{"path": "../outside.py", "search": "", "replace": "x = 1\n"}]},        # 8 invalid (FAULTS 9)
        {"description": "less dropout", "edits": [DROPOUT(0.3, 0.1)]},                                # 9 keep
    ])
    r = run_cli("run", arena, "--tag", "t1", "--proposals", props, "--max-experiments", "50")
    assert r.returncode == 0, r.stderr + r.stdout
    assert "proposals exhausted" in r.stdout

    assert statuses(arena) == [(0, "keep"), (1, "keep"), (2, "discard"), (3, "invalid"), (4, "invalid"), (5, "crash"),
                               (6, "invalid"), (7, "invalid"), (8, "invalid"), (9, "keep")]
    rows = {r["id"]: r for r in ledger_rows(arena, "SELECT * FROM experiments")}
    assert "not editable" in rows[3]["reason"]
    assert "train.py does not parse: line" in rows[4]["reason"]
    assert "DROPOUT must be in [0, 1)" in rows[5]["reason"] and "exited with code 1" in rows[5]["reason"]
    assert rows[6]["reason"] == "duplicate: the same code was already tried as experiment 2"
    assert "matches nothing" in rows[7]["reason"] and "nearest lines" in rows[7]["reason"]
    assert "leaves the arena" in rows[8]["reason"]
    assert not (arena.parent / "outside.py").exists()

    # git: the branch is the chain of kept commits; discarded and crashed ones are archived
    c = {i: rows[i]["commit_sha"] for i in rows}
    assert c[0] == head_before
    assert git(arena, "rev-parse", "autoresearch/t1") == c[9]
    assert git(arena, "rev-list", "autoresearch/t1").split() == [c[9], c[1], c[0]]
    refs = git(arena, "for-each-ref", "--format=%(refname) %(objectname)", "refs/autoresearch/").splitlines()
    assert sorted(refs) == sorted([f"refs/autoresearch/t1/discarded/2 {c[2]}", f"refs/autoresearch/t1/discarded/5 {c[5]}"])
    for i in (3, 4, 6, 7, 8):
        assert c[i] is None
    assert "WIDTH = 16" in git(arena, "show", f"{c[2]}:train.py")
    assert rows[9]["parent"] == c[1] and rows[1]["parent"] == c[0] and rows[0]["parent"] is None

    # the user's checkout is untouched, and our files do not make it dirty
    assert git(arena, "rev-parse", "HEAD") == head_before
    assert (arena / "train.py").read_text() == train_before
    assert git(arena, "status", "--porcelain") == ""
    exclude = (arena / ".git" / "info" / "exclude").read_text()
    assert "/.autoresearch/" in exclude and "/results.tsv" in exclude and not (arena / ".gitignore").exists()

    # runs are their own table; one run per experiment that ran
    runs = ledger_rows(arena, "SELECT experiment_id, status, exit_code, purpose FROM runs ORDER BY id")
    assert [(r["experiment_id"], r["status"]) for r in runs] == [
        (0, "ok"), (1, "ok"), (2, "ok"), (5, "crash"), (9, "ok")]
    assert runs[0]["purpose"] == "baseline" and runs[3]["exit_code"] == 1

    expected = "\n".join([
        "commit\tval_loss\tmemory_gb\tstatus\tdescription",
        f"{c[0][:7]}\t1.465557\t0.2\tkeep\tbaseline",
        f"{c[1][:7]}\t1.328856\t0.2\tkeep\tlower the learning rate",
        f"{c[2][:7]}\t1.928856\t0.1\tdiscard\tnarrow the model",
        "0000000\t0.000000\t0.0\tinvalid\tedit the evaluator",
        "0000000\t0.000000\t0.0\tinvalid\tbreak the syntax",
        f"{c[5][:7]}\t0.000000\t0.0\tcrash\tnegative dropout",
        "0000000\t0.000000\t0.0\tinvalid\tnarrow the model again",
        "0000000\t0.000000\t0.0\tinvalid\tsearch for nothing",
        "0000000\t0.000000\t0.0\tinvalid\tescape the arena",
        f"{c[9][:7]}\t1.248856\t0.2\tkeep\tless dropout",
    ]) + "\n"
    assert (arena / "results.tsv").read_text() == expected
    assert (arena / ".autoresearch" / "t1" / "results.tsv").read_text() == expected

    # status --json has the settled shape
    s = run_cli("status", arena, "--json")
    assert s.returncode == 0, s.stderr
    data = json.loads(s.stdout)
    assert data["campaign"]["tag"] == "t1" and data["campaign"]["best"]["id"] == 9
    e9 = data["experiments"][9]
    for key in ("id", "parent", "commit", "status", "description", "proposer", "metrics", "runs", "tokens", "cost"):
        assert key in e9
    assert e9["metrics"]["val_loss"] == pytest.approx(1.248856, abs=1e-6)
    assert e9["proposer"] == "scripted" and len(e9["runs"]) == 1 and e9["runs"][0]["status"] == "ok"
    text = run_cli("status", arena)
    assert text.returncode == 0 and "best val_loss: 1.248856" in text.stdout and "less dropout" in text.stdout

    # running the same command again converges: nothing new, nothing duplicated
    again = run_cli("run", arena, "--tag", "t1", "--proposals", props, "--max-experiments", "50")
    assert again.returncode == 0 and "proposals exhausted" in again.stdout
    assert len(statuses(arena)) == 10
    assert (arena / "results.tsv").read_text() == expected


def test_max_experiments_counts_baseline_and_invalid_and_continues(arena, tmp_path):
    props = proposals_file(tmp_path, [
        {"description": "not editable", "edits": [{"path": "prepare.py", "search": "a", "replace": "b"}]},
        {"description": "lower lr", "edits": [LR(0.01, 0.003)]},
        {"description": "wider", "edits": [WIDTH(64, 256)]},
    ])
    r = run_cli("run", arena, "--proposals", props, "--max-experiments", "2")
    assert r.returncode == 0, r.stderr
    assert "reached --max-experiments 2" in r.stdout
    assert statuses(arena) == [(0, "keep"), (1, "invalid")]
    # the default tag is the arena's latest campaign: this continues it
    r = run_cli("run", arena, "--proposals", props, "--max-experiments", "3")
    assert r.returncode == 0, r.stderr
    assert statuses(arena) == [(0, "keep"), (1, "invalid"), (2, "keep")]
    tags = [row["tag"] for row in ledger_rows(arena, "SELECT tag FROM campaigns")]
    assert len(tags) == 1 and tags[0][:3].isalpha()


def test_corrupted_results_tsv_is_rebuilt_from_the_ledger(arena, tmp_path):
    # FAULTS 22
    props = proposals_file(tmp_path, [{"description": "lower lr", "edits": [LR(0.01, 0.003)]}])
    assert run_cli("run", arena, "--proposals", props).returncode == 0
    good = (arena / "results.tsv").read_text()
    (arena / "results.tsv").write_bytes(b"\x00garbage\tfrom\tsomeone else\n" * 3)
    r = run_cli("run", arena, "--proposals", props)
    assert r.returncode == 0, r.stderr
    assert (arena / "results.tsv").read_text() == good


def test_eval_result_is_the_only_one_that_counts(tmp_path):
    # FAULTS 2: the run prints a fake metric and writes a fake result file; the eval decides.
    evaluate = (
        "import json, os\n"
        "from prepare import true_loss\n"
        "import train\n"
        "loss = true_loss(train.LEARNING_RATE, train.WIDTH, train.DROPOUT, train.WARMUP_STEPS)\n"
        "print('---')\nprint(f'val_loss: {loss:.6f}')\n"
    )
    arena = make_synthetic_arena(
        tmp_path / "arena", extra_files={"evaluate.py": evaluate},
        config_overrides={"arena": {"readonly": ["prepare.py", "evaluate.py"], "eval": f"{sys.executable} evaluate.py"}},
    )
    cheat = {"path": "train.py", "search": 'if __name__ == "__main__":',
             "replace": ('if __name__ == "__main__":\n    import json, os\n    print("---\\nval_loss: 0.0001")\n'
                         '    json.dump({"val_loss": 0.0001}, open(os.environ["AUTORESEARCH_RESULT_FILE"], "w"))\n'
                         '    raise SystemExit(0)')}
    props = proposals_file(tmp_path, [{"description": "print a fake metric", "edits": [cheat]}])
    r = run_cli("run", arena, "--proposals", props)
    assert r.returncode == 0, r.stderr + r.stdout
    rows = ledger_rows(arena, "SELECT id, status, metric, warnings_json FROM experiments ORDER BY id")
    assert rows[1]["status"] == "discard"  # same constants as the baseline: no real gain
    assert rows[1]["metric"] == pytest.approx(1.465557, abs=1e-6)
    assert "only the eval's" in rows[1]["warnings_json"]


def test_secrets_in_the_harness_environment_never_reach_a_run(arena, tmp_path):
    dump = {"path": "train.py", "search": 'if __name__ == "__main__":',
            "replace": 'import os\nprint(sorted(os.environ.items()))\nif __name__ == "__main__":'}
    props = proposals_file(tmp_path, [{"description": "print the environment", "edits": [dump]}])
    secrets = {"OPENAI_API_KEY": "sk-live-abcdef123456", "ANTHROPIC_API_KEY": "sk-ant-zyx987",
               "HF_TOKEN": "hf_token_value_42", "CUDA_VISIBLE_DEVICES": "0"}
    r = run_cli("run", arena, "--proposals", props, env=secrets)
    assert r.returncode == 0, r.stderr
    log = next((arena / ".autoresearch").glob("*/logs/0001-a1-run.log")).read_text()
    assert "AUTORESEARCH_SEED" in log and "CUDA_VISIBLE_DEVICES" in log
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "HF_TOKEN"):
        assert name not in log and secrets[name] not in log


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def start_cli(*args, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autoresearch", *map(str, args)], env=_env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def token_holders(arena: Path) -> list[int]:
    from autoresearch.runners.proctree import process_table, run_token_of

    tokens = {f"AUTORESEARCH_RUN_TOKEN={r['run_token']}".encode() for r in ledger_rows(arena, "SELECT run_token FROM runs")}
    return [pid for pid in process_table() if run_token_of(pid) in tokens]


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_interrupts_then_resume_reruns_with_attempt_2(arena, tmp_path, sig, code):
    # FAULTS 21 (and 20: a second harness on the same campaign is refused)
    props = proposals_file(tmp_path, [{"description": "sleep forever", "edits": [SLEEP_EDIT]},
                                      {"description": "lower lr", "edits": [LR(0.01, 0.003)]}])
    proc = start_cli("run", arena, "--tag", "sig", "--proposals", props)
    wait_for(lambda: (1, "running") in statuses(arena) and token_holders(arena), what="experiment 1 to run")

    second = run_cli("run", arena, "--tag", "sig", "--proposals", props)
    assert second.returncode == 1 and "already running" in second.stderr

    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, out + err
    assert statuses(arena) == [(0, "keep"), (1, "interrupted")]
    assert [r["status"] for r in ledger_rows(arena, "SELECT status FROM runs ORDER BY id")] == ["ok", "interrupted"]
    assert token_holders(arena) == []
    assert "interrupted\tsleep forever" in (arena / "results.tsv").read_text()
    assert "done: interrupted; run the same command again to resume" in out  # what to do next (a newcomer's trial)

    # resume: the interrupted experiment runs again under its id, attempt 2 (here: killed at a short timeout)
    r = run_cli("run", arena, "--tag", "sig", "--proposals", props, "--timeout", "3", "--time-budget", "1")
    assert r.returncode == 0, r.stderr + r.stdout
    rows = ledger_rows(arena, "SELECT id, status, attempt, reason FROM experiments ORDER BY id")
    assert [(x["id"], x["status"], x["attempt"]) for x in rows] == [(0, "keep", 1), (1, "timeout", 2), (2, "keep", 1)]
    assert "3 s timeout" in rows[1]["reason"]
    assert token_holders(arena) == []


def test_baseline_crash_exits_1_with_the_log_tail_then_recovers(tmp_path):
    # FAULTS 30: a baseline that crashes is recorded, then the campaign stops with what to fix.
    arena = make_synthetic_arena(tmp_path / "arena")
    train = (arena / "train.py").read_text()
    (arena / "train.py").write_text(train.replace("DROPOUT = 0.3 ", "DROPOUT = 1.5 "))
    commit_all(arena, "break it")
    props = proposals_file(tmp_path, [{"description": "lower lr", "edits": [LR(0.01, 0.003)]}])
    r = run_cli("run", arena, "--proposals", props)
    assert r.returncode == 1
    assert "the baseline (crash) failed" in r.stderr and "DROPOUT must be in [0, 1), got 1.5" in r.stderr
    assert "Traceback" in r.stderr  # the log tail is shown
    assert statuses(arena) == [(0, "crash")]
    assert "crash\tbaseline" in (arena / "results.tsv").read_text()
    # fix, commit, run again: the campaign restarts from the fixed HEAD
    (arena / "train.py").write_text(train)
    fixed = commit_all(arena, "fix it")
    r = run_cli("run", arena, "--proposals", props)
    assert r.returncode == 0, r.stderr
    rows = ledger_rows(arena, "SELECT id, status, attempt, commit_sha FROM experiments ORDER BY id")
    assert [(x["id"], x["status"], x["attempt"]) for x in rows] == [(0, "keep", 2), (1, "keep", 1)]
    assert rows[0]["commit_sha"] == fixed


def test_baseline_without_the_metric(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena", config_overrides={"metric": {"name": "val_bpb"}})
    props = proposals_file(tmp_path, [{"description": "x", "edits": [LR(0.01, 0.003)]}])
    r = run_cli("run", arena, "--proposals", props)
    assert r.returncode == 1
    assert "the run reported no val_bpb" in r.stderr and "reports val_bpb" in r.stderr
    assert 'did you mean [metric] name = "val_loss"' in r.stderr  # the log tail had val_loss: ...
    # a campaign whose only experiment is the failed baseline restarts with the metric named now
    # (here on the command line; a committed config change does the same)
    r = run_cli("run", arena, "--proposals", props, "--metric", "val_loss")
    assert r.returncode == 0, r.stdout + r.stderr
    assert statuses(arena) == [(0, "keep"), (1, "keep")]
    campaign = json.loads(run_cli("status", arena, "--json").stdout)["campaign"]
    assert campaign["metric"] == "val_loss" and campaign["baseline"] is not None
    # once the campaign has measured something, its metric is settled
    r = run_cli("run", arena, "--proposals", props, "--metric", "val_bpb")
    assert r.returncode == 1 and "start a new campaign with --tag NEW" in r.stderr


def test_baseline_timeout(arena, tmp_path):
    props = proposals_file(tmp_path, [{"description": "x", "edits": [LR(0.01, 0.003)]}])
    t0 = time.time()
    r = run_cli("run", arena, "--proposals", props, "--run-cmd", "sleep 100", "--time-budget", "1", "--timeout", "2",
                "--set", "runner.kill_grace_s=0.2")
    assert r.returncode == 1 and "the baseline (timeout) failed" in r.stderr and "2 s timeout" in r.stderr
    assert time.time() - t0 < 60
    assert statuses(arena) == [(0, "timeout")]


def test_a_run_killed_part_way_records_no_metric(arena, tmp_path):
    # what a run printed before it was killed at its timeout is some step's value, not its result:
    # here a "val_loss: 0.001" far better than any real one, then a hang
    hang = {"path": "train.py", "search": 'if __name__ == "__main__":',
            "replace": 'import time\nprint("val_loss: 0.001", flush=True)\ntime.sleep(120)\nif __name__ == "__main__":'}
    crash = {**hang, "replace": 'import sys\nprint("val_loss: 0.001", flush=True)\nsys.exit(1)\nif __name__ == "__main__":'}
    props = proposals_file(tmp_path, [{"description": "print then hang", "edits": [hang]},
                                      {"description": "print then crash", "edits": [crash]}])
    r = run_cli("run", arena, "--tag", "cut", "--proposals", props, "--timeout", "3", "--time-budget", "1",
                "--set", "runner.kill_grace_s=0.2")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = ledger_rows(arena, "SELECT id, status, metric, metrics_json FROM experiments ORDER BY id")
    assert [(x["id"], x["status"]) for x in rows] == [(0, "keep"), (1, "timeout"), (2, "crash")]
    for row in rows[1:]:
        assert row["metric"] is None and "val_loss" not in json.loads(row["metrics_json"] or "{}")
    assert "0.001" not in (arena / "results.tsv").read_text()
    status = json.loads(run_cli("status", arena, "--tag", "cut", "--json").stdout)
    assert "val_loss" not in next(e for e in status["experiments"] if e["id"] == 1)["metrics"]


@pytest.mark.parametrize(
    "setup, args, message",
    [
        ("nogit", [], "is not inside a git repository"),
        ("dirty", [], "uncommitted changes (train.py)"),
        ("untracked", [], "uncommitted changes (notes.txt)"),
        ("badcmd", [], "'definitely-not-a-command' is not on the PATH"),
        ("missing-editable", ["--editable", "model.py"], "not in commit"),
        ("typo-editable", ["--editable", "trian.py"], "trian.py (did you mean train.py?)"),
        ("typo-editable-knobs", ["--editable", "trian.py", "--proposer", "knobs"], "trian.py (did you mean train.py?)"),
        ("missing-editable-knobs", ["--editable", "model.py", "--proposer", "knobs"],
         "editable file(s) not found in"),
        ("missing-readonly", ["--readonly", "data.py"], "data.py"),
        ("badconfig", [], "unknown key 'budget' in [arena] (autoresearch.toml)"),
        ("noknobs", [], "the knobs proposer found nothing to tune in the editable files (train.py)"),
        ("llm", ["--proposer", "llm"], "the llm proposer needs a model: pass --model NAME"),
        ("llm-nokey", ["--proposer", "llm", "--model", "gpt-x", "--set", "proposer.llm.api_key_env=NO_SUCH_KEY_FOR_TESTS"],
         "needs an API key in the environment variable NO_SUCH_KEY_FOR_TESTS"),
        ("badjudge", ["--judge", "bayes"], "judge.policy"),
        ("ray", ["--runner", "ray", "--ray-address", "auto"], "cannot reach a Ray cluster at 'auto'"),
    ],
)
def test_clear_errors_before_the_campaign_starts(tmp_path, setup, args, message):
    # FAULTS 30, 31
    if setup == "nogit":
        arena = tmp_path / "plain"
        arena.mkdir()
        (arena / "train.py").write_text("print(1)\n")
        (arena / "prepare.py").write_text("TIME_BUDGET = 300\n")  # a karpathy layout: zero-config, then git is checked
    else:
        arena = make_synthetic_arena(tmp_path / "arena")
    config = arena / "autoresearch.toml"
    if setup == "dirty":
        (arena / "train.py").write_text((arena / "train.py").read_text() + "\n# local edit\n")
    elif setup == "untracked":
        (arena / "notes.txt").write_text("x")
    elif setup == "badcmd":
        config.write_text(config.read_text().replace('run = ', 'run = "definitely-not-a-command train.py"\n#'))
        commit_all(arena, "cfg")
    elif setup == "badconfig":
        config.write_text(config.read_text().replace("[arena]", "[arena]\nbudget = 3"))
        commit_all(arena, "cfg")
    elif setup == "noknobs":  # no proposer configured: knobs is the default, and it needs constants
        config.write_text(config.read_text().replace('kind = "scripted"', ""))
        (arena / "train.py").write_text("from prepare import evaluate, report\nreport(evaluate(0.01, 64, 0.3, 500))\n")
        commit_all(arena, "cfg")
    # (a proposals file would choose the scripted proposer: the knobs case goes without)
    extra = [] if setup == "noknobs" else ["--proposals", proposals_file(tmp_path, [])]
    # "auto" looks for a cluster started on this machine (Ray's temp dir): an empty one here,
    # whatever else runs on the machine
    env = {"RAY_TMPDIR": str(tmp_path / "no-ray")} if setup == "ray" else None
    r = run_cli("run", arena, *args, *extra, env=env)
    # a bad flag value is a usage error (exit 2); the rest are arena and config errors (1)
    assert r.returncode == (2 if setup == "badjudge" else 1), r.stdout + r.stderr
    assert message in r.stderr
    if setup not in ("nogit",):
        assert git(arena, "branch", "--list", "autoresearch/*") == ""


def test_where_most_candidates_crash_the_same_way_the_summary_says_so(arena, tmp_path):
    props = proposals_file(tmp_path, [{"description": f"dropout {v}", "edits": [DROPOUT(old, v)]}
                                      for old, v in ((0.3, -0.5), (0.3, 0.2), (0.2, -0.6), (0.2, -0.7))])
    r = run_cli("run", arena, "--tag", "t", "--proposals", props, "--max-experiments", "10")
    assert r.returncode == 0, r.stderr + r.stdout
    assert statuses(arena) == [(0, "keep"), (1, "crash"), (2, "keep"), (3, "crash"), (4, "crash")]
    said = "3 of 4 candidates crashed, timed out or ran far over budget, 3 of them the same way (#1, #3, #4)"
    assert said in " ".join(r.stdout.split()) and "DROPOUT must be in [0, 1)" in r.stdout
    assert said in " ".join(run_cli("status", arena, "--tag", "t").stdout.split())


def test_dirty_tree_allowed_with_flag_runs_from_head(arena, tmp_path):
    (arena / "notes.txt").write_text("scratch")
    props = proposals_file(tmp_path, [{"description": "lower lr", "edits": [LR(0.01, 0.003)]}])
    r = run_cli("run", arena, "--proposals", props, "--allow-dirty")
    assert r.returncode == 0, r.stderr
    assert (arena / "notes.txt").read_text() == "scratch"


def test_usage_errors_exit_2(arena, tmp_path):
    assert run_cli("run", arena, "--max-experiments", "0").returncode == 2
    assert run_cli("run", arena, "--no-such-flag").returncode == 2
    never = run_cli("status", arena)
    assert never.returncode == 1 and "no campaign has run" in never.stderr
    assert run_cli("run", arena, "--proposals", proposals_file(tmp_path, [])).returncode == 0
    unknown = run_cli("status", arena, "--tag", "nope")
    assert unknown.returncode == 2 and "--tag 'nope': no such campaign" in unknown.stderr


def test_existing_branch_without_campaign_is_refused(arena, tmp_path):
    git(arena, "branch", "autoresearch/mine")
    props = proposals_file(tmp_path, [])
    r = run_cli("run", arena, "--tag", "mine", "--proposals", props)
    assert r.returncode == 1 and "branch autoresearch/mine exists" in r.stderr


def test_symlink_out_of_the_worktree_is_refused(tmp_path):
    # FAULTS 9: an editable path that is a symlink pointing outside the worktree
    outside = tmp_path / "outside.py"
    outside.write_text("X = 1\n")
    arena = make_synthetic_arena(tmp_path / "arena", config_overrides={"arena": {"editable": ["train.py", "link.py"]}})
    os.symlink(outside, arena / "link.py")
    commit_all(arena, "add link")
    props = proposals_file(tmp_path, [{"description": "write through the link",
                                       "edits": [{"path": "link.py", "search": "", "replace": "X = 2\n"}]}])
    r = run_cli("run", arena, "--proposals", props)
    assert r.returncode == 0, r.stderr
    row = ledger_rows(arena, "SELECT status, reason FROM experiments WHERE id=1")[0]
    assert row["status"] == "invalid" and "symlink" in row["reason"]
    assert outside.read_text() == "X = 1\n"


def test_dry_run_prints_the_effective_config(arena):
    r = run_cli("run", arena, "--dry-run", "--time-budget", "7")
    assert r.returncode == 0, r.stderr
    assert "source: autoresearch.toml; command-line overrides: arena.time_budget_s" in r.stdout
    assert "time_budget_s = 7.0" in r.stdout and "timeout_s = 30.0" in r.stdout
    assert not (arena / ".autoresearch").exists()
    # a setting the default sampler ignores says so, and the listing is still TOML (a newcomer's trial)
    assert 'changes_per_trial = 2  # sampler "auto" changes every knob in each proposal; this applies only' in r.stdout
    assert 'startup_trials = 4  # sampler "auto" uses it only where every searched knob' in r.stdout
    listing = "\n".join(line for line in r.stdout.splitlines() if not line.startswith("warning"))
    assert tomllib.loads(listing)["proposer"]["knobs"]["changes_per_trial"] == 2
    named = run_cli("run", arena, "--dry-run", "--sampler", "tpe")
    assert "changes_per_trial = 2\n" in named.stdout  # a named sampler uses it


def test_the_dry_run_says_run_would_refuse_uncommitted_changes(tmp_path):
    """A newcomer's trial (2026-12-05): the dry run passed with a new autoresearch.toml
    uncommitted; `run` then refused."""
    arena = make_synthetic_arena(tmp_path / "arena")
    clean = run_cli("run", arena, "--dry-run")
    assert clean.returncode == 0 and "uncommitted" not in clean.stderr
    (arena / "notes.txt").write_text("draft\n")
    r = run_cli("run", arena, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "note: the arena has uncommitted changes (notes.txt): `run` refuses to start until they are committed" in r.stderr
    assert "uncommitted changes (notes.txt)" in run_cli("run", arena, "-n", "1").stderr  # as it said
    assert not (arena / ".autoresearch").exists()


def test_the_dry_run_says_run_would_find_nothing_to_tune(tmp_path):
    """An HF trial (2026-12-05): the dry run exited 0 over a table of 0 searched knobs; `run`
    then refused at once."""
    arena = make_synthetic_arena(tmp_path / "arena")
    (arena / "train.py").write_text("import os\nSEED = 0\nprint('val_loss: 1.0')\n")  # only a seed: frozen
    commit_all(arena, "nothing to tune")
    r = run_cli("run", arena, "--dry-run", "--proposer", "knobs")
    assert r.returncode == 1 and "error: the knobs proposer found nothing to tune" in r.stderr, r.stdout + r.stderr
    assert "nothing to tune" in run_cli("run", arena, "--proposer", "knobs", "-n", "1").stderr  # as it said


def test_init_example_and_plain_init(tmp_path):
    r = run_cli("init", tmp_path / "ex", "--example", "synthetic")
    assert r.returncode == 0, r.stderr
    assert git(tmp_path / "ex", "status", "--porcelain") == ""
    assert (tmp_path / "ex" / "proposals.yaml").exists()
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "train.py").write_text("print('val_bpb: 1.0')\n")
    (plain / "data").mkdir()
    (plain / "data" / "big.bin").write_bytes(b"\0" * 12_000_000)  # a user's data: never committed unasked
    r = run_cli("init", plain)
    assert r.returncode == 0, r.stderr
    # a folder that was no repository: initialised, but the user's files are the user's to commit (a trial)
    assert "initialised a git repository" in r.stdout and "committed the arena" not in r.stdout
    assert subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=plain).returncode != 0
    said = " ".join(r.stdout.split())
    assert "best kept out of the commit (list them in .gitignore; [arena] data links a data directory into " \
           "each run): data/ (12 MB)" in said, said
    command = said.split("`")[-4]
    assert command == "git add . && git commit -m 'autoresearch arena'", said
    (plain / ".gitignore").write_text("data/\n")  # as the note says
    subprocess.run(command, shell=True, cwd=plain, check=True, env={**os.environ, "GIT_AUTHOR_NAME": "t",
                   "GIT_AUTHOR_EMAIL": "t@localhost", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@localhost"})
    assert git(plain, "ls-files").split() == [".gitignore", "autoresearch.toml", "program.md", "train.py"]
    dry = run_cli("run", plain, "--dry-run")  # (a print and no literal: `run` would find nothing to tune, and says so)
    assert dry.returncode == 1 and 'editable = ["train.py"]' in dry.stdout and "nothing to tune" in dry.stderr
    again = run_cli("init", plain)
    assert again.returncode == 1 and "already exists" in again.stderr
    bad = run_cli("init", tmp_path / "x", "--example", "nope")
    assert bad.returncode == 2 and "bundled examples: tiny-gpt, synthetic" in bad.stderr


def test_init_in_a_repository_without_commits_commits_nothing(tmp_path):
    """`git init` by hand, then `autoresearch init`: the user's files stay the user's to commit."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "train.py").write_text("print('val_bpb: 1.0')\n")
    (repo / "model.pt").write_bytes(b"\0" * 11_000_000)
    r = run_cli("init", repo)
    assert r.returncode == 0, r.stderr
    said = " ".join(r.stdout.split())
    assert "committed the arena" not in said and "initialised" not in said, said
    assert "model.pt (11 MB)" in said and "`git add . && git commit -m 'autoresearch arena'`" in said, said
    assert subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=repo).returncode != 0


def test_init_in_a_new_folder_with_unprepared_data_and_a_virtualenv(tmp_path):
    """A review (2026-12-05): in a folder with no repository every file is untracked, so the
    data directory's own prepare.py made it look prepared (an active `data = [...]` that the
    run then refused once committed), and the survey read venv/ and build/."""
    plain = tmp_path / "plain"
    (plain / "data" / "shakespeare_char").mkdir(parents=True)
    (plain / "data" / "shakespeare_char" / "prepare.py").write_text("open('train.bin', 'wb').write(b'')\n")
    (plain / "train.py").write_text("dataset = 'shakespeare_char'\nloss.backward()\nprint(f'val_loss: {v}')\n")
    for junk in ("venv/lib/python3.12/site-packages/pkg/train.py", "build/lib/proj/train.py"):
        (plain / junk).parent.mkdir(parents=True)
        (plain / junk).write_text("loss.backward()\nprint(f'val_acc: {a}')\n")
    r = run_cli("init", plain)
    assert r.returncode == 0, r.stderr
    config = (plain / "autoresearch.toml").read_text()
    assert "# prepare it first (python data/shakespeare_char/prepare.py), then uncomment:" in config, config
    assert '\n# data = ["data/shakespeare_char"]\n' in config and "\ndata = " not in config
    said = " ".join(r.stdout.split())
    assert "what data/shakespeare_char's script writes there" in said, said
    assert "venv" not in config and "build/" not in config and 'name = "val_loss"' in config, config


def test_arena_in_a_subdirectory_of_a_repository(tmp_path):
    repo = tmp_path / "mono"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "README.md").write_text("monorepo\n")
    commit_all(repo, "monorepo")
    arena = make_synthetic_arena(repo / "research" / "synth")
    assert git(repo, "rev-parse", "--show-toplevel") == str(repo.resolve())
    props = proposals_file(tmp_path, [{"description": "lower lr", "edits": [LR(0.01, 0.003)]}])
    r = run_cli("run", arena, "--tag", "sub", "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr
    assert statuses(arena) == [(0, "keep"), (1, "keep")]
    assert "LEARNING_RATE = 0.003" in git(repo, "show", "autoresearch/sub:research/synth/train.py")
    assert git(repo, "status", "--porcelain") == ""
    assert "/research/synth/.autoresearch/" in (repo / ".git" / "info" / "exclude").read_text()


def test_each_tag_has_its_results_and_the_root_shows_the_last(arena, tmp_path):
    props = proposals_file(tmp_path, [{"description": "lower lr", "edits": [LR(0.01, 0.003)]}])
    assert run_cli("run", arena, "--tag", "a", "--proposals", props).returncode == 0
    assert run_cli("run", arena, "--tag", "b", "--proposals", props, "--max-experiments", "1").returncode == 0
    a = (arena / ".autoresearch" / "a" / "results.tsv").read_text()
    b = (arena / ".autoresearch" / "b" / "results.tsv").read_text()
    assert len(a.splitlines()) == 3 and len(b.splitlines()) == 2
    assert (arena / "results.tsv").read_text() == b
    assert json.loads(run_cli("status", arena, "--json").stdout)["campaign"]["tag"] == "b"
    assert json.loads(run_cli("status", arena, "--tag", "a", "--json").stdout)["campaign"]["tag"] == "a"


@pytest.mark.slow
def test_max_hours_starts_nothing_new_after_the_deadline(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena", run_seconds=1.5)
    props = proposals_file(tmp_path, [{"description": f"width {v}", "edits": [WIDTH(64, v)]} for v in (16, 32, 8)])
    # 3 s: the baseline (and perhaps the next run; 1.5 s each) start before the deadline, not all four
    r = run_cli("run", arena, "--proposals", props, "--max-hours", str(3.0 / 3600))
    assert r.returncode == 0, r.stderr
    assert "reached --max-hours" in r.stdout
    n = len(statuses(arena))
    assert 1 <= n < 4
    r = run_cli("run", arena, "--proposals", props, "--max-hours", "0")
    assert "reached --max-hours" in r.stdout and len(statuses(arena)) == n
