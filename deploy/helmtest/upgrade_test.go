package helmtest

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// previousRelease returns the commit of the previous release, as CHANGELOG.md
// records it (read by the repository's own scripts/release).
func previousRelease(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("go", "run", "./scripts/release", "previous")
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go run ./scripts/release previous: %v\n%s", err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// extractChart writes deploy/helm of a commit (the chart and its example
// values) into a temporary directory and returns that directory.
func extractChart(t *testing.T, commit string) string {
	t.Helper()
	cmd := exec.Command("git", "archive", "--format=tar", commit, "deploy/helm")
	cmd.Dir = repoRoot
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("git archive %s deploy/helm: %v\n%s (the previous release must be in this clone: git fetch --unshallow)", commit, err, stderr.String())
	}
	dir := t.TempDir()
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(path, dir+string(filepath.Separator)) {
			t.Fatalf("git archive: %s is outside the directory", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(path, 0o755)
		case tar.TypeReg:
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(path, b, 0o644)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestChartUpgradeFromPreviousRelease installs the previous release's chart
// (from the commit CHANGELOG.md records) on the API server with its own
// example values, then upgrades the release to this tree's chart with a
// new image, as an operator upgrades: the API server accepts every object
// of the upgrade (no change to an immutable field such as a selector or a
// StatefulSet's volume claims), the rolling update keeps capacity
// (maxUnavailable 0, a surge, readiness probes), and the migration Job runs
// before any new pod is asked for: when it runs, every workload still
// has the previous release's pod template. A rollback to the previous
// release is accepted too.
func TestChartUpgradeFromPreviousRelease(t *testing.T) {
	c := apiServer(t)
	prev := previousRelease(t)
	prevRoot := extractChart(t, prev)
	t.Logf("previous release: %s", prev)
	db := newDatabase(t)

	// A chart that knows secret.moduleToken (1.1.0 on) needs it in split
	// mode. 1.0.0's split modules call each other with no token: the
	// upgrade from it sets one, and the new modules take calls without it
	// until every pod has rolled (docs/upgrading.md).
	token := []string{"--set", "secret.moduleToken=" + strings.Repeat("0f", 32)}
	splitInstall, splitUpgrade := []string{"--set", "split.enabled=true"}, []string(nil)
	if chartKnowsValue(t, prevRoot, "secret", "moduleToken") {
		splitInstall = append(splitInstall, token...)
	} else {
		splitUpgrade = append(token, "--set", "config.module_auth=optional")
	}

	for _, v := range []struct {
		name   string
		values string   // the previous release's example values file
		args   []string // more values, the same for install and upgrade
		hook   bool     // a migration Job runs on install and upgrade
		// more values for the upgrade only: what docs/upgrading.md says
		// the upgrade from the previous release sets
		upgradeArgs []string
	}{
		{"production", "production.yaml", nil, true, nil},
		{"split", "production.yaml", splitInstall, true, splitUpgrade},
		{"embedded", "embedded.yaml", nil, false, nil},
	} {
		t.Run(v.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
			defer cancel()
			ns := "upgrade-" + v.name + "-" + randomHex(3)
			const release = "airship"
			const oldImage, newImage = "release-n", "release-n-plus-1"
			env := []string{"KUBECONFIG=" + c.Kubeconfig}

			// The migration Job must run while every workload still has the
			// old pod template.
			var (
				mu       sync.Mutex
				atJob    []string // what each Job saw
				upgrader bool
			)
			jobs := &jobRunner{c: c, airship: buildAirship(t), postgresURL: db.url, redisURL: redisURL(), runs: map[string]int{},
				namespaces: map[string]bool{ns: true},
				before: func(ctx context.Context, job batchv1.Job) error {
					mu.Lock()
					defer mu.Unlock()
					if !upgrader {
						return nil
					}
					images, err := workloadImages(ctx, c, ns)
					if err != nil {
						return err
					}
					jobImage := job.Spec.Template.Spec.Containers[0].Image
					atJob = append(atJob, fmt.Sprintf("Job %s (%s) ran while the workloads had %v", job.Name, jobImage, images))
					if !strings.HasSuffix(jobImage, ":"+newImage) {
						return fmt.Errorf("the upgrade's migration Job %s runs %s, not the new release's image", job.Name, jobImage)
					}
					for w, img := range images {
						if !strings.HasSuffix(img, ":"+oldImage) {
							return fmt.Errorf("the migration Job %s ran after %s was changed to the new pods (%s)", job.Name, w, img)
						}
					}
					return nil
				}}
			stop := jobs.start(ctx, t)
			defer stop()

			values := filepath.Join(prevRoot, "deploy", "helm", "examples", v.values)
			install := append([]string{"install", release, filepath.Join(prevRoot, "deploy", "helm", "airship"),
				"--namespace", ns, "--create-namespace", "-f", values, "--set", "image.tag=" + oldImage}, v.args...)
			helmStep(ctx, t, c, jobs, env, install)
			before, err := clusterWorkloads(ctx, c, ns)
			if err != nil {
				t.Fatal(err)
			}
			if len(before) == 0 {
				t.Fatal("the previous release's chart made no workload")
			}

			mu.Lock()
			upgrader = true
			mu.Unlock()
			// The upgrade as docs/upgrading.md gives it: the new chart, the
			// release's values kept, the new chart's defaults for new keys.
			upgrade := append([]string{"upgrade", release, "deploy/helm/airship", "--namespace", ns,
				"--reset-then-reuse-values", "--set", "image.tag=" + newImage}, v.args...)
			upgrade = append(upgrade, v.upgradeArgs...)
			helmStep(ctx, t, c, jobs, env, upgrade)
			mu.Lock()
			for _, l := range atJob {
				t.Log(l)
			}
			if want := map[bool]int{true: 1, false: 0}[v.hook]; len(atJob) != want {
				t.Errorf("%d migration Jobs ran during the upgrade, want %d", len(atJob), want)
			}
			upgrader = false
			mu.Unlock()

			after, err := clusterWorkloads(ctx, c, ns)
			if err != nil {
				t.Fatal(err)
			}
			for name, old := range before {
				now, ok := after[name]
				if !ok {
					t.Errorf("%s is gone after the upgrade: a renamed workload is a new one, and the old pods stop at once", name)
					continue
				}
				checkUpgradedWorkload(t, name, old, now, newImage)
			}

			// And back: the previous release's objects are accepted again.
			helmStep(ctx, t, c, jobs, env, []string{"rollback", release, "1", "--namespace", ns})
			back, err := clusterWorkloads(ctx, c, ns)
			if err != nil {
				t.Fatal(err)
			}
			for name, w := range back {
				for _, img := range w.images {
					if !strings.HasSuffix(img, ":"+oldImage) {
						t.Errorf("after the rollback %s runs %s", name, img)
					}
				}
			}
			if errs := jobs.errors(); len(errs) > 0 {
				t.Errorf("migration jobs: %v", errs)
			}
		})
	}
}

// helmStep runs a helm command that changes the release and checks the
// cluster holds the release as Helm rendered it (see checkRelease).
func helmStep(ctx context.Context, t *testing.T, c *cluster, jobs *jobRunner, env []string, args []string) {
	t.Helper()
	ns := namespaceOf(args)
	before := jobs.count(ns)
	out, stderr, err := helm(t, env, args...)
	where := "helm " + strings.Join(args, " ")
	if err != nil {
		t.Fatalf("%s: %v\n%s%s\nmigration jobs: %v", where, err, out, stderr, jobs.errors())
	}
	t.Logf("%s: ok", where)
	checkRelease(ctx, t, c, jobs, env, where, append([]string{"helm"}, args...), before)
}

// workload is what the upgrade checks of a Deployment or StatefulSet.
type workload struct {
	kind       string
	selector   string
	images     []string
	deployment *appsv1.Deployment
	set        *appsv1.StatefulSet
}

// clusterWorkloads reads the namespace's Deployments and StatefulSets.
func clusterWorkloads(ctx context.Context, c *cluster, ns string) (map[string]workload, error) {
	out := map[string]workload{}
	for _, kind := range []string{"Deployment", "StatefulSet"} {
		items, err := c.list(ctx, ns, "apps/v1", kind, "")
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			b, _ := json.Marshal(it)
			w := workload{kind: kind}
			var spec struct {
				Spec struct {
					Selector any `json:"selector"`
				} `json:"spec"`
			}
			_ = json.Unmarshal(b, &spec)
			sel, _ := json.Marshal(spec.Spec.Selector)
			w.selector = string(sel)
			var name string
			switch kind {
			case "Deployment":
				w.deployment = &appsv1.Deployment{}
				if err := json.Unmarshal(b, w.deployment); err != nil {
					return nil, err
				}
				name = w.deployment.Name
				for _, ctr := range w.deployment.Spec.Template.Spec.Containers {
					w.images = append(w.images, ctr.Image)
				}
			case "StatefulSet":
				w.set = &appsv1.StatefulSet{}
				if err := json.Unmarshal(b, w.set); err != nil {
					return nil, err
				}
				name = w.set.Name
				for _, ctr := range w.set.Spec.Template.Spec.Containers {
					w.images = append(w.images, ctr.Image)
				}
			}
			out[kind+"/"+name] = w
		}
	}
	return out, nil
}

// workloadImages is each workload's pod template images.
func workloadImages(ctx context.Context, c *cluster, ns string) (map[string]string, error) {
	ws, err := clusterWorkloads(ctx, c, ns)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for name, w := range ws {
		out[name] = strings.Join(w.images, ",")
	}
	return out, nil
}

// checkUpgradedWorkload: same selector, the new image, and a rolling
// update that never takes a ready pod away before its replacement is
// ready.
func checkUpgradedWorkload(t *testing.T, name string, old, now workload, newImage string) {
	t.Helper()
	if now.selector != old.selector {
		t.Errorf("%s: selector %s after the upgrade, %s before", name, now.selector, old.selector)
	}
	for _, img := range now.images {
		if !strings.HasSuffix(img, ":"+newImage) {
			t.Errorf("%s runs %s after the upgrade, want the new image", name, img)
		}
	}
	switch {
	case now.deployment != nil:
		s := now.deployment.Spec.Strategy
		if s.Type != appsv1.RollingUpdateDeploymentStrategyType || s.RollingUpdate == nil {
			t.Errorf("%s: strategy %+v, want RollingUpdate", name, s)
			return
		}
		replicas := 2 // the HPA's minimum when it owns the count
		if r := now.deployment.Spec.Replicas; r != nil {
			replicas = int(*r)
		}
		unavailable, err1 := intstr.GetScaledValueFromIntOrPercent(s.RollingUpdate.MaxUnavailable, replicas, false)
		surge, err2 := intstr.GetScaledValueFromIntOrPercent(s.RollingUpdate.MaxSurge, replicas, true)
		if err1 != nil || err2 != nil || unavailable != 0 || surge < 1 {
			t.Errorf("%s: rolling update maxUnavailable %v, maxSurge %v: capacity drops during an upgrade (want 0 and at least 1)",
				name, s.RollingUpdate.MaxUnavailable, s.RollingUpdate.MaxSurge)
		}
		for _, ctr := range now.deployment.Spec.Template.Spec.Containers {
			if ctr.ReadinessProbe == nil {
				t.Errorf("%s: container %s has no readiness probe: a new pod would count as available before it serves", name, ctr.Name)
			}
		}
	case now.set != nil:
		// One pod on one volume: the upgrade restarts it (docs/upgrading.md).
		if now.set.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
			t.Errorf("%s: update strategy %s, want RollingUpdate", name, now.set.Spec.UpdateStrategy.Type)
		}
		oldClaims, _ := json.Marshal(old.set.Spec.VolumeClaimTemplates)
		newClaims, _ := json.Marshal(now.set.Spec.VolumeClaimTemplates)
		if !bytes.Equal(oldClaims, newClaims) {
			t.Errorf("%s: volume claim templates changed:\n%s\n%s", name, oldClaims, newClaims)
		}
	}
}

// chartKnowsValue reports whether the values schema of the chart under
// root declares the value object.key.
func chartKnowsValue(t *testing.T, root, object, key string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "deploy", "helm", "airship", "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatalf("values.schema.json of the previous release: %v", err)
	}
	_, ok := schema.Properties[object].Properties[key]
	return ok
}
