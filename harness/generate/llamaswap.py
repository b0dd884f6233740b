"""Reading a llama-swap ``config.yaml``: what each model id really runs.

``load(path)`` returns ``{model_id: ModelInfo}``: the GGUF file (or Hugging Face
repo) in each model's ``cmd``, its size, the quantization label and base-model name
guessed from the file name, the aliases, and the request filters
(``filters.stripParams`` / ``setParams`` / ``setParamsByID``, legacy
``strip_params``) that rewrite what a client sends. ``overrides()`` says which of
the parameters a sweep sends such a filter would change, so ``sweep run`` can warn
before the first request.

The expansion follows llama-swap's own loader (``internal/config/load.go``):
``${env.VAR}`` first (an unset variable is an error, as llama-swap treats it), then
the macros ``MODEL_ID`` + global ``macros`` + the model's ``macros`` (model-level
overrides global), substituted last-defined first so a macro may use an earlier
one; ``${PORT}`` is assigned from ``startPort`` (default 5800) in sorted model-id
order to models whose ``cmd`` uses it; lines of ``cmd`` that start with ``#`` are
dropped, trailing backslashes join lines, and the rest is split like a POSIX shell
(no shell runs it). A macro left unknown is an error, as in llama-swap.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.errors import ConfigError
from harness.quant import SHARD_RE, base_name, quant_label

_ENV_RE = re.compile(r"\$\{env\.([A-Za-z_][A-Za-z0-9_]*)\}")
_MACRO_RE = re.compile(r"\$\{([A-Za-z0-9_-]+)\}")
_MACRO_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
PROTECTED_PARAMS = ("model",)   # llama-swap never strips or sets these
DEFAULT_GROUP = "(default)"     # where llama-swap puts models no group names

# A quantization label inside a file or tag name (matched on the upper-cased name):
# Q4_K_M, Q5_K_M, UD-Q5_K_XL, Q8_0, Q4_0_4_4, IQ4_XS, IQ2_XXS, TQ1_0, MXFP4_MOE,
# F16, BF16, F32.
_MODEL_FLAGS = ("-m", "--model")
_HF_REPO_FLAGS = ("-hf", "-hfr", "--hf-repo")
_HF_FILE_FLAGS = ("-hff", "--hf-file")
_URL_FLAGS = ("-mu", "--model-url")


# -- the parsed result ----------------------------------------------------------


@dataclass(frozen=True)
class ModelInfo:
    """What one llama-swap model id runs, as far as its config tells."""

    id: str
    base: str | None                     # base-model name guessed from the file or repo name
    quant: str | None                    # e.g. "Q4_K_M", "UD-Q5_K_XL", "MXFP4_MOE"
    size_bytes: int | None               # of the GGUF file(s), when they exist here
    gguf_path: str | None                # the -m/--model argument
    hf_repo: str | None                  # the -hf argument (repo[:tag]) when there is no path
    aliases: tuple[str, ...] = ()        # including setParamsByID keys, as llama-swap registers them
    set_params: dict[str, Any] = field(default_factory=dict)
    set_params_by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    strip_params: tuple[str, ...] = ()
    cmd: str = ""                        # after macro expansion, comment lines dropped
    group: str | None = None             # llama-swap swap group
    slots: int | None = None             # llama-server --parallel/-np in cmd (None: not given; the
    #                                      server then picks: 1 in older builds, "auto" (4) in newer)
    send_loading_state: bool = False     # sendLoadingState (global, or the model's own)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "base": self.base, "quant": self.quant, "size_bytes": self.size_bytes,
            "gguf_path": self.gguf_path, "hf_repo": self.hf_repo, "aliases": list(self.aliases),
            "set_params": self.set_params, "set_params_by_id": self.set_params_by_id,
            "strip_params": list(self.strip_params), "cmd": self.cmd, "group": self.group,
            "slots": self.slots, "send_loading_state": self.send_loading_state,
        }


@dataclass(frozen=True)
class Override:
    """A parameter the sweep sends that a llama-swap filter would change."""

    model: str            # the id the sweep requests (may be an alias)
    param: str            # top-level request key
    sent: Any
    final: Any            # what llama-server would receive; None when stripped
    stripped: bool
    rule: str             # e.g. "filters.setParams"

    def describe(self) -> str:
        verb, gets = ("strips", "nothing (the server's default)") if self.stripped else ("changes", _short(self.final))
        return (f"llama-swap {self.rule} of '{self.model}' {verb} {self.param}: the sweep sends "
                f"{_short(self.sent)}, the model gets {gets}")


def _short(v: Any) -> str:
    import json

    text = json.dumps(v, sort_keys=True) if not isinstance(v, str) else repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


# -- validation of the parts we read ----------------------------------------------


class _Loose(BaseModel):
    """llama-swap has many keys we do not need; only the ones we read are checked."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


Scalar = str | int | float | bool


class _Filters(_Loose):
    stripParams: str | list[str] | None = None
    strip_params: str | list[str] | None = None
    setParams: dict[str, Any] | None = None
    setParamsByID: dict[str, dict[str, Any]] | None = None


class _Model(_Loose):
    cmd: str
    cmdStop: str = ""
    proxy: str = "http://localhost:${PORT}"
    checkEndpoint: str = "/health"
    name: str = ""
    description: str = ""
    aliases: list[str] = []
    macros: dict[str, Scalar | dict[str, Any]] = {}
    filters: _Filters = _Filters()
    sendLoadingState: bool | None = None

    @field_validator("aliases", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return [] if v is None else v


class _Group(_Loose):
    members: list[str] = []


class _Config(_Loose):
    startPort: int = Field(5800, ge=1)
    macros: dict[str, Scalar | dict[str, Any]] = {}
    models: dict[str, _Model] = Field(min_length=1)
    groups: dict[str, _Group] = {}
    routing: dict[str, Any] = {}
    sendLoadingState: bool = False


def _loc(loc: tuple[object, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


# -- loading ------------------------------------------------------------------------


def load(path: Path | str, *, env: Mapping[str, str] | None = None) -> dict[str, ModelInfo]:
    """Parse a llama-swap config.yaml; raise ConfigError naming file and field."""
    path = Path(path).expanduser()
    env = os.environ if env is None else env
    label = f"llama-swap config {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"{label} does not exist", hint="pass the config.yaml llama-swap runs with") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{label} cannot be read: {e}") from e
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{label} is not valid YAML: {problem}{where}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{label}: the top level must be a mapping with a 'models' key")
    raw = _substitute_env(raw, env, label, "")
    try:
        cfg = _Config.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        more = f" (+{e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise ConfigError(f"{label}: {_loc(err['loc'])}: {err['msg']}{more}") from e
    for name in cfg.macros:
        _check_macro_name(name, label, "macros")
    groups = _groups(cfg, raw, label)
    out: dict[str, ModelInfo] = {}
    aliases: dict[str, str] = {}
    next_port = cfg.startPort
    for model_id in sorted(cfg.models):
        m = cfg.models[model_id]
        where = f"models.{model_id}"
        for name in m.macros:
            _check_macro_name(name, label, f"{where}.macros")
        macros: dict[str, Any] = {"MODEL_ID": model_id, **cfg.macros}
        macros.update(m.macros)          # model-level overrides global, keeping order
        fields = {"cmd": _strip_comments(m.cmd), "cmdStop": _strip_comments(m.cmdStop), "proxy": m.proxy,
                  "checkEndpoint": m.checkEndpoint}
        strip_raw = m.filters.stripParams if m.filters.stripParams else m.filters.strip_params
        strip_text = ",".join(strip_raw) if isinstance(strip_raw, list) else (strip_raw or "")
        set_params: Any = dict(m.filters.setParams or {})
        by_id: Any = {k: dict(v) for k, v in (m.filters.setParamsByID or {}).items()}
        for name, value in reversed(list(macros.items())):   # last defined first, as llama-swap
            slug = "${" + name + "}"
            for k in fields:
                fields[k] = _replace_in_string(fields[k], slug, value, label, f"{where}.{k}")
            strip_text = _replace_in_string(strip_text, slug, value, label, f"{where}.filters.stripParams")
            set_params = _replace_in_value(set_params, slug, value, label, f"{where}.filters.setParams")
            by_id = {str(_replace_in_string(k, slug, value, label, f"{where}.filters.setParamsByID")):
                     _replace_in_value(v, slug, value, label, f"{where}.filters.setParamsByID.{k}")
                     for k, v in by_id.items()}
        if "${PORT}" in fields["cmd"]:
            for k in ("cmd", "cmdStop", "proxy"):
                fields[k] = fields[k].replace("${PORT}", str(next_port))
            next_port += 1
        elif "${PORT}" in fields["proxy"]:
            raise ConfigError(f"{label}: {where}.proxy uses ${{PORT}} but cmd does not",
                              hint="${PORT} is only assigned when cmd uses it")
        for k, text_value in [*fields.items(), ("filters.stripParams", strip_text)]:
            for found in _MACRO_RE.findall(str(text_value)):
                if found == "PID" and k == "cmdStop":
                    continue
                raise ConfigError(f"{label}: unknown macro '${{{found}}}' in {where}.{k}",
                                  hint="define it under macros (global or the model's own)")
        _check_unknown(set_params, label, f"{where}.filters.setParams")
        _check_unknown(by_id, label, f"{where}.filters.setParamsByID")
        model_aliases = list(m.aliases)
        for key in by_id:
            if key != model_id and key not in model_aliases:
                model_aliases.append(key)
        for a in model_aliases:
            if a in cfg.models and a != model_id:
                raise ConfigError(f"{label}: alias '{a}' of {where} is also a model id")
            if a in aliases and aliases[a] != model_id:
                raise ConfigError(f"{label}: duplicate alias '{a}' in {where} (already used by "
                                  f"models.{aliases[a]})")
            aliases[a] = model_id
        args = _split_cmd(fields["cmd"], label, where)
        out[model_id] = _describe(
            model_id, args, base_dir=path.parent, aliases=tuple(model_aliases),
            set_params={k: v for k, v in set_params.items() if k not in PROTECTED_PARAMS},
            set_params_by_id={k: {p: v for p, v in d.items() if p not in PROTECTED_PARAMS}
                              for k, d in by_id.items()},
            strip_params=_strip_list(strip_text), cmd=fields["cmd"].strip(),
            group=groups.get(model_id, DEFAULT_GROUP),
            send_loading_state=cfg.sendLoadingState if m.sendLoadingState is None else m.sendLoadingState)
    return out


def find(models: Mapping[str, ModelInfo], requested: str) -> ModelInfo | None:
    """The model a requested id (model id or alias) resolves to, as llama-swap does."""
    if requested in models:
        return models[requested]
    for info in models.values():
        if requested in info.aliases:
            return info
    return None


def _check_macro_name(name: str, label: str, where: str) -> None:
    if not _MACRO_NAME_RE.match(name):
        raise ConfigError(f"{label}: {where}: macro name '{name}' must match ^[a-zA-Z0-9_-]+$ (< 64 characters)")
    if name in ("PORT", "MODEL_ID"):   # as llama-swap's validateMacro
        raise ConfigError(f"{label}: {where}: macro name '{name}' is reserved")


def _substitute_env(value: Any, env: Mapping[str, str], label: str, where: str) -> Any:
    if isinstance(value, str):
        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in env:
                raise ConfigError(f"{label}: {where or 'config'}: environment variable '{name}' is not set "
                                  f"(used as ${{env.{name}}})",
                                  hint=f"export {name}=... as llama-swap needs it too")
            return env[name]
        return _ENV_RE.sub(repl, value)
    if isinstance(value, dict):
        return {k: _substitute_env(v, env, label, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_env(v, env, label, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _macro_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"   # Go's %v of a bool
    return str(value)


def _replace_in_string(text: str, slug: str, value: Any, label: str, where: str) -> str:
    if slug not in text:
        return text
    if isinstance(value, dict):
        raise ConfigError(f"{label}: {where}: macro {slug} is a mapping and can only be a whole value")
    return text.replace(slug, _macro_text(value))


def _replace_in_value(value: Any, slug: str, macro: Any, label: str, where: str) -> Any:
    if isinstance(value, str):
        return macro if value == slug else _replace_in_string(value, slug, macro, label, where)
    if isinstance(value, dict):
        return {k: _replace_in_value(v, slug, macro, label, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_in_value(v, slug, macro, label, where) for v in value]
    return value


def _check_unknown(value: Any, label: str, where: str) -> None:
    if isinstance(value, str):
        for found in _MACRO_RE.findall(value):
            raise ConfigError(f"{label}: unknown macro '${{{found}}}' in {where}")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_unknown(k, label, where)
            _check_unknown(v, label, where)
    elif isinstance(value, list):
        for v in value:
            _check_unknown(v, label, where)


def _strip_comments(cmd: str) -> str:
    return "\n".join(ln for ln in cmd.split("\n") if not ln.strip().startswith("#"))


def _split_cmd(cmd: str, label: str, where: str) -> list[str]:
    lines = []
    for ln in cmd.split("\n"):
        t = ln.strip()
        lines.append(t[:-1] + " " if t.endswith("\\") else ln)
    try:
        return shlex.split("\n".join(lines), comments=False, posix=True)
    except ValueError as e:
        raise ConfigError(f"{label}: {where}.cmd cannot be split into arguments: {e}") from e


def _strip_list(text: str) -> tuple[str, ...]:
    seen: list[str] = []
    for p in text.split(","):
        p = p.strip()
        if p and p not in PROTECTED_PARAMS and p not in seen:
            seen.append(p)
    return tuple(sorted(seen))


def _groups(cfg: _Config, raw: dict[str, Any], label: str) -> dict[str, str]:
    groups = cfg.groups
    routed = ((raw.get("routing") or {}).get("router") or {}).get("settings") or {}
    if isinstance(routed, dict) and routed.get("groups"):
        try:
            groups = {k: _Group.model_validate(v) for k, v in routed["groups"].items()}
        except (ValidationError, AttributeError) as e:
            raise ConfigError(f"{label}: routing.router.settings.groups is not a mapping of groups") from e
    member_of: dict[str, str] = {}
    for gid, g in groups.items():
        for m in g.members:
            if m in member_of and member_of[m] != gid:
                raise ConfigError(f"{label}: model {m} is in two groups: {member_of[m]} and {gid}")
            member_of[m] = gid
    return member_of


# -- what a cmd runs -------------------------------------------------------------------


def _flag_values(args: list[str], names: tuple[str, ...]) -> list[str]:
    values = []
    for i, a in enumerate(args):
        if a in names and i + 1 < len(args):
            values.append(args[i + 1])
        else:
            for n in names:
                if n.startswith("--") and a.startswith(n + "="):
                    values.append(a[len(n) + 1:])
    return values


def _pick_path(values: list[str]) -> str | None:
    """The last value that names a .gguf file, else the last value (a docker
    ``-m 8g`` before the image must not win over llama-server's ``-m``)."""
    ggufs = [v for v in values if v.lower().endswith(".gguf")]
    if ggufs:
        return ggufs[-1]
    return values[-1] if values else None


def _size(path_text: str, base_dir: Path) -> int | None:
    p = Path(path_text).expanduser()
    candidates = [p] if p.is_absolute() else [p, base_dir / p]
    for c in candidates:
        try:
            if not c.is_file():
                continue
        except OSError:
            continue
        m = SHARD_RE.search(c.name[: -len(".gguf")] if c.name.lower().endswith(".gguf") else c.name)
        if m is None:
            return c.stat().st_size
        total_n = int(m.group(2))
        prefix = c.name[: m.start()]
        suffix = c.name[m.end():]
        total = 0
        for i in range(1, total_n + 1):
            shard = c.with_name(f"{prefix}-{i:05d}-of-{m.group(2)}{suffix}")
            if not shard.is_file():
                return None    # an incomplete split model has no meaningful size
            total += shard.stat().st_size
        return total
    return None


def _describe(model_id: str, args: list[str], *, base_dir: Path, aliases: tuple[str, ...],
              set_params: dict[str, Any], set_params_by_id: dict[str, dict[str, Any]],
              strip_params: tuple[str, ...], cmd: str, group: str | None,
              send_loading_state: bool = False) -> ModelInfo:
    path = _pick_path(_flag_values(args, _MODEL_FLAGS))
    hf = _flag_values(args, _HF_REPO_FLAGS)
    hf_repo = hf[-1] if hf and path is None else None
    hf_file = _pick_path(_flag_values(args, _HF_FILE_FLAGS))
    url = _pick_path(_flag_values(args, _URL_FLAGS))
    name = path or hf_file or url
    quant = base = None
    if name is not None:
        quant, base = quant_label(name), base_name(name)
    elif hf_repo is not None:
        repo, _, tag = hf_repo.partition(":")
        quant = quant_label(hf_repo) if tag else None    # a label needs its model before it: "repo:Q4_K_M"
        if tag and quant is None:
            quant = tag.upper()
        base = base_name(repo)
    if quant is None:                                  # e.g. a vLLM or docker cmd: try the id
        quant = quant_label(model_id)
        if base is None and quant is not None:
            base = base_name(model_id)
    if hf_repo is not None and hf_file is not None and base is None:
        base = base_name(hf_repo.partition(":")[0])
    return ModelInfo(
        id=model_id, base=base, quant=quant,
        size_bytes=_size(path, base_dir) if path else None,
        gguf_path=path, hf_repo=hf_repo if path is None else None, aliases=aliases,
        set_params=set_params, set_params_by_id=set_params_by_id, strip_params=strip_params,
        cmd=cmd, group=group, slots=_slots(args), send_loading_state=send_loading_state)


def _slots(args: list[str]) -> int | None:
    """llama-server's ``--parallel N`` / ``-np N`` in a cmd (the last one wins)."""
    values = _flag_values(args, ("-np", "--parallel"))
    try:
        return int(values[-1]) if values else None
    except ValueError:
        return None


# -- what the filters would do to a request ------------------------------------------------


def overrides(info: ModelInfo, requested: str, body: Mapping[str, Any]) -> list[Override]:
    """The top-level parameters of ``body`` that llama-swap's filters for ``info``
    would strip or change when the client asks for ``requested``. Filter order is
    llama-swap's: stripParams, then setParams, then setParamsByID[requested];
    dotted keys address nested fields."""
    import copy

    final: dict[str, Any] = copy.deepcopy(dict(body))
    rule_of: dict[str, str] = {}
    for key in info.strip_params:
        if _delete(final, key):
            rule_of[key.split(".", 1)[0]] = "filters.stripParams"
    for rule, params in (("filters.setParams", info.set_params),
                         (f"filters.setParamsByID[{requested}]", info.set_params_by_id.get(requested, {}))):
        for key, value in params.items():
            _set(final, key, value)
            rule_of[key.split(".", 1)[0]] = rule
    out = []
    for key, sent in body.items():
        if key in PROTECTED_PARAMS or key not in rule_of:
            continue
        if key not in final:
            out.append(Override(requested, key, sent, None, True, rule_of[key]))
        elif final[key] != sent:
            out.append(Override(requested, key, sent, final[key], False, rule_of[key]))
    return out


def _delete(d: dict[str, Any], path: str) -> bool:
    parts = path.split(".")
    for p in parts[:-1]:
        d = d.get(p)  # type: ignore[assignment]
        if not isinstance(d, dict):
            return False
    return d.pop(parts[-1], _MISSING) is not _MISSING


def _set(d: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    for p in parts[:-1]:
        nxt = d.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            d[p] = nxt
        d = nxt
    d[parts[-1]] = value


_MISSING = object()


def summary(models: Mapping[str, ModelInfo]) -> dict[str, dict[str, Any]]:
    """``{id: {"base", "quant", "size_bytes"}}``, the part reports use."""
    return {m: {"base": i.base, "quant": i.quant, "size_bytes": i.size_bytes} for m, i in models.items()}


def listing(models: Mapping[str, ModelInfo], served: list[str] | None) -> list[dict[str, Any]]:
    """One record per model for ``sweep models``: the config's models (with
    ``served`` when the endpoint's list is known), then ids the endpoint serves that
    the config does not know (``in_config`` False)."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    order = list(served or []) + [m for m in models if m not in (served or [])]
    for requested in order:
        info = find(models, requested)
        if info is None:
            rows.append({"id": requested, "in_config": False, "served": True})
            continue
        if info.id in seen:
            continue
        seen.add(info.id)
        row: dict[str, Any] = {**info.to_json(), "in_config": True}
        row["served"] = None if served is None else (info.id in served or any(a in served for a in info.aliases))
        rows.append(row)
    return rows
