package transfer

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows how far a long command has got: a progress bar when out
// is a terminal, otherwise (a log file, a pipe, CI) a plain line every
// interval. Add may be called from several goroutines.
type progress struct {
	what  string
	total int64 // < 0: unknown
	out   io.Writer
	bar   *progressbar.ProgressBar
	start time.Time
	done  atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
}

// plainInterval is how often progress writes a line when out is not a
// terminal.
const plainInterval = 5 * time.Second

// startProgress starts reporting the progress of what (for example
// "import products") out of total items (-1 when unknown) to out.
func startProgress(out io.Writer, what string, total int64) *progress {
	p := &progress{what: what, total: total, out: out, start: time.Now(), stop: make(chan struct{})}
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(out),
			progressbar.OptionSetDescription(what),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("items"),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionFullWidth(),
		)
		return p
	}
	p.wg.Go(func() {
		t := time.NewTicker(plainInterval)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				fmt.Fprintln(out, p.line())
			}
		}
	})
	return p
}

// line describes the progress so far.
func (p *progress) line() string {
	n := p.done.Load()
	rate := float64(n) / time.Since(p.start).Seconds()
	if p.total < 0 {
		return fmt.Sprintf("%s: %d, %.0f/s", p.what, n, rate)
	}
	return fmt.Sprintf("%s: %d/%d (%.0f%%), %.0f/s", p.what, n, p.total, 100*float64(n)/float64(max(p.total, 1)), rate)
}

// Add counts n more items done.
func (p *progress) Add(n int) {
	p.done.Add(int64(n))
	if p.bar != nil {
		_ = p.bar.Add(n)
	}
}

// Finish stops reporting and returns how long it took.
func (p *progress) Finish() time.Duration {
	if p.bar != nil {
		_ = p.bar.Finish()
	} else {
		close(p.stop)
		p.wg.Wait()
	}
	return time.Since(p.start)
}
