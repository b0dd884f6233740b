// Known-bad (written from the prompt): a producer goroutine feeds an unbuffered
// channel with a plain send, and the workers leave on ctx.Done(). Run waits for its
// workers, so every call has returned, but when the cancel comes with ids still to
// hand out, the producer stays blocked on its send forever. Breaks only "no
// goroutine of its own is left running".
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

func (c *Copier) once(ctx context.Context, f func(context.Context) error) error {
	if c.opts.AttemptTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.AttemptTimeout)
		defer cancel()
	}
	return f(ctx)
}

func (c *Copier) step(ctx context.Context, f func(context.Context) error) (err error) {
	for i := 0; i <= c.opts.Retries && ctx.Err() == nil; i++ {
		if err = c.once(ctx, f); err == nil {
			return nil
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	ch := make(chan int)
	go func() {
		for _, id := range ids {
			ch <- id
		}
		close(ch)
	}()
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		res Result
	)
	for w := 0; w < c.opts.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var id int
				var ok bool
				select {
				case <-ctx.Done():
					return
				case id, ok = <-ch:
					if !ok {
						return
					}
				}
				var data []byte
				err := c.step(ctx, func(a context.Context) (e error) { data, e = c.src.Fetch(a, id); return })
				if err == nil {
					err = c.step(ctx, func(a context.Context) error { return c.dst.Store(a, id, data) })
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
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	sort.Ints(res.Failed)
	return res, nil
}
