"""Per-run resource limits (``[runner.limits]``) and how each is enforced on this machine.

- ``file_size_mb`` and ``nofile``: rlimits (``RLIMIT_FSIZE``, ``RLIMIT_NOFILE``), set by
  ``prlimit`` around the run's shell (no ``preexec_fn``: runs start from several threads).
- ``memory_mb``: a memory cgroup when the machine lets us create one (cgroup v2, or v1's
  ``memory`` hierarchy), so the whole process tree is capped on resident memory; else
  ``RLIMIT_DATA`` per process (it bounds heap and private mappings; an address-space limit
  would break torch, which reserves far more virtual memory than it uses).
- ``nproc``: a pids cgroup when possible; else ``RLIMIT_NPROC``, which does not bind root
  (CI runs as root): then it is reported as not enforced.
- ``disk_mb``: checked while the run goes (the size of its worktree, every 2 s); the run
  is killed when it is exceeded.

The run's shell joins its cgroups itself (``echo $$ > cgroup.procs``) before it execs the
command, so every descendant is inside from the first fork. ``describe`` says which
mechanism is in force for each limit; the campaign prints it when it starts.
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..runs.spec import ResourceLimits

V2_ROOT = Path("/sys/fs/cgroup")
V1_ROOT = Path("/sys/fs/cgroup")
GROUP = "autoresearch"


def _writable_dir(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK)


@dataclass(frozen=True)
class Cgroups:
    """Where per-run cgroups can be made: ``{"memory": base_dir, "pids": base_dir}``."""

    version: int  # 0: none usable, 1 or 2
    bases: dict[str, Path]

    @classmethod
    def detect(cls) -> "Cgroups":
        if (V2_ROOT / "cgroup.controllers").is_file():
            try:
                controllers = (V2_ROOT / "cgroup.controllers").read_text().split()
            except OSError:
                controllers = []
            base = V2_ROOT / GROUP
            try:
                base.mkdir(exist_ok=True)
                enable = " ".join(f"+{c}" for c in ("memory", "pids") if c in controllers)
                if enable:
                    (V2_ROOT / "cgroup.subtree_control").write_text(enable)
            except OSError:
                return cls(0, {})
            return cls(2, {c: base for c in ("memory", "pids") if c in controllers})
        bases = {}
        for c in ("memory", "pids"):
            root = V1_ROOT / c
            if _writable_dir(root):
                try:
                    (root / GROUP).mkdir(exist_ok=True)
                    bases[c] = root / GROUP
                except OSError:
                    pass
        return cls(1 if bases else 0, bases)


_MACHINE: Cgroups | None = None


def machine_cgroups() -> Cgroups:
    """What this machine offers for per-run cgroups (detected once per process)."""
    global _MACHINE
    if _MACHINE is None:
        _MACHINE = Cgroups.detect()
    return _MACHINE


def describe(limits: ResourceLimits, cgroups: Cgroups, is_root: bool, user: str = "") -> list[str]:
    """How each configured limit is enforced here (for the user, at campaign start). Pure."""
    out = []
    if limits.run_as is not None:
        out.append(f"runs run as user {user or limits.run_as[0]} (uid {limits.run_as[0]}, gid {limits.run_as[1]}), "
                   "not as root")
        is_root = False  # the rlimits bind the run's user
    if limits.memory_mb is not None:
        out.append(f"memory {limits.memory_mb:g} MB: " + (f"cgroup v{cgroups.version} (the whole run)" if "memory" in cgroups.bases
                                                          else "RLIMIT_DATA per process (no writable memory cgroup)"))
    if limits.nproc is not None:
        if "pids" in cgroups.bases:
            out.append(f"processes {limits.nproc}: pids cgroup v{cgroups.version}")
        else:
            out.append(f"processes {limits.nproc}: " + (
                "NOT enforced (RLIMIT_NPROC does not bind root and no pids cgroup is writable: set [runner] "
                "run_as = \"nobody\" to run as an unprivileged user)" if is_root else
                "RLIMIT_NPROC" + (" of the run's user (it counts all of that user's processes)"
                                  if limits.run_as is not None else "")))
    if limits.file_size_mb is not None:
        out.append(f"file size {limits.file_size_mb:g} MB: RLIMIT_FSIZE")
    if limits.nofile is not None:
        out.append(f"open files {limits.nofile}: RLIMIT_NOFILE")
    if limits.disk_mb is not None:
        out.append(f"disk {limits.disk_mb:g} MB in the worktree: checked every 2 s, the run is killed past it")
    return out


def wrap(command: str, limits: ResourceLimits, cgroup_procs: list[Path], is_root: bool, have_memory_cgroup: bool,
         have_pids_cgroup: bool) -> str:
    """The shell command that applies the limits (joining the cgroups as root), switches to
    ``limits.run_as`` when set, then runs ``command``. Pure."""
    if limits.run_as is not None:
        is_root = False
    parts = []
    for procs in cgroup_procs:
        parts.append(f"echo $$ > {shlex.quote(str(procs))}")
    rl = []
    if limits.file_size_mb is not None:
        rl.append(f"--fsize={int(limits.file_size_mb * (1 << 20))}")
    if limits.nofile is not None:
        rl.append(f"--nofile={int(limits.nofile)}")
    if limits.memory_mb is not None and not have_memory_cgroup:
        rl.append(f"--data={int(limits.memory_mb * (1 << 20))}")
    if limits.nproc is not None and not have_pids_cgroup and not is_root:
        rl.append(f"--nproc={int(limits.nproc)}")
    inner = f"/bin/sh -c {shlex.quote(command)}"
    if limits.run_as is not None:
        uid, gid = limits.run_as
        setpriv = shutil.which("setpriv") or "setpriv"
        inner = f"{setpriv} --reuid={uid} --regid={gid} --clear-groups -- {inner}"
    if rl:
        prlimit = shutil.which("prlimit") or "prlimit"
        inner = f"{prlimit} {' '.join(rl)} -- {inner}"
    parts.append(f"exec {inner}")
    return " && ".join(parts)


class RunCgroup:
    """The cgroups of one run: created with the limits written, removed after."""

    def __init__(self, cgroups: Cgroups, limits: ResourceLimits, name: str):
        self.dirs: list[Path] = []
        self.procs: list[Path] = []
        self.memory = self.pids = False
        if limits.memory_mb is not None and "memory" in cgroups.bases:
            d = cgroups.bases["memory"] / name
            d.mkdir(exist_ok=True)
            limit = str(int(limits.memory_mb * (1 << 20)))
            if cgroups.version == 2:
                (d / "memory.max").write_text(limit)
                if (d / "memory.swap.max").exists():
                    (d / "memory.swap.max").write_text("0")
            else:
                (d / "memory.limit_in_bytes").write_text(limit)
            self.dirs.append(d)
            self.procs.append(d / "cgroup.procs")
            self.memory = True
        if limits.nproc is not None and "pids" in cgroups.bases:
            d = cgroups.bases["pids"] / name
            if d not in self.dirs:
                d.mkdir(exist_ok=True)
                self.dirs.append(d)
                self.procs.append(d / "cgroup.procs")
            (d / "pids.max").write_text(str(int(limits.nproc)))
            self.pids = True

    def oom_killed(self) -> bool:
        """Whether the memory cgroup had to kill (v2 ``memory.events``) or refuse memory (v1
        ``memory.failcnt``) during the run."""
        for d in self.dirs:
            events = d / "memory.events"
            if events.exists():
                for line in events.read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and value.strip() != "0":
                        return True
            failcnt = d / "memory.failcnt"
            if failcnt.exists() and failcnt.read_text().strip() not in ("", "0"):
                return True
        return False

    def peak_memory_mb(self) -> float | None:
        """The most memory the run's memory cgroup held (v2 ``memory.peak``, kernel >= 5.19;
        v1 ``memory.max_usage_in_bytes``; both count the page cache too), or None when the
        run has no memory cgroup or the kernel does not say. Read before ``remove``."""
        if not self.memory:
            return None
        for name in ("memory.peak", "memory.max_usage_in_bytes"):
            try:
                return int((self.dirs[0] / name).read_text().split()[0]) / (1 << 20)
            except (OSError, ValueError, IndexError):
                continue
        return None

    def remove(self) -> None:
        for d in self.dirs:
            try:
                d.rmdir()
            except OSError:
                pass


def dir_size_mb(path: Path) -> float:
    total = 0
    from ..safefs import walk

    for root, dirs, files in walk(path):
        if ".git" in dirs and Path(root) == path:
            dirs.remove(".git")
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total / (1 << 20)
