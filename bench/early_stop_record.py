"""Stopping rules replayed on what live campaigns really see.

``bench/early_stop.py --live N --arms off --keep DIR`` keeps a real greedy campaign's arena:
every candidate applied on top of the incumbent's kept changes, trained its whole budget,
with its progress curve and its wall time in the ledger. This script

1. **extracts** such arenas into a compact record (``--extract DIR... --out FILE``: per
   experiment its curve, trusted val_bpb, status, the incumbent it was judged against,
   its wall time and its eval's; about 30 kB a campaign, committed under ``bench/records/``);
2. **replays** stopping rules on the record (``--replay FILE``): for each candidate the
   rule made from its incumbent's curve (``engine/early_stop.make_rule``, the baseline's
   curves for the scale, as a campaign does) and ``progress.decide`` over the candidate's
   curve, point by point, as the harness sees it. Reported per rule:
   - the **loss**: of the ordered pairs (incumbent i, candidate j of the same campaign that
     ended better than i), the share in which i's rule stops j, over all pairs and over
     the pairs whose i could be an incumbent (it ended no worse than the baseline, as
     every real incumbent does); and of the candidates that beat their own incumbent
     live, how many the rule stops;
   - the **projected on-arm wall time** and experiments per hour against the off arm's
     measured wall time: a stopped candidate costs its full wall time less its eval process
     (its start-up and its eval_seconds) and less the training it did not do
     (``(1 - f) * budget``). The stopped fraction is where ``decide`` fires; the
     harness stops the process tree within a poll (0.2 s).

    python bench/early_stop_record.py --extract /tmp/rec/b10 /tmp/rec/b30 --out bench/records/live_off_2026-12-02.json
    python bench/early_stop_record.py --replay bench/records/live_off_2026-12-02.json
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path
from statistics import fmean

from autoresearch.engine.early_stop import GREEDY_MARGIN, EarlyStopSettings
from autoresearch.progress import LATE, SETTLED
from early_stop import pairs_lost, rule_for, stopped_at  # bench/early_stop.py: the replay's own pieces


def extract_arena(arena: Path, label: str) -> dict:
    """One kept arena's campaign as a compact record."""
    db = sqlite3.connect(arena / ".autoresearch" / "ledger.sqlite")
    config = json.loads(db.execute("select config_json from campaigns").fetchone()[0])
    budget = float(config["arena"]["time_budget_s"])
    runs = {r[0]: r for r in db.execute("select experiment_id, started_at, finished_at, curves_json, metrics_json "
                                        "from runs order by id")}  # greedy: one run per experiment
    exps = list(db.execute("select id, status, description, metric, started_at, finished_at from experiments "
                           "order by id"))
    out, incumbent = [], 0
    for i, (eid, status, desc, metric, start, end) in enumerate(exps):
        run = runs.get(eid)
        nxt = exps[i + 1][4] if i + 1 < len(exps) else end  # the last: its own end
        curves = json.loads(run[3] or "{}") if run else {}
        metrics = json.loads(run[4] or "{}") if run else {}
        out.append({"id": eid, "status": status, "description": desc, "final": metric, "incumbent": incumbent,
                    "curve": curves.get("train_loss", []), "wall_s": (nxt - start) if nxt and start else None,
                    "eval_s": metrics.get("eval_seconds")})
        if status == "keep":
            incumbent = eid
    return {"arena": label, "budget": budget, "experiments": out}


EVAL_START_S = 1.3  # the eval process's own start-up (mostly `import torch`), on top of its eval_seconds
                    # (measured: the eval process takes 1.7 s of a 10 s run's 15.2 s). The model leaves out
                    # what else a stopped run skips (its checkpoint, its teardown): projections err low


def replay_campaign(c: dict, settings: EarlyStopSettings) -> dict:
    """The rule's figures on one recorded campaign (its off arm)."""
    exps = {e["id"]: e for e in c["experiments"]}
    base, budget = exps[0], c["budget"]
    data = {"candidates": c["experiments"], "baseline": [base]}  # every experiment, the baseline too, as i and j
    lost, pairs = pairs_lost(data, None, settings)
    lost_inc, pairs_inc = pairs_lost(data, None, settings, worst_incumbent=base["final"])
    rules = {i: rule_for([inc], [base], "greedy", None, settings) for i, inc in exps.items() if inc["curve"]}
    off = on = 0.0
    stops, beat_lost, beat = [], 0, 0
    for e in c["experiments"]:
        if e["id"] == 0 or e["wall_s"] is None:
            continue
        off += e["wall_s"]
        inc = exps[e["incumbent"]]
        rule = rules.get(inc["id"])
        f = stopped_at(rule, e["curve"]) if rule is not None and e["curve"] else None
        better = e["final"] is not None and e["final"] < inc["final"]
        beat += better
        if f is None:
            on += e["wall_s"]
            continue
        stops.append(f)
        beat_lost += better
        on += e["wall_s"] - EVAL_START_S - (e["eval_s"] or 0.0) - (1 - f) * budget
    return {"lost": lost, "pairs": pairs, "lost_inc": lost_inc, "pairs_inc": pairs_inc, "off_s": off, "on_s": on,
            "stops": stops, "beat": beat, "beat_lost": beat_lost}


def share(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / max(1, n):.1f} %)"


def replay(path: str, variants: list[EarlyStopSettings]) -> None:
    data = json.loads(Path(path).read_text())
    for c in data["campaigns"]:
        print(f"{c['arena']}: budget {c['budget']} s, {len(c['experiments']) - 1} candidates")
        for s in variants:
            r = replay_campaign(c, s)
            early = f"{s.early_margin:.0%} until {SETTLED:.0%}, then " if s.min_fraction < SETTLED else ""
            margin = s.margin or GREEDY_MARGIN
            late = f", {s.late_margin:.1%} from {LATE:.0%}" if s.late_margin < margin else ""
            print(f"  from {s.min_fraction:.0%}: {early}{margin:.0%}{late}: loss "
                  f"{share(r['lost'], r['pairs'])} of pairs, {share(r['lost_inc'], r['pairs_inc'])} where i could be "
                  f"an incumbent; of {r['beat']} that beat their incumbent {r['beat_lost']} stopped; "
                  f"{len(r['stops'])} stopped, at {fmean(r['stops'] or [0]):.0%} on average; off {r['off_s']:.0f} s, "
                  f"on {r['on_s']:.0f} s projected: {r['off_s'] / r['on_s']:.2f}x", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extract", nargs="+", help="folders kept by early_stop.py --keep (each holds <arm>-<seed>/arena)")
    ap.add_argument("--out", help="with --extract: the record to write")
    ap.add_argument("--replay", help="a record to replay the rules on")
    args = ap.parse_args()
    if args.extract:
        arenas = sorted((a, f"{Path(d).name}/{a.parent.name}") for d in args.extract for a in Path(d).glob("*/arena"))
        Path(args.out).write_text(json.dumps({"campaigns": [extract_arena(a, label) for a, label in arenas]}))
        print(f"{len(arenas)} arena(s) -> {args.out}")
    if args.replay:
        default = EarlyStopSettings()
        grid = [(f, m) for f in (0.1, 0.15, 0.2) for m in (0.1, 0.15, 0.2, 0.3)]
        others = [EarlyStopSettings(min_fraction=f, early_margin=m) for f, m in grid]
        before = [EarlyStopSettings(late_margin=1.0), EarlyStopSettings(min_fraction=0.3, late_margin=1.0)]
        lates = [EarlyStopSettings(late_margin=m) for m in (0.02, 0.025, 0.04)]
        replay(args.replay, [default] + before + [s for s in lates + others if s != default])  # the default first


if __name__ == "__main__":
    main()
