package helmtest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// What a kubelet would do with the chart's pods, done here with the built
// airship binary: resolve the environment from the API server, start the
// container's command, call its probes, stop it with SIGTERM.

// checkServiceAccount fails when the pod's service account does not exist
// (every namespace has "default").
func checkServiceAccount(ctx context.Context, c *cluster, ns string, spec corev1.PodSpec) error {
	sa := spec.ServiceAccountName
	if sa == "" || sa == "default" {
		return nil
	}
	if _, found, err := c.get(ctx, ns, "v1", "ServiceAccount", sa); err != nil || !found {
		return fmt.Errorf("service account %s does not exist when the pod starts (%v)", sa, err)
	}
	return nil
}

// containerEnv is the container's environment as NAME=value, from envFrom
// and env, with ConfigMap and Secret references looked up in the API
// server. A missing reference that is not optional is an error, as it is
// for a kubelet.
func containerEnv(ctx context.Context, c *cluster, ns string, ctr corev1.Container) ([]string, error) {
	lookup := func(kind, name, key string, optional bool) (string, bool, error) {
		obj, found, err := c.get(ctx, ns, "v1", kind, name)
		if err != nil {
			return "", false, err
		}
		data, _ := obj["data"].(map[string]any)
		v, ok := data[key].(string)
		if !found || !ok {
			if optional {
				return "", false, nil
			}
			return "", false, fmt.Errorf("%s %s has no key %s", kind, name, key)
		}
		if kind == "Secret" {
			b, err := base64.StdEncoding.DecodeString(v)
			return string(b), true, err
		}
		return v, true, nil
	}
	var env []string
	for _, from := range ctr.EnvFrom {
		kind, name, optional := "ConfigMap", "", false
		switch {
		case from.ConfigMapRef != nil:
			name, optional = from.ConfigMapRef.Name, from.ConfigMapRef.Optional != nil && *from.ConfigMapRef.Optional
		case from.SecretRef != nil:
			kind, name, optional = "Secret", from.SecretRef.Name, from.SecretRef.Optional != nil && *from.SecretRef.Optional
		default:
			return nil, errors.New("envFrom without a source")
		}
		obj, found, err := c.get(ctx, ns, "v1", kind, name)
		if err != nil {
			return nil, err
		}
		if !found {
			if optional {
				continue
			}
			return nil, fmt.Errorf("envFrom: %s %s does not exist", kind, name)
		}
		data, _ := obj["data"].(map[string]any)
		for k, v := range data {
			s := v.(string)
			if kind == "Secret" {
				b, err := base64.StdEncoding.DecodeString(s)
				if err != nil {
					return nil, err
				}
				s = string(b)
			}
			env = append(env, from.Prefix+k+"="+s)
		}
	}
	for _, e := range ctr.Env {
		v, ok := e.Value, true
		var err error
		if f := e.ValueFrom; f != nil {
			switch {
			case f.SecretKeyRef != nil:
				r := f.SecretKeyRef
				v, ok, err = lookup("Secret", r.Name, r.Key, r.Optional != nil && *r.Optional)
			case f.ConfigMapKeyRef != nil:
				r := f.ConfigMapKeyRef
				v, ok, err = lookup("ConfigMap", r.Name, r.Key, r.Optional != nil && *r.Optional)
			default:
				return nil, fmt.Errorf("env %s: a source the test does not resolve", e.Name)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if ok {
			env = append(env, e.Name+"="+v)
		}
	}
	return env, nil
}

// setEnv replaces (or adds) NAME in env.
func setEnv(env []string, name, value string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return append(out, name+"="+value)
}

// localBackends points the backend URLs, when set, at this machine's
// PostgreSQL and Redis: the cluster's backends are this machine's.
func localBackends(env []string, postgresURL, redisURL string) []string {
	for _, kv := range env {
		switch {
		case strings.HasPrefix(kv, "AIRSHIP_POSTGRES_URL="):
			env = setEnv(env, "AIRSHIP_POSTGRES_URL", postgresURL)
		case strings.HasPrefix(kv, "AIRSHIP_REDIS_URL="):
			env = setEnv(env, "AIRSHIP_REDIS_URL", redisURL)
		}
	}
	return env
}

// secretVolume writes the files of the pod's volume name into dir, as a
// kubelet would, when it is a Secret's: one file a key, the backend URLs
// pointing at this machine's PostgreSQL and Redis (see localBackends).
func secretVolume(ctx context.Context, c *cluster, ns string, spec corev1.PodSpec, name, dir, postgresURL, redisURL string) error {
	var src *corev1.SecretVolumeSource
	for _, v := range spec.Volumes {
		if v.Name == name {
			src = v.Secret
		}
	}
	if src == nil {
		return nil
	}
	if len(src.Items) > 0 {
		return fmt.Errorf("volume %s: Secret items the test does not resolve", name)
	}
	obj, found, err := c.get(ctx, ns, "v1", "Secret", src.SecretName)
	if err != nil {
		return err
	}
	if !found {
		if src.Optional != nil && *src.Optional {
			return nil
		}
		return fmt.Errorf("volume %s: Secret %s does not exist", name, src.SecretName)
	}
	data, _ := obj["data"].(map[string]any)
	for k, v := range data {
		b, err := base64.StdEncoding.DecodeString(v.(string))
		if err != nil {
			return err
		}
		switch k {
		case "AIRSHIP_POSTGRES_URL":
			b = []byte(postgresURL + "\n")
		case "AIRSHIP_REDIS_URL":
			b = []byte(redisURL + "\n")
		}
		if err := os.WriteFile(filepath.Join(dir, k), b, 0o400); err != nil {
			return err
		}
	}
	return nil
}

// runPod runs the pod's one container as a kubelet would and checks that
// its startup, liveness and readiness probes pass and that SIGTERM stops it
// cleanly within the grace period. Loopback stands in for the pod's own
// network (on a free port), a temporary directory for each mounted volume.
func runPod(t *testing.T, ctx context.Context, c *cluster, ns string, spec corev1.PodSpec, postgresURL, redisURL string) {
	t.Helper()
	startPod(t, ctx, c, ns, spec, postgresURL, redisURL, nil, "").stop(t)
}

// runSplitPods runs a split deployment's pods as runPod does, in the order
// they need each other (products, orders, gateway), each module's Service
// URL standing for the address its pod listens on; with all three up the
// gateway is ready, and each stops cleanly on SIGTERM.
func runSplitPods(t *testing.T, ctx context.Context, c *cluster, ns string, r rendered, postgresURL, redisURL string) {
	t.Helper()
	services := map[string]string{} // Service URL -> the pod's address
	prefix := redisKeySpace(t)
	var pods []*pod
	for _, name := range []string{"airship-products", "airship-orders", "airship"} {
		spec := r.named(t, "Deployment", name).(*appsv1.Deployment).Spec.Template.Spec
		p := startPod(t, ctx, c, ns, spec, postgresURL, redisURL, services, prefix)
		defer p.kill()
		services[fmt.Sprintf("http://%s:8001", name)] = "http://" + p.addr
		pods = append(pods, p)
	}
	for i := len(pods) - 1; i >= 0; i-- {
		pods[i].stop(t)
	}
}

// pod is a pod's container running on this machine.
type pod struct {
	ctr    corev1.Container
	spec   corev1.PodSpec
	cmd    *exec.Cmd
	addr   string
	logs   *strings.Builder
	exited chan error
}

func (p *pod) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// startPod starts the pod's container and waits until its probes pass.
// urls maps Service URLs in its environment to the addresses of pods
// already running; prefix, if set, is the Redis key prefix (else a fresh
// one).
func startPod(t *testing.T, ctx context.Context, c *cluster, ns string, spec corev1.PodSpec, postgresURL, redisURL string,
	urls map[string]string, prefix string) *pod {
	t.Helper()
	if err := checkServiceAccount(ctx, c, ns, spec); err != nil {
		t.Fatal(err)
	}
	ctr := spec.Containers[0]
	env, err := containerEnv(ctx, c, ns, ctr)
	if err != nil {
		t.Fatalf("pod environment: %v", err)
	}
	env = localBackends(env, postgresURL, redisURL)
	for i, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		if local, ok := urls[value]; ok {
			env[i] = name + "=" + local
		}
	}
	// This machine's Redis is shared: a key space of the test's own.
	if prefix == "" {
		prefix = redisKeySpace(t)
	}
	env = setEnv(env, "AIRSHIP_REDIS_PREFIX", prefix)
	ports, err := freePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	env = setEnv(env, "AIRSHIP_ADDR", addr)
	// The metrics listener, when the chart turns it on, on a port of its own.
	metricsAddr := ""
	if v := envValue(env, "AIRSHIP_METRICS_ADDR"); v != "" {
		metricsAddr = fmt.Sprintf("127.0.0.1:%d", ports[1])
		env = setEnv(env, "AIRSHIP_METRICS_ADDR", metricsAddr)
	}
	root := t.TempDir()
	for _, m := range ctr.VolumeMounts {
		dir := filepath.Join(root, m.Name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := secretVolume(ctx, c, ns, spec, m.Name, dir, postgresURL, redisURL); err != nil {
			t.Fatal(err)
		}
		for i, kv := range env {
			name, value, _ := strings.Cut(kv, "=")
			if value == m.MountPath || strings.HasPrefix(value, m.MountPath+"/") {
				env[i] = name + "=" + dir + strings.TrimPrefix(value, m.MountPath)
			}
		}
	}

	logs := &strings.Builder{}
	cmd := exec.Command(buildAirship(t), ctr.Args...)
	cmd.Env = append(env, "HOME="+root)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	p := &pod{ctr: ctr, spec: spec, cmd: cmd, addr: addr, logs: logs, exited: exited}
	started := false
	defer func() {
		if !started {
			p.kill()
		}
	}()

	port := map[string]int32{}
	for _, p := range ctr.Ports {
		port[p.Name] = p.ContainerPort
	}
	get := func(p *corev1.Probe) error {
		if p == nil || p.HTTPGet == nil {
			return errors.New("no HTTP probe")
		}
		if p.HTTPGet.Port.String() != "http" || port["http"] == 0 {
			return fmt.Errorf("probe port %s is not the container's http port", p.HTTPGet.Port.String())
		}
		client := http.Client{Timeout: time.Duration(p.TimeoutSeconds) * time.Second}
		resp, err := client.Get("http://" + addr + p.HTTPGet.Path)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %d", p.HTTPGet.Path, resp.StatusCode)
		}
		return nil
	}
	sp := ctr.StartupProbe
	budget := time.Duration(sp.PeriodSeconds*sp.FailureThreshold) * time.Second
	if err := waitFor(budget, func() error {
		select {
		case err := <-exited:
			return fmt.Errorf("exited: %v", err)
		default:
		}
		return get(sp)
	}); err != nil {
		t.Fatalf("startup probe did not pass within %s: %v\n%s", budget, err, logs.String())
	}
	if err := get(ctr.LivenessProbe); err != nil {
		t.Errorf("liveness probe: %v", err)
	}
	if err := get(ctr.ReadinessProbe); err != nil {
		t.Errorf("readiness probe: %v\n%s", err, logs.String())
	}
	if metricsAddr != "" {
		// What the pods' prometheus.io annotations and the ServiceMonitor
		// point at: /metrics on the metrics port, not on the API's.
		if port["metrics"] == 0 {
			t.Error("AIRSHIP_METRICS_ADDR is set but the container has no port named metrics")
		}
		if err := scrape("http://" + metricsAddr + "/metrics"); err != nil {
			t.Errorf("metrics: %v", err)
		}
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET /metrics on the API's port: %d, want 404", resp.StatusCode)
			}
		}
	}
	started = true
	return p
}

// stop ends the pod as the kubelet would: after the preStop sleep,
// SIGTERM; the container must be gone before the rest of the grace period
// runs out.
func (p *pod) stop(t *testing.T) {
	t.Helper()
	ctr, spec, cmd, exited, logs := p.ctr, p.spec, p.cmd, p.exited, p.logs
	var preStop int64
	if l := ctr.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.Sleep != nil {
		preStop = l.PreStop.Sleep.Seconds
	}
	left := time.Duration(*spec.TerminationGracePeriodSeconds-preStop) * time.Second
	start := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("after SIGTERM: %v\n%s", err, logs.String())
		}
		t.Logf("pod served its probes and stopped %s after SIGTERM (grace after preStop: %s)", time.Since(start).Round(time.Millisecond), left)
	case <-time.After(left):
		t.Errorf("still running %s after SIGTERM: the kubelet would kill it\n%s", left, logs.String())
	}
}

// envValue returns the value of name in env (NAME=value entries).
func envValue(env []string, name string) string {
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v
		}
	}
	return ""
}

// scrape checks that url serves Prometheus metrics with airship's build
// information.
func scrape(url string) error {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "airship_build_info{") {
		return fmt.Errorf("GET %s: %d, without airship_build_info", url, resp.StatusCode)
	}
	return nil
}
