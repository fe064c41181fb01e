"""``[runner] sandbox = "bwrap"``: each run inside Debian's bubblewrap.

What the run sees: the whole file system read-only, its own run directory read-write, its
own (private, fresh) result directory read-write, a private empty ``/tmp`` and home of a
bounded size (``[runner.limits] disk_mb``, else 2 GB), an empty home
directory (with the interpreters found on PATH under it, the arena if it lives there,
and ``[runner] sandbox_paths`` given back read-only), no ``.autoresearch/`` of the arena (the ledger, the logs, other experiments'
worktrees are invisible), with ``[arena] eval_only`` set: the validation data (in the
user's checkout, and git's objects, which hold it too) masked during the run phase, and no network (``--unshare-net``: only a loopback device of its
own). ``[runner] sandbox_paths`` adds read-only paths under the hidden home (a dataset
cache, say), and ``[arena] data`` (the checkout's untracked dataset the run directory links to) is
bound read-only wherever it lives. It dies with the harness (``--die-with-parent``). It runs in PID, IPC, UTS and
user namespaces of its own with every capability dropped: root inside is powerless, sees
no process of the harness in ``/proc``, cannot enter another namespace or make a new one.

What it does not protect against: reading anything else that is world-readable on the
machine (the file system is visible read-only), using all the CPU or GPU time it is
given (that is what the timeout and ``[runner.limits]`` are for), a kernel exploit, or
cheating inside the training code itself (that is what the separate ``eval`` and the
readonly hashes are for).
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path
from typing import Sequence

from ..errors import ConfigError


def require_bwrap() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise ConfigError("[runner] sandbox = \"bwrap\" needs bubblewrap: apt install bubblewrap "
                          "(or set sandbox = \"none\")")
    return path


def toolchain_paths(path_env: str, hidden: Sequence[str], extra: Sequence[str] = ()) -> list[str]:
    """Directories under the ``hidden`` roots (the home, /tmp) a run needs to start at all:
    the prefix (the parent of ``bin/``) of every PATH entry there (pyenv, conda, uv and venv
    interpreters live in the home), and the harness's own Python prefixes."""
    import sys

    roots = [Path(h).resolve() for h in hidden]
    out: list[str] = []
    candidates = [Path(p) for p in path_env.split(os.pathsep) if p]
    candidates += [Path(sys.prefix) / "bin", Path(sys.base_prefix) / "bin", *[Path(e) for e in extra]]
    for c in candidates:
        try:
            real = c.resolve()
        except OSError:
            continue
        for p in (c.parent if c.name == "bin" else c, real.parent if real.name == "bin" else real):
            if any(p != r and r in p.parents for r in roots) and str(p) not in out:
                out.append(str(p))
    return out


DEFAULT_TMPFS_MB = 2048  # the sandbox's /tmp and home, when [runner.limits] disk_mb does not say


def isolation_args(user_namespace: bool) -> list[str]:
    """Namespaces and capabilities: a PID namespace of its own (no ancestors in /proc to
    reach through ``/proc/PID/root`` or ``/proc/PID/ns``), no capabilities even for root, a
    user namespace (so root inside is nobody outside) that may not create another, its own
    IPC, hostname and session (no TIOCSTI into the harness's terminal)."""
    args = ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--new-session",
            "--cap-drop", "ALL"]
    if user_namespace:
        args += ["--unshare-user", "--disable-userns"]
    return args


_USERNS: dict[tuple[str, tuple[int, int] | None], bool] = {}


def user_namespaces(bwrap: str, as_user: tuple[int, int] | None = None) -> bool:
    """Whether bwrap can make a user namespace here, started as ``as_user`` (uid, gid;
    default: us). Root can; others need unprivileged user namespaces or a setuid bwrap.
    Asked once per user."""
    key = (bwrap, as_user)
    if key not in _USERNS:
        import subprocess

        cmd = [bwrap, "--ro-bind", "/", "/", "--unshare-user", "--disable-userns", "--", "/bin/true"]
        if as_user is not None:
            setpriv = shutil.which("setpriv") or "setpriv"
            cmd = [setpriv, f"--reuid={as_user[0]}", f"--regid={as_user[1]}", "--clear-groups", "--", *cmd]
        try:
            ok = subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        _USERNS[key] = ok
    return _USERNS[key]


def bwrap_command(command: str, *, bwrap: str, worktree: Path, cwd: Path, writable: Sequence[Path], arena: Path,
                  state_dir: Path, home: str | None, path_env: str = "", extra_ro: Sequence[str] = (),
                  masked: Sequence[Path] = (), tmp_mb: float | None = None, user_namespace: bool = True,
                  data_ro: Sequence[str] = ()) -> str:
    """The shell command that runs ``command`` inside the sandbox. Pure (but for links and
    the type of each ``masked`` path: a directory becomes an empty one, a file an empty file)."""
    size = str(int((tmp_mb or DEFAULT_TMPFS_MB) * (1 << 20)))
    args = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--size", size, "--tmpfs", "/tmp",
            *isolation_args(user_namespace)]
    hidden = ["/tmp"]
    if home and Path(home).is_dir() and Path(home).resolve() != Path("/"):
        args += ["--size", size, "--tmpfs", home]
        hidden.append(home)
    # give back, read-only, what a run needs from the hidden places: its interpreters, the
    # arena when it lives there, and the paths the user listed
    keep = toolchain_paths(path_env, hidden) + list(extra_ro)
    if any(arena == Path(h) or Path(h).resolve() in arena.resolve().parents for h in hidden):
        keep.append(str(arena))
    for p in keep:
        args += ["--ro-bind-try", p, p]
    for p in data_ro:  # [arena] data: the copies the run directory's links lead to, read-only wherever they live
        args += ["--ro-bind-try", p, p]
    args += ["--tmpfs", str(state_dir)]
    for path in masked:  # what the run must not read (validation data for the eval only)
        if path.is_dir():
            args += ["--tmpfs", str(path)]
        elif path.exists():
            args += ["--ro-bind", "/dev/null", str(path)]
    for path in [worktree, *writable]:
        path.mkdir(parents=True, exist_ok=True)
        args += ["--bind", str(path), str(path)]
    args += ["--unshare-net", "--die-with-parent", "--chdir", os.fspath(cwd), "--", "/bin/sh", "-c", command]
    return " ".join(shlex.quote(a) for a in args)
