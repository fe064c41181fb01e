"""The campaign engine, laid out by how an experiment's data flows through it:

    scheduler.py   slots, threads, the one lock, the proposal pump, limits, stop
    experiment.py  one pending experiment -> its recorded outcome (the story, top to bottom)
    baseline.py    noise calibration, and re-measurements of the incumbent
    state.py       incumbent, measured values, noise, file cache, counters (in memory)
    journal.py     the only writer of the ledger and git refs, in the durable order
    execution.py   run + eval + measure -> a typed result; pure classify -> status
    candidate.py   pure checks of a proposal before any run is spent
    opening.py     arena checks, the campaign lock, the campaign's row
    campaign.py    the parts wired together: CampaignEngine(...).run() -> Outcome
"""

from .campaign import CampaignEngine

__all__ = ["CampaignEngine"]
