// Package copier copies items from a Source to a Sink with a worker pool.
package copier

import (
	"context"
	"sort"
	"time"
)

type Source interface {
	Fetch(ctx context.Context, id int) ([]byte, error)
}

type Sink interface {
	Store(ctx context.Context, id int, data []byte) error
}

type Options struct {
	Workers        int
	Retries        int
	AttemptTimeout time.Duration
}

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
	if opts.Retries < 0 {
		opts.Retries = 0
	}
	return &Copier{src: src, dst: dst, opts: opts}
}

type result struct {
	id  int
	err error
}

func (c *Copier) attempt(ctx context.Context, fn func(context.Context) error) error {
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

func (c *Copier) worker(ctx context.Context, jobs <-chan int, out chan<- result) {
	for id := range jobs {
		var data []byte
		err := c.attempt(ctx, func(actx context.Context) error {
			var err error
			data, err = c.src.Fetch(actx, id)
			return err
		})
		if err == nil {
			err = c.attempt(ctx, func(actx context.Context) error { return c.dst.Store(actx, id, data) })
		}
		out <- result{id, err}
	}
}

// Run copies every id. It returns as soon as ctx is cancelled.
func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	jobs := make(chan int, len(ids))
	out := make(chan result)
	for _, id := range ids {
		jobs <- id
	}
	close(jobs)
	for i := 0; i < c.opts.Workers; i++ {
		go c.worker(ctx, jobs, out)
	}
	var res Result
	for range ids {
		select {
		case r := <-out:
			if r.err != nil {
				res.Failed = append(res.Failed, r.id)
			} else {
				res.Stored++
			}
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	sort.Ints(res.Failed)
	return res, nil
}
