"""The scripted LLM server, exercised over real loopback HTTP with httpx."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mock_server.llm import (
    BUILD_INFO,
    Reply,
    ScriptedLLM,
    count_tokens,
    scripted_fence,
)

GO = 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("hello")\n}\n'
MESSAGES = [{"role": "user", "content": "Write hello world in Go."}]


def chat(http: httpx.Client, llm: ScriptedLLM, model: str, **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": MESSAGES, **extra}
    return http.post(f"{llm.url}/v1/chat/completions", json=body)


def sse_events(resp: httpx.Response) -> list[Any]:
    """Parse an SSE body into JSON objects, with the literal '[DONE]' kept as a str."""
    out: list[Any] = []
    for line in resp.text.splitlines():
        if line.startswith("data: "):
            data = line[len("data: "):]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One pooled client: a fresh httpx client per call costs ~30 ms of TLS setup."""
    with httpx.Client(timeout=5, trust_env=False) as client:
        yield client


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM({
        "coder": Reply(content=scripted_fence(GO)),
        "thinker": Reply(content="answer", reasoning_content="let me think about it"),
    }) as server:
        yield server


def test_completion_has_llama_server_shape(http: httpx.Client, llm: ScriptedLLM) -> None:
    r = chat(http, llm, "coder", seed=7, temperature=0)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    d = r.json()
    assert d["id"].startswith("chatcmpl-") and d["object"] == "chat.completion"
    assert isinstance(d["created"], int) and d["model"] == "coder"
    assert d["system_fingerprint"] == BUILD_INFO
    (choice,) = d["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    msg = choice["message"]
    assert msg == {"role": "assistant", "content": scripted_fence(GO)}  # no reasoning key
    assert "```go\n" + GO.strip() + "\n```" in msg["content"]
    u = d["usage"]
    assert u["completion_tokens"] == count_tokens(msg["content"])
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
    assert u["prompt_tokens_details"] == {"cached_tokens": 0}
    t = d["timings"]
    assert set(t) == {"cache_n", "prompt_n", "prompt_ms", "prompt_per_token_ms",
                      "prompt_per_second", "predicted_n", "predicted_ms",
                      "predicted_per_token_ms", "predicted_per_second"}
    assert t["prompt_n"] + t["cache_n"] == u["prompt_tokens"]
    assert t["predicted_n"] == u["completion_tokens"]
    assert t["predicted_per_second"] == pytest.approx(1000 * t["predicted_n"] / t["predicted_ms"])
    assert t["prompt_per_token_ms"] == pytest.approx(t["prompt_ms"] / t["prompt_n"])
    assert all(isinstance(v, (int, float)) and v >= 0 for v in t.values())


def test_reasoning_content_only_when_present(http: httpx.Client, llm: ScriptedLLM) -> None:
    msg = chat(http, llm, "thinker").json()["choices"][0]["message"]
    assert msg["reasoning_content"] == "let me think about it"
    assert msg["content"] == "answer"
    usage = chat(http, llm, "thinker").json()["usage"]
    expected = count_tokens("let me think about it") + count_tokens("answer")
    assert usage["completion_tokens"] == expected
    llm.set_model("thinker", Reply(content="answer", reasoning_content=""))
    assert "reasoning_content" not in chat(http, llm, "thinker").json()["choices"][0]["message"]


def test_unknown_model_is_404_with_error_envelope(http: httpx.Client, llm: ScriptedLLM) -> None:
    r = chat(http, llm, "nope")
    assert r.status_code == 404
    assert r.json() == {"error": {"code": 404, "message": "no router for requested model",
                                  "type": "not_found_error"}}
    assert llm.requests[-1].model == "nope"


@pytest.mark.parametrize(("status", "etype"), [
    (500, "server_error"), (503, "unavailable_error"), (429, "rate_limit_error")])
def test_scripted_error_status(http: httpx.Client, status: int, etype: str) -> None:
    with ScriptedLLM({"m": Reply(status=status, error_message="boom")}) as llm:
        r = chat(http, llm, "m")
    assert r.status_code == status
    assert r.json() == {"error": {"code": status, "message": "boom", "type": etype}}
    if status == 429:
        assert r.headers["retry-after"] == "1"


def test_bad_requests_get_400(http: httpx.Client, llm: ScriptedLLM) -> None:
    url = f"{llm.url}/v1/chat/completions"
    headers = {"Content-Type": "application/json"}
    r = http.post(url, content=b"{not json", headers=headers)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert http.post(url, content=b"", headers=headers).status_code == 400
    assert chat(http, llm, "coder", messages=[]).status_code == 400
    r = http.post(url, json={"model": "coder", "messages": MESSAGES,
                              "chat_template_kwargs": {"enable_thinking": "false"}})
    assert r.status_code == 400 and "expected boolean" in r.json()["error"]["message"]
    # llama-swap picks the model from a JSON body only when Content-Type says JSON
    r = http.post(url, content=json.dumps({"model": "coder", "messages": MESSAGES}),
                   headers={"Content-Type": "text/plain"})
    assert r.status_code == 404 and "no model id" in r.json()["error"]["message"]


def test_malformed_raw_body_is_sent_verbatim(http: httpx.Client) -> None:
    with ScriptedLLM({"m": Reply(raw_body=b'{"choices": [')}) as llm:
        r = chat(http, llm, "m")
    assert r.status_code == 200 and r.content == b'{"choices": ['
    with pytest.raises(json.JSONDecodeError):
        r.json()


def test_dropped_connection_is_a_protocol_error(http: httpx.Client) -> None:
    with ScriptedLLM({"m": Reply(drop_connection=True),
                      "half": Reply(content="x" * 400, drop_mid_stream=True)}) as llm:
        with pytest.raises(httpx.RemoteProtocolError):
            chat(http, llm, "m")
        with pytest.raises(httpx.RemoteProtocolError):
            chat(http, llm, "half")
        with pytest.raises(httpx.RemoteProtocolError):
            chat(http, llm, "half", stream=True)


def test_hang_times_out_on_the_client_and_stop_is_prompt(http: httpx.Client) -> None:
    llm = ScriptedLLM({"m": Reply(hang=True)}).start()
    with pytest.raises(httpx.ReadTimeout):
        http.post(f"{llm.url}/v1/chat/completions",
                   json={"model": "m", "messages": MESSAGES}, timeout=0.3)
    # a second hanging request still in progress while we stop the server
    errors: list[BaseException] = []

    def call() -> None:
        try:
            http.post(f"{llm.url}/v1/chat/completions",
                       json={"model": "m", "messages": MESSAGES}, timeout=10)
        except BaseException as e:  # noqa: BLE001 - we only record it
            errors.append(e)

    before = threading.active_count()
    t = threading.Thread(target=call)
    t.start()
    assert llm.wait_for_requests(2)
    t0 = time.monotonic()
    llm.stop()
    t.join(3)
    assert time.monotonic() - t0 < 2.0
    assert not t.is_alive()
    assert errors and isinstance(errors[0], httpx.RemoteProtocolError)
    assert threading.active_count() <= before
    assert not any(th.name.startswith("scripted-llm") for th in threading.enumerate())
    with pytest.raises(httpx.ConnectError):
        http.get(f"{llm.url}/v1/models", timeout=1)


def test_max_tokens_truncates_with_finish_reason_length(http: httpx.Client) -> None:
    with ScriptedLLM({"m": Reply(content="abcd" * 100, reasoning_content="r" * 8)}) as llm:
        d = chat(http, llm, "m", max_tokens=10).json()
        msg = d["choices"][0]["message"]
        assert d["choices"][0]["finish_reason"] == "length"
        assert msg["reasoning_content"] == "r" * 8
        assert msg["content"] == ("abcd" * 100)[: 10 * 4 - 8]
        assert d["usage"]["completion_tokens"] == 10
        # n_predict takes precedence over max_tokens, as in llama-server
        d = chat(http, llm, "m", max_tokens=1000, n_predict=1).json()
        assert d["choices"][0]["finish_reason"] == "length"
        assert d["choices"][0]["message"] == {"role": "assistant", "content": "",
                                              "reasoning_content": "rrrr"}
        d = chat(http, llm, "m", max_tokens=1000).json()
        assert d["choices"][0]["finish_reason"] == "stop"


def test_stream_assembles_to_the_same_answer(http: httpx.Client, llm: ScriptedLLM) -> None:
    plain = chat(http, llm, "thinker").json()
    r = chat(http, llm, "thinker", stream=True, stream_options={"include_usage": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
    content = reasoning = ""
    for c in chunks[1:]:
        for ch in c["choices"]:
            content += ch["delta"].get("content") or ""
            reasoning += ch["delta"].get("reasoning_content") or ""
    msg = plain["choices"][0]["message"]
    assert content == msg["content"] and reasoning == msg["reasoning_content"]
    finish, usage = chunks[-2], chunks[-1]
    assert finish["choices"] == [{"finish_reason": "stop", "index": 0, "delta": {}}]
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == (
        plain["usage"]["completion_tokens"])
    assert "timings" in usage and "timings" not in finish  # on the last chunk only
    assert usage["timings"]["predicted_n"] == plain["timings"]["predicted_n"]
    # without include_usage the finish chunk is last and carries the timings
    chunks = sse_events(chat(http, llm, "coder", stream=True))[:-1]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["timings"]["predicted_n"] >= 1


def test_delay_and_timings_agree(http: httpx.Client) -> None:
    with ScriptedLLM({"m": Reply(content="x" * 40, delay_s=0.2)}) as llm:
        t0 = time.monotonic()
        d = chat(http, llm, "m").json()
        elapsed = time.monotonic() - t0
        t = d["timings"]
        assert 0.2 <= elapsed < 1.5
        assert t["prompt_ms"] + t["predicted_ms"] == pytest.approx(200, abs=0.01)
        t0 = time.monotonic()
        with http.stream("POST", f"{llm.url}/v1/chat/completions", timeout=5,
                          json={"model": "m", "messages": MESSAGES, "stream": True}) as r:
            lines = r.iter_lines()
            first = next(lines)
            ttft = time.monotonic() - t0
            list(lines)
        total = time.monotonic() - t0
        assert first.startswith("data: ")
        assert ttft < total and 0.2 <= total < 1.5


def test_models_health_props_running_unload(http: httpx.Client, llm: ScriptedLLM) -> None:
    d = http.get(f"{llm.url}/v1/models").json()
    assert d["object"] == "list"
    assert [m["id"] for m in d["data"]] == ["coder", "thinker"]
    assert all(m["object"] == "model" and m["owned_by"] == "llama-swap" for m in d["data"])
    assert http.get(f"{llm.url}/health").text == "OK"
    assert http.get(f"{llm.url}/running").json() == {"running": []}

    p = http.get(f"{llm.url}/upstream/coder/props").json()
    assert p["default_generation_settings"]["n_ctx"] == 32768
    assert "temperature" in p["default_generation_settings"]["params"]
    assert p["total_slots"] == 1 and p["build_info"] == BUILD_INFO
    assert p["model_path"].endswith("coder.gguf")
    p = http.get(f"{llm.url}/props", params={"model": "thinker"}).json()
    assert p["model_alias"] == "thinker"
    assert http.get(f"{llm.url}/props").status_code == 404
    assert http.get(f"{llm.url}/upstream/nope/props").status_code == 404
    assert http.get(f"{llm.url}/upstream/coder/health").json() == {"status": "ok"}

    chat(http, llm, "coder")
    running = http.get(f"{llm.url}/running").json()["running"]
    assert [(r["model"], r["state"]) for r in running] == [("coder", "ready")]
    # /upstream/coder/props loads coder, /props?model=thinker swaps, /upstream/coder/health back
    assert llm.loads == ["coder", "thinker", "coder"]
    r = http.post(f"{llm.url}/api/models/unload")
    assert r.status_code == 200 and r.json() == {"msg": "ok"}
    assert http.get(f"{llm.url}/running").json() == {"running": []}
    assert llm.running_model is None
    r = http.post(f"{llm.url}/upstream/coder/v1/chat/completions",
                   json={"messages": MESSAGES})
    assert r.json()["choices"][0]["message"]["content"] == scripted_fence(GO)


def test_plain_llama_server_mode(http: httpx.Client) -> None:
    with ScriptedLLM({"only": "hi"}, llama_swap=False, base_path="/api") as llm:
        assert llm.url.endswith("/api")
        assert http.get(f"{llm.url}/health").json() == {"status": "ok"}
        assert http.get(f"{llm.url}/props").json()["model_alias"] == "only"
        assert http.get(f"{llm.url}/running").status_code == 404
        r = http.post(f"{llm.url}/v1/chat/completions", json={"messages": MESSAGES})
        assert r.json()["choices"][0]["message"]["content"] == "hi"
        llm.health_ok = False
        r = http.get(f"{llm.url}/health")
        assert r.status_code == 503 and r.json()["error"]["type"] == "unavailable_error"
        assert http.get(llm.url.removesuffix("/api") + "/health").status_code == 404


def test_seed_dependent_script_and_recorded_requests(http: httpx.Client) -> None:
    def by_seed(body: dict[str, Any]) -> Reply:
        return Reply(content=f"seed={body.get('seed')} temp={body.get('temperature')}")

    with ScriptedLLM({"m": by_seed}) as llm:
        answers = [
            chat(http, llm, "m", seed=s, temperature=0.5).json()["choices"][0]["message"]["content"]
            for s in (1, 2)
        ]
        assert answers == ["seed=1 temp=0.5", "seed=2 temp=0.5"]
        reqs = llm.chat_requests("m")
    assert [r.json["seed"] for r in reqs] == [1, 2]
    assert all(r.method == "POST" and r.path == "/v1/chat/completions" for r in reqs)
    assert reqs[0].headers["content-type"] == "application/json"
    assert reqs[0].json["messages"] == MESSAGES and reqs[0].time <= reqs[1].time


def test_list_script_repeats_last_and_script_errors_are_kept(http: httpx.Client) -> None:
    def broken(body: dict[str, Any]) -> Reply:
        raise ValueError("bug in script")

    with ScriptedLLM({"m": [Reply(status=503), Reply(content="ok")], "b": broken}) as llm:
        assert [chat(http, llm, "m").status_code for _ in range(3)] == [503, 200, 200]
        r = chat(http, llm, "b")
        assert r.status_code == 500 and "bug in script" in r.json()["error"]["message"]
        assert isinstance(llm.script_errors[0], ValueError)
        llm.set_model("m", [Reply(content="again")])
        assert chat(http, llm, "m").json()["choices"][0]["message"]["content"] == "again"
        llm.remove_model("m")
        assert chat(http, llm, "m").status_code == 404


def test_concurrency_is_observable_and_limited(http: httpx.Client) -> None:
    with ScriptedLLM({"m": Reply(content="x", delay_s=0.3)}, concurrency_limit=2) as llm:
        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(chat(http, llm, "m").status_code))
                   for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
        assert sorted(results) == [200, 200, 429]
        assert llm.max_in_flight == 2 and llm.in_flight == 0


def test_scripted_fence(http: httpx.Client) -> None:
    text = scripted_fence(GO, prose="Sure:")
    assert text.startswith("Sure:\n\n```go\npackage main\n")
    assert text.count("```") == 2 and "\n}\n```" in text
