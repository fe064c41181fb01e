"""What looking for tampering costs per run (`engine/guard.py`), against the refs a long
campaign accumulates: one archive ref per experiment not kept.

For each count of refs: a real repository (git init, one commit, N refs under the
campaign's archive namespace), a real ledger with a campaign, a Guard; then the median of
`Guard.check()` (the look after every run: the git files and every ref by stat signature,
the ledger's data_version, the harness's files) over many calls, next to the median of one
`os.stat` in the same directory as a yardstick of the machine's file-system speed.

    python bench/guard.py [--refs 10 100 1000 10000] [--calls 200] [--tmp DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from autoresearch.engine.guard import Guard
from autoresearch.engine.journal import Journal
from autoresearch.store.gitobjects import git
from autoresearch.store.ledger import Ledger
from autoresearch.store.ledger_writer import LedgerWriter
from autoresearch.store.workspace import Workspace
from autoresearch.testing import commit_all


def setup(root: Path, refs: int) -> tuple[Workspace, Journal]:
    root.mkdir(parents=True)
    (root / "train.py").write_text("X = 0\n")
    git(["init", "-q"], root)
    head = commit_all(root, "bench")
    ws = Workspace(root)
    folder = ws.git_dir / "refs" / "autoresearch" / "b" / "discarded"
    folder.mkdir(parents=True)
    for i in range(refs):
        (folder / str(i)).write_text(head + "\n")
    ledger = Ledger(ws.state_dir / "ledger.sqlite")
    campaign = LedgerWriter(ledger).create_campaign(tag="b", branch="autoresearch/b", base_commit=head, metric="m",
                                                    goal="minimize", config={}, readonly={})
    return ws, Journal(ledger, ws, campaign)


def median_ms(fn, calls: int) -> float:
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--refs", type=int, nargs="+", default=[10, 100, 1000, 10000])
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--tmp", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.tmp) as d:
        print("| archive refs | Guard.check() | one os.stat |")
        print("| --- | --- | --- |")
        for n in args.refs:
            ws, journal = setup(Path(d) / f"r{n}", n)
            guard = Guard(journal, sandboxed=False, note=print)
            try:
                check = median_ms(guard.check, args.calls)
                stat = median_ms(lambda: os.stat(ws.git_dir / "config"), args.calls)
                print(f"| {n} | {check:.2f} ms | {stat * 1000:.1f} µs |")
            finally:
                guard.close()
                ws.close()


if __name__ == "__main__":
    main()
