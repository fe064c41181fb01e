"""Git's object database and refs, in process where that is simple and safe.

Per experiment the harness reads a few files of a commit, writes one commit (a blob per
edited file, the trees on their paths, the commit object) and moves one ref. Spawning
git for each of those cost 3-6 ms per process, most of the harness's overhead, so:

- **reads** go through one long-lived ``git cat-file --batch`` per repository (git itself
  finds the object, loose or packed, through alternates and all);
- **writes of objects** are loose objects written here: ``zlib(b"<type> <size>\\0" +
  data)`` at ``objects/xx/yyyy``, through a temporary file and a rename, exactly as git
  writes them (``git fsck`` checks them in the tests);
- **refs** are loose ref files under a ``<ref>.lock`` taken with ``O_EXCL``, the old value
  compared under the lock, then renamed into place, with a reflog line for branches: the
  files backend's own protocol, so git and we exclude each other. A repository with the
  reftable backend gets ``git update-ref`` instead.

Every git process we start gets a fixed environment and configuration: no hooks, no
fsmonitor, no signing, no automatic maintenance, an identity of its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import threading
import time
import weakref
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..errors import AutoresearchError
from .. import safefs

IDENTITY = "autoresearch <autoresearch@localhost>"
_IDENTITY_ENV = {
    "GIT_AUTHOR_NAME": "autoresearch", "GIT_AUTHOR_EMAIL": "autoresearch@localhost",
    "GIT_COMMITTER_NAME": "autoresearch", "GIT_COMMITTER_EMAIL": "autoresearch@localhost",
}
# What our git processes must never do on the repository's say-so: run hooks, an fsmonitor,
# signing programs, background maintenance; nor believe what could lie about history
# (replace refs, a commit-graph file). Filter drivers are switched off per command where
# git could run them (``no_filters``).
GIT_CONFIG = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "commit.gpgsign=false",
              "-c", "gc.auto=0", "-c", "maintenance.auto=false", "-c", "core.untrackedCache=false",
              "-c", "core.useReplaceRefs=false", "-c", "core.commitGraph=false")
TMP_PREFIX = "tmp_obj_autoresearch_"
MODE_TREE, MODE_FILE, MODE_EXEC, MODE_LINK, MODE_GITLINK = "40000", "100644", "100755", "120000", "160000"


class GitError(AutoresearchError):
    pass


def git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(_IDENTITY_ENV)
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_NO_REPLACE_OBJECTS"] = "1"
    env["LC_ALL"] = "C"
    return env


def no_filters(root: Path) -> list[str]:
    """Overrides that switch off every filter driver the configuration defines (``clean``,
    ``smudge``, long-running ``process``), for a git command that could run them on the
    working tree (``status``). Reading the configuration runs nothing."""
    out = git(["config", "--name-only", "--get-regexp", r"^filter\..*\.(clean|smudge|process)$"], root,
              check=False).stdout.decode(errors="replace").split()
    args: list[str] = []
    for driver in sorted({name.rsplit(".", 1)[0] for name in out}):
        for key in ("clean", "smudge", "process"):
            args += ["-c", f"{driver}.{key}="]
        args += ["-c", f"{driver}.required=false"]
    return args


_EXTRA_CONFIG: list[str] = []


def trust_other_owners() -> None:
    """``[runner] run_as``: run directories belong to the run's user; git (as root) refuses
    repositories owned by another user unless told otherwise."""
    if "safe.directory=*" not in _EXTRA_CONFIG:
        _EXTRA_CONFIG.extend(["-c", "safe.directory=*"])


def git(args: Iterable[str], cwd: Path, *, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    args = list(args)
    proc = subprocess.run(["git", *GIT_CONFIG, *_EXTRA_CONFIG, *args], cwd=cwd, env=git_env(), input=input,
                          capture_output=True)
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise GitError(f"git {' '.join(args)} failed in {cwd}: {err}")
    return proc


def git_out(args: Iterable[str], cwd: Path) -> str:
    return git(args, cwd).stdout.decode(errors="replace").strip()


def listed_files(directory: Path) -> list[str]:
    """The files git knows under ``directory`` (tracked, or new and not ignored), relative
    to it; none where git cannot say."""
    out = git(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], directory, check=False)
    return [r for r in out.stdout.decode("utf-8", errors="replace").split("\0") if r] if out.returncode == 0 else []


@dataclass(frozen=True)
class TreeEntry:
    mode: str  # "100644", "100755", "120000", "40000", "160000"
    name: str
    sha: str

    @property
    def is_tree(self) -> bool:
        return self.mode == MODE_TREE


def parse_tree(data: bytes, hash_len: int = 20) -> list[TreeEntry]:
    """The entries of a raw tree object. Pure."""
    out, pos = [], 0
    while pos < len(data):
        space = data.index(b" ", pos)
        nul = data.index(b"\0", space)
        sha = data[nul + 1: nul + 1 + hash_len].hex()
        out.append(TreeEntry(data[pos:space].decode(), data[space + 1:nul].decode("utf-8", "surrogateescape"), sha))
        pos = nul + 1 + hash_len
    return out


def format_tree(entries: Iterable[TreeEntry]) -> bytes:
    """A raw tree object, entries in git's order (a tree sorts as if its name ended in /). Pure."""
    def key(e: TreeEntry) -> bytes:
        name = e.name.encode("utf-8", "surrogateescape")
        return name + b"/" if e.is_tree else name
    return b"".join(f"{e.mode} ".encode() + e.name.encode("utf-8", "surrogateescape") + b"\0" + bytes.fromhex(e.sha)
                    for e in sorted(entries, key=key))


def format_commit(tree: str, parents: Iterable[str], message: str, when: int) -> bytes:
    """A raw commit object by the harness's identity. NUL bytes (git refuses them) become
    U+FFFD. Pure."""
    lines = [f"tree {tree}", *[f"parent {p}" for p in parents],
             f"author {IDENTITY} {when} +0000", f"committer {IDENTITY} {when} +0000"]
    text = message.replace("\0", "\ufffd").rstrip("\n") + "\n"
    return ("\n".join(lines) + "\n\n" + text).encode("utf-8", "surrogateescape")


class ObjectStore:
    """Reads objects through one ``git cat-file --batch``; writes loose objects itself."""

    def __init__(self, root: Path, git_dir: Path):
        self.root, self.git_dir = root, git_dir
        fmt = git(["config", "--get", "extensions.objectformat"], root, check=False).stdout.decode().strip()
        self.algo = fmt or "sha1"
        if self.algo not in ("sha1", "sha256"):
            raise GitError(f"{root}: unknown object format {self.algo!r}")
        self.hash_len = 20 if self.algo == "sha1" else 32
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._started: list[subprocess.Popen[bytes]] = []  # stopped when this store is collected, at the latest
        weakref.finalize(self, _stop_all, self._started)
        self._umask = _umask()
        self._objects = str(git_dir / "objects")
        self._folders: set[str] = set()  # object folders known to exist

    # -- reading ------------------------------------------------------------------------------
    def _batch(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            from ..runners.proctree import PROTECTED

            self._proc = subprocess.Popen(["git", *GIT_CONFIG, *_EXTRA_CONFIG, "cat-file", "--batch"], cwd=self.root,
                                          env=git_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL)
            PROTECTED.add(self._proc.pid)
            self._started.append(self._proc)
        return self._proc

    def read_many(self, names: Iterable[str]) -> dict[str, tuple[str, bytes] | None]:
        """(type, data) of each object (any name git resolves: a sha, ``<commit>^{tree}``),
        None where missing."""
        names = list(dict.fromkeys(names))
        out: dict[str, tuple[str, bytes] | None] = {}
        if not names:
            return out
        with self._lock:
            for attempt in range(2):
                proc = self._batch()
                try:
                    assert proc.stdin is not None and proc.stdout is not None
                    proc.stdin.write("".join(f"{n}\n" for n in names).encode())
                    proc.stdin.flush()
                    for n in names:
                        header = proc.stdout.readline().split()
                        if len(header) != 3:
                            out[n] = None
                            continue
                        data = proc.stdout.read(int(header[2]) + 1)[:-1]
                        out[n] = (header[1].decode(), data)
                        self._verify(header[0].decode(), header[1].decode(), data)
                    return out
                except (BrokenPipeError, ValueError, OSError):
                    self._stop()
                    if attempt:
                        raise GitError(f"git cat-file stopped answering in {self.root}") from None
        return out

    def _verify(self, sha: str, kind: str, data: bytes) -> None:
        """An object's content must hash to its id: git does not check when it reads, so an
        object planted under a future id (loose, in a pack, through alternates) would
        otherwise stand in for ours."""
        if self.hash(kind, data) != sha:
            raise GitError(f"object {sha} in {self.root} does not match its id: the object database was "
                           "tampered with (a planted object?); run `git fsck`")

    def read(self, name: str) -> tuple[str, bytes]:
        got = self.read_many([name])[name]
        if got is None:
            raise GitError(f"{self.root}: no object {name}")
        return got

    def tree_of(self, commit: str) -> str:
        kind, data = self.read(commit)
        if kind != "commit":
            raise GitError(f"{commit} is a {kind}, not a commit")
        return data[5:data.index(b"\n")].decode()

    def tree(self, sha: str) -> list[TreeEntry]:
        kind, data = self.read(sha)
        if kind != "tree":
            raise GitError(f"{sha} is a {kind}, not a tree")
        return parse_tree(data, self.hash_len)

    def _stop(self) -> None:
        if self._proc is not None:
            for f in (self._proc.stdin, self._proc.stdout):
                try:
                    if f is not None:
                        f.close()
                except OSError:
                    pass
            try:
                self._proc.kill()
            except ProcessLookupError:
                pass
            self._proc.wait()
            self._proc = None

    def close(self) -> None:
        with self._lock:
            self._stop()

    # -- writing ------------------------------------------------------------------------------
    def hash(self, kind: str, data: bytes) -> str:
        return hashlib.new(self.algo, b"%s %d\0" % (kind.encode(), len(data)) + data).hexdigest()

    def write(self, kind: str, data: bytes) -> str:
        """Store an object (loose); its id. Written even when a file of that name exists:
        one planted there before we wrote it must not stand in for ours (reads check ids
        too)."""
        raw = b"%s %d\0" % (kind.encode(), len(data)) + data
        sha = hashlib.new(self.algo, raw).hexdigest()
        folder = f"{self._objects}/{sha[:2]}"
        path = f"{folder}/{sha[2:]}"
        if folder not in self._folders:
            os.makedirs(folder, mode=0o777 & ~self._umask, exist_ok=True)
            self._folders.add(folder)
        tmp = f"{folder}/{TMP_PREFIX}{os.getpid()}_{threading.get_ident()}"
        try:
            fd = safefs.open_new(tmp, 0o444 & ~self._umask)  # (never through a link planted at that name)
        except FileNotFoundError:  # the folder went (git gc prunes empty ones)
            os.makedirs(folder, mode=0o777 & ~self._umask, exist_ok=True)
            fd = safefs.open_new(tmp, 0o444 & ~self._umask)
        try:
            os.write(fd, zlib.compress(raw, 1))
        finally:
            os.close(fd)
        os.replace(tmp, path)
        return sha

    def write_commit(self, tree: str, parents: Iterable[str], message: str) -> str:
        return self.write("commit", format_commit(tree, parents, message, int(time.time())))


def _stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(OSError):
                if p.stdin is not None:
                    p.stdin.close()
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            p.wait()
    procs.clear()


def stale_temp_objects(git_dir: Path) -> list[Path]:
    """Temporary object files of ours whose writer (by pid) is gone."""
    out = []
    objects = git_dir / "objects"
    if not objects.is_dir():
        return out
    for sub in objects.iterdir():
        if len(sub.name) != 2 or not sub.is_dir():
            continue
        for f in sub.glob(f"{TMP_PREFIX}*"):
            pid = f.name[len(TMP_PREFIX):].split("_", 1)[0]
            if not pid.isdigit() or not Path(f"/proc/{pid}").exists():
                out.append(f)
    return out


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class RefStore:
    """Our refs, as git's files backend keeps them (or through git for reftable)."""

    def __init__(self, root: Path, git_dir: Path, zero: str):
        self.root, self.git_dir, self.zero = root, git_dir, zero
        storage = git(["config", "--get", "extensions.refstorage"], root, check=False).stdout.decode().strip()
        self.files_backend = storage in ("", "files")
        self._lock = threading.Lock()

    def lock_path(self, ref: str) -> Path:
        return self.git_dir / f"{ref}.lock"

    def resolve(self, ref: str) -> str | None:
        """The object a full ref name points at (loose, then packed), or None."""
        if not self.files_backend:
            proc = git(["rev-parse", "--verify", "-q", ref], self.root, check=False)
            return proc.stdout.decode().strip() if proc.returncode == 0 else None
        for _ in range(5):  # symbolic refs, followed a few levels
            path = self.git_dir / ref
            try:
                text = path.read_text().strip()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return self._packed().get(ref)
            if not text.startswith("ref: "):
                return text or None
            ref = text[5:].strip()
        return None

    def _packed(self) -> dict[str, str]:
        out: dict[str, str] = {}
        try:
            text = (self.git_dir / "packed-refs").read_text()
        except FileNotFoundError:
            return out
        for line in text.splitlines():
            if line and line[0] not in "#^":
                sha, _, name = line.partition(" ")
                out[name] = sha
        return out

    def list(self, prefix: str) -> dict[str, str]:
        """Full ref name -> object, for refs under ``prefix`` (loose and packed)."""
        if not self.files_backend:
            out = git(["for-each-ref", "--format=%(refname) %(objectname)", prefix], self.root).stdout.decode()
            return {name: sha for name, _, sha in (line.partition(" ") for line in out.splitlines()) if sha}
        found = {name: sha for name, sha in self._packed().items() if name.startswith(prefix)}
        base = self.git_dir / prefix
        if base.is_dir():
            for path in base.rglob("*"):
                if path.is_file() and not path.name.endswith(".lock"):
                    name = path.relative_to(self.git_dir).as_posix()
                    text = path.read_text(errors="replace").strip()
                    if text and not text.startswith("ref: "):
                        found[name] = text
        return found

    def delete(self, ref: str, old: str | None = None) -> None:
        """Remove a ref (loose and packed): through git, which rewrites packed-refs safely."""
        git(["update-ref", "-d", ref, *([old] if old is not None else [])], self.root)

    def update(self, ref: str, new: str, old: str | None = None, message: str = "autoresearch") -> None:
        """Point ``ref`` at ``new``; with ``old``, only if it points there now."""
        if not self.files_backend:
            git(["update-ref", "-m", message, ref, new, *([old] if old is not None else [])], self.root)
            return
        lock = self.lock_path(ref)
        with self._lock:
            self._plain(ref)
            lock.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~_umask())
            except FileExistsError:
                raise GitError(f"cannot lock {ref}: {lock} exists (another git process is writing it; if none is, "
                               "remove the file)") from None
            try:
                current = self.resolve(ref)
                if old is not None and current != old:
                    raise GitError(f"cannot update {ref}: it points at {current or 'nothing'}, expected {old}")
                os.write(fd, f"{new}\n".encode())
                os.close(fd)
                fd = -1
                self._log(ref, current or self.zero, new, message)
                os.replace(lock, self.git_dir / ref)
            finally:
                if fd >= 0:
                    os.close(fd)
                lock.unlink(missing_ok=True)

    def _plain(self, ref: str) -> None:
        """Nothing but folders on the way to ``ref`` and a file or nothing at it: a link (to
        a folder outside), a file where a folder belongs, a folder where the ref belongs
        are what a run planted; we never write through them."""
        import stat

        path = self.git_dir
        parts = ref.split("/")
        for i, part in enumerate(parts):
            path = path / part
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                return
            last = i == len(parts) - 1
            if stat.S_ISLNK(mode) or (last and stat.S_ISDIR(mode)) or (not last and not stat.S_ISDIR(mode)):
                safefs.clear(path)
                return

    def _log(self, ref: str, old: str, new: str, message: str) -> None:
        log = self.git_dir / "logs" / ref
        if not ref.startswith("refs/heads/") and not log.exists():
            return  # git logs branches only, unless told otherwise
        log.parent.mkdir(parents=True, exist_ok=True)
        line = f"{old} {new} {IDENTITY} {int(time.time())} +0000\t{' '.join(message.split())}\n"
        with os.fdopen(safefs.open_new(log, append=True), "a", encoding="utf-8", errors="surrogateescape") as f:
            f.write(line)
