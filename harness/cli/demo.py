"""`sweep demo`: the whole pipeline, HTTP included, against scripted models.

A local OpenAI-compatible server (``mock_server.llm.ScriptedLLM``, llama-server
shaped JSON) serves three *scripted* models, so a new user sees a real report from
real builds and real checks without any LLM:

* ``scripted-reference`` answers every task with the exam's reference solution;
* ``scripted-flawed`` answers with one of the task's known-bad variants, picked by
  seed (so its score varies across seeds, as a real model's does);
* ``scripted-rambler`` shows the failure classes a real sweep meets: its thinking
  eats the whole token budget (``truncated``), it answers in prose only
  (``no_code``), or it thinks first and then answers with the reference;
* ``scripted-repairer`` answers first with the reference plus a line that does not
  compile (``undefined: reslt``), and with the reference once the conversation
  holds feedback: the demo runs two turns (``--turns 2``), so the report's repair
  turns table shows it fail on turn 1 and score full marks on turn 2. The other
  models get a second turn too, answering it as they answer any prompt (the
  flawed one with the variant the turn's seed picks).

Answers are streamed, as ``sweep run --stream`` does, so the report's speed table
shows time to first token too.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import RunConfig
from harness.events import ProgressFn
from harness.exams.exam import Exam, Task, all_exams
from harness.generate.runner import SweepSummary
from harness.grade.validate import source_of
from mock_server.llm import Reply, ScriptedLLM, scripted_fence

MODELS = ("scripted-reference", "scripted-flawed", "scripted-rambler", "scripted-repairer")
TURNS = 2
# Appended to the reference by scripted-repairer's first answer: valid Go that does not compile.
BUILD_ERROR = "\nfunc repairLater() int {\n\treturn reslt\n}\n"


def _prompt_index(exams: list[Exam]) -> dict[str, tuple[Exam, Task]]:
    return {exam.render_prompt(task): (exam, task) for exam in exams for task in exam.tasks}


def _pick(seed: int, task: Task, n: int) -> int:
    h = hashlib.sha256(f"{seed}/{task.id}".encode()).digest()
    return h[0] % n


def scripted_models(exams: list[Exam]) -> dict[str, Callable[[dict[str, Any]], Reply]]:
    index = _prompt_index(exams)

    def lookup(body: dict[str, Any]) -> tuple[Exam, Task]:
        # the task's prompt is the first user message; later ones are repair-turn feedback
        prompt = next((m.get("content", "") for m in body.get("messages", []) if m.get("role") == "user"), "")
        if prompt not in index:
            raise KeyError("the demo has no script for this prompt")
        return index[prompt]

    def reference(body: dict[str, Any]) -> Reply:
        exam, task = lookup(body)
        return Reply(scripted_fence(source_of(exam, task.reference)))

    def flawed(body: dict[str, Any]) -> Reply:
        exam, task = lookup(body)
        if not task.variants:
            return reference(body)
        v = task.variants[_pick(int(body.get("seed", 0)), task, len(task.variants))]
        return Reply(scripted_fence(source_of(exam, v.file), prose="Sure, this should work:"))

    def rambler(body: dict[str, Any]) -> Reply:
        exam, task = lookup(body)
        kind = _pick(int(body.get("seed", 0)) + 1, task, 3)
        if kind == 0:  # thinking that never ends: the server cuts it at max_tokens
            return Reply(content="", reasoning_content="Let me think about this step by step. " * 20000)
        if kind == 1:
            return Reply("You could read the input, process it and print the result. "
                         "I'd suggest using the standard library for this.")
        return Reply(scripted_fence(source_of(exam, task.reference)),
                     reasoning_content="The task is clear; I will write the program.")

    def repairer(body: dict[str, Any]) -> Reply:
        exam, task = lookup(body)
        code = source_of(exam, task.reference)
        if not any(m.get("role") == "assistant" for m in body.get("messages", [])):
            return Reply(scripted_fence(code.rstrip("\n") + "\n" + BUILD_ERROR, prose="Here you go:"))
        return Reply(scripted_fence(code, prose="Sorry, a leftover line; fixed:"))

    return {"scripted-reference": reference, "scripted-flawed": flawed, "scripted-rambler": rambler,
            "scripted-repairer": repairer}


@dataclass(frozen=True)
class DemoResult:
    summary: SweepSummary
    report: str              # the markdown report (``harness.report.markdown``) of the demo's results


def run_demo(out_dir: Path | None = None, *, progress: ProgressFn | None = None,
             max_tokens: int = 4096) -> DemoResult:
    """Start the scripted endpoint, sweep every built-in exam through it with
    ``harness.api.run_sweep``, stop the endpoint, and return the summary and the
    report (the results stay in ``out_dir``; without one they are deleted)."""
    from harness import api, report
    from harness.wire import Sampling

    exams = all_exams()
    tmp = None
    if out_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="sweep-demo-"))
        out_dir = tmp
    try:
        with ScriptedLLM(scripted_models(exams)) as llm:
            cfg = RunConfig(endpoint=llm.url, models=MODELS, exams=tuple(e.id for e in exams),
                            out_dir=out_dir, sampling=Sampling(temperature=1.0, max_tokens=max_tokens),
                            retries=0, request_timeout_s=60, stream=True,   # streamed: the speed table shows TTFT
                            turns=TURNS)
            summary = api.run_sweep(cfg, progress=progress, command="sweep demo")
        return DemoResult(summary, report.markdown(report.load(out_dir)))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
