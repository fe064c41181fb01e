"""A campaign's settings: the effective config (file plus command-line overrides) recorded
with the campaign when it starts belongs to it. ``run`` (resuming), ``ablate`` and
``run --dry-run`` on an existing campaign start from those recorded settings, not from
the file as it is now; what their own command line overrides applies on top (and a
resumed ``run`` records the result). So a campaign started with ``--time-budget 10`` is
resumed and ablated at 10 s although the file says 60.

Two exceptions: a new campaign, and a campaign whose only experiment is a failed baseline
(it restarts with the config as it is now: "fix the config, run again"), take the file.
A recorded config that no longer validates (written by another version) gives way to the
file, with a note that says so.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .config import CONFIG_FILE, LoadedConfig, load_config, set_dotted, validate_config
from .errors import AutoresearchError
from .store.ledger import Campaign

SHOWN_DIFFERENCES = 6


@dataclass(frozen=True)
class CampaignConfig(LoadedConfig):
    """A ``LoadedConfig`` that knows where its values came from."""

    tag: str | None = None                      # the campaign whose recorded settings it is
    recorded: bool = False                      # from the campaign's recorded settings (else: the file)
    overridden: frozenset[str] = frozenset()    # keys this command line set

    def origin(self, key: str) -> str:
        """Where the value of a dotted key came from, in words."""
        if any(key == k or key.startswith(k + ".") for k in self.overridden):
            return "this command line"
        if self.recorded:
            return f"the settings recorded with campaign {self.tag}"
        return self.source


def campaign_config(arena: Path, campaign: Campaign | None, overrides: Mapping[str, Any] | None = None, *,
                    fresh: bool = False, topics: tuple[str, ...] = ()) -> CampaignConfig:
    """The settings a command on ``campaign`` uses: its recorded ones with ``overrides`` on
    top; the file's (with ``overrides``) for no campaign, or when ``fresh`` (a failed
    baseline restarts with the config as it is now). ``topics``: the tables the command
    uses (its notes name differences there only; default all)."""
    overrides = dict(overrides or {})
    if campaign is None or fresh or not campaign.config:
        return _from_file(arena, overrides, campaign)
    label = f"the settings recorded with campaign {campaign.tag!r}"
    try:
        validate_config(campaign.config, label)
    except AutoresearchError as e:
        loaded = _from_file(arena, overrides, campaign)
        note = (f"{label} no longer validate ({str(e).splitlines()[-1].strip()}); using {loaded.source} as it is now")
        return CampaignConfig(loaded.config, loaded.source, loaded.raw, (*loaded.notes, note), campaign.tag, False,
                              loaded.overridden)
    raw = copy.deepcopy(dict(campaign.config))
    for key, value in overrides.items():
        set_dotted(raw, key, value)
    config = validate_config(raw, label, set(overrides))
    return CampaignConfig(config, f"recorded with campaign {campaign.tag}", raw,
                          tuple(_file_differs(arena, overrides, config.model_dump(mode="json"), topics)), campaign.tag,
                          True, frozenset(overrides))


def _from_file(arena: Path, overrides: Mapping[str, Any], campaign: Campaign | None) -> CampaignConfig:
    loaded = load_config(arena, overrides)
    return CampaignConfig(loaded.config, loaded.source, loaded.raw, loaded.notes, campaign.tag if campaign else None,
                          False, frozenset(overrides))


def _file_differs(arena: Path, overrides: Mapping[str, Any], used: Mapping[str, Any],
                  topics: tuple[str, ...] = ()) -> list[str]:
    """A note when the config file (with this command line) now says otherwise than the
    campaign's recorded settings: those stay, and the note says how to change them."""
    try:
        now = load_config(arena, overrides)
    except AutoresearchError as e:  # the recorded settings are used; but a typo must not pass unseen (a trial)
        if not (arena / CONFIG_FILE).is_file():
            return []  # no file (a zero-config campaign, or one deleted): nothing in it to be wrong
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        return [f"the config file has an error, not used by this campaign (it keeps its recorded settings): "
                f"{' '.join(lines)[:400]}; fix it, or a new campaign (--tag NEW) will refuse to start"]
    except OSError:
        return []
    file = now.config.model_dump(mode="json")
    from .seeds import SEED_KEYS, names_a_seed

    unseeded = not names_a_seed(now.raw, overrides)  # the file names no seed: the campaign's own, not a difference
    paths = [p for p in _differing(file, used) if (not topics or p[0] in topics)
             and not (unseeded and ".".join(p) in SEED_KEYS)]
    if not paths:
        return []
    shown = ", ".join(f"{_dotted(p)} = {_text(_get(used, p))} (the file: {_text(_get(file, p))})"
                      for p in paths[:SHOWN_DIFFERENCES])
    more = f" and {len(paths) - SHOWN_DIFFERENCES} more" if len(paths) > SHOWN_DIFFERENCES else ""
    said = f"the campaign keeps its recorded settings where {now.source} now says otherwise: {shown}{more}. "
    settable = [p for p in paths if p[:2] not in _FIXED]  # what it measures: no setting changes it (a newcomer's trial)
    if not settable:
        return [said + "A campaign's metric cannot change: start a new campaign with the file as it is: --tag NEW"]
    return [said + f"Give a setting on the command line to change it (e.g. {_set_example(settable, file)})"
            f"{' (not the metric: that needs a new campaign)' if settable != paths else ''}, or start a new campaign "
            "with the file as it is: --tag NEW"]


_FIXED = {("metric", "name"), ("metric", "goal")}  # a campaign measures one metric, one way


def _set_example(paths: list[tuple[str, ...]], file: Mapping[str, Any]) -> str:
    """``--set KEY=VALUE`` that gives the file's value of the first differing key it can be
    given for (a plain key; a number, text, flag or list), shell-quoted. Pure."""
    import shlex

    from .config import parse_override

    for path in paths:
        value = _get(file, path)
        if not isinstance(value, (int, float, str, bool, list)):
            continue
        text = f"{'.'.join(path)}={json.dumps(value, ensure_ascii=False)}"
        try:
            if parse_override(text) == (".".join(path), value):  # what --set reads back: a key it takes, the value
                return "--set " + shlex.quote(text)
        except AutoresearchError:
            continue
    return "--set arena.time_budget_s=30"


def differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two nested tables (a key that holds a dot
    quoted: ``proposer.knobs.space."optimizer.lr"``). Pure."""
    return [_dotted(p) for p in _differing(a, b)]


def _differing(a: Mapping[str, Any], b: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, Mapping) and isinstance(y, Mapping):
            out += _differing(x, y, (*prefix, key))
        elif x != y:
            out.append((*prefix, key))
    return out


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(json.dumps(k) if "." in k else k for k in path)


def _get(table: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = table
    for part in path:
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _text(value: Any) -> str:
    return json.dumps(value, default=str)


def run_config(arena: Path, tag: str | None, overrides: Mapping[str, Any] | None = None) -> CampaignConfig:
    """The settings ``run`` uses: the campaign it continues (``tag``, or the latest) keeps its
    recorded ones; a new campaign, or one whose only experiment is a failed baseline, takes
    the file's."""
    campaign, failed_baseline = find_campaign(arena, tag)
    return campaign_config(arena, campaign, overrides, fresh=failed_baseline)


def find_campaign(arena: Path, tag: str | None) -> tuple[Campaign | None, bool]:
    """The campaign a ``run`` would continue (``tag``, or the latest) and whether its only
    experiment is a failed baseline, read without writing anything; (None, False) when there
    is none, or the ledger cannot be read (opening the campaign says why)."""
    import sqlite3

    from .engine.opening import LEDGER_FILE
    from .store.ledger import Ledger
    from .store.workspace import STATE_DIR

    path = arena / STATE_DIR / LEDGER_FILE
    if not path.is_file():
        return None, False
    try:
        ledger = Ledger(path, readonly=True)
    except (AutoresearchError, sqlite3.Error, OSError):
        try:  # an older schema: opening the campaign upgrades it anyway (its settings must not be lost)
            ledger = Ledger(path)
        except (AutoresearchError, sqlite3.Error, OSError):
            return None, False
    try:
        campaign = ledger.campaign(tag) if tag else ledger.latest_campaign()
        if campaign is None:
            return None, False
        exps = ledger.experiments(campaign)
    except (AutoresearchError, sqlite3.Error, OSError, ValueError):
        return None, False
    finally:
        ledger.close()
    from .records import Status

    failed = len(exps) == 1 and exps[0].id == 0 and exps[0].status not in (Status.KEEP, Status.INTERRUPTED)
    return campaign, failed



def settings_text(config: Mapping[str, Any]) -> str:
    """The recorded settings a reader of a campaign's numbers needs (budget, timeout, judge,
    slots, seed), in one line; "" when none are recorded. Pure."""
    a, j, r = (config.get(t) if isinstance(config.get(t), Mapping) else {} for t in ("arena", "judge", "runner"))
    parts = []
    budget = a.get("time_budget_s")
    if isinstance(budget, (int, float)):
        timeout = a.get("timeout_s") if isinstance(a.get("timeout_s"), (int, float)) else 2 * budget + 60
        parts.append(f"time budget {budget:g} s per run, timeout {timeout:g} s")
    if j.get("policy"):
        parts.append(f"judge {j['policy']}")
    if r.get("slots") is not None:
        slots = r["slots"] if isinstance(r["slots"], int) else ",".join(map(str, r["slots"])) \
            if isinstance(r["slots"], list) else r["slots"]
        parts.append(f"slots {slots}")
    if r.get("seed") is not None:
        parts.append(f"seed {r['seed']}")
    return ", ".join(parts)
