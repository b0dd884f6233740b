"""Base model and quantization of a served model id, a GGUF file name or a Hugging Face ``repo:tag``.

Which quantization of one model really works is the question the quantization view
answers, so every model id is split into a *base* (the model) and a *quant* (how its
weights are stored). The best source is what the server ran (a llama-swap config
or GGUF metadata: a mapping ``model id -> {"base", "quant", "size_bytes"}``); when
that is not known the id itself is parsed, since people name models after the GGUF
file they load::

    qwen3-30b-a3b-Q4_K_M                       -> qwen3-30b-a3b   Q4_K_M
    gemma-4-26b-UD-Q5_K_XL                     -> gemma-4-26b     UD-Q5_K_XL
    gpt-oss-20b-MXFP4_MOE                      -> gpt-oss-20b     MXFP4_MOE
    Qwen3-Coder:q8_0                           -> Qwen3-Coder     Q8_0
    qwen35-35b-q4km                            -> qwen35-35b      Q4_K_M   (compact llama-swap names)
    Qwen3-30B-A3B-Q4_K_M-00001-of-00003.gguf   -> Qwen3-30B-A3B   Q4_K_M
    unsloth/gemma-3-27b-it-GGUF:UD-Q4_K_XL     -> unsloth/gemma-3-27b-it   UD-Q4_K_XL

One parser (``_split``) reads all of these, for ``parse_model_name``, ``quant_label``
and ``base_name`` alike:

* A *quant label* is what ``QUANT_RE`` matches: ``Q4_K_M``, ``Q8_0``, ``Q4_0_4_4``,
  ``IQ4_XS``, ``IQ2_XXS``, ``TQ1_0``, ``MXFP4``, ``MXFP4_MOE``, ``NVFP4``, ``BF16``,
  ``F16``, ``F32``, ``FP8``, ``FP16``, compact ``q4km``/``q6k``/``q8``, each optionally
  after unsloth's ``UD-``; upper or lower case; no letter or digit may touch it.
* It is looked for in the last path component (after the last ``/``: a directory or a
  Hugging Face owner names no quant), without ``.gguf`` and a ``-00001-of-00003`` shard
  suffix; the last label there wins, and it counts only when something stands before
  it (``Q4_K_M`` alone is a model named so, not a quant of nothing).
* Normalised (``_normalize``): upper case, ``UD_`` -> ``UD-``, compact forms spelled
  out (``q4km`` -> ``Q4_K_M``, ``q6k`` -> ``Q6_K``).
* The base is the name without the label (and the separators around it; a label in the
  middle leaves one separator: ``Llama-3-8B-FP8-dynamic`` -> ``Llama-3-8B-dynamic``),
  ``.gguf``, the shard suffix and a ``-GGUF`` before the end or a ``:tag``.
  ``parse_model_name`` keeps the directory or owner (``unsloth/gemma-3-27b-it``: a model
  id's group), ``base_name`` drops it (``gemma-3-27b-it``: the model's name).

Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# The one definition of a quant label (see the module docstring), matched case-insensitively.
QUANT_RE = re.compile(
    r"""(?ix)
    (?<![a-z0-9])                          # nothing alphanumeric before ...
    (?:UD[-_])?                            # unsloth "dynamic" quants
    (?:
        I?Q[1-8](?:_(?:XXS|XS|XL|NL|S|M|L|K|[0-9]+))*   # Q4_K_M, Q8_0, Q4_0_4_4, IQ4_XS, IQ2_XXS, Q4 (bare)
      | TQ[0-9]_[0-9]                      # ternary: TQ1_0, TQ2_0
      | (?:MX|NV)FP4(?:_MOE)?              # MXFP4, MXFP4_MOE, NVFP4
      | B?F(?:16|32) | FP(?:8|16|32)       # BF16, F16, F32, FP8, FP16
      | Q[1-8]K[SML]?                      # compact (llama-swap ids): q4km, q5ks, q6k
    )
    (?![a-z0-9])                           # ... nor after
    """,
)
SHARD_RE = re.compile(r"-(\d{5})-of-(\d{5})$", re.IGNORECASE)
_COMPACT = re.compile(r"^Q(\d)(K?)([SML]?)$")
_GGUF_TAIL = re.compile(r"(?i)[-_.]gguf(?=:|$)")   # a Hugging Face repo's "-GGUF", before a :tag or the end
_SEPS = "-_.:/ "                                   # what may separate a label from the rest of a name


@dataclass(frozen=True)
class QuantInfo:
    """Where a model id belongs in the quantization view."""

    model: str
    base: str
    quant: str | None
    size_bytes: int | None = None
    source: str = "name"   # "name" (parsed from the id) or "server" (a mapping given by the caller)

    @property
    def group(self) -> str:
        """Key that groups quants of one base model (case-insensitive)."""
        return self.base.lower()


def _normalize(quant: str) -> str:
    """A label as ``QUANT_RE`` matched it, in the one spelling every caller sees."""
    q = quant.upper()
    prefix = ""
    if q.startswith(("UD-", "UD_")):
        prefix, q = "UD-", q[3:]
    m = _COMPACT.match(q)
    if m:
        digit, k, size = m.groups()
        q = f"Q{digit}" + ("_K" if k else "") + (f"_{size}" if size else "")
    return prefix + q


def gguf_stem(name: str) -> str:
    """The last path component of a name without ``.gguf`` and a shard suffix."""
    base = name.rstrip("/").rsplit("/", 1)[-1]
    if base.lower().endswith(".gguf"):
        base = base[: -len(".gguf")]
    return SHARD_RE.sub("", base)


def _split(name: str) -> tuple[str, str | None]:
    """(base, normalised quant or None) of a model id, file name or ``repo:tag``: the parser
    behind ``parse_model_name``, ``quant_label`` and ``base_name``. The base keeps the
    directory or owner."""
    text = name.strip()
    head, slash, _ = text.rstrip("/").rpartition("/")
    stem = gguf_stem(text)
    found = list(QUANT_RE.finditer(stem))
    m = found[-1] if found else None
    left = head + slash + stem[: m.start()] if m else ""
    if m is None or not left.strip(_SEPS):
        return _GGUF_TAIL.sub("", head + slash + stem), None
    kept = left.rstrip(_SEPS)
    right = stem[m.end():].lstrip(_SEPS)
    joint = left[len(kept)] if right and len(kept) < len(left) else ""   # one separator where the label was
    return _GGUF_TAIL.sub("", kept + joint + right), _normalize(m.group())


def parse_model_name(name: str) -> QuantInfo:
    """Split a model id into base and quant; ``quant`` is None when the id names none."""
    base, quant = _split(name)
    return QuantInfo(model=name, base=base, quant=quant)


def bits(quant: str | None) -> float:
    """Approximate bits per weight named by a quant (for ordering rows); 0 if unknown."""
    if not quant:
        return 0.0
    q = quant.upper().removeprefix("UD-")
    m = re.match(r"I?Q(\d)", q) or re.match(r"TQ(\d)", q)
    if m:
        return float(m.group(1))
    m = re.match(r"(?:MX|NV)FP(\d+)", q) or re.match(r"B?FP?(\d+)", q)
    return float(m.group(1)) if m else 0.0


def resolve(models: Iterable[str], known: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, QuantInfo]:
    """QuantInfo for each model: from ``known`` (e.g. a llama-swap config: model id ->
    {"base", "quant", "size_bytes"}) where it has the model, else parsed from the id.
    Missing keys in a ``known`` entry fall back to the parsed values."""
    out: dict[str, QuantInfo] = {}
    for model in models:
        parsed = parse_model_name(model)
        entry = (known or {}).get(model)
        if entry is None:
            out[model] = parsed
            continue
        size = entry.get("size_bytes")
        out[model] = QuantInfo(
            model=model,
            base=str(entry.get("base") or parsed.base),
            quant=str(entry["quant"]) if entry.get("quant") else parsed.quant,
            size_bytes=int(size) if isinstance(size, (int, float)) and size > 0 else None,
            source="server",
        )
    return out


def shared_bases(infos: Mapping[str, QuantInfo]) -> dict[str, list[QuantInfo]]:
    """Groups of two or more models with one base and different quants."""
    groups: dict[str, list[QuantInfo]] = {}
    for info in infos.values():
        groups.setdefault(info.group, []).append(info)
    return {k: v for k, v in groups.items() if len(v) >= 2 and len({i.quant for i in v}) >= 2}


def order(infos: Iterable[QuantInfo]) -> list[QuantInfo]:
    """Rows of one base: largest first (size when known, else bits), then by name."""
    return sorted(infos, key=lambda i: (-(i.size_bytes or 0), -bits(i.quant), i.quant or "", i.model))


def format_size(size_bytes: int | None) -> str:
    if not size_bytes:
        return "n/a"
    if size_bytes < 1e9:          # small models: 0.3 GB would hide a 15% difference between quants
        return f"{size_bytes / 1e6:.0f} MB"
    return f"{size_bytes / 1e9:.1f} GB"


# -- names of GGUF files and llama-swap model ids (harness.generate.llamaswap, harness.generate.served and
# the report read the served file's name with these): the same parser as parse_model_name -------------
def quant_label(name: str) -> str | None:
    """The normalised quantization label in a file name, model id or ``repo:tag`` (the
    last one wins); None when it names none. Always ``parse_model_name(name).quant``."""
    return _split(name)[1]


def base_name(name: str) -> str:
    """The model name without quantization label, shard suffix, .gguf, -GGUF and the
    directory or Hugging Face owner: ``parse_model_name(name).base`` after its last ``/``
    (``name`` itself if that leaves nothing)."""
    return _split(name)[0].rsplit("/", 1)[-1] or name
