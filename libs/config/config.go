// Package config reads a service's configuration from its environment into a
// struct tagged for github.com/caarlos0/env, through a getenv function so
// that tests can pass their own environment.
package config

import (
	"fmt"

	"github.com/caarlos0/env/v11"
)

// Load fills a T from getenv. defaults supplies per-service defaults for
// variables that are unset or empty (for example each service's own port);
// a variable's envDefault tag applies after that.
func Load[T any](getenv func(string) string, defaults map[string]string) (T, error) {
	var cfg T
	params, err := env.GetFieldParams(&cfg)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	environ := make(map[string]string, len(params))
	for _, p := range params {
		if v := getenv(p.Key); v != "" {
			environ[p.Key] = v
		} else if d, ok := defaults[p.Key]; ok {
			environ[p.Key] = d
		}
	}
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: environ}); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}
