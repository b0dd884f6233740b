"""OpenAI-compatible chat client (llama-server, llama-swap, Ollama, LM Studio, vLLM).

Two layers, so the store can record the raw bytes before anything is parsed:

* ``ChatClient.send(body)`` performs one HTTP exchange and returns ``RawExchange``
  (status, bytes, wall time) or raises an ``EndpointError`` for transport failures;
* ``harness.wire`` reads what came back: ``parse_chat(raw)`` turns a 2xx body into a
  ``ChatResult``; ``error_for(raw)`` classifies a non-2xx answer.

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

One size bound per exchange, streamed or not: ``max_response_bytes`` (the run's
``max_response_mb``, 32 MiB by default). A body announced larger (Content-Length)
is not read at all; one that grows past it is cut off there, the connection
closed. Either is a ``ResponseTooLarge`` whose ``partial`` holds only the first
``STORED_HEAD_BYTES`` of what came, so nothing huge reaches memory or the store.

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
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from harness.errors import (
    EndpointError,
    EndpointTimeout,
    EndpointUnreachable,
    MalformedResponse,
    ResponseTooLarge,
)
from harness.wire import RawExchange, Sampling, error_for, snippet

MiB = 1024 * 1024
DEFAULT_MAX_RESPONSE_BYTES = 32 * MiB
STORED_HEAD_BYTES = 64 * 1024     # what an over-large answer leaves in the store


class ChatClient:
    def __init__(
        self,
        endpoint: str,
        *,
        timeout_s: float = 600.0,
        connect_timeout_s: float = 10.0,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
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
        self.max_response_bytes = max_response_bytes
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
                announced = resp.headers.get("content-length", "")
                if announced.isdigit() and int(announced) > self.max_response_bytes:
                    deadline.finish()
                    raise self._too_large(url, f"announces {int(announced)} bytes", b"")
                for piece in resp.iter_bytes():
                    if len(buf) + len(piece) > self.max_response_bytes:
                        deadline.finish()
                        raise self._too_large(url, f"passed {self.max_response_bytes} bytes", bytes(buf[:STORED_HEAD_BYTES]))
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

    def _too_large(self, url: str, what: str, head: bytes) -> ResponseTooLarge:
        """Reading stopped (the ``with`` closes the connection on the way out)."""
        mib = self.max_response_bytes / MiB
        err = ResponseTooLarge(f"{url}: the answer {what}, more than the {mib:g} MiB allowed; not read further",
                               hint="raise --max-response-mb, or lower max_tokens")
        err.partial = head or None
        return err

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
            raise MalformedResponse(f"{raw.url} did not return an OpenAI model list: {snippet(raw.body)}") from e

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
