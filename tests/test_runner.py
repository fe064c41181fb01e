"""The local runner on real processes: timeouts, escaped children, floods, environment."""

from __future__ import annotations

import os
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from autoresearch.runners.local import LocalRunner
from autoresearch.runs.spec import DEFAULT_ENV_ALLOW, RunSpec, child_env
from autoresearch.runners.proctree import process_table, run_token_of

PY = sys.executable


def spec(tmp_path: Path, script: str, *, timeout: float = 10, cap: int = 50 << 20, env: dict | None = None,
         grace: float = 0.5) -> RunSpec:
    (tmp_path / "job.py").write_text(textwrap.dedent(script))
    base = child_env(os.environ, DEFAULT_ENV_ALLOW, env or {})
    return RunSpec(
        command=f"{PY} job.py", cwd=tmp_path, env=base, timeout_s=timeout, log_path=tmp_path / "logs" / "run.log",
        token=uuid.uuid4().hex, result_file=tmp_path / "result.json", log_cap_bytes=cap, kill_grace_s=grace,
    )


def alive(pid: int) -> bool:
    return pid in process_table()


def token_holders(token: str) -> list[int]:
    want = f"AUTORESEARCH_RUN_TOKEN={token}".encode()
    return [pid for pid in process_table() if run_token_of(pid) == want]


def wait_for_file(path: Path, timeout: float = 5.0) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


def test_success_result_file_and_log(tmp_path):
    s = spec(tmp_path, """
        import json, os
        print("hello")
        print("---")
        print("val_bpb: 1.5")
        json.dump({"val_bpb": 1.5}, open(os.environ["AUTORESEARCH_RESULT_FILE"], "w"))
    """)
    out = LocalRunner().run(s)
    assert out.exit_code == 0 and not out.timed_out and not out.interrupted
    assert "val_bpb: 1.5" in Path(out.log_path).read_text()
    assert out.result_json == '{"val_bpb": 1.5}'
    assert out.log_tail.splitlines()[-1] == "val_bpb: 1.5"


def test_crash_is_data(tmp_path):
    out = LocalRunner().run(spec(tmp_path, "raise SystemExit('boom: out of memory')"))
    assert out.exit_code == 1
    assert "boom: out of memory" in out.log_tail
    assert out.result_json is None


def test_stale_result_file_is_removed_before_the_run(tmp_path):
    (tmp_path / "result.json").write_text('{"val_bpb": 0.1}')
    out = LocalRunner().run(spec(tmp_path, "print('no result')"))
    assert out.result_json is None


def test_hang_is_killed_at_timeout_with_children(tmp_path):
    # FAULTS 12: the run hangs forever, and so does a child it started.
    s = spec(tmp_path, """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)"])
        open("child.pid", "w").write(str(child.pid))
        time.sleep(1000)
    """, timeout=1.5)
    t0 = time.monotonic()
    out = LocalRunner().run(s)
    assert out.timed_out and out.exit_code is None
    assert time.monotonic() - t0 < 1.5 + 0.5 + 3  # timeout + grace + slack
    child = int((tmp_path / "child.pid").read_text())
    assert not alive(child)
    assert token_holders(s.token) == []


ESCAPER = """
    import os, signal, sys, time
    # A grandchild that leaves the process group (setsid) and ignores SIGTERM, like a
    # dataloader worker or a nohup'd helper (FAULTS 13).
    pid = os.fork()
    if pid == 0:
        os.setsid()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if os.fork() == 0:
            {scrub}
            open("daemon.pid.tmp", "w").write(str(os.getpid()))
            os.rename("daemon.pid.tmp", "daemon.pid")
            while True:
                time.sleep(1)
        os._exit(0)
    os.waitpid(pid, 0)
    {parent_tail}
"""


@pytest.mark.parametrize("parent_tail, timeout, expect_timeout", [
    ("time.sleep(1000)", 1.5, True),  # the run hangs: killed at the timeout
    # the run finishes normally (once the daemon is up) but leaves the daemon behind
    ("while not os.path.exists('daemon.pid'): time.sleep(0.01)\n    print('done')", 10, False),
])
@pytest.mark.parametrize("scrub", ["pass", "os.environ.clear(); os.execv(sys.executable, [sys.executable, '-c', 'import os, time\\nopen(\"daemon.pid.tmp\", \"w\").write(str(os.getpid())); os.rename(\"daemon.pid.tmp\", \"daemon.pid\")\\nwhile True: time.sleep(1)'])"])
def test_setsid_grandchild_ignoring_sigterm_dies(tmp_path, parent_tail, timeout, expect_timeout, scrub):
    if "execv" in scrub:
        # the scrubbed daemon execs a fresh interpreter with an empty environment
        script = ESCAPER.replace("{scrub}", "os.execve(sys.executable, [sys.executable, '-c', 'import os, time\\nopen(\"daemon.pid.tmp\", \"w\").write(str(os.getpid())); os.rename(\"daemon.pid.tmp\", \"daemon.pid\")\\nwhile True: time.sleep(1)'], {})")
    else:
        script = ESCAPER.replace("{scrub}", scrub)
    script = script.replace("{parent_tail}", parent_tail)
    s = spec(tmp_path, script, timeout=timeout)
    out = LocalRunner().run(s)
    assert out.timed_out is expect_timeout
    daemon = int(wait_for_file(tmp_path / "daemon.pid"))
    deadline = time.time() + 2
    while alive(daemon) and time.time() < deadline:
        time.sleep(0.05)
    assert not alive(daemon), "a setsid'd grandchild survived the experiment"
    assert token_holders(s.token) == []


def test_flood_is_capped_head_and_tail_kept(tmp_path):
    # FAULTS 14: 40 MB of output, binary included, against a 1 MB cap.
    s = spec(tmp_path, """
        import sys
        out = sys.stdout.buffer
        out.write(b"FIRST LINE\\n")
        chunk = (b"x" * 1023 + b"\\n") * 1024
        for i in range(40):
            out.write(chunk)
            out.write(bytes(range(256)))
        out.write(b"\\n---\\nval_bpb: 2.5\\nLAST LINE\\n")
    """, cap=1 << 20)
    out = LocalRunner().run(s)
    assert out.exit_code == 0
    data = Path(out.log_path).read_bytes()
    assert len(data) <= (1 << 20) + 200
    assert data.startswith(b"FIRST LINE\n")
    assert data.rstrip().endswith(b"LAST LINE")
    assert b"bytes of output omitted" in data
    assert out.log_bytes > 40 << 20
    assert "LAST LINE" in out.log_tail


def test_interrupt_stops_the_run_and_its_children(tmp_path):
    s = spec(tmp_path, """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)"])
        open("child.pid", "w").write(str(child.pid))
        time.sleep(1000)
    """, timeout=60)
    stop = threading.Event()
    handle = LocalRunner().start(s, stop)
    wait_for_file(tmp_path / "child.pid")
    stop.set()
    out = handle.wait()
    assert out.interrupted and not out.timed_out and out.exit_code is None
    assert not alive(int((tmp_path / "child.pid").read_text()))


SECRETS = {
    "OPENAI_API_KEY": "sk-test-123", "ANTHROPIC_API_KEY": "sk-ant-456", "GITHUB_TOKEN": "ghp_x",
    "DB_PASSWORD": "hunter2-secret", "AWS_SECRET_ACCESS_KEY": "aws-secret-789", "MY_CREDENTIALS": "cred-secret-1", "HF_TOKEN": "hf_secret_2",
}


@pytest.mark.parametrize(
    "base, allow, extra, expected",
    [
        ({"PATH": "/bin", "HOME": "/root", "OPENAI_API_KEY": "sk"}, DEFAULT_ENV_ALLOW, {}, {"PATH": "/bin", "HOME": "/root"}),
        ({"LC_ALL": "C", "LC_CTYPE": "C", "RANDOM_VAR": "1"}, DEFAULT_ENV_ALLOW, {}, {"LC_ALL": "C", "LC_CTYPE": "C"}),
        ({"CUDA_VISIBLE_DEVICES": "0", "CUDA_API_KEY": "x"}, DEFAULT_ENV_ALLOW, {}, {"CUDA_VISIBLE_DEVICES": "0"}),
        ({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_CACHE": "/c", "HF_ENDPOINT": "https://m", "HF_TOKEN": "hf_x",
          "HF_HUB_TOKEN": "t"}, DEFAULT_ENV_ALLOW, {}, {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_CACHE": "/c", "HF_ENDPOINT": "https://m"}),
        ({"MY_SETTING": "1", "MY_TOKEN": "t"}, ["MY_*"], {"AUTORESEARCH_SEED": "3"}, {"MY_SETTING": "1", "AUTORESEARCH_SEED": "3"}),
    ],
)
def test_child_env_allowlist(base, allow, extra, expected):
    assert child_env(base, allow, extra) == expected


def test_secrets_never_reach_a_run(tmp_path):
    base = {**os.environ, **SECRETS}
    env = child_env(base, [*DEFAULT_ENV_ALLOW, "*_KEY", "*TOKEN*"], {"AUTORESEARCH_SEED": "1"})
    s = spec(tmp_path, """
        import os
        for k, v in sorted(os.environ.items()):
            print(f"{k}={v}")
    """)
    s = RunSpec(**{**s.__dict__, "env": env})
    out = LocalRunner().run(s)
    log = Path(out.log_path).read_text()
    for name, value in SECRETS.items():
        assert name not in log and value not in log
    assert "AUTORESEARCH_SEED=1" in log


@pytest.mark.parametrize("text, lines", [
    ("a\nb\n", ["a", "b"]),
    ("a\nb", ["a", "b"]),
    ("Epoch 0:  10%|#  \rEpoch 0:  50%|#####  \rEpoch 0: 100%|##########\nval_acc: 0.7\n",
     ["Epoch 0: 100%|##########", "val_acc: 0.7"]),                  # a progress bar: its last drawing
    ("windows\r\nline\r\n", ["windows", "line"]),
    ("still drawing 10%\rstill drawing 20%\r", ["still drawing 20%"]),
    ("train 1/2\n\x1b[A\rtrain 2/2\n\x1b[A\n{'eval_loss': '0.4'}\n", ["train 1/2", "train 2/2", "{'eval_loss': '0.4'}"]),  # tqdm's nested bars
    ("\x1b[32mINFO\x1b[0m ready\n\n", ["INFO ready", ""]),       # colours; an empty line stays
    ("step 5 loss 0.3\r\x1b[A\n", ["step 5 loss 0.3"]),            # a cursor move after the \r erases nothing (a review)
    ("\x1b]0;title\x07epoch 1\x1b(B\n[32mdone\n", ["epoch 1", "done"]),  # OSC, a charset switch, a tail cut mid-escape
    ("", []),
])
def test_the_log_tail_shows_lines_as_a_terminal_does(text, lines):
    from autoresearch.runners.local import shown_lines

    assert shown_lines(text) == lines
