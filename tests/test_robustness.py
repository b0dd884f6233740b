"""Issue 13, "a night's sweep that nothing can derail": the sweep against servers
that ask it to wait, results directories shared by two writers, killed runs, corrupt
and read-only stores, broken graders found before the first request. Real loopback
HTTP servers, real `sweep` processes, real SQLite files."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.config import RunConfig
from harness.errors import DirectoryInUse, StoreError
from harness.generate.client import ChatClient
from harness.generate.runner import Sweep, SweepSummary
from harness.results import CellKey
from harness.store import queries
from harness.store.db import DB_NAME, Store, open_existing
from harness.wire import Sampling
from mock_server.llm import Reply, ScriptedLLM, scripted_fence
from tests.helpers import HELLO_GO, make_tiny_exam, write_checks_exam
from tests.store_fixtures import Cell, write_store


@pytest.fixture
def exam(tmp_path):
    return make_tiny_exam(tmp_path / "exams")


def _sweep(tmp_path, exam, toolchain, endpoint, waits: list[float], **cfg_kwargs) -> SweepSummary:
    cfg = RunConfig(endpoint=endpoint, models=("m",), exams=(exam.id,), seeds=(1,), out_dir=tmp_path / "out",
                    **{"request_timeout_s": 10, "retries": 2, "retry_backoff_s": 2.0, **cfg_kwargs})
    store = Store(cfg.out_dir)
    try:
        with ChatClient(endpoint, timeout_s=cfg.request_timeout_s) as client:
            return Sweep(cfg, store=store, exams=[exam], toolchain=toolchain, client=client,
                         sleep=waits.append).run()
    finally:
        store.close()


@pytest.mark.parametrize("retry_after, waited", [
    ("7", [7.0]),          # longer than the 2 s back-off: the server's word
    ("1", [2.0]),          # shorter: the back-off
    ("86400", [300.0]),    # a day: capped (RunConfig.retry_after_cap_s)
])
def test_retry_after_is_honoured(tmp_path, exam, toolchain, retry_after, waited):
    replies = [Reply(status=429, headers={"Retry-After": retry_after}), Reply(scripted_fence(HELLO_GO))]
    with ScriptedLLM({"m": replies}) as llm:
        waits: list[float] = []
        s = _sweep(tmp_path, exam, toolchain, llm.url, waits)
        assert len(llm.chat_requests()) == 2
    assert s.ok and s.generated == 1
    assert waits == waited


# -- helpers for real `sweep` processes --------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def _argv(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "sweep.py"), *args]


def _sweep_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_argv(*args), capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def _error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.strip().splitlines() if ln.startswith("sweep: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def _wait_for(cond, timeout: float = 120, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _runs(out: Path) -> list[dict]:
    try:
        st = open_existing(out)
    except StoreError:
        return []
    try:
        return [dict(r) for r in st.query("SELECT * FROM runs ORDER BY id")]
    except StoreError:
        return []
    finally:
        st.close()


def _kill(p: subprocess.Popen) -> None:
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
    p.wait()


# -- one writer per results directory ----------------------------------------------------


def test_two_writers_on_one_directory_one_is_refused_at_once(tmp_path, exam):
    """Two `sweep run` started together on a fresh --out: one sweeps, the other is
    refused at once with one line naming the first's pid (before: one died with
    'table runs already exists'); reading works meanwhile."""
    out = tmp_path / "out"
    with ScriptedLLM({"m": Reply(hang=True)}) as llm:
        args = _argv("run", "--endpoint", llm.url, "--model", "m", "--exam", str(exam.root), "--seeds", "1",
                     "--out", str(out), "--quiet")
        procs = [subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  start_new_session=True) for _ in range(2)]
        try:
            _wait_for(lambda: any(p.poll() is not None for p in procs), what="one sweep to give up")
            loser = next(p for p in procs if p.poll() is not None)
            winner = next(p for p in procs if p is not loser)
            _, err = loser.communicate()
            assert loser.returncode == 2
            line = _error_line(err)
            assert f"is in use by another exam-sweep process (pid {winner.pid})" in line, line
            assert "already exists" not in err
            # The winner sweeps on (its request hangs); a third writer is refused too, at once.
            _wait_for(lambda: len(llm.chat_requests()) == 1, what="the winner's request")
            started = time.monotonic()
            r = _sweep_cli("run", "--endpoint", llm.url, "--model", "m", "--exam", str(exam.root), "--seeds", "1",
                           "--out", str(out))
            assert r.returncode == 2 and f"(pid {winner.pid})" in _error_line(r.stderr)
            assert time.monotonic() - started < 30
            assert len(llm.chat_requests()) == 1          # the cell in flight was not requested twice
            assert winner.poll() is None
            # Reading needs no lock.
            rep = _sweep_cli("logs", str(out))
            assert rep.returncode == 0, rep.stderr
        finally:
            for p in procs:
                _kill(p)


def test_store_lock_is_shared_in_process_and_released_on_close(tmp_path):
    a = Store(tmp_path)
    b = Store(tmp_path)          # the same process: shared
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from harness.store.db import Store\n"
            "from harness.errors import StoreError\n"
            "try:\n    Store(%r)\nexcept StoreError as e:\n    print(e.one_line())\n") % (str(ROOT), str(tmp_path))
    probe = [sys.executable, "-c", code]
    held = subprocess.run(probe, capture_output=True, text=True, timeout=60).stdout
    assert f"in use by another exam-sweep process (pid {os.getpid()})" in held
    a.close()
    assert f"(pid {os.getpid()})" in subprocess.run(probe, capture_output=True, text=True, timeout=60).stdout
    b.close()
    assert subprocess.run(probe, capture_output=True, text=True, timeout=60).stdout == ""


# -- a run killed with SIGKILL ---------------------------------------------------------------


_STARTING_HOLDER = (
    "import fcntl, os, sys, time\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
    "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "print('locked', flush=True)\n"
    "if sys.argv[2] != 'never':\n"
    "    time.sleep(float(sys.argv[2]))\n"
    "    os.pwrite(fd, f'{os.getpid()}\\n'.encode(), 0)\n"
    "time.sleep(60)\n")


@pytest.mark.parametrize("writes_pid_after", ["0.2", "never"])
def test_a_refusal_names_a_holder_that_is_still_starting(tmp_path, writes_pid_after):
    """A writer refused between the holder's flock and its pid write (two sweeps started
    together) waits a moment for the pid, so the one line still names the holder."""
    from harness.store import lock

    p = subprocess.Popen([sys.executable, "-c", _STARTING_HOLDER, str(tmp_path / lock.LOCK_NAME), writes_pid_after],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "locked"   # type: ignore[union-attr]
        want = f"(pid {p.pid})" if writes_pid_after != "never" else "(pid unknown: it is starting)"
        with pytest.raises(DirectoryInUse) as e:
            lock.acquire(tmp_path)
        assert want in str(e.value)
    finally:
        p.kill()
        p.wait()


SLOW_GO = ('package main\n\nimport (\n\t"fmt"\n\t"time"\n)\n\n'
           'func main() { time.Sleep(20 * time.Second); fmt.Println("hello, world") }\n')


def test_a_run_killed_while_grading_is_marked_interrupted_by_the_next(tmp_path, exam):
    out = tmp_path / "out"
    with ScriptedLLM({"m": Reply(scripted_fence(SLOW_GO))}) as llm:
        args = _argv("run", "--endpoint", llm.url, "--model", "m", "--exam", str(exam.root), "--seeds", "1",
                     "--out", str(out), "--quiet")
        p = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        try:
            def grading() -> bool:
                st = open_existing(out) if (out / "sweep.sqlite").exists() else None
                if st is None:
                    return False
                try:
                    n = st.query("SELECT COUNT(*) FROM attempts")[0][0]
                    g = st.query("SELECT COUNT(*) FROM grades")[0][0]
                    return n == 1 and g == 0
                except StoreError:
                    return False
                finally:
                    st.close()

            _wait_for(grading, what="the answer to be stored and graded")
            time.sleep(1.0)          # building or running the answer (it sleeps 20 s; the limit is 2 s)
            assert p.poll() is None
        finally:
            _kill(p)
        first = _runs(out)
        assert [(r["status"], r["pid"]) for r in first] == [("running", p.pid)]
        r = _sweep_cli("run", "--endpoint", llm.url, "--model", "m", "--exam", str(exam.root), "--seeds", "1",
                       "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert f"run 1 (pid {p.pid}) ended without finishing (killed?): marked interrupted" in r.stderr
    runs = _runs(out)
    assert [r_["status"] for r_ in runs] == ["interrupted", "done"]
    assert f"pid {p.pid}" in runs[0]["error"] and runs[1]["pid"] not in (None, p.pid)


# -- a corrupt store ----------------------------------------------------------------------------


def test_a_store_corrupt_in_its_last_pages_is_one_line_and_never_written(tmp_path, exam):
    out = tmp_path / "out"
    write_store(out, [Cell("m", s, code="package main\n// " + "x" * 3000 + f"{s}\n") for s in range(1, 40)])
    db = out / DB_NAME
    data = bytearray(db.read_bytes())
    rng = random.Random(13)
    for i in range(len(data) - 2 * 4096, len(data)):
        data[i] = rng.randrange(256)
    db.write_bytes(bytes(data))
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    with ScriptedLLM({"m": Reply(scripted_fence(HELLO_GO))}) as llm:
        for args in (("report", str(out)), ("logs", str(out)), ("regrade", str(out)),
                     ("run", "--endpoint", llm.url, "--model", "m", "--exam", str(exam.root), "--seeds", "1",
                      "--out", str(out))):
            r = _sweep_cli(*args)
            assert r.returncode == 2, (args, r.stderr)
            line = _error_line(r.stderr)
            assert str(db) in line and ("corrupt" in line or "malformed" in line), line
        assert llm.chat_requests() == []
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


# -- read-only media ------------------------------------------------------------------------


@pytest.fixture
def read_only_copy(tmp_path):
    """A results directory seen through a read-only bind mount (real EROFS, even for
    root); skipped where mounting is not permitted."""
    src, ro = tmp_path / "src", tmp_path / "ro"
    write_store(src, [Cell("a", 1), Cell("a", 2), Cell("b", 1, ("build",)), Cell("b", 2, ("build",))])
    ro.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    r = subprocess.run(["mount", "--bind", str(src), str(ro)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {r.stderr.strip()}")
    try:
        r = subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {r.stderr.strip()}")
        assert not os.access(ro, os.W_OK)
        yield ro
    finally:
        subprocess.run(["umount", str(ro)], capture_output=True)


def test_read_commands_work_on_read_only_media(read_only_copy):
    ro = read_only_copy
    r = _sweep_cli("report", str(ro))
    assert r.returncode == 0, r.stderr
    assert "| a " in r.stdout and "| b " in r.stdout
    r = _sweep_cli("logs", str(ro), "--json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)) == 4
    r = _sweep_cli("compare", str(ro), "a", "b")
    assert r.returncode == 0, r.stderr
    # writing is refused in one line that names the directory, not the file
    r = _sweep_cli("regrade", str(ro))
    line = _error_line(r.stderr)
    assert "sweep.lock" in line and "Read-only file system" in line, line


# -- a broken grader is found before the first request ----------------------------------------


@pytest.mark.parametrize("checks_py, needle", [
    ("import no_such_module_here\n", "fails to import: ModuleNotFoundError"),
    ("CHECKS = [('a', 2.0)]\n", "must define run_checks(ctx)"),
    ("CHECKS = [('a', 1.0)]\ndef run_checks(ctx):\n    return {}\n", "differ from task 't' checks in exam.toml"),
])
def test_a_broken_checks_exam_stops_the_sweep_before_any_request(tmp_path, checks_py, needle):
    d = write_checks_exam(tmp_path / "exams", exam_id="broken-checks", checks_py=checks_py, checks={"a": 2})
    out = tmp_path / "out"
    with ScriptedLLM({"m": Reply(scripted_fence(HELLO_GO))}) as llm:
        r = _sweep_cli("run", "--endpoint", llm.url, "--model", "m", "--exam", str(d), "--seeds", "1,2",
                       "--out", str(out))
        assert llm.chat_requests() == []
    assert r.returncode == 2
    line = _error_line(r.stderr)
    assert "exam 'broken-checks'" in line and needle in line, line
    assert _runs(out) == []


# -- messages that say what is true ------------------------------------------------------------


def test_report_notes_do_not_count_endpoint_errors_as_stale_grades(tmp_path):
    from harness import report
    from tests.store_fixtures import EXAM, HASH, VERSION

    out = tmp_path / "out"
    write_store(out, [Cell("m", 1), Cell("m", 2, gen_outcome="endpoint_error"),
                      Cell("m", 3, gen_outcome="endpoint_error")])
    text = report.markdown(report.load(out, grader_hashes={(EXAM, VERSION): HASH}))
    assert "older grader" not in text and "not graded yet" not in text, text
    # an answer stored but never graded (killed before grading) is named as such
    st = Store(out)
    run = st.start_run(command="t", config={}, tool_version="t", go_version=None, go_source=None, host={})
    st.save_attempt(run, CellKey("m", EXAM, VERSION, "hello", 4), sampling={"temperature": 1.0}, request_id=None,
                    gen_outcome="ok", finish_reason="stop", content="```go\npackage main\n```",
                    extracted_code="package main\n", extraction_method="fence")
    st.close()
    text = report.markdown(report.load(out, grader_hashes={(EXAM, VERSION): HASH}))
    assert "1 stored answer(s) not graded yet" in text and "older grader" not in text, text


def test_report_title_when_nothing_was_graded(tmp_path):
    from harness import report

    out = tmp_path / "out"
    write_store(out, [Cell("m", 1, gen_outcome="endpoint_error")])
    text = report.markdown(report.load(out))
    assert "(/0;" not in text
    assert "fx v1 (nothing graded; seeds 1)" in text, text


# -- one copy of an answer ----------------------------------------------------------------------


@pytest.mark.parametrize("stream, mib", [(False, 10), (True, 0.25)])
def test_a_big_answer_is_stored_once(tmp_path, exam, toolchain, stream, mib):
    """A 10 MB answer (a little code, a lot of prose): the raw response is its one
    copy; content and reasoning are read back from it (before: stored again). A
    stream's raw bytes are many times its text (one event per token): 256 KiB."""
    answer = scripted_fence(HELLO_GO) + "\n" + ("All good. " * 1_048_576)[:int(mib * 2**20)]
    with ScriptedLLM({"m": Reply(answer, reasoning_content="thinking " * 1000)}, n_ctx=8_000_000) as llm:
        waits: list[float] = []
        s = _sweep(tmp_path, exam, toolchain, llm.url, waits, max_endpoint_errors=1, stream=stream,
                   sampling=Sampling(max_tokens=4_000_000), request_timeout_s=120)
    assert s.ok and s.outcomes["ran"] == 1
    out = tmp_path / "out"
    st = open_existing(out)
    try:
        row = st.query("SELECT * FROM attempts")[0]
        assert row["content"] is None and row["reasoning_content"] is None
        [back] = queries.attempts(st)
        assert (back.content, back.reasoning_content) == (answer, "thinking " * 1000)
        raw = st.query("SELECT length(response_raw) FROM requests")[0][0]
        size = sum(f.stat().st_size for f in out.iterdir() if f.name.startswith(DB_NAME))
    finally:
        st.close()
    # The raw bytes, once: what else the file holds is less than another copy of the answer
    # (page slack around a 17 MB stream is ~0.5 of its 256 KiB text; ~0.01 of the 10 MB answer).
    assert raw > len(answer) and size - raw < (0.9 if stream else 0.2) * len(answer), (size, raw)
    from harness import report

    df = report.load(out)
    assert df["content"].iloc[0] == answer and df["points"].iloc[0] == 3.0
    r = _sweep_cli("logs", str(out), "--json")
    assert json.loads(r.stdout)[0]["content"] == answer


def test_answers_stored_before_keep_their_own_copy(tmp_path):
    out = tmp_path / "out"
    write_store(out, [Cell("m", 1)])           # no request row: the content column is the copy
    st = open_existing(out)
    try:
        row = st.query("SELECT * FROM attempts")[0]
        [back] = queries.attempts(st)
        assert row["content"] is not None and (back.content, back.reasoning_content) == (row["content"], None)
    finally:
        st.close()
