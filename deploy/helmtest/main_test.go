package helmtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// helmHint says how to get the helm CLI.
const helmHint = "install it with `go install helm.sh/helm/v3/cmd/helm@v3.22.0`, " +
	"or set HELM to its path (`make test-helm` installs it)"

var (
	repoRoot   string // the airship repository
	chartDir   string // deploy/helm/airship
	examples   string // deploy/helm/examples
	helmBin    string
	helmErr    error
	clusterMu  sync.Mutex
	theCluster *cluster
	clusterErr error
)

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Join(filepath.Dir(file), "..", "..")
	chartDir = filepath.Join(repoRoot, "deploy", "helm", "airship")
	examples = filepath.Join(repoRoot, "deploy", "helm", "examples")
	helmBin, helmErr = findHelm()
	code := m.Run()
	if theCluster != nil {
		theCluster.stop()
	}
	if airshipBin != "" {
		os.RemoveAll(filepath.Dir(airshipBin)) // buildAirship's directory
	}
	os.Exit(code)
}

func findHelm() (string, error) {
	if h := os.Getenv("HELM"); h != "" {
		return h, nil
	}
	h, err := exec.LookPath("helm")
	if err != nil {
		return "", fmt.Errorf("helm is not on PATH: %s", helmHint)
	}
	return h, nil
}

// apiServer returns the API server shared by the tests, starting it on
// first use.
func apiServer(t *testing.T) *cluster {
	t.Helper()
	clusterMu.Lock()
	defer clusterMu.Unlock()
	if theCluster == nil && clusterErr == nil {
		start := time.Now()
		theCluster, clusterErr = startCluster()
		if clusterErr == nil {
			t.Logf("kube-apiserver ready in %s", time.Since(start).Round(100*time.Millisecond))
		}
	}
	if clusterErr != nil {
		t.Fatalf("kube-apiserver: %v", clusterErr)
	}
	return theCluster
}

// helm runs the helm CLI in the repository root and returns its stdout and
// stderr.
func helm(t *testing.T, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	if helmErr != nil {
		t.Fatal(helmErr)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, helmBin, args...)
	cmd.Dir = repoRoot
	// A helm of its own: no repositories or plugins of the user's.
	home := t.TempDir()
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// object is one rendered Kubernetes object.
type object struct {
	APIVersion, Kind, Name string
	Hook                   string         // the helm.sh/hook annotation, if any
	Map                    map[string]any // as rendered
	Typed                  any            // decoded strictly into its k8s.io/api type
}

func (o object) String() string { return o.Kind + "/" + o.Name }

// newTyped returns an empty k8s.io/api object of the kind the chart may
// render; any other kind is an error.
func newTyped(apiVersion, kind string) (any, error) {
	switch apiVersion + " " + kind {
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1 Secret":
		return &corev1.Secret{}, nil
	case "v1 Service":
		return &corev1.Service{}, nil
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "v1 Namespace":
		return &corev1.Namespace{}, nil
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, nil
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "batch/v1 Job":
		return &batchv1.Job{}, nil
	case "networking.k8s.io/v1 Ingress":
		return &networkingv1.Ingress{}, nil
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, nil
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return &serviceMonitor{}, nil
	}
	return nil, fmt.Errorf("%s %s is not a kind the chart renders", apiVersion, kind)
}

// decodeStrict decodes one YAML document into its k8s.io/api type:
// unknown fields, duplicate keys and wrong types are errors.
func decodeStrict(doc []byte) (object, error) {
	var m map[string]any
	if err := yaml.Unmarshal(doc, &m); err != nil {
		return object{}, err
	}
	apiVersion, _ := m["apiVersion"].(string)
	kind, _ := m["kind"].(string)
	typed, err := newTyped(apiVersion, kind)
	if err != nil {
		return object{}, err
	}
	if err := yaml.UnmarshalStrict(doc, typed); err != nil {
		return object{}, fmt.Errorf("%s: %w", kind, err)
	}
	md, _ := m["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	if name == "" {
		return object{}, fmt.Errorf("%s without a name", kind)
	}
	ann, _ := md["annotations"].(map[string]any)
	hook, _ := ann["helm.sh/hook"].(string)
	return object{APIVersion: apiVersion, Kind: kind, Name: name, Hook: hook, Map: m, Typed: typed}, nil
}

// decodeAll splits a multi-document YAML stream and decodes each document
// strictly; documents holding only comments are skipped.
func decodeAll(stream string) ([]object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(stream)))
	var objs []object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		var v any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			return nil, err
		}
		if v == nil {
			continue
		}
		o, err := decodeStrict(doc)
		if err != nil {
			return nil, fmt.Errorf("%w\n%s", err, doc)
		}
		objs = append(objs, o)
	}
}

// render runs `helm template` and decodes its output strictly.
func render(t *testing.T, release, namespace string, args ...string) []object {
	t.Helper()
	all := append([]string{"template", release, "deploy/helm/airship", "--namespace", namespace}, args...)
	out, stderr, err := helm(t, nil, all...)
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(all, " "), err, stderr)
	}
	objs, err := decodeAll(out)
	if err != nil {
		t.Fatalf("helm %s: rendered object refused by the strict decoder: %v", strings.Join(all, " "), err)
	}
	if len(objs) == 0 {
		t.Fatalf("helm %s rendered nothing", strings.Join(all, " "))
	}
	return objs
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
