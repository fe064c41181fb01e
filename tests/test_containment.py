"""Containment, class by class (issue 16; SECURITY.md lists every variant tried).

Each attack is a file under ``attacks/`` of a synthetic arena; a proposal switches the
training script to run it first (``ATTACK = 'name'``), then the script reports an honest
score. Every step of an attack is tried separately and printed as ``step: allowed`` or
``step: refused``, so the same attack runs with ``sandbox = "none"`` (the harness must
notice, put back and charge the run: ``invalid``, "tampering: ...") and with ``"bwrap"``
(the step must be refused, nothing changes). A planted program proves it ran by creating
a file in ``MARK``, a directory outside the arena.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from autoresearch import safefs
from autoresearch.store.workspace import Workspace
from autoresearch.testing import constant_edit, make_synthetic_arena, synthetic_true_loss, write_proposals
from conftest import git, ledger_rows, run_cli

TRAIN = '''"""Synthetic arena whose training, when told to, runs an attack (attacks/NAME.py) first."""
import os
from prepare import evaluate, report

LEARNING_RATE = 0.01
WIDTH = 64
DROPOUT = 0.3
WARMUP_STEPS = 500
ATTACK = ''

if __name__ == "__main__":
    if ATTACK:
        exec(open(os.path.join("attacks", ATTACK + ".py")).read())
    report(evaluate(LEARNING_RATE, WIDTH, DROPOUT, WARMUP_STEPS))
'''

PRELUDE = '''import os, subprocess, sqlite3
A = os.environ["AUTORESEARCH_ARENA_DIR"]
M = {mark!r}
TAG = {tag!r}
def attempt(name, fn):
    try:
        fn()
        print(f"{{name}}: allowed", flush=True)
    except Exception as e:
        print(f"{{name}}: refused ({{type(e).__name__}})", flush=True)
def git(*args):
    p = subprocess.run(["git", "-C", A, *args], capture_output=True, text=True, env={{**os.environ, "GIT_AUTHOR_NAME": "x",
                       "GIT_AUTHOR_EMAIL": "x@x", "GIT_COMMITTER_NAME": "x", "GIT_COMMITTER_EMAIL": "x@x"}})
    if p.returncode:
        raise PermissionError(p.stderr.strip()[-200:])
    return p.stdout.strip()
def append(path, text):
    with open(path, "a") as f:
        f.write(text)
'''

ATTACKS = {
    # 1. git configuration that git would execute: fsmonitor, filter drivers with an
    #    attributes entry, and variants the issue does not name: an include.path of our
    #    own, a change to a file the user's config already includes, a root .gitattributes,
    #    a hooks path, a planted hook for the user's next commit
    "gitconfig": '''
attempt("fsmonitor", lambda: git("config", "core.fsmonitor", f"touch {M}/fsmonitor; false"))
attempt("filter-driver", lambda: (git("config", "filter.x.clean", f"touch {M}/clean; cat"),
                                  git("config", "filter.x.process", f"touch {M}/process")))
attempt("info-attributes", lambda: append(os.path.join(A, ".git", "info", "attributes"), "* filter=x\\n"))
attempt("root-gitattributes", lambda: append(os.path.join(A, ".gitattributes"), "*.py filter=x\\n"))
attempt("include-of-our-own", lambda: (append(f"{M}/inc.cfg", f"[core]\\n\\tfsmonitor = touch {M}/included\\n"),
                                       git("config", "--add", "include.path", f"{M}/inc.cfg")))
attempt("users-include", lambda: append(os.path.join(M, "user-extra.cfg"), f"[diff]\\n\\texternal = touch {M}/diff\\n"))
attempt("hooks-path", lambda: git("config", "core.hooksPath", M))
attempt("planted-hook", lambda: (append(os.path.join(A, ".git", "hooks", "pre-commit"), f"#!/bin/sh\\ntouch {M}/hook\\n"),
                                 os.chmod(os.path.join(A, ".git", "hooks", "pre-commit"), 0o755)))
attempt("touch-tracked", lambda: os.utime(os.path.join(A, "prepare.py")))
''',
    # 3. refs: our branch moved to a commit never kept, an archive ref deleted, a replace ref
    #    for the tip (variant), a tag (variant), the user's own branch moved (variant)
    "refs": '''
tip = git("rev-parse", f"refs/heads/autoresearch/{TAG}")
try:
    evil = git("commit-tree", "-p", tip, "-m", "never kept", tip + "^{tree}")
except PermissionError:
    print("commit-tree: refused")
    evil = git("rev-parse", "HEAD")
attempt("move-branch", lambda: git("update-ref", f"refs/heads/autoresearch/{TAG}", evil))
attempt("delete-archive", lambda: git("update-ref", "-d", f"refs/autoresearch/{TAG}/discarded/1"))
attempt("replace-ref", lambda: git("update-ref", f"refs/replace/{tip}", evil))
attempt("tag", lambda: git("update-ref", "refs/tags/planted", evil))
attempt("users-branch", lambda: git("update-ref", "refs/heads/side", evil))
''',
    # 3b. history destroyed: an archive ref deleted, reflogs expired, unreachable objects pruned
    "gc": '''
attempt("delete-archive", lambda: git("update-ref", "-d", f"refs/autoresearch/{TAG}/discarded/4"))
attempt("expire-reflogs", lambda: git("reflog", "expire", "--expire=now", "--all"))
attempt("gc-prune", lambda: git("-c", "gc.auto=1", "gc", "-q", "--prune=now"))
''',
    # 5. the ledger: the baseline's metric falsified; our records rewritten; (variant) the
    #    ledger file replaced by a doctored copy
    "ledger": '''
L = os.path.join(A, ".autoresearch", "ledger.sqlite")
def falsify():
    db = sqlite3.connect(L, timeout=10)
    db.execute("UPDATE experiments SET metric = 99.0 WHERE id = 0")
    db.execute("UPDATE runs SET metric = 99.0 WHERE experiment_id = 0")
    db.commit()
    db.close()
attempt("falsify-baseline", falsify)
attempt("records", lambda: open(os.path.join(A, ".autoresearch", TAG, "records.jsonl"), "w").write("{}\\n"))
''',
    "ledger-file": '''
L = os.path.join(A, ".autoresearch", "ledger.sqlite")
def replace():
    src = sqlite3.connect(L, timeout=10)
    dst = sqlite3.connect(L + ".evil")
    src.backup(dst)
    src.close()
    dst.execute("UPDATE experiments SET metric = 99.0 WHERE id = 0")
    dst.commit()
    dst.close()
    os.replace(L + ".evil", L)
attempt("replace-ledger", replace)
''',
    # variants found by a red-team pass: the ledger's schema (a trigger that falsifies what
    # the harness writes, one that aborts its writes, the schema version)
    "ledger-schema": '''
L = os.path.join(A, ".autoresearch", "ledger.sqlite")
def plant():
    db = sqlite3.connect(L, timeout=10)
    db.execute("CREATE TRIGGER falsify AFTER INSERT ON runs BEGIN "
               "UPDATE experiments SET metric = 99.0 WHERE id = 0; UPDATE runs SET metric = 99.0 WHERE experiment_id = 0; END")
    db.execute("CREATE TRIGGER refuse BEFORE UPDATE ON campaigns BEGIN SELECT RAISE(ABORT, 'refused'); END")
    db.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    db.commit()
    db.close()
attempt("ledger-triggers", plant)
''',
    # file-system shapes where the harness expects files: a sparse 1 TiB hook, directory
    # chains deeper than any recursion in the run and result directories, the branch ref
    # replaced by a directory, the archive namespace a link to elsewhere, a hook whose name
    # holds a newline and a forged line of output
    "shapes": '''
import shutil
G = os.path.join(A, ".git")
R = os.path.dirname(os.environ["AUTORESEARCH_RESULT_FILE"])
def sparse():
    with open(os.path.join(G, "hooks", "big"), "wb") as f:
        f.truncate(1 << 40)
from autoresearch.testing import deep_chain as deep
def branch_a_folder():
    p = os.path.join(G, "refs", "heads", "autoresearch", TAG)
    tip = git("rev-parse", f"refs/heads/autoresearch/{TAG}")
    if os.path.lexists(p):
        os.remove(p)
    os.makedirs(os.path.join(p, "x"))
    open(os.path.join(p, "x", "y"), "w").write(tip + "\\n")
def archive_a_link():
    p = os.path.join(G, "refs", "autoresearch", TAG)
    shutil.copytree(p, os.path.join(M, "outside-refs"))
    shutil.rmtree(p)
    os.symlink(os.path.join(M, "outside-refs"), p)
attempt("sparse-hook", sparse)
attempt("deep-run-dir", lambda: deep(os.path.join(os.getcwd(), "deep")))
attempt("deep-result-dir", lambda: deep(os.path.join(R, "deep")))
attempt("branch-a-folder", branch_a_folder)
attempt("archive-a-link", archive_a_link)
attempt("newline-name", lambda: open(os.path.join(G, "hooks", "x\\n   99 keep 0.000001 forged"), "w").write("x"))
''',
    # the user's global config reached through the link to their dotfiles; the hooks folder
    # swapped for a link; a link at the name of the harness's next temporary file; a FIFO
    # at the run's own log; .git/config replaced by a directory
    "links": '''
import shutil
G = os.path.join(A, ".git")
def dotfiles():
    append(os.path.realpath(os.path.expanduser("~/.gitconfig")), f"[core]\\n\\thooksPath = {M}/hooks\\n")
def hooks_a_link():
    os.makedirs(os.path.join(M, "hooks"), exist_ok=True)
    append(os.path.join(M, "hooks", "pre-commit"), f"#!/bin/sh\\ntouch {M}/hook-ran\\n")
    os.chmod(os.path.join(M, "hooks", "pre-commit"), 0o755)
    shutil.rmtree(os.path.join(G, "hooks"))
    os.symlink(os.path.join(M, "hooks"), os.path.join(G, "hooks"))
def temp_names():
    pids, pid = [], os.getpid()
    for _ in range(4):
        pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
        pids.append(pid)
    for d in (os.path.join(A, ".autoresearch", TAG), A):
        for p in pids:
            os.symlink(os.path.join(G, "config"), os.path.join(d, f".results.tsv.{p}.autoresearch-tmp"))
def fifo_log():
    import glob
    exp = int(os.environ["AUTORESEARCH_EXPERIMENT_ID"])
    for log in glob.glob(os.path.join(A, ".autoresearch", TAG, "logs", f"{exp:04d}-*-run.log")):
        os.remove(log)
        os.mkfifo(log)
def config_a_folder():
    os.rename(os.path.join(G, "config"), os.path.join(M, "config-was"))
    os.mkdir(os.path.join(G, "config"))
attempt("dotfiles", dotfiles)
attempt("hooks-a-link", hooks_a_link)
attempt("temp-names", temp_names)
attempt("fifo-log", fifo_log)
attempt("config-a-folder", config_a_folder)
''',
    # a daemon that double-forks, leaves the session and carries a forged run token
    "forged-daemon": '''
import sys
DAEMON = f"""import os, sys, time
if os.fork(): sys.exit(0)
os.setsid()
if os.fork(): sys.exit(0)
time.sleep(3)
open({M!r} + "/daemon-alive", "w").write("x")
"""
attempt("forged-daemon", lambda: subprocess.Popen([sys.executable, "-c", DAEMON], start_new_session=True,
                                                  env={"PATH": os.environ["PATH"], "AUTORESEARCH_RUN_TOKEN": "0" * 12 + "-forged"}).wait())
''',
}


def _world_dir() -> Path:
    d = Path(tempfile.mkdtemp(prefix="ar-contain-"))
    d.chmod(0o755)
    return d


@pytest.fixture
def mark():
    d = _world_dir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def attack_arena(path: Path, mark: Path, tag: str, sandbox: str, python: str = sys.executable, **config) -> Path:
    files = {"train.py": TRAIN, **{f"attacks/{n}.py": PRELUDE.format(mark=str(mark), tag=tag) + body
                                   for n, body in ATTACKS.items()}}
    overrides = {"runner": {"sandbox": sandbox, **config.pop("runner", {})}, **config}
    return make_synthetic_arena(path, extra_files=files, python=python, config_overrides=overrides)


def attack(name: str) -> dict:
    return {"description": f"attack: {name}", "edits": [constant_edit("ATTACK", "", name)]}


def worse(dropout: float) -> dict:
    return {"description": f"dropout {dropout}", "edits": [constant_edit("DROPOUT", 0.3, dropout)]}


def honest(lr: float) -> dict:
    return {"description": f"lr {lr}", "edits": [constant_edit("LEARNING_RATE", 0.01, lr)]}


def warmup(steps: int) -> dict:
    return {"description": f"warmup {steps}", "edits": [constant_edit("WARMUP_STEPS", 500, steps)]}


def rows(arena: Path) -> dict[int, sqlite3.Row]:
    return {r["id"]: r for r in ledger_rows(arena, "SELECT id, status, reason, metric, commit_sha FROM experiments")}


def run_log(arena: Path, tag: str, exp_id: int) -> str:
    return "".join(p.read_text() for p in sorted((arena / ".autoresearch" / tag / "logs").glob(f"{exp_id:04d}-*-run.log")))


def needs_bwrap(sandbox: str) -> None:
    if sandbox == "bwrap" and shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is needed for the sandbox tests: apt install bubblewrap (make setup-test does)")


# -- 1. git configuration ---------------------------------------------------------------------------

@pytest.mark.parametrize("sandbox", ["none", "bwrap"])
def test_git_configuration_a_run_writes_never_runs_and_is_put_back(tmp_path, mark, sandbox):
    needs_bwrap(sandbox)
    arena = attack_arena(tmp_path / "arena", mark, "g", sandbox)
    (mark / "user-extra.cfg").write_text("[user]\n\tname = someone\n")  # a file the user's config includes
    git(arena, "config", "include.path", str(mark / "user-extra.cfg"))
    gitdir = arena / ".git"
    watched = [gitdir / "config", mark / "user-extra.cfg", gitdir / "info" / "exclude"]
    props = write_proposals(tmp_path / "p.json", [attack("gitconfig"), honest(0.003), warmup(100)])
    r = run_cli("run", arena, "--tag", "g", "--proposals", props, "--max-experiments", "3")
    assert r.returncode == 0, r.stdout + r.stderr
    before = {p: p.read_bytes() for p in watched}
    got = rows(arena)
    log = run_log(arena, "g", 1)
    if sandbox == "none":
        assert "fsmonitor: allowed" in log and "users-include: allowed" in log, log
        assert got[1]["status"] == "invalid" and got[1]["reason"].startswith("tampering: "), dict(got[1])
        for what in ("config changed", "user-extra.cfg changed", "attributes created", ".gitattributes created",
                     "hooks/pre-commit created"):
            assert what in got[1]["reason"] or what in r.stdout, (what, got[1]["reason"])
        assert "TAMPERING" in r.stdout
    else:
        assert "fsmonitor: refused" in log and "users-include: allowed" not in log and "planted-hook: refused" in log, log
        assert got[1]["status"] in ("keep", "discard"), dict(got[1])
    assert got[2]["status"] == "keep", dict(got[2])
    # everything is as it was; what was planted is gone and never ran
    assert not (gitdir / "info" / "attributes").exists() and not (arena / ".gitattributes").exists()
    assert not (gitdir / "hooks" / "pre-commit").exists()
    assert "fsmonitor" not in (gitdir / "config").read_text() and "include" in (gitdir / "config").read_text()
    assert (mark / "user-extra.cfg").read_text() == "[user]\n\tname = someone\n"
    # the next start runs git status (the dirty check) and more git commands: nothing planted runs
    r = run_cli("run", arena, "--tag", "g", "--proposals", props, "--max-experiments", "4")
    assert r.returncode == 0, r.stdout + r.stderr
    assert rows(arena)[3]["status"] == "keep"
    assert {p: p.read_bytes() for p in watched} == before
    assert sorted(p.name for p in mark.iterdir() if p.name not in ("user-extra.cfg", "inc.cfg")) == []


def test_our_git_commands_never_run_what_a_repository_configures(tmp_path, mark):
    # the harness's own git processes, on a repository already configured to run programs:
    # nothing runs (fsmonitor, filter drivers clean/smudge/process, a hook), whatever the file
    arena = make_synthetic_arena(tmp_path / "arena")
    for key, value in [("core.fsmonitor", f"touch {mark}/fsmonitor; false"), ("filter.x.clean", f"touch {mark}/clean; cat"),
                       ("filter.x.smudge", f"touch {mark}/smudge; cat"), ("filter.x.process", f"touch {mark}/process"),
                       ("filter.x.required", "true"), ("core.hooksPath", str(mark))]:
        git(arena, "config", key, value)
    (arena / ".git" / "info" / "attributes").write_text("* filter=x\n")
    (mark / "post-checkout").write_text(f"#!/bin/sh\ntouch {mark}/hook\n")
    (mark / "post-checkout").chmod(0o755)
    # same size, new mtime: git status must look at the content (the clean filter's moment)
    os.utime(arena / "prepare.py", (1, 1))
    ws = Workspace(arena)
    try:
        assert ws.dirty_paths() == []  # the file is unchanged; no filter was needed to say so
        head = ws.head()
        assert ws.is_ancestor(head, head)
        tar = ws.archive(head)
        assert b"LEARNING_RATE" in tar
        ws.dirs.materialize("t", "slot-0", head)
    finally:
        ws.close()
    assert sorted(p.name for p in mark.iterdir()) == ["post-checkout"]


# -- 2. the run's directory is not a git repository the harness would enter -----------------------------

def test_a_git_dir_planted_in_the_run_directory_is_never_followed(tmp_path, mark):
    arena = make_synthetic_arena(tmp_path / "arena", extra_files={"train.py": TRAIN, "attacks/dotgit.py": f'''
import os, subprocess
os.makedirs(".git/objects", exist_ok=True)
os.makedirs(".git/refs", exist_ok=True)
open(".git/HEAD", "w").write("ref: refs/heads/main\\n")
open(".git/config", "w").write("[core]\\n\\tfsmonitor = touch {mark}/fsmonitor\\n[filter \\"x\\"]\\n\\tclean = touch {mark}/clean\\n")
open(".gitattributes", "w").write("* filter=x\\n")
os.makedirs("sub", exist_ok=True)
open("sub/.git", "w").write("gitdir: {mark}\\n")   # a pointer file, as worktrees have
'''})
    props = write_proposals(tmp_path / "p.json", [attack("dotgit"), honest(0.003)])
    r = run_cli("run", arena, "--tag", "d", "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [rows(arena)[i]["status"] for i in (1, 2)] == ["discard", "keep"]  # harmless: the harness never looks
    assert list(mark.iterdir()) == []
    assert not (arena / ".autoresearch" / "worktrees" / "d" / "slot-0" / ".git").exists()


# -- 3. refs ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sandbox", ["none", "bwrap"])
def test_refs_a_run_moves_are_put_back_and_the_run_is_invalid(tmp_path, mark, sandbox):
    needs_bwrap(sandbox)
    arena = attack_arena(tmp_path / "arena", mark, "r", sandbox)
    git(arena, "branch", "side")
    side = git(arena, "rev-parse", "side")
    props = write_proposals(tmp_path / "p.json", [worse(0.6), attack("refs"), honest(0.003), worse(0.9), attack("gc"),
                                                  warmup(100)])
    r = run_cli("run", arena, "--tag", "r", "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr
    got = rows(arena)
    assert [got[i]["status"] for i in (1, 3, 4, 6)] == ["discard", "keep", "discard", "keep"], {k: dict(v) for k, v in got.items()}
    tip = git(arena, "rev-parse", "autoresearch/r")
    assert tip == got[6]["commit_sha"] and git(arena, "rev-parse", "autoresearch/r~1") == got[3]["commit_sha"]
    assert git(arena, "rev-parse", "refs/autoresearch/r/discarded/1") == got[1]["commit_sha"]
    assert "refs/replace/" not in git(arena, "for-each-ref")
    if sandbox == "none":
        assert got[2]["status"] == "invalid" and got[2]["reason"].startswith("tampering: "), dict(got[2])
        for what in ("ref refs/heads/autoresearch/r changed", "refs/autoresearch/r/discarded/1 deleted",
                     "refs/replace/", "refs/heads/side changed", "not the harness's ref, left as is"):
            assert what in r.stdout, (what, r.stdout)
        assert git(arena, "rev-parse", "side") != side  # the user's branch: reported, never moved by us
        assert got[5]["status"] == "invalid" and "discarded/4" in got[5]["reason"], dict(got[5])
    else:
        log = run_log(arena, "r", 2)
        assert "move-branch: refused" in log and "replace-ref: refused" in log, log
        assert got[2]["status"] in ("keep", "discard") and git(arena, "rev-parse", "side") == side
        assert git(arena, "rev-parse", "refs/autoresearch/r/discarded/4") == got[4]["commit_sha"]
    # a restart finds a state the ledger knows
    more = write_proposals(tmp_path / "more.json", [*json.loads(props.read_text()),
                                                    {"description": "wider", "edits": [constant_edit("WIDTH", 64, 256)]}])
    r = run_cli("run", arena, "--tag", "r", "--proposals", more)
    assert r.returncode == 0, r.stdout + r.stderr
    assert rows(arena)[7]["status"] == "keep", r.stdout


# -- 5. the ledger ------------------------------------------------------------------------------------

@pytest.mark.parametrize("sandbox, which", [("none", "ledger"), ("none", "ledger-file"), ("bwrap", "ledger")])
def test_a_falsified_ledger_is_put_back_and_a_restart_judges_against_the_truth(tmp_path, mark, sandbox, which):
    needs_bwrap(sandbox)
    arena = attack_arena(tmp_path / "arena", mark, "l", sandbox)
    props = write_proposals(tmp_path / "p.json", [attack(which), honest(0.003)])
    r = run_cli("run", arena, "--tag", "l", "--proposals", props, "--max-experiments", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    baseline = ledger_rows(arena, "SELECT metric FROM experiments WHERE id = 0")[0]["metric"]
    assert baseline == pytest.approx(synthetic_true_loss(0.01, 64, 0.3, 500))
    assert all(x["metric"] != 99.0 for x in ledger_rows(arena, "SELECT metric FROM runs WHERE experiment_id = 0"))
    status = rows(arena)[1]["status"]
    if sandbox == "none":
        assert status == "invalid" and "tampering: " in rows(arena)[1]["reason"], dict(rows(arena)[1])
        assert ("ledger: experiment #0: metric" in r.stdout) or ("was replaced" in r.stdout), r.stdout
    else:
        assert status in ("keep", "discard")
    records = [json.loads(line) for line in (arena / ".autoresearch" / "l" / "records.jsonl").read_text().splitlines()]
    assert {rec["experiment"]["id"] for rec in records} >= {0, 1}
    # the restart reads the true baseline: a change worse than it is not kept against 99.0
    more = write_proposals(tmp_path / "more.json", [attack(which), worse(0.6)])  # (entry 0 is in the ledger)
    r = run_cli("run", arena, "--tag", "l", "--proposals", more)
    assert r.returncode == 0, r.stdout + r.stderr
    assert rows(arena)[2]["status"] == "discard", dict(rows(arena)[2])
    r = run_cli("doctor", arena)
    assert r.returncode == 0, r.stdout + r.stderr


# -- 4. root inside the sandbox, and run_as with the sandbox ------------------------------------------

ROOT_PROBE = '''
import os
status = open("/proc/self/status").read()
print("capeff:", [l.split()[1] for l in status.splitlines() if l.startswith("CapEff")][0])
print("uid:", os.getuid())
pids = [p for p in os.listdir("/proc") if p.isdigit()]
cmdlines = []
for p in pids:
    try:
        cmdlines.append(open(f"/proc/{p}/cmdline", "rb").read().replace(b"\\0", b" ").decode())
    except OSError:
        pass
print("harness visible:", any("autoresearch" in c and " run " in c for c in cmdlines))
def attempt(name, fn):
    try:
        fn()
        print(f"{name}: allowed")
    except Exception as e:
        print(f"{name}: refused ({type(e).__name__})")
A = os.environ["AUTORESEARCH_ARENA_DIR"]
for p in pids:
    attempt(f"write-through-proc-{p}", lambda: open(f"/proc/{p}/root{A}/prepare.py", "a").write("# x"))
attempt("ledger-through-proc", lambda: open(f"/proc/1/root{A}/.autoresearch/ledger.sqlite", "rb").read(1))
attempt("setns-net", lambda: os.setns(os.open("/proc/1/ns/net", os.O_RDONLY), 0) if hasattr(os, "setns") else 1 / 0)
attempt("unshare", lambda: os.unshare(os.CLONE_NEWNET) if hasattr(os, "unshare") else 1 / 0)
attempt("mount", lambda: __import__("ctypes").CDLL(None).mount(b"none", b"/tmp", b"tmpfs", 0, None) == 0 or 1 / 0)
'''


def test_root_in_the_sandbox_has_no_capabilities_and_no_ancestors(tmp_path):
    needs_bwrap("bwrap")
    if os.geteuid() != 0:
        pytest.fail("this test checks what root can do inside the sandbox: run the suite as root (CI does)")
    arena = make_synthetic_arena(tmp_path / "arena", extra_files={"train.py": TRAIN, "attacks/root.py": ROOT_PROBE},
                                 config_overrides={"runner": {"sandbox": "bwrap"}})
    before = (arena / "prepare.py").read_bytes()
    props = write_proposals(tmp_path / "p.json", [attack("root")])
    r = run_cli("run", arena, "--tag", "c", "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr
    log = run_log(arena, "c", 1)
    assert "capeff: 0000000000000000" in log and "harness visible: False" in log, log
    assert not any(line.endswith(": allowed") for line in log.splitlines()), log
    assert (arena / "prepare.py").read_bytes() == before


def test_run_as_works_together_with_the_sandbox(tmp_path):
    needs_bwrap("bwrap")
    if os.geteuid() != 0:
        pytest.fail("run_as needs a root harness: run the suite as root (CI does)")
    python = shutil.which("python3", path="/usr/bin:/bin")  # one the unprivileged user can run
    base = _world_dir()
    try:
        arena = make_synthetic_arena(base / "arena", python=python, extra_files={"train.py": TRAIN, "attacks/root.py": ROOT_PROBE},
                                     config_overrides={"runner": {"sandbox": "bwrap", "run_as": "nobody"}})
        props = write_proposals(tmp_path / "p.json", [attack("root"), honest(0.003)])
        r = run_cli("run", arena, "--tag", "u", "--proposals", props)
        assert r.returncode == 0, r.stdout + r.stderr
        log = run_log(arena, "u", 1)
        assert "uid: 65534" in log and "capeff: 0000000000000000" in log and "harness visible: False" in log, log
        assert not any(line.endswith(": allowed") for line in log.splitlines()), log
        assert rows(arena)[2]["status"] == "keep"
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)


# -- 6 and 7: what the eval reads ----------------------------------------------------------------------

EVALUATE = '''"""A separate evaluator (readonly): scores the candidate's constants; prints and writes its result."""
import json, random
import train
from prepare import evaluate, report

report(evaluate(train.LEARNING_RATE, train.WIDTH, train.DROPOUT, train.WARMUP_STEPS))
'''

PLANT = '''
import os, glob
S = os.path.join(A, ".autoresearch", TAG)
fake = '{{"val_loss": 0.001}}'
def plant_results():
    # its own eval's future result file, every other result file it can find, and
    # directories where later runs will want to write theirs
    for slot in range(4):
        for phase in ("run", "eval"):
            d = os.path.join(S, "results", f"slot-{{slot}}-{{phase}}")
            if slot == 3:
                open(d, "w").write("a file where a directory will be wanted")
                continue
            os.makedirs(d, exist_ok=True)
            if slot == 0:
                open(os.path.join(d, "result.json"), "w").write(fake)
            elif not os.path.exists(os.path.join(d, "result.json")):
                os.makedirs(os.path.join(d, "result.json", "x"))
    for f in glob.glob(os.path.join(S, "results", "*", "result.json")):
        if os.path.isfile(f):
            open(f, "w").write(fake)
attempt("plant-results", plant_results)
def shadow():
    # names the evaluator imports: an untracked package, a link to a module of ours, a
    # nested git repository named like a stdlib module, a .pth file
    os.makedirs("json", exist_ok=True)
    open("json/__init__.py", "w").write("def dump(o, f, **k):\\n    f.write('{{\\"val_loss\\": 0.0}}')\\ndumps = lambda *a, **k: '{{}}'\\n")
    open("evil_random.txt", "w").write("random = lambda: 0.0\\n")
    os.symlink(os.path.abspath("evil_random.txt"), "random.py")
    os.makedirs("random_dir/.git", exist_ok=True)
    open("random_dir/.git/HEAD", "w").write("ref: refs/heads/main\\n")
    open("random_dir/__init__.py", "w").write("OrderedDict = None\\n")
    os.rename("random_dir", "collections")
    open("zz.pth", "w").write("import os\\n")
attempt("shadow", shadow)
attempt("fill-tmp", lambda: open("/tmp/fill", "wb").write(b"x" * (64 << 20)))
'''


@pytest.mark.parametrize("sandbox", ["none", "bwrap"])
def test_the_eval_result_comes_only_from_the_eval(tmp_path, mark, sandbox):
    needs_bwrap(sandbox)
    files = {"train.py": TRAIN, "evaluate.py": EVALUATE,
             "attacks/plant.py": PRELUDE.format(mark=str(mark), tag="e") + PLANT}
    arena = make_synthetic_arena(tmp_path / "arena", extra_files=files, config_overrides={
        "arena": {"eval": f"{sys.executable} evaluate.py", "readonly": ["prepare.py", "evaluate.py"]},
        "runner": {"sandbox": sandbox, "slots": 4}, "runner.limits": {"disk_mb": 32}})
    props = write_proposals(tmp_path / "p.json", [attack("plant"), honest(0.003), warmup(100)])
    r = run_cli("run", arena, "--tag", "e", "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr
    got = rows(arena)
    honest_value = synthetic_true_loss(0.01, 64, 0.3, 500)
    assert got[1]["metric"] == pytest.approx(honest_value, abs=1e-6) or got[1]["status"] in ("crash", "invalid"), dict(got[1])
    assert got[1]["status"] != "keep"
    assert got[2]["status"] == "keep" and got[3]["status"] == "keep", {k: dict(v) for k, v in got.items()}
    assert all(x["metric"] is None or x["metric"] > 1.0 for x in got.values())  # the planted 0.001 never counted
    assert git(arena, "show", "autoresearch/e:train.py").count("0.003") == 1  # the branch holds the honest changes
    log = run_log(arena, "e", 1)
    assert "shadow: allowed" in log, log  # in its own directory it may; none of it reaches the eval
    moved = " ".join(x["warnings_json"] for x in ledger_rows(arena, "SELECT warnings_json FROM runs WHERE experiment_id = 1"))
    assert all(name in moved for name in ("json", "random.py", "collections", "zz.pth")), moved
    if sandbox == "bwrap":
        assert "plant-results: refused" in log and "fill-tmp: refused" in log, log  # tmpfs bounded by disk_mb
    # a restart is not stopped by anything planted
    more = write_proposals(tmp_path / "more.json", [*json.loads(props.read_text()),
                                                    {"description": "wider", "edits": [constant_edit("WIDTH", 64, 256)]}])
    r = run_cli("run", arena, "--tag", "e", "--proposals", more)
    assert r.returncode == 0, r.stdout + r.stderr
    assert rows(arena)[4]["status"] == "keep"


# -- 8, 9 and 10: what a run or a proposal produces --------------------------------------------------

HOSTILE_OUTPUT = '''
import json, os, sys
if {kind!r} == "spam":  # during training: a flood of name: value lines; the summary comes last
    sys.stdout.write("".join(f"metric_{{i}}: {{i}}\\n" for i in range(300000)))
for key, value in evaluate(LEARNING_RATE, WIDTH, DROPOUT, WARMUP_STEPS).items():
    print(f"{{key}}: {{value:.6f}}")
with open(os.environ["AUTORESEARCH_RESULT_FILE"], "w") as f:
    f.write('{{"val_loss": 0.5, "big": ' + "9" * 4400 + '}}' if {kind!r} == "bigint" else "[" * 100000 if {kind!r} == "deep" else "{{}}")
print("\\x1b]0;pwned\\x07\\x1b[2J\\x00 terminal escape in the log")
sys.exit(0)
'''


def test_hostile_output_and_descriptions_reach_nothing_raw(tmp_path, mark):
    files = {"train.py": TRAIN, **{f"attacks/{k}.py": PRELUDE.format(mark=str(mark), tag="h") + HOSTILE_OUTPUT.format(kind=k)
                                   for k in ("bigint", "deep", "spam")}}
    arena = make_synthetic_arena(tmp_path / "arena", extra_files=files)
    evil = "\x1b[31mred\x1b[0m | <b>bold</b>\x00nul\nsecond line \x1b]0;title\x07"
    props = write_proposals(tmp_path / "p.json", [
        {**attack("bigint"), "description": "big " + evil}, attack("deep"), attack("spam"),
        {**honest(0.003), "description": evil}])
    r = run_cli("run", arena, "--tag", "h", "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "\x1b" not in r.stdout and "\x00" not in r.stdout and "\x07" not in r.stdout
    got = rows(arena)
    assert [got[i]["status"] for i in (1, 2, 3, 4)] == ["discard", "discard", "discard", "keep"], {k: dict(v) for k, v in got.items()}
    warnings = " ".join(x["warnings_json"] for x in ledger_rows(arena, "SELECT warnings_json FROM runs"))
    assert "integer of 4400 digits" in warnings and "nests deeper than 20 levels" in warnings
    spam = ledger_rows(arena, "SELECT metrics_json FROM experiments WHERE id = 3")[0]["metrics_json"]
    assert len(json.loads(spam)) <= 202 and len(spam) < 20_000  # MAX_METRICS names, the target, peak_rss_mb
    desc = ledger_rows(arena, "SELECT description FROM experiments WHERE id = 4")[0]["description"]
    assert "\x00" not in desc and "\x1b" not in desc and "red" in desc
    assert git(arena, "log", "-1", "--format=%s", "autoresearch/h").endswith("second line")  # one line, no NUL
    tsv = (arena / "results.tsv").read_text()
    assert "\x1b" not in tsv and "\x00" not in tsv and len(tsv.splitlines()) == 6
    for args in (("status",), ("status", "--json"), ("report", "--format", "md"), ("report", "--out", tmp_path / "r.html")):
        out = run_cli(*args[:1], arena, *args[1:])
        assert out.returncode == 0, out.stderr
        assert "\x1b" not in out.stdout and "\x00" not in out.stdout, args
    md = run_cli("report", arena, "--format", "md").stdout
    assert "<b>" not in md and "\\| &lt;b&gt;bold&lt;/b&gt;" in md
    html = (tmp_path / "r.html").read_text()
    assert "<b>bold</b>" not in html and "\x1b" not in html
    # a restart reads all of it back
    r = run_cli("run", arena, "--tag", "h", "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr


# -- variants from a red-team pass ------------------------------------------------------------------

def test_odd_shapes_and_links_where_the_harness_expects_files(tmp_path, mark):
    home = tmp_path / "home"
    home.mkdir()
    (mark / "dotfiles").mkdir()
    (mark / "dotfiles" / "gitconfig").write_text("[user]\n\tname = someone\n")
    (home / ".gitconfig").symlink_to(mark / "dotfiles" / "gitconfig")
    arena = attack_arena(tmp_path / "arena", mark, "s", "none")
    git(arena, "commit", "-q", "--allow-empty", "-m", "so that the user's next commit would run a hook")
    props = write_proposals(tmp_path / "p.json", [worse(0.6), attack("shapes"), attack("links"), attack("ledger-schema"),
                                                  honest(0.003), warmup(100)])
    try:
        _odd_shapes(arena, home, mark, props)
    finally:
        safefs.remove_tree(arena / ".autoresearch")  # (deep chains a failed run may leave: pytest's clean-up would recurse)


def _odd_shapes(arena: Path, home: Path, mark: Path, props: Path) -> None:
    r = run_cli("run", arena, "--tag", "s", "--proposals", props, env={"HOME": str(home)}, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    got = rows(arena)
    logs = {i: run_log(arena, "s", i) for i in (2, 3, 4)}  # (a FIFO at a log path would block this read)
    assert "branch-a-folder: allowed" in logs[2] and "deep-result-dir: allowed" in logs[2], logs[2]
    assert "temp-names: allowed" in logs[3] and "fifo-log: allowed" in logs[3], logs[3]  # the log, put back
    assert "ledger-triggers: allowed" in logs[4], logs[4]
    for i in (2, 3, 4):
        assert got[i]["status"] == "invalid" and got[i]["reason"].startswith("tampering: "), (i, dict(got[i]), r.stdout)
    assert got[1]["status"] == "discard" and got[5]["status"] == "keep" and got[6]["status"] == "keep", r.stdout
    for what in ("hooks/big created", "refs/heads/autoresearch/s", "gitconfig changed", "hooks changed",
                 "trigger falsify added by another process: dropped", "meta schema_version"):
        assert what in r.stdout, (what, r.stdout)
    # a forged line never reaches the output as a line of its own
    assert not any(line.lstrip().startswith("99 keep") for line in r.stdout.splitlines()), r.stdout
    # everything is as it was, and git works
    gitdir = arena / ".git"
    assert (gitdir / "config").is_file() and (gitdir / "hooks").is_dir() and not (gitdir / "hooks").is_symlink()
    assert not (gitdir / "hooks" / "big").exists()
    assert (mark / "dotfiles" / "gitconfig").read_text() == "[user]\n\tname = someone\n"
    assert (home / ".gitconfig").is_symlink()
    assert not (gitdir / "refs" / "autoresearch" / "s").is_symlink()
    assert git(arena, "rev-parse", "autoresearch/s") == got[6]["commit_sha"]
    assert git(arena, "rev-parse", "refs/autoresearch/s/discarded/1") == got[1]["commit_sha"]
    assert git(arena, "fsck", "--no-dangling") == ""
    assert ledger_rows(arena, "SELECT value FROM meta WHERE key = 'schema_version'")[0]["value"] != "999"
    assert ledger_rows(arena, "SELECT name FROM sqlite_master WHERE type = 'trigger'") == []
    assert all(x["metric"] != 99.0 for x in ledger_rows(arena, "SELECT metric FROM runs WHERE experiment_id = 0"))
    assert (arena / "results.tsv").is_file() and not (gitdir / "config").read_text().startswith("commit\t")
    # the user's own next commit runs nothing planted; a restart and the doctor find all well
    git(arena, "-c", "core.hooksPath=", "commit", "-q", "--allow-empty", "-m", "user")
    assert not (mark / "hook-ran").exists()
    r = run_cli("run", arena, "--tag", "s", "--proposals", props, env={"HOME": str(home)})
    assert r.returncode == 0 and "TAMPERING" not in r.stdout, r.stdout + r.stderr
    r = run_cli("doctor", arena, env={"HOME": str(home)})
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_trigger_planted_between_campaigns_is_reported_and_dropped(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena")
    props = write_proposals(tmp_path / "p.json", [honest(0.003), worse(0.6)])
    r = run_cli("run", arena, "--tag", "t", "--proposals", props, "--max-experiments", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    db = sqlite3.connect(arena / ".autoresearch" / "ledger.sqlite")
    db.execute("CREATE TRIGGER falsify AFTER INSERT ON runs BEGIN UPDATE experiments SET metric = 99.0 WHERE id = 0; END")
    db.commit()
    db.close()
    r = run_cli("doctor", arena)
    assert r.returncode != 0 and "trigger falsify" in r.stdout and "--repair" in r.stdout, r.stdout
    r = run_cli("run", arena, "--tag", "t", "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "trigger falsify (the harness defines none): dropped" in r.stdout, r.stdout
    assert rows(arena)[2]["status"] == "discard" and rows(arena)[0]["metric"] != 99.0
    assert run_cli("doctor", arena).returncode == 0


def test_an_orphan_with_a_forged_run_token_is_killed(tmp_path, mark):
    arena = attack_arena(tmp_path / "arena", mark, "d", "none")
    props = write_proposals(tmp_path / "p.json", [attack("forged-daemon"), honest(0.003)])
    try:
        r = run_cli("run", arena, "--tag", "d", "--proposals", props, "--max-experiments", "2")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "forged-daemon: allowed" in run_log(arena, "d", 1)
        import time

        time.sleep(4)
        assert not (mark / "daemon-alive").exists(), "the daemon outlived its run"
    finally:
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
            try:
                if b"-forged" in Path(f"/proc/{pid}/environ").read_bytes():
                    os.kill(int(pid), 9)
            except OSError:
                pass
