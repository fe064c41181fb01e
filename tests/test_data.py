"""``[arena] data``: untracked files a run needs (a gitignored dataset next to the code, as in
karpathy/nanoGPT) in every run directory at the same path, read-only under bwrap and
fingerprinted without it; the hint a crash on such a missing file gets; resets that never
touch the checkout's copy; the eval's own data; the Ray node side."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from pathlib import Path

import pytest

from autoresearch.config import load_config
from autoresearch.datafiles import DataFiles, covered, data_hint, link_units, missing_paths
from autoresearch.errors import ConfigError
from autoresearch.runners.remote import SetupError, execute
from autoresearch.store.workspace import Workspace
from autoresearch.testing import commit_all, constant_edit, make_synthetic_arena, write_proposals
from conftest import git, ledger_rows, run_cli
from test_ray_node import BASE, _job, _tar

# -- pure: what is linked ---------------------------------------------------------------------


@pytest.mark.parametrize("entries, files, tracked, hidden, units", [
    # a gitignored directory: one link
    (["data/x"], ["data/x/train.bin", "data/x/val.bin"], ["train.py"], [], ["data/x"]),
    # nanoGPT: the dataset's directory holds a tracked prepare.py: its other files one by one
    (["data/x"], ["data/x/prepare.py", "data/x/train.bin", "data/x/meta.pkl", "data/x/raw/input.txt"],
     ["data/x/prepare.py"], [], ["data/x/meta.pkl", "data/x/train.bin", "data/x/raw"]),
    # validation data the run may not see: left out of the run's directory, down to the file
    (["data/x"], ["data/x/train.bin", "data/x/val.bin"], [], ["data/x/val.bin"], ["data/x/train.bin"]),
    (["data/x"], ["data/x/a/val.bin", "data/x/a/t.bin", "data/x/b/t.bin"], [], ["*/val.bin"],
     ["data/x/a/t.bin", "data/x/b"]),
    (["data/x"], ["data/x/val.bin"], [], ["data/x"], []),  # the whole entry is the eval's
    # a single file; a tracked one never
    (["input.txt", "train.py"], ["input.txt", "train.py"], ["train.py"], [], ["input.txt"]),
    # an empty directory: linked as it is
    (["cache"], [], [], [], ["cache"]),
])
def test_link_units(entries, files, tracked, hidden, units):
    assert link_units(entries, files, tracked, hidden) == units


def test_covered():
    assert covered("data/x/a.bin", ["data/x"]) and covered("data/x", ["data/x"])
    assert not covered("data/xy", ["data/x"]) and not covered("data", ["data/x"])


# -- pure: the hint a crash gets ----------------------------------------------------------------

RUN = "/a/.autoresearch/worktrees/t/slot-0"
CHECKOUT = {"data/x/train.bin": "file", "data/x": "dir", "input.txt": "file", "data/y/val.bin": "file"}


@pytest.mark.parametrize("tail, found", [
    ("FileNotFoundError: [Errno 2] No such file or directory: 'data/x/train.bin'", ["data/x/train.bin"]),
    (f"FileNotFoundError: [Errno 2] No such file or directory: '{RUN}/data/x/train.bin'", ["data/x/train.bin"]),
    (f"OSError: [Errno 2] No such file or directory: \"{RUN}/./data/../data/x\"", ["data/x"]),
    ("cat: data/x/train.bin: No such file or directory", ["data/x/train.bin"]),
    ("sh: 1: cannot open input.txt: No such file", ["input.txt"]),
    ("FileNotFoundError: input.txt not found.", ["input.txt"]),
    ("python3: can't open file '/a/.autoresearch/worktrees/t/slot-0/prep.py': [Errno 2] No such file or directory",
     ["prep.py"]),
    ("FileNotFoundError: Unable to find './data/x/train.bin'", ["data/x/train.bin"]),
    # outside the run's directory, leaving it, or ours: nothing to say
    ("No such file or directory: '/etc/x.bin'", []),
    ("No such file or directory: '../x.bin'", []),
    ("No such file or directory: '.autoresearch/ledger.sqlite'", []),
    ("No such file or directory: 'a.bin'\nNo such file or directory: 'b.bin'", ["b.bin", "a.bin"]),  # last first
    ("Traceback ... ValueError: bad", []),
])
def test_missing_paths(tail, found):
    assert missing_paths(tail, [RUN]) == found


@pytest.mark.parametrize("tail, data, hidden, hint", [
    # nanoGPT reads its dataset by absolute path: the file's directory is what to add
    (f"FileNotFoundError: [Errno 2] No such file or directory: '{RUN}/data/x/train.bin'", [], [],
     'data/x/train.bin is in your checkout but not in git, and a run directory holds only the commit\'s files: '
     'add this line to [arena]: data = ["data/x"]'),
    ("No such file or directory: 'input.txt'", ["data/x"], [], 'data = ["data/x", "input.txt"]'),
    ("No such file or directory: 'data/x'", [], [], 'data = ["data/x"]'),  # a directory: itself
    # a wider entry replaces the narrower ones it covers (entries may not nest)
    ("No such file or directory: 'data/y/val.bin'", ["input.txt", "data/y/val.bin2"], [],
     'data = ["input.txt", "data/y"]'),
    # listed already, hidden from the phase on purpose, tracked or absent in the checkout: no hint
    ("No such file or directory: 'data/x/train.bin'", ["data/x"], [], None),
    ("No such file or directory: 'data/y/val.bin'", ["data/y"], ["data/y/val.bin"], None),
    ("No such file or directory: 'train.py'", [], [], None),
    ("No such file or directory: 'nowhere.bin'", [], [], None),
])
def test_data_hint(tail, data, hidden, hint):
    got = data_hint(tail, [RUN], CHECKOUT.get, data, hidden)
    assert got is None if hint is None else hint in (got or ""), got


# -- config ---------------------------------------------------------------------------------

CONFIG = '[arena]\neditable = ["train.py"]\nreadonly = ["prepare.py"]\nrun = "python train.py"\n{}\n[metric]\nname = "loss"\n'


@pytest.mark.parametrize("line, message", [
    ('data = ["."]', "whole arena"),
    ('data = ["/srv/data"]', "is absolute"),
    ('data = ["../data"]', "leaves the arena"),
    ('data = [".git/x"]', "inside .git"),
    ('data = [".autoresearch/cache"]', "inside .git or .autoresearch"),
    ('data = ["data/.git"]', "inside .git or .autoresearch"),
    ('data = ["data", "data/x"]', "'data/x' is inside 'data'"),
    ('data = ["data", "./data"]', "listed twice"),
    ('data = ["train.py"]', "editable"),
])
def test_bad_data_entries_are_config_errors(tmp_path, line, message):
    (tmp_path / "autoresearch.toml").write_text(CONFIG.format(line))
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path)
    (tmp_path / "autoresearch.toml").write_text(CONFIG.format('data = ["./data/x", "input.txt"]'))
    assert load_config(tmp_path).config.arena.data == ["data/x", "input.txt"]


# -- run directories: links in, the checkout's copy never touched --------------------------------


@pytest.fixture
def ws(tmp_path):
    r = tmp_path / "repo"
    (r / "data" / "x").mkdir(parents=True)
    git(r, "init", "-q")
    (r / "train.py").write_text("LR = 1\n")
    (r / "data" / "x" / "prepare.py").write_text("# builds train.bin\n")
    (r / ".gitignore").write_text("*.bin\n/raw/\n")
    commit_all(r, "init")
    (r / "data" / "x" / "train.bin").write_bytes(b"TRAIN")
    (r / "data" / "x" / "val.bin").write_bytes(b"VAL")
    (r / "raw").mkdir()
    (r / "raw" / "input.txt").write_text("text\n")
    w = Workspace(r)
    yield w
    w.close()


def _checkout(ws) -> dict[str, bytes]:
    return {p.relative_to(ws.arena).as_posix(): p.read_bytes()
            for p in sorted(ws.arena.rglob("*")) if p.is_file() and ".git" not in p.parts and ".autoresearch" not in p.parts}


def test_run_directories_link_the_data_and_resets_never_touch_the_checkouts_copy(ws):
    data = DataFiles(ws.arena, ["data/x", "raw"], hidden=["data/x/val.bin"])
    before = _checkout(ws)
    inodes = {rel: os.stat(ws.arena / rel).st_ino for rel in before}
    run = ws.dirs.materialize("t", "slot-0", ws.head(), data=data, hide=True)
    assert os.readlink(run / "raw") == str(ws.arena / "raw")  # a whole directory: one link
    assert (run / "data" / "x" / "train.bin").read_bytes() == b"TRAIN"
    assert (run / "data" / "x" / "prepare.py").is_file() and not (run / "data" / "x" / "prepare.py").is_symlink()
    assert not os.path.lexists(run / "data" / "x" / "val.bin")  # eval_only: the eval's alone
    assert ws.dirs.outputs(run) == []  # the links are not outputs of the run
    # the run leaves outputs next to the data and replaces a link by a file of its own
    (run / "raw" / "cache.txt").write_text("written through the link")  # without a sandbox: into the checkout
    os.unlink(run / "data" / "x" / "train.bin")
    (run / "data" / "x" / "train.bin").write_bytes(b"the run's own")
    (run / "ckpt.pt").write_bytes(b"w")
    ev, moved, _ = ws.dirs.prepare_eval("t", "eval-0", run, data=data)
    assert moved == ["ckpt.pt"]  # the run's own train.bin stands where the eval has a link to the data
    assert (ev / "data" / "x" / "val.bin").read_bytes() == b"VAL"  # the eval sees its data
    assert (ev / "data" / "x" / "train.bin").read_bytes() == b"TRAIN"
    c1 = ws.commit_files(ws.head(), {"train.py": "LR = 2\n"}, "one")
    for _ in range(2):  # a reset deletes everything untracked, links without following them, and links again
        run = ws.dirs.materialize("t", "slot-0", c1, data=data, hide=True)
        assert (run / "data" / "x" / "train.bin").read_bytes() == b"TRAIN"
        assert os.path.islink(run / "data" / "x" / "train.bin") and os.path.islink(run / "raw")
    after = _checkout(ws)
    assert after.pop("raw/cache.txt") == b"written through the link"
    assert after == before and all(os.stat(ws.arena / rel).st_ino == n for rel, n in inodes.items())
    assert data.check() == ["data file raw/cache.txt added; the harness keeps no copy of [arena] data to put back: "
                            "restore it"]
    ws.dirs.remove_all("t")
    assert _checkout(ws)["data/x/train.bin"] == b"TRAIN"


def test_the_fingerprint_sees_changes_not_touches(ws):
    data = DataFiles(ws.arena, ["data/x"])
    path = ws.arena / "data" / "x" / "train.bin"
    os.utime(path, (1, 1))  # touched: the same bytes
    assert data.check() == []
    path.write_bytes(b"POISON")
    (ws.arena / "data" / "x" / "val.bin").unlink()
    found = data.check()
    assert found[0].startswith("data file data/x/train.bin changed") and "no copy of [arena] data to put back" in found[0]
    assert found[1] == "data file data/x/val.bin removed"
    assert data.check() == []  # said once


# -- end to end, through the CLI -------------------------------------------------------------------

TRAIN = '''"""Reads its dataset like nanoGPT: next to the script, gitignored."""
import os

from prepare import evaluate, report

LEARNING_RATE = 0.01
WIDTH = 64
DROPOUT = 0.3
WARMUP_STEPS = 500

if __name__ == "__main__":
    data_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "x")
    data = open(os.path.join(data_dir, "train.bin"), "rb").read()
    assert data.startswith(b"TRAIN"), data[:20]
    report(evaluate(LEARNING_RATE, WIDTH, DROPOUT, WARMUP_STEPS))
'''
WRITE = '''
try:
    with open(os.path.join(data_dir, "train.bin"), "ab") as f:
        f.write(b"POISON")
    print("data-write: allowed")
except OSError as e:
    print(f"data-write: refused ({e.strerror})")
'''
ASSERT = '    assert data.startswith(b"TRAIN"), data[:20]'


def _data_arena(tmp_path: Path, sandbox: str, data: bool = True, **tables: dict) -> tuple[Path, Path]:
    arena = make_synthetic_arena(
        tmp_path / "arena", extra_files={"train.py": TRAIN, ".gitignore": "*.bin\nmeta.txt\n",
                                         "data/x/prepare.py": "# builds train.bin from input.txt\n"},
        config_overrides={"arena": {"data": ["data/x"]} if data else {}, "runner": {"sandbox": sandbox},
                          **{name.replace("_", "."): values for name, values in tables.items()}})
    (arena / "data" / "x" / "train.bin").write_bytes(b"TRAIN" + bytes(range(256)))
    (arena / "data" / "x" / "meta.txt").write_text("vocab_size: 65\n")
    props = write_proposals(tmp_path / "p.json", [
        {"description": "lower lr", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]},
        {"description": "write the dataset", "edits": [{"path": "train.py", "search": ASSERT,
                                                        "replace": ASSERT + "\n    exec(" + repr(WRITE) + ")"}]}])
    return arena, props


@pytest.mark.parametrize("sandbox", ["none", "bwrap"])
def test_a_campaign_reads_gitignored_data_where_it_lives(tmp_path, sandbox):
    if sandbox == "bwrap" and shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is needed for this test: apt install bubblewrap (make setup does it as root)")
    arena, props = _data_arena(tmp_path, sandbox)
    original = (arena / "data" / "x" / "train.bin").read_bytes()
    r = run_cli("run", arena, "--tag", "d", "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {x["id"]: x for x in ledger_rows(arena, "SELECT id, status, reason FROM experiments")}
    assert rows[0]["status"] == "keep" and rows[1]["status"] == "keep"  # the baseline and a real change ran on the data
    log = (arena / ".autoresearch" / "d" / "logs" / "0002-a1-run.log").read_text()
    if sandbox == "bwrap":  # bound read-only: the write fails, the checkout's copy is intact
        assert "data-write: refused (Read-only file system)" in log
        assert (arena / "data" / "x" / "train.bin").read_bytes() == original
        assert rows[2]["status"] == "discard" and "TAMPERING" not in r.stdout
    else:  # the write goes through the link; the fingerprint finds it right after the run
        assert "data-write: allowed" in log
        assert rows[2]["status"] == "invalid"
        assert rows[2]["reason"].startswith("tampering: data file data/x/train.bin changed")
        assert "TAMPERING" in r.stdout and "data/x/train.bin" in r.stdout
    assert git(arena, "status", "--porcelain") == ""  # nothing of ours in the user's checkout


def test_without_data_the_baseline_crash_says_which_line_to_add(tmp_path):
    arena, props = _data_arena(tmp_path, "none", data=False)
    r = run_cli("run", arena, "--tag", "d", "--proposals", props)
    assert r.returncode == 1, r.stdout + r.stderr
    line = 'add this line to [arena]: data = ["data/x"]'
    assert line in r.stdout + r.stderr
    reason = ledger_rows(arena, "SELECT reason FROM experiments WHERE id = 0")[0]["reason"]
    assert "No such file or directory" in reason and "data/x/train.bin is in your checkout but not in git" in reason
    assert line in reason


@pytest.mark.parametrize("data, message", [
    (["data/y"], "'data/y' does not exist in the checkout"),
    (["data/x/prepare.py"], "'data/x/prepare.py' is tracked by git: it is in every run directory already"),
])
def test_data_that_is_missing_or_tracked_stops_the_run_before_anything_is_written(tmp_path, data, message):
    arena = make_synthetic_arena(tmp_path / "arena", extra_files={"data/x/prepare.py": "#\n"},
                                 config_overrides={"arena": {"data": data}})
    r = run_cli("run", arena, "--tag", "d", "--max-experiments", "1")
    assert r.returncode == 1 and message in r.stdout + r.stderr, r.stdout + r.stderr
    assert not (arena / ".autoresearch" / "ledger.sqlite").exists()


def test_the_evals_data_is_kept_from_the_run(tmp_path):
    # [arena] eval_only inside [arena] data: the run's directory lacks it, the eval's has it
    score = ("import train\nfrom prepare import evaluate, report\n"
             "assert open('data/x/val.bin', 'rb').read() == b'VAL'\n"
             "report({'val_loss': evaluate(train.LEARNING_RATE, train.WIDTH, train.DROPOUT, train.WARMUP_STEPS)['val_loss']})\n")
    arena, _ = _data_arena(tmp_path, "none")
    (arena / "evaluate.py").write_text(score)
    toml = (arena / "autoresearch.toml").read_text().replace(
        'data = ["data/x"]', f'data = ["data/x"]\neval = "{sys.executable} evaluate.py"\neval_only = ["data/x/val.bin"]')
    (arena / "autoresearch.toml").write_text(toml)
    commit_all(arena, "an evaluator")
    (arena / "data" / "x" / "val.bin").write_bytes(b"VAL")
    props = write_proposals(tmp_path / "p.json", [
        {"description": "peek", "edits": [{"path": "train.py", "search": ASSERT,
                                           "replace": ASSERT + "\n    open(os.path.join(data_dir, 'val.bin')).read()"}]}])
    r = run_cli("run", arena, "--tag", "v", "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {x["id"]: x for x in ledger_rows(arena, "SELECT id, status, reason FROM experiments")}
    assert rows[0]["status"] == "keep"  # the eval read val.bin in its own directory
    assert rows[1]["status"] == "crash" and "val.bin" in rows[1]["reason"]
    assert "add this line" not in rows[1]["reason"]  # hidden on purpose: no hint


def test_eval_only_data_reached_through_a_link_is_refused_before_the_start(tmp_path):
    # the sandbox masks paths of the checkout: behind a link the file could not be hidden
    arena = make_synthetic_arena(tmp_path / "arena", extra_files={".gitignore": "data\n"},
                                 config_overrides={"arena": {"data": ["data"], "eval_only": ["data/val.bin"],
                                                             "eval": f"{sys.executable} prepare.py"}})
    elsewhere = tmp_path / "datasets"
    elsewhere.mkdir()
    (elsewhere / "train.bin").write_bytes(b"T")
    (elsewhere / "val.bin").write_bytes(b"V")
    (arena / "data").symlink_to(elsewhere)
    r = run_cli("run", arena, "--tag", "d", "--max-experiments", "1")
    assert r.returncode == 1 and "a file reached through a link cannot be hidden from the run" in r.stdout + r.stderr, \
        r.stdout + r.stderr
    assert not (arena / ".autoresearch" / "ledger.sqlite").exists()


# -- Ray: the node links the driver's copy when it sees it ---------------------------------------


def test_a_ray_node_links_the_data_it_can_see_and_says_when_it_cannot(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / "data" / "x").mkdir(parents=True)
    (checkout / "data" / "x" / "train.bin").write_bytes(b"TRAIN")
    probe = f"{sys.executable} -c \"print('data:', open('data/x/train.bin', 'rb').read())\""
    job = _job(tmp_path, command=probe)
    seen = dataclasses.replace(job, parts=dataclasses.replace(
        job.parts, data=(("data/x", str(checkout / "data" / "x")),)))
    out = execute(seen, lambda: _tar(BASE))
    assert out.exit_code == 0 and "data: b'TRAIN'" in out.log.decode(), out.log.decode()
    assert out.changed == {}
    gone = dataclasses.replace(job, parts=dataclasses.replace(job.parts, data=(("data/x", "/no/such/checkout/data/x"),)))
    with pytest.raises(SetupError, match=r"data/x \(\[arena\] data\).*\[runner.ray\] prepare.*data_paths"):
        execute(gone, lambda: _tar(BASE))


def test_untracked_data_is_not_an_uncommitted_change_but_a_changed_tracked_file_there_is(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena", extra_files={"data/x/prepare.py": "#\n"},
                                 config_overrides={"arena": {"data": ["data/x"]}})
    (arena / "data" / "x" / "tokens.dat").write_text("not ignored, not tracked\n")  # `git status` lists it
    assert "tokens.dat" in git(arena, "status", "--porcelain")
    r = run_cli("run", arena, "--tag", "d", "--max-experiments", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    (arena / "data" / "x" / "prepare.py").write_text("# changed, not committed\n")
    r = run_cli("run", arena, "--tag", "d", "--max-experiments", "2")
    assert r.returncode == 1 and "uncommitted changes (data/x/prepare.py)" in r.stdout + r.stderr, r.stdout + r.stderr


def test_the_sandbox_binds_the_data_read_only_beneath_the_masks(tmp_path):
    import shlex

    from autoresearch.runners.sandbox import bwrap_command

    val = tmp_path / "data" / "val.bin"
    val.parent.mkdir()
    val.write_bytes(b"VAL")
    args = shlex.split(bwrap_command("true", bwrap="bwrap", worktree=tmp_path / "w", cwd=tmp_path / "w", writable=[],
                                     arena=tmp_path, state_dir=tmp_path / ".autoresearch", home=None,
                                     masked=[val], data_ro=[str(tmp_path / "data")]))
    bind = args.index("--ro-bind-try", args.index(str(tmp_path / "data")) - 1)
    assert args[bind:bind + 3] == ["--ro-bind-try", str(tmp_path / "data"), str(tmp_path / "data")]
    assert bind < args.index("/dev/null") < args.index("--bind")  # the eval_only mask lies on top; the run dir after


@pytest.mark.ray
@pytest.mark.slow
def test_on_a_loopback_ray_cluster_the_node_links_the_checkouts_data(tmp_path):
    from autoresearch.api import run_campaign
    from autoresearch.testing import RayCluster

    cluster = RayCluster(workers=1, cpus=2, resources={"fake_gpu": 2})
    try:
        cluster.start()
        with cluster.driver():
            nodes = cluster.temp_dir / "nodes"
            arena, props = _data_arena(tmp_path, "none", runner_ray={
                "address": cluster.address, "resources": {"fake_gpu": 1}, "work_dir": str(nodes)})
            toml = (arena / "autoresearch.toml").read_text().replace("[runner]\n", '[runner]\nkind = "ray"\n', 1)
            (arena / "autoresearch.toml").write_text(toml)
            commit_all(arena, "on ray")
            outcome, _ = run_campaign(arena, proposer_kind="scripted", proposals=props, max_experiments=2)
            links = [os.readlink(p) for p in (nodes / "scratch").glob("*/data/x/train.bin")]  # (before the cluster goes)
    finally:
        assert cluster.stop() == []
    assert outcome.exit_code == 0, outcome
    rows = {x["id"]: x["status"] for x in ledger_rows(arena, "SELECT id, status FROM experiments")}
    assert rows == {0: "keep", 1: "keep"}  # the runs on the node read the data
    assert links and set(links) == {os.path.realpath(arena / "data" / "x" / "train.bin")}  # the driver's copy
