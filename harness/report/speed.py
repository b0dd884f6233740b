"""Speed, from the same generations that are graded: per-answer figures read from
what the server reported, and the per-model speed table.

Per answer (``per_answer``): decode and prefill tok/s from llama.cpp ``timings``
(``predicted_per_second``, ``prompt_per_second``), else completion tokens / wall time,
marked approximate; time to first token when the answer was streamed; prompt tokens
reused from the server's cache (``timings.cache_n``, else
``usage.prompt_tokens_details.cached_tokens``); draft tokens proposed and accepted when
the server ran speculative decoding (``timings.draft_n``, ``draft_n_accepted``: llama.cpp
sends them only when it drafted something).

Per model (``speed_table``): means of the per-answer speeds, the median time to first
token, the share of prompt tokens served from cache and the draft acceptance rate,
both summed over answers (token-weighted). Nothing is measured here: these are the
server's own numbers, or the sweep's wall clock.

Only answers with enough tokens to time count in a mean (``MIN_TIMED_TOKENS``): a
decode speed over fewer than 16 generated tokens, or a prefill speed over fewer than 16
prompt tokens evaluated (the rest came from the prompt cache), is mostly the fixed cost
of one step: llama.cpp reported 0.0 tok/s for a 1-token empty answer, and about 32
prefill tok/s for 9 uncached prompt tokens on a server that prefills ~100. Prefill is
shown with the tokens it covers (mean uncached prompt tokens per answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.report.tables import Table


@dataclass(frozen=True)
class AnswerSpeed:
    decode_tps: float | None
    prefill_tps: float | None
    source: str                     # "timings" | "usage/wall" | "none"
    cache_n: int | None             # prompt tokens reused from the server's cache
    prompt_n: int | None            # prompt tokens processed for this request
    draft_n: int | None             # speculative decoding: tokens drafted
    draft_accepted: int | None      # ... and accepted by the main model
    predicted_n: int | None = None  # tokens generated (timings.predicted_n, else usage.completion_tokens)


MIN_TIMED_TOKENS = 16   # fewer generated (or uncached prompt) tokens are not timed: see the docstring


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _int(x: Any) -> int | None:
    return int(x) if isinstance(x, int) and not isinstance(x, bool) and x >= 0 else None


def per_answer(timings: dict[str, Any], usage: dict[str, Any], wall_s: float | None) -> AnswerSpeed:
    """What one answer tells about speed (see the module docstring)."""
    dec, pre = _num(timings.get("predicted_per_second")), _num(timings.get("prompt_per_second"))
    if dec is not None:
        source = "timings"
    else:
        toks = _num(usage.get("completion_tokens"))
        dec = toks / wall_s if toks and wall_s else None
        source = "usage/wall" if dec is not None else "none"
        pre = None
    details = usage.get("prompt_tokens_details")
    cached = _int(timings.get("cache_n"))
    prompt_n = _int(timings.get("prompt_n"))
    if cached is None and isinstance(details, dict):
        cached = _int(details.get("cached_tokens"))
        total = _int(usage.get("prompt_tokens"))
        prompt_n = total - cached if cached is not None and total is not None and total >= cached else None
    predicted = _int(timings.get("predicted_n"))
    if predicted is None:
        predicted = _int(usage.get("completion_tokens"))
    return AnswerSpeed(dec, pre, source, cached, prompt_n, _int(timings.get("draft_n")),
                       _int(timings.get("draft_n_accepted")), predicted)


def _enough(counts: pd.Series) -> pd.Series:
    """Rows whose token count is unknown or at least MIN_TIMED_TOKENS."""
    n = pd.to_numeric(counts, errors="coerce")
    return n.isna() | (n >= MIN_TIMED_TOKENS)


def mean_decode(answers: pd.DataFrame) -> tuple[float | None, bool]:
    """Mean decode tok/s of these answers (rows of ``report.load``) that generated at
    least MIN_TIMED_TOKENS tokens, and whether any of the figures is approximate
    (usage / wall time instead of server timings)."""
    timed = answers[_enough(answers["predicted_n"])] if "predicted_n" in answers else answers
    dec = timed["decode_tps"].dropna()
    if dec.empty:
        return None, False
    return float(dec.mean()), bool((timed.loc[dec.index, "tps_source"] != "timings").any())


def mean_prefill(answers: pd.DataFrame) -> tuple[float | None, float | None]:
    """Mean prefill tok/s over answers that evaluated at least MIN_TIMED_TOKENS prompt
    tokens (the rest of their prompt came from the cache), and the mean number of prompt
    tokens those answers evaluated: the figure covers only those."""
    pre = answers[answers["prefill_tps"].notna()]
    n = pd.to_numeric(pre["prompt_n"], errors="coerce") if "prompt_n" in pre else pd.Series(dtype=float)
    timed = pre[_enough(pre["prompt_n"])] if "prompt_n" in pre else pre
    if timed.empty:
        return None, float(n.mean()) if len(n.dropna()) else None
    covered = pd.to_numeric(timed["prompt_n"], errors="coerce").dropna()
    return float(timed["prefill_tps"].mean()), float(covered.mean()) if len(covered) else None


def format_prefill(tps: float | None, tokens: float | None) -> str:
    """A prefill cell: the speed and the uncached prompt tokens per answer it covers."""
    if tps is None:
        return "n/a" if tokens is None else f"n/a (~{tokens:.0f} tok: cached)"
    return f"{tps:.1f}" + (f" ({tokens:.0f} tok)" if tokens is not None else "")


def format_tps(x: float | None, approx: bool = False) -> str:
    """A tok/s cell: ``n/a``, or one decimal, ``~`` in front when approximate."""
    return "n/a" if x is None else ("~" if approx else "") + f"{x:.1f}"


def _median(values: pd.Series) -> float | None:
    v = pd.to_numeric(values, errors="coerce").dropna()
    return float(v.median()) if len(v) else None


def _share(part: pd.Series, whole: pd.Series) -> tuple[int, int] | None:
    """(sum of part, sum of whole) over rows where both are known; None if none are."""
    both = pd.DataFrame({"p": pd.to_numeric(part, errors="coerce"), "w": pd.to_numeric(whole, errors="coerce")})
    both = both.dropna()
    both = both[both["w"] > 0]
    return (int(both["p"].sum()), int(both["w"].sum())) if len(both) else None


def _pct(share: tuple[int, int] | None) -> str:
    if share is None:
        return "n/a"
    part, whole = share
    return f"{100.0 * part / whole:.0f}% ({part}/{whole})"


def speed_table(df: pd.DataFrame, models: list[str]) -> Table | None:
    """One row per model (in ``models`` order) over every answer it gave, any exam.
    None when no answer carries any speed figure."""
    answered = df[df["gen_outcome"] != "endpoint_error"]
    if answered.empty or answered["decode_tps"].dropna().empty:
        return None
    header = ["Model", "Answers", "Decode tok/s", "Prefill tok/s", "TTFT s (median)", "Prompt cached",
              "Draft accepted", "Wall s (median)"]
    rows, records = [], []
    for model in models:
        m = answered[answered["model"] == model]
        if m.empty:
            continue
        decode, approx = mean_decode(m)
        ttft = m["ttft_s"].dropna()
        cache = _share(m["cache_n"], m["cache_n"].fillna(0) + m["prompt_n"])
        draft = _share(m["draft_accepted"], m["draft_n"])
        prefill, prefill_tokens = mean_prefill(m)
        rec = {"model": model, "answers": len(m), "decode_tps": decode, "tps_approx": approx,
               "prefill_tps": prefill, "prefill_tokens": prefill_tokens, "ttft_s_median": _median(ttft), "ttft_n": len(ttft),
               "cached_tokens": cache[0] if cache else None, "prompt_tokens": cache[1] if cache else None,
               "draft_accepted": draft[0] if draft else None, "draft_n": draft[1] if draft else None,
               "wall_s_median": _median(m["wall_s"])}
        rows.append([model, str(len(m)),
                     format_tps(decode, approx), format_prefill(prefill, prefill_tokens),
                     "not streamed" if not len(ttft) else f"{rec['ttft_s_median']:.2f} (n={len(ttft)})",
                     _pct(cache), "none" if draft is None else _pct(draft),
                     "n/a" if rec["wall_s_median"] is None else f"{rec['wall_s_median']:.1f}"])
        records.append(rec)
    notes = ["Every answer of the model on every exam (endpoint errors excluded). Decode and prefill tok/s: "
             "means of the server's per-answer timings (~: completion tokens / wall time, the server sent no "
             f"timings) over answers with at least {MIN_TIMED_TOKENS} generated (prefill: uncached prompt) tokens; "
             "prefill shows in brackets the uncached prompt tokens per answer it covers. TTFT: request sent to "
             "the first generated token (reasoning included), streamed answers "
             "only (`sweep run --stream`). Prompt cached: prompt tokens the server reused from its cache. "
             "Draft accepted: speculative-decoding tokens accepted / drafted, when the server drafted."]
    return Table("speed", "Speed, from the graded answers", header, rows, [], notes, records)
