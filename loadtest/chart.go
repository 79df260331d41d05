package loadtest

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// WriteChart draws the run as dir/latency.png: the p50, p90 and p99
// latency of each second on top, the requests per second below.
func WriteChart(dir string, s Summary) (string, error) {
	lat := plot.New()
	lat.Title.Text = fmt.Sprintf("airship load test: %d users, %s ramp-up, %s hold (%s)", s.Users, s.RampUp, s.Hold, s.URL)
	lat.Y.Label.Text = "latency (ms)"
	lat.Add(plotter.NewGrid())
	lat.Legend.Top = true
	lat.Legend.Left = true
	lat.Legend.XOffs = vg.Points(12)

	rps := plot.New()
	rps.X.Label.Text = "seconds since start"
	rps.Y.Label.Text = "requests per second"
	rps.Add(plotter.NewGrid())
	rps.Legend.Top = true
	rps.Legend.Left = true
	rps.Legend.XOffs = vg.Points(12)

	series := []struct {
		name  string
		value func(Second) float64
		color color.RGBA
	}{
		{"p50", func(x Second) float64 { return x.P50MS }, color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}},
		{"p90", func(x Second) float64 { return x.P90MS }, color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}},
		{"p99", func(x Second) float64 { return x.P99MS }, color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}},
	}
	tl := s.Timeline
	if n := len(tl); n > 1 && float64(tl[n-1].Second+1) > s.Seconds {
		tl = tl[:n-1] // a partial last second would drag the lines down
	}
	if len(tl) == 0 {
		tl = []Second{{}} // an empty chart rather than no chart
	}
	for _, sr := range series {
		pts := make(plotter.XYs, len(tl))
		for i, x := range tl {
			pts[i] = plotter.XY{X: float64(x.Second), Y: sr.value(x)}
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return "", fmt.Errorf("chart %s: %w", sr.name, err)
		}
		line.Color = sr.color
		line.Width = vg.Points(1.2)
		lat.Add(line)
		lat.Legend.Add(sr.name, line)
	}
	reqs := make(plotter.XYs, len(tl))
	errs := make(plotter.XYs, len(tl))
	for i, x := range tl {
		reqs[i] = plotter.XY{X: float64(x.Second), Y: float64(x.Requests)}
		errs[i] = plotter.XY{X: float64(x.Second), Y: float64(x.Errors)}
	}
	for _, sr := range []struct {
		name string
		pts  plotter.XYs
		c    color.RGBA
	}{
		{"requests/s", reqs, color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}},
		{"errors/s", errs, color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}},
	} {
		line, err := plotter.NewLine(sr.pts)
		if err != nil {
			return "", fmt.Errorf("chart %s: %w", sr.name, err)
		}
		line.Color = sr.c
		line.Width = vg.Points(1.2)
		rps.Add(line)
		rps.Legend.Add(sr.name, line)
	}
	lat.Y.Min, rps.Y.Min = 0, 0
	lat.X.Min, rps.X.Min = 0, 0
	lat.X.Max = max(lat.X.Max, rps.X.Max)
	rps.X.Max = lat.X.Max
	lat.X.Tick.Marker, rps.X.Tick.Marker = secondTicks{}, secondTicks{}

	img := vgimg.New(vg.Points(960), vg.Points(640))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6),
		PadLeft: vg.Points(6), PadRight: vg.Points(12), PadY: vg.Points(12)}
	plots := [][]*plot.Plot{{lat}, {rps}}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}

	path := filepath.Join(dir, "latency.png")
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("write chart: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return "", fmt.Errorf("write chart: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write chart: %w", err)
	}
	return path, nil
}

// secondTicks marks whole seconds at a round step, about ten of them.
type secondTicks struct{}

// Ticks implements plot.Ticker.
func (secondTicks) Ticks(lo, hi float64) []plot.Tick {
	step := 1.0
	for _, s := range []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600} {
		step = s
		if (hi-lo)/s <= 12 {
			break
		}
	}
	var ticks []plot.Tick
	for x := math.Ceil(lo/step) * step; x <= hi; x += step {
		ticks = append(ticks, plot.Tick{Value: x, Label: strconv.Itoa(int(x))})
	}
	return ticks
}
