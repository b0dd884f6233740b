// Known-bad (written from the prompt): "a call must never hang", so an
// AttemptTimeout of 0 gets a 30 s default deadline instead of none. Breaks only
// "0 means none".
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

const defaultAttemptTimeout = 30 * time.Second

type Copier struct {
	src     Source
	dst     Sink
	workers int
	retries int
	timeout time.Duration
}

func New(src Source, dst Sink, opts Options) *Copier {
	c := &Copier{src: src, dst: dst, workers: opts.Workers, retries: opts.Retries, timeout: opts.AttemptTimeout}
	if c.workers < 1 {
		c.workers = 1
	}
	if c.timeout <= 0 {
		c.timeout = defaultAttemptTimeout
	}
	return c
}

func (c *Copier) attempts(ctx context.Context, call func(context.Context) error) error {
	var err error
	for n := 0; n <= c.retries; n++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		callCtx, cancel := context.WithTimeout(ctx, c.timeout)
		err = call(callCtx)
		cancel()
		if err == nil {
			return nil
		}
	}
	return err
}

func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	var (
		wg   sync.WaitGroup
		lock sync.Mutex
		out  Result
	)
	feed := make(chan int)
	wg.Add(c.workers)
	for i := 0; i < c.workers; i++ {
		go func() {
			defer wg.Done()
			for id := range feed {
				var data []byte
				err := c.attempts(ctx, func(cc context.Context) (e error) { data, e = c.src.Fetch(cc, id); return })
				if err == nil {
					err = c.attempts(ctx, func(cc context.Context) error { return c.dst.Store(cc, id, data) })
				}
				if ctx.Err() != nil {
					continue
				}
				lock.Lock()
				if err == nil {
					out.Stored++
				} else {
					out.Failed = append(out.Failed, id)
				}
				lock.Unlock()
			}
		}()
	}
	func() {
		defer close(feed)
		for _, id := range ids {
			select {
			case feed <- id:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return out, err
	}
	sort.Ints(out.Failed)
	return out, nil
}
