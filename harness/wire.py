"""The OpenAI chat-completions wire format: what is sent (``Sampling``) and how what
came back is read, live or from the store's raw bytes.

Pure functions over bytes, shared by the client that talks to an endpoint
(``harness.generate.client``), the store that reads stored answers back
(``harness.store.queries``) and the tests:

* ``parse_chat(raw)`` turns a 2xx body into a ``ChatResult`` or raises
  ``MalformedResponse``; ``parse_stream`` assembles server-sent-event chunks into
  the same ``ChatResult``; ``parse_response`` picks one of them;
* ``error_for(raw)`` classifies a non-2xx answer (unknown model, a model that failed
  to load, any other HTTP error) with the server's own message;
* ``stored_answer`` re-reads a stored response.

Only the parameters the run's config sets are sent (``Sampling.to_body``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.errors import (
    EndpointError,
    EndpointHTTPError,
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


def snippet(body: bytes, n: int = 120) -> str:
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
        chunk = _json_object(data, f"{raw.url} streamed a chunk", data.encode())
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
            raise MalformedResponse(f"{raw.url} streamed a chunk without choices: {snippet(data.encode())}")
        if not choices:
            continue
        choice = choices[0]
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            raise MalformedResponse(f"{raw.url} streamed a choice without a delta: {snippet(data.encode())}")
        piece = delta.get("content")
        if isinstance(piece, str):
            content.append(piece)
        elif piece is not None:
            raise MalformedResponse(f"{raw.url} streamed non-text content: {snippet(data.encode())}")
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
                                f"{len(raw.body)}: {bad!r}): {snippet(raw.body)}") from e


def _json_object(text: str, what: str, body: bytes) -> dict[str, Any]:
    """``text`` as a JSON object, else a MalformedResponse: "<what> that is not JSON"
    (or "... not a JSON object"), quoting the start of ``body``."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise MalformedResponse(f"{what} that is not JSON: {snippet(body)}") from e
    if not isinstance(data, dict):
        raise MalformedResponse(f"{what} that is not a JSON object: {snippet(body)}")
    return data


def parse_chat(raw: RawExchange) -> ChatResult:
    """Parse a 2xx chat-completions body. Accepts llama-server's
    ``reasoning_content`` and Ollama/LM Studio's ``reasoning``."""
    data = _json_object(_utf8(raw), f"{raw.url} returned a body", raw.body)
    if "error" in data and "choices" not in data:
        err = data["error"]
        msg = err.get("message", "") if isinstance(err, dict) else str(err)
        raise MalformedResponse(f"{raw.url} returned an error in a {raw.status} answer: {msg[:200]}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedResponse(f"{raw.url} returned no choices: {snippet(raw.body)}")
    choice = choices[0]
    msg = choice.get("message")
    if not isinstance(msg, dict):
        raise MalformedResponse(f"{raw.url} returned a choice without a message: {snippet(raw.body)}")
    content = msg.get("content")
    if content is not None and not isinstance(content, str):
        raise MalformedResponse(f"{raw.url} returned non-text content: {snippet(raw.body)}")
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
