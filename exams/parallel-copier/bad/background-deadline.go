// Known-bad (written from the prompt): a worker pool that reports over a results
// channel; each call's deadline is derived from context.Background(), so with
// AttemptTimeout > 0 a cancel of the run never reaches a call in flight (it ends
// only at its own deadline). With AttemptTimeout 0 the calls get the run's ctx.
package copier

import (
	"context"
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
	source  Source
	sink    Sink
	workers int
	retries int
	timeout time.Duration
}

func New(src Source, dst Sink, opts Options) *Copier {
	w := opts.Workers
	if w < 1 {
		w = 1
	}
	return &Copier{source: src, sink: dst, workers: w, retries: opts.Retries, timeout: opts.AttemptTimeout}
}

type report struct {
	id  int
	err error
}

// bounded gives one call its own deadline.
func (c *Copier) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeout > 0 {
		return context.WithTimeout(context.Background(), c.timeout)
	}
	return ctx, func() {}
}

func (c *Copier) try(ctx context.Context, step func(context.Context) error) error {
	var err error
	for i := 0; i <= c.retries; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		cctx, cancel := c.bounded(ctx)
		err = step(cctx)
		cancel()
		if err == nil {
			return nil
		}
	}
	return err
}

func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	jobs := make(chan int)
	reports := make(chan report)
	var wg sync.WaitGroup
	for i := 0; i < c.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range jobs {
				var data []byte
				err := c.try(ctx, func(cctx context.Context) (err error) {
					data, err = c.source.Fetch(cctx, id)
					return err
				})
				if err == nil {
					err = c.try(ctx, func(cctx context.Context) error { return c.sink.Store(cctx, id, data) })
				}
				reports <- report{id, err}
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
		close(reports)
	}()
	var res Result
	for r := range reports {
		switch {
		case ctx.Err() != nil:
		case r.err != nil:
			res.Failed = append(res.Failed, r.id)
		default:
			res.Stored++
		}
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	sort.Ints(res.Failed)
	return res, nil
}
