"""Map the flags a model's scraper actually has to the roles the checks need.

The prompt asks for ``-source``, ``-sink``, ``-interval`` (duration), ``-timeout``
(duration) and ``-buffer-size`` (int), and allows an optional retry/flush interval.
Models rename and retype flags, so the checks read the binary's ``-h`` output
(Go's ``flag`` package prints it to stderr and exits 0, or 2 on older toolchains)
and bind each role to a flag:

1. the name the prompt asked for wins when it exists with a usable type;
2. otherwise a flag whose name tokens contain one of the role's words (see
   ``_ROLE_WORDS``) and none of its excluded words, with a type the role accepts;
   among several, the one with the fewest name tokens (``-source`` before
   ``-source-url``), then the first listed;
3. time values: ``duration`` flags get Go durations (``25ms``); ``int`` flags are
   milliseconds when the name or usage says ms/milli, seconds when it says
   sec/second, else milliseconds if their default is >= 100 and seconds otherwise;
   ``float`` flags are seconds unless they say ms. A whole-seconds interval cannot
   express the checks' 25 ms scrape interval, so the interval role then fails.
   Timeout and flush roles in whole seconds are rounded up (recorded as effective
   values, which the checks use for their thresholds).

The timeout and flush roles bind every matching flag (``-source-timeout`` and
``-sink-timeout`` both get the timeout; ``-retry-interval`` and ``-max-backoff``
both get the flush interval). If ``-h`` lists no flags at all, the prompt's names
are assumed, and the mapping says so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from harness.exams import kit


class Kind(StrEnum):
    DURATION = "duration"
    INT = "int"
    FLOAT = "float"
    STRING = "string"
    BOOL = "bool"
    OTHER = "other"


class Role(StrEnum):
    SOURCE = "source"
    SINK = "sink"
    INTERVAL = "interval"
    TIMEOUT = "timeout"
    BUFFER = "buffer"
    FLUSH = "flush"


# Unit of the value a role's flag takes.
class Unit(StrEnum):
    DURATION = "duration"   # Go duration text: 25ms
    MS = "ms"               # integer milliseconds
    SECONDS_INT = "s-int"   # integer seconds
    SECONDS = "s"           # float seconds
    COUNT = "count"         # plain integer
    TEXT = "text"           # string


PREFERRED = {
    Role.SOURCE: ("source",),
    Role.SINK: ("sink",),
    Role.INTERVAL: ("interval",),
    Role.TIMEOUT: ("timeout",),
    Role.BUFFER: ("buffer-size",),
    Role.FLUSH: ("flush-interval", "retry-interval"),
}

_BUFFER_WORDS = {"buffer", "buf", "bufsize", "buffersize", "buffered", "maxbuffer", "queue", "queuesize",
                 "capacity", "cap", "backlog", "batches", "pending", "spool"}

_TIME_EXCLUDE = {"flush", "retry", "retries", "backoff", "reconnect", "health", "probe", "drain", "resend",
                 "timeout", "shutdown", "grace", "deadline", "wait", "delay"}

# role -> (any of these words, none of these words)
_ROLE_WORDS: dict[Role, tuple[set[str], set[str]]] = {
    Role.SOURCE: ({"source", "src", "target", "scrape", "metrics", "input", "origin", "inverter", "from"},
                  {"sink", "timeout", "interval", "buffer"}),
    Role.SINK: ({"sink", "dest", "destination", "push", "remote", "output", "write", "upload", "receiver",
                 "collector", "to"},
                {"source", "timeout", "interval", "buffer"}),
    Role.INTERVAL: ({"interval", "period", "every", "frequency", "freq", "tick"}, _TIME_EXCLUDE),
    Role.TIMEOUT: ({"timeout", "deadline"}, {"shutdown", "grace", "drain", "exit"}),
    Role.BUFFER: (_BUFFER_WORDS,
                  {"interval", "timeout", "flush", "retry", "bytes", "batch", "period", "delay"}),
    Role.FLUSH: ({"flush", "retry", "backoff", "reconnect", "probe", "health", "drain", "resend", "redeliver"},
                 {"timeout", "shutdown", "grace", "retries", "attempts", "count", "size", "batch", "max-retries",
                  "limit", "jitter"}),
}

_ROLE_KINDS = {
    Role.SOURCE: {Kind.STRING},
    Role.SINK: {Kind.STRING},
    Role.INTERVAL: {Kind.DURATION, Kind.INT, Kind.FLOAT},
    Role.TIMEOUT: {Kind.DURATION, Kind.INT, Kind.FLOAT},
    Role.BUFFER: {Kind.INT},
    Role.FLUSH: {Kind.DURATION, Kind.INT, Kind.FLOAT},
}

_MULTI = {Role.TIMEOUT, Role.FLUSH}


def _urlish(spec: FlagSpec) -> bool:
    d = (spec.default or "").lower()
    return d.startswith(("http://", "https://")) or spec.type_word.lower() in ("url", "uri")


@dataclass(frozen=True)
class FlagSpec(kit.Flag):
    """One flag as ``-h`` describes it (the exam kit's ``Flag``), with what the
    mapping reads from it: its name's tokens and the kind of value it takes."""

    @property
    def tokens(self) -> list[str]:
        return name_tokens(self.name)

    @property
    def kind(self) -> Kind:
        return _kind_of(self)


class FlagError(Exception):
    """A role the checks need has no usable flag."""

    def __init__(self, role: Role, message: str) -> None:
        super().__init__(message)
        self.role = role
        self.message = message


@dataclass(frozen=True)
class Binding:
    role: Role
    flag: FlagSpec
    unit: Unit
    how: str                 # "preferred" | "matched" | "assumed"


@dataclass(frozen=True)
class Values:
    """What the checks ask for, in seconds / counts."""

    source: str
    sink: str
    interval_s: float
    timeout_s: float
    buffer: int | None = None        # None: leave the program's default (and do not need the flag)
    flush_s: float | None = None     # None: use interval_s for any flush/retry flag


@dataclass(frozen=True)
class Effective:
    """The values actually passed after unit conversion (e.g. seconds rounded up)."""

    argv: tuple[str, ...]
    interval_s: float
    timeout_s: float
    flush_s: float | None          # None when the program has no flush/retry flag


@dataclass
class FlagMapping:
    bindings: dict[Role, list[Binding]] = field(default_factory=dict)
    problems: dict[Role, str] = field(default_factory=dict)
    assumed: bool = False           # -h listed no flags; the prompt's names were assumed
    flags_seen: tuple[str, ...] = ()

    def has(self, role: Role) -> bool:
        return bool(self.bindings.get(role))

    def need(self, role: Role) -> None:
        if not self.has(role):
            raise FlagError(role, self.problems.get(role) or f"no flag for the {role.value} role")

    def argv(self, v: Values) -> Effective:
        """Arguments for these values; raises FlagError for a missing role
        (source, sink, interval and timeout always; buffer when v.buffer is set)."""
        for role in (Role.SOURCE, Role.SINK, Role.INTERVAL, Role.TIMEOUT):
            self.need(role)
        if v.buffer is not None:
            self.need(Role.BUFFER)
        args: list[str] = []
        args += _arg(self.bindings[Role.SOURCE][0], v.source)
        args += _arg(self.bindings[Role.SINK][0], v.sink)
        interval_b = self.bindings[Role.INTERVAL][0]
        if interval_b.unit is Unit.SECONDS_INT:
            raise FlagError(Role.INTERVAL, f"-{interval_b.flag.name} takes whole seconds; the checks need a "
                                           f"{_go_duration(v.interval_s)} interval (the prompt asks for a duration)")
        args += _time_arg(interval_b, v.interval_s)[0]
        timeout_eff = v.timeout_s
        for b in self.bindings[Role.TIMEOUT]:
            a, eff = _time_arg(b, v.timeout_s)
            args += a
            timeout_eff = max(timeout_eff, eff)
        if v.buffer is not None:
            args += _arg(self.bindings[Role.BUFFER][0], str(v.buffer))
        flush_eff: float | None = None
        for b in self.bindings.get(Role.FLUSH, []):
            a, eff = _time_arg(b, v.flush_s if v.flush_s is not None else v.interval_s)
            args += a
            flush_eff = max(flush_eff or 0.0, eff)
        return Effective(tuple(args), v.interval_s, timeout_eff, flush_eff)

    def describe(self) -> dict[str, Any]:
        """JSON-ready record of the mapping (stored in the grade's notes)."""
        return {
            "assumed_prompt_names": self.assumed,
            "flags": list(self.flags_seen),
            "roles": {
                r.value: [{"flag": "-" + b.flag.name, "unit": b.unit.value, "how": b.how} for b in bs]
                for r, bs in self.bindings.items()
            },
            "unmapped": {r.value: why for r, why in self.problems.items()},
        }


# --------------------------------------------------------------------------- parsing


def parse_help(text: str) -> list[FlagSpec]:
    """Flags listed in ``-h`` output (the exam kit's parser: Go's
    ``flag.PrintDefaults`` format and common hand-written one-line formats)."""
    return [from_flag(f) for f in kit.parse_help(text)]


def from_flag(f: kit.Flag) -> FlagSpec:
    return FlagSpec(f.name, f.type_word, f.usage, f.default)


def name_tokens(name: str) -> list[str]:
    """``bufferSize`` / ``buffer_size`` / ``buffer-size`` -> ["buffer", "size"]."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name)
    return [t for t in re.split(r"[-_.]+", spaced.lower()) if t]


_GO_DURATION = re.compile(r"^-?(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h)(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))*$")


def _kind_of(spec: FlagSpec) -> Kind:
    t = spec.type_word.lower()
    if t == "duration":
        return Kind.DURATION
    if t in ("int", "int64", "uint", "uint64"):
        return Kind.INT
    if t in ("float", "float64"):
        return Kind.FLOAT
    if t == "":
        return Kind.BOOL if spec.default in (None, "true", "false") else _kind_from_default(spec.default)
    d = spec.default
    if d is not None and d != "":
        return _kind_from_default(d)
    words = {
        Kind.STRING: {"string", "url", "uri", "addr", "address", "host", "endpoint", "path", "str"},
        Kind.INT: {"n", "num", "number", "count", "size", "int", "ms", "millis", "milliseconds", "batches"},
        Kind.DURATION: {"d", "dur", "duration", "interval", "timeout"},
        Kind.FLOAT: {"seconds", "secs", "sec", "float"},
    }
    for kind, ws in words.items():
        if t in ws:
            return kind
    return Kind.OTHER


def _kind_from_default(d: str) -> Kind:
    if _GO_DURATION.match(d) and not re.fullmatch(r"-?\d+", d):
        return Kind.DURATION
    if re.fullmatch(r"-?\d+", d):
        return Kind.INT
    if re.fullmatch(r"-?\d*\.\d+(?:[eE][-+]?\d+)?|-?\d+[eE][-+]?\d+", d):
        return Kind.FLOAT
    return Kind.STRING


# --------------------------------------------------------------------------- mapping


def map_flags(specs: Iterable[FlagSpec]) -> FlagMapping:
    specs = list(specs)
    mapping = FlagMapping(flags_seen=tuple("-" + s.name for s in specs))
    if not specs:
        mapping.assumed = True
        for role, spec, unit in _ASSUMED:
            mapping.bindings[role] = [Binding(role, spec, unit, "assumed")]
        return mapping
    taken: set[str] = set()
    for role in (Role.SOURCE, Role.SINK, Role.BUFFER, Role.INTERVAL, Role.TIMEOUT, Role.FLUSH):
        found = _bind(role, [s for s in specs if s.name not in taken])
        if found:
            mapping.bindings[role] = found
            taken.update(b.flag.name for b in found)
        elif role is not Role.FLUSH:
            mapping.problems[role] = _why_unmapped(role, specs)
    return mapping


_ASSUMED = [
    (Role.SOURCE, FlagSpec("source", "string"), Unit.TEXT),
    (Role.SINK, FlagSpec("sink", "string"), Unit.TEXT),
    (Role.INTERVAL, FlagSpec("interval", "duration"), Unit.DURATION),
    (Role.TIMEOUT, FlagSpec("timeout", "duration"), Unit.DURATION),
    (Role.BUFFER, FlagSpec("buffer-size", "int"), Unit.COUNT),
]


def _bind(role: Role, specs: list[FlagSpec]) -> list[Binding]:
    usable = []
    for s in specs:
        unit = _unit_for(role, s)
        if unit is not None:
            usable.append((s, unit))
    preferred = [(s, u) for s, u in usable if s.name.lower() in PREFERRED[role]]
    if preferred and role not in _MULTI:
        s, u = preferred[0]
        return [Binding(role, s, u, "preferred")]
    want, avoid = _ROLE_WORDS[role]
    matched = []
    for s, u in usable:
        toks = set(s.tokens)
        joined = "-".join(s.tokens)
        if toks & want and not (toks & avoid) and joined not in avoid:
            matched.append((s, u))
    if role in _MULTI:
        out = [Binding(role, s, u, "preferred" if s.name.lower() in PREFERRED[role] else "matched")
               for s, u in matched]
        names = {b.flag.name for b in out}
        out += [Binding(role, s, u, "preferred") for s, u in preferred if s.name not in names]
        return out
    if not matched:
        return []
    matched.sort(key=lambda su: (role in (Role.SOURCE, Role.SINK) and not _urlish(su[0]), len(su[0].tokens)))
    s, u = matched[0]
    return [Binding(role, s, u, "matched")]


def _mentions(spec: FlagSpec, words: set[str]) -> bool:
    text = " ".join(spec.tokens) + " " + spec.usage.lower()
    found = set(re.findall(r"[a-z]+", text))
    return bool(found & words)


_MS_WORDS = {"ms", "millis", "milliseconds", "millisecond", "msec", "msecs"}
_S_WORDS = {"s", "sec", "secs", "second", "seconds"}


def _unit_for(role: Role, spec: FlagSpec) -> Unit | None:
    kind = spec.kind
    if kind not in _ROLE_KINDS[role]:
        return None
    if role in (Role.SOURCE, Role.SINK):
        return Unit.TEXT
    if role is Role.BUFFER:
        return Unit.COUNT
    if kind is Kind.DURATION:
        return Unit.DURATION
    ms = _mentions(spec, _MS_WORDS)
    secs = _mentions(spec, _S_WORDS)
    if role is Role.FLUSH and kind is Kind.INT and not (ms or secs) and not (
        set(spec.tokens) & {"interval", "period", "delay", "every", "wait", "backoff", "freq"}
    ):
        return None  # an integer without a time unit or a time word: probably a count
    if kind is Kind.FLOAT:
        return Unit.MS if ms and not secs else Unit.SECONDS
    if ms and not secs:
        return Unit.MS
    if secs and not ms:
        return Unit.SECONDS_INT
    try:
        default = int(spec.default) if spec.default is not None else None
    except ValueError:
        default = None
    if default is not None and default < 100:
        return Unit.SECONDS_INT
    return Unit.MS


def _why_unmapped(role: Role, specs: list[FlagSpec]) -> str:
    listed = " ".join("-" + s.name + (f" {s.type_word}" if s.type_word else "") for s in specs) or "(none)"
    wanted = {
        Role.SOURCE: "-source (a URL string)",
        Role.SINK: "-sink (a URL string)",
        Role.INTERVAL: "-interval (a duration)",
        Role.TIMEOUT: "-timeout (a duration)",
        Role.BUFFER: "-buffer-size (an int)",
    }[role]
    same_name = [s for s in specs if s.name.lower() in PREFERRED[role]]
    if same_name:
        s = same_name[0]
        return f"-{s.name} has type {s.type_word or 'bool'}, the checks need {wanted}; -h lists: {listed}"
    return f"no flag for the {role.value} role (looked for {wanted} or a similar name); -h lists: {listed}"


# --------------------------------------------------------------------------- values


def _go_duration(seconds: float) -> str:
    us = round(seconds * 1e6)
    if us % 1_000_000 == 0:
        return f"{us // 1_000_000}s"
    if us % 1000 == 0:
        return f"{us // 1000}ms"
    return f"{us}us"


def _arg(b: Binding, value: str) -> list[str]:
    return [f"-{b.flag.name}={value}"]


def _time_arg(b: Binding, seconds: float) -> tuple[list[str], float]:
    if b.unit is Unit.DURATION:
        return _arg(b, _go_duration(seconds)), seconds
    if b.unit is Unit.MS:
        ms = max(1, round(seconds * 1000))
        return _arg(b, str(ms)), ms / 1000
    if b.unit is Unit.SECONDS_INT:
        s = max(1, math.ceil(seconds))
        return _arg(b, str(s)), float(s)
    return _arg(b, f"{seconds:g}"), seconds
