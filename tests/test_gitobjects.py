"""The in-process git store against git itself: objects we write pass ``git fsck --strict``
and read back as git reads them; refs we move are seen by git (loose, packed, reflog);
the locking protocol excludes git and us from each other."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from autoresearch.errors import EditError
from autoresearch.store.gitobjects import GitError, TreeEntry, format_tree, parse_tree, stale_temp_objects
from autoresearch.store.workspace import Workspace
from autoresearch.testing import commit_all
from conftest import git


def repo(path: Path, files: dict[str, str], *, object_format: str = "sha1") -> Path:
    path.mkdir()
    subprocess.run(["git", "init", "-q", f"--object-format={object_format}"], cwd=path, check=True)
    for rel, text in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    commit_all(path, "init")
    return path


FILES = {"train.py": "LR = 0.1\n", "prepare.py": "# readonly\n", "pkg/model.py": "W = 1\n", "run.sh": "echo hi\n"}


@pytest.mark.parametrize("fmt", ["sha1", "sha256"])
def test_a_commit_written_in_process_is_the_commit_git_would_make(tmp_path, fmt):
    r = repo(tmp_path / "r", FILES, object_format=fmt)
    os.chmod(r / "run.sh", 0o755)
    commit_all(r, "exec bit")
    ws = Workspace(r)
    try:
        head = ws.head()
        new = ws.commit_files(head, {"train.py": "LR = 0.05\n", "pkg/model.py": "W = 2\n", "pkg/new/deep.py": "X = 1\n"},
                              "autoresearch t #1: two edits and a new file\0with a NUL")
        assert git(r, "fsck", "--strict", "--no-dangling") == ""
        assert git(r, "rev-parse", f"{new}^") == head
        assert git(r, "show", f"{new}:train.py") == "LR = 0.05"
        assert git(r, "show", f"{new}:pkg/new/deep.py") == "X = 1"
        assert "100755 blob" in git(r, "ls-tree", new, "run.sh")  # modes of untouched entries kept
        assert git(r, "log", "-1", "--format=%an <%ae>|%s", new) == "autoresearch <autoresearch@localhost>|autoresearch t #1: two edits and a new file\ufffdwith a NUL"
        # the same content through git's own plumbing gives the same tree
        wt = tmp_path / "wt"
        git(r, "worktree", "add", "-q", "--detach", str(wt), head)
        (wt / "train.py").write_text("LR = 0.05\n")
        (wt / "pkg" / "model.py").write_text("W = 2\n")
        (wt / "pkg" / "new").mkdir()
        (wt / "pkg" / "new" / "deep.py").write_text("X = 1\n")
        git(wt, "add", "-A")
        assert git(wt, "write-tree") == git(r, "rev-parse", f"{new}^{{tree}}")
        assert ws.read_files(new, ["train.py", "pkg/new/deep.py", "nope.py"]) == {
            "train.py": "LR = 0.05\n", "pkg/new/deep.py": "X = 1\n", "nope.py": None}
    finally:
        ws.close()


def test_edits_through_links_or_files_in_the_way_are_refused(tmp_path):
    r = repo(tmp_path / "r", FILES)
    os.symlink("/etc", r / "escape")
    os.symlink("/etc/hostname", r / "link.py")
    commit_all(r, "links")
    ws = Workspace(r)
    try:
        head = ws.head()
        with pytest.raises(EditError, match="'escape' is a symlink in the commit, not a directory"):
            ws.commit_files(head, {"escape/passwd": "x"}, "m")
        with pytest.raises(EditError, match="'link.py' is a symlink in the commit; edits through links are refused"):
            ws.commit_files(head, {"link.py": "x"}, "m")
        with pytest.raises(EditError, match="'train.py' is a file in the commit, not a directory"):
            ws.commit_files(head, {"train.py/x.py": "x"}, "m")
        with pytest.raises(EditError, match="'pkg' is a directory in the commit, not a file"):
            ws.commit_files(head, {"pkg": "x"}, "m")
    finally:
        ws.close()


@pytest.mark.parametrize("packed", [False, True])
def test_refs_moved_in_process_are_what_git_sees(tmp_path, packed):
    r = repo(tmp_path / "r", FILES)
    ws = Workspace(r)
    try:
        head = ws.head()
        c1 = ws.commit_files(head, {"train.py": "LR = 1\n"}, "one")
        c2 = ws.commit_files(c1, {"train.py": "LR = 2\n"}, "two")
        branch = "refs/heads/autoresearch/t"
        ws.update_ref(branch, c1, message="autoresearch: campaign start")
        if packed:
            git(r, "pack-refs", "--all")
            assert not (ws.git_dir / branch).exists()
        assert ws.resolve(branch) == c1
        with pytest.raises(GitError, match="expected"):
            ws.update_ref(branch, c2, head, message="wrong old value")
        ws.update_ref(branch, c2, c1, message="autoresearch: keep #2: two")
        assert git(r, "rev-parse", "autoresearch/t") == c2
        assert git(r, "reflog", "show", "--format=%gs", "autoresearch/t").splitlines()[0] == "autoresearch: keep #2: two"
        archive = "refs/autoresearch/t/discarded/3"
        ws.update_ref(archive, c1, message="discard")
        assert git(r, "rev-parse", archive) == c1
        assert git(r, "fsck", "--strict", "--no-dangling") == ""
        # git holding the lock (or a stale lock) blocks us with a message that names the file
        lock = ws.ref_lock_path(branch)
        lock.write_text("")
        with pytest.raises(GitError, match=str(lock)):
            ws.update_ref(branch, c1, c2)
        lock.unlink()
        assert ws.resolve(branch) == c2
    finally:
        ws.close()


def test_the_reader_survives_its_git_process_dying(tmp_path):
    r = repo(tmp_path / "r", FILES)
    ws = Workspace(r)
    try:
        head = ws.head()
        assert ws.read_files(head, ["train.py"])["train.py"] == "LR = 0.1\n"
        proc = ws.objects._proc
        assert proc is not None
        proc.kill()
        proc.wait()
        assert ws.read_files(head, ["prepare.py"])["prepare.py"] == "# readonly\n"
        assert ws.objects.read_many(["0" * 40])["0" * 40] is None
    finally:
        ws.close()
    assert ws.objects._proc is None


def test_temporary_objects_of_a_dead_writer_are_found(tmp_path):
    r = repo(tmp_path / "r", FILES)
    objects = r / ".git" / "objects" / "ab"
    objects.mkdir(parents=True, exist_ok=True)
    dead = objects / "tmp_obj_autoresearch_999999999_1"
    alive = objects / f"tmp_obj_autoresearch_{os.getpid()}_1"
    theirs = objects / "tmp_obj_XYZ"  # git's own: not ours to remove
    for f in (dead, alive, theirs):
        f.write_text("")
    assert stale_temp_objects(r / ".git") == [dead]


@pytest.mark.parametrize("entries", [
    [TreeEntry("100644", "b.py", "1" * 40), TreeEntry("40000", "a", "2" * 40), TreeEntry("100755", "a.sh", "3" * 40)],
    [TreeEntry("40000", "lib", "4" * 40), TreeEntry("100644", "lib-x", "5" * 40), TreeEntry("120000", "l", "6" * 40)],
])
def test_tree_objects_round_trip_in_gits_order(entries):
    raw = format_tree(entries)
    back = parse_tree(raw)
    assert sorted(back, key=lambda e: e.name) == sorted(entries, key=lambda e: e.name)
    # git sorts a tree as if its name ended in "/": "a.sh" < "a/" and "lib-x" < "lib/"
    names = [e.name for e in back]
    if "a" in names:
        assert names.index("a.sh") < names.index("a")
    if "lib" in names:
        assert names.index("lib-x") < names.index("lib")
