// Package copier implements a concurrent copier with retries and timeouts.
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

// Options configures the copier.
type Options struct {
	Workers        int
	Retries        int
	AttemptTimeout time.Duration
}

// Result summarises a run.
type Result struct {
	Stored int
	Failed []int
}

// Copier copies items.
type Copier struct {
	src  Source
	dst  Sink
	opts Options
}

// New creates a Copier.
func New(src Source, dst Sink, opts Options) *Copier {
	if opts.Workers <= 0 {
		opts.Workers = 1
	}
	if opts.Retries <= 0 {
		opts.Retries = 1 // always make at least one attempt
	}
	return &Copier{src: src, dst: dst, opts: opts}
}

// withRetry calls op up to Retries times.
func (c *Copier) withRetry(ctx context.Context, op func(ctx context.Context) error) error {
	var err error
	for i := 0; i < c.opts.Retries; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		callCtx := ctx
		var cancel context.CancelFunc = func() {}
		if c.opts.AttemptTimeout > 0 {
			callCtx, cancel = context.WithTimeout(ctx, c.opts.AttemptTimeout)
		}
		err = op(callCtx)
		cancel()
		if err == nil {
			return nil
		}
	}
	return err
}

// Run copies all ids using a worker pool.
func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		res Result
	)
	idCh := make(chan int)
	for i := 0; i < c.opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range idCh {
				var data []byte
				err := c.withRetry(ctx, func(cctx context.Context) error {
					d, err := c.src.Fetch(cctx, id)
					data = d
					return err
				})
				if err == nil {
					err = c.withRetry(ctx, func(cctx context.Context) error {
						return c.dst.Store(cctx, id, data)
					})
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
		case idCh <- id:
		case <-ctx.Done():
			break loop
		}
	}
	close(idCh)
	wg.Wait()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	sort.Ints(res.Failed)
	return res, nil
}
