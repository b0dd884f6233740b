"""The one loader of an exam's Python code.

An exam directory is imported as a package of its own (a unique name per exam and
grader hash, registered in ``sys.modules``), so exam code is ordinary Python:
``from . import helpers`` works, and so do dataclasses and pickling, which look their
module up by name. Only the check driver (a child process, inside the sandbox) and
``sweep exams validate`` import exam code; the harness learns an exam's checks from
its manifest.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import re
import sys
import threading
import types

from harness.errors import ExamError
from harness.exams.exam import Exam

_LOCK = threading.Lock()


def package_name(exam: Exam) -> str:
    return f"_sweep_exam_{re.sub(r'[^0-9a-zA-Z_]', '_', exam.id)}_{exam.grader_hash}"


def load_module(exam: Exam, name: str) -> types.ModuleType:
    """Import ``<exam dir>/<name>.py`` as a module of the exam's package; an error in
    exam code is an ExamError naming the file."""
    pkg = package_name(exam)
    with _LOCK:
        if pkg not in sys.modules:
            spec = importlib.machinery.ModuleSpec(pkg, None, is_package=True)
            spec.submodule_search_locations = [str(exam.root)]
            module = importlib.util.module_from_spec(spec)
            module.__path__ = [str(exam.root)]
            sys.modules[pkg] = module
        try:
            return importlib.import_module(f"{pkg}.{name}")
        except ExamError:
            raise
        except Exception as e:  # noqa: BLE001 - any error in exam code is an exam error
            path = exam.root / f"{name}.py"
            raise ExamError(f"exam '{exam.id}': {path} fails to import: {type(e).__name__}: {e}") from e


def load_checks(exam: Exam) -> types.ModuleType:
    """The exam's ``checks.py``: it must define ``run_checks(ctx)``; a ``CHECKS``
    list, if it has one, must equal every task's checks declared in exam.toml."""
    module = load_module(exam, "checks")
    path = exam.root / "checks.py"
    if not callable(getattr(module, "run_checks", None)):
        raise ExamError(f"exam '{exam.id}': {path} must define run_checks(ctx)")
    declared = getattr(module, "CHECKS", None)
    if declared is not None:
        got = [(str(n), float(p)) for n, p in declared]
        for task in exam.tasks:
            want = task.declared_checks(exam.manifest.grader)
            if got != want:
                raise ExamError(f"exam '{exam.id}': CHECKS in {path} ({', '.join(n for n, _ in got)}) differ from "
                                f"task '{task.id}' checks in exam.toml ({', '.join(n for n, _ in want)})")
    return module
