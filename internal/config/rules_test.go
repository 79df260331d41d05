package config

import "testing"

func TestAccessLogEvery(t *testing.T) {
	for _, c := range []struct {
		in    string
		every uint64
		ok    bool
	}{
		{"", 0, true}, {"errors", 0, true}, {"all", 1, true}, {"sample:1", 1, true}, {"sample:100", 100, true},
		{"sample:0", 0, false}, {"sample:", 0, false}, {"sample:-3", 0, false}, {"sample:x", 0, false},
		{"some", 0, false}, {"ALL", 0, false},
	} {
		every, err := AccessLogEvery(c.in)
		if (err == nil) != c.ok || every != c.every {
			t.Errorf("AccessLogEvery(%q) = %d, %v; want %d, ok %v", c.in, every, err, c.every, c.ok)
		}
	}
}
