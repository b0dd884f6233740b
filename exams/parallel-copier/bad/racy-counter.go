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

// New returns a Copier.
func New(src Source, dst Sink, opts Options) *Copier {
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	return &Copier{src: src, dst: dst, opts: opts}
}

func (c *Copier) call(ctx context.Context, f func(context.Context) error) error {
	var err error
	for try := 0; try <= c.opts.Retries; try++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		cctx, cancel := ctx, context.CancelFunc(func() {})
		if c.opts.AttemptTimeout > 0 {
			cctx, cancel = context.WithTimeout(ctx, c.opts.AttemptTimeout)
		}
		err = f(cctx)
		cancel()
		if err == nil {
			return nil
		}
	}
	return err
}

// Run copies every id with at most Workers in flight.
func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	var res Result
	var failedMu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, c.opts.Workers)

	for _, id := range ids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return res, ctx.Err()
		}
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			defer func() { <-sem }()
			var data []byte
			err := c.call(ctx, func(cctx context.Context) error {
				var err error
				data, err = c.src.Fetch(cctx, id)
				return err
			})
			if err == nil {
				err = c.call(ctx, func(cctx context.Context) error { return c.dst.Store(cctx, id, data) })
			}
			if err != nil {
				if ctx.Err() == nil {
					failedMu.Lock()
					res.Failed = append(res.Failed, id)
					failedMu.Unlock()
				}
				return
			}
			res.Stored++ // only ever incremented, so no lock needed
		}(id)
	}
	wg.Wait()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	sort.Ints(res.Failed)
	return res, nil
}
