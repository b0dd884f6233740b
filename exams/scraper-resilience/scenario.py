"""One scraper process against one MetricsMock, and the steps the checks are made of.

Every wait ends as soon as its condition holds. Waits that give the program time
to do something count the program's own scrape cycles (the source's sequence
numbers), not wall-clock time, so a loaded machine makes them slower but not
different; a generous wall-clock deadline only bounds a program that stops
scraping altogether.

Outage windows are exact: before the sink changes mode, the source is made to fail
(HTTP 503, no sequence number consumed) until the program has attempted at least
one more scrape. The program's previous cycle, including its POST, is then over,
so every batch numbered up to the boundary was sent before the switch and every
later one after it. (Before an outage starts, the switch also waits, for at most
DRAIN_ATTEMPTS scrape attempts, until every batch scraped since the sink last came
up has reached it, so a program that sends from a queue in another goroutine has
no batch from before the window left to buffer; and before a 503 outage ends, it
waits, for at most as many attempts, until the sink has rejected the last batch of
the window, so such a program cannot send that batch live after the recovery.)
"""

from __future__ import annotations

import dataclasses
import math
import signal
import time
from collections.abc import Callable
from typing import Any

from harness.exams.checkkit import CheckContext
from harness.exams.kit import time_scale
from harness.runtime import proc

from . import flagmap
from .mock import MetricsMock, SinkMode

TIME_SCALE = time_scale()   # stretches wall-clock deadlines only (SWEEP_CHECK_TIME_SCALE)
INTERVAL_S = 0.025          # scrape interval of most checks
START_S = 10.0              # wall deadline: first batches after the process starts
PHASE_S = 15.0              # wall deadline: any other phase (only a stuck program reaches it)
FLUSH_CYCLES = 40           # scrape cycles a program gets to re-send its buffer after a reconnect,
FLUSH_MIN_S = 2.0           # ... and at least this long (for retry timers that do not follow -interval)
QUIET_CYCLES = 8            # cycles without a further re-sent batch before the flush counts as done
QUIET_FACTOR = 3.0          # ... and at least this many times the longest wait seen during the flush
GRACE_CYCLES = 8            # scrape attempts the source keeps failing after a recovery (see outage)
DRAIN_ATTEMPTS = 20         # scrape attempts allowed for queued live sends to land before an outage
# A -race binary's address space peaks near 2.1 GiB before it does anything (ThreadSanitizer's shadow
# plus Go's reservations; a plain build: ~1.3 GiB), and ThreadSanitizer dies ("internal allocator is out
# of memory") when an mmap fails. So the -race run gets this much more than the exam's memory limit.
RACE_EXTRA_AS = 2 * proc.GiB


class CheckFailed(Exception):
    """The program did not do what the check requires (``detail`` says what)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Run:
    """Start with ``with Run(ctx, mapping, buffer=..., ...) as run:``."""

    def __init__(
        self,
        ctx: CheckContext,
        mapping: Any,
        *,
        buffer: int | None,
        interval_s: float = INTERVAL_S,
        timeout_s: float = 2.0,
        race: bool = False,
    ) -> None:
        self.ctx = ctx
        self.mapping = mapping
        self.buffer = buffer
        self.race = race
        self.mock = MetricsMock()
        self._process: proc.Process | None = None
        self._live_from = 1  # first sequence number scraped since the sink last came up
        try:
            self.eff = mapping.argv(flagmap.Values(
                source=self.mock.source_url, sink=self.mock.sink_url, interval_s=interval_s,
                timeout_s=timeout_s, buffer=buffer))
        except flagmap.FlagError as e:
            self.mock.close()
            raise CheckFailed(f"flags: {e.message}") from e

    # -- lifecycle -------------------------------------------------------------
    def __enter__(self) -> Run:
        limits = self.ctx.limits
        if self.race and limits.address_space is not None:
            limits = dataclasses.replace(limits, address_space=limits.address_space + RACE_EXTRA_AS)
        try:
            self._process = self.ctx.spawn(list(self.eff.argv), race=self.race, limits=limits)
        except BaseException:
            self.mock.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._process is not None:
                self._process.__exit__(None, None, None)
        finally:
            self.mock.close()

    @property
    def process(self) -> proc.Process:
        assert self._process is not None
        return self._process

    @property
    def interval_s(self) -> float:
        return self.eff.interval_s

    @property
    def timeout_s(self) -> float:
        return self.eff.timeout_s

    def alive(self) -> bool:
        return self.process.poll() is None

    def stderr_text(self) -> str:
        return self.process.stderr_so_far().decode("utf-8", errors="replace")

    def exit_detail(self) -> str:
        """How the program ended, with the line that says why (panic, fatal log)."""
        rc = self.process.poll()
        if rc is None:
            return "still running"
        if rc < 0:
            try:
                how = f"killed by {signal.Signals(-rc).name}"
            except ValueError:
                how = f"killed by signal {-rc}"
        else:
            how = f"exited with status {rc}"
        if self.process.output_limited:
            how += " (wrote more output than allowed)"
        return how + _why(self.stderr_text())

    # -- waiting ---------------------------------------------------------------
    def _drain(self, done: Callable[[MetricsMock], bool]) -> None:
        """Wait, boundedly (DRAIN_ATTEMPTS more failed scrapes, or the wall deadline), until
        ``done(mock)``; never fails the check."""
        failed = self.mock.failed_scrapes
        self.mock.wait(lambda mk: done(mk) or mk.failed_scrapes >= failed + DRAIN_ATTEMPTS, PHASE_S * TIME_SCALE,
                       alive=self.alive)

    def wait(self, pred: Callable[[MetricsMock], bool], what: str, *, timeout: float = PHASE_S,
             cycles: int | None = None, since_seq: int | None = None, min_s: float = 0.0) -> None:
        """Wait until ``pred(mock)``. Fails the check if the program exits, if it
        scrapes ``cycles`` more times after ``since_seq`` (and ``min_s`` seconds
        passed) without ``pred`` holding, or at the wall deadline."""
        if cycles is not None and since_seq is None:
            since_seq = self.mock.last_seq
        limit = None if cycles is None else since_seq + cycles  # type: ignore[operator]
        not_before = time.monotonic() + min_s * TIME_SCALE

        def out_of_cycles(m: MetricsMock) -> bool:
            return limit is not None and m.last_seq >= limit and time.monotonic() >= not_before

        self.mock.wait(lambda m: pred(m) or out_of_cycles(m), max(timeout, min_s) * TIME_SCALE, alive=self.alive)
        if pred(self.mock):
            return
        if not self.alive():
            raise CheckFailed(f"the program exited while the check waited for {what}: {self.exit_detail()}")
        if out_of_cycles(self.mock):
            extra = f" and {min_s:g}s" if min_s else ""
            raise CheckFailed(f"{what}: not seen within {cycles} scrape cycles{extra}")
        raise CheckFailed(f"{what}: not seen within {timeout * TIME_SCALE:.0f}s "
                          f"(the source saw {self.mock.last_seq} scrapes in all)")

    def wait_delivered(self, n: int) -> None:
        self.wait(lambda m: len(m.accepted()) >= n, f"the first {n} batches at the sink", timeout=START_S)

    def switch_sink(self, mode: SinkMode, *, resume: bool = True) -> int:
        """Change the sink's mode at a cycle boundary; returns the boundary: the
        last sequence number scraped before the switch. With ``resume=False`` the
        source is left failing (the caller resumes it)."""
        m = self.mock
        failed_before = m.failed_scrapes
        m.set_source_failing(True)
        try:
            self.wait(lambda mk: mk.failed_scrapes > failed_before,
                      "a scrape attempt (to find a cycle boundary)", timeout=PHASE_S + 2 * self.timeout_s)
            boundary = m.last_seq
            if mode is SinkMode.ONLINE and m.sink_mode is SinkMode.OFFLINE_503 and boundary >= 1:
                # A design that hands batches to a sender goroutine may not have tried the last
                # one yet; it would go out live after the recovery although scraped during the
                # outage. Wait (boundedly: a health-probing design never tries it) until the
                # sink has rejected it.
                self._drain(lambda mk: boundary in mk.rejected())
            if mode is not SinkMode.ONLINE and m.sink_mode is SinkMode.ONLINE:
                sent = set(range(self._live_from, boundary + 1))
                self._drain(lambda mk: sent <= mk.accepted().keys())
            m.set_sink(mode)
            if mode is SinkMode.ONLINE:
                self._live_from = boundary + 1
        except BaseException:
            m.set_source_failing(False)
            raise
        if resume:
            m.set_source_failing(False)
        return boundary

    def outage(self, mode: SinkMode, scrapes: int, *, grace: bool = False) -> tuple[int, int]:
        """Take the sink down in ``mode`` for at least ``scrapes`` scrape cycles and
        bring it back. Returns (boundary_off, boundary_on): the outage window is the
        sequence numbers boundary_off+1 .. boundary_on.

        With ``grace``, the source keeps failing after the recovery until a batch
        from the window is delivered or GRACE_CYCLES more scrapes were attempted.
        A program that buffers new batches without trying them while it believes
        the sink is down (until its health probe says otherwise) then gets to
        flush before any new batch competes for buffer space, so what is
        delivered is exactly what the buffer held at the recovery, whichever of
        its goroutines runs first."""
        off = self.switch_sink(mode)
        self.wait(lambda m: m.last_seq >= off + scrapes, f"{scrapes} scrapes during the outage")
        on = self.switch_sink(SinkMode.ONLINE, resume=not grace)
        if grace:
            try:
                failed = self.mock.failed_scrapes
                self.wait(lambda m: m.failed_scrapes >= failed + GRACE_CYCLES
                          or any(off < s <= on for s in m.accepted()),
                          "scrape attempts after the recovery")
            finally:
                self.mock.set_source_failing(False)
        return off, on

    def wait_flush(self, pred: Callable[[MetricsMock], bool], what: str, *, since_seq: int) -> None:
        """Wait for something a flush must bring about: FLUSH_CYCLES scrape cycles
        (more for a whole-seconds retry flag) and at least FLUSH_MIN_S seconds."""
        self.wait(pred, what, cycles=self.flush_cycles(), since_seq=since_seq, min_s=FLUSH_MIN_S)

    def flush_cycles(self) -> int:
        """Scrape cycles allowed for a flush to happen: FLUSH_CYCLES, plus three
        flush periods when the program's retry flag only takes whole seconds."""
        extra = 0
        if self.eff.flush_s is not None and self.eff.flush_s > self.interval_s:
            extra = math.ceil(3 * self.eff.flush_s / self.interval_s)
        return FLUSH_CYCLES + extra

    def settle(self, window: range, *, at_most: int, at_least: int) -> set[int]:
        """After a reconnect at ``window``'s end, wait until the re-sending of
        batches from ``window`` is over; returns the set delivered.

        Ends early (returning what is there) once more than ``at_most`` arrived.
        Over means: at least ``at_least`` arrived, then QUIET_CYCLES scrape cycles
        and QUIET_FACTOR times the longest wait seen so far (from the reconnect to
        the first re-sent batch, and between re-sent batches) passed without
        another one."""
        m = self.mock
        on = window.stop - 1
        t_on = time.monotonic()  # re-sends before this (during a grace) are not waits

        def delivered(mk: MetricsMock) -> set[int]:
            return {s for s in mk.accepted() if s in window}

        self.wait_flush(lambda mk: len(delivered(mk)) >= at_least or len(delivered(mk)) > at_most,
                        f"{at_least} re-sent batches from the outage", since_seq=on)
        while True:
            got = delivered(m)
            if len(got) > at_most:
                return got
            accepted_at = m.accepted_times()
            times = [t_on] + sorted(t for s in got if (t := accepted_at.get(s, 0.0)) > t_on)
            longest = max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)
            last_t = times[-1]
            last_seq_then = _seq_at(m, last_t)
            quiet_s = QUIET_FACTOR * longest

            def quiet(mk: MetricsMock, n: int = len(got), qs: float = quiet_s, lt: float = last_t,
                      ls: int = last_seq_then) -> bool:
                return len(delivered(mk)) != n or (
                    mk.last_seq >= ls + QUIET_CYCLES and time.monotonic() >= lt + qs)

            self.wait(quiet, f"{QUIET_CYCLES} scrapes after the reconnect", timeout=PHASE_S + quiet_s)
            if len(delivered(m)) == len(got):
                return got

    def check_deliveries(self, *, cycles: int = QUIET_CYCLES) -> None:
        """Fail if any batch was delivered more than once or any POST carried a JSON
        array of batches. Waits ``cycles`` more scrape cycles first (ending early
        at the first offence), so a flush pass that re-sends batches it already
        delivered has had its chance to show."""
        m = self.mock
        start = m.last_seq

        def settled(mk: MetricsMock) -> bool:
            return bool(mk.duplicates()) or mk.array_posts() > 0 or mk.last_seq >= start + cycles

        m.wait(settled, PHASE_S * TIME_SCALE, alive=self.alive)
        arrays = m.array_posts()
        if arrays:
            raise CheckFailed(f"{arrays} POSTs carried a JSON array of batches; the batch format is one batch "
                              f"per POST")
        dups = m.duplicates()
        if dups:
            worst = max(dups.values())
            items = sorted(dups.items())
            shown = ", ".join(f"{s} x{n}" for s, n in items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8
                                                                    else "")
            raise CheckFailed(f"{len(dups)} batches were delivered more than once (up to {worst} times) while the "
                              f"sink was up: {shown}")

    # -- stopping ----------------------------------------------------------------
    def signal(self, sig: int) -> float:
        self.process.send_signal(sig)
        return time.monotonic()

    def wait_exit(self, timeout_s: float) -> int | None:
        return self.process.wait(timeout_s * TIME_SCALE)


def _seq_at(m: MetricsMock, t: float) -> int:
    """The last sequence number scraped at or before time ``t``."""
    last = 0
    for s in m.scrapes():
        if s.t > t:
            break
        if s.seq is not None:
            last = s.seq
    return last


def _why(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith(("panic:", "fatal error:", "WARNING: DATA RACE")):
            return f": {ln[:200]}"
    return f": {lines[-1][:200]}" if lines else ""
