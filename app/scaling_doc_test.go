//go:build remote

package app_test

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/airshipltd/airship/internal/testbackend"
)

// docBlocks returns the ```sh blocks of the section of a Markdown file
// that begins with the heading, in order.
func docBlocks(t *testing.T, file, heading string) []string {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var block []string
	in, inBlock := false, false
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case strings.HasPrefix(line, "#") && !inBlock:
			in = line == heading || (in && strings.HasPrefix(line, "###"))
		case in && !inBlock && line == "```sh":
			inBlock, block = true, nil
		case inBlock && line == "```":
			inBlock = false
			blocks = append(blocks, strings.Join(block, "\n"))
		case inBlock:
			block = append(block, line)
		}
	}
	if len(blocks) == 0 {
		t.Fatalf("%s: no sh block under %q", file, heading)
	}
	return blocks
}

var (
	docPort        = regexp.MustCompile(`:(\d{4,5})\b`)
	docPostgresURL = regexp.MustCompile(`postgres://[^' ]+`)
)

// TestScalingDocExample runs docs/scaling.md's three processes of split
// modules as written, in one shell, on this machine: the commands that
// start them, then the one that stops them. Only what would clash with
// other programs here changes: every port becomes a free one, the database
// one of the test's own (created by the example's own command, dropped at
// the end), the Redis prefix the test's, the binary the one the tests
// built. The example session runs through the gateway in between, and each
// process serves its metrics on its own port. The example used to start
// two processes on the same metrics port, and the second failed.
func TestScalingDocExample(t *testing.T) {
	blocks := docBlocks(t, "../docs/scaling.md", "## 3. Split modules")
	if len(blocks) < 2 {
		t.Fatalf("docs/scaling.md's split modules section has %d sh blocks; want the start and the stop", len(blocks))
	}
	start, stop := blocks[0], blocks[1]

	// The ports, each a free one.
	ports := map[string]string{}
	for _, m := range docPort.FindAllStringSubmatch(start+"\n"+stop, -1) {
		if m[1] == "5432" || m[1] == "6379" { // the backends', replaced below
			continue
		}
		if _, ok := ports[m[1]]; !ok {
			_, port, _ := net.SplitHostPort(testbackend.FreeAddr(t))
			ports[m[1]] = port
		}
	}
	script := docPort.ReplaceAllStringFunc(start, func(s string) string {
		if p, ok := ports[s[1:]]; ok {
			return ":" + p
		}
		return s
	})

	// The database: the example's, under another name.
	pgURLs := slices.Compact(docPostgresURL.FindAllString(script, -1))
	if len(pgURLs) != 1 {
		t.Fatalf("the example names PostgreSQL URLs %q; want one, for ensure-database.sh and the orders module", pgURLs)
	}
	name := testbackend.Name("airship_split_doc_")
	u, err := url.Parse(testbackend.PostgresAdminURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	script = strings.ReplaceAll(script, pgURLs[0], u.String())
	t.Cleanup(func() {
		admin, err := sqlx.Open("postgres", testbackend.PostgresAdminURL())
		if err != nil {
			t.Errorf("drop %s: %v", name, err)
			return
		}
		defer admin.Close()
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})

	// Redis, the binary, and the build the test already did.
	for _, r := range []struct{ old, new string }{
		{"redis://127.0.0.1:6379/0", testbackend.RedisURL()},
		{"AIRSHIP_REDIS_PREFIX=airship-split:", "AIRSHIP_REDIS_PREFIX=" + testbackend.RedisPrefix(t)},
		{"bin/airship-remote", binary(t)},
	} {
		if !strings.Contains(script, r.old) {
			t.Fatalf("the example has no %q any more; update this test\n%s", r.old, start)
		}
		script = strings.ReplaceAll(script, r.old, r.new)
	}
	var lines []string
	for _, l := range strings.Split(script, "\n") {
		if !strings.HasPrefix(l, "make build-remote") {
			lines = append(lines, l)
		}
	}
	script = strings.Join(lines, "\n")

	// The example's processes, then the stop command once the test says.
	logs := &testbackend.Buffer{}
	sh := exec.Command("bash", "-c", "set -e\n"+script+"\nread -r _\n"+stop+"\nwait\n")
	sh.Dir = ".." // the repository, where the example runs
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AIRSHIP_") {
			sh.Env = append(sh.Env, kv)
		}
	}
	sh.Stdout, sh.Stderr = logs, logs
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	resume, err := sh.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sh.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-sh.Process.Pid, syscall.SIGKILL) // whatever is left, if the test failed
	})

	gateway := "http://127.0.0.1:" + ports["8000"]
	if ports["8000"] == "" {
		t.Fatalf("the example serves no API on :8000\n%s", start)
	}
	// Each process is ready by its own /readyz (the gateway's does not
	// wait for the modules).
	deadline := time.Now().Add(60 * time.Second)
	for _, doc := range []string{"8001", "8002", "8000"} {
		for {
			resp, err := http.Get("http://127.0.0.1:" + ports[doc] + "/readyz")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case err := <-exited:
				t.Fatalf("the example's shell exited (%v) before :%s was ready:\n%s", err, doc, logs)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("the example's :%s is not ready after 60s:\n%s", doc, logs)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	if out, err := exec.Command("bash", "../test/smoketest.sh", gateway).CombinedOutput(); err != nil {
		t.Fatalf("the example session through the example's gateway: %v\n%s\nprocesses:\n%s", err, out, logs)
	}
	for _, doc := range []string{"9464", "9465", "9466"} {
		port, ok := ports[doc]
		if !ok {
			t.Errorf("the example serves no metrics on :%s", doc)
			continue
		}
		resp, err := http.Get("http://127.0.0.1:" + port + "/metrics")
		if err != nil {
			t.Errorf("metrics of :%s: %v", doc, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("metrics of :%s: %s", doc, resp.Status)
		}
	}

	// The stop command ends all three, each cleanly.
	if _, err := io.WriteString(resume, "\n"); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Fatalf("the example's shell: %v\n%s", err, logs)
	}
	if l := logs.String(); strings.Contains(l, `"level":"ERROR"`) {
		t.Errorf("the processes logged errors:\n%s", l)
	}
}
