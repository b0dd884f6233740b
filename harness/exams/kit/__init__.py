"""The exam kit: what an exam's Python code imports.

Everything public here is typed and documented in docs/adding-an-exam.md:

* checks (``grader = "checks"``): ``CheckContext`` (start the built binary with the
  exam's limits: ``ctx.run``, ``ctx.spawn``, ``ctx.report``), ``CheckResult``,
  ``CheckStatus``, ``poll_until``;
* flags: ``read_flags(ctx)`` runs the binary with ``-h``; ``parse_help`` parses it
  into ``Flag`` records (:mod:`harness.exams.kit.flags`);
* timing: ``scaled``, ``time_scale`` and ``Deadline`` stretch wall-clock deadlines
  with ``SWEEP_CHECK_TIME_SCALE`` (:mod:`harness.exams.kit.timing`);
* a controllable HTTP mock: ``HttpMock`` (a source serving ``payload(seq)``, a sink
  with ``SinkMode`` online / 503 / refused / hang and ``Hold``, ``fail_after_backlog``),
  its records ``Scrape`` and ``Attempt``, ``Parsed`` for the exam's body parser,
  ``wait`` for a predicate over the records, and ``serve`` for a control API
  (:mod:`harness.exams.kit.httpmock`; the scraper-resilience exam's
  ``mock.py`` is one use of it).

Exam code is imported as a package of its own (``harness.exams.package``), so
``from . import helpers`` and dataclasses work in it.
"""

from __future__ import annotations

from harness.exams.checkkit import CheckContext, CheckResult, CheckStatus, poll_until
from harness.exams.kit.flags import Flag, HelpText, parse_help, read_flags
from harness.exams.kit.httpmock import (
    Attempt,
    AttemptOutcome,
    Hold,
    HttpMock,
    Parsed,
    Scrape,
    SinkMode,
    serve,
)
from harness.exams.kit.timing import TIME_SCALE_ENV, Deadline, scaled, time_scale

__all__ = [
    "TIME_SCALE_ENV",
    "Attempt",
    "AttemptOutcome",
    "CheckContext",
    "CheckResult",
    "CheckStatus",
    "Deadline",
    "Flag",
    "HelpText",
    "Hold",
    "HttpMock",
    "Parsed",
    "Scrape",
    "SinkMode",
    "parse_help",
    "poll_until",
    "read_flags",
    "scaled",
    "serve",
    "time_scale",
]
