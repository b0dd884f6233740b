"""The CLI as a user meets it: a real `sweep` process, one-line errors, exit codes,
and a sweep killed with SIGKILL that resumes without losing or duplicating a cell."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.store.db import open_existing
from mock_server.llm import Reply, ScriptedLLM, scripted_fence
from tests.helpers import HELLO_GO, make_tiny_exam

ROOT = Path(__file__).resolve().parent.parent


def sweep(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "sweep.py"), *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, cwd=ROOT)


def _one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.startswith("sweep: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_endpoint_is_one_line(tmp_path):
    r = sweep("run", "--endpoint", f"http://127.0.0.1:{_free_port()}", "--model", "m", "--out", str(tmp_path))
    assert r.returncode == 2
    line = _one_error_line(r.stderr)
    assert "cannot connect" in line and "is the server" in line
    assert "Traceback" not in r.stderr


def test_missing_endpoint_and_model(tmp_path):
    r = sweep("run", "--model", "m", env={"SWEEP_ENDPOINT": ""})
    assert r.returncode == 2 and "no endpoint given" in _one_error_line(r.stderr)
    r = sweep("run", "--endpoint", "http://127.0.0.1:1")
    assert r.returncode == 2 and "no model given" in _one_error_line(r.stderr)


def test_bad_seeds_and_kwargs():
    r = sweep("run", "--endpoint", "http://x", "--model", "m", "--seeds", "1,a")
    assert "--seeds" in _one_error_line(r.stderr)
    r = sweep("run", "--endpoint", "http://x", "--model", "m", "--chat-template-kwargs", "{nope")
    assert "not valid JSON" in _one_error_line(r.stderr)


@pytest.mark.parametrize("args, needle", [
    (("--seeds", "99999999999999999999"), "seed 99999999999999999999 is outside 0..4294967294"),
    (("--seeds", "-1"), "seed -1 is outside"),
    (("--model", ""), "--model: an empty model id"),
    (("--model", "qwen\nq4"), "contains a control character"),
])
def test_bad_seeds_and_model_ids_are_refused_before_anything_is_sent(tmp_path, args, needle):
    with ScriptedLLM({"m": Reply("x")}) as llm:
        base = ["run", "--endpoint", llm.url, "--out", str(tmp_path / "out")]
        if "--model" not in args:
            base += ["--model", "m"]
        r = sweep(*base, *args)
        assert llm.requests == []
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert needle in _one_error_line(r.stderr)
    assert not (tmp_path / "out").exists()


def test_unwritable_results_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with ScriptedLLM({"m": Reply("x")}) as llm:
        r = sweep("run", "--endpoint", llm.url, "--model", "m", "--out", str(blocker / "out"))
    assert r.returncode == 2 and "cannot create results directory" in _one_error_line(r.stderr)


def test_broken_exam_manifest(tmp_path):
    bad = tmp_path / "exams" / "broken"
    bad.mkdir(parents=True)
    (bad / "exam.toml").write_text('id = "broken"\ntitle = "B"\nversion = 1\ngrader = "stdio"\n'
                                   '[[tasks]]\nid = "t"\nprompt = "p.j2"\npoints = 5\nreference = "r.go"\n')
    r = sweep("exams", "validate", str(bad))
    line = _one_error_line(r.stderr)
    assert "exam 'broken': tasks[0].cases is empty" in line and "exam.toml" in line


def test_unknown_exam():
    r = sweep("run", "--endpoint", "http://127.0.0.1:1", "--model", "m", "--exam", "nope")
    assert "unknown exam 'nope'" in _one_error_line(r.stderr)


def test_report_of_empty_dir(tmp_path):
    r = sweep("report", str(tmp_path))
    assert "holds no sweep results" in _one_error_line(r.stderr)


def test_grade_a_file(tmp_path):
    f = tmp_path / "answer.md"
    f.write_text("Here you go:\n\n" + scripted_fence(HELLO_GO))
    exam = make_tiny_exam(tmp_path / "exams")
    r = sweep("grade", str(f), "--exam", str(exam.root), "--task", "hello")
    assert r.returncode == 0, r.stderr
    assert "tiny v1 / hello: 3/3 (ran" in r.stdout
    assert "PASS case:plain" in r.stdout


def test_models_lists_the_endpoint(tmp_path):
    with ScriptedLLM({"a": Reply("x"), "b": Reply("y")}) as llm:
        r = sweep("models", "--endpoint", llm.url)
    assert r.stdout.split() == ["a", "b"]


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [1, 2])
def test_kill_9_mid_sweep_then_resume(tmp_path, parallel):
    """SIGKILL a real `sweep run` process mid-sweep (one request at a time, or two in
    flight); rerunning the same command completes every cell exactly once."""
    exam = make_tiny_exam(tmp_path / "exams")
    out = tmp_path / "out"
    seeds = "1,2,3,4,5,6"
    with ScriptedLLM({"m": Reply(scripted_fence(HELLO_GO), delay_s=0.4)}, total_slots=parallel) as llm:
        args = [sys.executable, str(ROOT / "sweep.py"), "run", "--endpoint", llm.url, "--model", "m",
                "--exam", str(exam.root), "--seeds", seeds, "--out", str(out), "--quiet", "--parallel", str(parallel)]
        p = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            # read-only: the sweep holds the writer's lock on its --out
            if (out / "sweep.sqlite").exists() and open_existing(out).query("SELECT COUNT(*) FROM attempts")[0][0] >= 2:
                break
            time.sleep(0.05)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        before = open_existing(out).query("SELECT COUNT(*) FROM attempts")[0][0]
        assert 2 <= before < 6
        r = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        new_requests = len(llm.chat_requests())
    st = open_existing(out)
    rows = st.query("SELECT seed, COUNT(*) AS n FROM attempts GROUP BY seed ORDER BY seed")
    assert [(r["seed"], r["n"]) for r in rows] == [(s, 1) for s in range(1, 7)]
    graded = st.query("SELECT COUNT(DISTINCT attempt_id) FROM grades")[0][0]
    assert graded == 6
    # At most the requests in flight at the kill are asked again.
    assert new_requests <= 6 + parallel
    assert "| m " in r.stdout and "3.0" in r.stdout


def test_mock_server_runs_by_hand_and_flips_the_sink():
    import httpx

    p = subprocess.Popen([sys.executable, str(ROOT / "sweep.py"), "mock-server"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        urls = dict(p.stdout.readline().split() for _ in range(3))  # type: ignore[union-attr]
        batch = {"seq": 1, "samples": []}
        with httpx.Client(timeout=5) as c:
            assert c.get(urls["source"]).status_code == 200
            assert c.post(urls["control"] + "/sink/offline-503").status_code == 200
            assert c.post(urls["sink"], json=batch).status_code == 503
            assert c.post(urls["control"] + "/sink/online").status_code == 200
            assert c.post(urls["sink"], json=batch).status_code == 204
            assert c.get(urls["control"] + "/records").json()["accepted"]
        p.send_signal(signal.SIGINT)
        assert p.wait(10) == 0
    finally:
        p.kill()
        p.wait()


def test_mock_server_on_a_busy_port_is_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        r = sweep("mock-server", "--sink-port", str(s.getsockname()[1]), timeout=30)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "Error: cannot start the mock on 127.0.0.1: Address already in use (pick other ports, or 0 for free ones)"]
