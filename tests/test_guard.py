"""The watches behind tampering detection, on a real repository and a real SQLite ledger:
what counts as a change (by kind, not by key), what is put back, what is not a change
(our own writes, refs repacked, another campaign's rows), and objects checked against
their ids."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import zlib
from pathlib import Path

import pytest

from autoresearch.store.gitobjects import GitError
from autoresearch.store.gitwatch import GitWatch, config_includes
from autoresearch.store.ledger import Ledger
from autoresearch.store.ledger_watch import LedgerWatch
from autoresearch.store.ledger_writer import LedgerWriter
from autoresearch.store.workspace import Workspace
from autoresearch.testing import commit_all
from conftest import git


@pytest.mark.parametrize("text, expected", [
    ("[include]\n\tpath = extra.cfg\n", ["/r/.git/extra.cfg"]),
    ('[includeIf "gitdir:~/work/"]\n\tpath = ~/work.cfg\n', ["/home/u/work.cfg"]),
    ("[include]\n\tpath = /etc/abs.cfg ; a comment\n[core]\n\tpath = not-an-include\n", ["/etc/abs.cfg"]),
    ('[INCLUDE]\n\tPath = "quoted.cfg"\n', ["/r/.git/quoted.cfg"]),
    ("[core]\n\tfsmonitor = x\n", []),
    ("[include] path = same-line.cfg\n", ["/r/.git/same-line.cfg"]),
])
def test_config_includes(text, expected):
    assert [str(p) for p in config_includes(text, Path("/r/.git/config"), "/home/u")] == expected


@pytest.fixture
def repo(tmp_path):
    r = tmp_path / "r"
    r.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=r, check=True)
    (r / "a.txt").write_text("a\n")
    commit_all(r, "init")
    git(r, "update-ref", "refs/heads/autoresearch/t", git(r, "rev-parse", "HEAD"))
    return r


def watch(r: Path, tmp_path: Path) -> GitWatch:
    return GitWatch(r / ".git", r, home=str(tmp_path / "home"), xdg=None)


def test_every_kind_of_git_file_change_is_seen_and_put_back(repo, tmp_path):
    w = watch(repo, tmp_path)
    config = (repo / ".git" / "config").read_bytes()
    git(repo, "config", "core.sshCommand", "touch /tmp/x")                       # any key, not a list of keys
    (repo / ".git" / "info" / "grafts").write_text("deadbeef\n")                 # a new file in info/
    (repo / ".git" / "objects" / "info").mkdir(parents=True, exist_ok=True)
    (repo / ".git" / "objects" / "info" / "alternates").write_text("/tmp/elsewhere\n")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / ".gitconfig").write_text("[core]\n\tpager = touch /tmp/y\n")  # the user's own config
    changes = w.scan()
    names = sorted(Path(c.name).name for c in changes)
    assert names == [".gitconfig", "alternates", "config", "grafts"], changes
    for c in changes:
        assert w.restore(c) is None
    assert (repo / ".git" / "config").read_bytes() == config
    assert not (repo / ".git" / "info" / "grafts").exists() and not (tmp_path / "home" / ".gitconfig").exists()
    w.accept()
    assert w.scan() == []


def test_an_included_file_and_a_hooks_mode_are_watched(repo, tmp_path):
    extra = tmp_path / "extra.cfg"
    extra.write_text("[user]\n\tname = me\n")
    git(repo, "config", "include.path", str(extra))
    hook = repo / ".git" / "hooks" / "post-commit"
    hook.write_text("#!/bin/sh\necho hi\n")
    hook.chmod(0o644)  # not executable: git would not run it
    w = watch(repo, tmp_path)
    with open(extra, "a") as f:
        f.write("[core]\n\tfsmonitor = touch /tmp/z\n")
    hook.chmod(0o755)  # same content, now git runs it
    changes = {Path(c.name).name: c for c in w.scan()}
    assert set(changes) == {"extra.cfg", "post-commit"}
    assert 'fsmonitor = touch /tmp/z' in changes["extra.cfg"].describe()
    assert "now mode 755" in changes["post-commit"].describe()
    for c in changes.values():
        assert w.restore(c) is None
    assert extra.read_text() == "[user]\n\tname = me\n" and hook.stat().st_mode & 0o777 == 0o644


def test_refs_as_git_sees_them(repo, tmp_path):
    w = watch(repo, tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "pack-refs", "--all")  # loose refs moved into packed-refs: the same refs
    assert w.scan() == []
    other = git(repo, "commit-tree", "-m", "x", f"{head}^{{tree}}")
    git(repo, "update-ref", "refs/heads/autoresearch/t", other)      # a packed ref overridden by a loose one
    git(repo, "update-ref", f"refs/replace/{head}", other)
    git(repo, "symbolic-ref", "HEAD", "refs/heads/autoresearch/t")
    got = {c.name: (c.before, c.after) for c in w.scan()}
    assert got == {"refs/heads/autoresearch/t": (head, other), f"refs/replace/{head}": (None, other),
                   "HEAD": ("ref: refs/heads/master", "ref: refs/heads/autoresearch/t")} or \
        got == {"refs/heads/autoresearch/t": (head, other), f"refs/replace/{head}": (None, other),
                "HEAD": ("ref: refs/heads/main", "ref: refs/heads/autoresearch/t")}


def test_our_own_ref_writes_are_expected(repo, tmp_path):
    ws = Workspace(repo)
    try:
        w = watch(repo, tmp_path)
        ws.watchers.append(type("W", (), {"before_ref_write": lambda self, ref: None,
                                          "after_ref_write": lambda self, ref: w.expect_ref(ref)})())
        head = ws.head()
        new = ws.commit_files(head, {"a.txt": "b\n"}, "ours")
        ws.update_ref("refs/heads/autoresearch/t", new, head)
        ws.update_ref("refs/autoresearch/t/discarded/1", new)
        ws.delete_ref("refs/autoresearch/t/discarded/1")
        assert w.scan() == []
        git(repo, "update-ref", "refs/heads/autoresearch/t", head)  # and then someone else's
        assert [c.name for c in w.scan()] == ["refs/heads/autoresearch/t"]
    finally:
        ws.close()


def test_an_object_that_does_not_match_its_id_is_refused_and_never_reused(repo):
    ws = Workspace(repo)
    try:
        head = ws.head()
        # plant, under the id of a blob the harness is about to write, other content
        honest = b"LR = 0.003\n"
        sha = ws.objects.hash("blob", honest)
        path = repo / ".git" / "objects" / sha[:2] / sha[2:]
        path.parent.mkdir(exist_ok=True)
        evil = b"import os; os.system('touch /tmp/pwned')\n"
        path.write_bytes(zlib.compress(b"blob %d\0" % len(evil) + evil))
        with pytest.raises(GitError, match="does not match its id"):
            ws.objects.read(sha)
        ws.commit_files(head, {"a.txt": honest.decode()}, "writes the blob again")  # over the planted file
        assert ws.objects.read(sha) == ("blob", honest)
    finally:
        ws.close()


# -- the ledger -----------------------------------------------------------------------------------

def ledger_with_two_campaigns(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    w = LedgerWriter(ledger)
    mine = w.create_campaign(tag="t", branch="autoresearch/t", base_commit="0" * 40, metric="loss", goal="minimize",
                             config={}, readonly={})
    other = w.create_campaign(tag="u", branch="autoresearch/u", base_commit="0" * 40, metric="loss", goal="minimize",
                              config={}, readonly={})
    for c in (mine, other):
        w.add_experiment(c, id=0, description="baseline", proposer="baseline", parent=None,
                         proposal={"description": "baseline", "edits": []}, code_hash="h")
    return ledger, w, mine, other


def test_foreign_writes_to_our_rows_are_found_and_put_back(tmp_path):
    ledger, w, mine, other = ledger_with_two_campaigns(tmp_path)
    watch = LedgerWatch(ledger, mine.id)
    w.finish_experiment(mine, 0, status=__import__("autoresearch.records", fromlist=["Status"]).Status.KEEP,
                        reason="", metric=1.5, metrics={"loss": 1.5})
    assert watch.check() == []  # our own write
    foreign = sqlite3.connect(tmp_path / "ledger.sqlite")
    foreign.execute("UPDATE experiments SET metric = 0.1 WHERE campaign_id = ?", (mine.id,))
    foreign.execute("UPDATE experiments SET metric = 9.9 WHERE campaign_id = ?", (other.id,))  # not ours to watch
    foreign.execute("INSERT INTO runs(campaign_id, experiment_id, attempt, purpose, status, started_at) "
                    "VALUES (?, 0, 1, 'screen', 'ok', 0)", (mine.id,))
    foreign.commit()
    found = watch.check()
    assert any("experiment #0: metric 1.5 -> 0.1" in f for f in found) and any("added" in f for f in found), found
    assert ledger.db.execute("SELECT metric FROM experiments WHERE campaign_id = ?", (mine.id,)).fetchone()[0] == 1.5
    assert ledger.db.execute("SELECT metric FROM experiments WHERE campaign_id = ?", (other.id,)).fetchone()[0] == 9.9
    assert ledger.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
    # a foreign write just before one of ours is found inside our transaction, before ours lands
    foreign.execute("UPDATE campaigns SET goal = 'maximize' WHERE id = ?", (mine.id,))
    foreign.commit()
    w.touch_campaign(mine, {"x": 1})
    assert any("goal 'minimize' -> 'maximize'" in f for f in watch.check())
    assert ledger.campaign("t").goal == "minimize"
    foreign.close()


def test_a_replaced_ledger_file_is_rebuilt_from_our_view(tmp_path):
    ledger, w, mine, _ = ledger_with_two_campaigns(tmp_path)
    watch = LedgerWatch(ledger, mine.id)
    path = tmp_path / "ledger.sqlite"
    evil = sqlite3.connect(tmp_path / "evil.sqlite")
    sqlite3.connect(path).backup(evil)
    evil.execute("UPDATE campaigns SET metric = 'pwned'")
    evil.commit()
    evil.close()
    os.replace(tmp_path / "evil.sqlite", path)
    assert any("was replaced" in f for f in watch.check())
    check = sqlite3.connect(path)
    assert {r[0] for r in check.execute("SELECT metric FROM campaigns")} == {"loss"}
    check.close()
    w.touch_campaign(mine, {"after": True})  # we write to the file at the path again
    check = sqlite3.connect(path)
    assert '"after": true' in check.execute("SELECT config_json FROM campaigns WHERE tag = 't'").fetchone()[0]
    check.close()
