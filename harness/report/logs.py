"""Reading stored attempts back for auditing (``sweep logs``).

Each entry is one attempt as stored: the request sent, the answer, the extracted
code, and its grade (outcome, points, explanation, the checks that did not pass).
The grade shown is the one by the current grader of the exam when there is one,
else the newest stored grade (marked not current). The current grader is the one
the store's latest run recorded for the exam version (``harness.store.queries``, which
reads every attempt with its shown grade in two queries),
not the one installed now. Nothing is built or called.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from harness.results import CellKey
from harness.store import queries
from harness.store.db import Store
from harness.store.queries import StoredAttempt


@dataclass(frozen=True)
class LogEntry:
    attempt_id: int
    run_id: int
    created_at: str
    key: CellKey
    sampling: dict[str, Any]
    request: dict[str, Any] | None       # the body sent (last try)
    request_url: str | None
    tries: int                            # HTTP exchanges for this cell, retries included
    http_status: int | None
    gen_outcome: str
    finish_reason: str | None
    content: str | None
    reasoning_content: str | None
    extracted_code: str | None
    extraction_method: str | None
    extraction_note: str | None
    usage: dict[str, Any] | None
    timings: dict[str, Any] | None
    wall_s: float | None
    ttft_s: float | None                  # streamed: time to the first generated token
    error: str | None
    outcome: str                          # the grade's outcome, else the generation's
    points: float | None
    max_points: float | None
    explanation: str | None
    grader_hash: str | None
    grade_current: bool | None            # None when the current grader is unknown
    failing_checks: tuple[dict[str, Any], ...]
    # What the shown grade built, extracted again from the answer at grading time
    # ({"method", "note", "code"}, and since the extraction names its blocks "taken",
    # "dropped", "refused", and "files" for an answer in several files); None for
    # grades stored before grading extracted.
    graded_extraction: dict[str, Any] | None = None
    isolation: str | None = None        # the containment the grade ran under (docs/security.md)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["key"] = asdict(self.key)
        d["failing_checks"] = list(self.failing_checks)
        return d


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def read(store: Store, *, n: int = 10, model: str | None = None, exam: str | None = None,
         attempt: int | None = None, grader_hashes: dict[tuple[str, int], str] | None = None) -> list[LogEntry]:
    """The newest ``n`` attempts (optionally of one model / exam, or the one with id
    ``attempt``), newest first. ``grader_hashes`` overrides the store's current graders."""
    return [_entry(a) for a in queries.attempts(store, grader_hashes, model=model, exam=exam, attempt=attempt,
                                                newest_first=True, limit=n)]


def _entry(a: StoredAttempt) -> LogEntry:
    grade = a.grade
    failing = tuple({"name": c.name, "status": c.status, "points": c.points, "max_points": c.max_points,
                     "detail": c.detail} for c in grade.checks if c.status != "pass") if grade is not None else ()
    return LogEntry(
        attempt_id=a.id, run_id=a.run_id, created_at=a.created_at, key=a.key,
        sampling=_json(a.sampling_json) or {}, request=_json(a.request_json),
        request_url=a.request_url, tries=a.tries, http_status=a.http_status, gen_outcome=a.gen_outcome,
        finish_reason=a.finish_reason, content=a.content, reasoning_content=a.reasoning_content,
        extracted_code=a.extracted_code, extraction_method=a.extraction_method,
        extraction_note=a.extraction_note, usage=_json(a.usage_json), timings=_json(a.timings_json),
        wall_s=a.wall_s, ttft_s=a.ttft_s, error=a.error,
        outcome=grade.outcome if grade is not None else a.gen_outcome,
        points=grade.points if grade is not None else None,
        max_points=grade.max_points if grade is not None else None,
        explanation=grade.explanation if grade is not None else a.error,
        grader_hash=grade.grader_hash if grade is not None else None,
        grade_current=a.grade_current,
        failing_checks=failing,
        graded_extraction=_extraction(grade.details) if grade is not None else None,
        isolation=_isolation(grade.details) if grade is not None else None,
    )


def _isolation(details: dict[str, Any]) -> str | None:
    value = details.get("isolation")
    return str(value) if value else None


def _extraction(details: dict[str, Any]) -> dict[str, Any] | None:
    ex = details.get("extraction")
    return ex if isinstance(ex, dict) else None


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + ln for ln in text.rstrip("\n").split("\n"))


def _one_line(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def summary(e: LogEntry) -> str:
    """One attempt on one line: id, cell, outcome and points, tokens, speed, wall time,
    and the explanation (shortened): what ``sweep logs`` prints by default."""
    score = f" {e.points:g}/{e.max_points:g}" if e.points is not None and e.max_points is not None else ""
    stale = " (older grader)" if e.grade_current is False else ""
    facts = []
    tokens = (e.usage or {}).get("completion_tokens")
    if isinstance(tokens, int):
        facts.append(f"{tokens} tok")
    speed = (e.timings or {}).get("predicted_per_second")
    if isinstance(speed, (int, float)) and not isinstance(speed, bool):
        facts.append(f"{speed:.1f} tok/s")
    if e.wall_s is not None:
        facts.append(f"{e.wall_s:.1f}s")
    why = f": {_one_line(e.explanation, 90)}" if e.explanation else ""
    return (f"#{e.attempt_id} {e.created_at[:19]} {e.key.label()}: {e.outcome}{score}{stale}"
            + (f" [{', '.join(facts)}]" if facts else "") + why)


def render(e: LogEntry) -> str:
    """One attempt as readable text (``sweep logs --full``, ``--attempt ID``)."""
    lines = [f"== attempt {e.attempt_id} (run {e.run_id}, {e.created_at}): {e.key.label()}"]
    if e.points is not None:
        stale = "" if e.grade_current is not False else f" [grade by an older grader {e.grader_hash}]"
        where = f" (isolation {e.isolation})" if e.isolation else ""
        lines.append(f"outcome: {e.outcome}, {e.points:g}/{e.max_points:g}{stale}{where}")
    else:
        lines.append(f"outcome: {e.outcome} (not graded)")
    if e.explanation:
        lines.append(f"explanation: {e.explanation}")
    if e.failing_checks:
        lines.append("checks not passed:")
        for c in e.failing_checks:
            lines.append(f"    {c['status'].upper():<8} {c['name']:<22} {c['points']:g}/{c['max_points']:g}  "
                         f"{c['detail']}")
    lines.append("sampling: " + " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(e.sampling.items())))
    speed = (e.timings or {}).get("predicted_per_second")
    tokens = (e.usage or {}).get("completion_tokens")
    facts = [f"finish_reason {e.finish_reason}"]
    if tokens is not None:
        facts.append(f"{tokens} tokens")
    if isinstance(speed, (int, float)):
        facts.append(f"{speed:.1f} tok/s")
    if e.wall_s is not None:
        facts.append(f"{e.wall_s:.1f}s")
    if e.ttft_s is not None:
        facts.append(f"streamed, first token after {e.ttft_s:.2f}s")
    drafted = (e.timings or {}).get("draft_n")
    if isinstance(drafted, int) and drafted > 0:
        facts.append(f"draft {(e.timings or {}).get('draft_n_accepted', 0)}/{drafted} accepted")
    lines.append(f"answer: {', '.join(facts)}; {e.tries} HTTP exchange(s)"
                 + (f", last HTTP {e.http_status}" if e.http_status is not None else ""))
    if e.request is not None:
        lines.append(f"request: POST {e.request_url}")
        for m in e.request.get("messages", []):
            lines.append(f"  [{m.get('role')}]")
            lines.append(_indent(str(m.get("content", ""))))
    if e.reasoning_content:
        lines.append(f"reasoning: {len(e.reasoning_content)} characters (--json shows them)")
    lines.append("content:" if e.content else "content: (empty)")
    if e.content:
        lines.append(_indent(e.content))
    graded = e.graded_extraction or {}
    files = graded.get("files")
    files = files if isinstance(files, dict) and files else None     # an answer in several files
    if files is None or graded.get("code") != e.extracted_code:       # (else: the same files, shown below)
        if e.extracted_code is not None:
            lines.append(f"extracted code ({e.extraction_method}):")
            lines.append(_indent(e.extracted_code))
        elif e.extraction_note:
            lines.append(f"extracted code: none ({e.extraction_note})")
    if files is not None:
        # Each file under its name, as it was built.
        lines.append(f"graded files ({len(files)}), extracted by the grader ({graded.get('method')}; "
                     f"{graded.get('note')}):")
        for name, src in files.items():
            lines.append(f"  -- {name}")
            lines.append(_indent(str(src)))
    elif e.graded_extraction is not None and graded.get("code") != e.extracted_code:
        # The grader extracted differently than the generation did (the rules changed since).
        if graded.get("code") is None:
            lines.append(f"graded code: none, extracted again by the grader ({graded.get('note')})")
        else:
            lines.append(f"graded code, extracted again by the grader ({graded.get('method')}; {graded.get('note')}):")
            lines.append(_indent(str(graded["code"])))
    return "\n".join(lines) + "\n"
