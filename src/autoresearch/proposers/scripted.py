"""Replays a file of SEARCH/REPLACE patches: for tests, demos and reproducing a campaign.

File format (YAML or JSON): a list of ``{description: str, edits: [{path, search, replace}]}``.
Entry *i* is proposed once; on resume, entries already in the ledger are skipped (the
index travels in the proposal's ``meta``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ConfigError
from ..protocols import ProposalContext
from ..records import FileEdit, Proposal


class _Edit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    search: str
    replace: str


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = Field(min_length=1)
    edits: list[_Edit]


def load_proposals(path: Path) -> list[Proposal]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read the proposals file {path}: {e.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {e}") from None
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a list of {{description, edits}} entries, got {type(data).__name__}")
    proposals = []
    for i, item in enumerate(data):
        try:
            entry = _Entry.model_validate(item)
        except ValidationError as e:
            first = e.errors()[0]
            loc = ".".join(str(x) for x in first["loc"])
            raise ConfigError(f"{path}: entry {i} ({loc}): {first['msg']}") from None
        proposals.append(
            Proposal(
                description=entry.description,
                edits=tuple(FileEdit(e.path, e.search, e.replace) for e in entry.edits),
                proposer="scripted",
                meta={"index": i},
            )
        )
    return proposals


@dataclass
class ScriptedProposer:
    proposals: Sequence[Proposal]
    name: str = "scripted"

    @classmethod
    def from_file(cls, path: Path) -> "ScriptedProposer":
        return cls(load_proposals(path))

    def propose(self, context: ProposalContext) -> Proposal | None:
        used = [e.meta.get("index", -1) for e in context.history if e.proposer == self.name]
        nxt = max(used, default=-1) + 1
        return self.proposals[nxt] if nxt < len(self.proposals) else None

