package loadtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to 60 s, with three
// significant digits in the per-step histograms and two in the per-second
// ones (which only feed the chart).
const (
	lowestLatency  = 1
	highestLatency = int64(60 * time.Second / time.Microsecond)
)

// Stats summarises the requests of one step, or of all steps.
type Stats struct {
	Name     string  `json:"name"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	RPS      float64 `json:"rps"`
	AvgMS    float64 `json:"avg_ms"`
	P50MS    float64 `json:"p50_ms"`
	P90MS    float64 `json:"p90_ms"`
	P95MS    float64 `json:"p95_ms"`
	P99MS    float64 `json:"p99_ms"`
	MaxMS    float64 `json:"max_ms"`
	// ErrorSamples holds the first few distinct error messages.
	ErrorSamples []string `json:"error_samples,omitempty"`
}

// Second is what completed during one second of the run.
type Second struct {
	Second   int     `json:"second"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	P50MS    float64 `json:"p50_ms"`
	P90MS    float64 `json:"p90_ms"`
	P99MS    float64 `json:"p99_ms"`
}

// Summary is the result of a run, written as summary.json.
type Summary struct {
	URL       string    `json:"url"`
	Users     int       `json:"users"`
	RampUp    string    `json:"ramp_up"`
	Hold      string    `json:"hold"`
	StartedAt time.Time `json:"started_at"`
	// Seconds is how long the run lasted; it is shorter than ramp-up plus
	// hold when the run was interrupted.
	Seconds     float64  `json:"seconds"`
	Interrupted bool     `json:"interrupted"`
	Steps       []Stats  `json:"steps"`
	Total       Stats    `json:"total"`
	Timeline    []Second `json:"timeline"`
	// FirstError is the message of the run's first failed request.
	FirstError string `json:"first_error,omitempty"`
}

// Check returns an error when the run failed: when no request completed,
// when none succeeded, or when more than maxErrorRate (0.01 is 1%) of
// them failed. Its message gives the first error.
func (s Summary) Check(maxErrorRate float64) error {
	t := s.Total
	switch {
	case t.Requests == 0:
		return errors.New("load test: no request completed")
	case t.Errors == t.Requests:
		return fmt.Errorf("load test: no request succeeded: all %d failed; the first: %s", t.Requests, s.FirstError)
	case float64(t.Errors) > maxErrorRate*float64(t.Requests):
		return fmt.Errorf("load test: %d of %d requests failed (%.2f%%, more than the %.2f%% allowed); the first: %s",
			t.Errors, t.Requests, 100*float64(t.Errors)/float64(t.Requests), 100*maxErrorRate, s.FirstError)
	}
	return nil
}

const maxErrorSamples = 5

type stepRecord struct {
	hist    *hdrhistogram.Histogram
	sumUS   int64 // exact, for the average
	errors  int64
	samples []string
}

// recorder collects request outcomes from every virtual user.
type recorder struct {
	mu    sync.Mutex
	start time.Time
	steps []stepRecord
	total *hdrhistogram.Histogram
	sumUS int64
	errs  int64
	first string // the first error's message

	// The current second's histogram; closed seconds go to timeline.
	sec      int
	secHist  *hdrhistogram.Histogram
	secErrs  int64
	timeline []Second
}

func newRecorder(start time.Time, steps int) *recorder {
	r := &recorder{
		start:   start,
		steps:   make([]stepRecord, steps),
		total:   hdrhistogram.New(lowestLatency, highestLatency, 3),
		secHist: hdrhistogram.New(lowestLatency, highestLatency, 2),
	}
	for i := range r.steps {
		r.steps[i].hist = hdrhistogram.New(lowestLatency, highestLatency, 3)
	}
	return r
}

// record adds one request of step that took d and ended at end; err is
// nil when it succeeded.
func (r *recorder) record(step int, end time.Time, d time.Duration, err error) {
	us := min(max(d.Microseconds(), lowestLatency), highestLatency)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.advance(end)
	s := &r.steps[step]
	_ = s.hist.RecordValue(us) // in range by construction
	_ = r.total.RecordValue(us)
	s.sumUS += us
	r.sumUS += us
	_ = r.secHist.RecordValue(us)
	if err != nil {
		s.errors++
		r.errs++
		r.secErrs++
		if r.first == "" {
			r.first = err.Error()
		}
		if len(s.samples) < maxErrorSamples && !contains(s.samples, err.Error()) {
			s.samples = append(s.samples, err.Error())
		}
	}
}

// advance closes the seconds that ended before now. Callers hold r.mu.
func (r *recorder) advance(now time.Time) {
	sec := int(now.Sub(r.start) / time.Second)
	for r.sec < sec {
		r.closeSecond()
	}
}

func (r *recorder) closeSecond() {
	h := r.secHist
	r.timeline = append(r.timeline, Second{
		Second:   r.sec,
		Requests: h.TotalCount(),
		Errors:   r.secErrs,
		P50MS:    ms(h.ValueAtPercentile(50)),
		P90MS:    ms(h.ValueAtPercentile(90)),
		P99MS:    ms(h.ValueAtPercentile(99)),
	})
	h.Reset()
	r.secErrs = 0
	r.sec++
}

// progress returns the totals so far and the requests of the last
// complete second.
func (r *recorder) progress(now time.Time) (requests, errors, lastSecond int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.advance(now)
	if n := len(r.timeline); n > 0 {
		lastSecond = r.timeline[n-1].Requests
	}
	return r.total.TotalCount(), r.errs, lastSecond
}

// summary closes the run at end and summarises it.
func (r *recorder) summary(end time.Time, names []string) Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	elapsed := end.Sub(r.start)
	r.advance(end)
	if r.secHist.TotalCount() > 0 {
		r.closeSecond() // the last, partial second
	}
	s := Summary{StartedAt: r.start, Seconds: elapsed.Seconds(), Timeline: append([]Second(nil), r.timeline...), FirstError: r.first}
	for i, st := range r.steps {
		stats := statsOf(names[i], st.hist, st.sumUS, st.errors, elapsed)
		stats.ErrorSamples = append([]string(nil), st.samples...)
		s.Steps = append(s.Steps, stats)
	}
	s.Total = statsOf("total", r.total, r.sumUS, r.errs, elapsed)
	return s
}

func statsOf(name string, h *hdrhistogram.Histogram, sumUS, errors int64, elapsed time.Duration) Stats {
	st := Stats{Name: name, Requests: h.TotalCount(), Errors: errors}
	if st.Requests == 0 {
		return st
	}
	if elapsed > 0 {
		st.RPS = float64(st.Requests) / elapsed.Seconds()
	}
	st.AvgMS = float64(sumUS) / float64(st.Requests) / 1000
	st.P50MS = ms(h.ValueAtPercentile(50))
	st.P90MS = ms(h.ValueAtPercentile(90))
	st.P95MS = ms(h.ValueAtPercentile(95))
	st.P99MS = ms(h.ValueAtPercentile(99))
	st.MaxMS = ms(h.Max())
	return st
}

// ms turns microseconds into milliseconds.
func ms(us int64) float64 { return float64(us) / 1000 }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// WriteTable prints the summary as a table: one row per step, then the total.
func WriteTable(w io.Writer, s Summary) error {
	const head = "%-16s %9s %7s %9s %9s %9s %9s %9s %9s %9s\n"
	const row = "%-16s %9d %7d %9.1f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f\n"
	if _, err := fmt.Fprintf(w, head, "step", "requests", "errors", "rps", "avg ms", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "max ms"); err != nil {
		return err
	}
	for _, st := range append(append([]Stats(nil), s.Steps...), s.Total) {
		if _, err := fmt.Fprintf(w, row, st.Name, st.Requests, st.Errors, st.RPS,
			st.AvgMS, st.P50MS, st.P90MS, st.P95MS, st.P99MS, st.MaxMS); err != nil {
			return err
		}
	}
	for _, st := range s.Steps {
		for _, e := range st.ErrorSamples {
			if _, err := fmt.Fprintf(w, "error in %s: %s\n", st.Name, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// WriteSummary writes s as dir/summary.json.
func WriteSummary(dir string, s Summary) (string, error) {
	path := filepath.Join(dir, "summary.json")
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode summary: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("write summary: %w", err)
	}
	return path, nil
}
