"""The command line: ``autoresearch init | run | status | report | ablate | dashboard``.
It parses and prints; the wiring of concrete proposer, runner and judge classes is in
``api.py`` and the registries."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Any, Iterator, List, Optional

import typer
from rich.console import Console
from rich.markup import escape

from .seeds import seed_overrides
from . import __version__
from .cli_views import print_dry_run, print_status, print_summary
from .config import parse_override
from .console import print_whole, safe, stamp
from .errors import AutoresearchError, ForcedStop, UsageError
from .helptext import PlainHelpGroup
from .records import Goal

app = typer.Typer(
    name="autoresearch",
    cls=PlainHelpGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"autoresearch {__version__}")
        raise typer.Exit()


DEBUG = {"on": False}


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
          debug: bool = typer.Option(False, "--debug", help="Show a traceback for errors of the machine (a path, a disk, the ledger).")) -> None:
    """An unattended research loop on a git repository (an "arena"): propose a change, run it
    under a time budget, keep it only if the metric improved.

    \b
    Quick start, in a repository whose training script prints its metric:
      autoresearch init .       # reads script, metric, knobs: review its config
      git add autoresearch.toml program.md && git commit -m autoresearch
      autoresearch run . --max-experiments 20
      autoresearch status .
    The bundled example (a tiny GPT, CPU, no API key):
      autoresearch init --example tiny-gpt demo && autoresearch run demo

    Each command's options: autoresearch COMMAND --help.
    """
    DEBUG["on"] = debug


# -- init ----------------------------------------------------------------------------------

@app.command()
def init(
    directory: Path = typer.Argument(..., help="Directory to turn into an arena (created if missing)."),
    example: Optional[str] = typer.Option(None, "--example", "-e", help="Copy a bundled arena: " + ", ".join(
        __import__("autoresearch.arenas", fromlist=["EXAMPLES"]).EXAMPLES)),
) -> None:
    """Scaffold an arena: a git repository with autoresearch.toml and program.md.

    With --example NAME the bundled arena's files are copied in. A new repository gets a first
    commit; in an existing repository with history, the new files are left for you to commit.
    """
    from .scaffold import init_arena

    for line in init_arena(directory, example):
        console.print(line, markup=False)


# -- run -----------------------------------------------------------------------------------

def _overrides(
    *, time_budget: float | None, timeout: float | None, run_cmd: str | None, eval_cmd: str | None,
    metric: str | None, goal: str | None, judge: str | None, proposer: str | None, seed: int | None,
    editable: list[str] | None, readonly: list[str] | None, slots: str | None, runner: str | None,
    sets: list[str] | None, provider: str | None = None, model: str | None = None, base_url: str | None = None,
    mode: str | None = None, agent_cmd: str | None = None, ray_address: str | None = None,
) -> dict[str, Any]:
    o: dict[str, Any] = {}
    pairs = {
        "arena.time_budget_s": time_budget, "arena.timeout_s": timeout, "arena.run": run_cmd, "arena.eval": eval_cmd,
        "metric.name": metric, "metric.goal": goal, "judge.policy": judge, "proposer.kind": proposer,
        "arena.editable": editable or None, "arena.readonly": readonly or None,
        "runner.slots": _slots_value(slots), "runner.kind": runner,
        "proposer.llm.provider": provider, "proposer.llm.model": model, "proposer.llm.base_url": base_url,
        "proposer.llm.mode": mode, "proposer.agent.command": agent_cmd, "runner.ray.address": ray_address,
    }
    o.update({k: v for k, v in pairs.items() if v is not None})
    if seed is not None:
        o.update(seed_overrides(seed))
    for text in sets or []:
        key, value = parse_override(text)
        o[key] = value
    return o


def _slots_value(text: str | None) -> int | list[str] | None:
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isdigit() else [s.strip() for s in text.split(",")]


@app.command()
def run(
    arena: Path = typer.Argument(Path("."), help="The arena directory (a git repository with a training script)."),
    tag: Optional[str] = typer.Option(None, "--tag", "-t", help="Campaign name; branch autoresearch/TAG. Default: the arena's latest campaign, or today's date (e.g. nov27)."),
    proposer: Optional[str] = typer.Option(None, "--proposer", "-p", help="Who proposes changes: knobs (default) | llm | hybrid | agent | scripted."),
    proposals: Optional[Path] = typer.Option(None, "--proposals", help="Scripted proposer: YAML/JSON list of {description, edits: [{path, search, replace}]}."),
    sampler: Optional[str] = typer.Option(None, "--sampler", help="Knobs proposer (the default): auto | tpe | cmaes | gp | random."),
    max_experiments: Optional[int] = typer.Option(None, "--max-experiments", "-n", min=1, help="Stop after N experiments in total (baseline and invalid ones included)."),
    max_hours: Optional[float] = typer.Option(None, "--max-hours", min=0.0, help="Start nothing new after H hours."),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", help="Seconds each run may train (AUTORESEARCH_TIME_BUDGET)."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Hard kill of a run after S seconds (default 2 x budget + 60)."),
    allow_dirty: bool = typer.Option(False, "--allow-dirty", help="Run although the arena has uncommitted changes (they are left out)."),
    judge: Optional[str] = typer.Option(None, "--judge", help="Keep/discard policy: confirm (default: noise-calibrated, repeated runs) | greedy (keep if strictly better)."),
    run_cmd: Optional[str] = typer.Option(None, "--run-cmd", help="Override arena.run (the run command)."),
    eval_cmd: Optional[str] = typer.Option(None, "--eval-cmd", help="Override arena.eval (when set, only its result counts)."),
    metric: Optional[str] = typer.Option(None, "--metric", help="Override metric.name."),
    goal: Optional[str] = typer.Option(None, "--goal", help="minimize | maximize."),
    seed: Optional[int] = typer.Option(None, "--seed", envvar="AUTORESEARCH_SEED", help="The campaign's seed (runs and proposers); a new campaign without one gets a random seed, printed and recorded."),
    editable: Optional[List[str]] = typer.Option(None, "--editable", help="Override arena.editable (repeatable)."),
    readonly: Optional[List[str]] = typer.Option(None, "--readonly", help="Override arena.readonly (repeatable)."),
    slots: Optional[str] = typer.Option(None, "--slots", help="Concurrent experiments: a number (N CPU slots sharing the cores) or descriptors, e.g. cuda:0,cuda:1 or cpu:4,cpu:4."),
    runner: Optional[str] = typer.Option(None, "--runner", help="local | ray (experiments as tasks on a Ray cluster)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="[runner.ray] address: auto | local | HOST:PORT | ray://HOST:PORT."),
    provider: Optional[str] = typer.Option(None, "--provider", help="LLM provider: openai (any OpenAI-compatible server) | anthropic."),
    model: Optional[str] = typer.Option(None, "--model", help="LLM model name ([proposer.llm] model)."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server URL, e.g. http://127.0.0.1:8080/v1."),
    mode: Optional[str] = typer.Option(None, "--mode", help="LLM reply mode: edits (SEARCH/REPLACE) | knobs (JSON values, for small models)."),
    agent_cmd: Optional[str] = typer.Option(None, "--agent-cmd", help="Coding-agent command template for --proposer agent; {prompt} / {prompt_file} are filled in."),
    sets: Optional[List[str]] = typer.Option(None, "--set", help="Override any config key: --set arena.time_budget_s=30 (repeatable)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the effective config and where it came from, then exit."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write the report (HTML, markdown) and the progress chart when the campaign ends."),
) -> None:
    """Run (or continue) a research campaign until a budget, Ctrl-C, or the proposer stops it.

    First the baseline, then proposals one by one: each is applied to the incumbent, checked,
    committed, run in its own directory under .autoresearch/, measured and judged. Kept changes
    advance branch autoresearch/TAG; others stay reachable under refs/autoresearch/TAG/discarded/.
    Results: .autoresearch/ledger.sqlite (the truth), results.tsv (a view); at the end the
    report (.autoresearch/TAG/report.html, report.md) and the chart (progress.png).
    """
    arena = arena.resolve()
    if not arena.is_dir():
        raise UsageError(f"{arena} is not a directory")
    proposer = proposer or ("scripted" if proposals is not None else None)  # a proposals file means: replay it
    overrides = _overrides(
        time_budget=time_budget, timeout=timeout, run_cmd=run_cmd, eval_cmd=eval_cmd, metric=metric, goal=goal,
        judge=judge, proposer=proposer, seed=seed, editable=editable, readonly=readonly, slots=slots, runner=runner,
        sets=sets, provider=provider, model=model, base_url=base_url, mode=mode, agent_cmd=agent_cmd,
        ray_address=ray_address,
    )
    if sampler is not None:
        overrides["proposer.knobs.sampler"] = sampler
    if dry_run:
        return _dry_run(arena, tag, overrides, allow_dirty)
    _run_watched(arena, dict(tag=tag, overrides=overrides, proposer_kind=proposer, proposals=proposals,
                             max_experiments=max_experiments, max_hours=max_hours, allow_dirty=allow_dirty,
                             new_seed=True),
                 write_report=not no_report)


def _dry_run(arena: Path, tag: Optional[str], overrides: dict, allow_dirty: bool = False) -> None:
    """``run --dry-run``: exit 1 where ``run`` would refuse to start (said as an error)."""
    from .campaign_config import run_config

    if not print_dry_run(console, err_console, arena, run_config(arena, tag, overrides), overrides, tag, allow_dirty):
        raise typer.Exit(1)


class _Watch:
    """What a person sees while ``run`` works: a live view on a terminal, plain lines when
    stdout is a file, a pipe, CI or nohup; and what Ctrl-C / SIGTERM do."""

    def __init__(self, max_experiments: int | None = None, max_hours: float | None = None) -> None:
        import time

        from .console import ConsoleReporter, LiveReporter
        from .events import Limits, StopSignal

        self.stop = StopSignal()
        limits = Limits(max_experiments, time.time() + max_hours * 3600 if max_hours is not None else None)
        if console.is_terminal:  # words wrap at the terminal's width, never mid-word
            console.soft_wrap = err_console.soft_wrap = False
        self.live = LiveReporter(console, "metric", 0.0, limits=limits) if console.is_terminal else None
        self.lines = self.live.lines if self.live is not None else ConsoleReporter(console, "metric", limits=limits)
        self.report = self.live if self.live is not None else self.lines

    def on_signal(self, signum: int, frame: Any) -> None:
        if self.stop.event.is_set() and signum == signal.SIGINT:
            raise ForcedStop("stopped at once by a second Ctrl-C; the running experiment is re-run on resume")
        self.stop.set(signum)
        err_console.print(f"[yellow]stopping ({signal.Signals(signum).name}): the running experiment is stopped "
                          "and recorded as interrupted[/]")

    def on_open(self, oc: Any, loaded: Any, rec: Any) -> None:
        from .store.workspace import commits_not_in

        c, config = oc.campaign, loaded.config
        verb = "starting" if oc.created else "continuing"
        console.print(f"{stamp(console)}[bold]{verb} campaign {c.tag}[/] on branch {c.branch} from {c.base_commit[:7]} "
                      f"({config.metric.name}, {config.metric.goal.value}; config: {loaded.source})")
        notes = list(getattr(loaded, "notes", ()))
        ahead = 0 if oc.created else commits_not_in(oc.workspace, f"refs/heads/{c.branch}")
        if ahead:  # a fix committed after the campaign started is not in it (a newcomer's trial expected it)
            notes.append(f"your checkout's HEAD has {ahead} commit(s) that campaign {c.tag}'s branch lacks: the campaign "
                         f"goes on from its own branch without them; to try them, start a new campaign from HEAD "
                         "with --tag NEW")
        for note in notes:
            console.print(f"{stamp(console)}[dim]{escape(note)}[/]")
        if rec.killed_processes or rec.advanced or rec.archived or rec.cleaned:
            console.print(f"{stamp(console)}[dim]resumed: killed {rec.killed_processes} leftover process(es), cleaned {len(rec.cleaned)} "
                          f"stale item(s), advanced the branch for {rec.advanced or 'none'}, archived {rec.archived or 'none'}[/]")
        self.lines.opened(config.metric.name, config.metric.goal, config.arena.time_budget_s, oc.ledger.experiments(c))


def _run_watched(arena: Path, options: dict[str, Any], write_report: bool = True) -> None:
    from .api import run_campaign

    watch = _Watch(options.get("max_experiments"), options.get("max_hours"))
    previous = {s: signal.signal(s, watch.on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if watch.live is not None:
            watch.live.__enter__()
        outcome, oc = run_campaign(arena, stop=watch.stop, report=watch.report, on_open=watch.on_open, **options)
    finally:
        if watch.live is not None:
            watch.live.__exit__(None, None, None)
        for s, h in previous.items():
            signal.signal(s, h)
    print_summary(console, arena, oc.campaign.tag)
    console.print(f"{stamp(console)}[bold]done:[/] {safe(outcome.reason)}")
    if write_report:  # never changes the outcome or the exit code (report/write.py)
        from .report.write import write_and_tell

        write_and_tell(arena, oc.campaign.tag, lambda line: console.print(line, markup=False, soft_wrap=True),
                       lambda line: err_console.print(line, markup=False, soft_wrap=True, style="yellow"))
    if outcome.exit_code:
        raise typer.Exit(outcome.exit_code)


@app.command()
def knobs(
    arena: Path = typer.Argument(Path("."), help="The arena directory."),
    tag: Optional[str] = typer.Option(None, "--tag", "-t", help="Read a campaign's tip (branch autoresearch/TAG) instead of HEAD."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable: a list of {name, file, line, value, kind, space, frozen}."),
    sets: Optional[List[str]] = typer.Option(None, "--set", help="Override a config key, as for run: --set 'proposer.knobs.freeze=[\"LR\"]' (repeatable)."),
) -> None:
    """List what the knobs proposer tunes: every literal found in the editable files (module
    constants, config files, argparse defaults, dataclass fields, YAML/JSON/TOML leaves), with
    its file and line, its value and search space in its own units, or why it is frozen."""
    from .knobs_view import differs_on_disk, knobs_config, print_table, rows, survey

    arena = arena.resolve()
    if not arena.is_dir():
        raise UsageError(f"{arena} is not a directory")
    overrides: dict[str, Any] = {}
    for text in sets or []:
        key, value = parse_override(text)
        overrides[key] = value
    loaded = knobs_config(arena, tag, overrides)
    where, found, spaces = survey(arena, loaded.config, tag)
    if as_json:
        sys.stdout.write(json.dumps(rows(found, spaces), indent=2) + "\n")
        return
    print_table(console, where, found, spaces, list(loaded.config.proposer.knobs.constraints),
                differs_on_disk(arena, found) if tag is None else [])


# -- status --------------------------------------------------------------------------------

@app.command()
def status(
    arena: Path = typer.Argument(Path("."), help="The arena directory."),
    tag: Optional[str] = typer.Option(None, "--tag", "-t", help="Campaign name (default: the latest)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable: {campaign, experiments: [...]}."),
    last: int = typer.Option(15, "--last", min=1, help="How many recent experiments the table shows."),
) -> None:
    """Show a campaign: counts by status, the best result and its commit, the last experiments."""
    from .status import campaign_status, open_ledger_readonly

    ledger, campaign = open_ledger_readonly(arena.resolve(), tag)
    try:
        data = campaign_status(ledger, campaign, arena.resolve())
    finally:
        ledger.close()
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        return
    print_status(console, data, last)


# -- report --------------------------------------------------------------------------------

@app.command()
def report(
    arena: Path = typer.Argument(Path("."), help="The arena directory."),
    tag: Optional[str] = typer.Option(None, "--tag", "-t", help="Campaign name (default: the latest)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where to write the report (default: .autoresearch/TAG/report.html, and report.md beside it; --format md without --out: stdout)."),
    fmt: str = typer.Option("html", "--format", help="html (one self-contained file) | md (for a pull request)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also write karpathy's progress chart (PNG) to this file."),
) -> None:
    """Write the campaign's report: summary (best vs baseline with its interval, crash rate,
    wall time, duty cycle, tokens and money), the progress chart, the net diff from the base
    commit to the incumbent, parameter importance and each knob against the metric, a
    timeline of the slots, the chain of kept changes with effect sizes, and every experiment
    with its reason, diff and log tail. `run` writes it (and report.md, progress.png) when
    a campaign ends."""
    from .report.data import report_data
    from .report.html import report_html
    from .report.markdown import report_markdown
    from .report.plot import kept_title, write_progress_png
    from .status import open_ledger_readonly

    if fmt not in ("html", "md"):
        raise UsageError(f"--format {fmt!r}: choose html or md")
    arena = arena.resolve()
    ledger, campaign = open_ledger_readonly(arena, tag)
    try:
        data = report_data(ledger, campaign, arena)
        exps = ledger.experiments(campaign) if plot is not None else []
    finally:
        ledger.close()
    if plot is not None:
        with _writing("--plot", plot):
            pts = write_progress_png(exps, campaign.metric, Goal(campaign.goal), plot)
        console.print(f"wrote {plot} ({kept_title(pts['total'], len(pts['kept']))})")
    if fmt == "md":
        text = report_markdown(data)
        if out is None:
            sys.stdout.write(text)
            return
    else:
        text = report_html(data)
    target = out if out is not None else arena / ".autoresearch" / campaign.tag / "report.html"
    with _writing("--out" if out is not None else "the report", target):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        if out is None and fmt == "html":  # run's report.md beside it, kept in step (a trial pasted a stale one)
            (target.parent / "report.md").write_text(report_markdown(data), encoding="utf-8")
    s = data["summary"]
    best = f"{s['best']['metric']:.6g}" if s["best"] else "-"
    also = " and report.md beside it" if out is None and fmt == "html" else ""
    console.print(f"wrote {target}{also} ({s['experiments']} experiments, best {best})", markup=False)


@contextlib.contextmanager
def _writing(flag: str, path: Path) -> Iterator[None]:
    """A file the user named on the command line cannot be written: a usage error (exit 2)
    that names the flag and the path."""
    try:
        yield
    except OSError as e:
        if not flag.startswith("--"):
            raise
        raise UsageError(f"{flag} {path}: cannot write it ({e.strerror}); choose a path you can write") from None


@app.command()
def ablate(
    arena: Path = typer.Argument(Path("."), help="The arena directory."),
    tag: Optional[str] = typer.Option(None, "--tag", "-t", help="Campaign name (default: the latest)."),
    runs: int = typer.Option(3, "--runs", min=1, help="Runs (fresh seeds) per variant."),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", help="Seconds each run may train (default: the campaign's)."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Hard kill of a run after S seconds (default: the campaign's)."),
    sets: Optional[List[str]] = typer.Option(None, "--set", help="Override a config key, e.g. --set runner.slots=4."),
    net: bool = typer.Option(False, "--net", help="Only the final incumbent against the baseline: does the campaign's improvement hold on fresh seeds?"),
) -> None:
    """Which kept changes matter? Re-measure the final incumbent with each kept change reverted
    (leave-one-out), next to the full incumbent and the baseline, with fresh seeds; verdict per
    change: essential / neutral / harmful (a paired t-test at the judge's alpha).

    The runs use the campaign's settings (those it started with, command-line overrides
    included); options given here override them for this ablation only."""
    from .ablate import run_ablation
    from .campaign_config import campaign_config
    from .cli_ablate import AblationStop, ablation_table, net_line
    from .status import open_ledger_readonly

    arena = arena.resolve()
    overrides = _overrides(
        time_budget=time_budget, timeout=timeout, run_cmd=None, eval_cmd=None, metric=None, goal=None, judge=None,
        proposer=None, seed=None, editable=None, readonly=None, slots=None, runner=None, sets=sets)
    ledger, campaign = open_ledger_readonly(arena, tag, readonly=False)
    stop = AblationStop(err_console)
    previous = {s: signal.signal(s, stop.on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        loaded = campaign_config(arena, campaign, overrides, topics=("arena", "metric", "judge", "runner"))
        a = loaded.config.arena
        console.print(f"ablation of campaign {campaign.tag}: {runs} run(s) per variant, fresh seeds; time budget "
                      f"{a.time_budget_s:g} s per run ({loaded.origin('arena.time_budget_s')}), timeout "
                      f"{a.hard_timeout_s:g} s", markup=False)
        for note in loaded.notes:
            console.print(f"note: {note}", markup=False)
        result = run_ablation(arena, ledger, campaign, loaded.config, runs=runs, stop=stop.event, net_only=net,
                              report=lambda line: console.print("  " + line, markup=False))
    finally:
        ledger.close()
        for s, h in previous.items():
            signal.signal(s, h)
    if not result.kept:
        console.print(f"nothing to ablate: campaign {campaign.tag} kept no change besides the baseline; nothing was run",
                      markup=False)
        return
    print_whole(console, ablation_table(result.rows, campaign))
    console.print(net_line(result.rows, campaign, runs), markup=False)
    if result.interrupted:
        err_console.print(
            f"interrupted ({stop.name}): {result.finished} of {result.planned} runs finished (shown above); the "
            "ablation was not recorded in the ledger (the report keeps the previous one, if any); the variants' "
            f"commits stay under refs/autoresearch/{campaign.tag}/ablation/. Run `autoresearch ablate` again to "
            "measure it all.", markup=False)
        raise typer.Exit(stop.exit_code)


@app.command()
def doctor(
    arena: Path = typer.Argument(Path("."), help="The arena directory."),
    repair: bool = typer.Option(False, "--repair", help="Restore a consistent state (loses nothing git or the ledger holds)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable: {healthy, findings: [{level, what, fix}]}."),
) -> None:
    """Check the harness's own state: the ledger (integrity, JSON), the ledger against git
    (branch, archive refs), the recovery records, stale locks, the config, git settings that
    run programs. Exit 0 when healthy (or repaired), 1 when problems remain. Refuses while a
    harness runs a campaign of the arena."""
    from .doctor import as_json as findings_json
    from .doctor import diagnose

    findings = diagnose(arena.resolve(), repair=repair)
    if as_json:
        sys.stdout.write(json.dumps(findings_json(findings), indent=2) + "\n")
    else:
        style = {"problem": "red", "warning": "yellow", "repaired": "green", "ok": "green"}
        for f in findings:
            console.print(f"[{style[f.level]}]{f.level}:[/] {escape(f.what)}")
            if f.fix:
                console.print(f"  [dim]fix: {escape(f.fix)}[/]")
    if any(f.level == "problem" for f in findings):
        raise typer.Exit(1)


@app.command()
def dashboard(
    arena: Path = typer.Argument(Path("."), help="The arena directory."),
    tag: Optional[str] = typer.Option(None, "--tag", "-t", help="Campaign name (default: the latest)."),
    port: int = typer.Option(8765, "--port", "-p", help="Port (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but loopback needs --allow-remote."),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Serve on a non-loopback address (no authentication!)."),
    refresh: float = typer.Option(2.0, "--refresh", min=0.2, help="Seconds between live updates of the page."),
) -> None:
    """Serve the report live on a local web server: it reads the ledger, so it can run next to
    `autoresearch run` and shows each experiment as it finishes. Ctrl-C stops it."""
    from .report.dashboard import Dashboard

    arena = arena.resolve()
    try:
        dash = Dashboard(arena, tag, host=host, port=port, refresh_ms=int(refresh * 1000), allow_remote=allow_remote)
    except OSError as e:
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror}; choose another --port") from None
    console.print(f"dashboard on {dash.url} (Ctrl-C to stop)", markup=False)
    sys.stdout.flush()
    try:
        dash.serve_forever()
    except KeyboardInterrupt:
        pass


def main() -> None:
    # Standalone mode: the command-line parser reports usage errors itself (exit 2).
    from .errors import environment_error

    try:
        app()
    except AutoresearchError as e:
        err_console.print(f"error: {e}", markup=False)
        sys.exit(e.exit_code)
    except Exception as e:
        message = environment_error(e)
        if message is None or DEBUG["on"]:
            raise
        err_console.print(f"error: {message}", markup=False)
        sys.exit(1)
