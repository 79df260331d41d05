package loadtest

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/perf/latency.svg from docs/perf/summary.json")

// TestDocsChart: the chart in docs/performance.md is the one this code
// draws from the run's summary.json beside it (go test ./loadtest
// -run DocsChart -update rewrites it).
func TestDocsChart(t *testing.T) {
	raw, err := os.ReadFile("../docs/perf/summary.json")
	if err != nil {
		t.Fatal(err)
	}
	var s Summary
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	got := Chart(s)
	const path = "../docs/perf/latency.svg"
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not the chart of docs/perf/summary.json; run go test ./loadtest -run DocsChart -update", path)
	}
}
