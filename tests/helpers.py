"""Test helpers: a tiny real exam and a sweep wired to a scripted endpoint."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from harness.config import RunConfig
from harness.exams.exam import Exam, load_exam
from harness.generate.client import ChatClient
from harness.generate.runner import Sweep, SweepSummary
from harness.store.db import Store
from harness.wire import Sampling

HELLO_GO = 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello, world") }\n'


def make_tiny_exam(root: Path, *, version: int = 1, expect: str = "hello, world\n") -> Exam:
    """A one-task stdio exam: print "hello, world". 3 points: build, runs, case."""
    d = root / "tiny"
    (d / "prompts").mkdir(parents=True, exist_ok=True)
    (d / "prompts" / "hello.md.j2").write_text("Write a Go program that prints `hello, world`.\n")
    (d / "reference.go").write_text(HELLO_GO)
    (d / "exam.toml").write_text(textwrap.dedent(f"""
        id = "tiny"
        title = "Tiny"
        version = {version}
        grader = "stdio"
        [limits]
        run_timeout_s = 2
        [[tasks]]
        id = "hello"
        prompt = "prompts/hello.md.j2"
        points = 3
        reference = "reference.go"
        [[tasks.cases]]
        name = "plain"
        expect_stdout = {json.dumps(expect)}
    """))
    return load_exam(d)


def write_checks_exam(root: Path, *, exam_id: str, checks_py: str, checks: dict[str, float],
                      reference: str = HELLO_GO, limits: str = "") -> Path:
    """A one-task exam graded by ``checks_py`` (``grader = "checks"``), its checks and
    points declared in the manifest; returns its directory (``load_exam`` it)."""
    d = root / exam_id
    (d / "prompts").mkdir(parents=True, exist_ok=True)
    (d / "prompts" / "task.md.j2").write_text("Write the Go program the checks want.\n")
    (d / "reference.go").write_text(reference)
    (d / "checks.py").write_text(checks_py)
    decl = ", ".join(f'{{ name = "{n}", points = {p:g} }}' for n, p in checks.items())
    (d / "exam.toml").write_text(
        f'id = "{exam_id}"\ntitle = "{exam_id}"\nversion = 1\ngrader = "checks"\n'
        + (f"[limits]\n{limits}\n" if limits else "")
        + f'[[tasks]]\nid = "t"\nprompt = "prompts/task.md.j2"\npoints = {sum(checks.values()):g}\n'
        + f'reference = "reference.go"\nchecks = [{decl}]\n')
    return d


def run_sweep(endpoint: str, out: Path, exam: Exam, toolchain, *, models=("m",), seeds=(1, 2),
              max_tokens: int = 4096, timeout_s: float = 10, retries: int = 1,
              max_endpoint_errors: int = 3, events: list | None = None, parallel: int = 1,
              stream: bool = False, turns: int = 1) -> SweepSummary:
    cfg = RunConfig(endpoint=endpoint, models=tuple(models), exams=(exam.id,), seeds=tuple(seeds),
                    sampling=Sampling(temperature=1.0, max_tokens=max_tokens), out_dir=out,
                    request_timeout_s=timeout_s, retries=retries, max_endpoint_errors=max_endpoint_errors,
                    retry_backoff_s=0.01, parallel=parallel, stream=stream, turns=turns)
    store = Store(out)
    try:
        with ChatClient(endpoint, timeout_s=timeout_s) as client:
            sweep = Sweep(cfg, store=store, exams=[exam], toolchain=toolchain, client=client,
                          progress=(events.append if events is not None else None), sleep=lambda s: None)
            return sweep.run()
    finally:
        store.close()
