package render

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// chartVersionBase is the revision chart versions are compared with: $CHART_VERSION_BASE (CI: the pull
// request's base, or the commit before the push), else where HEAD left origin/main, else HEAD itself (the
// working tree's chart edits must then come with a bump).
func chartVersionBase(t *testing.T) string {
	t.Helper()
	for _, ref := range []string{os.Getenv("CHART_VERSION_BASE"), mergeBase("origin/main")} {
		if ref == "" || strings.Trim(ref, "0") == "" {
			continue
		}
		if _, err := runErr(repoRoot, "git", "rev-parse", "--verify", "--quiet", ref+"^{commit}"); err == nil {
			return ref
		}
		t.Logf("chart versions: %s is not a commit here (a shallow clone?)", ref)
	}
	return "HEAD"
}

func mergeBase(ref string) string {
	out, err := runErr(repoRoot, "git", "merge-base", "HEAD", ref)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

var semverRE = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.-]+)?$`)

// semverLess compares two chart versions (X.Y.Z, prerelease ignored beyond "a prerelease is less").
func semverLess(a, b string) (bool, error) {
	ma, mb := semverRE.FindStringSubmatch(a), semverRE.FindStringSubmatch(b)
	if ma == nil || mb == nil {
		return false, strconv.ErrSyntax
	}
	for i := 1; i <= 3; i++ {
		x, _ := strconv.Atoi(ma[i])
		y, _ := strconv.Atoi(mb[i])
		if x != y {
			return x < y, nil
		}
	}
	return strings.Contains(a, "-") && !strings.Contains(b, "-"), nil
}

func chartVersionAt(t *testing.T, rev, chart string) (string, bool) {
	t.Helper()
	var b []byte
	var err error
	if rev == "" {
		b, err = os.ReadFile(repoRoot + "/helm/" + chart + "/Chart.yaml")
	} else {
		b, err = runErr(repoRoot, "git", "show", rev+":helm/"+chart+"/Chart.yaml")
	}
	if err != nil {
		return "", false
	}
	var c struct {
		Version string `json:"version"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("helm/%s/Chart.yaml at %q: %v", chart, rev, err)
	}
	return c.Version, true
}

// TestChartVersionBumped: a chart whose files differ from the base revision has a greater version there
// (the charts are released at their own versions, and a version once released must not change content),
// and the umbrella depends on the service charts at exactly their versions.
func TestChartVersionBumped(t *testing.T) {
	base := chartVersionBase(t)
	t.Logf("comparing with %s", base)
	current := map[string]string{}
	for _, chart := range charts {
		v, _ := chartVersionAt(t, "", chart)
		current[chart] = v
		old, existed := chartVersionAt(t, base, chart)
		if !existed {
			continue
		}
		changed := false
		if _, err := runErr(repoRoot, "git", "diff", "--quiet", base, "--", "helm/"+chart, ":(exclude)helm/"+chart+"/charts"); err != nil {
			changed = true
		}
		untracked, _ := runErr(repoRoot, "git", "ls-files", "--others", "--exclude-standard", "--", "helm/"+chart)
		if len(strings.TrimSpace(string(untracked))) > 0 {
			changed = true
		}
		if !changed {
			continue
		}
		less, err := semverLess(old, v)
		if err != nil {
			t.Errorf("helm/%s: versions %q (%s) and %q are not X.Y.Z", chart, old, base, v)
			continue
		}
		if !less {
			t.Errorf("helm/%s changed since %s but its version is still %s (was %s): bump version in helm/%s/Chart.yaml", chart, base, v, old, chart)
		}
	}
	var umbrella struct {
		Dependencies []struct {
			Name, Version string
		} `json:"dependencies"`
	}
	if err := yaml.Unmarshal(readRepoFile(t, "helm/moviebag/Chart.yaml"), &umbrella); err != nil {
		t.Fatal(err)
	}
	for _, d := range umbrella.Dependencies {
		if want, ok := current[d.Name]; ok && d.Version != want {
			t.Errorf("helm/moviebag depends on %s %s, but helm/%s is %s", d.Name, d.Version, d.Name, want)
		}
	}
}

// TestReleasePinsImageDigests: the release workflow puts each service's image digest (from the images job)
// into the chart it packages, so a released chart runs exactly the images built for it.
func TestReleasePinsImageDigests(t *testing.T) {
	rel := string(readRepoFile(t, ".github/workflows/release.yaml"))
	for _, want := range []string{
		`echo "digest=$(cat "${RUNNER_TEMP}/digest")" >> "$GITHUB_OUTPUT"`,
		`actions/upload-artifact@`, `actions/download-artifact@`,
		`s|^  digest: \"\"$|  digest: \"${digest}\"|`,
		`grep -q "^  digest: \"${digest}\"$"`,
	} {
		if !strings.Contains(rel, want) {
			t.Errorf("release.yaml does not contain %s: the released charts would not pin the images by digest", want)
		}
	}
	if strings.Contains(rel, `s/^version: .*/version: ${version}/`) {
		t.Error("release.yaml overwrites the charts' versions with the app's: charts are versioned on their own")
	}
	for _, svc := range []string{"auth", "movies"} {
		v := readValues(t, renderCase{Chart: svc, Values: "helm/" + svc + "/values.yaml"})
		if d, ok := valueAt(v, "image.digest"); !ok || d != "" {
			t.Errorf("helm/%s/values.yaml: image.digest is %v; the release step replaces exactly `digest: \"\"`", svc, d)
		}
	}
}

// versionedSince is the commit from which every chart has been versioned on its own (release.yaml stopped
// overwriting chart versions with the tag).
const versionedSince = "5641971"

// TestEveryChartCommitBumpsItsVersion: in the history since versionedSince, each commit that changed a
// chart's files gave it a greater version than it had in the commit before. Unlike TestChartVersionBumped,
// whose base is where HEAD left origin/main, this holds in a clean clone of main too (CI).
func TestEveryChartCommitBumpsItsVersion(t *testing.T) {
	if _, err := runErr(repoRoot, "git", "cat-file", "-e", versionedSince+"^{commit}"); err != nil {
		t.Fatalf("commit %s is not in this clone (shallow?): fetch the history (git fetch --unshallow): %v", versionedSince, err)
	}
	for _, chart := range charts {
		out, err := runErr(repoRoot, "git", "rev-list", "--reverse", versionedSince+"..HEAD", "--", "helm/"+chart)
		if err != nil {
			t.Fatalf("git rev-list: %v\n%s", err, out)
		}
		for _, c := range strings.Fields(string(out)) {
			if _, err := runErr(repoRoot, "git", "diff", "--quiet", c+"^", c, "--", "helm/"+chart, ":(exclude)helm/"+chart+"/charts"); err == nil {
				continue // only files helm ignores changed
			}
			old, existed := chartVersionAt(t, c+"^", chart)
			v, _ := chartVersionAt(t, c, chart)
			if !existed {
				continue
			}
			if less, err := semverLess(old, v); err != nil || !less {
				subject, _ := runErr(repoRoot, "git", "log", "-1", "--format=%h %s", c)
				t.Errorf("helm/%s changed in %s but its version stayed %s (or went back from %s)", chart, strings.TrimSpace(string(subject)), v, old)
			}
		}
	}
}
