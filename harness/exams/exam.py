"""Exams as data: finding, loading and validating exam directories.

An exam is a directory ``exams/<id>/`` with an ``exam.toml`` manifest (see
docs/adding-an-exam.md for every field), jinja2 prompt templates, per task a
reference solution and known-bad variants, and its checks: hidden stdin/args cases
in the manifest (``grader = "stdio"``), a ``checks.py`` module driving the built
binary (``grader = "checks"``), or ``*_test.go`` files compiled into the answer's
package (``grader = "gotest"``). Adding an exam needs no change to the core.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import jinja2
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.errors import ExamError

_HARNESS_DIR = Path(__file__).resolve().parents[1]

# The grader hash covers every module of ours that grading can load: the module the
# sweep and regrade grade through, an exam's Python files, and what they import.
GRADING_ENTRY = "harness.grade.answers"
# The repair-turn feedback (``--turns``) is part of an exam's grader identity too:
# this module, and the exam's feedback.j2 when it has one.
FEEDBACK_ENTRY = "harness.grade.feedback"
OWN_PACKAGES = ("harness",)
# The packages grading runs in: each is in every exam's grader hash whole (every
# module in the directory, imported or not), so a module added to one is covered
# the moment it exists, without a list of names to keep.
GRADING_PACKAGES = ("harness.grade", "harness.exams", "harness.runtime")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_Strict):
    build_timeout_s: float = Field(120.0, gt=0)      # each go build (and gotest's go test -c)
    run_timeout_s: float = Field(5.0, gt=0)          # per program run (stdio) / per check step; gotest: margin
    check_timeout_s: float = Field(60.0, gt=0)       # whole check driver (checks); -test.timeout (gotest)
    memory_mb: int = Field(1024, ge=512)             # address space of each process; Go needs >= ~1 GiB
    output_kb: int = Field(1024, ge=1)               # per stream
    grading_memory_mb: int = Field(2048, ge=256)     # every process of one grading together (memory cgroup)
    scratch_mb: int = Field(64, ge=1)                # each program's private writable directory, and its /tmp


def _relative(paths: list[str]) -> None:
    for p in paths:
        parts = Path(p).parts
        if not p or Path(p).is_absolute() or ".." in parts:
            raise ValueError(f"path {p!r} must be relative and stay inside the case's tree")


class Case(_Strict):
    """One hidden case for a stdio task: run the binary, compare stdout exactly
    (after trimming trailing whitespace on each line and trailing blank lines)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    args: list[str] = []
    stdin: str = ""
    expect_stdout: str
    # A directory tree created fresh for the case; "{tree}" in args is replaced by its path.
    files: dict[str, str] = {}        # relative path -> text content
    sized_files: dict[str, int] = {}  # relative path -> size in bytes (filled with 'x')
    dirs: list[str] = []              # empty directories
    symlinks: dict[str, str] = {}     # relative link path -> target (as written)

    @model_validator(mode="after")
    def _inside_tree(self) -> Case:
        _relative([*self.files, *self.sized_files, *self.dirs, *self.symlinks])
        return self

    @property
    def uses_tree(self) -> bool:
        return bool(self.files or self.sized_files or self.dirs or self.symlinks) or any(
            "{tree}" in a for a in self.args)


class Variant(_Strict):
    """A known-bad solution and exactly what it must score."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    file: str
    points: float = Field(ge=0)
    fail: list[str] = []              # names of the checks that must not pass; all others must
    why: str = Field(min_length=1)


class CheckDecl(_Strict):
    """One check of a ``checks`` or ``gotest`` exam's task, declared in exam.toml
    (``[[tasks.checks]]``); a gotest check is a test or subtest name (``TestX/sub``)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_:.\-]*(/[A-Za-z0-9_:.\-#]+)*$")
    points: float = Field(gt=0)


# The stdio grader's fixed checks: "build" and "runs" (1 point each), then one
# "case:<name>" per hidden case sharing the rest of the task's points.
STDIO_BUILD_POINTS = 1.0
STDIO_RUNS_POINTS = 1.0


class Task(_Strict):
    id: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    title: str = ""
    prompt: str                        # template path, relative to the exam directory
    points: float = Field(gt=0)
    reference: str                     # reference solution (.go or a full answer .md)
    starter: str | None = None         # starter code, given to the prompt template as `starter`
    race: bool = False                 # also build with -race (checks); gotest: test binary built with -race
    cases: list[Case] = []
    variants: list[Variant] = []
    baseline: Variant | None = None    # e.g. the unmodified starter, with its known score
    checks: list[CheckDecl] = []       # a checks/gotest exam's checks, in report order (the fixed denominator)
    tests: list[str] = []              # gotest: the exam's *_test.go files, compiled into the answer's package
    # gotest: standard packages the answer may import beyond the safe default
    # (harness.grade.gotest.SAFE_IMPORTS); a grade whose answer imports one is "self-reported".
    allowed_imports: list[str] = []

    def declared_checks(self, grader: str) -> list[tuple[str, float]]:
        """The task's checks and their points, in report order: what every grade of
        it has, whatever the answer (the fixed denominator)."""
        if grader == "stdio":
            per_case = (self.points - STDIO_BUILD_POINTS - STDIO_RUNS_POINTS) / len(self.cases)
            return [("build", STDIO_BUILD_POINTS), ("runs", STDIO_RUNS_POINTS)] + [
                (f"case:{c.name}", per_case) for c in self.cases]
        return [(c.name, float(c.points)) for c in self.checks]


class Manifest(_Strict):
    id: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    title: str = Field(min_length=1)
    version: int = Field(ge=1)
    description: str = ""
    grader: Literal["stdio", "checks", "gotest"]
    system_prompt: str | None = None
    limits: Limits = Limits()
    tasks: list[Task] = Field(min_length=1)

    @field_validator("tasks")
    @classmethod
    def _unique_tasks(cls, tasks: list[Task]) -> list[Task]:
        ids = [t.id for t in tasks]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"duplicate task id(s): {', '.join(sorted(dup))}")
        return tasks

    @model_validator(mode="after")
    def _checks_declared(self) -> Manifest:
        if self.grader != "stdio":
            for i, t in enumerate(self.tasks):
                if not t.checks:
                    raise ValueError(f"tasks[{i}].checks is empty (a {self.grader} task declares its checks and "
                                     "their points: [[tasks.checks]] name = ..., points = ...)")
                names = [c.name for c in t.checks]
                if len(set(names)) != len(names):
                    raise ValueError(f"tasks[{i}].checks has duplicate names")
                total = round(sum(c.points for c in t.checks), 6)
                if total != round(t.points, 6):
                    raise ValueError(f"tasks[{i}].checks add up to {total:g} points but the task has {t.points:g}")
        return self

    @model_validator(mode="after")
    def _gotest_needs_tests(self) -> Manifest:
        for i, t in enumerate(self.tasks):
            if self.grader != "gotest":
                if t.tests or t.allowed_imports:
                    raise ValueError(f"tasks[{i}].tests and allowed_imports are only for grader = \"gotest\"")
                continue
            if not t.tests:
                raise ValueError(f"tasks[{i}].tests is empty (a gotest task lists its *_test.go files)")
            base = [Path(f).name for f in t.tests]
            bad = [f for f in t.tests if not f.endswith("_test.go")]
            if bad:
                raise ValueError(f"tasks[{i}].tests: {bad[0]} is not a *_test.go file")
            if len(set(base)) != len(base):
                raise ValueError(f"tasks[{i}].tests: two files share a name")
            odd = [p for p in t.allowed_imports if not re.fullmatch(r"[a-z0-9]+(/[a-z0-9]+)*", p)]
            if odd:
                raise ValueError(f"tasks[{i}].allowed_imports: {odd[0]!r} is not a standard-library import path")
            _relative(t.tests)
        return self

    @model_validator(mode="after")
    def _stdio_needs_cases(self) -> Manifest:
        if self.grader == "stdio":
            for i, t in enumerate(self.tasks):
                if not t.cases:
                    raise ValueError(f"tasks[{i}].cases is empty (a stdio task needs hidden cases)")
                if t.points <= 2:
                    raise ValueError(f"tasks[{i}].points must be more than 2 (build 1 + runs 1 + cases)")
                names = [c.name for c in t.cases]
                if len(set(names)) != len(names):
                    raise ValueError(f"tasks[{i}].cases has duplicate names")
        return self


@dataclass(frozen=True)
class Exam:
    manifest: Manifest
    root: Path

    @property
    def id(self) -> str:
        return self.manifest.id

    @property
    def version(self) -> int:
        return self.manifest.version

    @property
    def tasks(self) -> list[Task]:
        return self.manifest.tasks

    @property
    def max_points(self) -> float:
        return sum(t.points for t in self.manifest.tasks)

    def task(self, task_id: str) -> Task:
        for t in self.manifest.tasks:
            if t.id == task_id:
                return t
        known = ", ".join(t.id for t in self.manifest.tasks)
        raise ExamError(f"exam '{self.id}' has no task '{task_id}'", hint=f"tasks: {known}")

    def path(self, rel: str) -> Path:
        return self.root / rel

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text(encoding="utf-8")

    def render_prompt(self, task: Task) -> str:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.root)),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
        )
        ctx = {"exam": self.manifest, "task": task,
               "starter": self.read(task.starter) if task.starter else None}
        try:
            return env.get_template(task.prompt).render(**ctx)
        except jinja2.TemplateError as e:
            raise ExamError(
                f"exam '{self.id}': prompt template {task.prompt} of task '{task.id}' fails: {e}",
                hint=f"fix {self.root / task.prompt}",
            ) from e

    def messages(self, task: Task) -> list[dict[str, str]]:
        msgs = []
        if self.manifest.system_prompt:
            msgs.append({"role": "system", "content": self.manifest.system_prompt})
        msgs.append({"role": "user", "content": self.render_prompt(task)})
        return msgs

    @cached_property
    def grader_hash(self) -> str:
        """sha256 of everything that decides a grade (12 hex digits): the manifest
        (cases, limits, points), the exam's Python files and ``*_test.go`` files (a
        gotest exam's tests), its repair-turn feedback template (``feedback.j2``),
        and every module of ours that grading can load (:func:`grading_modules`:
        the grading packages ``harness.grade``, ``harness.exams`` and
        ``harness.runtime`` whole, by directory, and whatever else the grading entry
        point and the exam's Python files import, transitively). Docs, prompts, the
        reference and variant sources, the store, reports, the endpoint client and
        the scripted LLM server do not grade answers and are left out."""
        h = hashlib.sha256()
        exam_py = []
        for p in sorted(self.root.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts and (
                    p.suffix == ".py" or p.name in ("exam.toml", "feedback.j2") or p.name.endswith("_test.go")):
                h.update(str(p.relative_to(self.root)).encode() + b"\0")
                h.update(p.read_bytes() + b"\0")
                if p.suffix == ".py":
                    exam_py.append(p)
        for name, f in sorted(grading_modules(exam_py).items()):
            h.update(name.encode() + b"\0" + f.read_bytes() + b"\0")
        return h.hexdigest()[:12]


def _module_file(name: str) -> Path | None:
    """The source file of one of our modules (a package: its ``__init__.py``)."""
    parts = name.split(".")
    if parts[0] not in OWN_PACKAGES:
        return None
    base = _HARNESS_DIR.parent.joinpath(*parts)
    for f in (base / "__init__.py", base.with_suffix(".py")):
        if f.is_file():
            return f
    return None


def _imported_names(path: Path, name: str | None) -> set[str]:
    """Every module name ``path`` may import (at the top or inside functions), with
    the packages above each; ``from a import b`` names ``a`` and ``a.b``."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                if name is None:
                    continue        # a file loaded by path has no package to be relative to
                pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                pkg = pkg[:len(pkg) - node.level + 1]
                base = ".".join([*pkg, *([base] if base else [])])
            if base:
                out.add(base)
            out.update(f"{base}.{a.name}" if base else a.name for a in node.names)
    return {".".join(n.split(".")[:i]) for n in out for i in range(1, n.count(".") + 2)}


def _package_modules(package: str) -> dict[str, Path]:
    """Every module in one of our packages' directories, subpackages included."""
    root = _HARNESS_DIR.parent.joinpath(*package.split("."))
    out: dict[str, Path] = {}
    for f in sorted(root.rglob("*.py")):
        if "__pycache__" in f.parts:
            continue
        rel = f.relative_to(_HARNESS_DIR.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts)] = f
    return out


def grading_modules(extra: Iterable[Path] = ()) -> dict[str, Path]:
    """Every module of ours that grading can load, by name: the grading packages
    (``GRADING_PACKAGES``) whole, by directory; then whatever the grading entry
    points (``GRADING_ENTRY``, ``FEEDBACK_ENTRY``) and the files in ``extra`` (an
    exam's Python files, loaded by path) import, and so on, transitively, read from
    their import statements, with the packages they are in (the shared core:
    ``harness.errors``, ``harness.results``, ...). No list of modules to keep: a
    module added to a grading package, or one that grading starts to import, is
    covered."""
    found: dict[str, Path] = {}
    for package in GRADING_PACKAGES:
        found.update(_package_modules(package))
    todo: list[tuple[str | None, Path]] = [(None, Path(p)) for p in extra]
    for entry_name in (GRADING_ENTRY, FEEDBACK_ENTRY):
        entry = _module_file(entry_name)
        if entry is not None:
            todo.append((entry_name, entry))
            found[entry_name] = entry
    seen: set[str] = set()
    while todo:
        name, path = todo.pop()
        for dep in sorted(_imported_names(path, name)):
            f = _module_file(dep)
            if f is not None and dep not in seen:
                seen.add(dep)
                found[dep] = f
                todo.append((dep, f))
    return found


def _loc(loc: tuple[object, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out + ": " if out else ""


def load_exam(root: Path) -> Exam:
    """Load and validate one exam directory; raise ExamError naming file and field."""
    root = Path(root)
    manifest_path = root / "exam.toml"
    label = root.name
    try:
        raw = tomllib.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ExamError(f"exam '{label}': no exam.toml in {root}") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ExamError(f"exam '{label}': {manifest_path} is not valid TOML: {e}") from e
    label = str(raw.get("id", label))
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        more = f" (+{e.error_count() - 1} more)" if e.error_count() > 1 else ""
        msg = err["msg"].removeprefix("Value error, ")
        raise ExamError(f"exam '{label}': {_loc(err['loc'])}{msg}{more} ({manifest_path})") from e
    exam = Exam(manifest, root)
    _check_files(exam, manifest_path)
    return exam


def _check_files(exam: Exam, manifest_path: Path) -> None:
    def need(rel: str | None, field: str) -> None:
        if rel is None:
            return
        p = exam.root / rel
        if not p.is_file():
            raise ExamError(f"exam '{exam.id}': {field}: file {rel} does not exist ({manifest_path})")

    for i, t in enumerate(exam.tasks):
        need(t.prompt, f"tasks[{i}].prompt")
        need(t.reference, f"tasks[{i}].reference")
        need(t.starter, f"tasks[{i}].starter")
        for j, v in enumerate(t.variants):
            need(v.file, f"tasks[{i}].variants[{j}].file")
            if v.points > t.points:
                raise ExamError(
                    f"exam '{exam.id}': tasks[{i}].variants[{j}].points {v.points} exceeds the "
                    f"task's {t.points} points ({manifest_path})"
                )
        if t.baseline is not None:
            need(t.baseline.file, f"tasks[{i}].baseline.file")
        for j, rel in enumerate(t.tests):
            need(rel, f"tasks[{i}].tests[{j}]")
        # every kind: a variant fails named checks, and its points are what the others give
        pts = dict(t.declared_checks(exam.manifest.grader))
        named = [(f"variants[{j}]", v) for j, v in enumerate(t.variants)]
        named += [("baseline", t.baseline)] if t.baseline is not None else []
        for where, v in named:
            unknown = sorted(set(v.fail) - set(pts))
            if unknown:
                raise ExamError(f"exam '{exam.id}': tasks[{i}].{where}.fail names unknown "
                                f"check(s) {', '.join(unknown)} ({manifest_path})")
            want = round(t.points - sum(pts[n] for n in set(v.fail)), 6)
            if round(v.points, 6) != want:
                raise ExamError(f"exam '{exam.id}': tasks[{i}].{where}.points is {v.points:g} but "
                                f"failing {', '.join(v.fail) or 'nothing'} leaves {want:g} ({manifest_path})")
    if exam.manifest.grader == "checks" and not (exam.root / "checks.py").is_file():
        raise ExamError(f"exam '{exam.id}': grader = \"checks\" needs checks.py in {exam.root}")


def builtin_exams_dir() -> Path:
    """The exams shipped with exam-sweep: ``exams/`` in a source checkout, or the
    copy packed into the wheel as ``harness/_exams``."""
    packed = _HARNESS_DIR / "_exams"
    if packed.is_dir():
        return packed
    return _HARNESS_DIR.parent / "exams"


def search_path(extra: list[Path] | None = None) -> list[Path]:
    dirs = list(extra or [])
    from harness.runtime import machine

    env = machine.read().exams_path
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs.append(builtin_exams_dir())
    return dirs


def exam_dirs(extra: list[Path] | None = None) -> dict[str, Path]:
    """Exam id (directory name) -> directory; earlier search-path entries win."""
    found: dict[str, Path] = {}
    for d in search_path(extra):
        if not d.is_dir():
            continue
        for sub in sorted(d.iterdir()):
            if (sub / "exam.toml").is_file() and sub.name not in found:
                found[sub.name] = sub
    return found


def find_exam(exam_id: str, extra: list[Path] | None = None) -> Exam:
    p = Path(exam_id)
    if (p / "exam.toml").is_file():
        return load_exam(p)
    dirs = exam_dirs(extra)
    if exam_id not in dirs:
        known = ", ".join(sorted(dirs)) or "none"
        raise ExamError(f"unknown exam '{exam_id}'", hint=f"known exams: {known}; or pass an exam directory")
    return load_exam(dirs[exam_id])


def all_exams(extra: list[Path] | None = None) -> list[Exam]:
    return [load_exam(p) for p in exam_dirs(extra).values()]
