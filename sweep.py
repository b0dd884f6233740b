"""The `sweep` command line: a thin click layer over the harness library.

Each command parses options, builds a config, calls one library function and
renders the result. Errors from the library arrive as SweepError and leave as one
line on stderr with a non-zero exit status.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from harness.errors import ConfigError, SweepError

# -- output helpers -------------------------------------------------------------


def _err(msg: str) -> None:
    click.echo(msg, err=True)


class Progress:
    """Renders library events as lines on stderr."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, event: Any) -> None:
        if event.kind == "error":
            _err(f"  ! {event.key.label() if event.key else ''}: {event.message}")
            return
        if self.quiet:
            return
        if event.kind == "info":
            _err(event.message)
        elif event.kind == "generated":
            _err(f"[{event.done}/{event.total}] {event.key.label()}: answer {event.outcome}")
        elif event.kind == "graded":
            _err(f"      graded {event.key.label()}: {event.outcome}, {event.message}")
        elif event.kind == "skip":
            _err(f"[{event.done}/{event.total}] {event.key.label()}: already stored, skipped")


def _toolchain(progress: bool = True):  # type: ignore[no-untyped-def]
    from harness import gotool

    tc = gotool.resolve()
    if not tc.is_prewarmed(race=tc.race_available()):
        tc.prewarm(race=tc.race_available(), progress=_err if progress else None)
    return tc


# -- the CLI --------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="exam-sweep", message="%(prog)s %(version)s")
def cli() -> None:
    """Grade local LLMs on Go exams by execution, across seeds.

    Typical use: `sweep run --endpoint http://127.0.0.1:8080 --model qwen3 --model gemma4`,
    then `sweep report results`. Try `sweep demo` first: it needs no model.
    """


def _sampling_options(f):  # type: ignore[no-untyped-def]
    opts = [
        click.option("--temperature", type=float, default=None, show_default="1.0",
                     help="Sampling temperature sent with every request."),
        click.option("--max-tokens", type=int, default=None, show_default="16384",
                     help="max_tokens sent with every request."),
        click.option("--top-p", type=float, default=None, help="top_p (not sent unless given)."),
        click.option("--top-k", type=int, default=None, help="top_k (not sent unless given)."),
        click.option("--min-p", type=float, default=None, help="min_p (not sent unless given)."),
        click.option("--chat-template-kwargs", default=None, metavar="JSON",
                     help='e.g. \'{"enable_thinking": false}\' (not sent unless given).'),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _sampling(temperature: float | None, max_tokens: int | None, top_p: float | None, top_k: int | None,
              min_p: float | None, chat_template_kwargs: str | None):  # type: ignore[no-untyped-def]
    from harness.client import Sampling

    kwargs = None
    if chat_template_kwargs:
        try:
            kwargs = json.loads(chat_template_kwargs)
        except ValueError as e:
            raise ConfigError(f"--chat-template-kwargs is not valid JSON: {e}") from e
        if not isinstance(kwargs, dict):
            raise ConfigError("--chat-template-kwargs must be a JSON object")
    if max_tokens is not None and max_tokens < 1:
        raise ConfigError("--max-tokens must be at least 1")
    return Sampling(
        temperature=1.0 if temperature is None else temperature,
        max_tokens=16384 if max_tokens is None else max_tokens,
        top_p=top_p, top_k=top_k, min_p=min_p, chat_template_kwargs=kwargs,
    )


@cli.command()
@click.option("--endpoint", default=None, metavar="URL",
              help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8080 (env SWEEP_ENDPOINT).")
@click.option("--model", "models", multiple=True, metavar="ID", help="Model id; repeat for several.")
@click.option("--exam", "exams", multiple=True, metavar="ID", help="Exam id or directory; repeat (default go-basics).")
@click.option("--seeds", default="42,123,456", show_default=True, help="Comma-separated seeds.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("results"), show_default=True,
              help="Results directory (resumable: rerun the same command to continue).")
@_sampling_options
@click.option("--request-timeout", type=float, default=600.0, show_default=True, help="Seconds per request.")
@click.option("--retries", type=int, default=3, show_default=True, help="Retries for 429/5xx/connection errors.")
@click.option("--max-endpoint-errors", type=int, default=3, show_default=True,
              help="Stop after this many consecutive failed cells.")
@click.option("--grading-workers", type=int, default=2, show_default=True, help="Answers graded in parallel.")
@click.option("--quiet", is_flag=True, help="Only errors and the final report.")
def run(endpoint: str | None, models: tuple[str, ...], exams: tuple[str, ...], seeds: str, out_dir: Path,
        temperature: float | None, max_tokens: int | None, top_p: float | None, top_k: int | None,
        min_p: float | None, chat_template_kwargs: str | None, request_timeout: float, retries: int,
        max_endpoint_errors: int, grading_workers: int, quiet: bool) -> None:
    """Generate, grade and store answers for every model x exam x task x seed."""
    from harness.config import RunConfig, env_or, parse_seeds

    endpoint = env_or(endpoint, "SWEEP_ENDPOINT")
    if not endpoint:
        raise ConfigError("no endpoint given", hint="pass --endpoint URL or set SWEEP_ENDPOINT")
    if not models:
        raise ConfigError("no model given", hint="pass --model ID (see `sweep models --endpoint URL`)")
    cfg = RunConfig(
        endpoint=endpoint, models=models, exams=exams or ("go-basics",), seeds=parse_seeds(seeds),
        sampling=_sampling(temperature, max_tokens, top_p, top_k, min_p, chat_template_kwargs),
        out_dir=out_dir, request_timeout_s=request_timeout, retries=retries,
        max_endpoint_errors=max_endpoint_errors, grading_workers=grading_workers,
        api_key=os.environ.get("SWEEP_API_KEY"),
    )
    summary = _run_and_report(cfg, quiet=quiet, command="sweep " + " ".join(sys.argv[1:]))
    if not summary.ok:
        sys.exit(1)


def _run_and_report(cfg: Any, *, quiet: bool, command: str) -> Any:
    from harness import report
    from harness.client import ChatClient
    from harness.exams import find_exam
    from harness.runner import Sweep, preflight
    from harness.store import Store

    exams = [find_exam(e) for e in cfg.exams]
    store = Store(cfg.out_dir)
    tc = _toolchain(progress=True)
    if not quiet:
        _err(f"Go {tc.version} ({tc.source}: {tc.go}); results in {cfg.out_dir}")
    with ChatClient(cfg.endpoint, timeout_s=cfg.request_timeout_s, api_key=cfg.api_key) as client:
        served = preflight(client)
        if served is not None and not quiet:
            missing = [m for m in cfg.models if m not in served]
            if missing:
                _err(f"note: {', '.join(missing)} not in the endpoint's /v1/models list (aliases may still work)")
        sweep = Sweep(cfg, store=store, exams=exams, toolchain=tc, client=client,
                      progress=Progress(quiet), command=command)
        try:
            summary = sweep.run()
        finally:
            store.close()
    click.echo(report.markdown(report.load(cfg.out_dir)))
    for e in summary.errors:
        _err(f"error: {e}")
    if summary.stopped_early:
        _err(f"error: {summary.stopped_early}; rerun the same command to resume")
    return summary


@cli.command(name="report")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["markdown", "csv", "json"]), default="markdown",
              show_default=True)
def report_cmd(directory: Path, fmt: str) -> None:
    """Print the per-exam tables of a results directory."""
    from harness import report

    df = report.load(directory)
    if fmt == "markdown":
        click.echo(report.markdown(df))
    elif fmt == "csv":
        flat = df.drop(columns=["checks", "sampling", "content", "reasoning_content", "extracted_code"],
                       errors="ignore")
        click.echo(flat.to_csv(index=False), nl=False)
    else:
        click.echo(df.to_json(orient="records", indent=2))


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--exam", "exam_id", required=True, help="Exam id or directory.")
@click.option("--task", "task_id", required=True, help="Task id within the exam.")
@click.option("--json", "as_json", is_flag=True, help="Print the grade as JSON.")
def grade(file: Path, exam_id: str, task_id: str, as_json: bool) -> None:
    """Grade one file (a .go program, or a whole model answer) and print each check."""
    from harness.exams import find_exam
    from harness.extract import extract_go
    from harness.grading import grade_source

    exam = find_exam(exam_id)
    task = exam.task(task_id)
    text = file.read_text(encoding="utf-8", errors="replace")
    if file.suffix != ".go":
        ex = extract_go(text)
        if ex.code is None:
            raise ConfigError(f"{file} contains no Go code ({ex.note})")
        text = ex.code
    g = grade_source(exam, task, text, _toolchain())
    if as_json:
        click.echo(json.dumps(g.to_json(), indent=2))
    else:
        click.echo(f"{exam.id} v{exam.version} / {task.id}: {g.points:g}/{g.max_points:g} ({g.outcome.value})")
        for c in g.checks:
            mark = {"pass": "PASS", "fail": "FAIL", "not_run": "SKIP", "error": "ERR "}[c.status.value]
            click.echo(f"  {mark} {c.name:<24} {c.points:g}/{c.max_points:g}  {c.detail}")
    if g.outcome.value == "grading_error":
        sys.exit(2)


@cli.group()
def exams() -> None:
    """List and validate exams."""


@exams.command(name="list")
@click.option("--json", "as_json", is_flag=True)
def exams_list(as_json: bool) -> None:
    """List the exams found (built-in and SWEEP_EXAMS_PATH)."""
    from harness.exams import all_exams

    found = all_exams()
    if as_json:
        click.echo(json.dumps([{"id": e.id, "version": e.version, "title": e.manifest.title,
                                "points": e.max_points, "tasks": [t.id for t in e.tasks],
                                "path": str(e.root)} for e in found], indent=2))
        return
    for e in found:
        click.echo(f"{e.id:<22} v{e.version}  /{e.max_points:g}  {len(e.tasks)} task(s)  {e.manifest.title}")


@exams.command(name="validate")
@click.argument("exam_ids", nargs=-1)
@click.option("--workers", type=int, default=2, show_default=True)
def exams_validate(exam_ids: tuple[str, ...], workers: int) -> None:
    """Grade every reference (must be full marks) and known-bad variant (must score
    exactly as declared). Exits non-zero on any mismatch."""
    from harness.exams import all_exams, find_exam
    from harness.validate import validate_exam

    targets = [find_exam(e) for e in exam_ids] if exam_ids else all_exams()
    tc = _toolchain()
    bad = 0
    for exam in targets:
        click.echo(f"{exam.id} v{exam.version} (grader {exam.grader_hash})")
        verdicts = validate_exam(exam, tc, workers=workers)
        for v in verdicts:
            click.echo(("  ok   " if v.ok else "  FAIL ") + v.describe())
        bad += sum(not v.ok for v in verdicts)
    if bad:
        _err(f"error: {bad} expectation(s) not met")
        sys.exit(1)
    click.echo("all expectations met")


@cli.command()
@click.option("--endpoint", default=None, metavar="URL", help="Base URL (env SWEEP_ENDPOINT).")
@click.option("--json", "as_json", is_flag=True)
def models(endpoint: str | None, as_json: bool) -> None:
    """List the models an endpoint serves (GET /v1/models)."""
    from harness.client import ChatClient
    from harness.config import env_or

    endpoint = env_or(endpoint, "SWEEP_ENDPOINT")
    if not endpoint:
        raise ConfigError("no endpoint given", hint="pass --endpoint URL or set SWEEP_ENDPOINT")
    with ChatClient(endpoint, timeout_s=30, api_key=os.environ.get("SWEEP_API_KEY")) as client:
        ids = client.list_models()
    click.echo(json.dumps(ids) if as_json else "\n".join(ids))


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--quiet", is_flag=True)
def regrade(directory: Path, quiet: bool) -> None:
    """Re-grade every stored answer with the current grader (no model calls)."""
    from harness import report
    from harness.regrade import regrade_store
    from harness.store import open_existing

    store = open_existing(directory)
    try:
        n = regrade_store(store, _toolchain(), progress=Progress(quiet))
    finally:
        store.close()
    _err(f"graded {n} stored answer(s) with the current grader")
    click.echo(report.markdown(report.load(directory)))


@cli.command()
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Keep the results here (default: a temporary directory).")
@click.option("--quiet", is_flag=True)
def demo(out_dir: Path | None, quiet: bool) -> None:
    """Run the whole pipeline against built-in *scripted* models (no LLM needed)."""
    from harness.demo import run_demo

    _err("This demo uses SCRIPTED models: a local fake endpoint answers with the exams' reference "
         "solutions and known-bad variants. No real model is involved.")
    summary = run_demo(out_dir, run=lambda cfg: _run_and_report(cfg, quiet=quiet, command="sweep demo"))
    if not summary.ok:
        sys.exit(1)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _err("sweep: interrupted; everything stored so far is kept: rerun the same command to resume")
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except SweepError as e:
        _err(f"sweep: error: {e.one_line()}")
        sys.exit(2)


if __name__ == "__main__":
    main()
