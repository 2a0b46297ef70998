package app_test

import (
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/testkit"
)

// slowCost is the bcrypt cost at which one hash takes about want in this
// test binary (the race detector makes bcrypt many times slower).
func slowCost(t *testing.T, want time.Duration) int {
	t.Helper()
	start := time.Now()
	if _, err := bcrypt.GenerateFromPassword([]byte("secret123"), bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	cost := bcrypt.MinCost
	for took := time.Since(start); took*2 <= want && cost < bcrypt.DefaultCost+2; took *= 2 {
		cost++ // each step doubles the work
	}
	return cost
}

// A burst of logins beyond what bcrypt can do in time is shed at once: the
// logins the hasher cannot finish within BCRYPT_MAX_LATENCY get a 503 with
// Retry-After, before the deadline and typically quicker than an admitted
// login, the admitted ones all succeed, and no login waits until its deadline (before the hasher shed
// work, every login queued, and those at the back got a 503 after the whole
// REQUEST_TIMEOUT).
func TestLoginBurstIsShedAtOnce(t *testing.T) {
	const timeout = 3 * time.Second
	s := startAuth(t, map[string]string{
		"BCRYPT_COST": strconv.Itoa(slowCost(t, 250*time.Millisecond)), "BCRYPT_MAX_LATENCY": "500ms",
		"REQUEST_TIMEOUT": timeout.String(), "LOGIN_LIMIT_PER_EMAIL": "1000",
	})
	signup(t, s, creds)

	// One hash's time, as this machine does it now: the middle of three lone logins.
	var lone []time.Duration
	for range 3 {
		start := time.Now()
		login(t, s, creds)
		lone = append(lone, time.Since(start))
	}
	slices.Sort(lone)
	oneHash := lone[1]

	// More than the hasher can do within the timeout: half as much again.
	burst := runtime.GOMAXPROCS(0) * int(3*timeout/oneHash/2+1)
	type answer struct {
		r    testkit.Response
		took time.Duration
		err  error
	}
	answers := make([]answer, burst)
	var wg sync.WaitGroup
	for i := range burst {
		wg.Go(func() {
			start := time.Now()
			r, err := testkit.TryAPI("POST", s.URL+"/api/auth/login", creds)
			answers[i] = answer{r, time.Since(start), err}
		})
	}
	wg.Wait()

	var admitted, refused int
	var refusedIn, admittedIn []time.Duration
	for _, a := range answers {
		switch {
		case a.err != nil:
			t.Fatalf("a login of the burst: %v", a.err)
		case a.took >= timeout:
			t.Errorf("a login answered %d after %v: it waited until its deadline (%v)", a.r.Status, a.took, timeout)
		case a.r.Status == 200:
			admitted++
			admittedIn = append(admittedIn, a.took)
		case a.r.Status == 503:
			refused++
			testkit.Envelope(t, a.r, apierr.ServiceUnavailableError)
			if secs, err := strconv.Atoi(a.r.Header.Get("Retry-After")); err != nil || secs < 1 {
				t.Errorf("refused login: Retry-After %q, want whole seconds", a.r.Header.Get("Retry-After"))
			}
			refusedIn = append(refusedIn, a.took)
		default:
			t.Errorf("a login of the burst: %d %s, want 200 or a quick 503", a.r.Status, a.r.Body)
		}
	}
	t.Logf("one hash %v; a burst of %d logins: %d admitted, %d refused", oneHash, burst, admitted, refused)
	if admitted < runtime.GOMAXPROCS(0) || refused == 0 {
		t.Fatalf("%d admitted and %d refused: want at least one per CPU admitted and the rest of the burst refused", admitted, refused)
	}
	// Typical answers, not the slowest: on a busy machine any one answer can
	// be late. While every CPU hashes, each wake-up of a request waits for
	// the scheduler (the test's clients run in this process too), so a
	// refusal is compared with the admitted logins, which also waited their
	// turn to hash.
	slices.Sort(refusedIn)
	slices.Sort(admittedIn)
	refusedMedian, admittedMedian := refusedIn[len(refusedIn)/2], admittedIn[len(admittedIn)/2]
	t.Logf("median answer: refused %v, admitted %v", refusedMedian, admittedMedian)
	if refusedMedian >= admittedMedian {
		t.Errorf("refused logins took %v (median), admitted ones %v: a refusal should cost less than a login", refusedMedian, admittedMedian)
	}
	samples := testkit.Scrape(t, s.AdminURL+"/metrics")
	if got := samples[testkit.Series(metrics.PasswordHashesName, "service", "auth", "admission", "refused")]; int(got) != refused {
		t.Errorf("%s refused = %v, want %d", metrics.PasswordHashesName, got, refused)
	}
}
