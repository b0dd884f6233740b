// Known-bad (written from the prompt): a ctx-aware exponential back-off with
// jitter drawn from one *rand.Rand shared by every worker, without a lock (a
// *rand.Rand is not safe for concurrent use). The ctx check comes before the draw,
// so only workers retrying at the same time race. Breaks only "free of data races".
package copier

import (
	"context"
	"math/rand"
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
	rng  *rand.Rand
}

func New(src Source, dst Sink, opts Options) *Copier {
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	return &Copier{src: src, dst: dst, opts: opts, rng: rand.New(rand.NewSource(time.Now().UnixNano()))}
}

func (c *Copier) sleep(ctx context.Context, attempt int) error {
	base := time.Millisecond << uint(attempt)
	d := base + time.Duration(c.rng.Int63n(int64(base)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Copier) retry(ctx context.Context, op func(context.Context) error) error {
	var err error
	for attempt := 0; attempt <= c.opts.Retries; attempt++ {
		if attempt > 0 {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if e := c.sleep(ctx, attempt); e != nil {
				return e
			}
		}
		actx, cancel := ctx, func() {}
		if c.opts.AttemptTimeout > 0 {
			actx, cancel = context.WithTimeout(ctx, c.opts.AttemptTimeout)
		}
		err = op(actx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}

func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	jobs := make(chan int)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var res Result
	for w := 0; w < c.opts.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range jobs {
				var data []byte
				err := c.retry(ctx, func(a context.Context) (e error) { data, e = c.src.Fetch(a, id); return })
				if err == nil {
					err = c.retry(ctx, func(a context.Context) error { return c.dst.Store(a, id, data) })
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
		if ctx.Err() != nil {
			break
		}
		select {
		case jobs <- id:
		case <-ctx.Done():
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
