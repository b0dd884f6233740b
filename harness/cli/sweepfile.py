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

Precedence is click's: command-line flag > the option's environment variable
(``envvar=``) > the sweep file (loaded into click's ``default_map`` by the eager
``--config`` option, see ``default_map()``) > ``RunConfig``'s default, setting by
setting; ``ctx.get_parameter_source()`` says where each came from. ``resolve()``
then validates the result (bounds as ``SweepFile`` declares them, model ids, seeds,
``models = "all"``) into the one frozen ``RunConfig``. For sampling: flag > the
model's profile > ``[sampling]`` > default. Sampling has no environment variables
on purpose: a forgotten ``export`` must not change what is sent. Relative paths in
a file are relative to the file.
"""

from __future__ import annotations

import functools
import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.config import RunConfig, model_id_problem, parse_seeds, seed_problem
from harness.errors import ConfigError
from harness.wire import Sampling

DEFAULT_TEMPERATURE = 1.0
DEFAULT_MAX_TOKENS = 16384
SAMPLING_FIELDS = ("temperature", "max_tokens", "top_p", "top_k", "min_p", "chat_template_kwargs")
ALL_MODELS = "all"


class _Strict(BaseModel):
    # inf and nan are refused: JSON cannot carry them (a request would be invalid JSON)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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
    turns: int | None = Field(None, ge=1, le=10)
    max_response_mb: int | None = Field(None, ge=1, le=4096)
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

# The run settings: RunConfig fields that a flag, an environment variable or the sweep
# file may set. The CLI declares each as a click option named like the field (its flag,
# ``envvar=`` and help); ``SweepFile`` declares its type and bounds; ``RunConfig`` its
# default. Click applies the precedence (command line > envvar > default_map, which
# ``default_map`` fills from the sweep file > default); ``resolve`` validates the result.
SETTINGS = ("endpoint", "models", "exams", "seeds", "out_dir", "request_timeout_s", "retries",
            "max_endpoint_errors", "grading_workers", "parallel", "turns", "max_response_mb", "stream",
            "unload_between_models", "llama_swap_config")
_FILE_KEY = {"out_dir": "out"}          # the file's name where it differs from the field's
_BOUNDED = ("request_timeout_s", "retries", "max_endpoint_errors", "grading_workers", "parallel", "turns",
            "max_response_mb")


def default(name: str) -> Any:
    """The default of a run setting: ``RunConfig``'s."""
    f = RunConfig.__dataclass_fields__[name]
    return f.default_factory() if callable(f.default_factory) else f.default


@dataclass
class Resolution:
    config: RunConfig
    warnings: list[str] = field(default_factory=list)   # say before the sweep starts


def default_map(sf: SweepFile, base: Path) -> dict[str, Any]:
    """The sweep file's run settings as the values their flags would give (click's
    ``default_map``): lists as repeated values, seeds as ``1,2,3``, relative paths
    and exam directories relative to the file (``base``)."""
    out: dict[str, Any] = {}
    for name in SETTINGS:
        value = getattr(sf, _FILE_KEY.get(name, name))
        if value is None:
            continue
        if name == "models":
            value = (value,) if value == ALL_MODELS else tuple(value)
        elif name == "exams":
            value = tuple(_exam_ref(e, base) for e in value)
        elif name == "seeds":
            value = ",".join(str(s) for s in value)
        elif name in ("out_dir", "llama_swap_config"):
            q = Path(value).expanduser()
            value = str(q if q.is_absolute() else base / q)
        out[name] = value
    return out


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


def env_value(name: str, text: str, kind: type) -> Any:
    """An environment variable's text as ``kind`` (int, float or bool: 1/0, true/false,
    yes/no, on/off), or a ConfigError naming the variable."""
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


def _check_bounds(values: Mapping[str, Any], where: Callable[[str], str]) -> None:
    """The numeric settings within the bounds ``SweepFile`` declares, whatever gave them."""
    given = {_FILE_KEY.get(n, n): values[n] for n in _BOUNDED if values.get(n) is not None}
    try:
        SweepFile.model_validate(given)
    except ValidationError as e:
        err = e.errors()[0]
        name = next(n for n in _BOUNDED if _FILE_KEY.get(n, n) == err["loc"][0])
        ctx = err.get("ctx") or {}
        if "ge" in ctx:
            what = f"must be at least {ctx['ge']:g}"
        elif "gt" in ctx:
            what = f"must be more than {ctx['gt']:g}"
        elif "le" in ctx:
            what = f"must be at most {ctx['le']:g}"
        elif err["type"] == "finite_number":
            what = "must be a finite number (JSON has no inf or nan)"
        else:
            what = err["msg"]
        got = err["input"]
        raise ConfigError(f"{where(name)} {what} (got {got:g})" if isinstance(got, (int, float))
                          else f"{where(name)}: {what}") from e


def resolve(
    values: Mapping[str, Any],
    *,
    sources: Mapping[str, str] | None = None,
    sampling: SamplingSpec | None = None,
    sweep_file: SweepFile | None = None,
    config_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    list_models: Callable[[str], list[str]] | None = None,
    api_key: str | None = None,
) -> Resolution:
    """The run's config from settings whose precedence is already applied.

    ``values``: run setting (``SETTINGS``) -> value as a flag gives it (models and
    exams a tuple, seeds ``"1,2,3"``); a missing one (None, or empty) takes
    ``RunConfig``'s default. ``sources``: where each came from (``flag``,
    ``env:NAME``, ``file``, ``default``; default: ``given`` for what ``values``
    holds), recorded with the run and named in errors. ``sampling``: the sampling
    flags, which beat ``sweep_file``'s profiles and ``[sampling]``. ``env``: the
    environment llama-swap's config macros may read (default: the process's).
    ``list_models(endpoint)`` lists the endpoint's models for ``all`` (default: GET
    /v1/models)."""
    unknown = sorted(set(values) - set(SETTINGS))
    if unknown:
        raise TypeError(f"not run settings: {', '.join(unknown)}")
    given = {k: v for k, v in values.items() if v is not None and v != () and v != []}
    src = {n: (sources or {}).get(n) or ("given" if n in given else "default") for n in SETTINGS}
    sf = sweep_file or SweepFile()

    def where(name: str) -> str:
        return "--" + _FLAG.get(name, name).replace("_", "-") if src[name] == "flag" else f"{name} ({src[name]})"

    def get(name: str) -> Any:
        return given.get(name, default(name))

    endpoint = given.get("endpoint")
    if not endpoint:
        raise ConfigError("no endpoint given", hint="pass --endpoint URL, set SWEEP_ENDPOINT, or write endpoint = "
                                                    "\"URL\" in the sweep file")
    models_value = tuple(given.get("models") or ())
    if not models_value:
        raise ConfigError("no model given", hint="pass --model ID (or --model all; see `sweep models --endpoint "
                                                 "URL`)")
    every = ALL_MODELS in models_value
    if every and len(models_value) > 1:
        raise ConfigError("--model all stands alone", hint="drop the other --model values")
    if every:
        from harness import api

        lister = list_models or functools.partial(api.list_models, api_key=api_key)
        models = tuple(lister(endpoint))
        if not models:
            raise ConfigError(f"{endpoint} lists no models (GET /v1/models)", hint="pass --model ID explicitly")
    else:
        models = models_value
        dup = sorted({m for m in models if models.count(m) > 1})
        if dup:
            raise ConfigError(f"model {dup[0]} is given twice")
    for m in models:
        if (why := model_id_problem(m)) is not None:
            raise ConfigError(f"{f'{endpoint}/v1/models' if every else where('models')}: {why}",
                              hint="a model id is sent as is: give the exact id `sweep models --endpoint URL` lists")

    exams = tuple(get("exams"))
    seeds = _seeds(given["seeds"]) if "seeds" in given else default("seeds")
    _check_bounds(given, where)
    parallel, stream = int(get("parallel")), bool(get("stream"))

    flags = sampling or SamplingSpec()
    default_sampling = _merge(SamplingSpec(), sf.sampling, flags)
    by_model = {m: _merge(sf.profiles.get(m), sf.sampling, flags) for m in models}
    for m, s in [("", default_sampling), *by_model.items()]:
        try:
            json.dumps(s.to_body(), allow_nan=False)
        except ValueError as e:   # e.g. NaN inside --chat-template-kwargs: not JSON a server can read
            raise ConfigError(f"the sampling parameters{f' of {m}' if m else ''} hold a value JSON cannot carry "
                              f"(inf or nan): {s.to_body()}") from e
    warnings: list[str] = []
    if sf.models == ALL_MODELS or (src["models"] != "file" and sf.profiles):
        unused = sorted(set(sf.profiles) - set(models))
        if unused:
            warnings.append(f"sweep file {config_path}: profile(s) for {', '.join(unused)} unused: "
                            "not among this run's models")

    llama_swap = None
    if "llama_swap_config" in given:
        llama_swap, ls_warnings = _llama_swap(Path(given["llama_swap_config"]), models, by_model, seeds,
                                              os.environ if env is None else env, parallel=parallel, stream=stream)
        warnings += ls_warnings

    cfg = RunConfig(
        endpoint=endpoint, models=models, exams=exams, seeds=seeds, sampling=default_sampling,
        sampling_by_model=by_model, out_dir=Path(get("out_dir")), request_timeout_s=float(get("request_timeout_s")),
        retries=int(get("retries")), max_endpoint_errors=int(get("max_endpoint_errors")),
        grading_workers=int(get("grading_workers")), parallel=parallel, stream=stream, turns=int(get("turns")),
        max_response_mb=int(get("max_response_mb")),
        unload_between_models=bool(get("unload_between_models")), api_key=api_key,
        config_file=str(config_path) if config_path is not None else None,
        llama_swap=llama_swap, sources=src,
    )
    return Resolution(cfg, warnings)


def _seeds(value: str | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    if isinstance(value, str):
        return parse_seeds(value)
    return parse_seeds(",".join(str(s) for s in value))


_FLAG = {"models": "model", "exams": "exam", "out_dir": "out", "request_timeout_s": "request_timeout"}


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


def _llama_swap(path: Path, models: tuple[str, ...], by_model: dict[str, Sampling], seeds: tuple[int, ...],
                env: Mapping[str, str], *, parallel: int = 1,
                stream: bool = False) -> tuple[dict[str, Any], list[str]]:
    from harness.generate import llamaswap

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
