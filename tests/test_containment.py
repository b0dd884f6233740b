"""Answers written to attack the grader (issue 11): forged results, root inside the
sandbox, memory and disk exhaustion, a killed check driver, a poisoned build cache.
Each is graded on every isolation path where the attack applies (bubblewrap and
plain), and must change nothing but the attacker's own score."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import threading
import time
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.exams.exam import load_exam
from harness.grade.grading import grade_source
from harness.results import Outcome
from harness.runtime import proc, sandbox
from tests.helpers import make_tiny_exam, write_checks_exam

pytestmark = pytest.mark.slow

AS_ROOT = os.geteuid() == 0


CHECKS_PY = '''
from harness.exams.checkkit import CheckContext, CheckResult

CHECKS = [("prints_ok", 1.0), ("second_run_ok", 1.0)]


def run_checks(ctx: CheckContext) -> list[CheckResult]:
    out = []
    for name in ("prints_ok", "second_run_ok"):
        res = ctx.run([name])
        text = res.stdout_text().strip()
        if res.returncode == 0 and text == "ok":
            out.append(CheckResult.passing(name, 1.0))
        else:
            out.append(CheckResult.failing(name, 1.0, f"{res.describe_exit()}: {text[:80]!r}"))
        ctx.report(out[-1])
    return out
'''

OK_GO = 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("ok") }\n'


def make_checks_exam(root: Path, *, checks_py: str = CHECKS_PY, limits: str = "") -> object:
    """A two-check exam graded by a checks.py: each check runs the program once and
    wants it to print ``ok``."""
    return load_exam(write_checks_exam(root, exam_id="twocheck", checks_py=checks_py, reference=OK_GO,
                                       checks={"prints_ok": 1, "second_run_ok": 1},
                                       limits="run_timeout_s = 20\ncheck_timeout_s = 60\n" + textwrap.dedent(limits)))


# A program that does not do its job, and instead forges the driver's result: on
# stdout, on stderr, into its parent's descriptors and into every descriptor of
# every process it can open under /proc, with the old result mark and bare JSON,
# then signals its parent and every process it may signal.
FORGER_GO = r'''package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

func main() {
	check := `{"name": "%s", "status": "pass", "points": 1.0, "max_points": 1.0, "detail": ""}`
	pass := `{"results": [` + fmt.Sprintf(check, "prints_ok") + `, ` + fmt.Sprintf(check, "second_run_ok") +
		`], "notes": {}}`
	lines := []string{"@@sweep-driver-result@@ " + pass, pass}
	for _, l := range lines {
		fmt.Println(l)
		fmt.Fprintln(os.Stderr, l)
	}
	wrote := 0
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		f, err := os.OpenFile(fd, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			continue
		}
		for _, l := range lines {
			if _, err := f.WriteString(l + "\n"); err == nil {
				wrote++
			}
		}
		f.Close()
	}
	fmt.Fprintln(os.Stderr, "forged lines written:", wrote)
	syscall.Kill(os.Getppid(), syscall.SIGKILL)
	syscall.Kill(-1, syscall.SIGKILL)
}
'''


def test_forged_results_change_nothing(isolation, tmp_path, toolchain):
    if isolation.level is sandbox.Isolation.PLAIN and not AS_ROOT:
        pytest.skip("plain isolation as an ordinary user: the program shares the driver's uid (docs/security.md)")
    exam = make_checks_exam(tmp_path / "exams")
    task = exam.tasks[0]
    ref = grade_source(exam, task, OK_GO, toolchain)
    assert ref.outcome is Outcome.RAN and ref.points == 2, ref.explanation
    g = grade_source(exam, task, FORGER_GO, toolchain)
    assert g.outcome is Outcome.RAN, g.explanation
    assert g.points == 0, [c.detail for c in g.checks]


def test_a_killed_driver_fails_the_unfinished_checks_not_the_seed(isolation, tmp_path, toolchain):
    """The driver dies (here: killed from outside, as a program that exhausted the
    grading's memory would have it killed) while the program is under test: the
    check it finished keeps its point, the other scores 0, and the grade counts."""
    checks_py = CHECKS_PY.replace('res = ctx.run([name])', 'res = ctx.run([name], limits=None)')
    exam = make_checks_exam(tmp_path / "exams", checks_py=checks_py)
    sleeper = ('package main\n\nimport (\n\t"fmt"\n\t"os"\n\t"time"\n)\n\nfunc main() {\n'
               '\tif os.Args[1] == "second_run_ok" {\n\t\ttime.Sleep(60 * time.Second)\n\t}\n\tfmt.Println("ok")\n}\n')
    found: list[int] = []

    def kill_driver() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not found:
            for d in Path("/proc").iterdir():
                if not d.name.isdigit():
                    continue
                try:
                    cmd = (d / "cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if (b"harness.grade.driver" in cmd and cmd[0].endswith((b"python", b"python3")) and
                        _descends_from(int(d.name), os.getpid())):
                    # wait until the second program is running, then kill the driver
                    time.sleep(1.5)
                    try:
                        os.kill(int(d.name), signal.SIGKILL)
                        found.append(int(d.name))
                    except OSError:
                        continue
                    return
            time.sleep(0.05)

    t = threading.Thread(target=kill_driver)
    t.start()
    g = grade_source(exam, exam.tasks[0], sleeper, toolchain)
    t.join()
    assert found, "the driver process was not found"
    assert g.outcome is Outcome.RAN, g.explanation
    assert g.check("prints_ok").passed
    second = g.check("second_run_ok")
    assert not second.passed and "check driver" in second.detail and "under test" in second.detail
    assert g.points == 1


@pytest.mark.skipif(not AS_ROOT, reason="only as root: the point is that root outside is not root inside")
def test_as_root_the_code_is_an_unprivileged_uid_without_capabilities(isolation, tmp_path):
    secret_dir = tmp_path / "bound"
    secret_dir.mkdir()
    secret = secret_dir / "root-only"
    secret.write_text("TOP SECRET")
    os.chmod(secret, 0o600)
    script = (f"id -u; grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status; "
              f"if cat {secret} 2>/dev/null; then echo READ-ROOT-FILE; fi; "
              "if [ -w /proc/sys/kernel/core_pattern ]; then echo CORE-PATTERN-WRITABLE; fi; "
              "if (echo x > /proc/sys/kernel/core_pattern) 2>/dev/null; then echo CORE-PATTERN-WRITTEN; fi; "
              "ls /etc/ssl/private 2>/dev/null && echo SSL-PRIVATE-VISIBLE; true")
    for role in (sandbox.Role.RUN, sandbox.Role.BUILD):
        res = sandbox.run(["/bin/sh", "-c", script], env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path / "cwd",
                          private=[tmp_path / "cwd"], readable=[secret_dir], role=role,
                          limits=proc.Limits(wall_s=20))
        out = res.stdout_text()
        assert res.returncode == 0, (out, res.stderr_text())
        uid = int(out.split()[0])
        assert uid != 0 and uid == isolation.uid_for(role)
        for line in out.splitlines()[1:4]:
            assert line.split()[1] == "0000000000000000", out
        for bad in ("TOP SECRET", "READ-ROOT-FILE", "CORE-PATTERN-WRITABLE", "CORE-PATTERN-WRITTEN",
                    "SSL-PRIVATE-VISIBLE"):
            assert bad not in out, out


def test_programs_under_a_driver_are_unprivileged_and_blind_to_it(isolation, tmp_path, toolchain):
    """The program a check starts sees no process but its own (bwrap), is not root
    (as root) and cannot open the descriptors of any process it can see."""
    if isolation.level is sandbox.Isolation.PLAIN and not AS_ROOT:
        pytest.skip("plain isolation as an ordinary user: the program shares the driver's uid (docs/security.md)")
    exam = make_checks_exam(tmp_path / "exams")
    spy = r'''package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	bad := []string{}
	if os.Getuid() == 0 || os.Geteuid() == 0 {
		bad = append(bad, "root")
	}
	status, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "CapEff:") && !strings.HasSuffix(l, "0000000000000000") {
			bad = append(bad, "caps")
		}
	}
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		pid := strings.Split(fd, "/")[2]
		if pid == fmt.Sprint(os.Getpid()) || pid == "self" {
			continue
		}
		if f, err := os.OpenFile(fd, os.O_WRONLY, 0); err == nil {
			f.Close()
			st, _ := os.ReadFile("/proc/" + pid + "/status")
			mine := fmt.Sprintf("Uid:\t%d\t", os.Getuid())
			if strings.Contains(string(st), mine) {
				bad = append(bad, "opened-same-uid "+fd)
			} else {
				bad = append(bad, "opened-foreign "+fd)
			}
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), "harness.grade.driver") {
			bad = append(bad, "sees the driver")
		}
	}
	if len(bad) == 0 {
		fmt.Println("ok")
	} else {
		fmt.Println(strings.Join(bad, "; "))
	}
}
'''
    g = grade_source(exam, exam.tasks[0], spy, toolchain)
    if isolation.level is sandbox.Isolation.BWRAP:
        assert g.points == 2, [c.detail for c in g.checks]
    else:
        # plain as root: the driver (root) is visible but nothing of it can be opened
        # (other gradings' programs share the run uid: docs/security.md)
        detail = g.check("prints_ok").detail
        assert g.points == 2 or not any(w in detail for w in ("opened-foreign", "root", "caps")), detail


def test_total_memory_of_a_grading_is_bounded(isolation, tmp_path, toolchain):
    if isolation.cgroups.memory is None:
        pytest.skip("no writable memory cgroup here")
    exam = make_checks_exam(tmp_path / "exams", limits="grading_memory_mb = 300\nmemory_mb = 2048\n")
    # each run stays under the per-process address-space limit (2 GiB) but touches
    # 400 MiB, more than the whole grading may hold
    hog = ('package main\n\nimport (\n\t"fmt"\n\t"time"\n)\n\nfunc main() {\n'
           '\tb := make([]byte, 400<<20)\n\tfor i := range b { b[i] = 1 }\n'
           '\ttime.Sleep(200 * time.Millisecond)\n\tfmt.Println("ok", len(b))\n}\n')
    g = grade_source(exam, exam.tasks[0], hog, toolchain)
    assert g.outcome is Outcome.RAN, g.explanation
    assert g.points == 0
    assert g.details.get("oom_kills", 0) >= 1
    assert "memory limit of 300 MiB" in g.check("prints_ok").detail


def test_scratch_disk_is_bounded(isolation, tmp_path, toolchain):
    if isolation.level is sandbox.Isolation.PLAIN:
        pytest.skip("plain isolation has no size-limited scratch: files are capped one by one (docs/security.md)")
    exam = make_tiny_exam(tmp_path / "exams", expect="full\n")
    filler = ('package main\n\nimport (\n\t"fmt"\n\t"os"\n)\n\nfunc main() {\n'
              '\tbuf := make([]byte, 1<<20)\n'
              '\tfor _, dir := range []string{".", os.TempDir(), os.Getenv("HOME")} {\n'
              '\t\tfor i := 0; i < 4096; i++ {\n'
              '\t\t\tf, err := os.Create(fmt.Sprintf("%s/fill-%d", dir, i))\n'
              '\t\t\tif err != nil { break }\n'
              '\t\t\tfor j := 0; j < 8; j++ { if _, err = f.Write(buf); err != nil { break } }\n'
              '\t\t\tf.Close()\n\t\t\tif err != nil { break }\n\t\t}\n\t}\n'
              '\tfmt.Println("full")\n}\n')
    before = _disk_used()
    g = grade_source(exam, exam.tasks[0], filler, toolchain)
    # the program ran into the size limit (else it would write 96 GiB) and printed "full"
    assert g.points == 3, [c.detail for c in g.checks]
    assert _disk_used() - before < 256 * proc.MiB


def _descends_from(pid: int, ancestor: int) -> bool:
    """Whether ``pid`` is a descendant of ``ancestor`` (other sweeps' drivers may run)."""
    for _ in range(64):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        if pid == ancestor:
            return True
        if pid <= 1:
            return False
    return False


def _disk_used() -> int:
    st = os.statvfs("/tmp")
    return (st.f_blocks - st.f_bfree) * st.f_frsize


@pytest.mark.skipif(not AS_ROOT, reason="plain as root runs programs as another uid; as a user it cannot")
def test_plain_as_root_cannot_poison_the_build_cache(monkeypatch, tmp_path, toolchain):
    monkeypatch.setenv("SWEEP_ISOLATION", "plain")
    sandbox.reset()
    try:
        exam = make_tiny_exam(tmp_path / "exams", expect="denied\n")
        marker = toolchain.cache / "poisoned-by-an-answer"
        body = (f'f, err := os.Create({json.dumps(str(marker))})\n'
                'if err != nil { fmt.Println("denied"); return }\nf.Close()\nfmt.Println("WROTE")')
        src = f'package main\n\nimport (\n\t"fmt"\n\t"os"\n)\n\nfunc main() {{\n{body}\n}}\n'
        g = grade_source(exam, exam.tasks[0], src, toolchain)
        assert not marker.exists()
        assert g.points == 3, [c.detail for c in g.checks]
        assert g.details["isolation"].startswith("plain+uid")
        # and a correct answer still builds from the cache
        ok = grade_source(exam, exam.tasks[0], 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("denied") }\n',
                          toolchain)
        assert ok.points == 3
    finally:
        sandbox.reset()


@pytest.mark.skipif(not AS_ROOT, reason="the refusal is for root")
def test_auto_never_falls_back_to_plain_as_root(monkeypatch):
    monkeypatch.setenv("SWEEP_ISOLATION", "auto")
    monkeypatch.setattr(sandbox, "_bwrap_binary", lambda: None)
    sandbox.reset()
    try:
        with pytest.raises(ConfigError, match="refusing to run model code as root without a sandbox.*SWEEP_ISOLATION=plain"):
            sandbox.current()
    finally:
        sandbox.reset()


def test_every_grade_names_its_isolation(isolation, tmp_path, toolchain):
    exam = make_tiny_exam(tmp_path / "exams")
    g = grade_source(exam, exam.tasks[0], 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello, world") }\n',
                     toolchain)
    assert g.details["isolation"] == isolation.label()
    bad = grade_source(exam, exam.tasks[0], "package main\n\nfunc main() { undefined() }\n", toolchain)
    assert bad.outcome is Outcome.BUILD_FAILED and bad.details["isolation"] == isolation.label()


def test_a_sandbox_that_cannot_start_is_our_fault(isolation, tmp_path, toolchain, monkeypatch):
    """If the sandbox fails before the program starts, the grade is grading_error,
    never a failed program (here: bwrap is told to bind a path that does not exist)."""
    if isolation.level is not sandbox.Isolation.BWRAP:
        pytest.skip("bwrap only")
    exam = make_tiny_exam(tmp_path / "exams")
    real = sandbox._base_mounts

    def broken(tmp_bytes, *, proc_sys_ro):
        return [*real(tmp_bytes, proc_sys_ro=proc_sys_ro), "--ro-bind", "/nonexistent-for-test", "/x"]

    toolchain.build(OK_GO, tmp_path / "warm")   # the build itself uses the real mounts
    monkeypatch.setattr(sandbox, "_base_mounts", broken)
    g = grade_source(exam, exam.tasks[0], 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello, world") }\n',
                     toolchain)
    assert g.outcome is Outcome.GRADING_ERROR, g.explanation
    assert "sandbox failed to start" in g.explanation


def test_leftovers_of_a_killed_run_are_reclaimed(tmp_path):
    """A scratch directory and a cgroup named after a pid that is gone are removed;
    ones of a live pid are kept."""
    dead = _dead_pid()
    gone = tmp_path / f"sweep-x-y-p{dead}-abc"
    live = tmp_path / f"sweep-x-y-p{os.getpid()}-abc"
    for d in (gone, live):
        (d / "sub").mkdir(parents=True)
    roots = sandbox._cgroup_roots()
    cg = None
    if roots.pids is not None:
        cg = roots.pids / f"exam-sweep-{dead}-deadbeef"
        cg.mkdir()
    removed = sandbox.reclaim_leftovers(roots, tmp_path)
    assert not gone.exists() and live.exists()
    assert str(gone) in removed
    if cg is not None:
        assert not cg.exists() and str(cg) in removed


def _dead_pid() -> int:
    import subprocess

    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_reports_and_logs_name_the_isolation_of_their_grades():
    import pandas as pd

    from harness import report
    from harness.report import logs

    sub = pd.DataFrame({
        "grade_details": [{"isolation": "bwrap+uid64191+memcg+pidscg", "build_s": 0.2},
                          {"isolation": "bwrap+uid64191+memcg+pidscg", "build_s": 0.3},
                          {"isolation": "plain+uid64191", "build_status": "compile_error"},
                          {"build_s": 0.1},     # graded before isolation was recorded
                          {}, None],            # no code: nothing built
        "grader_hash": ["h", "h", "h", "h", "h", None],
    })
    assert report.isolation_note(sub) == ("isolation bwrap+uid64191+memcg+pidscg (2 grades), "
                                          "not recorded (1 grade), plain+uid64191 (1 grade)")
    assert logs._isolation({"isolation": "bwrap"}) == "bwrap"
    assert logs._isolation({}) is None


CONCURRENT_CHECKS_PY = '''
import threading

from harness.exams.checkkit import CheckContext, CheckResult, CheckStatus, poll_until

CHECKS = [("prints_ok", 1.0), ("second_run_ok", 1.0)]


def run_checks(ctx: CheckContext) -> list[CheckResult]:
    out = {}
    full = threading.Event()   # the first program says it has made all the processes it could

    def first():
        with ctx.spawn(["prints_ok"]) as p:
            poll_until(lambda: b"full" in p.stdout_so_far(), 120, alive=lambda: p.poll() is None)
            full.set()
            p.wait(ctx.limits.wall_s)
            ok = p.poll() == 0 and p.stdout_so_far().decode().split()[-1:] == ["ok"]
        out["prints_ok"] = CheckResult.passing("prints_ok", 1.0) if ok else CheckResult.failing("prints_ok", 1.0, "no")

    def second():
        full.wait(120)
        try:
            res = ctx.run(["second_run_ok"])
        except Exception as e:  # a grader error, as the scraper exam's checks report one
            out["second_run_ok"] = CheckResult("second_run_ok", CheckStatus.ERROR, 0.0, 1.0, f"grader error: {e}")
            return
        ok = res.returncode == 0 and res.stdout_text().strip() == "ok"
        out["second_run_ok"] = (CheckResult.passing("second_run_ok", 1.0) if ok
                                else CheckResult.failing("second_run_ok", 1.0, res.describe_exit()))

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [out["prints_ok"], out["second_run_ok"]]
'''

FORK_BOMB_GO = '''package main

import (
	"fmt"
	"os"
	"os/exec"
	"time"
)

func main() {
	if os.Args[1] == "prints_ok" {
		for i := 0; i < 5000; i++ {
			if err := exec.Command("/bin/sleep", "30").Start(); err != nil {
				break
			}
		}
		fmt.Println("full")
		time.Sleep(5 * time.Second)
	}
	fmt.Println("ok")
}
'''


def test_a_fork_bomb_that_starves_other_checks_is_the_programs_fault(isolation, tmp_path, toolchain):
    """One program exhausts the grading's process count while another check tries to
    start the program: that check fails (the answer's doing), no grading_error."""
    if isolation.cgroups.pids is None:
        pytest.skip("no writable pids cgroup here")
    exam = make_checks_exam(tmp_path / "exams", checks_py=CONCURRENT_CHECKS_PY)
    g = grade_source(exam, exam.tasks[0], FORK_BOMB_GO, toolchain)
    assert g.outcome is Outcome.RAN, g.explanation
    assert g.details.get("pids_limit_hits", 0) >= 1
    second = g.check("second_run_ok")
    assert not second.passed and "process limit" in second.detail, second.detail
    assert "could not be checked" in second.detail, second.detail     # its start failed at the limit


def test_terminal_escapes_in_program_output_never_reach_the_user(tmp_path, toolchain):
    exam = make_tiny_exam(tmp_path / "exams")
    src = ('package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("\\x1b]0;pwned\\x07\\x1b[2Jhello") }\n')
    g = grade_source(exam, exam.tasks[0], src, toolchain)
    text = g.explanation + "".join(c.detail for c in g.checks)
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b" in g.check("case:plain").detail


@pytest.mark.skipif(not AS_ROOT, reason="simulates an ordinary user with setpriv, which needs root")
def test_an_ordinary_users_sandboxes_start_and_hold(monkeypatch, tmp_path):
    """The wrapping an ordinary user gets (bwrap without root: a user namespace of
    its own), run here as uid 60001: every role starts; model code cannot create
    user namespaces of its own; only the check driver can (for its programs)."""
    import dataclasses
    import subprocess

    monkeypatch.setenv("SWEEP_ISOLATION", "bwrap")
    sandbox.reset()
    try:
        box = sandbox.current()
    except ConfigError as e:
        pytest.skip(f"bwrap not available here: {e}")
    finally:
        sandbox.reset()
    user_box = dataclasses.replace(box, as_root=False)
    script = ("id -u; if unshare -U true 2>/dev/null; then echo NESTED-USERNS; fi; "
              "if [ -w /proc/sys/kernel/core_pattern ]; then echo CORE-PATTERN-WRITABLE; fi; echo done")
    cwd = tmp_path / "cwd"
    for role in sandbox.Role:
        argv, _ = user_box.wrap(["/bin/sh", "-c", script], env={"PATH": "/usr/bin:/bin"}, cwd=cwd, private=[cwd],
                                role=role)
        r = subprocess.run(["setpriv", "--reuid=60001", "--regid=60001", "--clear-groups", "--", *argv],
                           capture_output=True, text=True, timeout=60)
        out = r.stdout.split()
        assert r.returncode == 0 and out[0] == "60001" and out[-1] == "done", (role, r.stdout, r.stderr)
        assert "CORE-PATTERN-WRITABLE" not in out
        assert ("NESTED-USERNS" in out) == (role is sandbox.Role.DRIVER), (role, r.stdout)


def test_a_grading_error_is_never_silent_in_the_report():
    """A seed lost to grading_error is left out of the mean: the report says so, per
    model, so a 0-and-10 model never reads as a quiet 10.0."""
    import pandas as pd

    from harness.report.reduce import grading_errors

    df = pd.DataFrame({"model": ["a", "a", "b"], "seed": [1, 2, 1],
                       "outcome": ["ran", "grading_error", "ran"]})
    warnings = grading_errors(df)
    assert len(warnings) == 1 and warnings[0].startswith("a: 1 attempt(s) ended in grading_error (seeds 2)")
    assert grading_errors(df[df["outcome"] == "ran"]) == []


@pytest.mark.skipif(not AS_ROOT, reason="the uid pool is for plain isolation as root")
def test_plain_as_root_gives_each_grading_a_uid_of_its_own(monkeypatch, tmp_path, toolchain):
    """Without PID namespaces, two gradings at once must not share a uid: else one
    answer's kill(-1) or ptrace reaches the other grading's programs."""
    monkeypatch.setenv("SWEEP_ISOLATION", "plain")
    sandbox.reset()
    try:
        box = sandbox.current()
        with box.grading_group(memory_bytes=None) as a, box.grading_group(memory_bytes=None) as b:
            assert a.run_uid is not None and b.run_uid is not None and a.run_uid != b.run_uid
            assert box.uid_for(sandbox.Role.RUN, a) == a.run_uid
            assert sandbox.inner_for(box, 1 << 20, b).uid == b.run_uid
        # a grading's program prints its uid: one of the pool's, never the shared one
        exam = make_tiny_exam(tmp_path / "exams", expect="pool\n")
        src = ('package main\n\nimport (\n\t"fmt"\n\t"os"\n)\n\nfunc main() {\n'
               f'\tif u := os.Getuid(); u > {sandbox.RUN_UID} && u <= {sandbox.RUN_UID + 64} {{ fmt.Println("pool") }}'
               ' else { fmt.Println(u) }\n}\n')
        g = grade_source(exam, exam.tasks[0], src, toolchain)
        assert g.points == 3, [c.detail for c in g.checks]
    finally:
        sandbox.reset()
