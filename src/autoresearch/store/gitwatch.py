"""What git reads for its configuration and history, watched while runs are live.

A run without a sandbox can write anything the harness's user can: the repository's
config (an fsmonitor, a filter driver, an ``include.path`` to a file of its own),
attributes, hooks, alternates, grafts, replace refs, and the refs themselves (our branch
moved to a commit that was never kept, archive refs deleted). Our own git commands switch
off what would execute (``gitobjects.GIT_CONFIG``, ``no_filters``) and check every object
they read against its id; this module notices the change itself, by kind rather than by
key: any change to any file git reads for configuration or attributes, or to any ref.

``GitWatch`` holds the expected state: what the files held and where every ref pointed
when the watch started, updated by the harness's own ref writes (``expect_ref``). ``scan``
compares the disk with it (a stat signature first, the content only when that changed:
ctime cannot be set back by a run). ``restore`` puts a file back as it was.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ..safefs import read_regular, remove_tree

Sig = tuple[int, int, int, int]
MAX_KEPT = 1 << 20  # files larger than this are compared by content but cannot be put back
POINTERS = ("gitdir", "commondir", "config.worktree")  # what a linked worktree's folder holds that git follows
CONFIG_NAMES = ("config", ".gitconfig", "gitconfig", "config.worktree")  # files whose includes are followed


@dataclass(frozen=True)
class Change:
    """One difference between the expected state and the disk. ``kind``: ``file`` or
    ``ref``; ``before``/``after``: the content (a file's bytes, a ref's object id), None
    where it did not exist."""

    kind: str
    name: str
    before: bytes | str | None
    after: bytes | str | None

    def describe(self) -> str:
        """One line (a run chooses names: a newline in one must not forge a line of ours)."""
        from ..sanitize import one_line

        name = one_line(self.name, 300)
        if name != self.name:
            name = repr(self.name)[:300]
        return self._describe(name)

    def _describe(self, name: str) -> str:
        self = dataclasses.replace(self, name=name)
        what = "ref" if self.kind == "ref" else "file"
        if self.before is None:
            return f"{what} {self.name} created" + (f" (-> {self.after})" if self.kind == "ref" else "")
        if self.after is None:
            return f"{what} {self.name} deleted" + (f" (was {self.before})" if self.kind == "ref" else "")
        if self.kind == "ref":
            return f"ref {self.name} changed ({self.before} -> {self.after})"
        return f"file {self.name} changed" + _first_new_line(self.before, self.after)


def _first_new_line(before: bytes | str | None, after: bytes | str | None) -> str:
    """`` (+ "the first line the change added")``, for the report. Pure."""
    from ..sanitize import one_line

    if not isinstance(before, bytes) or not isinstance(after, bytes):
        return ""
    old = set(before.splitlines()[1:])
    new = [line for line in after.splitlines()[1:] if line not in old and line.strip()]
    head = after.partition(b"\n")[0]
    if head != before.partition(b"\n")[0]:
        return f" (now {one_line(head.decode(errors='replace'), 40)})"
    shown = [f'"{one_line(line.decode(errors="replace"), 80)}"' for line in new[:3]]
    return f" (+ {', '.join(shown)}{', ...' if len(new) > 3 else ''})" if new else ""


def _sig(st: os.stat_result) -> Sig:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def config_includes(text: str, config: Path, home: str | None) -> list[Path]:
    """The files a git config file includes (``[include] path``, ``[includeIf "..."] path``),
    whether or not the condition holds. Pure."""
    return config_paths(text, config, home, "include", "path") + config_paths(text, config, home, "includeif", "path")


def config_paths(text: str, config: Path, home: str | None, want_section: str, want_key: str) -> list[Path]:
    """The paths a git config file gives to ``want_section.want_key`` (lower case), resolved
    as git does (``~/``, relative to the config's folder). Pure."""
    out, section = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line[1:line.find("]")].strip().split(" ", 1)[0].lower() if "]" in line else ""
            line = line[line.find("]") + 1:].strip() if "]" in line else ""
        if section != want_section or "=" not in line:
            continue
        key, _, value = line.partition("=")
        if key.strip().lower() != want_key:
            continue
        value = value.split(" #")[0].split(" ;")[0].strip().strip('"')
        if value.startswith("~/") and home:
            path = Path(home) / value[2:]
        else:
            path = Path(value) if os.path.isabs(value) else config.parent / value
        out.append(path)
    return out


def global_configs(home: str | None, xdg: str | None) -> list[Path]:
    """Git's user and system configuration and attributes files (git's defaults). Pure."""
    out = [Path("/etc/gitconfig"), Path("/etc/gitattributes")]
    if home:
        out.append(Path(home) / ".gitconfig")
    base = Path(xdg) if xdg else (Path(home) / ".config" if home else None)
    if base is not None:
        out += [base / "git" / "config", base / "git" / "attributes", base / "git" / "ignore"]
    return out


class GitWatch:
    def __init__(self, git_dir: Path, root: Path, *, attributes: Iterable[str] = (), home: str | None = None,
                 xdg: str | None = None, ignore_ref: Callable[[str], bool] = lambda ref: False,
                 extra: Iterable[Path] = ()):
        """``attributes``: repository-relative paths of the ``.gitattributes`` files the
        checkout's commit holds; ``ignore_ref``: refs that are not ours to watch (another
        campaign's, moved by its own harness); ``extra``: more files to watch and keep."""
        self.git_dir, self.root, self.home = git_dir, root, home
        self.fixed = [git_dir / n for n in ("config", "config.worktree", "commondir", "shallow")]
        self.fixed += [root / ".gitattributes", root / ".git", *(root / a for a in attributes)]
        self.fixed += [git_dir / "objects" / "info" / n for n in ("alternates", "http-alternates")]
        self.fixed += global_configs(home, xdg) + list(extra)
        # the folders themselves: one swapped for a link (to a copy a later run adds to) shows
        self.fixed += [git_dir / n for n in ("info", "hooks", "refs", "worktrees", "objects/info", "logs")]
        self.ignore_ref = ignore_ref
        self.files: dict[Path, tuple[Sig | None, bytes | None]] = {}
        self._loose: dict[str, tuple[Sig, str]] = {}   # ref files as last read (by stat signature)
        self._packed: tuple[Sig | None, dict[str, str]] = (None, {})
        self._dirs: dict[Path, tuple[Sig, list[tuple[Path, bool]]]] = {}  # folder listings, by signature
        self._parsed: dict[Path, tuple[Sig | None, tuple[list[Path], list[Path]]]] = {}  # includes, hooks paths
        self._included: set[Path] = set()
        self.files, self.refs = self._read_files({}), self._read_refs()

    # -- what is on disk ----------------------------------------------------------------------
    def _read_files(self, old: dict[Path, tuple[Sig | None, bytes | None]]) -> dict[Path, tuple[Sig | None, bytes | None]]:
        """Every watched file (content by stat signature): the fixed ones, those in ``info/``,
        ``hooks/`` and linked worktrees' folders, every file a config includes, and every
        file known before (so a deleted one shows)."""
        queue = [*self.fixed, *old]
        for folder in (self.git_dir / "info", self.git_dir / "hooks"):
            queue += self._listing(folder)
        queue += [p for p in self._listing(self.git_dir / "worktrees") if p.name in POINTERS]
        out: dict[Path, tuple[Sig | None, bytes | None]] = {}
        included = set(self._included)  # (known include targets: their own includes are followed too)
        while queue:
            p = queue.pop()
            if p in out:
                continue
            try:
                st = os.lstat(p)
            except OSError:
                out[p] = (None, None)
                continue
            sig = _sig(st)
            out[p] = old[p] if p in old and old[p][0] == sig else (sig, _content(p, st))
            is_config = p.name in CONFIG_NAMES or p in included
            if stat.S_ISLNK(st.st_mode):  # what git reads is the target (a dotfiles link, say)
                target = Path(os.path.realpath(p))
                queue.append(target)
                if is_config:
                    included.add(target)
            elif is_config:
                more, hooks = self._includes(p, out[p])
                included.update(more)
                queue += more
                for folder in hooks:  # core.hooksPath: git runs what is there
                    queue += self._listing(folder)
        self._included = included
        return out

    def _listing(self, folder: Path) -> list[Path]:
        """The files under ``folder``, listed again only where a directory's signature
        changed (adding, removing or renaming an entry changes its directory's)."""
        out: list[Path] = []
        stack = [folder]
        while stack:
            d = stack.pop()
            try:
                st = os.lstat(d)
            except OSError:
                continue
            if not stat.S_ISDIR(st.st_mode):  # a link in a folder's place is not listed through
                continue
            sig = _sig(st)
            cached = self._dirs.get(d)
            if cached is None or cached[0] != sig:
                try:
                    entries = [(Path(e.path), e.is_dir(follow_symlinks=False)) for e in os.scandir(d)]
                except OSError:
                    entries = []
                cached = self._dirs[d] = (sig, entries)
            for path, is_dir in cached[1]:
                (stack if is_dir else out).append(path)
        return out

    def _includes(self, config: Path, state: tuple[Sig | None, bytes | None]) -> tuple[list[Path], list[Path]]:
        """The files a config includes and the hooks folders it names (``core.hooksPath``)."""
        sig, content = state
        cached = self._parsed.get(config)
        if cached is None or cached[0] != sig:
            text = (content or b"").partition(b"\n")[2].decode(errors="replace")
            cached = self._parsed[config] = (sig, (config_includes(text, config, self.home),
                                                   config_paths(text, config, self.home, "core", "hookspath")))
        return cached[1]

    def _read_refs(self) -> dict[str, str]:
        """Every ref as git sees it (a loose file wins over packed-refs), and HEAD: name ->
        object id (or ``ref: ...`` for a symbolic ref). Every loose ref file is looked at
        (one written in place changes no directory); plain strings, not Paths: a long
        campaign has a ref per discarded experiment."""
        loose: dict[str, tuple[Sig, str]] = {}
        base = os.fspath(self.git_dir) + os.sep
        cut = len(base)
        lstat, old = os.lstat, self._loose
        for p in [base + "HEAD", *map(os.fspath, self._listing(self.git_dir / "refs"))]:
            if p.endswith(".lock"):
                continue
            try:
                st = lstat(p)
            except OSError:
                continue
            name = p[cut:] if os.sep == "/" else p[cut:].replace(os.sep, "/")
            sig = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            got = old.get(name)
            loose[name] = got if got is not None and got[0] == sig else (sig, _ref_text(_content(Path(p), st)))
        self._loose = loose
        return {**self._packed_refs(), **{name: text for name, (_, text) in loose.items()}}

    def _loose_ref(self, name: str, p: Path) -> tuple[Sig, str] | None:
        try:
            st = os.lstat(p)
        except OSError:
            return None
        sig = _sig(st)
        old = self._loose.get(name)
        return old if old is not None and old[0] == sig else (sig, _ref_text(_content(p, st)))

    def _packed_refs(self) -> dict[str, str]:
        packed = self.git_dir / "packed-refs"
        try:
            st = os.lstat(packed)
            sig: Sig | None = _sig(st)
        except OSError:
            sig = None
        if sig != self._packed[0]:
            self._packed = (sig, _parse_packed(_content(packed, st)) if sig is not None else {})
        return self._packed[1]

    def _effective(self, ref: str) -> str | None:
        got = self._loose_ref(ref, self.git_dir / ref)
        if got is not None:
            self._loose[ref] = got
            return got[1]
        self._loose.pop(ref, None)
        return self._packed_refs().get(ref)

    def ref_as_expected(self, ref: str) -> bool:
        """Whether ``ref`` is where the harness left it (a look at one file and packed-refs,
        before the harness moves it)."""
        return self._effective(ref) == self.refs.get(ref)

    # -- expected vs disk ---------------------------------------------------------------------
    def scan(self) -> list[Change]:
        """What differs from the expected state; the expected state is left as it was."""
        files, refs = self._read_files(self.files), self._read_refs()
        out = []
        for p in sorted(set(files) | set(self.files)):
            before, after = self.files.get(p, (None, None))[1], files.get(p, (None, None))[1]
            if before != after:
                out.append(Change("file", str(p), before, after))
        for name in sorted(set(refs) | set(self.refs)):
            before_ref, after_ref = self.refs.get(name), refs.get(name)
            if before_ref != after_ref and not self.ignore_ref(name):
                out.append(Change("ref", name, before_ref, after_ref))
        return out

    def accept(self) -> None:
        """Take the disk as the expected state (after the changes were put back or left)."""
        self.files, self.refs = self._read_files(self.files), self._read_refs()

    def expect_ref(self, ref: str) -> None:
        """The harness itself just wrote ``ref`` (deleting it may rewrite packed-refs)."""
        value = self._effective(ref)
        if value is None:
            self.refs.pop(ref, None)
        else:
            self.refs[ref] = value

    def restore(self, change: Change) -> str | None:
        """Put a changed file back as it was (content and permissions; a folder as a real
        folder holding what it held); None when done, else why it could not be."""
        path = Path(change.name)
        before = change.before
        try:
            if before == _FOLDER:
                return self._restore_folder(path)
            remove_tree(path)  # a file, a link, or a directory a run put in a file's place
            if before is None:
                return None
            assert isinstance(before, bytes)
            mode, _, data = before.partition(b"\n")
            if mode == b"link":
                os.symlink(data, path)
            elif mode.startswith(b"mode "):
                if data.startswith(_TOO_BIG):
                    return f"{path} was larger than {MAX_KEPT >> 20} MiB; its old content was not kept to put back"
                _write(path, data, int(mode[5:], 8))
            else:
                return f"{path} was {data.decode(errors='replace')}; put it back by hand"
        except OSError as e:
            return f"cannot restore {path}: {e.strerror}"
        return None

    def _restore_folder(self, path: Path) -> str | None:
        """A watched folder (hooks, info, refs...) replaced by a link or a file: a real
        folder again, with every file we knew in it (refs: every ref we knew, loose)."""
        remove_tree(path)
        path.mkdir()
        for p, (_, content) in self.files.items():
            if path in p.parents and isinstance(content, bytes) and content.startswith(b"mode "):
                p.parent.mkdir(parents=True, exist_ok=True)
                head, _, data = content.partition(b"\n")
                _write(p, data, int(head[5:], 8))
        if path == self.git_dir / "refs":
            for name, value in self.refs.items():
                if name.startswith("refs/") and value and not value.startswith("ref: "):
                    (self.git_dir / name).parent.mkdir(parents=True, exist_ok=True)
                    _write(self.git_dir / name, f"{value}\n".encode(), 0o644)
        return None


def _write(path: Path, data: bytes, mode: int) -> None:
    from ..safefs import open_new

    tmp = path.with_name(f".{path.name}.{os.getpid()}.autoresearch-tmp")
    with os.fdopen(open_new(tmp, 0o600), "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


_FOLDER = b"other\na directory"


_TOO_BIG = b"\0<too big to keep>\0"


def _content(p: Path, st: os.stat_result) -> bytes | None:
    """A file as compared and kept: a header line (``mode 100644``, ``link``, ``other``),
    then its bytes (a link's target; a hash of a file too large to keep)."""
    import stat

    if stat.S_ISLNK(st.st_mode):
        try:
            return b"link\n" + os.fsencode(os.readlink(p))
        except OSError:
            return b"link\n?"
    if not stat.S_ISREG(st.st_mode):
        return b"other\n" + (b"a directory" if stat.S_ISDIR(st.st_mode) else b"a special file")
    head = b"mode %o\n" % stat.S_IMODE(st.st_mode)
    if st.st_size > MAX_KEPT:  # not read (a sparse terabyte): compared by its signature
        return head + _TOO_BIG + repr(_sig(st)).encode()
    data = read_regular(p, MAX_KEPT + 1)
    return head + (b"<unreadable>" if data is None else data)


def _parse_packed(content: bytes | None) -> dict[str, str]:
    """packed-refs: name -> object id (peeled lines and comments skipped). Pure."""
    out: dict[str, str] = {}
    for line in (content or b"").partition(b"\n")[2].decode(errors="replace").splitlines():
        if line and line[0] not in "#^":
            sha, _, name = line.partition(" ")
            out[name.strip()] = sha
    return out


def _ref_text(content: bytes | None) -> str:
    data = (content or b"").partition(b"\n")[2]
    return data.decode(errors="replace").strip()[:200]
