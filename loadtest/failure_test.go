package loadtest

import (
	"encoding/xml"
	"math"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRunAgainstAClosedPort: nothing answers, every request fails, and
// Check says so with the first error; the run used to end "successfully"
// with every request refused.
func TestRunAgainstAClosedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	s, err := Run(t.Context(), Config{URL: url, Users: 2, Hold: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total.Requests == 0 || s.Total.Errors != s.Total.Requests {
		t.Fatalf("%d requests, %d errors; want only errors", s.Total.Requests, s.Total.Errors)
	}
	err = s.Check(1) // even with every error allowed
	if err == nil || !strings.Contains(err.Error(), "no request succeeded") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Check = %v, want no request succeeded with the first error", err)
	}
}

func TestSummaryCheck(t *testing.T) {
	sum := func(requests, errors int64) Summary {
		return Summary{Total: Stats{Requests: requests, Errors: errors}, FirstError: "boom"}
	}
	for _, c := range []struct {
		s    Summary
		max  float64
		want string // "" for no error
	}{
		{sum(0, 0), 0.01, "no request completed"},
		{sum(10, 10), 1, "no request succeeded: all 10 failed; the first: boom"},
		{sum(1000, 10), 0.01, ""},
		{sum(1000, 11), 0.01, "11 of 1000 requests failed (1.10%, more than the 1.00% allowed); the first: boom"},
		{sum(1000, 1), 0, "1 of 1000 requests failed"},
		{sum(1000, 0), 0, ""},
		{sum(1000, 999), 1, ""},
	} {
		err := c.s.Check(c.max)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%d of %d failed, max %v: %v; want %q", c.s.Total.Errors, c.s.Total.Requests, c.max, err, c.want)
		}
	}
}

// chart is latency.svg, parsed.
type chart struct {
	Title  string `xml:"text"`
	Panels []struct {
		ID   string  `xml:"id,attr"`
		YMax float64 `xml:"data-ymax,attr"`
		Plot struct {
			X      float64 `xml:"x,attr"`
			Y      float64 `xml:"y,attr"`
			Width  float64 `xml:"width,attr"`
			Height float64 `xml:"height,attr"`
		} `xml:"rect"`
		Lines []struct {
			Name   string `xml:"data-name,attr"`
			Points string `xml:"points,attr"`
		} `xml:"polyline"`
		Legend struct {
			Texts []struct {
				X    float64 `xml:"x,attr"`
				Text string  `xml:",chardata"`
			} `xml:"text"`
		} `xml:"g"`
	} `xml:"g"`
}

func parseChart(t *testing.T, svg []byte) *chart {
	t.Helper()
	var c chart
	if err := xml.Unmarshal(svg, &c); err != nil {
		t.Fatalf("latency.svg is not XML: %v\n%s", err, svg)
	}
	return &c
}

type point struct{ x, y float64 }

// points returns the points of a panel's line, in SVG coordinates.
func (c *chart) points(panel, name string) []point {
	for _, p := range c.Panels {
		for _, l := range p.Lines {
			if p.ID != panel || l.Name != name {
				continue
			}
			var pts []point
			for _, xy := range strings.Fields(l.Points) {
				x, y, _ := strings.Cut(xy, ",")
				px, _ := strconv.ParseFloat(x, 64)
				py, _ := strconv.ParseFloat(y, 64)
				pts = append(pts, point{px, py})
			}
			return pts
		}
	}
	return nil
}

// timeline makes a run of n seconds, with p99 spiking in the middle and
// errs errors a second out of rps requests.
func timeline(n int, rps, errs int64) Summary {
	s := Summary{Users: 3, RampUp: "1s", Hold: "10s", URL: "http://localhost:8000", Seconds: float64(n)}
	for i := range n {
		sec := Second{Second: i, Requests: rps, Errors: errs, P50MS: 0.7, P90MS: 2, P99MS: 4}
		if i == n/2 {
			sec.P99MS = 97.3 // a spike the axis must hold
		}
		s.Timeline = append(s.Timeline, sec)
		s.Total.Requests += rps
		s.Total.Errors += errs
	}
	return s
}

// TestChartLayout: every line lies inside its plot area (p99's spike is
// not clipped), and every legend is outside it, to its right.
func TestChartLayout(t *testing.T) {
	c := parseChart(t, Chart(timeline(30, 3000, 2)))
	if len(c.Panels) != 3 {
		t.Fatalf("%d panels, want latency, throughput and errors", len(c.Panels))
	}
	for _, p := range c.Panels {
		r := p.Plot
		if r.Width <= 0 || r.Height <= 0 {
			t.Fatalf("%s: plot area %+v", p.ID, r)
		}
		for _, l := range p.Lines {
			pts := c.points(p.ID, l.Name)
			if len(pts) != 30 {
				t.Errorf("%s %s: %d points, want 30", p.ID, l.Name, len(pts))
			}
			for _, pt := range pts {
				if pt.x < r.X || pt.x > r.X+r.Width || pt.y < r.Y || pt.y > r.Y+r.Height {
					t.Errorf("%s %s: point %v outside the plot area %+v", p.ID, l.Name, pt, r)
				}
			}
		}
		if len(p.Legend.Texts) != len(p.Lines) {
			t.Errorf("%s: %d legend entries for %d lines", p.ID, len(p.Legend.Texts), len(p.Lines))
		}
		for _, e := range p.Legend.Texts {
			if e.X <= r.X+r.Width {
				t.Errorf("%s: legend %q at x %v, inside the plot area (right edge %v)", p.ID, e.Text, e.X, r.X+r.Width)
			}
		}
	}
	// The spike is drawn at its height: the axis goes at least that high.
	if p := c.Panels[0]; p.YMax < 97.3 {
		t.Errorf("latency axis up to %v ms, p99 reaches 97.3", p.YMax)
	}
	// Two errors a second among 3,000 requests are visible: their axis is
	// their own, so the line stands well clear of the bottom.
	errs := c.Panels[2]
	for _, pt := range c.points("errors", "errors/s") {
		if bottom := errs.Plot.Y + errs.Plot.Height; bottom-pt.y < errs.Plot.Height/2 {
			t.Errorf("2 errors/s drawn %v above the bottom of a %v high panel", bottom-pt.y, errs.Plot.Height)
		}
	}
}

// TestChartOfAFailedRun: a run where every request failed shows its
// errors (the chart used to show empty panels).
func TestChartOfAFailedRun(t *testing.T) {
	s := timeline(10, 2500, 2500)
	svg := Chart(s)
	c := parseChart(t, svg)
	pts := c.points("errors", "errors/s")
	if len(pts) != 10 {
		t.Fatalf("%d points of errors/s, want 10:\n%s", len(pts), svg)
	}
	errs := c.Panels[2]
	if errs.YMax < 2500 {
		t.Errorf("errors axis up to %v, the run had 2500 a second", errs.YMax)
	}
	for _, pt := range pts {
		if pt.y > errs.Plot.Y+errs.Plot.Height/2 {
			t.Errorf("2500 errors/s drawn at %v, in the lower half of the panel %+v", pt.y, errs.Plot)
		}
	}
	if !strings.Contains(string(svg), "25000 requests, 25000 errors") {
		t.Errorf("the title does not count the errors:\n%s", svg)
	}
}

func TestNiceScale(t *testing.T) {
	for _, c := range []struct{ v, top, step float64 }{
		{0, 1, 0.25},
		{97.3, 100, 20},
		{4.25, 5, 1},
		{10, 12, 2}, // a line on the top edge is hard to see
		{3100, 4000, 1000},
		{0.012, 0.015, 0.005},
	} {
		top, step := niceScale(c.v)
		if math.Abs(top-c.top) > 1e-9 || math.Abs(step-c.step) > 1e-9 {
			t.Errorf("niceScale(%v) = %v, %v; want %v, %v", c.v, top, step, c.top, c.step)
		}
	}
}
