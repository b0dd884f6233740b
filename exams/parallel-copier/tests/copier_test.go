package copier

// The exam's hidden tests (compiled into the answer's package by the gotest grader).
// Every test bounds its own waits and cancels its context at the end, so one
// answer's hang fails one test, never the whole binary.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

var errFlaky = errors.New("flaky")

// stub is both the Source and the Sink: it records every call.
type stub struct {
	mu          sync.Mutex
	delay       time.Duration    // each call takes this long (or until its ctx ends)
	hang        map[int]bool     // Fetch of these ids blocks until its ctx ends
	hangAll     bool             // every Fetch blocks until its ctx ends
	lag         time.Duration    // a hanging Fetch returns this long after its ctx ends
	fetchFails  map[int]int      // failing Fetch attempts left per id (-1: always)
	storeFails  map[int]int      // failing Store attempts left per id
	fetchCalls  map[int]int      // Fetch calls per id
	deadlines   map[int][]time.Duration // time left on each Fetch's ctx, per id
	stored      map[int][]byte
	active      int // calls executing now
	maxActive   int
	calls       int // calls started
}

func newStub() *stub {
	return &stub{hang: map[int]bool{}, fetchFails: map[int]int{}, storeFails: map[int]int{},
		fetchCalls: map[int]int{}, deadlines: map[int][]time.Duration{}, stored: map[int][]byte{}}
}

func (s *stub) enter() {
	s.mu.Lock()
	s.calls++
	s.active++
	if s.active > s.maxActive {
		s.maxActive = s.active
	}
	s.mu.Unlock()
}

func (s *stub) leave() {
	s.mu.Lock()
	s.active--
	s.mu.Unlock()
}

func (s *stub) wait(ctx context.Context) error {
	if s.delay == 0 {
		return ctx.Err()
	}
	select {
	case <-time.After(s.delay):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *stub) Fetch(ctx context.Context, id int) ([]byte, error) {
	s.enter()
	defer s.leave()
	s.mu.Lock()
	s.fetchCalls[id]++
	if dl, ok := ctx.Deadline(); ok {
		s.deadlines[id] = append(s.deadlines[id], time.Until(dl))
	} else {
		s.deadlines[id] = append(s.deadlines[id], -1)
	}
	hang := s.hangAll || s.hang[id]
	fail := false
	if n := s.fetchFails[id]; n != 0 {
		fail = true
		if n > 0 {
			s.fetchFails[id] = n - 1
		}
	}
	s.mu.Unlock()
	if hang {
		<-ctx.Done()
		time.Sleep(s.lag)
		return nil, ctx.Err()
	}
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	if fail {
		return nil, fmt.Errorf("fetch %d: %w", id, errFlaky)
	}
	return []byte(fmt.Sprintf("item-%d", id)), nil
}

func (s *stub) Store(ctx context.Context, id int, data []byte) error {
	s.enter()
	defer s.leave()
	if err := s.wait(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.storeFails[id]; n != 0 {
		if n > 0 {
			s.storeFails[id] = n - 1
		}
		return fmt.Errorf("store %d: %w", id, errFlaky)
	}
	s.stored[id] = append([]byte(nil), data...)
	return nil
}

func (s *stub) snapshot() (calls, active, maxActive int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls, s.active, s.maxActive
}

type outcome struct {
	res Result
	err error
}

// runWithin runs c.Run in a goroutine and fails the test if it has not returned in d.
func runWithin(t *testing.T, ctx context.Context, c *Copier, ids []int, d time.Duration) outcome {
	t.Helper()
	done := make(chan outcome, 1)
	go func() {
		res, err := c.Run(ctx, ids)
		done <- outcome{res, err}
	}()
	select {
	case o := <-done:
		return o
	case <-time.After(d):
		t.Fatalf("Run did not return within %v", d)
		return outcome{}
	}
}

// cancelWhenStored calls cancel once n items are stored (or after 2s at most).
func cancelWhenStored(s *stub, n int, cancel context.CancelFunc) {
	defer cancel()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		s.mu.Lock()
		done := len(s.stored) >= n
		s.mu.Unlock()
		if done {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func seq(from, n int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = from + i
	}
	return ids
}

func TestCopiesEveryItem(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newStub()
	ids := seq(1, 50)
	o := runWithin(t, ctx, New(s, s, Options{Workers: 4}), ids, 5*time.Second)
	if o.err != nil {
		t.Fatalf("Run returned error %v", o.err)
	}
	if o.res.Stored != len(ids) || len(o.res.Failed) != 0 {
		t.Fatalf("Result = %+v, want Stored %d and no failures", o.res, len(ids))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if got := string(s.stored[id]); got != fmt.Sprintf("item-%d", id) {
			t.Fatalf("id %d stored %q", id, got)
		}
	}
}

func TestWorkersBound(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newStub()
	s.delay = 20 * time.Millisecond
	o := runWithin(t, ctx, New(s, s, Options{Workers: 3}), seq(1, 12), 5*time.Second)
	if o.err != nil || o.res.Stored != 12 {
		t.Fatalf("Run = %+v, %v; want 12 stored", o.res, o.err)
	}
	if _, _, maxActive := s.snapshot(); maxActive != 3 {
		t.Fatalf("%d calls ran at once with Workers 3, want exactly 3", maxActive)
	}
}

func TestZeroWorkersMeansOne(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newStub()
	s.delay = 5 * time.Millisecond
	o := runWithin(t, ctx, New(s, s, Options{Workers: 0}), seq(1, 6), 5*time.Second)
	if o.err != nil || o.res.Stored != 6 {
		t.Fatalf("Run = %+v, %v; want 6 stored", o.res, o.err)
	}
	if _, _, maxActive := s.snapshot(); maxActive != 1 {
		t.Fatalf("%d calls ran at once with Workers 0, want 1", maxActive)
	}
}

func TestRetriesThenSucceeds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newStub()
	s.fetchFails[2] = 2 // succeeds on the third attempt
	s.storeFails[4] = 2
	o := runWithin(t, ctx, New(s, s, Options{Workers: 1, Retries: 2}), seq(1, 5), 5*time.Second)
	if o.err != nil || o.res.Stored != 5 || len(o.res.Failed) != 0 {
		t.Fatalf("Run = %+v, %v; want 5 stored, none failed", o.res, o.err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fetchCalls[2] != 3 {
		t.Fatalf("Fetch(2) called %d times, want 3", s.fetchCalls[2])
	}
	if string(s.stored[4]) != "item-4" {
		t.Fatalf("id 4 not stored after two failed Stores: %q", s.stored[4])
	}
}

func TestGivesUpAfterRetries(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newStub()
	s.fetchFails[9] = -1
	s.storeFails[3] = -1
	o := runWithin(t, ctx, New(s, s, Options{Workers: 1, Retries: 2}), []int{9, 8, 3, 1}, 5*time.Second)
	if o.err != nil {
		t.Fatalf("Run returned error %v; failed items are not an error of Run", o.err)
	}
	if o.res.Stored != 2 || fmt.Sprint(o.res.Failed) != "[3 9]" {
		t.Fatalf("Result = %+v, want Stored 2 and Failed [3 9]", o.res)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fetchCalls[9] != 3 {
		t.Fatalf("Fetch(9) called %d times with Retries 2, want 3", s.fetchCalls[9])
	}
}

func TestAttemptTimeout(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newStub()
	s.hang[2] = true
	start := time.Now()
	o := runWithin(t, ctx, New(s, s, Options{Workers: 1, Retries: 1, AttemptTimeout: 100 * time.Millisecond}),
		seq(1, 3), 3*time.Second)
	if o.err != nil || o.res.Stored != 2 || fmt.Sprint(o.res.Failed) != "[2]" {
		t.Fatalf("Run = %+v, %v; want Stored 2, Failed [2]", o.res, o.err)
	}
	if el := time.Since(start); el < 180*time.Millisecond {
		t.Fatalf("Run took %v: two attempts of 100ms each cannot be that fast", el)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.deadlines[2]) != 2 {
		t.Fatalf("Fetch(2) called %d times with Retries 1, want 2", len(s.deadlines[2]))
	}
	for i, left := range s.deadlines[2] {
		if left < 50*time.Millisecond || left > 100*time.Millisecond {
			t.Fatalf("attempt %d of Fetch(2) had %v left on its context, want its own 100ms", i+1, left)
		}
	}
}

func TestCancelStopsPromptly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newStub()
	s.hangAll = true
	s.lag = 50 * time.Millisecond // a Run that does not wait for its calls returns before they do
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	o := runWithin(t, ctx, New(s, s, Options{Workers: 4, Retries: 3}), seq(1, 40), 2*time.Second)
	if el := time.Since(start); el > time.Second {
		t.Fatalf("Run returned %v after it started (cancelled at 100ms), want well under 1s", el)
	}
	if !errors.Is(o.err, context.Canceled) {
		t.Fatalf("Run returned error %v after its context was cancelled, want context.Canceled", o.err)
	}
	calls, active, _ := s.snapshot()
	if active != 0 {
		t.Fatalf("%d calls were still running when Run returned", active)
	}
	time.Sleep(100 * time.Millisecond)
	if later, _, _ := s.snapshot(); later != calls {
		t.Fatalf("%d calls started after Run returned", later-calls)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	for round := 0; round < 2; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		s := newStub()
		s.hang[5] = true
		go cancelWhenStored(s, 19, cancel) // every id but the hanging one, then cancel
		runWithin(t, ctx, New(s, s, Options{Workers: 3}), seq(1, 20), 3*time.Second)
		cancel()
	}
	deadline := time.Now().Add(time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		t.Fatalf("%d goroutines left behind after two cancelled Runs (%d before)", n-base, base)
	}
}

func TestConcurrentStoredCount(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newStub()
	ids := seq(1, 300)
	for _, id := range ids {
		if id%10 == 0 {
			s.fetchFails[id] = -1
		}
	}
	o := runWithin(t, ctx, New(s, s, Options{Workers: 16}), ids, 5*time.Second)
	if o.err != nil {
		t.Fatalf("Run returned error %v", o.err)
	}
	if o.res.Stored != 270 || len(o.res.Failed) != 30 {
		t.Fatalf("Stored %d, Failed %d, want 270 and 30", o.res.Stored, len(o.res.Failed))
	}
}
