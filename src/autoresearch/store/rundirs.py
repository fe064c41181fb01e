"""Run directories: plain directories that hold exactly one commit's files.

A run never works in a git worktree: its directory has no ``.git`` that the harness's git
commands could later follow (a rewritten pointer, a planted config), and resetting it costs
no git process. Each slot keeps its directory between experiments; resetting it to the next
commit rewrites the files whose content differs (by tree entry, or by a stat signature that
changed since we wrote them: a run that wrote a tracked file changed its ctime) and deletes
everything else the run left. What a directory holds is known in memory only; after a
restart every directory is rebuilt from scratch. Links to the checkout's ``[arena] data``
(``datafiles.py``) are removed like anything untracked (never followed) and made again after
every reset.
"""

from __future__ import annotations

import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from .. import safefs
from ..datafiles import DataFiles, make_links
from ..safefs import read_regular
from .gitobjects import MODE_EXEC, MODE_GITLINK, MODE_LINK, ObjectStore, TreeEntry

HASHED_MAX = 1 << 30  # a readonly file larger than this is not read to be hashed
Flat = Mapping[str, TreeEntry]  # repo-relative path -> entry (blobs, links and gitlinks; no trees)
_Sig = tuple[int, int, int, int]


def _sig(st: os.stat_result) -> _Sig:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass
class _Held:
    commit: str
    flat: Flat
    sigs: dict[str, _Sig] = field(default_factory=dict)
    provided: tuple[str, ...] = ()  # links to the checkout's [arena] data (repo-relative)


class TreeCache:
    """Flattened trees by id (trees are immutable); the last few are kept."""

    def __init__(self, objects: ObjectStore, size: int = 8):
        self.objects, self.size = objects, size
        self._flat: dict[str, dict[str, TreeEntry]] = {}

    def flat(self, tree: str) -> dict[str, TreeEntry]:
        if tree not in self._flat:
            if len(self._flat) >= self.size:
                self._flat.pop(next(iter(self._flat)))
            out: dict[str, TreeEntry] = {}
            stack = [("", tree)]
            while stack:
                prefix, sha = stack.pop()
                for e in self.objects.tree(sha):
                    path = prefix + e.name
                    if e.is_tree:
                        stack.append((path + "/", e.sha))
                    else:
                        out[path] = e
            self._flat[tree] = out
        return self._flat[tree]

    def of_commit(self, commit: str) -> dict[str, TreeEntry]:
        return self.flat(self.objects.tree_of(commit))


class RunDirs:
    """The run directories of an arena (``.autoresearch/worktrees/TAG/NAME``): each holds one
    commit's files exactly; says what a run left in them. ``NAME`` is ``slot-N``, ``eval-N``,
    ``agent``, ``ablate-slot-N``... Thread-safe for distinct directories."""

    def __init__(self, objects: ObjectStore, trees: TreeCache, *, prefix: str, base: Path,
                 trees_lock: threading.Lock):
        self.objects, self.trees, self.prefix, self.base = objects, trees, prefix, base
        self._trees_lock = trees_lock
        self._lock = threading.Lock()  # the record of what each directory holds
        self._held: dict[Path, _Held] = {}

    # -- by name ----------------------------------------------------------------------------------
    def path(self, tag: str, name: str) -> Path:
        """The top of a run directory (the repository's files)."""
        return self.base / tag / name

    def arena_in(self, top: Path) -> Path:
        return top / self.prefix if self.prefix else top

    def top_of(self, arena_dir: Path) -> Path:
        """The run directory's top, from the arena directory inside it."""
        return Path(str(arena_dir)[: -len(self.prefix.rstrip("/")) - 1]) if self.prefix else arena_dir

    def materialize(self, tag: str, name: str, commit: str, data: DataFiles | None = None, hide: bool = False) -> Path:
        """The run directory ``name`` holding exactly ``commit`` (and links to the checkout's
        ``[arena] data``; ``hide``: a run's directory, without ``eval_only`` files); returns
        the arena inside it."""
        top = self.path(tag, name)
        with self._trees_lock:
            flat = self.trees.of_commit(commit)
        self._materialize(top, commit, flat, data, hide)
        return self.arena_in(top)

    def commit_of(self, arena_dir: Path) -> str | None:
        with self._lock:
            held = self._held.get(self.top_of(arena_dir))
        return held.commit if held else None

    def tracked(self, top: Path) -> Flat:
        with self._lock:
            held = self._held.get(top)
        return held.flat if held else {}

    def outputs(self, arena_dir: Path) -> list[str]:
        """Repo-relative paths of what a run left in its directory (untracked files and links;
        not the links to ``[arena] data``)."""
        top = self.top_of(arena_dir)
        tracked = self.tracked(top)
        with self._lock:
            held = self._held.get(top)
        ours = set(held.provided) if held else set()
        return [rel for rel, _ in walk(top) if rel not in tracked and rel not in ours]

    def prepare_eval(self, tag: str, name: str, run_dir: Path,
                     data: DataFiles | None = None) -> tuple[Path, list[str], list[str]]:
        """The eval's own directory (``name``, e.g. ``eval-0``) holding the run's commit exactly
        as committed (the evaluator and every tracked file; the readonly ones are the
        campaign's, checked by hash), never what the run left; then the run's outputs moved in
        (a rename, no copy) except what could shadow the evaluator's imports
        (``integrity.move_outputs``). Returns (the eval's arena directory, moved, deleted)."""
        from ..integrity import move_outputs

        commit = self.commit_of(run_dir)
        if commit is None:
            raise OSError(f"{run_dir} is not a run directory of this harness")
        eval_dir = self.materialize(tag, name, commit, data)
        moved, removed = move_outputs(self.top_of(run_dir), self.top_of(eval_dir), self.outputs(run_dir), self.prefix)
        return eval_dir, moved, removed

    def hide(self, arena_dir: Path, patterns: Iterable[str]) -> list[str]:
        """Delete the ``[arena] eval_only`` files from a run's directory (the eval's has them
        again). Returns them, relative to the arena."""
        from ..integrity import eval_only_files

        hidden = eval_only_files(arena_dir, patterns)
        for rel in hidden:
            (arena_dir / rel).unlink(missing_ok=True)
        return hidden

    def hash_files(self, arena_dir: Path, paths: Iterable[str]) -> dict[str, str | None]:
        """Blob ids (this repository's hash) of files in a directory (None where missing, a
        link, or not a regular file)."""
        out: dict[str, str | None] = {}
        for rel in paths:
            p = arena_dir / rel
            try:
                st = os.lstat(p)
            except OSError:
                out[rel] = None
                continue
            if not stat.S_ISREG(st.st_mode):
                out[rel] = None
            elif st.st_size > HASHED_MAX:  # (a sparse terabyte is not read: it differs, whatever it holds)
                out[rel] = f"larger than {HASHED_MAX >> 20} MiB: {st.st_size} bytes"
            else:
                data = read_regular(p, HASHED_MAX + 1)
                out[rel] = None if data is None else self.objects.hash("blob", data)
        return out

    def remove_all(self, tag: str) -> list[str]:
        """Every run directory of a campaign (a restarted harness rebuilds them on demand)."""
        removed = []
        base = self.base / tag
        if base.exists():
            for d in sorted(base.iterdir()):
                remove_tree(d)
                removed.append(str(d))
        with self._lock:
            for top in [t for t in self._held if base in t.parents]:
                self._held.pop(top)
        return removed

    # -- by path ----------------------------------------------------------------------------------
    def _materialize(self, top: Path, commit: str, flat: Flat, data: DataFiles | None = None,
                     hide: bool = False) -> None:
        """Make ``top`` hold exactly the files of ``commit`` (nothing more but the links to
        ``[arena] data``, made again after every reset)."""
        with self._lock:
            held = self._held.pop(top, None)
        if held is not None:
            try:
                self._reset(top, held, flat)
                provided = self._provide(top, commit, flat, data, hide)
                with self._lock:
                    self._held[top] = _Held(commit, flat, held.sigs, provided)
                return
            except OSError:
                pass  # anything odd: start from nothing
        remove_tree(top)
        top.mkdir(parents=True)
        sigs: dict[str, _Sig] = {}
        self._write(top, flat, list(flat), sigs)
        provided = self._provide(top, commit, flat, data, hide)
        with self._lock:
            self._held[top] = _Held(commit, flat, sigs, provided)

    def _provide(self, top: Path, commit: str, flat: Flat, data: DataFiles | None, hide: bool) -> tuple[str, ...]:
        """Links to the checkout's ``[arena] data`` (``datafiles.py``); repo-relative."""
        if data is None:
            return ()
        n = len(self.prefix)
        units = data.units(commit, lambda: [p[n:] for p in flat if p.startswith(self.prefix)], hide)
        return tuple(self.prefix + rel for rel in make_links(self.arena_in(top), data.targets(units)))

    def _reset(self, top: Path, held: _Held, flat: Flat) -> None:
        # 1. everything untracked goes, links that replaced directories included; a folder
        #    that holds nothing tracked goes whole (however deep: never walked into)
        keep_dirs = {p for rel in flat for p in _parents(rel)}
        stack = [""]
        while stack:
            prefix = stack.pop()
            for e in list(os.scandir(top / prefix if prefix else top)):
                rel = prefix + e.name
                st = e.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode) and (rel in keep_dirs or rel in flat):  # (in flat: a submodule's folder)
                    stack.append(rel + "/")
                elif rel not in flat:
                    _remove(top / rel, st)
        # 2. tracked files: rewritten where the entry differs or the file changed since we wrote it
        stale = []
        for rel, entry in flat.items():
            old = held.flat.get(rel)
            try:
                st = os.lstat(top / rel)
            except FileNotFoundError:
                stale.append(rel)
                continue
            if old != entry or held.sigs.get(rel) != _sig(st):
                _remove(top / rel, st)
                stale.append(rel)
        self._write(top, flat, stale, held.sigs)
        for rel in set(held.sigs) - set(flat):
            held.sigs.pop(rel, None)

    def _write(self, top: Path, flat: Flat, paths: list[str], sigs: dict[str, _Sig]) -> None:
        blobs = self.objects.read_many(flat[p].sha for p in paths if flat[p].mode != MODE_GITLINK)
        for rel in paths:
            entry = flat[rel]
            target = _safe_target(top, rel)
            if entry.mode == MODE_GITLINK:
                target.mkdir(exist_ok=True)
                continue
            got = blobs.get(entry.sha)
            data = got[1] if got is not None else b""
            if entry.mode == MODE_LINK:
                os.symlink(os.fsdecode(data), target)
            else:
                mode = 0o777 if entry.mode == MODE_EXEC else 0o666
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
            sigs[rel] = _sig(os.lstat(target))


def _parents(rel: str) -> Iterable[str]:
    parts = rel.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        yield "/".join(parts[:i])


def _safe_target(top: Path, rel: str) -> Path:
    """``top / rel`` with every directory on the way a real directory (never a link)."""
    here = top
    for part in rel.split("/")[:-1]:
        here = here / part
        try:
            st = os.lstat(here)
            if not stat.S_ISDIR(st.st_mode):
                _remove(here, st)
                here.mkdir()
        except FileNotFoundError:
            here.mkdir()
    return top / rel


def walk(top: Path) -> Iterable[tuple[str, os.stat_result]]:
    """(relative path, lstat) of every file, link and other non-directory under ``top``;
    links to directories are not followed."""
    stack = [("", os.fspath(top))]
    while stack:
        prefix, here = stack.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:
            continue
        for e in entries:
            rel = prefix + e.name
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                stack.append((rel + "/", e.path))
            else:
                yield rel, st


def _remove(path: Path, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        remove_tree(path)
    else:
        path.unlink()


def remove_tree(path: Path) -> None:
    """Remove a directory whatever a run did to it (modes, depth, links inside)."""
    safefs.remove_tree(path)
