"""The bwrap sandbox on real runs: no network, no ledger, the user's checkout and home out
of reach, the worktree writable; an honest run still works. FAULTS 26 (nothing to leak)."""

from __future__ import annotations

import shutil

import pytest

from autoresearch.testing import FakeLLMServer, constant_edit, make_synthetic_arena, write_proposals
from conftest import ledger_rows, run_cli
from test_integrity import PEEK, VAL_SECRET, _val_arena

PROBE = '''import os, urllib.request
from pathlib import Path
arena = Path(os.environ["AUTORESEARCH_ARENA_DIR"])
results = []
def attempt(name, fn):
    try:
        fn()
        results.append(f"{name}: allowed")
    except Exception as e:
        results.append(f"{name}: refused ({type(e).__name__})")
attempt("network", lambda: urllib.request.urlopen(os.environ["PROBE_URL"], data=b"{}", timeout=3))
attempt("ledger", lambda: open(arena / ".autoresearch" / "ledger.sqlite", "rb").read(1))
attempt("checkout-write", lambda: open(arena / "train.py", "a").write("# tampered"))
attempt("home-write", lambda: open(os.path.expanduser("~/sandbox-escape.txt"), "w").write("x"))
attempt("ssh-keys", lambda: os.listdir(os.path.expanduser("~/.ssh")))
attempt("worktree-write", lambda: open("scratch.txt", "w").write("ok"))
attempt("tmp-write", lambda: open("/tmp/sandbox-probe.txt", "w").write("ok"))
print("\\n".join(results))
'''


@pytest.fixture
def server():
    with FakeLLMServer(default={"text": "reachable"}) as s:
        yield s


def test_sandboxed_runs_cannot_reach_the_network_the_ledger_or_the_checkout(tmp_path, server):
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is needed for this test: apt install bubblewrap (make setup does it as root)")
    arena = make_synthetic_arena(tmp_path / "arena", config_overrides={"runner": {"sandbox": "bwrap", "env_allow": ["PROBE_URL"]}})
    main = 'if __name__ == "__main__":'
    props = write_proposals(tmp_path / "p.json", [
        {"description": "probe the sandbox", "edits": [{"path": "train.py", "search": main,
                                                         "replace": main + "\n    exec(" + repr(PROBE) + ")"}]},
        {"description": "honest: lower lr", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]}])
    r = run_cli("run", arena, "--tag", "s", "--proposals", props, env={"PROBE_URL": server.openai_url + "/chat/completions"})
    assert r.returncode == 0, r.stdout + r.stderr
    log = next((arena / ".autoresearch").glob("s/logs/0001-a1-run.log")).read_text()
    assert "network: refused" in log and "ledger: refused" in log
    assert "checkout-write: refused" in log and "# tampered" not in (arena / "train.py").read_text()
    assert "worktree-write: allowed" in log and "tmp-write: allowed" in log
    assert "ssh-keys: refused (FileNotFoundError)" in log  # the real home is not there
    assert "home-write: allowed" in log  # into a private, empty home that vanishes afterwards
    import os
    assert not os.path.exists(os.path.expanduser("~/sandbox-escape.txt"))
    assert server.requests == []  # the fake server was never reached
    rows = {x["id"]: x["status"] for x in ledger_rows(arena, "SELECT id, status FROM experiments")}
    assert rows == {0: "keep", 1: "discard", 2: "keep"}  # the probe changed no metric; the honest run works


def test_without_the_sandbox_the_same_probe_reaches_the_network(tmp_path, server):
    arena = make_synthetic_arena(tmp_path / "arena", config_overrides={"runner": {"env_allow": ["PROBE_URL"]}})
    main = 'if __name__ == "__main__":'
    props = write_proposals(tmp_path / "p.json", [
        {"description": "probe", "edits": [{"path": "train.py", "search": main, "replace": main + "\n    exec(" + repr(PROBE) + ")"}]}])
    home = tmp_path / "home"
    home.mkdir()
    r = run_cli("run", arena, "--tag", "s", "--proposals", props,
                env={"PROBE_URL": server.openai_url + "/chat/completions", "HOME": str(home)})
    assert r.returncode == 0, r.stdout + r.stderr
    log = next((arena / ".autoresearch").glob("s/logs/0001-a1-run.log")).read_text()
    assert (home / "sandbox-escape.txt").exists()  # without the sandbox the run writes into the home
    assert "network: allowed" in log and "ledger: allowed" in log  # what the sandbox takes away
    assert len(server.requests) == 1


def test_sandboxed_training_cannot_read_the_validation_data(tmp_path):
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is needed for this test: apt install bubblewrap (make setup does it as root)")
    arena = _val_arena(tmp_path, "bwrap")
    main = 'if __name__ == "__main__":'
    props = write_proposals(tmp_path / "p.json", [
        {"description": "peek at the validation data", "edits": [{"path": "train.py", "search": main,
                                                                    "replace": main + "\n    exec(" + repr(PEEK) + ")"}]},
        {"description": "honest: lower lr", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]}])
    r = run_cli("run", arena, "--tag", "v", "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {x["id"]: x for x in ledger_rows(arena, "SELECT id, status, reason FROM experiments")}
    assert rows[1]["status"] == "crash" and "No such file or directory: 'val.txt'" in rows[1]["reason"]
    assert rows[0]["status"] == "keep" and rows[2]["status"] == "keep"  # the eval, sandboxed too, has the data
    log = next((arena / ".autoresearch").glob("v/logs/0001-a1-run.log")).read_text()
    assert VAL_SECRET not in log
    assert "arena copy: refused (PermissionError)" in log or "arena copy: ''" in log  # masked by /dev/null
    assert "git objects: ''" in log  # git's objects are hidden too
