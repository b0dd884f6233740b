// Known-bad (written from the prompt): a call that ran into its own deadline is
// taken for "this id is stuck" and not retried, so a timed-out call does not count
// as one failed attempt among 1 + Retries. Breaks only "a call that runs into it
// counts as a failed attempt".
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

func (c *Copier) retry(ctx context.Context, op func(context.Context) error) error {
	var err error
	for i := 0; i <= c.opts.Retries; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		actx, cancel := ctx, func() {}
		if c.opts.AttemptTimeout > 0 {
			actx, cancel = context.WithTimeout(ctx, c.opts.AttemptTimeout)
		}
		err = op(actx)
		cancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return err // stuck: another attempt would hang the same way
		}
	}
	return err
}

func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	q := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var res Result
	for i := 0; i < c.opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range q {
				var data []byte
				err := c.retry(ctx, func(a context.Context) (e error) { data, e = c.src.Fetch(a, id); return })
				if err == nil {
					err = c.retry(ctx, func(a context.Context) error { return c.dst.Store(a, id, data) })
				}
				if ctx.Err() != nil {
					continue
				}
				mu.Lock()
				if err != nil {
					res.Failed = append(res.Failed, id)
				} else {
					res.Stored++
				}
				mu.Unlock()
			}
		}()
	}
loop:
	for _, id := range ids {
		select {
		case q <- id:
		case <-ctx.Done():
			break loop
		}
	}
	close(q)
	wg.Wait()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	sort.Ints(res.Failed)
	return res, nil
}
