package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/services/auth/internal/account"
)

// Metrics are the auth service's own metrics.
type Metrics struct {
	loginAttempts  *prometheus.CounterVec
	tokensRevoked  prometheus.Counter
	passwordHashes *prometheus.CounterVec
	sessionEnds    *prometheus.CounterVec
	refreshes      *prometheus.CounterVec
	deletions      prometheus.Counter
}

// NewMetrics registers the auth service's own metrics on reg, with the
// labels of shared; every login result starts at zero, so that the first
// failure is an increase alerts can see.
func NewMetrics(reg prometheus.Registerer, shared *metrics.Metrics) *Metrics {
	m := &Metrics{
		loginAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metrics.LoginAttemptsName, Help: "Login attempts by result: success, invalid_credentials, rate_limited, error.",
			ConstLabels: shared.ConstLabels(),
		}, []string{"result"}),
		tokensRevoked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metrics.TokensRevokedName, Help: "Tokens put on the denylist by a logout.", ConstLabels: shared.ConstLabels(),
		}),
		passwordHashes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metrics.PasswordHashesName, ConstLabels: shared.ConstLabels(),
			Help: "bcrypt work of sign-ups and logins by admission: admitted, or refused at once (503) because it could not be done within BCRYPT_MAX_LATENCY.",
		}, []string{"admission"}),
		sessionEnds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metrics.SessionsEndedName, ConstLabels: shared.ConstLabels(),
			Help: "Requests that ended sessions of a user, by reason: logout (its own session), logout_all (every session), password_change (every other session), password_reset and account_deleted (every session), refresh_reuse (the session of a spent refresh token presented again).",
		}, []string{"reason"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metrics.RefreshesName, ConstLabels: shared.ConstLabels(),
			Help: "Session refreshes by result: success, invalid (malformed, unknown, expired or ended refresh token), reused (a spent refresh token presented again: its session ends), error.",
		}, []string{"result"}),
		deletions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metrics.AccountsDeletedName, Help: "Accounts deleted by their users.", ConstLabels: shared.ConstLabels(),
		}),
	}
	reg.MustRegister(m.loginAttempts, m.tokensRevoked, m.passwordHashes, m.sessionEnds, m.refreshes, m.deletions)
	for _, r := range account.RefreshResults() {
		m.refreshes.WithLabelValues(string(r))
	}
	for _, r := range account.SessionEnds() {
		m.sessionEnds.WithLabelValues(string(r))
	}
	for _, r := range account.LoginResults() {
		m.loginAttempts.WithLabelValues(string(r))
	}
	m.passwordHashes.WithLabelValues("admitted")
	m.passwordHashes.WithLabelValues("refused")
	return m
}

func (m *Metrics) loginAttempt(r account.LoginResult) {
	m.loginAttempts.WithLabelValues(string(r)).Inc()
}

func (m *Metrics) tokenRevoked() { m.tokensRevoked.Inc() }

func (m *Metrics) refreshed(r account.RefreshResult) { m.refreshes.WithLabelValues(string(r)).Inc() }

func (m *Metrics) accountDeleted() { m.deletions.Inc() }

func (m *Metrics) sessionsEnded(r account.SessionEnd) { m.sessionEnds.WithLabelValues(string(r)).Inc() }

// passwordHash counts one admission decision of the Hasher.
func (m *Metrics) passwordHash(admitted bool) {
	if admitted {
		m.passwordHashes.WithLabelValues("admitted").Inc()
		return
	}
	m.passwordHashes.WithLabelValues("refused").Inc()
}
