// Known-bad (written from the prompt): Fetch is retried, Store is called once
// ("the data is already here, a store either works or it does not"). Breaks only
// "a failed Fetch or Store is retried: each step gets 1 + Retries attempts".
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
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	return &Copier{src: src, dst: dst, opts: opts}
}

func (c *Copier) limit(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.opts.AttemptTimeout > 0 {
		return context.WithTimeout(ctx, c.opts.AttemptTimeout)
	}
	return ctx, func() {}
}

func (c *Copier) copyItem(ctx context.Context, id int) error {
	var data []byte
	var err error
	for i := 0; i <= c.opts.Retries; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fctx, cancel := c.limit(ctx)
		data, err = c.src.Fetch(fctx, id)
		cancel()
		if err == nil {
			break
		}
	}
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	sctx, cancel := c.limit(ctx)
	defer cancel()
	return c.dst.Store(sctx, id, data)
}

func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	var res Result
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan int)
	for i := 0; i < c.opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				err := c.copyItem(ctx, id)
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
feed:
	for _, id := range ids {
		select {
		case next <- id:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	sort.Ints(res.Failed)
	return res, nil
}
