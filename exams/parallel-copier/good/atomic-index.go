// Known-good, in another style: no channels for the work. Workers claim the next
// index with an atomic counter, write each id's verdict into a slot of their own,
// and Run builds the Result from the slots once every worker is done (so Failed
// comes out in the order of ids and is then sorted).
package copier

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
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

type verdict uint8

const (
	skipped verdict = iota
	ok
	failed
)

func (c *Copier) call(ctx context.Context, f func(context.Context) error) error {
	var err error
	for left := c.opts.Retries + 1; left > 0; left-- {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		err = func() error {
			if c.opts.AttemptTimeout > 0 {
				tctx, cancel := context.WithTimeout(ctx, c.opts.AttemptTimeout)
				defer cancel()
				return f(tctx)
			}
			return f(ctx)
		}()
		if err == nil {
			return nil
		}
	}
	return err
}

func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	verdicts := make([]verdict, len(ids))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < c.opts.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(ids) {
					return
				}
				id := ids[i]
				var data []byte
				err := c.call(ctx, func(a context.Context) (e error) { data, e = c.src.Fetch(a, id); return })
				if err == nil {
					err = c.call(ctx, func(a context.Context) error { return c.dst.Store(a, id, data) })
				}
				switch {
				case ctx.Err() != nil:
				case err != nil:
					verdicts[i] = failed
				default:
					verdicts[i] = ok
				}
			}
		}()
	}
	wg.Wait()
	var res Result
	for i, v := range verdicts {
		switch v {
		case ok:
			res.Stored++
		case failed:
			res.Failed = append(res.Failed, ids[i])
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	sort.Ints(res.Failed)
	return res, nil
}
