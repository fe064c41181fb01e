"""Run a campaign from Python: the wiring the CLI uses, without the terminal. The one place
(with the proposer and judge registries) that knows concrete classes."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from .campaign_config import find_campaign, run_config
from .seeds import names_a_seed, random_seed, seed_note, seed_overrides
from .config import Config, LoadedConfig
from .engine import CampaignEngine
from .engine.journal import Reconciled
from .engine.opening import OpenCampaign, open_campaign, preflight, refuse_bare
from .events import Event, EventKind, Limits, Outcome, Reporter, StopSignal
from .judge import make_judge
from .protocols import Proposer, Runner
from .proposers import make_proposer
from .runs.spec import child_env, run_settings, venv_first
from .store.workspace import Workspace

__all__ = ["run_campaign", "make_runner", "check_built", "Event", "Outcome", "StopSignal"]


def check_built(config: Config) -> None:
    """What the config asks for is installed (before anything is recorded)."""
    if config.runner.kind == "ray":
        from .runners.ray import require_ray

        require_ray()
    elif config.runner.sandbox == "bwrap":  # on a cluster, each node checks its own bwrap
        from .runners.sandbox import require_bwrap

        require_bwrap()
    if config.tracking.mlflow:
        from .tracking import require_mlflow

        require_mlflow()


def make_runner(config: Config, workspace: Workspace) -> Runner:
    """The runner ``[runner] kind`` names (connecting to the Ray cluster for "ray")."""
    if config.runner.kind == "ray":
        from .runners.ray import RayRunner

        return RayRunner(config.runner.ray, workspace)
    from .runners.local import LocalRunner

    return LocalRunner()


def run_campaign(
    arena: Path,
    *,
    tag: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    proposer_kind: str | None = None,
    proposals: Path | None = None,
    proposer: Proposer | None = None,
    runner: Runner | None = None,
    max_experiments: int | None = None,
    max_hours: float | None = None,
    allow_dirty: bool = False,
    stop: StopSignal | None = None,
    report: Reporter | None = None,
    on_open: Callable[[OpenCampaign, LoadedConfig, Reconciled], None] | None = None,
    new_seed: bool = False,
) -> tuple[Outcome, OpenCampaign]:
    """Open (or continue) a campaign and run it until a limit, a stop, or exhaustion.

    Checks come first, in the order a user fixes them: config, the arena (git, clean tree,
    commands), the proposer, then the campaign (lock, files). Returns the outcome and the
    closed campaign handle (its ledger is closed; reopen to read).
    """
    arena = arena.resolve()
    refuse_bare(arena)
    loaded = _settings(arena, tag, overrides, new_seed)
    config = loaded.config
    check_built(config)
    judge = make_judge(config.judge)
    settings = run_settings(config)
    run_path = venv_first(child_env(os.environ, settings.env_allow, {}), settings.venv).get("PATH", "")
    workspace = preflight(arena, config, allow_dirty=allow_dirty, run_env_path=run_path)
    if proposer is None:
        options = {"proposals": proposals.resolve()} if proposals is not None else {}
        proposer = make_proposer(proposer_kind, config, arena, options)
    if runner is None:
        runner = make_runner(config, workspace)
    oc = open_campaign(workspace, config, tag=tag)
    try:
        rec = oc.reconcile()
        if on_open is not None:
            on_open(oc, loaded, rec)
        shown = report or (lambda e: None)
        for line in getattr(runner, "describe", lambda: [])():
            shown(Event(EventKind.NOTE, detail=line))
        exporter = _mlflow(config, oc, shown)
        engine = CampaignEngine(
            oc, config, proposer=proposer, runner=runner, judge=judge, settings=settings,
            limits=Limits(max_experiments=max_experiments,
                          deadline=time.time() + max_hours * 3600 if max_hours is not None else None),
            stop=stop, report=_with_export(report, exporter) if exporter is not None else report,
        )
        try:
            return engine.run(), oc
        finally:
            if exporter is not None:
                exporter.close()
    finally:
        oc.close()


def _settings(arena: Path, tag: str | None, overrides: Mapping[str, Any] | None, new_seed: bool) -> Any:
    """The campaign's settings: a continued campaign keeps its recorded ones; a new one that
    names no seed gets a random seed when ``new_seed`` (seeds.py), recorded with them."""
    loaded = run_config(arena, tag, overrides)
    campaign, failed_baseline = find_campaign(arena, tag)
    new = campaign is None or failed_baseline  # not an existing campaign whose recorded config no longer loads
    if new_seed and new and not names_a_seed(loaded.raw, overrides or {}):
        seed = random_seed()
        loaded = run_config(arena, tag, {**(overrides or {}), **seed_overrides(seed)})
        loaded = dataclasses.replace(loaded, notes=(*loaded.notes, seed_note(seed, chosen=True,
                                                                             restarted=campaign is not None)))
    return loaded


def _mlflow(config: Config, oc: OpenCampaign, shown: Reporter) -> Any:
    if not config.tracking.mlflow:
        return None
    from .tracking import MlflowExporter

    return MlflowExporter(oc.ledger.path, oc.campaign.tag, uri=config.tracking.uri, experiment=config.tracking.experiment,
                          note=lambda text: shown(Event(EventKind.NOTE, detail=text))).start()


def _with_export(report: Reporter | None, exporter: Any) -> Reporter:
    def both(event: Event) -> None:
        if report is not None:
            report(event)
        if event.kind == EventKind.FINISH and event.experiment_id is not None and event.status is not None \
                and event.status.value != "interrupted":
            exporter.submit(event.experiment_id)
    return both
