// Known-good: a correct copier that declares, at package level, every helper name
// the exam's tests declared when they were compiled into the answer's package
// (outcome, stub, newStub, seq, runWithin, cancelWhenStored, errFlaky): the tests
// are the external package copier_test now, so none of these can clash.
package copier

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"
)

// Source yields the data of one item.
type Source interface {
	Fetch(ctx context.Context, id int) ([]byte, error)
}

// Sink stores the data of one item.
type Sink interface {
	Store(ctx context.Context, id int, data []byte) error
}

// Options configure a Copier.
type Options struct {
	Workers        int
	Retries        int
	AttemptTimeout time.Duration
}

// Result summarises a Run.
type Result struct {
	Stored int
	Failed []int
}

var errFlaky = errors.New("copier: attempts exhausted")

// outcome is what one worker reports about one id.
type outcome struct {
	id  int
	err error
}

// stub is a step of the copy: a Fetch or a Store bound to one id.
type stub func(ctx context.Context) error

func newStub(f func(ctx context.Context) error) stub { return stub(f) }

// seq numbers the workers.
func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

type Copier struct {
	src  Source
	dst  Sink
	opts Options
}

func New(src Source, dst Sink, opts Options) *Copier {
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	return &Copier{src: src, dst: dst, opts: opts}
}

// runWithin runs one call under the attempt timeout.
func (c *Copier) runWithin(ctx context.Context, s stub) error {
	if c.opts.AttemptTimeout <= 0 {
		return s(ctx)
	}
	cctx, cancel := context.WithTimeout(ctx, c.opts.AttemptTimeout)
	defer cancel()
	return s(cctx)
}

// cancelWhenStored retries a step until it succeeds, runs out of attempts or the
// run is cancelled.
func (c *Copier) cancelWhenStored(ctx context.Context, s stub) error {
	var last error
	for i := 0; i <= c.opts.Retries; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if last = c.runWithin(ctx, s); last == nil {
			return nil
		}
	}
	return errors.Join(errFlaky, last)
}

func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	jobs := make(chan int)
	results := make(chan outcome)
	var wg sync.WaitGroup
	for range seq(c.opts.Workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range jobs {
				var data []byte
				err := c.cancelWhenStored(ctx, newStub(func(a context.Context) (e error) {
					data, e = c.src.Fetch(a, id)
					return e
				}))
				if err == nil {
					err = c.cancelWhenStored(ctx, newStub(func(a context.Context) error {
						return c.dst.Store(a, id, data)
					}))
				}
				results <- outcome{id, err}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for _, id := range ids {
			select {
			case jobs <- id:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	var res Result
	for o := range results {
		if ctx.Err() != nil {
			continue
		}
		if o.err != nil {
			res.Failed = append(res.Failed, o.id)
		} else {
			res.Stored++
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	sort.Ints(res.Failed)
	return res, nil
}
