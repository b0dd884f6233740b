// Package copier copies items from a Source to a Sink with bounded concurrency,
// per-attempt timeouts, retries and prompt cancellation.
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
	Workers        int           // ids in flight at once; values below 1 mean 1
	Retries        int           // extra attempts after a failed Fetch or Store
	AttemptTimeout time.Duration // bound on each Fetch and each Store call; 0 means none
}

// Result is what one Run achieved.
type Result struct {
	Stored int   // ids fetched and stored
	Failed []int // ids that failed after every attempt, ascending
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
	if opts.Retries < 0 {
		opts.Retries = 0
	}
	return &Copier{src: src, dst: dst, opts: opts}
}

// attempt runs fn with a context bounded by the attempt timeout.
func (c *Copier) attempt(ctx context.Context, fn func(context.Context) error) error {
	if c.opts.AttemptTimeout <= 0 {
		return fn(ctx)
	}
	actx, cancel := context.WithTimeout(ctx, c.opts.AttemptTimeout)
	defer cancel()
	return fn(actx)
}

// retry runs one step until it succeeds, the attempts run out or ctx ends.
func (c *Copier) retry(ctx context.Context, fn func(context.Context) error) error {
	var err error
	for i := 0; i <= c.opts.Retries; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err = c.attempt(ctx, fn); err == nil {
			return nil
		}
	}
	return err
}

func (c *Copier) copyOne(ctx context.Context, id int) error {
	var data []byte
	if err := c.retry(ctx, func(actx context.Context) error {
		d, err := c.src.Fetch(actx, id)
		if err == nil {
			data = d
		}
		return err
	}); err != nil {
		return err
	}
	return c.retry(ctx, func(actx context.Context) error {
		return c.dst.Store(actx, id, data)
	})
}

// Run copies every id, at most Workers at a time. It returns ctx.Err() once ctx
// is cancelled, after every call it started has returned.
func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int)
	var (
		mu  sync.Mutex
		res Result
		wg  sync.WaitGroup
	)
	for w := 0; w < c.opts.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range jobs {
				err := c.copyOne(ctx, id)
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
		case jobs <- id:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	sort.Ints(res.Failed)
	return res, nil
}
