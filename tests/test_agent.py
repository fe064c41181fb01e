"""The agent proposer with a fake coding-agent CLI: a small script that edits the worktree,
or misbehaves (edits prepare.py, hangs, deletes a file, fails). FAULTS 1, 9, 17, 26."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from autoresearch.testing import make_synthetic_arena
from conftest import ledger_rows, run_cli

AGENT = r'''
import os, re, sys, time
prompt = open(os.environ["AUTORESEARCH_PROMPT_FILE"]).read()
n = len(re.findall(r"^\| \d+ \|", prompt, re.M))  # experiments shown so far
mode = sys.argv[1]
log = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agent-env.txt")
with open(log, "a") as f:
    f.write(f"{mode} key={os.environ.get('AGENT_KEY')} other={os.environ.get('OPENAI_API_KEY')} cwd={os.getcwd()}\n")
if mode == "good":
    src = open("train.py").read()
    src = re.sub(r"^LEARNING_RATE = .*$", "LEARNING_RATE = 0.003", src, flags=re.M)
    open("train.py", "w").write(src)
    print("thinking...")
    print("Lowered the learning rate to 0.003")
elif mode == "cheat":
    open("prepare.py", "a").write("\n# tampered\n")
    print("made the evaluator nicer")
elif mode == "hang":
    time.sleep(1000)
elif mode == "delete":
    os.remove("train.py")
    print("removed the script")
elif mode == "fail":
    print("cannot reach the model", file=sys.stderr)
    sys.exit(3)
elif mode == "nothing":
    print("I have no idea")
'''


def agent_arena(tmp_path: Path, mode: str, **agent) -> Path:
    script = tmp_path / "fake_agent.py"
    script.write_text(AGENT)
    cfg = {"command": f"{sys.executable} {script} {mode}", "timeout_s": 5, "key_env": "AGENT_KEY", **agent}
    return make_synthetic_arena(tmp_path / f"arena-{mode}", config_overrides={
        "proposer": {"kind": "agent", "lookahead": 0}, "proposer.agent": cfg})


def test_an_agent_edit_becomes_a_kept_experiment_with_only_its_key(tmp_path):
    arena = agent_arena(tmp_path, "good")
    r = run_cli("run", arena, "--tag", "a", "--max-experiments", "2",
                env={"AGENT_KEY": "sk-agent-1", "OPENAI_API_KEY": "sk-other-2"})
    assert r.returncode == 0, r.stdout + r.stderr
    exp = ledger_rows(arena, "SELECT * FROM experiments WHERE id = 1")[0]
    assert (exp["status"], exp["description"], exp["proposer"]) == ("keep", "Lowered the learning rate to 0.003", "agent")
    assert "+LEARNING_RATE = 0.003" in exp["diff"]
    env_log = (tmp_path / "agent-env.txt").read_text()
    assert "key=sk-agent-1 other=None" in env_log  # the agent's key, and no other secret
    assert "worktrees/a/agent" in env_log  # it worked in a scratch directory, not the checkout
    assert (arena / "train.py").read_text().count("LEARNING_RATE = 0.01") == 1  # the user's checkout untouched
    prompts = sorted((arena / ".autoresearch" / "a" / "agent").glob("prompt-0001-*.md"))  # history of 1: the baseline
    assert len(prompts) == 1 and prompts[0].read_text().startswith("# Research program")
    meta = json.loads(exp["proposal_json"])["meta"]
    assert Path(meta["agent_log"]).is_file() and Path(meta["agent_log"]).name.startswith("agent-0001-")


def test_misbehaving_agents_are_refused_and_the_loop_goes_on(tmp_path):
    cases = {
        "cheat": "the agent changed files outside the editable ones: prepare.py",
        "delete": "the agent deleted or replaced train.py; the editable files must stay regular files",
        "fail": "the agent exited with code 3: cannot reach the model",
        "nothing": "the agent changed nothing",
    }
    for mode, reason in cases.items():
        arena = agent_arena(tmp_path, mode)
        r = run_cli("run", arena, "--tag", "a", "--max-experiments", "3")
        assert r.returncode == 0, r.stdout + r.stderr
        rows = ledger_rows(arena, "SELECT status, reason FROM experiments WHERE id > 0")
        assert [(x["status"], x["reason"]) for x in rows] == [("invalid", reason)] * 2, (mode, [dict(x) for x in rows])
        assert "tampered" not in (arena / "prepare.py").read_text()


def test_a_hanging_agent_is_killed_at_its_timeout(tmp_path):
    # FAULTS 17
    from test_resume import leftover_processes

    arena = agent_arena(tmp_path, "hang", timeout_s=1.5)
    t0 = time.monotonic()
    r = run_cli("run", arena, "--tag", "a", "--max-experiments", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert time.monotonic() - t0 < 30
    row = ledger_rows(arena, "SELECT status, reason, proposal_json FROM experiments WHERE id = 1")[0]
    assert (row["status"], row["reason"]) == ("invalid", "the agent did not finish within 1.5 s and was killed")
    assert json.loads(row["proposal_json"])["meta"]["agent_seconds"] < 5
    assert leftover_processes(arena) == []


def test_agent_without_a_command_is_a_clear_error(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena")
    r = run_cli("run", arena, "--proposer", "agent")
    assert r.returncode == 1 and "needs a command: pass --agent-cmd" in r.stderr


def test_killing_the_harness_kills_a_running_agent(tmp_path):
    # FAULTS 32: no coding-agent CLI outlives the harness
    import os
    import signal
    import subprocess

    from conftest import _env

    arena = agent_arena(tmp_path, "hang", timeout_s=300)
    proc = subprocess.Popen([sys.executable, "-m", "autoresearch", "run", str(arena), "--tag", "a"], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env_log = tmp_path / "agent-env.txt"
    deadline = time.time() + 60
    while time.time() < deadline and not (env_log.exists() and "hang" in env_log.read_text()):
        time.sleep(0.1)
    assert env_log.exists(), "the agent never started"

    def agents() -> list[int]:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmd = open(f"/proc/{pid}/cmdline", "rb").read()
            except OSError:
                continue
            if b"fake_agent.py" in cmd and str(tmp_path).encode() in cmd:
                found.append(int(pid))
        return found

    assert agents()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    deadline = time.time() + 5
    while time.time() < deadline and agents():
        time.sleep(0.1)
    assert agents() == []
