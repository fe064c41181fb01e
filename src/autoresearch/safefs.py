"""File operations on places a run could have written (without the sandbox: all of
``.autoresearch/``, the repository, the run's directories). Pure of policy; each one
holds against what a run can plant there:

- a link at a name the harness is about to write (a temporary file's predictable name,
  tomorrow's log): we never write through a link (``O_NOFOLLOW``, and a new file is
  created with ``O_EXCL`` after whatever was at its name is gone);
- a FIFO or a device where the harness reads: opened non-blocking, read only when it is a
  regular file;
- a huge (sparse) file: read up to a bound;
- a directory chain deeper than Python's recursion limit or longer than ``PATH_MAX``:
  walked without recursion, removed through directory descriptors.
"""

from __future__ import annotations

import contextlib
import os
import stat
from typing import Iterator

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def read_regular(path: str | os.PathLike[str], cap: int, tail: bool = False) -> bytes | None:
    """Up to ``cap`` bytes of a regular file (its last ``cap`` with ``tail``), not through a
    link; None when it is missing or not a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        if tail and st.st_size > cap:
            f.seek(st.st_size - cap)
        return f.read(min(cap, st.st_size + (1 << 16)))  # (never a buffer of ``cap`` for a small file)


def clear(path: str | os.PathLike[str]) -> None:
    """Nothing at ``path`` any more: a file or link unlinked, a directory removed."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        remove_tree(path)
    else:
        os.unlink(path)


def open_new(path: str | os.PathLike[str], mode: int = 0o644, append: bool = False, readable: bool = False) -> int:
    """A file descriptor for writing ``path``: a new file, created by us (whatever a run
    left at that name goes first), or with ``append`` the regular file there (a link or
    anything else there is replaced by a new file); also for reading with ``readable``."""
    if append:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK)
            if stat.S_ISREG(os.fstat(fd).st_mode):
                return fd
            os.close(fd)
        except FileNotFoundError:
            pass
        except OSError:  # a link (ELOOP), a directory
            pass
    clear(path)
    return os.open(path, (os.O_RDWR if readable else os.O_WRONLY) | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)


def write_file(path: str | os.PathLike[str], data: bytes, append: bool = False) -> None:
    """``data`` written to ``path`` (appended with ``append``), never through a link."""
    fd = open_new(path, append=append)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def is_at(path: str | os.PathLike[str], fd: int) -> bool:
    """Whether the open file ``fd`` is still the one at ``path`` (not unlinked, renamed, or
    replaced by something else)."""
    try:
        st, here = os.fstat(fd), os.lstat(path)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (here.st_dev, here.st_ino) and st.st_nlink > 0


def walk(top: str | os.PathLike[str]) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk`` without recursion (a chain of directories deeper than the recursion
    limit) and without following links; prune by editing the yielded directory list.
    Directories that cannot be read (a path longer than PATH_MAX) are skipped."""
    stack = [os.fspath(top)]
    while stack:
        here = stack.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:
            continue
        dirs, files = [], []
        for e in entries:
            try:
                (dirs if e.is_dir(follow_symlinks=False) else files).append(e.name)
            except OSError:
                files.append(e.name)
        yield here, dirs, files
        stack.extend(os.path.join(here, d) for d in reversed(dirs))


def remove_tree(path: str | os.PathLike[str]) -> None:
    """Remove a directory and everything under it, however deep, whatever modes a run set;
    links are removed, never followed. Only one directory descriptor is open at a time."""
    path = os.fspath(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    parent = os.open(os.path.dirname(os.path.abspath(path)) or "/", _DIR)
    try:
        _remove_in(parent, os.path.basename(os.path.abspath(path)))
    finally:
        os.close(parent)


def _open_dir(parent: int, name: str) -> int:
    try:
        return os.open(name, _DIR, dir_fd=parent)
    except PermissionError:  # a directory a run made unreadable
        os.chmod(name, 0o700, dir_fd=parent)
        return os.open(name, _DIR, dir_fd=parent)


def _remove_in(parent: int, name: str) -> None:
    """Remove ``name`` (a directory) under the directory ``parent``; depth first, climbing
    back through ``..`` so that only one descriptor besides ``parent`` stays open."""
    names = [name]                 # the path from ``parent`` down to ``fd``
    fd = _open_dir(parent, name)
    todo = [os.listdir(fd)]        # what is left to remove in each directory of the path
    try:
        while names:
            if todo[-1]:
                entry = todo[-1].pop()
                try:
                    st = os.stat(entry, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    with contextlib.suppress(PermissionError):
                        os.chmod(fd, 0o700)  # we need to write here to remove what it holds
                    child = _open_dir(fd, entry)
                    os.close(fd)
                    fd = child
                    names.append(entry)
                    todo.append(os.listdir(fd))
                else:
                    try:
                        os.unlink(entry, dir_fd=fd)
                    except PermissionError:
                        os.chmod(fd, 0o700)
                        os.unlink(entry, dir_fd=fd)
                continue
            done = names.pop()
            todo.pop()
            up = os.open("..", _DIR & ~os.O_NOFOLLOW, dir_fd=fd) if names else parent
            os.close(fd)
            fd = up
            if not names:
                fd = -1
                os.rmdir(done, dir_fd=parent)
            else:
                os.rmdir(done, dir_fd=fd)
    finally:
        if fd not in (-1, parent):
            os.close(fd)
