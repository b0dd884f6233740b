"""Sweep files: validation with one-line errors naming file and field, the shipped
examples, precedence (flag > env > file > default), per-model sampling profiles,
`--model all` against a real endpoint, and `sweep run --config` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.cli.sweepfile import SETTINGS, SamplingSpec, load, resolve, sampling_from_flags
from harness.errors import ConfigError
from harness.store.db import Store
from harness.wire import Sampling
from mock_server.llm import Reply, ScriptedLLM, scripted_fence
from tests.helpers import HELLO_GO, make_tiny_exam

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"


def _write(tmp_path: Path, text: str, name: str = "sweep.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


RUN_ENV = ("SWEEP_CONFIG", "SWEEP_ENDPOINT", "SWEEP_MODELS", "SWEEP_EXAMS", "SWEEP_SEEDS", "SWEEP_OUT",
           "SWEEP_REQUEST_TIMEOUT", "SWEEP_RETRIES", "SWEEP_MAX_ENDPOINT_ERRORS", "SWEEP_GRADING_WORKERS",
           "SWEEP_PARALLEL", "SWEEP_STREAM", "SWEEP_UNLOAD_BETWEEN_MODELS", "SWEEP_LLAMA_SWAP_CONFIG",
           "SWEEP_API_KEY")


@pytest.fixture
def cli(monkeypatch):
    """`sweep run ARGS` parsed as the CLI parses it (click: flag > env > --config file >
    default) and resolved, without running anything: ``cli(*args, env={...})``."""
    import sweep

    def parse(*args: object, env: dict[str, str] | None = None):
        for var in RUN_ENV:
            monkeypatch.delenv(var, raising=False)
        for k, v in (env or {}).items():
            monkeypatch.setenv(k, v)
        ctx = sweep.cli.commands["run"].make_context("run", [str(a) for a in args])
        sampling = sampling_from_flags(**{k: ctx.params[k] for k in ("temperature", "max_tokens", "top_p", "top_k",
                                                                      "min_p", "chat_template_kwargs")})
        return sweep._resolve(ctx, sampling)

    return parse


# -- the shipped examples -----------------------------------------------------------


def test_examples_load_and_resolve(cli):
    files = sorted(EXAMPLES.glob("*.toml"))
    assert {f.name for f in files} >= {"quant-comparison.toml", "multi-model.toml"}
    for f in files:
        sf = load(f)
        assert sf.endpoint and sf.models and sf.seeds
        res = cli("--config", f)
        assert res.warnings == []
        assert res.config.out_dir.parent.parent == EXAMPLES       # relative to the file


def test_quant_example_holds_sampling_equal(cli):
    cfg = cli("--config", EXAMPLES / "quant-comparison.toml").config
    quants = {m.rsplit("-", 1)[-1] for m in cfg.models}
    assert quants == {"q4_k_m", "q5_k_m", "mxfp4"}
    assert len({json.dumps(cfg.sampling_for(m).to_body(), sort_keys=True) for m in cfg.models}) == 1
    assert cfg.unload_between_models and len(cfg.seeds) == 10


def test_multi_model_example_profiles(cli):
    cfg = cli("--config", EXAMPLES / "multi-model.toml").config
    nothink = cfg.sampling_for("qwen3-30b-a3b-nothink")
    assert nothink.chat_template_kwargs == {"enable_thinking": False}
    assert cfg.sampling_for("qwen3-30b-a3b").chat_template_kwargs is None
    assert cfg.sampling_for("gpt-oss-20b").max_tokens == 32768
    assert cfg.sampling_for("qwen2.5-coder-32b").top_k == 20          # quoted id with a dot
    assert cfg.sampling_for("gemma-3-27b") != cfg.sampling_for("qwen3-30b-a3b")
    # a profile changes only what it names; the rest comes from [sampling]
    assert cfg.sampling_for("gpt-oss-20b").to_body() == {"temperature": 1.0, "max_tokens": 32768, "top_p": 1.0}


# -- validation: one line, file and field -------------------------------------------------


@pytest.mark.parametrize("text, needle", [
    ('endpoint = "http://x"\nmodel = ["a"]\n', "model: unknown setting"),
    ('models = ["a"]\nseeds = [1, "two"]\n', "seeds[1]: Input should be a valid integer"),
    ('models = ["a"]\nseeds = [1, 1]\n', "seeds: repeats a seed"),
    ('models = ["a"]\nseeds = [1, -1]\n', "seeds: seed -1 is outside 0..4294967294"),
    ('models = ["a"]\nseeds = [99999999999999999999]\n', "seed 99999999999999999999 is outside"),
    ('models = [""]\n', "models: an empty model id"),
    ('models = ["a\\nb"]\n', "contains a control character"),
    ('models = []\n', "models: is empty"),
    ('models = "some"\n', 'models: must be a list of model ids, or "all"'),
    ('models = ["a", "all"]\n', '"all" stands alone'),
    ('models = ["a"]\n[sampling]\ntemperature = -1\n', "sampling.temperature: Input should be greater than or equal"),
    ('models = ["a"]\n[sampling]\ntop_p = 1.5\n', "sampling.top_p"),
    ('models = ["a"]\n[sampling]\nmax_tokens = 0\n', "sampling.max_tokens"),
    ('models = ["a"]\n[sampling]\nseed = 3\n', "sampling.seed: unknown setting"),
    ('models = ["a"]\n[profiles.b]\ntemperature = 0.5\n', "profiles.b names a model that is not in models"),
    ('models = ["a"]\n[profiles.a]\nchat_template_kwargs = "no"\n', "profiles.a.chat_template_kwargs"),
    ('models = ["a"]\nretries = -1\n', "retries"),
    ('models = ["a"]\nparallel = 0\n', "parallel: Input should be greater than or equal to 1"),
    ('models = ["a"]\nstream = "yes please"\n', "stream: Input should be a valid boolean"),
    ('models = ["a"\n', "is not valid TOML"),
    ('models = ["a"]\nmodels = ["b"]\n', "is not valid TOML"),
])
def test_invalid_files_are_one_line_config_errors(tmp_path, text, needle):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load(path)
    line = e.value.one_line()
    assert needle in line and str(path) in line and "\n" not in line


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope.toml")
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="bin.toml"):
        load(bad)


# -- precedence ----------------------------------------------------------------------------


FILE = """
    endpoint = "http://file:1"
    models = ["a", "b"]
    exams = ["go-basics"]
    seeds = [7, 8]
    out = "res"
    retries = 5
    [sampling]
    temperature = 0.5
    top_k = 40
    [profiles.b]
    temperature = 0.2
    chat_template_kwargs = { enable_thinking = false }
"""


def test_file_over_default(tmp_path, cli):
    cfg = cli("--config", _write(tmp_path, FILE)).config
    assert cfg.endpoint == "http://file:1" and cfg.models == ("a", "b") and cfg.seeds == (7, 8)
    assert cfg.out_dir == tmp_path / "res" and cfg.retries == 5
    assert cfg.request_timeout_s == 600.0 and cfg.grading_workers == 2       # defaults
    assert cfg.sampling_for("a") == Sampling(temperature=0.5, max_tokens=16384, top_k=40)
    assert cfg.sampling_for("b") == Sampling(temperature=0.2, max_tokens=16384, top_k=40,
                                             chat_template_kwargs={"enable_thinking": False})
    assert cfg.sources["endpoint"] == "file" and cfg.sources["request_timeout_s"] == "default"
    assert cfg.config_file == str(tmp_path / "sweep.toml")


def test_env_over_file_and_flag_over_env(tmp_path, cli):
    path = _write(tmp_path, FILE)
    env = {"SWEEP_ENDPOINT": "http://env:2", "SWEEP_SEEDS": "1,2,3", "SWEEP_RETRIES": "1",
           "SWEEP_MODELS": "b", "SWEEP_OUT": str(tmp_path / "envout")}
    cfg = cli("--config", path, env=env).config
    assert (cfg.endpoint, cfg.seeds, cfg.retries, cfg.models) == ("http://env:2", (1, 2, 3), 1, ("b",))
    assert cfg.out_dir == tmp_path / "envout" and cfg.sources["seeds"] == "env:SWEEP_SEEDS"
    cfg = cli("--config", path, "--endpoint", "http://flag:3", "--seeds", "9", "--retries", "0", "--model", "a",
              "--out", "flagout", env=env).config
    assert (cfg.endpoint, cfg.seeds, cfg.retries, cfg.models) == ("http://flag:3", (9,), 0, ("a",))
    assert cfg.out_dir == Path("flagout") and cfg.sources["endpoint"] == "flag"


def test_parallel_and_stream_precedence(tmp_path, cli):
    path = _write(tmp_path, "    parallel = 2\n    stream = true" + FILE)
    cfg = cli("--config", path).config
    assert (cfg.parallel, cfg.stream) == (2, True) and cfg.sources["parallel"] == "file"
    cfg = cli("--config", path, env={"SWEEP_PARALLEL": "3", "SWEEP_STREAM": "0"}).config
    assert (cfg.parallel, cfg.stream) == (3, False) and cfg.sources["stream"] == "env:SWEEP_STREAM"
    cfg = cli("--config", path, "--parallel", "4", "--stream", env={"SWEEP_PARALLEL": "3"}).config
    assert (cfg.parallel, cfg.stream) == (4, True)
    assert cli("--config", _write(tmp_path, FILE, "plain.toml")).config.parallel == 1
    assert cfg.to_json()["parallel"] == 4 and cfg.to_json()["stream"] is True     # stored with the run


def test_parallel_is_known_before_the_endpoint(tmp_path, monkeypatch):
    """`sweep run --local` starts its server with `parallel` before the endpoint exists:
    click resolved it already, with the same precedence."""
    import sweep

    path = _write(tmp_path, "    parallel = 2" + FILE)

    def parallel(*args: str, env: dict[str, str] | None = None) -> object:
        monkeypatch.delenv("SWEEP_PARALLEL", raising=False)
        monkeypatch.delenv("SWEEP_CONFIG", raising=False)
        for k, v in (env or {}).items():
            monkeypatch.setenv(k, v)
        return sweep.cli.commands["run"].make_context("run", list(args)).params["parallel"]

    assert parallel("--config", str(path)) == 2
    assert parallel(env={"SWEEP_CONFIG": str(path)}) == 2
    assert parallel("--config", str(path), env={"SWEEP_PARALLEL": "3"}) == 3
    assert parallel("--config", str(path), "--parallel", "4", env={"SWEEP_PARALLEL": "3"}) == 4
    assert parallel() is None                      # the default: RunConfig's (1)
    with pytest.raises(ConfigError, match="SWEEP_PARALLEL='x' is not a valid int"):
        parallel(env={"SWEEP_PARALLEL": "x"})


def test_empty_env_var_is_unset(tmp_path, cli):
    cfg = cli("--config", _write(tmp_path, FILE), env={"SWEEP_ENDPOINT": ""}).config
    assert cfg.endpoint == "http://file:1"


def test_config_path_from_env(tmp_path, cli):
    path = _write(tmp_path, FILE)
    cfg = cli(env={"SWEEP_CONFIG": str(path)}).config
    assert cfg.endpoint == "http://file:1"


def test_sampling_flag_beats_profile_for_every_model(tmp_path, cli):
    cfg = cli("--temperature", "0.9", "--top-p", "0.5", "--config", _write(tmp_path, FILE)).config
    for m in ("a", "b"):
        s = cfg.sampling_for(m)
        assert s.temperature == 0.9 and s.top_p == 0.5 and s.top_k == 40
    assert cfg.sampling_for("b").chat_template_kwargs == {"enable_thinking": False}


def test_sampling_has_no_environment_variables(tmp_path, cli):
    cfg = cli("--config", _write(tmp_path, FILE), env={"SWEEP_TEMPERATURE": "0.1"}).config
    assert cfg.sampling_for("a").temperature == 0.5


def test_no_file_defaults(cli):
    cfg = cli("--endpoint", "http://x", "--model", "m").config
    assert cfg.seeds == (42, 123, 456) and cfg.exams == ("go-basics",) and cfg.out_dir == Path("results")
    assert cfg.sampling_for("m") == Sampling()         # temperature 1.0, max_tokens 16384
    assert not cfg.unload_between_models


def test_profiles_unused_after_model_override_warn(tmp_path, cli):
    res = cli("--model", "a", "--config", _write(tmp_path, FILE))
    assert res.config.models == ("a",)
    assert any("profile(s) for b unused" in w for w in res.warnings)


X = ("--endpoint", "http://x")


@pytest.mark.parametrize("args, env, needle", [
    (("--model", "m"), {}, "no endpoint given"),
    (X, {}, "no model given"),
    ((*X, "--model", "m", "--seeds", "1,x"), {}, "--seeds"),
    ((*X, "--model", "m"), {"SWEEP_RETRIES": "many"}, "SWEEP_RETRIES='many'"),
    ((*X, "--model", "m", "--retries", "x"), {}, "--retries 'x' is not a valid integer"),
    ((*X, "--model", "m", "--grading-workers", "0"), {}, "--grading-workers must be at least 1"),
    ((*X, "--model", "m", "--parallel", "0"), {}, "--parallel must be at least 1"),
    ((*X, "--model", "m"), {"SWEEP_PARALLEL": "0"}, "parallel (env:SWEEP_PARALLEL) must be"),
    ((*X, "--model", "m", "--request-timeout", "0"), {}, "--request-timeout must be more than 0"),
    ((*X, "--model", "m"), {"SWEEP_STREAM": "maybe"}, "SWEEP_STREAM='maybe'"),
    ((*X, "--model", "m", "--model", "m"), {}, "given twice"),
    ((*X, "--model", "all", "--model", "m"), {}, "--model all stands alone"),
    ((*X, "--model", "m", "--seeds", "-1"), {}, "seed -1 is outside 0..4294967294"),
    ((*X, "--model", "m", "--seeds", "1,4294967295"), {}, "seed 4294967295 is outside"),
    ((*X, "--model", "m", "--seeds", "99999999999999999999"), {}, "seed 99999999999999999999 is"),
    ((*X, "--model", "m"), {"SWEEP_SEEDS": "7,-3"}, "seed -3 is outside"),
    ((*X, "--model", ""), {}, "--model: an empty model id"),
    ((*X, "--model", "qwen3\n"), {}, "contains a control character"),
    ((*X, "--model", "a\tb"), {}, "contains a control character"),
    ((*X, "--model", " m"), {}, "leading or trailing blanks"),
    (X, {"SWEEP_MODELS": "a,b\x07"}, "models (env:SWEEP_MODELS): model id"),
])
def test_resolution_errors(cli, args, env, needle):
    with pytest.raises(ConfigError, match=None) as e:
        cli(*args, env=env)
    assert needle in e.value.one_line()


def test_sources_are_recorded_for_every_setting(tmp_path, cli):
    cfg = cli("--config", _write(tmp_path, FILE), "--parallel", "2", env={"SWEEP_ENDPOINT": "http://env:2"}).config
    assert set(cfg.sources) == set(SETTINGS)
    assert (cfg.sources["parallel"], cfg.sources["endpoint"], cfg.sources["retries"],
            cfg.sources["grading_workers"]) == ("flag", "env:SWEEP_ENDPOINT", "file", "default")


def test_resolve_as_a_library_call():
    """Without the CLI: values as flags give them, the rest RunConfig's defaults."""
    res = resolve({"endpoint": "http://x", "models": ("m",), "seeds": "1,2", "parallel": 3},
                  sampling=SamplingSpec(temperature=0.2))
    cfg = res.config
    assert (cfg.seeds, cfg.parallel, cfg.retries, cfg.exams) == ((1, 2), 3, 3, ("go-basics",))
    assert cfg.sampling_for("m").temperature == 0.2
    assert cfg.sources["parallel"] == "given" and cfg.sources["retries"] == "default"
    with pytest.raises(ConfigError, match=r"retries \(given\) must be at least 0"):
        resolve({"endpoint": "http://x", "models": ("m",), "retries": -1})
    with pytest.raises(TypeError, match="not run settings: temperature"):
        resolve({"endpoint": "http://x", "models": ("m",), "temperature": 1.0})


def test_sampling_flag_errors():
    with pytest.raises(ConfigError, match="not valid JSON"):
        sampling_from_flags(temperature=None, max_tokens=None, top_p=None, top_k=None, min_p=None,
                            chat_template_kwargs="{nope")
    with pytest.raises(ConfigError, match="--top-p"):
        sampling_from_flags(temperature=None, max_tokens=None, top_p=2.0, top_k=None, min_p=None,
                            chat_template_kwargs=None)


# -- --model all, over real HTTP -------------------------------------------------------------


def test_model_all_lists_the_endpoint(tmp_path, cli):
    path = _write(tmp_path, """
        models = "all"
        [profiles.beta]
        temperature = 0.1
        [profiles.gone]
        temperature = 0.3
    """)
    with ScriptedLLM({"alpha": Reply("x"), "beta": Reply("y")}) as llm:
        res = cli("--endpoint", llm.url, "--config", path)
        listed = [r.path for r in llm.requests]
        res2 = cli("--endpoint", llm.url, "--model", "all")
    assert res.config.models == ("alpha", "beta") and res2.config.models == ("alpha", "beta")
    assert listed == ["/v1/models"]
    assert res.config.sampling_for("beta").temperature == 0.1
    assert res.config.sampling_for("alpha").temperature == 1.0
    assert any("profile(s) for gone unused" in w for w in res.warnings)


# -- sweep run --config, end to end --------------------------------------------------------


def test_sweep_run_with_config_file(tmp_path):
    exam = make_tiny_exam(tmp_path / "exams")
    path = _write(tmp_path, """
        models = ["think", "nothink"]
        exams = ["exams/tiny"]          # a directory, relative to this file
        seeds = [1]
        out = "out"
        retries = 0
        [sampling]
        temperature = 0.6
        max_tokens = 2000
        [profiles.nothink]
        temperature = 0.7
        chat_template_kwargs = { enable_thinking = false }
    """)
    assert (tmp_path / "exams" / "tiny") == exam.root
    with ScriptedLLM({"think": Reply(scripted_fence(HELLO_GO)), "nothink": Reply(scripted_fence(HELLO_GO))}) as llm:
        r = subprocess.run([sys.executable, str(ROOT / "sweep.py"), "run", "--config", str(path), "--no-progress"],
                           capture_output=True, text=True, timeout=300, cwd=ROOT,
                           env={**os.environ, "SWEEP_ENDPOINT": llm.url})
        bodies = {q.model: q.json for q in llm.chat_requests()}
    assert r.returncode == 0, r.stderr
    assert bodies["think"]["temperature"] == 0.6 and "chat_template_kwargs" not in bodies["think"]
    assert bodies["nothink"]["temperature"] == 0.7
    assert bodies["nothink"]["chat_template_kwargs"] == {"enable_thinking": False}
    st = Store(tmp_path / "out")
    stored = {a["model"]: json.loads(a["sampling_json"]) for a in st.query("SELECT * FROM attempts")}
    assert stored["nothink"]["temperature"] == 0.7 and stored["think"]["temperature"] == 0.6
    cfg = json.loads(st.query("SELECT config_json FROM runs")[0][0])
    assert cfg["config_file"] == str(path) and cfg["sources"]["endpoint"] == "env:SWEEP_ENDPOINT"
    assert cfg["sampling_by_model"]["nothink"]["chat_template_kwargs"] == {"enable_thinking": False}
    assert "sweep finished" in r.stderr          # the summary line


def test_sweep_run_with_broken_config_file(tmp_path):
    path = _write(tmp_path, 'models = ["a"]\nsamplng = 1\n')
    r = subprocess.run([sys.executable, str(ROOT / "sweep.py"), "run", "--config", str(path)],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("sweep: error:")]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "samplng: unknown setting" in lines[0] and str(path) in lines[0]
