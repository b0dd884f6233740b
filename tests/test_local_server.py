"""harness.generate.local_server without a real model: where the pieces are found, and how a
server that fails, hangs or is interrupted is reported and cleaned up. A small
Python script stands in for llama-server (the real one is in test_e2e_llama.py)."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from harness.errors import LocalServerError
from harness.generate.local_server import LocalServer, find_model, find_server, server_env

FAKE = textwrap.dedent("""\
    import json, os, sys, time
    from http.server import BaseHTTPRequestHandler, HTTPServer

    args = sys.argv[1:]
    if "--help" in args:
        print("usage: llama-server [options]")
        print("--model FNAME --host HOST --port PORT --ctx-size N --threads N --parallel N")
        print("--cache-prompt, --no-cache-prompt   whether to enable prompt caching")
        print("--alias STRING")
        sys.exit(0)
    mode = os.environ.get("FAKE_MODE", "ok")
    with open(os.environ["FAKE_ARGV"], "w") as f:
        json.dump({"argv": args, "env": sorted(os.environ)}, f)
    if mode == "fail":
        print("build: 1234 (abcdef)", file=sys.stderr)
        print("gguf_init_from_file_impl: failed to read magic", file=sys.stderr)
        print("llama_model_load: error loading model: not a GGUF file", file=sys.stderr)
        print("main: exiting due to model loading error", file=sys.stderr)
        sys.exit(1)
    if mode == "hang":
        print("loading model", file=sys.stderr, flush=True)
        time.sleep(600)
    port = int(args[args.index("--port") + 1])
    alias = args[args.index("--alias") + 1]

    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            doc = {"/health": {"status": "ok"},
                   "/props": {"build_info": "b1234-abcdef", "model_path": args[args.index("--model") + 1],
                              "total_slots": 1, "default_generation_settings": {"n_ctx": 4096}},
                   "/v1/models": {"data": [{"id": alias}]}}.get(self.path)
            body = json.dumps(doc or {}).encode()
            self.send_response(200 if doc else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    HTTPServer(("127.0.0.1", port), H).serve_forever()
""")


@pytest.fixture
def fake(tmp_path) -> Path:
    script = tmp_path / "bin" / "llama-server"
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\n" + FAKE)
    script.chmod(0o755)
    return script


@pytest.fixture
def model(tmp_path) -> Path:
    m = tmp_path / "Tiny-Model.Q4_0.gguf"
    m.write_bytes(b"GGUF" + b"\0" * 60)
    return m


def _env(tmp_path: Path, mode: str, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "FAKE_MODE": mode,
            "FAKE_ARGV": str(tmp_path / "argv.json"), **extra}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie has no cmdline left
    return Path(f"/proc/{pid}/cmdline").read_bytes() != b""


def test_server_precedence(tmp_path, fake):
    other = tmp_path / "other" / "llama-server"
    other.parent.mkdir()
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    path = f"{fake.parent}{os.pathsep}/usr/bin"
    assert find_server({"PATH": path}) == fake
    assert find_server({"PATH": path, "SWEEP_LLAMA_SERVER": str(other)}) == other
    with pytest.raises(LocalServerError, match="SWEEP_LLAMA_SERVER=/nope/llama-server is not an executable"):
        find_server({"PATH": path, "SWEEP_LLAMA_SERVER": "/nope/llama-server"})


def test_model_precedence_and_errors(tmp_path, model):
    assert find_model(model, env={}) == model.resolve()
    assert find_model(None, env={"SWEEP_LOCAL_MODEL": str(model)}) == model.resolve()
    with pytest.raises(LocalServerError, match=r"model file /nope/m.gguf not found \(from \$SWEEP_LOCAL_MODEL\)"):
        find_model(None, env={"SWEEP_LOCAL_MODEL": "/nope/m.gguf"})
    with pytest.raises(LocalServerError) as e:
        LocalServer(tmp_path / "missing.gguf", binary="/bin/true")
    assert "\n" not in e.value.one_line() and "missing.gguf not found" in e.value.one_line()


def test_env_drops_llama_variables():
    env = server_env({"PATH": "/bin", "LLAMA_ARG_CTX_SIZE": "99", "LLAMA_API_KEY": "k", "HOME": "/h"})
    assert env == {"PATH": "/bin", "HOME": "/h"}


def test_starts_records_and_stops(tmp_path, fake, model):
    env = _env(tmp_path, "ok", LLAMA_ARG_N_PARALLEL="8")
    with LocalServer(model, binary=fake, env=env, ctx_size=4096, threads=2) as s:
        pid = s.pid
        assert pid is not None and _alive(pid)
        assert httpx.get(f"{s.url}/health", trust_env=False).status_code == 200
        assert s.model_id == "Tiny-Model.Q4_0"
        rec = s.record()
        assert s.exit_reason() is None
    assert not _alive(pid)
    assert s.exit_reason() == "stopped"
    seen = json.loads((tmp_path / "argv.json").read_text())
    assert seen["argv"] == ["--model", str(model.resolve()), "--host", "127.0.0.1", "--port", str(s.port),
                            "--ctx-size", "4096", "--threads", "2", "--parallel", "1", "--no-cache-prompt",
                            "--alias", "Tiny-Model.Q4_0"]
    assert not [k for k in seen["env"] if k.startswith("LLAMA_")]
    assert rec["build_info"] == "b1234-abcdef" and rec["n_ctx"] == 4096 and rec["total_slots"] == 1
    assert rec["cache_prompt_off"] is True and rec["argv"][0] == str(fake)


def test_exit_while_loading_is_one_line_with_the_reason(tmp_path, fake, model):
    with pytest.raises(LocalServerError) as e:
        LocalServer(model, binary=fake, env=_env(tmp_path, "fail")).start()
    line = e.value.one_line()
    assert "\n" not in line
    assert "llama-server exited with status 1 while starting with Tiny-Model.Q4_0.gguf" in line
    assert "failed to read magic" in line


def test_never_healthy_times_out_and_leaves_nothing(tmp_path, fake, model):
    s = LocalServer(model, binary=fake, env=_env(tmp_path, "hang"), startup_timeout_s=1.5)
    with pytest.raises(LocalServerError, match=r"was not healthy within 2s \(last /health: ConnectError\)") as e:
        s.start()
    assert "loading model" in e.value.one_line()
    assert s.pid is None  # stopped and reaped
    assert not [p for p in Path("/proc").glob("[0-9]*") if _cmdline_has(p, str(fake))]


def test_ctrl_c_inside_the_block_stops_the_server(tmp_path, fake, model):
    with pytest.raises(KeyboardInterrupt):
        with LocalServer(model, binary=fake, env=_env(tmp_path, "ok")) as s:
            pid = s.pid
            raise KeyboardInterrupt
    assert pid is not None and not _alive(pid)


def test_death_is_reported(tmp_path, fake, model):
    with LocalServer(model, binary=fake, env=_env(tmp_path, "ok")) as s:
        assert s.pid is not None
        os.kill(s.pid, signal.SIGKILL)
        for _ in range(100):
            if s.exit_reason() is not None:
                break
            time.sleep(0.02)
        assert s.exit_reason() is not None and s.exit_reason().startswith("killed by SIGKILL")


def _cmdline_has(p: Path, needle: str) -> bool:
    try:
        return needle.encode() in (p / "cmdline").read_bytes()
    except OSError:
        return False


def test_parallel_slots_keep_the_context_per_slot(tmp_path, fake, model):
    with LocalServer(model, binary=fake, env=_env(tmp_path, "ok"), ctx_size=4096, threads=2, parallel=3) as s:
        rec = s.record()
    seen = json.loads((tmp_path / "argv.json").read_text())["argv"]
    assert seen[seen.index("--parallel") + 1] == "3"
    assert seen[seen.index("--ctx-size") + 1] == str(3 * 4096)
    assert rec["argv"][1:] == seen
    with pytest.raises(LocalServerError, match="--parallel must be at least 1"):
        LocalServer(model, binary=fake, env=_env(tmp_path, "ok"), parallel=0)
