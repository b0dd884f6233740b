"""The library's front door: what the `sweep` CLI, the demo and a notebook call.

Each function assembles one job from its parts (store, Go toolchain, endpoint
client, exams), runs it and returns a typed summary; it never prints. What happens
on the way arrives at the ``progress`` callback as typed ``Event``s (the CLI draws
them on stderr; ``None`` drops them). Errors are ``harness.errors.SweepError``s.

    from harness import api
    from harness.config import RunConfig

    cfg = RunConfig(endpoint="http://127.0.0.1:8080", models=("qwen3",), out_dir=Path("results"))
    summary = api.run_sweep(cfg, progress=print)
    api.regrade("results")

The public names are ``__all__``; docs/python-api.md documents each of them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from harness.config import RunConfig
from harness.errors import ConfigError
from harness.events import Event, EventKind, ProgressFn, ignore
from harness.generate.runner import SweepSummary
from harness.wire import Sampling

if TYPE_CHECKING:
    from harness.exams.exam import Exam, Task
    from harness.grade.validate import Verdict
    from harness.results import Grade
    from harness.runtime.gotool import Toolchain

__all__ = [
    "Event",
    "EventKind",
    "ExamValidation",
    "FileGrade",
    "ProgressFn",
    "RegradeSummary",
    "RunConfig",
    "Sampling",
    "SweepSummary",
    "grade_file",
    "list_models",
    "regrade",
    "run_sweep",
    "toolchain",
    "validate",
    "write_html_report",
]


@dataclass(frozen=True)
class RegradeSummary:
    graded: int          # stored answers graded now
    description: str     # one line: what was graded, what already had a current grade, what was left


@dataclass(frozen=True)
class ExamValidation:
    exam: Exam
    verdicts: list[Verdict]

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)


@dataclass(frozen=True)
class FileGrade:
    exam: Exam
    task: Task
    grade: Grade


def _builds_with_race(exam: Exam) -> bool:
    """Whether grading this exam also builds answers with -race (checks tasks with race)."""
    return exam.manifest.grader != "stdio" and any(t.race for t in exam.tasks)


def toolchain(exams: Sequence[Exam] | None = None, *, progress: ProgressFn | None = None) -> Toolchain:
    """The Go toolchain (``harness.runtime.gotool.resolve``), its standard library compiled
    once; the -race one too only when one of ``exams`` builds with -race (None: any
    exam might). The compilation's notes arrive as NOTICE events."""
    from harness.runtime import gotool

    emit = progress or ignore
    tc = gotool.resolve()
    race = tc.race_available() and (exams is None or any(_builds_with_race(e) for e in exams))
    if not tc.is_prewarmed(race=race):
        tc.prewarm(race=race, progress=lambda text: emit(Event(EventKind.NOTICE, text)))
    return tc


def run_sweep(cfg: RunConfig, *, progress: ProgressFn | None = None, command: str = "sweep run") -> SweepSummary:
    """Generate, store and grade every model x exam x task x seed of ``cfg`` into
    ``cfg.out_dir`` (resuming what is stored). Before the first request: the exams
    load, the toolchain is ready, and every model id is one the endpoint serves
    (else ConfigError). ``command`` is recorded with the run."""
    from harness.exams.exam import find_exam
    from harness.generate.client import ChatClient
    from harness.generate.runner import Sweep, check_models
    from harness.runtime import sandbox
    from harness.store.db import Store

    emit = progress or ignore
    exams = [find_exam(e) for e in cfg.exams]
    store = Store(cfg.out_dir)
    try:
        tc = toolchain(exams, progress=emit)
        emit(Event(EventKind.INFO, f"Go {tc.version} ({tc.source}: {tc.go}); results in {cfg.out_dir}"))
        emit(Event(EventKind.NOTICE, sandbox.current().describe()))   # the user must know what contains the code
        with ChatClient(cfg.endpoint, timeout_s=cfg.request_timeout_s, api_key=cfg.api_key,
                        max_response_bytes=cfg.max_response_mb * 1024 * 1024) as client:
            # A model id the endpoint does not serve is refused before the first request.
            note = check_models(client, list(cfg.models), known=list((cfg.llama_swap or {}).get("models") or ()))
            if note is not None:
                emit(Event(EventKind.WARNING, note))
            sweep = Sweep(cfg, store=store, exams=exams, toolchain=tc, client=client, progress=emit,
                          command=command)
            started = time.monotonic()
            summary = sweep.run()
            summary.elapsed_s = time.monotonic() - started
    finally:
        store.close()
    return summary


def regrade(directory: Path | str, *, progress: ProgressFn | None = None, workers: int = 2,
            command: str = "sweep regrade") -> RegradeSummary:
    """Grade every stored answer in ``directory`` that has no grade by its exam's
    current grader, without calling any model (``harness.grade.regrade``)."""
    from harness.grade.regrade import describe, regrade_store
    from harness.store.db import open_existing

    emit = progress or ignore
    store = open_existing(Path(directory), write=True)
    try:
        n = regrade_store(store, toolchain(progress=emit), workers=workers, progress=emit, command=command)
        return RegradeSummary(graded=n, description=describe(store, n))
    finally:
        store.close()


def validate(exams: Iterable[str] = (), *, workers: int = 2,
             progress: ProgressFn | None = None) -> Iterator[ExamValidation]:
    """Grade each exam's reference (must be full marks) and known-bad variants (must
    score exactly as declared): one ``ExamValidation`` per exam, as each finishes.
    ``exams``: ids or directories (empty: every exam found). Every exam loads (or
    ExamError) before the first is graded."""
    from harness.exams.exam import all_exams, find_exam
    from harness.grade.validate import validate_exam

    ids = list(exams)
    targets = [find_exam(e) for e in ids] if ids else all_exams()
    tc = toolchain(targets, progress=progress)

    def each() -> Iterator[ExamValidation]:
        for exam in targets:
            yield ExamValidation(exam, validate_exam(exam, tc, workers=workers))

    return each()


def grade_file(file: Path | str, exam: str, task: str, *, progress: ProgressFn | None = None) -> FileGrade:
    """Grade one file: a ``.go`` program as is, any other file as a whole model
    answer (its Go code extracted first, as for a real answer)."""
    from harness.exams.exam import find_exam
    from harness.grade.answers import extract_answer, extraction_record
    from harness.grade.grading import grade_source

    path = Path(file)
    ex = find_exam(exam)
    t = ex.task(task)
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".go":
        return FileGrade(ex, t, grade_source(ex, t, text, toolchain([ex], progress=progress)))
    found = extract_answer(ex, t, text)
    if found.code is None:
        raise ConfigError(f"{path} contains no Go code ({found.note})")
    g = grade_source(ex, t, found.files or found.code, toolchain([ex], progress=progress))
    return FileGrade(ex, t, replace(g, details={**g.details, "extraction": extraction_record(found)}))


def list_models(endpoint: str, *, api_key: str | None = None, timeout_s: float = 30) -> list[str]:
    """The model ids ``endpoint`` serves (GET /v1/models)."""
    from harness.generate.client import ChatClient

    with ChatClient(endpoint, timeout_s=timeout_s, api_key=api_key) as client:
        return client.list_models()


def write_html_report(directory: Path | str, out: Path | str | None = None) -> Path:
    """Write the self-contained HTML report (tables and plots) of ``directory`` to
    ``out`` (default ``DIRECTORY/report.html``); returns where."""
    from harness import report
    from harness.report import html as html_report

    directory = Path(directory)
    target = Path(out) if out is not None else directory / "report.html"
    page = html_report.render(report.load(directory), source=str(directory))
    try:
        target.write_text(page, encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot write {target}: {e.strerror}") from e
    return target
