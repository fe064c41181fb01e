"""The LLM proposer: a chat model reads the program, the code and the history, and proposes
the next change as SEARCH/REPLACE blocks (``mode = "edits"``) or as new values for the
numeric constants in schema-constrained JSON (``mode = "knobs"``, for small models).

A reply is checked before it costs a run: it must parse, every block must apply (exactly,
or with a uniform indentation shift), only editable files may change, Python must still
parse, and the resulting code must not have been tried before. Anything else goes back to
the model with precise feedback (which block failed, the nearest real lines, which blocks
applied) for up to ``retries`` corrected replies; then the proposal is recorded as
``invalid`` with the reason and the campaign goes on.

After a crash of an LLM idea the next prompt shows the crash's log tail and asks for a fix
of that idea (at most ``repair_attempts`` per idea); the fix is linked to the crashed
experiment in its meta (``repair_of``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..config import LLMTable
from ..edits import parse_reply
from ..engine.candidate import Refused, Rules, check_candidate
from ..errors import EditError
from ..llm import Client, Completion, LLMFatal, LLMUnavailable, cost_of
from ..protocols import ProposalContext
from ..records import Experiment, FileEdit, Goal, Proposal, Status, code_tried
from .knob_constraints import broken
from .knobs import KnobsProposer, Space, describe, knob_grid, render_edits, written_value

SYSTEM_EDITS = """You are a machine-learning research engineer. You improve a training script \
by running one experiment at a time; a harness runs each change under a fixed time budget and \
keeps it only if the metric improves. Propose ONE focused change per reply.

Reply in exactly this layout:
<one line: a short description of the change>
<two to four sentences: why it should improve the metric>

path/of/the/file.py
```python
<<<<<<< SEARCH
<lines copied exactly from the current file>
=======
<the new lines>
>>>>>>> REPLACE
```

You may use several blocks, also for several files. SEARCH must copy the current lines \
exactly (including indentation) and match one place only. Only the editable files may be \
changed. Do not change seeds, time budgets, or how the metric is computed."""

SYSTEM_KNOBS = """You are a machine-learning research engineer tuning the numeric constants of \
a training script. A harness runs each setting under a fixed time budget and keeps it only if \
the metric improves. Answer with a JSON object: "changes", a list of one to three \
{"name": CONSTANT, "value": NEW_VALUE} objects (values from the allowed lists), and \
"description", one short line saying why."""


def _fmt(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.6g}"


def history_table(history: Sequence[Experiment], *, others: int) -> str:
    """Every kept experiment, plus the last ``others`` of the rest (crashes with their reason)."""
    done = [e for e in history if e.status.terminal and e.status is not Status.INTERRUPTED]
    keep_ids = {e.id for e in done if e.status is Status.KEEP}
    rest = [e for e in done if e.id not in keep_ids][-others:] if others > 0 else []
    shown = sorted([e for e in done if e.id in keep_ids] + rest, key=lambda e: e.id)
    if not shown:
        return "(none yet)"
    lines = ["| id | status | metric | description | note |", "| --- | --- | --- | --- | --- |"]
    for e in shown:
        note = ""
        if e.status in (Status.CRASH, Status.TIMEOUT, Status.INVALID):
            note = (e.reason.splitlines() or [""])[0][:160]
        lines.append(f"| {e.id} | {e.status.value} | {_fmt(e.metric)} | {e.description[:120]} | {note} |")
    hidden = len(done) - len(shown)
    if hidden > 0:
        lines.append(f"({hidden} older non-kept experiments not shown)")
    return "\n".join(lines)


def _trim(text: str, budget: int) -> str:
    if len(text) <= budget:
        return text
    half = max(0, budget // 2)
    return text[:half] + f"\n... [{len(text) - 2 * half} characters left out] ...\n" + text[-half:]


def context_sections(context: ProposalContext, history_n: int) -> list[str]:
    """What every proposer's prompt starts with: the program, the state (metric, incumbent,
    noise) and the history table. Pure."""
    goal = "lower is better" if context.goal is Goal.MINIMIZE else "higher is better"
    parts = []
    if context.program.strip():
        parts.append(f"# Research program\n{context.program.strip()}")
    state = f"# Current state\nMetric: {context.metric} ({goal}). Incumbent: {_fmt(context.incumbent_metric)}."
    if context.noise_sd is not None:
        state += (f" Run-to-run noise (sd of repeated runs of the same code): {_fmt(context.noise_sd)};"
                  " differences smaller than that are not real.")
    parts.append(state)
    parts.append(f"# Experiments so far (do not repeat what failed)\n{history_table(context.history, others=history_n)}")
    return parts


def build_prompt(context: ProposalContext, *, editable: Sequence[str], history_n: int, readonly_chars: int,
                 repair: tuple[Experiment, str] | None = None, knobs: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """The user message for one proposal. Pure."""
    parts = context_sections(context, history_n)
    if knobs is None:
        files = "\n\n".join(f"## {p}\n```\n{context.files[p]}\n```" for p in editable if p in context.files)
        parts.append(f"# Editable files (current incumbent, full text)\n{files}")
        if context.readonly and readonly_chars > 0:
            each = max(200, readonly_chars // max(1, len(context.readonly)))
            ro = "\n\n".join(f"## {p}\n```\n{_trim(t, each)}\n```" for p, t in sorted(context.readonly.items()))
            parts.append(f"# Readonly files (for reference; they cannot be changed)\n{ro}")
    else:
        rows = "\n".join(f"- {n}: current {spec['current']!r}, allowed {spec['range']}" for n, spec in knobs.items())
        parts.append(f"# Constants you may set\n{rows}")
    if repair is not None:
        exp, tail = repair
        parts.append(
            f"# The last idea crashed\nExperiment {exp.id} ({exp.description}) failed: {exp.reason.splitlines()[0] if exp.reason else ''}\n"
            f"Its diff:\n```diff\n{_trim(exp.diff, 3000)}\n```\nLast lines of its log:\n```\n{_trim(tail, 3000)}\n```\n"
            "Propose a fixed version of that idea (your edits apply to the incumbent, so include the idea's "
            "changes together with the fix), or a different idea if it cannot work."
        )
    parts.append("# Your task\nPropose the next experiment." if knobs is None else
                 "# Your task\nGive new values (JSON).")
    return "\n\n".join(parts)


def knobs_schema(space: Mapping[str, Space], current: Mapping[str, Any], *, offer: int = 0,
                 rng: random.Random | None = None,
                 exclude: Mapping[str, set[Any]] | None = None) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The JSON schema of a knobs-mode answer and what the prompt lists per constant.

    The answer is ``{"changes": [{"name": N, "value": V}, ...1-3], "description": str}``
    where each value is one of the constant's grid values other than the current one:
    with grammar-constrained decoding every answer is a valid change by construction.
    With ``offer`` > 0 only that many constants (drawn with ``rng``) are offered, and the
    values are listed in a shuffled order: small models tend to take the first option, and
    this is what keeps their proposals diverse. ``exclude`` drops values already tried
    (or just refused as duplicates) per constant.
    """
    options = []
    info: dict[str, dict[str, Any]] = {}
    names = sorted(space)
    if offer > 0 and rng is not None and offer < len(names):
        names = sorted(rng.sample(names, offer))
    for name in names:
        sp = space[name]
        grid = [v for v in knob_grid(sp, current[name]) if v not in (exclude or {}).get(name, ())]
        if rng is not None:
            rng.shuffle(grid)
        if not grid:
            continue
        options.append({
            "type": "object",
            "properties": {"name": {"const": name}, "value": {"enum": grid}},
            "required": ["name", "value"],
            "additionalProperties": False,
        })
        info[name] = {"current": current[name], "range": f"one of {grid}"}
    schema = {
        "type": "object",
        "properties": {
            "changes": {"type": "array", "items": {"anyOf": options}, "minItems": 1, "maxItems": 3},
            "description": {"type": "string", "maxLength": 120},
        },
        "required": ["changes", "description"],
        "additionalProperties": False,
    }
    return schema, info


def parse_knobs_answer(text: str, space: Mapping[str, Space], current: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(description, changed values) from a knobs-mode JSON answer (see ``knobs_schema``);
    raises ValueError with what is wrong. Pure."""
    try:
        data = json.loads(text.strip().removeprefix("```json").removeprefix("```").removesuffix("```"))
    except json.JSONDecodeError as e:
        raise ValueError(f"the answer is not valid JSON ({e.msg} at character {e.pos})") from None
    if not isinstance(data, dict) or not isinstance(data.get("changes"), list):
        raise ValueError('the answer must be an object with "changes" (a list of {"name", "value"}) and "description"')
    changes: dict[str, Any] = {}
    problems = []
    for item in data["changes"]:
        if not isinstance(item, dict) or "name" not in item or "value" not in item:
            problems.append(f"{item!r} is not a {{\"name\", \"value\"}} object")
            continue
        name, value = item["name"], item["value"]
        if name not in space:
            problems.append(f"{name} is not one of the constants ({', '.join(sorted(space))})")
            continue
        sp = space[name]
        if sp.kind != "choice" and (isinstance(value, bool) or not isinstance(value, (int, float))):
            problems.append(f"{name}: {value!r} is not a number")
            continue
        if sp.to_param(value) is None:
            problems.append(f"{name}: {value!r} is outside its allowed range")
            continue
        if value != current[name]:
            changes[name] = value
    if problems:
        raise ValueError("; ".join(problems))
    if not changes:
        raise ValueError("no value differs from the current one; change one to three constants")
    return str(data.get("description") or "").strip()[:200], changes


@dataclass
class LLMProposer:
    """Proposes changes with a chat model (see the module docstring)."""

    client: Client
    table: LLMTable
    editable: tuple[str, ...]
    knobs: KnobsProposer | None = None  # the knob finder (mode "knobs") and the fallback (on_error "knobs")
    name: str = "llm"
    notes: list[str] = field(default_factory=list)
    stop_reason: str | None = None
    fallback_reason: str | None = None
    # code hashes of this proposer's own proposals: ones still pending have no hash in the
    # ledger yet (proposals prepared ahead)
    proposed: set[str] = field(default_factory=set)

    # -- budget ------------------------------------------------------------------------------
    def _budget_left(self, history: Sequence[Experiment]) -> str | None:
        """Why no more calls may be made, or None."""
        # every proposal's tokens reach the ledger with it (its pending row), so the
        # history holds all that was spent
        tokens = sum(e.tokens for e in history)
        cost = sum(e.cost for e in history)
        t = self.table
        if t.max_total_tokens is not None and tokens >= t.max_total_tokens:
            return f"token budget reached: {tokens} of {t.max_total_tokens} tokens spent ([proposer.llm] max_total_tokens)"
        if t.max_total_cost is not None and cost >= t.max_total_cost:
            return f"money budget reached: ${cost:.4f} of ${t.max_total_cost:.4f} spent ([proposer.llm] max_total_cost)"
        return None

    # -- proposing ---------------------------------------------------------------------------
    def propose(self, context: ProposalContext) -> Proposal | None:
        if self.fallback_reason is not None:
            return self._fallback(context)
        reason = self._budget_left(context.history)
        if reason is not None:
            self.stop_reason = reason
            return None
        try:
            return self._propose(context)
        except (LLMFatal, LLMUnavailable) as e:
            if self.table.on_error != "knobs" or self.knobs is None:
                raise
            self.fallback_reason = str(e)
            self.notes.append(f"the model cannot be used ({e}); going on with the knobs proposer")
            return self._fallback(context)

    def _fallback(self, context: ProposalContext) -> Proposal | None:
        assert self.knobs is not None
        p = self.knobs.propose(context)
        if p is None:
            return None
        return Proposal(p.description, p.edits, proposer="knobs", meta={**p.meta, "fallback_from": "llm"})

    def _repair_target(self, context: ProposalContext) -> tuple[Experiment, str] | None:
        """The last experiment, when it was an LLM idea that crashed and may be fixed once more."""
        done = [e for e in context.history if e.status.terminal and e.status is not Status.INTERRUPTED]
        if not done or self.table.repair_attempts <= 0:
            return None
        last = done[-1]
        if last.status not in (Status.CRASH, Status.TIMEOUT) or last.proposer != self.name or last.id not in context.crash_logs:
            return None
        root = last.meta.get("repair_of", last.id) if isinstance(last.meta, Mapping) else last.id
        tries = sum(1 for e in context.history if isinstance(e.meta, Mapping) and e.meta.get("repair_of") == root)
        if tries >= self.table.repair_attempts:
            return None
        return last, context.crash_logs[last.id]

    def _propose(self, context: ProposalContext) -> Proposal:
        """Ask the model, check its reply like the engine would (``engine/candidate.py``),
        and tell it what was wrong, up to ``retries`` times; an unusable last reply is still
        a proposal (``meta.invalid``), so its cost reaches the ledger."""
        t = self.table
        repair = self._repair_target(context) if t.mode == "edits" else None
        q = self._question(context, repair)
        tried = {e.code_hash for e in context.history if e.code_hash and code_tried(e.status, e.reason)}  # (as the ledger)
        messages: list[dict[str, str]] = [{"role": "user", "content": q.prompt}]
        tokens, cost, latency = 0, 0.0, 0.0
        problem, text, description = "", "", ""
        for attempt in range(1, t.retries + 2):
            if t.mode == "knobs" and attempt > 1:
                # a fresh question with other options beats arguing with a small model
                q = self._question(context, None, q)
                messages = [{"role": "user", "content": f"{q.prompt}\n\n(Your previous answer could not be used: {problem})"}]
            c: Completion = self.client.complete(q.system, messages, json_schema=q.schema)
            tokens += c.input_tokens + c.output_tokens
            cost += cost_of(c.input_tokens, c.output_tokens, t.price_in, t.price_out)
            latency += c.latency_s
            text = c.text
            meta: dict[str, Any] = {"model": self.client.model, "attempts": attempt, "latency_s": round(latency, 3),
                                    "input_tokens": c.input_tokens, "output_tokens": c.output_tokens}
            try:
                description, edits = self._interpret(text, q, context, meta)
                self._check(context, q, edits, meta, tried)
                if repair is not None:
                    meta["repair_of"] = repair[0].meta.get("repair_of", repair[0].id) if isinstance(repair[0].meta, Mapping) else repair[0].id
                return Proposal(description=description, edits=tuple(edits), proposer=self.name, meta=meta,
                                tokens=tokens, cost=cost)
            except (ValueError, EditError) as e:
                problem = str(e)
            if t.mode != "knobs":
                messages += [{"role": "assistant", "content": text or "(empty)"},
                             {"role": "user", "content": f"That reply cannot be used: {problem}\nReply again in the required format."}]
        return Proposal(
            description=description or "unusable model reply",
            edits=(), proposer=self.name, tokens=tokens, cost=cost,
            meta={"invalid": f"the model's reply could not be used after {t.retries + 1} attempts: {problem}",
                  "reply": text[:4000], "model": self.client.model},
        )

    def _question(self, context: ProposalContext, repair: tuple[Experiment, str] | None,
                  again: "_Question | None" = None) -> "_Question":
        """What to ask: free edits, or (mode "knobs") a choice among grid values of a few
        constants; ``again``: a fresh knobs question after an unusable answer."""
        t = self.table
        if t.mode != "knobs":
            prompt = build_prompt(context, editable=self.editable, history_n=t.history,
                                  readonly_chars=t.readonly_chars, repair=repair)
            return _Question(SYSTEM_EDITS, prompt)
        assert self.knobs is not None
        if again is not None:
            q = again
        else:
            knob_list, space = self.knobs.survey(context.files, context.readonly)
            current = {k.name: k.value for k in knob_list if k.name in space}
            q = _Question(SYSTEM_KNOBS, "", space=space, current=current, knob_list=knob_list,
                          rng=random.Random(len(context.history) * 7919 + self.table.seed),
                          banned=_tried_single_changes(context))
        schema, info = knobs_schema(q.space, q.current, offer=t.knobs_offer, rng=q.rng, exclude=q.banned)
        prompt = build_prompt(context, editable=self.editable, history_n=t.history, readonly_chars=0, knobs=info)
        return dataclasses.replace(q, prompt=prompt, schema=schema)

    def _interpret(self, text: str, q: "_Question", context: ProposalContext,
                   meta: dict[str, Any]) -> tuple[str, list[FileEdit]]:
        """The description and edits a reply asks for; ValueError says what is wrong with it."""
        if self.table.mode == "knobs":
            description, changes = parse_knobs_answer(text, q.space, q.current)
            meta["changes"] = dict(changes)
            by_name = {k.name: k for k in q.knob_list}
            changes = {n: v for n, v in changes.items() if written_value(by_name[n], v) != by_name[n].value}
            if not changes:
                raise ValueError("no value differs from the current one once written; change one to three constants")
            compiled, env = self.knobs._constraints(q.knob_list, context.files, context.readonly) if self.knobs else ([], {})
            bad = broken(compiled, {**env, **changes})
            if bad is not None:
                raise ValueError(f"these values break the constraint {bad.text}; choose values that keep it")
            return (describe(q.knob_list, changes) + (f" ({description})" if description else ""),
                    list(render_edits(q.knob_list, changes)))
        parsed = parse_reply(text)
        if parsed.problems:
            raise ValueError("; ".join(parsed.problems))
        if not parsed.description:
            raise ValueError("the first line must describe the change")
        meta["rationale"] = parsed.rationale
        return parsed.description, list(parsed.edits)

    def _check(self, context: ProposalContext, q: "_Question", edits: list[FileEdit], meta: Mapping[str, Any],
               tried: set[str]) -> None:
        """The engine's own checks, so the model hears what is wrong while the conversation is open."""
        try:
            candidate = check_candidate(context.files, edits, Rules(self.editable,
                                                                    tried=dict.fromkeys(tried | self.proposed, -1)))
        except Refused as r:
            if r.kind != "duplicate":
                raise ValueError(r.reason) from None
            for n, v in meta.get("changes", {}).items():  # knobs: not offered again in the retry
                q.banned.setdefault(n, set()).add(v)
            raise ValueError("exactly this code was already tried in an earlier experiment; "
                             "propose something else") from None
        self.proposed.add(candidate.code_hash)


@dataclass(frozen=True)
class _Question:
    system: str
    prompt: str
    schema: dict[str, Any] | None = None
    space: Mapping[str, Space] = field(default_factory=dict)
    current: Mapping[str, Any] = field(default_factory=dict)
    knob_list: Sequence[Any] = ()
    rng: random.Random = field(default_factory=random.Random)
    banned: dict[str, set[Any]] = field(default_factory=dict)


def _tried_single_changes(context: ProposalContext) -> dict[str, set[Any]]:
    """Single-constant changes already tried on this incumbent: not offered again."""
    banned: dict[str, set[Any]] = {}
    for e in context.history:
        ch = e.meta.get("changes") if isinstance(e.meta, Mapping) else None
        if e.parent == context.incumbent_commit and isinstance(ch, Mapping) and len(ch) == 1:
            for n, v in ch.items():
                banned.setdefault(n, set()).add(v)
    return banned


@dataclass
class HybridProposer:
    """The LLM proposes structural changes; after each kept LLM change the knobs proposer
    tunes the numeric constants of the new incumbent for ``knobs_trials`` proposals, then
    the LLM takes over again. The schedule is read from the history, so it survives a
    restart."""

    llm: LLMProposer
    knobs: KnobsProposer
    knobs_trials: int = 3
    name: str = "hybrid"

    @property
    def notes(self) -> list[str]:
        return self.llm.notes

    @property
    def stop_reason(self) -> str | None:
        return self.llm.stop_reason

    def next_kind(self, history: Sequence[Experiment]) -> str:
        last_keep = max((e.id for e in history if e.proposer == "llm" and e.status is Status.KEEP), default=None)
        if last_keep is None or self.knobs_trials <= 0:
            return "llm"
        since = sum(1 for e in history if e.id > last_keep and e.proposer == "knobs")
        return "knobs" if since < self.knobs_trials else "llm"

    def propose(self, context: ProposalContext) -> Proposal | None:
        if self.next_kind(context.history) == "knobs":
            p = self.knobs.propose(context)
            if p is not None:
                return p
        return self.llm.propose(context)

