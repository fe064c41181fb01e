"""The exception tree. Every user-facing error says what went wrong, where, and what to do.

    AutoresearchError            base; ``exit_code`` is what the CLI returns
    ├── ConfigError              bad or missing config, unknown keys, bad values   (exit 1)
    ├── ArenaError               not a git repo, dirty tree, missing files          (exit 1)
    ├── BaselineError            the baseline crashed or lacks the metric           (exit 1)
    ├── CampaignLockedError      another live process holds the campaign            (exit 1)
    ├── InfraError               the cluster keeps failing runs, or a node lacks setup (exit 1)
    ├── UsageError               bad command-line usage                             (exit 2)
    ├── ForcedStop               a second Ctrl-C: stop at once                      (exit 130)
    └── EditError                a proposal's edit cannot be applied (data, not fatal)
"""

from __future__ import annotations


class AutoresearchError(Exception):
    exit_code = 1


class ConfigError(AutoresearchError):
    pass


class ArenaError(AutoresearchError):
    pass


class BaselineError(AutoresearchError):
    pass


class CampaignLockedError(AutoresearchError):
    pass


class InfraError(AutoresearchError):
    """The infrastructure (a Ray cluster) cannot run experiments: runs failed for reasons
    that are not the candidate's, again and again, or a node lacks what the arena needs."""


class UsageError(AutoresearchError):
    exit_code = 2


class ForcedStop(AutoresearchError):
    exit_code = 130


class EditError(AutoresearchError):
    """An edit that cannot be applied. The engine records it as an ``invalid`` experiment."""
