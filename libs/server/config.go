package server

import "time"

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
}

// Stores is the configuration of the MongoDB and Redis connections.
type Stores struct {
	MongoURI      string `env:"MONGO_URI" envDefault:"mongodb://127.0.0.1:27017"`
	MongoDatabase string `env:"MONGO_DATABASE" envDefault:"moviebag"`
	RedisURL      string `env:"REDIS_URL" envDefault:"redis://127.0.0.1:6379/0"`
	// RedisKeyPrefix starts every Redis key, so deployments can share a Redis;
	// auth and movies must agree on it (the denylist).
	RedisKeyPrefix string        `env:"REDIS_KEY_PREFIX" envDefault:"moviebag:"`
	DialTimeout    time.Duration `env:"DEPENDENCY_DIAL_TIMEOUT" envDefault:"2s"`
}

// Tokens is what both services agree on about tokens.
type Tokens struct {
	Issuer   string `env:"JWT_ISSUER" envDefault:"moviebag-auth"`
	Audience string `env:"JWT_AUDIENCE" envDefault:"moviebag"`
}
