"""SmolLM2-135M-Instruct in structured (knobs) mode: how many of its proposals are valid
and runnable, and how long each takes. A real campaign on the synthetic arena, the model
served by llama-cpp-python on 127.0.0.1 through the openai provider.

    python bench/llm_structured.py [--proposals 30]

valid: the proposal was usable (not recorded as invalid after the retries); runnable: it
ran and produced the metric (keep or discard; a crash is valid but not runnable);
latency: the model's wall time per proposal, retries included (meta latency_s).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from autoresearch.api import run_campaign
from autoresearch.testing import LocalModelServer, make_synthetic_arena, smollm2_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--proposals", type=int, default=30)
    ap.add_argument("--retries", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LocalModelServer(smollm2_path()) as server:
        arena = make_synthetic_arena(Path(tmp) / "arena")
        t0 = time.monotonic()
        outcome, _ = run_campaign(arena, tag="bench", proposer_kind="llm", max_experiments=args.proposals + 1, overrides={
            "proposer.lookahead": 0, "proposer.llm.model": "smollm2", "proposer.llm.base_url": server.openai_url,
            "proposer.llm.mode": "knobs", "proposer.llm.json_format": "json_object", "proposer.llm.max_tokens": 200,
            "proposer.llm.retries": args.retries, "judge.policy": "greedy"})
        wall = time.monotonic() - t0
        assert outcome.exit_code == 0, outcome
        db = sqlite3.connect(arena / ".autoresearch" / "ledger.sqlite")
        rows = db.execute("SELECT status, metric, proposal_json FROM experiments WHERE id > 0 ORDER BY id").fetchall()
        base = db.execute("SELECT metric FROM experiments WHERE id = 0").fetchone()[0]
        best = db.execute("SELECT MIN(metric) FROM experiments WHERE status = 'keep'").fetchone()[0]
    n = len(rows)
    metas = [json.loads(r[2]).get("meta", {}) for r in rows]
    valid = sum(1 for r in rows if r[0] != "invalid")
    runnable = sum(1 for r in rows if r[0] in ("keep", "discard"))
    latencies = [m["latency_s"] for m in metas if "latency_s" in m]
    attempts = [m.get("attempts", args.retries + 1) for m in metas]
    print(f"proposals {n}: valid {valid} ({100 * valid / n:.1f} %), runnable {runnable} ({100 * runnable / n:.1f} %)")
    print(f"model latency per proposal: mean {statistics.fmean(latencies):.2f} s, median {statistics.median(latencies):.2f} s "
          f"(retries included); replies per proposal: mean {statistics.fmean(attempts):.2f}")
    print("statuses: " + ", ".join(f"{s} {sum(1 for r in rows if r[0] == s)}" for s in ("keep", "discard", "crash", "invalid")))
    print(f"val_loss: baseline {base:.4f} -> best {best:.4f}; campaign wall {wall:.0f} s")


if __name__ == "__main__":
    main()
