package helmtest

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// deploymentMap renders the default variant and returns a copy of its
// Deployment as a generic object, to break on purpose.
func deploymentMap(t *testing.T, ns string) map[string]any {
	t.Helper()
	for _, o := range render(t, "airship", ns, backendArgs...) {
		if o.Kind == "Deployment" {
			b, _ := json.Marshal(o.Map)
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	t.Fatal("no Deployment rendered")
	return nil
}

func dig(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		m = m[p].(map[string]any)
	}
	return m
}

// A render whose pod labels do not match the Deployment's selector is a
// valid object for the decoder but not for Kubernetes: the API server must
// refuse it, and say why.
func TestSelectorMismatchRefusedByAPIServer(t *testing.T) {
	c := apiServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	const ns = "broken-selector"
	applyAndReadBack(t, ctx, c, "", namespaceObject(ns))

	d := deploymentMap(t, ns)
	dig(d, "spec", "template", "metadata", "labels")["app.kubernetes.io/component"] = "gateway"
	b, _ := json.Marshal(d)
	if _, err := decodeStrict(b); err != nil {
		t.Fatalf("the broken Deployment should decode (only Kubernetes' rules refuse it): %v", err)
	}
	status, body, err := c.apply(ctx, ns, d)
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusUnprocessableEntity {
		t.Fatalf("API server answered %d to a selector that does not match the pod labels, want 422: %s", status, body)
	}
	for _, want := range []string{"spec.template.metadata.labels", "`selector` does not match template `labels`"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("refusal does not mention %q: %s", want, body)
		}
	}
	t.Logf("refused as expected: %s", message(body))
	if _, found, err := c.get(ctx, ns, "apps/v1", "Deployment", "airship"); err != nil || found {
		t.Errorf("the refused Deployment was stored (found %v, %v)", found, err)
	}
}

// A field no Kubernetes type declares is refused by the strict decoder
// and, with fieldValidation=Strict, by the API server.
func TestUnknownFieldRefused(t *testing.T) {
	c := apiServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	const ns = "unknown-field"
	applyAndReadBack(t, ctx, c, "", namespaceObject(ns))

	d := deploymentMap(t, ns)
	container := dig(d, "spec", "template", "spec")["containers"].([]any)[0].(map[string]any)
	container["livenessProbes"] = container["livenessProbe"]
	b, _ := json.Marshal(d)
	if _, err := decodeStrict(b); err == nil || !strings.Contains(err.Error(), `unknown field "livenessProbes"`) {
		t.Errorf("strict decoder: %v, want an unknown field error", err)
	}
	status, body, err := c.apply(ctx, ns, d)
	if err != nil {
		t.Fatal(err)
	}
	if status < 400 || !strings.Contains(string(body), "livenessProbes") || !strings.Contains(string(body), "field not declared in schema") {
		t.Fatalf("API server answered %d, want a refusal naming the unknown field: %s", status, body)
	}
	t.Logf("refused as expected (%d): %s", status, message(body))
}

// Bad values are refused by helm before anything is rendered, with a
// message that names the value: by values.schema.json (`helm template`,
// `helm install` and `helm lint` alike) or by the chart's own checks
// (`helm template` and `helm install`; `helm lint` does not report `fail`).
func TestBadValuesRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		want   []string
		schema bool // refused by the schema, so by helm lint too
	}{{
		name:   "replicas not a number",
		args:   append([]string{"--set", "replicaCount=two"}, backendArgs...),
		want:   []string{"values don't meet the specifications of the schema", "at '/replicaCount': got string, want integer"},
		schema: true,
	}, {
		name:   "unknown mode",
		args:   append([]string{"--set", "mode=cluster"}, backendArgs...),
		want:   []string{"at '/mode': value must be one of 'production', 'embedded'"},
		schema: true,
	}, {
		name:   "unknown setting",
		args:   append([]string{"--set", "config.listen_addr=:9000"}, backendArgs...),
		want:   []string{"at '/config': additional properties 'listen_addr' not allowed"},
		schema: true,
	}, {
		name:   "setting the chart owns",
		args:   append([]string{"--set", "config.shutdown_timeout=30s"}, backendArgs...),
		want:   []string{"additional properties 'shutdown_timeout' not allowed"},
		schema: true,
	}, {
		name:   "duration without unit",
		args:   append([]string{"--set", "config.request_timeout=2"}, backendArgs...),
		want:   []string{"at '/config/request_timeout'"},
		schema: true,
	}, {
		name:   "not a PostgreSQL URL",
		args:   []string{"--set", "secret.postgresUrl=mysql://db/airship", "--set", "secret.redisUrl=redis://redis:6379/0"},
		want:   []string{"at '/secret/postgresUrl'"},
		schema: true,
	}, {
		name:   "short API key",
		args:   append([]string{"--set", "secret.apiKeys={letmein}"}, backendArgs...),
		want:   []string{"at '/secret/apiKeys/0'"},
		schema: true,
	}, {
		name:   "misspelt top-level value",
		args:   append([]string{"--set", "replicas=3"}, backendArgs...),
		want:   []string{"additional properties 'replicas' not allowed"},
		schema: true,
	}, {
		name: "embedded with two replicas",
		args: []string{"-f", "deploy/helm/examples/embedded.yaml", "--set", "replicaCount=2"},
		want: []string{"mode: embedded runs exactly one replica", "replicaCount is 2", "set replicaCount=1 and autoscaling.enabled=false"},
	}, {
		name: "embedded with autoscaling",
		args: []string{"-f", "deploy/helm/examples/embedded.yaml", "--set", "autoscaling.enabled=true"},
		want: []string{"mode: embedded runs exactly one replica", "autoscaling.enabled is true"},
	}, {
		name: "embedded split",
		args: []string{"-f", "deploy/helm/examples/embedded.yaml", "--set", "split.enabled=true"},
		want: []string{"split.enabled runs the modules as separate Deployments", "needs mode: production"},
	}, {
		name: "split without a module token",
		args: append([]string{"--set", "split.enabled=true"}, backendArgs...),
		want: []string{"split.enabled: the modules call each other with a secret they share", "secret.moduleToken", "AIRSHIP_MODULE_TOKEN"},
	}, {
		name:   "short module token",
		args:   append([]string{"--set", "split.enabled=true", "--set", "secret.moduleToken=letmein"}, backendArgs...),
		want:   []string{"at '/secret/moduleToken'"},
		schema: true,
	}, {
		name:   "module_auth not a mode",
		args:   append([]string{"--set", "config.module_auth=off"}, backendArgs...),
		want:   []string{"at '/config/module_auth'"},
		schema: true,
	}, {
		name: "production without backends",
		args: nil,
		want: []string{"mode: production needs the backends", "secret.postgresUrl", "existingSecret"},
	}, {
		name: "ServiceMonitor without metrics",
		args: append([]string{"--set", "metrics.enabled=false", "--set", "metrics.serviceMonitor.enabled=true"}, backendArgs...),
		want: []string{"metrics.serviceMonitor.enabled needs metrics.enabled"},
	}, {
		name: "metrics on the API's port",
		args: append([]string{"--set", "metrics.port=8000"}, backendArgs...),
		want: []string{"metrics.port and containerPort are both 8000"},
	}, {
		name:   "access_log not a mode",
		args:   append([]string{"--set", "config.access_log=sample:0"}, backendArgs...),
		want:   []string{"at '/config/access_log'"},
		schema: true,
	}, {
		name: "autoscaling bounds upside down",
		args: append([]string{"--set", "autoscaling.minReplicas=5", "--set", "autoscaling.maxReplicas=3"}, backendArgs...),
		want: []string{"autoscaling.maxReplicas (3) is below autoscaling.minReplicas (5)"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			cmds := []string{"template"}
			if tc.schema {
				cmds = append(cmds, "lint")
			}
			for _, cmd := range cmds {
				args := append([]string{cmd}, "deploy/helm/airship")
				if cmd == "template" {
					args = []string{cmd, "airship", "deploy/helm/airship"}
				}
				args = append(args, tc.args...)
				out, stderr, err := helm(t, nil, args...)
				if err == nil {
					t.Errorf("helm %s accepted the values:\n%s", strings.Join(args, " "), out)
					continue
				}
				for _, w := range tc.want {
					if !strings.Contains(out+stderr, w) {
						t.Errorf("helm %s: message does not say %q:\n%s%s", cmd, w, out, stderr)
					}
				}
			}
		})
	}
}

// message is the API server's explanation in a Status response.
func message(body []byte) string {
	var s struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &s) == nil && s.Message != "" {
		return s.Message
	}
	return string(body)
}
