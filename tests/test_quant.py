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


# -- one parser: parse_model_name, quant_label and base_name read every name alike ----------------------------
def assert_one_parser(name):
    """quant_label and base_name are views of parse_model_name, never a second parser."""
    info = quant.parse_model_name(name)
    assert quant.quant_label(name) == info.quant, name
    assert quant.base_name(name) == (info.base.rsplit("/", 1)[-1] or name), name
    return info


@pytest.mark.parametrize("name, base, short, q", [
    # model ids
    ("qwen3-30b-a3b-Q4_K_M", "qwen3-30b-a3b", "qwen3-30b-a3b", "Q4_K_M"),
    ("gemma-4-26b-UD-Q5_K_XL", "gemma-4-26b", "gemma-4-26b", "UD-Q5_K_XL"),
    ("gpt-oss-20b-MXFP4_MOE", "gpt-oss-20b", "gpt-oss-20b", "MXFP4_MOE"),
    ("Qwen3-Coder:q8_0", "Qwen3-Coder", "Qwen3-Coder", "Q8_0"),
    ("qwen35-35b-q4km", "qwen35-35b", "qwen35-35b", "Q4_K_M"),
    ("qwen35-35b-q6k", "qwen35-35b", "qwen35-35b", "Q6_K"),
    ("qwen2.5-coder:7b-instruct-q4_K_M", "qwen2.5-coder:7b-instruct", "qwen2.5-coder:7b-instruct", "Q4_K_M"),
    ("glm-4.5-air-FP8", "glm-4.5-air", "glm-4.5-air", "FP8"),
    ("Meta-Llama-3.1-8B-Instruct-FP8-dynamic", "Meta-Llama-3.1-8B-Instruct-dynamic",
     "Meta-Llama-3.1-8B-Instruct-dynamic", "FP8"),                                      # a label in the middle
    # file names, paths and Hugging Face repo:tag
    ("Qwen3-30B-A3B-Q4_K_M-00001-of-00003.gguf", "Qwen3-30B-A3B", "Qwen3-30B-A3B", "Q4_K_M"),
    ("unsloth/gemma-3-27b-it-GGUF:UD-Q4_K_XL", "unsloth/gemma-3-27b-it", "gemma-3-27b-it", "UD-Q4_K_XL"),
    ("model-IQ4_XS.gguf", "model", "model", "IQ4_XS"),
    ("x-TQ1_0.gguf", "x", "x", "TQ1_0"),
    ("x-tq2_0.gguf", "x", "x", "TQ2_0"),
    ("y-BF16.gguf", "y", "y", "BF16"),
    ("z-NVFP4.gguf", "z", "z", "NVFP4"),
    ("w-fp16.gguf", "w", "w", "FP16"),
    ("x-UD_Q4_K_XL.gguf", "x", "x", "UD-Q4_K_XL"),
    ("Llama-3.2-1B-Instruct.Q4_K_S.gguf", "Llama-3.2-1B-Instruct", "Llama-3.2-1B-Instruct", "Q4_K_S"),
    ("/models/Qwen3 8B/Qwen3-8B-Q8_0.gguf", "/models/Qwen3 8B/Qwen3-8B", "Qwen3-8B", "Q8_0"),
    ("/models/Qwen3-8B/Q4_K_M.gguf", "/models/Qwen3-8B", "Qwen3-8B", "Q4_K_M"),   # the directory is the model
    # no label
    ("qwen3-30b-a3b", "qwen3-30b-a3b", "qwen3-30b-a3b", None),
    ("deepseek-r1:8b", "deepseek-r1:8b", "deepseek-r1:8b", None),
    ("ggml-org/gpt-oss-20b-GGUF", "ggml-org/gpt-oss-20b", "gpt-oss-20b", None),
    ("model-00001-of-00002.gguf", "model", "model", None),
    ("/models/Q8_0/qwen3-8b.gguf", "/models/Q8_0/qwen3-8b", "qwen3-8b", None),    # a directory names no quant
    ("Q4_K_M", "Q4_K_M", "Q4_K_M", None),                                        # a label with no model before it
    ("x-q9", "x-q9", "x-q9", None),                                              # no GGUF type Q9
])
def test_one_parser_for_ids_files_and_tags(name, base, short, q):
    info = assert_one_parser(name)
    assert (info.base, info.quant, quant.base_name(name)) == (base, q, short)


# Every spelling of every label, in every shape of name, normalised once and read alike by all three functions.
LABELS = {"Q4_K_M": "Q4_K_M", "q4_k_m": "Q4_K_M", "q4km": "Q4_K_M", "Q5_K_S": "Q5_K_S", "q5ks": "Q5_K_S",
          "Q6_K": "Q6_K", "q6k": "Q6_K", "Q8_0": "Q8_0", "q8": "Q8", "Q4_1": "Q4_1", "Q4_0_4_4": "Q4_0_4_4",
          "IQ2_XXS": "IQ2_XXS", "iq4_nl": "IQ4_NL", "IQ4_XS": "IQ4_XS", "UD-Q5_K_XL": "UD-Q5_K_XL",
          "ud_q4_k_xl": "UD-Q4_K_XL", "UD-IQ1_S": "UD-IQ1_S", "TQ1_0": "TQ1_0", "tq2_0": "TQ2_0",
          "MXFP4": "MXFP4", "mxfp4_moe": "MXFP4_MOE", "NVFP4": "NVFP4", "BF16": "BF16", "f16": "F16",
          "F32": "F32", "FP8": "FP8", "fp16": "FP16"}
SHAPES = [  # (name, parse_model_name's base) for base b and label q
    ("{b}-{q}", "{b}"), ("{b}_{q}", "{b}"), ("{b} {q}", "{b}"), ("{b}:{q}", "{b}"), ("{b}.{q}.gguf", "{b}"),
    ("{b}-{q}.gguf", "{b}"), ("{b}-{q}-00002-of-00003.gguf", "{b}"), ("/models/{b}/{b}-{q}.gguf", "/models/{b}/{b}"),
    ("org/{b}-GGUF:{q}", "org/{b}"), ("org/{b}-{q}-GGUF", "org/{b}"), ("{b}-{q}-imatrix.gguf", "{b}-imatrix"),
]
BASES = ["Qwen3-30B-A3B", "gemma-3-27b-it", "gpt-oss-20b", "phi4", "Llama-3.2-1B"]


@pytest.mark.parametrize("label", list(LABELS))
@pytest.mark.parametrize("shape, base_shape", SHAPES)
def test_every_label_in_every_shape(label, shape, base_shape):
    for b in BASES:
        name = shape.format(b=b, q=label)
        info = assert_one_parser(name)
        assert (info.base, info.quant) == (base_shape.format(b=b), LABELS[label]), name
        assert quant.base_name(name) == base_shape.format(b=b).rsplit("/", 1)[-1]
        assert quant.bits(info.quant) > 0, name
        unlabelled = shape.format(b=b, q="").replace("--", "-").replace("-.", ".")
        assert assert_one_parser(unlabelled).quant is None, unlabelled
