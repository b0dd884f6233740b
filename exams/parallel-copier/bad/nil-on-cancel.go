// Known-bad (written from the prompt): on a cancel it stops cleanly and waits for
// its workers, then returns the partial Result with a nil error ("nothing failed,
// we were told to stop"). Breaks only "returns with an error for which
// errors.Is(err, context.Canceled) holds".
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

func (c *Copier) do(ctx context.Context, fn func(context.Context) error) error {
	var err error
	for i := 0; i <= c.opts.Retries; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		cctx, cancel := ctx, context.CancelFunc(nil)
		if c.opts.AttemptTimeout > 0 {
			cctx, cancel = context.WithTimeout(ctx, c.opts.AttemptTimeout)
		}
		err = fn(cctx)
		if cancel != nil {
			cancel()
		}
		if err == nil {
			return nil
		}
	}
	return err
}

func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	work := make(chan int)
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		res Result
	)
	for i := 0; i < c.opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				var data []byte
				err := c.do(ctx, func(a context.Context) (e error) { data, e = c.src.Fetch(a, id); return })
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
	for _, id := range ids {
		select {
		case work <- id:
			continue
		case <-ctx.Done():
		}
		break
	}
	close(work)
	wg.Wait()
	sort.Ints(res.Failed)
	return res, nil
}
