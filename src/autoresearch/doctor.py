"""``autoresearch doctor``: is the harness's own state sound, and if not, the way back.

Checks the ledger (SQLite's integrity check, the schema, every JSON column), the ledger
against git in both directions (the branch and the archive refs against what the ledger
kept and archived), the recovery records, stale lock files of our refs, run directories
left by older versions as git worktrees, the config, and git settings that make git run
programs (fsmonitor, filter drivers, includes). ``--repair`` restores a consistent state
without losing anything git or the ledger still holds: a damaged or lost ledger is rebuilt
from the recovery records (the damaged file kept aside), commits the ledger never recorded
stay reachable under ``refs/autoresearch/TAG/unrecorded/``, stale locks go. It takes every
campaign's lock, so it refuses while a harness is running.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from .engine import journal
from .engine.consistency import disagreements
from .engine.opening import LEDGER_FILE, CampaignLock
from .errors import AutoresearchError, CampaignLockedError
from .store.gitobjects import git
from .store.ledger import Ledger, integrity
from .store.ledger_watch import foreign_objects
from .store.recovery import RECORDS, RecoveryLog, read_campaigns
from .store.workspace import Workspace


@dataclass(frozen=True)
class Finding:
    level: str      # "problem" (exit 1 while it remains) | "warning" | "repaired" | "ok"
    what: str
    fix: str = ""


class Doctor:
    def __init__(self, arena: Path, *, repair: bool):
        self.ws = Workspace(arena)
        self.repair = repair
        self.findings: list[Finding] = []
        self.path = self.ws.state_dir / LEDGER_FILE

    def add(self, level: str, what: str, fix: str = "") -> None:
        self.findings.append(Finding(level, what, fix))

    def run(self) -> list[Finding]:
        try:
            with self._locks():
                self._config()
                ledger = self._ledger()
                if ledger is not None:
                    try:
                        for campaign in ledger.campaigns():
                            ledger = self._campaign(ledger, campaign.tag)
                    finally:
                        ledger.close()
                self._stale()
                self._git_settings()
        except CampaignLockedError as e:
            self.add("problem", str(e), "stop that harness (Ctrl-C, or let it finish), then run doctor again")
        finally:
            self.ws.close()
        if not any(f.level == "problem" for f in self.findings):
            self.add("ok", "the harness's state is consistent" + (" (after the repairs above)" if any(
                f.level == "repaired" for f in self.findings) else ""))
        return self.findings

    @contextlib.contextmanager
    def _locks(self) -> Iterator[None]:
        """Every campaign's lock: no harness may run while doctor reads or repairs."""
        tags = {row["tag"] for row in read_campaigns(self.ws.state_dir)}
        locks_dir = self.ws.state_dir / "locks"
        if locks_dir.is_dir():
            tags |= {p.stem for p in locks_dir.glob("*.lock")}
        held = []
        try:
            for tag in sorted(tags):
                lock = CampaignLock(self.ws.state_dir, tag)
                lock.acquire()
                held.append(lock)
            yield
        finally:
            for lock in held:
                lock.release()

    def _config(self) -> None:
        from .config import load_config

        try:
            load_config(self.ws.arena)
        except AutoresearchError as e:
            from .config import CONFIG_FILE

            py = self.ws.arena / "pyproject.toml"
            there = CONFIG_FILE if (self.ws.arena / CONFIG_FILE).is_file() else "pyproject.toml [tool.autoresearch]" \
                if py.is_file() and "[tool.autoresearch" in py.read_text(encoding="utf-8", errors="replace") else None
            self.add("problem", f"the config does not load: {e}",
                     f"fix {there} (the message says where)" if there else f"write one: `autoresearch init {self.ws.arena}`")

    # -- the ledger ----------------------------------------------------------------------------
    def _ledger(self) -> Ledger | None:
        records = read_campaigns(self.ws.state_dir)
        if not self.path.exists():
            if not records:
                return None  # no campaign has run here
            return self._rebuild("the ledger is missing")
        try:
            ledger = Ledger(self.path, readonly=not self.repair)
            problems = integrity(ledger, full=True)
            for campaign in ledger.campaigns():  # every JSON column is read
                ledger.experiments(campaign)
                ledger.runs(campaign)
        except AutoresearchError as e:
            return self._rebuild(f"the ledger cannot be read: {e}")
        if problems:
            ledger.close()
            return self._rebuild(f"SQLite finds the ledger damaged: {'; '.join(problems)}")
        planted = foreign_objects(ledger.db, drop=self.repair)
        for what in planted:
            self.add("repaired" if self.repair else "problem", what,
                     "" if self.repair else f"autoresearch doctor {self.ws.arena} --repair drops it")
        self.add("ok", f"the ledger {self.path} is sound ({len(ledger.campaigns())} campaign(s))")
        return ledger

    def _rebuild(self, why: str) -> Ledger | None:
        campaigns = read_campaigns(self.ws.state_dir)
        held = sum(len(RecoveryLog(self.ws.state_dir / c["tag"] / RECORDS).read()) for c in campaigns)
        if not self.repair:
            self.add("problem", f"{why}. The recovery records hold {len(campaigns)} campaign(s) and {held} finished "
                     "experiment(s)", f"autoresearch doctor {self.ws.arena} --repair (the damaged file is kept aside)")
            return None
        ledger, n_campaigns, n_experiments = journal.restore_ledger(self.path, self.ws.state_dir)
        self.add("repaired", f"{why}: rebuilt the ledger from the recovery records ({n_campaigns} campaign(s), "
                 f"{n_experiments} experiment(s)); the old file is next to it as ledger.sqlite.damaged-*")
        return ledger

    # -- a campaign against git ------------------------------------------------------------------
    def _campaign(self, ledger: Ledger, tag: str) -> Ledger:
        campaign = ledger.campaign(tag)
        assert campaign is not None
        experiments = ledger.experiments(campaign)
        found = disagreements(self.ws, campaign, experiments)
        records = RecoveryLog(self.ws.state_dir / tag / RECORDS).read()
        known = {e.id: e for e in experiments}
        more = [i for i, r in records.items() if i not in known or r["experiment"]["status"] != known[i].status.value]
        if found and more and self.repair:  # the records know what the ledger lost: take them first
            ledger.close()
            ledger = self._rebuild(f"campaign {tag!r}: the ledger lacks {len(more)} experiment(s) the recovery records "
                                   "hold") or Ledger(self.path)
            campaign = ledger.campaign(tag)
            assert campaign is not None
            experiments = ledger.experiments(campaign)
            found = disagreements(self.ws, campaign, experiments)
        for d in found:
            if self.repair:
                where = journal.set_aside(self.ws, campaign, d.ref, d.sha, experiments)
                self.add("repaired", f"campaign {tag!r}: {d.detail}; the commit is kept under {where} and {d.ref} "
                         "is back where the ledger says")
            else:
                self.add("problem", f"campaign {tag!r}: {d.detail}" + (
                    f" (the recovery records hold {len(more)} experiment(s) the ledger lacks)" if more else ""),
                         f"autoresearch doctor {self.ws.arena} --repair keeps the commit under "
                         f"refs/autoresearch/{tag}/unrecorded/ and puts the ref back")
        missing = [e.id for e in experiments if e.status.terminal and e.id not in records]
        if missing and self.repair and not self.ws.state_dir.joinpath(tag).is_symlink():
            journal.fill_records(ledger, self.ws, campaign)
            self.add("repaired", f"campaign {tag!r}: wrote the recovery records of {len(missing)} experiment(s)")
        elif missing:
            self.add("warning", f"campaign {tag!r}: {len(missing)} finished experiment(s) have no recovery record",
                     "the next `autoresearch run` writes them (or doctor --repair now)")
        return ledger

    # -- files a killed harness or an older version left -----------------------------------------
    def _stale(self) -> None:
        for lock in sorted((self.ws.git_dir / "refs").rglob("*.lock")) if (self.ws.git_dir / "refs").is_dir() else []:
            rel = lock.relative_to(self.ws.git_dir).as_posix()
            if not rel.startswith(("refs/heads/autoresearch/", "refs/autoresearch/")):
                continue
            if self.repair:
                lock.unlink(missing_ok=True)
                self.add("repaired", f"removed the stale lock {lock} (no harness runs)")
            else:
                self.add("problem", f"a stale lock file {lock} blocks updates of {rel.removesuffix('.lock')}",
                         f"autoresearch doctor {self.ws.arena} --repair (or rm {lock}; no harness runs)")
        base = self.ws.state_dir / "worktrees"
        for pointer in sorted(base.glob("*/*/.git")) if base.is_dir() else []:
            self.add("repaired" if self.repair else "warning",
                     f"{pointer.parent} is a git worktree left by an older autoresearch (run directories hold no .git "
                     "now)" + ("; removed" if self.repair else ""), "" if self.repair else
                     "the next `autoresearch run` removes it (or doctor --repair now)")
            if self.repair:
                from .store.rundirs import remove_tree

                remove_tree(pointer.parent)
                git(["worktree", "prune"], self.ws.root, check=False)

    def _git_settings(self) -> None:
        """Settings that make git run a program: autoresearch's own git calls disable or
        never trigger them, but the user's git runs them (and a run could have planted them)."""
        keys = r"^(core\.fsmonitor|filter\..*\.(clean|smudge|process)|include\.path|includeif\..*\.path|core\.hookspath)$"
        out = git(["config", "--show-origin", "--get-regexp", keys], self.ws.root, check=False).stdout.decode()
        for line in out.splitlines():
            origin, _, rest = line.partition("\t")
            if origin.startswith("command line"):  # our own overrides, for our own calls
                continue
            self.add("warning", f"git config {rest} ({origin.removeprefix('file:')}): git runs or reads it on the "
                     "user's behalf", "remove it unless you set it yourself (git config --unset KEY)")


def diagnose(arena: Path, *, repair: bool = False) -> list[Finding]:
    return Doctor(arena, repair=repair).run()


def as_json(findings: list[Finding]) -> dict[str, object]:
    return {"healthy": not any(f.level == "problem" for f in findings), "findings": [asdict(f) for f in findings]}
