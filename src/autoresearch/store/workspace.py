"""The git side of an arena: its repository, the campaign's refs, commits, run directories.

The user's checkout (working tree, index, HEAD) is never touched: we add objects and our
own refs, and keep run directories under ``.autoresearch/`` (``rundirs.py``, as
``workspace.dirs``). Reads and writes of objects
and refs go through ``gitobjects`` (in process, or one long-lived ``git cat-file``); the
few git processes left (``status`` of the user's checkout, ``merge-base``) run with a fixed
environment and configuration, filter drivers off.
"""

from __future__ import annotations

import fnmatch
import threading
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import ArenaError, EditError
from .gitobjects import (MODE_FILE, MODE_GITLINK, MODE_LINK, MODE_TREE, GitError, ObjectStore, RefStore, TreeEntry,
                         git, git_out, no_filters, stale_temp_objects)
from .rundirs import RunDirs, TreeCache

STATE_DIR = ".autoresearch"
TMP_SUFFIX = ".autoresearch-tmp"  # a file being written next to its target (store/ledger.write_atomic)
OUR_FILES = (f"{STATE_DIR}/", "results.tsv", "progress.png", f".*{TMP_SUFFIX}")

__all__ = ["Workspace", "GitError", "git", "git_out", "STATE_DIR", "OUR_FILES"]


def _kind(e: TreeEntry) -> str:
    return {"120000": "a symlink", "40000": "a directory", "160000": "a submodule"}.get(e.mode, "a file")


def commit_present(ws: "Workspace", sha: str) -> bool:
    """Whether the repository holds commit ``sha`` intact (a run may have pruned or
    planted objects)."""
    try:
        return ws.has_commit(sha)
    except GitError:  # an object that does not match its id
        return False


def commits_not_in(ws: "Workspace", ref: str) -> int:
    """How many commits the user's checkout (HEAD) has that ``ref`` does not, of those that
    touch the arena's folder (in a larger repository, a commit elsewhere changes nothing a
    campaign runs); 0 where either cannot be read (an unborn HEAD)."""
    done = git(["rev-list", "--count", f"{ref}..HEAD", "--", "."], ws.arena, check=False)
    return int(done.stdout.decode().strip() or 0) if done.returncode == 0 else 0


def arena_paths(ws: "Workspace", commit: str) -> list[str]:
    """The arena-relative paths of the files at ``commit``."""
    return [k[len(ws.prefix):] for k in ws._flat(commit) if k.startswith(ws.prefix)]


def attribute_files(ws: "Workspace") -> list[str]:
    """Repository-relative paths of the ``.gitattributes`` files in HEAD's tree."""
    return [p for p in ws._flat(ws.head()) if p.rsplit("/", 1)[-1] == ".gitattributes"]


class Workspace:
    """Git operations for one arena (a directory inside a git repository)."""

    def __init__(self, arena: Path):
        arena = arena.resolve()
        if not arena.is_dir():
            raise ArenaError(f"{arena} is not a directory")
        proc = git(["rev-parse", "--show-toplevel"], arena, check=False)
        if proc.returncode != 0 and b"dubious ownership" in proc.stderr:
            raise ArenaError(
                f"git refuses the repository at {arena}: it belongs to another user (uid {arena.stat().st_uid}). "
                f"Run autoresearch as that user, or trust it: git config --global --add safe.directory {arena}")
        if proc.returncode != 0:
            raise ArenaError(
                f"{arena} is not inside a git repository. autoresearch records every experiment "
                f"as a commit: run `git init && git add -A && git commit -m init` there, "
                f"or `autoresearch init {arena}`."
            )
        self.arena = arena
        self.root = Path(proc.stdout.decode().strip()).resolve()
        rel = arena.relative_to(self.root).as_posix()
        self.prefix = "" if rel == "." else rel + "/"
        self.state_dir = arena / STATE_DIR
        if git(["rev-parse", "--verify", "-q", "HEAD^{commit}"], self.root, check=False).returncode != 0:
            raise ArenaError(f"the repository at {self.root} has no commits yet: commit your files first "
                             "(git add -A && git commit -m init)")
        git_dir = Path(git_out(["rev-parse", "--git-common-dir"], self.root))
        self.git_dir = git_dir if git_dir.is_absolute() else (self.root / git_dir).resolve()
        self.objects = ObjectStore(self.root, self.git_dir)
        self.refs = RefStore(self.root, self.git_dir, "0" * (2 * self.objects.hash_len))
        self.trees = TreeCache(self.objects)
        self._lock = threading.Lock()  # the tree cache
        self.dirs = RunDirs(self.objects, self.trees, prefix=self.prefix, base=self.state_dir / "worktrees",
                            trees_lock=self._lock)
        self.watchers: list[Any] = []  # told before and after each of our ref writes (engine/guard.py)

    def close(self) -> None:
        self.objects.close()

    # -- refs ---------------------------------------------------------------------------------
    def head(self) -> str:
        return git_out(["rev-parse", "HEAD^{commit}"], self.root)

    def resolve(self, ref: str) -> str | None:
        """A full ref name (``refs/heads/...``) -> the commit it points at, or None."""
        return self.refs.resolve(ref)

    def has_commit(self, sha: str) -> bool:
        got = self.objects.read_many([sha]).get(sha)
        return got is not None and got[0] == "commit"

    def update_ref(self, ref: str, new: str, old: str | None = None, message: str = "autoresearch") -> None:
        """Move one of our refs. Only the journal calls this (architecture test)."""
        for w in list(self.watchers):
            w.before_ref_write(ref)
        self.refs.update(ref, new, old, message)
        for w in list(self.watchers):
            w.after_ref_write(ref)

    def delete_ref(self, ref: str, old: str | None = None) -> None:
        """Remove one of our refs. Only the journal calls this (architecture test)."""
        for w in list(self.watchers):
            w.before_ref_write(ref)
        self.refs.delete(ref, old)
        for w in list(self.watchers):
            w.after_ref_write(ref)

    def ref_lock_path(self, ref: str) -> Path:
        return self.refs.lock_path(ref)

    def is_ancestor(self, a: str, b: str) -> bool:
        return git(["merge-base", "--is-ancestor", a, b], self.root, check=False).returncode == 0

    # -- the user's checkout ------------------------------------------------------------------
    def ensure_excluded(self) -> None:
        """Keep our files out of ``git status`` through .git/info/exclude (never .gitignore)."""
        exclude = self.git_dir / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        text = exclude.read_text() if exclude.exists() else ""
        have = set(text.splitlines())
        missing = [w for w in (f"/{self.prefix}{name}" for name in OUR_FILES) if w not in have]
        if missing:
            sep = "" if not text or text.endswith("\n") else "\n"
            exclude.write_text(text + sep + "# autoresearch\n" + "\n".join(missing) + "\n")

    def dirty_paths(self) -> list[str]:
        """Uncommitted changes in the user's checkout, ignoring our own files."""
        # no filter driver, fsmonitor or submodule's git runs on the repository's say-so
        args = [*no_filters(self.root), "status", "--porcelain", "-z", "--untracked-files=normal",
                "--ignore-submodules=all", "--", "."]
        out = git(args, self.arena).stdout
        paths = []
        for entry in out.decode(errors="replace").split("\0"):
            if len(entry) > 3:
                path = entry[3:]
                ours = (f"{self.prefix}{o}" for o in OUR_FILES)
                if not any(path == o.rstrip("/") or path.startswith(o) or fnmatch.fnmatchcase(path, o) for o in ours):
                    paths.append(path)
        return paths

    # -- trees and files ----------------------------------------------------------------------
    def _flat(self, commit: str) -> Mapping[str, TreeEntry]:
        with self._lock:
            return self.trees.of_commit(commit)

    def tree_entries(self, commit: str, paths: Iterable[str]) -> dict[str, TreeEntry | None]:
        """The tree entry of each arena-relative path at ``commit`` (None where absent; a
        directory shows as a tree entry)."""
        flat = self._flat(commit)
        out: dict[str, TreeEntry | None] = {}
        for p in paths:
            full = self.prefix + p
            entry = flat.get(full)
            if entry is None and any(k.startswith(full + "/") for k in flat):
                entry = TreeEntry(MODE_TREE, p.rsplit("/", 1)[-1], "")
            out[p] = entry
        return out

    def tree_blobs(self, commit: str, paths: Iterable[str]) -> dict[str, str | None]:
        """Blob id of each arena-relative path at ``commit`` (None where absent or not a file)."""
        return {p: (e.sha if e is not None and e.mode in ("100644", "100755") else None)
                for p, e in self.tree_entries(commit, paths).items()}

    def read_files(self, commit: str, paths: Iterable[str]) -> dict[str, str | None]:
        """Text of each arena-relative regular file at ``commit`` (None where absent, or a
        symlink: edits never go through links)."""
        blobs = self.tree_blobs(commit, paths)
        got = self.objects.read_many(sha for sha in blobs.values() if sha is not None)
        return {p: (got[sha][1].decode("utf-8", errors="replace") if sha is not None and got.get(sha) else None)
                for p, sha in blobs.items()}

    def changed_files(self, base: str, commit: str) -> tuple[dict[str, tuple[bytes, int]], list[str]]:
        """Repo-relative files that differ from ``base`` in ``commit`` ({path: (bytes, mode)}),
        and the paths ``commit`` no longer has."""
        old, new = self._flat(base), self._flat(commit)
        changed = {p: e for p, e in new.items() if old.get(p) != e}
        blobs = self.objects.read_many(e.sha for e in changed.values())
        files = {p: ((blobs.get(e.sha) or ("", b""))[1], int(e.mode, 8)) for p, e in changed.items()}
        return files, sorted(set(old) - set(new))

    def archive(self, commit: str) -> bytes:
        """The commit's files as a tar, written here (``git archive`` would run filter
        drivers and ``export-subst`` on the repository's say-so)."""
        import io
        import tarfile

        with self._lock:
            flat = dict(self.trees.of_commit(commit))
        blobs = self.objects.read_many(e.sha for e in flat.values() if e.mode != MODE_GITLINK)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(flat):
                e = flat[path]
                info = tarfile.TarInfo(path)
                if e.mode == MODE_GITLINK:  # a submodule: an empty directory, as git archive writes it
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                    continue
                got = blobs.get(e.sha)
                if got is None:
                    raise GitError(f"{commit}: object {e.sha} of {path} is missing")
                if e.mode == MODE_LINK:
                    info.type, info.linkname, info.mode = tarfile.SYMTYPE, got[1].decode("utf-8", "surrogateescape"), 0o777
                    tar.addfile(info)
                else:
                    info.size, info.mode = len(got[1]), 0o755 if e.mode == "100755" else 0o644
                    tar.addfile(info, io.BytesIO(got[1]))
        return buf.getvalue()

    def commit_files(self, parent: str, files: Mapping[str, str], message: str) -> str:
        """A new commit: ``parent`` with ``files`` (arena-relative path -> text) written.
        Written in process (blobs, the trees on their paths, the commit). A path that goes
        through a link or a non-directory in the parent's tree is refused."""
        root_tree = self.objects.tree_of(parent)
        blobs = {self.prefix + rel: self.objects.write("blob", text.encode("utf-8")) for rel, text in files.items()}
        tree = self._tree_with(root_tree, blobs)
        return self.objects.write_commit(tree, [parent], message)

    def _tree_with(self, tree: str | None, blobs: Mapping[str, str], where: str = "") -> str:
        entries = {e.name: e for e in self.objects.tree(tree)} if tree else {}
        here: dict[str, dict[str, str]] = {}
        for path, sha in blobs.items():
            head, sep, rest = path.partition("/")
            if sep:
                here.setdefault(head, {})[rest] = sha
            else:
                old = entries.get(head)
                if old is not None and old.mode not in ("100644", "100755"):
                    raise EditError(f"{where + head!r} is {_kind(old)} in the commit; edits through links are refused"
                                    if old.mode == "120000" else f"{where + head!r} is {_kind(old)} in the commit, not a file")
                entries[head] = TreeEntry(old.mode if old is not None else MODE_FILE, head, sha)
        for name, sub in here.items():
            old = entries.get(name)
            if old is not None and not old.is_tree:
                raise EditError(f"{where + name!r} is {_kind(old)} in the commit, not a directory; "
                                "edits through links are refused")
            entries[name] = TreeEntry(MODE_TREE, name, self._tree_with(old.sha if old else None, sub, where + name + "/"))
        from .gitobjects import format_tree

        return self.objects.write("tree", format_tree(entries.values()))

    def clean_stale(self, tag: str) -> list[str]:
        """Remove what a killed harness may have left: its run directories (rebuilt on
        demand), lock files of our refs, its temporary object files, and the registrations of
        git worktrees (earlier versions ran in those). Only called with the campaign lock.
        Returns what was stale: not the run directories, which every run leaves and every
        start removes (counted, a clean finish's resume said "cleaned 1 stale item(s)")."""
        removed: list[str] = []
        self.dirs.remove_all(tag)
        git(["worktree", "prune"], self.root, check=False)
        ours = [self.ref_lock_path(f"refs/heads/autoresearch/{tag}")]
        for kind in ("discarded", "ablation"):
            d = self.git_dir / "refs" / "autoresearch" / tag / kind
            if d.is_dir():
                ours += sorted(d.glob("*.lock"))
        for f in [p for p in ours if p.exists()] + stale_temp_objects(self.git_dir):
            f.unlink(missing_ok=True)
            removed.append(str(f))
        for folder in (self.arena, self.state_dir / tag):  # files a killed harness was writing
            for f in folder.glob(f".*{TMP_SUFFIX}") if folder.is_dir() else ():
                pid = f.name.rsplit(".", 2)[-2]
                if not pid.isdigit() or not Path(f"/proc/{pid}").exists():
                    f.unlink(missing_ok=True)
                    removed.append(str(f))
        return removed
