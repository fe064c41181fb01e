"""Proposers and their registry. Only this module maps kind names to classes."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..config import PROPOSER_KINDS, Config
from ..config_hints import close_paths
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


def _knobs(config: Config, arena: Path, options: dict) -> Proposer:
    from ..knobs_view import knob_proposer
    from ..store.gitobjects import listed_files
    from ..train_script import usage_paths

    proposer = knob_proposer(config)
    # Fail before the campaign starts when there is nothing to tune (FAULTS 30).
    files = {p: (arena / p).read_text(encoding="utf-8", errors="replace") for p in config.arena.editable
             if (arena / p).is_file()}
    a = config.arena  # how knobs are used: the readonly files and the scripts the commands start
    readonly = {p: (arena / p).read_text(encoding="utf-8", errors="replace")
                for p in usage_paths(a.editable, a.readonly, (a.run, a.eval)) if (arena / p).is_file()}
    missing = [p for p in config.arena.editable if p not in files]
    if missing:
        raise ConfigError(f"editable file(s) not found in {arena}: {close_paths(missing, listed_files(arena))}; fix "
                          "[arena] editable in the config (or --editable), or create and commit the file(s)")
    knobs, spaces = proposer.survey(files, readonly)
    if not spaces:
        found = ", ".join(sorted(files)) or "none"
        frozen = ("every one frozen (" + "; ".join(f"{k.name}: {k.frozen}" for k in knobs[:8])
                  + ("; ..." if len(knobs) > 8 else "") + ")") if knobs else "no literal found"
        raise ConfigError(
            f"the knobs proposer found nothing to tune in the editable files ({found}): {frozen}. "
            "It tunes literals where hyperparameters live (module constants, config files, argparse defaults, "
            "dataclass fields, YAML/JSON/TOML leaves). `autoresearch knobs` lists them; declare a range under "
            "[proposer.knobs.space.\"NAME\"], or choose another proposer with --proposer "
            f"({', '.join(PROPOSER_KINDS)})"
        )
    proposer._constraints(knobs, files, readonly)  # a constraint that is wrong, or broken now: an error before the start
    return proposer


def _llm_proposer(config: Config, arena: Path, options: dict, *, need_knobs: bool) -> Proposer:
    from ..llm import Client
    from .llm import LLMProposer

    t = config.proposer.llm
    if not t.model:
        raise ConfigError(
            "the llm proposer needs a model: pass --model NAME or set [proposer.llm] model = \"NAME\" "
            "(and base_url for a local or OpenAI-compatible server)"
        )
    knobs = _knobs(config, arena, options) if need_knobs or t.mode == "knobs" else None
    if knobs is None and t.on_error == "knobs":
        try:
            knobs = _knobs(config, arena, options)
        except ConfigError as e:
            raise ConfigError(f"[proposer.llm] on_error = \"knobs\" needs constants to tune: {e}") from None
    client = Client(
        provider=t.provider, model=t.model, base_url=t.base_url, api_key_env=t.api_key_env, timeout_s=t.timeout_s,
        max_attempts=t.max_attempts, temperature=t.temperature, max_tokens=t.max_tokens,
        json_format=t.json_format,
    )
    proposer = LLMProposer(client=client, table=t, editable=tuple(config.arena.editable), knobs=knobs)  # type: ignore[arg-type]
    if knobs is not None:  # what the knobs proposer has to say (a missing package): the campaign prints the llm's notes
        proposer.notes.extend(knobs.notes)  # type: ignore[attr-defined]
        knobs.notes.clear()  # type: ignore[attr-defined]
    return proposer


def _llm(config: Config, arena: Path, options: dict) -> Proposer:
    return _llm_proposer(config, arena, options, need_knobs=False)


def _hybrid(config: Config, arena: Path, options: dict) -> Proposer:
    from .llm import HybridProposer

    llm = _llm_proposer(config, arena, options, need_knobs=True)
    return HybridProposer(llm=llm, knobs=llm.knobs, knobs_trials=config.proposer.hybrid.knobs_trials)  # type: ignore[attr-defined]


def _agent(config: Config, arena: Path, options: dict) -> Proposer:
    import os

    from ..store.workspace import Workspace
    from .agent import AgentProposer

    t = config.proposer.agent
    if not t.command:
        raise ConfigError(
            "the agent proposer needs a command: pass --agent-cmd \"TEMPLATE\" or set [proposer.agent] command; "
            "{prompt} (shell-quoted) or {prompt_file} in it are replaced, e.g. 'claude -p {prompt}'"
        )
    ws = Workspace(arena)
    return AgentProposer(
        command=t.command, workspace=ws, editable=tuple(config.arena.editable), readonly=tuple(config.arena.readonly),
        state_dir=ws.state_dir, timeout_s=t.timeout_s, key_env=t.key_env, env_allow=tuple(t.env_allow),
        history_n=t.history, base_env=dict(os.environ),
    )


REGISTRY: dict[str, Callable[[Config, Path, dict], Proposer]] = {
    "knobs": _knobs, "scripted": _scripted, "llm": _llm, "hybrid": _hybrid, "agent": _agent,
}
DEFAULT_KIND = "knobs"  # no LLM needed: the default when nothing is configured


def make_proposer(kind: str | None, config: Config, arena: Path, options: dict | None = None) -> Proposer:
    kind = kind or config.proposer.kind or DEFAULT_KIND
    if kind not in PROPOSER_KINDS:
        raise ConfigError(f"unknown proposer {kind!r}; choose one of {', '.join(PROPOSER_KINDS)}")
    return REGISTRY[kind](config, arena, options or {})
