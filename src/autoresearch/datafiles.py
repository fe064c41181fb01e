"""``[arena] data``: files a run needs that git does not hold (a dataset a prepare script
built, gitignored next to the code, like karpathy/nanoGPT's ``data/shakespeare_char/
train.bin``), made available in every run directory, the eval's too, at the same path.

How: a symbolic link in the run directory to the checkout's copy. A directory that holds
no tracked file and nothing the phase may not see is one link; one that does is a real
directory whose other entries are linked one by one, so the commit's files stay the
commit's and ``[arena] eval_only`` files stay out of a run's directory (the eval's has
them). Under ``sandbox = "bwrap"`` the checkout's copies are bound read-only
(``runners/sandbox.py``): a write through a link fails. Without the sandbox a run could
write through a link (as through ``AUTORESEARCH_ARENA_DIR``): the copies are fingerprinted
when the campaign starts and compared after every run (``DataFiles.check``, called by
``engine/guard.py``). Nothing here ever follows a link to remove anything.

Pure: ``covered``, ``link_units``, ``missing_paths``, ``data_hint``. Effects: ``scan``,
``make_links``, ``DataFiles``.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import stat
import threading
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from . import safefs
from .integrity import matches

SMALL_FILE = 1 << 20     # files up to this size are compared by content too (a touch is not a change)
HASH_BUDGET = 64 << 20   # bytes hashed when the campaign starts, at most (the rest: by stat only)
Sig = tuple[str, int, int, int, int, str]  # kind, inode, size, mtime, ctime, link target


def covered(path: str, entries: Iterable[str]) -> bool:
    """``path`` is one of ``entries`` or lies under one. Pure."""
    return any(path == e or path.startswith(e + "/") for e in entries)


def _ancestors(path: str, top: str) -> Iterable[str]:
    """The directories from ``path``'s parent up to ``top`` (which contains it)."""
    while path != top and "/" in path:
        path = path.rsplit("/", 1)[0]
        yield path


def link_units(entries: Sequence[str], files: Iterable[str], tracked: Iterable[str],
               hidden: Sequence[str] = ()) -> list[str]:
    """What to link for ``entries`` (arena-relative): ``files`` are the non-directories found
    under them in the checkout, ``tracked`` the commit's paths, ``hidden`` the patterns the
    phase may not see (``[arena] eval_only`` for a run). A directory is linked whole when
    nothing under it is tracked or hidden, else entry by entry; a tracked or hidden file
    never. Pure."""
    tracked, found = set(tracked), sorted(set(files))

    def skip(rel: str) -> bool:
        return rel in tracked or matches(rel, hidden)

    out: list[str] = []
    for entry in entries:
        if skip(entry):
            continue
        under = [f for f in found if f.startswith(entry + "/")]
        if not under:
            if entry in found or not any(t.startswith(entry + "/") for t in tracked):
                out.append(entry)  # a file, or a directory with nothing in it
            continue
        blocked = {a for f in [*under, *(t for t in tracked if t.startswith(entry + "/"))] if skip(f)
                   for a in _ancestors(f, entry)}
        stack = [entry]
        while stack:
            top = stack.pop()
            if top not in blocked:
                out.append(top)
                continue
            children = {top + "/" + f[len(top) + 1:].split("/", 1)[0]: "/" in f[len(top) + 1:]
                        for f in under if f.startswith(top + "/")}
            out += [c for c, is_dir in sorted(children.items()) if not is_dir and not skip(c)]
            stack += [c for c, is_dir in sorted(children.items(), reverse=True) if is_dir]
    return out


def _sig(path: str, follow: bool = False) -> Sig | None:
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode):
        kind, target = "link", os.readlink(path)
    else:
        kind, target = ("file" if stat.S_ISREG(st.st_mode) else "other"), ""
    return (kind, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, target)


def scan(paths: Mapping[str, Path]) -> dict[str, Sig]:
    """The stat signature of every non-directory under each entry (arena-relative name ->
    where it is): the entry itself may be a link to a directory elsewhere (followed); links
    below it are listed, never followed."""
    out: dict[str, Sig] = {}
    for entry, path in paths.items():
        top = os.fspath(path)
        if not os.path.isdir(top):
            sig = _sig(top, follow=True)
            if sig is not None:
                out[entry] = sig
            continue
        for here, _dirs, names in safefs.walk(top):
            for name in names:
                p = os.path.join(here, name)
                sig = _sig(p)
                if sig is not None:
                    out[entry + "/" + p[len(top) + 1:].replace(os.sep, "/")] = sig
    return out


def _digest(path: Path) -> str | None:
    data = safefs.read_regular(path, SMALL_FILE + 1)
    return None if data is None or len(data) > SMALL_FILE else hashlib.sha256(data).hexdigest()


def make_links(arena_dir: Path, targets: Mapping[str, Path]) -> list[str]:
    """A symbolic link at ``arena_dir / rel`` to each target. The directories on the way are
    real directories (made here when missing); where a link or a file stands on the way,
    or a name is taken already (a tracked file), nothing is made. Returns what was linked."""
    made = []
    for rel, target in targets.items():
        here, ok = arena_dir, True
        for part in rel.split("/")[:-1]:
            here = here / part
            try:
                ok = stat.S_ISDIR(os.lstat(here).st_mode)
            except FileNotFoundError:
                here.mkdir()
            if not ok:
                break
        if not ok:
            continue
        try:
            os.symlink(target, arena_dir / rel)
        except FileExistsError:
            continue
        made.append(rel)
    return made


class DataFiles:
    """A campaign's ``[arena] data``: the links each run directory gets, and the checkout's
    copies as they were when the campaign started (``check`` compares). Thread-safe."""

    def __init__(self, source: Path, entries: Sequence[str], hidden: Sequence[str] = ()):
        self.source, self.entries, self.hidden = source, tuple(entries), tuple(hidden)
        self._lock = threading.Lock()
        self._units: dict[tuple[str, bool], tuple[str, ...]] = {}
        self._sigs = scan({e: source / e for e in self.entries})
        self._files = tuple(self._sigs)
        self._hashes: dict[str, str] = {}
        budget = HASH_BUDGET
        for rel, sig in self._sigs.items():
            if sig[0] == "file" and sig[2] <= min(SMALL_FILE, budget):
                digest = _digest(source / rel)
                if digest is not None:
                    self._hashes[rel] = digest
                    budget -= sig[2]

    def units(self, key: str, tracked: Callable[[], Iterable[str]], hide: bool) -> tuple[str, ...]:
        """What to link in a directory holding commit ``key`` (``tracked``: its arena-relative
        paths); ``hide``: a run's directory (no ``eval_only`` file). Cached per commit."""
        with self._lock:
            got = self._units.get((key, hide))
            if got is None:
                if len(self._units) >= 16:
                    self._units.pop(next(iter(self._units)))
                got = tuple(link_units(self.entries, self._files, tracked(), self.hidden if hide else ()))
                self._units[(key, hide)] = got
            return got

    def targets(self, units: Iterable[str]) -> dict[str, Path]:
        return {u: self.source / u for u in units}

    def sources(self) -> list[str]:
        """The checkout's copies, links resolved: what the sandbox binds read-only."""
        return [os.path.realpath(self.source / e) for e in self.entries]

    def check(self) -> list[str]:
        """What changed in the checkout's copies since the last look (said once: the new
        state is expected from then on)."""
        with self._lock:
            now = scan({e: self.source / e for e in self.entries})
            found, hashes = [], {}
            for rel in sorted(set(self._sigs) | set(now)):
                old, new = self._sigs.get(rel), now.get(rel)
                if old is None or new is None:
                    found.append(f"data file {rel} {'added' if old is None else 'removed'}")
                    continue
                known = self._hashes.get(rel)
                if old != new and known is not None:
                    digest = _digest(self.source / rel)
                    if digest != known:
                        found.append(f"data file {rel} changed (its bytes)")
                    if digest is not None:
                        hashes[rel] = digest
                    continue
                if old != new:
                    found.append(f"data file {rel} changed (size {old[2]} -> {new[2]} bytes, or its times or inode)")
                if known is not None:
                    hashes[rel] = known
            self._sigs, self._hashes = now, hashes
        if not found:
            return []
        return [found[0] + "; the harness keeps no copy of [arena] data to put back: restore it", *found[1:]]


# -- a crash on a missing file --------------------------------------------------------------------

_MISSING = [re.compile(p) for p in (
    r"No such file or directory: '([^'\n]+)'",            # Python's OSError (open, numpy, torch, pickle)
    r'No such file or directory: "([^"\n]+)"',
    r"can't open file '([^'\n]+)'",                        # python3 path/to/script.py
    r"Unable to find '([^'\n]+)'",                         # Hugging Face datasets
    r"FileNotFoundError: ([^\s'\"]+?)\.? not found",       # numpy.loadtxt
    r"(?m)(?:^|\s)([^\s:'\"]+): No such file or directory",  # cat: PATH: No such file or directory
    r"cannot open ([^\s:'\"]+): No such file",             # dash: cannot open PATH: No such file
)]


def missing_paths(log_tail: str, run_dirs: Sequence[str]) -> list[str]:
    """The arena-relative paths a log says could not be found, last first: relative ones as
    written, absolute ones only under one of ``run_dirs`` (the run's arena directory, as
    given and resolved). Pure."""
    hits: list[tuple[int, str]] = []
    for pattern in _MISSING:
        hits += [(m.start(1), m.group(1)) for m in pattern.finditer(log_tail)]
    out: list[str] = []
    for _, raw in sorted(hits, reverse=True):
        if raw.startswith("/"):
            inside = [d.rstrip("/") for d in run_dirs if raw.startswith(d.rstrip("/") + "/")]
            if not inside:
                continue
            raw = raw[len(inside[0]) + 1:]
        rel = posixpath.normpath(raw)
        if rel in (".", "..") or rel.startswith(("../", "/")) or rel.split("/")[0] in (".git", ".autoresearch"):
            continue
        if rel not in out:
            out.append(rel)
    return out


def data_hint(log_tail: str, run_dirs: Sequence[str], checkout: Callable[[str], str | None], data: Sequence[str],
              hidden: Sequence[str] = ()) -> str | None:
    """When a run crashed on a missing file that the user's checkout has but git does not
    (``checkout(rel)``: "dir", "file", or None when absent or tracked), what to add to
    ``[arena] data``: the file's directory (its siblings are usually needed too), or the
    file at the arena's top. Paths already listed, or hidden from the phase (``eval_only``),
    get no hint. Pure."""
    for rel in missing_paths(log_tail, run_dirs):
        if covered(rel, data) or matches(rel, hidden):
            continue
        kind = checkout(rel)
        if kind is None:
            continue
        add = rel if kind == "dir" or "/" not in rel else rel.rsplit("/", 1)[0]
        line = "data = " + json.dumps([*(e for e in data if not covered(e, [add])), add])
        return (f"{rel} is in your checkout but not in git, and a run directory holds only the commit's files: "
                f"add this line to [arena]: {line}")
    return None
