"""The guardian: one small process per harness that outlives it by a moment.

When the harness dies (``kill -9``, OOM killer), its runs would go on burning the GPU, and
an orphaned proposer could keep calling a paid API. The guardian notices the death (its
parent changes; polled every 0.2 s) and kills every process whose environment carries one
of the harness's run tokens (``AUTORESEARCH_RUN_TOKEN=<prefix>-...``). It does not use
``PR_SET_PDEATHSIG``: Linux sends that signal when the *thread* that started the guardian
ends, and runs are started from per-slot threads that come and go.

Run as ``python -S -I guardian.py HARNESS_PID PREFIX``: standard library only, no imports
from the package, so it starts in ~10 ms and cannot be broken by the arena's environment.
"""

import os
import signal
import sys
import time

POLL_S = 0.2


def _token_holders(prefix: bytes) -> list:
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if any(entry.startswith(prefix) for entry in env.split(b"\0")):
            pids.append(int(name))
    return pids


def sweep(prefix: bytes) -> None:
    for _ in range(20):
        pids = [p for p in _token_holders(prefix) if p != os.getpid()]
        if not pids:
            return
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
        time.sleep(0.02)


def _start_time(pid: int):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()
    return None if fields[0] == b"Z" else fields[19]


def main() -> None:
    harness = int(sys.argv[1])
    prefix = f"AUTORESEARCH_RUN_TOKEN={sys.argv[2]}-".encode()
    detached = "--detach" in sys.argv[3:]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    dying = []
    signal.signal(signal.SIGTERM, lambda *_: dying.append(1))
    if detached:
        # Not a child of the harness: a harness that kills its own children on exit (a Ray
        # worker does) cannot take the guardian with it. The harness is watched by pid and
        # start time instead of by parenthood.
        born = _start_time(harness)
        if os.fork():
            os._exit(0)
        os.setsid()
        print(os.getpid(), flush=True)
        os.close(1)
        while not dying and born is not None and _start_time(harness) == born:
            time.sleep(POLL_S)
    else:
        while not dying and os.getppid() == harness:
            time.sleep(POLL_S)
    sweep(prefix)


if __name__ == "__main__":
    main()
