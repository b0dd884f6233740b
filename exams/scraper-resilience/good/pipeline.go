// Alternative correct answer (exam scraper-resilience): the scrape loop hands each batch to a sender
// goroutine over an unbuffered channel; the sender sends it live or buffers it. On
// shutdown the loop closes the channel; the sender finishes the POST in progress and
// does not send what reaches it afterwards, so a hanging sink cannot stretch the exit.

// Command scraper scrapes a Prometheus text endpoint at a fixed interval and
// POSTs each scrape to a sink as one JSON batch.
//
// A batch the sink does not accept (connection error, timeout, non-2xx) is
// kept in a bounded in-memory buffer; when the buffer is full a uniformly
// random buffered batch is evicted to make room. A background goroutine
// re-sends buffered batches as soon as the sink accepts a live batch again,
// while scraping and live sends carry on.
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
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"slices"
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
	buf          *buffer
	wake         chan struct{} // asks the flusher to drain the buffer
	out          chan Batch    // scraped batches, to the sender
}

// buffer holds at most max undelivered batches; it is safe for concurrent use.
type buffer struct {
	mu    sync.Mutex
	max   int
	items []Batch
}

// add keeps b. When the buffer is full it first evicts a uniformly random
// buffered batch, which it returns. With max 0 nothing is kept and b itself
// is returned as dropped.
func (q *buffer) add(b Batch) (dropped *Batch) {
	if q.max <= 0 {
		return &b
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) >= q.max {
		i := rand.IntN(len(q.items))
		old := q.items[i]
		dropped = &old
		q.items[i] = q.items[len(q.items)-1]
		q.items = q.items[:len(q.items)-1]
	}
	q.items = append(q.items, b)
	return dropped
}

// take removes and returns the oldest buffered batch.
func (q *buffer) take() (Batch, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return Batch{}, false
	}
	b := q.items[0]
	q.items = slices.Delete(q.items, 0, 1)
	return b, true
}

func (q *buffer) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

func main() {
	source := flag.String("source", "http://127.0.0.1:9100/metrics", "`URL` of the metrics source (Prometheus text format)")
	sink := flag.String("sink", "http://127.0.0.1:9091/write", "`URL` that batches are POSTed to")
	interval := flag.Duration("interval", time.Second, "time between scrapes")
	timeout := flag.Duration("timeout", 5*time.Second, "timeout of each HTTP request")
	bufferSize := flag.Int("buffer-size", 100, "maximum number of batches held while the sink is unreachable (0 disables buffering)")
	flag.Parse()
	if *interval <= 0 || *timeout <= 0 {
		log.Fatal("-interval and -timeout must be positive")
	}
	if *bufferSize < 0 {
		log.Fatal("-buffer-size must not be negative")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	s := &scraper{
		source:   *source,
		sink:     *sink,
		interval: *interval,
		client:   &http.Client{Timeout: *timeout},
		buf:      &buffer{max: *bufferSize},
		wake:     make(chan struct{}, 1),
		out:      make(chan Batch), // unbuffered: a queue would hold batches beyond -buffer-size
	}
	log.Printf("scraping %s every %s, sending to %s, buffering up to %d batches",
		s.source, s.interval, s.sink, *bufferSize)

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.flushLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		s.sendLoop(ctx)
	}()
	s.run(ctx)
	close(s.out)
	wg.Wait()
	if n := s.buf.len(); n > 0 {
		log.Printf("shut down with %d undelivered batches (dropped)", n)
	} else {
		log.Print("shut down")
	}
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

// cycle scrapes the source once and hands the batch to the sender.
func (s *scraper) cycle() {
	b, err := s.scrape()
	if err != nil {
		log.Printf("scrape: %v", err)
		return
	}
	s.out <- b
}

// sendLoop sends each scraped batch straight away; a batch the sink does not
// take goes into the buffer. A successful send wakes the flusher. Once shutdown
// has begun, batches still queued are not sent (buffered batches may be dropped
// at exit, and each send to a hanging sink would take a whole -timeout).
func (s *scraper) sendLoop(ctx context.Context) {
	for b := range s.out {
		if ctx.Err() != nil {
			log.Printf("batch %d not sent: shutting down", b.Seq)
			continue
		}
		s.sendLive(b)
	}
}

func (s *scraper) sendLive(b Batch) {
	if err := s.send(b); err != nil {
		s.keep(b, err)
		return
	}
	if s.buf.len() > 0 {
		select {
		case s.wake <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

// keep buffers a batch the sink did not accept.
func (s *scraper) keep(b Batch, cause error) {
	dropped := s.buf.add(b)
	switch {
	case dropped == nil:
		log.Printf("send batch %d: %v (buffered)", b.Seq, cause)
	case dropped.Seq == b.Seq:
		log.Printf("send batch %d: %v (dropped: buffering is disabled)", b.Seq, cause)
	default:
		log.Printf("send batch %d: %v (buffered; buffer full, evicted batch %d)", b.Seq, cause, dropped.Seq)
	}
}

// flushLoop re-sends buffered batches each time it is woken, until ctx is
// cancelled. It runs beside the scrape loop, so a slow sink delays only the
// backlog, never the next scrape.
func (s *scraper) flushLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		for ctx.Err() == nil {
			b, ok := s.buf.take()
			if !ok {
				break
			}
			if err := s.send(b); err != nil {
				s.keep(b, err) // the sink failed again; wait for the next wake-up
				break
			}
			log.Printf("flushed batch %d", b.Seq)
		}
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
