// The exam's hidden tests. They are the external test package copier_test and reach
// the answer only through its exported API (import path "answer": the answer's
// package is the root of module answer), so no name the answer declares can clash
// with a name of theirs.
//
// One test per requirement of the prompt. Every test bounds its own waits (Run runs
// in a goroutine; the test fails if it has not returned in time) and cancels its
// context at the end, so a hanging answer fails one test quickly. Cancellation is
// triggered from inside the stub at a chosen moment (all workers in a call, the
// third failed attempt, ...), never by a timer racing the answer, and every bound
// of a timing check is measured from that moment.
package copier_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	copier "answer"
)

var errTransient = errors.New("transient failure")

// recorder is both the Source and the Sink of the functional tests: it records
// every call under one lock.
type recorder struct {
	mu         sync.Mutex
	fetchDelay time.Duration // each Fetch takes this long (or until its ctx ends)
	storeDelay time.Duration // each Store takes this long (or until its ctx ends)
	hang       map[int]bool  // Fetch of these ids blocks until its ctx ends
	hangAll    bool          // every Fetch blocks until its ctx ends
	lag        time.Duration // a hanging Fetch returns this long after its ctx ends
	failAll    bool          // every Fetch fails
	fetchFails map[int]int   // failing Fetch attempts left per id (-1: always)
	storeFails map[int]int   // failing Store attempts left per id (-1: always)
	fetchCalls map[int]int
	storeCalls map[int]int
	fetchLeft  map[int][]time.Duration // time left on each Fetch's ctx at its start (-1: no deadline)
	storeLeft  map[int][]time.Duration // the same for each Store
	stored     map[int][]byte
	active     int // calls executing now
	maxActive  int
	calls      int // calls started
	lastLeave  time.Time

	// Cancellation: when armed, cancel is called (once) from inside the first call
	// that finds cancelWhen true at its start, settle after that start (so that
	// the rest of the run has reached whatever it does while that call runs), or
	// by the fallback timer.
	cancel     context.CancelFunc
	cancelWhen func(r *recorder) bool
	triggered  bool
	cancelled  bool
	cancelAt   time.Time
	late       int // calls started after the cancel
}

func newRecorder() *recorder {
	return &recorder{hang: map[int]bool{}, fetchFails: map[int]int{}, storeFails: map[int]int{},
		fetchCalls: map[int]int{}, storeCalls: map[int]int{}, fetchLeft: map[int][]time.Duration{},
		storeLeft: map[int][]time.Duration{}, stored: map[int][]byte{}}
}

// arm makes the recorder cancel the run: at the start of the first call for which
// when holds, or after fallback if no call ever satisfies it.
func (r *recorder) arm(cancel context.CancelFunc, when func(r *recorder) bool, fallback time.Duration) {
	r.mu.Lock()
	r.cancel, r.cancelWhen = cancel, when
	r.mu.Unlock()
	time.AfterFunc(fallback, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.fire()
	})
}

func (r *recorder) fire() { // r.mu held
	if r.cancelled || r.cancel == nil {
		return
	}
	r.cancelled = true
	r.cancelAt = time.Now()
	r.cancel()
}

func left(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl)
	}
	return -1
}

// settle: how long a call that triggers the cancel runs before it cancels.
const settle = 20 * time.Millisecond

// enter counts a call's start; true means this call is to cancel the run.
func (r *recorder) enter() bool { // r.mu held
	if r.cancelled {
		r.late++
	}
	r.calls++
	r.active++
	if r.active > r.maxActive {
		r.maxActive = r.active
	}
	if r.cancelWhen != nil && !r.triggered && r.cancelWhen(r) {
		r.triggered = true
		return true
	}
	return false
}

// trigger cancels the run from inside the call that enter chose.
func (r *recorder) trigger() {
	time.Sleep(settle)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fire()
}

func (r *recorder) leave() {
	r.mu.Lock()
	r.active--
	r.lastLeave = time.Now()
	r.mu.Unlock()
}

func pause(ctx context.Context, d time.Duration) error {
	if d == 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *recorder) Fetch(ctx context.Context, id int) ([]byte, error) {
	r.mu.Lock()
	r.fetchLeft[id] = append(r.fetchLeft[id], left(ctx))
	r.fetchCalls[id]++
	trigger := r.enter()
	hang := r.hangAll || r.hang[id]
	fail := r.failAll
	if n := r.fetchFails[id]; n != 0 {
		fail = true
		if n > 0 {
			r.fetchFails[id] = n - 1
		}
	}
	delay, lag := r.fetchDelay, r.lag
	r.mu.Unlock()
	defer r.leave()
	if trigger {
		r.trigger()
	}
	if hang {
		<-ctx.Done()
		time.Sleep(lag)
		return nil, ctx.Err()
	}
	if err := pause(ctx, delay); err != nil {
		return nil, err
	}
	if fail {
		return nil, fmt.Errorf("fetch %d: %w", id, errTransient)
	}
	return []byte(fmt.Sprintf("item-%d", id)), nil
}

func (r *recorder) Store(ctx context.Context, id int, data []byte) error {
	r.mu.Lock()
	r.storeLeft[id] = append(r.storeLeft[id], left(ctx))
	r.storeCalls[id]++
	trigger := r.enter()
	delay := r.storeDelay
	r.mu.Unlock()
	defer r.leave()
	if trigger {
		r.trigger()
	}
	if err := pause(ctx, delay); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := r.storeFails[id]; n != 0 {
		if n > 0 {
			r.storeFails[id] = n - 1
		}
		return fmt.Errorf("store %d: %w", id, errTransient)
	}
	r.stored[id] = append([]byte(nil), data...)
	return nil
}

func (r *recorder) snapshot() (calls, active, maxActive int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls, r.active, r.maxActive
}

type ran struct {
	res copier.Result
	err error
	at  time.Time // when Run returned
}

// run runs c.Run in a goroutine and fails the test if it has not returned in d.
func run(t *testing.T, ctx context.Context, c *copier.Copier, ids []int, d time.Duration) ran {
	t.Helper()
	done := make(chan ran, 1)
	go func() {
		res, err := c.Run(ctx, ids)
		done <- ran{res, err, time.Now()}
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case o := <-done:
		return o
	case <-timer.C:
		t.Fatalf("Run did not return within %v", d)
		return ran{}
	}
}

func ids(from, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = from + i
	}
	return out
}

func sortedCopy(xs []int) []int {
	out := append([]int(nil), xs...)
	sort.Ints(out)
	return out
}

// -- copying, workers, retries ------------------------------------------------

func TestCopiesEveryItem(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRecorder()
	want := ids(1, 50)
	o := run(t, ctx, copier.New(r, r, copier.Options{Workers: 4}), want, 5*time.Second)
	if o.err != nil {
		t.Fatalf("Run returned error %v", o.err)
	}
	if o.res.Stored != len(want) || len(o.res.Failed) != 0 {
		t.Fatalf("Result = %+v, want Stored %d and no failures", o.res, len(want))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range want {
		if got := string(r.stored[id]); got != fmt.Sprintf("item-%d", id) {
			t.Fatalf("id %d stored %q, want the data its Fetch returned", id, got)
		}
	}
}

func TestWorkersBound(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRecorder()
	r.fetchDelay, r.storeDelay = 20*time.Millisecond, 20*time.Millisecond
	o := run(t, ctx, copier.New(r, r, copier.Options{Workers: 3}), ids(1, 12), 5*time.Second)
	if o.err != nil || o.res.Stored != 12 {
		t.Fatalf("Run = %+v, %v; want 12 stored", o.res, o.err)
	}
	if _, _, maxActive := r.snapshot(); maxActive != 3 {
		t.Fatalf("%d calls ran at once with Workers 3 and 12 ids, want exactly 3", maxActive)
	}
}

func TestZeroWorkersMeansOne(t *testing.T) {
	for _, workers := range []int{0, -2} {
		ctx, cancel := context.WithCancel(context.Background())
		r := newRecorder()
		r.fetchDelay = 5 * time.Millisecond
		o := run(t, ctx, copier.New(r, r, copier.Options{Workers: workers}), ids(1, 6), 3*time.Second)
		cancel()
		if o.err != nil || o.res.Stored != 6 {
			t.Fatalf("Workers %d: Run = %+v, %v; want 6 stored", workers, o.res, o.err)
		}
		if _, _, maxActive := r.snapshot(); maxActive != 1 {
			t.Fatalf("%d calls ran at once with Workers %d, want 1", maxActive, workers)
		}
	}
}

func TestRetriesThenSucceeds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRecorder()
	r.fetchFails[2] = 2 // succeeds on the third attempt
	r.storeFails[4] = 2
	o := run(t, ctx, copier.New(r, r, copier.Options{Workers: 1, Retries: 2}), ids(1, 5), 5*time.Second)
	if o.err != nil || o.res.Stored != 5 || len(o.res.Failed) != 0 {
		t.Fatalf("Run = %+v, %v; want 5 stored, none failed (Fetch(2) and Store(4) fail twice, Retries 2)",
			o.res, o.err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fetchCalls[2] != 3 || r.storeCalls[4] != 3 {
		t.Fatalf("Fetch(2) called %d times, Store(4) %d times; want 3 each", r.fetchCalls[2], r.storeCalls[4])
	}
	if string(r.stored[4]) != "item-4" {
		t.Fatalf("id 4 stored %q after two failed Stores, want %q", r.stored[4], "item-4")
	}
}

func TestGivesUpAfterRetries(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRecorder()
	r.fetchFails[9] = -1
	r.storeFails[3] = -1
	o := run(t, ctx, copier.New(r, r, copier.Options{Workers: 1, Retries: 2}), []int{9, 8, 3, 1}, 5*time.Second)
	if o.err != nil {
		t.Fatalf("Run returned error %v; ids that fail are not an error of Run", o.err)
	}
	if got := fmt.Sprint(sortedCopy(o.res.Failed)); o.res.Stored != 2 || got != "[3 9]" {
		t.Fatalf("Result = %+v, want Stored 2 and Failed holding 3 and 9", o.res)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fetchCalls[9] != 3 || r.storeCalls[3] != 3 {
		t.Fatalf("with Retries 2, Fetch(9) (always failing) was called %d times and Store(3) %d times; want 3 each",
			r.fetchCalls[9], r.storeCalls[3])
	}
	if string(r.stored[8]) != "item-8" || string(r.stored[1]) != "item-1" {
		t.Fatalf("ids 8 and 1 stored %q and %q: the other ids carry on", r.stored[8], r.stored[1])
	}
}

func TestFailedAscending(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRecorder()
	var in []int
	for id := 40; id >= 1; id-- {
		in = append(in, id)
		if id%4 == 0 {
			r.fetchFails[id] = -1
		}
	}
	o := run(t, ctx, copier.New(r, r, copier.Options{Workers: 4}), in, 5*time.Second)
	if o.err != nil {
		t.Fatalf("Run returned error %v", o.err)
	}
	want := []int{4, 8, 12, 16, 20, 24, 28, 32, 36, 40}
	if fmt.Sprint(o.res.Failed) != fmt.Sprint(want) {
		t.Fatalf("Failed = %v (the ids were given in descending order), want them ascending: %v", o.res.Failed, want)
	}
}

// -- per-call deadlines ---------------------------------------------------------

func TestAttemptTimeout(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRecorder()
	r.hang[2] = true
	const timeout = 200 * time.Millisecond
	o := run(t, ctx, copier.New(r, r, copier.Options{Workers: 1, Retries: 1, AttemptTimeout: timeout}),
		ids(1, 3), 3*time.Second)
	if o.err != nil || o.res.Stored != 2 || fmt.Sprint(o.res.Failed) != "[2]" {
		t.Fatalf("Run = %+v, %v; want Stored 2, Failed [2] (Fetch(2) hangs, AttemptTimeout %v)", o.res, o.err, timeout)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.fetchLeft[2]) != 2 {
		t.Fatalf("Fetch(2) called %d times with Retries 1, want 2 (a timed-out call is a failed attempt)",
			len(r.fetchLeft[2]))
	}
	for i, l := range r.fetchLeft[2] {
		if l < timeout/2 || l > timeout {
			t.Fatalf("attempt %d of Fetch(2) started with %v left on its context, want its own %v", i+1, l, timeout)
		}
	}
}

func TestStoreAttemptTimeout(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRecorder()
	r.fetchDelay = 250 * time.Millisecond
	const timeout = 400 * time.Millisecond
	o := run(t, ctx, copier.New(r, r, copier.Options{Workers: 1, AttemptTimeout: timeout}), ids(1, 2), 3*time.Second)
	if o.err != nil || o.res.Stored != 2 {
		t.Fatalf("Run = %+v, %v; want 2 stored", o.res, o.err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range []int{1, 2} {
		for _, l := range r.storeLeft[id] {
			if l < timeout/2 || l > timeout {
				what := fmt.Sprintf("%v left", l)
				if l < 0 {
					what = "no deadline"
				}
				t.Fatalf("Store(%d), after a Fetch of 250ms, started with %s on its context, want its own %v",
					id, what, timeout)
			}
		}
	}
}

func TestNoDeadlineWhenZero(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRecorder()
	o := run(t, ctx, copier.New(r, r, copier.Options{Workers: 2, Retries: 1}), ids(1, 4), 3*time.Second)
	if o.err != nil || o.res.Stored != 4 {
		t.Fatalf("Run = %+v, %v; want 4 stored", o.res, o.err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := 1; id <= 4; id++ {
		for _, l := range append(append([]time.Duration(nil), r.fetchLeft[id]...), r.storeLeft[id]...) {
			if l >= 0 {
				t.Fatalf("a call on id %d had a deadline %v away with AttemptTimeout 0 (0 means none)", id, l)
			}
		}
	}
}

// -- cancellation ---------------------------------------------------------------

// The bound on "returns promptly": a ctx-blind wait of 200 ms or more between
// attempts always exceeds it; see docs/exams/parallel-copier.md for its
// false-fail rate on correct answers under load.
const promptly = 150 * time.Millisecond

func TestCancelReturnsPromptly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRecorder()
	r.failAll = true
	// Cancel inside the third attempt at id 1: the run is between retries then.
	r.arm(cancel, func(r *recorder) bool { return r.calls == 3 }, 2*time.Second)
	o := run(t, ctx, copier.New(r, r, copier.Options{Workers: 1, Retries: 5}), ids(1, 5), 3*time.Second)
	r.mu.Lock()
	at := r.cancelAt
	r.mu.Unlock()
	if !errors.Is(o.err, context.Canceled) {
		t.Fatalf("Run returned error %v after its context was cancelled, want one that is context.Canceled", o.err)
	}
	if el := o.at.Sub(at); el > promptly {
		t.Fatalf("Run returned %v after the cancel (which came during its third attempt at an id), want within %v",
			el.Round(time.Millisecond), promptly)
	}
}

func TestCancelWaitsForCalls(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRecorder()
	r.hangAll = true
	r.lag = 300 * time.Millisecond // each call returns 300ms after its ctx ends
	r.arm(cancel, func(r *recorder) bool { return r.active == 4 }, 500*time.Millisecond)
	o := run(t, ctx, copier.New(r, r, copier.Options{Workers: 4}), ids(1, 8), 5*time.Second)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active != 0 || r.lastLeave.After(o.at) {
		t.Fatalf("Run returned while calls it started were still running (%d running now; the last returned %v after Run)",
			r.active, r.lastLeave.Sub(o.at).Round(time.Millisecond))
	}
}

func TestCancelStartsNoNewCall(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRecorder()
	r.hangAll = true
	// Cancel when all three workers are inside a call: every call after that is new.
	r.arm(cancel, func(r *recorder) bool { return r.active == 3 }, 500*time.Millisecond)
	o := run(t, ctx, copier.New(r, r, copier.Options{Workers: 3, Retries: 2}), ids(1, 30), 3*time.Second)
	r.mu.Lock()
	before := r.late
	r.mu.Unlock()
	if before != 0 {
		t.Fatalf("Run started %d calls after its context was cancelled, before it returned", before)
	}
	time.Sleep(100 * time.Millisecond)
	r.mu.Lock()
	after := r.late
	r.mu.Unlock()
	if after != 0 {
		t.Fatalf("%d calls started after Run returned (%v)", after, o.err)
	}
}

func TestCancelReachesCallsInFlight(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRecorder()
	r.hangAll = true
	const timeout = 5 * time.Second
	r.arm(cancel, func(r *recorder) bool { return r.active == 3 }, 500*time.Millisecond)
	o := run(t, ctx, copier.New(r, r, copier.Options{Workers: 3, AttemptTimeout: timeout}), ids(1, 9), 3*time.Second)
	r.mu.Lock()
	at := r.cancelAt
	r.mu.Unlock()
	if el := o.at.Sub(at); el > time.Second {
		t.Fatalf("with AttemptTimeout %v, Run returned %v after the cancel: the cancel did not reach the calls in flight",
			timeout, el.Round(time.Millisecond))
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	for round := 0; round < 2; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		r := newRecorder()
		r.hang[5] = true
		r.storeDelay = time.Millisecond
		// Cancel with a call in flight, every worker busy and most ids not handed out yet.
		r.arm(cancel, func(r *recorder) bool { return len(r.stored) >= 20 && r.active == 3 }, time.Second)
		run(t, ctx, copier.New(r, r, copier.Options{Workers: 3}), ids(1, 60), 3*time.Second)
		cancel()
	}
	deadline := time.Now().Add(time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		buf := make([]byte, 1<<16)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%d goroutines left behind after two cancelled Runs (%d before)\n%s", n-base, base, buf)
	}
}

// -- data races -----------------------------------------------------------------

// gate is a Source and Sink that shares no lock between ids (each id has
// counters of its own), so that the race detector sees the answer's own
// synchronisation only: the first `width` calls of the gated step wait for each
// other and then return together, and the workers that made them go on at once.
type gate struct {
	width      int32
	gateFetch  bool // gate the first Fetch of each id (which fails), else the first Stores
	failEvery  int  // Fetch of ids divisible by this always fails (0: none)
	arrived    atomic.Int32
	open       chan struct{}
	once       sync.Once
	fetches    []atomic.Int32 // per id
	storeCalls []atomic.Int32
}

func newGate(n int, width int32) *gate {
	return &gate{width: width, open: make(chan struct{}), fetches: make([]atomic.Int32, n+1),
		storeCalls: make([]atomic.Int32, n+1)}
}

func (g *gate) wait() {
	if g.arrived.Add(1) == g.width {
		g.once.Do(func() { close(g.open) })
	}
	t := time.NewTimer(time.Second) // fewer callers than width: go on after a second
	defer t.Stop()
	select {
	case <-g.open:
	case <-t.C:
		g.once.Do(func() { close(g.open) })
	}
}

func (g *gate) Fetch(ctx context.Context, id int) ([]byte, error) {
	n := g.fetches[id].Add(1)
	if g.gateFetch && n == 1 {
		if g.arrived.Load() < g.width {
			g.wait()
		}
		return nil, fmt.Errorf("fetch %d: %w", id, errTransient)
	}
	if g.failEvery > 0 && id%g.failEvery == 0 {
		return nil, fmt.Errorf("fetch %d: %w", id, errTransient)
	}
	return []byte("x"), ctx.Err()
}

func (g *gate) Store(ctx context.Context, id int, data []byte) error {
	if g.storeCalls[id].Add(1) == 1 && !g.gateFetch && g.arrived.Load() < g.width {
		g.wait()
	}
	return ctx.Err()
}

func TestConcurrentStoredCount(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := newGate(200, 8) // the first 8 Stores return together
	g.failEvery = 10
	o := run(t, ctx, copier.New(g, g, copier.Options{Workers: 8}), ids(1, 200), 5*time.Second)
	if o.err != nil {
		t.Fatalf("Run returned error %v", o.err)
	}
	if o.res.Stored != 180 || len(o.res.Failed) != 20 {
		t.Fatalf("Stored %d, Failed %d, want 180 and 20 (8 workers; Fetch of every tenth id fails)",
			o.res.Stored, len(o.res.Failed))
	}
}

func TestConcurrentRetries(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := newGate(8, 4) // the first Fetch of each id fails; the first 4 fail together
	g.gateFetch = true
	o := run(t, ctx, copier.New(g, g, copier.Options{Workers: 4, Retries: 2}), ids(1, 8), 5*time.Second)
	if o.err != nil {
		t.Fatalf("Run returned error %v", o.err)
	}
}
