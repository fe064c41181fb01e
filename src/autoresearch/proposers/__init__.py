"""Proposers and their registry. Only this module maps kind names to classes."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..config import PROPOSER_KINDS, Config
from ..errors import ConfigError
from ..protocols import Proposer


def _scripted(config: Config, arena: Path, options: dict) -> Proposer:
    from .scripted import ScriptedProposer

    path = options.get("proposals")
    if path is None:
        if config.proposer.scripted.proposals is None:
            raise ConfigError(
                "the scripted proposer needs a proposals file: pass --proposals FILE or set "
                "[proposer.scripted] proposals = \"FILE\" in the config"
            )
        path = arena / config.proposer.scripted.proposals
    return ScriptedProposer.from_file(Path(path))


REGISTRY: dict[str, Callable[[Config, Path, dict], Proposer]] = {"scripted": _scripted}


def make_proposer(kind: str | None, config: Config, arena: Path, options: dict | None = None) -> Proposer:
    kind = kind or config.proposer.kind
    if kind is None:
        raise ConfigError(
            "no proposer chosen: pass --proposer KIND or set [proposer] kind in the config. "
            f"Kinds: {', '.join(PROPOSER_KINDS)} (built so far: {', '.join(REGISTRY)})"
        )
    if kind not in PROPOSER_KINDS:
        raise ConfigError(f"unknown proposer {kind!r}; choose one of {', '.join(PROPOSER_KINDS)}")
    if kind not in REGISTRY:
        raise ConfigError(
            f"the {kind!r} proposer is not built yet in this version; built so far: {', '.join(REGISTRY)}"
        )
    return REGISTRY[kind](config, arena, options or {})
