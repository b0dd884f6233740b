"""Hostile answers are graded correctly and leave the host unchanged, on the
bubblewrap path and on the plain fallback path (SWEEP_ISOLATION=plain)."""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from harness.grade.grading import grade_source
from harness.runtime import sandbox
from tests.helpers import make_tiny_exam

pytestmark = pytest.mark.slow

PRINT_HELLO = 'fmt.Println("hello, world")'


def prog(imports: list[str], body: str, extra: str = "") -> str:
    imps = "\n".join(f'\t"{i}"' for i in sorted(set(imports + ["fmt"])))
    return f"package main\n\nimport (\n{imps}\n)\n\nvar _ = fmt.Sprint\n\n{extra}\nfunc main() {{\n{body}\n}}\n"


@pytest.fixture
def exam(tmp_path):
    return make_tiny_exam(tmp_path / "exams")


def _answer_processes() -> list[int]:
    """Processes running a binary built by the grader (under a sweep-* scratch dir)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            exe = os.readlink(d / "exe")
        except OSError:
            continue
        if "/sweep-tiny-" in exe or exe.endswith("/answer"):
            found.append(int(d.name))
    return found


def _scratch_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("sweep-tiny-*")}


def grade(exam, toolchain, source):
    before = _scratch_dirs()
    g = grade_source(exam, exam.tasks[0], source, toolchain)
    deadline = time.monotonic() + 5
    while _answer_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _answer_processes() == [], "a process of the answer survived grading"
    assert _scratch_dirs() <= before, "grading left its scratch directory behind"
    return g


def test_level_is_described(isolation):
    text = isolation.describe()
    assert text.startswith(f"isolation {isolation.level.value}")
    if isolation.level is sandbox.Isolation.PLAIN:
        assert "NOT contained" in text


def test_infinite_loop(isolation, exam, toolchain):
    g = grade(exam, toolchain, prog([], "for {}"))
    assert g.points == 1 and "did not finish" in g.check("runs").detail


def test_undetected_deadlock(isolation, exam, toolchain):
    body = ('go func() { _ = http.ListenAndServe("127.0.0.1:0", nil) }()\n'
            'var wg sync.WaitGroup\nwg.Add(1)\nwg.Wait()')
    g = grade(exam, toolchain, prog(["net/http", "sync"], body))
    assert g.points == 1 and "did not finish" in g.check("runs").detail


def test_panic_in_init(isolation, exam, toolchain):
    g = grade(exam, toolchain, prog([], PRINT_HELLO, extra='func init() { panic("boom in init") }\n'))
    assert g.points == 1
    assert "exited with status 2" in g.check("runs").detail and "panic: boom in init" in g.check("runs").detail


def test_stdout_flood(isolation, exam, toolchain):
    body = 'b := make([]byte, 1<<20)\nfor i := 0; i < 1024; i++ { os.Stdout.Write(b) }'
    t = time.monotonic()
    g = grade(exam, toolchain, prog(["os"], body))
    assert g.points == 1 and "more output than allowed" in g.check("runs").detail
    assert time.monotonic() - t < 30


def test_disk_fill_is_bounded(isolation, exam, toolchain):
    body = ('f, _ := os.Create("big.dat")\nb := make([]byte, 1<<20)\nvar err error\n'
            'for i := 0; i < 2048 && err == nil; i++ { _, err = f.Write(b) }\n'
            'fmt.Println("hello, world")\nfmt.Fprintln(os.Stderr, err)')
    g = grade(exam, toolchain, prog(["os"], body))
    assert g.points == 3  # it reports the error and carries on: no harm done, the output is right


def _grade_bomb(isolation, exam, toolchain, imports: list[str], body: str) -> float:
    """Grade an answer that starts processes or threads without end: it builds but does
    not run (1 point). Returns the seconds grading took."""
    if isolation.pids_root is None and os.geteuid() == 0:
        pytest.skip("no pids cgroup and running as root: RLIMIT_NPROC does not bind root")
    t = time.monotonic()
    g = grade(exam, toolchain, prog(imports, body))
    assert g.points == 1
    return time.monotonic() - t


def test_fork_bomb(isolation, exam, toolchain):
    body = ('for i := 0; i < 100000; i++ {\n'
            '  if err := exec.Command(os.Args[0]).Start(); err != nil { fmt.Println("fork failed:", err); break }\n'
            '}\nselect {}')
    assert _grade_bomb(isolation, exam, toolchain, ["os", "os/exec"], body) < 60


def test_thread_bomb(isolation, exam, toolchain):
    body = ('r, _, _ := os.Pipe()\nfor i := 0; i < 100000; i++ {\n'
            '  go func() { runtime.LockOSThread(); b := make([]byte, 1); syscall.Read(int(r.Fd()), b) }()\n'
            '}\ntime.Sleep(10 * time.Second)')
    _grade_bomb(isolation, exam, toolchain, ["os", "runtime", "syscall", "time"], body)


def test_signals_the_harness(isolation, exam, toolchain):
    # kill(0, SIGTERM) hits only the program's own session.
    g = grade(exam, toolchain, prog(["syscall"], "syscall.Kill(0, syscall.SIGTERM)\nselect {}"))
    assert g.points == 1 and "SIGTERM" in g.check("runs").detail


def test_kill_minus_one(isolation, exam, toolchain):
    if isolation.level is sandbox.Isolation.PLAIN and os.geteuid() != 0:
        # as root, plain gives each grading's programs a uid of their own: kill(-1) reaches only them
        pytest.skip("plain isolation as an ordinary user: kill(-1) would signal every process of the user")
    alive = threading.Event()
    g = grade(exam, toolchain, prog(["syscall"], "syscall.Kill(-1, syscall.SIGKILL)\n" + PRINT_HELLO))
    alive.set()
    assert alive.is_set()  # we are still here
    assert g.outcome.value in ("ran",)


def test_setsid_child_does_not_survive(isolation, exam, toolchain):
    if isolation.level is sandbox.Isolation.PLAIN and isolation.pids_root is None:
        pytest.skip("plain isolation without a pids cgroup cannot reach a setsid'd grandchild")
    body = ('cmd := exec.Command(os.Args[0])\ncmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}\n'
            'if os.Getenv("CHILD") == "" { cmd.Env = append(os.Environ(), "CHILD=1"); _ = cmd.Start(); '
            + PRINT_HELLO + '; return }\ntime.Sleep(300 * time.Second)')
    g = grade(exam, toolchain, prog(["os", "os/exec", "syscall", "time"], body))
    assert g.points == 3


def test_environment_and_home_are_private(isolation, exam, toolchain, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leak")
    body = ('h, _ := os.UserHomeDir()\n_, err := os.ReadFile(h + "/.ssh/id_rsa")\n'
            'if os.Getenv("OPENAI_API_KEY") == "" && err != nil { ' + PRINT_HELLO + ' } else { fmt.Println("LEAK") }')
    g = grade(exam, toolchain, prog(["os"], body))
    assert g.points == 3


def test_writes_outside_scratch_do_not_land(isolation, exam, toolchain):
    if isolation.level is sandbox.Isolation.PLAIN:
        pytest.skip("plain isolation does not contain the filesystem (docs/security.md)")
    marker = f"llm-was-here-{uuid.uuid4().hex}"
    real_home = Path.home()
    body = (f'_ = os.WriteFile("/tmp/{marker}", []byte("x"), 0o644)\n'
            f'_ = os.WriteFile("{real_home}/{marker}", []byte("x"), 0o644)\n' + PRINT_HELLO)
    g = grade(exam, toolchain, prog(["os"], body))
    assert g.points == 3
    assert not (Path("/tmp") / marker).exists()
    assert not (real_home / marker).exists()


def test_secrets_outside_scratch_are_invisible(isolation, exam, toolchain, tmp_path):
    if isolation.level is sandbox.Isolation.PLAIN:
        pytest.skip("plain isolation does not contain the filesystem (docs/security.md)")
    secret = tmp_path / "fake-home" / ".ssh" / "id_rsa"
    secret.parent.mkdir(parents=True)
    secret.write_text("PRIVATE KEY")
    body = (f'if _, err := os.ReadFile("{secret}"); err != nil {{ ' + PRINT_HELLO + ' } else { fmt.Println("LEAK") }')
    g = grade(exam, toolchain, prog(["os"], body))
    assert g.points == 3


def test_no_outbound_network(isolation, exam, toolchain):
    if isolation.level is sandbox.Isolation.PLAIN:
        pytest.skip("plain isolation does not contain the network (docs/security.md)")
    body = ('c, err := net.DialTimeout("tcp", "192.0.2.1:80", 2*time.Second)\n'
            'if err != nil && strings.Contains(err.Error(), "unreachable") { ' + PRINT_HELLO + ' } '
            'else { fmt.Println("CONNECTED", c, err) }')
    g = grade(exam, toolchain, prog(["net", "strings", "time"], body))
    assert g.points == 3, g.check("case:plain").detail


def test_fixed_port_in_parallel_gradings(isolation, exam, toolchain):
    if isolation.level is sandbox.Isolation.PLAIN:
        pytest.skip("plain isolation shares the host network: fixed ports collide (docs/security.md)")
    body = ('l, err := net.Listen("tcp", ":8080")\nif err != nil { fmt.Println(err); return }\n'
            'time.Sleep(1500 * time.Millisecond)\nl.Close()\n' + PRINT_HELLO)
    src = prog(["net", "time"], body)
    results = []

    def one():
        results.append(grade_source(exam, exam.tasks[0], src, toolchain).points)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [3, 3]
