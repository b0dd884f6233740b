"""`sweep logs`: stored attempts read back for auditing (request, answer, extracted
code, outcome, explanation, failing checks), newest first, filtered, and as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.report import logs
from harness.store.db import Store
from mock_server.llm import Reply, ScriptedLLM, scripted_fence
from tests.helpers import HELLO_GO, make_tiny_exam, run_sweep

ROOT = Path(__file__).resolve().parent.parent
BROKEN = "package main\nfunc main() { nope() }\n"


@pytest.fixture(scope="module")
def results(tmp_path_factory, toolchain):
    """A results dir: model "good" (2 seeds, pass), "bad" (build fails), "mute" (prose only)."""
    root = tmp_path_factory.mktemp("logs")
    exam = make_tiny_exam(root / "exams")
    out = root / "out"
    with ScriptedLLM({"good": Reply(scripted_fence(HELLO_GO)), "bad": Reply(scripted_fence(BROKEN)),
                      "mute": Reply("I would rather not.", reasoning_content="Let me think. " * 10)}) as llm:
        s = run_sweep(llm.url, out, exam, toolchain, models=("good", "bad", "mute"), seeds=(1, 2))
    assert s.ok
    return out, exam


def _read(out, **kw):
    st = Store(out)
    try:
        return logs.read(st, **kw)
    finally:
        st.close()


def test_newest_first_with_everything_stored(results):
    out, exam = results
    entries = _read(out, n=100, grader_hashes={(exam.id, exam.version): exam.grader_hash})
    assert len(entries) == 6
    assert [e.attempt_id for e in entries] == sorted((e.attempt_id for e in entries), reverse=True)
    assert [e.key.model for e in entries[:2]] == ["mute", "mute"]      # the last model ran last
    good = next(e for e in entries if e.key.model == "good")
    assert good.outcome == "ran" and good.points == 3 and good.max_points == 3 and good.grade_current
    assert good.failing_checks == () and good.extracted_code.strip() == HELLO_GO.strip()
    assert good.request["messages"][0]["role"] == "user" and "hello, world" in good.request["messages"][0]["content"]
    assert good.request["seed"] == good.key.seed and good.sampling == {"temperature": 1.0, "max_tokens": 4096}
    assert good.tries == 1 and good.http_status == 200 and good.request_url.endswith("/v1/chat/completions")


def test_failing_checks_and_explanations(results):
    out, exam = results
    bad = _read(out, model="bad", n=1)[0]
    assert bad.outcome == "build_failed" and bad.points == 0
    assert [c["name"] for c in bad.failing_checks] == ["build", "runs", "case:plain"]
    assert bad.failing_checks[0]["status"] == "fail" and "nope" in bad.failing_checks[0]["detail"]
    assert bad.explanation
    mute = _read(out, model="mute", n=1)[0]
    assert mute.outcome == "no_code" and mute.extracted_code is None
    assert mute.reasoning_content.startswith("Let me think.")
    assert {c["status"] for c in mute.failing_checks} == {"not_run"}


def test_filters_and_limit(results):
    out, _ = results
    assert len(_read(out, n=1)) == 1
    assert {e.key.model for e in _read(out, model="bad")} == {"bad"}
    assert len(_read(out, exam="tiny")) == 6 and _read(out, exam="other") == []


def test_stale_grade_is_marked(results):
    out, exam = results
    [e] = _read(out, model="good", n=1, grader_hashes={(exam.id, exam.version): "0123456789ab"})
    assert e.grade_current is False and e.points == 3
    assert "older grader" in logs.render(e)
    [e] = _read(out, model="good", n=1, grader_hashes={})   # unknown current grader: newest grade, no verdict
    assert e.grade_current is None
    # By default the current grader is the one the run recorded, though the exam was a directory
    # that is not installed: the run's own grades are current.
    [e] = _read(out, model="good", n=1)
    assert e.grade_current is True and "older grader" not in logs.render(e)
    assert "graded code" not in logs.render(e)       # the grader extracted what the generation stored


def test_render_text(results):
    out, _ = results
    bad = logs.render(_read(out, model="bad", n=1)[0])
    for needle in ("== attempt", "bad / tiny v1 / hello / seed 2", "outcome: build_failed, 0/3",
                   "checks not passed:", "FAIL", "request: POST", "[user]", "content:", "extracted code (",
                   "sampling: max_tokens=4096 temperature=1.0", "finish_reason stop"):
        assert needle in bad, needle
    mute = logs.render(_read(out, model="mute", n=1)[0])
    assert "reasoning: 140 characters" in mute and "extracted code: none" in mute


def _sweep(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "sweep.py"), *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=dict(os.environ))


def test_cli_json_and_text(results):
    out, _ = results
    r = _sweep("logs", str(out), "-n", "2", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert len(data) == 2 and data[0]["key"]["model"] == "mute" and data[0]["attempt_id"] > data[1]["attempt_id"]
    assert {"request", "content", "extracted_code", "outcome", "explanation", "failing_checks"} <= set(data[0])
    r = _sweep("logs", str(out), "--model", "bad", "--exam", "tiny", "--full")
    assert r.returncode == 0 and r.stdout.count("== attempt") == 2 and "nope()" in r.stdout
    # By default one line per attempt, and the full text of one attempt on request.
    r = _sweep("logs", str(out), "--model", "bad", "--exam", "tiny")
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and len(lines) == 2 and "== attempt" not in r.stdout and "nope()" not in r.stdout
    first_id = lines[0].split()[0].lstrip("#")
    assert lines[0].startswith(f"#{first_id} ") and "bad / tiny v1 / hello / seed" in lines[0]
    assert ": build_failed 0/3 [" in lines[0] and "tok/s" in lines[0] and "--attempt ID" in r.stderr
    r = _sweep("logs", str(out), "--attempt", first_id)
    assert r.returncode == 0 and r.stdout.count("== attempt") == 1 and f"== attempt {first_id} " in r.stdout
    assert "nope()" in r.stdout
    r = _sweep("logs", str(out), "--attempt", "99999")
    assert r.returncode == 0 and r.stdout == "" and "no attempt 99999" in r.stderr
    r = _sweep("logs", str(out), "--model", "nobody")
    assert r.returncode == 0 and r.stdout == "" and "no stored attempts" in r.stderr


def test_cli_on_a_dir_without_results(tmp_path):
    r = _sweep("logs", str(tmp_path))
    assert r.returncode == 2 and "holds no sweep results" in r.stderr


def test_streamed_attempt_shows_first_token_and_drafts(tmp_path, toolchain):
    exam = make_tiny_exam(tmp_path / "exams")
    reply = Reply(scripted_fence(HELLO_GO), delay_s=0.2, draft_n=8, draft_n_accepted=6)
    with ScriptedLLM({"m": reply}) as llm:
        assert run_sweep(llm.url, tmp_path / "out", exam, toolchain, seeds=(1,), stream=True).ok
    [e] = _read(tmp_path / "out")
    assert e.ttft_s is not None and 0 < e.ttft_s < e.wall_s
    assert e.to_json()["ttft_s"] == e.ttft_s
    text = logs.render(e)
    assert f"streamed, first token after {e.ttft_s:.2f}s" in text and "draft 6/8 accepted" in text


def test_code_the_grader_extracted_again_is_shown(tmp_path, toolchain):
    """When the grade built other code than the extraction stored with the answer
    (the rules changed since), the log shows what was graded."""
    from harness.grade.regrade import regrade_store
    from harness.results import CellKey

    exam = make_tiny_exam(tmp_path / "exams")
    st = Store(tmp_path / "out")
    run = st.start_run(command="t", config={}, tool_version="t", go_version=None, go_source=None, host={})
    stale = "#START main.go#\n" + HELLO_GO + "#END main.go#\n"      # as the rules before markers were dropped
    st.save_attempt(run, CellKey("m", "tiny", 1, "hello", 1), sampling={}, request_id=None, gen_outcome="ok",
                    finish_reason="stop", content="```go\n" + stale + "```\n", extracted_code=stale,
                    extraction_method="fence", extraction_note="picked the only block (go)")
    assert regrade_store(st, toolchain, exams={("tiny", 1): exam}) == 1
    [e] = logs.read(st)
    st.close()
    assert e.outcome == "ran" and e.points == 3 and e.grade_current is True
    assert e.graded_extraction is not None and e.graded_extraction["code"] == HELLO_GO
    text = logs.render(e)
    assert "graded code, extracted again by the grader (fence; " in text and "dropped marker line(s)" in text
    assert text.index("graded code") < text.index('    func main() { fmt.Println("hello, world") }',
                                                   text.index("graded code"))
    assert json.loads(json.dumps(e.to_json()))["graded_extraction"]["code"] == HELLO_GO


def test_an_answer_in_several_files_is_shown_file_by_file(tmp_path, toolchain):
    """An answer whose blocks name their files is built as those files; the log
    shows each under its name, and what the extraction dropped."""
    from harness.grade.regrade import regrade_store
    from harness.results import CellKey

    exam = make_tiny_exam(tmp_path / "exams")
    msg = 'package main\n\nconst msg = "hello, world"\n'
    main = 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println(msg) }\n'
    content = ("**msg.go**\n```go\n" + msg + "```\n**main.go**\n```go\n" + main + "```\n"
               "```go\n// file: main_test.go\npackage main\n\nimport \"testing\"\n\nfunc TestX(t *testing.T) {}\n```\n")
    st = Store(tmp_path / "out")
    run = st.start_run(command="t", config={}, tool_version="t", go_version=None, go_source=None, host={})
    st.save_attempt(run, CellKey("m", "tiny", 1, "hello", 1), sampling={}, request_id=None, gen_outcome="ok",
                    finish_reason="stop", content=content, extracted_code=main, extraction_method="fence")
    assert regrade_store(st, toolchain, exams={("tiny", 1): exam}) == 1
    [e] = logs.read(st)
    st.close()
    assert e.outcome == "ran" and e.points == 3, e.explanation
    assert e.graded_extraction is not None and e.graded_extraction["files"] == {"msg.go": msg, "main.go": main}
    text = logs.render(e)
    assert "graded files (2), extracted by the grader (fence; took block 1 (go, msg.go), block 2 (go, main.go)" in text
    assert "block 3 (go, main_test.go): a test file" in text
    assert text.index("  -- msg.go\n    package main\n") < text.index("  -- main.go\n    package main\n")
