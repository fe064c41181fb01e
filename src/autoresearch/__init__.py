"""autoresearch: an unattended research loop on a git repository.

The public surface is small; everything else is an implementation detail.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    ArenaError,
    AutoresearchError,
    BaselineError,
    CampaignLockedError,
    ConfigError,
    EditError,
    UsageError,
)
from .records import Experiment, FileEdit, Goal, Measurement, Proposal, RunOutcome, Status  # noqa: E402

__all__ = [
    "__version__",
    "ArenaError",
    "AutoresearchError",
    "BaselineError",
    "CampaignLockedError",
    "ConfigError",
    "EditError",
    "UsageError",
    "Experiment",
    "FileEdit",
    "Goal",
    "Measurement",
    "Proposal",
    "RunOutcome",
    "Status",
]
