package app

import (
	"fmt"
	"time"

	"github.com/moviebag/moviebag/libs/service"
)

// Config is the movies service's configuration; README.md lists every
// variable.
type Config struct {
	service.Config

	JWKSURL                string        `env:"JWKS_URL" envDefault:"http://127.0.0.1:8081/.well-known/jwks.json"`
	JWKSRefreshInterval    time.Duration `env:"JWKS_REFRESH_INTERVAL" envDefault:"5m"`
	JWKSUnknownKIDInterval time.Duration `env:"JWKS_UNKNOWN_KID_INTERVAL" envDefault:"10s"`
	Algorithms             []string      `env:"JWT_ALGORITHMS" envDefault:"RS256"`
}

// defaults are the movies service's own ports.
var defaults = map[string]string{"HTTP_ADDR": ":8082", "ADMIN_ADDR": ":9092"}

// asymmetric are the algorithms JWT_ALGORITHMS may name: a verifier holding
// only public keys must never accept "none" or an HMAC.
var asymmetric = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true, "PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true, "EdDSA": true,
}

// Validate checks what the variables' types cannot say.
func (c Config) Validate() error {
	if len(c.Algorithms) == 0 {
		return fmt.Errorf("JWT_ALGORITHMS is empty")
	}
	for _, a := range c.Algorithms {
		if !asymmetric[a] {
			return fmt.Errorf("JWT_ALGORITHMS: %q is not an asymmetric JWS algorithm", a)
		}
	}
	if c.JWKSRefreshInterval < time.Second || c.JWKSUnknownKIDInterval <= 0 {
		return fmt.Errorf("JWKS_REFRESH_INTERVAL must be at least 1s and JWKS_UNKNOWN_KID_INTERVAL positive")
	}
	return nil
}
