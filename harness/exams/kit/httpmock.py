"""A controllable HTTP source and sink on loopback, for behavioural checks.

One ``HttpMock`` per attempt (per check), each with its own two ephemeral ports:

* the **source** (``GET`` any path) serves ``payload(seq)``, a function of the
  sequence number the exam supplies: every successful GET gets the next number
  (1, 2, 3, ...). The source can be made to fail (HTTP 503); a failed GET does not
  consume a sequence number.
* the **sink** (``POST``/``PUT`` any path) hands each body to ``parse`` (the exam's
  function: which sequence numbers the body carries, whether its content is right,
  whether it was a JSON array of items) and answers ``204 No Content``, or 400 when
  ``parse`` found no sequence number. Its mode is one of ``SinkMode``: online,
  offline with 503, offline refusing connections (the listening socket is really
  closed; the port stays reserved by a bound, non-listening socket with
  ``SO_REUSEPORT``, so nothing else can take it), or offline hanging (the request is
  read and never answered until the mode changes, then it gets a 503). ``GET``/``HEAD``
  on the sink is a health probe with the same modes. A ``Hold`` makes the online
  sink keep some requests open until ``release()``: re-sends of items it rejected
  before (``Hold.RESENDS``) or every POST (``Hold.ALL``); a held request whose client
  gives up is recorded as abandoned. ``fail_after_backlog(k)`` takes the sink down
  (503) by itself right after it has accepted k POSTs of backlog (items fetched
  before it last came online): an outage in the middle of a flush, at an exact
  point of it.

Everything observable is a typed record (``Scrape``, ``Attempt``) with monotonic
timestamps; ``wait`` blocks until a predicate over the mock holds (woken by every
new record), so checks never sleep a fixed time or read log lines.

``serve`` adds a small control API (``POST /sink/<mode>``, ...) for trying a program
by hand; the scraper-resilience exam's ``mock.py`` (its Prometheus source and JSON
sink) is this mock with a payload and a parser.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from http.server import BaseHTTPRequestHandler
from typing import Any

__all__ = [
    "Attempt",
    "AttemptOutcome",
    "Hold",
    "HttpMock",
    "Listener",
    "Parsed",
    "Scrape",
    "Server",
    "SinkMode",
    "serve",
]


class SinkMode(StrEnum):
    ONLINE = "online"
    OFFLINE_503 = "offline-503"
    OFFLINE_REFUSE = "offline-refuse"
    OFFLINE_HANG = "offline-hang"


class Hold(StrEnum):
    NONE = "none"
    RESENDS = "resends"   # hold POSTs of batches the sink rejected before
    ALL = "all"           # hold every POST


class AttemptOutcome(StrEnum):
    ACCEPTED = "accepted"      # 204: the batch is recorded as delivered
    REJECTED = "rejected"      # 503 while offline
    HUNG = "hung"              # held while offline-hang, answered 503 when the mode changed
    ABANDONED = "abandoned"    # the client closed the connection while we held the request
    INVALID = "invalid"        # 400: not a JSON batch with an integer "seq"



@dataclass(frozen=True)
class Parsed:
    """What the exam's ``parse`` found in one sink request body."""

    seqs: tuple[int, ...]         # the sequence numbers it carries; empty: invalid (400)
    content_ok: bool = True       # the content matches what the source served for those numbers
    array: bool = False           # the body was a JSON array of items, not one item




@dataclass(frozen=True)
class Scrape:
    """One GET on the source. ``seq`` is None for a failed (503) scrape."""

    t: float
    seq: int | None

    @property
    def served(self) -> bool:
        return self.seq is not None


@dataclass(frozen=True)
class Attempt:
    """One POST on the sink: when it arrived, what it carried, how it ended."""

    t: float                      # arrival (body read)
    t_done: float                 # answered (or given up on)
    seqs: tuple[int, ...]         # batches in the body (usually one)
    outcome: AttemptOutcome
    status: int | None            # HTTP status sent, None if the client left first
    content_ok: bool              # parse found the content right for every seq it carries
    held: bool = False            # the request was held by a Hold before it was answered
    array: bool = False           # the body was a JSON array of batches, not one batch
    resend: bool = False          # it carried a batch the sink had rejected before

    @property
    def samples_ok(self) -> bool:
        """``content_ok`` under the metrics mock's name (every batch's samples right)."""
        return self.content_ok


# --------------------------------------------------------------------------- listener



class Listener:
    """An accept loop on one loopback port that can be closed (connections then
    get refused) and reopened on the same port. While closed, a bound but not
    listening socket keeps the port reserved, so nothing else can take it."""

    def __init__(self, host: str, port: int, handle: Callable[[socket.socket, Any], object], name: str) -> None:
        self.host = host
        self._handle = handle
        self._name = name
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._busy: set[socket.socket] = set()      # connections writing an answer to a recorded request
        self._cut_when_done: set[socket.socket] = set()
        self._placeholder: socket.socket | None = None
        self._sock: socket.socket | None = None
        sock = self._bound(port)
        sock.listen(128)
        self.port = sock.getsockname()[1]
        self._start(sock)

    def _bound(self, port: int) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((self.host, port))
        return s

    def _start(self, sock: socket.socket) -> None:
        self._sock = sock
        threading.Thread(target=self._accept_loop, args=(sock,), name=f"{self._name}-accept", daemon=True).start()

    def _accept_loop(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, addr = sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._sock is not sock:
                    conn.close()
                    continue
                self._conns.add(conn)
            threading.Thread(target=self._serve_conn, args=(conn, addr), name=f"{self._name}-conn",
                             daemon=True).start()

    def _serve_conn(self, conn: socket.socket, addr: Any) -> None:
        try:
            self._handle(conn, addr)
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)
                self._busy.discard(conn)
                self._cut_when_done.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    @property
    def listening(self) -> bool:
        return self._sock is not None

    def busy(self, conn: socket.socket) -> None:
        """``conn`` is answering a request that is already recorded: cutting it now
        would make the client believe a delivered batch failed (and send it again)."""
        with self._lock:
            self._busy.add(conn)

    def done(self, conn: socket.socket) -> None:
        """The answer on ``conn`` is written; cut it now if close_port asked to."""
        with self._lock:
            self._busy.discard(conn)
            cut = conn in self._cut_when_done
            self._cut_when_done.discard(conn)
        if cut:
            _shutdown(conn)

    def close_port(self) -> None:
        """Refuse new connections and cut the open ones (one that is writing the
        answer to a recorded request right after that answer); keep the port
        reserved."""
        with self._lock:
            if self._sock is None:
                return
            if self._placeholder is None:
                self._placeholder = self._bound(self.port)
            sock, self._sock = self._sock, None
            conns = [c for c in self._conns if c not in self._busy]
            self._cut_when_done.update(c for c in self._conns if c in self._busy)
        _shutdown(sock)
        for c in conns:
            _shutdown(c)

    def open_port(self) -> None:
        with self._lock:
            if self._sock is not None:
                return
            sock = self._bound(self.port)
            sock.listen(128)
            self._start(sock)
            placeholder, self._placeholder = self._placeholder, None
        if placeholder is not None:
            placeholder.close()

    def close(self) -> None:
        self.close_port()
        with self._lock:
            placeholder, self._placeholder = self._placeholder, None
        if placeholder is not None:
            placeholder.close()


def _shutdown(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


def _client_gone(conn: socket.socket) -> bool:
    """True if the peer closed its end (EOF pending). Go clients never pipeline, so
    readable data on a connection whose request we hold means EOF or a reset."""
    try:
        r, _, _ = select.select([conn], [], [], 0)
        if not r:
            return False
        return conn.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


# --------------------------------------------------------------------------- the mock



class HttpMock:
    """Source + sink with inspectable state. Use as a context manager.

    ``payload(seq)`` is the source's answer to its ``seq``-th successful GET;
    ``parse(body)`` says what a sink request carries (see ``Parsed``)."""

    def __init__(
        self,
        payload: Callable[[int], bytes | str],
        parse: Callable[[bytes], Parsed],
        host: str = "127.0.0.1",
        *,
        source_port: int = 0,
        sink_port: int = 0,
        source_path: str = "/",
        sink_path: str = "/",
        content_type: str = "text/plain; charset=utf-8",
        invalid_message: bytes = b"expected an item with an integer sequence number\n",
    ) -> None:
        self.host = host
        self._payload = payload
        self._parse = parse
        self.source_path = source_path
        self.sink_path = sink_path
        self.content_type = content_type
        self.invalid_message = invalid_message
        self._cond = threading.Condition(threading.RLock())
        self._seq = 0
        self._scrapes: list[Scrape] = []
        self._attempts: list[Attempt] = []
        self._health: list[tuple[float, int | None]] = []
        self._rejected: set[int] = set()       # seqs the sink ever answered with a failure
        self._accepted: dict[int, int] = {}    # seq -> times accepted
        self._first_accept: dict[int, float] = {}
        self._held_now = 0
        self._held_total = 0
        self._first_hold_t: float | None = None
        self._held_resends_now = 0
        self._fail_after: int | None = None    # backlog POSTs to accept before the sink goes 503 by itself
        self._online_from_seq = 0              # last seq scraped before the sink last came online
        self._sink_mode = SinkMode.ONLINE
        self._source_failing = False
        self._hold = Hold.NONE
        self._release_gen = 0
        self._mode_gen = 0
        self._closed = False
        self._source = Listener(host, source_port, self._serve_source, "mock-source")
        self._sink = Listener(host, sink_port, self._serve_sink, "mock-sink")

    # -- lifecycle ---------------------------------------------------------
    def __enter__(self) -> HttpMock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._release_gen += 1
            self._cond.notify_all()
        self._source.close()
        self._sink.close()

    @property
    def source_url(self) -> str:
        return f"http://{self.host}:{self._source.port}{self.source_path}"

    @property
    def sink_url(self) -> str:
        return f"http://{self.host}:{self._sink.port}{self.sink_path}"

    # -- control -----------------------------------------------------------
    @property
    def sink_mode(self) -> SinkMode:
        return self._sink_mode

    def set_sink(self, mode: SinkMode) -> None:
        mode = SinkMode(mode)
        with self._cond:
            if mode == self._sink_mode:
                return
            if mode is SinkMode.ONLINE:
                self._online_from_seq = self._seq
            self._sink_mode = mode
            self._mode_gen += 1
            self._cond.notify_all()
        self._apply_port(mode)

    def _apply_port(self, mode: SinkMode) -> None:
        if mode is SinkMode.OFFLINE_REFUSE:
            self._sink.close_port()
        else:
            self._sink.open_port()

    def set_source_failing(self, failing: bool) -> None:
        with self._cond:
            self._source_failing = failing
            self._cond.notify_all()

    def set_hold(self, hold: Hold) -> None:
        with self._cond:
            self._hold = Hold(hold)
            self._cond.notify_all()

    def fail_after_backlog(self, k: int) -> None:
        """Switch the sink to offline-503 right after it accepts ``k`` POSTs of
        backlog: batches scraped before the sink last came online (so buffered
        during the outage, whether or not the program tried them then); the
        request that makes k is still accepted. Arm it while the sink is down,
        before the flush it is meant to interrupt can start."""
        if k < 1:
            raise ValueError("k must be at least 1")
        with self._cond:
            self._fail_after = k
            self._cond.notify_all()

    def release(self) -> None:
        """Stop holding: answer every held request now (and hold nothing new)."""
        with self._cond:
            self._hold = Hold.NONE
            self._release_gen += 1
            self._cond.notify_all()

    # -- records -------------------------------------------------------------
    def scrapes(self) -> list[Scrape]:
        with self._cond:
            return list(self._scrapes)

    def attempts(self) -> list[Attempt]:
        with self._cond:
            return list(self._attempts)

    @property
    def last_seq(self) -> int:
        """The sequence number of the latest successful scrape (0 before any)."""
        with self._cond:
            return self._seq

    @property
    def failed_scrapes(self) -> int:
        with self._cond:
            return sum(1 for s in self._scrapes if s.seq is None)

    def scrapes_since(self, t: float) -> int:
        with self._cond:
            return sum(1 for s in self._scrapes if s.t >= t)

    def accepted(self) -> dict[int, int]:
        """seq -> how many times a batch with that seq was accepted."""
        with self._cond:
            return dict(self._accepted)

    def accepted_at(self, seq: int) -> float | None:
        with self._cond:
            return self._first_accept.get(seq)

    def accepted_times(self) -> dict[int, float]:
        """seq -> when a batch with that seq was first accepted."""
        with self._cond:
            return dict(self._first_accept)

    def rejected(self) -> set[int]:
        """Seqs the sink answered with a failure (503, hung, abandoned) at least once."""
        with self._cond:
            return set(self._rejected)

    @property
    def held_now(self) -> int:
        with self._cond:
            return self._held_now

    @property
    def held_resends_now(self) -> int:
        """Requests held open right now that carry a batch rejected before."""
        with self._cond:
            return self._held_resends_now

    def duplicates(self) -> dict[int, int]:
        """seq -> times accepted, for every batch accepted more than once."""
        with self._cond:
            return {s: n for s, n in self._accepted.items() if n > 1}

    def array_posts(self) -> int:
        """How many POSTs carried a JSON array of batches instead of one batch."""
        with self._cond:
            return sum(1 for a in self._attempts if a.array)

    @property
    def first_hold_t(self) -> float | None:
        with self._cond:
            return self._first_hold_t

    def health_checks(self) -> list[tuple[float, int | None]]:
        with self._cond:
            return list(self._health)

    def wait(
        self,
        predicate: Callable[[HttpMock], bool],
        timeout: float,
        *,
        alive: Callable[[], bool] | None = None,
    ) -> bool:
        """Block until ``predicate(self)`` holds (re-checked on every new record and
        at least every 20 ms), ``timeout`` passes, or ``alive()`` turns false."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if predicate(self):
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or (alive is not None and not alive()):
                    return predicate(self)
                self._cond.wait(min(left, 0.02))

    def snapshot(self) -> dict[str, Any]:
        """Everything recorded, as JSON-ready data (for the control API and logs)."""
        with self._cond:
            return {
                "source_url": self.source_url,
                "sink_url": self.sink_url,
                "sink_mode": self._sink_mode.value,
                "source_failing": self._source_failing,
                "hold": self._hold.value,
                "fail_after_backlog": self._fail_after,
                "last_seq": self._seq,
                "scrapes": [asdict(s) for s in self._scrapes],
                "attempts": [self._attempt_json(a) for a in self._attempts],
                "duplicates": {str(k): v for k, v in sorted(self._accepted.items()) if v > 1},
                "accepted": {str(k): v for k, v in sorted(self._accepted.items())},
                "rejected": sorted(self._rejected),
            }

    def _attempt_json(self, a: Attempt) -> dict[str, Any]:
        return {**asdict(a), "outcome": a.outcome.value}

    # -- HTTP ----------------------------------------------------------------
    def _record(self, fn: Callable[[], None]) -> None:
        with self._cond:
            fn()
            self._cond.notify_all()

    def _serve_source(self, conn: socket.socket, addr: Any) -> None:
        _SourceHandler(conn, addr, self)

    def _serve_sink(self, conn: socket.socket, addr: Any) -> None:
        _SinkHandler(conn, addr, self)

    def _scrape(self) -> bytes | None:
        with self._cond:
            now = time.monotonic()
            if self._source_failing or self._closed:
                self._scrapes.append(Scrape(now, None))
                self._cond.notify_all()
                return None
            self._seq += 1
            seq = self._seq
            self._scrapes.append(Scrape(now, seq))
            self._cond.notify_all()
        body = self._payload(seq)
        return body.encode() if isinstance(body, str) else body

    def _hold_request(self, conn: socket.socket, until: Callable[[], bool], *, resend: bool = False) -> bool:
        """Keep a request open until ``until()`` (checked under the lock). Returns
        False if the client went away first."""
        with self._cond:
            self._held_now += 1
            self._held_resends_now += resend
            self._held_total += 1
            if self._first_hold_t is None:
                self._first_hold_t = time.monotonic()
            self._cond.notify_all()
        try:
            while True:
                with self._cond:
                    if until() or self._closed:
                        return True
                    self._cond.wait(0.02)
                if _client_gone(conn):
                    return False
        finally:
            with self._cond:
                self._held_now -= 1
                self._held_resends_now -= resend
                self._cond.notify_all()

    def _sink_post(self, conn: socket.socket, body: bytes) -> tuple[int | None, AttemptOutcome]:
        t = time.monotonic()
        parsed = self._parse(body)
        seqs, samples_ok, array = tuple(parsed.seqs), bool(parsed.seqs) and parsed.content_ok, parsed.array
        if not seqs:
            self._record(lambda: self._attempts.append(
                Attempt(t, time.monotonic(), (), AttemptOutcome.INVALID, 400, False, array=array)))
            return 400, AttemptOutcome.INVALID

        with self._cond:
            mode, gen = self._sink_mode, self._mode_gen
            hold = self._hold
            release_gen = self._release_gen
            resend = any(s in self._rejected for s in seqs)
        held = hung = False
        alive = True
        if mode is SinkMode.OFFLINE_HANG:
            held = hung = True
            alive = self._hold_request(conn, lambda: self._mode_gen != gen or self._release_gen != release_gen,
                                       resend=resend)
            mode = SinkMode.OFFLINE_503  # a hung request is never accepted
        elif mode is SinkMode.ONLINE and (hold is Hold.ALL or (hold is Hold.RESENDS and resend)):
            held = True
            alive = self._hold_request(conn, lambda: self._release_gen != release_gen, resend=resend)
            with self._cond:
                mode = SinkMode.ONLINE if self._sink_mode is SinkMode.ONLINE else SinkMode.OFFLINE_503

        done = time.monotonic()
        if not alive:
            outcome, status = AttemptOutcome.ABANDONED, None
        elif mode is SinkMode.ONLINE:
            outcome, status = AttemptOutcome.ACCEPTED, 204
        else:
            outcome, status = (AttemptOutcome.HUNG if hung else AttemptOutcome.REJECTED), 503

        went_down = False

        def rec() -> None:
            nonlocal went_down
            self._attempts.append(Attempt(t, done, seqs, outcome, status, samples_ok, held, array, resend))
            if outcome is AttemptOutcome.ACCEPTED:
                for s in seqs:
                    self._accepted[s] = self._accepted.get(s, 0) + 1
                    self._first_accept.setdefault(s, done)
                backlog = all(s <= self._online_from_seq for s in seqs)
                if backlog and self._fail_after is not None:
                    self._fail_after -= 1
                    if self._fail_after <= 0 and self._sink_mode is SinkMode.ONLINE:
                        self._fail_after = None
                        self._sink_mode = SinkMode.OFFLINE_503
                        self._mode_gen += 1
                        went_down = True
            else:
                self._rejected.update(seqs)

        self._sink.busy(conn)
        self._record(rec)
        if went_down:
            self._apply_port(SinkMode.OFFLINE_503)
        return status, outcome

    def _sink_health(self, conn: socket.socket) -> int | None:
        with self._cond:
            mode, gen = self._sink_mode, self._mode_gen
        status: int | None
        if mode is SinkMode.ONLINE:
            status = 200
        elif mode is SinkMode.OFFLINE_HANG:
            alive = self._hold_request(conn, lambda: self._mode_gen != gen)
            status = 503 if alive else None
        else:
            status = 503
        self._record(lambda: self._health.append((time.monotonic(), status)))
        return status



class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "exam-sweep-mock/1"
    mock: HttpMock

    def __init__(self, conn: socket.socket, addr: Any, mock: HttpMock) -> None:
        self.mock = mock
        super().__init__(conn, addr, None)  # type: ignore[arg-type]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _reply(self, status: int, body: bytes = b"", ctype: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD" and status != 204:
            self.wfile.write(body)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(65537)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""


class _SourceHandler(_Handler):
    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        text = self.mock._scrape()
        if text is None:
            self._reply(503, b"source unavailable\n")
        else:
            self._reply(200, text, self.mock.content_type)

    def do_HEAD(self) -> None:  # noqa: N802
        self._reply(200)


class _SinkHandler(_Handler):
    def do_POST(self) -> None:  # noqa: N802
        body = self._read_body()
        status, outcome = self.mock._sink_post(self.connection, body)
        try:
            if status is None:
                self.close_connection = True
                return
            msg = {AttemptOutcome.INVALID: self.mock.invalid_message,
                   AttemptOutcome.REJECTED: b"sink unavailable\n",
                   AttemptOutcome.HUNG: b"sink unavailable\n"}.get(outcome, b"")
            self._reply(status, msg)
            self.wfile.flush()
        finally:
            self.mock._sink.done(self.connection)

    do_PUT = do_POST  # noqa: N815

    def do_GET(self) -> None:  # noqa: N802
        status = self.mock._sink_health(self.connection)
        if status is None:
            self.close_connection = True
            return
        self._reply(status, b"ok\n" if status == 200 else b"sink unavailable\n")

    do_HEAD = do_GET  # noqa: N815


# --------------------------------------------------------------------------- standalone


class _ControlHandler(_Handler):
    """``POST /sink/<mode>``, ``POST /source/ok|fail``, ``POST /hold/<hold>``,
    ``POST /release``, ``GET /records``."""

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/") in ("/records", ""):
            self._reply(200, json.dumps(self.mock.snapshot(), indent=1).encode(), "application/json")
        else:
            self._reply(404, b"GET /records\n")

    def do_POST(self) -> None:  # noqa: N802
        self._read_body()
        parts = [p for p in self.path.split("/") if p]
        try:
            if len(parts) == 2 and parts[0] == "sink":
                self.mock.set_sink(SinkMode(parts[1]))
            elif len(parts) == 2 and parts[0] == "source" and parts[1] in ("ok", "fail"):
                self.mock.set_source_failing(parts[1] == "fail")
            elif len(parts) == 2 and parts[0] == "hold":
                self.mock.set_hold(Hold(parts[1]))
            elif parts == ["release"]:
                self.mock.release()
            else:
                raise ValueError(self.path)
        except ValueError:
            modes = ", ".join(m.value for m in SinkMode)
            self._reply(404, f"unknown control {self.path}; sink modes: {modes}\n".encode())
            return
        self._reply(200, b"ok\n")


@dataclass
class Server:
    """A standalone mock with its control API (see ``serve``)."""

    mock: HttpMock
    control_port: int
    _listener: Listener

    @property
    def control_url(self) -> str:
        return f"http://{self.mock.host}:{self.control_port}"

    def close(self) -> None:
        self._listener.close()
        self.mock.close()


def serve(mock: HttpMock, *, control_port: int = 0) -> Server:
    """Start a control API for ``mock`` on ``control_port``; returns at once."""
    listener = Listener(mock.host, control_port, lambda c, a: _ControlHandler(c, a, mock), "mock-control")
    return Server(mock, listener.port, listener)
