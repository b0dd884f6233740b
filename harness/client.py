"""OpenAI-compatible chat client (llama-server, llama-swap, Ollama, LM Studio, vLLM).

Two layers, so the store can record the raw bytes before anything is parsed:

* ``ChatClient.send(body)`` performs one HTTP exchange and returns ``RawExchange``
  (status, bytes, wall time) or raises an ``EndpointError`` for transport failures;
* ``parse_chat(raw)`` turns a 2xx body into a ``ChatResult`` or raises
  ``MalformedResponse``; ``error_for(raw)`` classifies a non-2xx answer.

Streaming (``stream=True``): ``send_stream(body)`` reads the server-sent events as
they come, notes the time to the first generated token (content or reasoning), and
returns every byte received; ``parse_response`` assembles the chunks into the same
``ChatResult`` (``parse_stream``). A connection dropped mid-stream raises an
``EndpointUnreachable`` whose ``partial`` holds the bytes received, so they can be
stored; an error event inside the stream (``data: {"error": ...}``) becomes an
``EndpointHTTPError`` with the error's code.

One deadline per exchange, streamed or not: ``timeout_s`` bounds the whole
exchange (connect, waiting, and every byte of the answer), not each read. A server
that trickles its answer a byte at a time, or goes silent mid-answer, is cut off
at the deadline: a timer shuts the connection's socket down, and the bytes
received so far travel with the ``EndpointTimeout`` (``partial``). Each exchange
has a connection of its own (``Connection: close``), so the socket is always known.

A 429 or 503 may say when to come back (``Retry-After``, seconds or an HTTP date):
``EndpointHTTPError.retry_after_s`` carries it to the runner, which waits that
long (capped) instead of its own back-off when that is shorter.

Only the parameters the run's config sets are sent (``Sampling.to_body``).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from harness.errors import (
    EndpointError,
    EndpointHTTPError,
    EndpointTimeout,
    EndpointUnreachable,
    MalformedResponse,
    ModelLoadFailed,
    UnknownModel,
)

# What llama-swap says when a model's server does not start (v218+: 500 "unspecific
# error: ..."; <= v217: 502 "unable to start process" / 500 "error swapping process
# group"). "model unloaded" (also a 500) is not among them: that one is transient.
LOAD_FAILURES = ("health check timed out", "upstream command exited", "exited prematurely",
                 "unable to start process", "error swapping process group")


@dataclass(frozen=True)
class Sampling:
    """Every sampling parameter that may be sent. ``None`` means: not sent."""

    temperature: float | None = 1.0
    max_tokens: int | None = 16384
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    chat_template_kwargs: dict[str, Any] | None = None

    def to_body(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class RawExchange:
    url: str
    status: int
    body: bytes
    wall_s: float
    ttft_s: float | None = None      # streamed: request sent -> first generated token
    streamed: bool = False           # the body is server-sent events
    retry_after_s: float | None = None   # the answer's Retry-After, in seconds from now


@dataclass(frozen=True)
class ChatResult:
    content: str
    reasoning_content: str | None
    finish_reason: str | None
    usage: dict[str, Any] | None
    timings: dict[str, Any] | None
    model: str | None
    raw: dict[str, Any] = field(repr=False, default_factory=dict)


class ChatClient:
    def __init__(
        self,
        endpoint: str,
        *,
        timeout_s: float = 600.0,
        connect_timeout_s: float = 10.0,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        if self.endpoint.endswith("/v1"):
            self.endpoint = self.endpoint[: -len("/v1")]
        if not self.endpoint.startswith(("http://", "https://")):
            from harness.errors import ConfigError

            raise ConfigError(f"endpoint {endpoint!r} is not an http(s) URL",
                              hint="e.g. --endpoint http://127.0.0.1:8080")
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.timeout_s = timeout_s
        # The per-operation timeouts are a back-stop: _exchange's deadline ends the
        # whole exchange at timeout_s (httpx's read timeout bounds each read only).
        self._http = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(connect_timeout_s, timeout_s)),
            transport=transport,
            trust_env=False,
        )

    @property
    def chat_url(self) -> str:
        return f"{self.endpoint}/v1/chat/completions"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def build_body(model: str, messages: list[dict[str, str]], seed: int | None, sampling: Sampling,
                   *, stream: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "messages": messages}
        if seed is not None:
            body["seed"] = seed
        body.update(sampling.to_body())
        if stream:
            # include_usage: the token counts arrive in a last chunk (OpenAI, llama-server, vLLM)
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def _transport_error(self, url: str, e: httpx.HTTPError, partial: bytes | None = None) -> EndpointError:
        err: EndpointError
        if isinstance(e, httpx.TimeoutException):
            err = EndpointTimeout(
                f"{url} gave no complete answer within {self.timeout_s:.0f}s ({type(e).__name__})",
                hint="raise --request-timeout, or check the server is not stuck")
        elif isinstance(e, httpx.ConnectError):
            err = EndpointUnreachable(f"cannot connect to {self.endpoint}: {_reason(e)}",
                                      hint="is the server (llama-swap / llama-server) running at that address?")
        elif isinstance(e, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
            where = "mid-stream, " if partial else ""
            err = EndpointUnreachable(f"{url}: connection dropped ({where}{_reason(e)})",
                                      hint="the server closed the connection; check its log")
        else:
            err = EndpointUnreachable(f"{url}: {type(e).__name__}: {_reason(e)}")
        err.partial = partial or None
        return err

    def _request(self, method: str, url: str, body: dict[str, Any] | None = None) -> RawExchange:
        return self._exchange(method, url, body, watch_stream=False)

    def send(self, body: dict[str, Any]) -> RawExchange:
        """POST one chat completion; transport failures raise, HTTP errors do not.
        A body with ``"stream": true`` is read as a stream (``send_stream``)."""
        if body.get("stream") is True:
            return self.send_stream(body)
        return self._exchange("POST", self.chat_url, body, watch_stream=False)

    def send_stream(self, body: dict[str, Any]) -> RawExchange:
        """POST a streamed chat completion and read it to the end, noting the time to
        the first generated token. The whole exchange must finish within the request
        timeout, keep-alive comments or not. A non-stream answer (an HTTP error, or a
        server that ignores ``stream``) is returned as is."""
        return self._exchange("POST", self.chat_url, body, watch_stream=True)

    def _exchange(self, method: str, url: str, body: dict[str, Any] | None, *, watch_stream: bool) -> RawExchange:
        """One HTTP exchange read to its end, within one deadline (``timeout_s``)."""
        started = time.monotonic()
        buf = bytearray()
        first = _FirstToken()
        ttft: float | None = None
        streamed = False
        deadline = _Deadline(self.timeout_s)
        content = None if body is None else json.dumps(body).encode("utf-8")
        try:
            # A connection of its own: the deadline knows which socket to shut down, and
            # llama-server (cpp-httplib) closes a connection after a stream ends anyway
            # (reusing it raced with that close: "disconnected without sending a response").
            with self._http.stream(method, url, content=content, headers={"Connection": "close"},
                                   extensions={"trace": deadline.trace}) as resp:
                streamed = watch_stream and "text/event-stream" in resp.headers.get("content-type", "").lower()
                for piece in resp.iter_bytes():
                    buf += piece
                    if streamed and ttft is None and first.feed(piece):
                        ttft = time.monotonic() - started
                    if deadline.expired:
                        break
                status = resp.status_code
                retry_after = _retry_after(resp.headers.get("retry-after"))
        except httpx.HTTPError as e:
            if not deadline.finish():
                raise self._timeout(url, streamed, buf) from e
            raise self._transport_error(url, e, bytes(buf)) from e
        if not deadline.finish():
            raise self._timeout(url, streamed, buf)
        return RawExchange(url, status, bytes(buf), time.monotonic() - started, ttft_s=ttft, streamed=streamed,
                           retry_after_s=retry_after)

    def _timeout(self, url: str, streamed: bool, buf: bytearray) -> EndpointTimeout:
        if streamed:
            err = EndpointTimeout(f"{url} did not finish streaming within {self.timeout_s:g}s "
                                  f"({len(buf)} bytes received)", hint="raise --request-timeout, or lower max_tokens")
        else:
            err = EndpointTimeout(f"{url} gave no complete answer within {self.timeout_s:g}s "
                                  f"({len(buf)} bytes received)",
                                  hint="raise --request-timeout, or check the server is not stuck")
        err.partial = bytes(buf) or None
        return err

    def list_models(self) -> list[str]:
        """The ids ``GET /v1/models`` lists."""
        return [str(m["id"]) for m in self.model_listing()["data"]]

    def model_listing(self) -> dict[str, Any]:
        """The whole ``GET /v1/models`` document (aliases and metadata included)."""
        raw = self._request("GET", f"{self.endpoint}/v1/models")
        if raw.status != 200:
            raise error_for(raw, model=None)
        try:
            data = json.loads(raw.body)
            if not all(isinstance(m, dict) and "id" in m for m in data["data"]):
                raise TypeError("an entry has no id")
            return dict(data)
        except (ValueError, KeyError, TypeError) as e:
            raise MalformedResponse(f"{raw.url} did not return an OpenAI model list: {_snippet(raw.body)}") from e

    def get_json(self, path: str) -> dict[str, Any] | None:
        """GET a JSON document (e.g. /props); None when absent or not JSON."""
        try:
            raw = self._request("GET", f"{self.endpoint}{path}")
        except EndpointError:
            return None
        if raw.status != 200:
            return None
        try:
            data = json.loads(raw.body)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None


    def props(self, model: str) -> tuple[str, dict[str, Any]] | None:
        """llama-server's ``/props`` for ``model``: ``/upstream/<model>/props``
        through llama-swap (which loads the model), else ``/props`` of a bare
        llama-server. Returns (url, document), or None when neither answers."""
        for path in (f"/upstream/{quote(model, safe='/:@')}/props", "/props"):
            data = self.get_json(path)
            if data is not None and ("default_generation_settings" in data or "build_info" in data):
                return f"{self.endpoint}{path}", data
        return None

    def unload_all(self) -> str:
        """Ask llama-swap to unload every model: ``POST /api/models/unload``, or
        ``GET /unload`` when that route is 404 (the route differs between
        llama-swap versions). Returns the route that worked; raises EndpointError."""
        route = "POST /api/models/unload"
        raw = self._request("POST", f"{self.endpoint}/api/models/unload")
        if raw.status == 404:
            route = "GET /unload"
            raw = self._request("GET", f"{self.endpoint}/unload")
        if not 200 <= raw.status < 300:
            raise error_for(raw, model=None)
        return route


class _Deadline:
    """Ends one HTTP exchange ``seconds`` after it starts, whatever the server does:
    at the deadline a timer shuts the exchange's socket down (learnt from httpcore's
    ``trace`` extension when the connection is made), which wakes a read blocked on
    a silent or trickling server at once. ``finish()`` stops the timer and says
    whether the exchange ended in time."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._over = False
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event not in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            with self._lock:
                self._sock = sock
                if self.expired:
                    _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            if self._over:
                return
            self.expired = True
            if self._sock is not None:
                _shutdown(self._sock)

    def finish(self) -> bool:
        """True when the exchange ended before the deadline."""
        with self._lock:
            self._over = True
            self._timer.cancel()
            return not self.expired


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass     # already closed


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date);
    None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _reason(e: Exception) -> str:
    text = str(e) or type(e).__name__
    return " ".join(text.split())[:200]


def _snippet(body: bytes, n: int = 120) -> str:
    text = body.decode("utf-8", errors="replace")
    text = " ".join(text.split())
    return repr(text[:n] + ("..." if len(text) > n else ""))


def error_for(raw: RawExchange, *, model: str | None) -> EndpointError:
    """The EndpointError for a non-2xx exchange, with the server's own message."""
    message = ""
    try:
        data = json.loads(raw.body)
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict):
            message = str(err.get("message", ""))
        elif isinstance(err, str):
            message = err
        elif isinstance(data, dict) and "detail" in data:
            message = str(data["detail"])
    except ValueError:
        message = raw.body.decode("utf-8", errors="replace")
    message = " ".join(message.split())[:200]
    low = message.lower()
    unknown = raw.status == 404 or (
        raw.status == 400 and model is not None and ("model" in low and ("not found" in low or "unknown" in low
                                                                             or "could not find" in low))
    )
    if unknown and model is not None:
        return UnknownModel(f"the endpoint does not serve model '{model}' (HTTP {raw.status}: {message or 'not found'})",
                            hint="run `sweep models --endpoint URL` to list what it serves")
    if raw.status >= 500 and model is not None and any(f in low for f in LOAD_FAILURES):
        return ModelLoadFailed(f"model '{model}' failed to load (HTTP {raw.status}: {message})", status=raw.status,
                               hint="see the llama-swap log (GET /logs) for why its server did not start")
    return EndpointHTTPError(f"HTTP {raw.status} from {raw.url}: {message or '(empty body)'}", status=raw.status,
                             retry_after_s=raw.retry_after_s)


class _FirstToken:
    """Watches a server-sent-event stream for the first chunk that carries generated
    text (content or reasoning): the moment that defines time to first token."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, piece: bytes) -> bool:
        lines = (self._pending + piece).split(b"\n")
        self._pending = lines.pop()
        return any(_has_token(line) for line in lines)


def _has_token(line: bytes) -> bool:
    line = line.strip()
    if not line.startswith(b"data:"):
        return False
    try:
        chunk = json.loads(line[5:])
        delta = chunk["choices"][0]["delta"]
    except (ValueError, KeyError, IndexError, TypeError):
        return False
    return isinstance(delta, dict) and any(
        isinstance(delta.get(k), str) and delta[k] != "" for k in ("content", "reasoning_content", "reasoning"))


def sse_events(body: bytes) -> list[tuple[str, str]]:
    """The events in ``body``, in order, as (field, value): ``("data", ...)`` for
    each event's data (multi-line data joined), and ``("error", ...)`` for the
    non-standard ``error: {...}`` line llama.cpp builds of 2025 send when a stream
    fails (current builds send ``data: {"error": ...}``). Comments, ``event:`` and
    ``id:`` fields and blank events are skipped."""
    events: list[tuple[str, str]] = []
    data: list[str] = []
    text = body.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    for line in text.split("\n"):
        if not line:
            if data:
                events.append(("data", "\n".join(data)))
                data = []
        elif line.startswith(("data:", "error:")):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                data.append(value)
            else:
                events.append(("error", value))
    if data:
        events.append(("data", "\n".join(data)))
    return events


def stored_answer(url: str, request_json: str, body: bytes) -> tuple[str, str | None] | None:
    """(content, reasoning_content) of a stored 2xx response, parsed again from the
    bytes received; None when they do not parse. A request that asked for a stream
    may have got plain JSON (a server that ignores ``stream``): the body says which."""
    try:
        asked_stream = json.loads(request_json).get("stream") is True
    except (ValueError, AttributeError):
        return None
    streamed = asked_stream and not body.lstrip().startswith(b"{")
    try:
        chat = parse_response(RawExchange(url, 200, body, 0.0, streamed=streamed))
    except EndpointError:
        return None
    return chat.content, chat.reasoning_content


def parse_response(raw: RawExchange, *, model: str | None = None) -> ChatResult:
    """A 2xx answer, streamed or not, as a ``ChatResult``. ``model``: the id asked
    for, to name it when llama-swap reports inside a stream that it failed to load."""
    return parse_stream(raw, model=model) if raw.streamed else parse_chat(raw)


def parse_stream(raw: RawExchange, *, model: str | None = None) -> ChatResult:
    """Assemble a streamed chat completion from its chunks: content and reasoning
    deltas are joined, ``finish_reason``, ``usage`` and ``timings`` are taken from
    the chunks that carry them (llama-server puts ``timings`` on the last one)."""
    content: list[str] = []
    reasoning: list[str] = []
    finish: str | None = None
    usage: dict[str, Any] | None = None
    timings: dict[str, Any] | None = None
    served: str | None = None
    chunks = 0
    done = False
    _utf8(raw)       # sse_events would replace bad bytes silently
    for kind, data in sse_events(raw.body):
        if kind == "error":
            try:
                err_obj: Any = json.loads(data)
            except ValueError:
                err_obj = data
            data = json.dumps({"error": err_obj})
        if data.strip() == "[DONE]":
            done = True
            break
        try:
            chunk = json.loads(data)
        except ValueError as e:
            raise MalformedResponse(f"{raw.url} streamed a chunk that is not JSON: {_snippet(data.encode())}") from e
        if not isinstance(chunk, dict):
            raise MalformedResponse(f"{raw.url} streamed a chunk that is not an object: {_snippet(data.encode())}")
        chunks += 1
        if "error" in chunk:
            err = chunk["error"]
            msg = str(err.get("message", "")) if isinstance(err, dict) else str(err)
            code = err.get("code") if isinstance(err, dict) else None
            status = code if isinstance(code, int) and 400 <= code <= 599 else 500
            raise EndpointHTTPError(f"{raw.url} sent an error in the stream after {chunks - 1} chunk(s): "
                                    f"{' '.join(msg.split())[:200] or '(no message)'}", status=status)
        if isinstance(chunk.get("model"), str):
            served = chunk["model"]
        if isinstance(chunk.get("usage"), dict):
            usage = chunk["usage"]
        if isinstance(chunk.get("timings"), dict):
            timings = chunk["timings"]
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            raise MalformedResponse(f"{raw.url} streamed a chunk without choices: {_snippet(data.encode())}")
        if not choices:
            continue
        choice = choices[0]
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            raise MalformedResponse(f"{raw.url} streamed a choice without a delta: {_snippet(data.encode())}")
        piece = delta.get("content")
        if isinstance(piece, str):
            content.append(piece)
        elif piece is not None:
            raise MalformedResponse(f"{raw.url} streamed non-text content: {_snippet(data.encode())}")
        think = delta.get("reasoning_content", delta.get("reasoning"))
        if isinstance(think, str):
            reasoning.append(think)
        if choice.get("finish_reason") is not None:
            finish = str(choice["finish_reason"])
    if finish is None:
        # llama-swap with sendLoadingState streams its loading messages as reasoning;
        # when the model's server does not start, its last message says so.
        said = "".join(reasoning)
        if any(f in said.lower() for f in (*LOAD_FAILURES, "unable to swap model")):
            why = said.strip().splitlines()[-1] if said.strip() else said
            raise ModelLoadFailed(f"model '{model or '?'}' failed to load (inside the stream: {why[:200]})",
                                  status=500, hint="see the llama-swap log (GET /logs) for why its server did "
                                                   "not start")
        ended = "ended" if done else "stopped"
        raise MalformedResponse(f"{raw.url}: the stream {ended} after {chunks} chunk(s) without a finish_reason "
                                f"({len(raw.body)} bytes)")
    text = "".join(content)
    thought = "".join(reasoning) or None
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if thought:
        message["reasoning_content"] = thought
    assembled: dict[str, Any] = {"choices": [{"index": 0, "finish_reason": finish, "message": message}],
                                 "model": served, "usage": usage, "timings": timings, "streamed_chunks": chunks}
    return ChatResult(content=text, reasoning_content=thought, finish_reason=finish, usage=usage,
                      timings=timings, model=served, raw=assembled)


def _utf8(raw: RawExchange) -> str:
    """The body as text; a body that is not UTF-8 (which JSON must be) is a
    MalformedResponse saying so, not "not JSON"."""
    try:
        return raw.body.decode("utf-8")
    except UnicodeDecodeError as e:
        bad = raw.body[e.start:e.start + 4]
        raise MalformedResponse(f"{raw.url} returned a body that is not valid UTF-8 (byte {e.start} of "
                                f"{len(raw.body)}: {bad!r}): {_snippet(raw.body)}") from e


def parse_chat(raw: RawExchange) -> ChatResult:
    """Parse a 2xx chat-completions body. Accepts llama-server's
    ``reasoning_content`` and Ollama/LM Studio's ``reasoning``."""
    text = _utf8(raw)
    try:
        data = json.loads(text)
    except ValueError as e:
        raise MalformedResponse(f"{raw.url} returned a body that is not JSON: {_snippet(raw.body)}") from e
    if not isinstance(data, dict):
        raise MalformedResponse(f"{raw.url} returned JSON that is not an object: {_snippet(raw.body)}")
    if "error" in data and "choices" not in data:
        err = data["error"]
        msg = err.get("message", "") if isinstance(err, dict) else str(err)
        raise MalformedResponse(f"{raw.url} returned an error in a {raw.status} answer: {msg[:200]}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedResponse(f"{raw.url} returned no choices: {_snippet(raw.body)}")
    choice = choices[0]
    msg = choice.get("message")
    if not isinstance(msg, dict):
        raise MalformedResponse(f"{raw.url} returned a choice without a message: {_snippet(raw.body)}")
    content = msg.get("content")
    if content is not None and not isinstance(content, str):
        raise MalformedResponse(f"{raw.url} returned non-text content: {_snippet(raw.body)}")
    reasoning = msg.get("reasoning_content")
    if reasoning is None:
        reasoning = msg.get("reasoning")
    if reasoning is not None and not isinstance(reasoning, str):
        reasoning = json.dumps(reasoning)
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
    timings = data.get("timings") if isinstance(data.get("timings"), dict) else None
    return ChatResult(
        content=content or "",
        reasoning_content=reasoning or None,
        finish_reason=choice.get("finish_reason"),
        usage=usage,
        timings=timings,
        model=data.get("model") if isinstance(data.get("model"), str) else None,
        raw=data,
    )
