// Known-bad (written from the prompt): the per-call deadline is put on Fetch only;
// Store gets the run's ctx as it is. Breaks only "every single Fetch and Store call
// gets a context with a deadline of its own".
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

func (c *Copier) fetchOnce(ctx context.Context, id int) ([]byte, error) {
	if c.opts.AttemptTimeout > 0 {
		tctx, cancel := context.WithTimeout(ctx, c.opts.AttemptTimeout)
		defer cancel()
		return c.src.Fetch(tctx, id)
	}
	return c.src.Fetch(ctx, id)
}

func (c *Copier) copyOne(ctx context.Context, id int) error {
	var data []byte
	var err error
	for try := 0; try <= c.opts.Retries; try++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if data, err = c.fetchOnce(ctx, id); err == nil {
			break
		}
	}
	if err != nil {
		return err
	}
	for try := 0; try <= c.opts.Retries; try++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err = c.dst.Store(ctx, id, data); err == nil {
			return nil
		}
	}
	return err
}

func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	todo := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var res Result
	for i := 0; i < c.opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range todo {
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
	for _, id := range ids {
		select {
		case todo <- id:
			continue
		case <-ctx.Done():
		}
		break
	}
	close(todo)
	wg.Wait()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	sort.Ints(res.Failed)
	return res, nil
}
