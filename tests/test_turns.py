"""Repair turns (``--turns N``): a scripted model that repairs its build error on turn
2, one that never repairs, the feedback (no hidden expected output), turn seeds,
reports and compare at a turn, resume, and a kill between turns (real subprocess)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import report
from harness.exams.exam import load_exam
from harness.grade import feedback
from harness.report import compare
from harness.report import turns as report_turns
from harness.store import queries
from harness.store.db import Store, open_existing
from mock_server.llm import Reply, ScriptedLLM, scripted_fence
from tests.helpers import HELLO_GO, make_tiny_exam, run_sweep

ROOT = Path(__file__).resolve().parent.parent
BROKEN_GO = HELLO_GO + "\nfunc later() int { return reslt }\n"
WRONG_GO = HELLO_GO.replace("hello, world", "goodbye")


@pytest.fixture
def exam(tmp_path):
    return make_tiny_exam(tmp_path / "exams")


def _turn(body: dict) -> int:
    return 1 + sum(m.get("role") == "assistant" for m in body["messages"])


def repairer(body: dict) -> Reply:
    return Reply(scripted_fence(BROKEN_GO if _turn(body) == 1 else HELLO_GO))


def _df(out, exam):
    return report.load(out, grader_hashes={(exam.id, exam.version): exam.grader_hash})


@pytest.mark.parametrize("parallel, stream", [(1, False), (2, True)])
def test_a_model_that_repairs_its_build_error_on_turn_2(tmp_path, exam, toolchain, parallel, stream):
    with ScriptedLLM({"fixer": repairer}) as llm:
        s = run_sweep(llm.url, tmp_path / "out", exam, toolchain, models=("fixer",), seeds=(1, 2), turns=3,
                      parallel=parallel, stream=stream)
        bodies = [q.json for q in llm.chat_requests()]
    assert s.ok and s.generated == 4 and s.graded == 4
    assert sorted((_turn(b), b["seed"]) for b in bodies) == [(1, 1), (1, 2), (2, 2), (2, 3)]   # seed + turn - 1
    second = [b for b in bodies if _turn(b) == 2][0]
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    note = second["messages"][-1]["content"]
    assert "does not build" in note and "undefined: reslt" in note and "(0/3 points)" in note
    df = _df(tmp_path / "out", exam)
    assert sorted(zip(df["turn"], df["outcome"])) == [(1, "build_failed")] * 2 + [(2, "ran")] * 2
    # every turn is its own stored attempt, with its own request
    st = Store(tmp_path / "out")
    assert sorted(tuple(r) for r in st.query("SELECT turn, COUNT(*) FROM requests GROUP BY turn")) == [(1, 2), (2, 2)]
    st.close()
    (t1, t2) = report_turns.turn_summaries(df)      # up to the last turn any cell reached
    assert (t1.mean, t2.mean) == (0.0, 3.0)
    assert (t1.solved_on, t2.solved_on, t2.solved_by, t2.cells, t2.answers) == (0, 2, 2, 2, 2)
    assert t2.completion_tokens > 0 and t2.prompt_tokens > t1.prompt_tokens
    md = report.markdown(df)
    assert "tiny v1 repair turns" in md
    # the summary table is turn 1's: what a one-turn sweep reports
    assert "| fixer   | 0.0" in md


def test_a_model_that_never_repairs_gets_every_turn_and_no_hidden_output(tmp_path, exam, toolchain):
    with ScriptedLLM({"stuck": Reply(scripted_fence(WRONG_GO)), "fixer": repairer}) as llm:
        s = run_sweep(llm.url, tmp_path / "out", exam, toolchain, models=("stuck", "fixer"), seeds=(1,), turns=3)
        stuck = [q.json for q in llm.chat_requests("stuck")]
    assert s.ok
    assert [_turn(b) for b in stuck] == [1, 2, 3]
    assert [m["role"] for m in stuck[-1]["messages"]] == ["user", "assistant", "user", "assistant", "user"]
    note = stuck[1]["messages"][-1]["content"]
    assert f"case:plain: {feedback.OUTPUT_DIFFERS}" in note
    assert "hello, world" not in note                                   # never the expected output
    assert "goodbye" not in note                                        # nor what it printed instead
    df = _df(tmp_path / "out", exam)
    sums = {(t.model, t.turn): t for t in report_turns.turn_summaries(df)}
    assert [sums[("stuck", k)].mean for k in (1, 2, 3)] == [2.0, 2.0, 2.0]
    assert sums[("stuck", 3)].solved_by == 0 and sums[("stuck", 3)].answers == 1
    # compare at a turn: turn 1 fixer (0) is behind stuck (2); after turn 2 it is ahead
    at1 = compare.compare(df, "fixer", "stuck", turn=1)[0]
    at2 = compare.compare(df, "fixer", "stuck", turn=2)[0]
    assert (at1.exam_score_a, at1.exam_score_b) == (0.0, 2.0)
    assert (at2.exam_score_a, at2.exam_score_b) == (3.0, 2.0)
    assert "after repair turn 2" in compare.render([at2]) and "repair turn" not in compare.render([at1])


def test_one_turn_is_todays_sweep_and_a_rerun_with_more_turns_continues(tmp_path, exam, toolchain):
    out = tmp_path / "out"
    with ScriptedLLM({"fixer": repairer}) as llm:
        run_sweep(llm.url, out, exam, toolchain, models=("fixer",), seeds=(1,))
        assert len(llm.chat_requests()) == 1
        assert "repair turns" not in report.markdown(_df(out, exam))
        s = run_sweep(llm.url, out, exam, toolchain, models=("fixer",), seeds=(1,), turns=2)
        assert [_turn(q.json) for q in llm.chat_requests()] == [1, 2]
        again = run_sweep(llm.url, out, exam, toolchain, models=("fixer",), seeds=(1,), turns=2)
        assert len(llm.chat_requests()) == 2            # done: nothing asked twice
    assert s.generated == 1 and again.skipped == 1 and again.generated == 0
    st = Store(out)
    assert [a.key.turn for a in queries.attempts(st)] == [1, 2]
    st.close()


def test_turn_seeds_wrap_in_llama_cpp_range():
    assert feedback.turn_seed(7, 1) == 7 and feedback.turn_seed(7, 3) == 9
    assert feedback.turn_seed(2**32 - 2, 2) == 0


def test_the_feedback_template_is_part_of_the_grader(tmp_path):
    exam = make_tiny_exam(tmp_path / "exams")
    before = exam.grader_hash
    (exam.root / feedback.TEMPLATE_FILE).write_text("Wrong: {{ summary }}.{% for f in failures %} {{ f.name }}"
                                                   "{% endfor %}\n")
    changed = load_exam(exam.root)
    assert changed.grader_hash != before
    from harness.results import CheckResult, Grade, Outcome
    grade = Grade(Outcome.RAN, 2.0, 3.0, (CheckResult.passing("build", 1), CheckResult.passing("runs", 1),
                                          CheckResult.failing("case:plain", 1, "line 1: expected 'x', got 'y'")))
    task = changed.tasks[0]
    assert feedback.message(changed, task, grade, 1) == \
        "Wrong: Your program builds but does not pass every check. case:plain"
    assert feedback.continues(grade) and not feedback.continues(Grade(Outcome.GRADING_ERROR, 0.0, 3.0))


def _kill(p: subprocess.Popen) -> None:
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
    p.wait()


def test_a_run_killed_between_turns_resumes_at_the_next_turn(tmp_path, exam):
    out = tmp_path / "out"

    def slow_second_turn(body: dict) -> Reply:
        return repairer(body) if _turn(body) == 1 else Reply(scripted_fence(HELLO_GO), delay_s=60)

    args = ["run", "--model", "fixer", "--exam", str(exam.root), "--seeds", "1", "--out", str(out),
            "--turns", "2", "--quiet"]
    with ScriptedLLM({"fixer": slow_second_turn}) as llm:
        p = subprocess.Popen([sys.executable, str(ROOT / "sweep.py"), *args, "--endpoint", llm.url], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while not any(_turn(q.json) == 2 for q in llm.chat_requests()):
                assert time.monotonic() < deadline and p.poll() is None, "turn 2 was never asked"
                time.sleep(0.05)
        finally:
            _kill(p)
        st = open_existing(out)
        assert [(r["turn"], r["response_raw"] is None) for r in st.query("SELECT * FROM requests ORDER BY id")] \
            == [(1, False), (2, True)]     # turn 2's request stored before it was sent, never answered
        assert [a.key.turn for a in queries.attempts(st)] == [1]
        st.close()
        llm.set_model("fixer", repairer)
        r = subprocess.run([sys.executable, str(ROOT / "sweep.py"), *args, "--endpoint", llm.url], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
        asked = [_turn(q.json) for q in llm.chat_requests()]
    assert r.returncode == 0, r.stderr
    assert asked == [1, 2, 2]              # the rerun asks only turn 2 again
    st = open_existing(out)
    got = [(a.key.turn, a.grade.outcome if a.grade else None) for a in queries.attempts(st)]
    statuses = [row["status"] for row in st.query("SELECT status FROM runs ORDER BY id")]
    st.close()
    assert got == [(1, "build_failed"), (2, "ran")]
    assert statuses == ["interrupted", "done"]
    rerun_body = json.loads(open_existing(out).query("SELECT request_json FROM requests ORDER BY id DESC")[0][0])
    assert rerun_body["seed"] == 2 and rerun_body["messages"][-1]["role"] == "user"
