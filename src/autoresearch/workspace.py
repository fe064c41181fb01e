"""The git adapter: campaign branch, per-slot worktrees, commits, ref updates.

Every git call passes its own identity and disables hooks and signing, so it works on a
machine without a global git identity and a user's hooks never run on our commits. The
user's checkout (working tree, index, HEAD) is never touched: we only add refs, and
worktrees under ``.autoresearch/``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Iterable, Mapping

from .errors import ArenaError, AutoresearchError, EditError

STATE_DIR = ".autoresearch"
OUR_FILES = (f"{STATE_DIR}/", "results.tsv", "progress.png")
_IDENTITY = {
    "GIT_AUTHOR_NAME": "autoresearch",
    "GIT_AUTHOR_EMAIL": "autoresearch@localhost",
    "GIT_COMMITTER_NAME": "autoresearch",
    "GIT_COMMITTER_EMAIL": "autoresearch@localhost",
}
_CONFIG = ("-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false", "-c", "gc.auto=0", "-c", "maintenance.auto=false")


def trust_other_owners() -> None:
    """``[runner] run_as``: the worktrees belong to the run's user, and git (as root) refuses
    repositories owned by another user unless told otherwise (``safe.directory``)."""
    global _CONFIG
    if "safe.directory=*" not in _CONFIG:
        _CONFIG = (*_CONFIG, "-c", "safe.directory=*")


class GitError(AutoresearchError):
    pass


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(_IDENTITY)
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"
    return env


_ENV = _git_env()


def git(args: Iterable[str], cwd: Path, *, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    cmd = ["git", *_CONFIG, *args]
    proc = subprocess.run(cmd, cwd=cwd, env=_ENV, input=input, capture_output=True)
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise GitError(f"git {' '.join(args)} failed in {cwd}: {err}")
    return proc


def git_out(args: Iterable[str], cwd: Path) -> str:
    return git(args, cwd).stdout.decode(errors="replace").strip()


def blob_hash(data: bytes) -> str:
    """The id git gives a file with these bytes (no filters)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


_ADMIN_GUARD = threading.Lock()
_ADMIN_LOCKS: dict[Path, threading.Lock] = {}


class Workspace:
    """Git operations for one arena (a directory inside a git repository)."""

    def __init__(self, arena: Path):
        arena = arena.resolve()
        if not arena.is_dir():
            raise ArenaError(f"{arena} is not a directory")
        proc = git(["rev-parse", "--show-toplevel"], arena, check=False)
        if proc.returncode != 0:
            raise ArenaError(
                f"{arena} is not inside a git repository. autoresearch records every experiment "
                f"as a commit: run `git init && git add -A && git commit -m init` there, "
                f"or `autoresearch init {arena}`."
            )
        self.arena = arena
        self.root = Path(proc.stdout.decode().strip()).resolve()
        # Slots (and the agent proposer) check out and commit in their own worktrees
        # concurrently; adding or removing a worktree changes the repository's shared list
        # of worktrees: one at a time per repository.
        with _ADMIN_GUARD:
            self._admin = _ADMIN_LOCKS.setdefault(self.root, threading.Lock())
        rel = arena.relative_to(self.root).as_posix()
        self.prefix = "" if rel == "." else rel + "/"
        self.state_dir = arena / STATE_DIR
        if git(["rev-parse", "--verify", "-q", "HEAD^{commit}"], self.root, check=False).returncode != 0:
            raise ArenaError(f"the repository at {self.root} has no commits yet: commit your files first (git add -A && git commit -m init)")
        self.git_dir = Path(git_out(["rev-parse", "--git-common-dir"], self.root))
        if not self.git_dir.is_absolute():
            self.git_dir = (self.root / self.git_dir).resolve()

    # -- refs ---------------------------------------------------------------------------
    def head(self) -> str:
        return git_out(["rev-parse", "HEAD^{commit}"], self.root)

    def resolve(self, ref: str) -> str | None:
        proc = git(["rev-parse", "--verify", "-q", f"{ref}^{{commit}}"], self.root, check=False)
        return proc.stdout.decode().strip() if proc.returncode == 0 else None

    def has_commit(self, sha: str) -> bool:
        return git(["cat-file", "-e", f"{sha}^{{commit}}"], self.root, check=False).returncode == 0

    def update_ref(self, ref: str, new: str, old: str | None = None, message: str = "autoresearch") -> None:
        args = ["update-ref", "-m", message, ref, new]
        if old is not None:
            args.append(old)
        git(args, self.root)

    def is_ancestor(self, a: str, b: str) -> bool:
        return git(["merge-base", "--is-ancestor", a, b], self.root, check=False).returncode == 0

    # -- the user's checkout ------------------------------------------------------------
    def ensure_excluded(self) -> None:
        """Keep our files out of ``git status`` through .git/info/exclude (never .gitignore)."""
        exclude = self.git_dir / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        text = exclude.read_text() if exclude.exists() else ""
        have = set(text.splitlines())
        wanted = [f"/{self.prefix}{name}" for name in OUR_FILES]
        missing = [w for w in wanted if w not in have]
        if missing:
            sep = "" if not text or text.endswith("\n") else "\n"
            exclude.write_text(text + sep + "# autoresearch\n" + "\n".join(missing) + "\n")

    def dirty_paths(self) -> list[str]:
        """Uncommitted changes in the user's checkout, ignoring our own files."""
        out = git(["status", "--porcelain", "-z", "--untracked-files=normal", "--", "."], self.arena).stdout
        paths = []
        for entry in out.decode(errors="replace").split("\0"):
            if len(entry) > 3:
                path = entry[3:]
                if not any(path == f"{self.prefix}{o}".rstrip("/") or path.startswith(f"{self.prefix}{o}") for o in OUR_FILES):
                    paths.append(path)
        return paths

    # -- trees ----------------------------------------------------------------------------
    def tree_entries(self, commit: str, paths: Iterable[str]) -> dict[str, tuple[str, str, str] | None]:
        """(mode, type, id) of each arena-relative path at ``commit``, None where absent."""
        paths = list(paths)
        result: dict[str, tuple[str, str, str] | None] = {p: None for p in paths}
        if not paths:
            return result
        out = git(["ls-tree", "-z", commit, "--", *[self.prefix + p for p in paths]], self.root).stdout.decode()
        for entry in out.split("\0"):
            if not entry:
                continue
            meta, _, name = entry.partition("\t")
            mode, kind, sha = meta.split()
            result[name[len(self.prefix):]] = (mode, kind, sha)
        return result

    def tree_blobs(self, commit: str, paths: Iterable[str]) -> dict[str, str | None]:
        """Blob id of each arena-relative path at ``commit`` (None where absent or not a file)."""
        return {
            p: (e[2] if e is not None and e[1] == "blob" and e[0] != "120000" else None)
            for p, e in self.tree_entries(commit, paths).items()
        }

    def read_files(self, commit: str, paths: Iterable[str]) -> dict[str, str | None]:
        """Text of each arena-relative regular file at ``commit`` (None where absent, or a
        symlink: edits never go through links)."""
        blobs = self.tree_blobs(commit, paths)
        files: dict[str, str | None] = {p: None for p in blobs}
        wanted = [(p, sha) for p, sha in blobs.items() if sha is not None]
        if not wanted:
            return files
        out = git(["cat-file", "--batch"], self.root, input="".join(f"{sha}\n" for _, sha in wanted).encode()).stdout
        pos = 0
        for p, _ in wanted:
            nl = out.index(b"\n", pos)
            size = int(out[pos:nl].split()[-1])
            files[p] = out[nl + 1 : nl + 1 + size].decode("utf-8", errors="replace")
            pos = nl + 1 + size + 1
        return files

    # -- worktrees ------------------------------------------------------------------------
    def worktree_path(self, tag: str, slot: int) -> Path:
        return self.state_dir / "worktrees" / tag / f"slot-{slot}"

    def checkout(self, tag: str, slot: int, commit: str) -> Path:
        """A clean worktree for ``slot`` at ``commit``; returns the arena directory inside it.

        A slot's worktree is reused between experiments (reset and cleaned of untracked
        files, so nothing an earlier run wrote can leak into the next one).
        """
        path = self.worktree_path(tag, slot)
        if (path / ".git").exists():
            try:
                git(["checkout", "-q", "-f", "--detach", commit], path)
                git(["clean", "-q", "-ffdx"], path)
                return path / self.prefix if self.prefix else path
            except GitError:
                self.remove_worktree(path)
        elif path.exists():
            shutil.rmtree(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._admin:
            git(["worktree", "add", "-q", "-f", "--detach", str(path), commit], self.root)
        return path / self.prefix if self.prefix else path

    def remove_worktree(self, path: Path) -> None:
        with self._admin:
            git(["worktree", "remove", "-f", "-f", str(path)], self.root, check=False)
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)
            git(["worktree", "prune"], self.root, check=False)

    def worktree_gitdir(self, worktree_arena_dir: Path) -> Path:
        top = worktree_arena_dir
        while not (top / ".git").exists() and top != top.parent:
            top = top.parent
        return Path((top / ".git").read_text().split("gitdir:", 1)[-1].strip())

    def ref_lock_path(self, ref: str) -> Path:
        return self.git_dir / f"{ref}.lock"

    def clean_stale(self, tag: str) -> list[str]:
        """Remove what a killed harness may have left: index locks in our worktrees, and
        worktrees git no longer knows. Only called while holding the campaign lock."""
        removed = []
        git(["worktree", "prune"], self.root, check=False)
        base = self.state_dir / "worktrees" / tag
        if base.exists():
            for wt in sorted(base.iterdir()):
                gitfile = wt / ".git"
                if not gitfile.is_file():
                    shutil.rmtree(wt, ignore_errors=True)
                    removed.append(str(wt))
                    continue
                gitdir = Path(gitfile.read_text().split("gitdir:", 1)[-1].strip())
                if not gitdir.exists():
                    shutil.rmtree(wt, ignore_errors=True)
                    removed.append(str(wt))
                    continue
                lock = gitdir / "index.lock"
                if lock.exists():
                    lock.unlink()
                    removed.append(str(lock))
        git(["worktree", "prune"], self.root, check=False)
        # Lock files of our own refs (a harness killed inside update-ref). Nobody else writes
        # these refs, and we hold the campaign lock.
        ours = [self.git_dir / "refs" / "heads" / "autoresearch" / f"{tag}.lock"]
        discarded = self.git_dir / "refs" / "autoresearch" / tag / "discarded"
        if discarded.is_dir():
            ours += sorted(discarded.glob("*.lock"))
        for lock in ours:
            if lock.exists():
                lock.unlink()
                removed.append(str(lock))
        tmp = self.state_dir / tag / "tmp"
        if tmp.is_dir():
            for f in tmp.iterdir():
                f.unlink(missing_ok=True)
        return removed

    def prepare_eval(self, tag: str, slot: int | str, run_dir: Path) -> tuple[Path, list[str], list[str]]:
        """The eval's own clean worktree (slot ``eval-N``) at the run's commit: the evaluator
        and every tracked file exactly as committed (the readonly ones are the campaign's
        base, checked by hash), never what the run left behind. The run's outputs (untracked
        files: a checkpoint) are moved in (a rename: no copy, however large), except code
        Python could import instead of the real thing (``json.py`` next to the evaluator,
        ``sitecustomize.py``, ``*.pth``, extension modules, bytecode caches), which is
        deleted. Returns (the eval's arena directory, moved, deleted)."""
        from .integrity import move_outputs

        commit = git_out(["rev-parse", "HEAD"], run_dir)
        eval_dir = self.checkout(tag, f"eval-{slot}", commit)  # type: ignore[arg-type]
        out = git(["ls-files", "--others", "-z", "--", "."], run_dir).stdout.decode(errors="replace")
        moved, removed = move_outputs(run_dir, eval_dir, filter(None, out.split("\0")))
        return eval_dir, moved, removed

    def hide_files(self, arena_dir: Path, patterns: Iterable[str]) -> list[str]:
        """Delete the ``[arena] eval_only`` files from a run's worktree (the eval's worktree
        has them again, from git). Returns them, relative to the arena."""
        from .integrity import eval_only_files

        hidden = eval_only_files(arena_dir, patterns)
        for rel in hidden:
            (arena_dir / rel).unlink(missing_ok=True)
        return hidden

    def write_files(self, arena_dir: Path, files: Mapping[str, str]) -> None:
        """Write edited files into a worktree, refusing paths that resolve outside it."""
        top = arena_dir.resolve()
        for rel, text in files.items():
            target = arena_dir / rel
            if target.is_symlink():
                raise EditError(f"{rel!r} is a symlink; edits through links are refused")
            resolved = target.resolve()
            if top != resolved and top not in resolved.parents:
                raise EditError(f"{rel!r} resolves outside the arena ({resolved})")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")

    def commit(self, arena_dir: Path, paths: Iterable[str], message: str, new_paths: Iterable[str] = ()) -> str:
        """Commit ``paths`` (arena-relative) of a worktree; ``new_paths`` are not yet tracked."""
        new_paths = list(new_paths)
        if new_paths:
            git(["add", "--", *new_paths], arena_dir)
        # Naming the paths commits exactly their working-tree content, without a separate add.
        git(["commit", "-q", "--no-verify", "--allow-empty", "-m", message, "--", *paths], arena_dir)
        head = (self.worktree_gitdir(arena_dir) / "HEAD").read_text().strip()
        if len(head) == 40 and all(c in "0123456789abcdef" for c in head):
            return head
        return git_out(["rev-parse", "HEAD"], arena_dir)


def hash_files(arena_dir: Path, paths: Iterable[str]) -> dict[str, str | None]:
    """Blob ids of files in a directory (None where missing, a symlink, or not a file)."""
    out: dict[str, str | None] = {}
    for rel in paths:
        p = arena_dir / rel
        out[rel] = blob_hash(p.read_bytes()) if p.is_file() and not p.is_symlink() else None
    return out
