"""Checks of the scraper-resilience exam: ten behaviours, one point each.

Each check starts its own ``MetricsMock`` and its own process of the model's
binary (the ``-race`` build for RaceDetector), and they all run at once. What each
check requires, and why its thresholds hold on a loaded machine, is in
docs/exams/scraper-resilience.md; the scenario steps are in scenario.py.
"""

import signal
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from harness.exams import kit
from harness.exams.checkkit import CheckContext, CheckResult, CheckStatus

from . import eviction, flagmap, scenario  # the exam is imported as a package (harness.exams.package)
from .mock import AttemptOutcome, Hold, MetricsMock, SinkMode

Run = scenario.Run
CheckFailed = scenario.CheckFailed
Role = flagmap.Role

CHECKS = [
    ("OnlineFlow", 1.0),
    ("BuffersDuringOutage", 1.0),
    ("FlushOnReconnect", 1.0),
    ("BufferBounded", 1.0),
    ("EvictionRandom", 1.0),
    ("MultipleOutageCycles", 1.0),
    ("BufferSizeZero", 1.0),
    ("BufferSizeOne", 1.0),
    ("GracefulShutdown", 1.0),
    ("RaceDetector", 1.0),
]

# Sizes and counts (see the docs for the reasoning behind each).
BIG_BUFFER = 200            # never fills in BuffersDuringOutage/FlushOnReconnect/MultipleOutageCycles
BOUNDED_SIZE = 5            # BufferBounded: outage of >= 3x the size
BOUNDED_OUTAGE = 15
EVICT_SIZE = 24             # EvictionRandom: EVICT_WINDOWS outages of >= 2*size + 2 at a 5 ms interval
EVICT_OUTAGE = 2 * EVICT_SIZE + 2
EVICT_WINDOWS = 8
EVICT_ALPHA = 1e-6          # ... judged by a two-sided test with a false-fail rate below this
EVICT_INTERVAL_S = 0.005
BOUNDED_INTERVAL_S = 0.010
RACE_INTERVAL_S = 0.020
HOLD_LIVE = 4               # FlushOnReconnect: live batches delivered while a re-send is held open
HOLD_WAIT_S = 3.0
SHUTDOWN_S = 3.0            # GracefulShutdown (a): exit after the held request is answered
HANG_TIMEOUT_S = 0.3        # GracefulShutdown (b): -timeout while the sink hangs
HANG_BEFORE_SIGNAL = 2.0    # GracefulShutdown (b): the sink hangs for >= this many -timeouts before SIGTERM,
HANG_SCRAPES = 3            # ... and for >= this many scrape attempts (or while a re-send hangs)
MIDFLUSH_OUTAGE = 8         # MultipleOutageCycles: the first outage's length, and the sink fails again
MIDFLUSH_DELIVERED = 3      # ... right after accepting this many batches of the backlog
CANCEL_WINDOW_S = 0.3       # GracefulShutdown (a): time given to a wrong cancel-on-signal to show


def run_checks(ctx: CheckContext) -> list[CheckResult]:
    mapping = _map_flags(ctx)
    timings: dict[str, float] = {}
    lock = threading.Lock()

    def one(name: str, fn: Callable[[CheckContext, object], CheckResult | None]) -> CheckResult:
        started = time.monotonic()
        try:
            res = fn(ctx, mapping)
            out = res if res is not None else CheckResult.passing(name, 1.0)
        except CheckFailed as e:
            out = CheckResult.failing(name, 1.0, e.detail)
        except Exception as e:  # noqa: BLE001 - a bug of ours: an error, not a failure
            tb = traceback.format_exception_only(type(e), e)[-1].strip()
            out = CheckResult(name, CheckStatus.ERROR, 0.0, 1.0, f"grader error: {tb}")
        with lock:
            timings[name] = round(time.monotonic() - started, 3)
        if out.status is not CheckStatus.ERROR:
            ctx.report(out)   # final: kept even if a program later kills the driver
        return out

    with ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="check") as pool:
        futures = [pool.submit(one, name, _FUNCS[name]) for name, _ in CHECKS]
        results = [f.result() for f in futures]
    ctx.notes["check_seconds"] = timings
    return results


def _map_flags(ctx: CheckContext) -> object:
    helptext = kit.read_flags(ctx, wall_s=5.0)
    mapping = flagmap.map_flags([flagmap.from_flag(f) for f in helptext.flags])
    ctx.notes["flag_mapping"] = mapping.describe()
    ctx.notes["help_exit"] = helptext.exit
    return mapping


def _buffer_or_default(mapping: object, size: int) -> int | None:
    """For checks that do not depend on buffering: use ``size`` when the program
    has a buffer flag, else run it with its own default."""
    return size if mapping.has(Role.BUFFER) else None  # type: ignore[attr-defined]


def _seqs(seqs: object) -> str:
    items = sorted(seqs)  # type: ignore[call-overload]
    if len(items) > 12:
        return ", ".join(map(str, items[:12])) + f", ... ({len(items)} in all)"
    return ", ".join(map(str, items))


# --------------------------------------------------------------------------- checks


def online_flow(ctx: CheckContext, mapping: object) -> None:
    """With the sink up, every scrape's batch arrives exactly once, unchanged."""
    with Run(ctx, mapping, buffer=_buffer_or_default(mapping, 16)) as run:
        m = run.mock

        def prefix(mk: MetricsMock) -> int:
            acc = mk.accepted()
            k = 0
            while k + 1 in acc:
                k += 1
            return k

        try:
            run.wait(lambda mk: prefix(mk) >= 5, "batches 1-5 at the sink", timeout=scenario.START_S,
                     cycles=20, since_seq=0)
        except CheckFailed as e:
            acc = m.accepted()
            missing = [s for s in range(1, m.last_seq + 1) if s not in acc]
            invalid = sum(1 for a in m.attempts() if a.outcome is AttemptOutcome.INVALID)
            extra = f"; {invalid} POSTs were not JSON batches with an integer seq" if invalid else ""
            raise CheckFailed(f"{e.detail}; scraped {m.last_seq}, missing at the sink: "
                              f"{_seqs(missing) or 'none'}{extra}") from e
        run.check_deliveries(cycles=0)
        bad = [a.seqs for a in m.attempts() if a.outcome is AttemptOutcome.ACCEPTED and not a.samples_ok]
        if bad:
            raise CheckFailed(f"batch {bad[0][0]}'s samples differ from what the source served "
                              f"({len(bad)} such batches)")


def buffers_during_outage(ctx: CheckContext, mapping: object) -> None:
    """Batches scraped while the sink answers 503 are all delivered after it recovers."""
    with Run(ctx, mapping, buffer=BIG_BUFFER) as run:
        run.wait_delivered(2)
        off, on = run.outage(SinkMode.OFFLINE_503, scrapes=6)
        window = range(off + 1, on + 1)
        _assert_fits(window, BIG_BUFFER)
        _wait_all(run, window, "scraped during a 503 outage")
        run.check_deliveries()


def flush_on_reconnect(ctx: CheckContext, mapping: object) -> None:
    """The buffer is re-sent in the background: while a re-send is held open by the
    sink, new scrapes keep being delivered; afterwards the whole outage arrives."""
    with Run(ctx, mapping, buffer=BIG_BUFFER, timeout_s=5.0) as run:
        m = run.mock
        run.wait_delivered(2)
        off = run.switch_sink(SinkMode.OFFLINE_503)
        run.wait(lambda mk: mk.last_seq >= off + 6 and bool(mk.rejected()), "6 scrapes during the outage")
        m.set_hold(Hold.RESENDS)
        on = run.switch_sink(SinkMode.ONLINE)
        window = range(off + 1, on + 1)
        _assert_fits(window, BIG_BUFFER)
        try:
            run.wait_flush(lambda mk: mk.first_hold_t is not None,
                           "a re-send of a buffered batch after the sink came back", since_seq=on)
            t_hold = m.first_hold_t

            def live(mk: MetricsMock) -> int:
                return sum(1 for s, t in mk.accepted_times().items() if s > on and t > t_hold)

            scraped_at_hold = m.last_seq
            try:
                run.wait(lambda mk: live(mk) >= HOLD_LIVE, "new batches while a re-send is held",
                         timeout=HOLD_WAIT_S)
            except CheckFailed as e:
                if not run.alive():
                    raise
                raise CheckFailed(
                    f"while the sink held a re-sent batch open for {HOLD_WAIT_S:.0f}s, "
                    f"{m.last_seq - scraped_at_hold} new scrapes happened and {live(m)} new batches were "
                    f"delivered (wanted {HOLD_LIVE}): the flush blocks scraping or live sends") from e
        finally:
            m.release()
        _wait_all(run, window, "scraped during the outage", since_seq=m.last_seq)
        run.check_deliveries()


def buffer_bounded(ctx: CheckContext, mapping: object) -> None:
    """After an outage of 3x the buffer size, N-1 .. N+1 outage batches arrive."""
    size = BOUNDED_SIZE
    with Run(ctx, mapping, buffer=size, interval_s=BOUNDED_INTERVAL_S) as run:
        run.wait_delivered(2)
        _overflowing_outage(run, size, BOUNDED_OUTAGE, "the outage")
        run.check_deliveries()


def _overflowing_outage(run: Run, size: int, scrapes: int, name: str) -> tuple[range, set[int]]:
    """An outage of ``scrapes`` scrapes with a buffer of ``size``, the sink back after it:
    the outage's batches (``window``) and those delivered afterwards (``_settle``).
    More than ``size`` + 1 of them delivered fails: the buffer was not bounded."""
    off, on = run.outage(SinkMode.OFFLINE_503, scrapes=scrapes, grace=True)
    window = range(off + 1, on + 1)
    got = _settle(run, window, size)
    if len(got) > size + 1:
        raise CheckFailed(f"at least {len(got)} of the {len(window)} batches scraped during {name} were delivered "
                          f"afterwards; -buffer-size={size} allows at most {size} (+1 being re-sent)")
    return window, got


def eviction_random(ctx: CheckContext, mapping: object) -> None:
    """Over EVICT_WINDOWS overflowing outages, the number of survivors among each
    outage's newest batches is what uniformly random eviction gives (a two-sided
    exact test, eviction.py): not too many (oldest-first, older-half, any bias to
    evicting old batches), not too few (newest-first, dropping new batches)."""
    size = EVICT_SIZE
    limits = eviction.bounds(size, EVICT_WINDOWS, EVICT_ALPHA)
    with Run(ctx, mapping, buffer=size, interval_s=EVICT_INTERVAL_S) as run:
        run.wait_delivered(2)
        young: list[int] = []
        for i in range(1, EVICT_WINDOWS + 1):
            window, got = _overflowing_outage(run, size, EVICT_OUTAGE, f"outage {i}")
            young.append(eviction.young_survivors(list(window), got, size))
        ctx.notes["eviction_young_survivors"] = young
        run.check_deliveries()
        verdict = eviction.judge(young, limits)
        if verdict:
            raise CheckFailed(verdict)


def multiple_outage_cycles(ctx: CheckContext, mapping: object) -> None:
    """Four outages in a row: a 503 outage whose flush is cut short by a second 503
    outage (the sink fails right after accepting MIDFLUSH_DELIVERED of its batches), then
    connection refused, then a hanging request that then fails. After each, every
    batch scraped during it (and what the interrupted flush had not delivered) is
    delivered, and no batch twice."""
    with Run(ctx, mapping, buffer=BIG_BUFFER) as run:
        m = run.mock
        run.wait_delivered(2)
        off = run.switch_sink(SinkMode.OFFLINE_503)
        run.wait(lambda mk: mk.last_seq >= off + MIDFLUSH_OUTAGE, f"{MIDFLUSH_OUTAGE} scrapes during outage 1")
        m.fail_after_backlog(MIDFLUSH_DELIVERED)
        on = run.switch_sink(SinkMode.ONLINE)
        window = range(off + 1, on + 1)
        try:
            run.wait_flush(lambda mk: mk.sink_mode is not SinkMode.ONLINE,
                           f"{MIDFLUSH_DELIVERED} re-sent batches from outage 1", since_seq=on)
        except CheckFailed as e:
            if not run.alive():
                raise
            run.check_deliveries(cycles=0)  # a backlog sent as one array is the better reason
            have = sum(1 for s in m.accepted() if s in window)
            raise CheckFailed(f"{have} of the {len(window)} batches scraped during outage 1 of 4 (503) were "
                              f"delivered within {run.flush_cycles()} scrape cycles after the sink came back") from e
        cut = m.last_seq
        run.wait(lambda mk: mk.last_seq >= cut + 4, "4 scrapes during outage 2 (the sink failed during a flush)")
        on2 = run.switch_sink(SinkMode.ONLINE)
        both = range(off + 1, on2 + 1)
        _assert_fits(both, BIG_BUFFER)
        _wait_all(run, both, f"scraped during outages 1 and 2 of 4 (the sink failed again once "
                             f"{MIDFLUSH_DELIVERED} batches of outage 1 were re-sent)")
        for i, mode in enumerate((SinkMode.OFFLINE_REFUSE, SinkMode.OFFLINE_HANG), 3):
            off = run.switch_sink(mode)
            if mode is SinkMode.OFFLINE_HANG:
                run.wait(lambda mk: mk.held_now >= 1, f"a POST to the hanging sink (outage {i})")
                m.set_sink(SinkMode.OFFLINE_503)  # the hung request fails with a 503
            run.wait(lambda mk, o=off: mk.last_seq >= o + 4, f"4 scrapes during outage {i}")
            on = run.switch_sink(SinkMode.ONLINE)
            window = range(off + 1, on + 1)
            _assert_fits(window, BIG_BUFFER)
            _wait_all(run, window, f"scraped during outage {i} of 4 ({mode.value})")
        run.check_deliveries()


def buffer_size_zero(ctx: CheckContext, mapping: object) -> None:
    """-buffer-size=0 runs, survives an outage, and re-sends nothing afterwards."""
    with Run(ctx, mapping, buffer=0) as run:
        m = run.mock
        run.wait_delivered(3)
        off, on = run.outage(SinkMode.OFFLINE_503, scrapes=4)
        window = range(off + 1, on + 1)

        def leaked(mk: MetricsMock) -> list[int]:
            return [s for s in mk.accepted() if s in window]

        run.wait(lambda mk: bool(leaked(mk)) or sum(1 for s in mk.accepted() if s > on) >= 10,
                 "10 new batches after the outage", cycles=run.flush_cycles(), since_seq=on)
        if leaked(m):
            raise CheckFailed(f"with -buffer-size=0, batches scraped during the outage were delivered after it "
                              f"({_seqs(leaked(m))}): 0 must disable buffering")


def buffer_size_one(ctx: CheckContext, mapping: object) -> None:
    """-buffer-size=1 keeps exactly one batch through an outage of 4 scrapes."""
    with Run(ctx, mapping, buffer=1) as run:
        run.wait_delivered(2)
        off, on = run.outage(SinkMode.OFFLINE_503, scrapes=4, grace=True)
        window = range(off + 1, on + 1)
        got = _settle(run, window, 1, at_least=1)
        if len(got) > 2:
            raise CheckFailed(f"at least {len(got)} batches from the outage were delivered with -buffer-size=1 "
                              f"({_seqs(got)}); at most 1 (+1 being re-sent) may be held")
        run.check_deliveries()


def graceful_shutdown(ctx: CheckContext, mapping: object) -> None:
    """(a) SIGINT during a POST: the POST completes, no new scrape starts, exit 0.
    (b) SIGTERM after the sink has hung for >= 2 x -timeout and >= 3 scrape attempts
    (or while a re-send hangs), so every POST a program makes while it hangs is
    open at the signal: exit 0 within 2 x -timeout + 3 s (a correct exit takes
    about one -timeout; a program that waits on a request without a timeout never
    exits, so the headroom costs no discrimination and keeps a loaded machine fair)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        a = pool.submit(_shutdown_during_post, ctx, mapping)
        b = pool.submit(_shutdown_while_hanging, ctx, mapping)
        problems = [p for p in (a.result(), b.result()) if p]
    if problems:
        raise CheckFailed("; ".join(problems))


def _shutdown_during_post(ctx: CheckContext, mapping: object) -> str | None:
    try:
        with Run(ctx, mapping, buffer=_buffer_or_default(mapping, 16), timeout_s=2.0) as run:
            m = run.mock
            run.wait_delivered(3)
            m.set_hold(Hold.ALL)
            run.wait(lambda mk: mk.held_now >= 1, "a POST to the sink", timeout=scenario.START_S)
            t_sig = run.signal(signal.SIGINT)
            m.wait(lambda mk: any(a.outcome is AttemptOutcome.ABANDONED for a in mk.attempts()),
                   CANCEL_WINDOW_S, alive=run.alive)
            m.release()
            rc = run.wait_exit(SHUTDOWN_S)
            abandoned = any(a.outcome is AttemptOutcome.ABANDONED for a in m.attempts())
            later = m.scrapes_since(t_sig)
            if rc is None:
                return f"SIGINT: still running {SHUTDOWN_S:.0f}s after the signal and the POST's answer"
            if rc != 0:
                return f"SIGINT: {run.exit_detail()}"
            if abandoned:
                return "SIGINT: the POST in progress was cancelled instead of being allowed to finish"
            if later > 1:
                return f"SIGINT: {later} scrapes started after the signal (scraping must stop)"
    except CheckFailed as e:
        return f"SIGINT scenario: {e.detail}"
    return None


def _shutdown_while_hanging(ctx: CheckContext, mapping: object) -> str | None:
    try:
        with Run(ctx, mapping, buffer=_buffer_or_default(mapping, 16), timeout_s=HANG_TIMEOUT_S) as run:
            m = run.mock
            run.wait_delivered(2)
            off = run.switch_sink(SinkMode.OFFLINE_503)
            run.wait(lambda mk: mk.last_seq >= off + 4, "4 scrapes during the outage")
            m.set_sink(SinkMode.OFFLINE_HANG)
            t_hang = time.monotonic()
            tried = len(m.scrapes())  # scrape attempts, failed ones included
            hang_s = HANG_BEFORE_SIGNAL * run.timeout_s

            def long_enough(mk: MetricsMock) -> bool:
                return (mk.held_now >= 1 and time.monotonic() >= t_hang + hang_s
                        and (mk.held_resends_now >= 1 or len(mk.scrapes()) >= tried + HANG_SCRAPES))

            run.wait(long_enough, f"{hang_s:g}s and {HANG_SCRAPES} scrape attempts with the sink hanging")
            run.signal(signal.SIGTERM)
            limit = 2 * run.timeout_s + 3.0
            rc = run.wait_exit(limit)
            if rc is None:
                return (f"SIGTERM: still running {limit:.1f}s after the signal while the sink hung "
                        f"(-timeout {run.timeout_s:g}s)")
            if rc != 0:
                return f"SIGTERM: {run.exit_detail()}"
    except CheckFailed as e:
        return f"SIGTERM scenario: {e.detail}"
    return None


def race_detector(ctx: CheckContext, mapping: object) -> CheckResult | None:
    """The -race build runs online -> 503 outage (overflowing a buffer of 4) ->
    flush -> refused -> flush -> hang -> flush -> SIGINT without any race report."""
    if ctx.race_binary is None:
        why = "the -race build failed" if ctx.race_build is not None else "no -race build"
        return CheckResult.not_run("RaceDetector", 1.0, why)
    with Run(ctx, mapping, buffer=_buffer_or_default(mapping, 4), interval_s=RACE_INTERVAL_S, race=True) as run:
        m = run.mock
        try:
            run.wait_delivered(3)
            for mode, n in ((SinkMode.OFFLINE_503, 6), (SinkMode.OFFLINE_REFUSE, 3), (SinkMode.OFFLINE_HANG, 2)):
                off = run.switch_sink(mode)
                if mode is SinkMode.OFFLINE_HANG:
                    run.wait(lambda mk: mk.held_now >= 1, "a POST to the hanging sink")
                    m.set_sink(SinkMode.OFFLINE_503)
                run.wait(lambda mk, o=off, k=n: mk.last_seq >= o + k, f"{n} scrapes during the {mode.value} outage")
                on = run.switch_sink(SinkMode.ONLINE)
                run.wait(lambda mk, o=on: mk.last_seq >= o + 4, "4 scrapes after the outage")
        finally:
            if run.alive():
                run.process.stop(grace_s=2.0 * scenario.TIME_SCALE, term_s=0.5, quit_s=0.5)
            report = _race_report(run.process.result().stderr_text())  # reads stderr to its end
            if report:
                raise CheckFailed(report)  # noqa: B012 - a race report outranks anything else
        rc = run.process.poll()
        if rc == 66:
            raise CheckFailed("the -race build exited with status 66 (races found)")
    return None


def _race_report(stderr: str) -> str | None:
    if "WARNING: DATA RACE" not in stderr:
        return None
    count = stderr.count("WARNING: DATA RACE")
    block = stderr.split("WARNING: DATA RACE", 1)[1].splitlines()
    where = []
    for i, ln in enumerate(block):
        s = ln.strip()
        if s.startswith(("Read at", "Write at", "Previous read at", "Previous write at")) and i + 1 < len(block):
            where.append(f"{s.split(' by ')[0].split(' at ')[0].lower()} in {block[i + 1].strip()}")
        if len(where) == 2:
            break
    return f"{count} data race report(s); first: " + ("; ".join(where) or "see stderr")


# --------------------------------------------------------------------------- helpers


def _assert_fits(window: range, size: int) -> None:
    if len(window) >= size:  # the harness overshot its own outage length: our problem
        raise RuntimeError(f"outage of {len(window)} scrapes overran the buffer of {size}")


def _wait_all(run: object, window: range, what: str, *, since_seq: int | None = None) -> None:
    m = run.mock  # type: ignore[attr-defined]
    start = window.stop - 1 if since_seq is None else since_seq
    try:
        run.wait_flush(lambda mk: set(window) <= mk.accepted().keys(),  # type: ignore[attr-defined]
                       f"delivery of all {len(window)} batches {what}", since_seq=start)
    except CheckFailed as e:
        missing = [s for s in window if s not in m.accepted()]
        if not run.alive():  # type: ignore[attr-defined]
            raise
        raise CheckFailed(f"{len(window) - len(missing)} of the {len(window)} batches {what} were delivered "
                          f"within {run.flush_cycles()} scrape cycles and {scenario.FLUSH_MIN_S:g}s "  # type: ignore[attr-defined]
                          f"after the sink came back (missing: {_seqs(missing)})") from e


def _settle(run: object, window: range, size: int, *, at_least: int | None = None) -> set[int]:
    need = max(1, size - 1) if at_least is None else at_least
    try:
        got = run.settle(window, at_most=size + 1, at_least=need)  # type: ignore[attr-defined]
    except CheckFailed as e:
        m = run.mock  # type: ignore[attr-defined]
        have = sum(1 for s in m.accepted() if s in window)
        if not run.alive():  # type: ignore[attr-defined]
            raise
        raise CheckFailed(f"{have} of the {len(window)} batches scraped during the outage were delivered "
                          f"afterwards; -buffer-size={size} should keep {size} of them "
                          f"(at least {need} required)") from e
    return got


_FUNCS: dict[str, Callable[[CheckContext, object], CheckResult | None]] = {
    "OnlineFlow": online_flow,
    "BuffersDuringOutage": buffers_during_outage,
    "FlushOnReconnect": flush_on_reconnect,
    "BufferBounded": buffer_bounded,
    "EvictionRandom": eviction_random,
    "MultipleOutageCycles": multiple_outage_cycles,
    "BufferSizeZero": buffer_size_zero,
    "BufferSizeOne": buffer_size_one,
    "GracefulShutdown": graceful_shutdown,
    "RaceDetector": race_detector,
}
