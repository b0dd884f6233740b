// Package copier copies items from a Source to a Sink.
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

// process copies one id. The attempt timeout bounds the work on the id.
func (c *Copier) process(ctx context.Context, id int) error {
	if c.opts.AttemptTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.AttemptTimeout)
		defer cancel()
	}
	var data []byte
	var err error
	for i := 0; i <= c.opts.Retries; i++ {
		data, err = c.src.Fetch(ctx, id)
		if err == nil {
			break
		}
	}
	if err != nil {
		return err
	}
	for i := 0; i <= c.opts.Retries; i++ {
		if err = c.dst.Store(ctx, id, data); err == nil {
			return nil
		}
	}
	return err
}

// Run copies every id with a pool of Workers goroutines.
func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	var (
		res Result
		mu  sync.Mutex
		wg  sync.WaitGroup
	)
	work := make(chan int)
	for w := 0; w < c.opts.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				err := c.process(ctx, id)
				mu.Lock()
				switch {
				case err == nil:
					res.Stored++
				case errors.Is(err, context.Canceled) && ctx.Err() != nil:
					// the whole run was cancelled: not this id's failure
				default:
					res.Failed = append(res.Failed, id)
				}
				mu.Unlock()
			}
		}()
	}
	func() {
		defer close(work)
		for _, id := range ids {
			select {
			case work <- id:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	sort.Ints(res.Failed)
	return res, nil
}
