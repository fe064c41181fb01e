"""The journal: the only writer of the ledger and of git refs (an architecture test keeps it
so). Each method is one durable step, followed by its crash point, and an experiment passes
them in this order, which resume relies on:

    register (ledger ``pending``)       after_pending
    commit (objects in git)             mid_commit, after_commit
    running (ledger, with the commit)   after_running
    run_started / run_finished          mid_run (during the run), after_run
    finished (ledger terminal status)   after_terminal
    advance (keep) or archive (other)   mid_advance, after_advance

``reconcile`` repairs what a harness killed between two steps left behind (DESIGN.md,
order of durable steps, case 1). Every method expects the engine's lock to be held.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..faults import crash_point
from ..records import Experiment, Proposal, Purpose, Status
from ..sanitize import clean_text
from ..runners.proctree import ProcessTracker
from ..store.ledger import Campaign, Ledger
from ..store.recovery import (CAMPAIGN, RECORDS, RecoveryLog, TsvExport, campaign_record, experiment_record,
                              write_campaign)
from ..store.ledger_writer import LedgerWriter
from ..store.workspace import Workspace, commit_present
from .execution import RunPlan, RunResult


def _half_written_object(ws: Workspace) -> Path:
    """What a harness killed while writing an object leaves (the mid_commit crash point)."""
    from ..store.gitobjects import TMP_PREFIX

    return ws.git_dir / "objects" / "00" / f"{TMP_PREFIX}{os.getpid()}_crash"


def branch_ref(campaign: Campaign) -> str:
    return f"refs/heads/{campaign.branch}"


def archive_ref(tag: str, exp_id: int) -> str:
    return f"refs/autoresearch/{tag}/discarded/{exp_id}"


class Journal:
    def __init__(self, ledger: Ledger, workspace: Workspace, campaign: Campaign):
        self.ledger, self.ws, self.campaign = ledger, workspace, campaign
        self.write = LedgerWriter(ledger)
        self.tag = campaign.tag
        self.out_dir = workspace.state_dir / campaign.tag
        self._cache: dict[int, Experiment] | None = None  # the campaign's experiments, as last read
        self._dirty: set[int] = set()                     # written since
        self.tsv = TsvExport(campaign.metric, [self.out_dir / "results.tsv", workspace.arena / "results.tsv"])
        self.recovery = RecoveryLog(self.out_dir / RECORDS)

    # -- what it wrote ----------------------------------------------------------------------------
    def experiments(self) -> list[Experiment]:
        """The campaign's experiments: read once, then re-read only where the journal wrote
        (it is the only writer), so a long campaign does not re-read its whole history for
        every proposal and every results.tsv."""
        if self._cache is None:
            self._cache = {e.id: e for e in self.ledger.experiments(self.campaign)}
        elif self._dirty:
            self._cache.update((e.id, e) for e in self.ledger.experiments(self.campaign, ids=self._dirty))
        self._dirty.clear()
        return [self._cache[i] for i in sorted(self._cache)]

    def experiment(self, exp_id: int) -> Experiment | None:
        return next((e for e in self.experiments() if e.id == exp_id), None)

    def _wrote(self, exp_id: int, terminal: bool = False) -> None:
        """The ledger's row of ``exp_id`` changed; a terminal one also gets its recovery record."""
        self._dirty.add(exp_id)
        if terminal:
            self.recovery.append(experiment_record(self.ledger, self.campaign, exp_id))

    # -- an experiment's steps, in their order ------------------------------------------------
    def register(self, proposal: Proposal, parent: str, proposer: str, code_hash: str | None = None) -> int:
        """A new proposal becomes a ``pending`` experiment (the queue of work is the ledger)."""
        exp_id = self.ledger.next_experiment_id(self.campaign)
        self.write.add_experiment(self.campaign, id=exp_id, description=proposal.description,
                                  proposer=proposal.proposer or proposer, parent=parent, code_hash=code_hash,
                                  proposal=proposal.to_json(), tokens=proposal.tokens, cost=proposal.cost)
        self._wrote(exp_id)
        crash_point("after_pending", exp_id)
        return exp_id

    def commit(self, exp_id: int, parent: str, files: Mapping[str, str], description: str) -> str:
        """The candidate's commit: ``parent`` with ``files`` (objects only; no ref moves)."""
        crash_point("mid_commit", exp_id, leave=lambda: _half_written_object(self.ws))
        commit = self.ws.commit_files(parent, files, f"autoresearch {self.tag} #{exp_id}: {description}")
        crash_point("after_commit", exp_id)
        return commit

    def running(self, exp_id: int, *, commit: str, parent: str | None, diff: str, code_hash: str, attempt: int,
                slot: str, log_path: str, seed: int, proposal: Proposal | None = None) -> None:
        """Running, with the commit that runs; ``proposal`` when it was written again for a new
        incumbent (a knobs proposal moved: the ledger holds what runs)."""
        if proposal is not None:
            self.write.set_proposal(self.campaign, exp_id, description=proposal.description, proposal=proposal.to_json())
        self.write.set_running(self.campaign, exp_id, commit=commit, parent=parent, diff=diff, code_hash=code_hash,
                                attempt=attempt, seed=seed, slot=slot, log_path=log_path)
        self._wrote(exp_id)
        crash_point("after_running", exp_id)

    def run_started(self, plan: RunPlan) -> None:
        """Before the run: its token is in the ledger, so a restarted harness can find and
        stop whatever this run leaves running if the harness dies."""
        self.write.start_run(self.campaign, plan.exp_id, attempt=plan.attempt, purpose=plan.purpose.value,
                              seed=plan.seed, slot=plan.slot.label, log_path=str(plan.spec.log_path),
                              run_token=plan.spec.token)

    def run_finished(self, plan: RunPlan, r: RunResult) -> None:
        self.write.finish_run_by_token(
            self.campaign, plan.spec.token, status=r.status.value, exit_code=r.run.exit_code,
            eval_exit_code=r.eval.exit_code if r.eval else None, metric=r.measurement.metric,
            metrics=r.measurement.metrics, problem=clean_text(r.reason, limit=4000), log_tail=clean_text(r.log_tail),
            warnings=[clean_text(w, limit=2000) for w in r.warnings],
            duration_s=r.duration_s, curves=r.run.progress if r.run is not None else None)
        if plan.purpose is not Purpose.REMEASURE:
            crash_point("after_run", plan.exp_id)

    def refused(self, exp_id: int, reason: str, *, parent: str, diff: str | None = None,
                code_hash: str | None = None) -> None:
        """A proposal refused before it ran: terminal ``invalid`` (nothing was committed)."""
        self.write.finish_experiment(self.campaign, exp_id, status=Status.INVALID, reason=clean_text(reason, limit=4000), diff=diff,
                                      code_hash=code_hash, parent=parent, uncommitted=True)
        self._wrote(exp_id, terminal=True)
        self.export()

    def finished(self, exp_id: int, status: Status, reason: str, *, metric: float | None,
                 metrics: Mapping[str, float], warnings: Sequence[str], stats: Mapping[str, float]) -> None:
        self.write.finish_experiment(self.campaign, exp_id, status=status, reason=clean_text(reason, limit=4000),
                                     metric=metric, metrics=metrics,
                                     warnings=[clean_text(w, limit=2000) for w in warnings], stats=stats)
        self._wrote(exp_id, terminal=True)
        crash_point("after_terminal", exp_id)

    def settle(self, exp_id: int, status: Status, commit: str, parent: str, description: str) -> None:
        """After the terminal status: a keep advances the branch from its parent; any other
        committed outcome keeps its commit reachable under an archive ref."""
        if status is Status.KEEP:
            ref = branch_ref(self.campaign)
            crash_point("mid_advance", exp_id, leave=lambda: self.ws.ref_lock_path(ref))
            self.ws.update_ref(ref, commit, parent, message=f"autoresearch: keep #{exp_id}: {description}")
        elif status is not Status.INTERRUPTED and commit_present(self.ws, commit):  # (a run may have pruned it)
            ref = archive_ref(self.tag, exp_id)
            crash_point("mid_advance", exp_id, leave=lambda: self.ws.ref_lock_path(ref))
            self.ws.update_ref(ref, commit, message=f"autoresearch: {status.value} #{exp_id}: {description}")
        crash_point("after_advance", exp_id)
        if status is not Status.INTERRUPTED:
            self.export()

    def requeued(self, exp_id: int, *, attempt: int, reason: str) -> None:
        """The infrastructure failed the run: pending again, as its next attempt."""
        self.write.requeue(self.campaign, exp_id, attempt=attempt, reason=reason)
        self._wrote(exp_id)

    def remeasured(self, exp_id: int, *, mean: float, runs_n: int, se: float | None, reason: str | None = None) -> None:
        self.write.update_stats(self.campaign, exp_id, mean=mean, runs_n=runs_n, se=se, reason=reason)
        self._wrote(exp_id, terminal=True)
        self.export()

    # -- the baseline -------------------------------------------------------------------------
    def baseline_running(self, previous: Experiment | None, *, attempt: int, code_hash: str, seed: int, slot: str,
                         log_path: str) -> None:
        """Experiment 0, at the campaign's base commit, running (as its ``attempt``)."""
        if previous is None:
            self.write.add_experiment(self.campaign, id=0, description="baseline", proposer="baseline", parent=None,
                                      proposal={"description": "baseline", "edits": []}, code_hash=code_hash)
            self._wrote(0)
        self.running(0, commit=self.campaign.base_commit, parent=None, diff="", code_hash=code_hash, attempt=attempt,
                     slot=slot, log_path=log_path, seed=seed)

    def baseline_finished(self, status: Status, reason: str, *, metric: float | None, metrics: Mapping[str, float],
                          warnings: Sequence[str], stats: Mapping[str, float]) -> None:
        if status is Status.INTERRUPTED:
            self.write.finish_experiment(self.campaign, 0, status=status, reason=reason)
            self._wrote(0, terminal=True)
            return
        self.finished(0, status, reason, metric=metric, metrics=metrics, warnings=warnings, stats=stats)
        self.export()

    # -- views ----------------------------------------------------------------------------------
    def export(self, full: bool = False) -> None:
        """``results.tsv``: the campaign's own, and the arena's root copy (the last campaign run)."""
        self.tsv.write(self.experiments(), full)

    def restore_refs(self, refs: Mapping[str, str | None]) -> list[str]:
        """Our refs put back where they pointed before a run moved them (engine/guard.py);
        what could not be."""
        from ..store.gitobjects import GitError

        problems = []
        for ref, sha in refs.items():
            try:
                if sha is None:
                    self.ws.refs._plain(ref)  # (a link or a folder planted at the name)
                    if self.ws.resolve(ref) is not None:
                        self.ws.delete_ref(ref)
                elif commit_present(self.ws, sha):
                    self.ws.update_ref(ref, sha, message="autoresearch: put back after tampering")
                else:
                    problems.append(f"{ref}: commit {sha} is gone from the repository (deleted by the run?); "
                                    "`autoresearch doctor` lists what the ledger knows")
            except (GitError, OSError) as e:
                problems.append(f"{ref}: could not be put back ({e})")
        return problems

    # -- ablation -------------------------------------------------------------------------------
    def ablation_variant(self, exp_id: int, commit: str) -> None:
        self.ws.update_ref(f"refs/autoresearch/{self.tag}/ablation/{exp_id}", commit,
                           message=f"autoresearch: ablation without #{exp_id}")

    def ablation_recorded(self, runs: int, rows: list[dict[str, Any]]) -> None:
        self.write.add_ablation(self.campaign, runs=runs, rows=rows)


# -- a campaign's life ----------------------------------------------------------------------------

def create_campaign(ledger: Ledger, ws: Workspace, *, tag: str, base: str, metric: str, goal: str,
                    config: Mapping[str, Any], readonly: Mapping[str, str | None]) -> Campaign:
    campaign = LedgerWriter(ledger).create_campaign(tag=tag, branch=f"autoresearch/{tag}", base_commit=base,
                                                    metric=metric, goal=goal, config=config, readonly=readonly)
    write_campaign(ws.state_dir, campaign_record(ledger, campaign))
    return campaign


def continue_campaign(ledger: Ledger, ws: Workspace, campaign: Campaign, config: Mapping[str, Any]) -> None:
    LedgerWriter(ledger).touch_campaign(campaign, config)
    write_campaign(ws.state_dir, campaign_record(ledger, campaign))


def restart_campaign(ledger: Ledger, ws: Workspace, campaign: Campaign, head: str,
                     readonly: Mapping[str, str | None], metric: str | None = None, goal: str | None = None) -> Campaign:
    """A campaign whose only experiment is a failed baseline starts again from ``head``
    (measuring ``metric`` when the config now names another)."""
    ref = branch_ref(campaign)
    if ws.resolve(ref) != head:
        ws.update_ref(ref, head, ws.resolve(ref), message="autoresearch: restart after a failed baseline")
    campaign = LedgerWriter(ledger).rebase_campaign(campaign, head, readonly, metric, goal)
    write_campaign(ws.state_dir, campaign_record(ledger, campaign))
    return campaign


def fill_records(ledger: Ledger, ws: Workspace, campaign: Campaign) -> int:
    """Recovery records for terminal experiments that have none, or an outdated one (a
    harness killed between the ledger's write and the record's, or a campaign older than
    the records). Returns how many were written."""
    log = RecoveryLog(ws.state_dir / campaign.tag / RECORDS)
    have = log.read()
    written = 0
    for e in ledger.experiments(campaign):
        old = have.get(e.id, {}).get("experiment") or {}
        if e.status.terminal and (old.get("status"), old.get("metric"), old.get("commit_sha")) != \
                (e.status.value, e.metric, e.commit):
            log.append(experiment_record(ledger, campaign, e.id))
            written += 1
    if not (ws.state_dir / campaign.tag / CAMPAIGN).is_file():
        write_campaign(ws.state_dir, campaign_record(ledger, campaign))
    return written


def restore_ledger(path: Path, state_dir: Path) -> tuple[Ledger, int, int]:
    """A new ledger at ``path`` from the recovery records under ``state_dir`` (every
    campaign's campaign.json and records.jsonl). A damaged file there is kept aside first.
    Returns the ledger and how many campaigns and experiments it holds."""
    import time as _time

    from ..store.recovery import read_campaigns

    stamp = _time.strftime("%Y%m%d-%H%M%S")
    for suffix in ("", "-wal", "-shm"):
        old = path.with_name(path.name + suffix)
        if old.exists():
            old.rename(old.with_name(f"{path.name}.damaged-{stamp}{suffix}"))
    ledger = Ledger(path)
    write = LedgerWriter(ledger)
    experiments = 0
    for row in read_campaigns(state_dir):
        write.restore("campaigns", row)
        for record in RecoveryLog(state_dir / row["tag"] / RECORDS).read().values():
            write.restore("experiments", {**record["experiment"], "campaign_id": row["id"]})
            for run in record.get("runs", []):
                write.restore("runs", {**run, "campaign_id": row["id"]})
            experiments += 1
    return ledger, len(read_campaigns(state_dir)), experiments


def set_aside(ws: Workspace, campaign: Campaign, ref: str, sha: str, experiments: list[Experiment]) -> str:
    """Keep an unknown commit reachable under ``refs/autoresearch/TAG/unrecorded/`` and put
    the ref back where the ledger says it is (the branch at its last keep; an archive ref
    the ledger does not know, removed). Loses nothing. Returns where the commit is now."""
    keep = f"refs/autoresearch/{campaign.tag}/unrecorded/{sha[:12]}"
    ws.update_ref(keep, sha, message=f"autoresearch doctor: {ref} pointed here; the ledger never recorded it")
    if ref == branch_ref(campaign):
        kept = [e for e in experiments if e.status is Status.KEEP and e.commit and ws.has_commit(e.commit)]
        target = max(kept, key=lambda e: e.id).commit if kept else campaign.base_commit
        ws.update_ref(ref, target, sha, message="autoresearch doctor: back to the ledger's last keep")  # type: ignore[arg-type]
    else:
        ws.delete_ref(ref, sha)
    return keep


@dataclass(frozen=True)
class Reconciled:
    killed_processes: int
    cleaned: list[str]
    advanced: list[int]
    archived: list[int]
    branch_created: bool


def reconcile(ledger: Ledger, ws: Workspace, campaign: Campaign) -> Reconciled:
    """Make git, the ledger and the process table agree after a harness died: leftover
    processes of runs left ``running`` are killed and those runs marked interrupted; stale
    run directories and lock files go; a ``keep`` whose branch update was lost advances the
    branch; a committed non-keep without its archive ref gets one."""
    killed = sum(ProcessTracker(-1, token).kill_all() for token in ledger.open_run_tokens(campaign))
    LedgerWriter(ledger).abandon_open_runs(campaign)
    cleaned = ws.clean_stale(campaign.tag)
    ref = branch_ref(campaign)
    tip = ws.resolve(ref)
    created = tip is None
    if tip is None:
        ws.update_ref(ref, campaign.base_commit, message="autoresearch: campaign start")
        tip = campaign.base_commit
    advanced, archived = [], []
    for exp in ledger.experiments(campaign):
        if exp.commit is None or exp.id == 0 or not exp.status.terminal or exp.status is Status.INTERRUPTED:
            continue
        if exp.status is Status.KEEP:
            if not ws.is_ancestor(exp.commit, tip) and ws.is_ancestor(tip, exp.commit):
                ws.update_ref(ref, exp.commit, tip, message=f"autoresearch: keep #{exp.id} (reconciled)")
                tip = exp.commit
                advanced.append(exp.id)
        elif ws.resolve(archive_ref(campaign.tag, exp.id)) is None and ws.has_commit(exp.commit):
            ws.update_ref(archive_ref(campaign.tag, exp.id), exp.commit,
                          message=f"autoresearch: archive #{exp.id} (reconciled)")
            archived.append(exp.id)
    fill_records(ledger, ws, campaign)
    return Reconciled(killed, cleaned, advanced, archived, created)

