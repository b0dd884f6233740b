// Package copier copies items from a Source to a Sink with a pool of workers.
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

func (c *Copier) do(ctx context.Context, f func(context.Context) error) error {
	var err error
	for i := 0; i <= c.opts.Retries; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
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
	return err
}

// Run copies every id with Workers goroutines and stops when ctx is cancelled.
func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	jobs := make(chan int)
	done := make(chan struct{})
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		res Result
	)
	for i := 0; i < c.opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range jobs {
				var data []byte
				err := c.do(ctx, func(a context.Context) (err error) { data, err = c.src.Fetch(a, id); return })
				if err == nil {
					err = c.do(ctx, func(a context.Context) error { return c.dst.Store(a, id, data) })
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
	// Stop the workers as soon as the context is cancelled.
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case <-ctx.Done():
			close(jobs)
		case <-done:
		}
	}()
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		jobs <- id
	}
	close(done)
	<-watcherDone
	if ctx.Err() == nil {
		close(jobs)
	}
	wg.Wait()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	sort.Ints(res.Failed)
	return res, nil
}
