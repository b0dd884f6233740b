// Package copier copies items from a Source to a Sink concurrently.
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

// Options tune a Copier.
type Options struct {
	Workers        int
	Retries        int
	AttemptTimeout time.Duration
}

// Result is what one Run achieved.
type Result struct {
	Stored int
	Failed []int
}

// Copier copies items from a Source to a Sink.
type Copier struct {
	src  Source
	dst  Sink
	opts Options
}

// New returns a Copier; a nil opts means one worker, no retries, no timeout.
func New(src Source, dst Sink, opts *Options) *Copier {
	c := &Copier{src: src, dst: dst}
	if opts != nil {
		c.opts = *opts
	}
	if c.opts.Workers < 1 {
		c.opts.Workers = 1
	}
	return c
}

func (c *Copier) step(ctx context.Context, f func(context.Context) error) error {
	var err error
	for i := 0; i <= c.opts.Retries && ctx.Err() == nil; i++ {
		actx, cancel := context.WithCancel(ctx)
		if c.opts.AttemptTimeout > 0 {
			actx, cancel = context.WithTimeout(ctx, c.opts.AttemptTimeout)
		}
		err = f(actx)
		cancel()
		if err == nil {
			return nil
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Run copies every id, at most Workers at a time.
func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	var (
		res Result
		mu  sync.Mutex
		wg  sync.WaitGroup
	)
	sem := make(chan struct{}, c.opts.Workers)
	for _, id := range ids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(id int) {
			defer func() { <-sem; wg.Done() }()
			var data []byte
			err := c.step(ctx, func(a context.Context) (err error) { data, err = c.src.Fetch(a, id); return })
			if err == nil {
				err = c.step(ctx, func(a context.Context) error { return c.dst.Store(a, id, data) })
			}
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				res.Stored++
			} else if ctx.Err() == nil {
				res.Failed = append(res.Failed, id)
			}
		}(id)
	}
	wg.Wait()
	sort.Ints(res.Failed)
	return res, ctx.Err()
}
