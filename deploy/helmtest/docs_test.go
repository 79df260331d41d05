package helmtest

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/lib/pq" // PostgreSQL driver
	"github.com/redis/go-redis/v9"
	batchv1 "k8s.io/api/batch/v1"
)

// docCommand is one shell command of the docs, with its line number.
type docCommand struct {
	line int
	text string
}

// kubernetesDocCommands returns the commands of the `sh` code blocks in the
// "## Kubernetes" section of docs/deploy.md, continuation lines joined.
func kubernetesDocCommands(t *testing.T) []docCommand {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		cmds               []docCommand
		inSection, inBlock bool
		pending            *docCommand
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case !inBlock && strings.HasPrefix(line, "## "):
			inSection = line == "## Kubernetes"
		case inSection && !inBlock && line == "```sh":
			inBlock = true
		case inSection && inBlock && line == "```":
			inBlock = false
		case inSection && inBlock:
			text := strings.TrimSpace(line)
			if pending == nil {
				if text == "" || strings.HasPrefix(text, "#") {
					continue
				}
				pending = &docCommand{line: n}
			}
			cont := strings.HasSuffix(text, `\`)
			pending.text += strings.TrimSpace(strings.TrimSuffix(text, `\`)) + " "
			if !cont {
				pending.text = strings.TrimSpace(pending.text)
				cmds = append(cmds, *pending)
				pending = nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(cmds) == 0 {
		t.Fatal("docs/deploy.md has no commands under ## Kubernetes")
	}
	return cmds
}

// splitWords splits a command line like a shell would, for the plain
// quoting the docs use.
func splitWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		quote rune
		in    bool
	)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case strings.ContainsRune("$`|&;<>(){}*?", r):
			return nil, fmt.Errorf("shell syntax %q: the docs' commands must be plain", r)
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote")
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// TestDeployDocsKubernetes runs every command of the Kubernetes section of
// docs/deploy.md, in order, against the API server: helm as it is written,
// kubectl's few forms as the same API requests. Since no controller runs,
// the test stands in for the Job controller: it runs each migration Job's
// command with the built airship binary and the Job's environment (the
// Secret's URLs pointed at this machine's PostgreSQL and Redis), then
// records the Job's outcome, which Helm waits for. After every install,
// upgrade and rollback, the release's objects must be in the API server as
// Helm rendered them, and the hook objects gone.
func TestDeployDocsKubernetes(t *testing.T) {
	c := apiServer(t)
	cmds := kubernetesDocCommands(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()

	db := newDatabase(t)
	jobs := &jobRunner{c: c, airship: buildAirship(t), postgresURL: db.url, redisURL: redisURL(), runs: map[string]int{}}
	stop := jobs.start(ctx, t)
	defer stop()
	env := []string{"KUBECONFIG=" + c.Kubeconfig}

	for _, cmd := range cmds {
		where := fmt.Sprintf("docs/deploy.md:%d: %s", cmd.line, cmd.text)
		words, err := splitWords(cmd.text)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		switch words[0] {
		case "helm":
			before := jobs.count(namespaceOf(words))
			out, stderr, err := helm(t, env, words[1:]...)
			if err != nil {
				t.Fatalf("%s: %v\n%s%s\nmigration jobs: %v", where, err, out, stderr, jobs.errors())
			}
			t.Logf("%s: ok", where)
			checkRelease(ctx, t, c, jobs, env, where, words, before)
		case "kubectl":
			runKubectl(ctx, t, c, where, words)
		default:
			t.Fatalf("%s: the test runs helm and kubectl commands only", where)
		}
	}
	if errs := jobs.errors(); len(errs) > 0 {
		t.Errorf("migration jobs failed: %v", errs)
	}

	// The first install's Job migrated the database.
	var versions int
	if err := db.db.QueryRowContext(ctx, `SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&versions); err != nil || versions == 0 {
		t.Errorf("the migration Job left %d migrations applied (%v), want all", versions, err)
	}
}

func namespaceOf(words []string) string {
	for i, w := range words {
		if (w == "--namespace" || w == "-n") && i+1 < len(words) {
			return words[i+1]
		}
	}
	return "default"
}

// checkRelease checks the cluster after a helm command that changes a
// release.
func checkRelease(ctx context.Context, t *testing.T, c *cluster, jobs *jobRunner, env []string, where string, words []string, jobsBefore int) {
	t.Helper()
	action := words[1]
	ns, release := namespaceOf(words), words[2]
	if action == "uninstall" {
		checkOnlyReleaseObjects(ctx, t, c, where, ns, release, nil)
		return
	}
	if !slices.Contains([]string{"install", "upgrade", "rollback"}, action) {
		return
	}
	manifest, stderr, err := helm(t, env, "get", "manifest", release, "--namespace", ns)
	if err != nil {
		t.Fatalf("%s: helm get manifest: %v\n%s", where, err, stderr)
	}
	objs, err := decodeAll(manifest)
	if err != nil {
		t.Fatalf("%s: release manifest: %v", where, err)
	}
	var migrates bool
	for _, o := range objs {
		got, found, err := c.get(ctx, ns, o.APIVersion, o.Kind, o.Name)
		if err != nil || !found {
			t.Errorf("%s: %s not in the cluster (%v)", where, o, err)
			continue
		}
		if diffs := subset(storedForm(o.Map), got, ""); len(diffs) > 0 {
			t.Errorf("%s: %s in the cluster differs from the release:\n  %s", where, o, strings.Join(diffs, "\n  "))
		}
		if o.Kind == "Deployment" {
			migrates = true // production mode; the values decide whether a Job runs
		}
	}
	checkOnlyReleaseObjects(ctx, t, c, where, ns, release, objs)
	hooks, stderr, err := helm(t, env, "get", "hooks", release, "--namespace", ns)
	if err != nil {
		t.Fatalf("%s: helm get hooks: %v\n%s", where, err, stderr)
	}
	hookObjs, err := decodeAll(hooks)
	if err != nil {
		t.Fatalf("%s: release hooks: %v", where, err)
	}
	for _, h := range hookObjs {
		if _, found, err := c.get(ctx, ns, h.APIVersion, h.Kind, h.Name); err != nil || found {
			t.Errorf("%s: hook %s still in the cluster after it succeeded (%v)", where, h, err)
		}
	}
	want := 0
	if migrates && len(hookObjs) > 0 && action != "rollback" {
		want = 1
	}
	if got := jobs.count(ns) - jobsBefore; got != want {
		t.Errorf("%s: %d migration Job runs in %s, want %d", where, got, ns, want)
	}
}

// checkOnlyReleaseObjects checks that the release's labelled objects in
// the namespace are exactly those of its manifest: what an upgrade or
// rollback dropped (the HPA when autoscaling is turned off, say) is gone.
func checkOnlyReleaseObjects(ctx context.Context, t *testing.T, c *cluster, where, ns, release string, objs []object) {
	t.Helper()
	want := map[string]bool{}
	for _, o := range objs {
		want[o.String()] = true
	}
	for kind, r := range resources {
		if !r.namespaced {
			continue
		}
		apiVersion := apiVersions[kind]
		items, err := c.list(ctx, ns, apiVersion, kind, "app.kubernetes.io/instance="+release)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		for _, it := range items {
			name := it["metadata"].(map[string]any)["name"].(string)
			if !want[kind+"/"+name] {
				t.Errorf("%s: %s/%s is in the cluster but not in the release", where, kind, name)
			}
		}
	}
}

// runKubectl does what the docs' kubectl commands do, as API requests.
func runKubectl(ctx context.Context, t *testing.T, c *cluster, where string, words []string) {
	t.Helper()
	switch {
	case len(words) == 4 && words[1] == "create" && words[2] == "namespace":
		status, body, err := c.apply(ctx, "", namespaceObject(words[3]))
		if err != nil || status >= 300 {
			t.Fatalf("%s: %d %s %v", where, status, body, err)
		}
	case len(words) >= 3 && words[1] == "apply" && slices.Contains(words, "--server-side"):
		var ns, file string
		for i := 2; i < len(words); i++ {
			switch words[i] {
			case "--server-side":
			case "--namespace", "-n":
				i++
				ns = words[i]
			case "-f", "--filename":
				i++
				file = words[i]
			default:
				t.Fatalf("%s: the test does not know kubectl apply's %s", where, words[i])
			}
		}
		b, err := os.ReadFile(filepath.Join(repoRoot, file))
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		objs, err := decodeAll(string(b))
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		for _, o := range objs {
			applyAndReadBack(t, ctx, c, ns, o.Map)
		}
	default:
		t.Fatalf("%s: the test cannot run this kubectl command; use `kubectl create namespace` or `kubectl apply --server-side`", where)
	}
	t.Logf("%s: ok", where)
}

// jobRunner stands in for the Job controller and kubelet: it runs each new
// Job's container command once and records the outcome in the Job's status.
type jobRunner struct {
	c                     *cluster
	airship               string
	postgresURL, redisURL string
	// namespaces, when set, are the only ones whose Jobs it runs.
	namespaces map[string]bool
	// before, when set, is called before each Job runs; an error fails
	// the Job.
	before func(context.Context, batchv1.Job) error

	mu   sync.Mutex
	runs map[string]int // successful runs by namespace
	errs []string
}

func (j *jobRunner) count(ns string) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.runs[ns]
}

func (j *jobRunner) errors() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.errs)
}

func (j *jobRunner) start(ctx context.Context, t *testing.T) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		seen := map[string]bool{}
		for ctx.Err() == nil {
			status, body, err := j.c.do(ctx, http.MethodGet, "/apis/batch/v1/jobs", "", nil)
			if err == nil && status == http.StatusOK {
				var l batchv1.JobList
				if err := json.Unmarshal(body, &l); err == nil {
					for _, job := range l.Items {
						if j.namespaces != nil && !j.namespaces[job.Namespace] {
							continue
						}
						if !seen[string(job.UID)] {
							seen[string(job.UID)] = true
							j.run(ctx, t, job)
						}
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return func() { cancel(); <-done }
}

// run runs one Job and records its outcome.
func (j *jobRunner) run(ctx context.Context, t *testing.T, job batchv1.Job) {
	start := time.Now().UTC()
	var (
		out string
		err error
	)
	if j.before != nil {
		err = j.before(ctx, job)
	}
	if err == nil {
		out, err = j.exec(ctx, job)
	}
	name := job.Namespace + "/" + job.Name
	j.mu.Lock()
	if err != nil {
		j.errs = append(j.errs, fmt.Sprintf("%s: %v\n%s", name, err, out))
	} else {
		j.runs[job.Namespace]++
	}
	j.mu.Unlock()
	if err := j.finish(ctx, job, start, err == nil); err != nil {
		j.mu.Lock()
		j.errs = append(j.errs, fmt.Sprintf("%s: record the outcome: %v", name, err))
		j.mu.Unlock()
	}
	t.Logf("migration Job %s ran (ok: %v)", name, err == nil)
}

// exec runs the Job's container as a kubelet would, with what the pod
// needs looked up in the API server.
func (j *jobRunner) exec(ctx context.Context, job batchv1.Job) (string, error) {
	ns, spec := job.Namespace, job.Spec.Template.Spec
	if err := checkServiceAccount(ctx, j.c, ns, spec); err != nil {
		return "", err
	}
	if len(spec.Containers) != 1 {
		return "", fmt.Errorf("%d containers, want 1", len(spec.Containers))
	}
	ctr := spec.Containers[0]
	env, err := containerEnv(ctx, j.c, ns, ctr)
	if err != nil {
		return "", err
	}
	env = localBackends(env, j.postgresURL, j.redisURL)
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// A directory of its own, removed after: no config.yaml, and nothing
	// the job writes stays behind.
	dir, err := os.MkdirTemp("", "airship-job-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	cmd := exec.CommandContext(cctx, j.airship, ctr.Args...)
	cmd.Env = append(env, "HOME="+dir)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// finish writes the Job's final status, as the Job controller would.
func (j *jobRunner) finish(ctx context.Context, job batchv1.Job, start time.Time, ok bool) error {
	now := time.Now().UTC().Format(time.RFC3339)
	startTime := start.Format(time.RFC3339)
	cond := func(typ, reason string) map[string]any {
		return map[string]any{"type": typ, "status": "True", "reason": reason, "lastProbeTime": now, "lastTransitionTime": now}
	}
	status := map[string]any{"startTime": startTime, "active": 0, "ready": 0}
	if ok {
		status["succeeded"] = 1
		status["completionTime"] = now
		status["conditions"] = []any{cond("SuccessCriteriaMet", "CompletionsReached"), cond("Complete", "CompletionsReached")}
	} else {
		status["failed"] = 1
		status["conditions"] = []any{cond("FailureTarget", "BackoffLimitExceeded"), cond("Failed", "BackoffLimitExceeded")}
	}
	body, _ := json.Marshal(map[string]any{"status": status})
	path := fmt.Sprintf("/apis/batch/v1/namespaces/%s/jobs/%s/status", job.Namespace, job.Name)
	code, resp, err := j.c.do(ctx, http.MethodPatch, path, "application/merge-patch+json", body)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("PATCH %s: %d %s", path, code, resp)
	}
	return nil
}

var (
	airshipOnce sync.Once
	airshipBin  string
	airshipErr  error
)

// buildAirship builds the airship binary from this repository, once.
func buildAirship(t *testing.T) string {
	t.Helper()
	airshipOnce.Do(func() {
		dir, err := os.MkdirTemp("", "airship-helmtest-")
		if err != nil {
			airshipErr = err
			return
		}
		airshipBin = filepath.Join(dir, "airship")
		// The remote build: the same binary as the default one with
		// modules all, and it runs the modules of a split deployment.
		cmd := exec.Command("go", "build", "-tags", "remote", "-o", airshipBin, ".")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			airshipErr = fmt.Errorf("build airship: %v\n%s", err, out)
		}
	})
	if airshipErr != nil {
		t.Fatal(airshipErr)
	}
	return airshipBin
}

const startPostgres = "start PostgreSQL with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, " +
	"or point AIRSHIP_TEST_POSTGRES_URL at a server where the user may CREATE DATABASE"

type database struct {
	url string
	db  *sql.DB
}

// newDatabase creates an empty database, dropped when the test ends.
func newDatabase(t *testing.T) database {
	t.Helper()
	admin := os.Getenv("AIRSHIP_TEST_POSTGRES_URL")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	a, err := sql.Open("postgres", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := a.PingContext(ctx); err != nil {
		t.Fatalf("PostgreSQL is not reachable: %v; %s", err, startPostgres)
	}
	name := "airship_helmtest_" + randomHex(6)
	if _, err := a.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(admin)
	u.Path = "/" + name
	db, err := sql.Open("postgres", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		a, err := sql.Open("postgres", admin)
		if err != nil {
			t.Error(err)
			return
		}
		defer a.Close()
		if _, err := a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	return database{url: u.String(), db: db}
}

// redisKeySpace returns a Redis key prefix of the test's own on this
// machine's shared Redis; its keys are deleted when the test ends.
func redisKeySpace(t *testing.T) string {
	t.Helper()
	prefix := "airship-helmtest:" + randomHex(6) + ":"
	t.Cleanup(func() {
		opts, err := redis.ParseURL(redisURL())
		if err != nil {
			t.Error(err)
			return
		}
		rdb := redis.NewClient(opts)
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var keys []string
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("delete the Redis keys %s*: %v", prefix, err)
			return
		}
		if len(keys) > 0 {
			if err := rdb.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("delete the Redis keys %s*: %v", prefix, err)
			}
		}
	})
	return prefix
}

func redisURL() string {
	if u := os.Getenv("AIRSHIP_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}
