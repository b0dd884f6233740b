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

// New returns a Copier.
func New(src Source, dst Sink, opts Options) *Copier {
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	return &Copier{src: src, dst: dst, opts: opts}
}

func (c *Copier) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.opts.AttemptTimeout > 0 {
		return context.WithTimeout(ctx, c.opts.AttemptTimeout)
	}
	return context.WithCancel(ctx)
}

func (c *Copier) fetch(ctx context.Context, id int) ([]byte, error) {
	var lastErr error
	for attempt := 0; attempt <= c.opts.Retries; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		actx, cancel := c.withTimeout(ctx)
		data, err := c.src.Fetch(actx, id)
		cancel()
		if err == nil {
			return data, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func (c *Copier) store(ctx context.Context, id int, data []byte) error {
	var lastErr error
	for attempt := 0; attempt <= c.opts.Retries; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		actx, cancel := c.withTimeout(ctx)
		err := c.dst.Store(actx, id, data)
		cancel()
		if err == nil {
			return nil
		}
		lastErr = err
	}
	return lastErr
}

// Run copies every id concurrently.
func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		result Result
	)
	// One goroutine per id: Go routines are cheap.
	for _, id := range ids {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			data, err := c.fetch(ctx, id)
			if err == nil {
				err = c.store(ctx, id, data)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if ctx.Err() == nil {
					result.Failed = append(result.Failed, id)
				}
				return
			}
			result.Stored++
		}(id)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return result, err
	}
	sort.Ints(result.Failed)
	return result, nil
}
