// Package app is the auth service: sign-up, login, logout, the caller's
// account and the JWKS of its signing keys.
package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"syscall"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/moviebag/moviebag/libs/config"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/server"
	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/libs/token"
	"github.com/moviebag/moviebag/services/auth/internal/keys"
	"github.com/moviebag/moviebag/services/auth/internal/limit"
	"github.com/moviebag/moviebag/services/auth/internal/users"
)

// Service is the name on metrics and logs.
const Service = "auth"

// Run runs the auth service until ctx is done or SIGINT/SIGTERM arrives.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	cfg, err := config.Load[Config](getenv, defaults)
	if err != nil {
		return err
	}
	if cfg.BcryptCost < bcrypt.MinCost || cfg.BcryptCost > bcrypt.MaxCost {
		return fmt.Errorf("BCRYPT_COST %d: want %d to %d", cfg.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	h, err := newHasher(cfg.BcryptCost)
	if err != nil {
		return err
	}
	logger, err := server.NewLogger(stdout, cfg.LogLevel, Service)
	if err != nil {
		return err
	}
	trusted, err := server.ParseCIDRs(cfg.TrustedProxies)
	if err != nil {
		return err
	}

	keySet, err := loadKeys(ctx, cfg, logger)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	m := metrics.New(reg, Service)
	m.InitLoginAttempts()
	// Probes see a live process while it waits for its dependencies.
	admin := server.NewAdmin(reg)
	if err := admin.Start(cfg.AdminAddr); err != nil {
		return err
	}
	defer func() { _ = admin.Shutdown(context.WithoutCancel(ctx)) }()

	conns, err := store.Open(cfg.Stores, m)
	if err != nil {
		return err
	}
	defer func() { _ = conns.Close(ctx) }()
	db, rdb, errs := conns.DB, conns.Redis, conns.Errors

	userStore := users.New(db, errs)
	if err := store.Retry(ctx, logger, "create users indexes", userStore.EnsureIndexes); err != nil {
		return err
	}
	denylist := token.NewDenylist(rdb, cfg.RedisKeyPrefix, errs)
	defer denylist.Start(ctx, token.FollowOptions{Logger: logger})()
	verifier := token.NewVerifier(keySet.Keyfunc, token.Policy{
		Issuer: cfg.Issuer, Audience: cfg.Audience, Algorithms: []string{"RS256"},
	}, denylist)

	app := NewServer(logger, cfg, m, Deps{
		Users:    userStore,
		Keys:     keySet,
		Verifier: verifier,
		Denylist: denylist,
		IPLimit:  limit.New(rdb, errs, cfg.RedisKeyPrefix+"login:ip:", cfg.LoginLimitPerIP, cfg.LoginLimitWindow),
		EmailLimit: limit.New(rdb, errs, cfg.RedisKeyPrefix+"login:email:", cfg.LoginLimitPerEmail,
			cfg.LoginLimitEmailWindow),
		Trusted: trusted,
		Hasher:  h,
	})
	return server.Serve(ctx, logger, cfg.Config, app, admin)
}

// keySource is the signing key set, fixed or reloaded from a directory.
type keySource interface {
	Signer
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
	rot, err := keys.LoadRotating(cfg.KeysDir)
	if err != nil {
		return nil, err
	}
	logger.Info("signing keys loaded", "dir", cfg.KeysDir, "signer", rot.SignerID(), "reload_interval", cfg.KeysReloadInterval.String())
	if cfg.KeysReloadInterval > 0 {
		go rot.Watch(ctx, cfg.KeysReloadInterval, logger)
	}
	return rot, nil
}
