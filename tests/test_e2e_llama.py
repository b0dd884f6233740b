"""End to end against a REAL llama-server serving a real model (SmolLM2-135M-Instruct
Q4_1 by default): the sweep, truncation, seeds, a server killed mid-sweep, and
LocalServer's own failures.

Needs a llama-server (SWEEP_LLAMA_SERVER, PATH, or `sweep local install`) and the
model (`sweep local install`, or SWEEP_LOCAL_MODEL); skipped without them, unless
SWEEP_E2E_REQUIRED=1 (set by .ci/run, which installs both with README line 1), where a
missing piece fails. A tiny model scores near zero on these exams: the tests check
that every attempt is stored and classified honestly, not that it passes.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pandas as pd
import pytest

from harness import report
from harness.errors import LocalServerError
from harness.exams.exam import find_exam
from harness.generate.client import ChatClient
from harness.generate.local_server import LocalServer, find_model, find_server
from harness.generate.runner import Event
from harness.results import Outcome
from harness.store.db import Store
from harness.wire import Sampling
from tests.helpers import make_tiny_exam, run_sweep

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

# What a tiny model may honestly get; our own faults (grading/endpoint errors) are excluded.
MODEL_OUTCOMES = {o.value for o in Outcome if o.counts_against_model}


@pytest.fixture(scope="module")
def pieces() -> tuple[Path, Path]:
    try:
        return find_server(), find_model()
    except LocalServerError as e:
        if os.environ.get("SWEEP_E2E_REQUIRED") == "1":
            pytest.fail(f"SWEEP_E2E_REQUIRED=1 but {e.one_line()}")
        pytest.skip(f"no real llama-server and model installed: {e.one_line()}")


@pytest.fixture(scope="module")
def server(pieces):
    binary, model = pieces
    with LocalServer(model, binary=binary, ctx_size=4096) as s:
        yield s


def _df(out: Path, exam) -> pd.DataFrame:
    return report.load(out, grader_hashes={(exam.id, exam.version): exam.grader_hash})


def test_go_basics_sweep_stores_real_answers(server, tmp_path, toolchain):
    exam = find_exam("go-basics")
    out = tmp_path / "out"
    s = run_sweep(server.url, out, exam, toolchain, models=(server.model_id,), seeds=(1, 2),
                  max_tokens=384, timeout_s=300, turns=2)
    assert s.ok, s.errors
    df = _df(out, exam)
    first = df[df["turn"] == 1]
    assert len(first) == 6
    # two turns: every first answer without full marks got a second turn, and no other did
    repair = first[first["outcome"].isin(MODEL_OUTCOMES) & (first["points"] < first["max_points"])]
    second = df[df["turn"] == 2]
    assert sorted(zip(second["task"], second["seed"])) == sorted(zip(repair["task"], repair["seed"]))
    assert s.generated == len(df) and s.graded == len(df)
    assert set(df["outcome"]) <= MODEL_OUTCOMES, df[["task", "seed", "turn", "outcome", "explanation"]]
    st = Store(out)
    for r in st.query("SELECT request_json FROM requests WHERE turn = 2"):
        msgs = json.loads(r[0])["messages"]
        assert [m["role"] for m in msgs[-3:]] == ["user", "assistant", "user"]
        assert "Fix the program" in msgs[-1]["content"]
    st.close()
    assert report.markdown(first).count("repair turns") == 0
    if len(second):
        assert "repair turns" in report.markdown(df)
    for _, row in df.iterrows():
        assert row["finish_reason"] in ("stop", "length")
        assert row["usage"]["prompt_tokens"] > 0 and row["usage"]["completion_tokens"] > 0
        assert row["timings"]["predicted_n"] > 0 and row["timings"]["predicted_per_second"] > 0
        assert row["timings"]["prompt_n"] > 0
        assert row["cache_n"] == 0  # prompt caching is off
        assert row["content"]
    assert (df["tps_source"] == "timings").all()
    md = report.markdown(first)
    assert f"go-basics v{exam.version}" in md and server.model_id in md
    # What the server ran is known: build, context and model file from /props.
    rec = server.record()
    assert rec["build_info"] and rec["n_ctx"] == 4096 and rec["total_slots"] == 1
    assert rec["model_path"] == str(server.model) and rec["cache_prompt_off"] is True


def test_max_tokens_hit_is_truncated(server, tmp_path, toolchain):
    exam = make_tiny_exam(tmp_path / "exams")
    out = tmp_path / "out"
    s = run_sweep(server.url, out, exam, toolchain, models=(server.model_id,), seeds=(1,), max_tokens=5,
                  timeout_s=120)
    assert s.ok, s.errors
    row = _df(out, exam).iloc[0]
    assert row["finish_reason"] == "length"
    assert row["gen_outcome"] == "truncated" and row["outcome"] == "truncated"
    assert row["usage"]["completion_tokens"] == 5 and row["timings"]["predicted_n"] == 5


def test_same_seed_same_answer_other_seed_other_answer(server, tmp_path, toolchain):
    exam = make_tiny_exam(tmp_path / "exams")
    answers = []
    for name in ("a", "b"):
        out = tmp_path / name
        s = run_sweep(server.url, out, exam, toolchain, models=(server.model_id,), seeds=(1, 2),
                      max_tokens=64, timeout_s=120)
        assert s.ok, s.errors
        df = _df(out, exam)
        answers.append(dict(zip(df["seed"], df["content"])))
    a, b = answers
    assert a[1] == b[1] and a[2] == b[2], "the same seed gave different answers (is prompt caching on?)"
    assert a[1] != a[2], "two seeds gave the same answer"


def test_streamed_and_parallel_sweeps_on_a_two_slot_server(pieces, tmp_path, toolchain):
    binary, model = pieces
    exam = make_tiny_exam(tmp_path / "exams")
    kw = {"max_tokens": 48, "timeout_s": 180}
    with LocalServer(model, binary=binary, ctx_size=2048, parallel=2) as srv:
        assert srv.record()["total_slots"] == 2 and srv.record()["n_ctx"] == 2048   # per slot
        runs = {
            "plain": run_sweep(srv.url, tmp_path / "plain", exam, toolchain, models=(srv.model_id,),
                               seeds=(1, 2), **kw),
            "stream": run_sweep(srv.url, tmp_path / "stream", exam, toolchain, models=(srv.model_id,),
                                seeds=(1, 2), stream=True, **kw),
            "par": run_sweep(srv.url, tmp_path / "par", exam, toolchain, models=(srv.model_id,),
                             seeds=(1, 2, 3, 4), stream=True, parallel=2, **kw),
        }
    for name, s in runs.items():
        assert s.ok, (name, s.errors)
    plain, streamed, par = (_df(tmp_path / name, exam) for name in runs)
    # The real server's stream, assembled, is the very answer it gives unstreamed.
    assert dict(zip(streamed["seed"], streamed["content"])) == dict(zip(plain["seed"], plain["content"]))
    assert list(streamed["finish_reason"]) == list(plain["finish_reason"])
    assert [u["completion_tokens"] for u in streamed["usage"]] == [u["completion_tokens"] for u in plain["usage"]]
    assert (streamed["tps_source"] == "timings").all()
    assert ((streamed["ttft_s"] > 0) & (streamed["ttft_s"] < streamed["wall_s"])).all()
    assert plain["ttft_s"].isna().all()
    assert sorted(par["seed"]) == [1, 2, 3, 4] and set(par["outcome"]) <= MODEL_OUTCOMES
    assert par["ttft_s"].notna().all()
    speed = report.build(par).speed
    assert speed is not None and speed.records[0]["ttft_n"] == 4


def test_server_killed_mid_sweep_then_resume(pieces, tmp_path, toolchain):
    binary, model = pieces
    exam = make_tiny_exam(tmp_path / "exams")
    out = tmp_path / "out"
    with LocalServer(model, binary=binary, ctx_size=2048) as srv:
        pid = srv.pid

        def kill_after_first_answer(e: Event) -> None:
            if e.kind == "generated" and srv.pid is not None:
                os.kill(srv.pid, signal.SIGKILL)

        cfg_models = (srv.model_id,)
        s = run_sweep_with_progress(srv.url, out, exam, toolchain, cfg_models, kill_after_first_answer)
        assert srv.exit_reason() is not None and srv.exit_reason().startswith("killed by SIGKILL")
    assert s.generated == 1
    assert s.stopped_early is not None and "consecutive endpoint errors" in s.stopped_early
    # A fresh connection is refused; a pooled keep-alive one may see the drop instead.
    assert s.errors and all("127.0.0.1:" in e and ("cannot connect" in e or "connection dropped" in e
                                                    or "refused" in e.lower()) for e in s.errors), s.errors
    assert pid is not None and not _running(pid)
    df = _df(out, exam)
    kept = df[df["outcome"] != "endpoint_error"]
    assert len(kept) == 1 and kept.iloc[0]["content"] and kept.iloc[0]["timings"]["predicted_n"] > 0
    first = dict(zip(df["seed"], df["content"]))

    # Rerun against a new server (new port): the stored answer is kept, the rest is filled in.
    with LocalServer(model, binary=binary, ctx_size=2048) as srv2:
        assert srv2.port != 0 and srv2.model_id == cfg_models[0]
        s2 = run_sweep_with_progress(srv2.url, out, exam, toolchain, cfg_models, None)
    assert s2.ok, s2.errors
    assert s2.skipped == 1 and s2.generated == 2
    df2 = _df(out, exam)
    assert len(df2) == 3 and set(df2["outcome"]) <= MODEL_OUTCOMES
    seed_kept = int(kept.iloc[0]["seed"])
    assert dict(zip(df2["seed"], df2["content"]))[seed_kept] == first[seed_kept]
    st = Store(out)
    try:
        runs = [(r["status"], r["error"]) for r in st.query("SELECT status, error FROM runs ORDER BY id")]
    finally:
        st.close()
    assert runs[0][0] == "failed" and "consecutive endpoint errors" in runs[0][1]
    assert runs[1] == ("done", None)


def run_sweep_with_progress(url, out, exam, toolchain, models, progress):
    """run_sweep with a progress callback that may act (tests.helpers collects only)."""
    from harness.config import RunConfig
    from harness.generate.runner import Sweep

    cfg = RunConfig(endpoint=url, models=tuple(models), exams=(exam.id,), seeds=(1, 2, 3),
                    sampling=Sampling(temperature=1.0, max_tokens=32), out_dir=out, request_timeout_s=120,
                    retries=1, max_endpoint_errors=2, retry_backoff_s=0.01, grading_workers=1)
    store = Store(out)
    try:
        with ChatClient(url, timeout_s=120, connect_timeout_s=2) as client:
            return Sweep(cfg, store=store, exams=[exam], toolchain=toolchain, client=client,
                         progress=progress, sleep=lambda s: None).run()
    finally:
        store.close()


def test_bad_model_file_is_one_line_and_leaves_no_process(pieces, tmp_path):
    binary, _ = pieces
    bad = tmp_path / "not-a-model.gguf"
    bad.write_text("this is not a GGUF file\n" * 10)
    srv = LocalServer(bad, binary=binary, startup_timeout_s=60)
    with pytest.raises(LocalServerError) as e:
        srv.start()
    line = e.value.one_line()
    assert "\n" not in line
    assert line.startswith("llama-server exited with status 1 while starting with not-a-model.gguf: ")
    assert srv.pid is None and not _processes_with(str(bad))
    with pytest.raises(LocalServerError, match="missing.gguf not found"):
        LocalServer(tmp_path / "missing.gguf", binary=binary)


def test_ctrl_c_stops_the_real_server(pieces):
    binary, model = pieces
    with pytest.raises(KeyboardInterrupt):
        with LocalServer(model, binary=binary, ctx_size=1024) as srv:
            pid = srv.pid
            with ChatClient(srv.url, timeout_s=60) as c:
                raw = c.send(ChatClient.build_body(srv.model_id, [{"role": "user", "content": "Hi"}], 1,
                                                   Sampling(max_tokens=4)))
                assert raw.status == 200 and json.loads(raw.body)["usage"]["completion_tokens"] >= 1
            raise KeyboardInterrupt
    assert pid is not None and not _running(pid)


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes() != b""
    except OSError:
        return False


def _processes_with(needle: str) -> list[str]:
    found = []
    for p in Path("/proc").glob("[0-9]*"):
        try:
            if needle.encode() in (p / "cmdline").read_bytes():
                found.append(p.name)
        except OSError:
            pass
    return found


def test_cli_local_parallel_stream(pieces, tmp_path):
    """`sweep run --local --parallel 2 --stream`: the command line starts a 2-slot
    llama-server, streams, and the report shows time to first token."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    exam = make_tiny_exam(tmp_path / "exams")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(root / "sweep.py"), "run", "--local", "--parallel", "2", "--stream",
                        "--exam", str(exam.root), "--seeds", "1,2", "--max-tokens", "32", "--out", str(out),
                        "--no-progress"], cwd=root, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "2 requests at a time per model; streamed" in r.stderr
    speed = r.stdout[r.stdout.index("## Speed"):]
    assert "not streamed" not in speed and "(n=2)" in speed
    st = Store(out)
    cfg = json.loads(st.query("SELECT config_json FROM runs")[0][0])
    argv = cfg["local_server"]["argv"]
    assert cfg["parallel"] == 2 and cfg["stream"] is True
    assert argv[argv.index("--parallel") + 1] == "2"
    assert st.query("SELECT total_slots FROM model_props")[0][0] == 2


def test_cli_several_local_models_one_after_another(pieces, tmp_path):
    """`sweep run --local-model A --local-model B`: one real llama-server per file, one after the
    other, each file its own model id; the served GGUF, quant and size are recorded per run and
    model, the quantization view shows both with their sizes, and a typo in a file name stops
    everything before any server starts."""
    import shutil
    import subprocess
    import sys

    _, model = pieces
    root = Path(__file__).resolve().parent.parent
    exam = make_tiny_exam(tmp_path / "exams")
    a, b = tmp_path / "smol-135m-Q4_1.gguf", tmp_path / "smol-135m-Q4_0.gguf"   # two names, same weights
    shutil.copy(model, a)
    shutil.copy(model, b)
    out = tmp_path / "out"

    def sweep(*files: Path) -> subprocess.CompletedProcess[str]:
        args = [x for f in files for x in ("--local-model", str(f))]
        return subprocess.run([sys.executable, str(root / "sweep.py"), "run", *args, "--exam", str(exam.root),
                               "--seeds", "1", "--max-tokens", "32", "--out", str(out), "--no-progress"],
                              cwd=root, capture_output=True, text=True, timeout=600)

    r = sweep(a, tmp_path / "missing-Q8_0.gguf")
    assert r.returncode == 2 and "missing-Q8_0.gguf not found" in r.stderr and "starting" not in r.stderr
    r = sweep(a, b)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr.count("starting ") == 2 and r.stdout.splitlines().count("## tiny v1 (/3; seeds 1)") == 1
    st = Store(out)
    rows = st.query("SELECT model, gguf, quant, size_bytes FROM model_props ORDER BY id")
    assert [tuple(x) for x in rows] == [("smol-135m-Q4_1", a.name, "Q4_1", a.stat().st_size),
                                        ("smol-135m-Q4_0", b.name, "Q4_0", b.stat().st_size)]
    quant = r.stdout[r.stdout.index("### smol-135m: quantizations"):]
    assert f"{a.stat().st_size / 1e6:.0f} MB" in quant and "n/a" not in quant.split("\n\n")[1]
