package products

import (
	"strings"
	"testing"
)

func TestParseCount(t *testing.T) {
	cases := []struct {
		text    string
		lowest  int64
		want    int64
		problem string
	}{
		{"0", 0, 0, ""},
		{"101", 0, 101, ""},
		{"2147483647", 0, MaxCount, ""},
		{"2147483648", 0, 0, "from 0 to"},
		{"0", 1, 0, "from 1 to"},
		{"-1", 0, 0, "from 0 to"},
		{"-0", 0, 0, "must be an integer"},
		{"007", 0, 0, "must be an integer"},
		{"+5", 0, 0, "must be an integer"},
		{"5.0", 0, 0, "must be an integer"},
		{"1e3", 0, 0, "must be an integer"},
		{" 5", 0, 0, "must be an integer"},
		{"", 0, 0, "must be an integer"},
		{"99999999999999999999", 0, 0, "from 0 to"},
	}
	for _, c := range cases {
		n, problem := ParseCount(c.text, c.lowest)
		if n != c.want || !strings.Contains(problem, c.problem) || (c.problem == "") != (problem == "") {
			t.Errorf("ParseCount(%q, %d) = %d, %q; want %d, %q", c.text, c.lowest, n, problem, c.want, c.problem)
		}
	}
}

func TestProductProblems(t *testing.T) {
	ok := Product{ID: "the_odyssey", Title: "The Odyssey", PassengerCapacity: 101, MaximumSpeed: 5, InStock: 10}
	if p := ok.Problems(); p != nil {
		t.Fatalf("valid product refused: %v", p)
	}
	bad := Product{ID: "a:b", Title: " \u200b", PassengerCapacity: -1, MaximumSpeed: MaxCount + 1, InStock: 0, Incarnation: "a b"}
	got := strings.Join(bad.Problems(), "; ")
	for _, field := range []string{"id:", "title:", "passenger_capacity:", "maximum_speed:", "incarnation:"} {
		if !strings.Contains(got, field) {
			t.Errorf("problems %q do not name %s", got, field)
		}
	}
	if strings.Contains(got, "in_stock") {
		t.Errorf("problems %q name in_stock, which is valid", got)
	}
	for _, title := range []string{"", "a\nb", strings.Repeat("é", MaxTitleLength+1), "\xff"} {
		if TitleProblem(title) == "" {
			t.Errorf("title %q accepted", title)
		}
	}
}
