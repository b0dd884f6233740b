"""Read queries (harness.store.queries): typed rows, the shown-grade rule, a fixed number of
queries whatever the number of attempts."""

from __future__ import annotations

import sqlite3
from typing import Any

from harness.results import CellKey, CheckResult, CheckStatus, Grade, Outcome
from harness.store import queries
from harness.store.db import Store
from tests.store_fixtures import HASH, Cell, write_store


class Counting:
    """A Reader that counts the queries it passes on."""

    def __init__(self, store: Store) -> None:
        self.store, self.sql = store, []

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        self.sql.append(sql)
        return self.store.query(sql, params)


def _grade(points: float, grader: str, *names: str) -> Grade:
    checks = tuple(CheckResult.passing(n, 1.0) if i < points else CheckResult(n, CheckStatus.FAIL, 0.0, 1.0, "no")
                   for i, n in enumerate(names))
    return Grade(Outcome.RAN, points, float(len(names)), checks, f"by {grader}", grader, 0.1, {"isolation": grader})


def test_attempts_read_in_two_queries_whatever_their_number(tmp_path):
    cells = [Cell(m, seed, task=t) for m in ("a", "b") for seed in (1, 2, 3) for t in ("t1", "t2")]
    write_store(tmp_path, cells)
    st = Store(tmp_path, readonly=True)
    try:
        db = Counting(st)
        rows = queries.attempts(db, {("fx", 1): HASH})
        assert len(rows) == 12 and len(db.sql) == 2      # attempts with their grade, then the checks
        assert all(r.grade is not None and r.grade_current for r in rows)
        assert [c.name for c in rows[0].grade.checks] == ["build", "runs", "case:a"]
        db.sql.clear()
        assert len(queries.attempts_needing_grade(db, {("fx", 1): "other"})) == 12 and len(db.sql) == 1
        assert queries.attempts_needing_grade(db, {("fx", 1): HASH}) == []
    finally:
        st.close()


def test_shown_grade_is_the_current_graders_else_the_newest(tmp_path):
    st = Store(tmp_path)
    run = st.start_run(command="t", config={}, tool_version="x", go_version=None, go_source=None, host={})
    k1, k2 = CellKey("m", "e", 1, "t", 1), CellKey("m", "e", 1, "t", 2)
    a1 = st.save_attempt(run, k1, sampling={}, request_id=None, gen_outcome="ok", content="x")
    a2 = st.save_attempt(run, k2, sampling={}, request_id=None, gen_outcome="ok", content="y")
    st.save_grade(a1, _grade(1, "old", "build", "runs"), go_version=None)
    st.save_grade(a1, _grade(2, "cur", "build", "runs"), go_version=None)
    st.save_grade(a1, _grade(0, "newer", "build", "runs"), go_version=None)
    st.save_grade(a2, _grade(1, "old", "build", "runs"), go_version=None)
    st.save_grade(a2, _grade(0, "older-than-nothing", "build"), go_version=None)
    st.record_graders(run, [("e", 1, "cur", "/exams/e")])
    try:
        r1, r2 = queries.attempts(st)                     # the store's own current grader: "cur"
        assert (r1.grade.grader_hash, r1.grade.points, r1.grade_current) == ("cur", 2, True)
        assert [c.status for c in r1.grade.checks] == ["pass", "pass"]
        assert (r2.grade.grader_hash, r2.grade_current) == ("older-than-nothing", False)   # the newest
        assert r2.grade.details == {"isolation": "older-than-nothing"}
        [only] = queries.attempts(st, {("e", 1): "old"}, attempt=a1)
        assert (only.grade.grader_hash, only.grade_current) == ("old", True)
        [unknown] = queries.attempts(st, {}, newest_first=True, limit=1)
        assert unknown.id == a2 and unknown.grade_current is None and unknown.current_grader is None
        assert [r.id for r in queries.attempts(st, newest_first=True)] == [a2, a1]
        assert queries.current_hashes(st) == {("e", 1): "cur"}
        assert queries.stored_exam_versions(st) == [("e", 1)]
        assert queries.answers_per_exam_version(st) == {("e", 1): 2}
    finally:
        st.close()


def test_attempt_with_its_request_and_tries(tmp_path):
    st = Store(tmp_path)
    run = st.start_run(command="t", config={}, tool_version="x", go_version=None, go_source=None, host={})
    key = CellKey("m", "e", 1, "t", 1)
    first = st.record_request(run, key, 1, "http://x/v1/chat/completions", {"try": 1})
    st.record_response(first, status=503, raw=b"busy", wall_s=0.1, error="HTTP 503")
    second = st.record_request(run, key, 2, "http://x/v1/chat/completions", {"try": 2})
    st.record_response(second, status=200, raw=b"{}", wall_s=0.1, error=None)
    st.save_attempt(run, key, sampling={}, request_id=second, gen_outcome="ok", content="kept")
    try:
        [a] = queries.attempts(st)
        assert (a.tries, a.http_status, a.request_json, a.content, a.grade) == (2, 200, '{"try": 2}', "kept", None)
        row = queries.attempt(st, key)
        assert row is not None and row.content == "kept"
        assert queries.attempt(st, CellKey("m", "e", 1, "t", 2)) is None
    finally:
        st.close()
