package docs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/airshipltd/airship/internal/testbackend"
)

// binDir holds the airship binary the tests build; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "airship-docs-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildErr  error
)

// airship builds the airship binary from this repository, once, as make
// build does (the default build, without cgo), and returns its path.
func airship(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(binDir, "airship")
	buildOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", bin, ".")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bin
}

// A shell runs the commands of the docs as a reader would, from a
// directory of the test's own in which bin/airship is the binary the
// test built, with airship on the PATH. Its environment is the test's,
// without AIRSHIP_ and OTEL_ variables, with TMPDIR in the test's
// directory, and with the variables the test gives it.
type shell struct {
	t   *testing.T
	dir string
	env []string
}

// newShell returns a shell whose commands see the environment variables
// env besides the test's own.
func newShell(t *testing.T, env ...string) *shell {
	t.Helper()
	bin := airship(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(dir, "bin", "airship")); err != nil {
		t.Fatal(err)
	}
	s := &shell{t: t, dir: dir}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "AIRSHIP_") || strings.HasPrefix(name, "OTEL_") || name == "PATH" || name == "TMPDIR" {
			continue
		}
		s.env = append(s.env, kv)
	}
	s.env = append(s.env, "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"), "TMPDIR="+t.TempDir())
	s.env = append(s.env, env...)
	return s
}

// prelude comes before each command the shell runs to its end: bash's
// strict mode, and curl reporting each response's status on standard
// error for the checks ("HTTP 204"); standard output, what the docs show,
// is unchanged.
const prelude = "set -euo pipefail\n" +
	"curl() { command curl --write-out '%{stderr}HTTP %{http_code}\\n' \"$@\"; }\n"

// A result is what a command did.
type result struct {
	command
	stdout, stderr string
	code           int // exit status
	status         int // the HTTP status curl reported, if it ran
}

func (r result) String() string {
	return fmt.Sprintf("`%s`: exit status %d\nstdout:\n%s\nstderr:\n%s", r.text, r.code, r.stdout, r.stderr)
}

var curlStatus = regexp.MustCompile(`(?m)^HTTP (\d{3})$`)

// try runs a command to its end and returns what it did.
func (s *shell) try(c command) result {
	s.t.Helper()
	cmd := exec.Command("bash", "-c", prelude+c.text)
	cmd.Dir, cmd.Env = s.dir, s.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{command: c, stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		s.t.Fatalf("`%s`: %v", c.text, err)
	}
	if m := curlStatus.FindAllStringSubmatch(r.stderr, -1); len(m) > 0 {
		r.status, _ = strconv.Atoi(m[len(m)-1][1])
	}
	return r
}

// run runs the commands in order, each to its end; each must succeed.
func (s *shell) run(cmds ...command) []result {
	s.t.Helper()
	var results []result
	for _, c := range cmds {
		r := s.try(c)
		if r.code != 0 {
			s.t.Fatalf("%s", r)
		}
		s.t.Logf("ran `%s`", c.text)
		results = append(results, r)
	}
	return results
}

// runText runs a block's text, command by command.
func (s *shell) runText(text string) []result {
	s.t.Helper()
	return s.run(commands(text)...)
}

// file returns the content of a file in the shell's directory.
func (s *shell) file(name string) string {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		s.t.Fatal(err)
	}
	return string(b)
}

// A server is a command of the docs that serves until it is stopped
// (`airship serve`, with or without a final &).
type server struct {
	t      *testing.T
	text   string
	cmd    *exec.Cmd
	logs   *testbackend.Buffer
	exited chan struct{}
	err    error // the exit status, once exited is closed
}

// start runs a serving command in the background and waits until readyz
// answers 200. bash runs it as its only command, so it execs the
// server: the process the test stops is airship itself.
func (s *shell) start(c command, readyz string) *server {
	s.t.Helper()
	text := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(c.text), "&"))
	cmd := exec.Command("bash", "-c", text)
	cmd.Dir, cmd.Env = s.dir, s.env
	logs := &testbackend.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = orphanless()
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	srv := &server{t: s.t, text: text, cmd: cmd, logs: logs, exited: make(chan struct{})}
	go func() {
		srv.err = cmd.Wait()
		close(srv.exited)
	}()
	s.t.Cleanup(func() {
		select {
		case <-srv.exited:
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the test failed before it stopped the server
			<-srv.exited
		}
	})
	srv.waitReady(readyz)
	s.t.Logf("started `%s`", text)
	return srv
}

// waitReady polls readyz until it answers 200: for up to a minute, for a
// loaded machine.
func (srv *server) waitReady(readyz string) {
	srv.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(readyz)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-srv.exited:
			srv.t.Fatalf("`%s` exited (%v) before %s answered 200:\n%s", srv.text, srv.err, readyz, srv.logs)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			srv.t.Fatalf("%s does not answer 200 a minute after `%s`:\n%s", readyz, srv.text, srv.logs)
		}
	}
}

// stop sends the server SIGTERM, as docker stop and Kubernetes do: it
// must exit 0, having logged no error.
func (srv *server) stop() {
	srv.t.Helper()
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		srv.t.Fatalf("stop `%s`: %v\n%s", srv.text, err, srv.logs)
	}
	<-srv.exited
	if srv.err != nil {
		srv.t.Fatalf("`%s` after SIGTERM: %v; want exit status 0\n%s", srv.text, srv.err, srv.logs)
	}
	if l := srv.logs.String(); strings.Contains(l, `"level":"ERROR"`) {
		srv.t.Errorf("`%s` logged errors:\n%s", srv.text, l)
	}
}

// orphanless returns the process attributes of a server the test starts:
// a process group of its own, which the test's cleanup kills whole, and
// SIGKILL should the test binary die before its cleanups run (a panic, a
// timeout).
func orphanless() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// listeners returns a free loopback address for airship's API and one for
// its metrics, the environment that makes airship listen on them, and the
// substitutions of the docs' ports (:8000 and :9464) for them.
func listeners(t *testing.T) (api, metrics string, env []string, ports [2]sub) {
	t.Helper()
	api, metrics = testbackend.FreeAddr(t), testbackend.FreeAddr(t)
	env = []string{"AIRSHIP_ADDR=" + api, "AIRSHIP_METRICS_ADDR=" + metrics}
	return api, metrics, env, [2]sub{{":8000", ":" + port(api)}, {":9464", ":" + port(metrics)}}
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
