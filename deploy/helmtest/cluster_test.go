package helmtest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// buildHint says how to get the Kubernetes binaries the tests start.
const buildHint = "build kube-apiserver and etcd with `deploy/helmtest/build-k8s.sh` " +
	"and set AIRSHIP_K8S_BIN to the directory it prints (`make test-helm` does both)"

// cluster is a kube-apiserver on loopback, backed by its own etcd: it
// admits, validates and stores objects; no controller or kubelet runs.
type cluster struct {
	URL        string
	Kubeconfig string // a kubeconfig file for helm
	token      string
	http       *http.Client
	dir        string
	procs      []*exec.Cmd
}

// startCluster starts etcd and kube-apiserver from the binaries in
// $AIRSHIP_K8S_BIN and waits until the API server is ready.
func startCluster() (_ *cluster, err error) {
	bin := os.Getenv("AIRSHIP_K8S_BIN")
	if bin == "" {
		return nil, errors.New("AIRSHIP_K8S_BIN is not set: " + buildHint)
	}
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return nil, fmt.Errorf("%s: %w; %s", b, err, buildHint)
		}
	}
	dir, err := os.MkdirTemp("", "airship-k8s-")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir, token: randomHex(16)}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()

	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	if err := c.start(filepath.Join(bin, "etcd"), "etcd.log",
		"--name", "airship-test",
		"--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "airship-test="+peerURL,
		"--unsafe-no-fsync", "--log-level", "warn",
	); err != nil {
		return nil, err
	}
	if err := waitFor(60*time.Second, func() error {
		resp, err := http.Get(etcdURL + "/health")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if !bytes.Contains(body, []byte(`"health":"true"`)) {
			return fmt.Errorf("etcd health: %s", body)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("etcd did not become healthy: %w\n%s", err, c.logTail("etcd.log"))
	}

	certPEM, keyPEM, err := selfSignedCert()
	if err != nil {
		return nil, err
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	saPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)})
	files := map[string][]byte{
		"tls.crt":    certPEM,
		"tls.key":    keyPEM,
		"sa.key":     saPEM,
		"tokens.csv": []byte(c.token + ",admin,admin,system:masters\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	c.URL = fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	if err := c.start(filepath.Join(bin, "kube-apiserver"), "kube-apiserver.log",
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", fmt.Sprint(ports[2]),
		"--tls-cert-file", filepath.Join(dir, "tls.crt"),
		"--tls-private-key-file", filepath.Join(dir, "tls.key"),
		"--token-auth-file", filepath.Join(dir, "tokens.csv"),
		"--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", filepath.Join(dir, "sa.key"),
		"--service-account-signing-key-file", filepath.Join(dir, "sa.key"),
		"--service-cluster-ip-range", "10.0.0.0/24",
		"--disable-admission-plugins", "ServiceAccount",
		"--allow-privileged=true",
		"--endpoint-reconciler-type", "none",
	); err != nil {
		return nil, err
	}

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	c.http = &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	if err := waitFor(90*time.Second, func() error {
		status, body, err := c.do(context.Background(), http.MethodGet, "/readyz", "", nil)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("readyz %d: %s", status, body)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("kube-apiserver did not become ready: %w\n%s", err, c.logTail("kube-apiserver.log"))
	}

	c.Kubeconfig = filepath.Join(dir, "kubeconfig")
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
  - name: test
    cluster:
      server: %s
      certificate-authority-data: %s
users:
  - name: admin
    user:
      token: %s
contexts:
  - name: test
    context: {cluster: test, user: admin, namespace: default}
current-context: test
`, c.URL, base64Std(certPEM), c.token)
	if err := os.WriteFile(c.Kubeconfig, []byte(kubeconfig), 0o600); err != nil {
		return nil, err
	}
	return c, nil
}

// start runs a binary as a child of the test, logging to dir/logName; the
// child is killed if the test process dies.
func (c *cluster) start(path, logName string, args ...string) error {
	logf, err := os.Create(filepath.Join(c.dir, logName))
	if err != nil {
		return err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", path, err)
	}
	c.procs = append(c.procs, cmd)
	return nil
}

// stop ends the processes (API server first) and removes the data.
func (c *cluster) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	os.RemoveAll(c.dir)
}

func (c *cluster) logTail(name string) string {
	b, _ := os.ReadFile(filepath.Join(c.dir, name))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return name + ":\n" + string(b)
}

// do sends one request to the API server as the admin user.
func (c *cluster) do(ctx context.Context, method, path, contentType string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// fieldManager is the one field manager of every apply.
const fieldManager = "airship-helmtest"

// apply server-side applies obj with strict field validation, as
// `kubectl apply --server-side --validate=strict` does. It returns the
// status code and the response body.
func (c *cluster) apply(ctx context.Context, namespace string, obj map[string]any) (int, []byte, error) {
	path, err := objectPath(namespace, obj)
	if err != nil {
		return 0, nil, err
	}
	body, err := json.Marshal(obj)
	if err != nil {
		return 0, nil, err
	}
	q := url.Values{"fieldManager": {fieldManager}, "fieldValidation": {"Strict"}}
	return c.do(ctx, http.MethodPatch, path+"?"+q.Encode(), "application/apply-patch+yaml", body)
}

// get reads an object back; found is false on 404.
func (c *cluster) get(ctx context.Context, namespace, apiVersion, kind, name string) (obj map[string]any, found bool, err error) {
	path, err := objectPath(namespace, map[string]any{
		"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name},
	})
	if err != nil {
		return nil, false, err
	}
	status, body, err := c.do(ctx, http.MethodGet, path, "", nil)
	if err != nil {
		return nil, false, err
	}
	if status == http.StatusNotFound {
		return nil, false, nil
	}
	if status != http.StatusOK {
		return nil, false, fmt.Errorf("GET %s: %d %s", path, status, body)
	}
	return obj, true, json.Unmarshal(body, &obj)
}

// list returns the objects of a kind in a namespace that match a label
// selector.
func (c *cluster) list(ctx context.Context, namespace, apiVersion, kind, selector string) ([]map[string]any, error) {
	path, err := objectPath(namespace, map[string]any{
		"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{},
	})
	if err != nil {
		return nil, err
	}
	path += "?" + url.Values{"labelSelector": {selector}}.Encode()
	status, body, err := c.do(ctx, http.MethodGet, path, "", nil)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", path, status, body)
	}
	var l struct {
		Items []map[string]any `json:"items"`
	}
	return l.Items, json.Unmarshal(body, &l)
}

// resources maps each kind the chart renders (and the tests touch) to its
// API resource and whether it lives in a namespace.
var resources = map[string]struct {
	plural     string
	namespaced bool
}{
	"Namespace":               {"namespaces", false},
	"ConfigMap":               {"configmaps", true},
	"Secret":                  {"secrets", true},
	"Service":                 {"services", true},
	"ServiceAccount":          {"serviceaccounts", true},
	"Deployment":              {"deployments", true},
	"StatefulSet":             {"statefulsets", true},
	"Job":                     {"jobs", true},
	"Ingress":                 {"ingresses", true},
	"HorizontalPodAutoscaler": {"horizontalpodautoscalers", true},
	"PodDisruptionBudget":     {"poddisruptionbudgets", true},
}

// apiVersions is the API version of each kind in resources.
var apiVersions = map[string]string{
	"Namespace": "v1", "ConfigMap": "v1", "Secret": "v1", "Service": "v1", "ServiceAccount": "v1",
	"Deployment": "apps/v1", "StatefulSet": "apps/v1", "Job": "batch/v1",
	"Ingress": "networking.k8s.io/v1", "HorizontalPodAutoscaler": "autoscaling/v2",
	"PodDisruptionBudget": "policy/v1",
}

// objectPath is the REST path of obj (of its collection when it has no
// name).
func objectPath(namespace string, obj map[string]any) (string, error) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	r, ok := resources[kind]
	if !ok {
		return "", fmt.Errorf("kind %q: not a kind the chart renders", kind)
	}
	p := "/apis/" + apiVersion
	if !strings.Contains(apiVersion, "/") {
		p = "/api/" + apiVersion
	}
	if r.namespaced {
		p += "/namespaces/" + namespace
	}
	p += "/" + r.plural
	if md, _ := obj["metadata"].(map[string]any); md != nil {
		if name, _ := md["name"].(string); name != "" {
			p += "/" + name
		}
	}
	return p, nil
}

func selfSignedCert() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitFor calls f until it succeeds or the timeout passes.
func waitFor(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
