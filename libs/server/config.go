package server

import (
	"fmt"
	"time"
)

// Config is what every service reads from its environment to serve HTTP.
type Config struct {
	HTTPAddr           string        `env:"HTTP_ADDR"`
	AdminAddr          string        `env:"ADMIN_ADDR"`
	LogLevel           string        `env:"LOG_LEVEL" envDefault:"info"`
	RequestTimeout     time.Duration `env:"REQUEST_TIMEOUT" envDefault:"5s"`
	ShutdownTimeout    time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"20s"`
	ShutdownDrainDelay time.Duration `env:"SHUTDOWN_DRAIN_DELAY" envDefault:"0s"`
	BodyLimitBytes     int           `env:"BODY_LIMIT_BYTES" envDefault:"65536"`
	// ReadTimeout bounds reading a whole request (headers and body), so slow
	// clients cannot hold connections; WriteTimeout bounds the answer.
	ReadTimeout  time.Duration `env:"READ_TIMEOUT" envDefault:"10s"`
	WriteTimeout time.Duration `env:"WRITE_TIMEOUT" envDefault:"10s"`
	IdleTimeout  time.Duration `env:"IDLE_TIMEOUT" envDefault:"60s"`
	// MaxConcurrentRequests sheds load past this many requests in flight with
	// a quick 503 instead of letting latency grow; 0 means no limit.
	MaxConcurrentRequests int      `env:"MAX_CONCURRENT_REQUESTS" envDefault:"512"`
	TrustedProxies        []string `env:"TRUSTED_PROXIES" envDefault:"127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"`
	// ClientIPv6Prefix is the length of the network an IPv6 client is
	// counted by in per-client limits (a subscriber gets a whole /64).
	ClientIPv6Prefix int `env:"CLIENT_IPV6_PREFIX" envDefault:"64"`
}

// Validate checks what the variables' types cannot say.
func (c Config) Validate() error {
	if c.BodyLimitBytes < 1 || c.BodyLimitBytes > drainLimit {
		return fmt.Errorf("BODY_LIMIT_BYTES %d: want 1 to %d", c.BodyLimitBytes, drainLimit)
	}
	return nil
}
