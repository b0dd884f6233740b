package copier

import (
	"context"
	"sort"
	"sync"
	"time"
)

type Source interface {
	Fetch(ctx context.Context, id int) ([]byte, error)
}

type Sink interface {
	Store(ctx context.Context, id int, data []byte) error
}

type Options struct {
	Workers        int           // ids in flight at once; values below 1 mean 1
	Retries        int           // extra attempts after a failed Fetch or Store
	AttemptTimeout time.Duration // bound on each Fetch and Store call
}

type Result struct {
	Stored int
	Failed []int
}

type Copier struct {
	src     Source
	dst     Sink
	workers int
	retries int
	timeout time.Duration
}

func New(src Source, dst Sink, opts Options) *Copier {
	w := opts.Workers
	if w < 1 {
		w = 1
	}
	r := opts.Retries
	if r < 0 {
		r = 0
	}
	return &Copier{src: src, dst: dst, workers: w, retries: r, timeout: opts.AttemptTimeout}
}

// Run copies the ids with a pool of workers. Cancellation of ctx stops the
// pool; every call receives ctx so it can return early.
func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	type outcome struct {
		id  int
		err error
	}
	jobs := make(chan int)
	results := make(chan outcome, len(ids))
	var wg sync.WaitGroup
	for i := 0; i < c.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range jobs {
				results <- outcome{id, c.copyItem(ctx, id)}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for _, id := range ids {
			select {
			case jobs <- id:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	close(results)

	var res Result
	for o := range results {
		if o.err == nil {
			res.Stored++
		} else if ctx.Err() == nil {
			res.Failed = append(res.Failed, o.id)
		}
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	sort.Ints(res.Failed)
	return res, nil
}

func (c *Copier) copyItem(ctx context.Context, id int) error {
	var data []byte
	var err error
	for attempt := 0; attempt <= c.retries; attempt++ {
		if data, err = c.src.Fetch(ctx, id); err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return err
	}
	for attempt := 0; attempt <= c.retries; attempt++ {
		if err = c.dst.Store(ctx, id, data); err == nil || ctx.Err() != nil {
			break
		}
	}
	return err
}
