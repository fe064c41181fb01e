"""The harness's own state in odd environments: a damaged or lost ledger, a ledger behind
git, a copied arena, read-only and full disks, another file system, bad tags and flags, a
bare repository, a killed harness. Every case ends in one or two lines that name the path
and the fix (never a traceback, never exit 0 on a state the ledger does not know), and
``autoresearch doctor --repair`` gets back everything git and the records hold."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from autoresearch.errors import environment_error
from autoresearch.testing import REFERENCE_PROPOSALS, commit_all, constant_edit, make_synthetic_arena, write_proposals
from conftest import _env, git, ledger_rows, run_cli

pytestmark = [pytest.mark.slow]  # end-to-end: make test-fast leaves it out

PROPOSALS = REFERENCE_PROPOSALS  # keep, discard, crash, invalid, keep


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished 6-experiment campaign (tag t); tests work on copies of it."""
    root = tmp_path_factory.mktemp("finished")
    arena = make_synthetic_arena(root / "arena")
    props = write_proposals(root / "p.json", PROPOSALS)
    r = run_cli("run", arena, "--tag", "t", "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr
    return arena


def copy_of(finished: Path, tmp_path: Path, name: str = "arena") -> Path:
    target = tmp_path / name
    subprocess.run(["cp", "-a", str(finished), str(target)], check=True)
    shutil.copy(finished.parent / "p.json", tmp_path / "p.json")
    return target


def status_key(arena: Path) -> list[tuple]:
    r = run_cli("status", arena, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return [(e["id"], e["status"], e["commit"], e["metrics"].get("val_loss"), e["description"])
            for e in json.loads(r.stdout)["experiments"]]


def refused_cleanly(r: subprocess.CompletedProcess, *words: str, code: int = 1) -> None:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr
    for w in words:
        assert w in r.stderr, (w, r.stderr)


def test_doctor_rebuilds_a_deleted_ledger_with_the_same_ids_statuses_commits_and_metrics(finished, tmp_path):
    # the test of done
    arena = copy_of(finished, tmp_path)
    before = status_key(arena)
    for f in (arena / ".autoresearch").glob("ledger.sqlite*"):
        f.unlink()
    refused_cleanly(run_cli("status", arena), "ledger", "is missing", "doctor")
    refused_cleanly(run_cli("run", arena, "--tag", "t", "--proposals", tmp_path / "p.json"), "ledger was lost", "doctor")
    refused_cleanly(run_cli("doctor", arena), "")  # problems remain: exit 1
    r = run_cli("doctor", arena, "--repair")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "rebuilt the ledger from the recovery records (1 campaign(s), 6 experiment(s))" in r.stdout
    assert status_key(arena) == before
    assert run_cli("doctor", arena).returncode == 0
    r = run_cli("run", arena, "--tag", "t", "--proposals", tmp_path / "p.json")  # goes on as if nothing happened
    assert r.returncode == 0 and "proposals exhausted" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("damage", ["truncated", "overwritten", "json"])
def test_a_damaged_ledger_gives_a_message_not_a_traceback_and_doctor_repairs_it(finished, tmp_path, damage):
    arena = copy_of(finished, tmp_path)
    before = status_key(arena)
    path = arena / ".autoresearch" / "ledger.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if damage == "json":
        db.execute("UPDATE experiments SET metrics_json = '{broken' WHERE id = 2")
        db.commit()
    db.close()
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "overwritten":
        path.write_bytes(b"this is not a database at all " * 100)
    for args in (("status", arena), ("status", arena, "--json"), ("report", arena),
                 ("run", arena, "--tag", "t", "--proposals", tmp_path / "p.json")):
        refused_cleanly(run_cli(*args), "doctor")
    r = run_cli("doctor", arena, "--repair")
    assert r.returncode == 0, r.stdout + r.stderr
    assert status_key(arena) == before
    assert list((arena / ".autoresearch").glob("ledger.sqlite.damaged-*"))  # kept aside, not deleted


def test_a_ledger_behind_git_is_refused_then_repaired(finished, tmp_path):
    arena = copy_of(finished, tmp_path)
    before = status_key(arena)
    db = sqlite3.connect(arena / ".autoresearch" / "ledger.sqlite")  # its last transactions lost
    db.execute("DELETE FROM runs WHERE experiment_id = 5")
    db.execute("DELETE FROM experiments WHERE id = 5")
    db.commit()
    db.close()
    r = run_cli("run", arena, "--tag", "t", "--proposals", tmp_path / "p.json")
    refused_cleanly(r, "does not know the state of git", "never kept", "doctor")
    assert ledger_rows(arena, "SELECT COUNT(*) AS n FROM experiments")[0]["n"] == 5  # nothing was judged
    r = run_cli("doctor", arena, "--repair")
    assert r.returncode == 0, r.stdout + r.stderr
    assert status_key(arena) == before


def test_a_branch_moved_to_a_commit_nobody_recorded_is_kept_and_put_back(finished, tmp_path):
    arena = copy_of(finished, tmp_path)
    before = status_key(arena)
    tip = git(arena, "rev-parse", "autoresearch/t")
    stranger = git(arena, "commit-tree", "-p", tip, "-m", "by hand", f"{tip}^{{tree}}")
    git(arena, "update-ref", "refs/heads/autoresearch/t", stranger)
    git(arena, "update-ref", "refs/autoresearch/t/discarded/9", stranger)  # an id the ledger never had
    refused_cleanly(run_cli("run", arena, "--tag", "t", "--proposals", tmp_path / "p.json"), "never kept",
                    "refs/autoresearch/t/discarded/9")
    r = run_cli("doctor", arena)
    assert r.returncode == 1 and "problem: campaign 't': branch autoresearch/t" in r.stdout, r.stdout
    r = run_cli("doctor", arena, "--repair")
    assert r.returncode == 0, r.stdout + r.stderr
    assert git(arena, "rev-parse", "autoresearch/t") == tip
    assert git(arena, "rev-parse", f"refs/autoresearch/t/unrecorded/{stranger[:12]}") == stranger  # nothing lost
    assert git(arena, "for-each-ref", "refs/autoresearch/t/discarded/9") == ""
    assert status_key(arena) == before
    assert run_cli("run", arena, "--tag", "t", "--proposals", tmp_path / "p.json").returncode == 0


def test_a_copied_arena_never_writes_into_the_original(finished, tmp_path):
    # FAULTS 36: run directories hold no .git, so a copy has nothing pointing at the original
    original = copy_of(finished, tmp_path, "original")
    refs = git(original, "for-each-ref", "--format=%(refname) %(objectname)")
    head = git(original, "rev-parse", "HEAD")
    state = sorted(p.relative_to(original).as_posix() for p in (original / ".autoresearch").rglob("*"))
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(original), str(copy)], check=True)
    props = write_proposals(tmp_path / "more.json", [*PROPOSALS, {"description": "warmup", "edits": [
        constant_edit("WARMUP_STEPS", 500, 100)]}])
    r = run_cli("run", copy, "--tag", "t", "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ledger_rows(copy, "SELECT status FROM experiments WHERE id = 6")[0]["status"] == "keep"
    assert git(original, "for-each-ref", "--format=%(refname) %(objectname)") == refs
    assert git(original, "rev-parse", "HEAD") == head
    assert sorted(p.relative_to(original).as_posix() for p in (original / ".autoresearch").rglob("*")) == state
    assert git(copy, "rev-parse", "autoresearch/t") != git(original, "rev-parse", "autoresearch/t")


def as_nobody(*args: str | os.PathLike, home: Path) -> subprocess.CompletedProcess[str]:
    """The CLI as an unprivileged user, with an interpreter that user can run (the test venv's
    may live under root's home) and this checkout's packages on its path."""
    import site

    import autoresearch

    python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    path = os.pathsep.join([str(Path(autoresearch.__file__).parent.parent), *site.getsitepackages()])
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-m", "autoresearch", *map(str, args)]
    return subprocess.run(cmd, env=_env({"HOME": str(home), "PYTHONPATH": path}), capture_output=True, text=True,
                          timeout=120, cwd=home)


@pytest.fixture
def world_readable(finished):
    """A copy of the campaign owned by an unprivileged user, whose .autoresearch that user
    can read but not write (root ignores file modes)."""
    if os.geteuid() != 0:
        pytest.fail("these cases switch to an unprivileged user: run the tests as root (CI does)")
    base = Path(tempfile.mkdtemp(prefix="ar-ro-"))
    try:
        base.chmod(0o755)
        arena = base / "arena"
        subprocess.run(["cp", "-a", str(finished), str(arena)], check=True)
        shutil.copy(finished.parent / "p.json", base / "p.json")
        subprocess.run(["chown", "-R", "65534:65534", str(arena)], check=True)
        subprocess.run(["chmod", "-R", "a-w", str(arena / ".autoresearch")], check=True)
        home = base / "home"
        home.mkdir()
        os.chown(home, 65534, 65534)
        yield arena, home
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_read_only_state_status_and_report_read_run_explains(world_readable):
    # FAULTS 37
    arena, home = world_readable
    r = as_nobody("status", arena, home=home)
    assert r.returncode == 0 and "campaign t" in r.stdout, r.stdout + r.stderr
    r = as_nobody("report", arena, "--format", "md", home=home)
    assert r.returncode == 0 and "lower lr" in r.stdout, r.stderr
    system_python = shutil.which("python3", path="/usr/bin:/bin")  # one the unprivileged user can run
    r = as_nobody("run", arena, "--tag", "t", "--proposals", arena.parent / "p.json",
                  "--run-cmd", f"{system_python} train.py", home=home)
    refused_cleanly(r, "Permission denied", str(arena / ".autoresearch"), "write access")
    r = as_nobody("doctor", arena, home=home)  # reads only: it can say the state is sound
    assert r.returncode == 0 or "Permission denied" in r.stderr, r.stdout + r.stderr
    r = as_nobody("report", arena, "--out", "/proc/no-such-dir/report.html", home=home)
    refused_cleanly(r, "--out", "cannot write it", code=2)
    # only the logs read-only: the run stops at its first log with the path, and resumes once fixed
    subprocess.run(["chmod", "-R", "u+w", str(arena / ".autoresearch")], check=True)
    subprocess.run(["chmod", "a-w", str(arena / ".autoresearch" / "t" / "logs")], check=True)
    more = write_proposals(home / "more.json", [*PROPOSALS, {"description": "warmup", "edits": [
        constant_edit("WARMUP_STEPS", 500, 100)]}])
    r = as_nobody("run", arena, "--tag", "t", "--proposals", more, "--run-cmd", f"{system_python} train.py", home=home)
    refused_cleanly(r, "Permission denied", str(arena / ".autoresearch" / "t" / "logs"))
    subprocess.run(["chmod", "u+w", str(arena / ".autoresearch" / "t" / "logs")], check=True)
    r = as_nobody("run", arena, "--tag", "t", "--proposals", more, "--run-cmd", f"{system_python} train.py", home=home)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ledger_rows(arena, "SELECT status FROM experiments WHERE id = 6")[0]["status"] == "keep"


def in_tiny_fs(arena: Path, size: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI with the arena's .autoresearch on a tmpfs of ``size`` (another file system, in
    a mount namespace of its own: nothing is mounted for anyone else)."""
    state = arena / ".autoresearch"
    state.mkdir(exist_ok=True)
    script = (f"mount -t tmpfs -o size={size} tmpfs {state} && exec {sys.executable} -m autoresearch "
              + " ".join(f"'{a}'" for a in args))
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], env=_env(), capture_output=True, text=True,
                          timeout=180)


def test_state_on_another_file_system_works_and_a_full_disk_is_explained(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena")
    props = write_proposals(tmp_path / "p.json", PROPOSALS[:2])
    r = in_tiny_fs(arena, "50m", "run", str(arena), "--tag", "t", "--proposals", str(props))
    assert r.returncode == 0, r.stdout + r.stderr  # results.tsv in the arena, the rest on the tmpfs: no EXDEV
    assert "proposals exhausted" in r.stdout
    full = make_synthetic_arena(tmp_path / "full")
    r = in_tiny_fs(full, "64k", "run", str(full), "--tag", "t", "--proposals", str(props))
    refused_cleanly(r, "free space")
    assert "disk is full" in r.stderr or "No space left on device" in r.stderr, r.stderr


@pytest.mark.parametrize("args, words, code", [
    (["--tag", "x."], ["--tag 'x.'", "ending with '.'"], 2),
    (["--tag", "a.b."], ["--tag 'a.b.'"], 2),
    (["--tag", "bad..name"], ["no '..'"], 2),
    (["--slots", "0"], ["runner.slots", "the command line"], 2),
    (["--set", "nosuch.key=1"], ["unknown key 'nosuch'", "(the command line)"], 2),
    (["--set", "arena..run=x"], ["has an empty part"], 2),
    (["--set", "judge"], ["expected KEY=VALUE"], 2),
    (["--time-budget", "inf"], ["arena.time_budget_s", "finite", "(the command line"], 2),
])
def test_bad_flags_are_usage_errors_and_write_nothing(tmp_path, args, words, code):
    arena = make_synthetic_arena(tmp_path / "arena")
    r = run_cli("run", arena, *args, "--proposals", write_proposals(tmp_path / "p.json", PROPOSALS[:1]))
    refused_cleanly(r, *words, code=code)
    assert not (arena / ".autoresearch" / "ledger.sqlite").exists()
    assert git(arena, "for-each-ref", "refs/heads/autoresearch") == ""
    refused_cleanly(run_cli("status", arena), "no campaign has run", code=1)


def test_a_config_error_in_the_file_stays_a_config_error(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena", config_overrides={"arena": {"time_budget_s": -1}})
    refused_cleanly(run_cli("run", arena), "arena.time_budget_s", "(autoresearch.toml", code=1)


def test_a_bare_repository_is_refused_by_run_and_init(tmp_path):
    bare = tmp_path / "repo.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    before = sorted(p.name for p in bare.iterdir())
    refused_cleanly(run_cli("run", bare), "bare git repository", "git clone")
    refused_cleanly(run_cli("init", bare), "bare git repository")
    assert sorted(p.name for p in bare.iterdir()) == before


def _running_runs(arena: Path) -> int:
    """Runs recorded running; 0 while the ledger is being created (the file exists before its tables)."""
    if not (arena / ".autoresearch" / "ledger.sqlite").exists():
        return 0
    try:
        return ledger_rows(arena, "SELECT COUNT(*) AS n FROM runs WHERE status = 'running'")[0]["n"]
    except sqlite3.OperationalError:
        return 0


def test_status_says_when_the_harness_that_ran_an_experiment_is_gone(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena", run_seconds=30, config_overrides={"arena": {"timeout_s": 90}})
    props = write_proposals(tmp_path / "p.json", PROPOSALS[:1])
    proc = subprocess.Popen([sys.executable, "-m", "autoresearch", "run", str(arena), "--tag", "t", "--proposals",
                             str(props)], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not _running_runs(arena):
            assert time.time() < deadline and proc.poll() is None, "the baseline never started"
            time.sleep(0.2)
        live = json.loads(run_cli("status", arena, "--json").stdout)["campaign"]
        assert live["harness"] == "running"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    r = run_cli("status", arena)
    assert r.returncode == 0 and "no harness is running this campaign" in r.stdout, r.stdout
    assert json.loads(run_cli("status", arena, "--json").stdout)["campaign"]["harness"] == "stopped"


@pytest.mark.parametrize("errno_name, words", [
    ("ENOSPC", "the disk is full"), ("EACCES", "write access"), ("EROFS", "read-only file system"),
    ("EDQUOT", "quota"), ("EXDEV", "another file system"),
])
def test_machine_errors_become_one_line_with_the_path_and_the_fix(errno_name, words):
    import errno

    e = OSError(getattr(errno, errno_name), os.strerror(getattr(errno, errno_name)), "/x/.autoresearch/t/results.tsv")
    message = environment_error(e)
    assert message is not None and "/x/.autoresearch/t/results.tsv" in message and words in message
    assert environment_error(sqlite3.OperationalError("attempt to write a readonly database")).startswith(
        "the ledger cannot be written")
    assert "doctor" in environment_error(sqlite3.DatabaseError("file is not a database"))  # type: ignore[operator]
    assert environment_error(ValueError("a bug")) is None  # a bug keeps its traceback


@pytest.mark.parametrize("config, pyproject, fix", [
    (None, "", "fix: write one: `autoresearch init "),                    # none at all (a newcomer's trial:
    ("[arena]\n", "", "fix: fix autoresearch.toml (the message says where)"),  # "fix: fix autoresearch.toml")
    (None, "[tool.autoresearch.arena]\n", "fix: fix pyproject.toml [tool.autoresearch] (the message says where)"),
])
def test_doctor_on_a_repository_without_a_loadable_config_says_what_to_do(tmp_path, config, pyproject, fix):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "model.py").write_text("x = 1\n")
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n" + pyproject)
    if config is not None:
        (repo / "autoresearch.toml").write_text(config)
    git(repo, "init", "-q")
    commit_all(repo, "init")
    r = run_cli("doctor", repo)
    assert "the config does not load" in r.stdout + r.stderr and fix in r.stdout + r.stderr, r.stdout + r.stderr
