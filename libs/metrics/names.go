package metrics

// Names of every metric a moviebag service exports. This package registers
// the shared ones; each service registers its own, named from here, so that
// dashboards, alerts and their checks (deploy/observability) read one list.
const (
	RequestsName         = "http_requests_total"
	DurationName         = "http_request_duration_seconds"
	InFlightName         = "http_requests_in_flight"
	ErrorsName           = "moviebag_errors_total"
	DependencyErrorsName = "moviebag_dependency_errors_total"
	BuildInfoName        = "moviebag_build_info"

	// The auth service's own.
	LoginAttemptsName = "moviebag_login_attempts_total"
	TokensRevokedName = "moviebag_tokens_revoked_total"
	// PasswordHashesName counts bcrypt work by admission: admitted, or
	// refused at once because it could not be done in time.
	PasswordHashesName = "moviebag_password_hashes_total"
	// SessionsEndedName counts requests that ended sessions of a user, by
	// reason (logout, logout_all, password_change, password_reset,
	// refresh_reuse, account_deleted).
	SessionsEndedName = "moviebag_sessions_ended_total"
	// PasswordResetsName counts password resets by stage: asked (a forgot
	// request accepted), completed, invalid_token.
	PasswordResetsName = "moviebag_password_resets_total"
	// MailSentName and MailFailedName count the deliveries of mails to the
	// mail server by kind, the failures also by reason (temporary: retried;
	// permanent and expired: dropped); MailPendingName is how many mails
	// wait in the outbox.
	MailSentName    = "moviebag_mail_sent_total"
	MailFailedName  = "moviebag_mail_failed_total"
	MailPendingName = "moviebag_mail_pending"

	// RefreshesName counts refreshes of sessions by result: success,
	// invalid (malformed, unknown, expired or ended), reused (a spent
	// refresh token presented again: its session ends), error.
	RefreshesName = "moviebag_token_refreshes_total"
	// AccountsDeletedName counts accounts deleted by their users.
	AccountsDeletedName = "moviebag_accounts_deleted_total"

	// The movies service's own.
	JWKSRefreshesName = "moviebag_jwks_refresh_total"
	// UserEventsName counts the deliveries of account events (user.deleted)
	// by outcome: done, retry, failed.
	UserEventsName = "moviebag_user_events_total"
	// UserMoviesDeletedName counts movies deleted with their user's account.
	UserMoviesDeletedName = "moviebag_user_movies_deleted_total"
)

// Type is a Prometheus metric type.
type Type string

// The metric types moviebag uses.
const (
	Counter   Type = "counter"
	Gauge     Type = "gauge"
	Histogram Type = "histogram"
)

// Exported returns every metric name a moviebag service exports, with its
// type (a new map each call). The Go and process collectors' go_* and
// process_* metrics are not listed.
func Exported() map[string]Type {
	return map[string]Type{
		RequestsName:          Counter,
		DurationName:          Histogram,
		InFlightName:          Gauge,
		ErrorsName:            Counter,
		DependencyErrorsName:  Counter,
		BuildInfoName:         Gauge,
		LoginAttemptsName:     Counter,
		TokensRevokedName:     Counter,
		PasswordHashesName:    Counter,
		SessionsEndedName:     Counter,
		PasswordResetsName:    Counter,
		MailSentName:          Counter,
		MailFailedName:        Counter,
		MailPendingName:       Gauge,
		RefreshesName:         Counter,
		AccountsDeletedName:   Counter,
		JWKSRefreshesName:     Counter,
		UserEventsName:        Counter,
		UserMoviesDeletedName: Counter,
	}
}
