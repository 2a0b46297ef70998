package app

import (
	"fmt"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/moviebag/moviebag/libs/service"
)

// Config is the auth service's configuration; README.md lists every variable.
type Config struct {
	service.Config

	KeysDir string `env:"JWT_KEYS_DIR"`
	// KeysReloadInterval is how often JWT_KEYS_DIR is read again (0: never).
	KeysReloadInterval time.Duration `env:"JWT_KEYS_RELOAD_INTERVAL" envDefault:"30s"`
	// KeysSignDelay is how long a key added to JWT_KEYS_DIR is published
	// before it signs: longer than the time between two replicas seeing the
	// same Secret update, so that no token names a key a replica does not
	// publish yet.
	KeysSignDelay time.Duration `env:"JWT_KEYS_SIGN_DELAY" envDefault:"2m"`
	TokenTTL      time.Duration `env:"JWT_TTL" envDefault:"15m"`
	// RefreshIdleTTL ends a session not refreshed for that long;
	// RefreshMaxTTL ends every session that long after its login.
	RefreshIdleTTL time.Duration `env:"REFRESH_IDLE_TTL" envDefault:"168h"`
	RefreshMaxTTL  time.Duration `env:"REFRESH_MAX_TTL" envDefault:"720h"`
	BcryptCost     int           `env:"BCRYPT_COST" envDefault:"10"`
	// BcryptMaxLatency is the longest a sign-up or login may expect to wait
	// for a CPU and hash its password; one that would take longer is refused
	// at once with a 503 and Retry-After (see Hasher).
	BcryptMaxLatency time.Duration `env:"BCRYPT_MAX_LATENCY" envDefault:"750ms"`

	LoginLimitPerIP       int           `env:"LOGIN_LIMIT_PER_IP" envDefault:"100"`
	LoginLimitWindow      time.Duration `env:"LOGIN_LIMIT_WINDOW" envDefault:"1m"`
	LoginLimitPerEmail    int           `env:"LOGIN_LIMIT_PER_EMAIL" envDefault:"10"`
	LoginLimitEmailWindow time.Duration `env:"LOGIN_LIMIT_EMAIL_WINDOW" envDefault:"15m"`

	// SignupLimitPerIP bounds sign-ups per client address per
	// SignupLimitWindow: each costs a bcrypt hash.
	SignupLimitPerIP  int           `env:"SIGNUP_LIMIT_PER_IP" envDefault:"20"`
	SignupLimitWindow time.Duration `env:"SIGNUP_LIMIT_WINDOW" envDefault:"1m"`

	// Reset is the configuration of password resets and their mail.
	Reset ResetConfig
}

// defaults are the auth service's own ports.
var defaults = map[string]string{"HTTP_ADDR": ":8081", "ADMIN_ADDR": ":9091"}

// Validate checks what the variables' types cannot say.
func (c Config) Validate() error {
	if c.BcryptCost < bcrypt.MinCost || c.BcryptCost > bcrypt.MaxCost {
		return fmt.Errorf("BCRYPT_COST %d: want %d to %d", c.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if c.BcryptMaxLatency <= 0 {
		return fmt.Errorf("BCRYPT_MAX_LATENCY %s: want more than 0", c.BcryptMaxLatency)
	}
	if c.TokenTTL <= 0 {
		return fmt.Errorf("JWT_TTL %s: want more than 0", c.TokenTTL)
	}
	if c.RefreshIdleTTL <= 0 || c.RefreshMaxTTL < c.RefreshIdleTTL {
		return fmt.Errorf("REFRESH_IDLE_TTL %s and REFRESH_MAX_TTL %s: want 0 < idle <= max", c.RefreshIdleTTL, c.RefreshMaxTTL)
	}
	if err := c.Reset.Validate(); err != nil {
		return err
	}
	if c.KeysSignDelay < 0 {
		return fmt.Errorf("JWT_KEYS_SIGN_DELAY %s: want 0 or more", c.KeysSignDelay)
	}
	return nil
}
