"""Every read query of the results store (``harness.store.db``), returning typed rows.

Writes stay in ``harness.store.db``; this module only reads, from anything with a
``query(sql, params)`` method (a ``Store``, read-only or not). Reports
(``harness.report``), ``sweep logs`` (``harness.report.logs``), ``sweep regrade``
(``harness.grade.regrade``) and the runner read the store through these functions only.

Two rules live here and nowhere else:

* the **current grader** of an exam version (:func:`current_graders`): the one its
  latest run recorded (``run_graders``), else, for stores written before
  ``m004_run_graders``, the grader of its newest grade;
* the **grade shown** for an attempt (:func:`attempts`): the one by the current
  grader when it exists, else the newest stored grade (``grade_current`` then says
  False).

:func:`attempts` reads attempts with their shown grade, the request that carries
their answer and the number of HTTP exchanges of their cell in one query, and the
checks of those grades in a second one: two queries however many attempts there are.
The current graders go in as one JSON parameter (SQLite's ``json_each``, built into
SQLite since 3.38 and into Python's own builds before), so a read-only store needs
no temporary table.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from harness.results import CellKey, CheckResult, Grade, Outcome


class Reader(Protocol):
    """What the queries need of a store: ``Store.query``."""

    def query(self, sql: str, params: tuple[Any, ...] = ...) -> list[sqlite3.Row]: ...


# --------------------------------------------------------------------------- typed rows


@dataclass(frozen=True)
class AttemptRow:
    """An attempt as the runner and grading need it (its answer read back)."""

    id: int
    key: CellKey
    gen_outcome: str
    finish_reason: str | None
    content: str | None
    reasoning_content: str | None
    extracted_code: str | None
    sampling_json: str
    error: str | None


@dataclass(frozen=True)
class GraderRecord:
    """The current grader of one exam version in a results directory."""

    exam: str
    exam_version: int
    grader_hash: str
    exam_dir: str | None      # where the run loaded the exam from; None when inferred from a grade
    run_id: int | None        # the run that recorded it; None when inferred from the newest grade


@dataclass(frozen=True)
class CheckRow:
    name: str
    status: str
    points: float
    max_points: float
    detail: str


@dataclass(frozen=True)
class GradeRow:
    id: int
    grader_hash: str
    outcome: str
    points: float
    max_points: float
    explanation: str
    details: dict[str, Any]            # details_json parsed ({} when it is not a JSON object)
    go_version: str | None
    graded_at: str
    duration_s: float | None
    checks: tuple[CheckRow, ...]       # in stored order


@dataclass(frozen=True)
class StoredAttempt:
    """One attempt with everything stored about it and its shown grade."""

    id: int
    run_id: int
    key: CellKey
    created_at: str
    sampling_json: str
    request_id: int | None
    gen_outcome: str
    finish_reason: str | None
    content: str | None                # read back from the raw response when not stored twice
    reasoning_content: str | None
    usage_json: str | None
    timings_json: str | None
    wall_s: float | None
    ttft_s: float | None
    extracted_code: str | None
    extraction_method: str | None
    extraction_note: str | None
    error: str | None
    request_url: str | None            # the attempt's request, else the cell's last one
    request_json: str | None
    http_status: int | None
    tries: int                         # HTTP exchanges of the cell, retries included
    current_grader: str | None         # of the exam version; None when unknown
    grade: GradeRow | None             # by the current grader, else the newest

    @property
    def grade_current(self) -> bool | None:
        """Whether the shown grade is the current grader's; None without a grade or
        a known current grader."""
        if self.grade is None or self.current_grader is None:
            return None
        return self.grade.grader_hash == self.current_grader


@dataclass(frozen=True)
class ServedRow:
    """What the server ran under a requested model id in one run (``model_props``)."""

    run_id: int
    model: str
    gguf: str | None
    quant: str | None
    size_bytes: int | None
    warnings: tuple[str, ...]


# --------------------------------------------------------------------------- helpers


def json_object(text: str | None) -> dict[str, Any]:
    """A stored JSON column as a dict; {} when empty, unreadable or not an object."""
    try:
        v = json.loads(text) if text else {}
    except ValueError:
        return {}
    return v if isinstance(v, dict) else {}


def _json_strings(text: str | None) -> tuple[str, ...]:
    try:
        v = json.loads(text) if text else []
    except ValueError:
        return ()
    return tuple(str(x) for x in v) if isinstance(v, list) else ()


def _answer(r: sqlite3.Row) -> tuple[str | None, str | None]:
    """(content, reasoning_content) of a row of attempts joined with its request
    (``req_url``, ``req_json``, ``req_raw``): as stored, or, when the attempt keeps
    them only in its request's raw response (content NULL with a request; attempts
    stored since issue 13), parsed from those bytes."""
    from harness.wire import stored_answer

    if r["content"] is not None or r["request_id"] is None or r["gen_outcome"] == "endpoint_error":
        return r["content"], r["reasoning_content"]
    parsed = None if r["req_raw"] is None else stored_answer(r["req_url"], r["req_json"], bytes(r["req_raw"]))
    return parsed if parsed is not None else (None, None)


# The request that carries an attempt's answer: its own, else the last of its cell.
_CELL = ("q.model = a.model AND q.exam = a.exam AND q.exam_version = a.exam_version AND q.task = a.task"
         " AND q.seed = a.seed AND q.turn = a.turn")
_WITH_REQUEST = (f"LEFT JOIN requests r ON r.id = COALESCE(a.request_id, (SELECT MAX(q.id) FROM requests q WHERE {_CELL}))")
_REQUEST_COLS = "r.url AS req_url, r.request_json AS req_json, r.http_status AS req_status, r.response_raw AS req_raw"
# Current graders passed as one JSON parameter: [[exam, version, hash], ...].
_CURRENT = ("cur(exam, exam_version, grader_hash) AS (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),"
            " json_extract(value, '$[2]') FROM json_each(?))")


def _current_param(hashes: Mapping[tuple[str, int], str]) -> str:
    return json.dumps([[str(e), int(v), str(h)] for (e, v), h in hashes.items()])


def _key(r: sqlite3.Row) -> CellKey:
    return CellKey(r["model"], r["exam"], r["exam_version"], r["task"], r["seed"], r["turn"])


def _attempt_row(r: sqlite3.Row) -> AttemptRow:
    content, reasoning = _answer(r)
    return AttemptRow(id=r["id"], key=_key(r),
                      gen_outcome=r["gen_outcome"], finish_reason=r["finish_reason"], content=content,
                      reasoning_content=reasoning, extracted_code=r["extracted_code"],
                      sampling_json=r["sampling_json"], error=r["error"])


# --------------------------------------------------------------------------- graders


def current_graders(db: Reader) -> dict[tuple[str, int], GraderRecord]:
    """The current grader of every exam version with stored grades or recorded
    runs, by (exam, exam_version): the one its latest run recorded, else (no run
    recorded one) the grader of its newest grade."""
    out: dict[tuple[str, int], GraderRecord] = {}
    for r in db.query("SELECT a.exam, a.exam_version, g.grader_hash FROM grades g"
                      " JOIN attempts a ON a.id = g.attempt_id ORDER BY g.id"):
        out[(r["exam"], r["exam_version"])] = GraderRecord(r["exam"], r["exam_version"], r["grader_hash"], None, None)
    if db.query("SELECT 1 FROM sqlite_master WHERE type='table' AND name='run_graders'"):
        for r in db.query("SELECT * FROM run_graders ORDER BY run_id"):
            out[(r["exam"], r["exam_version"])] = GraderRecord(r["exam"], r["exam_version"], r["grader_hash"],
                                                               r["exam_dir"], r["run_id"])
    return out


def current_hashes(db: Reader) -> dict[tuple[str, int], str]:
    """The hash of the current grader of every exam version (:func:`current_graders`)."""
    return {k: r.grader_hash for k, r in current_graders(db).items()}


# --------------------------------------------------------------------------- attempts


def attempts(db: Reader, current: Mapping[tuple[str, int], str] | None = None, *, model: str | None = None,
             exam: str | None = None, attempt: int | None = None, turn: int | None = None,
             newest_first: bool = False, limit: int | None = None) -> list[StoredAttempt]:
    """Attempts with their shown grade (the current grader's, else the newest) and
    its checks, in id order (``newest_first``: the reverse), optionally of one model,
    exam, attempt id or turn, at most ``limit``. ``current``: (exam, exam_version) ->
    grader hash; the store's current graders (:func:`current_hashes`) when None."""
    if current is None:
        current = current_hashes(db)
    where: list[str] = []
    params: list[Any] = [_current_param(current)]
    for column, value in (("a.id", attempt), ("a.model", model), ("a.exam", exam), ("a.turn", turn)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = (f"WITH {_CURRENT} SELECT a.*, cur.grader_hash AS cur_hash, {_REQUEST_COLS},"
           f" (SELECT COUNT(*) FROM requests q WHERE {_CELL}) AS tries,"
           " g.id AS g_id, g.grader_hash AS g_hash, g.outcome AS g_outcome, g.points AS g_points,"
           " g.max_points AS g_max_points, g.explanation AS g_explanation, g.details_json AS g_details,"
           " g.go_version AS g_go_version, g.graded_at AS g_graded_at, g.duration_s AS g_duration_s"
           " FROM attempts a"
           " LEFT JOIN cur ON cur.exam = a.exam AND cur.exam_version = a.exam_version"
           f" {_WITH_REQUEST}"
           " LEFT JOIN grades g ON g.id = COALESCE("
           "   (SELECT x.id FROM grades x WHERE x.attempt_id = a.id AND x.grader_hash = cur.grader_hash),"
           "   (SELECT MAX(x.id) FROM grades x WHERE x.attempt_id = a.id))"
           + (" WHERE " + " AND ".join(where) if where else "")
           + f" ORDER BY a.id {'DESC' if newest_first else 'ASC'}"
           + (" LIMIT ?" if limit is not None else ""))
    if limit is not None:
        params.append(limit)
    rows = db.query(sql, tuple(params))
    checks = _checks(db, [r["g_id"] for r in rows if r["g_id"] is not None])
    out = []
    for r in rows:
        grade = None if r["g_id"] is None else GradeRow(
            id=r["g_id"], grader_hash=r["g_hash"], outcome=r["g_outcome"], points=r["g_points"],
            max_points=r["g_max_points"], explanation=r["g_explanation"], details=json_object(r["g_details"]),
            go_version=r["g_go_version"], graded_at=r["g_graded_at"], duration_s=r["g_duration_s"],
            checks=checks.get(r["g_id"], ()))
        content, reasoning = _answer(r)
        out.append(StoredAttempt(
            id=r["id"], run_id=r["run_id"], key=_key(r),
            created_at=r["created_at"], sampling_json=r["sampling_json"], request_id=r["request_id"],
            gen_outcome=r["gen_outcome"], finish_reason=r["finish_reason"], content=content,
            reasoning_content=reasoning, usage_json=r["usage_json"], timings_json=r["timings_json"],
            wall_s=r["wall_s"], ttft_s=r["ttft_s"], extracted_code=r["extracted_code"],
            extraction_method=r["extraction_method"], extraction_note=r["extraction_note"], error=r["error"],
            request_url=r["req_url"], request_json=r["req_json"], http_status=r["req_status"], tries=r["tries"],
            current_grader=r["cur_hash"], grade=grade))
    return out


def _checks(db: Reader, grade_ids: list[int]) -> dict[int, tuple[CheckRow, ...]]:
    """The checks of these grades, in stored order, in one query."""
    if not grade_ids:
        return {}
    out: dict[int, list[CheckRow]] = {}
    for c in db.query("SELECT grade_id, name, status, points, max_points, detail FROM checks"
                      " WHERE grade_id IN (SELECT value FROM json_each(?)) ORDER BY grade_id, ord",
                      (json.dumps(grade_ids),)):
        out.setdefault(c["grade_id"], []).append(
            CheckRow(c["name"], c["status"], c["points"], c["max_points"], c["detail"]))
    return {k: tuple(v) for k, v in out.items()}


def attempt(db: Reader, key: CellKey) -> AttemptRow | None:
    """The attempt of a cell at ``key.turn``, if it has one."""
    rows = db.query(f"SELECT a.*, {_REQUEST_COLS} FROM attempts a {_WITH_REQUEST}"
                    " WHERE a.model=? AND a.exam=? AND a.exam_version=? AND a.task=? AND a.seed=? AND a.turn=?",
                    (key.model, key.exam, key.exam_version, key.task, key.seed, key.turn))
    return _attempt_row(rows[0]) if rows else None


def attempts_needing_grade(db: Reader, grader_hashes: Mapping[tuple[str, int], str]) -> list[AttemptRow]:
    """Attempts with an answer and no grade by the given grader of their exam version
    (exam versions not in ``grader_hashes`` are left out), in id order."""
    rows = db.query(f"WITH {_CURRENT} SELECT a.*, {_REQUEST_COLS} FROM attempts a"
                    " JOIN cur ON cur.exam = a.exam AND cur.exam_version = a.exam_version"
                    f" {_WITH_REQUEST}"
                    " WHERE a.gen_outcome != 'endpoint_error' AND NOT EXISTS"
                    "  (SELECT 1 FROM grades g WHERE g.attempt_id = a.id AND g.grader_hash = cur.grader_hash)"
                    " ORDER BY a.id", (_current_param(grader_hashes),))
    return [_attempt_row(r) for r in rows]


def parsed_answer(db: Reader, request_id: int) -> tuple[str, str | None] | None:
    """(content, reasoning_content) parsed from a request's raw response; None when
    it has none."""
    from harness.wire import stored_answer

    rows = db.query("SELECT url, request_json, response_raw FROM requests WHERE id=?", (request_id,))
    if not rows or rows[0]["response_raw"] is None:
        return None
    return stored_answer(rows[0]["url"], rows[0]["request_json"], bytes(rows[0]["response_raw"]))


def attempts_with_grading_error(db: Reader, grader_hashes: Mapping[tuple[str, int], str]) -> list[AttemptRow]:
    """Attempts whose grade by the given grader of their exam version is a grading
    error (ours, not the model's: ``sweep regrade`` grades them again)."""
    rows = db.query(f"WITH {_CURRENT} SELECT a.*, {_REQUEST_COLS} FROM attempts a"
                    " JOIN cur ON cur.exam = a.exam AND cur.exam_version = a.exam_version"
                    f" {_WITH_REQUEST}"
                    " WHERE EXISTS (SELECT 1 FROM grades g WHERE g.attempt_id = a.id"
                    "   AND g.grader_hash = cur.grader_hash AND g.outcome = 'grading_error')"
                    " ORDER BY a.id", (_current_param(grader_hashes),))
    return [_attempt_row(r) for r in rows]


def grade_of(db: Reader, attempt_id: int, grader_hash: str) -> Grade | None:
    """The grade of an attempt by one grader, with its checks."""
    rows = db.query("SELECT * FROM grades WHERE attempt_id=? AND grader_hash=?", (attempt_id, grader_hash))
    if not rows:
        return None
    g = rows[0]
    checks = tuple(CheckResult.from_json(dict(c))
                   for c in db.query("SELECT * FROM checks WHERE grade_id=? ORDER BY ord", (g["id"],)))
    return Grade(Outcome(g["outcome"]), g["points"], g["max_points"], checks, g["explanation"],
                 g["grader_hash"], g["duration_s"] or 0.0, json.loads(g["details_json"]))


# --------------------------------------------------------------------------- exam versions, servers


def stored_exam_versions(db: Reader) -> list[tuple[str, int]]:
    """Every (exam, exam_version) with stored attempts, sorted."""
    return sorted((r["exam"], r["exam_version"]) for r in db.query("SELECT DISTINCT exam, exam_version FROM attempts"))


def answers_per_exam_version(db: Reader) -> dict[tuple[str, int], int]:
    """Stored answers (attempts without an endpoint error) per (exam, exam_version)."""
    return {(r["exam"], r["exam_version"]): r["n"] for r in db.query(
        "SELECT exam, exam_version, COUNT(*) AS n FROM attempts WHERE gen_outcome != 'endpoint_error'"
        " GROUP BY exam, exam_version")}


def served(db: Reader) -> list[ServedRow]:
    """What the server ran under each model id, per run, oldest first; nothing for
    stores written before ``m006_served_identity``."""
    if "gguf" not in {r["name"] for r in db.query("PRAGMA table_info(model_props)")}:
        return []
    return [ServedRow(r["run_id"], r["model"], r["gguf"], r["quant"], r["size_bytes"], _json_strings(r["warnings_json"]))
            for r in db.query("SELECT run_id, model, gguf, quant, size_bytes, warnings_json FROM model_props ORDER BY id")]
