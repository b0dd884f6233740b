"""The HTTP side of the scripted LLM server: routes, llama-server / llama-swap
response shapes, streaming, and the fault injections a ``Reply`` asks for. The
state it reads and records lives in ``mock_server.llm.ScriptedLLM`` (its owner).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from mock_server.llm_replies import (
    _DEFAULT_MESSAGES,
    _ERROR_TYPES,
    BUILD_INFO,
    CHARS_PER_TOKEN,
    RecordedRequest,
    Reply,
    _Answer,
    _HTTPError,
    _max_tokens,
    _prompt_tokens,
)

if TYPE_CHECKING:
    from mock_server.llm import ScriptedLLM


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
            model = upstream or (query.get("model") or [""])[0] or None
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
                err = {"code": 500, "message": reply.stream_error, "type": "server_error"}
                self._release()
                if reply.legacy_stream_error:
                    event = f"error: {json.dumps(err)}\n\ndata: [DONE]\n\n"
                else:
                    event = f"data: {json.dumps({'error': err})}\n\n"
                self.wfile.write(_chunk(event.encode()) + _chunk(b""))
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
