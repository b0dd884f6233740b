// Known-bad (written from the prompt): a classic pool with a fixed 200 ms back-off
// between attempts, slept with time.Sleep: ctx is checked before each attempt but
// the wait itself does not end on a cancel, so Run returns up to 200 ms late.
// Breaks only "when ctx is cancelled, Run returns promptly".
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

const backoff = 200 * time.Millisecond

type Copier struct {
	src  Source
	dst  Sink
	opts Options
}

func New(src Source, dst Sink, opts Options) *Copier {
	if opts.Workers <= 0 {
		opts.Workers = 1
	}
	return &Copier{src, dst, opts}
}

func (c *Copier) withRetry(ctx context.Context, op func(context.Context) error) error {
	var last error
	for attempt := 0; attempt <= c.opts.Retries; attempt++ {
		if attempt > 0 {
			time.Sleep(backoff)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		actx, cancel := ctx, context.CancelFunc(func() {})
		if c.opts.AttemptTimeout > 0 {
			actx, cancel = context.WithTimeout(ctx, c.opts.AttemptTimeout)
		}
		last = op(actx)
		cancel()
		if last == nil {
			return nil
		}
	}
	return last
}

func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	var (
		res Result
		mu  sync.Mutex
		wg  sync.WaitGroup
	)
	queue := make(chan int)
	for i := 0; i < c.opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range queue {
				var data []byte
				err := c.withRetry(ctx, func(a context.Context) (e error) { data, e = c.src.Fetch(a, id); return })
				if err == nil {
					err = c.withRetry(ctx, func(a context.Context) error { return c.dst.Store(a, id, data) })
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
send:
	for _, id := range ids {
		select {
		case queue <- id:
		case <-ctx.Done():
			break send
		}
	}
	close(queue)
	wg.Wait()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	sort.Ints(res.Failed)
	return res, nil
}
