"""The Proposer contract: one suite, run against every proposer kind.

Each kind is built for real by ``make_proposer`` from the config of a real synthetic arena
(a git repository): the llm and hybrid proposers talk to ``FakeLLMServer`` (a real HTTP
server on 127.0.0.1 speaking the OpenAI protocol, through the real SDK); the agent proposer
runs a small Python script as its coding agent; the scripted proposer reads a proposals
file. Contexts are built as the engine builds them (``CampaignEngine.proposal_context``): the
editable files and the program at the incumbent commit, the readonly files at the base
commit, and a history of ``Experiment`` records; an experiment that was "tried" is a real
commit made through ``Workspace`` with its code hash, diff and the proposal's meta as the
ledger gives it back (a JSON round trip).

The contract, checked for every kind (where a kind legitimately differs, the test says so):

1. ``name`` is non-empty; ``propose`` returns a ``Proposal`` (or None) with a description;
2. the edits apply to ``context.files`` (``apply_edits``), touch only editable files and
   change something, or the proposal is explicitly unusable (``meta["invalid"]``, no edits);
3. ``propose`` does not mutate the context (files, history);
4. ``meta`` is JSON-serialisable and the proposal survives the ledger's JSON round trip;
5. a fresh proposer built the same way, given the same context, proposes the same change
   (the history is the only memory a resumed campaign has);
6. with its previous proposal in the history as tried, it does not propose the same code
   again (or returns None / an invalid proposal); behaviour per kind in ``AFTER_TRIED``;
7. a proposer with nothing more to offer returns None.

Properties 1-4 are checked on *every* proposal made in this file (``propose_checked``).
No campaign is run; ``propose`` is called directly, so the suite takes seconds.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from autoresearch.config import Config, load_config
from autoresearch.edits import apply_edits, code_hash, unified_diff
from autoresearch.errors import ConfigError, EditError
from autoresearch.protocols import ProposalContext
from autoresearch.proposers import make_proposer
from autoresearch.records import Experiment, FileEdit, Proposal, Status
from autoresearch.testing import (FakeLLMServer, constant_edit, make_synthetic_arena, search_replace_reply,
                                  synthetic_true_loss, write_proposals)
from autoresearch.store.workspace import Workspace

WIDTH_LINE = "WIDTH = 64             # pretend model width"
DROPOUT_LINE = "DROPOUT = 0.3          # pretend regularisation"
TAG = "contract"
TOKEN_BUDGET = 5000  # [proposer.llm] max_total_tokens of the llm kinds
REPLY_TOKENS = {"input_tokens": 120, "output_tokens": 30}

# kind id -> the kind make_proposer gets. "hybrid" starts in its llm phase (no llm change
# kept yet); "hybrid-knobs-phase" has an llm change kept as the incumbent, so its next
# proposals come from its knobs proposer.
KINDS = {
    "knobs": "knobs",
    "llm-edits": "llm",
    "llm-knobs": "llm",
    "hybrid": "hybrid",
    "hybrid-knobs-phase": "hybrid",
    "agent": "agent",
    "scripted": "scripted",
}
LLM_MODE = {"llm-edits": "edits", "llm-knobs": "knobs", "hybrid": "edits", "hybrid-knobs-phase": "edits"}


# -- the fake model: a deterministic function of the request ---------------------------------------
# It proposes a wider model, and only when the harness told it that its answer had been
# tried already does it propose something else (less dropout). So a different second
# proposal proves the *proposer's* duplicate check, not the model's own judgement.
def _refused(body: dict[str, Any]) -> bool:
    users = [m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "user"]
    return bool(users) and "already tried" in users[-1]


def edits_model(body: dict[str, Any]) -> dict[str, Any]:
    if _refused(body):
        text = search_replace_reply("less dropout", "train.py", DROPOUT_LINE, "DROPOUT = 0.2          # pretend regularisation")
    else:
        text = search_replace_reply("widen the model to 128", "train.py", WIDTH_LINE,
                                    "WIDTH = 128            # pretend model width")
    return {"text": text, **REPLY_TOKENS}


def knobs_model(body: dict[str, Any]) -> dict[str, Any]:
    change = {"name": "DROPOUT", "value": 0.5} if _refused(body) else {"name": "WIDTH", "value": 128}
    return {"text": json.dumps({"changes": [change], "description": "a guess"}), **REPLY_TOKENS}


def garbage_model(body: dict[str, Any]) -> dict[str, Any]:
    return {"text": "I would lower the learning rate, I think.", **REPLY_TOKENS}


# -- the fake coding agent: deterministic, and stubborn (it does not read the history) -------------
AGENT_WIDEN = r'''
import os, re
assert os.path.isfile(os.environ["AUTORESEARCH_PROMPT_FILE"])
src = open("train.py").read()
open("train.py", "w").write(re.sub(r"^WIDTH = 64 ", "WIDTH = 128", src, flags=re.M))
print("reading the program and the history...")
print("widen the model to 128")
'''
AGENT_IDLE = 'print("I have no idea")\n'

SCRIPTED = [
    {"description": "widen the model to 128", "edits": [constant_edit("WIDTH", 64, 128)]},
    {"description": "less dropout", "edits": [constant_edit("DROPOUT", 0.3, 0.2)]},
]


# -- one setup per kind ------------------------------------------------------------------------------
@dataclass
class Setup:
    kind: str
    arena: Path
    config: Config
    options: dict[str, Any]
    ws: Workspace
    base: str
    incumbent: str
    incumbent_metric: float
    history: list[Experiment]  # what the ledger holds before the first proposal
    server: FakeLLMServer | None = None

    @property
    def editable(self) -> tuple[str, ...]:
        return tuple(self.config.arena.editable)

    def build(self) -> Any:
        """A proposer as the CLI builds it; a second call is a restarted harness."""
        return make_proposer(KINDS[self.kind], self.config, self.arena, dict(self.options))

    def context(self, history: list[Experiment] | None = None) -> ProposalContext:
        """As ``CampaignEngine.proposal_context`` builds it."""
        cfg = self.config
        files = {k: v for k, v in self.ws.read_files(self.incumbent, self.editable).items() if v is not None}
        readonly = {k: v for k, v in self.ws.read_files(self.base, tuple(cfg.arena.readonly)).items() if v is not None}
        program = ""
        if cfg.arena.program:
            program = self.ws.read_files(self.incumbent, (cfg.arena.program,)).get(cfg.arena.program) or ""
        return ProposalContext(
            incumbent_commit=self.incumbent, incumbent_metric=self.incumbent_metric, files=files,
            history=list(self.history if history is None else history), metric=cfg.metric.name,
            goal=cfg.metric.goal, program=program, readonly=readonly, noise_sd=None, crash_logs={}, tag=TAG,
        )

    def tried(self, proposal: Proposal, context: ProposalContext, *, status: Status = Status.DISCARD,
              metric_delta: float = 0.05) -> Experiment:
        """The proposal as the ledger knows it once it ran: a real commit on the incumbent,
        its diff and code hash, and its meta as read back from JSON."""
        new = apply_edits(context.files, proposal.edits, self.editable)
        return record(self.ws, context, new, id=max(e.id for e in context.history) + 1, status=status,
                      description=proposal.description, proposer=proposal.proposer or "?",
                      metric=context.incumbent_metric + metric_delta,
                      meta=json.loads(json.dumps(proposal.to_json()))["meta"],
                      tokens=proposal.tokens, cost=proposal.cost)


def record(ws: Workspace, context: ProposalContext, new: dict[str, str], **kw: Any) -> Experiment:
    commit = ws.commit_files(context.incumbent_commit, new, f"autoresearch {TAG} #{kw['id']}: {kw['description']}")
    full = {**context.files, **new}
    return Experiment(parent=context.incumbent_commit, commit=commit, diff=unified_diff(context.files, new),
                      code_hash=code_hash(full), runs_n=1, **kw)


def make_setup(kind: str, tmp: Path, llm_server: FakeLLMServer, *, model: Callable[..., Any] | None = None,
               agent: str = AGENT_WIDEN, overrides: dict[str, dict[str, Any]] | None = None) -> Setup:
    proposer_kind = KINDS[kind]
    cfg: dict[str, dict[str, Any]] = {"proposer": {"kind": proposer_kind, "lookahead": 0}}
    options: dict[str, Any] = {}
    server = None
    if kind in LLM_MODE:
        mode = LLM_MODE[kind]
        server = llm_server
        server.queue.clear()
        server.requests.clear()
        server.default = model or (knobs_model if mode == "knobs" else edits_model)
        cfg["proposer.llm"] = {"model": "fake-model", "base_url": server.openai_url, "mode": mode, "max_attempts": 1,
                               "timeout_s": 10, "retries": 2, "max_total_tokens": TOKEN_BUDGET}
    elif kind == "agent":
        script = tmp / "fake_agent.py"
        script.write_text(agent)
        cfg["proposer.agent"] = {"command": f"{sys.executable} {script}", "timeout_s": 30}
    elif kind == "scripted":
        options["proposals"] = write_proposals(tmp / "proposals.json", SCRIPTED)
    cfg.update(overrides or {})
    arena = make_synthetic_arena(tmp / "arena", config_overrides=cfg)
    config = load_config(arena).config
    ws = Workspace(arena)
    base = ws.head()
    metric = synthetic_true_loss(0.01, 64, 0.3, 500)
    files = {k: v for k, v in ws.read_files(base, tuple(config.arena.editable)).items() if v is not None}
    history = [Experiment(id=0, status=Status.KEEP, description="baseline", proposer="baseline", parent=None,
                          commit=base, metric=metric, code_hash=code_hash(files), runs_n=1)]
    setup = Setup(kind, arena, config, options, ws, base, base, metric, history, server)
    if kind == "hybrid-knobs-phase":
        # an llm change (outside the knobs) was kept and is the incumbent now
        ctx = setup.context()
        main = 'if __name__ == "__main__":'
        new = {"train.py": ctx.files["train.py"].replace(main, f"# a kept idea of the model\n{main}")}
        kept = record(ws, ctx, new, id=1, status=Status.KEEP, description="a kept idea", proposer="llm",
                      metric=metric - 0.01, meta={"model": "fake-model"}, tokens=150)
        setup.history.append(kept)
        setup.incumbent, setup.incumbent_metric = kept.commit, kept.metric  # type: ignore[assignment]
    return setup


@pytest.fixture(scope="module")
def llm_server() -> Iterator[FakeLLMServer]:
    # one server for the module (stopping one takes half a second); each setup resets its
    # queue, its record of requests and its model
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def factory(tmp_path: Path, llm_server: FakeLLMServer) -> Callable[..., Setup]:
    n = iter(range(100))

    def make(kind: str, **kw: Any) -> Setup:
        d = tmp_path / f"s{next(n)}"
        d.mkdir()
        return make_setup(kind, d, llm_server, **kw)

    return make


@pytest.fixture(params=list(KINDS))
def setup(request: pytest.FixtureRequest, factory: Callable[..., Setup]) -> Setup:
    return factory(request.param)


# -- properties 1-4, checked on every proposal --------------------------------------------------------
def propose_checked(proposer: Any, context: ProposalContext, editable: tuple[str, ...]) -> Proposal | None:
    # 1. a name
    assert isinstance(proposer.name, str) and proposer.name.strip()
    files_before = dict(context.files)
    history_before = copy.deepcopy(list(context.history))
    history_ids = [id(e) for e in context.history]

    proposal = proposer.propose(context)

    # 3. the context is left as it was (nothing added to the history, no file rewritten,
    # no experiment's meta changed in place)
    assert dict(context.files) == files_before
    assert list(context.history) == history_before and [id(e) for e in context.history] == history_ids
    if proposal is None:
        return None
    # 1. a Proposal with a description
    assert isinstance(proposal, Proposal)
    assert isinstance(proposal.description, str) and proposal.description.strip()
    assert all(isinstance(e, FileEdit) for e in proposal.edits)
    # 2. usable edits, or explicitly unusable
    if proposal.meta.get("invalid"):
        assert proposal.edits == () and isinstance(proposal.meta["invalid"], str)
    else:
        assert proposal.edits, "a usable proposal has edits"
        new = apply_edits(context.files, proposal.edits, editable)
        assert set(new) <= set(editable)
        assert {**context.files, **new} != dict(context.files), "the edits change nothing"
    # 4. the ledger's JSON round trip (strictly: the ledger's default=str would hide a
    # non-serialisable value by turning it into a string)
    stored = json.loads(json.dumps(proposal.to_json(), allow_nan=False))
    assert tuple(FileEdit(**e) for e in stored["edits"]) == proposal.edits
    assert stored["meta"] == dict(proposal.meta)
    assert stored["description"] == proposal.description
    return proposal


def same_change(p: Proposal) -> tuple[Any, ...]:
    """What a proposal proposes, without wall-clock facts (latency, an agent's seconds) and
    without where the agent's log went (numbered per instance; see
    test_a_restarted_agent_keeps_the_logs_the_history_points_at)."""
    meta = {k: v for k, v in p.meta.items() if k not in ("latency_s", "agent_seconds", "agent_log")}
    return (p.description, p.edits, p.proposer, p.tokens, p.cost, json.dumps(meta, sort_keys=True))


def new_code_hash(p: Proposal, context: ProposalContext, editable: tuple[str, ...]) -> str:
    return code_hash({**context.files, **apply_edits(context.files, p.edits, editable)})


# -- the contract -------------------------------------------------------------------------------------
def test_name_description_and_usable_edits(setup: Setup):
    """Properties 1-4 on the first proposal of a campaign (only the baseline in the history)."""
    proposer = setup.build()
    ctx = setup.context()
    p = propose_checked(proposer, ctx, setup.editable)
    # every kind has something to propose at the start, and here it is usable
    assert p is not None and not p.meta.get("invalid"), p
    if setup.kind == "hybrid-knobs-phase":
        assert p.proposer == "knobs" and setup.server is not None and setup.server.requests == []
    elif setup.kind == "hybrid":
        assert p.proposer == "llm"
    else:
        assert p.proposer == proposer.name
    # the edit applies to the incumbent (not the base) for a non-base incumbent too
    assert ctx.incumbent_commit == setup.incumbent


def test_propose_does_not_mutate_its_context(setup: Setup):
    """Property 3, also with a history whose experiments carry meta (dicts a proposer could
    change in place) and over repeated calls on one context."""
    proposer = setup.build()
    first = propose_checked(proposer, setup.context(), setup.editable)
    assert first is not None
    ctx = setup.context()
    history = [*ctx.history, setup.tried(first, ctx)]
    frozen = copy.deepcopy(history)
    ctx2 = setup.context(history)
    propose_checked(proposer, ctx2, setup.editable)
    propose_checked(proposer, ctx2, setup.editable)
    assert history == frozen and list(ctx2.history) == frozen


def test_meta_is_json_and_survives_the_ledger(setup: Setup):
    """Property 4, on a first proposal and on one made with that one in the history (where
    the knobs proposer reads its stored spaces back from the JSON'd meta)."""
    proposer = setup.build()
    ctx = setup.context()
    p = propose_checked(proposer, ctx, setup.editable)
    assert p is not None
    json.dumps(dict(p.meta), allow_nan=False)
    ctx2 = setup.context([*ctx.history, setup.tried(p, ctx)])
    p2 = propose_checked(proposer, ctx2, setup.editable)
    if p2 is not None:
        json.dumps(dict(p2.meta), allow_nan=False)


def test_a_restarted_proposer_proposes_the_same_change(setup: Setup):
    """Property 5: nothing but the context decides the proposal. Every kind here is
    deterministic (knobs: seeded Optuna; llm/hybrid: the scripted server answers the same
    request the same way; agent: a deterministic script; scripted: the file), so a fresh
    instance (a restarted harness) must propose exactly what the first one did, first with
    only the baseline, then after a tried experiment."""
    ctx = setup.context()
    a = propose_checked(setup.build(), ctx, setup.editable)
    b = propose_checked(setup.build(), setup.context(), setup.editable)
    assert a is not None and b is not None
    assert same_change(a) == same_change(b)
    if setup.server is not None and setup.server.requests:
        # the model was asked exactly the same question both times
        assert setup.server.requests[0] == setup.server.requests[1]

    history = [*ctx.history, setup.tried(a, ctx)]
    c = propose_checked(setup.build(), setup.context(history), setup.editable)
    d = propose_checked(setup.build(), setup.context(history), setup.editable)
    assert (c is None) == (d is None)
    if c is not None and d is not None:
        assert same_change(c) == same_change(d)


# Property 6, per kind: what a proposer does when its previous proposal is in the history
# as tried (discarded).
AFTER_TRIED = {
    # knobs: every experiment in the history becomes an Optuna trial and an untried
    # parameter vector is asked for, so the tried one never comes back
    "knobs": "other",
    # llm (both modes): the code hash of a reply is checked against the history's; a
    # duplicate is refused and the model told so ("already tried"), within the same
    # proposal (retries); after `retries` refusals the proposal is invalid
    "llm-edits": "other",
    "llm-knobs": "other",
    "hybrid": "other",  # in its llm phase: as llm
    "hybrid-knobs-phase": "other",  # in its knobs phase: as knobs
    # scripted: entries are replayed by index (meta "index" in the history); the next
    # entry is proposed whatever its code. It differs here because the file's entries do.
    "scripted": "other",
    # agent: the proposer does not dedupe. A stubborn agent proposes the same code again;
    # the engine refuses it before any run ("duplicate: the same code was already tried as
    # experiment N", CampaignLoop's build step) and records it as invalid. A legitimate
    # difference: retrying would mean running the agent again, which costs as much as the
    # next proposal does.
    "agent": "same",
}


def test_a_tried_change_is_not_proposed_again(setup: Setup):
    """Property 6."""
    ctx = setup.context()
    proposer = setup.build()
    first = propose_checked(proposer, ctx, setup.editable)
    assert first is not None and not first.meta.get("invalid")
    tried = setup.tried(first, ctx)
    ctx2 = setup.context([*ctx.history, tried])
    again = propose_checked(proposer, ctx2, setup.editable)  # the same instance: an uninterrupted campaign
    resumed = propose_checked(setup.build(), ctx2, setup.editable)  # a fresh one: a resumed campaign
    for p in (again, resumed):
        if AFTER_TRIED[setup.kind] == "same":
            assert p is not None and new_code_hash(p, ctx2, setup.editable) == tried.code_hash
        elif p is not None and not p.meta.get("invalid"):
            assert new_code_hash(p, ctx2, setup.editable) != tried.code_hash, p
    assert again is not None and resumed is not None and same_change(again) == same_change(resumed)
    if setup.kind == "scripted":
        assert again.meta["index"] == first.meta["index"] + 1
    if setup.server is not None and setup.server.requests:
        # the llm's own duplicate check refused the model's repeat and said why
        # (the fake model only changes its answer after that feedback)
        assert any(_refused(r) for r in setup.server.requests)


def test_a_stubborn_model_gives_an_invalid_proposal_not_a_repeat(factory: Callable[..., Setup]):
    """Property 6 for llm when the model keeps repeating a tried change through all
    retries: the proposal is explicitly unusable, never the tried code."""
    stubborn = lambda body: {"text": search_replace_reply(  # noqa: E731
        "widen the model to 128", "train.py", WIDTH_LINE, "WIDTH = 128            # pretend model width"), **REPLY_TOKENS}
    s = factory("llm-edits", model=stubborn)
    proposer = s.build()
    ctx = s.context()
    first = propose_checked(proposer, ctx, s.editable)
    assert first is not None
    ctx2 = s.context([*ctx.history, s.tried(first, ctx)])
    p = propose_checked(s.build(), ctx2, s.editable)
    assert p is not None and p.edits == ()
    assert "already tried" in p.meta["invalid"] and p.meta["invalid"].startswith("the model's reply could not be used after 3 attempts")
    assert p.tokens == 3 * 150  # the refused replies are paid for and reach the ledger


# Property 6 for proposals still in flight: prepared ahead (lookahead) or running in
# another slot, they are in the history as ``pending`` rows: the proposal's meta and the
# code hash of its edits on the incumbent it was proposed for (the engine computes it when
# it registers the proposal), no commit yet. A restarted harness finds them there, so a
# fresh proposer must avoid them from the history alone.


def test_an_in_flight_change_is_not_proposed_again(setup: Setup):
    ctx = setup.context()
    first = propose_checked(setup.build(), ctx, setup.editable)
    assert first is not None and not first.meta.get("invalid")
    pending = Experiment(id=max(e.id for e in ctx.history) + 1, status=Status.PENDING, description=first.description,
                         proposer=first.proposer, parent=ctx.incumbent_commit, commit=None,
                         meta=json.loads(json.dumps(first.to_json()))["meta"], tokens=first.tokens,
                         cost=first.cost, code_hash=new_code_hash(first, ctx, setup.editable))
    ctx2 = setup.context([*ctx.history, pending])
    p = propose_checked(setup.build(), ctx2, setup.editable)  # a restarted harness
    assert p is not None
    repeated = not p.meta.get("invalid") and new_code_hash(p, ctx2, setup.editable) == new_code_hash(first, ctx, setup.editable)
    # agent: no dedupe in the proposer (see AFTER_TRIED); the engine refuses the duplicate
    assert repeated == (setup.kind == "agent")


def test_scripted_replays_an_entry_even_when_it_no_longer_applies(factory: Callable[..., Setup]):
    """Property 2, where scripted legitimately differs: it replays its file and does not
    check entries against the incumbent. After entry 0 (WIDTH 64 -> 128) is kept, entry 1
    (also written against WIDTH = 64) no longer applies; the proposer still returns it
    unflagged, and the engine refuses it before any run (an invalid experiment)."""
    s = factory("scripted")
    entries = [{"description": "widen to 128", "edits": [constant_edit("WIDTH", 64, 128)]},
               {"description": "widen to 256", "edits": [constant_edit("WIDTH", 64, 256)]}]
    s.options["proposals"] = write_proposals(s.arena.parent / "conflicting.json", entries)
    proposer = s.build()
    ctx = s.context()
    first = propose_checked(proposer, ctx, s.editable)
    assert first is not None
    kept = s.tried(first, ctx, status=Status.KEEP, metric_delta=-0.1)
    s.incumbent, s.incumbent_metric = kept.commit, kept.metric  # type: ignore[assignment]
    ctx2 = s.context([*ctx.history, kept])
    second = proposer.propose(ctx2)
    assert second is not None and second.meta == {"index": 1} and not second.meta.get("invalid")
    with pytest.raises(EditError, match="matches nothing"):
        apply_edits(ctx2.files, second.edits, s.editable)


# Property 7, per kind: a history after which the proposer has nothing more to offer, and
# what it does then.
def exhausted_history(s: Setup) -> tuple[list[Experiment], str]:
    ctx = s.context()
    if s.kind == "scripted":
        # every entry of the file is in the history
        history, proposer = list(ctx.history), s.build()
        for _ in SCRIPTED:
            c = s.context(history)
            p = propose_checked(proposer, c, s.editable)
            assert p is not None
            history.append(s.tried(p, c))
        return history, "none"
    if s.kind in LLM_MODE:
        # an earlier proposal spent the token budget
        p = propose_checked(s.build(), ctx, s.editable)
        assert p is not None
        spent = dataclasses.replace(s.tried(p, ctx), tokens=TOKEN_BUDGET)
        # the hybrid's knobs phase needs no model and goes on until the llm's turn comes
        return [*ctx.history, spent], "proposal" if s.kind == "hybrid-knobs-phase" else "none"
    # knobs: see test_knobs_with_its_space_exhausted; agent: an agent is always asked
    # (no budget, no list) and an agent with nothing to offer yields an invalid proposal
    # (test_unusable_proposals_are_marked_invalid)
    return list(ctx.history), "proposal"


def test_nothing_more_to_offer_is_none(setup: Setup):
    """Property 7."""
    history, expected = exhausted_history(setup)
    asked_before = len(setup.server.requests) if setup.server is not None else 0
    proposer = setup.build()
    p = propose_checked(proposer, setup.context(history), setup.editable)
    if expected == "none":
        assert p is None
        if setup.server is not None:
            assert len(setup.server.requests) == asked_before  # no call once the budget is spent
            assert proposer.stop_reason.startswith("token budget reached: ")
            assert f"of {TOKEN_BUDGET} tokens spent" in proposer.stop_reason
    else:
        assert p is not None and not p.meta.get("invalid")


def test_knobs_with_its_space_exhausted(factory: Callable[..., Setup]):
    """Property 7 for knobs: one power-of-two knob (WIDTH 64: 16..256) has four other values."""
    s = factory("knobs", overrides={"proposer.knobs": {"only": ["WIDTH"]}})
    history = list(s.history)
    proposer = s.build()
    seen = set()
    for _ in range(4):
        c = s.context(history)
        try:
            p = propose_checked(proposer, c, s.editable)
        except ConfigError as e:  # too early: not the gap this test is about
            raise AssertionError(f"the space is not exhausted yet: {e}") from None
        assert p is not None
        seen.add(p.meta["knobs"]["params"]["WIDTH"])
        history.append(s.tried(p, c))
    assert len(seen) == 4
    assert propose_checked(proposer, s.context(history), s.editable) is None


@pytest.mark.parametrize("kind, how", [
    ("llm-edits", "garbage"), ("llm-knobs", "garbage"), ("hybrid", "garbage"), ("agent", "idle"),
])
def test_unusable_proposals_are_marked_invalid(factory: Callable[..., Setup], kind: str, how: str):
    """Property 2's other branch: an unusable model reply or an agent that changed nothing
    gives a Proposal with meta["invalid"] and no edits (and properties 1, 3, 4 still hold)."""
    s = factory(kind, model=garbage_model, agent=AGENT_IDLE)
    p = propose_checked(s.build(), s.context(), s.editable)
    assert p is not None and p.edits == () and p.meta["invalid"]
    if kind == "agent":
        assert p.meta["invalid"] == "the agent changed nothing" and p.description == "I have no idea"
    else:
        assert "could not be used after 3 attempts" in p.meta["invalid"]


def test_a_restarted_agent_keeps_the_logs_the_history_points_at(factory: Callable[..., Setup]):
    """Property 5 for what an agent proposal leaves on disk: the history is the only memory
    across a restart, so a resumed proposer must not reuse the files of experiments in it."""
    s = factory("agent")
    ctx = s.context()
    first = propose_checked(s.build(), ctx, s.editable)
    assert first is not None
    log = Path(first.meta["agent_log"])
    before = log.read_text()
    ctx2 = s.context([*ctx.history, s.tried(first, ctx)])
    resumed = propose_checked(s.build(), ctx2, s.editable)  # a restarted harness
    assert resumed is not None
    assert resumed.meta["agent_log"] != first.meta["agent_log"]
    assert log.read_text() == before


def test_knobs_does_not_give_up_while_untried_values_remain(factory: Callable[..., Setup]):
    """One power-of-two knob, WIDTH 64 in 16..256 (2**4..2**8): after three proposals one
    value was never tried, so there is a change left to propose, and it is that one."""
    s = factory("knobs", overrides={"proposer.knobs": {"only": ["WIDTH"]}})
    history = list(s.history)
    proposer = s.build()
    tried = {6}  # the baseline's 64
    for _ in range(3):
        c = s.context(history)
        try:
            p = propose_checked(proposer, c, s.editable)
        except ConfigError as e:  # too early: not the case this test is about
            raise AssertionError(f"gave up with {sorted(set(range(4, 9)) - tried)} untried: {e}") from None
        assert p is not None
        width = 2 ** p.meta["knobs"]["params"]["WIDTH"]
        tried.add(p.meta["knobs"]["params"]["WIDTH"])
        metric = synthetic_true_loss(0.01, width, 0.3, 500)
        keep = metric < c.incumbent_metric  # type: ignore[operator]
        exp = s.tried(p, c, status=Status.KEEP if keep else Status.DISCARD,
                      metric_delta=metric - c.incumbent_metric)  # type: ignore[operator]
        history.append(exp)
        if keep:
            s.incumbent, s.incumbent_metric = exp.commit, metric  # type: ignore[assignment]
    left = set(range(4, 9)) - tried
    assert len(left) == 1  # three different proposals: one value is left
    p = propose_checked(proposer, s.context(history), s.editable)
    assert p is not None and p.meta["knobs"]["params"]["WIDTH"] in left
