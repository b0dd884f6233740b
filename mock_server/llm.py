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

Three modules: this one (the server object and its inspectable state),
``mock_server.llm_replies`` (``Reply``, the token and timing rules, response
shapes) and ``mock_server.llm_handler`` (routes, streaming, fault injection).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from mock_server.llm_handler import _Server
from mock_server.llm_replies import (
    BUILD_INFO,
    CHARS_PER_TOKEN,
    PREDICTED_TOKENS_PER_SECOND,
    PROMPT_TOKENS_PER_SECOND,
    ModelScript,
    RecordedRequest,
    Reply,
    Script,
    _Answer,
    _max_tokens,
    _Script,
    count_tokens,
    scripted_fence,
)

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



class ScriptedLLM:
    """A scripted llama-swap / llama-server on ``host:port`` (port 0 = any free one).

    ``models`` maps a model id to its script: a ``Reply``, a ``str`` (the content),
    a list of replies used in order (the last repeats), or a callable taking the
    parsed request body and returning a ``Reply`` (or ``str``). State is inspectable
    and thread-safe: ``requests``, ``script_errors``, ``running_model``, ``loads``,
    ``in_flight``, ``max_in_flight``. ``health_ok = False`` makes ``/health``
    answer 503 "Loading model". ``concurrency_limit`` answers extra concurrent chat
    requests with 429 as llama-swap does. ``base_path`` prefixes every route (and
    ``url``). ``props`` is merged over every ``/props`` document (e.g. a
    ``chat_template``, ``model_path``).
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
        props: Mapping[str, Any] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.props_overrides = dict(props or {})   # merged over the /props document (e.g. chat_template)
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
            **self.props_overrides,
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
