"""Base model and quant from model ids: a table of real-world names."""

from __future__ import annotations

import pytest

from harness import quant


@pytest.mark.parametrize("name, base, q", [
    ("qwen3-30b-a3b-Q4_K_M", "qwen3-30b-a3b", "Q4_K_M"),
    ("qwen3-30b-a3b-Q8_0", "qwen3-30b-a3b", "Q8_0"),
    ("gemma-4-26b-UD-Q5_K_XL", "gemma-4-26b", "UD-Q5_K_XL"),
    ("Devstral-Small-2507-UD-Q4_K_XL", "Devstral-Small-2507", "UD-Q4_K_XL"),
    ("gpt-oss-20b-MXFP4_MOE", "gpt-oss-20b", "MXFP4_MOE"),
    ("gemma4-26b-mxfp4", "gemma4-26b", "MXFP4"),
    ("Qwen3-Coder:q8_0", "Qwen3-Coder", "Q8_0"),
    ("qwen2.5-coder:7b-instruct-q4_K_M", "qwen2.5-coder:7b-instruct", "Q4_K_M"),
    ("phi4:14b-q8_0", "phi4:14b", "Q8_0"),
    # msf's compact llama-swap names
    ("qwen35-35b-q4km", "qwen35-35b", "Q4_K_M"),
    ("qwen36-35b-q5km", "qwen36-35b", "Q5_K_M"),
    ("qwen35-35b-q6k", "qwen35-35b", "Q6_K"),
    # file and Hugging Face names
    ("Qwen3-30B-A3B-Q4_K_M.gguf", "Qwen3-30B-A3B", "Q4_K_M"),
    ("unsloth/Qwen3-30B-A3B-GGUF:Q4_K_M", "unsloth/Qwen3-30B-A3B", "Q4_K_M"),
    ("Qwen3-8B-IQ4_XS", "Qwen3-8B", "IQ4_XS"),
    ("x-Q4_0_4_4", "x", "Q4_0_4_4"),
    ("gemma-3-27b-it-qat-q4_0", "gemma-3-27b-it-qat", "Q4_0"),
    ("Llama-3-8B-f16", "Llama-3-8B", "F16"),
    ("model-BF16", "model", "BF16"),
    ("glm-4.5-air-FP8", "glm-4.5-air", "FP8"),
    ("m-TQ1_0", "m", "TQ1_0"),
    # no quant in the name
    ("qwen3-30b-a3b", "qwen3-30b-a3b", None),
    ("gpt-oss-20b", "gpt-oss-20b", None),
    ("deepseek-r1:8b", "deepseek-r1:8b", None),
    ("qwen3-coder-draft", "qwen3-coder-draft", None),
    ("Q4_K_M", "Q4_K_M", None),
])
def test_parse_model_name(name, base, q):
    info = quant.parse_model_name(name)
    assert (info.base, info.quant, info.source) == (base, q, "name")


def test_resolve_prefers_the_server_and_falls_back_per_field():
    known = {"fast": {"base": "Qwen3-30B-A3B", "quant": "Q4_K_M", "size_bytes": 18_600_000_000},
             "partial": {"base": None, "quant": None, "size_bytes": None}}
    infos = quant.resolve(["fast", "partial-Q8_0", "partial", "qwen3-Q5_K_M"],
                          {**known, "partial-Q8_0": {"size_bytes": 0}})
    assert infos["fast"] == quant.QuantInfo("fast", "Qwen3-30B-A3B", "Q4_K_M", 18_600_000_000, "server")
    assert infos["partial-Q8_0"] == quant.QuantInfo("partial-Q8_0", "partial", "Q8_0", None, "server")
    assert infos["partial"].base == "partial" and infos["partial"].quant is None
    assert infos["qwen3-Q5_K_M"].source == "name"


def test_shared_bases_and_order():
    infos = quant.resolve(["Qwen3-8B-Q4_K_M", "qwen3-8b-Q8_0", "qwen3-8b-MXFP4", "solo-Q4_K_M", "plain"])
    groups = quant.shared_bases(infos)
    assert list(groups) == ["qwen3-8b"]                    # grouping ignores case
    assert [i.quant for i in quant.order(groups["qwen3-8b"])] == ["Q8_0", "MXFP4", "Q4_K_M"]
    sized = quant.resolve(["a-Q4_K_M", "a-Q8_0"], {"a-Q4_K_M": {"size_bytes": 9}, "a-Q8_0": {"size_bytes": 5}})
    assert [i.model for i in quant.order(sized.values())] == ["a-Q4_K_M", "a-Q8_0"]   # size wins when known


@pytest.mark.parametrize("q, bits", [("Q4_K_M", 4), ("UD-Q5_K_XL", 5), ("IQ2_XXS", 2), ("Q8_0", 8),
                                     ("MXFP4_MOE", 4), ("BF16", 16), ("F32", 32), ("FP8", 8), (None, 0)])
def test_bits(q, bits):
    assert quant.bits(q) == bits


def test_format_size():
    assert quant.format_size(18_600_000_000) == "18.6 GB"
    assert quant.format_size(None) == "n/a"
    assert quant.format_size(253_113_024) == "253 MB"      # Gemma 3 270M Q4_K_M: MB, not "0.3 GB"
