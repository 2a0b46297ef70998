package app_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/testkit"
)

// Every series that dashboards and alerts read exists from the first scrape,
// at zero: rate() and absent() see it before the first failure.
func TestMetricsStartAtZero(t *testing.T) {
	s := startAuth(t, nil)
	testkit.StartedAtZero(t, testkit.Scrape(t, s.AdminURL+"/metrics"), "auth",
		map[metrics.Dependency][]metrics.Operation{
			metrics.MongoDB: {metrics.Insert, metrics.Find},
			metrics.Redis:   {metrics.Eval, metrics.Delete, metrics.Set, metrics.Exists, metrics.Publish},
		},
		testkit.Series(metrics.LoginAttemptsName, "service", "auth", "result", "success"),
		testkit.Series(metrics.LoginAttemptsName, "service", "auth", "result", "invalid_credentials"),
		testkit.Series(metrics.LoginAttemptsName, "service", "auth", "result", "rate_limited"),
		testkit.Series(metrics.LoginAttemptsName, "service", "auth", "result", "error"),
		testkit.Series(metrics.TokensRevokedName, "service", "auth"),
		testkit.Series(metrics.PasswordHashesName, "service", "auth", "admission", "admitted"),
		testkit.Series(metrics.PasswordHashesName, "service", "auth", "admission", "refused"),
		// The denylist reads user cutoffs when its mirror is not in sync.
		testkit.Series(metrics.DependencyErrorsName, "service", "auth", "dependency", "redis", "operation", "get"),
		testkit.Series(metrics.SessionsEndedName, "service", "auth", "reason", "logout_all"),
		testkit.Series(metrics.SessionsEndedName, "service", "auth", "reason", "password_change"),
		testkit.Series(metrics.DependencyErrorsName, "service", "auth", "dependency", "mongodb", "operation", "update"),
	)
}

// A request the server refuses before any route or middleware sees it is
// still answered with an envelope and counted in both http_requests_total
// (route "rejected") and moviebag_errors_total.
func TestRefusedRequestsCounted(t *testing.T) {
	s := startAuth(t, map[string]string{"READ_TIMEOUT": "1s"})
	tests := []struct {
		name    string
		request string
		method  string
		code    apierr.Code
	}{
		{"malformed request line", "GET\r\n\r\n", "GET", apierr.BadRequestError},
		{"headers too large", "GET /api/auth/me HTTP/1.1\r\nHost: auth\r\nX-Junk: " + strings.Repeat("j", 16<<10) + "\r\n\r\n",
			"GET", apierr.RequestHeadersTooLargeError},
		{"unknown method", "BREW /api/auth/me HTTP/1.1\r\nHost: auth\r\n\r\n", metrics.OtherMethod, apierr.MethodNotAllowedError},
		// Headers never finished within READ_TIMEOUT.
		{"read timeout", "GET /api/auth/me HTTP/1.1\r\nHost: auth\r\n", "GET", apierr.RequestTimeoutError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.Envelope(t, sendRaw(t, s.URL, tt.request), tt.code)
			status := strconv.Itoa(tt.code.Status())
			got := testkit.Scrape(t, s.AdminURL+"/metrics")
			for _, series := range []string{
				testkit.Series(metrics.RequestsName, "service", "auth", "method", tt.method, "route", metrics.RejectedRoute, "status", status),
				testkit.Series(metrics.ErrorsName, "service", "auth", "code", string(tt.code), "status", status),
			} {
				if got[series] != 1 {
					t.Errorf("%s = %v, want 1", series, got[series])
				}
			}
		})
	}
}

// sendRaw writes request to the server at baseURL as it is, bytes a real
// HTTP client would refuse to send, and reads the answer.
func sendRaw(t *testing.T, baseURL, request string) testkit.Response {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(baseURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to %.40q: %v", request, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return testkit.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}
