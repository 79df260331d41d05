package helmtest

import (
	"context"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// (monitoring.coreos.com/v1) that the chart renders, field for field as
// the CRD names them: the strict decoder refuses any other field, so a
// misspelt one fails here instead of being dropped by the API server.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// TestServiceMonitor renders the chart with metrics.serviceMonitor.enabled
// (it is off in every variant of TestChartVariants, whose API server knows
// no ServiceMonitor, a custom resource): helm lint passes, the
// ServiceMonitor decodes strictly and selects the metrics Service, which
// selects the pods and targets their metrics port; every object but the
// ServiceMonitor is then applied to the API server.
func TestServiceMonitor(t *testing.T) {
	args := append(slices.Clone(backendArgs),
		"--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.serviceMonitor.labels.release=monitoring",
		"--set", "metrics.serviceMonitor.interval=15s")
	lint := append([]string{"lint", "--strict", "deploy/helm/airship"}, args...)
	if out, stderr, err := helm(t, nil, lint...); err != nil || !strings.Contains(out, "0 chart(s) failed") {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(lint, " "), err, out, stderr)
	}
	const ns = "render-servicemonitor"
	objs := render(t, "airship", ns, args...)
	r := rendered{objs}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.Kind)
	}
	sort.Strings(kinds)
	want := []string{"ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Job", "PodDisruptionBudget", "Secret", "Secret",
		"Service", "Service", "ServiceAccount", "ServiceMonitor"}
	if !slices.Equal(kinds, want) {
		t.Errorf("rendered kinds %v, want %v", kinds, want)
	}
	checkCommon(t, r)

	sm := r.one(t, "ServiceMonitor").(*serviceMonitor)
	svc := r.named(t, "Service", "airship-metrics").(*corev1.Service)
	pod := r.deployment(t).Spec.Template
	if sm.Labels["release"] != "monitoring" {
		t.Errorf("ServiceMonitor labels %v, want release=monitoring among them", sm.Labels)
	}
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selector %s=%s does not match the metrics Service's labels %v", k, v, svc.Labels)
		}
	}
	api := r.named(t, "Service", "airship").(*corev1.Service)
	selectsAPI := true
	for k, v := range sm.Spec.Selector.MatchLabels {
		selectsAPI = selectsAPI && api.Labels[k] == v
	}
	if selectsAPI {
		t.Errorf("ServiceMonitor selector %v also selects the API's Service", sm.Spec.Selector.MatchLabels)
	}
	if !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{ns}) {
		t.Errorf("namespaceSelector %v, want [%s]", sm.Spec.NamespaceSelector.MatchNames, ns)
	}
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("%d endpoints, want 1", len(sm.Spec.Endpoints))
	}
	ep := sm.Spec.Endpoints[0]
	if ep.Port != "metrics" || ep.Path != "/metrics" || ep.Interval != "15s" || ep.ScrapeTimeout != "10s" {
		t.Errorf("endpoint %+v, want port metrics, path /metrics, interval 15s, scrapeTimeout 10s", ep)
	}
	if svc.Spec.ClusterIP != "None" || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "metrics" ||
		svc.Spec.Ports[0].TargetPort.String() != "metrics" || svc.Spec.Ports[0].Port != 9464 {
		t.Errorf("metrics Service spec %+v, want headless with only port metrics (9464) → metrics", svc.Spec)
	}
	for k, v := range svc.Spec.Selector {
		if pod.Labels[k] != v {
			t.Errorf("metrics Service selector %s=%s does not match the pod labels %v", k, v, pod.Labels)
		}
	}
	for _, p := range api.Spec.Ports {
		if p.Port == 9464 || p.TargetPort.String() == "metrics" {
			t.Errorf("the API's Service exposes the metrics port: %+v", p)
		}
	}
	if a := pod.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != "9464" || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("pod annotations %v, want the prometheus.io scrape annotations for 9464 /metrics", a)
	}

	c := apiServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	applyAndReadBack(t, ctx, c, "", namespaceObject(ns))
	for _, o := range objs {
		if o.Kind != "ServiceMonitor" {
			applyAndReadBack(t, ctx, c, ns, o.Map)
		}
	}
}

// TestMetricsOff: metrics.enabled=false renders no metrics port, no
// scrape annotations and an empty AIRSHIP_METRICS_ADDR (no listener).
func TestMetricsOff(t *testing.T) {
	r := rendered{render(t, "airship", "render-metrics-off", append(slices.Clone(backendArgs), "--set", "metrics.enabled=false")...)}
	pod := r.deployment(t).Spec.Template
	for _, p := range pod.Spec.Containers[0].Ports {
		if p.Name == "metrics" {
			t.Errorf("metrics port rendered although metrics are off: %+v", p)
		}
	}
	if _, ok := pod.Annotations["prometheus.io/scrape"]; ok {
		t.Errorf("scrape annotations rendered although metrics are off: %v", pod.Annotations)
	}
	cm := r.one(t, "ConfigMap").(*corev1.ConfigMap)
	if v, ok := cm.Data["AIRSHIP_METRICS_ADDR"]; !ok || v != "" {
		t.Errorf("AIRSHIP_METRICS_ADDR = %q (set %v), want set and empty", v, ok)
	}
}
