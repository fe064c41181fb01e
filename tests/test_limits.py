"""Resource limits on real runs: file size, open files, memory (a cgroup where the machine
allows it, else RLIMIT_DATA), processes (a pids cgroup, else RLIMIT_NPROC, which does not
bind root), and the disk used in the worktree. Each hostile run is stopped, recorded as a
crash with the reason, and the campaign goes on (FAULTS 15, 16)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from autoresearch.runners.limits import Cgroups, describe, machine_cgroups, wrap
from autoresearch.runs.spec import ResourceLimits, RunSpec
from autoresearch.runners.local import LocalRunner
from autoresearch.runners.proctree import new_run_token
from autoresearch.testing import make_synthetic_arena, write_proposals
from conftest import ledger_rows, run_cli


def test_wrap_puts_the_shell_in_its_cgroups_then_applies_rlimits():
    cmd = wrap("python train.py", ResourceLimits(memory_mb=512, file_size_mb=1, nofile=64, nproc=50),
               [Path("/cg/memory/x/cgroup.procs")], is_root=True, have_memory_cgroup=True, have_pids_cgroup=False)
    assert cmd.startswith("echo $$ > /cg/memory/x/cgroup.procs && exec ")
    assert "--fsize=1048576" in cmd and "--nofile=64" in cmd
    assert "--data=" not in cmd  # the memory cgroup does it
    assert "--nproc" not in cmd  # root: RLIMIT_NPROC would not bind; said so by describe()
    assert cmd.endswith("-- /bin/sh -c 'python train.py'")
    no_cg = wrap("x", ResourceLimits(memory_mb=512, nproc=9), [], is_root=False, have_memory_cgroup=False, have_pids_cgroup=False)
    assert f"--data={512 << 20}" in no_cg and "--nproc=9" in no_cg


@pytest.mark.parametrize("cg, root, expected", [
    (Cgroups(1, {"memory": Path("/m"), "pids": Path("/p")}), True,
     ["memory 100 MB: cgroup v1 (the whole run)", "processes 20: pids cgroup v1"]),
    (Cgroups(0, {}), True, ["memory 100 MB: RLIMIT_DATA per process (no writable memory cgroup)",
                            "processes 20: NOT enforced (RLIMIT_NPROC does not bind root and no pids cgroup is writable: "
                            "set [runner] run_as = \"nobody\" to run as an unprivileged user)"]),
    (Cgroups(0, {}), False, ["memory 100 MB: RLIMIT_DATA per process (no writable memory cgroup)", "processes 20: RLIMIT_NPROC"]),
])
def test_describe_says_what_is_in_force(cg, root, expected):
    assert describe(ResourceLimits(memory_mb=100, nproc=20), cg, root) == expected


def _run(tmp_path: Path, code: str, limits: ResourceLimits, timeout: float = 30):
    script = tmp_path / "hostile.py"
    script.write_text(code)
    spec = RunSpec(command=f"{sys.executable} {script}", cwd=tmp_path, env={"PATH": os.environ["PATH"]}, timeout_s=timeout,
                   log_path=tmp_path / "log.txt", token=new_run_token(), limits=limits)
    return LocalRunner().start(spec, threading.Event()).wait()


def test_file_size_and_open_files_are_bounded(tmp_path):
    out = _run(tmp_path, "open('big.bin', 'wb').write(b'x' * (8 << 20))\n", ResourceLimits(file_size_mb=1))
    assert out.exit_code != 0 and (tmp_path / "big.bin").stat().st_size <= 1 << 20
    out = _run(tmp_path, "fs = [open(__file__) for _ in range(500)]\n", ResourceLimits(nofile=64))
    assert out.exit_code != 0 and "Too many open files" in out.log_tail


def test_a_memory_bomb_is_stopped(tmp_path):
    out = _run(tmp_path, "x = []\nwhile True:\n    x.append(bytearray(16 << 20))\n", ResourceLimits(memory_mb=200))
    assert out.exit_code != 0
    if "memory" in machine_cgroups().bases:
        assert out.limit == "memory"
    else:
        assert "MemoryError" in out.log_tail


def test_a_fork_bomb_is_bounded_when_a_pids_cgroup_or_user_limit_can_do_it(tmp_path):
    cg = machine_cgroups()
    if "pids" not in cg.bases and os.geteuid() == 0:
        pytest.fail("no pids cgroup is writable and we run as root: nothing can bound processes here; "
                    "describe() reports this as NOT enforced")
    code = ("import os, time\nkids = 0\ntry:\n    for _ in range(200):\n        if os.fork() == 0:\n"
            "            time.sleep(30)\n            os._exit(0)\n        kids += 1\nexcept OSError as e:\n"
            "    print('fork refused after', kids, e)\n    raise SystemExit(3)\n")
    out = _run(tmp_path, code, ResourceLimits(nproc=20))
    assert out.exit_code == 3 and "fork refused after" in out.log_tail


@pytest.mark.parametrize("where", ['"ckpt.bin"', 'os.path.join(os.path.dirname(os.environ["AUTORESEARCH_RESULT_FILE"]), "x")'])
def test_a_run_filling_the_disk_is_killed_and_recorded(tmp_path, where):
    # its run directory and its private result directory both count (issue 16, class 6)
    # it prints a metric first: a run the harness killed has none (what it printed was not its result)
    fill = (f'import os, time\nif __name__ == "__main__":\n    print("val_loss: 0.001", flush=True)\n'
            f'    with open({where}, "wb") as f:\n'
            '        for _ in range(400):\n            f.write(b"x" * (1 << 20))\n            f.flush()\n            time.sleep(0.02)\n')
    arena = make_synthetic_arena(tmp_path / "arena", config_overrides={"runner.limits": {"disk_mb": 50}})
    props = write_proposals(tmp_path / "p.json", [
        {"description": "write huge checkpoints", "edits": [{"path": "train.py", "search": 'if __name__ == "__main__":',
                                                              "replace": fill + 'if __name__ == "__main__":'}]},
        {"description": "lower lr", "edits": [{"path": "train.py", "search": "LEARNING_RATE = 0.01",
                                               "replace": "LEARNING_RATE = 0.003"}]}])
    r = run_cli("run", arena, "--tag", "d", "--proposals", props, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "limit: disk 50 MB in the worktree" in r.stdout
    rows = {x["id"]: x for x in ledger_rows(arena, "SELECT id, status, reason, metric FROM experiments")}
    assert rows[1]["status"] == "crash" and "disk limit of 50 MB" in rows[1]["reason"] and rows[1]["metric"] is None
    assert rows[2]["status"] == "keep"
    assert not list((arena / ".autoresearch" / "worktrees" / "d").glob("*/ckpt.bin"))  # cleaned for the next run


FORK_BOMB = ("import os, time\nprint('uid', os.getuid())\nkids = 0\ntry:\n    for _ in range(200):\n"
             "        if os.fork() == 0:\n            time.sleep(30)\n            os._exit(0)\n        kids += 1\n"
             "except OSError as e:\n    print('fork refused after', kids, e)\n    raise SystemExit(3)\n")


def test_without_cgroups_root_runs_as_an_unprivileged_user_whose_process_limit_binds(tmp_path):
    # the machine without a writable pids cgroup, as root: [runner] run_as makes nproc bind
    if os.geteuid() != 0:
        pytest.fail("this test checks the root case: run the suite as root (CI does)")
    import pwd
    import tempfile

    nobody = pwd.getpwnam("nobody")
    top = Path(tempfile.mkdtemp(dir="/tmp"))  # a path every user can reach (pytest's is root-only)
    top.chmod(0o755)
    try:
        main = 'if __name__ == "__main__":'
        # the system interpreter (the synthetic arena needs only the standard library): the
        # test's own may live where nobody cannot reach it (a pyenv under /root)
        python = "/usr/bin/python3"
        if not os.access(python, os.X_OK):
            pytest.fail("this test needs Debian's python3 (apt install python3): user nobody cannot run ours")
        arena = make_synthetic_arena(top / "arena", python=python, config_overrides={
            "runner": {"run_as": "nobody"}, "runner.limits": {"nproc": 20, "cgroups": False}})
        props = write_proposals(top / "p.json", [
            {"description": "fork bomb", "edits": [{"path": "train.py", "search": main,
                                                    "replace": main + "\n    exec(" + repr(FORK_BOMB) + ")"}]},
            {"description": "lower lr", "edits": [{"path": "train.py", "search": "LEARNING_RATE = 0.01",
                                                   "replace": "LEARNING_RATE = 0.003"}]}])
        r = run_cli("run", arena, "--tag", "u", "--proposals", props, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "runs run as user nobody" in r.stdout and "RLIMIT_NPROC of the run's user" in r.stdout
        rows = {x["id"]: x for x in ledger_rows(arena, "SELECT id, status, reason FROM experiments")}
        assert rows[0]["status"] == "keep" and rows[2]["status"] == "keep"  # honest runs work as nobody
        assert rows[1]["status"] == "crash", rows[1]
        log = (arena / ".autoresearch" / "u" / "logs" / "0001-a1-run.log").read_text()
        assert f"uid {nobody.pw_uid}" in log and "fork refused after" in log
        assert int(log.split("fork refused after")[1].split()[0]) < 20
    finally:
        import shutil
        shutil.rmtree(top, ignore_errors=True)


def test_run_as_errors_say_what_to_do(tmp_path):
    from autoresearch.config import load_config
    from autoresearch.errors import ConfigError
    from autoresearch.runs.spec import resolve_user

    with pytest.raises(ConfigError, match="no user 'no-such-user-x'"):
        resolve_user("no-such-user-x")
    with pytest.raises(ConfigError, match="names root"):
        resolve_user("root")
    (tmp_path / "autoresearch.toml").write_text(
        '[arena]\nrun = "python train.py"\neditable = ["train.py"]\n[metric]\nname = "loss"\n'
        '[runner]\nrun_as = "nobody"\nkind = "ray"\n')
    with pytest.raises(ConfigError, match="run_as is for local runs"):
        load_config(tmp_path)
