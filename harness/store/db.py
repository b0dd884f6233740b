"""The results store: one SQLite database per results directory, and every write to it.

Reads go through ``harness.store.queries`` (typed rows; the current-grader and
shown-grade rules); this module opens, checks, migrates and writes.

Store first, then act: a request row is written before the HTTP call, the raw
response is written before it is parsed, and every attempt and grade is one
transaction, so a crash or kill -9 at any point loses at most the request in flight.
The schema evolves through numbered migration functions (``m001_initial``, ...),
applied in order and recorded in ``_migrations``. docs/store.md describes it.

Cell key: (model, exam, exam_version, task, seed); an attempt's key adds its
``turn`` (added by ``m007_turns``: 1 for the first answer; with ``--turns N`` a cell
whose answer lacks full marks continues, one attempt per turn, each with its own
requests). A cell is *done* when its last stored turn has an answer (not an endpoint
error) and ends the conversation (full marks, a grade that is not the model's fault,
or the last turn); resuming fills in only missing turns. A grade is keyed by (attempt, grader_hash): a new grader never
overwrites old grades, it adds its own. A grade is a function of the stored answer
(``content``, ``reasoning_content``, ``finish_reason``) and the exam: grading
classifies and extracts the answer again (``harness.grade.answers``) and records the
extraction it built in the grade's ``details_json`` (``extraction``: method, note,
code). An attempt's ``gen_outcome``, ``extracted_code``, ``extraction_method`` and
``extraction_note`` are what the rules found when the answer arrived, kept for
display; after a change of the extraction rules a regrade may differ from them.

One writer at a time: a process that writes (``sweep run``, ``sweep regrade``) holds
an exclusive lock on ``sweep.lock`` in the results directory (``harness.store.lock``);
a second writer is refused at once, naming the holder's pid. A writer first checks
the database (``PRAGMA quick_check``): a damaged one is refused, never written to.
Readers (``report``, ``logs``, ``compare``) take no lock and open the file read-only
(``mode=ro``, plus ``immutable=1`` where the directory is not writable), so they
work while a sweep writes and on read-only media. ``runs.pid`` (added by
``m005_run_pid``) is the pid of the process that ran the run: the next run marks a
run its process left ``running`` (killed) as ``interrupted``, naming that pid.

One copy of an answer: ``attempts.content`` and ``reasoning_content`` are NULL when
the attempt's request holds the raw response and it parses to them (``harness.store.queries``
reads them back from ``requests.response_raw``); attempts stored before keep theirs.

``ttft_s`` (in ``attempts`` and ``requests``, added by ``m003_ttft``): seconds from
sending a streamed request to its first generated token; NULL when not streamed.

``run_graders`` (added by ``m004_run_graders``): the grader each run (``sweep run``,
``sweep regrade``) graded each exam version with, and the directory the exam was
loaded from. The *current* grader of an exam version in a results directory is the
one its latest run recorded; reports, ``sweep logs`` and ``sweep regrade`` read it
from here, never from the exams installed when reading. For exam versions no run
recorded (stores written before ``m004_run_graders``), it is the grader of their
newest grade.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.errors import DirectoryInUse, StoreError
from harness.results import CellKey, Grade
from harness.store import lock, queries
from harness.store.queries import AttemptRow as AttemptRow  # the typed rows live with the reads; importable here too

DB_NAME = "sweep.sqlite"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _script(db: sqlite3.Connection, sql: str) -> None:
    """Run DDL statements inside the caller's transaction (executescript would
    commit it)."""
    for stmt in sql.split(";"):
        if stmt.strip():
            db.execute(stmt)


def m001_initial(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL DEFAULT 'running',   -- running | done | failed | interrupted
            command TEXT NOT NULL,
            config_json TEXT NOT NULL,                -- the resolved config, no secrets
            tool_version TEXT NOT NULL,
            go_version TEXT,
            go_source TEXT,
            host_json TEXT NOT NULL,
            error TEXT
        );
        CREATE TABLE requests (                       -- every HTTP exchange, retries included
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            model TEXT NOT NULL, exam TEXT NOT NULL, exam_version INTEGER NOT NULL,
            task TEXT NOT NULL, seed INTEGER NOT NULL,
            try INTEGER NOT NULL,
            url TEXT NOT NULL,
            request_json TEXT NOT NULL,
            started_at TEXT NOT NULL,
            wall_s REAL,
            http_status INTEGER,
            response_raw BLOB,                        -- exactly the bytes received
            error TEXT                                -- one line, when the exchange failed
        );
        CREATE INDEX requests_cell ON requests(model, exam, exam_version, task, seed);
        CREATE TABLE attempts (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            model TEXT NOT NULL, exam TEXT NOT NULL, exam_version INTEGER NOT NULL,
            task TEXT NOT NULL, seed INTEGER NOT NULL,
            sampling_json TEXT NOT NULL,              -- every sampling parameter sent
            request_id INTEGER REFERENCES requests(id),
            created_at TEXT NOT NULL,
            gen_outcome TEXT NOT NULL,                -- ok | truncated | reasoning_only | empty | no_code | endpoint_error
            finish_reason TEXT,
            content TEXT,
            reasoning_content TEXT,
            usage_json TEXT,
            timings_json TEXT,
            wall_s REAL,
            extracted_code TEXT,
            extraction_method TEXT,
            extraction_note TEXT,
            error TEXT,
            UNIQUE (model, exam, exam_version, task, seed)
        );
        CREATE TABLE grades (
            id INTEGER PRIMARY KEY,
            attempt_id INTEGER NOT NULL REFERENCES attempts(id),
            grader_hash TEXT NOT NULL,
            outcome TEXT NOT NULL,
            points REAL NOT NULL,
            max_points REAL NOT NULL,
            explanation TEXT NOT NULL,
            details_json TEXT NOT NULL,
            go_version TEXT,
            graded_at TEXT NOT NULL,
            duration_s REAL,
            UNIQUE (attempt_id, grader_hash)
        );
        CREATE TABLE checks (
            grade_id INTEGER NOT NULL REFERENCES grades(id),
            ord INTEGER NOT NULL,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            points REAL NOT NULL,
            max_points REAL NOT NULL,
            detail TEXT NOT NULL,
            PRIMARY KEY (grade_id, name)
        );
        """
    )


def m002_model_props(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE model_props (                    -- what the server ran, once per model and run
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            model TEXT NOT NULL,                      -- the id the sweep requests
            fetched_at TEXT NOT NULL,
            url TEXT NOT NULL,                        -- e.g. <endpoint>/upstream/<model>/props
            n_ctx INTEGER,                            -- default_generation_settings.n_ctx (per slot)
            total_slots INTEGER,
            model_path TEXT,
            build_info TEXT,
            props_json TEXT NOT NULL                  -- the whole /props document
        );
        CREATE INDEX model_props_model ON model_props(model)
        """
    )


def m003_ttft(db: sqlite3.Connection) -> None:
    # Streamed answers: seconds from sending the request to the first generated token
    # (content or reasoning); NULL when not streamed. (A "--" comment cannot go in an
    # ADD COLUMN: SQLite splices the text into the stored CREATE TABLE.)
    _script(
        db,
        """
        ALTER TABLE attempts ADD COLUMN ttft_s REAL;
        ALTER TABLE requests ADD COLUMN ttft_s REAL
        """
    )


def m004_run_graders(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE run_graders (                    -- the grader a run graded an exam version with
            run_id INTEGER NOT NULL REFERENCES runs(id),
            exam TEXT NOT NULL, exam_version INTEGER NOT NULL,
            grader_hash TEXT NOT NULL,
            exam_dir TEXT NOT NULL,                   -- where the exam was loaded from (absolute)
            PRIMARY KEY (run_id, exam, exam_version)
        )
        """
    )


def m005_run_pid(db: sqlite3.Connection) -> None:
    # The pid of the process that ran each run: a run left ``running`` by a process
    # that was killed is marked ``interrupted`` by the next run, naming that pid.
    _script(db, "ALTER TABLE runs ADD COLUMN pid INTEGER")


def m006_served_identity(db: sqlite3.Connection) -> None:
    # What model a run really served under each requested id (harness.generate.served.identity):
    # the GGUF file name, its quantization, its size in bytes when the file was on this
    # machine, and the serving warnings (a missing or fallback chat template, reasoning
    # settings) as a JSON list of strings. One row per (run, model), with its /props.
    _script(
        db,
        """
        ALTER TABLE model_props ADD COLUMN gguf TEXT;
        ALTER TABLE model_props ADD COLUMN quant TEXT;
        ALTER TABLE model_props ADD COLUMN size_bytes INTEGER;
        ALTER TABLE model_props ADD COLUMN warnings_json TEXT
        """,
    )


def m007_turns(db: sqlite3.Connection) -> None:
    # Repair turns (``--turns N``): a cell's conversation continues after an answer
    # without full marks, one attempt per turn. ``turn`` is 1 for the first answer
    # (every attempt stored before this migration); the cell key of an attempt becomes
    # (model, exam, exam_version, task, seed, turn). SQLite cannot drop a UNIQUE
    # constraint, so attempts is rebuilt, as SQLite's "other kinds of table schema
    # changes" describes (foreign keys are off while migrating; same ids, so grades keep
    # pointing at their attempts, which foreign_key_check confirms). Requests say their
    # turn too.
    _script(
        db,
        """
        ALTER TABLE requests ADD COLUMN turn INTEGER NOT NULL DEFAULT 1;
        CREATE TABLE attempts_new (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            model TEXT NOT NULL, exam TEXT NOT NULL, exam_version INTEGER NOT NULL,
            task TEXT NOT NULL, seed INTEGER NOT NULL,
            sampling_json TEXT NOT NULL,
            request_id INTEGER REFERENCES requests(id),
            created_at TEXT NOT NULL,
            gen_outcome TEXT NOT NULL,
            finish_reason TEXT,
            content TEXT,
            reasoning_content TEXT,
            usage_json TEXT,
            timings_json TEXT,
            wall_s REAL,
            extracted_code TEXT,
            extraction_method TEXT,
            extraction_note TEXT,
            error TEXT,
            ttft_s REAL,
            turn INTEGER NOT NULL DEFAULT 1,          -- 1: the first answer, k: the answer to the (k-1)th feedback
            UNIQUE (model, exam, exam_version, task, seed, turn)
        );
        INSERT INTO attempts_new (id, run_id, model, exam, exam_version, task, seed, sampling_json, request_id,
            created_at, gen_outcome, finish_reason, content, reasoning_content, usage_json, timings_json, wall_s,
            extracted_code, extraction_method, extraction_note, error, ttft_s, turn)
          SELECT id, run_id, model, exam, exam_version, task, seed, sampling_json, request_id, created_at,
            gen_outcome, finish_reason, content, reasoning_content, usage_json, timings_json, wall_s,
            extracted_code, extraction_method, extraction_note, error, ttft_s, 1 FROM attempts;
        DROP TABLE attempts;
        ALTER TABLE attempts_new RENAME TO attempts
        """,
    )
    broken = db.execute("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise sqlite3.IntegrityError(f"m007_turns: {len(broken)} row(s) lost their parent")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [m001_initial, m002_model_props, m003_ttft,
                                                          m004_run_graders, m005_run_pid, m006_served_identity,
                                                          m007_turns]


class Store:
    """Thread-safe access to one results directory's database.

    A writer (the default) holds the directory's lock (``harness.store.lock``) while
    open, checks the database (``PRAGMA quick_check``) before anything writes to it,
    and applies pending migrations. ``readonly=True`` (``open_existing``) takes no
    lock and opens the file read-only (SQLite ``mode=ro``; ``immutable=1`` as well
    where the directory is not writable, e.g. read-only media), so reading works
    while a sweep writes, and on storage nobody can write to."""

    def __init__(self, directory: Path, *, readonly: bool = False) -> None:
        self.dir = Path(directory)
        self.path = self.dir / DB_NAME
        self.readonly = readonly
        self._lock = threading.RLock()
        self._dirlock: Path | None = None
        self._db: sqlite3.Connection | None = None
        self.pending_migrations: list[str] = []
        self.abandoned_runs: list[tuple[int, int | None]] = []   # (run id, pid) marked interrupted by start_run
        if readonly:
            self._open_readonly()
            return
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create results directory {self.dir}: {e.strerror}",
                             hint="choose a writable --out directory") from e
        self._dirlock = lock.acquire(self.dir)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30,
                                       isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._check_integrity()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()        # foreign keys off meanwhile: m007_turns rebuilds a parent table
            self._db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as e:
            self.close()
            if _disk_full(e, self.path):
                raise _full(self.path, e) from e
            raise StoreError(f"results database {self.path} is unusable: {_one_line(e)}",
                             hint="nothing was written to it; is it a sweep results directory? restore it from a "
                                  "backup, or move it away and pick another --out") from e
        except BaseException:
            self.close()
            raise

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: nothing left to report to
            pass

    def _check_integrity(self) -> None:
        """Refuse a damaged database before anything is written to it."""
        assert self._db is not None
        row = self._db.execute("PRAGMA quick_check(1)").fetchone()
        if row is None or row[0] != "ok":
            raise StoreError(f"results database {self.path} is corrupt (SQLite quick_check: "
                             f"{_one_line(row[0] if row else 'no answer')})",
                             hint="nothing was written to it; restore it from a backup, or move it away and "
                                  "rerun (which starts afresh)")

    def _open_readonly(self) -> None:
        """Open the database for reading only; ``immutable=1`` where the directory
        is not writable (SQLite then needs no -shm file and takes no lock). A store
        whose writer was killed keeps un-checkpointed rows in its -wal file: those
        are read when the -wal and -shm files are there (``mode=ro`` first)."""
        uri = self.path.resolve().as_uri()
        tries = [uri + "?mode=ro"]
        if not os.access(self.dir, os.W_OK):
            tries.append(uri + "?mode=ro&immutable=1")
        last: sqlite3.Error | None = None
        for target in tries:
            db = None
            try:
                db = sqlite3.connect(target, uri=True, check_same_thread=False, timeout=30, isolation_level=None)
                db.row_factory = sqlite3.Row
                names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                done = ({r[0] for r in db.execute("SELECT name FROM _migrations")} if "_migrations" in names
                        else set())
            except sqlite3.DatabaseError as e:
                if db is not None:
                    db.close()
                last = e
                continue
            self._db = db
            break
        else:
            raise StoreError(f"results database {self.path} cannot be read: {_one_line(last or 'unknown error')}",
                             hint="is it a sweep results directory, and readable by you?")
        self._check_known(done)
        self.pending_migrations = [m.__name__ for m in MIGRATIONS if m.__name__ not in done]

    def _check_known(self, done: set[str]) -> None:
        unknown = done - {m.__name__ for m in MIGRATIONS}
        if unknown:
            raise StoreError(
                f"{self.path} was written by a newer exam-sweep (migrations {sorted(unknown)})",
                hint="upgrade exam-sweep to read it")

    # -- plumbing -------------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db is None:
                raise StoreError(f"{self.path} is closed")
            if self.readonly:
                raise StoreError(f"{self.path} was opened read-only")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as e:
                self._rollback()
                if _disk_full(e, self.path):
                    raise _full(self.path, e) from e
                raise StoreError(f"writing to {self.path} failed: {e}",
                                 hint="check disk space and permissions of the results directory") from e
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        try:
            if self._db is not None:
                self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _migrate(self) -> None:
        # One transaction that reads what is applied and applies the rest: two
        # processes opening a fresh directory at once cannot both create a table.
        with self._tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
            done = {r[0] for r in db.execute("SELECT name FROM _migrations")}
            self._check_known(done)
            for m in MIGRATIONS:
                if m.__name__ not in done:
                    m(db)
                    db.execute("INSERT INTO _migrations VALUES (?, ?)", (m.__name__, _now()))

    def close(self) -> None:
        """Close the database and release the directory's lock; closing twice is fine."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            if self._dirlock is not None:
                lock.release(self._dirlock)
                self._dirlock = None

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            if self._db is None:
                raise StoreError(f"{self.path} is closed")
            try:
                return list(self._db.execute(sql, params))
            except sqlite3.DatabaseError as e:
                if isinstance(e, sqlite3.IntegrityError):
                    raise
                raise StoreError(f"reading {self.path} failed: {_one_line(e)}",
                                 hint="if the database is damaged, `sqlite3 FILE 'PRAGMA integrity_check'` "
                                      "says where; restore it from a backup") from e

    # -- runs -----------------------------------------------------------------
    def start_run(self, *, command: str, config: dict[str, Any], tool_version: str,
                  go_version: str | None, go_source: str | None, host: dict[str, Any]) -> int:
        """Record a new run (with this process's pid). Runs still ``running`` whose
        process is gone are marked ``interrupted`` (listed in ``abandoned_runs``):
        this process holds the directory's lock, so no other process is writing."""
        me = os.getpid()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO runs (started_at, command, config_json, tool_version, go_version, go_source, host_json,"
                " pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (_now(), command, json.dumps(config, sort_keys=True), tool_version, go_version, go_source,
                 json.dumps(host, sort_keys=True), me),
            )
            run_id = int(cur.lastrowid)  # type: ignore[arg-type]
            gone = [(int(r["id"]), r["pid"]) for r in db.execute(
                "SELECT id, pid FROM runs WHERE status='running' AND id != ? AND (pid IS NULL OR pid != ?)",
                (run_id, me))]
            for rid, pid in gone:
                db.execute("UPDATE runs SET status='interrupted', error=? WHERE id=?",
                           (f"its process (pid {pid if pid is not None else 'not recorded'}) ended without "
                            f"finishing the run (killed?); found by run {run_id} at {_now()}", rid))
        self.abandoned_runs = gone
        return run_id

    def finish_run(self, run_id: int, status: str, error: str | None = None) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET finished_at=?, status=?, error=? WHERE id=?",
                       (_now(), status, error, run_id))

    # -- graders of runs -----------------------------------------------------------
    def record_graders(self, run_id: int, graders: list[tuple[str, int, str, str]]) -> None:
        """Record the grader this run grades each exam version with:
        (exam, exam_version, grader_hash, exam_dir) tuples."""
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO run_graders (run_id, exam, exam_version, grader_hash, exam_dir)"
                " VALUES (?, ?, ?, ?, ?)", [(run_id, *g) for g in graders])

    # -- requests ---------------------------------------------------------------
    def record_request(self, run_id: int, key: CellKey, try_no: int, url: str, body: dict[str, Any]) -> int:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO requests (run_id, model, exam, exam_version, task, seed, turn, try, url, request_json,"
                " started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, key.model, key.exam, key.exam_version, key.task, key.seed, key.turn, try_no, url,
                 json.dumps(body), _now()),
            )
            return int(cur.lastrowid)  # type: ignore[arg-type]

    def record_response(self, request_id: int, *, status: int | None, raw: bytes | None,
                        wall_s: float, error: str | None, ttft_s: float | None = None) -> None:
        with self._tx() as db:
            db.execute("UPDATE requests SET http_status=?, response_raw=?, wall_s=?, error=?, ttft_s=? WHERE id=?",
                       (status, raw, wall_s, error, ttft_s, request_id))

    # -- model props --------------------------------------------------------------
    def save_model_props(self, run_id: int, model: str, url: str, props: dict[str, Any], *,
                         identity: dict[str, Any] | None = None, warnings: list[str] | None = None) -> int:
        """Store a llama-server /props document as received, with its key fields, the
        served model's identity (``harness.generate.served.identity``) and serving warnings."""
        ident = identity or {}
        settings = props.get("default_generation_settings")
        n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None

        def typed(value: Any, kind: type) -> Any:
            return value if isinstance(value, kind) and not isinstance(value, bool) else None

        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO model_props (run_id, model, fetched_at, url, n_ctx, total_slots, model_path,"
                " build_info, props_json, gguf, quant, size_bytes, warnings_json)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, model, _now(), url, typed(n_ctx, int), typed(props.get("total_slots"), int),
                 typed(props.get("model_path"), str), typed(props.get("build_info"), str),
                 json.dumps(props, sort_keys=True), typed(ident.get("gguf"), str), typed(ident.get("quant"), str),
                 typed(ident.get("size_bytes"), int), json.dumps(list(warnings or []))),
            )
            return int(cur.lastrowid)  # type: ignore[arg-type]

    # -- attempts ---------------------------------------------------------------
    def save_attempt(self, run_id: int, key: CellKey, *, sampling: dict[str, Any], request_id: int | None,
                     gen_outcome: str, finish_reason: str | None = None, content: str | None = None,
                     reasoning_content: str | None = None, usage: dict[str, Any] | None = None,
                     timings: dict[str, Any] | None = None, wall_s: float | None = None,
                     ttft_s: float | None = None, extracted_code: str | None = None, extraction_method: str | None = None,
                     extraction_note: str | None = None, error: str | None = None) -> int:
        """Insert the attempt of a cell. Only an endpoint_error attempt may be
        replaced (by a later retry); anything else already there is a conflict.
        One copy of an answer: when the raw response of ``request_id`` parses to the
        same content and reasoning, they are not stored again (NULL here; ``harness.store.queries``
        reads them back)."""
        if request_id is not None and content is not None and queries.parsed_answer(self, request_id) == (
                content, reasoning_content):
            content = reasoning_content = None
        with self._tx() as db:
            old = db.execute(
                "SELECT id, gen_outcome FROM attempts WHERE model=? AND exam=? AND exam_version=? AND task=? AND seed=?"
                " AND turn=?", (key.model, key.exam, key.exam_version, key.task, key.seed, key.turn)).fetchone()
            if old is not None:
                if old["gen_outcome"] != "endpoint_error":
                    raise StoreError(f"cell {key.label()} already has an answer; refusing to overwrite it")
                db.execute("DELETE FROM checks WHERE grade_id IN (SELECT id FROM grades WHERE attempt_id=?)",
                           (old["id"],))
                db.execute("DELETE FROM grades WHERE attempt_id=?", (old["id"],))
                db.execute("DELETE FROM attempts WHERE id=?", (old["id"],))
            cur = db.execute(
                "INSERT INTO attempts (run_id, model, exam, exam_version, task, seed, sampling_json, request_id,"
                " created_at, gen_outcome, finish_reason, content, reasoning_content, usage_json, timings_json,"
                " wall_s, extracted_code, extraction_method, extraction_note, error, ttft_s, turn)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, key.model, key.exam, key.exam_version, key.task, key.seed,
                 json.dumps(sampling, sort_keys=True), request_id, _now(), gen_outcome, finish_reason, content,
                 reasoning_content, None if usage is None else json.dumps(usage),
                 None if timings is None else json.dumps(timings), wall_s, extracted_code,
                 extraction_method, extraction_note, error, ttft_s, key.turn),
            )
            return int(cur.lastrowid)  # type: ignore[arg-type]

    # -- grades -----------------------------------------------------------------
    def save_grade(self, attempt_id: int, grade: Grade, *, go_version: str | None, retry: bool = False) -> int:
        """Store a grade; a second grade of one answer by one grader is refused (the
        first is kept), except ``retry``: the retry of a stored grading error (no grade
        of the model: ours) takes its place, and carries the first error in its
        details (``harness.grade.regrade.retry_grade``)."""
        with self._tx() as db:
            old = db.execute("SELECT id, outcome FROM grades WHERE attempt_id=? AND grader_hash=?",
                             (attempt_id, grade.grader_hash)).fetchone()
            if old is not None and retry and old["outcome"] == "grading_error":
                db.execute("DELETE FROM checks WHERE grade_id=?", (old["id"],))
                db.execute("DELETE FROM grades WHERE id=?", (old["id"],))
            elif old is not None:
                # Same answer, same grader: the grade is already stored. Keep the first.
                return int(old["id"])
            cur = db.execute(
                "INSERT INTO grades (attempt_id, grader_hash, outcome, points, max_points, explanation,"
                " details_json, go_version, graded_at, duration_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (attempt_id, grade.grader_hash, grade.outcome.value, grade.points, grade.max_points,
                 grade.explanation, json.dumps(grade.details, default=str), go_version, _now(), grade.duration_s),
            )
            gid = int(cur.lastrowid)  # type: ignore[arg-type]
            db.executemany(
                "INSERT INTO checks (grade_id, ord, name, status, points, max_points, detail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(gid, i, c.name, c.status.value, c.points, c.max_points, c.detail)
                 for i, c in enumerate(grade.checks)],
            )
            return gid


def _disk_full(e: sqlite3.Error, path: Path) -> bool:
    """SQLITE_FULL; or an I/O error (what a WAL database on a full disk often gets)
    while the disk holding ``path`` has less than 1 MiB free."""
    code = getattr(e, "sqlite_errorcode", None)
    if code == sqlite3.SQLITE_FULL or "disk is full" in str(e):
        return True
    if code is None or code & 0xFF != sqlite3.SQLITE_IOERR:
        return False
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1024 * 1024


def _full(path: Path, e: sqlite3.Error) -> StoreError:
    return StoreError(f"writing to {path} failed: the disk is full ({_one_line(e)})",
                      hint="free some space on the results directory's disk and rerun the same command: "
                           "what was stored before is kept")


def _one_line(e: object) -> str:
    return " ".join(str(e).split())


def open_existing(directory: Path, *, write: bool = False) -> Store:
    """Open a results directory that must already hold a database: read-only
    (no lock; works on read-only media), or with ``write`` as a writer (lock,
    integrity check). A store written by an older exam-sweep is upgraded first when
    its directory is writable and no other process writes to it."""
    directory = Path(directory)
    if not (directory / DB_NAME).is_file():
        raise StoreError(f"{directory} holds no sweep results ({DB_NAME} not found)",
                         hint="pass the --out directory of a sweep run")
    if write:
        return Store(directory)
    store = Store(directory, readonly=True)
    if not store.pending_migrations:
        return store
    pending = store.pending_migrations
    store.close()
    if not os.access(directory, os.W_OK):
        raise StoreError(f"{directory / DB_NAME} was written by an older exam-sweep and needs upgrading "
                         f"({', '.join(pending)}), but {directory} is read-only",
                         hint="copy the directory somewhere writable and read the copy")
    deadline = time.monotonic() + 10
    while True:
        try:
            Store(directory).close()       # applies the migrations
        except DirectoryInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)                # another process writes (and upgrades) it: look again
        store = Store(directory, readonly=True)
        if not store.pending_migrations:
            return store
        store.close()
