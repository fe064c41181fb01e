"""Opening a campaign: arena checks, tag resolution, the campaign lock, the campaign's
row. The engine itself lives in ``campaign.py``; what a killed harness left behind is
repaired by ``journal.reconcile``."""

from __future__ import annotations

import datetime as _dt
import fcntl
import os
import shlex
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Sequence

from ..config import Config
from ..config_hints import close_paths
from ..errors import ArenaError, CampaignLockedError, ConfigError
from ..records import Status
from ..store.ledger import Campaign, Ledger
from ..store.workspace import Workspace, arena_paths
from .journal import Reconciled, continue_campaign, create_campaign, reconcile, restart_campaign

LEDGER_FILE = "ledger.sqlite"
_SHELL_WORDS = {"cd", "exec", ".", "source", "true", "false", "set", "export", "env", "time", "nice", "nohup", "timeout", "{", "("}


def default_tag(today: _dt.date, taken: set[str]) -> str:
    """A campaign name from the date (``nov27``), suffixed when that name is taken."""
    base = today.strftime("%b%d").lower()
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def check_tag(tag: str, workspace: Workspace | None = None) -> str:
    """A campaign name: letters, digits, '.', '_', '-', and acceptable to git as the branch
    ``autoresearch/TAG`` and the refs under ``refs/autoresearch/TAG/`` (git's own rules,
    asked of git). A bad ``--tag`` is a usage error (exit 2), caught before anything is written."""
    import re

    from ..errors import UsageError

    ok = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", tag) and not tag.endswith(".lock") and ".." not in tag
    if ok and workspace is not None:
        from ..store.gitobjects import git

        ok = all(git(["check-ref-format", ref], workspace.root, check=False).returncode == 0
                 for ref in (f"refs/heads/autoresearch/{tag}", f"refs/autoresearch/{tag}/discarded/1"))
    if not ok:
        raise UsageError(f"--tag {tag!r}: use letters, digits, '.', '_' and '-', starting with a letter or digit, not "
                         f"ending with '.' or '.lock', no '..' (it becomes the git branch autoresearch/{tag})")
    return tag


def command_problem(command: str, cwd: Path, path_env: str) -> str | None:
    """Why ``command`` cannot start, or None when its program can be found."""
    try:
        words = shlex.split(command)
    except ValueError as e:
        return f"the command {command!r} does not parse as a shell command ({e})"
    while words and "=" in words[0] and not words[0].startswith("="):
        words = words[1:]  # leading VAR=value assignments
    if not words or words[0] in _SHELL_WORDS:
        return None
    program = words[0]
    if "/" in program:
        target = Path(program) if os.path.isabs(program) else cwd / program
        try:
            return None if target.exists() else f"{program!r} does not exist (looked in {cwd})"
        except OSError as e:
            return f"{program!r} cannot be reached by this user ({e.strerror})"
    if shutil.which(program, path=path_env) is None:
        hint = " (on this machine it may be called python3)" if program == "python" and shutil.which("python3", path=path_env) else ""
        return f"{program!r} is not on the PATH the run gets{hint}"
    return None


class CampaignLock:
    """One live harness per campaign. ``flock`` dies with its holder, so a lock left by a
    killed harness is free again without any cleanup."""

    def __init__(self, state_dir: Path, tag: str):
        self.path = state_dir / "locks" / f"{tag}.lock"
        self.tag = tag
        self.file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise CampaignLockedError(
                f"campaign {self.tag!r} is already running ({holder}). Stop that process first, "
                f"or start a separate campaign with --tag NEW."
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        f.flush()
        self.file = f

    def release(self) -> None:
        if self.file is not None:
            fcntl.flock(self.file.fileno(), fcntl.LOCK_UN)
            self.file.close()
            self.file = None


@dataclass
class OpenCampaign:
    workspace: Workspace
    ledger: Ledger
    campaign: Campaign
    lock: CampaignLock
    created: bool

    def close(self) -> None:
        self.lock.release()
        self.ledger.close()
        self.workspace.close()

    def reconcile(self) -> Reconciled:
        """Repair what a killed harness left (crash consistency), then refuse a state of git
        the ledger never recorded (StateError: judging against it would be judging against an
        unknown incumbent)."""
        from ..errors import StateError
        from .consistency import disagreements, explain

        done = reconcile(self.ledger, self.workspace, self.campaign)
        found = disagreements(self.workspace, self.campaign, self.ledger.experiments(self.campaign))
        if found:
            raise StateError(explain(self.workspace, self.campaign, found))
        return done


def check_arena_files(workspace: Workspace, config: Config, commit: str) -> None:
    arena = config.arena
    wanted = list(arena.editable) + list(arena.readonly) + ([arena.program] if arena.program else [])
    entries = workspace.tree_entries(commit, wanted)
    missing = [p for p in wanted if entries.get(p) is None]
    if missing:
        on_disk = [p for p in missing if (workspace.arena / p).is_file()]
        hint = (f" {', '.join(on_disk)} exist(s) on disk but not in the commit: git add and commit them." if on_disk
                else " Fix the [arena] lists in the config, or create and commit the files.")
        named = close_paths(missing, arena_paths(workspace, commit)) if not on_disk else ", ".join(missing)
        raise ArenaError(f"files named in the config are not in commit {commit[:7]}: {named}.{hint}")


def refuse_bare(directory: Path) -> None:
    """A bare repository (no working tree) is not an arena: its files are git's internals."""
    from ..store.gitobjects import git

    proc = git(["rev-parse", "--is-bare-repository"], directory, check=False)
    if proc.returncode == 0 and proc.stdout.decode().strip() == "true":
        raise ArenaError(f"{directory} is a bare git repository (no working tree, no files to run): clone it "
                         f"(`git clone {directory} {directory.name.removesuffix('.git') or 'work'}`) and use the clone")


def check_data(workspace: Workspace, data: Sequence[str], eval_only: Sequence[str] = ()) -> None:
    """``[arena] data``: every path exists in the checkout, and git does not hold all of it
    (what git holds is in every run directory already); an ``eval_only`` file inside it is
    not reached through a link (the sandbox masks paths in the checkout: a file reached
    through a link to elsewhere could not be hidden from the run)."""
    from ..datafiles import covered, scan

    for pattern in eval_only:
        if not covered(pattern, data):
            continue
        parts = pattern.split("/")
        for i in range(1, len(parts)):
            here = workspace.arena.joinpath(*parts[:i])
            if here.is_symlink():
                raise ConfigError(
                    f"[arena] eval_only {pattern!r} lies under {'/'.join(parts[:i])!r}, a link to {os.path.realpath(here)}: "
                    "a file reached through a link cannot be hidden from the run. Make it a real directory in the "
                    "checkout (with links to the training files only), or keep the evaluation data outside it")

    problems = []
    head = workspace.head() if data else ""
    for rel in data:
        path = workspace.arena / rel
        if not os.path.lexists(path):
            problems.append(f"{rel!r} does not exist in the checkout ({path}): build it first (the data's "
                            "prepare script), or remove it from the list")
            continue
        files = list(scan({rel: path})) or [rel]
        if all(e is not None for e in workspace.tree_entries(head, files).values()):
            problems.append(f"{rel!r} is tracked by git: it is in every run directory already; remove it from the list")
    if problems:
        raise ConfigError("[arena] data: " + "; ".join(problems))


def not_data(workspace: Workspace, data: Sequence[str], dirty: list[str]) -> list[str]:
    """Uncommitted changes less the untracked files ``[arena] data`` names: they are meant to
    stay out of git (a tracked file changed under a data directory still counts)."""
    from ..datafiles import covered

    if not data:
        return dirty
    rel = {p: p[len(workspace.prefix):].rstrip("/") for p in dirty if p.startswith(workspace.prefix)}
    inside = [p for p in rel if covered(rel[p], data)]
    tracked = workspace.tree_entries(workspace.head(), [rel[p] for p in inside])
    return [p for p in dirty if p not in inside or tracked.get(rel[p]) is not None]


def uncommitted(workspace: Workspace, data: Sequence[str]) -> str | None:
    """The arena's uncommitted changes (data left out), named (the first 8); None where there
    are none. ``run`` refuses to start on them, and ``run --dry-run`` says so."""
    dirty = not_data(workspace, data, workspace.dirty_paths())
    return ", ".join(dirty[:8]) + (f" and {len(dirty) - 8} more" if len(dirty) > 8 else "") if dirty else None


def preflight(arena: Path, config: Config, *, allow_dirty: bool, run_env_path: str) -> Workspace:
    """Checks that need no campaign: a git repository, a clean tree, commands that exist."""
    workspace = Workspace(arena)
    workspace.ensure_excluded()
    check_data(workspace, config.arena.data, config.arena.eval_only)
    shown = None if allow_dirty else uncommitted(workspace, config.arena.data)
    if shown:
        raise ArenaError(
            f"the arena has uncommitted changes ({shown}). Experiments start from commits, so these "
            f"would be silently left out: commit or stash them, or pass --allow-dirty to run from HEAD anyway."
        )
    problem = command_problem(config.arena.run, workspace.arena, run_env_path)
    if problem is None and config.arena.eval:
        problem = command_problem(config.arena.eval, workspace.arena, run_env_path)
    if problem:
        raise ConfigError(f"cannot start the arena's command: {problem}. Fix [arena] run/eval or the PATH.")
    return workspace


def open_campaign(workspace: Workspace, config: Config, *, tag: str | None) -> OpenCampaign:
    """Find or create the campaign, take its lock, and check its files. Nothing is written
    (not even an empty ledger) before every check passed."""
    path = workspace.state_dir / LEDGER_FILE
    ledger = _open_ledger(path) if path.exists() else None
    try:
        if tag is None:
            latest = ledger.latest_campaign() if ledger is not None else None
            taken = {c.tag for c in ledger.campaigns()} if ledger is not None else set()
            tag = latest.tag if latest else default_tag(_dt.date.today(), taken)
        check_tag(tag, workspace)
        lock = CampaignLock(workspace.state_dir, tag)
        lock.acquire()
    except BaseException:
        if ledger is not None:
            ledger.close()
        raise
    try:
        campaign = ledger.campaign(tag) if ledger is not None else None
        if campaign is None:
            ledger = _new_campaign(workspace, config, tag, ledger, path)
            campaign = ledger.campaign(tag)
            assert campaign is not None
            return OpenCampaign(workspace, ledger, campaign, lock, True)
        assert ledger is not None
        measured = (config.metric.name, config.metric.goal.value)
        if (campaign.metric, campaign.goal) != measured and not _only_a_failed_baseline(ledger, campaign):
            raise ConfigError(
                f"campaign {tag!r} measures {campaign.metric} ({campaign.goal}) but the config now says "
                f"{config.metric.name} ({config.metric.goal.value}); start a new campaign with --tag NEW"
            )
        campaign = _maybe_rebase(workspace, ledger, campaign, config)
        check_arena_files(workspace, config, campaign.base_commit)
        continue_campaign(ledger, workspace, campaign, config.model_dump(mode="json"))
        campaign = ledger.campaign(tag) or campaign  # with the settings just recorded (this run's overrides)
        return OpenCampaign(workspace, ledger, campaign, lock, False)
    except BaseException:
        lock.release()
        if ledger is not None:
            ledger.close()
        raise


def _open_ledger(path: Path) -> Ledger:
    """The arena's ledger for a campaign to run: refused when SQLite finds it damaged."""
    from ..store.ledger import damaged, integrity

    ledger = Ledger(path)
    problems = integrity(ledger)
    if problems:
        ledger.close()
        raise damaged(path, "; ".join(problems))
    return ledger


def _new_campaign(workspace: Workspace, config: Config, tag: str, ledger: Ledger | None, path: Path) -> Ledger:
    """Checks, then the campaign's row (and the ledger, when this is the arena's first)."""
    from ..errors import StateError

    branch = f"autoresearch/{tag}"
    if workspace.resolve(f"refs/heads/{branch}") is not None:
        if (workspace.state_dir / tag / "campaign.json").is_file():
            raise StateError(
                f"branch {branch} and the recovery records of campaign {tag!r} exist, but the ledger has no such "
                f"campaign: the ledger was lost or replaced. `autoresearch doctor {workspace.arena} --repair` rebuilds "
                "it from the records; nothing was run.")
        raise ArenaError(
            f"branch {branch} exists but this arena's ledger has no campaign {tag!r}. "
            f"Choose another --tag, or delete the branch (git branch -D {branch})."
        )
    base = workspace.head()
    check_arena_files(workspace, config, base)
    ledger = ledger if ledger is not None else Ledger(path)
    create_campaign(ledger, workspace, tag=tag, base=base, metric=config.metric.name, goal=config.metric.goal.value,
                    config=config.model_dump(mode="json"), readonly=workspace.tree_blobs(base, config.arena.readonly))
    return ledger


def _only_a_failed_baseline(ledger: Ledger, campaign: Campaign) -> bool:
    experiments = ledger.experiments(campaign)
    return len(experiments) == 1 and experiments[0].id == 0 and \
        experiments[0].status not in (Status.KEEP, Status.INTERRUPTED)


def _maybe_rebase(workspace: Workspace, ledger: Ledger, campaign: Campaign, config: Config) -> Campaign:
    """A campaign whose baseline failed and that has nothing else restarts from the current
    HEAD, and with the metric the config now names, so "fix, commit, run again" works
    without inventing a new tag."""
    if not _only_a_failed_baseline(ledger, campaign):
        return campaign
    head = workspace.head()
    measured = (config.metric.name, config.metric.goal.value)
    if head == campaign.base_commit and (campaign.metric, campaign.goal) == measured:
        return campaign
    check_arena_files(workspace, config, head)
    return restart_campaign(ledger, workspace, campaign, head, workspace.tree_blobs(head, config.arena.readonly),
                            *measured)
