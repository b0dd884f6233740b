// Known-bad (written from the prompt): the "values below 1 mean 1" rule is coded as
// Workers == 0 only, so a negative Workers starts no worker and Run waits forever
// for the first free one. Breaks only "values below 1 mean 1".
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
	src  Source
	dst  Sink
	opts Options
}

func New(src Source, dst Sink, opts Options) *Copier {
	if opts.Workers == 0 {
		opts.Workers = 1
	}
	return &Copier{src: src, dst: dst, opts: opts}
}

func (c *Copier) call(ctx context.Context, f func(context.Context) error) error {
	if c.opts.AttemptTimeout <= 0 {
		return f(ctx)
	}
	cctx, cancel := context.WithTimeout(ctx, c.opts.AttemptTimeout)
	defer cancel()
	return f(cctx)
}

func (c *Copier) attempt(ctx context.Context, f func(context.Context) error) (err error) {
	for i := 0; i <= c.opts.Retries; i++ {
		if err = ctx.Err(); err != nil {
			return err
		}
		if err = c.call(ctx, f); err == nil {
			return nil
		}
	}
	return err
}

func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	type done struct {
		id  int
		err error
	}
	in := make(chan int)
	out := make(chan done)
	var wg sync.WaitGroup
	for i := 0; i < c.opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range in {
				var data []byte
				err := c.attempt(ctx, func(x context.Context) (e error) { data, e = c.src.Fetch(x, id); return })
				if err == nil {
					err = c.attempt(ctx, func(x context.Context) error { return c.dst.Store(x, id, data) })
				}
				out <- done{id, err}
			}
		}()
	}
	go func() {
		defer close(in)
		for _, id := range ids {
			select {
			case in <- id:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(out) }()
	var res Result
	for d := range out {
		if ctx.Err() != nil {
			continue
		}
		if d.err != nil {
			res.Failed = append(res.Failed, d.id)
		} else {
			res.Stored++
		}
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	sort.Ints(res.Failed)
	return res, nil
}
