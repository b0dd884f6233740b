"""A scripted OpenAI-compatible LLM server on real loopback HTTP.

``ScriptedLLM`` imitates llama-swap in front of llama-server (llama.cpp), with
"models" whose answers are scripted: a fixed ``Reply``, a list of replies used in
order (the last one repeats), or a callable that receives the parsed request body
(so an answer can depend on ``seed``, ``max_tokens``, the prompt, ...). It is used
by the test suite and by ``sweep demo``. Response shapes follow
``/work/shared/notes/llama-swap-api.md``.

    with ScriptedLLM({"good": Reply(scripted_fence(REF))}) as llm:
        httpx.post(f"{llm.url}/v1/chat/completions", json={...})
        assert llm.requests[0].json["seed"] == 1

Token rule (fixed, so tests can predict it): **1 token = 4 characters**, rounded
up, counted separately for ``reasoning_content`` and ``content``; an empty answer
still costs 1 token (the end-of-generation token). ``max_tokens`` (or
``max_completion_tokens`` / ``n_predict``, in llama-server's precedence) bounds
reasoning + content together: text beyond ``max_tokens * 4`` characters is cut
(reasoning first, then content), ``finish_reason`` becomes ``"length"`` and
``completion_tokens == max_tokens``. The context (``n_ctx``) bounds it the same way;
a prompt that does not fit gives llama-server's 400 ``exceed_context_size_error``.

Timings: nominal speeds of 1000 prompt tok/s and 50 generated tok/s; when a reply
has ``delay_s > 0`` both are scaled so that ``prompt_ms + predicted_ms`` equals the
delay. A non-streamed reply sleeps the whole delay before answering; a streamed one
sleeps ``prompt_ms`` before its first chunk, then spaces its token chunks evenly.

Endpoints (``llama_swap=True``; ``False`` gives a bare llama-server, see below):

* ``POST /v1/chat/completions`` (and ``/upstream/<model>/v1/chat/completions``),
  streamed or not;
* ``GET /v1/models`` (also ``/models``), ``GET /running``, ``GET /health`` (text
  ``OK`` as llama-swap answers; llama-server's ``{"status":"ok"}`` under
  ``/upstream/<model>/health`` and with ``llama_swap=False``);
* ``GET /props?model=ID`` and ``GET /upstream/<model>/props`` (llama-server /props);
* ``POST /api/models/unload`` (``{"msg":"ok"}``), ``POST /api/models/unload/<m>``,
  ``GET /unload``.

Faithful details a client can trip over: in llama-swap mode a POST without a JSON
``Content-Type`` gets 404 "no model id could be identified"; ``/props`` without
``?model=`` is a 404 too; loading one model unloads the others (one swap group);
``chat_template_kwargs.enable_thinking`` must be a JSON boolean (else 400). Errors
use llama-server's envelope ``{"error": {"code", "message", "type"}}``; 429 also
carries ``Retry-After: 1``. Every request is recorded (``requests``) before it is
answered; exceptions raised by scripts are kept in ``script_errors`` and answered
with 500.

With ``llama_swap=False`` there is no ``/running``, ``/upstream``, ``/api`` or
``/unload``; ``/health`` and ``/props`` are llama-server's, a request without
``model`` goes to the only model (if there is exactly one), and
``/chat/completions`` is accepted as well.

``stop()`` ends everything promptly: delays and ``hang`` replies wake up, open
keep-alive connections are shut down, and handler threads are joined.
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "BUILD_INFO",
    "CHARS_PER_TOKEN",
    "RecordedRequest",
    "Reply",
    "Script",
    "ScriptedLLM",
    "count_tokens",
    "scripted_fence",
]

CHARS_PER_TOKEN = 4
BUILD_INFO = "b0-scripted-mock"
PROMPT_TOKENS_PER_SECOND = 1000.0
PREDICTED_TOKENS_PER_SECOND = 50.0

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "server_error",
    501: "not_supported_error",
    503: "unavailable_error",
}
_DEFAULT_MESSAGES = {
    404: "no router for requested model",
    429: "Too many requests",
    500: "Internal server error",
    503: "Loading model",
}


@dataclass(frozen=True)
class Reply:
    """What a scripted model answers to one request.

    ``status != 200`` answers with a llama-server error body (``error_message`` or a
    default); ``raw_body`` sends exactly those bytes (with ``status``);
    ``drop_connection`` closes the socket without any response; ``drop_mid_stream``
    sends the headers and about half of the body, then closes; ``hang`` never
    answers (the connection is closed when the server stops). ``delay_s`` applies
    before every kind of answer except ``hang``. ``completion_tokens`` overrides the
    4-characters-per-token count; ``cached_tokens`` is reported as reused prompt
    cache (``timings.cache_n``). ``draft_n``/``draft_n_accepted`` are reported in
    ``timings`` as llama-server does with speculative decoding (only when
    ``draft_n > 0``). ``stream_error`` makes a streamed answer end, after about half
    of its chunks, with llama-server's in-stream error event ``data: {"error": ...}``
    carrying that message (a non-streamed request gets a 500 with it). ``headers``
    are added to the response.
    """

    content: str = ""
    reasoning_content: str | None = None
    finish_reason: Literal["stop", "length", "tool_calls"] = "stop"
    completion_tokens: int | None = None
    delay_s: float = 0.0
    status: int = 200
    error_message: str | None = None
    raw_body: bytes | None = None
    drop_connection: bool = False
    drop_mid_stream: bool = False
    hang: bool = False
    cached_tokens: int = 0
    draft_n: int = 0
    draft_n_accepted: int = 0
    stream_error: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


Script = Callable[[dict[str, Any]], Reply | str]
ModelScript = Script | Reply | str | Sequence[Reply]


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the server received it (recorded before answering).

    ``headers`` keys are lower-case; ``json`` is the parsed body or ``None``;
    ``model`` is the body's ``model`` string (or ``?model=`` / the ``/upstream/``
    id) when there is one; ``time`` is ``time.time()`` at arrival.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    json: Any
    model: str | None
    time: float


def count_tokens(text: str | None) -> int:
    """Tokens of ``text`` under the mock's rule: 4 characters each, rounded up."""
    return math.ceil(len(text or "") / CHARS_PER_TOKEN)


def scripted_fence(code: str, prose: str = "Here is the program:") -> str:
    """Wrap Go ``code`` in a realistic markdown answer (prose, ```go fence, remark)."""
    return (
        f"{prose}\n\n```go\n{code.strip(chr(10))}\n```\n\n"
        "The program reads its input, computes the result and prints it."
    )


class _Script:
    """A model's script, normalised; hands out one ``Reply`` per request."""

    def __init__(self, script: ModelScript) -> None:
        self._lock = threading.Lock()
        self._index = 0
        if isinstance(script, (Reply, str)):
            self._fixed: list[Reply] | None = [_as_reply(script)]
            self._fn: Script | None = None
        elif callable(script):
            self._fixed, self._fn = None, script
        else:
            replies = [_as_reply(r) for r in script]
            if not replies:
                raise ValueError("a list script needs at least one Reply")
            self._fixed, self._fn = replies, None

    def next(self, body: dict[str, Any]) -> Reply:
        if self._fn is not None:
            return _as_reply(self._fn(body))
        assert self._fixed is not None
        with self._lock:
            reply = self._fixed[min(self._index, len(self._fixed) - 1)]
            self._index += 1
        return reply


def _as_reply(value: Reply | str) -> Reply:
    if isinstance(value, Reply):
        return value
    if isinstance(value, str):
        return Reply(content=value)
    raise TypeError(f"a script must give a Reply or a str, not {type(value).__name__}")


class _HTTPError(Exception):
    """Raised inside the handler to answer with a llama-server error body."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


@dataclass
class _Answer:
    """A completed generation, before it is put into JSON."""

    content: str
    reasoning: str | None
    finish_reason: str
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    prompt_ms: float
    predicted_ms: float
    draft_n: int = 0
    draft_n_accepted: int = 0

    def usage(self, *, details: bool) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "completion_tokens": self.completion_tokens,
            "prompt_tokens": self.prompt_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }
        if details:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        return usage

    def timings(self) -> dict[str, Any]:
        prompt_n = self.prompt_tokens - self.cached_tokens
        pred_n = self.completion_tokens
        return {
            "cache_n": self.cached_tokens,
            "prompt_n": prompt_n,
            "prompt_ms": round(self.prompt_ms, 3),
            "prompt_per_token_ms": _ratio(self.prompt_ms, prompt_n),
            "prompt_per_second": _ratio(1000.0 * prompt_n, self.prompt_ms),
            "predicted_n": pred_n,
            "predicted_ms": round(self.predicted_ms, 3),
            "predicted_per_token_ms": _ratio(self.predicted_ms, pred_n),
            "predicted_per_second": _ratio(1000.0 * pred_n, self.predicted_ms),
            **({"draft_n": self.draft_n, "draft_n_accepted": self.draft_n_accepted} if self.draft_n > 0 else {}),
        }


def _ratio(a: float, b: float) -> float:
    return round(a / b, 6) if b else 0.0


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer whose handler threads and sockets the owner tracks."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, addr: tuple[str, int], owner: ScriptedLLM) -> None:
        self.owner = owner
        super().__init__(addr, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        t = threading.Thread(
            target=self._run, args=(request, client_address), daemon=True,
            name="scripted-llm-conn",
        )
        with self.owner._lock:
            self.owner._conns[t] = request
        t.start()

    def _run(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self.owner._lock:
                self.owner._conns.pop(threading.current_thread(), None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # client disconnects and shutdowns are expected here


class ScriptedLLM:
    """A scripted llama-swap / llama-server on ``host:port`` (port 0 = any free one).

    ``models`` maps a model id to its script: a ``Reply``, a ``str`` (the content),
    a list of replies used in order (the last repeats), or a callable taking the
    parsed request body and returning a ``Reply`` (or ``str``). State is inspectable
    and thread-safe: ``requests``, ``script_errors``, ``running_model``, ``loads``,
    ``in_flight``, ``max_in_flight``. ``health_ok = False`` makes ``/health``
    answer 503 "Loading model". ``concurrency_limit`` answers extra concurrent chat
    requests with 429 as llama-swap does. ``base_path`` prefixes every route (and
    ``url``).
    """

    def __init__(
        self,
        models: Mapping[str, ModelScript],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        llama_swap: bool = True,
        base_path: str = "",
        n_ctx: int = 32768,
        total_slots: int = 1,
        concurrency_limit: int | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.llama_swap = llama_swap
        self.base_path = "/" + base_path.strip("/") if base_path.strip("/") else ""
        self.n_ctx, self.total_slots = n_ctx, total_slots
        self.concurrency_limit = concurrency_limit
        self.health_ok = True
        self.created = int(time.time())
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._models: dict[str, _Script] = {m: _Script(s) for m, s in models.items()}
        self._requests: list[RecordedRequest] = []
        self._script_errors: list[BaseException] = []
        self._loads: list[str] = []
        self._running: str | None = None
        self._in_flight = 0
        self._max_in_flight = 0
        self._conns: dict[threading.Thread, socket.socket] = {}
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> ScriptedLLM:
        """Bind and serve in a daemon thread. A stopped server cannot restart."""
        if self._httpd is not None or self._stopping.is_set():
            raise RuntimeError("ScriptedLLM.start() may be called once")
        self._httpd = _Server((self.host, self.port), self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
            daemon=True, name="scripted-llm",
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving, end hanging/delayed answers, close connections, join threads."""
        self._stopping.set()
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            conns = list(self._conns.items())
        for _, sock in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for t, _ in conns:
            t.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> ScriptedLLM:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123`` (plus ``base_path``)."""
        if self._httpd is None:
            raise RuntimeError("ScriptedLLM is not started")
        return f"http://{self.host}:{self.port}{self.base_path}"

    # -- scripting and inspection ------------------------------------------------

    def set_model(self, name: str, script: ModelScript) -> None:
        """Add or replace a model (a list script starts again from its first reply)."""
        new = _Script(script)
        with self._lock:
            self._models[name] = new

    def remove_model(self, name: str) -> None:
        with self._lock:
            self._models.pop(name, None)
            if self._running == name:
                self._running = None

    @property
    def models(self) -> list[str]:
        with self._lock:
            return list(self._models)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def chat_requests(self, model: str | None = None) -> list[RecordedRequest]:
        """Recorded chat-completion requests, optionally for one model."""
        return [
            r for r in self.requests
            if r.path.endswith("/chat/completions") and (model is None or r.model == model)
        ]

    def wait_for_requests(self, n: int, timeout: float = 2.0) -> bool:
        """Block until at least ``n`` requests were recorded; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self._requests) >= n, timeout)

    @property
    def script_errors(self) -> list[BaseException]:
        with self._lock:
            return list(self._script_errors)

    @property
    def running_model(self) -> str | None:
        with self._lock:
            return self._running

    @property
    def loads(self) -> list[str]:
        """Model ids in the order they were (re)loaded; a swap appends one."""
        with self._lock:
            return list(self._loads)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        with self._lock:
            return self._max_in_flight

    # -- internals used by the handler ----------------------------------------------

    def _record(self, req: RecordedRequest) -> None:
        with self._changed:
            self._requests.append(req)
            self._changed.notify_all()

    def _script(self, model: str) -> _Script | None:
        with self._lock:
            return self._models.get(model)

    def _load(self, model: str) -> None:
        with self._lock:
            if self._running != model:
                self._running = model
                self._loads.append(model)

    def _unload(self, model: str | None = None) -> None:
        with self._lock:
            if model is None or self._running == model:
                self._running = None

    def _enter(self) -> bool:
        with self._lock:
            if self.concurrency_limit is not None and self._in_flight >= self.concurrency_limit:
                return False
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            return True

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless the server stops first; True if it is stopping."""
        return self._stopping.wait(seconds) if seconds > 0 else self._stopping.is_set()

    def _props(self, model: str) -> dict[str, Any]:
        return {
            "default_generation_settings": {
                "n_ctx": self.n_ctx,
                "params": {
                    "seed": 4294967295, "temperature": 0.8, "top_k": 40, "top_p": 0.95,
                    "min_p": 0.05, "max_tokens": -1, "n_predict": -1, "n_keep": 0,
                    "repeat_penalty": 1.0, "presence_penalty": 0.0,
                    "frequency_penalty": 0.0, "stream": False, "n_probs": 0,
                    "samplers": ["penalties", "dry", "top_n_sigma", "top_k", "typ_p",
                                 "top_p", "min_p", "xtc", "temperature"],
                    "reasoning_format": "auto", "timings_per_token": False,
                },
            },
            "total_slots": self.total_slots,
            "model_path": f"/models/{model}.gguf",
            "model_alias": model,
            "chat_template": "{{ messages }}",
            "modalities": {"vision": False, "audio": False},
            "build_info": BUILD_INFO,
            "is_sleeping": False,
            "endpoint_slots": True,
            "endpoint_metrics": False,
            "bos_token": "<s>",
            "eos_token": "</s>",
        }

    def _model_entry(self, model: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": model, "object": "model", "created": self.created}
        if self.llama_swap:
            entry["owned_by"] = "llama-swap"
            entry["status"] = {"value": "loaded" if self.running_model == model else "unloaded"}
            entry["meta"] = {"llamaswap": {"type": "model", "aliases": []}}
        else:
            entry["owned_by"] = "llamacpp"
            entry["meta"] = {"vocab_type": 2, "n_vocab": 151936, "n_ctx_train": self.n_ctx,
                             "n_embd": 4096, "n_params": 8_000_000_000, "size": 5_000_000_000}
        return entry

    def _answer(self, reply: Reply, body: dict[str, Any], prompt_tokens: int) -> _Answer:
        limit = _max_tokens(body)
        room = self.n_ctx - prompt_tokens
        budget = room if limit is None else min(limit, room)
        reasoning, content = reply.reasoning_content or None, reply.content
        finish = reply.finish_reason
        tokens = reply.completion_tokens
        if tokens is None:
            tokens = max(1, count_tokens(reasoning) + count_tokens(content))
        if tokens > budget or len(reasoning or "") + len(content) > budget * CHARS_PER_TOKEN:
            chars = budget * CHARS_PER_TOKEN
            r = (reasoning or "")[:chars]
            content = content[: chars - len(r)]
            reasoning = r or None
            finish, tokens = "length", budget
        cached = max(0, min(reply.cached_tokens, prompt_tokens - 1))
        prompt_n = prompt_tokens - cached
        prompt_ms = 1000.0 * prompt_n / PROMPT_TOKENS_PER_SECOND
        predicted_ms = 1000.0 * tokens / PREDICTED_TOKENS_PER_SECOND
        if reply.delay_s > 0 and prompt_ms + predicted_ms > 0:
            scale = 1000.0 * reply.delay_s / (prompt_ms + predicted_ms)
            prompt_ms, predicted_ms = prompt_ms * scale, predicted_ms * scale
        return _Answer(content, reasoning, finish, prompt_tokens, cached, tokens,
                       prompt_ms, predicted_ms, max(0, reply.draft_n),
                       max(0, min(reply.draft_n_accepted, reply.draft_n)))


def _max_tokens(body: dict[str, Any]) -> int | None:
    """llama-server precedence: n_predict > max_completion_tokens > max_tokens; -1 = none."""
    for key in ("n_predict", "max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < -1:
            raise _HTTPError(400, f"Field '{key}': expected an integer >= -1")
        return None if value == -1 else value
    return None


def _prompt_tokens(messages: list[Any]) -> int:
    chars = 0
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        chars += len(content or "") + 4 * CHARS_PER_TOKEN  # role + template markers
    return max(1, math.ceil(chars / CHARS_PER_TOKEN))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    _pending_leave = False  # a chat request counted in ``in_flight`` not yet released

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # small SSE writes must not wait for delayed ACKs (Nagle)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @property
    def owner(self) -> ScriptedLLM:
        return self.server.owner

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # -- plumbing ------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, body: bytes, content_type: str = "application/json; charset=utf-8",
              headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self._release()
        self.wfile.write(body)

    def _json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers=headers)

    def _text(self, status: int, text: str) -> None:
        self._send(status, text.encode(), "text/plain; charset=utf-8")

    def _error(self, status: int, message: str | None = None,
               headers: Mapping[str, str] | None = None, **extra: Any) -> None:
        msg = message or _DEFAULT_MESSAGES.get(status, f"HTTP {status}")
        etype = _ERROR_TYPES.get(status, "server_error")
        err = {"code": status, "message": msg, "type": etype, **extra}
        hdrs = dict(headers or {})
        if status == 429:
            hdrs.setdefault("Retry-After", "1")
        self._json(status, {"error": err}, headers=hdrs)

    def _release(self) -> None:
        """Leave ``in_flight`` just before the last bytes go out, so that a client
        which has its answer never observes the request as still in flight."""
        if self._pending_leave:
            self._pending_leave = False
            self.owner._leave()

    def _drop(self) -> None:
        self._release()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- routing ---------------------------------------------------------------------

    def _dispatch(self) -> None:
        owner = self.owner
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        body = self._read_body()
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = None
        path = parts.path
        upstream_model = None
        base = owner.base_path
        if base and not (path == base or path.startswith(base + "/")):
            path = "/\0unrouted"
        else:
            path = path[len(base):] or "/"
        unknown_upstream = False
        if owner.llama_swap and path.startswith("/upstream/"):
            upstream_model, path = self._split_upstream(path[len("/upstream/"):])
            unknown_upstream = upstream_model is None
        model = upstream_model
        if model is None and isinstance(parsed, dict) and isinstance(parsed.get("model"), str):
            model = parsed["model"]
        if model is None and query.get("model"):
            model = query["model"][0]
        owner._record(RecordedRequest(
            method=self.command, path=parts.path, query=query,
            headers={k.lower(): v for k, v in self.headers.items()}, body=body,
            json=parsed, model=model, time=time.time(),
        ))
        try:
            if unknown_upstream:
                raise _HTTPError(404, "no router for requested model")
            self._route(self.command, path, query, body, parsed, upstream_model)
        except _HTTPError as e:
            self._error(e.status, e.message, **e.extra)
        except OSError:  # the client went away, or stop() shut the socket
            self.close_connection = True

    def _split_upstream(self, rest: str) -> tuple[str | None, str]:
        """``/upstream/<model>/<path>`` -> (model, "/<path>"); model ids may contain '/'."""
        for m in sorted(self.owner.models, key=len, reverse=True):
            if rest == m:
                return m, "\0redirect"
            if rest.startswith(m + "/"):
                return m, rest[len(m):]
        return None, rest

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: bytes,
               parsed: Any, upstream: str | None) -> None:
        owner, swap = self.owner, self.owner.llama_swap
        if upstream is not None:
            owner._load(upstream)  # llama-swap starts the model for any /upstream/ path
        chat_paths = {"/v1/chat/completions"} if swap and upstream is None else {
            "/v1/chat/completions", "/chat/completions"}
        if path == "\0redirect":
            self._send(301, b"", headers={"Location": self.path + "/"})
        elif method == "POST" and path in chat_paths:
            self._chat(body, parsed, upstream)
        elif method != "GET" and not (swap and path.startswith("/api/models/unload")):
            raise _HTTPError(404, "File Not Found")
        elif path == "/health":
            if swap and upstream is None:
                self._text(200, "OK")
            elif owner.health_ok:
                self._json(200, {"status": "ok"})
            else:
                self._error(503, "Loading model")
        elif path in ("/v1/models", "/models"):
            ids = [upstream] if upstream else owner.models
            self._json(200, {"object": "list", "data": [owner._model_entry(m) for m in ids]})
        elif path == "/props":
            model = upstream or (query.get("model") or [None])[0]
            if model is None and not swap and len(owner.models) == 1:
                model = owner.models[0]
            if model is None:
                raise _HTTPError(404, "no model id could be identified")
            if model not in owner.models:
                raise _HTTPError(404, "no router for requested model")
            owner._load(model)
            self._json(200, owner._props(model))
        elif swap and upstream is None and path == "/running":
            running = owner.running_model
            self._json(200, {"running": [] if running is None else [{
                "model": running, "state": "ready",
                "cmd": f"llama-server --port 0 -m /models/{running}.gguf",
                "proxy": f"http://{owner.host}:{owner.port}", "ttl": 0,
                "name": "", "description": "",
            }]})
        elif swap and upstream is None and path == "/unload":
            owner._unload()
            self._text(200, "OK")
        elif swap and upstream is None and method == "POST" and path == "/api/models/unload":
            owner._unload()
            self._json(200, {"msg": "ok"})
        elif (swap and upstream is None and method == "POST"
              and path.startswith("/api/models/unload/")):
            model = path[len("/api/models/unload/"):]
            if model not in owner.models:
                raise _HTTPError(404, f"model {model} not found")
            owner._unload(model)
            self._text(200, "OK")
        else:
            raise _HTTPError(404, "File Not Found")

    # -- chat completions ------------------------------------------------------------

    def _chat(self, raw: bytes, parsed: Any, upstream: str | None) -> None:
        owner = self.owner
        ctype = (self.headers.get("Content-Type") or "").lower()
        if owner.llama_swap and upstream is None and "application/json" not in ctype:
            raise _HTTPError(404, "no model id could be identified")
        if not isinstance(parsed, dict):
            raise _HTTPError(400, "Missing or invalid JSON body" if raw.strip()
                             else "Request body is empty")
        body: dict[str, Any] = parsed
        model = upstream or body.get("model")
        if not isinstance(model, str):
            models = owner.models
            if owner.llama_swap or len(models) != 1:
                status = 404 if owner.llama_swap else 400
                raise _HTTPError(status, "no model id could be identified")
            model = models[0]
        script = owner._script(model)
        if script is None:
            raise _HTTPError(404, "no router for requested model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _HTTPError(400, "'messages' is required and must be a non-empty array")
        kwargs = body.get("chat_template_kwargs")
        if isinstance(kwargs, dict) and "enable_thinking" in kwargs and not isinstance(
                kwargs["enable_thinking"], bool):
            got = {"str": "string", "int": "number", "float": "number", "list": "array",
                   "dict": "object", "NoneType": "null"}[type(kwargs["enable_thinking"]).__name__]
            raise _HTTPError(
                400, f'invalid type for "enable_thinking" (expected boolean, got {got})')
        _max_tokens(body)
        prompt_tokens = _prompt_tokens(messages)
        if prompt_tokens >= owner.n_ctx:
            raise _HTTPError(400, "the request exceeds the available context size",
                             n_prompt_tokens=prompt_tokens, n_ctx=owner.n_ctx)
        if not owner._enter():
            raise _HTTPError(429, "Too many requests")
        self._pending_leave = True
        try:
            owner._load(model)
            try:
                reply = script.next(body)
            except Exception as e:  # a broken script is answered, and kept for the test
                with owner._lock:
                    owner._script_errors.append(e)
                self._release()
                raise _HTTPError(500, f"script error: {e!r}") from e
            self._reply(reply, body, model, prompt_tokens)
        finally:
            self._release()

    def _reply(self, reply: Reply, body: dict[str, Any], model: str, prompt_tokens: int) -> None:
        owner = self.owner
        if reply.hang:
            owner._stopping.wait()
            self._drop()
            return
        stream = body.get("stream") is True
        simple = reply.drop_connection or reply.raw_body is not None or reply.status != 200
        if (simple or not stream) and owner._sleep(reply.delay_s):
            self._drop()
            return
        if reply.drop_connection:
            self._drop()
        elif reply.raw_body is not None:
            self._raw(reply.status, reply.raw_body, reply)
        elif reply.status != 200:
            self._error(reply.status, reply.error_message, headers=reply.headers)
        elif reply.stream_error is not None and not stream:
            self._error(500, reply.stream_error, headers=reply.headers)
        else:
            answer = owner._answer(reply, body, prompt_tokens)
            if stream:
                self._stream(answer, body, model, reply)
            else:
                self._raw(200, json.dumps(self._completion(answer, model)).encode(), reply)

    def _raw(self, status: int, data: bytes, reply: Reply) -> None:
        if not reply.drop_mid_stream:
            self._send(status, data, headers=reply.headers)
            return
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self._release()
        self.wfile.write(data[: len(data) // 2])
        self._drop()

    def _envelope(self, model: str, cid: str, obj: str) -> dict[str, Any]:
        return {"created": int(time.time()), "id": cid, "model": model,
                "system_fingerprint": BUILD_INFO, "object": obj}

    def _completion(self, a: _Answer, model: str) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": a.content}
        if a.reasoning:
            message["reasoning_content"] = a.reasoning
        return {
            "choices": [{"finish_reason": a.finish_reason, "index": 0, "message": message}],
            **self._envelope(model, "chatcmpl-" + uuid.uuid4().hex, "chat.completion"),
            "usage": a.usage(details=True),
            "timings": a.timings(),
        }

    def _stream(self, a: _Answer, body: dict[str, Any], model: str, reply: Reply) -> None:
        owner = self.owner
        cid = "chatcmpl-" + uuid.uuid4().hex
        deltas: list[dict[str, Any]] = []
        for key, text in (("reasoning_content", a.reasoning or ""), ("content", a.content)):
            step = CHARS_PER_TOKEN
            deltas += [{key: text[i:i + step]} for i in range(0, len(text), step)]
        chunks: list[dict[str, Any]] = []

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
            envelope = self._envelope(model, cid, "chat.completion.chunk")
            return {"choices": choices, **envelope, **extra}

        chunks.append(chunk([{"finish_reason": None, "index": 0,
                              "delta": {"role": "assistant", "content": None}}]))
        chunks += [chunk([{"finish_reason": None, "index": 0, "delta": d}]) for d in deltas]
        chunks.append(chunk([{"finish_reason": a.finish_reason, "index": 0, "delta": {}}]))
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage") is True:
            chunks.append(chunk([], usage=a.usage(details=False)))
        chunks[-1]["timings"] = a.timings()

        # pace the stream only when the reply asks for a delay (timings stay nominal)
        paced = reply.delay_s > 0
        start = time.monotonic()
        prompt_s = a.prompt_ms / 1000.0 if paced else 0.0
        per_chunk = a.predicted_ms / 1000.0 / max(1, len(deltas)) if paced else 0.0
        if owner._sleep(prompt_s):
            self._drop()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Accel-Buffering", "no")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        stop_at = len(chunks) // 2 if reply.drop_mid_stream or reply.stream_error is not None else None
        for i, c in enumerate(chunks):
            if i == stop_at and reply.stream_error is not None:
                # llama-server: an error after the stream started is one more event, then the end
                err = {"error": {"code": 500, "message": reply.stream_error, "type": "server_error"}}
                self._release()
                self.wfile.write(_chunk(f"data: {json.dumps(err)}\n\n".encode()) + _chunk(b""))
                return
            if i == stop_at:
                self._drop()
                return
            if paced and 1 <= i <= len(deltas):
                due = start + prompt_s + i * per_chunk
                if owner._sleep(due - time.monotonic()):
                    self._drop()
                    return
            data = f"data: {json.dumps(c)}\n\n".encode()
            if i < len(chunks) - 1:
                self.wfile.write(_chunk(data))
        self._release()
        self.wfile.write(_chunk(data) + _chunk(b"data: [DONE]\n\n") + _chunk(b""))


def _chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk (``Transfer-Encoding: chunked``); empty = end of body."""
    return b"%x\r\n%s\r\n" % (len(data), data)

