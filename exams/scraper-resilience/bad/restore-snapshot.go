// Known-bad variant (exam scraper-resilience): the flusher takes every buffered batch out of
// the buffer and, when a re-send fails part-way, puts the whole set back, the batches
// it already delivered included; they are delivered again after the next outage.

// Command scraper scrapes a Prometheus text endpoint at a fixed interval and
// POSTs each scrape to a sink as one JSON batch.
//
// Batches the sink does not accept are kept in a bounded in-memory buffer and
// re-sent by a background goroutine once the sink is reachable again.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// sequenceMetric is the source's per-scrape sequence number; every batch
// carries it so a batch can be told apart from any other.
const sequenceMetric = "scrape_sequence"

// Sample is one sample of the exposition format.
type Sample struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Value  float64           `json:"value"`
}

// Batch is the result of one scrape, as POSTed to the sink.
type Batch struct {
	Seq       int64     `json:"seq"`
	ScrapedAt time.Time `json:"scraped_at"`
	Samples   []Sample  `json:"samples"`
}

type scraper struct {
	source, sink string
	interval     time.Duration
	client       *http.Client
	buffer       *Buffer
	sinkUp       chan struct{} // signalled when a live send succeeds
}

// Buffer holds the batches the sink has not accepted yet, at most limit of
// them. All methods are safe for concurrent use.
type Buffer struct {
	mu      sync.Mutex
	batches []Batch
	limit   int
}

// Add keeps a batch the sink did not accept. When the buffer is full, one
// buffered batch is evicted first. A limit of 0 disables buffering.
func (b *Buffer) Add(batch Batch) {
	if b.limit <= 0 {
		log.Printf("batch %d dropped (buffering disabled)", batch.Seq)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.batches) >= b.limit {
		victim := rand.Intn(len(b.batches))
		log.Printf("buffer full, evicting batch %d", b.batches[victim].Seq)
		b.batches = append(b.batches[:victim], b.batches[victim+1:]...)
	}
	b.batches = append(b.batches, batch)
}

// Len reports how many batches are buffered.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.batches)
}

// TakeAll empties the buffer and returns what it held, oldest first.
func (b *Buffer) TakeAll() []Batch {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.batches
	b.batches = nil
	return out
}

// PutBack returns batches taken by TakeAll to the front of the buffer,
// evicting at random while it is over its limit.
func (b *Buffer) PutBack(batches []Batch) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches = append(append([]Batch(nil), batches...), b.batches...)
	for len(b.batches) > b.limit {
		victim := rand.Intn(len(b.batches))
		b.batches = append(b.batches[:victim], b.batches[victim+1:]...)
	}
}

func main() {
	source := flag.String("source", "http://127.0.0.1:9100/metrics", "`URL` of the metrics source (Prometheus text format)")
	sink := flag.String("sink", "http://127.0.0.1:9091/write", "`URL` that batches are POSTed to")
	interval := flag.Duration("interval", time.Second, "time between scrapes")
	timeout := flag.Duration("timeout", 5*time.Second, "timeout of each HTTP request")
	bufferSize := flag.Int("buffer-size", 100, "max number of undelivered batches kept in memory (0 disables buffering)")
	flag.Parse()
	if *interval <= 0 || *timeout <= 0 {
		log.Fatal("-interval and -timeout must be positive")
	}
	if *bufferSize < 0 {
		log.Fatal("-buffer-size must be >= 0")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	s := &scraper{
		source:   *source,
		sink:     *sink,
		interval: *interval,
		client:   &http.Client{Timeout: *timeout},
		buffer:   &Buffer{limit: *bufferSize},
		sinkUp:   make(chan struct{}, 1),
	}
	log.Printf("scraping %s every %s, sending to %s", s.source, s.interval, s.sink)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.flusher(ctx)
	}()
	s.run(ctx)
	wg.Wait()
	log.Printf("shut down (%d batches still buffered are dropped)", s.buffer.Len())
}

// run scrapes once at once and then every interval until ctx is cancelled.
// A cycle in progress when ctx is cancelled runs to completion: its requests
// are bounded by the client timeout, not by ctx.
func (s *scraper) run(ctx context.Context) {
	ticker := time.NewTicker(s.interval)
	defer ticker.Stop()
	for {
		s.cycle()
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// cycle scrapes the source once and sends the result to the sink; a batch
// the sink does not accept goes into the buffer.
func (s *scraper) cycle() {
	b, err := s.scrape()
	if err != nil {
		log.Printf("scrape: %v", err)
		return
	}
	if err := s.send(b); err != nil {
		log.Printf("send batch %d: %v (buffered)", b.Seq, err)
		s.buffer.Add(b)
		return
	}
	if s.buffer.Len() > 0 {
		select {
		case s.sinkUp <- struct{}{}:
		default:
		}
	}
}

// flusher re-sends the buffer each time a live send succeeds (the sink is back).
func (s *scraper) flusher(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.sinkUp:
			s.flush(ctx)
		}
	}
}

func (s *scraper) flush(ctx context.Context) {
	pending := s.buffer.TakeAll()
	for _, b := range pending {
		if ctx.Err() != nil {
			s.buffer.PutBack(pending)
			return
		}
		if err := s.send(b); err != nil {
			log.Printf("re-send batch %d: %v", b.Seq, err)
			s.buffer.PutBack(pending) // keep them for the next attempt
			return
		}
		log.Printf("re-sent batch %d", b.Seq)
	}
}

func (s *scraper) scrape() (Batch, error) {
	resp, err := s.client.Get(s.source)
	if err != nil {
		return Batch{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Batch{}, fmt.Errorf("source answered %s", resp.Status)
	}
	samples, err := parseExposition(resp.Body)
	if err != nil {
		return Batch{}, err
	}
	b := Batch{ScrapedAt: time.Now().UTC(), Samples: samples}
	for _, smp := range samples {
		if smp.Name == sequenceMetric {
			b.Seq = int64(smp.Value)
		}
	}
	if b.Seq == 0 {
		return Batch{}, fmt.Errorf("no %s sample in the scrape", sequenceMetric)
	}
	return b, nil
}

// send POSTs one batch. Any 2xx answer is success; anything else, including
// a connection error or a timeout, is an error.
func (s *scraper) send(b Batch) error {
	body, err := json.Marshal(b)
	if err != nil {
		return err
	}
	resp, err := s.client.Post(s.sink, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body) // lets the connection be reused
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("sink answered %s", resp.Status)
	}
	return nil
}

// parseExposition reads the Prometheus text format: one sample per line,
// `name{label="value",...} value [timestamp]`; comments and blank lines are
// skipped. Samples whose value JSON cannot represent (NaN, ±Inf) are skipped.
func parseExposition(r io.Reader) ([]Sample, error) {
	var out []Sample
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		smp, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if math.IsNaN(smp.Value) || math.IsInf(smp.Value, 0) {
			continue
		}
		out = append(out, smp)
	}
	return out, sc.Err()
}

func parseLine(line string) (Sample, error) {
	var smp Sample
	end := strings.IndexAny(line, "{ \t")
	if end <= 0 {
		return smp, errors.New("sample without a value")
	}
	smp.Name, line = line[:end], line[end:]
	if line[0] == '{' {
		labels, rest, err := parseLabels(line[1:])
		if err != nil {
			return smp, err
		}
		smp.Labels, line = labels, rest
	}
	fields := strings.Fields(line) // value and an optional timestamp
	if len(fields) == 0 || len(fields) > 2 {
		return smp, fmt.Errorf("malformed sample %q", smp.Name)
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return smp, fmt.Errorf("sample %q: %w", smp.Name, err)
	}
	smp.Value = v
	return smp, nil
}

// parseLabels parses `name="value",...}` (the opening brace already consumed)
// and returns the labels and the text after the closing brace.
func parseLabels(s string) (map[string]string, string, error) {
	labels := map[string]string{}
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return labels, s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return nil, "", errors.New("malformed label")
		}
		name := strings.TrimSpace(s[:eq])
		var val strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				if s[i] == 'n' {
					val.WriteByte('\n')
					continue
				}
			}
			val.WriteByte(s[i])
		}
		if i >= len(s) {
			return nil, "", errors.New("unterminated label value")
		}
		labels[name] = val.String()
		s = s[i+1:]
	}
}
