"""llama-swap config.yaml: what each model id runs (GGUF, quant, base, size), macros
and ${env.X} as llama-swap expands them, aliases, groups, filters, the warnings
`sweep run` prints, and `sweep models --llama-swap-config`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.cli.sweepfile import SamplingSpec, resolve
from harness.errors import ConfigError
from harness.generate import llamaswap
from harness.store.db import Store
from mock_server.llm import Reply, ScriptedLLM, scripted_fence
from tests.helpers import HELLO_GO, make_tiny_exam

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "tests" / "data" / "llama-swap.yaml"


@pytest.fixture
def models_dir(tmp_path):
    d = tmp_path / "models"
    (d / "Qwen3 8B").mkdir(parents=True)
    (d / "Qwen3-30B-A3B-Q4_K_M.gguf").write_bytes(b"g" * 4000)
    (d / "Qwen3-30B-A3B-UD-Q5_K_XL.gguf").write_bytes(b"g" * 5000)
    (d / "Qwen3 8B" / "Qwen3-8B-Q8_0.gguf").write_bytes(b"g" * 800)
    return d


@pytest.fixture
def models(models_dir):
    return llamaswap.load(CONFIG, env={"MODELS_DIR": str(models_dir)})


def test_every_model_is_parsed(models):
    assert sorted(models) == ["devstral-docker", "embed", "gemma-3-12b", "gpt-oss-20b", "qwen3-30b-mxfp4",
                              "qwen3-30b-q4", "qwen3-30b-q5", "qwen3-8b"]


def test_quant_comparison_models(models, models_dir):
    q4, q5, fp4 = models["qwen3-30b-q4"], models["qwen3-30b-q5"], models["qwen3-30b-mxfp4"]
    assert {q4.base, q5.base, fp4.base} == {"Qwen3-30B-A3B"}          # one base model
    assert (q4.quant, q5.quant, fp4.quant) == ("Q4_K_M", "UD-Q5_K_XL", "MXFP4_MOE")
    assert q4.gguf_path == f"{models_dir}/Qwen3-30B-A3B-Q4_K_M.gguf"   # -m
    assert q5.gguf_path.endswith("UD-Q5_K_XL.gguf")                    # --model
    assert fp4.gguf_path.endswith("MXFP4_MOE.gguf")                    # --model=
    assert (q4.size_bytes, q5.size_bytes, fp4.size_bytes) == (4000, 5000, None)   # the MXFP4 file is absent
    assert llamaswap.summary(models)["qwen3-30b-q4"] == {"base": "Qwen3-30B-A3B", "quant": "Q4_K_M",
                                                         "size_bytes": 4000}


def test_macros_env_port_and_comments(models, models_dir):
    q4 = models["qwen3-30b-q4"]
    # comment lines dropped; nested macro ${server} -> ${llama}; ${PORT} by sorted model id from startPort
    assert "#" not in q4.cmd and "flash-attn" not in q4.cmd
    assert q4.cmd.startswith("/opt/llama.cpp/build/bin/llama-server --port 10006 --jinja --metrics")
    assert "--ctx-size 32768" in q4.cmd
    assert models["devstral-docker"].cmd.startswith("docker run --rm --gpus all -m 8g -p 10001:8080")
    assert "-c 16384" in models["qwen3-30b-mxfp4"].cmd      # the model-level macro wins
    assert "\\" in models["qwen3-30b-mxfp4"].cmd            # kept in cmd; joined when split
    assert models["qwen3-8b"].gguf_path == f"{models_dir}/Qwen3 8B/Qwen3-8B-Q8_0.gguf"   # quoted, with a space
    assert models["qwen3-8b"].size_bytes == 800


def test_hf_docker_and_other_shapes(models):
    gpt, gemma = models["gpt-oss-20b"], models["gemma-3-12b"]
    assert gpt.gguf_path is None and gpt.hf_repo == "ggml-org/gpt-oss-20b-GGUF"
    assert (gpt.base, gpt.quant, gpt.size_bytes) == ("gpt-oss-20b", None, None)
    assert gemma.hf_repo == "unsloth/gemma-3-12b-it-GGUF:Q4_K_M"
    assert (gemma.base, gemma.quant) == ("gemma-3-12b-it", "Q4_K_M")
    dev = models["devstral-docker"]                       # `docker -m 8g` is not the model
    assert dev.gguf_path == "/models/Devstral-Small-2505-IQ4_XS.gguf"
    assert (dev.base, dev.quant) == ("Devstral-Small-2505", "IQ4_XS")
    assert (models["embed"].base, models["embed"].quant) == ("nomic-embed-text-v1.5", "F16")


def test_aliases_groups_and_filters(models):
    assert models["qwen3-30b-q5"].aliases == ("qwen3-q5", "qwen3-best")
    assert models["qwen3-8b"].aliases == ("qwen3-8b-nothink",)        # setParamsByID keys become aliases
    assert llamaswap.find(models, "qwen3-best").id == "qwen3-30b-q5"
    assert llamaswap.find(models, "gemma").id == "gemma-3-12b"
    assert llamaswap.find(models, "nope") is None
    assert models["qwen3-30b-q4"].group == "coders" and models["embed"].group == "always-on"
    assert models["gpt-oss-20b"].group == "(default)"
    assert models["gpt-oss-20b"].strip_params == ("min_p", "top_k")    # "model" is protected
    assert models["gemma-3-12b"].strip_params == ("seed",)             # legacy strip_params
    assert models["qwen3-30b-mxfp4"].set_params == {"temperature": 0.6, "top_p": 0.95}
    assert models["qwen3-8b"].set_params_by_id["qwen3-8b-nothink"] == {
        "chat_template_kwargs": {"enable_thinking": False}}


BODY = {"model": "x", "messages": [{"role": "user", "content": "hi"}], "seed": 1, "temperature": 1.0,
        "max_tokens": 100, "top_k": 40, "chat_template_kwargs": {"enable_thinking": True}}


def test_overrides_only_what_is_sent_and_changed(models):
    over = {o.param: o for o in llamaswap.overrides(models["qwen3-30b-mxfp4"], "qwen3-30b-mxfp4", BODY)}
    assert set(over) == {"temperature"}                     # top_p is set but not sent: no warning
    assert over["temperature"].sent == 1.0 and over["temperature"].final == 0.6
    assert "filters.setParams" in over["temperature"].describe()
    gpt = llamaswap.overrides(models["gpt-oss-20b"], "gpt-oss-20b", BODY)
    assert [(o.param, o.stripped) for o in gpt] == [("top_k", True)]   # temperature 1.0 equals what is sent
    assert [o.param for o in llamaswap.overrides(models["gemma-3-12b"], "gemma", BODY)] == ["seed"]
    nothink = llamaswap.overrides(models["qwen3-8b"], "qwen3-8b-nothink", BODY)
    assert [(o.param, o.final) for o in nothink] == [("chat_template_kwargs", {"enable_thinking": False})]
    assert llamaswap.overrides(models["qwen3-8b"], "qwen3-8b", BODY) == []   # min_p not sent
    assert llamaswap.overrides(models["qwen3-30b-q4"], "qwen3-30b-q4", BODY) == []


def test_dotted_filter_keys(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(textwrap.dedent("""
        models:
          m:
            cmd: llama-server --port ${PORT} -m /x/m-Q4_0.gguf
            filters:
              stripParams: chat_template_kwargs.enable_thinking
    """))
    info = llamaswap.load(p, env={})["m"]
    [o] = llamaswap.overrides(info, "m", BODY)
    assert o.param == "chat_template_kwargs" and o.final == {} and not o.stripped


def test_split_gguf_size_is_the_sum(tmp_path):
    for i in (1, 2, 3):
        (tmp_path / f"big-Q8_0-0000{i}-of-00003.gguf").write_bytes(b"x" * (100 * i))
    p = tmp_path / "c.yaml"
    p.write_text("models:\n  big:\n    cmd: llama-server --port ${PORT} -m big-Q8_0-00001-of-00003.gguf\n")
    info = llamaswap.load(p, env={})["big"]         # a relative path: tried beside the config too
    assert (info.base, info.quant, info.size_bytes) == ("big", "Q8_0", 600)
    (tmp_path / "big-Q8_0-00003-of-00003.gguf").unlink()
    assert llamaswap.load(p, env={})["big"].size_bytes is None     # incomplete: no size


@pytest.mark.parametrize("name, quant, base", [
    ("Qwen3-30B-A3B-UD-Q5_K_XL.gguf", "UD-Q5_K_XL", "Qwen3-30B-A3B"),
    ("qwen3-8b-q4_k_m.gguf", "Q4_K_M", "qwen3-8b"),
    ("gpt-oss-20b-mxfp4.gguf", "MXFP4", "gpt-oss-20b"),
    ("gpt-oss-120b-MXFP4_MOE-00001-of-00003.gguf", "MXFP4_MOE", "gpt-oss-120b"),
    ("Qwen3-8B-Q8_0.gguf", "Q8_0", "Qwen3-8B"),
    ("Meta-Llama-3.1-8B-Instruct-IQ4_XS.gguf", "IQ4_XS", "Meta-Llama-3.1-8B-Instruct"),
    ("DeepSeek-R1-UD-IQ1_S.gguf", "UD-IQ1_S", "DeepSeek-R1"),
    ("model-BF16-00001-of-00002.gguf", "BF16", "model"),
    ("Qwen3-4B-F16.gguf", "F16", "Qwen3-4B"),
    ("Llama-3.2-1B-Instruct.Q4_K_S.gguf", "Q4_K_S", "Llama-3.2-1B-Instruct"),
    ("gemma-3-27b-it-qat-Q4_0.gguf", "Q4_0", "gemma-3-27b-it-qat"),
    ("Qwen2.5-Coder-7B-Instruct-Q6_K.gguf", "Q6_K", "Qwen2.5-Coder-7B-Instruct"),
    ("unsloth/Qwen3-8B-GGUF:Q4_K_M", "Q4_K_M", "Qwen3-8B"),
    ("qwen3-30b", None, "qwen3-30b"),
])
def test_quant_and_base_from_names(name, quant, base):
    assert llamaswap.quant_label(name) == quant
    assert llamaswap.base_name(name) == base


# -- errors: one line, file and field -------------------------------------------------------


def test_missing_env_var_is_a_clear_error():
    with pytest.raises(ConfigError) as e:
        llamaswap.load(CONFIG, env={})
    line = e.value.one_line()
    assert "environment variable 'MODELS_DIR' is not set" in line and str(CONFIG) in line
    assert "macros.models" in line


@pytest.mark.parametrize("text, needle", [
    ("models:\n  m:\n    cmd: llama-server --port ${PORT} -m ${nope}.gguf\n", "unknown macro '${nope}' in models.m.cmd"),
    ("models:\n  m:\n    cmd: [1, 2]\n", "models.m.cmd: Input should be a valid string"),
    ("models:\n  m:\n    aliases: [a]\n", "models.m.cmd: Field required"),
    ("models: {}\n", "models"),
    ("- just\n- a list\n", "top level must be a mapping"),
    ("models:\n  m:\n    cmd: x\n  bad: [\n", "is not valid YAML"),
    ("models:\n  a:\n    cmd: x ${PORT}\n    aliases: [z]\n  b:\n    cmd: y ${PORT}\n    aliases: [z]\n",
     "duplicate alias 'z'"),
    ("macros:\n  PORT: 1\nmodels:\n  m:\n    cmd: x\n", "macro name 'PORT' is reserved"),
    ("models:\n  m:\n    cmd: x\n    proxy: http://127.0.0.1:${PORT}\n", "proxy uses ${PORT} but cmd does not"),
    ("models:\n  m:\n    cmd: llama-server --port ${PORT} -m 'unclosed\n", "cannot be split into arguments"),
])
def test_invalid_configs(tmp_path, text, needle):
    p = tmp_path / "config.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        llamaswap.load(p, env={})
    assert needle in e.value.one_line() and str(p) in e.value.one_line()


def test_yaml_error_names_the_line(tmp_path):
    p = tmp_path / "config.yaml"
    p.write_text("models:\n  m:\n    cmd: x\n  bad: [\n")
    with pytest.raises(ConfigError, match=r"line \d+"):
        llamaswap.load(p, env={})


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist"):
        llamaswap.load("/nonexistent/config.yaml", env={})


def test_slots_and_loading_state(models):
    assert models["qwen3-30b-q4"].slots == 1           # --parallel 1
    assert models["gpt-oss-20b"].slots == 4            # -np 4
    assert models["qwen3-30b-q5"].slots is None        # not given: llama-server's default
    assert models["gemma-3-12b"].send_loading_state is True       # the model's own setting
    assert models["qwen3-30b-q4"].send_loading_state is False     # the global one


# -- resolution: warnings and what is stored ------------------------------------------------


def test_resolve_warns_about_slots_and_loading_messages(models_dir):
    values = {"endpoint": "http://x", "models": ("qwen3-30b-q4", "gpt-oss-20b", "gemma"), "llama_swap_config": CONFIG,
              "parallel": 2, "stream": True}
    w = [x for x in resolve(values, env={"MODELS_DIR": str(models_dir)}).warnings if "seed" not in x
         and "top_k" not in x and "temperature" not in x]
    assert any("'qwen3-30b-q4' runs llama-server with 1 slot(s) but the sweep sends 2" in x for x in w)
    assert not any("'gemma' runs" in x for x in w)   # no --parallel in its cmd: the server decides (the sweep
    #                                                  checks /props total_slots when it starts the model)
    assert not any("'gpt-oss-20b' runs" in x for x in w)                      # -np 4 >= 2
    assert [x for x in w if "sendLoadingState" in x] == [next(x for x in w if "sendLoadingState is on for 'gemma'"
                                                              in x)]
    quiet = resolve({"endpoint": "http://x", "models": ("gemma",), "llama_swap_config": CONFIG},
                    env={"MODELS_DIR": str(models_dir)}).warnings
    assert not any("slot" in x or "sendLoadingState" in x for x in quiet)    # one request at a time, not streamed


def test_resolve_warns_once_per_model_and_parameter(models_dir):
    values = {"endpoint": "http://x", "models": ("qwen3-30b-mxfp4", "gpt-oss-20b", "gemma", "qwen3-q5", "ghost"),
              "llama_swap_config": CONFIG}
    res = resolve(values, sampling=SamplingSpec(top_k=40, temperature=0.8), env={"MODELS_DIR": str(models_dir)})
    w = res.warnings
    assert sum("qwen3-30b-mxfp4" in x and "temperature" in x for x in w) == 1
    assert sum("gpt-oss-20b" in x and "top_k" in x for x in w) == 1
    assert sum("gpt-oss-20b" in x and "temperature" in x for x in w) == 1    # 0.8 sent, 1.0 set
    assert sum("'gemma'" in x and "seed" in x for x in w) == 1
    assert not any("qwen3-q5" in x for x in w)
    assert any("no model or alias 'ghost'" in x for x in w)
    assert len(w) == 5
    stored = res.config.llama_swap
    assert stored["path"] == str(CONFIG)
    assert stored["models"]["qwen3-q5"]["id"] == "qwen3-30b-q5"             # keyed by the id the sweep sends
    assert stored["models"]["qwen3-q5"]["quant"] == "UD-Q5_K_XL"
    assert stored["models"]["qwen3-q5"]["size_bytes"] == 5000
    assert len(stored["models"]["gpt-oss-20b"]["overrides"]) == 2
    assert json.loads(json.dumps(res.config.to_json()))["llama_swap"] == stored


def _sweep(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "sweep.py"), *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env={**os.environ, **env})


def test_sweep_run_warns_before_the_sweep_and_stores_the_info(tmp_path, models_dir):
    exam = make_tiny_exam(tmp_path / "exams")
    out = tmp_path / "out"
    with ScriptedLLM({"qwen3-30b-mxfp4": Reply(scripted_fence(HELLO_GO))}) as llm:
        r = _sweep("run", "--endpoint", llm.url, "--model", "qwen3-30b-mxfp4", "--exam", str(exam.root),
                   "--seeds", "1", "--out", str(out), "--llama-swap-config", str(CONFIG), "--no-progress",
                   env={"MODELS_DIR": str(models_dir)})
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    warn = [i for i, ln in enumerate(lines) if ln.startswith("warning: llama-swap filters.setParams")]
    first_cell = next(i for i, ln in enumerate(lines) if ln.startswith("[1/1]"))
    assert len(warn) == 1 and warn[0] < first_cell
    assert lines[warn[0]] == ("warning: llama-swap filters.setParams of 'qwen3-30b-mxfp4' changes temperature: "
                              "the sweep sends 1.0, the model gets 0.6")
    cfg = json.loads(Store(out).query("SELECT config_json FROM runs")[0][0])
    info = cfg["llama_swap"]["models"]["qwen3-30b-mxfp4"]
    assert (info["base"], info["quant"]) == ("Qwen3-30B-A3B", "MXFP4_MOE")


def test_sweep_models_with_config(models_dir):
    env = {"MODELS_DIR": str(models_dir), "SWEEP_ENDPOINT": ""}
    r = _sweep("models", "--llama-swap-config", str(CONFIG), "--json", env=env)
    assert r.returncode == 0, r.stderr
    rows = {x["id"]: x for x in json.loads(r.stdout)}
    assert rows["qwen3-30b-q4"]["quant"] == "Q4_K_M" and rows["qwen3-30b-q4"]["served"] is None
    with ScriptedLLM({"qwen3-30b-q4": Reply("x"), "stranger": Reply("y")}) as llm:
        r = _sweep("models", "--endpoint", llm.url, "--llama-swap-config", str(CONFIG), env=env)
        rj = _sweep("models", "--endpoint", llm.url, "--llama-swap-config", str(CONFIG), "--json", env=env)
    assert r.returncode == 0, r.stderr
    table = r.stdout.splitlines()
    assert "quant" in table[0] and "served" in table[0]
    row = next(ln for ln in table if ln.startswith("| qwen3-30b-q4 "))
    assert "| yes " in row and "Q4_K_M" in row
    rows = {x["id"]: x for x in json.loads(rj.stdout)}
    assert rows["stranger"] == {"id": "stranger", "in_config": False, "served": True}
    assert rows["qwen3-30b-q5"]["served"] is False
