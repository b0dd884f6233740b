"""The scraper-resilience exam's metrics source and batch sink: the exam kit's
controllable HTTP mock (``harness.exams.kit.httpmock``) with a Prometheus payload and a
JSON batch parser.

One ``MetricsMock`` per attempt (per check), each with its own two ephemeral ports:

* the **source** (``GET /metrics``) serves Prometheus text exposition. Every
  successful scrape gets the next sequence number (1, 2, 3, ...), exposed as the
  sample ``scrape_sequence``; the other samples are a pure function of that number
  (``samples_for``), so the sink can verify a batch's content. The source can be
  made to fail (HTTP 503); a failed scrape does not consume a sequence number.
* the **sink** (``POST`` any path) accepts a JSON batch ``{"seq": N, "samples":
  [...], ...}`` with ``204 No Content``; a JSON array of such batches is accepted
  too, but recorded as such (``Attempt.array``), so a check can hold a program to
  one batch per POST. Its modes (online, offline with 503, refusing connections on
  a reserved port, hanging), holds, ``fail_after_backlog``, the typed records
  (``Scrape``, ``Attempt``) and ``wait`` are the generic mock's: see
  ``harness.exams.kit.httpmock``.

Standalone use: ``sweep mock-server`` or ``python exams/scraper-resilience/mock.py``
(see ``main``) also starts a small control API to flip the modes by hand. It lives
with its exam, so it is in that exam's grader hash and no other's.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.exams.kit.httpmock import (
    Attempt,
    AttemptOutcome,
    Hold,
    HttpMock,
    Parsed,
    Scrape,
    Server,
    SinkMode,
)
from harness.exams.kit.httpmock import serve as serve_control

__all__ = [
    "Attempt",
    "AttemptOutcome",
    "Hold",
    "MetricsMock",
    "Sample",
    "Scrape",
    "SinkMode",
    "exposition",
    "main",
    "parse_body",
    "samples_for",
    "serve",
]

SEQUENCE_METRIC = "scrape_sequence"


# --------------------------------------------------------------------------- content


@dataclass(frozen=True)
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float

    def key(self) -> tuple[str, tuple[tuple[str, str], ...], float]:
        return (self.name, tuple(sorted(self.labels)), self.value)


def samples_for(seq: int) -> list[Sample]:
    """The samples of scrape ``seq``: a sequence counter plus realistic series with
    labels containing spaces, escaped quotes, ``+Inf`` buckets, exponents and a
    timestamp. Values are exactly representable, so parsing is exact."""
    s = float(seq)
    return [
        Sample(SEQUENCE_METRIC, (), s),
        Sample("node_cpu_seconds_total", (("cpu", "0"), ("mode", "idle")), 1000.0 + 0.25 * s),
        Sample("node_cpu_seconds_total", (("cpu", "0"), ("mode", "user")), 50.5 + 0.125 * s),
        Sample("node_filesystem_avail_bytes",
               (("device", "/dev/sda1"), ("mountpoint", "/mnt/my disk")), 12345000000.0 - 4096.0 * s),
        Sample("node_memory_free_bytes", (), 8.4e9),
        Sample("http_request_duration_seconds_bucket", (("le", "0.1"),), 17.0 + s),
        Sample("http_request_duration_seconds_bucket", (("le", "+Inf"),), 20.0 + 2 * s),
        Sample("temperature_celsius", (("sensor", 'probe "a"'),), -3.5),
        Sample("process_start_time_seconds", (), 1.7e9),
        Sample("up", (), 1.0),
    ]


def _fmt_value(v: float) -> str:
    """Exact text for ``v``: large values in exponent form (``8.4e+09``), whole
    numbers without a fraction, others as Python's shortest round-trip repr."""
    if abs(v) >= 1e9:
        for digits in range(17):
            text = f"{v:.{digits}e}"
            if float(text) == v:
                return text
    if v == math.floor(v):
        return str(int(v))
    return repr(v)


def _fmt_labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    parts = []
    for k, v in labels:
        esc = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        parts.append(f'{k}="{esc}"')
    return "{" + ",".join(parts) + "}"


_HELP = {
    SEQUENCE_METRIC: ("counter", "Sequence number of this scrape (one per successful request)."),
    "node_cpu_seconds_total": ("counter", "Seconds the CPUs spent in each mode."),
    "node_filesystem_avail_bytes": ("gauge", "Filesystem space available to non-root users in bytes."),
    "node_memory_free_bytes": ("gauge", "Free memory in bytes."),
    "http_request_duration_seconds_bucket": ("histogram", "Request latency buckets."),
    "temperature_celsius": ("gauge", "Sensor temperature."),
    "process_start_time_seconds": ("gauge", "Start time of the process since unix epoch in seconds."),
    "up": ("gauge", "1 if the target is up."),
}


def exposition(seq: int) -> str:
    """Prometheus text exposition (format 0.0.4) of scrape ``seq``."""
    lines: list[str] = []
    seen: set[str] = set()
    for smp in samples_for(seq):
        if smp.name not in seen:
            seen.add(smp.name)
            typ, text = _HELP[smp.name]
            lines.append(f"# HELP {smp.name} {text}")
            lines.append(f"# TYPE {smp.name} {typ}")
        line = f"{smp.name}{_fmt_labels(smp.labels)} {_fmt_value(smp.value)}"
        if smp.name == "process_start_time_seconds":
            line += " 1700000000000"  # an explicit timestamp (milliseconds)
        lines.append(line)
    return "\n".join(lines) + "\n"


def _parse_batch(obj: Any) -> tuple[int, bool] | None:
    """(seq, samples match the source's) of one batch object, or None if it has no
    integer ``seq``. A batch without a usable ``seq`` falls back to its
    ``scrape_sequence`` sample."""
    if not isinstance(obj, dict):
        return None
    samples = obj.get("samples")
    seq = obj.get("seq")
    if not (isinstance(seq, int) and not isinstance(seq, bool)):
        seq = None
        if isinstance(samples, list):
            for s in samples:
                if isinstance(s, dict) and s.get("name") == SEQUENCE_METRIC:
                    v = s.get("value")
                    if isinstance(v, int | float) and not isinstance(v, bool) and float(v).is_integer():
                        seq = int(v)
    if seq is None or seq < 1:
        return None
    return seq, _samples_match(seq, samples)


def _samples_match(seq: int, samples: Any) -> bool:
    if not isinstance(samples, list):
        return False
    got = []
    for s in samples:
        if not isinstance(s, dict):
            return False
        labels = s.get("labels") or {}
        value = s.get("value")
        if not isinstance(labels, dict) or isinstance(value, bool) or not isinstance(value, int | float):
            return False
        got.append((str(s.get("name")), tuple(sorted((str(k), str(v)) for k, v in labels.items())), float(value)))
    want = [smp.key() for smp in samples_for(seq)]
    return sorted(got) == sorted(want)




def parse_body(body: bytes) -> Parsed:
    """The sink's parser: one JSON batch, or a JSON array of batches; every batch
    needs an integer ``seq`` (or a ``scrape_sequence`` sample), else the request is
    invalid (no seqs)."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        obj = None
    array = isinstance(obj, list)
    parsed: list[tuple[int, bool]] = []
    for item in obj if array else [obj]:
        p = _parse_batch(item)
        if p is None:
            return Parsed((), False, array)
        parsed.append(p)
    return Parsed(tuple(s for s, _ in parsed), all(ok for _, ok in parsed), array)


# --------------------------------------------------------------------------- the mock


class MetricsMock(HttpMock):
    """Source (``/metrics``) + sink (``/write``) with inspectable state. Use as a
    context manager."""

    def __init__(self, host: str = "127.0.0.1", *, source_port: int = 0, sink_port: int = 0) -> None:
        super().__init__(exposition, parse_body, host, source_port=source_port, sink_port=sink_port,
                         source_path="/metrics", sink_path="/write",
                         content_type="text/plain; version=0.0.4; charset=utf-8",
                         invalid_message=b'expected a JSON batch with an integer "seq"\n')

    def __enter__(self) -> MetricsMock:
        return self

    def _attempt_json(self, a: Attempt) -> dict[str, Any]:
        d = super()._attempt_json(a)
        d["samples_ok"] = d.pop("content_ok")
        return d


# --------------------------------------------------------------------------- standalone


def serve(host: str = "127.0.0.1", *, source_port: int = 0, sink_port: int = 0, control_port: int = 0) -> Server:
    """Start a mock plus a control API on ``control_port``; returns at once."""
    return serve_control(MetricsMock(host, source_port=source_port, sink_port=sink_port), control_port=control_port)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the mock until interrupted, printing its URLs (for exam authors)."""
    ap = argparse.ArgumentParser(prog="mock-server", description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--source-port", type=int, default=0)
    ap.add_argument("--sink-port", type=int, default=0)
    ap.add_argument("--control-port", type=int, default=0)
    args = ap.parse_args(argv)
    srv = serve(args.host, source_port=args.source_port, sink_port=args.sink_port, control_port=args.control_port)
    out = sys.stdout
    out.write(f"source  {srv.mock.source_url}\nsink    {srv.mock.sink_url}\ncontrol {srv.control_url}\n")
    out.write("  POST /sink/{online,offline-503,offline-refuse,offline-hang}  POST /source/{ok,fail}\n"
              "  POST /hold/{none,resends,all}  POST /release  GET /records\n")
    out.flush()
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        srv.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
