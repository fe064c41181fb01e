"""The agent proposer: an external coding agent (Claude Code, Codex, aider, ...) edits a
worktree of the incumbent; the harness turns what it changed into the proposal.

The command is a template run with ``/bin/sh -c`` in a directory of its own
(``.autoresearch/worktrees/TAG/agent``) holding the incumbent's files, made a fresh git
repository with one commit (coding agents like to diff and stage; this repository is the
agent's scratch, unrelated to the user's), with:

- ``{prompt}``: the prompt, shell-quoted; ``{prompt_file}``: a file holding it (also in
  ``AUTORESEARCH_PROMPT_FILE``). The prompt is the research program, the state and the
  experiment history, and which files may be edited.
- a timeout (``timeout_s``; the agent's whole process tree is killed), a capped log, and
  the run environment (allowlist, no secrets) plus the one key the agent needs
  (``key_env``).

Afterwards the harness compares the directory with the incumbent's files itself (it does
not trust the agent's repository): changes to editable files become the proposal (whole-file replacements, so the engine's checks and dedupe apply as usual);
a change to any other file (the evaluator, data prep, a new file) makes it ``invalid``,
as do a deleted editable file, no change, a non-zero exit and a timeout. The agent's last
line of output is the description. The agent cannot stop the campaign, skip bookkeeping,
or touch the evaluator: it only ever sees a scratch directory.
"""

from __future__ import annotations

import shlex
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from ..protocols import ProposalContext
from ..records import FileEdit, Proposal
from ..runners.local import LocalRunner
from ..runners.proctree import new_run_token
from ..runs.spec import DEFAULT_ENV_ALLOW, RunSpec, child_env
from ..store.gitobjects import git
from ..store.rundirs import walk
from ..store.workspace import Workspace
from .llm import context_sections

AGENT_TASK = """# Your task
You are working in a git checkout of the current best version of the code. Make ONE focused \
change that you expect to improve the metric, by editing only these files: {editable}. Do not \
edit any other file (in particular not {readonly}), do not run long trainings, do not commit. \
End your output with a single line that summarises the change."""


def agent_prompt(context: ProposalContext, editable: Sequence[str], readonly: Sequence[str], history_n: int) -> str:
    parts = context_sections(context, history_n)
    parts.append(AGENT_TASK.format(editable=", ".join(editable), readonly=", ".join(readonly) or "anything else"))
    return "\n\n".join(parts)


def changed_paths(ws: Workspace, top: Path) -> list[tuple[str, str]]:
    """(kind, arena-relative path) of every change in the agent's directory against the
    commit it holds: "M" modified, "D" deleted or no longer a regular file, "A" new."""
    tracked = ws.dirs.tracked(top)
    changes = []
    present = {rel for rel, _ in walk(top) if not rel.startswith(".git/")}
    for rel, entry in tracked.items():
        p = top / rel
        if rel not in present or p.is_symlink() or not p.is_file():
            changes.append(("D", rel))
        elif entry.mode in ("100644", "100755") and ws.objects.hash("blob", p.read_bytes()) != entry.sha:
            changes.append(("M", rel))
    changes += [("A", rel) for rel in sorted(present - set(tracked))]
    prefix = ws.prefix
    return [(kind, rel[len(prefix):] if prefix and rel.startswith(prefix) else rel) for kind, rel in changes]


def scratch_repository(directory: Path) -> None:
    """A throwaway repository in the agent's directory, its files committed, so that an
    agent's own ``git diff`` / ``git status`` work."""
    git(["init", "-q"], directory)
    git(["add", "-A"], directory)
    git(["commit", "-q", "--no-verify", "-m", "the incumbent"], directory)


@dataclass
class AgentProposer:
    command: str
    workspace: Workspace
    editable: tuple[str, ...]
    readonly: tuple[str, ...]
    state_dir: Path
    timeout_s: float = 900.0
    key_env: str | None = None
    env_allow: tuple[str, ...] = ()
    history_n: int = 20
    base_env: Mapping[str, str] = field(default_factory=dict)
    name: str = "agent"
    runner: LocalRunner = field(default_factory=LocalRunner)

    def propose(self, context: ProposalContext) -> Proposal | None:
        # named by the history's length and a random suffix: a restarted proposer never
        # overwrites the logs earlier experiments point at
        name = f"{len(context.history):04d}-{uuid.uuid4().hex[:6]}"
        tag = context.tag or "default"
        worktree = self.workspace.dirs.materialize(tag, "agent", context.incumbent_commit)
        top = self.workspace.dirs.path(tag, "agent")
        scratch_repository(top)
        out_dir = self.state_dir / tag / "agent"
        out_dir.mkdir(parents=True, exist_ok=True)
        prompt = agent_prompt(context, self.editable, self.readonly, self.history_n)
        prompt_file = out_dir / f"prompt-{name}.md"
        prompt_file.write_text(prompt, encoding="utf-8")
        command = self.command.replace("{prompt_file}", shlex.quote(str(prompt_file))).replace("{prompt}", shlex.quote(prompt))
        env = child_env(self.base_env, [*DEFAULT_ENV_ALLOW, *self.env_allow],
                        {"AUTORESEARCH_PROMPT_FILE": str(prompt_file), "AUTORESEARCH_PHASE": "propose"})
        if self.key_env and self.base_env.get(self.key_env):
            env[self.key_env] = self.base_env[self.key_env]  # the one secret the agent needs
        spec = RunSpec(command=command, cwd=worktree, env=env, timeout_s=self.timeout_s,
                       log_path=out_dir / f"agent-{name}.log", token=new_run_token(), log_cap_bytes=8 << 20)
        outcome = self.runner.start(spec).wait()
        last = next((x.strip() for x in reversed(outcome.log_tail.splitlines()) if x.strip()), "")
        description = last[:200] or "agent change"
        meta = {"agent_log": str(spec.log_path), "agent_seconds": round(outcome.duration_s, 2)}

        def invalid(reason: str) -> Proposal:
            return Proposal(description=description, edits=(), proposer=self.name, meta={**meta, "invalid": reason})

        if outcome.timed_out:
            return invalid(f"the agent did not finish within {self.timeout_s:g} s and was killed")
        if outcome.exit_code != 0:
            return invalid(f"the agent exited with code {outcome.exit_code}: {last[:200]}")
        changes = changed_paths(self.workspace, top)
        outside = sorted({p for _, p in changes if p not in self.editable})
        if outside:
            return invalid(f"the agent changed files outside the editable ones: {', '.join(outside)}")
        if not changes:
            return invalid("the agent changed nothing")
        old = self.workspace.read_files(context.incumbent_commit, tuple(p for _, p in changes))
        edits = []
        for code, path in changes:
            target = worktree / path
            if "D" in code or not target.is_file() or target.is_symlink():
                return invalid(f"the agent deleted or replaced {path}; the editable files must stay regular files")
            new = target.read_text(encoding="utf-8", errors="replace")
            edits.append(FileEdit(path, old.get(path) or "", new))
        return Proposal(description=description, edits=tuple(edits), proposer=self.name, meta=meta)

