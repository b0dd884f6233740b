// Known-good, in another style: one goroutine per id, admitted by a semaphore
// acquired in Run's loop (so at most Workers ids are in flight), with a ctx-aware
// exponential back-off between attempts whose jitter comes from math/rand/v2's
// goroutine-safe top-level functions.
package copier

import (
	"context"
	"math/rand/v2"
	"slices"
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
	opts.Workers = max(opts.Workers, 1)
	opts.Retries = max(opts.Retries, 0)
	return &Copier{src: src, dst: dst, opts: opts}
}

func wait(ctx context.Context, attempt int) error {
	d := time.Duration(attempt) * time.Millisecond
	d += time.Duration(rand.Int64N(int64(time.Millisecond)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Copier) attempt(ctx context.Context, call func(context.Context) error) error {
	if c.opts.AttemptTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.AttemptTimeout)
		defer cancel()
	}
	return call(ctx)
}

func (c *Copier) step(ctx context.Context, call func(context.Context) error) (err error) {
	for n := 0; n <= c.opts.Retries; n++ {
		if n > 0 {
			if werr := wait(ctx, n); werr != nil {
				return werr
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err = c.attempt(ctx, call); err == nil {
			return nil
		}
	}
	return err
}

func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	slots := make(chan struct{}, c.opts.Workers)
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		stored int
		failed []int
	)
	defer wg.Wait()
	for _, id := range ids {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			var data []byte
			err := c.step(ctx, func(a context.Context) (e error) { data, e = c.src.Fetch(a, id); return })
			if err == nil {
				err = c.step(ctx, func(a context.Context) error { return c.dst.Store(a, id, data) })
			}
			if ctx.Err() != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, id)
			} else {
				stored++
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Result{Stored: stored, Failed: failed}, err
	}
	slices.Sort(failed)
	return Result{Stored: stored, Failed: failed}, nil
}
