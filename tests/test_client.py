"""The chat client: streamed answers over real loopback HTTP (the scripted
llama-server), and the stream parser on a table of real-world shapes."""

from __future__ import annotations

import json
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from harness.errors import (
    EndpointHTTPError,
    EndpointTimeout,
    EndpointUnreachable,
    MalformedResponse,
    ModelLoadFailed,
    ResponseTooLarge,
)
from harness.generate.client import ChatClient
from harness.wire import RawExchange, Sampling, error_for, parse_response, parse_stream, sse_events
from mock_server.llm import Reply, ScriptedLLM, scripted_fence
from tests.helpers import HELLO_GO

MESSAGES = [{"role": "user", "content": "Write hello world in Go."}]


def _send(llm: ScriptedLLM | _Slow, *, stream: bool, timeout_s: float = 10) -> RawExchange:
    with ChatClient(llm.url, timeout_s=timeout_s) as client:
        return client.send(client.build_body("m", MESSAGES, 7, Sampling(max_tokens=2000), stream=stream))


def test_stream_body_asks_for_usage():
    body = ChatClient.build_body("m", MESSAGES, 1, Sampling(), stream=True)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert "stream" not in ChatClient.build_body("m", MESSAGES, 1, Sampling())


@pytest.mark.parametrize("reply", [
    Reply(scripted_fence(HELLO_GO), reasoning_content="Let me think about fmt."),
    Reply("```go\n" + HELLO_GO, finish_reason="length", completion_tokens=12),
    Reply("", reasoning_content="only thinking"),
    Reply(scripted_fence(HELLO_GO), cached_tokens=3, draft_n=20, draft_n_accepted=15),
])
def test_streamed_and_plain_answers_parse_alike(reply):
    with ScriptedLLM({"m": reply}) as llm:
        plain = parse_response(_send(llm, stream=False))
        raw = _send(llm, stream=True)
        streamed = parse_response(raw)
        assert llm.chat_requests()[1].json["stream"] is True
    assert raw.streamed and raw.body.rstrip().endswith(b"data: [DONE]")
    assert streamed.content == plain.content
    assert streamed.reasoning_content == plain.reasoning_content
    assert streamed.finish_reason == plain.finish_reason
    assert streamed.usage["completion_tokens"] == plain.usage["completion_tokens"]
    for k in ("predicted_n", "prompt_n", "cache_n", "draft_n", "draft_n_accepted"):
        assert streamed.timings.get(k) == plain.timings.get(k), k


def test_time_to_first_token_is_measured_only_when_streaming():
    # 0.6 s of scripted generation: the first token comes early, the stream ends late
    with ScriptedLLM({"m": Reply(scripted_fence(HELLO_GO), delay_s=0.6)}) as llm:
        raw = _send(llm, stream=True)
        plain = _send(llm, stream=False)
    assert raw.ttft_s is not None and 0 < raw.ttft_s < raw.wall_s
    assert raw.wall_s >= 0.55
    assert plain.ttft_s is None and not plain.streamed


def test_error_event_inside_the_stream():
    with ScriptedLLM({"m": Reply("x" * 400, stream_error="CUDA error: out of memory")}) as llm:
        raw = _send(llm, stream=True)
    assert raw.status == 200 and raw.streamed
    with pytest.raises(EndpointHTTPError, match="error in the stream .*CUDA error") as e:
        parse_response(raw)
    assert e.value.status == 500 and e.value.retryable


def test_connection_dropped_mid_stream_keeps_the_partial_bytes():
    with ScriptedLLM({"m": Reply("x" * 400, drop_mid_stream=True)}) as llm:
        with pytest.raises(EndpointUnreachable, match="connection dropped .*mid-stream") as e:
            _send(llm, stream=True)
    assert e.value.retryable
    assert e.value.partial is not None and e.value.partial.startswith(b"data: ")


def test_a_stream_that_outlasts_the_request_timeout():
    # Chunks keep coming (so no read ever times out), but the whole answer takes 3 s.
    with ScriptedLLM({"m": Reply("x" * 800, delay_s=3.0)}) as llm:
        with pytest.raises(EndpointTimeout, match="did not finish streaming within 1s") as e:
            _send(llm, stream=True, timeout_s=1.0)
    assert e.value.partial


def test_http_errors_before_the_stream_are_plain_answers():
    with ScriptedLLM({"m": Reply(status=503)}) as llm:
        raw = _send(llm, stream=True)
    assert raw.status == 503 and not raw.streamed
    assert json.loads(raw.body)["error"]["code"] == 503


# -- the stream parser, on shapes seen in the field -------------------------------------

def _raw(text: str, streamed: bool = True) -> RawExchange:
    return RawExchange("http://x/v1/chat/completions", 200, text.encode(), 1.0, streamed=streamed)


def _ev(obj: object) -> str:
    return f"data: {json.dumps(obj)}\n\n"


def _delta(**d: object) -> dict:
    return {"choices": [{"index": 0, "finish_reason": None, "delta": d}]}


FINISH = {"choices": [{"index": 0, "finish_reason": "stop", "delta": {}}]}


def test_parser_joins_deltas_and_reads_the_last_chunks():
    text = (_ev(_delta(role="assistant", content=None)) + _ev(_delta(reasoning_content="hm")) +
            _ev(_delta(content="pack")) + _ev(_delta(content="age main")) + _ev(FINISH) +
            _ev({"choices": [], "usage": {"completion_tokens": 4}, "timings": {"predicted_n": 4}}) +
            "data: [DONE]\n\n")
    r = parse_stream(_raw(text))
    assert (r.content, r.reasoning_content, r.finish_reason) == ("package main", "hm", "stop")
    assert r.usage == {"completion_tokens": 4} and r.timings == {"predicted_n": 4}


@pytest.mark.parametrize("text", [
    # CRLF line ends, keep-alive comments, "data:" without a space
    ": ping\r\n\r\ndata:" + json.dumps(_delta(content="ok")) + "\r\n\r\n" + "data:" + json.dumps(FINISH) + "\r\n\r\n",
    # no [DONE] (some servers end the body after the finish chunk)
    _ev(_delta(content="ok")) + _ev(FINISH),
    # Ollama / LM Studio: "reasoning" instead of "reasoning_content"
    _ev(_delta(reasoning="t")) + _ev(_delta(content="ok")) + _ev(FINISH) + "data: [DONE]\n\n",
    # event and id fields around the data
    "event: message\nid: 1\n" + _ev(_delta(content="ok")) + _ev(FINISH) + "data: [DONE]\n\n",
])
def test_parser_accepts_real_world_variants(text):
    r = parse_stream(_raw(text))
    assert r.content == "ok" and r.finish_reason == "stop"


@pytest.mark.parametrize("text, error, needle", [
    (_ev(_delta(content="ok")) + "data: [DONE]\n\n", MalformedResponse, "without a finish_reason"),
    (_ev(_delta(content="ok")), MalformedResponse, "stopped after 1 chunk"),
    ("data: {not json\n\n", MalformedResponse, "not JSON"),
    (_ev(["a list"]), MalformedResponse, "not a JSON object"),
    (_ev({"id": "x"}), MalformedResponse, "without choices"),
    (_ev(_delta(content=["parts"])), MalformedResponse, "non-text content"),
    (_ev(_delta(content="a")) + _ev({"error": {"code": 400, "message": "context size exceeded"}}),
     EndpointHTTPError, "context size exceeded"),
    ("", MalformedResponse, "after 0 chunk"),
])
def test_parser_rejects_broken_streams(text, error, needle):
    with pytest.raises(error, match=needle):
        parse_stream(_raw(text))


def test_an_in_stream_400_is_not_retried():
    with pytest.raises(EndpointHTTPError) as e:
        parse_stream(_raw(_ev({"error": {"code": 400, "message": "bad"}})))
    assert e.value.status == 400 and not e.value.retryable


def test_a_server_that_ignores_stream_is_read_as_json():
    body = {"choices": [{"index": 0, "finish_reason": "stop", "message": {"content": "ok"}}]}
    assert parse_response(_raw(json.dumps(body), streamed=False)).content == "ok"


def test_sse_events_joins_multiline_data_and_keeps_legacy_errors():
    assert sse_events(b"data: a\ndata: b\n\ndata: c\n") == [("data", "a\nb"), ("data", "c")]
    assert sse_events(b'data: x\n\nerror: {"code":400}\n\ndata: [DONE]\n\n') == [
        ("data", "x"), ("error", '{"code":400}'), ("data", "[DONE]")]


def test_legacy_error_line_inside_the_stream():
    # llama.cpp builds of 2025: `error: {...}` (not a data field), then data: [DONE]
    with ScriptedLLM({"m": Reply("x" * 400, stream_error="the request exceeds the available context size",
                                 legacy_stream_error=True)}) as llm:
        raw = _send(llm, stream=True)
    assert b"\nerror: {" in raw.body
    with pytest.raises(EndpointHTTPError, match="exceeds the available context size") as e:
        parse_response(raw)
    assert e.value.status == 500
    with pytest.raises(EndpointHTTPError) as e400:
        parse_stream(_raw(_ev(_delta(content="a")) + 'error: {"code":400,"message":"too long"}\n\ndata: [DONE]\n\n'))
    assert e400.value.status == 400 and not e400.value.retryable


def test_llama_swap_load_failure_inside_a_stream_is_a_load_failure():
    """sendLoadingState: llama-swap streams its loading messages as reasoning; when the
    model's server does not start, its last message says so and the stream ends."""
    text = (_ev(_delta(reasoning_content="llama-swap loading model: big\n")) + _ev(_delta(reasoning_content=". . .\n"))
            + _ev(_delta(reasoning_content="Unable to swap model err: unable to start process: health check timed "
                                           "out after 2m0s\n")))
    with pytest.raises(ModelLoadFailed, match="model 'big' failed to load .*health check timed out") as e:
        parse_response(_raw(text), model="big")
    assert not e.value.retryable


# -- one deadline per request, whatever the server does ------------------------------------


class _Slow(socketserver.ThreadingTCPServer):
    """A loopback HTTP server that answers every request with ``head`` then the
    pieces of ``pieces`` (delay, bytes), one after the other, then holds the
    connection open until stopped: a server that trickles, or goes silent."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, head: bytes, pieces: list[tuple[float, bytes]]) -> None:
        self.head, self.pieces = head, pieces
        self.stopping = threading.Event()
        super().__init__(("127.0.0.1", 0), _SlowHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()


class _SlowHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        srv: _Slow = self.server  # type: ignore[assignment]
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            data += chunk
        try:
            self.request.sendall(srv.head)
            for delay, piece in srv.pieces:
                if srv.stopping.wait(delay):
                    return
                self.request.sendall(piece)
            srv.stopping.wait(60)
        except OSError:
            return      # the client gave up: what the tests want


@contextmanager
def _slow(head: bytes, pieces: list[tuple[float, bytes]]) -> Iterator[_Slow]:
    srv = _Slow(head, pieces)
    try:
        yield srv
    finally:
        srv.stop()


ANSWER = json.dumps({"choices": [{"index": 0, "finish_reason": "stop", "message": {"content": "ok"}}]}).encode()


def test_a_trickled_plain_answer_ends_at_the_request_timeout():
    """One byte every 0.1 s: no read ever waits the 1 s timeout, but the whole answer
    (about 8 s) must not outlast it."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(ANSWER)
    with _slow(head, [(0.1, bytes([b])) for b in ANSWER]) as srv:
        started = time.monotonic()
        with pytest.raises(EndpointTimeout, match=r"gave no complete answer within 1s \(\d+ bytes received\)") as e:
            _send(srv, stream=False, timeout_s=1.0)
        took = time.monotonic() - started
    assert 0.9 < took < 2.0, took
    assert e.value.partial and ANSWER.startswith(e.value.partial)


def test_a_stream_that_goes_silent_near_the_deadline_ends_at_it():
    """A chunk just before the deadline, then silence: the deadline ends the request
    at 2 s, not a read timeout 2 s after the last chunk."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
    chunk = b'data: {"choices":[{"index":0,"finish_reason":null,"delta":{"content":"x"}}]}\n\n'
    with _slow(head, [(0.0, chunk), (1.7, chunk)]) as srv:
        started = time.monotonic()
        with pytest.raises(EndpointTimeout, match="did not finish streaming within 2s") as e:
            _send(srv, stream=True, timeout_s=2.0)
        took = time.monotonic() - started
    assert 1.9 < took < 3.0, took
    assert e.value.partial == chunk * 2


def test_a_server_silent_before_its_headers_is_cut_at_the_deadline():
    with _slow(b"", [(30.0, b"HTTP/1.1 200 OK\r\n\r\n")]) as srv:
        started = time.monotonic()
        with pytest.raises(EndpointTimeout, match="within 1s"):
            _send(srv, stream=False, timeout_s=1.0)
        assert time.monotonic() - started < 2.0


def test_answers_within_the_deadline_are_untouched():
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(ANSWER)
    with _slow(head, [(0.05, ANSWER[:10]), (0.05, ANSWER[10:])]) as srv:
        raw = _send(srv, stream=False, timeout_s=5.0)
    assert raw.status == 200 and parse_response(raw).content == "ok"


# -- Retry-After ---------------------------------------------------------------------------


@pytest.mark.parametrize("header, expected", [("7", 7.0), ("0", 0.0), (None, None), ("soon", None)])
def test_retry_after_reaches_the_error(header, expected):
    headers = {"Retry-After": header} if header is not None else {}
    with ScriptedLLM({"m": Reply(status=429 if header is not None else 503, headers=headers)}) as llm:
        raw = _send(llm, stream=False)
    err = error_for(raw, model="m")
    assert isinstance(err, EndpointHTTPError) and err.retryable
    assert err.retry_after_s == expected


def test_retry_after_as_an_http_date():
    from email.utils import formatdate

    with ScriptedLLM({"m": Reply(status=503, headers={"Retry-After": formatdate(time.time() + 30, usegmt=True)})}) as llm:
        raw = _send(llm, stream=False)
    assert raw.retry_after_s is not None and 27 <= raw.retry_after_s <= 31


# -- what the messages say -------------------------------------------------------------------


def test_a_json_body_with_invalid_utf8_says_so():
    body = b'{"choices": [{"index": 0, "finish_reason": "stop", "message": {"content": "caf\xe9"}}]}'
    with ScriptedLLM({"m": Reply(raw_body=body)}) as llm:
        raw = _send(llm, stream=False)
    with pytest.raises(MalformedResponse, match=r"not valid UTF-8 \(byte 78 of 84: b'\\xe9\"}}'\)") as e:
        parse_response(raw)
    assert "not JSON" not in e.value.one_line()
    stream = (_ev(_delta(content="ok")) + _ev(FINISH)).encode().replace(b"ok", b"o\xff", 1)
    with pytest.raises(MalformedResponse, match="not valid UTF-8"):
        parse_stream(RawExchange("http://x/v1/chat/completions", 200, stream, 1.0, streamed=True))
    with pytest.raises(MalformedResponse, match="that is not JSON"):
        parse_response(_raw('{"choices": [', streamed=False))


# -- one size bound per answer -------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_an_endless_answer_is_cut_off_at_the_size_bound(stream):
    """A server that never stops sending (128 MiB on offer, no Content-Length): the
    client stops reading past 1 MiB, closes the connection, and keeps 64 KiB."""
    kind = b"text/event-stream" if stream else b"application/json"
    head = b"HTTP/1.1 200 OK\r\nContent-Type: " + kind + b"\r\nConnection: close\r\n\r\n"
    blob = (b'data: {"choices":[{"index":0,"finish_reason":null,"delta":{"content":"xxxx"}}]}\n\n' * 800)[:65536]
    with _slow(head, [(0.0, blob)] * 2048) as srv:
        started = time.monotonic()
        with ChatClient(srv.url, timeout_s=30, max_response_bytes=1024 * 1024) as client, \
                pytest.raises(ResponseTooLarge, match=r"passed 1048576 bytes, more than the 1 MiB allowed") as e:
            client.send(client.build_body("m", MESSAGES, 7, Sampling(), stream=stream))
        assert time.monotonic() - started < 10
    assert not e.value.retryable
    assert e.value.partial is not None and len(e.value.partial) == 65536
    assert "\n" not in e.value.one_line()


def test_an_answer_announced_too_large_is_not_read():
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 314572800\r\n\r\n"
    with _slow(head, [(0.0, b"x" * 65536)] * 16) as srv:
        with ChatClient(srv.url, timeout_s=30, max_response_bytes=32 * 1024 * 1024) as client, \
                pytest.raises(ResponseTooLarge, match="announces 314572800 bytes, more than the 32 MiB allowed") as e:
            client.send(client.build_body("m", MESSAGES, 7, Sampling()))
    assert e.value.partial is None


def test_an_answer_within_the_size_bound_is_untouched():
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(ANSWER)
    with _slow(head, [(0.0, ANSWER)]) as srv:
        with ChatClient(srv.url, timeout_s=10, max_response_bytes=len(ANSWER)) as client:
            raw = client.send(client.build_body("m", MESSAGES, 7, Sampling()))
    assert raw.body == ANSWER
