"""Run directories: a slot's directory holds exactly one commit's files after every reset,
whatever the previous run did to it, without writing anywhere else; and the eval's
directory gets the run's outputs, never its code."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from autoresearch import safefs
from autoresearch.store.workspace import Workspace
from autoresearch.testing import commit_all, deep_chain
from conftest import git

FILES = {"train.py": "LR = 0.1\n", "prepare.py": "# readonly\n", "pkg/model.py": "W = 1\n", "pkg/data/x.txt": "x\n"}


@pytest.fixture
def ws(tmp_path):
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q")
    for rel, text in FILES.items():
        (r / rel).parent.mkdir(parents=True, exist_ok=True)
        (r / rel).write_text(text)
    (r / "run.sh").write_text("echo hi\n")
    os.chmod(r / "run.sh", 0o755)
    os.symlink("train.py", r / "alias.py")
    commit_all(r, "init")
    w = Workspace(r)
    yield w
    w.close()


def snapshot(top: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            p = Path(dirpath) / name
            rel = p.relative_to(top).as_posix()
            out[rel] = f"-> {os.readlink(p)}" if p.is_symlink() else p.read_text()
    return out


def test_a_directory_holds_exactly_its_commit_and_only_changed_files_are_rewritten(ws):
    head = ws.head()
    d = ws.dirs.materialize("t", "slot-0", head)
    assert snapshot(d) == {**FILES, "run.sh": "echo hi\n", "alias.py": "-> train.py"}
    assert os.stat(d / "run.sh").st_mode & stat.S_IXUSR
    assert not (d / ".git").exists()  # no pointer into the repository for a run to rewrite
    c1 = ws.commit_files(head, {"train.py": "LR = 0.2\n"}, "one")
    inode = os.stat(d / "prepare.py").st_ino
    ws.dirs.materialize("t", "slot-0", c1)
    assert (d / "train.py").read_text() == "LR = 0.2\n"
    assert os.stat(d / "prepare.py").st_ino == inode  # untouched files are not rewritten
    assert ws.dirs.commit_of(d) == c1


def test_whatever_a_run_did_the_next_reset_restores_the_commit_and_writes_nowhere_else(ws, tmp_path):
    head = ws.head()
    d = ws.dirs.materialize("t", "slot-0", head)
    outside = tmp_path / "outside"
    outside.mkdir()
    # a run: edits a tracked file (keeping size and mtime), deletes one, leaves outputs,
    # replaces a directory with a link to the outside, makes a directory unreadable
    st = os.stat(d / "prepare.py")
    (d / "prepare.py").write_text("# hacked\n"[: st.st_size].ljust(st.st_size))
    os.utime(d / "prepare.py", ns=(st.st_atime_ns, st.st_mtime_ns))
    (d / "train.py").unlink()
    (d / "ckpt.bin").write_bytes(b"w" * 100)
    (d / "out" / "deep").mkdir(parents=True)
    (d / "out" / "deep" / "log.txt").write_text("x")
    import shutil

    shutil.rmtree(d / "pkg")
    os.symlink(outside, d / "pkg")
    assert sorted(ws.dirs.outputs(d)) == ["ckpt.bin", "out/deep/log.txt", "pkg"]  # the link, not followed
    (d / "locked").mkdir()
    (d / "locked" / "f").write_text("x")
    os.chmod(d / "locked", 0)
    ws.dirs.materialize("t", "slot-0", head)
    assert snapshot(d) == {**FILES, "run.sh": "echo hi\n", "alias.py": "-> train.py"}
    assert list(outside.iterdir()) == []  # the reset never wrote through the planted link
    assert not (d / "locked").exists()


def test_the_eval_gets_the_runs_outputs_but_not_its_code(ws):
    head = ws.head()
    run = ws.dirs.materialize("t", "slot-0", head)
    (run / "ckpt.txt").write_text("0.75")
    (run / "json.py").write_text("raise SystemExit(9)")  # would shadow the standard library's json
    (run / "pkg" / "sitecustomize.py").write_text("")
    (run / "prepare.py").write_text("# the run rewrote the evaluator\n")
    ev, moved, removed = ws.dirs.prepare_eval("t", "eval-0", run)
    assert moved == ["ckpt.txt"] and sorted(removed) == ["json.py", "pkg/sitecustomize.py"]
    assert (ev / "ckpt.txt").read_text() == "0.75"
    assert (ev / "prepare.py").read_text() == "# readonly\n"  # the evaluator as committed
    assert not (ev / "json.py").exists()


def test_an_arena_in_a_subdirectory(tmp_path):
    r = tmp_path / "mono"
    (r / "projects" / "arena").mkdir(parents=True)
    git(r, "init", "-q")
    (r / "README").write_text("top\n")
    (r / "projects" / "arena" / "train.py").write_text("LR = 1\n")
    commit_all(r, "init")
    ws = Workspace(r / "projects" / "arena")
    try:
        d = ws.dirs.materialize("t", "slot-0", ws.head())
        assert d.name == "arena" and (d / "train.py").read_text() == "LR = 1\n"
        assert ws.dirs.top_of(d) == ws.dirs.path("t", "slot-0")
        assert (ws.dirs.top_of(d) / "README").read_text() == "top\n"
        c = ws.commit_files(ws.head(), {"train.py": "LR = 2\n"}, "m")
        assert git(r, "show", f"{c}:projects/arena/train.py") == "LR = 2"
    finally:
        ws.close()


def test_odd_shapes_a_run_leaves_are_hashed_walked_and_removed_without_reading_or_recursing(ws):
    head = ws.head()
    d = ws.dirs.materialize("t", "slot-0", head)
    with open(d / "prepare.py", "r+b") as f:  # a sparse terabyte where a readonly file was
        f.truncate(1 << 40)
    (d / "pkg" / "model.py").unlink()
    os.mkfifo(d / "pkg" / "model.py")  # a FIFO: never opened for reading
    hashes = ws.dirs.hash_files(d, ["prepare.py", "pkg/model.py", "train.py"])
    assert hashes["prepare.py"].startswith("larger than") and hashes["pkg/model.py"] is None
    assert hashes["train.py"] == git(ws.root, "rev-parse", f"{head}:train.py")
    deep_chain(d)  # deeper than Python's recursion and PATH_MAX
    try:
        assert ws.dirs.outputs(d) == []  # (empty folders are no outputs; walking them does not recurse)
        ws.dirs.materialize("t", "slot-0", head)
        assert snapshot(d) == {**FILES, "run.sh": "echo hi\n", "alias.py": "-> train.py"}
        assert not (d / "d").exists()
    finally:
        safefs.remove_tree(d / "d")  # (pytest's own clean-up would recurse)
