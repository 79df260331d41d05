//go:build upgrade

package upgrade

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/airshipltd/airship/internal/testbackend"
)

// proc is one airship process the test started.
type proc struct {
	Name  string
	Build *build
	URL   string // http://127.0.0.1:port

	cmd  *exec.Cmd
	out  *testbackend.Buffer
	done chan struct{}
	err  error // the exit status, once done is closed
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startProc starts b's binary for modules with the given settings (keys
// the binary does not take are left out) on a free loopback port, and
// waits until it is ready. A port taken by another listener between the
// pick and the bind is retried on another.
func startProc(t *testing.T, name string, b *build, modules string, settings []setting) *proc {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p := launch(t, name, b, modules, settings)
		err := p.waitReady(t.Context(), 2*time.Minute)
		if err == nil {
			t.Logf("%s started: %s (%s) on %s", name, b.Label, modules, p.URL)
			return p
		}
		p.kill()
		if attempt < 3 && strings.Contains(p.out.String(), "address already in use") {
			t.Logf("%s lost its port to another listener; starting it again", name)
			continue
		}
		t.Fatalf("%s (%s, modules %s) did not become ready: %v\n%s", name, b.Label, modules, err, tail(p.out.String()))
	}
}

func launch(t *testing.T, name string, b *build, modules string, settings []setting) *proc {
	t.Helper()
	addr := testbackend.FreeAddr(t)
	all := append([]setting{
		{"addr", addr},
		{"log_level", "info"},
		{"log_format", "text"},
		{"metrics_addr", testbackend.FreeAddr(t)},
		{"shutdown_timeout", "10s"},
	}, settings...)
	if modules != "all" {
		all = append(all, setting{"modules", modules})
	}
	env := cleanEnv()
	for _, s := range all {
		if b.has(modules, s.key) {
			env = append(env, "AIRSHIP_"+strings.ToUpper(s.key)+"="+s.value)
		}
	}
	cmd := exec.Command(b.bin(modules), "serve")
	cmd.Dir = t.TempDir() // no config.yaml; ./data is never used (data_dir is set in embedded mode)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{Name: name, Build: b, URL: "http://" + addr, cmd: cmd, out: &testbackend.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if !p.exited() {
			p.kill()
		}
		if t.Failed() {
			t.Logf("%s (%s) output:\n%s", name, b.Label, tail(p.out.String()))
		}
	})
	return p
}

// waitReady polls /readyz until it answers 200.
func (p *proc) waitReady(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	var last error
	for {
		if p.exited() {
			return fmt.Errorf("exited: %v", p.err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/readyz", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/readyz answered %d", resp.StatusCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-p.done:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop ends the process as a rolling update does (SIGTERM, then its
// graceful shutdown) and fails the test if it does not exit cleanly.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.kill()
		t.Errorf("%s did not stop within 60s of SIGTERM; killed\n%s", p.Name, tail(p.out.String()))
		return
	}
	if p.err != nil {
		t.Errorf("%s exited with %v after SIGTERM\n%s", p.Name, p.err, tail(p.out.String()))
	}
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// runCommand runs a one-off command of the binary for modules (migrate
// up, as the migration Job does; version) with settings, and returns its
// output.
func runCommand(t *testing.T, b *build, modules string, settings []setting, args ...string) string {
	t.Helper()
	env := cleanEnv()
	for _, s := range settings {
		if b.has(modules, s.key) {
			env = append(env, "AIRSHIP_"+strings.ToUpper(s.key)+"="+s.value)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.bin(modules), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", b.Label, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// tail is the end of a process's output.
func tail(s string) string {
	const max = 6000
	if len(s) > max {
		s = "…" + s[len(s)-max:]
	}
	return s
}

// dataDir is an embedded store's directory that outlives the processes
// using it (removed with the test's temporary files).
func dataDir(t *testing.T) string {
	d := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}
