"""Issue 22, item 7, "bounded input from the endpoint": an answer past the size bound
is an endpoint error with one line and nothing huge stored; sampling values JSON
cannot carry are refused at start; a full disk at any write (the lock's pid write
included) is one line. Real `sweep` processes, a real loopback server, a real full
filesystem (a small tmpfs mounted by the test, as root) or an injected ENOSPC."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import StoreError
from harness.store import lock
from harness.store.db import open_existing
from mock_server.llm import Reply, ScriptedLLM, scripted_fence
from tests.helpers import HELLO_GO, make_tiny_exam

ROOT = Path(__file__).resolve().parent.parent


def _sweep(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "sweep.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def _one_line(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode != 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("sweep: error:")]
    assert len(lines) == 1, r.stderr
    return lines[0]


@pytest.fixture
def exam(tmp_path):
    return make_tiny_exam(tmp_path / "exams")


# -- the size bound ---------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_past_max_response_mb_is_an_endpoint_error_and_nothing_huge_is_stored(tmp_path, exam, stream):
    answer = scripted_fence(HELLO_GO) + "\n" + "All good. " * 300_000          # 3 MB of prose
    out = tmp_path / "out"
    with ScriptedLLM({"m": Reply(answer)}, n_ctx=8_000_000) as llm:
        r = _sweep("run", "--endpoint", llm.url, "--model", "m", "--exam", str(exam.root), "--seeds", "1",
                   "--out", str(out), "--max-response-mb", "1", "--max-tokens", "4000000", "--retries", "2",
                   "--stream" if stream else "--no-stream", "--quiet")
        requests = len(llm.chat_requests())
    assert "Traceback" not in r.stderr, r.stderr
    assert requests == 1                         # not retried: it would come back as large
    st = open_existing(out)
    try:
        att = st.query("SELECT gen_outcome, error FROM attempts")[0]
        stored = st.query("SELECT MAX(length(response_raw)) FROM requests")[0][0]
    finally:
        st.close()
    assert att["gen_outcome"] == "endpoint_error"
    assert "more than the 1 MiB allowed" in att["error"] and "\n" not in att["error"]
    # a body announced too large is not read at all (None); a stream keeps its first 64 KiB
    assert (stored is None) if not stream else (stored is not None and stored <= 64 * 1024)
    assert sum(f.stat().st_size for f in out.iterdir()) < 2 * 1024 * 1024


# -- what JSON cannot carry ----------------------------------------------------------------

@pytest.mark.parametrize("args, needle", [
    (["--temperature", "inf"], "--temperature: "),
    (["--top-p", "nan"], "--top-p: "),
    (["--chat-template-kwargs", '{"x": NaN}'], "JSON cannot carry"),
    (["--request-timeout", "inf"], "must be a finite number"),
])
def test_inf_and_nan_flags_are_refused_at_start(tmp_path, exam, args, needle):
    r = _sweep("run", "--endpoint", "http://127.0.0.1:9", "--model", "m", "--exam", str(exam.root),
               "--out", str(tmp_path / "out"), *args)
    line = _one_line(r)
    assert needle in line, line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("toml", ["[sampling]\ntemperature = inf\n", "[sampling]\nmin_p = nan\n",
                                  "[profiles.m]\ntemperature = -inf\n", "request_timeout_s = inf\n"])
def test_inf_and_nan_in_a_sweep_file_are_refused_at_start(tmp_path, exam, toml):
    f = tmp_path / "sweep.toml"
    f.write_text(f'endpoint = "http://127.0.0.1:9"\nmodels = ["m"]\n{toml}')
    r = _sweep("run", "--config", str(f), "--exam", str(exam.root), "--out", str(tmp_path / "out"))
    line = _one_line(r)
    assert "finite" in line or "inf" in line or "greater than or equal" in line, line


# -- a full disk ------------------------------------------------------------------------------

def test_a_lock_pid_write_on_a_full_disk_is_one_line(tmp_path, monkeypatch):
    """Injected ENOSPC (the real filesystem case is below): the lock is released."""
    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lock.os, "pwrite", full)
    with pytest.raises(StoreError, match="cannot write the lock file .*: No space left on device"):
        lock.acquire(tmp_path)
    monkeypatch.undo()
    lock.release(lock.acquire(tmp_path))         # nothing was left held


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs mounted for the test (root only; skipped elsewhere)."""
    d = tmp_path / "disk"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def _fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` to ENOSPC, then free ``leave`` bytes."""
    with open(disk / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC
    if leave:
        size = (disk / "filler").stat().st_size
        with open(disk / "filler", "r+b") as f:
            f.truncate(max(0, size - leave))


@pytest.mark.parametrize("leave", [0, 16 * 1024, 200 * 1024])
def test_a_full_disk_at_any_write_is_one_line(small_disk, exam, leave):
    """Nothing free (the lock's pid write fails), room for the lock only (the
    database's creation fails), room for the database but not the answers."""
    _fill(small_disk, leave)
    answer = scripted_fence(HELLO_GO) + "\n" + "All good. " * 60_000        # 600 KB: more than is free
    with ScriptedLLM({"m": Reply(answer)}, n_ctx=8_000_000) as llm:
        r = _sweep("run", "--endpoint", llm.url, "--model", "m", "--exam", str(exam.root), "--seeds", "1",
                   "--out", str(small_disk / "out"), "--max-tokens", "4000000", "--quiet")
    line = _one_line(r)
    assert "No space left on device" in line or "disk is full" in line, line
