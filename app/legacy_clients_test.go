package app_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// TestOldReadmeExamples runs the old shop's documented curl commands,
// verbatim (curl -d with no Content-Type: the body goes out labelled
// application/x-www-form-urlencoded), against the airship binary, and
// checks each answer against the one the old README shows.
func TestOldReadmeExamples(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed: apt-get install -y curl")
	}
	raw, err := os.ReadFile("testdata/old-readme-examples.sh")
	if err != nil {
		t.Fatal(err)
	}
	var commands []string
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "curl ") {
			commands = append(commands, l)
		}
	}
	want := []string{
		`{"id": "the_odyssey"}`,
		`{"id": "the_odyssey", "title": "The Odyssey", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 10}`,
		`{"id": 1}`,
		`{"id": 1, "order_details": [{"id": 1, "quantity": 1, "product_id": "the_odyssey",
			"image": "http://www.example.com/airship/images/the_odyssey.jpg", "price": "100000.99",
			"product": {"maximum_speed": 5, "id": "the_odyssey", "title": "The Odyssey", "passenger_capacity": 101, "in_stock": 9}}]}`,
	}
	if len(commands) != len(want) {
		t.Fatalf("%d commands in the examples; want %d", len(commands), len(want))
	}
	p := startProcess(t, processBackends["embedded"](t)...)
	for i, c := range commands {
		c = strings.ReplaceAll(c, "http://localhost:8003", p.url)
		out, err := exec.Command("bash", "-c", c+" --silent --show-error --write-out '\n%{http_code}'").Output()
		if err != nil {
			t.Fatalf("%s: %v\n%s", c, err, p.logs)
		}
		text := strings.TrimSpace(string(out))
		cut := strings.LastIndexByte(text, '\n')
		body, status := strings.TrimSpace(text[:max(cut, 0)]), text[cut+1:]
		if status != "200" {
			t.Fatalf("%s: status %s, body %s", c, status, body)
		}
		var got, w any
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%s: %q is not JSON", c, body)
		}
		json.Unmarshal([]byte(want[i]), &w)
		if !reflect.DeepEqual(got, w) {
			t.Fatalf("%s:\n%s\nwant\n%s", c, body, want[i])
		}
	}
	// The same body labelled with a type that is not JSON is refused, and
	// the message names the type.
	c := strings.ReplaceAll(`curl -XPOST -H 'Content-Type: text/plain' -d '{"order_details": [{"product_id": "the_odyssey", "price": "1", "quantity": 1}]}' 'http://localhost:8003/orders' --silent --write-out '\n%{http_code}'`,
		"http://localhost:8003", p.url)
	out, err := exec.Command("bash", "-c", c).Output()
	if err != nil || !strings.HasSuffix(string(out), "\n415") || !strings.Contains(string(out), `"UNSUPPORTED_MEDIA_TYPE"`) || !strings.Contains(string(out), "text/plain") {
		t.Fatalf("text/plain body: %v\n%s", err, out)
	}
}
