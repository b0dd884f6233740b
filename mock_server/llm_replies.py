"""What the scripted LLM server answers with: ``Reply`` (one scripted answer), the
token and timing rules, and the JSON shapes llama-server uses (usage, timings,
errors). See ``mock_server.llm`` for the server and the rules in full.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

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
    carrying that message (a non-streamed request gets a 500 with it); with
    ``legacy_stream_error`` it is sent as 2025 builds did: an ``error: {...}`` line
    followed by ``data: [DONE]``. ``headers``
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
    legacy_stream_error: bool = False
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
