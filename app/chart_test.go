package app

import (
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/airshipltd/airship/internal/config"
)

// The Helm chart's values.schema.json accepts exactly airship's
// configuration keys under `config`, less those the chart sets itself and
// those it takes from a Secret: a new key must be added to the chart (or
// named here).
func TestHelmChartKnowsEveryConfigKey(t *testing.T) {
	b, err := os.ReadFile("../deploy/helm/airship/values.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties struct {
			Config struct {
				Properties           map[string]json.RawMessage `json:"properties"`
				AdditionalProperties *bool                      `json:"additionalProperties"`
			} `json:"config"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	cfg := schema.Properties.Config
	if cfg.AdditionalProperties == nil || *cfg.AdditionalProperties {
		t.Error("values.schema.json accepts keys under config that are not airship's")
	}
	// containerPort, /data, shutdownTimeoutSeconds, and the modules of each
	// Deployment with the addresses of the others (split.enabled), metrics.
	chartSets := []string{"addr", "data_dir", "shutdown_timeout", "modules", "products_url", "orders_url", "metrics_addr"}
	fromSecret := []string{"amqp_url", "api_keys", "module_token", "postgres_url", "redis_url"}
	var want []string
	for _, k := range config.Keys() {
		if !slices.Contains(chartSets, k) && !slices.Contains(fromSecret, k) {
			want = append(want, k)
		}
	}
	var got []string
	for k := range cfg.Properties {
		got = append(got, k)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("values.schema.json config keys:\n  %v\nwant airship's configuration keys less the chart's and the Secret's:\n  %v", got, want)
	}
	for _, k := range append(chartSets, fromSecret...) {
		if !slices.Contains(config.Keys(), k) {
			t.Errorf("the chart sets %s (%s), which is no longer a configuration key", k, config.EnvName(k))
		}
	}
}
