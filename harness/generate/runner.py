"""The sweep: generate answers cell by cell, store them, grade them.

Order is model-major (every exam x task x seed of one model before the next), so a
model swapper such as llama-swap loads each model once. Before a model's first
request its server's ``/props`` (context size, slots, build, model file) is stored;
with ``unload_between_models`` the endpoint is asked to unload after the model's
cells. Each model's requests use its own sampling (``RunConfig.sampling_for``).
A model's requests go ``parallel`` at a time (for servers started with several
slots; 1 by default); grading runs in a thread pool while the next answers are
generated. Every request and raw response is stored before it is parsed; resuming
skips done cells and grades stored answers that have no grade by the current grader.

Repair turns (``turns`` > 1): a cell whose answer lacks full marks continues the
conversation with the answer and a feedback message (``harness.grade.feedback``), one
stored attempt per turn, up to ``turns`` answers. Each turn waits for the grade of
the one before (graded in the pool); turn k sends the seed
``harness.grade.feedback.turn_seed(seed, k)``. Resuming continues a cell from its last
stored turn; a cell is done when its last turn ends the conversation.

A grade that is a grading error (ours, never the model's) is graded once more at
the end of the sweep that produced it (``harness.grade.regrade.retry_grade``); the
retry takes its place in the store, is shown, and says it was one.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from harness.config import RunConfig
from harness.errors import (
    ConfigError,
    ConflictError,
    EndpointError,
    EndpointHTTPError,
    EndpointUnreachable,
    ModelLoadFailed,
    SweepError,
    UnknownModel,
)
from harness.events import Event, EventKind, ProgressFn, ignore
from harness.exams.exam import Exam, Task
from harness.generate.client import ChatClient
from harness.grade import feedback
from harness.grade.answers import Answer, classify
from harness.grade.regrade import grade_attempt, retry_grade
from harness.quant import format_size as quant_size
from harness.results import CellKey, Grade, Outcome
from harness.runtime.gotool import Toolchain
from harness.runtime.host import host_info, tool_version
from harness.store import queries
from harness.store.db import AttemptRow, Store
from harness.wire import ChatResult, error_for, parse_response

T = TypeVar("T")


@dataclass
class SweepSummary:
    run_id: int
    total_cells: int
    generated: int = 0
    skipped: int = 0
    graded: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    stopped_early: str | None = None
    retried: int = 0                     # grading errors graded once more at the end
    elapsed_s: float = 0.0               # wall time of the sweep (set by harness.api.run_sweep)

    @property
    def ok(self) -> bool:
        return not self.errors and self.stopped_early is None


# -- classification -----------------------------------------------------------

def classify_generation(chat: ChatResult) -> tuple[str, str | None, str | None, str]:
    """(gen_outcome, code, extraction_method, note) for a parsed answer, stored with
    the attempt for display; grading classifies the stored answer again
    (``harness.grade.answers``)."""
    c = classify(Answer(chat.content, chat.reasoning_content, chat.finish_reason))
    return c.gen_outcome, c.code, c.method, c.note


# -- the sweep ------------------------------------------------------------------


class Sweep:
    def __init__(
        self,
        cfg: RunConfig,
        *,
        store: Store,
        exams: list[Exam],
        toolchain: Toolchain,
        client: ChatClient,
        progress: ProgressFn | None = None,
        command: str = "sweep run",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.exams = exams
        self.toolchain = toolchain
        self.client = client
        self.progress = progress or ignore
        self.command = command
        self.sleep = sleep
        self._exam_by_id = {e.id: e for e in exams}
        self._lock = threading.Lock()
        self._touched: set[str] = set()   # models sent a request (props included) this run
        self._loading_warned: set[str] = set()
        self._grading: dict[int, Future[Grade]] = {}   # attempt id -> its grading, once per run
        self._errored: list[tuple[AttemptRow, Grade]] = []   # grading errors of this run: retried at its end

    def cells(self) -> list[tuple[CellKey, Exam, Task]]:
        out = []
        for model in self.cfg.models:
            for exam in self.exams:
                for task in exam.tasks:
                    for seed in self.cfg.seeds:
                        out.append((CellKey(model, exam.id, exam.version, task.id, seed), exam, task))
        return out

    def run(self) -> SweepSummary:
        check_graders(self.exams)      # a broken grader stops the sweep before its first request
        cells = self.cells()
        run_id = self.store.start_run(
            command=self.command, config=self.cfg.to_json(), tool_version=tool_version(),
            go_version=self.toolchain.version, go_source=self.toolchain.source, host=host_info())
        for old_run, pid in self.store.abandoned_runs:
            self._emit(Event(EventKind.WARNING, f"run {old_run} (pid {pid if pid is not None else '?'}) ended without "
                                        "finishing (killed?): marked interrupted"))
        summary = SweepSummary(run_id=run_id, total_cells=len(cells))
        pool = ThreadPoolExecutor(max_workers=max(1, self.cfg.grading_workers), thread_name_prefix="grade")
        pending: list[Future[Grade]] = []
        status = "failed"
        error: str | None = None
        try:
            # The grader this run grades each exam with: reports read it back as the current one.
            self.store.record_graders(run_id, [(e.id, e.version, e.grader_hash, str(e.root.resolve()))
                                               for e in self.exams])
            self._emit(Event(EventKind.INFO, f"{len(cells)} cells: {len(self.cfg.models)} model(s) x "
                                     f"{sum(len(e.tasks) for e in self.exams)} task(s) x {len(self.cfg.seeds)} seed(s)"
                                     + (f"; {self.cfg.parallel} requests at a time per model" if self.cfg.parallel > 1
                                        else "") + ("; streamed" if self.cfg.stream else "")
                                     + (f"; up to {self.cfg.turns} turns per cell" if self.cfg.turns > 1 else ""),
                             total=len(cells)))
            # Stored answers without a current grade (e.g. killed while grading).
            for att in queries.attempts_needing_grade(self.store, self._hashes()):
                if att.key.model in self.cfg.models and att.key.exam in self._exam_by_id:
                    pending.append(self._submit_grade(pool, att, summary, len(cells)))
            self._generate_all(run_id, cells, summary, pool, pending)
            for f in pending:
                f.result()
            self._retry_grading_errors(pool, summary, len(cells))
            status = "done" if summary.stopped_early is None else "failed"
            error = summary.stopped_early
            return summary
        except KeyboardInterrupt:
            status, error = "interrupted", "interrupted by the user"
            raise
        except SweepError as e:
            error = e.one_line()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self.store.finish_run(run_id, status, error)

    def _hashes(self) -> dict[tuple[str, int], str]:
        return {(e.id, e.version): e.grader_hash for e in self.exams}

    def _emit(self, event: Event) -> None:
        self.progress(event)

    def _generate_all(self, run_id: int, cells: list[tuple[CellKey, Exam, Task]], summary: SweepSummary,
                      pool: ThreadPoolExecutor, pending: list[Future[Grade]]) -> None:
        """Model by model, in order: a model's cells run (``parallel`` at a time)
        before the next model's first request, so a swapper loads each model once."""
        state = _GenState(total=len(cells))
        by_model: dict[str, list[tuple[CellKey, Exam, Task]]] = {}
        for cell in cells:
            by_model.setdefault(cell[0].model, []).append(cell)
        for model, model_cells in by_model.items():
            if state.stop.is_set():
                break
            todo = [c for c in model_cells if not self._already_done(c[0], summary, state)]
            if todo:
                self._fetch_props(run_id, model)
                work = lambda cell: self._cell(run_id, cell, summary, state, pool, pending)  # noqa: E731
                _run_workers(work, todo, min(self.cfg.parallel, len(todo)), state.stop)
            self._finish_model(model)

    def _already_done(self, key: CellKey, summary: SweepSummary, state: _GenState) -> bool:
        """Whether the cell already has an answer (made with the same sampling); with
        repair turns, whether its last stored turn ends the conversation."""
        existing = queries.attempt(self.store, key)
        if existing is None or existing.gen_outcome == Outcome.ENDPOINT_ERROR.value:
            return False
        if self.cfg.turns > 1 and not self._conversation_over(key, existing):
            return False
        sampling = self.cfg.sampling_for(key.model).to_body()
        stored = json.loads(existing.sampling_json)
        if stored != sampling:
            raise ConflictError(
                f"{self.store.dir} already holds {key.label()} generated with {stored}, "
                f"but this run asks for {sampling}",
                hint="use another --out directory for different sampling settings")
        summary.skipped += 1
        self._emit(Event(EventKind.SKIP, "already done", key, existing.gen_outcome, state.tick(), state.total))
        return True

    def _conversation_over(self, key: CellKey, first: AttemptRow) -> bool:
        """Whether the stored turns of a cell (``first``: its stored turn 1) end its
        conversation: the last one is graded by the current grader and has full marks
        or is not the model's doing, or it is turn ``turns``."""
        grader = self._exam_by_id[key.exam].grader_hash
        for turn in range(1, self.cfg.turns + 1):
            att = first if turn == 1 else queries.attempt(self.store, key.at_turn(turn))
            if att is None or att.gen_outcome == Outcome.ENDPOINT_ERROR.value:
                return False
            if turn == self.cfg.turns:
                return True
            grade = queries.grade_of(self.store, att.id, grader)
            if grade is None:
                return False
            if not feedback.continues(grade):
                return True
        return True

    def _cell(self, run_id: int, cell: tuple[CellKey, Exam, Task], summary: SweepSummary, state: _GenState,
              pool: ThreadPoolExecutor, pending: list[Future[Grade]]) -> None:
        """Generate one cell (any worker thread) and queue its grading; with repair
        turns, go on turn by turn while the answer lacks full marks."""
        key, exam, task = cell
        if state.stop.is_set():
            return
        if key.model in state.skip_models:
            state.tick()    # counted as handled: the model was skipped
            return
        ticked = False

        def tick() -> int:      # one count per cell, whatever its turns
            nonlocal ticked
            if ticked:
                return state.done
            ticked = True
            return state.tick()

        sampling = self.cfg.sampling_for(key.model).to_body()
        if self.cfg.turns <= 1:
            att = self._turn(run_id, key, exam.messages(task), sampling, summary, state, tick)
            if att is not None:
                future = self._submit_grade(pool, att, summary, state.total)
                with self._lock:
                    pending.append(future)
            return
        messages = exam.messages(task)
        for turn in range(1, self.cfg.turns + 1):
            if state.stop.is_set():
                return
            tkey = key.at_turn(turn)
            stored = queries.attempt(self.store, tkey)
            if stored is None or stored.gen_outcome == Outcome.ENDPOINT_ERROR.value:
                att = self._turn(run_id, tkey, messages, sampling, summary, state, tick)
                if att is None:
                    return      # an endpoint error, stored: the next run asks again
            else:
                att = stored
            grade = queries.grade_of(self.store, att.id, exam.grader_hash)
            if turn == self.cfg.turns:
                # The last turn: nothing waits on its grade, so the next cell need not either.
                if grade is None:
                    future = self._submit_grade(pool, att, summary, state.total)
                    with self._lock:
                        pending.append(future)
                tick()
                return
            if grade is None:
                grade = self._submit_grade(pool, att, summary, state.total).result()
            if not feedback.continues(grade):
                tick()
                return
            messages = [*messages, {"role": "assistant", "content": att.content or ""},
                        {"role": "user", "content": feedback.message(exam, task, grade, turn)}]

    def _turn(self, run_id: int, key: CellKey, messages: list[dict[str, str]], sampling: dict[str, object],
              summary: SweepSummary, state: _GenState, tick: Callable[[], int]) -> AttemptRow | None:
        """Generate and store one answer of a cell (at ``key.turn``); None when the
        endpoint failed (stored as an endpoint error, or the model skipped)."""
        try:
            att, tps, wall = self._generate(run_id, key, messages, sampling, state)
        except (UnknownModel, ModelLoadFailed) as e:
            self._store_endpoint_error(run_id, key, sampling, e, summary)
            with self._lock:
                first = key.model not in state.skip_models
                state.skip_models.add(key.model)
                if first:
                    summary.errors.append(e.one_line())
            if first:
                self._emit(Event(EventKind.ERROR, e.one_line() + " -- skipping this model", key,
                                 Outcome.ENDPOINT_ERROR.value, tick(), state.total))
            else:
                tick()
            return None
        except EndpointError as e:
            if state.stop.is_set():
                return None     # the sweep is stopping: this cell stays missing, for the next run
            self._store_endpoint_error(run_id, key, sampling, e, summary)
            with self._lock:
                summary.errors.append(f"{key.label()}: {e.one_line()}")
                state.consecutive_errors += 1
                stop = state.consecutive_errors >= self.cfg.max_endpoint_errors
                if stop and summary.stopped_early is None:
                    summary.stopped_early = (f"stopped after {state.consecutive_errors} consecutive endpoint "
                                             f"errors; last: {e.one_line()}")
                    state.stop.set()
            self._emit(Event(EventKind.ERROR, e.one_line(), key, Outcome.ENDPOINT_ERROR.value, tick(), state.total))
            return None
        with self._lock:
            state.consecutive_errors = 0
            summary.generated += 1
        self._emit(Event(EventKind.GENERATED, att.gen_outcome, key, att.gen_outcome, tick(), state.total,
                         wall_s=wall, tokens_per_s=tps))
        return att

    def _fetch_props(self, run_id: int, model: str) -> None:
        """Once per model, before its first request: store what the server runs."""
        if model in self._touched:
            return
        self._touched.add(model)
        found = self.client.props(model)
        if found is None:
            self._emit(Event(EventKind.INFO, f"{model}: the endpoint does not tell what it runs (no /props)"))
            return
        url, props = found
        from harness.generate import served

        ident = served.identity(props)
        kwargs = self.cfg.sampling_for(model).chat_template_kwargs
        problems = served.template_warnings(props, kwargs if isinstance(kwargs, dict) else None)
        self.store.save_model_props(run_id, model, url, props, identity=ident, warnings=problems)
        settings = props.get("default_generation_settings")
        n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
        path = ident["gguf"] or "?"
        what = ", ".join(x for x in (ident["quant"], ident["size_bytes"] and quant_size(ident["size_bytes"])) if x)
        self._emit(Event(EventKind.INFO, f"{model}: server runs {path}{f' ({what})' if what else ''}, n_ctx {n_ctx}, "
                                 f"{props.get('total_slots', '?')} slot(s), build {props.get('build_info', '?')}"))
        for problem in problems:
            self._emit(Event(EventKind.WARNING, f"{model}: CHAT FORMAT: {problem}"))
        slots = props.get("total_slots")
        if isinstance(slots, int) and not isinstance(slots, bool) and self.cfg.parallel > slots:
            self._emit(Event(EventKind.WARNING, f"{model}: --parallel {self.cfg.parallel} but the server has {slots} "
                                        f"slot(s): the extra requests wait in its queue (start it with "
                                        f"--parallel {self.cfg.parallel})"))
        max_tokens = self.cfg.sampling_for(model).max_tokens
        if isinstance(n_ctx, int) and max_tokens is not None and n_ctx < max_tokens:
            self._emit(Event(EventKind.WARNING, f"{model}: the server's context per slot (n_ctx {n_ctx}) is smaller than "
                                        f"max_tokens {max_tokens}: long answers end at the context, not max_tokens"))

    def _finish_model(self, model: str) -> None:
        """After a model's cells: unload it if asked to and it was used this run."""
        if not self.cfg.unload_between_models or model not in self._touched:
            return
        try:
            route = self.client.unload_all()
        except EndpointError as e:
            self._emit(Event(EventKind.WARNING, f"{model}: unloading failed: {e.one_line()}"))
        else:
            self._emit(Event(EventKind.INFO, f"{model}: unloaded ({route})"))

    def _store_endpoint_error(self, run_id: int, key: CellKey, sampling: dict[str, object],
                              e: EndpointError, summary: SweepSummary) -> None:
        self.store.save_attempt(run_id, key, sampling=sampling, request_id=None,
                                gen_outcome=Outcome.ENDPOINT_ERROR.value, error=e.one_line())
        with self._lock:
            summary.outcomes[Outcome.ENDPOINT_ERROR.value] += 1

    def _generate(self, run_id: int, key: CellKey, messages: list[dict[str, str]], sampling: dict[str, object],
                  state: _GenState) -> tuple[AttemptRow, float | None, float]:
        """The stored attempt, its decode tok/s (None when unknown) and wall time.
        Turn k of a cell sends ``feedback.turn_seed(seed, k)`` (the seed itself on turn 1)."""
        body = ChatClient.build_body(key.model, messages, feedback.turn_seed(key.seed, key.turn),
                                     self.cfg.sampling_for(key.model), stream=self.cfg.stream)
        last: EndpointError | None = None
        for attempt_no in range(1, self.cfg.retries + 2):
            req_id = self.store.record_request(run_id, key, attempt_no, self.client.chat_url, body)
            sent = time.monotonic()
            try:
                raw = self.client.send(body)
            except EndpointError as e:
                self.store.record_response(req_id, status=None, raw=e.partial, wall_s=time.monotonic() - sent,
                                           error=e.one_line())
                last = e
            else:
                self.store.record_response(req_id, status=raw.status, raw=raw.body, wall_s=raw.wall_s, error=None,
                                           ttft_s=raw.ttft_s)
                try:
                    if raw.status != 200:
                        raise error_for(raw, model=key.model)
                    chat = parse_response(raw, model=key.model)
                except EndpointError as e:
                    self.store.record_response(req_id, status=raw.status, raw=raw.body, wall_s=raw.wall_s,
                                               error=e.one_line(), ttft_s=raw.ttft_s)
                    last = e
                else:
                    self._check_loading_messages(key.model, chat)
                    gen, code, method, note = classify_generation(chat)
                    att_id = self.store.save_attempt(
                        run_id, key, sampling=sampling, request_id=req_id, gen_outcome=gen,
                        finish_reason=chat.finish_reason, content=chat.content,
                        reasoning_content=chat.reasoning_content, usage=chat.usage, timings=chat.timings,
                        wall_s=raw.wall_s, ttft_s=raw.ttft_s, extracted_code=code, extraction_method=method,
                        extraction_note=note)
                    row = queries.attempt(self.store, key)
                    assert row is not None and row.id == att_id
                    return row, _decode_tps(chat, raw.wall_s), raw.wall_s
            if (isinstance(last, (UnknownModel, ModelLoadFailed)) or not last.retryable or attempt_no > self.cfg.retries
                    or state.stop.is_set()):
                raise last
            wait, why = retry_wait(self.cfg, attempt_no, last)
            self._emit(Event(EventKind.INFO, f"{key.label()}: {last.one_line()}; retry {attempt_no}/{self.cfg.retries} "
                                     f"in {wait:.0f}s{why}", key))
            self.sleep(wait)
            if state.stop.is_set():     # another worker stopped the sweep meanwhile: no new request
                raise last
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_loading_messages(self, model: str, chat: ChatResult) -> None:
        """Warn once per model when a streamed answer starts with llama-swap's
        loading messages (``sendLoadingState``): they are stored as reasoning and
        arrive before the model's first token."""
        if not (chat.reasoning_content or "").lstrip().lower().startswith("llama-swap loading model"):
            return
        with self._lock:
            if model in self._loading_warned:
                return
            self._loading_warned.add(model)
        self._emit(Event(EventKind.WARNING, f"{model}: the stream began with llama-swap's loading messages "
                                    "(sendLoadingState is on): they are stored as reasoning and counted in the "
                                    "time to first token; set sendLoadingState: false in its config"))

    def _submit_grade(self, pool: ThreadPoolExecutor, att: AttemptRow, summary: SweepSummary,
                      total: int) -> Future[Grade]:
        """Grade a stored attempt in the pool, once per run (a resumed turn may be
        queued for grading at the start and needed by its cell's next turn)."""
        with self._lock:
            future = self._grading.get(att.id)
            if future is None:
                future = pool.submit(self._grade_and_store, att, summary, total)
                self._grading[att.id] = future
            return future

    def _grade_and_store(self, att: AttemptRow, summary: SweepSummary, total: int) -> Grade:
        exam = self._exam_by_id[att.key.exam]
        task = exam.task(att.key.task)
        grade = grade_attempt(exam, task, att, self.toolchain)
        self.store.save_grade(att.id, grade, go_version=self.toolchain.version)
        with self._lock:
            summary.graded += 1
            summary.outcomes[grade.outcome.value] += 1
            if grade.outcome is Outcome.GRADING_ERROR:
                self._errored.append((att, grade))
        self._emit(Event(EventKind.GRADED, grade.explanation, att.key, grade.outcome.value, total=total,
                         points=grade.points, max_points=grade.max_points))
        return grade

    def _retry_grading_errors(self, pool: ThreadPoolExecutor, summary: SweepSummary, total: int) -> None:
        """Grade each answer whose grading this run ended in a grading error once
        more (the machine may have been too slow a moment), and store the retry."""
        with self._lock:
            errored, self._errored = self._errored, []
        if not errored:
            return
        self._emit(Event(EventKind.INFO, f"{len(errored)} grading error(s) (ours, not the models'): retrying each "
                                         "once"))

        def again(item: tuple[AttemptRow, Grade]) -> None:
            att, first = item
            exam = self._exam_by_id[att.key.exam]
            grade = retry_grade(exam, exam.task(att.key.task), att, self.toolchain, first)
            self.store.save_grade(att.id, grade, go_version=self.toolchain.version, retry=True)
            with self._lock:
                summary.outcomes[first.outcome.value] -= 1
                summary.outcomes[grade.outcome.value] += 1
                summary.outcomes += Counter()       # drops the outcomes now counted 0
                summary.retried += 1
            self._emit(Event(EventKind.GRADED, grade.explanation, att.key, grade.outcome.value, total=total,
                             points=grade.points, max_points=grade.max_points))

        for f in [pool.submit(again, item) for item in errored]:
            f.result()


@dataclass
class _GenState:
    """What the generation workers share: ``consecutive_errors`` and ``skip_models``
    are guarded by ``Sweep._lock``, ``done`` by its own lock (``tick``), ``stop`` is
    an event."""

    total: int
    done: int = 0
    consecutive_errors: int = 0
    skip_models: set[str] = field(default_factory=set)
    stop: threading.Event = field(default_factory=threading.Event)
    _count: threading.Lock = field(default_factory=threading.Lock)

    def tick(self) -> int:
        """Count one more cell handled; returns the new count (for progress)."""
        with self._count:
            self.done += 1
            return self.done


def _run_workers(fn: Callable[[T], None], items: list[T], n: int, stop: threading.Event) -> None:
    """Run ``fn`` over ``items`` on ``n`` daemon threads (in the caller's thread
    when ``n == 1``), stopping early when ``stop`` is set. The first exception a
    worker raises stops the others and is re-raised here. Daemon threads, and a
    caller that waits in short joins, keep Ctrl-C working while requests are open."""
    if n <= 1:
        for item in items:
            if stop.is_set():
                return
            fn(item)
        return
    work: queue.SimpleQueue[T] = queue.SimpleQueue()
    for item in items:
        work.put(item)
    failures: list[BaseException] = []

    def worker() -> None:
        while not stop.is_set() and not failures:
            try:
                item = work.get_nowait()
            except queue.Empty:
                return
            try:
                fn(item)
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                failures.append(e)
                return

    threads = [threading.Thread(target=worker, name=f"generate-{i}", daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    except BaseException:   # Ctrl-C: no new requests; the open ones end with the process
        stop.set()
        raise
    if failures:
        raise failures[0]


def retry_wait(cfg: RunConfig, attempt_no: int, err: EndpointError) -> tuple[float, str]:
    """Seconds to wait before retry ``attempt_no`` and why, when it is not the plain
    back-off: the back-off doubles each retry, and a server's Retry-After (429,
    503) is honoured when longer, up to ``cfg.retry_after_cap_s``."""
    wait = cfg.retry_backoff_s * (2 ** (attempt_no - 1))
    asked = err.retry_after_s if isinstance(err, EndpointHTTPError) else None
    if asked is None or asked <= wait:
        return wait, ""
    if asked > cfg.retry_after_cap_s:
        return cfg.retry_after_cap_s, f" (the server's Retry-After {asked:.0f}s, capped)"
    return asked, " (the server's Retry-After)"


def check_graders(exams: list[Exam]) -> None:
    """Load each exam's grader and check it, so that a broken one (a checks.py that
    fails to import, or lacks CHECKS / run_checks, or whose points do not add up)
    is an ExamError before any request, not after every cell was generated."""
    from harness.grade.grading import grader_for

    for exam in exams:
        grader_for(exam).preflight(exam)


def _decode_tps(chat: ChatResult, wall_s: float) -> float | None:
    t = chat.timings or {}
    tps = t.get("predicted_per_second")
    if isinstance(tps, (int, float)) and tps > 0:
        return float(tps)
    n = (chat.usage or {}).get("completion_tokens")
    return n / wall_s if isinstance(n, int) and n > 0 and wall_s > 0 else None


def check_models(client: ChatClient, models: list[str], known: list[str] | tuple[str, ...] = ()) -> str | None:
    """Refuse, before the first request, a model id the endpoint does not serve.

    Served means: listed by ``GET /v1/models`` (ids and aliases), or the model a bare
    llama-server reports in ``GET /props`` (which answers any model name with the one
    it loaded, so a typo would be stored under the typo), or in ``known`` (a llama-swap
    config's ids and aliases, unlisted ones included). Raises ConfigError naming the
    unknown ids and what is served; returns a note when the endpoint tells nothing
    (no /v1/models and no /props), None when every id checked out."""
    from harness.generate import served

    try:
        listing: dict[str, Any] | None = client.model_listing()
    except EndpointUnreachable:
        raise
    except EndpointError:
        listing = None
    props = client.get_json("/props")
    if props is not None and "model_path" not in props and "default_generation_settings" not in props:
        props = None
    names = served.model_names(listing)
    if listing is None and props is None:
        return ("the endpoint lists no models (no /v1/models, no /props): the model ids cannot be checked "
                "before the first request")
    unknown = served.unknown_models(models, names, props, known)
    if unknown:
        offered = names or served.props_names(props)
        raise ConfigError(
            "the endpoint does not serve " + ", ".join(f"'{m}'{served.suggestion(m, offered)}" for m in unknown)
            + f"; it serves: {', '.join(offered) or 'nothing'}",
            hint="check the spelling with `sweep models --endpoint URL` (a llama-server answers any model name "
                 "with the one it loaded, so a typo would be stored under the typo)")
    return None
