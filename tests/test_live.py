"""The live terminal view: its state model, its rendering, and that `run` uses it on a
terminal (a real pseudo-terminal) and prints plain lines otherwise."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import time

from rich.console import Console

from autoresearch.console import LiveReporter, LiveState
from autoresearch.events import Event, EventKind
from autoresearch.records import Status
from autoresearch.testing import constant_edit, make_synthetic_arena, write_proposals
from conftest import _env, run_cli


def test_live_state_follows_the_events():
    st = LiveState("val_bpb", 300)
    st.apply(Event(EventKind.START, 1, "lower lr", slot="cuda:0"), now=10.0)
    st.apply(Event(EventKind.START, 2, "wider", slot="cuda:1"), now=11.0)
    assert st.running == {"cuda:0": (1, "lower lr", 10.0), "cuda:1": (2, "wider", 11.0)}
    st.apply(Event(EventKind.FINISH, 1, "lower lr", Status.KEEP, 1.2, best=1.2, slot="cuda:0", tokens=900, cost=0.01), now=20.0)
    st.apply(Event(EventKind.FINISH, 2, "wider", Status.CRASH, None, best=1.2, slot="cuda:1", tokens=100, cost=0.002), now=21.0)
    st.apply(Event(EventKind.NOTE, None, detail="the model cannot be used"), now=22.0)
    assert st.running == {}
    assert st.counts == {"keep": 1, "crash": 1} and (st.best, st.best_id) == (1.2, 1)
    assert (st.tokens, round(st.cost, 6)) == (1000, 0.012) and st.notes == ["the model cannot be used"]


def test_live_view_renders_slots_best_counts_and_spend():
    console = Console(record=True, force_terminal=True, width=140)
    live = LiveReporter(console, "val_bpb", 60)
    live(Event(EventKind.START, 3, "try a deeper model", slot="cuda:1"))
    live(Event(EventKind.FINISH, 2, "lower lr", Status.KEEP, 1.234, best=1.234, slot="cuda:0", tokens=500, cost=0.25))
    console.print(live.render())
    text = console.export_text()
    assert "cuda:1" in text and "#3" in text and "try a deeper model" in text and "s/60s" in text
    assert "best val_bpb 1.234000 (#2)" in text and "keep 1" in text and "spent 500 tokens, $0.2500" in text
    assert "#2 keep" in text  # the finished experiment's line, kept in the scrollback


def test_run_on_a_terminal_uses_the_live_view(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena", run_seconds=0.5)
    props = write_proposals(tmp_path / "p.json", [
        {"description": "lower lr", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]}])
    master, slave = pty.openpty()
    env = _env({"TERM": "xterm-256color"})
    env.pop("CI", None)
    proc = subprocess.Popen([sys.executable, "-m", "autoresearch", "run", str(arena), "--proposals", str(props)],
                            stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    out = b""
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=30)
    os.close(master)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "\x1b[" in text and "━" in text  # ANSI control and the live progress bar
    assert "s/10s" in text and "best val_loss" in text  # the slot line (budget 10 s) and the best
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    assert re.search(r"#1 keep\s+val_loss\s+1\.328856", plain), plain


def test_run_into_a_pipe_prints_plain_lines(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena")
    props = write_proposals(tmp_path / "p.json", [
        {"description": "lower lr", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]}])
    r = run_cli("run", arena, "--proposals", props)
    assert r.returncode == 0 and "\x1b[" not in r.stdout and "━" not in r.stdout
    assert "#1 keep" in r.stdout and "#1 running  lower lr" in r.stdout


def test_with_two_slots_the_live_view_draws_a_line_per_slot(tmp_path):
    # `--slots 2` gives two slots with the same descriptor (cpu:1): events name the slot by
    # its label (slot0=cpu:1, slot1=cpu:1), so the view keeps both running lines
    from autoresearch.api import run_campaign

    arena = make_synthetic_arena(tmp_path / "arena", run_seconds=1.0)
    props = write_proposals(tmp_path / "p.json", [
        {"description": f"lr {lr}", "edits": [constant_edit("LEARNING_RATE", 0.01, lr)]} for lr in (0.003, 0.02, 0.005)])
    state = LiveState("val_loss", 10)
    most = 0

    def report(event: Event) -> None:
        nonlocal most
        state.apply(event, time.monotonic())
        most = max(most, len(state.running))

    outcome, _ = run_campaign(arena, tag="s", proposals=props, overrides={"runner.slots": 2}, report=report)
    assert outcome.exit_code == 0, outcome
    assert most == 2
    console = Console(record=True, force_terminal=True, width=140)
    live = LiveReporter(console, "val_loss", 10)
    live(Event(EventKind.START, 1, "a", slot="slot0=cpu:1"))
    live(Event(EventKind.START, 2, "b", slot="slot1=cpu:1"))
    console.print(live.render())
    text = console.export_text()
    assert "slot0=cpu:1" in text and "slot1=cpu:1" in text and "#1" in text and "#2" in text
