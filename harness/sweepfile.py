"""The sweep file (TOML) and the resolution of a run's config.

A sweep file names what to run, so a long sweep is one reviewable file instead of a
long command line (docs/configuration.md has the reference):

    endpoint = "http://127.0.0.1:8080"
    models = ["qwen3-30b-q4", "gemma-4-26b"]     # or "all": every model /v1/models lists
    exams = ["go-basics"]
    seeds = [42, 123, 456]

    [sampling]                                   # every model, unless its profile says otherwise
    temperature = 1.0
    max_tokens = 16384

    [profiles.qwen3-30b-q4]                      # per model: only what differs
    temperature = 0.7
    chat_template_kwargs = { enable_thinking = false }

``resolve()`` turns command-line values, the environment and the file into the one
frozen ``RunConfig``: flag > environment variable > file > default, setting by
setting; for sampling, flag > the model's profile > ``[sampling]`` > default.
Sampling has no environment variables on purpose: a forgotten ``export`` must not
change what is sent. Relative paths in a file are relative to the file.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.client import Sampling
from harness.config import DEFAULT_EXAMS, DEFAULT_SEEDS, RunConfig, model_id_problem, parse_seeds, seed_problem
from harness.errors import ConfigError

DEFAULT_TEMPERATURE = 1.0
DEFAULT_MAX_TOKENS = 16384
SAMPLING_FIELDS = ("temperature", "max_tokens", "top_p", "top_k", "min_p", "chat_template_kwargs")
ALL_MODELS = "all"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SamplingSpec(_Strict):
    """Sampling parameters as written in a file or on the command line; a field
    left out inherits from the next layer."""

    temperature: float | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0)
    min_p: float | None = Field(None, ge=0, le=1)
    chat_template_kwargs: dict[str, Any] | None = None

    def given(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in SAMPLING_FIELDS if getattr(self, k) is not None}


class SweepFile(_Strict):
    endpoint: str | None = None
    models: list[str] | Literal["all"] | None = None
    exams: list[str] | None = None
    seeds: list[int] | None = None
    out: str | None = None
    llama_swap_config: str | None = None
    unload_between_models: bool | None = None
    request_timeout_s: float | None = Field(None, gt=0)
    retries: int | None = Field(None, ge=0)
    max_endpoint_errors: int | None = Field(None, ge=1)
    grading_workers: int | None = Field(None, ge=1)
    parallel: int | None = Field(None, ge=1)
    stream: bool | None = None
    sampling: SamplingSpec = SamplingSpec()
    profiles: dict[str, SamplingSpec] = {}

    @field_validator("models", mode="before")
    @classmethod
    def _models_shape(cls, v: Any) -> Any:
        if v is not None and v != ALL_MODELS and not isinstance(v, list):
            raise ValueError('must be a list of model ids, or "all"')
        return v

    @field_validator("models")
    @classmethod
    def _models(cls, v: list[str] | str | None) -> list[str] | str | None:
        if isinstance(v, list):
            if not v:
                raise ValueError('is empty (list model ids, or write models = "all")')
            dup = sorted({m for m in v if v.count(m) > 1})
            if dup:
                raise ValueError(f"repeats {', '.join(dup)}")
            if ALL_MODELS in v:
                raise ValueError('"all" stands alone: models = "all"')
            for m in v:
                if (why := model_id_problem(m)) is not None:
                    raise ValueError(why)
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int] | None) -> list[int] | None:
        if v is not None:
            if not v:
                raise ValueError("is empty")
            if len(set(v)) != len(v):
                raise ValueError("repeats a seed")
            for seed in v:
                if (why := seed_problem(seed)) is not None:
                    raise ValueError(why)
        return v

    @field_validator("exams")
    @classmethod
    def _exams(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError("is empty")
        return v

    @model_validator(mode="after")
    def _profiles_name_models(self) -> SweepFile:
        if isinstance(self.models, list):
            unknown = sorted(set(self.profiles) - set(self.models))
            if unknown:
                raise ValueError(f"profiles.{unknown[0]} names a model that is not in models "
                                 f"({', '.join(self.models)})")
        return self


def _loc(loc: tuple[object, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def load(path: Path | str) -> SweepFile:
    """Read and validate a sweep file; a missing, corrupt or invalid file is a
    ConfigError naming the file and the field, on one line."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"sweep file {path} does not exist") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"sweep file {path} cannot be read: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"sweep file {path} is not valid TOML: {e}") from e
    try:
        return SweepFile.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        more = f" (+{e.error_count() - 1} more)" if e.error_count() > 1 else ""
        msg = err["msg"].removeprefix("Value error, ")
        where = _loc(err["loc"])
        # pydantic names the union member that failed ("models.list[str]"); users wrote "models"
        where = where.replace(".list[str]", "").replace(".literal['all']", "")
        if err["type"] == "extra_forbidden":
            msg = "unknown setting (see docs/configuration.md)"
        raise ConfigError(f"sweep file {path}: {where + ': ' if where else ''}{msg}{more}") from e


# -- resolution ------------------------------------------------------------------------


@dataclass(frozen=True)
class Flags:
    """Values given on the command line; ``None`` (or empty) means: not given."""

    endpoint: str | None = None
    models: tuple[str, ...] = ()
    exams: tuple[str, ...] = ()
    seeds: str | None = None
    out_dir: Path | None = None
    request_timeout_s: float | None = None
    retries: int | None = None
    max_endpoint_errors: int | None = None
    grading_workers: int | None = None
    parallel: int | None = None
    stream: bool | None = None
    unload_between_models: bool | None = None
    llama_swap_config: Path | None = None
    sampling: SamplingSpec = SamplingSpec()


@dataclass
class Resolution:
    config: RunConfig
    warnings: list[str] = field(default_factory=list)   # say before the sweep starts


def sampling_from_flags(*, temperature: float | None, max_tokens: int | None, top_p: float | None,
                        top_k: int | None, min_p: float | None, chat_template_kwargs: str | None) -> SamplingSpec:
    """Validate sampling flags; errors name the flag."""
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
    try:
        return SamplingSpec(temperature=temperature, max_tokens=max_tokens, top_p=top_p, top_k=top_k,
                            min_p=min_p, chat_template_kwargs=kwargs)
    except ValidationError as e:
        err = e.errors()[0]
        flag = "--" + str(err["loc"][0]).replace("_", "-")
        raise ConfigError(f"{flag}: {err['msg']}") from e


_ENV = {
    "endpoint": "SWEEP_ENDPOINT",
    "models": "SWEEP_MODELS",
    "exams": "SWEEP_EXAMS",
    "seeds": "SWEEP_SEEDS",
    "out_dir": "SWEEP_OUT",
    "request_timeout_s": "SWEEP_REQUEST_TIMEOUT",
    "retries": "SWEEP_RETRIES",
    "max_endpoint_errors": "SWEEP_MAX_ENDPOINT_ERRORS",
    "grading_workers": "SWEEP_GRADING_WORKERS",
    "parallel": "SWEEP_PARALLEL",
    "stream": "SWEEP_STREAM",
    "unload_between_models": "SWEEP_UNLOAD_BETWEEN_MODELS",
    "llama_swap_config": "SWEEP_LLAMA_SWAP_CONFIG",
}
CONFIG_ENV = "SWEEP_CONFIG"


def _env_value(name: str, text: str, kind: type) -> Any:
    try:
        if kind is bool:
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        return kind(text)
    except ValueError as e:
        raise ConfigError(f"environment variable {name}={text!r} is not a valid {kind.__name__}") from e


def resolve(
    flags: Flags,
    *,
    config_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    list_models: Callable[[str], list[str]] | None = None,
    api_key: str | None = None,
) -> Resolution:
    """The run's config: flag > environment > sweep file > default.

    ``config_path`` (else ``$SWEEP_CONFIG``) is the sweep file, if any.
    ``list_models(endpoint)`` lists the endpoint's models for ``models = "all"``
    (default: GET /v1/models)."""
    env = os.environ if env is None else env
    config_path = _config_path(config_path, env)
    sf = load(config_path) if config_path is not None else SweepFile()
    base = config_path.parent if config_path is not None else Path(".")
    sources: dict[str, str] = {}

    def pick(name: str, flag: Any, from_file: Any, default: Any, kind: type = str) -> Any:
        value, sources[name] = _pick(name, flag, from_file, default, kind, env)
        return value

    def rel(p: str | None) -> Path | None:
        if p is None:
            return None
        q = Path(p).expanduser()
        return q if q.is_absolute() else base / q

    endpoint = pick("endpoint", flags.endpoint, sf.endpoint, None)
    if not endpoint:
        raise ConfigError("no endpoint given", hint="pass --endpoint URL, set SWEEP_ENDPOINT, or write endpoint = "
                                                    "\"URL\" in the sweep file")
    models_value = pick("models", flags.models or None, sf.models, None)
    if isinstance(models_value, str):   # from the environment, comma-separated, or "all"
        models_value = [m.strip() for m in models_value.split(",") if m.strip()]
        if models_value == [ALL_MODELS]:
            models_value = ALL_MODELS
    if not models_value:
        raise ConfigError("no model given", hint="pass --model ID (or --model all; see `sweep models --endpoint "
                                                 "URL`)")
    if models_value != ALL_MODELS and ALL_MODELS in models_value:
        if len(models_value) > 1:
            raise ConfigError("--model all stands alone", hint="drop the other --model values")
        models_value = ALL_MODELS
    if models_value == ALL_MODELS:
        lister = list_models or _list_models_fn(api_key)
        models = tuple(lister(endpoint))
        if not models:
            raise ConfigError(f"{endpoint} lists no models (GET /v1/models)", hint="pass --model ID explicitly")
    else:
        models = tuple(models_value)
        dup = sorted({m for m in models if models.count(m) > 1})
        if dup:
            raise ConfigError(f"model {dup[0]} is given twice")
    for m in models:
        if (why := model_id_problem(m)) is not None:
            where = "--model" if sources["models"] == "flag" else f"models ({sources['models']})"
            if models_value == ALL_MODELS:
                where = f"{endpoint}/v1/models"
            raise ConfigError(f"{where}: {why}", hint="a model id is sent as is: give the exact id "
                                                      "`sweep models --endpoint URL` lists")

    exams_value = pick("exams", flags.exams or None, sf.exams, None)
    if isinstance(exams_value, str):
        exams_value = [e.strip() for e in exams_value.split(",") if e.strip()]
    exams: tuple[str, ...]
    if exams_value is None:
        exams = DEFAULT_EXAMS
    elif sources["exams"] == "file":
        exams = tuple(_exam_ref(e, base) for e in exams_value)
    else:
        exams = tuple(exams_value)

    seeds_value = pick("seeds", flags.seeds, sf.seeds, None)
    seeds: tuple[int, ...]
    if seeds_value is None:
        seeds = DEFAULT_SEEDS
    elif isinstance(seeds_value, list):
        seeds = tuple(seeds_value)
    else:
        seeds = parse_seeds(seeds_value)

    out_flag = flags.out_dir
    out_dir = pick("out_dir", out_flag, rel(sf.out), Path("results"))
    out_dir = Path(out_dir)
    request_timeout = pick("request_timeout_s", flags.request_timeout_s, sf.request_timeout_s, 600.0, float)
    retries = pick("retries", flags.retries, sf.retries, 3, int)
    max_errors = pick("max_endpoint_errors", flags.max_endpoint_errors, sf.max_endpoint_errors, 3, int)
    workers = pick("grading_workers", flags.grading_workers, sf.grading_workers, 2, int)
    parallel = pick("parallel", flags.parallel, sf.parallel, 1, int)
    stream = pick("stream", flags.stream, sf.stream, False, bool)
    unload = pick("unload_between_models", flags.unload_between_models, sf.unload_between_models, False, bool)
    for name, flag, value, low in (("request_timeout_s", "--request-timeout", request_timeout, 0.001),
                                   ("retries", "--retries", retries, 0),
                                   ("max_endpoint_errors", "--max-endpoint-errors", max_errors, 1),
                                   ("grading_workers", "--grading-workers", workers, 1),
                                   ("parallel", "--parallel", parallel, 1)):
        if value < low:
            where = flag if sources[name] == "flag" else f"{name} ({sources[name]})"
            raise ConfigError(f"{where} must be at least {low:g} (got {value:g})")

    default = _merge(SamplingSpec(), sf.sampling, flags.sampling)
    by_model = {m: _merge(sf.profiles.get(m), sf.sampling, flags.sampling) for m in models}
    warnings: list[str] = []
    if sf.models == ALL_MODELS or (sources["models"] != "file" and sf.profiles):
        unused = sorted(set(sf.profiles) - set(models))
        if unused:
            warnings.append(f"sweep file {config_path}: profile(s) for {', '.join(unused)} unused: "
                            "not among this run's models")

    ls_path = pick("llama_swap_config", flags.llama_swap_config, rel(sf.llama_swap_config), None)
    llama_swap = None
    if ls_path is not None:
        llama_swap, ls_warnings = _llama_swap(Path(ls_path), models, by_model, seeds, env,
                                              parallel=int(parallel), stream=bool(stream))
        warnings += ls_warnings

    cfg = RunConfig(
        endpoint=endpoint, models=models, exams=exams, seeds=seeds, sampling=default,
        sampling_by_model=by_model, out_dir=out_dir, request_timeout_s=float(request_timeout),
        retries=int(retries), max_endpoint_errors=int(max_errors), grading_workers=int(workers),
        parallel=int(parallel), stream=bool(stream), unload_between_models=bool(unload), api_key=api_key,
        config_file=str(config_path) if config_path is not None else None,
        llama_swap=llama_swap, sources=sources,
    )
    return Resolution(cfg, warnings)


def _config_path(config_path: Path | None, env: Mapping[str, str]) -> Path | None:
    """The sweep file: the one given, else ``$SWEEP_CONFIG``, else none."""
    if config_path is None and env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    return config_path


def _pick(name: str, flag: Any, from_file: Any, default: Any, kind: type,
          env: Mapping[str, str]) -> tuple[Any, str]:
    """One setting by flag > environment variable > sweep file > default, and where
    it came from (``flag``, ``env:NAME``, ``file`` or ``default``)."""
    if flag is not None and flag != ():
        return flag, "flag"
    var = _ENV.get(name)
    if var and env.get(var):
        return _env_value(var, env[var], kind), f"env:{var}"
    if from_file is not None:
        return from_file, "file"
    return default, "default"


def setting(name: str, flag: Any, *, config_path: Path | None = None, env: Mapping[str, str] | None = None,
            default: Any = None, kind: type = str) -> Any:
    """One setting of the config with the same precedence as ``resolve``, for what
    must be known before the rest can be resolved (``sweep run --local`` needs
    ``parallel`` to start its server, whose address is the endpoint)."""
    env = os.environ if env is None else env
    path = _config_path(config_path, env)
    from_file = getattr(load(path), name) if path is not None else None
    return _pick(name, flag, from_file, default, kind, env)[0]


def _merge(profile: SamplingSpec | None, file_default: SamplingSpec, flags: SamplingSpec) -> Sampling:
    values: dict[str, Any] = {"temperature": DEFAULT_TEMPERATURE, "max_tokens": DEFAULT_MAX_TOKENS}
    values.update(file_default.given())
    if profile is not None:
        values.update(profile.given())
    values.update(flags.given())
    return Sampling(**values)


def _exam_ref(entry: str, base: Path) -> str:
    """An exam id stays an id; a directory is taken relative to the sweep file."""
    p = Path(entry).expanduser()
    if not p.is_absolute() and (base / p / "exam.toml").is_file():
        return str(base / p)
    return entry


def _list_models_fn(api_key: str | None) -> Callable[[str], list[str]]:
    def lister(endpoint: str) -> list[str]:
        from harness.client import ChatClient

        with ChatClient(endpoint, timeout_s=30, api_key=api_key) as client:
            return client.list_models()

    return lister


def _llama_swap(path: Path, models: tuple[str, ...], by_model: dict[str, Sampling], seeds: tuple[int, ...],
                env: Mapping[str, str], *, parallel: int = 1,
                stream: bool = False) -> tuple[dict[str, Any], list[str]]:
    from harness import llamaswap

    parsed = llamaswap.load(path, env=env)
    warnings = []
    stored: dict[str, Any] = {}
    for m in models:
        info = llamaswap.find(parsed, m)
        if info is None:
            warnings.append(f"llama-swap config {path} has no model or alias '{m}'")
            continue
        body = {"model": m, "messages": [{"role": "user", "content": "..."}], "seed": seeds[0],
                **by_model[m].to_body()}
        found = llamaswap.overrides(info, m, body)
        warnings += [o.describe() for o in found]
        slots = info.slots   # None: not in cmd; llama-server then picks (1 in old builds, "auto" in new ones)
        if slots is not None and 0 < slots < parallel:
            warnings.append(f"llama-swap config {path}: '{m}' runs llama-server with {slots} slot(s) but the sweep "
                            f"sends {parallel} requests at a time: the extra ones wait in its queue (add "
                            f"--parallel {parallel} to its cmd, or lower --parallel)")
        if stream and info.send_loading_state:
            warnings.append(f"llama-swap config {path}: sendLoadingState is on for '{m}': while the model loads, "
                            "streamed answers start with llama-swap's loading messages as reasoning_content, "
                            "which pollutes the stored reasoning and time to first token (set "
                            "sendLoadingState: false)")
        stored[m] = {**info.to_json(), "overrides": [o.describe() for o in found]}
    return {"path": str(path), "models": stored}, warnings
