// Package app is the auth service: sign-up, login, logout, the caller's
// account and the JWKS of its signing keys.
package app

import (
	"context"
	"io"
	"log/slog"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/moviebag/moviebag/libs/server"
	"github.com/moviebag/moviebag/libs/service"
	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/libs/userevents"
	"github.com/moviebag/moviebag/services/auth/internal/account"
	"github.com/moviebag/moviebag/services/auth/internal/email"
	"github.com/moviebag/moviebag/services/auth/internal/keys"
	"github.com/moviebag/moviebag/services/auth/internal/limit"
	"github.com/moviebag/moviebag/services/auth/internal/password"
	"github.com/moviebag/moviebag/services/auth/internal/sessions"
	"github.com/moviebag/moviebag/services/auth/internal/users"
)

// Run runs the auth service until ctx is done or a signal comes; see service.Run.
func Run(ctx context.Context, getenv func(string) string, stdout io.Writer, ready func(server.Addrs)) error {
	return run(ctx, getenv, stdout, ready, bcrypt.CompareHashAndPassword)
}

// run is Run with the password hasher's bcrypt comparison given, so tests
// can count the comparisons a login makes.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer, ready func(server.Addrs), compare func(hash, password []byte) error) error {
	return service.Run(ctx, getenv, stdout, ready, service.Spec[Config]{
		Name: Service, Defaults: defaults,
		Build: func(ctx context.Context, cfg Config, p service.Parts) (*fiber.App, error) {
			return build(ctx, cfg, p, compare)
		},
	})
}

// build makes what is auth's own: its metrics, the users collection, the
// signing keys, the password hasher and the login limits.
func build(ctx context.Context, cfg Config, p service.Parts, compare func(hash, password []byte) error) (*fiber.App, error) {
	m := NewMetrics(p.Registry, p.Metrics)
	h, err := password.New(cfg.BcryptCost, cfg.BcryptMaxLatency, compare, m.passwordHash)
	if err != nil {
		return nil, err
	}
	keySet, err := loadKeys(ctx, cfg, p.Logger)
	if err != nil {
		return nil, err
	}
	userStore := users.New(p.DB, p.Failures)
	if err := store.Retry(ctx, p.Logger, "create users indexes", userStore.EnsureIndexes); err != nil {
		return nil, err
	}
	if err := store.Retry(ctx, p.Logger, "store emails in one form", func(ctx context.Context) error {
		return userStore.Canonicalize(ctx, p.Logger, email.Canonical)
	}); err != nil {
		return nil, err
	}
	prefix := cfg.Store.RedisKeyPrefix
	issuer := account.NewIssuer(keySet, cfg.Token, cfg.TokenTTL)
	// Every use case that ends sessions ends them here: refresh tokens and
	// access tokens at once.
	sess := &account.Sessions{
		Store:    sessions.New(p.Redis, p.Failures, prefix, cfg.RefreshIdleTTL, cfg.RefreshMaxTTL),
		Revoker:  p.Denylist,
		TokenTTL: cfg.TokenTTL,
		Record:   m.sessionsEnded,
	}
	login := &account.Login{
		Users:       userStore,
		Hasher:      h,
		Issuer:      issuer,
		Sessions:    sess,
		ClientLimit: limit.New(p.Redis, p.Failures, prefix+"login:ip:", cfg.LoginLimitPerIP, cfg.LoginLimitWindow),
		EmailLimit:  limit.New(p.Redis, p.Failures, prefix+"login:email:", cfg.LoginLimitPerEmail, cfg.LoginLimitEmailWindow),
		Record:      m.loginAttempt,
	}
	signup := &account.Signup{
		Users:       userStore,
		Hasher:      h,
		ClientLimit: limit.New(p.Redis, p.Failures, prefix+"signup:ip:", cfg.SignupLimitPerIP, cfg.SignupLimitWindow),
	}
	forgot, reset, err := buildReset(cfg, p, userStore, h, sess)
	if err != nil {
		return nil, err
	}
	return NewServer(p.Logger, cfg, p.Metrics, Deps{
		Accounts: account.Accounts{
			Signup: signup, Login: login,
			ForgotPassword: forgot, ResetPassword: reset,
			Logout:    &account.Logout{Sessions: sess, Record: m.tokenRevoked},
			LogoutAll: &account.LogoutAll{Sessions: sess},
			ChangePassword: &account.ChangePassword{
				Users: userStore, Hasher: h, EmailLimit: login.EmailLimit, Sessions: sess,
			},
			Refresh: &account.Refresh{Sessions: sess, Issuer: issuer, Denylist: p.Denylist, Record: m.refreshed},
			DeleteAccount: &account.DeleteAccount{
				Users: userStore, Hasher: h, EmailLimit: login.EmailLimit, Sessions: sess,
				Events: userevents.NewPublisher(userevents.Stream(p.Redis, p.Failures, prefix)),
				Record: m.accountDeleted,
			},
		},
		Users:    userStore,
		Keys:     keySet,
		Verifier: p.Verifier(keySet.Keyfunc, []string{"RS256"}),
		Clients:  p.Clients,
	}), nil
}

// keySource is the signing key set, fixed or reloaded from a directory.
type keySource interface {
	account.Signer
	KeySet
	SignerID() string
	Keyfunc(ctx context.Context) jwt.Keyfunc
}

// loadKeys reads JWT_KEYS_DIR and keeps reading it, or generates a key when
// there is no directory.
func loadKeys(ctx context.Context, cfg Config, logger *slog.Logger) (keySource, error) {
	if cfg.KeysDir == "" {
		set, err := keys.Generate()
		if err != nil {
			return nil, err
		}
		logger.Warn("JWT_KEYS_DIR is not set: signing with a key generated at start; tokens die with this process", "kid", set.SignerID())
		return set, nil
	}
	rot, err := keys.LoadRotating(cfg.KeysDir, cfg.KeysSignDelay)
	if err != nil {
		return nil, err
	}
	logger.Info("signing keys loaded", "dir", cfg.KeysDir, "signer", rot.SignerID(),
		"reload_interval", cfg.KeysReloadInterval.String(), "sign_delay", cfg.KeysSignDelay.String())
	if cfg.KeysReloadInterval > 0 {
		go rot.Watch(ctx, cfg.KeysReloadInterval, logger)
	}
	return rot, nil
}
