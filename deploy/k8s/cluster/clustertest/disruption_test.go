package clustertest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moviebag/moviebag/deploy/k8s/cluster/load"
	"github.com/moviebag/moviebag/deploy/observability/traffic"
)

// TestDisruptions puts steady, mixed load through the Gateway (load.Run: 50 requests a second of public
// reads, authenticated creates and deletes, a login a second, a logout now and then) while the cluster
// drains its workers, loses one, moves the dev databases to another node, rolls and kills pods, restarts
// Redis and MongoDB and rotates the signing key, and counts every request
// that was not answered as promised. It runs from `make test-cluster-disruption` on a cluster that
// `cluster-up` has just installed (2 replicas of each service, the chart's defaults).
func TestDisruptions(t *testing.T) {
	env(t, "KUBECONFIG")
	gateway := env(t, "GATEWAY_URL")

	t.Run("after install, the replicas of each service and of CoreDNS on different nodes", func(t *testing.T) {
		checkSpread(t)
	})

	t.Run("kubectl drain of each worker in turn: 0 failed, the replicas on different nodes after each", func(t *testing.T) {
		drainWorkers(t, gateway)
	})

	t.Run("the dev databases' node drained: they move with their data, outage only while they move", func(t *testing.T) {
		rep := drainStorage(t, gateway)
		if err := load.CheckMovies(context.Background(), gateway, rep.Movies); err != nil {
			t.Errorf("movies created before the drain are gone: %v", err)
		}
		if err := load.CheckRevoked(context.Background(), gateway, rep.Revoked); err != nil {
			t.Errorf("tokens logged out before or around the drain are accepted again: %v", err)
		}
		t.Logf("all %d movies and %d logged-out tokens as they were", len(rep.Movies), len(rep.Revoked))
	})

	t.Run("a worker lost: failures only until its endpoints leave it, its replicas run elsewhere", func(t *testing.T) {
		loseNode(t, gateway)
	})

	t.Run("helm upgrade that changes a config value of both services: 0 failed", func(t *testing.T) {
		underLoad(t, load.Config{BaseURL: gateway}, func(t *testing.T) {
			before := podUIDs(t)
			upgrade(t, "--set", "auth.config.logLevel=warn", "--set", "movies.config.logLevel=warn")
			after := podUIDs(t)
			for _, svc := range []string{"auth", "movies"} {
				if podsOf(before, svc) == podsOf(after, svc) {
					t.Errorf("%s pods were not replaced: the upgrade rolled nothing", svc)
				}
			}
		})
	})

	t.Run("kubectl delete pod of each replica of each service in turn: 0 failed", func(t *testing.T) {
		underLoad(t, load.Config{BaseURL: gateway}, func(t *testing.T) {
			for _, svc := range []string{"auth", "movies"} {
				pods := podNames(t, svc)
				if len(pods) < 2 {
					t.Fatalf("%s has %d pods, want at least 2 (the chart's default)", svc, len(pods))
				}
				for _, pod := range pods {
					t.Logf("deleting pod %s", pod)
					kubectl(t, "-n", namespace, "delete", "pod", pod, "--wait")
					kubectl(t, "-n", namespace, "rollout", "status", "deployment", release+"-"+svc, "--timeout=180s")
				}
			}
		})
	})

	// The dev Redis and MongoDB are deleted under load. While each is away, clients may get 503 with
	// Retry-After (for Redis: only authenticated writes, logins and logouts; public reads go on); from 30 s
	// after the new pod is Ready, everything must work again, unaided. Nothing else may fail, no request may
	// take longer than REQUEST_TIMEOUT plus a margin, and what was stored before must still be there.
	t.Run("dev Redis pod deleted: 503 with Retry-After on writes only while it is away, the denylist survives", func(t *testing.T) {
		rep := restartUnderLoad(t, gateway, "redis", load.RedisOutage)
		if len(rep.Revoked) == 0 {
			t.Fatal("the load logged nothing out: the denylist's survival is not shown")
		}
		if err := load.CheckRevoked(context.Background(), gateway, rep.Revoked); err != nil {
			t.Errorf("tokens logged out before or around the restart are accepted again: %v", err)
		}
		t.Logf("%d logged-out tokens still refused after the restart", len(rep.Revoked))
	})

	t.Run("dev MongoDB pod deleted: 503 envelopes only while it is away, no hung request, no movie lost", func(t *testing.T) {
		rep := restartUnderLoad(t, gateway, "mongodb", load.MongoOutage)
		if err := load.CheckMovies(context.Background(), gateway, rep.Movies); err != nil {
			t.Errorf("movies created before the restart are gone: %v", err)
		}
		t.Logf("all %d movies the load left are still there", len(rep.Movies))
	})

	t.Run("signing key rotated through the Secret: 0 failed", func(t *testing.T) { rotateKey(t, gateway) })
}

// drainWorkers drains each worker in turn under load (the PodDisruptionBudgets respected, the evicted
// pods rescheduled on the other nodes), checks the spread, and uncordons it. The dev databases are left
// where they are (the drain's pod selector): their moves are an outage of their own.
func drainWorkers(t *testing.T, gateway string) {
	_, workers := clusterNodes(t)
	if len(workers) < 2 {
		t.Fatalf("workers %v, want at least 2", workers)
	}
	underLoad(t, load.Config{BaseURL: gateway}, func(t *testing.T) {
		for _, node := range workers {
			t.Logf("draining %s", node)
			start := time.Now()
			sh(t, 6*time.Minute, "kubectl", "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=5m",
				"--pod-selector", "app.kubernetes.io/name notin (redis,mongodb)")
			for _, svc := range services {
				kubectl(t, "-n", namespace, "rollout", "status", "deployment", release+"-"+svc, "--timeout=180s")
				for pod, n := range nodesOf(t, svc) {
					if n == node {
						t.Errorf("%s: pod %s still on the drained node %s", svc, pod, node)
					}
				}
			}
			kubectl(t, "-n", "kube-system", "rollout", "status", "deployment", "coredns", "--timeout=180s")
			t.Logf("%s drained in %s", node, time.Since(start).Round(time.Second))
			checkSpread(t)
			kubectl(t, "uncordon", node)
		}
	})
}

// slowAfter is the services' REQUEST_TIMEOUT (the chart's 5 s) plus a margin for the Gateway and the
// client: an answer later than this hung.
const slowAfter = 5*time.Second + 3*time.Second

// recovery is how long after a restarted database is Ready its outage may still show.
const recovery = 30 * time.Second

// restartDatabase deletes the dev database's pod (app.kubernetes.io/name=name) and waits for its
// replacement to be Ready; outage covers the deletion to 30 s after Ready, and the load goes on 15 s
// past that, when every request must succeed again. It returns when the deletion began and when the new
// pod was Ready.
func restartDatabase(t *testing.T, name string, outage *load.Window) (deleted, ready time.Time) {
	pods := podNames(t, name)
	if len(pods) != 1 {
		t.Fatalf("%d %s pods, want the one of the chart's StatefulSet", len(pods), name)
	}
	pod := pods[0]
	state := func() string { // "<uid> <Ready status>"; empty while the pod does not exist
		out, _ := try(30*time.Second, "kubectl", "-n", namespace, "get", "pod", pod, "--ignore-not-found",
			"-o", `jsonpath={.metadata.uid} {.status.conditions[?(@.type=="Ready")].status}`)
		return strings.TrimSpace(out)
	}
	old, _, _ := strings.Cut(state(), " ")
	outage.Open()
	start := time.Now()
	t.Logf("deleting pod %s", pod)
	kubectl(t, "-n", namespace, "delete", "pod", pod, "--wait")
	// The StatefulSet makes a pod of the same name: Ready means a new uid with Ready True.
	eventually(t, 3*time.Minute, 500*time.Millisecond, "pod "+pod+" back and Ready after its deletion", func() error {
		if uid, ready, _ := strings.Cut(state(), " "); uid == "" || uid == old || ready != "True" {
			return fmt.Errorf("uid %q (was %q), Ready %q", uid, old, ready)
		}
		return nil
	})
	ready = time.Now()
	outage.CloseAt(ready.Add(recovery))
	t.Logf("%s: deleted and Ready again in %s; failures tolerated until %s after that", name, ready.Sub(start).Round(time.Second), recovery)
	time.Sleep(recovery)
	return start, ready
}

// restartUnderLoad restarts the dev database name (restartDatabase) under load, allowing what outage
// allows inside the outage window, and says when clients saw it.
func restartUnderLoad(t *testing.T, gateway, name string, outage func(*load.Window) load.Degradation) *load.Report {
	t.Helper()
	w := &load.Window{}
	var deleted, ready time.Time
	rep := underLoad(t, load.Config{BaseURL: gateway, Expected: []load.Degradation{outage(w)}, SlowAfter: slowAfter},
		func(t *testing.T) { deleted, ready = restartDatabase(t, name, w) })
	logOutage(t, rep, deleted, ready)
	return rep
}

// logOutage says how long clients saw the outage, against the pod's deletion and its replacement's Ready.
func logOutage(t *testing.T, rep *load.Report, deleted, ready time.Time) {
	t.Helper()
	if rep.Tolerated() == 0 {
		t.Logf("outage: no request saw it")
		return
	}
	t.Logf("outage: %d requests answered 503 with Retry-After, sent from %s after the deletion; the last answered %s after the new pod was Ready",
		rep.Tolerated(), rep.FirstTolerated.Sub(deleted).Round(100*time.Millisecond), rep.LastTolerated.Sub(ready).Round(100*time.Millisecond))
}

// rotateKey rotates the signing key the way the README says, under load: a key with a greater name is
// added to the Secret; every auth replica publishes it, then signs with it JWT_KEYS_SIGN_DELAY later;
// a token of the old key still works after the switch; once the token lifetime has passed, the old key is
// removed. No request may fail at any point. The token lifetime is made short (1 m) and the keys are read
// every 5 s, so that the rotation takes minutes; kubelet's Secret sync and the sign delay keep the
// chart's defaults (1 m, 2 m).
func rotateKey(t *testing.T, gateway string) {
	const (
		ttl    = time.Minute
		leeway = 30 * time.Second // the clock skew verifiers allow past exp (libs/token)
	)
	// Every request of the test comes from this one host: the per-address login limit is raised so that the
	// test's own logins, next to the load's one a second, are never refused.
	upgrade(t, "--set", "auth.config.jwtTTL="+ttl.String(), "--set", "auth.signingKeys.reloadInterval=5s",
		"--set", "auth.config.loginLimitPerIP=100000")
	secret := release + "-auth-signing-keys"
	kids := secretKIDs(t, secret)
	if len(kids) != 1 {
		t.Fatalf("Secret %s holds keys %v, want the one the chart generated", secret, kids)
	}
	oldKID, newKID := kids[0], kids[0]+"-next" // a greater name, as the README asks
	email := fmt.Sprintf("rotation-%d@example.com", time.Now().UnixNano())
	login := func() (string, string) {
		tok, err := (&traffic.Client{Base: gateway}).Token(context.Background(), email, "rotation-secret-1")
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		return tok, kidOf(t, tok)
	}
	if _, kid := login(); kid != oldKID {
		t.Fatalf("a token before the rotation names %q, want %q", kid, oldKID)
	}

	underLoad(t, load.Config{BaseURL: gateway}, func(t *testing.T) {
		start := time.Now()
		patchSecret(t, secret, map[string]any{newKID + ".pem": base64.StdEncoding.EncodeToString(newKeyPEM(t))})
		t.Logf("added key %s to Secret %s", newKID, secret)
		// kubelet brings the Secret to each pod on its own sync (up to about a minute), and auth reads it every 5 s.
		waitFor(t, 3*time.Minute, "the JWKS through the Gateway lists "+newKID+" in 10 fetches in a row", inARow(10, func() bool {
			return slices.Contains(publishedKIDs(t, gateway), newKID)
		}))
		t.Logf("%s published by every auth replica %s after it was added", newKID, time.Since(start).Round(time.Second))

		// Until the sign delay has passed, tokens still name the old key; keep the last one.
		var lastOld string
		waitFor(t, 5*time.Minute, "a token signed with "+newKID, func() bool {
			tok, kid := login()
			if kid == oldKID {
				lastOld = tok
			}
			return kid == newKID
		})
		t.Logf("%s signs %s after it was added", newKID, time.Since(start).Round(time.Second))
		if lastOld == "" {
			t.Fatal("no token of the old key seen before the switch: the new key signed without the sign delay")
		}
		for _, r := range []struct{ method, path, body string }{
			{http.MethodGet, "/api/auth/me", ""},
			{http.MethodPost, "/api/movies", fmt.Sprintf(`{"name":"rotation %d","casts":["a"],"genres":["b"]}`, time.Now().UnixNano())},
		} {
			if status := request(t, r.method, gateway+r.path, lastOld, r.body); status != http.StatusOK {
				t.Errorf("a token of the old key after the switch: %s %s: %d, want 200", r.method, r.path, status)
			}
		}
		// Every replica signs with the new key before the old one's last tokens can run out.
		waitFor(t, 3*time.Minute, "10 tokens in a row signed with "+newKID, inARow(10, func() bool { _, kid := login(); return kid == newKID }))
		switched := time.Now()
		t.Logf("every auth replica signs with %s %s after it was added; waiting out the token lifetime (%s and %s leeway)",
			newKID, switched.Sub(start).Round(time.Second), ttl, leeway)
		time.Sleep(ttl + leeway + 10*time.Second)
		if status := request(t, http.MethodGet, gateway+"/api/auth/me", lastOld, ""); status != http.StatusUnauthorized {
			t.Errorf("the old key's last token after its lifetime: %d, want 401", status)
		}

		patchSecret(t, secret, map[string]any{oldKID + ".pem": nil})
		removed := time.Now()
		t.Logf("removed key %s from Secret %s", oldKID, secret)
		waitFor(t, 3*time.Minute, "the JWKS through the Gateway no longer lists "+oldKID+" in 10 fetches in a row", inARow(10, func() bool {
			kids := publishedKIDs(t, gateway)
			return !slices.Contains(kids, oldKID) && slices.Contains(kids, newKID)
		}))
		t.Logf("%s gone from every auth replica's JWKS %s after it was removed; whole rotation %s",
			oldKID, time.Since(removed).Round(time.Second), time.Since(start).Round(time.Second))
	})
}

// underLoad runs disrupt while load.Run sends traffic through cfg.BaseURL: 15 s of load before it, 15 s
// after it. It then fails the test for every request that was not answered as expected (or as one of
// cfg.Expected allows), and returns the report for the checks that follow.
func underLoad(t *testing.T, cfg load.Config, disrupt func(t *testing.T)) *load.Report {
	t.Helper()
	const settle = 15 * time.Second
	// The load's length is only known once the disruption is over: it runs until cancelled.
	cfg.Duration, cfg.Logf = 30*time.Minute, t.Logf
	ctx, cancel := context.WithCancel(context.Background())
	var (
		rep      *load.Report
		err      error
		finished = make(chan struct{})
	)
	go func() {
		defer close(finished)
		rep, err = load.Run(ctx, cfg)
	}()
	// Also when disrupt stops the test: the load (which logs through t) ends before the test does.
	defer func() { cancel(); <-finished }()
	time.Sleep(settle) // the load is steady before anything is disrupted
	start := time.Now()
	disrupt(t)
	t.Logf("disruption took %s", time.Since(start).Round(time.Second))
	time.Sleep(settle)
	cancel()
	<-finished
	if rep == nil {
		t.Fatalf("load: %v", err)
	}
	t.Logf("load: %s", rep)
	if n := rep.Failed(); n != 0 {
		for _, o := range rep.Failures {
			t.Logf("failed: %s", o)
		}
		t.Errorf("%d of %d requests failed during the disruption, want 0", n, rep.Sent())
	}
	return rep
}

// podNames lists the release's pods of one app.kubernetes.io/name.
func podNames(t *testing.T, name string) []string {
	t.Helper()
	return strings.Fields(kubectl(t, "-n", namespace, "get", "pods", "-l",
		"app.kubernetes.io/instance="+release+",app.kubernetes.io/name="+name, "-o", "jsonpath={.items[*].metadata.name}"))
}

// waitFor polls cond every 3 s (a login each time stays well under the per-address login limit, next to
// the load's one a second) until it holds, or fails the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	eventually(t, timeout, 3*time.Second, what, func() error {
		if cond() {
			return nil
		}
		return errors.New("not yet")
	})
}

// inARow holds once cond held n times in a row (calls with no wait between them: the Service spreads them
// over the replicas).
func inARow(n int, cond func() bool) func() bool {
	return func() bool {
		for range n {
			if !cond() {
				return false
			}
		}
		return true
	}
}

// secretKIDs lists the kids (file names without .pem) of the signing keys' Secret.
func secretKIDs(t *testing.T, secret string) []string {
	t.Helper()
	var data map[string]string
	if err := json.Unmarshal([]byte(kubectl(t, "-n", namespace, "get", "secret", secret, "-o", "jsonpath={.data}")), &data); err != nil {
		t.Fatalf("Secret %s: %v", secret, err)
	}
	var kids []string
	for k := range data {
		if kid, ok := strings.CutSuffix(k, ".pem"); ok {
			kids = append(kids, kid)
		}
	}
	slices.Sort(kids)
	return kids
}

// patchSecret merges data into the Secret's data (a nil value removes that key).
func patchSecret(t *testing.T, secret string, data map[string]any) {
	t.Helper()
	patch, err := json.Marshal(map[string]any{"data": data})
	if err != nil {
		t.Fatal(err)
	}
	kubectl(t, "-n", namespace, "patch", "secret", secret, "--type", "merge", "-p", string(patch))
}

func newKeyPEM(t *testing.T) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

// kidOf reads the kid from a JWT's header (the signature is the services' business).
func kidOf(t *testing.T, token string) string {
	t.Helper()
	head, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	var h struct{ Kid string }
	if err == nil {
		err = json.Unmarshal(raw, &h)
	}
	if err != nil {
		t.Fatalf("token header %q: %v", head, err)
	}
	return h.Kid
}

// publishedKIDs fetches the JWKS through the Gateway (one auth replica answers).
func publishedKIDs(t *testing.T, gateway string) []string {
	t.Helper()
	resp, err := http.Get(gateway + "/.well-known/jwks.json")
	if err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	var set struct{ Keys []struct{ Kid string } }
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("JWKS: %d, %v", resp.StatusCode, err)
	}
	kids := make([]string, len(set.Keys))
	for i, k := range set.Keys {
		kids[i] = k.Kid
	}
	return kids
}

// request sends one request with a bearer token and returns the status.
func request(t *testing.T, method, url, token, body string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}
