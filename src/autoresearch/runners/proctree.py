"""Finding and killing every process a run started, including ones that left its group.

A run is started in a new session, so ``killpg`` reaches everything that stayed in its
process group. Processes that called ``setsid`` (daemons, some dataloader workers, ``nohup``
tricks) leave the group; we still find them because

- the harness is a child subreaper (``PR_SET_CHILD_SUBREAPER``), so an orphaned
  grandchild is re-parented to us instead of to init, and stays in our process tree;
- every process of a run inherits ``AUTORESEARCH_RUN_TOKEN`` in its environment, which we
  read from ``/proc/<pid>/environ`` (a process that scrubs its environment *and*
  double-forks is still found through the process tree while its parent lives);
- descendants seen while the run was alive are remembered with their start times.

What this does not protect against: a process that clears its environment, escapes the
tree, and is started after our last scan; or a process in another PID namespace. The
integrity issue adds cgroups/bubblewrap for that.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
import uuid
from typing import Iterable

PR_SET_CHILD_SUBREAPER = 36

_libc = None
# Root pids of runs in progress in this process: a re-parented orphan is attributed to the
# run being cleaned up unless it carries another run's token.
ACTIVE_ROOTS: set[int] = set()
# The tokens of those runs (``AUTORESEARCH_RUN_TOKEN=...``): an orphan carrying one belongs
# to that run; an orphan carrying any other (forged, or a finished run's) to the run being
# cleaned up.
ACTIVE_TOKENS: set[bytes] = set()
# Our own helper processes (the guardian): never a run's member.
PROTECTED: set[int] = set()
# Held while a run's root is spawned and registered in ACTIVE_ROOTS, and while a tracker
# decides who belongs to its run: a root between fork and exec (no token yet) is never
# mistaken for an orphan of another run that runs concurrently in another slot.
SPAWN_LOCK = threading.Lock()
_TOKEN_PREFIX = b"AUTORESEARCH_RUN_TOKEN="
# Every run token of this harness starts with this, so the guardian can find them all.
HARNESS_PREFIX = uuid.uuid4().hex[:12]


def new_run_token() -> str:
    return f"{HARNESS_PREFIX}-{uuid.uuid4().hex}"


def _prctl(option: int, value: int) -> bool:
    global _libc
    if not sys.platform.startswith("linux"):
        return False
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc.prctl(option, value, 0, 0, 0) == 0


def become_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process (Linux >= 3.4)."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, start time in clock ticks) of ``pid``, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    rest = data[data.rfind(b")") + 2 :].split()
    if rest[0] == b"Z":  # a zombie is dead already; it only needs reaping
        return None
    return int(rest[1]), int(rest[19])


def session_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return int(data[data.rfind(b")") + 2 :].split()[3])


def process_table() -> dict[int, tuple[int, int]]:
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                table[int(name)] = st
    return table


def run_token_of(pid: int) -> bytes | None:
    """The ``AUTORESEARCH_RUN_TOKEN=...`` entry of a process's environment, if any."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            entries = f.read().split(b"\0")
    except OSError:
        return None
    return next((e for e in entries if e.startswith(_TOKEN_PREFIX)), None)


def _children_of_self() -> set[int] | None:
    """This process's children (of every thread), or None when the kernel does not say
    (``/proc/PID/task/TID/children`` needs CONFIG_PROC_CHILDREN)."""
    out: set[int] = set()
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children") as f:
                out.update(int(x) for x in f.read().split())
    except OSError:
        return None
    return out


def descendants(table: dict[int, tuple[int, int]], roots: Iterable[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    stack = [r for r in roots]
    while stack:
        pid = stack.pop()
        for child in children.get(pid, ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


class ProcessTracker:
    """Remembers the processes of one run and kills all of them at the end."""

    def __init__(self, root_pid: int, token: str):
        self.root_pid = root_pid
        self.token = f"AUTORESEARCH_RUN_TOKEN={token}".encode()
        self.known: dict[int, int] = {}  # pid -> start time
        root = _stat(root_pid) if root_pid > 0 else None
        # Processes started before the run cannot belong to it: their environments need
        # not be read (a few ms saved per run on a busy machine).
        self.not_before = root[1] if root is not None else 0

    def snapshot(self) -> None:
        table = process_table()
        for pid in descendants(table, [self.root_pid]):
            self.known[pid] = table[pid][1]

    def members(self, table: dict[int, tuple[int, int]]) -> set[int]:
        me = os.getpid()
        my_session = os.getsid(0)
        alive_known = {pid for pid, start in self.known.items() if table.get(pid, (0, -1))[1] == start}
        roots = alive_known | ({self.root_pid} if self.root_pid in table else set())
        members = roots | descendants(table, roots)
        for pid, (ppid, start) in table.items():
            if pid in members or pid == me or start < self.not_before:
                continue
            token = run_token_of(pid)
            if token == self.token:
                members.add(pid)
            elif (ppid == me and (token is None or token not in ACTIVE_TOKENS) and pid not in ACTIVE_ROOTS
                  and pid not in PROTECTED and session_of(pid) != my_session):
                # an orphan re-parented to us (subreaper) that scrubbed or forged its
                # environment; our own helpers (git, started by other threads) share the
                # harness's session
                members.add(pid)
        members |= descendants(table, members)
        members.discard(me)
        return members

    def left_nothing(self) -> bool:
        """Whether the run certainly left no process, known without scanning every process
        of the machine. Only meaningful when this harness is a subreaper: then every orphan
        of the run is a child of ours. True when the run's process group is empty, none of
        its remembered descendants lives, and every child of ours is one of our own (a
        helper, another run's root, or in the harness's session)."""
        try:
            os.killpg(self.root_pid, 0)
            return False
        except ProcessLookupError:
            pass
        except PermissionError:
            return False
        if any(_stat(pid) is not None and _stat(pid)[1] == start for pid, start in self.known.items()):  # type: ignore[index]
            return False
        children = _children_of_self()
        if children is None:
            return False
        my_session = os.getsid(0)
        with SPAWN_LOCK:
            return all(pid in PROTECTED or pid in ACTIVE_ROOTS or session_of(pid) in (my_session, None)
                       for pid in children)

    def kill_all(self, rounds: int = 10) -> int:
        """SIGSTOP then SIGKILL every member until none is left; returns how many were hit."""
        hit: set[int] = set()
        for _ in range(rounds):
            with SPAWN_LOCK:
                table = process_table()
                members = self.members(table)
            if not members:
                break
            for sig in (signal.SIGSTOP, signal.SIGKILL):
                for pid in members:
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
            hit |= members
            self._reap(members, deadline=time.monotonic() + 1.0)
        # Known descendants that had already exited and were re-parented to us are zombies
        # now: reap them so an overnight campaign does not collect them.
        self._reap(set(self.known) - hit, deadline=time.monotonic())
        return len(hit)

    @staticmethod
    def _reap(pids: Iterable[int], deadline: float) -> None:
        """Reap the killed processes that are our children (orphans re-parented to us)."""
        pending = set(pids)
        while pending:
            for pid in list(pending):
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:  # not our child: init or its real parent reaps it
                    pending.discard(pid)
                    continue
                if done:
                    pending.discard(pid)
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(0.005)
