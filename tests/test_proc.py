"""The subprocess helper bounds time and output and kills whole process groups."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from harness.runtime import proc

PY = sys.executable
ENV = proc.minimal_env()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return True


def test_run_captures_output_and_status():
    r = proc.run([PY, "-c", "import sys; print('hi'); print('err', file=sys.stderr); sys.exit(3)"], env=ENV)
    assert r.returncode == 3
    assert r.stdout_text() == "hi\n"
    assert r.stderr_text() == "err\n"
    assert not r.timed_out and not r.ok


def test_stdin_is_fed_and_closed():
    r = proc.run([PY, "-c", "import sys; print(sys.stdin.read().upper())"], env=ENV, stdin=b"abc")
    assert r.stdout_text().strip() == "ABC"


def test_no_stdin_means_eof_not_a_hang():
    r = proc.run([PY, "-c", "import sys; print(repr(sys.stdin.read()))"], env=ENV,
                 limits=proc.Limits(wall_s=5))
    assert r.stdout_text().strip() == "''"


def test_wall_timeout_kills():
    t = time.monotonic()
    r = proc.run([PY, "-c", "import time; time.sleep(60)"], env=ENV, limits=proc.Limits(wall_s=0.5))
    assert r.timed_out
    assert r.returncode is None
    assert time.monotonic() - t < 5
    assert "did not finish" in r.describe_exit()


def test_output_flood_is_capped_and_killed():
    code = "import sys\nwhile True: sys.stdout.write('x' * 65536)"
    r = proc.run([PY, "-c", code], env=ENV, limits=proc.Limits(wall_s=10, output_bytes=100_000))
    assert r.output_limited
    assert len(r.stdout) == 100_000
    assert r.stdout_bytes > 100_000
    assert not r.ok


def _assert_child_dies_with_group(leader_then: str, wall_s: float) -> None:
    """Run a leader that starts a sleeping child, prints its pid and then runs `leader_then`:
    within 3 s of the run's end the child must be gone."""
    code = ("import subprocess, sys, time\n"
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            "print(p.pid, flush=True)\n" + leader_then)
    r = proc.run([PY, "-c", code], env=ENV, limits=proc.Limits(wall_s=wall_s))
    child = int(r.stdout_text().split()[0])
    deadline = time.monotonic() + 3
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(child)


def test_timeout_kills_the_whole_group():
    _assert_child_dies_with_group("time.sleep(60)\n", wall_s=1.0)     # the leader outlives its wall time


def test_leftover_children_in_group_die_when_leader_exits():
    _assert_child_dies_with_group("", wall_s=10)      # the leader exits at once, its child still sleeping


def test_kill_zero_does_not_reach_us():
    # A child signalling its own process group (kill(0, SIGTERM)) must not kill the harness.
    r = proc.run([PY, "-c", "import os, signal; os.kill(0, signal.SIGTERM)"], env=ENV)
    assert r.signal == signal.SIGTERM


def test_stop_escalates_when_sigint_is_ignored():
    code = ("import signal, time\n"
            "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('ready', flush=True)\n"
            "time.sleep(60)\n")
    with proc.spawn([PY, "-c", code], env=ENV) as p:
        assert _wait_for(lambda: b"ready" in p.stdout_so_far())
        status, how = p.stop(grace_s=0.3, term_s=0.3, quit_s=0.3)
    assert how in ("SIGQUIT", "SIGKILL")
    assert status is not None and status < 0


def test_stop_graceful_on_sigint():
    code = ("import signal, sys, time\n"
            "signal.signal(signal.SIGINT, lambda *a: sys.exit(0))\n"
            "print('ready', flush=True)\n"
            "time.sleep(60)\n")
    with proc.spawn([PY, "-c", code], env=ENV) as p:
        assert _wait_for(lambda: b"ready" in p.stdout_so_far())
        status, how = p.stop(grace_s=5)
    assert (status, how) == (0, "SIGINT")


@pytest.mark.skipif(not proc._PRLIMIT, reason="util-linux prlimit not installed")
def test_file_size_limit_applies():
    code = "open('big', 'wb').write(b'x' * 2_000_000)"
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        r = proc.run([PY, "-c", code], env=ENV, cwd=d, limits=proc.Limits(file_size=1_000_000))
        assert r.returncode != 0
        assert os.path.getsize(os.path.join(d, "big")) <= 1_000_000


def test_minimal_env_has_no_secrets(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    env = proc.minimal_env()
    assert "OPENAI_API_KEY" not in env
    r = proc.run([PY, "-c", "import os; print(os.environ.get('OPENAI_API_KEY'))"], env=env)
    assert r.stdout_text().strip() == "None"


def _wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def test_output_written_just_before_exit_is_there_once_the_exit_is_seen():
    """A check that sees the program exit and then reads its stderr gets the last
    line (the reader thread may not have drained the pipe yet when the exit is seen)."""
    for _ in range(30):
        with proc.spawn(["/bin/sh", "-c", "echo boom >&2; exit 3"], env={"PATH": "/usr/bin:/bin"}) as p:
            while p.poll() is None:
                pass
            assert p.stderr_so_far() == b"boom\n"
