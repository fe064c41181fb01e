"""Run a command on this machine: new session, capped log, hard timeout, whole-tree kill.

Protects against: runs that hang (killed at the timeout), children that leave the process
group or ignore SIGTERM (found and killed, see ``proctree``), output floods (the log on
disk keeps the head and the tail up to a cap; memory use is bounded by the same cap),
secrets in the harness's environment (the child environment is built from an allowlist).
With ``[runner.limits]`` it also bounds memory, processes, file size, open files and disk
(``limits.py``). It measures the peak resident memory of the run's process tree
(``PeakRss``); with ``[runner] sandbox = "bwrap"`` the command arrives wrapped in
bubblewrap (``runs/spec.py``, ``sandbox.py``). Without those, a run can use the machine as
its user can: read what that user can read, use the network, fill the disk.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

from ..records import RunOutcome
from ..runs.spec import RunSpec
from .. import safefs
from .limits import Cgroups, RunCgroup, dir_size_mb, machine_cgroups, wrap
from .watch import ProgressWatch, WatchSpec
from .proctree import ACTIVE_ROOTS, ACTIVE_TOKENS, HARNESS_PREFIX, PROTECTED, SPAWN_LOCK, ProcessTracker, become_subreaper

RESULT_FILE_CAP = 1 << 20


def read_result_file(path: Path) -> str | None:
    """A run's result file: a regular file, not followed through a link (a link to a file
    only the harness may read, a FIFO that would block the read), at most RESULT_FILE_CAP
    bytes. None when there is none such."""
    data = safefs.read_regular(path, RESULT_FILE_CAP)
    return None if data is None else data.decode("utf-8", errors="replace")


TAIL_LINES = 60
_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / (1 << 20)


def _start_and_rss(pid: int) -> tuple[int, int] | None:
    """(start time in clock ticks, resident pages) of a live process, from one read of
    ``/proc/PID/stat``; None when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        rest = data[data.rfind(b")") + 2 :].split()  # the command name may hold spaces and parentheses
        return None if rest[0] == b"Z" else (int(rest[19]), int(rest[21]))
    except (OSError, ValueError, IndexError):
        return None


class PeakRss:
    """The peak of the summed resident memory of a run's processes: its root and every
    descendant the tracker has seen (with their start times, so a reused pid is not
    counted), sampled when the handle scans the tree (at most twice a second). One read of
    ``/proc/PID/stat`` per live member; members found gone are not read again. Pages that
    processes share (a fork's copy-on-write memory) count once per process."""

    def __init__(self, tracker: ProcessTracker):
        self.tracker = tracker
        self.peak_pages = 0
        self._gone: set[tuple[int, int]] = set()

    def sample(self) -> None:
        members = {self.tracker.root_pid: self.tracker.not_before, **self.tracker.known}
        total = 0
        for pid, start in members.items():
            if (pid, start) in self._gone:
                continue
            now = _start_and_rss(pid)
            if now is None or now[0] != start:
                self._gone.add((pid, start))
                continue
            total += now[1]
        self.peak_pages = max(self.peak_pages, total)

    @property
    def peak_mb(self) -> float | None:
        return self.peak_pages * _PAGE_MB if self.peak_pages else None


class _CappedLog:
    """Copies a pipe into a log file, keeping the first and the last ``cap/2`` bytes.

    Reads the raw descriptor with ``select`` so that a process that escaped every kill and
    still holds the pipe open can never block the harness: ``close`` stops the pump after
    a short drain.
    """

    def __init__(self, pipe: BinaryIO, path: Path, cap: int, on_chunk: Callable[[bytes], None] | None = None):
        self.pipe = pipe
        self.on_chunk = on_chunk  # every chunk, before the cap (progress reports)
        self.fd = pipe.fileno()
        self.path = path
        self.head_cap = cap // 2
        self.tail_cap = cap - self.head_cap
        self.total = 0
        self.tail = bytearray()
        self.file = os.fdopen(safefs.open_new(path, readable=True), "r+b")  # (never through a link planted at that name)
        self._closing = threading.Event()
        self.thread = threading.Thread(target=self._pump, name=f"log:{path.name}", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.05)
            except (OSError, ValueError):
                break
            if not ready:
                if self._closing.is_set():
                    break
                continue
            try:
                chunk = os.read(self.fd, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            if self.on_chunk is not None:
                self.on_chunk(chunk)
            room = self.head_cap - self.total
            self.total += len(chunk)
            if room > 0:
                self.file.write(chunk[:room])
                self.file.flush()
                chunk = chunk[room:]
            if chunk:
                self.tail += chunk
                if len(self.tail) > self.tail_cap:
                    del self.tail[: len(self.tail) - self.tail_cap]

    def close(self, drain_s: float = 2.0) -> None:
        self.thread.join(drain_s)  # normally EOF arrives at once: every writer is dead
        self._closing.set()
        self.thread.join()
        written = min(self.total, self.head_cap)
        if self.tail:
            omitted = self.total - written - len(self.tail)
            if omitted > 0:
                self.file.write(f"\n[autoresearch: {omitted} bytes of output omitted; the log keeps the head and the tail]\n".encode())
            self.file.write(bytes(self.tail))
        self.file.flush()
        if not safefs.is_at(self.path, self.file.fileno()):  # the run removed or replaced its log: ours goes back
            self.file.seek(0)
            safefs.write_file(self.path, self.file.read())
        self.file.close()
        try:
            self.pipe.close()
        except OSError:
            pass


def log_tail(path: Path, lines: int = TAIL_LINES, max_bytes: int = 16384) -> str:
    data = safefs.read_regular(path, max_bytes, tail=True)  # (a FIFO planted there would block a plain read)
    if data is None:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(shown_lines(text)[-lines:])


# a terminal escape: CSI (colours, cursor moves: tqdm's nested bars write ESC [A), OSC (titles, links) and the
# two-character ones (a charset switch, ESC (B); a tail cut mid-CSI leaves its "[32m"
_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[()][0-9A-Za-z]|\x1b[@-Z\\-_]"
                     r"|^\[[0-9;]*m")


def shown_lines(text: str) -> list[str]:
    """The lines as a terminal shows them: a progress bar that redraws itself with carriage
    returns (tqdm, Lightning's) is its last drawing, not one line per redraw (a newcomer's
    trial: a baseline's log tail was 80 lines of one progress bar); terminal escapes
    (colours, cursor moves) are left out, and a line that held nothing else with them. Pure."""
    lines = text.split("\n")
    out = []
    for line in (lines[:-1] if lines[-1] == "" else lines):
        drawings = [d for d in _ESCAPE.sub("", line).split("\r") if d]  # (an escape after the \r erases nothing)
        if drawings or not _ESCAPE.search(line):
            out.append(drawings[-1] if drawings else "")
    return out


def progress_file_of(spec: RunSpec) -> Path | None:
    """Where the run may append JSON progress lines (AUTORESEARCH_PROGRESS_FILE): beside its
    result file, in the directory only this run's results live in."""
    return spec.result_file.parent / "progress.jsonl" if spec.result_file is not None else None


class LocalHandle:
    def __init__(self, spec: RunSpec, stop: threading.Event | None, subreaper: bool = False,
                 watch: WatchSpec | None = None):
        self.spec = spec
        self.stop = stop
        self.subreaper = subreaper  # orphans of the run are children of this process
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        if spec.result_file is not None:
            spec.result_file.unlink(missing_ok=True)
        env = dict(spec.env)
        env["AUTORESEARCH_RUN_TOKEN"] = spec.token
        if spec.result_file is not None:
            env["AUTORESEARCH_RESULT_FILE"] = str(spec.result_file)
        progress_file = progress_file_of(spec)
        if progress_file is not None:
            with contextlib.suppress(OSError):  # (the result directory is emptied before each run anyway)
                progress_file.unlink(missing_ok=True)
            env["AUTORESEARCH_PROGRESS_FILE"] = str(progress_file)
        command = spec.command
        self.cgroup: RunCgroup | None = None
        self.limit_hit = ""
        if spec.limits is not None and spec.limits.any:
            self.cgroup = RunCgroup(machine_cgroups() if spec.limits.cgroups else Cgroups(0, {}), spec.limits,
                                    f"run-{spec.token[-16:]}")
            command = wrap(spec.command, spec.limits, self.cgroup.procs, os.geteuid() == 0,
                           self.cgroup.memory, self.cgroup.pids)
        self.started = time.monotonic()
        self.watch = ProgressWatch(watch, progress_file, self.started) if watch is not None else None
        self.early_at: float | None = None
        # No preexec_fn (it forbids vfork and costs milliseconds per run): if the harness
        # dies, its guardian kills the run's processes.
        with SPAWN_LOCK:
            self.proc = subprocess.Popen(
                ["/bin/sh", "-c", command],
                cwd=spec.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            ACTIVE_ROOTS.add(self.proc.pid)
            self.tracker = ProcessTracker(self.proc.pid, spec.token)
            ACTIVE_TOKENS.add(self.tracker.token)
        self.rss = PeakRss(self.tracker)
        self.cgroup_peak_mb: float | None = None
        try:
            self._pidfd: int | None = os.pidfd_open(self.proc.pid)
        except (AttributeError, OSError):  # not Linux, or an old kernel
            self._pidfd = None
        assert self.proc.stdout is not None
        self.log = _CappedLog(self.proc.stdout, spec.log_path, spec.log_cap_bytes,
                              self.watch.output if self.watch is not None else None)

    def _exited_within(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the run's root to exit. With a pidfd (Linux >= 5.3)
        the wake-up is immediate; ``Popen.wait`` polls with sleeps of up to 50 ms, which a
        freed slot would otherwise spend idle after every run."""
        if self._pidfd is not None:
            ready, _, _ = select.select([self._pidfd], [], [], max(0.0, timeout))
            if not ready:
                return False
        try:
            self.proc.wait(timeout=0 if self._pidfd is not None else timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def _sample_memory(self) -> None:
        try:
            self.rss.sample()
        except Exception:  # a measurement never fails a run
            pass

    def peak_rss_mb(self) -> float | None:
        """The run's memory cgroup's peak when it has one (exact), else the sampled peak of
        its tree; None when nothing was measured (a run over before the first sample).

        Not ``wait4``'s ``ru_maxrss``: the root is spawned with vfork, and exec records the
        high-water mark of the memory it leaves, the harness's own, as the root's peak."""
        if self.cgroup_peak_mb:
            return round(self.cgroup_peak_mb, 1)
        peak = self.rss.peak_mb
        return round(peak, 1) if peak else None

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def wait(self) -> RunOutcome:
        """Wait for the run to end (its exit, the timeout, a stop, a limit), then kill
        whatever is left of it and read what it left: log tail and result JSON."""
        try:
            ended = self._watch()
            if ended != "exited":
                self._terminate()
        finally:
            self._sweep()  # also when the wait itself was aborted (a second Ctrl-C)
        spec = self.spec
        result_json = read_result_file(spec.result_file) if spec.result_file is not None else None
        early = self.watch.stop if self.watch is not None and ended == "early" else None
        if self.watch is not None:
            self.watch.finish()
        return RunOutcome(
            exit_code=None if ended in ("timeout", "stopped", "early") or self.limit_hit == "disk" else self.proc.returncode,
            timed_out=ended == "timeout", interrupted=ended == "stopped", duration_s=time.monotonic() - self.started,
            log_path=str(spec.log_path), log_tail=log_tail(spec.log_path), log_bytes=self.log.total,
            result_json=result_json, limit=self.limit_hit, peak_rss_mb=self.peak_rss_mb(),
            progress=self.watch.snapshot() if self.watch is not None else {},
            stopped_early_at=early.fraction if early is not None else None,
            stopped_reason=early.reason() if early is not None else "",
        )

    def _watch(self) -> str:
        """Poll until the run ends: "exited", "timeout", "stopped", "limit", or "early" (the
        progress rule stopped it)."""
        spec = self.spec
        deadline = self.started + spec.timeout_s
        next_scan, next_disk = self.started + 0.25, self.started + 2.0
        disk_mb = spec.limits.disk_mb if spec.limits is not None else None
        while True:
            now = time.monotonic()
            if now >= deadline:
                return "timeout"
            if self.stop is not None and self.stop.is_set():
                return "stopped"
            if self._exited_within(min(0.1, deadline - now)):
                return "exited"
            if self.watch is not None and self.watch.poll() is not None:
                return "early"
            if disk_mb is not None and time.monotonic() >= next_disk:
                used = dir_size_mb(spec.top) + (dir_size_mb(spec.result_file.parent) if spec.result_file else 0.0)
                if used > disk_mb:  # its directory and its private result directory count
                    self.limit_hit = "disk"
                    return "limit"
                next_disk = time.monotonic() + 2.0
            if time.monotonic() >= next_scan:
                self.tracker.snapshot()  # remember descendants while their parents live
                self._sample_memory()
                next_scan = time.monotonic() + 0.5

    def _terminate(self) -> None:
        """SIGTERM to the group, SIGKILL after the grace period."""
        self.tracker.snapshot()
        self._sample_memory()
        self._signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout=self.spec.kill_grace_s)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.proc.wait()

    def _sweep(self) -> None:
        """Whatever is left of the run (background children, setsid'd daemons) dies now."""
        if self.proc.poll() is None:
            self._signal_group(signal.SIGKILL)
            self.proc.wait()
        self._signal_group(signal.SIGKILL)
        ACTIVE_ROOTS.discard(self.proc.pid)
        ACTIVE_TOKENS.discard(self.tracker.token)
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        if not (self.subreaper and self.tracker.left_nothing()):  # the full sweep reads every process
            self.tracker.kill_all()
        self.log.close()
        if self.cgroup is not None:
            if not self.limit_hit and self.cgroup.oom_killed():
                self.limit_hit = "memory"
            try:
                self.cgroup_peak_mb = self.cgroup.peak_memory_mb()
            except Exception:  # a measurement never fails a run
                pass
            self.cgroup.remove()


class Guardian:
    """Starts ``guardian.py`` for this harness process (see there), once.

    One guardian serves every run of the process (their tokens share ``HARNESS_PREFIX``).
    It needs no stopping: when the harness exits it sweeps (finding nothing) and exits too.
    """

    _proc: subprocess.Popen[bytes] | None = None
    _detached: int | None = None  # pid of a detached guardian
    _lock = threading.Lock()

    @classmethod
    def ensure(cls, detached: bool = False) -> None:
        """``detached``: the guardian is not a child of this process (for a harness that
        kills its children when it exits, like a Ray worker; see guardian.py)."""
        script = Path(__file__).with_name("guardian.py")
        with cls._lock:
            if detached:
                if cls._detached is not None and _is_guardian(cls._detached):
                    return
                with SPAWN_LOCK:
                    out = subprocess.run(
                        [sys.executable, "-S", "-I", str(script), str(os.getpid()), HARNESS_PREFIX, "--detach"],
                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                        start_new_session=True, check=True,
                    ).stdout
                cls._detached = int(out.split()[0])
                PROTECTED.add(cls._detached)
                return
            if cls._proc is not None and cls._proc.poll() is None:
                return
            with SPAWN_LOCK:
                cls._proc = subprocess.Popen(
                    [sys.executable, "-S", "-I", str(script), str(os.getpid()), HARNESS_PREFIX],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                PROTECTED.add(cls._proc.pid)


def _is_guardian(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"guardian.py" in f.read()
    except OSError:
        return False


@dataclass
class LocalRunner:
    """Runs experiments as subprocesses of this machine.

    ``in_ray_worker``: the harness is a Ray worker process, which kills its direct children
    when it exits: the guardian is detached, and the worker does not become a subreaper
    (orphans would be re-parented to it, the guardian among them). A run's processes are
    still found by their token."""

    name: str = "local"
    in_ray_worker: bool = False
    _subreaper: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if not self.in_ray_worker:
            self._subreaper = become_subreaper()

    def start(self, spec: RunSpec, stop: threading.Event | None = None, watch: WatchSpec | None = None) -> LocalHandle:
        """Start a run. Its token should come from ``new_run_token`` so that the guardian
        can find its processes if this harness dies. ``watch``: record its progress reports
        and, with a rule, stop it early (``runners/watch.py``)."""
        Guardian.ensure(detached=self.in_ray_worker)
        return LocalHandle(spec, stop, subreaper=self._subreaper, watch=watch)

    def run(self, spec: RunSpec, stop: threading.Event | None = None, watch: WatchSpec | None = None) -> RunOutcome:
        return self.start(spec, stop, watch).wait()
