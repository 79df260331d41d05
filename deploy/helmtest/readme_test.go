package helmtest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// Values documented as one object rather than field by field.
var opaqueValues = []string{
	"resources", "migrations.job.resources", "podSecurityContext", "securityContext",
	"probes.startup", "probes.liveness", "probes.readiness", "ingress.hosts", "config",
}

// valuePaths lists the dotted paths of values.yaml's values, not looking
// inside the opaque ones.
func valuePaths(prefix string, v any, out *[]string) {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 || slices.Contains(opaqueValues, prefix) {
		*out = append(*out, prefix)
		return
	}
	for k, x := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		valuePaths(p, x, out)
	}
}

// The chart's README documents every value of values.yaml and every
// setting values.schema.json accepts under `config`; the schema knows every
// value of values.yaml.
func TestChartReadmeDocumentsEveryValue(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	var paths []string
	valuePaths("", values, &paths)
	for k := range values["config"].(map[string]any) {
		paths = append(paths, "config."+k)
	}
	for env := range chartConfigEnv(t) {
		key := strings.ToLower(strings.TrimPrefix(env, "AIRSHIP_"))
		if !slices.Contains([]string{"addr", "data_dir", "shutdown_timeout", "metrics_addr"}, key) {
			paths = append(paths, "config."+key)
		}
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)
	for _, p := range paths {
		if !strings.Contains(string(readme), "| `"+p+"` |") {
			t.Errorf("deploy/helm/airship/README.md does not document `%s` in its tables", p)
		}
	}

	// The README's commands are among those the docs test runs.
	var docs []string
	for _, c := range kubernetesDocCommands(t) {
		docs = append(docs, c.text)
	}
	var cmd string
	inBlock := false
	for _, line := range strings.Split(string(readme), "\n") {
		switch {
		case line == "```sh":
			inBlock = true
		case line == "```":
			inBlock = false
		case inBlock:
			text := strings.TrimSpace(line)
			cmd += strings.TrimSpace(strings.TrimSuffix(text, `\`)) + " "
			if !strings.HasSuffix(text, `\`) {
				if c := strings.TrimSpace(cmd); c != "" && !slices.Contains(docs, c) {
					t.Errorf("deploy/helm/airship/README.md shows %q, which docs/deploy.md (and so its test) does not", c)
				}
				cmd = ""
			}
		}
	}

	// Every value of values.yaml is declared in the schema.
	sb, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(sb, &schema); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		node := schema
		for _, part := range strings.Split(p, ".") {
			props, _ := node["properties"].(map[string]any)
			next, ok := props[part].(map[string]any)
			if !ok {
				t.Errorf("values.schema.json does not declare %s", p)
				break
			}
			node = next
		}
	}
}
