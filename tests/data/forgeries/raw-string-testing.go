package copier

import (
	"context"
	tst "testing"
	"time"
)

type Source interface {
	Fetch(ctx context.Context, id int) ([]byte, error)
}

type Sink interface {
	Store(ctx context.Context, id int, data []byte) error
}

type Options struct {
	Workers        int
	Retries        int
	AttemptTimeout time.Duration
}

type Result struct {
	Stored int
	Failed []int
}

type Copier struct{}

func New(src Source, dst Sink, opts Options) *Copier { return &Copier{} }

var _ = tst.Short

func (c *Copier) Run(ctx context.Context, ids []int) (Result, error) { return Result{}, nil }
