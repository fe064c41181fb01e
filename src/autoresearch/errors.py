"""The exception tree. Every user-facing error says what went wrong, where, and what to do.

    AutoresearchError            base; ``exit_code`` is what the CLI returns
    ├── ConfigError              bad or missing config, unknown keys, bad values   (exit 1)
    ├── ArenaError               not a git repo, dirty tree, missing files          (exit 1)
    ├── BaselineError            the baseline crashed or lacks the metric           (exit 1)
    ├── CampaignLockedError      another live process holds the campaign            (exit 1)
    ├── InfraError               the cluster keeps failing runs, or a node lacks setup (exit 1)
    ├── StateError               git holds a state the ledger does not know (exit 1; see doctor)
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


class StateError(AutoresearchError):
    """Git and the ledger disagree in a way a restart cannot repair: ``autoresearch doctor``."""


class UsageError(AutoresearchError):
    exit_code = 2


class ForcedStop(AutoresearchError):
    exit_code = 130


class EditError(AutoresearchError):
    """An edit that cannot be applied. The engine records it as an ``invalid`` experiment."""


def environment_error(e: BaseException) -> str | None:
    """One or two lines for an error of the machine, not of autoresearch (a path it cannot
    write, a full disk, a damaged database), naming the path and the fix; None for any other
    exception (a bug: shown with its traceback)."""
    import errno
    import sqlite3

    if isinstance(e, sqlite3.DatabaseError):
        text = str(e)
        if "readonly" in text or "read-only" in text:
            return (f"the ledger cannot be written ({text}): make .autoresearch/ and ledger.sqlite writable "
                    "(chmod -R u+w .autoresearch), or read it with `autoresearch status`, which writes nothing")
        if "disk is full" in text or "disk I/O" in text:
            return f"the ledger cannot be written ({text}): free space on the disk that holds .autoresearch/"
        return (f"the ledger cannot be read ({text}): `autoresearch doctor` says what is wrong and "
                "`autoresearch doctor --repair` rebuilds it from git and the recovery records")
    if isinstance(e, OSError) and e.errno is not None:
        where = e.filename or "a file"
        if e.filename2:
            where = f"{e.filename} -> {e.filename2}"
        fix = {
            errno.EACCES: "give your user write access to it (chmod u+w), or run where you can write",
            errno.EPERM: "give your user write access to it (chmod u+w), or run where you can write",
            errno.EROFS: "it is on a read-only file system: put the arena (or .autoresearch) where you can write",
            errno.ENOSPC: "the disk is full: free space (old logs under .autoresearch/TAG/logs can go) and run again",
            errno.EDQUOT: "your disk quota is used up: free space and run again",
            errno.ENOENT: "it does not exist (was it moved or deleted while autoresearch ran?)",
            errno.EXDEV: "it is on another file system than its target",
        }.get(e.errno)
        if fix is not None:
            return f"{e.strerror}: {where}: {fix}"
    return None
