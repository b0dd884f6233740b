// Known-bad (written from the prompt): a goroutine per id behind a semaphore; the
// retry loop never looks at ctx, so after a cancel every in-flight id burns its
// remaining attempts on calls that fail at once with ctx.Err(). Breaks only "once
// ctx is cancelled it starts no new call".
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

func (c *Copier) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.opts.AttemptTimeout > 0 {
		return context.WithTimeout(ctx, c.opts.AttemptTimeout)
	}
	return context.WithCancel(ctx)
}

func (c *Copier) fetch(ctx context.Context, id int) (data []byte, err error) {
	for attempt := 0; attempt <= c.opts.Retries; attempt++ {
		cctx, cancel := c.callCtx(ctx)
		data, err = c.src.Fetch(cctx, id)
		cancel()
		if err == nil {
			return data, nil
		}
	}
	return nil, err
}

func (c *Copier) store(ctx context.Context, id int, data []byte) (err error) {
	for attempt := 0; attempt <= c.opts.Retries; attempt++ {
		cctx, cancel := c.callCtx(ctx)
		err = c.dst.Store(cctx, id, data)
		cancel()
		if err == nil {
			return nil
		}
	}
	return err
}

func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	sem := make(chan struct{}, c.opts.Workers)
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		result Result
	)
loop:
	for _, id := range ids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		if ctx.Err() != nil {
			<-sem
			break
		}
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			defer func() { <-sem }()
			data, err := c.fetch(ctx, id)
			if err == nil {
				err = c.store(ctx, id, data)
			}
			if ctx.Err() != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				result.Failed = append(result.Failed, id)
			} else {
				result.Stored++
			}
		}(id)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return result, err
	}
	sort.Ints(result.Failed)
	return result, nil
}
