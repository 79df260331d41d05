package helmtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// Values every variant's secret-less render needs.
var backendArgs = []string{
	"--set", "secret.postgresUrl=postgres://airship:pw@postgres:5432/airship?sslmode=disable",
	"--set", "secret.redisUrl=redis://redis:6379/0",
}

// variant is one way of installing the chart.
type variant struct {
	name string
	args []string // helm template/lint arguments after the chart
	// prereqs are manifests applied before the chart's objects.
	prereqs []string
	// kinds are the objects the render must hold, by kind, sorted.
	kinds []string
	check func(t *testing.T, r rendered)
}

func variants() []variant {
	production := []string{"ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Job", "PodDisruptionBudget", "Secret", "Secret", "Service", "ServiceAccount"}
	return []variant{{
		name:  "default",
		args:  backendArgs,
		kinds: production,
		check: func(t *testing.T, r rendered) {
			d := r.deployment(t)
			if d.Spec.Replicas != nil {
				t.Errorf("Deployment sets replicas %d although the HPA owns them", *d.Spec.Replicas)
			}
			h := r.one(t, "HorizontalPodAutoscaler").(*autoscalingv2.HorizontalPodAutoscaler)
			if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != d.Name {
				t.Errorf("HPA scales %+v, want Deployment %s", h.Spec.ScaleTargetRef, d.Name)
			}
			if *h.Spec.MinReplicas != 2 || h.Spec.MaxReplicas != 10 {
				t.Errorf("HPA replicas %d..%d, want 2..10", *h.Spec.MinReplicas, h.Spec.MaxReplicas)
			}
			checkProductionSecrets(t, r, "airship", "airship-migrate")
			// No API keys in the default values: the Secret has none.
			s := r.named(t, "Secret", "airship").(*corev1.Secret)
			if _, ok := s.Data["AIRSHIP_API_KEYS"]; ok {
				t.Error("Secret holds AIRSHIP_API_KEYS although no key is configured")
			}
		},
	}, {
		name:  "embedded",
		args:  []string{"-f", "deploy/helm/examples/embedded.yaml"},
		kinds: []string{"ConfigMap", "Service", "Service", "ServiceAccount", "StatefulSet"},
		check: checkEmbedded,
	}, {
		name:  "ingress",
		args:  []string{"-f", "deploy/helm/examples/production.yaml", "-f", "deploy/helm/examples/ingress.yaml"},
		kinds: append(slices.Clone(production), "Ingress"),
		check: func(t *testing.T, r rendered) {
			ing := r.one(t, "Ingress").(*networkingv1.Ingress)
			svc := r.named(t, "Service", "airship").(*corev1.Service)
			if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "nginx" {
				t.Errorf("ingressClassName %v, want nginx", ing.Spec.IngressClassName)
			}
			if len(ing.Spec.Rules) != 1 || ing.Spec.Rules[0].Host != "shop.example.com" {
				t.Fatalf("Ingress rules %+v, want one for shop.example.com", ing.Spec.Rules)
			}
			b := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service
			if b.Name != svc.Name || b.Port.Name != svc.Spec.Ports[0].Name {
				t.Errorf("Ingress backend %s:%s, want the Service %s:%s", b.Name, b.Port.Name, svc.Name, svc.Spec.Ports[0].Name)
			}
			if len(ing.Spec.TLS) != 1 || ing.Spec.TLS[0].SecretName != "shop-example-com-tls" {
				t.Errorf("Ingress TLS %+v", ing.Spec.TLS)
			}
			// API keys from the values reach the Secret, comma-separated.
			s := r.named(t, "Secret", "airship").(*corev1.Secret)
			if got := string(s.Data["AIRSHIP_API_KEYS"]); got != "change-me-to-a-long-random-key" {
				t.Errorf("AIRSHIP_API_KEYS = %q, want change-me-to-a-long-random-key", got)
			}
			if img := r.deployment(t).Spec.Template.Spec.Containers[0].Image; img != "registry.example.com/airship:1.1.0" {
				t.Errorf("image %s", img)
			}
		},
	}, {
		name:  "hpa-off",
		args:  append(slices.Clone(backendArgs), "--set", "autoscaling.enabled=false", "--set", "replicaCount=3"),
		kinds: []string{"ConfigMap", "Deployment", "Job", "PodDisruptionBudget", "Secret", "Secret", "Service", "ServiceAccount"},
		check: func(t *testing.T, r rendered) {
			d := r.deployment(t)
			if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
				t.Errorf("Deployment replicas %v, want 3", d.Spec.Replicas)
			}
		},
	}, {
		name:    "existing-secret",
		args:    []string{"-f", "deploy/helm/examples/existing-secret.yaml"},
		prereqs: []string{"deploy/helm/examples/backends-secret.yaml"},
		kinds:   []string{"ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Job", "PodDisruptionBudget", "Service", "ServiceAccount"},
		check: func(t *testing.T, r rendered) {
			checkProductionSecrets(t, r, "airship-backends", "airship-backends")
		},
	}, {
		// The Secret mounted as files, read through AIRSHIP_<KEY>_FILE, in
		// split mode (every module reads the token, each its backend) and
		// with API keys.
		name: "secrets-as-files",
		args: append(slices.Clone(backendArgs), "--set", "secretsAsFiles=true", "--set", "split.enabled=true",
			"--set", "secret.moduleToken="+moduleToken, "--set", "secret.apiKeys[0]=files-test-api-key-0123456789"),
		kinds: []string{"ConfigMap", "Deployment", "Deployment", "Deployment", "HorizontalPodAutoscaler", "HorizontalPodAutoscaler",
			"HorizontalPodAutoscaler", "Job", "PodDisruptionBudget", "PodDisruptionBudget", "PodDisruptionBudget",
			"Secret", "Secret", "Service", "Service", "Service", "ServiceAccount"},
		check: checkSecretsAsFiles,
	}, {
		name: "split",
		// Each module sized to one CPU, as docs/scaling.md shows.
		args: append(slices.Clone(backendArgs), "--set", "split.enabled=true", "--set", "secret.moduleToken="+moduleToken,
			"--set", "extraEnv[0].name=GOMAXPROCS", "--set-string", "extraEnv[0].value=1"),
		kinds: []string{"ConfigMap", "Deployment", "Deployment", "Deployment", "HorizontalPodAutoscaler", "HorizontalPodAutoscaler",
			"HorizontalPodAutoscaler", "Job", "PodDisruptionBudget", "PodDisruptionBudget", "PodDisruptionBudget",
			"Secret", "Secret", "Service", "Service", "Service", "ServiceAccount"},
		check: checkSplit,
	}, {
		name: "tuned",
		args: append(slices.Clone(backendArgs),
			"--set", "shutdownTimeoutSeconds=40", "--set", "preStopSleepSeconds=0",
			"--set", "config.request_timeout=5s", "--set", "config.body_limit=4194304",
			"--set", "migrations.job.enabled=false", "--set", "podDisruptionBudget.enabled=false",
			"--set", "serviceAccount.create=false", "--set", "serviceAccount.name=shop"),
		prereqs: []string{"deploy/helmtest/testdata/shop-serviceaccount.yaml"},
		kinds:   []string{"ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Secret", "Service"},
		check: func(t *testing.T, r rendered) {
			cm := r.one(t, "ConfigMap").(*corev1.ConfigMap)
			want := map[string]string{
				"AIRSHIP_SHUTDOWN_TIMEOUT": "40s", "AIRSHIP_REQUEST_TIMEOUT": "5s", "AIRSHIP_BODY_LIMIT": "4194304",
			}
			for k, v := range want {
				if cm.Data[k] != v {
					t.Errorf("ConfigMap %s = %q, want %q", k, cm.Data[k], v)
				}
			}
			pod := r.deployment(t).Spec.Template.Spec
			if pod.Containers[0].Lifecycle != nil {
				t.Errorf("preStop hook rendered although preStopSleepSeconds is 0: %+v", pod.Containers[0].Lifecycle)
			}
			if *pod.TerminationGracePeriodSeconds != 45 {
				t.Errorf("terminationGracePeriodSeconds %d, want 40 + 5", *pod.TerminationGracePeriodSeconds)
			}
			if pod.ServiceAccountName != "shop" {
				t.Errorf("serviceAccountName %q, want shop", pod.ServiceAccountName)
			}
		},
	}}
}

// rendered is one render of the chart.
type rendered struct {
	objs []object
}

func (r rendered) all(kind string) []any {
	var out []any
	for _, o := range r.objs {
		if o.Kind == kind {
			out = append(out, o.Typed)
		}
	}
	return out
}

func (r rendered) one(t *testing.T, kind string) any {
	t.Helper()
	all := r.all(kind)
	if len(all) != 1 {
		t.Fatalf("%d %s objects, want 1", len(all), kind)
	}
	return all[0]
}

func (r rendered) named(t *testing.T, kind, name string) any {
	t.Helper()
	for _, o := range r.objs {
		if o.Kind == kind && o.Name == name {
			return o.Typed
		}
	}
	t.Fatalf("no %s/%s rendered", kind, name)
	return nil
}

func (r rendered) deployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	return r.one(t, "Deployment").(*appsv1.Deployment)
}

// moduleToken is the module token of the split variant.
const moduleToken = "render-test-module-token-0123456789abcdef"

// checkSplit: the gateway keeps the chart's Service and selector
// (component server) and calls the products and orders Services; each
// module's Deployment has its own Service, HPA and PDB selecting only its
// pods, and gets only the backend it needs; every module gets the module
// token from the Secret.
func checkSplit(t *testing.T, r rendered) {
	t.Helper()
	if got := string(r.named(t, "Secret", "airship").(*corev1.Secret).Data["AIRSHIP_MODULE_TOKEN"]); got != moduleToken {
		t.Errorf("Secret AIRSHIP_MODULE_TOKEN = %q; want %q", got, moduleToken)
	}
	cm := r.one(t, "ConfigMap").(*corev1.ConfigMap)
	shutdown, _ := time.ParseDuration(cm.Data["AIRSHIP_SHUTDOWN_TIMEOUT"])
	want := map[string]struct {
		component string
		env       map[string]string // "secret" for a value from the Secret
		absent    []string
	}{
		"airship": {"server", map[string]string{"AIRSHIP_MODULES": "gateway", "AIRSHIP_PRODUCTS_URL": "http://airship-products:8001",
			"AIRSHIP_ORDERS_URL": "http://airship-orders:8001", "AIRSHIP_API_KEYS": "secret", "AIRSHIP_MODULE_TOKEN": "secret", "GOMAXPROCS": "1"},
			[]string{"AIRSHIP_POSTGRES_URL", "AIRSHIP_REDIS_URL"}},
		"airship-products": {"products", map[string]string{"AIRSHIP_MODULES": "products", "AIRSHIP_REDIS_URL": "secret",
			"AIRSHIP_MODULE_TOKEN": "secret", "GOMAXPROCS": "1"},
			[]string{"AIRSHIP_POSTGRES_URL", "AIRSHIP_PRODUCTS_URL", "AIRSHIP_ORDERS_URL"}},
		"airship-orders": {"orders", map[string]string{"AIRSHIP_MODULES": "orders", "AIRSHIP_POSTGRES_URL": "secret",
			"AIRSHIP_PRODUCTS_URL": "http://airship-products:8001", "AIRSHIP_MODULE_TOKEN": "secret", "GOMAXPROCS": "1"},
			[]string{"AIRSHIP_REDIS_URL", "AIRSHIP_ORDERS_URL"}},
	}
	for name, w := range want {
		d := r.named(t, "Deployment", name).(*appsv1.Deployment)
		pod := d.Spec.Template
		if pod.Labels["app.kubernetes.io/component"] != w.component || d.Spec.Selector.MatchLabels["app.kubernetes.io/component"] != w.component {
			t.Errorf("Deployment %s: pod labels %v, selector %v; want component %s", name, pod.Labels, d.Spec.Selector.MatchLabels, w.component)
		}
		checkPod(t, pod.Spec, shutdown, cm.Name)
		env := map[string]string{}
		for _, e := range pod.Spec.Containers[0].Env {
			env[e.Name] = e.Value
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				env[e.Name] = "secret"
			}
		}
		for k, v := range w.env {
			if env[k] != v {
				t.Errorf("Deployment %s: %s = %q; want %q", name, k, env[k], v)
			}
		}
		for _, k := range w.absent {
			if _, ok := env[k]; ok {
				t.Errorf("Deployment %s sets %s, which its module does not use", name, k)
			}
		}
		svc := r.named(t, "Service", name).(*corev1.Service)
		if svc.Spec.Selector["app.kubernetes.io/component"] != w.component {
			t.Errorf("Service %s selects %v; want component %s", name, svc.Spec.Selector, w.component)
		}
		h := r.named(t, "HorizontalPodAutoscaler", name).(*autoscalingv2.HorizontalPodAutoscaler)
		if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != name {
			t.Errorf("HPA %s scales %+v; want Deployment %s", name, h.Spec.ScaleTargetRef, name)
		}
		p := r.named(t, "PodDisruptionBudget", name).(*policyv1.PodDisruptionBudget)
		if p.Spec.Selector.MatchLabels["app.kubernetes.io/component"] != w.component {
			t.Errorf("PDB %s selects %v; want component %s", name, p.Spec.Selector.MatchLabels, w.component)
		}
	}
	for _, name := range []string{"airship-products", "airship-orders"} {
		if port := r.named(t, "Service", name).(*corev1.Service).Spec.Ports[0]; port.Port != 8001 || port.TargetPort.String() != "http" {
			t.Errorf("Service %s port %d -> %s; want 8001 -> http", name, port.Port, port.TargetPort.String())
		}
	}
}

func (r rendered) hooks() []object {
	var out []object
	for _, o := range r.objs {
		if o.Hook != "" {
			out = append(out, o)
		}
	}
	return out
}

// TestChartLint runs `helm lint --strict` on every variant.
func TestChartLint(t *testing.T) {
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			args := append([]string{"lint", "--strict", "deploy/helm/airship"}, v.args...)
			out, stderr, err := helm(t, nil, args...)
			if err != nil {
				t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
			}
			if !strings.Contains(out, "0 chart(s) failed") {
				t.Errorf("helm lint: %s", out)
			}
		})
	}
}

// TestChartVariants renders each variant, decodes every object strictly,
// checks what the variant promises, then applies the objects to the API
// server (server-side apply, strict field validation) and reads each back.
// Last, it runs the variant's server pod on this machine, with the
// environment the API server now holds for it (runPod).
func TestChartVariants(t *testing.T) {
	c := apiServer(t)
	db := newDatabase(t)
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			ns := "render-" + v.name
			objs := render(t, "airship", ns, v.args...)
			r := rendered{objs}
			var kinds []string
			for _, o := range objs {
				kinds = append(kinds, o.Kind)
			}
			sort.Strings(kinds)
			if want := slices.Sorted(slices.Values(v.kinds)); !slices.Equal(kinds, want) {
				t.Errorf("rendered kinds %v, want %v", kinds, want)
			}
			checkCommon(t, r)
			v.check(t, r)

			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			applyAndReadBack(t, ctx, c, "", namespaceObject(ns))
			for _, p := range v.prereqs {
				b, err := os.ReadFile(filepath.Join(repoRoot, p))
				if err != nil {
					t.Fatal(err)
				}
				pre, err := decodeAll(string(b))
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				for _, o := range pre {
					applyAndReadBack(t, ctx, c, ns, o.Map)
				}
			}
			for _, o := range objs {
				applyAndReadBack(t, ctx, c, ns, o.Map)
			}

			// The pods work as rendered: airship starts with this
			// environment, passes its probes and stops on SIGTERM.
			if len(r.all("Deployment")) > 1 {
				runSplitPods(t, ctx, c, ns, r, db.url, redisURL())
				return
			}
			w := r.workloads()
			spec := corev1.PodSpec{}
			if w.deploy != nil {
				spec = w.deploy.Spec.Template.Spec
			} else {
				spec = w.sts.Spec.Template.Spec
				// The StatefulSet's claim is mounted like a volume.
				spec.Volumes = append(spec.Volumes, corev1.Volume{Name: w.sts.Spec.VolumeClaimTemplates[0].Name})
			}
			runPod(t, ctx, c, ns, spec, db.url, redisURL())
		})
	}
}

func namespaceObject(name string) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}
}

// applyAndReadBack applies obj and checks that the stored object holds
// every field as rendered.
func applyAndReadBack(t *testing.T, ctx context.Context, c *cluster, ns string, obj map[string]any) {
	t.Helper()
	status, body, err := c.apply(ctx, ns, obj)
	if err != nil {
		t.Fatal(err)
	}
	kind, name := obj["kind"].(string), obj["metadata"].(map[string]any)["name"].(string)
	if status != http.StatusOK && status != http.StatusCreated {
		t.Fatalf("apply %s/%s: API server refused it (%d): %s", kind, name, status, body)
	}
	got, found, err := c.get(ctx, ns, obj["apiVersion"].(string), kind, name)
	if err != nil || !found {
		t.Fatalf("read back %s/%s: found %v, %v", kind, name, found, err)
	}
	want := storedForm(obj)
	if diffs := subset(want, got, ""); len(diffs) > 0 {
		t.Errorf("%s/%s read back differs from the applied object:\n  %s", kind, name, strings.Join(diffs, "\n  "))
	}
}

// storedForm is obj as the API server stores it: a Secret's stringData
// becomes base64 data.
func storedForm(obj map[string]any) map[string]any {
	sd, ok := obj["stringData"].(map[string]any)
	if obj["kind"] != "Secret" || !ok {
		return obj
	}
	out := maps.Clone(obj)
	data := map[string]any{}
	if d, ok := obj["data"].(map[string]any); ok {
		maps.Copy(data, d)
	}
	for k, v := range sd {
		data[k] = base64.StdEncoding.EncodeToString([]byte(fmt.Sprint(v)))
	}
	delete(out, "stringData")
	out["data"] = data
	return out
}

// subset lists where got does not hold want: every map key of want must be
// in got with an equal value (recursively), lists element by element.
func subset(want, got any, path string) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want an object, got %v", path, got)}
		}
		var diffs []string
		for _, k := range slices.Sorted(maps.Keys(w)) {
			if w[k] == nil {
				continue
			}
			gv, ok := g[k]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: missing (want %v)", path, k, w[k]))
				continue
			}
			diffs = append(diffs, subset(w[k], gv, path+"."+k)...)
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: want %v, got %v", path, want, got)}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, subset(w[i], g[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return diffs
	default:
		wj, _ := json.Marshal(want)
		gj, _ := json.Marshal(got)
		if string(wj) != string(gj) {
			return []string{fmt.Sprintf("%s: want %s, got %s", path, wj, gj)}
		}
		return nil
	}
}

// checkCommon checks what every variant promises: hardened pods with the
// probes and grace period airship needs, settings that are airship's, and
// selectors that find the pods.
func checkCommon(t *testing.T, r rendered) {
	t.Helper()
	cm := r.one(t, "ConfigMap").(*corev1.ConfigMap)
	allowed := chartConfigEnv(t)
	for k := range cm.Data {
		if !allowed[k] {
			t.Errorf("ConfigMap sets %s, which is not one of airship's settings", k)
		}
	}
	shutdown, err := time.ParseDuration(cm.Data["AIRSHIP_SHUTDOWN_TIMEOUT"])
	if err != nil {
		t.Fatalf("AIRSHIP_SHUTDOWN_TIMEOUT: %v", err)
	}

	var (
		pod      corev1.PodTemplateSpec
		selector map[string]string
	)
	switch w := r.workloads(); {
	case w.deploy != nil:
		pod, selector = w.deploy.Spec.Template, w.deploy.Spec.Selector.MatchLabels
	case w.sts != nil:
		pod, selector = w.sts.Spec.Template, w.sts.Spec.Selector.MatchLabels
	default:
		t.Fatal("neither a Deployment nor a StatefulSet rendered")
	}
	for k, v := range selector {
		if pod.Labels[k] != v {
			t.Errorf("workload selector %s=%s does not match the pod labels %v", k, v, pod.Labels)
		}
	}
	svc := r.named(t, "Service", "airship").(*corev1.Service)
	for k, v := range svc.Spec.Selector {
		if pod.Labels[k] != v {
			t.Errorf("Service selector %s=%s does not match the pod labels %v", k, v, pod.Labels)
		}
	}
	for _, p := range r.all("PodDisruptionBudget") {
		pdb := p.(*policyv1.PodDisruptionBudget)
		if pdb.Spec.Selector.MatchLabels["app.kubernetes.io/component"] != "server" {
			continue // a module's own, checked by checkSplit
		}
		for k, v := range pdb.Spec.Selector.MatchLabels {
			if pod.Labels[k] != v {
				t.Errorf("PDB selector %s=%s does not match the pod labels", k, v)
			}
		}
	}
	checkPod(t, pod.Spec, shutdown, cm.Name)
	// The migration Job's pods must not receive the Service's traffic.
	for _, j := range r.all("Job") {
		labels := j.(*batchv1.Job).Spec.Template.Labels
		matches := true
		for k, v := range svc.Spec.Selector {
			matches = matches && labels[k] == v
		}
		if matches {
			t.Errorf("the Service selects the migration Job's pods %v", labels)
		}
	}
}

type workloads struct {
	deploy *appsv1.Deployment
	sts    *appsv1.StatefulSet
}

// workloads returns the workload that serves the API: the one Deployment
// or StatefulSet, or the gateway's Deployment (component server) of a
// split deployment.
func (r rendered) workloads() workloads {
	var w workloads
	for _, o := range r.objs {
		switch x := o.Typed.(type) {
		case *appsv1.Deployment:
			if x.Spec.Template.Labels["app.kubernetes.io/component"] == "server" {
				w.deploy = x
			}
		case *appsv1.StatefulSet:
			w.sts = x
		}
	}
	return w
}

func checkPod(t *testing.T, pod corev1.PodSpec, shutdown time.Duration, configMap string) {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil || !isTrue(psc.RunAsNonRoot) || deref(psc.RunAsUser) != 65532 || deref(psc.RunAsGroup) != 65532 ||
		deref(psc.FSGroup) != 65532 || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %s, want non-root 65532:65532, fsGroup 65532, seccomp RuntimeDefault", js(psc))
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || !isTrue(sc.RunAsNonRoot) || deref(sc.RunAsUser) != 65532 || deref(sc.RunAsGroup) != 65532 ||
		!isTrue(sc.ReadOnlyRootFilesystem) || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container securityContext %s, want non-root 65532, read-only root, no privilege escalation, all capabilities dropped, seccomp RuntimeDefault", js(sc))
	}
	if !slices.Equal(c.Args, []string{"serve"}) {
		t.Errorf("args %v, want [serve]", c.Args)
	}
	if len(c.Ports) != 2 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8000 ||
		c.Ports[1].Name != "metrics" || c.Ports[1].ContainerPort != 9464 {
		t.Errorf("ports %+v, want http on 8000 and metrics on 9464", c.Ports)
	}
	for name, want := range map[string]struct {
		p    *corev1.Probe
		path string
	}{"startup": {c.StartupProbe, "/healthz"}, "liveness": {c.LivenessProbe, "/healthz"}, "readiness": {c.ReadinessProbe, "/readyz"}} {
		if want.p == nil || want.p.HTTPGet == nil || want.p.HTTPGet.Path != want.path || want.p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe %s, want GET %s on port http", name, js(want.p), want.path)
		}
	}
	// The startup probe must outlast the backends' start-up retries (30s).
	if sp := c.StartupProbe; sp != nil && time.Duration(sp.PeriodSeconds*sp.FailureThreshold)*time.Second < time.Minute {
		t.Errorf("startup probe allows %ds, want at least 60s", sp.PeriodSeconds*sp.FailureThreshold)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %s, want CPU and memory requests and a memory limit", js(c.Resources))
	}
	// Grace: the preStop sleep, then SIGTERM and shutdown_timeout for the
	// in-flight requests, then a margin.
	var preStop int64
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		preStop = c.Lifecycle.PreStop.Sleep.Seconds
	}
	grace := pod.TerminationGracePeriodSeconds
	if grace == nil || time.Duration(*grace)*time.Second < time.Duration(preStop)*time.Second+shutdown+time.Second {
		t.Errorf("terminationGracePeriodSeconds %v, want more than preStop %ds + shutdown_timeout %s", js(grace), preStop, shutdown)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil || c.EnvFrom[0].ConfigMapRef.Name != configMap {
		t.Errorf("envFrom %s, want the ConfigMap %s", js(c.EnvFrom), configMap)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod mounts a service account token; airship calls no Kubernetes API")
	}
}

// checkSecretsAsFiles: each server pod mounts the release's Secret
// read-only at /run/secrets/airship and names the file of each secret it
// reads in AIRSHIP_<KEY>_FILE, with no secret left in a variable.
func checkSecretsAsFiles(t *testing.T, r rendered) {
	t.Helper()
	want := map[string][]string{
		"airship":          {"AIRSHIP_API_KEYS", "AIRSHIP_MODULE_TOKEN"},
		"airship-products": {"AIRSHIP_REDIS_URL", "AIRSHIP_MODULE_TOKEN"},
		"airship-orders":   {"AIRSHIP_POSTGRES_URL", "AIRSHIP_MODULE_TOKEN"},
	}
	for name, keys := range want {
		pod := r.named(t, "Deployment", name).(*appsv1.Deployment).Spec.Template.Spec
		mounted := false
		for _, m := range pod.Containers[0].VolumeMounts {
			mounted = mounted || (m.Name == "secrets" && m.MountPath == "/run/secrets/airship" && m.ReadOnly)
		}
		volume := false
		for _, v := range pod.Volumes {
			volume = volume || (v.Name == "secrets" && v.Secret != nil && v.Secret.SecretName == "airship")
		}
		if !mounted || !volume {
			t.Errorf("Deployment %s does not mount Secret airship read-only at /run/secrets/airship: %s %s", name,
				js(pod.Containers[0].VolumeMounts), js(pod.Volumes))
		}
		env := map[string]string{}
		for _, e := range pod.Containers[0].Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				t.Errorf("Deployment %s reads %s from a variable", name, e.Name)
			}
			env[e.Name] = e.Value
		}
		for _, k := range keys {
			if env[k+"_FILE"] != "/run/secrets/airship/"+k {
				t.Errorf("Deployment %s: %s_FILE = %q; want /run/secrets/airship/%s", name, k, env[k+"_FILE"], k)
			}
		}
	}
}

// checkProductionSecrets checks that the server and the migration Job read
// the backend URLs from the named Secrets.
func checkProductionSecrets(t *testing.T, r rendered, serverSecret, jobSecret string) {
	t.Helper()
	refs := func(env []corev1.EnvVar) map[string]string {
		m := map[string]string{}
		for _, e := range env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				m[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
			}
		}
		return m
	}
	server := refs(r.deployment(t).Spec.Template.Spec.Containers[0].Env)
	for _, k := range []string{"AIRSHIP_POSTGRES_URL", "AIRSHIP_REDIS_URL", "AIRSHIP_API_KEYS"} {
		if server[k] != serverSecret+"/"+k {
			t.Errorf("server %s from %q, want %s/%s", k, server[k], serverSecret, k)
		}
	}
	job := r.one(t, "Job").(*batchv1.Job)
	ann := job.Annotations
	if ann["helm.sh/hook"] != "pre-install,pre-upgrade" || !strings.Contains(ann["helm.sh/hook-delete-policy"], "before-hook-creation") {
		t.Errorf("Job annotations %v, want a pre-install,pre-upgrade hook replaced at each run", ann)
	}
	jc := job.Spec.Template.Spec.Containers[0]
	if !slices.Equal(jc.Args, []string{"migrate", "up"}) {
		t.Errorf("Job args %v, want [migrate up]", jc.Args)
	}
	jr := refs(jc.Env)
	for _, k := range []string{"AIRSHIP_POSTGRES_URL", "AIRSHIP_REDIS_URL"} {
		if jr[k] != jobSecret+"/"+k {
			t.Errorf("Job %s from %q, want %s/%s", k, jr[k], jobSecret, k)
		}
	}
	if job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("Job restartPolicy %s", job.Spec.Template.Spec.RestartPolicy)
	}
	checkPodSecurity(t, job.Spec.Template.Spec)
	// The Job's Secret, when the chart makes it, is a hook created before it.
	for _, h := range r.hooks() {
		if h.Kind == "Secret" {
			if h.Name != jobSecret {
				t.Errorf("hook Secret %s, but the Job reads %s", h.Name, jobSecret)
			}
			w := h.Map["metadata"].(map[string]any)["annotations"].(map[string]any)["helm.sh/hook-weight"]
			if w != "-10" {
				t.Errorf("hook Secret weight %v, want it before the Job", w)
			}
		}
	}
}

func checkPodSecurity(t *testing.T, pod corev1.PodSpec) {
	t.Helper()
	sc := pod.Containers[0].SecurityContext
	if sc == nil || !isTrue(sc.ReadOnlyRootFilesystem) || !isTrue(sc.RunAsNonRoot) || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("Job container securityContext %s", js(sc))
	}
}

func checkEmbedded(t *testing.T, r rendered) {
	sts := r.one(t, "StatefulSet").(*appsv1.StatefulSet)
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 1 {
		t.Errorf("StatefulSet replicas %v, want 1", sts.Spec.Replicas)
	}
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("%d volumeClaimTemplates, want 1", len(sts.Spec.VolumeClaimTemplates))
	}
	claim := sts.Spec.VolumeClaimTemplates[0]
	if got := claim.Spec.Resources.Requests.Storage().String(); got != "5Gi" {
		t.Errorf("volume size %s, want 5Gi", got)
	}
	mounted := false
	for _, m := range sts.Spec.Template.Spec.Containers[0].VolumeMounts {
		mounted = mounted || (m.Name == claim.Name && m.MountPath == "/data" && !m.ReadOnly)
	}
	if !mounted {
		t.Errorf("the claim %s is not mounted read-write at /data: %s", claim.Name, js(sts.Spec.Template.Spec.Containers[0].VolumeMounts))
	}
	cm := r.one(t, "ConfigMap").(*corev1.ConfigMap)
	if cm.Data["AIRSHIP_DATA_DIR"] != "/data" {
		t.Errorf("AIRSHIP_DATA_DIR = %q, want /data", cm.Data["AIRSHIP_DATA_DIR"])
	}
	headless := r.named(t, "Service", sts.Spec.ServiceName).(*corev1.Service)
	if headless.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("the StatefulSet's Service %s is not headless", headless.Name)
	}
	for _, e := range sts.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "AIRSHIP_POSTGRES_URL" || e.Name == "AIRSHIP_REDIS_URL" {
			t.Errorf("embedded mode sets %s", e.Name)
		}
	}
}

// chartConfigEnv is every environment variable the chart's ConfigMap may
// set: AIRSHIP_<KEY> for each key values.schema.json accepts under
// `config`, and those the chart sets itself. (airship's own tests check
// that these are airship's configuration keys.)
func chartConfigEnv(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties struct {
			Config struct {
				Properties map[string]any `json:"properties"`
			} `json:"config"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	env := map[string]bool{"AIRSHIP_ADDR": true, "AIRSHIP_DATA_DIR": true, "AIRSHIP_SHUTDOWN_TIMEOUT": true, "AIRSHIP_METRICS_ADDR": true}
	for k := range schema.Properties.Config.Properties {
		env["AIRSHIP_"+strings.ToUpper(k)] = true
	}
	return env
}

func isTrue(b *bool) bool { return b != nil && *b }

func deref(p *int64) int64 {
	if p == nil {
		return -1
	}
	return *p
}

func js(v any) string {
	if v == nil || (reflect.ValueOf(v).Kind() == reflect.Pointer && reflect.ValueOf(v).IsNil()) {
		return "<none>"
	}
	b, _ := yaml.Marshal(v)
	return strings.TrimSpace(string(b))
}
