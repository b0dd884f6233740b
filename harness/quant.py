"""Base model and quantization of a served model id.

Which quantization of one model really works is the question the quantization view
answers, so every model id is split into a *base* (the model) and a *quant* (how its
weights are stored). The best source is what the server ran (a llama-swap config
or GGUF metadata: a mapping ``model id -> {"base", "quant", "size_bytes"}``); when
that is not known the id itself is parsed, since people name models after the GGUF
file they load::

    qwen3-30b-a3b-Q4_K_M        -> qwen3-30b-a3b   Q4_K_M
    gemma-4-26b-UD-Q5_K_XL      -> gemma-4-26b     UD-Q5_K_XL
    gpt-oss-20b-MXFP4_MOE       -> gpt-oss-20b     MXFP4_MOE
    Qwen3-Coder:q8_0            -> Qwen3-Coder     Q8_0
    qwen35-35b-q4km             -> qwen35-35b      Q4_K_M   (compact llama-swap names)

Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# A quant name at the end of the id, after a separator (- _ . : /).
_QUANT = re.compile(
    r"""(?ix)
    [-_.:/]
    (?P<quant>
        (?:UD[-_])?                       # unsloth "dynamic" quants
        (?:
            I?Q\d(?:_[0-9]+)*(?:_K)?(?:_(?:XXS|XS|S|M|L|XL|NL))?(?:_[0-9]+)*   # Q4_K_M, IQ4_XS, Q8_0, Q4_0_4_4
          | TQ\d_\d                       # ternary
          | (?:MX|NV)FP4(?:_MOE)?
          | B?F(?:16|32) | FP(?:8|16|32)
          | Q\dK[SML]? | Q\dK?             # compact: q4km, q6k, q8
        )
    )
    $""",
)
_GGUF_SUFFIX = re.compile(r"(?i)([-_.]gguf)$")
_COMPACT = re.compile(r"(?i)^Q(\d)(K?)([SML]?)$")


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
    q = quant.upper().replace("UD_", "UD-")
    m = _COMPACT.match(q)
    if m:
        digit, k, size = m.groups()
        q = f"Q{digit}" + ("_K" if k else "") + (f"_{size}" if size else "")
    return q


def parse_model_name(name: str) -> QuantInfo:
    """Split a model id into base and quant; ``quant`` is None when the id names none."""
    text = name.strip()
    stripped = _GGUF_SUFFIX.sub("", text)
    m = _QUANT.search(stripped)
    if not m or m.start() == 0:
        return QuantInfo(model=name, base=_GGUF_SUFFIX.sub("", stripped), quant=None)
    base = _GGUF_SUFFIX.sub("", stripped[: m.start()])
    return QuantInfo(model=name, base=base, quant=_normalize(m.group("quant")))


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
# the report read the served file's name with these) --------------------------------
GGUF_QUANT_RE = re.compile(
    r"(?<![A-Z0-9])"
    r"((?:UD[-_])?(?:I?Q[1-8](?:_(?:XXS|XS|XL|NL|[0-9]|K|S|M|L))*|TQ[12]_0|MXFP4(?:_MOE)?|BF16|F16|F32|FP16|FP8))"
    r"(?![A-Z0-9])"
)
SHARD_RE = re.compile(r"-(\d{5})-of-(\d{5})$", re.IGNORECASE)


def quant_label(name: str) -> str | None:
    """The quantization label in a file name or tag, upper-cased (last one wins)."""
    stem = gguf_stem(name).upper()
    found = GGUF_QUANT_RE.findall(stem)
    return found[-1] if found else None


def gguf_stem(name: str) -> str:
    base = name.rstrip("/").rsplit("/", 1)[-1]
    if base.lower().endswith(".gguf"):
        base = base[: -len(".gguf")]
    return SHARD_RE.sub("", base)


def base_name(name: str) -> str:
    """The model name without quantization label, shard suffix, .gguf and -GGUF."""
    stem = gguf_stem(name)
    if ":" in stem:                                     # repo:tag
        stem = stem.split(":", 1)[0]
    upper = stem.upper()
    matches = list(GGUF_QUANT_RE.finditer(upper))
    if matches:
        m = matches[-1]
        stem = stem[: m.start()] + stem[m.end():]
    stem = re.sub(r"[-_.]gguf$", "", stem, flags=re.IGNORECASE)
    stem = re.sub(r"[-_.]{2,}", lambda m: m.group(0)[0], stem)
    return stem.strip("-_. ") or name
