package copier

import (
	"context"
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

func (c *Copier) try(ctx context.Context, op func(context.Context) error) error {
	var err error
	for attempt := 0; attempt <= c.opts.Retries; attempt++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		actx := ctx
		cancel := context.CancelFunc(func() {})
		if c.opts.AttemptTimeout > 0 {
			actx, cancel = context.WithTimeout(ctx, c.opts.AttemptTimeout)
		}
		err = op(actx)
		cancel()
		if err == nil {
			return nil
		}
	}
	return err
}

// Run copies every id; failed ids are reported in the order they failed.
func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	var res Result
	var mu sync.Mutex
	var wg sync.WaitGroup
	ch := make(chan int)
	for i := 0; i < c.opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ch {
				var data []byte
				err := c.try(ctx, func(actx context.Context) (err error) {
					data, err = c.src.Fetch(actx, id)
					return err
				})
				if err == nil {
					err = c.try(ctx, func(actx context.Context) error { return c.dst.Store(actx, id, data) })
				}
				if ctx.Err() != nil {
					return
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
		case ch <- id:
			continue
		case <-ctx.Done():
		}
		break
	}
	close(ch)
	wg.Wait()
	return res, ctx.Err()
}
