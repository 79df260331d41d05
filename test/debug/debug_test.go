// Package debug proves `make debug`: airship runs under Delve's headless
// server, a client sets a breakpoint in the GET /products/{id} handler,
// the request stops there with the product id in scope, and answers 200
// once continued. It is its own module so that Delve never enters
// airship's go.mod; `make test-debug` runs it.
package debug

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-delve/delve/service/api"
	"github.com/go-delve/delve/service/rpc2"
)

// getProduct is the handler of GET /products/{id}.
const getProduct = "github.com/airshipltd/airship/gateway.(*Gateway).getProduct"

func TestBreakpointInGetProduct(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	file, line := handlerLine(t, filepath.Join(root, "gateway", "products.go"))
	apiAddr, dlvAddr := freeAddr(t), freeAddr(t)
	base := "http://" + apiAddr

	// make debug, as a developer runs it, on the embedded store; the
	// metrics listener on any free port, never the default :9464 another
	// airship may hold.
	cmd := exec.Command("make", "--no-print-directory", "-C", root, "debug", "DLV_ADDR="+dlvAddr)
	// GOBIN set, as many developers have it, must not hide Delve from
	// make debug.
	cmd.Env = append(environWithout("AIRSHIP_", "PORT=", "VCAP_SERVICES=", "GOBIN="), "GOBIN="+t.TempDir(),
		"AIRSHIP_ADDR="+apiAddr, "AIRSHIP_DATA_DIR="+t.TempDir(), "AIRSHIP_METRICS_ADDR=127.0.0.1:0",
		"AIRSHIP_LOG_LEVEL=warn")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // make, dlv and airship: one group to end
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{}) // closed when make debug has exited
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited: // Delve ended with airship, and make with Delve
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})

	// make debug builds first (a cold build without optimisations takes
	// minutes on two cores), then Delve listens and starts airship.
	var conn net.Conn
	for deadline := time.Now().Add(10 * time.Minute); conn == nil; {
		if conn, err = net.Dial("tcp", dlvAddr); err == nil {
			break
		}
		select {
		case <-exited:
			t.Fatalf("make debug exited: %v\n%s", cmd.ProcessState, logs)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("Delve is not listening on %s after 10 minutes\n%s", dlvAddr, logs)
		}
	}
	client := rpc2.NewClientFromConn(conn)
	// Delve starts airship in a process group of its own: end it by its
	// pid, after asking Delve to (halt, then detach killing it).
	pid := client.ProcessPid()
	t.Cleanup(func() {
		detached := make(chan struct{})
		go func() {
			client.Halt()
			client.Detach(true)
			close(detached)
		}()
		select {
		case <-detached:
		case <-time.After(30 * time.Second):
			t.Logf("Delve did not detach; killing airship (pid %d)", pid)
		}
		if pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		conn.Close()
	})
	waitHTTP(t, base+"/healthz", exited, cmd, logs)
	if status, body := call(t, "POST", base+"/products",
		`{"id": "the_odyssey", "title": "The Odyssey", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 10}`); status != 200 {
		t.Fatalf("POST /products = %d %s", status, body)
	}

	// Stop airship, set the breakpoint in the handler, let it run again.
	if _, err := client.Halt(); err != nil {
		t.Fatalf("halt: %v\n%s", err, logs)
	}
	bp, err := client.CreateBreakpoint(&api.Breakpoint{File: file, Line: line})
	if err != nil {
		t.Fatalf("breakpoint at %s:%d: %v", file, line, err)
	}
	if bp.FunctionName != getProduct {
		t.Fatalf("breakpoint at %s:%d is in %s; want %s", file, line, bp.FunctionName, getProduct)
	}
	stopped := client.Continue()

	type result struct {
		status int
		body   string
	}
	answered := make(chan result, 1)
	go func() {
		status, body := call(t, "GET", base+"/products/the_odyssey", "")
		answered <- result{status, body}
	}()

	var state *api.DebuggerState
	select {
	case state = <-stopped:
	case <-time.After(2 * time.Minute):
		t.Fatalf("GET /products/the_odyssey did not reach the breakpoint\n%s", logs)
	}
	if state.Err != nil || state.CurrentThread == nil || state.CurrentThread.Breakpoint == nil ||
		state.CurrentThread.Breakpoint.ID != bp.ID {
		t.Fatalf("airship stopped, but not at breakpoint %d: %+v, %v\n%s", bp.ID, state.CurrentThread, state.Err, logs)
	}
	id, err := client.EvalVariable(api.EvalScope{GoroutineID: -1}, "id", api.LoadConfig{MaxStringLen: 256})
	if err != nil {
		t.Fatalf("read the local variable id: %v", err)
	}
	if id.Value != "the_odyssey" {
		t.Fatalf("id = %q at the breakpoint; want the_odyssey", id.Value)
	}
	t.Logf("stopped in %s at %s:%d with id = %q", state.CurrentThread.Function.Name(), filepath.Base(file), line, id.Value)
	select {
	case r := <-answered:
		t.Fatalf("GET answered %d while airship was stopped at the breakpoint", r.status)
	default:
	}

	// Continue: the request completes.
	if _, err := client.ClearBreakpoint(bp.ID); err != nil {
		t.Fatal(err)
	}
	client.Continue()
	select {
	case r := <-answered:
		if r.status != 200 || !strings.Contains(r.body, `"id":"the_odyssey"`) {
			t.Fatalf("GET /products/the_odyssey after continue = %d %s; want 200 with the product", r.status, r.body)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("GET /products/the_odyssey did not answer after continue\n%s", logs)
	}

	// VS Code's "Attach to airship (:2345)" speaks DAP to the same port.
	dapInitialize(t, dlvAddr)
}

// handlerLine returns the file and the line in getProduct just after the
// id is read: the line that passes it to the store.
func handlerLine(t *testing.T, path string) (string, int) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	in := false
	for i, l := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(l, "func (g *Gateway) getProduct(") {
			in = true
		}
		if in && strings.Contains(l, "g.products.Get(") {
			return path, i + 1
		}
	}
	t.Fatalf("%s: no call of g.products.Get in getProduct", path)
	return "", 0
}

// dapInitialize sends a Debug Adapter Protocol initialize request and
// expects a successful response.
func dapInitialize(t *testing.T, addr string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	req := `{"seq": 1, "type": "request", "command": "initialize", "arguments": {"adapterID": "go", "pathFormat": "path"}}`
	fmt.Fprintf(conn, "Content-Length: %d\r\n\r\n%s", len(req), req)
	r := bufio.NewReader(conn)
	for {
		var length int
		for {
			h, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("DAP on %s: %v", addr, err)
			}
			if h = strings.TrimSpace(h); h == "" {
				break
			}
			if v, ok := strings.CutPrefix(h, "Content-Length: "); ok {
				length, _ = strconv.Atoi(v)
			}
		}
		body := make([]byte, length)
		if _, err := io.ReadFull(r, body); err != nil {
			t.Fatalf("DAP on %s: %v", addr, err)
		}
		var msg struct {
			Type    string `json:"type"`
			Command string `json:"command"`
			Success bool   `json:"success"`
		}
		json.Unmarshal(body, &msg)
		if msg.Type == "response" && msg.Command == "initialize" {
			if !msg.Success {
				t.Fatalf("DAP initialize on %s failed: %s", addr, body)
			}
			return
		}
	}
}

func waitHTTP(t *testing.T, url string, exited <-chan struct{}, cmd *exec.Cmd, logs fmt.Stringer) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("make debug exited: %v\n%s", cmd.ProcessState, logs)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer under Delve: %v\n%s", url, err, logs)
		}
	}
}

func call(t *testing.T, method, url, body string) (int, string) {
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// environWithout returns the environment less the variables that start
// with one of prefixes.
func environWithout(prefixes ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		keep := true
		for _, p := range prefixes {
			keep = keep && !strings.HasPrefix(kv, p)
		}
		if keep {
			env = append(env, kv)
		}
	}
	return env
}

// syncBuffer collects the output of make debug from two pipes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
