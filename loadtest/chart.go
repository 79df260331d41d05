package loadtest

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
)

// The chart's layout, in SVG user units (pixels): three panels stacked,
// each a plot area with its own y axis and, to its right, outside it, the
// legend.
const (
	chartWidth   = 960
	plotLeft     = 72  // room for the y tick labels and the axis title
	plotRight    = 820 // the legend starts after this
	legendLeft   = plotRight + 16
	chartTop     = 44 // room for the title
	panelHeight  = 170
	panelGap     = 44 // room for the x tick labels between panels
	chartBottom  = 44 // room for the x axis title
	legendRowGap = 18
)

// A series is one line of a panel.
type series struct {
	name  string
	color string
	value func(Second) float64
}

// A panel is one plot of the chart.
type panel struct {
	id, yTitle string
	series     []series
}

var panels = []panel{
	{"latency", "latency (ms)", []series{
		{"p50", "#1f77b4", func(x Second) float64 { return x.P50MS }},
		{"p90", "#ff7f0e", func(x Second) float64 { return x.P90MS }},
		{"p99", "#d62728", func(x Second) float64 { return x.P99MS }},
	}},
	{"throughput", "requests/s", []series{
		{"requests/s", "#2ca02c", func(x Second) float64 { return float64(x.Requests) }},
	}},
	// Errors on an axis of their own: ten errors in a second of
	// thousands of requests would be a flat line on the requests' axis.
	{"errors", "errors/s", []series{
		{"errors/s", "#d62728", func(x Second) float64 { return float64(x.Errors) }},
	}},
}

// WriteChart draws the run as dir/latency.svg: the p50, p90 and p99
// latency of each second, the requests per second and the errors per
// second, each panel with its own y axis, the legends beside the plots.
// SVG text needs no fonts, so nothing of the kind is built into airship.
func WriteChart(dir string, s Summary) (string, error) {
	path := filepath.Join(dir, "latency.svg")
	if err := os.WriteFile(path, Chart(s), 0o644); err != nil {
		return "", fmt.Errorf("write chart: %w", err)
	}
	return path, nil
}

// Chart returns the SVG document of the run's chart.
func Chart(s Summary) []byte {
	tl := s.Timeline
	if n := len(tl); n > 1 && float64(tl[n-1].Second+1) > s.Seconds {
		tl = tl[:n-1] // a partial last second would drag the lines down
	}
	xMax := 1.0
	if n := len(tl); n > 0 {
		xMax = float64(tl[n-1].Second)
	}
	xMax = max(xMax, 1)
	height := chartTop + len(panels)*panelHeight + (len(panels)-1)*panelGap + chartBottom

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartWidth, height, chartWidth, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", chartWidth, height)
	title := fmt.Sprintf("airship load test: %d users, %s ramp-up, %s hold (%s): %d requests, %d errors",
		s.Users, s.RampUp, s.Hold, s.URL, s.Total.Requests, s.Total.Errors)
	fmt.Fprintf(&b, `<text class="title" x="%d" y="24" font-size="14">%s</text>`+"\n", plotLeft, escape(title))

	for i, p := range panels {
		top := float64(chartTop + i*(panelHeight+panelGap))
		bottom := top + panelHeight
		yMax := 0.0
		for _, sr := range p.series {
			for _, x := range tl {
				yMax = max(yMax, sr.value(x))
			}
		}
		yMax, yStep := niceScale(yMax)
		xPos := func(v float64) float64 { return plotLeft + v/xMax*(plotRight-plotLeft) }
		yPos := func(v float64) float64 { return bottom - v/yMax*panelHeight }

		fmt.Fprintf(&b, `<g class="panel" id="%s" data-ymax="%s">`+"\n", p.id, num(yMax))
		fmt.Fprintf(&b, `<rect class="plot" x="%d" y="%s" width="%d" height="%d" fill="none" stroke="#888"/>`+"\n",
			plotLeft, num(top), plotRight-plotLeft, panelHeight)
		// Grid and y ticks.
		for i := 0; float64(i)*yStep <= yMax*(1+1e-9); i++ {
			v := float64(i) * yStep
			y := yPos(v)
			fmt.Fprintf(&b, `<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#e5e5e5"/>`, plotLeft, num(y), plotRight, num(y))
			fmt.Fprintf(&b, `<text x="%d" y="%s" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n",
				plotLeft-6, num(y), strconv.FormatFloat(v, 'g', 6, 64))
		}
		// x ticks.
		xStep := secondStep(xMax)
		for v := 0.0; v <= xMax; v += xStep {
			x := xPos(v)
			fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#e5e5e5"/>`, num(x), num(top), num(x), num(bottom))
			fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle">%d</text>`+"\n", num(x), num(bottom+16), int(v))
		}
		fmt.Fprintf(&b, `<text x="16" y="%s" text-anchor="middle" transform="rotate(-90 16 %s)">%s</text>`+"\n",
			num(top+panelHeight/2), num(top+panelHeight/2), escape(p.yTitle))
		// The lines.
		for _, sr := range p.series {
			fmt.Fprintf(&b, `<polyline class="series" data-name="%s" fill="none" stroke="%s" stroke-width="1.5" points="`, escape(sr.name), sr.color)
			for j, x := range tl {
				if j > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(num(xPos(float64(x.Second))) + "," + num(yPos(sr.value(x))))
			}
			b.WriteString(`"/>` + "\n")
		}
		// The legend, beside the plot area.
		fmt.Fprintf(&b, `<g class="legend">`)
		for j, sr := range p.series {
			y := top + 12 + float64(j*legendRowGap)
			fmt.Fprintf(&b, `<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="%s" stroke-width="2"/>`,
				legendLeft, num(y), legendLeft+20, num(y), sr.color)
			fmt.Fprintf(&b, `<text x="%d" y="%s" dominant-baseline="middle">%s</text>`, legendLeft+26, num(y), escape(sr.name))
		}
		b.WriteString("</g>\n</g>\n")
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">seconds since start</text>`+"\n",
		(plotLeft+plotRight)/2, height-12)
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// niceScale returns the top of a y axis that holds v and the step of its
// ticks: 1, 2 or 5 times a power of ten, four to ten ticks.
func niceScale(v float64) (top, step float64) {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1, 0.25
	}
	raw := v / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		step = m * mag
		if step >= raw {
			break
		}
	}
	top = math.Ceil(v/step) * step
	if top < v*(1+1e-9) && top == v { // a line on the top edge is hard to see
		top += step
	}
	return top, step
}

// secondStep is the step of the x ticks: whole seconds, about ten ticks.
func secondStep(span float64) float64 {
	for _, s := range []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600} {
		if span/s <= 12 {
			return s
		}
	}
	return 7200
}

// num formats a coordinate or a value briefly.
func num(v float64) string { return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64) }

func escape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s)) // writes to a buffer never fail
	return b.String()
}
