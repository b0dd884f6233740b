// Known-bad (written from the prompt): errgroup style, the first id that fails
// after all its attempts cancels the run and Run returns that error. Breaks "the
// other ids carry on, and Run returns a nil error".
package copier

import (
	"context"
	"fmt"
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

func (c *Copier) step(ctx context.Context, fn func(context.Context) error) error {
	var err error
	for i := 0; i <= c.opts.Retries; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		actx, cancel := ctx, func() {}
		if c.opts.AttemptTimeout > 0 {
			actx, cancel = context.WithTimeout(ctx, c.opts.AttemptTimeout)
		}
		err = fn(actx)
		cancel()
		if err == nil {
			return nil
		}
	}
	return err
}

func (c *Copier) Run(parent context.Context, ids []int) (Result, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var (
		res      Result
		mu       sync.Mutex
		wg       sync.WaitGroup
		firstErr error
	)
	jobs := make(chan int)
	for i := 0; i < c.opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range jobs {
				var data []byte
				err := c.step(ctx, func(a context.Context) (e error) { data, e = c.src.Fetch(a, id); return })
				if err == nil {
					err = c.step(ctx, func(a context.Context) error { return c.dst.Store(a, id, data) })
				}
				if ctx.Err() != nil {
					continue
				}
				mu.Lock()
				if err != nil {
					res.Failed = append(res.Failed, id)
					if firstErr == nil {
						firstErr = fmt.Errorf("copy %d: %w", id, err)
						cancel()
					}
				} else {
					res.Stored++
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, id := range ids {
		select {
		case jobs <- id:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	sort.Ints(res.Failed)
	if firstErr != nil {
		return res, firstErr
	}
	return res, parent.Err()
}
