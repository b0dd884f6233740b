// Package copier copies items from a Source to a Sink.
package copier

import (
	"context"
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
	return &Copier{src: src, dst: dst, opts: opts}
}

// Run copies every id, one at a time.
func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) {
	var res Result
	for _, id := range ids {
		data, err := c.src.Fetch(ctx, id)
		if err == nil {
			err = c.dst.Store(ctx, id, data)
		}
		if err != nil {
			res.Failed = append(res.Failed, id)
			continue
		}
		res.Stored++
	}
	return res, nil
}
