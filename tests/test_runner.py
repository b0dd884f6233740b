"""The sweep against a scripted llama-server over real HTTP, with real Go builds:
every outcome class, every endpoint fault, resume and conflicts."""

from __future__ import annotations

import json
import socket

import pytest

from harness import report
from harness.errors import ConflictError, EndpointUnreachable
from harness.generate.client import ChatClient
from harness.generate.runner import check_models
from harness.store import queries
from harness.store.db import Store
from mock_server.llm import Reply, ScriptedLLM, scripted_fence
from tests.helpers import HELLO_GO, make_tiny_exam, run_sweep


@pytest.fixture
def exam(tmp_path):
    return make_tiny_exam(tmp_path / "exams")


def _df(out, exam):
    return report.load(out, grader_hashes={(exam.id, exam.version): exam.grader_hash})


def test_happy_path_stores_everything(tmp_path, exam, toolchain):
    with ScriptedLLM({"m": Reply(scripted_fence(HELLO_GO))}) as llm:
        s = run_sweep(llm.url, tmp_path / "out", exam, toolchain)
        body = llm.chat_requests()[0].json
    assert s.ok and s.generated == 2 and s.graded == 2
    # Nothing is sent that the config does not say.
    assert set(body) == {"model", "messages", "seed", "temperature", "max_tokens"}
    assert body["seed"] in (1, 2) and body["temperature"] == 1.0
    df = _df(tmp_path / "out", exam)
    assert list(df["outcome"]) == ["ran", "ran"]
    assert list(df["points"]) == [3.0, 3.0]
    assert df["decode_tps"].notna().all() and (df["tps_source"] == "timings").all()
    st = Store(tmp_path / "out")
    req = st.query("SELECT * FROM requests")[0]
    assert json.loads(req["response_raw"])["timings"]["predicted_n"] > 0
    assert st.query("SELECT status FROM runs")[0][0] == "done"


def test_resume_requests_nothing_twice(tmp_path, exam, toolchain):
    with ScriptedLLM({"m": Reply(scripted_fence(HELLO_GO))}) as llm:
        run_sweep(llm.url, tmp_path / "out", exam, toolchain, seeds=(1,))
        s = run_sweep(llm.url, tmp_path / "out", exam, toolchain, seeds=(1, 2))
        assert len(llm.chat_requests()) == 2
    assert s.skipped == 1 and s.generated == 1
    assert len(_df(tmp_path / "out", exam)) == 2


def test_different_sampling_in_same_dir_is_refused(tmp_path, exam, toolchain):
    with ScriptedLLM({"m": Reply(scripted_fence(HELLO_GO))}) as llm:
        run_sweep(llm.url, tmp_path / "out", exam, toolchain, seeds=(1,))
        with pytest.raises(ConflictError, match="already holds") as e:
            run_sweep(llm.url, tmp_path / "out", exam, toolchain, seeds=(1,), max_tokens=100)
    assert "another --out" in e.value.one_line()


@pytest.mark.parametrize("reply, outcome, points", [
    (Reply(scripted_fence(HELLO_GO)), "ran", 3),
    (Reply("```go\n" + HELLO_GO, finish_reason="length"), "truncated", 3),
    (Reply("", reasoning_content="hmm " * 50_000), "truncated", 0),      # thinking ate the budget
    (Reply("", reasoning_content="I thought about it."), "reasoning_only", 0),
    (Reply(""), "empty", 0),
    (Reply("I cannot write Go today."), "no_code", 0),
    (Reply(scripted_fence("package main\nfunc main() { nope() }\n")), "build_failed", 0),
    (Reply(scripted_fence("package main\nfunc main() { for {} }\n")), "ran", 1),   # builds, hangs
    (Reply(scripted_fence('package main\nimport "fmt"\nfunc main() { for { fmt.Println("spam spam spam") } }\n')),
     "ran", 1),                                                                   # floods stdout
])
def test_outcome_classes(tmp_path, exam, toolchain, reply, outcome, points):
    with ScriptedLLM({"m": reply}) as llm:
        s = run_sweep(llm.url, tmp_path / "out", exam, toolchain, seeds=(1,), max_tokens=2000)
    df = _df(tmp_path / "out", exam)
    assert df.iloc[0]["outcome"] == outcome
    assert df.iloc[0]["points"] == points
    assert df.iloc[0]["max_points"] == 3   # fixed denominator, whatever happened
    assert s.ok


def test_hang_and_flood_explanations(tmp_path, exam, toolchain):
    hang = Reply(scripted_fence("package main\nfunc main() { for {} }\n"))
    with ScriptedLLM({"m": hang}) as llm:
        run_sweep(llm.url, tmp_path / "out", exam, toolchain, seeds=(1,))
    expl = _df(tmp_path / "out", exam).iloc[0]["explanation"]
    assert "runs" in expl and "case:plain" in expl


def test_unknown_model_is_skipped_and_others_continue(tmp_path, exam, toolchain):
    with ScriptedLLM({"good": Reply(scripted_fence(HELLO_GO))}) as llm:
        s = run_sweep(llm.url, tmp_path / "out", exam, toolchain, models=("missing", "good"))
        assert len(llm.chat_requests("missing")) == 1  # 404 is not retried, model skipped
    assert not s.ok
    assert any("does not serve model 'missing'" in e for e in s.errors)
    df = _df(tmp_path / "out", exam)
    assert list(df[df.model == "good"]["outcome"]) == ["ran", "ran"]
    assert list(df[df.model == "missing"]["outcome"]) == ["endpoint_error"]


def test_5xx_is_retried_and_every_try_stored(tmp_path, exam, toolchain):
    script = [Reply(status=503), Reply(status=500), Reply(scripted_fence(HELLO_GO))]
    with ScriptedLLM({"m": script}) as llm:
        s = run_sweep(llm.url, tmp_path / "out", exam, toolchain, seeds=(1,), retries=3)
    assert s.ok
    st = Store(tmp_path / "out")
    tries = st.query("SELECT try, http_status, error FROM requests ORDER BY id")
    assert [(t["try"], t["http_status"]) for t in tries] == [(1, 503), (2, 500), (3, 200)]
    assert "HTTP 503" in tries[0]["error"]


@pytest.mark.parametrize("reply, needle", [
    (Reply(status=500, error_message="CUDA error: out of memory"), "CUDA error"),
    (Reply(raw_body=b'{"choices": [ {"message": '), "not JSON"),
    (Reply(raw_body=b'{"object": "chat.completion"}'), "no choices"),
    (Reply(drop_connection=True), "connection dropped"),
    (Reply(status=429), "HTTP 429"),
])
def test_endpoint_faults_become_endpoint_errors(tmp_path, exam, toolchain, reply, needle):
    with ScriptedLLM({"m": reply}) as llm:
        s = run_sweep(llm.url, tmp_path / "out", exam, toolchain, seeds=(1, 2), retries=1,
                      max_endpoint_errors=2)
    assert not s.ok
    assert s.stopped_early and "2 consecutive endpoint errors" in s.stopped_early
    assert any(needle in e for e in s.errors), s.errors
    df = _df(tmp_path / "out", exam)
    assert list(df["outcome"]) == ["endpoint_error", "endpoint_error"]
    st = Store(tmp_path / "out")
    assert st.query("SELECT COUNT(*) FROM requests")[0][0] == 4  # 2 cells x (1 + 1 retry)


def test_request_timeout(tmp_path, exam, toolchain):
    with ScriptedLLM({"m": Reply(hang=True)}) as llm:
        s = run_sweep(llm.url, tmp_path / "out", exam, toolchain, seeds=(1,), timeout_s=0.5, retries=0)
    assert any("no complete answer within" in e for e in s.errors)


def test_endpoint_errors_are_retried_on_resume(tmp_path, exam, toolchain):
    with ScriptedLLM({"m": Reply(status=503)}) as llm:
        run_sweep(llm.url, tmp_path / "out", exam, toolchain, seeds=(1,), retries=0)
        llm.set_model("m", Reply(scripted_fence(HELLO_GO)))
        s = run_sweep(llm.url, tmp_path / "out", exam, toolchain, seeds=(1,), retries=0)
    assert s.ok and s.generated == 1
    assert list(_df(tmp_path / "out", exam)["outcome"]) == ["ran"]


def test_unreachable_endpoint_fails_the_model_check():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with ChatClient(f"http://127.0.0.1:{port}", timeout_s=2) as client:
        with pytest.raises(EndpointUnreachable, match="cannot connect"):
            check_models(client, ["m"])


def test_grader_change_does_not_mix(tmp_path, toolchain):
    from harness.grade.regrade import regrade_store

    exam1 = make_tiny_exam(tmp_path / "e1")
    with ScriptedLLM({"m": Reply(scripted_fence(HELLO_GO))}) as llm:
        run_sweep(llm.url, tmp_path / "out", exam1, toolchain, seeds=(1,))
    # Same exam id and version, but the expected output changed: a new grader hash.
    exam2 = make_tiny_exam(tmp_path / "e2", expect="goodbye\n")
    assert exam2.grader_hash != exam1.grader_hash
    df = report.load(tmp_path / "out", grader_hashes={("tiny", 1): exam2.grader_hash})
    assert not df.iloc[0]["grade_current"]          # the old grade is shown as stale
    st = Store(tmp_path / "out")
    assert regrade_store(st, toolchain, exams={("tiny", 1): exam2}) == 1
    df = report.load(tmp_path / "out", grader_hashes={("tiny", 1): exam2.grader_hash})
    assert df.iloc[0]["grade_current"] and df.iloc[0]["points"] == 2
    assert st.query("SELECT COUNT(*) FROM grades")[0][0] == 2   # the old grade is kept


def test_grading_reads_the_stored_answer_not_the_stored_extraction(tmp_path, toolchain):
    """A grade is a function of the stored answer and the exam: the code extracted at
    generation time (here as an older extractor left it) is never what is graded, so
    a regrade after an extraction change grades the new extraction, and an answer
    that now has code, or no longer has, changes class."""
    from harness.grade.regrade import regrade_store
    from harness.results import CellKey

    exam = make_tiny_exam(tmp_path / "exams")
    marked = "```go\n#START main.go#\n" + HELLO_GO + "#END main.go#\n```\n"
    stale = [  # seed, stored gen_outcome, stored extracted code, the answer itself
        (1, "ok", "#START main.go#\n" + HELLO_GO + "#END main.go#\n", marked),  # markers kept by the old rules
        (2, "no_code", None, scripted_fence(HELLO_GO)),                          # code the old rules missed
        (3, "ok", HELLO_GO, "I cannot write Go today."),                         # code the old rules imagined
    ]
    st = Store(tmp_path / "out")
    run = st.start_run(command="t", config={}, tool_version="t", go_version=None, go_source=None, host={})
    for seed, gen, code, content in stale:
        st.save_attempt(run, CellKey("m", "tiny", 1, "hello", seed), sampling={}, request_id=None, gen_outcome=gen,
                        finish_reason="stop", content=content, extracted_code=code, extraction_method="fence")
    assert regrade_store(st, toolchain, exams={("tiny", 1): exam}) == 3
    df = _df(tmp_path / "out", exam).sort_values("seed")
    assert list(df["outcome"]) == ["ran", "ran", "no_code"]
    assert list(df["points"]) == [3.0, 3.0, 0.0]
    graded = [d["extraction"] for d in df["grade_details"]]
    assert graded[0]["code"] == HELLO_GO and "dropped marker line(s) '#START main.go#'" in graded[0]["note"]
    assert graded[2]["code"] is None and graded[2]["method"] == "none"
    st.close()


def test_run_with_marker_lines_in_the_fence_builds(tmp_path, exam, toolchain):
    """The prompt's file markers inside the go fence no longer cost the build."""
    answer = "Here it is:\n```go\n#START main.go#\n" + HELLO_GO + "#END main.go#\n```\n"
    with ScriptedLLM({"m": Reply(answer)}) as llm:
        s = run_sweep(llm.url, tmp_path / "out", exam, toolchain, seeds=(1,))
    assert s.ok
    row = _df(tmp_path / "out", exam).iloc[0]
    assert (row["outcome"], row["points"]) == ("ran", 3.0)
    assert row["extracted_code"] == HELLO_GO


def test_each_run_records_its_grader_and_regrade_finds_the_exam_directory(tmp_path, toolchain):
    """`sweep run --exam DIR`: the run records the grader it used (so its grades are
    current, though DIR is not installed); regrade finds the exam again in DIR."""
    from harness.grade.regrade import regrade_store

    exam = make_tiny_exam(tmp_path / "e")
    with ScriptedLLM({"m": Reply(scripted_fence(HELLO_GO))}) as llm:
        run_sweep(llm.url, tmp_path / "out", exam, toolchain, seeds=(1,))
    st = Store(tmp_path / "out")
    [rec] = st.query("SELECT * FROM run_graders")
    assert (rec["exam"], rec["exam_version"], rec["grader_hash"]) == ("tiny", 1, exam.grader_hash)
    assert rec["exam_dir"] == str(exam.root.resolve())
    df = report.load(tmp_path / "out")                     # no hashes given: the store's own
    assert df.iloc[0]["grade_current"] and df.iloc[0]["points"] == 3
    assert "older grader" not in report.markdown(df)
    # The exam changes in place: regrade (without being told the exams) grades with it.
    changed = make_tiny_exam(tmp_path / "e", expect="goodbye\n")
    assert changed.grader_hash != exam.grader_hash
    events: list = []
    assert regrade_store(st, toolchain, progress=events.append) == 1
    assert not [e for e in events if "not installed" in e.message]
    runs = st.query("SELECT command, status FROM runs ORDER BY id")
    assert [(r["command"], r["status"]) for r in runs] == [("sweep run", "done"), ("sweep regrade", "done")]
    assert queries.current_graders(st)[("tiny", 1)].grader_hash == changed.grader_hash
    df = report.load(tmp_path / "out")
    assert df.iloc[0]["grade_current"] and df.iloc[0]["points"] == 2
    st.close()


# -- per-model sampling, server props, unloading between models (issue #4) -------------------


def _sweep_cfg(tmp_path, exam, toolchain, endpoint, sleep=lambda s: None, **cfg_kwargs):
    from harness.config import RunConfig
    from harness.generate.runner import Sweep

    cfg = RunConfig(endpoint=endpoint, exams=(exam.id,), out_dir=tmp_path / "out",
                    **{"request_timeout_s": 10, "retries": 0, "retry_backoff_s": 0.01, **cfg_kwargs})
    events: list = []
    store = Store(cfg.out_dir)
    try:
        with ChatClient(endpoint, timeout_s=10) as client:
            s = Sweep(cfg, store=store, exams=[exam], toolchain=toolchain, client=client,
                      progress=events.append, sleep=sleep).run()
    finally:
        store.close()
    return s, events


def test_each_model_gets_its_own_sampling(tmp_path, exam, toolchain):
    from harness.wire import Sampling

    hot = Sampling(temperature=1.0, max_tokens=3000)
    cold = Sampling(temperature=0.2, max_tokens=2000, top_k=20, chat_template_kwargs={"enable_thinking": False})
    with ScriptedLLM({"a": Reply(scripted_fence(HELLO_GO)), "b": Reply(scripted_fence(HELLO_GO))}) as llm:
        s, _ = _sweep_cfg(tmp_path, exam, toolchain, llm.url, models=("a", "b"), seeds=(1, 2), sampling=hot,
                          sampling_by_model={"b": cold})
        sent = {(r.model, r.json["seed"]): r.json for r in llm.chat_requests()}
    assert s.ok and s.generated == 4
    for seed in (1, 2):
        assert {k: v for k, v in sent[("a", seed)].items() if k not in ("model", "messages", "seed")} == hot.to_body()
        assert {k: v for k, v in sent[("b", seed)].items() if k not in ("model", "messages", "seed")} == cold.to_body()
    st = Store(tmp_path / "out")
    stored = {(r["model"], r["seed"]): json.loads(r["sampling_json"]) for r in st.query("SELECT * FROM attempts")}
    assert stored[("a", 1)] == hot.to_body() and stored[("b", 2)] == cold.to_body()
    cfg = json.loads(st.query("SELECT config_json FROM runs")[0][0])
    assert cfg["sampling_by_model"]["b"]["top_k"] == 20


def test_props_stored_once_per_model_before_its_first_request(tmp_path, exam, toolchain):
    with ScriptedLLM({"a": Reply(scripted_fence(HELLO_GO)), "b": Reply(scripted_fence(HELLO_GO))},
                     n_ctx=8192, total_slots=2) as llm:
        s, events = _sweep_cfg(tmp_path, exam, toolchain, llm.url, models=("a", "b"), seeds=(1, 2))
        seq = [(r.method, r.model, r.path) for r in llm.requests if r.path != "/v1/models"]
    assert s.ok
    chat = "/v1/chat/completions"
    assert seq == [("GET", "a", "/upstream/a/props"), ("POST", "a", chat), ("POST", "a", chat),
                   ("GET", "b", "/upstream/b/props"), ("POST", "b", chat), ("POST", "b", chat)]
    rows = Store(tmp_path / "out").query("SELECT * FROM model_props ORDER BY id")
    assert [(r["model"], r["n_ctx"], r["total_slots"], r["build_info"]) for r in rows] == [
        ("a", 8192, 2, "b0-scripted-mock"), ("b", 8192, 2, "b0-scripted-mock")]
    assert rows[0]["model_path"] == "/models/a.gguf" and json.loads(rows[0]["props_json"])["total_slots"] == 2
    # n_ctx (8192) < max_tokens (16384 by default): said before the answers come back cut
    assert sum(e.kind == "warning" and "n_ctx 8192" in e.message for e in events) == 2


def test_props_skipped_for_models_with_nothing_to_do(tmp_path, exam, toolchain):
    with ScriptedLLM({"a": Reply(scripted_fence(HELLO_GO))}) as llm:
        _sweep_cfg(tmp_path, exam, toolchain, llm.url, models=("a",), seeds=(1,))
        _sweep_cfg(tmp_path, exam, toolchain, llm.url, models=("a",), seeds=(1,), unload_between_models=True)
        paths = [r.path for r in llm.requests]
    assert paths.count("/upstream/a/props") == 1 and "/api/models/unload" not in paths


def test_bare_llama_server_props(tmp_path, exam, toolchain):
    with ScriptedLLM({"a": Reply(scripted_fence(HELLO_GO))}, llama_swap=False) as llm:
        s, _ = _sweep_cfg(tmp_path, exam, toolchain, llm.url, models=("a",), seeds=(1,))
    rows = Store(tmp_path / "out").query("SELECT url FROM model_props")
    assert s.ok and [r["url"] for r in rows] == [f"{llm.url}/props"]


def test_unload_between_models(tmp_path, exam, toolchain):
    with ScriptedLLM({"a": Reply(scripted_fence(HELLO_GO)), "b": Reply(scripted_fence(HELLO_GO))}) as llm:
        s, events = _sweep_cfg(tmp_path, exam, toolchain, llm.url, models=("a", "b"), seeds=(1, 2),
                               unload_between_models=True)
        seq = [(r.model or "", r.path) for r in llm.requests if r.path != "/v1/models"]
        running_after = llm.running_model
    assert s.ok
    chat = "/v1/chat/completions"
    assert seq == [("a", "/upstream/a/props"), ("a", chat), ("a", chat), ("", "/api/models/unload"),
                   ("b", "/upstream/b/props"), ("b", chat), ("b", chat), ("", "/api/models/unload")]
    assert running_after is None
    assert sum(e.kind == "info" and "unloaded (POST /api/models/unload)" in e.message for e in events) == 2


def test_unload_falls_back_to_get_unload():
    import httpx

    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path))
        if request.url.path == "/unload":
            return httpx.Response(200, text="OK")
        return httpx.Response(404, json={"error": "not found"})

    with ChatClient("http://swap.test", transport=httpx.MockTransport(handler)) as client:
        assert client.unload_all() == "GET /unload"
    assert seen == [("POST", "/api/models/unload"), ("GET", "/unload")]


def test_unload_failure_is_a_warning_not_an_error(tmp_path, exam, toolchain):
    with ScriptedLLM({"a": Reply(scripted_fence(HELLO_GO))}, llama_swap=False) as llm:   # no unload routes
        s, events = _sweep_cfg(tmp_path, exam, toolchain, llm.url, models=("a",), seeds=(1,),
                               unload_between_models=True)
    assert s.ok
    assert any(e.kind == "warning" and "unloading failed" in e.message for e in events)


def test_generated_events_carry_speed(tmp_path, exam, toolchain):
    with ScriptedLLM({"a": Reply(scripted_fence(HELLO_GO))}) as llm:
        _, events = _sweep_cfg(tmp_path, exam, toolchain, llm.url, models=("a",), seeds=(1,))
    [g] = [e for e in events if e.kind == "generated"]
    assert g.tokens_per_s == pytest.approx(50.0) and g.wall_s is not None and g.wall_s >= 0


# -- streaming ------------------------------------------------------------------------

def test_streamed_sweep_stores_time_to_first_token(tmp_path, exam, toolchain):
    reply = Reply(scripted_fence(HELLO_GO), reasoning_content="thinking", delay_s=0.3, draft_n=10,
                  draft_n_accepted=7)
    with ScriptedLLM({"m": reply}) as llm:
        s = run_sweep(llm.url, tmp_path / "out", exam, toolchain, stream=True)
        body = llm.chat_requests()[0].json
    assert s.ok and s.graded == 2
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    df = _df(tmp_path / "out", exam)
    assert list(df["outcome"]) == ["ran", "ran"] and list(df["points"]) == [3.0, 3.0]
    assert (df["ttft_s"] > 0).all() and (df["ttft_s"] < df["wall_s"]).all()
    assert list(df["reasoning_content"]) == ["thinking", "thinking"]
    st = Store(tmp_path / "out")
    raw = st.query("SELECT response_raw, ttft_s FROM requests")[0]
    assert raw["response_raw"].startswith(b"data: ") and raw["ttft_s"] > 0   # the stream, stored as received
    speed = report.build(df).speed
    assert speed is not None
    [rec] = speed.records
    assert rec["ttft_n"] == 2 and rec["draft_accepted"] == 14 and rec["draft_n"] == 20
    assert "70% (14/20)" in speed.markdown()


def test_a_dropped_stream_is_retried_and_its_partial_bytes_stored(tmp_path, exam, toolchain):
    script = [Reply("x" * 400, drop_mid_stream=True), Reply(scripted_fence(HELLO_GO))]
    with ScriptedLLM({"m": script}) as llm:
        s = run_sweep(llm.url, tmp_path / "out", exam, toolchain, seeds=(1,), stream=True, retries=1)
    assert s.ok
    tries = Store(tmp_path / "out").query("SELECT try, error, response_raw FROM requests ORDER BY id")
    assert "mid-stream" in tries[0]["error"] and tries[0]["response_raw"].startswith(b"data: ")
    assert tries[1]["error"] is None


def test_an_error_inside_the_stream_is_an_endpoint_error(tmp_path, exam, toolchain):
    with ScriptedLLM({"m": Reply("x" * 400, stream_error="slot unavailable")}) as llm:
        s = run_sweep(llm.url, tmp_path / "out", exam, toolchain, seeds=(1,), stream=True, retries=1)
    assert not s.ok and any("slot unavailable" in e for e in s.errors)
    assert list(_df(tmp_path / "out", exam)["outcome"]) == ["endpoint_error"]
    assert Store(tmp_path / "out").query("SELECT COUNT(*) FROM requests")[0][0] == 2   # retried once


# -- parallel requests per model --------------------------------------------------------

def _meeting(n: int):
    """A script whose every request waits until ``n`` requests are in the server at
    once: a sweep that does not keep ``n`` in flight fails instead of slowing down."""
    import threading

    barrier = threading.Barrier(n, timeout=10)

    def script(body):
        barrier.wait()
        return Reply(scripted_fence(HELLO_GO))
    return script


def test_parallel_keeps_n_requests_in_flight(tmp_path, exam, toolchain):
    with ScriptedLLM({"m": _meeting(2)}, total_slots=2) as llm:
        s = run_sweep(llm.url, tmp_path / "out", exam, toolchain, seeds=(1, 2, 3, 4), parallel=2)
        assert llm.max_in_flight == 2 and not llm.script_errors
    assert s.ok and s.generated == 4 and s.graded == 4
    assert sorted(_df(tmp_path / "out", exam)["seed"]) == [1, 2, 3, 4]


def test_sequential_sweep_never_overlaps_requests(tmp_path, exam, toolchain):
    with ScriptedLLM({"m": Reply(scripted_fence(HELLO_GO), delay_s=0.05)}) as llm:
        run_sweep(llm.url, tmp_path / "out", exam, toolchain, seeds=(1, 2, 3))
        assert llm.max_in_flight == 1


def test_parallel_stays_model_major(tmp_path, exam, toolchain):
    models = {m: Reply(scripted_fence(HELLO_GO), delay_s=0.05) for m in ("a", "b", "c")}
    with ScriptedLLM(models, total_slots=3) as llm:
        s = run_sweep(llm.url, tmp_path / "out", exam, toolchain, models=("a", "b", "c"), seeds=(1, 2, 3),
                      parallel=3)
        order = [r.json["model"] for r in llm.chat_requests()]
        assert llm.loads == ["a", "b", "c"]          # each model loaded once: no swap back and forth
    assert s.ok and order == ["a"] * 3 + ["b"] * 3 + ["c"] * 3


def test_parallel_more_than_the_server_has_slots_warns(tmp_path, exam, toolchain):
    with ScriptedLLM({"a": Reply(scripted_fence(HELLO_GO))}, total_slots=1) as llm:
        s, events = _sweep_cfg(tmp_path, exam, toolchain, llm.url, models=("a",), seeds=(1, 2), parallel=4)
    assert s.ok
    assert any(e.kind == "warning" and "--parallel 4 but the server has 1 slot" in e.message for e in events)


def test_parallel_unknown_model_skipped_others_continue(tmp_path, exam, toolchain):
    with ScriptedLLM({"good": Reply(scripted_fence(HELLO_GO))}) as llm:
        s = run_sweep(llm.url, tmp_path / "out", exam, toolchain, models=("missing", "good"),
                      seeds=(1, 2, 3, 4), parallel=2)
    assert [e for e in s.errors if "missing" in e] and len(s.errors) == 1
    df = _df(tmp_path / "out", exam)
    assert list(df[df.model == "good"]["outcome"]) == ["ran"] * 4
    # the two requests in flight when the 404 came are stored; the rest were never sent
    assert 1 <= len(df[df.model == "missing"]) <= 2


def test_parallel_stop_after_endpoint_errors_then_resume(tmp_path, exam, toolchain):
    seeds = (1, 2, 3, 4, 5, 6)
    with ScriptedLLM({"m": Reply(status=503)}, total_slots=2) as llm:
        s = run_sweep(llm.url, tmp_path / "out", exam, toolchain, seeds=seeds, parallel=2, retries=0,
                      max_endpoint_errors=2)
        assert s.stopped_early and "2 consecutive endpoint errors" in s.stopped_early
        sent = len(llm.chat_requests())
        assert 2 <= sent <= 3                         # at most the requests already in flight
        llm.set_model("m", Reply(scripted_fence(HELLO_GO)))
        s2 = run_sweep(llm.url, tmp_path / "out", exam, toolchain, seeds=seeds, parallel=2, retries=0)
    assert s2.ok and s2.generated == 6 and s2.skipped == 0
    df = _df(tmp_path / "out", exam)
    assert sorted(df["seed"]) == list(seeds) and set(df["outcome"]) == {"ran"}   # nothing lost or doubled


# -- a model whose server does not start ------------------------------------------------

LOAD_FAILED = [
    # llama-swap v218-v250 (JSON, error as a string)
    Reply(status=500, raw_body=b'{"src":"llama-swap","error":"unspecific error: health check timed out after 2m0s"}'),
    # llama-swap HEAD (OpenAI envelope)
    Reply(status=500, raw_body=b'{"src":"llama-swap","error":{"message":"unspecific error: upstream command exited '
                               b'prematurely","type":"server_error","param":null,"code":"internal_error"}}'),
    # llama-swap <= v217 (plain text)
    Reply(status=502, raw_body=b"unable to start process: exit status 1"),
]


@pytest.mark.parametrize("failed", LOAD_FAILED)
def test_a_model_that_fails_to_load_is_skipped_and_the_sweep_goes_on(tmp_path, exam, toolchain, failed):
    with ScriptedLLM({"broken": failed, "good": Reply(scripted_fence(HELLO_GO))}) as llm:
        s = run_sweep(llm.url, tmp_path / "out", exam, toolchain, models=("broken", "good"), seeds=(1, 2, 3),
                      retries=3, max_endpoint_errors=2)
        sent = [r.json["model"] for r in llm.chat_requests()]
    assert sent.count("broken") == 1                      # not retried, no further cells tried
    assert s.stopped_early is None and len(s.errors) == 1
    assert "model 'broken' failed to load" in s.errors[0]
    df = _df(tmp_path / "out", exam)
    assert list(df[df.model == "good"]["outcome"]) == ["ran"] * 3
    assert list(df[df.model == "broken"]["outcome"]) == ["endpoint_error"]


def test_a_model_unloaded_while_queued_is_retried():
    from harness.wire import RawExchange, error_for

    raw = RawExchange("u", 500, b'{"src":"llama-swap","error":"unspecific error: r: model unloaded"}', 0.1)
    e = error_for(raw, model="m")
    assert type(e).__name__ == "EndpointHTTPError" and e.retryable


def test_a_worker_in_back_off_sends_nothing_after_the_sweep_stopped(tmp_path, exam, toolchain):
    """Seed 1 fails for good (400) and stops the sweep (max 1 error); seed 2 got a 503
    and is backing off meanwhile: when it wakes, it must not try again."""
    import threading
    import time as _time

    both_in = threading.Barrier(2, timeout=10)

    def script(body):
        both_in.wait()
        # seed 2's 503 comes at once (its worker starts backing off); seed 1's 400 half a second later
        return Reply(status=400, error_message="bad request", delay_s=0.5) if body["seed"] == 1 else Reply(status=503)

    with ScriptedLLM({"m": script}, total_slots=2) as llm:
        s, _ = _sweep_cfg(tmp_path, exam, toolchain, llm.url, sleep=lambda _s: _time.sleep(1.5), models=("m",),
                          seeds=(1, 2), retries=3, max_endpoint_errors=1, parallel=2)
        assert len(llm.chat_requests()) == 2
    assert s.stopped_early and "1 consecutive endpoint errors" in s.stopped_early


def test_llama_swap_loading_messages_in_a_stream_are_warned_about_once(tmp_path, exam, toolchain):
    loading = "llama-swap loading model: m\n. . . .\nDone! (0.52s)\n"
    with ScriptedLLM({"m": Reply(scripted_fence(HELLO_GO), reasoning_content=loading)}) as llm:
        s, events = _sweep_cfg(tmp_path, exam, toolchain, llm.url, models=("m",), seeds=(1, 2), stream=True)
    assert s.ok
    warned = [e for e in events if e.kind == "warning" and "sendLoadingState is on" in e.message]
    assert len(warned) == 1
