"""``sweep exams new``: a working exam skeleton for each grader kind.

Each skeleton has a manifest, a prompt, a reference solution, one known-bad variant
and its checks (hidden cases, a ``checks.py``, or a ``*_test.go`` file), and passes
``sweep exams validate`` as written: edit it from a state that works.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.errors import ExamError

KINDS = ("stdio", "checks", "gotest")

_SUM_MAIN = """package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

func main() {
	sum := 0
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		for _, f := range strings.Fields(sc.Text()) {
			n, err := strconv.Atoi(f)
			if err != nil {
				fmt.Fprintln(os.Stderr, "not a number:", f)
				os.Exit(1)
			}
			sum += n
		}
	}
	fmt.Println(sum)
}
"""

_STDIO = {
    "exam.toml": """id = "{name}"
title = "Sum the integers on standard input"
version = 1
grader = "stdio"          # checks: build (1) + runs (1) + one per hidden case, sharing the rest

[limits]
run_timeout_s = 5

[[tasks]]
id = "sum"
prompt = "prompts/sum.md.j2"
points = 5
reference = "reference/main.go"

  [[tasks.cases]]
  name = "small"          # the first case also decides `runs`: make it ordinary
  stdin = "1 2 3\\n"
  expect_stdout = "6\\n"

  [[tasks.cases]]
  name = "negative"
  stdin = "10\\n-4 -6\\n5\\n"
  expect_stdout = "5\\n"

  [[tasks.cases]]
  name = "empty"
  stdin = ""
  expect_stdout = "0\\n"

  [[tasks.variants]]
  name = "skips-negative"
  file = "bad/skips-negative.go"
  points = 4
  fail = ["case:negative"]
  why = "Parses digits only, so negative numbers are skipped."
""",
    "prompts/sum.md.j2": """Write a Go program (standard library only) that reads whitespace-separated integers from
standard input (possibly negative, over several lines, possibly none) and prints their sum on
one line. Reply with the complete program in one ```go block.
""",
    "reference/main.go": _SUM_MAIN,
    "bad/skips-negative.go": _SUM_MAIN.replace(
        '\t\t\tn, err := strconv.Atoi(f)\n',
        '\t\t\tif strings.HasPrefix(f, "-") {\n\t\t\t\tcontinue\n\t\t\t}\n\t\t\tn, err := strconv.Atoi(f)\n'),
}

_GREET_MAIN = """package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	name := flag.String("name", "", "who to greet")
	flag.Parse()
	if *name == "" {
		fmt.Fprintln(os.Stderr, "usage: greet -name NAME")
		os.Exit(2)
	}
	fmt.Printf("hello, %s\\n", *name)
}
"""

_CHECKS = {
    "exam.toml": """id = "{name}"
title = "Greet by name"
version = 1
grader = "checks"         # checks.py drives the built binary in the check driver

[limits]
run_timeout_s = 10        # wall bound of each run of the program
check_timeout_s = 60      # the whole checks.py

[[tasks]]
id = "greet"
prompt = "prompts/greet.md.j2"
points = 2
reference = "reference/main.go"
checks = [
    { name = "Greets", points = 1 },
    { name = "RejectsMissingName", points = 1 },
]

  [[tasks.variants]]
  name = "greets-nobody"
  file = "bad/greets-nobody.go"
  points = 1
  fail = ["RejectsMissingName"]
  why = "Without -name it greets an empty name and exits 0."
""",
    "prompts/greet.md.j2": """Write a Go program (standard library only) that takes a `-name NAME` flag and prints
`hello, NAME` on one line. Without `-name` it prints a usage line to standard error and exits
with status 2. Reply with the complete program in one ```go block.
""",
    "reference/main.go": _GREET_MAIN,
    "bad/greets-nobody.go": _GREET_MAIN.replace(
        '\tif *name == "" {\n\t\tfmt.Fprintln(os.Stderr, "usage: greet -name NAME")\n\t\tos.Exit(2)\n\t}\n', ""
    ).replace('\t"os"\n', ""),
    "checks.py": '''"""Checks for the greet task: one CheckResult per check declared in exam.toml."""

from __future__ import annotations

from harness.exams.checkkit import CheckContext, CheckResult


def run_checks(ctx: CheckContext) -> list[CheckResult]:
    out = []
    res = ctx.run(["-name", "Ada"])
    if res.ok and res.stdout_text().strip() == "hello, Ada":
        out.append(CheckResult.passing("Greets", 1))
    else:
        out.append(CheckResult.failing("Greets", 1, f"{res.describe_exit()}: {res.stdout_text()[:80]!r}"))
    res = ctx.run([])
    if res.returncode == 2:
        out.append(CheckResult.passing("RejectsMissingName", 1))
    else:
        out.append(CheckResult.failing("RejectsMissingName", 1, f"without -name: {res.describe_exit()}"))
    return out
''',
}

_COUNTER = """// Package counter counts events from many goroutines.
package counter

import "sync"

// Counter is safe for concurrent use.
type Counter struct {
	mu sync.Mutex
	n  map[string]int
}

// New returns an empty Counter.
func New() *Counter {
	return &Counter{n: map[string]int{}}
}

// Add adds delta to key's count.
func (c *Counter) Add(key string, delta int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[key] += delta
}

// Get returns key's count (0 for a key never added).
func (c *Counter) Get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}
"""

_GOTEST = {
    "exam.toml": """id = "{name}"
title = "A counter safe for concurrent use"
version = 1
grader = "gotest"         # tests/*_test.go compiled with the answer's package

[limits]
check_timeout_s = 60      # Go's -test.timeout for each check (each runs in a process of its own)

[[tasks]]
id = "counter"
prompt = "prompts/counter.md.j2"
points = 3
reference = "reference/counter.go"
race = true               # the test binary is built and run with -race
tests = ["tests/counter_test.go"]
checks = [                # a test or a subtest (TestX/name); each is a check
    { name = "TestCounter/single", points = 1 },
    { name = "TestCounter/missing-key", points = 1 },
    { name = "TestConcurrentAdds", points = 1 },
]

  [[tasks.variants]]
  name = "no-lock"
  file = "bad/no-lock.go"
  points = 2
  fail = ["TestConcurrentAdds"]
  why = "No mutex: concurrent Adds race on the map (-race reports it; without -race it may even pass)."
""",
    "prompts/counter.md.j2": """Write a Go package `counter` (one file, standard library only) with this API:

```go
func New() *Counter
func (c *Counter) Add(key string, delta int) // safe for concurrent use
func (c *Counter) Get(key string) int        // 0 for a key never added
```

Reply with the complete file in one ```go block. Do not write tests.
""",
    "reference/counter.go": _COUNTER,
    "bad/no-lock.go": _COUNTER.replace('import "sync"\n\n', "").replace("\tmu sync.Mutex\n", "")
    .replace("\tc.mu.Lock()\n\tdefer c.mu.Unlock()\n", ""),
    "tests/counter_test.go": """package counter_test

// The external test package: the answer's names cannot clash with the tests'.
// The answer's package is imported as "answer" (the grader's module path).
import (
	"sync"
	"testing"

	"answer"
)

func TestCounter(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		c := counter.New()
		c.Add("a", 2)
		c.Add("a", 3)
		if got := c.Get("a"); got != 5 {
			t.Fatalf("Get(a) = %d after adding 2 and 3, want 5", got)
		}
	})
	t.Run("missing-key", func(t *testing.T) {
		if got := counter.New().Get("nope"); got != 0 {
			t.Fatalf("Get of a key never added = %d, want 0", got)
		}
	})
}

func TestConcurrentAdds(t *testing.T) {
	c := counter.New()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20000; i++ {
				c.Add("k", 1)
			}
		}()
	}
	wg.Wait()
	if got := c.Get("k"); got != 8*20000 {
		t.Fatalf("Get(k) = %d after 8 goroutines added 20000 each", got)
	}
}
""",
}

_TEMPLATES: dict[str, dict[str, str]] = {"stdio": _STDIO, "checks": _CHECKS, "gotest": _GOTEST}


def new_exam(name: str, grader: str, parent: Path) -> Path:
    """Write the skeleton of exam ``name`` (grader kind ``grader``) to
    ``parent/name``; returns the directory. Refuses to write over anything."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_\-]*", name):
        raise ExamError(f"exam name {name!r} must be lower-case letters, digits, '-' or '_'",
                        hint="e.g. sweep exams new my-exam --grader stdio")
    if grader not in _TEMPLATES:
        raise ExamError(f"unknown grader kind {grader!r}", hint=f"one of: {', '.join(KINDS)}")
    root = parent / name
    if root.exists():
        raise ExamError(f"{root} already exists", hint="pick another name or directory")
    for rel, text in _TEMPLATES[grader].items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text.replace("{name}", name) if rel == "exam.toml" else text, encoding="utf-8")
    return root
