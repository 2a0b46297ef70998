// The report: each request's outcome, and the counts of a run.

package load

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Outcome is one answered (or unanswered) request.
type Outcome struct {
	Kind        Kind
	Method, URL string
	At          time.Time     // when it was sent
	Latency     time.Duration // until the answer (or the error)
	Status      int           // 0: no answer
	Code        string        // the error envelope's code, if any
	RetryAfter  string        // the Retry-After header, if any
	RequestID   string        // the X-Request-ID the run sent (services log it)
	Err         string        // the transport error, or what was wrong with the answer
}

// End is when the answer (or the error) came.
func (o Outcome) End() time.Time { return o.At.Add(o.Latency) }

// Cause names what went wrong in a word or two, for counting alike failures together: "503
// ServiceUnavailableError", "reset", "refused", "timeout", "eof", "slow", ...
func (o Outcome) Cause() string {
	if o.Status == 0 {
		e := strings.ToLower(o.Err)
		switch {
		case strings.Contains(e, "connection reset"):
			return "reset"
		case strings.Contains(e, "connection refused"):
			return "refused"
		case strings.Contains(e, "timeout"), strings.Contains(e, "deadline exceeded"):
			return "timeout"
		case strings.Contains(e, "eof"):
			return "eof"
		}
		return "error"
	}
	if o.Code != "" {
		return fmt.Sprintf("%d %s", o.Status, o.Code)
	}
	if o.Err != "" && o.Err != http.StatusText(o.Status) {
		return fmt.Sprintf("%d %s", o.Status, o.Err)
	}
	return strconv.Itoa(o.Status)
}

func (o Outcome) String() string {
	s := fmt.Sprintf("%s %s %s %s: %s after %s", o.At.UTC().Format("15:04:05.000"), o.Kind, o.Method, o.path(), o.Cause(),
		o.Latency.Round(time.Millisecond))
	if o.RetryAfter != "" {
		s += ", Retry-After " + o.RetryAfter
	}
	if o.Status == 0 && o.Err != "" {
		s += " (" + o.Err + ")"
	}
	if o.RequestID != "" {
		s += ", request " + o.RequestID
	}
	return s
}

func (o Outcome) path() string {
	if u, err := url.Parse(o.URL); err == nil {
		return u.Path
	}
	return o.URL
}

// Counts of one kind of request.
type Counts struct {
	Sent, OK, Tolerated, Failed int
}

// Report of a run.
type Report struct {
	Start    time.Time
	Duration time.Duration
	Rate     int
	Kinds    map[Kind]*Counts
	// Failures lists the first MaxKeptFailures failures, in the order their answers came.
	Failures []Outcome
	// Causes counts every failure by its Cause.
	Causes map[string]int
	// ToleratedCauses counts the tolerated outcomes by their Cause.
	ToleratedCauses map[string]int
	// FirstTolerated and LastTolerated are when the first tolerated request was sent and when the last
	// tolerated answer came (zero: none): how long clients saw the degradation.
	FirstTolerated, LastTolerated time.Time
	MaxLatency                    time.Duration
	// Revoked are the tokens logged out during the run (logout answered 204): every later request with
	// one of them must be refused with 401.
	Revoked []string
	// Movies are the ids of the movies the run created (its seeds included) and did not delete: they must
	// all still be there.
	Movies []string
}

// MaxKeptFailures bounds Report.Failures (all failures are counted).
const MaxKeptFailures = 1000

func (r *Report) total(f func(*Counts) int) int {
	n := 0
	for _, c := range r.Kinds {
		n += f(c)
	}
	return n
}

// Sent is the number of requests sent.
func (r *Report) Sent() int { return r.total(func(c *Counts) int { return c.Sent }) }

// Failed is the number of failed requests: unexpected answers, or none, that no Degradation allowed.
func (r *Report) Failed() int { return r.total(func(c *Counts) int { return c.Failed }) }

// Tolerated is the number of requests that failed as a Degradation allowed.
func (r *Report) Tolerated() int { return r.total(func(c *Counts) int { return c.Tolerated }) }

// String is a one-line summary: totals, per kind ok/sent, failures and tolerated outcomes by cause.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests in %s at %d/s: %d ok, %d tolerated, %d failed; max latency %s;",
		r.Sent(), r.Duration.Round(time.Millisecond), r.Rate, r.Sent()-r.Failed()-r.Tolerated(), r.Tolerated(), r.Failed(),
		r.MaxLatency.Round(time.Millisecond))
	for _, k := range Kinds {
		if c := r.Kinds[k]; c != nil {
			fmt.Fprintf(&b, " %s %d/%d", k, c.OK, c.Sent)
		}
	}
	b.WriteString(" ok")
	if len(r.Causes) > 0 {
		b.WriteString("; failed: " + causes(r.Causes))
	}
	if len(r.ToleratedCauses) > 0 {
		b.WriteString("; tolerated: " + causes(r.ToleratedCauses))
	}
	return b.String()
}

func causes(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d× %s", m[k], k)
	}
	return strings.Join(parts, ", ")
}
