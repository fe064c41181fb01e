"""A campaign's seed: given (``--seed``, ``AUTORESEARCH_SEED`` or the config), or chosen at
random for a new campaign, printed and recorded with it.

With one fixed default every new campaign replayed the same search (the knobs proposer's
sampler draws from its seed), so a second tag was not a second opinion. A new campaign
that names no seed now gets a random one; it is recorded with the campaign's settings
(``campaign_config.py``), so resuming it continues the same search, and ``--seed N``
replays it. ``--seed`` sets every seed: the runs' (``runner.seed``: initialisation, data
order) and the proposers' (``proposer.knobs.seed``, ``proposer.llm.seed``).
"""

from __future__ import annotations

import random
from typing import Any, Mapping

SEED_KEYS = ("runner.seed", "proposer.knobs.seed", "proposer.llm.seed")
SEED_RANGE = (1, 99_999)


def seed_overrides(seed: int) -> dict[str, int]:
    """What ``--seed N`` sets. Pure."""
    return {key: seed for key in SEED_KEYS}


def names_a_seed(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> bool:
    """Whether the config file (``raw``, as written) or the command line sets any seed. Pure."""
    if any(key in overrides for key in SEED_KEYS):
        return True
    for key in SEED_KEYS:
        node: Any = raw
        for part in key.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is not None:
            return True
    return False


def random_seed(rng: random.Random | None = None) -> int:
    return (rng or random.SystemRandom()).randint(*SEED_RANGE)


def seed_note(seed: int, chosen: bool, restarted: bool = False) -> str:
    """What the run says of its campaign's seed; ``restarted``: a campaign whose baseline
    failed starts afresh (with the file as it is now, and a new seed). Pure."""
    if chosen:
        which = "this campaign, which starts afresh after its failed baseline" if restarted else "this new campaign"
        return (f"seed {seed} (chosen at random for {which}, and recorded with it; "
                f"`--seed {seed}` in a new campaign replays its search)")
    return f"seed {seed}"
